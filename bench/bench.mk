# Tunnel benchmark harness (issue 8). Included from the Makefile; also
# usable alone: make -f bench/bench.mk bench-tunnel
#
#   make bench-tunnel                        (as root)
#   make bench-tunnel BENCH_DURATION=10      (any BENCH_* of bench/tunnel.sh)
#
# Prints the in-process figures, then a table of medians (current,
# wireguard-go, raw veth) and the ratio current / wireguard-go; the last
# line is machine-readable. bench/README.md explains the figures.
GO ?= go
BENCH_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: bench-tunnel bench-inprocess
bench-tunnel:
	bash $(BENCH_DIR)/tunnel.sh

# Only the in-process figures (no root needed; no namespaces, no traffic).
bench-inprocess:
	$(GO) run ./$(BENCH_DIR)/cmd/inprocess -v
