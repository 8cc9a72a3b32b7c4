#!/bin/bash
# ext_port.sh - what relayd(8), librelayshim(7) and PROTOCOL.md promise
# about the control handshake's refusals and a requested public port:
# -port-range, a taken port, protocol versions, malformed lines after
# [OK], a second [HELLO]; RELAY_PUBLIC_PORT; the shim's errno values; and
# the exit statuses of relayd and relayshim for bad command lines.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_lib.sh"
shim_need_build

# A public port inside the range we give relayd, free at run time.
LO=$(free_port)
HI=$((LO + 20))
[ "$HI" -le 65535 ] || { LO=40000; HI=40020; }
start_relayd -port-range "$LO-$HI" || { fail "relayd starts"; finish; }

# hello LINE...: a raw extension peer; prints each answer line, then
# "EOF" if relayd closed the connection within 3 s of the last line.
hello() {
	python3 - "$RELAYD_PORT" "$@" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
buf = b""
def line(t=3):
    global buf
    s.settimeout(t)
    try:
        while b"\n" not in buf:
            b = s.recv(4096)
            if not b:
                return None
            buf += b
    except socket.timeout:
        return ""
    l, buf = buf.split(b"\n", 1)
    return l.decode(errors="replace")
for out in sys.argv[2:]:
    s.sendall(out.encode().decode("unicode_escape").encode("latin-1"))
    got = line()
    print(got if got is not None else "EOF")
    if got is None:
        sys.exit(0)
print("EOF" if line() is None else "OPEN")
PY
}

out=$(hello "[HELLO] v=0\n")
note "v=0: $(tr '\n' ' ' <<<"$out")"
check "[HELLO] v=0: [ERR] unsupported protocol version, then closed" \
    test "$out" = $'[ERR] unsupported protocol version\nEOF'

out=$(hello "[HELLO] v=1 port=$((LO - 1))\n")
check "a port below -port-range: [ERR] names the range, then closed" \
    test "$out" = $'[ERR] port '$((LO - 1))' is outside the allowed range '"$LO-$HI"$'\nEOF'

WANT=$((LO + 3))
python3 - "$RELAYD_PORT" "$WANT" "$T/held" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"[HELLO] v=1 port=%s\n" % sys.argv[2].encode())
s.settimeout(5)
got = b""
while not got.endswith(b"\n"):
    got += s.recv(1)
open(sys.argv[3], "w").write(got.decode())
time.sleep(60)
PY
track_pid "$!"
wait_for 5 test -s "$T/held"
check "a free port inside the range: [OK] port=$WANT" \
    grep -q "^\[OK\] .*port=$WANT\( \|$\)" "$T/held"
check "... and it is listening" listening "$WANT"
out=$(hello "[HELLO] v=1 port=$WANT\n")
note "taken: $out"
check "the same port asked again while taken: [ERR] port $WANT unavailable" \
    grep -q "^\[ERR\] port $WANT unavailable" <<<"$out"

out=$(hello "[HELLO] v=1 ka=5\n" "[PING]\n" "[HELLO] v=1 ka=9\n[PING]\n" \
    "[NEW]notaport\n")
note "after [OK]: $(tr '\n' ' ' <<<"$out")"
check "after [OK]: [PING] answered with [PONG]" \
    test "$(sed -n 2p <<<"$out")" = "[PONG]"
check "a second [HELLO] is ignored (no answer but the next [PONG])" \
    test "$(sed -n 3p <<<"$out")" = "[PONG]"
check "a malformed line after [OK]: [ERR] and closed" \
    bash -c '[[ "$(sed -n 4p <<<"$1")" == "[ERR] "* ]] &&
    test "$(sed -n 5p <<<"$1")" = EOF' _ "$out"

# A refusal behind a full control connection: the peer stops reading while
# it pings, so relayd's [PONG]s fill both kernel buffers and then relayd's
# own; the next line is malformed.  Every [PONG] and the [ERR] must still
# arrive: relayd used to close the socket with its buffer unsent.  A small
# send buffer (this namespace's own setting) keeps the count low.
if [ "${RELAY_TEST_NETNS:-}" = in ]; then
	wmem=$(cat /proc/sys/net/ipv4/tcp_wmem)
	sysctl -qw net.ipv4.tcp_wmem="4096 4096 4096"
	out=$(timeout 60 python3 "$TOP/tests/peers/ext_tool.py" refusal-behind \
	    127.0.0.1 "$RELAYD_PORT" 2>&1)
	sysctl -qw net.ipv4.tcp_wmem="$wmem"
	note "refusal behind a full buffer: $out"
	check "a refusal queued behind unsent [PONG]s: all of them, then [ERR]" \
	    grep -Eq '^([0-9]+) of \1 pongs, [1-9][0-9]* bytes held by relayd, last: \[ERR\] ' <<<"$out"
	check "relayd alive after the refusal" alive "$RELAYD_PID"
