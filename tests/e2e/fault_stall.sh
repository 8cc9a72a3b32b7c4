#!/bin/bash
# fault_stall.sh - a registered server side that stops reading its control
# connection: a flood of clients piles [NEW] lines up until the kernel's
# buffers and relayd's own are full; relayd must then close that
# registration, log "control connection stalled", free every client it
# held for it, and stay healthy.
#
# On loopback the kernel lets a socket's send buffer grow to
# net.ipv4.tcp_wmem's maximum (4 MiB), some 80,000 lines.  So the test
# runs in a network namespace of its own with that maximum at 4 KiB,
# where a few hundred clients suffice.
if [ -z "${FAULT_NETNS:-}" ]; then
	if unshare -n true 2>/dev/null; then
		FAULT_NETNS=1 RELAY_TEST_NETNS=in exec unshare -n bash -c \
		    'ip link set lo up &&
		     sysctl -qw net.ipv4.tcp_wmem="4096 4096 4096" &&
		     exec bash "$0"' "$0"
	fi
	echo "SKIP: stall: cannot create a network namespace (needs root)"
	exit 0
fi
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/peers/fault_lib.sh"
ulimit -n 20000 2>/dev/null
note "netns: tcp_wmem $(cat /proc/sys/net/ipv4/tcp_wmem)"

start_relayd -max-queue 1000 -max-clients 1000 -data-timeout 30 ||
    { fail "relayd starts"; finish; }
health_start || fail "health registration"
baseline

out=$(timeout 60 $FTOOL stall-ctl 127.0.0.1 "$RELAYD_PORT" -clients 800 2>&1)
sed 's/^/  # /' <<<"$out"
cport=$(sed -n 's/^cport=//p' <<<"$out")
check "stall: the stalled peer registered with the extensions" test -n "$cport"
check "stall: relayd closed it: \"control connection stalled\"" \
    grep -q "closing registration .*port $cport.*: control connection stalled" \
    "$RELAYD_LOG"
n=$(sed -n 's/^clients=//p' <<<"$out")
check "stall: every client held for it ($n) was closed" \
    grep -q "clients-closed=$n\$" <<<"$out"
check "stall: its public port is closed" \
    bash -c "! ss -Hltn 'sport = :$cport' | grep -q LISTEN"
healthy "stall"
finish
