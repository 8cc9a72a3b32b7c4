# lib.sh - sourced by every end-to-end test script (tests/e2e/*.sh).
#
# Conventions:
#  - only 127.0.0.1 / ::1, in a network namespace of the script's own
#    where one can be made; ports are picked free at run time;
#  - every process a test starts goes through `spawn` (or is added to
#    PIDS) and is killed by PID on exit, never by name;
#  - each check prints "PASS: name" or "FAIL: name" (tests/run.sh counts);
#  - waits poll for a condition with a deadline, never a bare sleep.
set -u

# Each script runs in a network namespace of its own, with only a
# loopback interface, wherever one can be made (as root): a server that
# asks for every interface then reaches nothing beyond the test even if
# the shim failed to rebind it, and no other user's ports collide with
# ours.  Scripts that make a namespace of their own set
# RELAY_TEST_NETNS=in themselves; =off keeps the host's (to debug).
if [ -z "${RELAY_TEST_NETNS:-}" ] && unshare -n true 2>/dev/null; then
	RELAY_TEST_NETNS=in exec unshare -n bash -c \
	    'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi

TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
SANITIZE=${SANITIZE:-0}
BIN=$TOP/$BUILD/bin
TBIN=$TOP/$BUILD/tests
RELAYD=$BIN/relayd
HELPER=$BIN/relayshim
SHIM=$TOP/$BUILD/lib/librelayshim.so
RELAY_TOOL="python3 $TOP/tests/peers/relay_tool.py"
T=$(mktemp -d "${TMPDIR:-/tmp}/relay-e2e.XXXXXX")
PIDS=()
NFAIL=0

# Under ASan the runtime must come first in the preload list; leak
# checking inside third-party servers is not ours to judge.
# preload_list LIB: LD_PRELOAD for LIB, with the ASan runtime first when
# sanitized (ASan refuses to run if another library precedes it).
preload_list() {
	if [ "$SANITIZE" = 1 ]; then
		echo "$(gcc -print-file-name=libasan.so):$1"
	else
		echo "$1"
	fi
}
SHIM_PRELOAD=$(preload_list "$SHIM")
[ "$SANITIZE" = 1 ] &&
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
# Optional wrapper for relayd (e.g. RELAYD_WRAP="valgrind -q --error-exitcode=99").
RELAYD_WRAP=${RELAYD_WRAP:-}

# track_pid PID: kill PID on exit.  Also written to a file, so a process
# started inside $(...) (a subshell, whose PIDS the script never sees)
# is killed too.
track_pid() {
	PIDS+=("$1")
	echo "$1" >>"$T/.pids"
}

cleanup() {
	local p
	[ -f "$T/.pids" ] && mapfile -t -O "${#PIDS[@]}" PIDS <"$T/.pids"
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	[ "${KEEP_T:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; NFAIL=$((NFAIL + 1)); }
# check NAME CMD...: PASS if CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}
# note: diagnostics, shown when the script fails.
note() { echo "  # $*"; }

# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds.
wait_for() {
	local deadline=$(($(date +%s%N) + ${1%.*} * 1000000000))
	shift
	while ! "$@" 2>/dev/null; do
		[ "$(date +%s%N)" -gt "$deadline" ] && return 1
		sleep 0.05
	done
	return 0
}

# free_port [host]: a port nobody listens on right now.
free_port() {
	python3 - "${1:-127.0.0.1}" <<'PY'
import socket, sys
h = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ':' in h else socket.AF_INET)
s.bind((h, 0))
print(s.getsockname()[1])
PY
}

# spawn LOGFILE CMD...: start CMD in the background; sets SPAWNED.
spawn() {
	local log=$1
	shift
	"$@" >"$log" 2>&1 &
	SPAWNED=$!
	track_pid "$SPAWNED"
}

# start_relayd [flags...]: starts relayd on a free control port bound to
# 127.0.0.1 (unless -bind is given); sets RELAYD_PID, RELAYD_PORT and
# RELAYD_LOG (its stderr), RELAYD_OUT (its stdout).
RELAYD_N=0
start_relayd() {
	local bind=(-bind 127.0.0.1)
	case " $* " in *" -bind"*) bind=() ;; esac
	RELAYD_N=$((RELAYD_N + 1))
	RELAYD_LOG=$T/relayd.$RELAYD_N.log
	RELAYD_OUT=$T/relayd.$RELAYD_N.out
	$RELAYD_WRAP "$RELAYD" -port 0 "${bind[@]}" "$@" >"$RELAYD_OUT" \
	    2>"$RELAYD_LOG" &
	RELAYD_PID=$!
	track_pid "$RELAYD_PID"
	if ! wait_for 20 grep -q 'servers register on port' "$RELAYD_LOG"; then
		note "relayd did not start:"
		sed 's/^/  # /' "$RELAYD_LOG"
		return 1
	fi
	RELAYD_PORT=$(sed -n 's/.*servers register on port \([0-9]*\).*/\1/p' \
	    "$RELAYD_LOG" | head -1)
}

# count_ge N PATTERN FILE: FILE has at least N lines matching PATTERN
# (a function, so wait_for re-counts on every poll).
count_ge() { [ "$(grep -c -- "$2" "$3" 2>/dev/null)" -ge "$1" ]; }

# nth_public_port N [LOG]: the port of the Nth "Serving relay requests"
# line in relayd's log (waits up to 5 s for it).
nth_public_port() {
	local n=$1 log=${2:-$RELAYD_LOG}
	wait_for 5 count_ge "$n" 'Serving relay requests on port' "$log" ||
	    return 1
	grep 'Serving relay requests on port' "$log" | sed -n "${n}p" |
	    sed 's/.*on port \([0-9]*\).*/\1/'
}

# tool NAME ARGS...: run tests/peers/relay_tool.py ARGS as the check
# NAME (its exit status); what it printed becomes a note.
tool() {
	local name=$1 out rc
	shift
	out=$(timeout 90 $RELAY_TOOL "$@" 2>&1)
	rc=$?
	check "$name" test $rc = 0
	[ -n "$out" ] && note "$out"
	return $rc
}

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
alive() { kill -0 "$1" 2>/dev/null; }
# gone PID...: none of them is running (a zombie, our child not yet
# waited for, which kill -0 still finds, has exited).
gone() {
	local p s
	for p in "$@"; do
		s=$(sed 's/.*) \(.\).*/\1/' "/proc/$p/stat" 2>/dev/null) ||
		    continue
		[ "$s" = Z ] || return 1
	done
	return 0
}
listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q LISTEN; }
# bound_publicly PORT: something listens on PORT at an address other than
# loopback.  relayd's listeners do not count (its ephemeral public ports
# may take any number), nor loopback ones: the shim's own loopback port
# may happen to get the number a test asked for.
bound_publicly() {
	ss -Hltnp "sport = :$1" 2>/dev/null | grep -v '"relayd"' |
	    awk '{ print $4 }' | grep -Evq '^(127\.|\[::1\]|\[::ffff:127\.)'
}
not_bound_publicly() { ! bound_publicly "$1"; }

# finish: exit status for tests/run.sh.
finish() { [ "$NFAIL" = 0 ]; exit $?; }
