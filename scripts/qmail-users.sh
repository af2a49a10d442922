#!/bin/sh
# Create qmail's users and groups (conf-users, conf-groups) if missing.
# Run as root; used by `make install` and by CI.
set -e
home=${1:-/var/qmail}
getent group qmail >/dev/null || groupadd -r qmail
getent group nofiles >/dev/null || groupadd -r nofiles
add() { # user group home
	getent passwd "$1" >/dev/null ||
		useradd -r -M -g "$2" -d "$3" -s /usr/sbin/nologin "$1"
}
add alias nofiles "$home/alias"
add qmaild nofiles "$home"
add qmaill nofiles "$home"
add qmailp nofiles "$home"
add qmailq qmail "$home"
add qmailr qmail "$home"
add qmails qmail "$home"
