#!/bin/bash
# shim_basic.sh - librelayshim.so in front of python's http.server and of
# shim_server in every accept style: blocking accept, accept4 flags,
# poll, select, epoll (level, edge, EPOLLEXCLUSIVE with 2 processes),
# 4 threads in accept(); accept's addr/addrlen (NULL, truncated, the
# listener's family) and the listener's getsockname().
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_lib.sh"

shim_need_build
shim_relayd

# --- python3 -m http.server ----------------------------------------------
mkdir -p "$T/www"
echo "hello through the relay" >"$T/www/index.txt"
head -c 1048576 /dev/urandom >"$T/www/blob.bin"
P=$(free_port)
shim_run py python3 -m http.server "$P" --bind 0.0.0.0 --directory "$T/www"
PY_PID=$SPID
if PUB=$(shim_public py); then
	note "http.server asked 0.0.0.0:$P, public $PUB"
	check "http.server: one stderr line names the public address" \
	    test "$(grep -c '^relayshim:' "$T/py.err")" = 1 -a \
	    "$(grep '^relayshim:' "$T/py.err")" = \
	    "relayshim: 0.0.0.0:$P -> $PUB"
	check "http.server: the address file holds it" \
	    grep -Eqx '127\.0\.0\.1:[0-9]+' "$T/py.addr"
	check "http.server: curl gets the page through the relay" \
	    test "$(curl -sS --max-time 10 "http://$PUB/index.txt")" = \
	    "hello through the relay"
	curl -sS --max-time 20 -o "$T/blob.got" "http://$PUB/blob.bin"
	check "http.server: 1 MiB file intact" cmp -s "$T/www/blob.bin" \
	    "$T/blob.got"
	check "http.server: 10 requests in a row" bash -c '
	    for i in $(seq 10); do
		curl -sf --max-time 10 "http://$1/index.txt" >/dev/null || exit 1
	    done' _ "$PUB"
	check "http.server: no wake header leaks into answers" \
	    bash -c '! curl -s --max-time 10 "http://$1/" | grep -q RSHM' _ \
	    "$PUB"
	check "http.server: the asked port $P is not bound" \
	    not_bound_publicly "$P"
	check "http.server: logs the requests" \
	    grep -q '"GET /index.txt HTTP/1.1" 200' "$T/py.err"
	check "relayd: one registration for it" \
	    test "$(grep -c 'Serving relay requests on port' "$RELAYD_LOG")" = 1
else
	fail "http.server: registers with the relay"
fi
shim_stop py "$PY_PID"

# --- accept styles ----------------------------------------------------------
# mode expected-nb expected-cloexec
STYLES="accept:0:0 accept4:1:1 poll:0:0 select:0:0 epoll:0:0 epollet:1:0"
declare -A ASKED SRV
for s in $STYLES; do
	m=${s%%:*}
	ASKED[$m]=$(free_port)
	shim_run "$m" "$SSRV" -m "$m" -l "0.0.0.0:${ASKED[$m]}"
	SRV[$m]=$SPID
done
for s in $STYLES; do
	IFS=: read -r m nb ce <<<"$s"
	if ! shim_ready "$m" || ! pub=$(shim_public "$m"); then
		fail "$m: starts and registers"
		continue
	fi
	check "$m: getsockname reports the asked 0.0.0.0:${ASKED[$m]}" \
	    grep -qx "LISTEN 0 0.0.0.0:${ASKED[$m]}" "$T/$m.out"
	if ask -n 5 "$(port_of "$pub")"; then
		pass "$m: 5 clients served through the relay"
		check "$m: accepted socket has O_NONBLOCK=$nb FD_CLOEXEC=$ce" \
		    answers_all "nb=$nb cloexec=$ce"
		check "$m: AF_INET peer, addrlen 16" \
		    answers_all "fam=2 alen=16 guard=1 nb=$nb"
	else
		fail "$m: 5 clients served through the relay"
	fi
done
for s in $STYLES; do
	m=${s%%:*}
	shim_stop "$m" "${SRV[$m]}"
done

# --- 4 threads blocking in accept() on one fd --------------------------------
shim_run threads "$SSRV" -m threads -n 4 -l "0.0.0.0:$(free_port)"
TH_PID=$SPID
shim_run epollex "$SSRV" -m epollex -n 2 -l "0.0.0.0:$(free_port)"
EX_PID=$SPID
if pub=$(shim_public threads) && ask -n 20 -d 0.3 "$(port_of "$pub")"; then
	pass "threads: 20 clients served"
	check "threads: 20 answers" test "$(wc -l <"$T/ask.out")" = 20
	check "threads: more than one thread served ($(distinct tid))" \
	    test "$(distinct tid)" -gt 1
	check "threads: one process" test "$(distinct pid)" = 1
