#!/bin/sh
# RCPTCHECK program for the dialog tests: the local part of RECIPIENT
# chooses the exit code; SENDER must be set.
[ -n "$SENDER" ] || exit 111
case "$RECIPIENT" in
nobody@*) exit 100 ;;
tempfail@*) exit 111 ;;
crash@*) kill -9 $$ ;;
noexec@*) exit 120 ;;
esac
exit 0
