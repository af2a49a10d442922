#!/bin/sh
# RCPTCHECK program for the dialog tests: the local part of RECIPIENT
# chooses the exit code and what goes to fd 4; SENDER must be set.
[ -n "$SENDER" ] || exit 111
case "$RECIPIENT" in
nobody@*) exit 100 ;;
tempfail@*) exit 111 ;;
crash@*) kill -9 $$ ;;
noexec@*) exit 120 ;;
custom@*) echo "550 5.1.1 <$RECIPIENT> unknown here" >&4; exit 100 ;;
customcrlf@*) printf '450 4.2.1 mailbox busy\r\nsecond line\n' >&4; exit 100 ;;
positive@*) echo "250 fine" >&4; exit 100 ;;
bare@*) printf '554' >&4; exit 100 ;;
control@*) printf '550 bad\033[2J\n' >&4; exit 100 ;;
nospace@*) echo "550-more" >&4; exit 100 ;;
accepted@*) echo "550 ignored on success" >&4; exit 0 ;;
big@*) head -c 200000 /dev/zero | tr '\0' x >&4; exit 100 ;;
customtemp@*) echo "451 4.3.0 directory offline" >&4; exit 111 ;;
esac
exit 0
