#!/bin/bash
# run.sh - run every test and print one closing line "N passed, N failed".
#
# Unit tests are cmocka binaries ($BUILD/tests/test_*); their "[  PASSED  ]"
# and "[  FAILED  ]" counts are summed.  End-to-end tests are scripts
# tests/e2e/*.sh; each prints "PASS: name" or "FAIL: name" per check, and
# a script that exits non-zero without a FAIL line counts as one failure.
# Set TESTS="pattern ..." to run a subset, e.g. TESTS=relayd_basic.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD SANITIZE=${SANITIZE:-0}
export TOP=$PWD
passed=0
failed=0
failures=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/relay-tests.XXXXXX")

selected() {
	[ -z "${TESTS:-}" ] && return 0
	for t in $TESTS; do
		case $1 in *"$t"*) return 0 ;; esac
	done
	return 1
}

for bin in "$BUILD"/tests/test_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	selected "$name" || continue
	log="$logdir/$name.log"
	timeout 300 "$bin" >"$log" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
	p=${p:-0}
	f=${f:-0}
	# A sanitizer report after the summary shows only in the exit code.
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$f" != 0 ]; then
		failures+=("$name")
		echo "FAIL: $name (rc $rc)"
		sed 's/^/    /' "$log" | tail -40
	else
		echo "ok:   $name ($p tests)"
	fi
done

for script in tests/e2e/*.sh; do
	name=$(basename "$script" .sh)
	[ "$name" = lib ] && continue
	selected "$name" || continue
	log="$logdir/$name.log"
	start=$(date +%s)
	timeout 600 bash "$script" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^PASS: ' "$log")
	f=$(grep -c '^FAIL: ' "$log")
	s=$(grep -c '^SKIP: ' "$log")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "FAIL: $name exited with status $rc" >>"$log"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	secs=$(($(date +%s) - start))
	if [ "$f" != 0 ]; then
		failures+=("$name")
		echo "FAIL: $name ($p passed, $f failed, ${secs}s)"
		sed 's/^/    /' "$log" | tail -60
	else
		echo "ok:   $name ($p checks${s:+, $s skipped}, ${secs}s)"
	fi
done

rm -rf "$logdir"
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