else
	echo "SKIP: refusal behind a full buffer (needs a network namespace)"
fi

# ---- RELAY_PUBLIC_PORT --------------------------------------------------------
PUB=$((LO + 7))
RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT RELAY_PUBLIC_PORT=$PUB \
    shim_run want "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
if shim_ready want && pub=$(shim_public want); then
	check "RELAY_PUBLIC_PORT=$PUB: that public port" \
	    test "$(port_of "$pub")" = "$PUB"
	check "... served there" ask -n 2 "$PUB"
else
	fail "RELAY_PUBLIC_PORT=$PUB: registers"
fi
RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT RELAY_PUBLIC_PORT=$PUB \
    shim_run want2 "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
wait_for 15 gone "$SPID"
check "RELAY_PUBLIC_PORT taken: listen() fails with EADDRINUSE" \
    grep -q '^shim_server: listen: Address already in use' "$T/want2.err"
check "... and the shim says why" \
    grep -q "^relayshim: cannot register .*port $PUB unavailable" \
    "$T/want2.err"
RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT RELAY_PUBLIC_PORT=$((HI + 1)) \
    shim_run want3 "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
wait_for 15 gone "$SPID"
check "RELAY_PUBLIC_PORT outside -port-range: EADDRINUSE, the range named" \
    bash -c "grep -q '^shim_server: listen: Address already in use' '$T/want3.err' &&
    grep -q 'outside the allowed range $LO-$HI' '$T/want3.err'"

# A server killed and started again at once keeps its RELAY_PUBLIC_PORT:
# its old helper lets the registration go within seconds, and the new
# first registration asks again meanwhile instead of failing at once.
PUB2=$((LO + 9))
RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT RELAY_PUBLIC_PORT=$PUB2 \
    shim_run crash1 "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
if shim_ready crash1 && shim_public crash1 >/dev/null; then
	kill -9 "$SPID"
	RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT RELAY_PUBLIC_PORT=$PUB2 \
	    shim_run crash2 "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
	if pub=$(shim_public crash2); then
		check "restarted at once: the same public port $PUB2 again" \
		    test "$(port_of "$pub")" = "$PUB2"
		check "... served there" ask -n 2 "$PUB2"
	else
		fail "restarted at once: registers again on $PUB2"
	fi
	shim_stop crash2 "$SPID"
else
	fail "RELAY_PUBLIC_PORT=$PUB2: registers"
fi

# ---- the shim's other errno values ----------------------------------------------
RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT RELAY_SECRET_FILE=$T/no-such \
    shim_run nosecret "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
wait_for 15 gone "$SPID"
check "an unreadable RELAY_SECRET_FILE: listen() fails with EINVAL" \
    grep -q '^shim_server: listen: Invalid argument' "$T/nosecret.err"
# A port beyond 65535 is refused, not taken modulo 65536 (getaddrinfo
# would have registered RELAYD_PORT + 65536 with relayd itself).
RELAY_HOST=127.0.0.1 RELAY_PORT=$((RELAYD_PORT + 65536)) \
    shim_run bigport "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
wait_for 15 gone "$SPID"
check "RELAY_PORT beyond 65535: listen() fails with EINVAL" \
    bash -c "grep -q '^shim_server: listen: Invalid argument' '$T/bigport.err' &&
    grep -q 'RELAY_PORT is not a port' '$T/bigport.err'"
RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT RELAY_PUBLIC_PORT=70000 \
    shim_run bigpub "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
wait_for 15 gone "$SPID"
check "RELAY_PUBLIC_PORT beyond 65535: listen() fails with EINVAL" \
    grep -q '^shim_server: listen: Invalid argument' "$T/bigpub.err"
# A library with no relayshim beside it does not run one found on PATH
# (the server's PATH may hold anyone's directory): ENOENT, and a reason.
mkdir -p "$T/lonely" "$T/bait"
cp "$SHIM" "$T/lonely/librelayshim.so"
printf '#!/bin/sh\ntouch %s\nexec %s "$@"\n' "$T/bait/ran" "$HELPER" \
    >"$T/bait/relayshim"
chmod +x "$T/bait/relayshim"
PATH=$T/bait:$PATH RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
    RELAY_ADDR_FILE=$T/lonely.addr LD_PRELOAD=$(preload_list "$T/lonely/librelayshim.so") \
    "$SSRV" -m poll -l "127.0.0.1:$(free_port)" \
    >"$T/lonely.out" 2>"$T/lonely.err" &
