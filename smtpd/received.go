package smtpd

import (
	"time"

	"github.com/goqmail/goqmail/internal/inbound"
)

// Received builds the header line qmail-smtpd writes above every message
// (received.c); see inbound.Received.
func Received(protocol, local, remoteIP, remoteHost, remoteInfo string, hasInfo bool, helo string, hasHelo bool, when time.Time) string {
	return inbound.Received(protocol, local, remoteIP, remoteHost, remoteInfo, hasInfo, helo, hasHelo, when)
}

// Date822 formats a time as qmail's date822fmt in UTC:
// "26 Sep 1995 04:46:54 -0000" (day without leading zero).
func Date822(t time.Time) string { return inbound.Date822(t) }
