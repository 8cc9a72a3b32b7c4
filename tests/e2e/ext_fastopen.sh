#!/bin/bash
# ext_fastopen.sh - TCP Fast Open on the server side's connections to
# relayd: a data connection's [DATA] line rides its SYN, relayd accepts
# it at once and the client's first bytes follow the SYN-ACK, which saves
# the dial-back's round trip.  Checked through the kernel's own counters:
# real servers are served, Fast Open is used where it should be and only
# there (never on a raw data connection of the original protocol, whose
# SYN would wait for a server that reads first), and a relay restart is
# survived with a cookie already cached.
#
# The host's default (net.ipv4.tcp_fastopen = 1) is client-only, so the
# test runs in a network namespace of its own with the server bit set.
if [ -z "${TFO_NETNS:-}" ]; then
	if unshare -n true 2>/dev/null; then
		TFO_NETNS=1 RELAY_TEST_NETNS=in exec unshare -n bash -c \
		    'ip link set lo up &&
		     sysctl -qw net.ipv4.tcp_fastopen=3 &&
		     exec bash "$0"' "$0"
	fi
	echo "SKIP: fastopen: cannot create a network namespace (needs root)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"

# tfo NAME: a TcpExt counter of this namespace (TCPFastOpenPassive: SYNs
# whose data relayd accepted at once; TCPFastOpenActive: ours sent).
tfo() {
	awk -v k="$1" '$1 == "TcpExt:" { if (!n) { split($0, h); n = 1; next }
	    for (i = 2; i <= NF; i++) if (h[i] == k) print $i }' /proc/net/netstat
}

printf 'fastopen-secret-0123456789' >"$T/secret"
mkdir -p "$T/www" && echo fastopen-page >"$T/www/index.html"

# serve NAME [ENV=VALUE...]: python's http.server under the shim; sets
# ADDR to its public address.
serve() {
	local name=$1
	shift
	rm -f "$T/$name.addr"
	(cd "$T/www" && env LD_PRELOAD="$SHIM_PRELOAD" RELAY_HOST=127.0.0.1 \
	    RELAY_PORT="$RELAYD_PORT" RELAY_ADDR_FILE="$T/$name.addr" "$@" \
	    python3 -m http.server --bind 127.0.0.1 "$(free_port)") \
	    >"$T/$name.log" 2>&1 &
	track_pid $!
	if ! wait_for 10 test -s "$T/$name.addr"; then
		note "$name did not register:"
		sed 's/^/  # /' "$T/$name.log"
		return 1
	fi
	ADDR=$(cat "$T/$name.addr")
}

# fetch N: N requests to $ADDR, one connection each; all must succeed.
fetch() {
	local i
	for i in $(seq "$1"); do
		curl -sS -m 5 "http://$ADDR/" | grep -q fastopen-page || return 1
	done
}

start_relayd -secret-file "$T/secret" || {
	fail "relayd starts"
	finish
}

serve nopool RELAY_SECRET_FILE="$T/secret" RELAY_POOL=0 ||
    fail "registers (no pool)"
p0=$(tfo TCPFastOpenPassive)
check "no pool: 20 requests served" fetch 20
p1=$(tfo TCPFastOpenPassive)
note "passive Fast Open: $p0 -> $p1"
# Registration fetched the cookie, so every dial-back can use it.
check "no pool: the dial-backs' [DATA] lines rode their SYNs" \
    test $((p1 - p0)) -ge 20

serve pooled RELAY_SECRET_FILE="$T/secret" RELAY_POOL=2 ||
    fail "registers (pool of 2)"
check "pool: 20 requests served" fetch 20
p2=$(tfo TCPFastOpenPassive)
note "passive Fast Open with a pool: $p1 -> $p2"
check "pool: refilled connections open with Fast Open too" \
    test $((p2 - p1)) -ge 20

serve off RELAY_POOL=0 RELAY_SECRET_FILE="$T/secret" RELAY_FASTOPEN=0 ||
    fail "registers (RELAY_FASTOPEN=0)"
a0=$(tfo TCPFastOpenActive)
check "RELAY_FASTOPEN=0: 5 requests served" fetch 5
a1=$(tfo TCPFastOpenActive)
check "RELAY_FASTOPEN=0: the shim sends no Fast Open SYN" test "$a1" = "$a0"

# Restart relayd on the same control port: the helper, with a cookie
# cached, reconnects with [HELLO] in its SYN (a relay that is down then
# answers that SYN with a reset, which must not wedge the retry loop).
ADDR=$(cat "$T/nopool.addr")
ctl=$RELAYD_PORT
kill -9 "$RELAYD_PID"
wait_for 10 bash -c "! kill -0 $RELAYD_PID"
sleep 1.5
start_relayd -port "$ctl" -secret-file "$T/secret" || fail "relayd restarts"
check "after a relay restart: reachable again on the same public port" \
    wait_for 15 bash -c "curl -sS -m 2 http://$ADDR/ | grep -q fastopen-page"
check "after a relay restart: 10 more requests served" fetch 10

# The original protocol's data connection carries nothing of ours first
# (and a relay with a secret would not take it).
start_relayd || fail "relayd without a secret starts"
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_EXTENSIONS=0 \
    exec python3 -m http.server --bind 127.0.0.1 "$(free_port)") \
    >"$T/original.log" 2>&1 &
track_pid $!
ADDR=127.0.0.1:$(nth_public_port 1) || fail "registers (original protocol)"
a0=$(tfo TCPFastOpenActive)
check "original protocol: 5 requests served" fetch 5
a1=$(tfo TCPFastOpenActive)
check "original protocol: no Fast Open on raw data connections" \
    test "$a1" = "$a0"

# A relay that drops SYNs (here: a listener whose accept queue is full),
# reached with a cookie cached for its address: connect() returns at
# once and [HELLO] waits in the SYN, so silence there is no verdict that
# the relay is of the original kind.  listen() must fail as a timeout.
bport=$(free_port)
cat >"$T/blackhole.py" <<'PY'
import socket, sys, time
l = socket.socket()
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(0)
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        for _ in range(2)]     # fills the queue; later SYNs are dropped
print("full", flush=True)
time.sleep(120)
PY
spawn "$T/blackhole.log" python3 "$T/blackhole.py" "$bport"
wait_for 10 grep -q full "$T/blackhole.log"
out=$(cd "$T/www" && LD_PRELOAD="$SHIM_PRELOAD" RELAY_HOST=127.0.0.1 \
    RELAY_PORT="$bport" RELAY_TIMEOUT=3 timeout 20 \
    python3 -m http.server --bind 127.0.0.1 "$(free_port)" 2>&1)
note "$(head -3 <<<"$out")"
check "unreachable relay, cookie cached: listen() fails, timed out" \
    grep -q "cannot register.*timed out" <<<"$out"
check "... and is not taken for a relay of the original protocol" \
    bash -c "! grep -q 'speaks only the original protocol' <<<\"\$1\"" _ "$out"

# relayd -fastopen 0: the kernel falls back to the full handshake.
start_relayd -fastopen 0 || fail "relayd -fastopen 0 starts"
serve plain RELAY_POOL=0 || fail "registers with relayd -fastopen 0"
p0=$(tfo TCPFastOpenPassive)
check "relayd -fastopen 0: 10 requests served" fetch 10
p1=$(tfo TCPFastOpenPassive)
check "relayd -fastopen 0: no SYN data accepted" test "$p1" = "$p0"
finish
