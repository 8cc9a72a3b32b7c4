# bench/bench.mk - the benchmark suite (make bench; see docs/PERFORMANCE.md).
#
# rbench is the load tool and echo/sink peer; bench/run.sh installs the
# peers (haproxy, socat, ...), builds, runs every configuration and writes
# bench/out/.  BENCH_SMOKE=1 runs everything once, briefly.

RBENCH := $(BUILD)/bench/rbench

.PHONY: bench-build
bench-build: $(RBENCH)

$(RBENCH): $(BUILD)/obj/bench/rbench.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(THREADS)

bench:
	@BUILD=$(BUILD) bench/run.sh
