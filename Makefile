# current — build, test and benchmark entry points.
GO      ?= go
# Packages that run goroutines of their own; they are tested under the race
# detector. Everything else is tested without it (it makes the MLS vector
# tests several times slower and they have no concurrency to check).
RACE_PKGS ?=

.PHONY: all build test vet fmt-check bench fuzz clean

all: build

build:
	$(GO) build ./...

test: fmt-check vet
	$(GO) test -count=1 ./...
ifneq ($(strip $(RACE_PKGS)),)
	$(GO) test -count=1 -race $(RACE_PKGS)
endif

vet:
	$(GO) vet ./...

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
