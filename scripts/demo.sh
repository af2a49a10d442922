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

goqmail is running in $DEMO (queue manager pid $(cat "$DEMO/qmail-send.pid")).
Send more mail:
  export QMAILHOME=$QMAILHOME
  echo 'Subject: again' | \$QMAILHOME/bin/sendmail demo@$ME
  ls $USERHOME/Maildir/new
Stop it and clean up:
  kill \$(cat $DEMO/qmail-send.pid); rm -rf $DEMO
MSG
