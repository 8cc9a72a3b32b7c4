#!/bin/bash
# fault_slow.sh - peers that hold resources without moving bytes:
# slowloris clients (connect, send nothing) against a server side that
# never dials back and against one that does, bounded by -max-queue,
# -max-clients and -data-timeout; and clients that never read while the
# server pushes 50 MB at them (backpressure: relayd's memory stays flat,
# with splice and with -nosplice).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/peers/fault_lib.sh"

start_relayd -max-queue 20 -max-clients 40 -data-timeout 2 ||
    { fail "relayd starts"; finish; }
health_start || fail "health registration"
baseline

# --- slowloris against a server side that never dials back ----------------
spawn "$T/deaf.log" $RTOOL hold 127.0.0.1 "$RELAYD_PORT" -n 1 \
    -ready "$T/deaf.ready" -until "$T/deaf.release"
wait_for 10 test -s "$T/deaf.ready"
dport=$(nth_public_port 2)
spawn "$T/silent1.out" $FTOOL silent 127.0.0.1 "$dport" -n 100 -hold 4
silent=$SPAWNED
wait_for 10 count_ge 79 'too many clients for this registration' "$RELAYD_LOG"
check "slowloris (deaf): others are served meanwhile" \
    timeout 10 $RTOOL echo 127.0.0.1 "$HEALTH_PORT" -bytes 100000
wait "$silent"
out=$(cat "$T/silent1.out")
note "deaf: $out"
open=$(sed -n 's/.* open=\([0-9]*\).*/\1/p' <<<"$out")
check "slowloris (deaf): at most -max-queue 20 clients held" \
    test "${open:-99}" -le 20
check "slowloris (deaf): the rest refused at once" \
    test "$(grep -c 'too many clients for this registration' "$RELAYD_LOG")" -ge 79
check "slowloris (deaf): announced clients are dropped by -data-timeout (logged)" \
    grep -q 'no data connection within 2.0s' "$RELAYD_LOG"
touch "$T/deaf.release"
healthy "slowloris (deaf)"

# --- slowloris against an echo server side ------------------------------------
spawn "$T/echo.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" \
    -echo
eport=$(nth_public_port 3)
before=$(grep -c 'Client connected' "$RELAYD_LOG")
spawn "$T/silent2.out" $FTOOL silent 127.0.0.1 "$eport" -n 100 -hold 3
silent=$SPAWNED
wait_for 10 count_ge $((before + 100)) 'Client connected' "$RELAYD_LOG"
check "slowloris (echo): others are served meanwhile" \
    timeout 10 $RTOOL echo 127.0.0.1 "$HEALTH_PORT" -bytes 100000
wait "$silent"
out=$(cat "$T/silent2.out")
note "echo: $out"
open=$(sed -n 's/.* open=\([0-9]*\).*/\1/p' <<<"$out")
check "slowloris (echo): at most -max-clients 40 clients held" \
    test "${open:-99}" -le 40
check "slowloris (echo): paired sessions held, not dropped" \
    test "${open:-0}" -ge 20
healthy "slowloris (echo)"

# --- clients that never read: backpressure ------------------------------------
for mode in splice nosplice; do
	flags=()
	[ $mode = nosplice ] && flags=(-nosplice)
	start_relayd "${flags[@]}" || { fail "relayd $mode starts"; continue; }
	health_start || fail "$mode: health registration"
	rm -f "$T/push.port"
	spawn "$T/push.$mode.log" $FTOOL push-server "$T/push.port" \
	    -bytes $((5 << 20))
	wait_for 10 test -s "$T/push.port"
	spawn "$T/ph.$mode.log" "$TBIN/orig_helper" -host 127.0.0.1 \
	    -port "$RELAYD_PORT" -to "127.0.0.1:$(cat "$T/push.port")"
	pport=$(nth_public_port 2)
	baseline
	out=$(timeout 90 $FTOOL noread 127.0.0.1 "$pport" -n 10 \
	    -bytes $((5 << 20)) -hold 3 -pid "$RELAYD_PID" 2>&1)
	rc=$?
	note "$mode: $(tr '\n' ' ' <<<"$out")"
	peak=$(sed -n 's/.*rss-peak-kb=\([0-9]*\).*/\1/p' <<<"$out")
	check "backpressure ($mode): 10 x 5 MB pushed and read back intact" \
	    test $rc = 0
	check "backpressure ($mode): relayd RSS stayed under baseline + 10 MB" \
	    test "${peak:-999999}" -le $((BASE_RSS + 10240))
	healthy "backpressure ($mode)"
done
finish