SPID=$!
track_pid "$SPID"
wait_for 15 gone "$SPID"
check "no helper beside the library: listen() fails with ENOENT" \
    grep -q '^shim_server: listen: No such file or directory' "$T/lonely.err"
check "... naming the library and RELAYSHIM_HELPER" \
    grep -q "no relayshim beside $T/lonely/librelayshim.so (set RELAYSHIM_HELPER)" \
    "$T/lonely.err"
check "... and the relayshim on PATH was not run" test ! -e "$T/bait/ran"
PATH=$T/bait:$PATH RELAYSHIM_HELPER=$T/bait/relayshim \
    RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT shim_run named "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
if pub=$(shim_public named); then
	check "RELAYSHIM_HELPER names the helper" test -e "$T/bait/ran"
	check "... which serves" ask -n 2 "$(port_of "$pub")"
else
	fail "RELAYSHIM_HELPER=$T/bait/relayshim: registers"
fi
shim_stop named "$SPID"

# Name resolution fails without leaving the host only in a namespace of
# our own (a name under .invalid is never delegated, but a resolver
# elsewhere would still be asked).
if [ "${RELAY_TEST_NETNS:-}" = in ]; then
	RELAY_HOST=no-such-relay.invalid RELAY_PORT=$RELAYD_PORT \
	    shim_run noname "$SSRV" -m poll -l "127.0.0.1:$(free_port)"
	wait_for 30 gone "$SPID"
	check "an unresolvable RELAY_HOST: listen() fails with EHOSTUNREACH" \
	    grep -q '^shim_server: listen: No route to host' "$T/noname.err"
	check "... after 'cannot resolve'" \
	    grep -q 'cannot resolve no-such-relay.invalid' "$T/noname.err"
else
	echo "SKIP: unresolvable RELAY_HOST (no network namespace of our own)"
fi
# Without RELAY_HOST the shim stays out of the way: the asked address.
NP=$(free_port)
(unset RELAY_HOST; shim_run plain "$SSRV" -m poll -l "127.0.0.1:$NP")
check "without RELAY_HOST: the server listens where it asked" \
    wait_for 10 listening "$NP"
check "... and nothing is registered" \
    bash -c "! grep -q '^relayshim:' '$T/plain.err'"

# ---- an IPv6 listener, an IPv4 relay, bindv6only ------------------------------------
# The helper dials the relay v4-mapped from an IPv6 socket; with
# net.ipv6.bindv6only=1 that socket must be made dual-stack by hand.
# The sysctl is per network namespace: only in one of our own.
if [ "${RELAY_TEST_NETNS:-}" = in ] &&
    sysctl -qw net.ipv6.bindv6only=1 2>/dev/null; then
	RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
	    shim_run v6only "$SSRV" -m poll -l "[::]:$(free_port)"
	if shim_ready v6only && pub=$(shim_public v6only); then
		check "bindv6only=1: a [::] listener behind an IPv4 relay serves" \
		    ask -n 2 "$(port_of "$pub")"
	else
		fail "bindv6only=1: a [::] listener registers"
	fi
	shim_stop v6only "$SPID"
	sysctl -qw net.ipv6.bindv6only=0
else
	echo "SKIP: bindv6only (no network namespace of our own)"
fi

# ---- exit statuses for bad command lines -----------------------------------------
"$RELAYD" -t -bind 127.0.0.1 -port 0 1 2 >/dev/null 2>&1
check "relayd: a second positional argument exits 2" test $? = 2
"$RELAYD" -t -port-range 9-x >/dev/null 2>&1
check "relayd: a malformed -port-range exits 2" test $? = 2
"$RELAYD" -t -port-range 1024-4294968320 >/dev/null 2>&1
check "relayd: a -port-range bound beyond 65535 exits 2 (no wrap-around)" \
    test $? = 2
"$RELAYD" -t -port-range +1024-2000 >/dev/null 2>&1
check "relayd: a signed -port-range bound exits 2" test $? = 2
"$HELPER" -relay 127.0.0.1:1 >/dev/null 2>&1
check "relayshim: no -to exits 2" test $? = 2
"$HELPER" -relay 127.0.0.1:"$RELAYD_PORT" -to 127.0.0.1:1 -proxy-protocol 3 \
    >/dev/null 2>&1
check "relayshim: -proxy-protocol 3 exits 2" test $? = 2
dead=$(free_port)
timeout 20 "$HELPER" -relay "127.0.0.1:$dead" -to 127.0.0.1:1 >/dev/null 2>&1
check "relayshim: an unreachable relay at the first registration exits 1" \
    test $? = 1
finish
