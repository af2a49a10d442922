// Package inbound is what qmail's servers of incoming mail share:
// qmail-smtpd, qmail-qmtpd and qmail-qmqpd read the tcp-environ(5)
// variables, check recipients against rcpthosts and morercpthosts.cdb
// (rcpthosts.c), write the same Received line (received.c) and talk on
// fd 0 and 1 under tcpserver.
//
// It is apart from package smtpd, which re-exports it, so that the QMTP
// and QMQP programs (qmail-qmqpc runs once per message on a null client)
// do not link smtpd's TLS and SMTP AUTH: a program pays at every start
// for the initialisation of each package it links, and crypto/tls with
// its dependencies cost qmail-qmtpd and qmail-qmqpc 0.15 to 0.3 ms of
// CPU, a tenth of their run.
package inbound
