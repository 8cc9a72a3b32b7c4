#!/bin/bash
# fault_kill.sh - peers that die mid-transfer: the server side killed with
# SIGKILL (a helper of the original protocol, and a server under the
# shim), clients that reset their connection (SO_LINGER 0) while bytes
# flow both ways, and relayd itself killed and restarted under load with
# a server under the shim that must keep running and serve again.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/peers/fault_lib.sh"

start_relayd || { fail "relayd starts"; finish; }
health_start || fail "health registration"
baseline

# --- the server side (original helper) killed mid-transfer -----------------
spawn "$T/victim.log" "$TBIN/orig_helper" -host 127.0.0.1 \
    -port "$RELAYD_PORT" -echo
victim=$SPAWNED
vport=$(nth_public_port 2)
spawn "$T/stream1.out" $FTOOL stream 127.0.0.1 "$vport" -n 10 \
    -ready "$T/stream1.ready"
streamer=$SPAWNED
check "helper kill: 10 sessions flowing" wait_for 15 test -e "$T/stream1.ready"
kill -9 "$victim"
wait "$streamer"
check "helper kill: every client saw its session end (none hung)" test $? = 0
note "$(cat "$T/stream1.out")"
check "helper kill: relayd closed the registration" \
    wait_for 5 grep -q "closing registration .*port $vport" "$RELAYD_LOG"
check "helper kill: the public port is closed" \
    wait_for 5 bash -c "! ss -Hltn 'sport = :$vport' | grep -q LISTEN"
healthy "helper kill"

# --- a server under the shim killed mid-transfer ----------------------------
port=$(free_port)
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
    RELAY_ADDR_FILE=$T/echo.addr $FTOOL echo-server "$port" \
    >"$T/echo.log" 2>&1 &
srv=$!
track_pid "$srv"
wait_for 15 test -s "$T/echo.addr"
sport=$(sed 's/.*://' "$T/echo.addr" 2>/dev/null)
check "shim kill: server registered" test -n "$sport"
spawn "$T/stream2.out" $FTOOL stream 127.0.0.1 "$sport" -n 10 \
    -ready "$T/stream2.ready"
streamer=$SPAWNED
check "shim kill: 10 sessions flowing" wait_for 15 test -e "$T/stream2.ready"
kill -9 "$srv"
wait "$streamer"
check "shim kill: every client saw its session end (none hung)" test $? = 0
note "$(cat "$T/stream2.out")"
# The helper notices the listener is gone within its liveness period.
check "shim kill: the helper left, relayd closed the registration" \
    wait_for 10 grep -q "closing registration .*port $sport" "$RELAYD_LOG"
healthy "shim kill"

# --- clients reset mid-transfer ----------------------------------------------
out=$(timeout 60 $FTOOL reset 127.0.0.1 "$HEALTH_PORT" -n 30 2>&1)
check "client reset: 30 clients reset while bytes flowed" test $? = 0
note "$out"
check "client reset: relayd logged the resets as session ends" \
    wait_for 5 grep -q 'Client disconnected connection reset by peer' \
    "$RELAYD_LOG"
healthy "client reset"

# --- relayd killed and restarted under load, server under the shim ---------
ctl=$(free_port)
start_relayd -port "$ctl" || { fail "relayd starts on port $ctl"; finish; }
port=$(free_port)
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$ctl \
    RELAY_ADDR_FILE=$T/load.addr $FTOOL echo-server "$port" \
    >"$T/load-srv.log" 2>&1 &
srv=$!
track_pid "$srv"
wait_for 15 test -s "$T/load.addr"
laddr=$(head -1 "$T/load.addr" 2>/dev/null)
lport=${laddr##*:}
check "restart: server registered" test -n "$lport"
spawn "$T/load.out" $FTOOL load 127.0.0.1 "$lport" -par 20 \
    -until "$T/load.stop" -out "$T/load.stats"
loader=$SPAWNED
# last FIELD: the latest count of ok/err in the load statistics.
last() { tail -1 "$T/load.stats" 2>/dev/null | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
ok_above() { [ "$(last ok)" -gt "$1" ] 2>/dev/null; }
check "restart: sessions flow before the kill" wait_for 15 ok_above 50
kill -9 "$RELAYD_PID"
errs=$(last err)
wait_for 10 bash -c "[ \"\$(tail -1 $T/load.stats | sed 's/.* err=\([0-9]*\).*/\1/')\" -gt $errs ]"
ok_at_kill=$(last ok)
note "restart: ok=$ok_at_kill err=$(last err) when relayd was killed"
start_relayd -port "$ctl" || { fail "relayd restarts on port $ctl"; finish; }
check "restart: the server registered again on the same public port" \
    wait_for 15 grep -q "Serving relay requests on port $lport" "$RELAYD_LOG"
check "restart: sessions flow again under load" \
    wait_for 20 ok_above $((ok_at_kill + 100))
touch "$T/load.stop"
wait "$loader"
check "restart: no completed session was corrupted" test $? = 0
note "restart: $(cat "$T/load.out")"
check "restart: the server kept running" alive "$srv"
check "restart: the helper logged the new registration" \
    grep -q 'registered again' "$T/load-srv.log"
# The new relayd, after load: back to the baseline taken before it.
health_start || fail "restart: health registration"
baseline
spawn "$T/load2.out" $FTOOL load 127.0.0.1 "$lport" -par 20 \
    -until "$T/load2.stop" -out "$T/load2.stats"
loader=$SPAWNED
wait_for 10 bash -c "[ \$(wc -l <$T/load2.stats) -ge 6 ]"
touch "$T/load2.stop"
wait "$loader"
check "restart: load on the new relayd intact" test $? = 0
note "restart: $(cat "$T/load2.out")"
healthy "restart"
finish
