# goqmail: a qmail-compatible MTA suite in Go.
#   make          build every program into bin/ under its qmail name
#   make test     vet, unit and integration tests, a short run of every fuzz target
#   make demo     a complete mail system in a temporary directory
#   make bench    throughput side by side with Postfix (see docs/)

GO       ?= go
BIN      := $(CURDIR)/bin
PROGRAMS := $(notdir $(wildcard cmd/*))
# A count, not a duration: a time limit that expires while a worker is
# still starting fails the target with "context deadline exceeded" on a
# loaded machine.
FUZZTIME ?= 3000x
# Integration tests run in parallel where they use their own homes and ports.
TESTFLAGS ?= -timeout 20m

.PHONY: all build test unit packaging-test fuzz-smoke vet demo clean install

all: build

# Programs that resolve accounts through the C library's name service
# (getpwnam: NIS, LDAP, sssd as well as /etc/passwd) keep cgo; they are
# long-running or administrative. Every other program is linked
# statically without cgo: the programs started per message and per
# delivery (qmail-smtpd under tcpserver, qmail-queue, qmail-local,
# qmail-remote, sendmail, qmail-inject) then start without the dynamic
# loader and libc: a third to a half less start-up CPU (docs/performance.md).
NSS_PROGRAMS := qmail-getpw qmail-lspawn qmail-start qmail-send qmailctl
STATIC_PROGRAMS := $(filter-out $(NSS_PROGRAMS),$(PROGRAMS))

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ $(addprefix ./cmd/,$(STATIC_PROGRAMS))
	$(GO) build -trimpath -o $(BIN)/ $(addprefix ./cmd/,$(NSS_PROGRAMS))

vet:
	$(GO) vet ./...
	cd packaging && $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

unit: build
	GOQMAIL_BIN=$(BIN) $(GO) test $(TESTFLAGS) ./...

# The .deb and make install, in a Debian chroot (packaging/ is its own Go
# module, so that nfpm stays out of the programs' dependencies).
packaging-test: build
	cd packaging && GOQMAIL_BIN=$(BIN) $(GO) test $(TESTFLAGS) ./...

# Every fuzz target briefly, one at a time (go test -fuzz takes one target).
fuzz-smoke:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

test: vet unit packaging-test fuzz-smoke

demo: build
	@sh scripts/demo.sh $(BIN)

clean:
	rm -rf $(BIN)

# Not part of make test: minutes of load, root, and Postfix installed from
# Debian if missing. BENCH_QUICK=1: a reduced run for development.
.PHONY: bench
bench: build
	@sh bench/run.sh $(BIN) $(if $(BENCH_QUICK),-quick) $(BENCH_FLAGS)

# make install: the programs into $(DESTDIR)$(QMAILHOME) with qmail's
# layout, owners and modes, through qmailctl init (scripts/install.sh).
# As root it first creates qmail's users and groups when missing. An
# existing installation keeps its queue and control files.
#   SENDMAIL_LINKS=yes  also link /usr/sbin/sendmail and /usr/lib/sendmail
#   ME=host.example     control/me (and locals, rcpthosts) on a first install
QMAILHOME ?= /var/qmail
.PHONY: deb
install: build
	@sh scripts/install.sh "$(BIN)" "$(QMAILHOME)" "$(DESTDIR)" "$(SENDMAIL_LINKS)" "$(ME)"

# make deb: a .deb built by packaging/ (nfpm as a library, in its own Go
# module) with no Debian build tool; see docs/install.md.
DEB_VERSION ?= 0.1.0
deb: build
	cd packaging && $(GO) run . -bin $(BIN) -man $(CURDIR)/docs/man -doc $(CURDIR)/docs -version $(DEB_VERSION) -o $(CURDIR)
