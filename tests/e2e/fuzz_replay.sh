#!/bin/bash
# fuzz_replay.sh - the committed fuzz corpus, replayed through every target
# built by the normal compiler (ASan+UBSan under SANITIZE=1, leak checks
# on).  Each tests/fuzz/corpus/NAME needs $BUILD/fuzz/replay_NAME
# (tests/fuzz.mk); each input runs twice.  No network, no processes.
. "$(dirname "$0")/lib.sh"

ndirs=0
for dir in "$TOP"/tests/fuzz/corpus/*/; do
	[ -d "$dir" ] || continue
	name=$(basename "$dir")
	bin=$TOP/$BUILD/fuzz/replay_$name
	ndirs=$((ndirs + 1))
	if [ ! -x "$bin" ]; then
		fail "fuzz corpus $name: $bin not built (make tests-build)"
		continue
	fi
	n=$(find "$dir" -maxdepth 1 -type f ! -name '.*' | wc -l)
	if [ "$n" -lt 10 ]; then
		fail "fuzz corpus $name: only $n inputs"
		continue
	fi
	log=$T/$name.log
	if ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	    UBSAN_OPTIONS=print_stacktrace=1 "$bin" "$dir" >"$log" 2>&1 &&
	    grep -q "^replay: $n inputs" "$log"; then
		pass "fuzz corpus $name ($n inputs)"
	else
		fail "fuzz corpus $name"
		tail -30 "$log"
	fi
done
check "fuzz corpus directories exist" [ "$ndirs" -gt 0 ]

# The replay must be able to fail: an input it cannot read is an error.
bin=$TOP/$BUILD/fuzz/replay_proto
if [ -x "$bin" ]; then
	check "replay reports a missing input" \
	    bash -c "! '$bin' -q '$T/no-such-file' 2>/dev/null"
fi
exit 0
