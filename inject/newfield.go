package inject

import (
	"fmt"
	"time"
)

// dateField is the Date field qmail-inject adds (newfield.c), in UTC:
// "Date: 26 Sep 1995 04:46:53 -0000\n".
func dateField(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("Date: %d %s %d %02d:%02d:%02d -0000\n",
		t.Day(), t.Month().String()[:3], t.Year(), t.Hour(), t.Minute(), t.Second())
}

// messageIDField is qmail's Message-ID:
// "Message-ID: <19950926044653.12345.qmail@idhost>\n" (UTC time, pid).
func messageIDField(idHost string, t time.Time, pid int) string {
	t = t.UTC()
	return fmt.Sprintf("Message-ID: <%d%02d%02d%02d%02d%02d.%d.qmail@%s>\n",
		t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(), pid, idHost)
}
