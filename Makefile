# current — build, test and benchmark entry points.
GO      ?= go
# Code that is shared between goroutines is tested again under the race
# detector: the secret tree (locked, handed keys by concurrent senders and
# receivers) and every package listed in RACE_PKGS. The rest of session/mls
# is single-goroutine by contract (a Group is owned by one state machine), and
# the race detector would make its vector tests ten times slower.
RACE_PKGS ?= ./session/record/... ./session/ ./routing/... ./tun/... ./tunnel/... ./cmd/... ./hostdns/... ./metrics/...
RACE_MLS_TESTS ?= SecretTree

.PHONY: all build test vet fmt-check bench fuzz cross

all: build

build:
	$(GO) build ./...

test: fmt-check vet cross
	$(GO) test -count=1 -timeout 30m ./...
	$(GO) test -count=1 -timeout 30m -race -run '$(RACE_MLS_TESTS)' ./session/mls/
	$(GO) test -count=1 -tags mlsopcount -run OpCount ./session/
ifneq ($(strip $(RACE_PKGS)),)
	$(GO) test -count=1 -timeout 30m -race $(RACE_PKGS)
endif

vet:
	$(GO) vet ./...

# macOS and FreeBSD are built and vetted (tests included) on every run;
# they cannot be run here. No cgo, so no C cross-compiler is needed.
CROSS_TARGETS ?= darwin/amd64 darwin/arm64 freebsd/amd64 freebsd/arm64
cross:
	@for t in $(CROSS_TARGETS); do \
	  echo "== $$t"; \
	  GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) build ./... && \
	  GOOS=$${t%/*} GOARCH=$${t#*/} CGO_ENABLED=0 $(GO) vet ./... || exit 1; \
	done

fmt-check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./session/...

# Runs every fuzz target for FUZZTIME each (default 60s).
FUZZTIME ?= 60s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list='^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Two currentd in two network namespaces, a ping across, an epoch update,
# and teardown (needs root).
.PHONY: demo
demo:
	sh scripts/demo.sh

# make package, make package-check: .deb/.rpm with nfpm (see packaging/).
include packaging/package.mk

# make bench-tunnel (root): current against wireguard-go in namespaces (see bench/README.md).
include bench/bench.mk
