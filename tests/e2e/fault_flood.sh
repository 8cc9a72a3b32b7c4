#!/bin/bash
# fault_flood.sh - floods: control connections far beyond -max-regs and
# -max-regs-per-ip (refused, logged, relayd fine, slots come back), and
# random bytes of assorted sizes thrown at every TCP port relayd listens
# on (control, metrics, and each registration's public and server-facing
# ports, original and extension registrations alike).
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/peers/fault_lib.sh"

# --- registrations beyond -max-regs-per-ip -----------------------------------
start_relayd -max-regs 50 -max-regs-per-ip 5 || { fail "relayd starts"; finish; }
health_start || fail "health registration"
baseline
out=$(timeout 30 $FTOOL regflood 127.0.0.1 "$RELAYD_PORT" -n 200 2>&1)
note "per-ip: $out"
check "per-ip flood: 4 more registrations kept (5 per address)" \
    grep -q 'connected=200 open=4 closed=196' <<<"$out"
check "per-ip flood: each refusal logged" \
    count_ge 196 'registration limit reached; refusing 127.0.0.1' "$RELAYD_LOG"
check "per-ip flood: only 5 registrations ever served" \
    test "$(grep -c 'Serving relay requests' "$RELAYD_LOG")" = 5
healthy "per-ip flood"
spawn "$T/late.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" \
    -echo
check "per-ip flood: the slots came back (a new server registers)" \
    wait_for 5 count_ge 6 'Serving relay requests' "$RELAYD_LOG"

# --- registrations beyond -max-regs -------------------------------------------
start_relayd -max-regs 3 || { fail "relayd -max-regs 3 starts"; finish; }
health_start || fail "health registration"
baseline
out=$(timeout 30 $FTOOL regflood 127.0.0.1 "$RELAYD_PORT" -n 200 2>&1)
note "global: $out"
check "global flood: 2 more registrations kept (3 in all)" \
    grep -q 'connected=200 open=2 closed=198' <<<"$out"
check "global flood: each refusal logged" \
    count_ge 198 'registration limit reached' "$RELAYD_LOG"
healthy "global flood"

# --- refusals that never read, beyond -max-regs-per-ip --------------------------
# Each peer stops reading, pings until relayd's [PONG]s fill its window,
# then sends a malformed line: the refused control connection lingers to
# deliver its [ERR] (up to 30 s), and must keep its slot while it does;
# relayd used to free the slot at once, so one address piled them up.
start_relayd -max-regs-per-ip 2 || { fail "relayd -max-regs-per-ip 2 starts"; finish; }
out=$(timeout 60 $FTOOL deaf-refusals 127.0.0.1 "$RELAYD_PORT" -n 4 2>&1)
note "lingering refusals: $out"
check "lingering refusals keep their slot: the third is refused (2 per address)" \
    grep -q '^admitted=2 of 4 ' <<<"$out"
check "lingering refusals: the slots come back once they are closed" \
    grep -q ', 2 after they closed$' <<<"$out"
check "lingering refusals: relayd alive" alive "$RELAYD_PID"

# --- random bytes at every port relayd opens ----------------------------------
DCONN_LOG='reg [0-9]*: \(data connection\|pooled data connection\|unwanted pooled\)' 
stats=$(free_port)
start_relayd -stats "127.0.0.1:$stats" -hello-timeout 2 ||
    { fail "relayd -stats starts"; finish; }
health_start || fail "health registration"
port=$(free_port)
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
    RELAY_ADDR_FILE=$T/echo.addr $FTOOL echo-server "$port" \
    >"$T/echo.log" 2>&1 &
track_pid "$!"
wait_for 15 test -s "$T/echo.addr"
eport=$(sed 's/.*://' "$T/echo.addr")
check "garbage: an extension registration (shim) is up" test -n "$eport"
timeout 30 $RTOOL many 127.0.0.1 "$eport" -n 32 >/dev/null 2>&1
baseline
ports=$(ss -Hltnp | grep "pid=$RELAYD_PID," |
    awk '{n = split($4, a, ":"); print a[n]}' | sort -un)
note "relayd listens on: $(tr '\n' ' ' <<<"$ports")"
check "garbage: control, metrics and 2 x 2 registration ports found" \
    test "$(wc -w <<<"$ports")" -ge 6
# errors KIND: relayd's errors_total{kind=KIND} from the metrics.
errors() {
	curl -sS -m 5 "http://127.0.0.1:$stats/metrics" |
	    sed -n "s/^relayd_errors_total{kind=\"$1\"} //p"
}
proto0=$(errors protocol)
ndlog0=$(grep -c "$DCONN_LOG" "$RELAYD_LOG")
seed=1
for p in $ports; do
	out=$(timeout 60 $FTOOL garbage 127.0.0.1 "$p" -n 40 -seed $seed 2>&1)
	note "port $p: $out"
	seed=$((seed + 1))
	alive "$RELAYD_PID" || break
done
check "garbage: relayd survived 40 connections of random bytes per port" \
    alive "$RELAYD_PID"
check "garbage: the extension registration still serves" \
    timeout 20 $RTOOL echo 127.0.0.1 "$eport" -bytes 200000
check "garbage: metrics still served" \
    bash -c "curl -sS -m 5 http://127.0.0.1:$stats/metrics | grep -q relayd_"
proto1=$(errors protocol)
note "protocol errors: $proto0 before, $proto1 after"
check "garbage: malformed lines were counted (errors_total{kind=\"protocol\"} rose)" \
    test "${proto1:-0}" -gt "${proto0:-0}"
# Each of the 40 at the extension registration's server-facing port was
# closed with a logged reason (syntax, length, EOF, reset or timeout).
check "garbage: every garbage data connection closed with a logged reason" \
    wait_for 5 count_ge $((ndlog0 + 40)) "$DCONN_LOG" "$RELAYD_LOG"
healthy "garbage"
finish
