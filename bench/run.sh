#!/bin/sh
# make bench: goqmail against Postfix on this machine (docs/performance.md).
#   sh bench/run.sh BINDIR [goqmail-bench flags...]
# Installs the peers it needs from Debian's packages when they are missing,
# builds the harness and runs it as root (Postfix's master needs root; the
# goqmail instances run as nobody).
set -eu
BIN=${1:?usage: run.sh BINDIR [flags]}
shift
BIN=$(cd "$BIN" && pwd)
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (sudo make bench): Postfix and the cgroup accounting need it" >&2
	exit 111
fi

# postfix: the comparison, and its smtp-source/smtp-sink load tools;
# ucspi-tcp: tcpserver for goqmail's classic layout.
need=""
command -v smtp-source >/dev/null 2>&1 || need="$need postfix"
command -v tcpserver >/dev/null 2>&1 || need="$need ucspi-tcp"
if [ -n "$need" ]; then
	case "$need" in
	*postfix*)
		# Installing postfix replaces another MTA: never do that behind
		# the caller's back.
		if [ -e /usr/sbin/sendmail ] && ! dpkg -s postfix >/dev/null 2>&1; then
			echo "bench: another MTA provides /usr/sbin/sendmail ($(dpkg -S /usr/sbin/sendmail 2>/dev/null | cut -d: -f1)); install postfix yourself if it may replace it" >&2
			exit 111
		fi
		# "No configuration": the package's own instance stays unconfigured
		# and nothing listens on port 25.
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		;;
	esac
	echo "bench: installing$need" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# The harness is not one of goqmail's programs: keep it out of BINDIR,
# which every benchmark home links its programs from.
harness=$(mktemp -d "${TMPDIR:-/tmp}/goqmail-bench-harness.XXXXXX")
trap 'rm -rf "$harness"' EXIT
go build -trimpath -o "$harness/goqmail-bench" ./bench/cmd/goqmail-bench
"$harness/goqmail-bench" -bin "$BIN" -results bench/results "$@"
