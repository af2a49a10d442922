#!/bin/sh
# Create qmail's users and groups (conf-users, conf-groups) when missing:
# groups qmail and nofiles; alias (home HOME/alias), qmaild, qmaill and
# qmailp in nofiles; qmailq, qmailr and qmails in qmail. Existing ones
# are left as they are: goqmail looks them up by name at run time.
# Run as root; used by make install, the .deb's postinst and CI.
# usage: qmail-users.sh [HOME]   (default /var/qmail)
set -e
home=${1:-/var/qmail}
getent group qmail >/dev/null || groupadd --system qmail
getent group nofiles >/dev/null || groupadd --system nofiles
add() { # user group home
	getent passwd "$1" >/dev/null ||
		useradd --system --no-create-home --gid "$2" --home-dir "$3" \
			--shell /usr/sbin/nologin "$1"
}
add alias nofiles "$home/alias"
add qmaild nofiles "$home"
add qmaill nofiles "$home"
add qmailp nofiles "$home"
add qmailq qmail "$home"
add qmailr qmail "$home"
add qmails qmail "$home"
