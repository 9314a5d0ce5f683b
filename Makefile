# loadshare: OCF agents and CLI for a Pacemaker-managed shared VIP.
GO      ?= go
# BINDIR is where the build goes (a test packages a build of its own there).
BINDIR  ?= bin
BIN     := $(BINDIR)/loadshare
DESTDIR ?=
PREFIX  ?= /usr
OCFDIR  ?= $(PREFIX)/lib/ocf/resource.d/loadshare
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
AGENTS  := clustervip mysql_monitor server_load
# VERSION is the one version of the build: `loadshare --version`, every
# agent's meta-data and the node attribute loadshare_version say it.
# Without git (a source tarball) it is empty and the binaries say the
# module version the go command stamped, or "devel".
VERSION ?= $(shell git describe --always --dirty 2>/dev/null)
LDFLAGS := -X github.com/loadshare/loadshare/agents/ocf.version=$(VERSION) $(EXTRA_LDFLAGS)
# Whole suite, lab included, on 2 cores: well inside CI's 90 minutes.
TEST_TIMEOUT ?= 60m

.PHONY: all build man deb rpm deps test test-short bench demo install uninstall vet clean

all: build

# Static binaries, one per agent beside the CLI: every OCF action is a new
# process, a dynamically linked one spends milliseconds in the loader, and
# an agent that links only what it needs starts faster than the whole CLI.
build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BINDIR)/ ./cmd/...

# man writes loadshare(8) and ocf_loadshare_AGENT(7) from the declarations
# the programs use (the agents' parameters, the commands' flags).
man: build
	$(BIN) man --dir $(BINDIR)/man

# deb and rpm package a stripped build staged by make install, with nfpm as
# a library (cmd/mkpackage, a module of its own): BINDIR/loadshare_*.deb, .rpm.
PKGROOT := $(BINDIR)/pkgroot
deb rpm:
	rm -rf $(PKGROOT)
	$(MAKE) install DESTDIR=$(abspath $(PKGROOT)) EXTRA_LDFLAGS='-s -w'
	cd cmd/mkpackage && $(GO) run . -format $@ -root $(abspath $(PKGROOT)) -version '$(or $(VERSION),devel)' -out $(abspath $(BINDIR))

# deps installs the Debian packages the tests, lab and benchmarks use (no-op when present).
deps:
	./test/install-deps.sh

vet:
	$(GO) vet ./...

# test runs everything: pure tests, kernel tests in network namespaces and the
# real-cluster lab. Tests that need root or a missing capability skip, saying why.
test: deps build vet
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...
	cd cmd/mkpackage && $(GO) vet ./... && $(GO) test -count=1 ./...

# test-short runs only the tests that need no root, kernel or cluster.
test-short:
	$(GO) test -count=1 -short ./...

# bench prints figures as ratios against baselines measured in the same run.
bench: deps build
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

# demo is the README's main job: a three-node lab, a client on the VIP, one node
# loaded and its buckets moving away, then recovery.
demo: deps build
	$(BIN) lab demo

install: build man
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/loadshare
	install -d $(DESTDIR)$(OCFDIR)
	for a in $(AGENTS); do install -m 0755 $(BINDIR)/$$a $(DESTDIR)$(OCFDIR)/$$a; done
	install -D -m 0644 $(BINDIR)/man/loadshare.8 $(DESTDIR)$(MANDIR)/man8/loadshare.8
	for a in $(AGENTS); do install -D -m 0644 $(BINDIR)/man/ocf_loadshare_$$a.7 $(DESTDIR)$(MANDIR)/man7/ocf_loadshare_$$a.7; done
	install -D -m 0644 contrib/loadshare-metrics.service $(DESTDIR)$(UNITDIR)/loadshare-metrics.service

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/loadshare $(DESTDIR)$(MANDIR)/man8/loadshare.8
	for a in $(AGENTS); do rm -f $(DESTDIR)$(MANDIR)/man7/ocf_loadshare_$$a.7; done
	rm -f $(DESTDIR)$(UNITDIR)/loadshare-metrics.service
	for a in $(AGENTS); do rm -f $(DESTDIR)$(OCFDIR)/$$a; done
	-rmdir $(DESTDIR)$(OCFDIR)

clean:
	rm -rf bin
