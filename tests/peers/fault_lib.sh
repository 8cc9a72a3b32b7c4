# fault_lib.sh - sourced by tests/e2e/fault_*.sh after lib.sh.
#
# Every fault test ends the same way: relayd is alive, a fresh client is
# served correctly through a registration that took no part in the fault
# (the "health" registration, an orig_helper -echo), and relayd's fd
# count and RSS are back near what they were before the fault.

FTOOL="python3 $TOP/tests/peers/fault_tool.py"
RTOOL="python3 $TOP/tests/peers/relay_tool.py"
# Slack over the baseline: a few fds for pipes the worker caches keep
# beyond the warm-up's; a leak of one session's fds per client shows at
# once.  RSS: malloc may keep some freed memory; a buffer per session
# would not fit.
FAULT_FD_SLACK=${FAULT_FD_SLACK:-24}
FAULT_RSS_SLACK_KB=${FAULT_RSS_SLACK_KB:-8192}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# health_start: the health registration on the current relayd, warmed
# up with 64 concurrent sessions so the per-worker pipe caches are full
# before the baseline is taken.  Sets HEALTH_PORT.
health_start() {
	local n
	n=$(($(grep -c 'Serving relay requests' "$RELAYD_LOG") + 1))
	spawn "$T/health.$RELAYD_N.log" "$TBIN/orig_helper" -host 127.0.0.1 \
	    -port "$RELAYD_PORT" -echo
	HEALTH_PORT=$(nth_public_port "$n") || return 1
	timeout 60 $RTOOL many 127.0.0.1 "$HEALTH_PORT" -n 64 -bytes 100000 \
	    >/dev/null 2>&1
}

# baseline: remember relayd's fd count and RSS now.
baseline() {
	BASE_FD=$(fd_count "$RELAYD_PID")
	BASE_RSS=$(rss_kb "$RELAYD_PID")
	note "baseline: $BASE_FD fds, $BASE_RSS kB RSS"
}

fd_near() { [ "$(fd_count "$RELAYD_PID")" -le $((BASE_FD + FAULT_FD_SLACK)) ]; }
rss_near() { [ "$(rss_kb "$RELAYD_PID")" -le $((BASE_RSS + FAULT_RSS_SLACK_KB)) ]; }

# healthy NAME: the closing checks of every fault.
healthy() {
	local name=$1
	check "$name: relayd alive" alive "$RELAYD_PID"
	check "$name: a fresh client is served intact" \
	    timeout 30 $RTOOL echo 127.0.0.1 "$HEALTH_PORT" -bytes 300000 \
	    -seed $RANDOM
	check "$name: fds back near baseline ($BASE_FD + $FAULT_FD_SLACK)" \
	    wait_for 15 fd_near
	check "$name: RSS back near baseline ($BASE_RSS kB + $FAULT_RSS_SLACK_KB)" \
	    wait_for 15 rss_near
	note "$name: now $(fd_count "$RELAYD_PID") fds, $(rss_kb "$RELAYD_PID") kB"
}

# ASan keeps freed memory in quarantine (256 MB by default), which RSS
# would count as growth: keep only a small window of it.
if [ "$SANITIZE" = 1 ]; then
	export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4:thread_local_quarantine_size_kb=256"
fi
