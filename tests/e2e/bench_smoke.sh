#!/bin/bash
# bench_smoke.sh - keeps `make bench` from rotting: BENCH_SMOKE=1 runs
# every configuration and workload once, about a second each, and this
# checks that the table, the raw results and the chart were produced.
# It judges no figure: the numbers of a smoke run mean nothing.
. "$(dirname "$0")/lib.sh"

OUT=$T/out
# No package installs from make check; peers that are missing are skipped.
BENCH_SMOKE=1 BENCH_DEPS=0 BENCH_OUT=$OUT timeout 240 "$TOP/bench/run.sh" \
    >"$T/bench.log" 2>&1
rc=$?
check "bench smoke run exits 0" test "$rc" = 0
[ "$rc" = 0 ] || tail -40 "$T/bench.log" | sed 's/^/  # /'

check "table printed" grep -q '^Targets (issue 5)' "$T/bench.log"
check "throughput rows for direct and relayd" \
    grep -Eq '^1 stream up +direct ' "$T/bench.log"
check "relayd in the throughput table" grep -Eq '^ +relayd +[0-9]' \
    "$T/bench.log"
check "latency table" grep -Eq '^relayd +[0-9.]+ \[' "$T/bench.log"
check "connection-rate table" grep -q '^TCP conn/s' "$T/bench.log"
check "memory line" grep -q 'relayd memory: idle RSS' "$T/bench.log"
for w in tput1up tput4up tput1down tput4down lat connrate; do
	check "results.tsv has $w for relayd" \
	    grep -Pq "^1\t$w\trelayd\t" "$OUT/results.tsv"
done
check "summary.tsv written" test -s "$OUT/summary.tsv"
check "every target has a status" \
    test "$(grep -cE '^  (PASS|MISS|SKIP)  ' "$T/bench.log")" -ge 10
if command -v gnuplot >/dev/null; then
	check "chart.png is a PNG" \
	    sh -c "head -c 8 '$OUT/chart.png' | od -An -c | grep -q 'P   N   G'"
else
	echo "SKIP: chart (gnuplot not installed)"
fi
# A smoke run must not overwrite the committed chart.
check "docs/bench-chart.png untouched by smoke" \
    test ! "$TOP/docs/bench-chart.png" -nt "$T/bench.log"
finish