else
	fail "threads: 20 clients served"
fi

# --- EPOLLEXCLUSIVE, 2 worker processes --------------------------------------
if pub=$(shim_public epollex) && ask -n 20 -d 0.3 "$(port_of "$pub")"; then
	pass "epollex: 20 clients served by 2 workers"
	check "epollex: both workers served some ($(distinct pid) pids)" \
	    test "$(distinct pid)" = 2
	check "epollex: accept4(SOCK_CLOEXEC) on a non-blocking listener" \
	    answers_all "nb=0 cloexec=1"
else
	fail "epollex: 20 clients served by 2 workers"
fi
shim_stop threads "$TH_PID"
shim_stop epollex "$EX_PID"

# --- accept()'s addr and addrlen --------------------------------------------
# name style listen-address expectation
ADDRS="null:null:0.0.0.0 small4:small:0.0.0.0 small6:small:[::] full6:full:[::]"
declare -A EXPECT=(
	[null]="fam=-1 alen=0 guard=1"
	[small4]="fam=2 alen=16 guard=1"
	[small6]="fam=10 alen=28 guard=1"
	[full6]="fam=10 alen=28 guard=1"
)
for a in $ADDRS; do
	IFS=: read -r name style host <<<"$a"
	ASKED[$name]=$(free_port)
	shim_run "$name" "$SSRV" -a "$style" -l "$host:${ASKED[$name]}"
	SRV[$name]=$SPID
done
for a in $ADDRS; do
	IFS=: read -r name style host <<<"$a"
	if ! shim_ready "$name" || ! pub=$(shim_public "$name") ||
	    ! ask -n 2 "$(port_of "$pub")"; then
		fail "addr $name: clients served"
		continue
	fi
	check "addr $name: accept reports ${EXPECT[$name]}" \
	    answers_all "${EXPECT[$name]}"
done
check "addr full6: the peer is a v4-mapped IPv6 address" \
    answers_all 'peer=\[::ffff:127\.0\.0\.1\]:[0-9]*'
check "addr full6: getsockname reports the asked [::]:${ASKED[full6]}" \
    grep -qx "LISTEN 0 \[::\]:${ASKED[full6]}" "$T/full6.out"
for a in $ADDRS; do
	name=${a%%:*}
	shim_stop "$name" "${SRV[$name]}"
done

# --- an IPv4 listener, a relay reached over IPv6 ------------------------------
# An IPv6 client (and the relay's IPv6 address) cannot be told to an IPv4
# listener: accept() and getsockname() must still give IPv4 addresses,
# "unknown" (0.0.0.0) where no IPv4 one exists.
v4port=$(free_port)
(start_relayd -bind ::1 >/dev/null && echo "$RELAYD_PORT" >"$T/v6relay.port" &&
    wait "$RELAYD_PID")&
track_pid "$!"
if wait_for 20 test -s "$T/v6relay.port"; then
	RELAY_HOST=::1 RELAY_PORT=$(cat "$T/v6relay.port") shim_run v4on6 \
	    "$SSRV" -a full -l "127.0.0.1:$v4port"
	if shim_ready v4on6 && pub=$(shim_public v4on6) &&
	    ask -n 2 -H ::1 "$(port_of "$pub")"; then
		note "$(head -1 "$T/ask.out")"
		check "v4 listener, v6 relay: accept() gives an IPv4 address" \
		    answers_all 'fam=2 alen=16 guard=1 nb=[01] cloexec=[01] peer=0\.0\.0\.0:[0-9]*'
		check "v4 listener, v6 relay: so does getsockname()" \
		    answers_all "local=[0-9.]*:$v4port llen=16"
		check "v4 listener, v6 relay: and getpeername()" \
		    answers_all 'gpeer=0\.0\.0\.0:[0-9]* gplen=16'
		check "v4 listener, v6 relay: accept() and getpeername() agree" \
		    bash -c '! grep -Ev " peer=([^ ]*) .* gpeer=\1 " "$1"' _ "$T/ask.out"
	else
		fail "v4 listener, v6 relay: clients served"
	fi
	shim_stop v4on6 "$SPID"
else
	fail "relayd on ::1 starts"
fi

shim_helpers_gone
finish
