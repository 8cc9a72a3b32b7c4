#!/bin/bash
# wan.sh - the WAN profile of `make bench`: time to first byte for a new
# client, direct and through relayd, across a slow relay<->server link.
#
# Three network namespaces created here and deleted on exit:
#
#   client 10.201.1.1 --veth-- 10.201.1.2 relay 10.201.2.2 --veth-- 10.201.2.1 server
#                                        (routes)         20 ms each way
#
# The direct path is routed through the relay namespace, so both paths
# cross the delayed link: direct pays a connect and a request round trip;
# relayd adds the [NEW] notification and the server's dial back, whose
# handshake TCP Fast Open (set on in the relay namespace) folds into the
# request's trip where the server side sends a [DATA] line first.  The
# addresses exist only inside these namespaces.  The delay is netem's
# where the kernel has it, else a tun pair joined by `rbench wire`.
#
# Environment: BENCH_RES (results.tsv to append to; required), WAN_N
# (connections per sample, default 20), WAN_DELAY (default 20ms),
# WAN_STALL_SECS (length of the event-loop stall test, default 3).
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
export BUILD=${BUILD:-build}
RES=${BENCH_RES:?BENCH_RES must name the results file}
N=${WAN_N:-20}
DELAY=${WAN_DELAY:-20ms}
STALL_SECS=${WAN_STALL_SECS:-3}
# shellcheck source=../tests/e2e/lib.sh
. tests/e2e/lib.sh
RBENCH=${RBENCH:-$TOP/$BUILD/bench/rbench}
NS_C=rbwan-c-$$ NS_R=rbwan-r-$$ NS_S=rbwan-s-$$

rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }
skip() {
	echo "WAN profile: SKIP ($*)"
	rec 0 skip wan reason "$*"
	exit 0
}

wan_cleanup() {
	cleanup
	for ns in "$NS_C" "$NS_R" "$NS_S"; do
		ip netns del "$ns" 2>/dev/null
	done
}
trap wan_cleanup EXIT

command -v ip >/dev/null || skip "ip not installed"
command -v tc >/dev/null || skip "tc not installed"
ip netns add "$NS_C" 2>/dev/null || skip "ip netns does not work here"
ip netns add "$NS_R" && ip netns add "$NS_S" || skip "ip netns add failed"

# setup_common: the client<->relay veth, lo, routes, forwarding.
setup_common() {
	ip link add c0 netns "$NS_C" type veth peer name r0 netns "$NS_R" &&
	for ns in "$NS_C" "$NS_R" "$NS_S"; do
		ip -n "$ns" link set lo up || return 1
	done &&
	ip -n "$NS_C" addr add 10.201.1.1/24 dev c0 &&
	ip -n "$NS_R" addr add 10.201.1.2/24 dev r0 &&
	ip -n "$NS_C" link set c0 up && ip -n "$NS_R" link set r0 up &&
	ip -n "$NS_C" route add default via 10.201.1.2 &&
	ip netns exec "$NS_R" sysctl -q -w net.ipv4.ip_forward=1
}

# setup_netem: relay<->server over a veth with netem on both ends.
setup_netem() {
	ip link add r1 netns "$NS_R" type veth peer name s0 netns "$NS_S" &&
	ip -n "$NS_R" addr add 10.201.2.2/24 dev r1 &&
	ip -n "$NS_S" addr add 10.201.2.1/24 dev s0 &&
	ip -n "$NS_R" link set r1 up && ip -n "$NS_S" link set s0 up &&
	ip -n "$NS_S" route add default via 10.201.2.2 &&
	tc -n "$NS_R" qdisc add dev r1 root netem delay "$DELAY" 2>/dev/null &&
	tc -n "$NS_S" qdisc add dev s0 root netem delay "$DELAY" 2>/dev/null
}

# setup_wire: without netem (kernels built without sch_netem), the link
# is a pair of tun devices joined by `rbench wire`, which holds every
# packet for the delay in each direction.
setup_wire() {
	ip -n "$NS_R" link del r1 2>/dev/null
	ip -n "$NS_R" tuntap add dev r1 mode tun &&
	ip -n "$NS_S" tuntap add dev s0 mode tun &&
	ip -n "$NS_R" addr add 10.201.2.2 peer 10.201.2.1 dev r1 &&
	ip -n "$NS_S" addr add 10.201.2.1 peer 10.201.2.2 dev s0 &&
	ip -n "$NS_R" link set r1 up && ip -n "$NS_S" link set s0 up &&
	ip -n "$NS_S" route add default via 10.201.2.2 || return 1
	spawn "$T/wire.log" "$RBENCH" wire "/run/netns/$NS_R" r1 \
	    "/run/netns/$NS_S" s0 "${DELAY%ms}"
	wait_for 10 grep -q 'wire ready' "$T/wire.log"
}

setup_common || skip "could not set up veth pairs"
if setup_netem; then
	LINK="veth + netem delay $DELAY each way"
elif setup_wire; then
	LINK="tun + rbench wire, $DELAY each way (no netem in this kernel)"
else
	skip "neither netem nor a tun delay line could be set up"
fi
# TCP Fast Open: relayd's listeners ask for it, the kernel grants it
# only with the server bit, which a relay host's operator sets.
if ip netns exec "$NS_R" sysctl -q -w net.ipv4.tcp_fastopen=3; then
	LINK="$LINK; TCP Fast Open on in the relay namespace"
fi
echo "  relay<->server link: $LINK"
rec 0 meta wan link "$LINK"

