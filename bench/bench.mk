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

.PHONY: bench-tunnel bench-inprocess bench-hub
bench-tunnel:
	bash $(BENCH_DIR)/tunnel.sh

# The hub at scale (issue 17, as root): one currentd hub, 1,000 active
# peers (throughput, fairness, latency, update loss, memory), then the
# restart figures with 1,000 and 10,000 peers; HUB_* of bench/hub.sh
# (e.g. make bench-hub HUB_RESTART_PEERS=1000). Last line:
#   hub peers=1000 agg_vs_single=R jain=J update_loss=L restart10k_s=S resumed=F
bench-hub:
	bash $(BENCH_DIR)/hub.sh

# Only the in-process figures (no root needed; no namespaces, no traffic).
bench-inprocess:
	$(GO) run ./$(BENCH_DIR)/cmd/inprocess -v
