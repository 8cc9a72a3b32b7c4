#!/bin/bash
# fault_integrity.sh - data integrity under load: 1,000 concurrent
# sessions through relayd, each with its own random payload both ways,
# every byte checked by sha256 on arrival, no cross-talk.  Once through
# the shim (extensions: pipelined [NEW], ids) to an asyncio echo server,
# once through a helper of the original protocol (one [NEW] at a time).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/peers/fault_lib.sh"

# 1,000 sessions hold ~2,000 fds in the clients, ~6,000 in relayd
# (sockets and splice pipes) and ~2,000 in the server side.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
note "fd limit: $(ulimit -n)"
N=1000
if [ "$(ulimit -n)" -lt 8000 ]; then
	N=$(($(ulimit -n) / 8))
	note "fd limit too low for 1000 sessions: $N"
fi

notes() { sed 's/^/  # /' <<<"$1"; }
# at_once OUT: relayd held at least 2 fds per session at the barrier.
at_once() {
	local fds
	fds=$(sed -n 's/.*relayd-fds=\([0-9]*\).*/\1/p' <<<"$1")
	[ -n "$fds" ] && [ "$fds" -ge $((2 * N)) ]
}

start_relayd -max-queue 2000 -max-clients 4000 -data-timeout 20 ||
    { fail "relayd starts"; finish; }
health_start || fail "health registration"

# --- through the shim, to an asyncio echo server ---------------------------
port=$(free_port)
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
    RELAY_ADDR_FILE=$T/echo.addr $FTOOL echo-server "$port" \
    >"$T/echo.log" 2>&1 &
track_pid "$!"
srv=$!
check "shim: echo server registered" wait_for 15 test -s "$T/echo.addr"
addr=$(cat "$T/echo.addr" 2>/dev/null)
cport=${addr##*:}
timeout 60 $RTOOL many 127.0.0.1 "$cport" -n 64 -bytes 65536 >/dev/null 2>&1
baseline

out=$(timeout 120 $FTOOL integrity 127.0.0.1 "$cport" -n "$N" -max 65536 \
    -pid "$RELAYD_PID" 2>&1)
rc=$?
notes "$out"
check "shim: $N sessions open end to end at once (2 fds each in relayd)" \
    at_once "$out"
check "shim: $N concurrent sessions, every byte intact" test $rc = 0
check "shim: no cross-talk" grep -q 'cross-talk=0' <<<"$out"
check "shim: the echo server is still up" alive "$srv"
healthy "shim"

# --- through a helper of the original protocol ------------------------------
spawn "$T/orig.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" \
    -echo
oport=$(nth_public_port 3)
timeout 60 $RTOOL many 127.0.0.1 "$oport" -n 64 -bytes 65536 >/dev/null 2>&1
baseline
out=$(timeout 120 $FTOOL integrity 127.0.0.1 "$oport" -n "$N" -max 32768 \
    -pid "$RELAYD_PID" 2>&1)
rc=$?
notes "$out"
check "original: $N sessions open end to end at once" at_once "$out"
check "original: $N concurrent sessions, every byte intact" test $rc = 0
check "original: no cross-talk" grep -q 'cross-talk=0' <<<"$out"
healthy "original"
finish