in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# direct server, relayd, and rbench dial behind relayd
spawn "$T/serve.log" ip netns exec "$NS_S" "$RBENCH" serve -l 10.201.2.1:0
wait_for 10 grep -q 'listening port=' "$T/serve.log" || skip "server failed"
SPORT=$(kv port <"$T/serve.log")
RELAYD_LOG=$T/relayd.log
# No -bind: the namespace is private, and relayd binds a registration's
# ports to the control connection's local address when -bind is explicit.
spawn "$RELAYD_LOG" ip netns exec "$NS_R" "$RELAYD" -port 0
wait_for 10 grep -q 'servers register on port' "$RELAYD_LOG" ||
    skip "relayd failed to start"
CTL=$(sed -n 's/.*servers register on port \([0-9]*\).*/\1/p' "$RELAYD_LOG")
spawn "$T/dial.log" ip netns exec "$NS_S" "$RBENCH" dial -r "10.201.2.2:$CTL"
PUB=$(nth_public_port 1 "$RELAYD_LOG") || skip "rbench dial did not register"

out=$(in_ns "$NS_R" "$RBENCH" lat -c "10.201.2.1:$SPORT" -n 10 -w 2 -t 10)
RTT=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^p50_us=/) {
    sub(/p50_us=/, "", $i); printf "%.2f", $i / 1000 } }' <<<"$out")
rec 1 wan relay-server rtt_ms "$RTT"
echo "  relay<->server RTT $RTT ms"

# A B A B: two rounds, each a batch of new connections
for round in 1 2; do
	for c in direct relayd; do
		if [ $c = direct ]; then
			addr=10.201.2.1:$SPORT
		else
			addr=10.201.1.2:$PUB
		fi
		out=$(in_ns "$NS_C" "$RBENCH" ttfb -c "$addr" -n "$N" -t 60)
		v=$(kv p50_ms <<<"$out")
		[ -n "$v" ] && rec "$round" wan "$c" ttfb_ms "$v"
		echo "  ttfb $c: p50 ${v:-?} ms ($out)"
		if [ -z "$v" ]; then
			tail -n 5 "$RELAYD_LOG" "$T/dial.log" | sed 's/^/  # /'
		fi
	done
done

# Does a single event-loop server under the shim keep serving existing
# clients while new ones connect?  Needs the shim.
if [ ! -f "$SHIM" ]; then
	echo "  event-loop stall under the shim: SKIP (shim not built)"
	rec 0 skip wan-stall reason "shim not built"
	exit 0
fi
rm -f "$T/shim.addr"
spawn "$T/shim.log" ip netns exec "$NS_S" env LD_PRELOAD="$SHIM_PRELOAD" \
    RELAY_HOST=10.201.2.2 RELAY_PORT="$CTL" RELAY_ADDR_FILE="$T/shim.addr" \
    "$RBENCH" serve -T 1 -l 0.0.0.0:0
if ! wait_for 10 test -s "$T/shim.addr"; then
	echo "  event-loop stall under the shim: no public address"
	rec 0 skip wan-stall reason "shim did not register"
	exit 0
fi
SHIM_PORT=$(sed 's/.*://' "$T/shim.addr" | head -1)
saddr=10.201.1.2:$SHIM_PORT
quiet=$(in_ns "$NS_C" "$RBENCH" lat -H -c "$saddr" -n $((STALL_SECS * 15)) \
    -w 2 -t 20)
in_ns "$NS_C" "$RBENCH" lat -H -c "$saddr" -n 100000 -w 2 -t "$STALL_SECS" \
    >"$T/busy.out" 2>&1 &
lpid=$!
arrivals=$(in_ns "$NS_C" "$RBENCH" ttfb -c "$saddr" -n 1000 -t "$STALL_SECS")
wait "$lpid"
busy=$(cat "$T/busy.out")
rec 0 wan-stall shim quiet_p50_ms "$(kv p50_us <<<"$quiet" |
    awk '{ printf "%.2f", $1 / 1000 }')"
rec 0 wan-stall shim busy_max_ms "$(kv max_us <<<"$busy" |
    awk '{ printf "%.2f", $1 / 1000 }')"
rec 0 wan-stall shim busy_p99_ms "$(kv p99_us <<<"$busy" |
    awk '{ printf "%.2f", $1 / 1000 }')"
echo "  existing client alone: $quiet"
echo "  existing client while new ones arrive: $busy"
echo "  new clients meanwhile: $arrivals"

# Time to first byte through the shim: the same server kind under the
# shim, with its default pool of pre-opened data connections, and with
# RELAY_POOL=0 (a dial-back per client), with and without Fast Open.
for cfg in shim-pool:2:1 shim-nopool:0:1 shim-nopool-notfo:0:0; do
	IFS=: read -r name pool tfo <<<"$cfg"
	rm -f "$T/$name.addr"
	spawn "$T/$name.log" ip netns exec "$NS_S" env \
	    LD_PRELOAD="$SHIM_PRELOAD" RELAY_HOST=10.201.2.2 RELAY_PORT="$CTL" \
	    RELAY_POOL="$pool" RELAY_FASTOPEN="$tfo" \
	    RELAY_ADDR_FILE="$T/$name.addr" "$RBENCH" serve -l 0.0.0.0:0
	if ! wait_for 10 test -s "$T/$name.addr"; then
		echo "  ttfb $name: no public address"
		continue
	fi
	paddr=10.201.1.2:$(sed 's/.*://' "$T/$name.addr" | head -1)
	for round in 1 2; do
		out=$(in_ns "$NS_C" "$RBENCH" ttfb -c "$paddr" -n "$N" -t 60)
		v=$(kv p50_ms <<<"$out")
		[ -n "$v" ] && rec "$round" wan "$name" ttfb_ms "$v"
		echo "  ttfb $name: p50 ${v:-?} ms ($out)"
	done
done
