package inject

// fieldType identifies the header fields qmail-inject knows (hfield.h).
type fieldType int

const (
	fieldUnknown fieldType = iota
	fieldSender
	fieldFrom
	fieldReplyTo
	fieldTo
	fieldCc
	fieldBcc
	fieldDate
	fieldMessageID
	fieldSubject
	fieldResentSender
	fieldResentFrom
	fieldResentReplyTo
	fieldResentTo
	fieldResentCc
	fieldResentBcc
	fieldResentDate
	fieldResentMessageID
	fieldReturnReceiptTo
	fieldErrorsTo
	fieldApparentlyTo
	fieldReceived
	fieldReturnPath
	fieldDeliveredTo
	fieldContentLength
	fieldContentType
	fieldContentTransferEncoding
	fieldNoticeRequestedUponDeliveryTo
	fieldMailFollowupTo
	numFieldTypes
)

// fieldNames are the known names, lower case, indexed by fieldType.
var fieldNames = [numFieldTypes]string{
	"unknown-header",
	"sender",
	"from",
	"reply-to",
	"to",
	"cc",
	"bcc",
	"date",
	"message-id",
	"subject",
	"resent-sender",
	"resent-from",
	"resent-reply-to",
	"resent-to",
	"resent-cc",
	"resent-bcc",
	"resent-date",
	"resent-message-id",
	"return-receipt-to",
	"errors-to",
	"apparently-to",
	"received",
	"return-path",
	"delivered-to",
	"content-length",
	"content-type",
	"content-transfer-encoding",
	"notice-requested-upon-delivery-to",
	"mail-followup-to",
}

// matchField reports whether field starts with name (letters in either
// case, '-' exactly), then optional spaces or tabs, then a colon.
func matchField(field []byte, name string) bool {
	if len(field) < len(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		ch, got := name[i], field[i]
		if got != ch && (ch == '-' || got != ch-32) {
			return false
		}
	}
	for _, ch := range field[len(name):] {
		switch ch {
		case ':':
			return true
		case ' ', '\t':
			continue
		}
		return false
	}
	return false
}

// knownField returns the type of a header field (hfield_known), or
// fieldUnknown.
func knownField(field []byte) fieldType {
	for t := fieldSender; t < numFieldTypes; t++ {
		if matchField(field, fieldNames[t]) {
			return t
		}
	}
	return fieldUnknown
}

// validField reports whether a line starts a header field (hfield_valid):
// a colon, and before it (less trailing spaces and tabs) a non-empty name
// of printable ASCII without spaces.
func validField(line []byte) bool {
	colon := -1
	for i, ch := range line {
		if ch == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		return false
	}
	return validName(line[:colon])
}

func validName(name []byte) bool {
	j := len(name)
	for j > 0 && (name[j-1] == ' ' || name[j-1] == '\t') {
		j--
	}
	if j == 0 {
		return false
	}
	for _, ch := range name[:j] {
		if ch <= 32 || ch >= 127 {
			return false
		}
	}
	return true
}
