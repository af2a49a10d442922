#!/bin/sh
# make install: put the built programs into a qmail home with qmail's
# layout, owners and modes. The layout is qmailctl init's, never
# described twice:
#  - a first install runs qmailctl init on the home itself;
#  - an upgrade (the home has a queue, which init refuses to touch) runs
#    qmailctl init on a scratch home and copies its bin/ over, owners and
#    modes included, one rename per program so that a running qmail keeps
#    a whole binary.
# As root (and without DESTDIR) qmail's users and groups are created
# first, and everything gets qmail's owners (qmail-queue setuid qmailq).
# Otherwise, or with DESTDIR when those users do not exist on this
# machine, the home belongs to the caller.
#
# usage: install.sh BIN QMAILHOME [DESTDIR [SENDMAIL_LINKS [ME]]]
set -eu
bin=$1 home=$2 destdir=${3:-} links=${4:-} me=${5:-}
case $home in
/*) ;;
*) echo "install: QMAILHOME must be an absolute path: $home" >&2; exit 100 ;;
esac
target=$destdir$home
qmailctl=$bin/qmailctl
[ -x "$qmailctl" ] || { echo "install: $qmailctl missing (run make)" >&2; exit 111; }
here=$(cd "$(dirname "$0")" && pwd)

# qmail_ids_exist: are all of qmail's users and groups on this machine?
qmail_ids_exist() {
	for u in alias qmaild qmaill qmailp qmailq qmailr qmails; do
		getent passwd "$u" >/dev/null || return 1
	done
	getent group qmail >/dev/null && getent group nofiles >/dev/null
}

privileged=no
if [ "$(id -u)" = 0 ]; then
	if [ -z "$destdir" ]; then
		sh "$here/qmail-users.sh" "$home"
		privileged=yes
	elif qmail_ids_exist; then
		privileged=yes
	fi
fi
initflags=
if [ "$(id -u)" = 0 ] && [ $privileged = no ]; then
	initflags=--unprivileged
fi
set -- $initflags
[ -n "$me" ] && set -- "$@" --me "$me"

# copy_programs FROM: every file of FROM into $target/bin, atomically.
copy_programs() {
	for f in "$1"/*; do
		[ -f "$f" ] || continue
		name=${f##*/}
		cp -p "$f" "$target/bin/.$name.new"
		mv -f "$target/bin/.$name.new" "$target/bin/$name"
	done
}

if [ ! -e "$target/queue" ]; then
	if [ $privileged = yes ]; then
		"$qmailctl" init --home "$target" --programs "$bin" "$@"
	else
		# Unprivileged, init would link bin/ to the build tree: copy.
		"$qmailctl" init --home "$target" --programs "" "$@"
		copy_programs "$bin"
	fi
else
	if [ $privileged = yes ]; then
		scratch=$(mktemp -d)
		trap 'rm -rf "$scratch"' EXIT
		"$qmailctl" init --home "$scratch/home" --me install.invalid --programs "$bin" >/dev/null
		copy_programs "$scratch/home/bin"
	else
		copy_programs "$bin"
	fi
	echo "programs of $target/bin upgraded; queue and control files kept"
fi

# Documentation where qmail keeps it: man pages in $home/man, the rest
# in $home/doc.
top=$(dirname "$here")
for page in "$top"/docs/man/*.[1-8]; do
	[ -f "$page" ] || continue
	section=${page##*.}
	mkdir -p "$target/man/man$section"
	cp "$page" "$target/man/man$section/"
	chmod 644 "$target/man/man$section/${page##*/}"
done
for doc in "$top"/README.md "$top"/docs/*.md; do
	[ -f "$doc" ] && cp "$doc" "$target/doc/" && chmod 644 "$target/doc/${doc##*/}"
done

if [ "$links" = yes ]; then
	for link in /usr/sbin/sendmail /usr/lib/sendmail; do
		mkdir -p "$destdir${link%/*}"
		ln -sfn "$home/bin/sendmail" "$destdir$link"
	done
	echo "linked /usr/sbin/sendmail and /usr/lib/sendmail to $home/bin/sendmail"
fi
