#!/bin/bash
# shim_noipv6lo.sh - a server that listens on "::" on a host whose
# loopback has no ::1 (IPv6 disabled on lo, as in many containers): the
# shim binds the listener to 127.0.0.1, v4-mapped, and the helper must
# wake it there, not at ::1 (it once did, and every client was lost).
# Runs in a network namespace of its own, where lo's IPv6 is turned off.
if [ -z "${NOV6_NETNS:-}" ]; then
	if unshare -n true 2>/dev/null; then
		NOV6_NETNS=1 RELAY_TEST_NETNS=in exec unshare -n bash -c \
		    'sysctl -qw net.ipv6.conf.lo.disable_ipv6=1 &&
		     ip link set lo up &&
		     exec bash "$0"' "$0"
	fi
	echo "SKIP: noipv6lo: cannot create a network namespace (needs root)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"

check "the namespace's loopback has no ::1" \
    bash -c "! ip -6 addr show dev lo | grep -q '::1'"
start_relayd || {
	fail "relayd starts"
	finish
}
mkdir -p "$T/www" && echo no-ipv6-loopback >"$T/www/index.html"
port=$(free_port)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_ADDR_FILE=$T/addr \
    exec python3 -m http.server --bind :: "$port") >"$T/py.log" 2>&1 &
track_pid $!
check "the [::] listener registers" wait_for 10 test -s "$T/addr"
addr=$(cat "$T/addr" 2>/dev/null)
note "$(cat "$T/py.log")"
ok=0
for i in 1 2 3 4 5; do
	curl -sS -m 5 "http://$addr/" | grep -q no-ipv6-loopback && ok=$((ok + 1))
done
check "5 clients served through the relay" test "$ok" = 5
check "its loopback listener is 127.0.0.1, v4-mapped" \
    bash -c "ss -Hltn | grep -q '\[::ffff:127.0.0.1\]'"
finish
