#!/bin/sh
# make demo: a complete goqmail mail system in a temporary directory,
# unprivileged: a qmail home, a demo user with a Maildir, the queue
# manager running, and a message sent with sendmail and delivered.
set -eu
BIN=${1:?usage: demo.sh BINDIR}
BIN=$(cd "$BIN" && pwd)

# qmail never delivers as root, and as root qmail-start would switch to
# the qmail users, which an unprivileged demo does not have: run as
# nobody instead.
if [ "$(id -u)" = 0 ]; then
	exec setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- sh "$0" "$BIN"
fi
DEMO=$(mktemp -d /tmp/goqmail-demo.XXXXXX)
chmod 755 "$DEMO"
QMAILHOME=$DEMO/qmail
export QMAILHOME
ME=demo.goqmail.test

"$BIN/qmailctl" init --me "$ME" --unprivileged --programs "$BIN" >/dev/null

# The demo user is you: its mail goes to a Maildir in the demo directory.
uid=$(id -u) gid=$(id -g)
USERHOME=$DEMO/home/demo
mkdir -p "$USERHOME"
"$BIN/maildirmake" "$USERHOME/Maildir"
printf '=demo:demo:%s:%s:%s:::\n.\n' "$uid" "$gid" "$USERHOME" >"$QMAILHOME/users/assign"
"$BIN/qmail-newu"

# The queue manager, as a supervise run script would start it.
(cd "$QMAILHOME" && exec env - PATH="$QMAILHOME/bin:/usr/bin:/bin" QMAILHOME="$QMAILHOME" \
	qmail-start ./Maildir/) >"$DEMO/qmail-send.log" 2>&1 &
echo $! >"$DEMO/qmail-send.pid"

# The SMTP server, as a standalone listener on a free loopback port.
(cd "$QMAILHOME" && exec env - PATH="$QMAILHOME/bin:/usr/bin:/bin" QMAILHOME="$QMAILHOME" \
	qmail-smtpd --listen 127.0.0.1:0 -l "$ME") >"$DEMO/qmail-smtpd.log" 2>&1 &
echo $! >"$DEMO/qmail-smtpd.pid"
i=0
until grep -q 'listening on' "$DEMO/qmail-smtpd.log" 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		echo "demo: qmail-smtpd did not start:" >&2
		cat "$DEMO/qmail-smtpd.log" >&2
		exit 1
	fi
	sleep 0.1
done
SMTP=$(sed -n 's/.*listening on //p' "$DEMO/qmail-smtpd.log" | head -n 1)
PORT=${SMTP##*:}

printf 'To: demo@%s\nSubject: hello from goqmail\n\nIt works: this message went through\nsendmail, qmail-inject, qmail-queue, qmail-send and qmail-local.\n' "$ME" |
	"$QMAILHOME/bin/sendmail" -t

i=0
while [ -z "$(ls "$USERHOME/Maildir/new" 2>/dev/null)" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		echo "demo: the message was not delivered within 10 seconds; qmail-send's log:" >&2
		cat "$DEMO/qmail-send.log" >&2
		exit 1
	fi
	sleep 0.1
done

echo "== delivered to $USERHOME/Maildir/new:"
cat "$USERHOME"/Maildir/new/*
echo
echo "== qmail-send's log ($DEMO/qmail-send.log):"
cat "$DEMO/qmail-send.log"
cat <<MSG

goqmail is running in $DEMO: the queue manager (pid $(cat "$DEMO/qmail-send.pid"))
and qmail-smtpd listening on $SMTP (pid $(cat "$DEMO/qmail-smtpd.pid")).
Send more mail, locally or over SMTP:
  export QMAILHOME=$QMAILHOME
  echo 'Subject: again' | \$QMAILHOME/bin/sendmail demo@$ME
  swaks --server 127.0.0.1 --port $PORT --to demo@$ME
  python3 -c 'import smtplib; smtplib.SMTP("127.0.0.1", $PORT).sendmail("you@example.org", ["demo@$ME"], "Subject: hi\\n\\nhello\\n")'
  ls $USERHOME/Maildir/new
Logs: $DEMO/qmail-send.log and $DEMO/qmail-smtpd.log.
Stop it and clean up:
  kill \$(cat $DEMO/qmail-send.pid $DEMO/qmail-smtpd.pid); rm -rf $DEMO
MSG
