#!/bin/bash
# shim_hostile.sh - the shim inside a server must survive a hostile or
# broken relay: garbage lines, [NEW]0, [NEW]99999, [NEW] for a port
# nobody listens on, a line with no LF, a dropped handshake, a malformed
# or half [OK], a secret it does not have.  The server never crashes,
# accept() never returns a bad socket, the server keeps serving.  Also:
# errno kept on every pass-through path, and no deadlock when a server
# forks from a thread while another is in accept() and signals interrupt
# it.
. "$(dirname "$0")/lib.sh"

RELAY=$TOP/tests/peers/fake_relay.py
SERVER=$TOP/tests/peers/hostile_server.py

# fake_relay NAME SCENARIOS: fake_relay.py, its control port in
# $T/NAME.port, its events in $T/NAME.out.
fake_relay() {
	spawn "$T/$1.out" python3 "$RELAY" "$T/$1.port" "$2"
	wait_for 10 test -s "$T/$1.port"
}

# hostile_server NAME PORTFILE RELAYED PORT...: hostile_server.py on every
# PORT under the shim, the ports in the list RELAYED registered with the
# relay whose control port is in PORTFILE; waits for READY.  Sets srv;
# output in $T/NAME.out and $T/NAME.err.
hostile_server() {
	local name=$1 portfile=$2 relayed=$3
	shift 3
	LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
	    RELAY_PORT=$(cat "$portfile") RELAY_PORTS=$relayed \
	    python3 "$SERVER" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	srv=$!
	track_pid "$srv"
	wait_for 30 grep -q READY "$T/$name.out"
	note "server: $(tr '\n' ' ' <"$T/$name.out")"
}

# --- registered, then a hostile relay ---------------------------------------
fake_relay relay garbage,drop,halfok,goodext
A=$(free_port)
B=$(free_port)
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$(cat "$T/relay.port") \
    RELAY_PORTS=$A python3 "$SERVER" "$A" "$B" >"$T/srv.out" 2>"$T/srv.err" &
srv=$!
track_pid "$srv"
check "hostile: malformed [OK]: the helper falls back, listen() succeeds" \
    wait_for 15 grep -q "LISTEN-OK $A" "$T/srv.out"
ev() { grep -q "^EVENT $1" "$T/relay.out"; }
check "hostile: the whole script ran" wait_for 40 ev goodext-done
check "hostile: a good [NEW] after the garbage is served" \
    ev "reply hostile-1 reply:hostile-1 peer=127.0.0.1:"
check "hostile: the helper hung up on a line with no LF" ev huge-closed
check "hostile: [NEW] for a dead port: dial fails" \
    grep -q 'data connection failed: Connection refused' "$T/srv.err"
# The clients the relay really sent: hostile-1, ext-1, ext-2 and the one
# it resets; garbage lines and the dead port gave the server nothing.
check "hostile: the server accepted exactly the 4 real clients" \
    test "$(grep -c "^ACCEPT $A " "$T/srv.out")" = 4
check "hostile: reconnected after a dropped handshake and a half [OK]" \
    bash -c "grep -q '^EVENT drop' $T/relay.out &&
    grep -q '^EVENT halfok' $T/relay.out"
check "hostile: heartbeat answered" ev "pong \[PONG\]"
check "hostile: extension [NEW] served, with the client's address" \
    ev "reply ext-1 reply:ext-1 peer=203.0.113.7:4242"
check "hostile: an IPv6 client on an IPv4 listener: the relay's address, not garbage" \
    ev "reply ext-2 reply:ext-2 peer=127.0.0.1:"
check "hostile: a data connection reset by the relay is a plain reset" \
    grep -q 'CLIENT-ERR 203.0.113.8:4343' "$T/srv.out"
check "hostile: accept() never returned a bad socket" \
    bash -c "! grep -q BADSOCK $T/srv.out"
check "hostile: the server is alive" alive "$srv"
check "hostile: its other listener serves" \
    bash -c "printf 'direct\n' | timeout 5 nc -q 2 127.0.0.1 $B 2>/dev/null |
    grep -q 'reply:direct'"
note "server: $(tr '\n' ' ' <"$T/srv.out")"

# --- the first registration fails: listen() fails, the server lives on -----
fake_relay relay2 drop,huge,challenge
read -r A1 A2 A3 B <<<"$(free_port) $(free_port) $(free_port) $(free_port)"
hostile_server srv2 "$T/relay2.port" "$A1,$A2,$A3" "$A1" "$A2" "$A3" "$B"
check "first registration dropped mid-handshake: listen() fails" \
    grep -q "LISTEN-FAIL $A1" "$T/srv2.out"
check "first registration answered with no LF: listen() fails (EPROTO)" \
    grep -q "LISTEN-FAIL $A2 EPROTO" "$T/srv2.out"
check "first registration challenged without a secret: EACCES" \
    grep -q "LISTEN-FAIL $A3 EACCES" "$T/srv2.out"
check "the shim said why" grep -q 'relayshim: cannot register' "$T/srv2.err"
check "the server is alive after three failed registrations" alive "$srv"
check "its other listener serves" \
    bash -c "printf 'direct\n' | timeout 5 nc -q 2 127.0.0.1 $B 2>/dev/null |
    grep -q 'reply:direct'"

# --- a refusal's errno is chosen by its whole reason -------------------------
# "unsupported protocol version" holds "port" and once gave EADDRINUSE.
fake_relay relay3 errversion,errauth,errport,errother
read -r E1 E2 E3 E4 <<<"$(free_port) $(free_port) $(free_port) $(free_port)"
hostile_server srv3 "$T/relay3.port" "$E1,$E2,$E3,$E4" "$E1" "$E2" "$E3" "$E4"
check "[ERR] unsupported protocol version: ECONNREFUSED" \
    grep -q "LISTEN-FAIL $E1 ECONNREFUSED" "$T/srv3.out"
check "[ERR] authentication failed: EACCES" \
    grep -q "LISTEN-FAIL $E2 EACCES" "$T/srv3.out"
check "[ERR] port N unavailable: EADDRINUSE" \
    grep -q "LISTEN-FAIL $E3 EADDRINUSE" "$T/srv3.out"
check "[ERR] of no known kind: ECONNREFUSED" \
    grep -q "LISTEN-FAIL $E4 ECONNREFUSED" "$T/srv3.out"
check "... each with the relay's reason" \
    test "$(grep -c 'relayshim: cannot register .*relay refused: ' \
    "$T/srv3.err")" = 4
kill "$srv" 2>/dev/null

# --- RELAY_TIMEOUT bounds connecting and the handshake together --------------
# A relay whose accept queue is full drops the SYN, so connect() takes
# until a retransmission (each second at first, on Linux 6.5 and later;
# 1 s, 3 s, 7 s before) finds room; the queue is drained 3 s in.  Then
# the relay stays silent.  With a
# secret the helper waits for an answer: listen() must fail RELAY_TIMEOUT
# after it started, not RELAY_TIMEOUT after the connection was made.
printf 'a secret of some length\n' >"$T/deadline.secret"
spawn "$T/slow.out" python3 -c 'import socket, sys, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(0)
filler = socket.create_connection(l.getsockname())
open(sys.argv[1] + ".tmp", "w").write("%d\n" % l.getsockname()[1])
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
while not __import__("os").path.exists(sys.argv[2]):
    time.sleep(0.01)
t0 = time.time()
time.sleep(3)
l.accept()[0].close()
c, _ = l.accept()
print("accepted after %.1f s" % (time.time() - t0), flush=True)
time.sleep(20)' "$T/slow.port" "$T/slow.go"
wait_for 10 test -s "$T/slow.port"
touch "$T/slow.go"
t0=$(date +%s%N)
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$(cat "$T/slow.port") \
    RELAY_SECRET_FILE=$T/deadline.secret RELAY_TIMEOUT=5 RELAY_FASTOPEN=0 \
    timeout 30 "$TBIN/shim_server" -m poll -l "127.0.0.1:$(free_port)" \
    >"$T/slow.srv" 2>&1
ms=$((($(date +%s%N) - t0) / 1000000))
after=$(sed -n 's/^accepted after \([0-9]*\)\..*/\1/p' "$T/slow.out")
note "deadline: listen() failed after $ms ms; the relay $(cat "$T/slow.out")"
check "deadline: listen() fails with ETIMEDOUT" \
    grep -q '^shim_server: listen: Connection timed out' "$T/slow.srv"
if [ -n "$after" ] && [ "$after" -ge 3 ]; then
	check "deadline: within RELAY_TIMEOUT=5 s of the start, though connect() took ${after}+ s" \
	    test "$ms" -lt 6500
else
	fail "deadline: connect() was held back by the full accept queue"
fi

# --- errno on pass-through paths ---------------------------------------------
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=1 RELAY_PORTS=9 \
    "$TBIN/errno_check" >"$T/errno.out" 2>&1
rc=$?
sed 's/^/  # /' "$T/errno.out" | grep -v '# ok'
check "errno: kept on success and real on failure, every hook ($(grep -c '^ok' "$T/errno.out") checks)" \
    test $rc = 0
check "errno: the checks ran" count_ge 25 '^ok' "$T/errno.out"

# --- fork from a thread while another is in accept, signals flying -----------
start_relayd || { fail "relayd starts"; finish; }
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
    RELAY_ADDR_FILE=$T/fa.addr timeout 60 "$TBIN/fork_accept" 50 \
    >"$T/fa.out" 2>&1 &
fa=$!
track_pid "$fa"
wait_for 15 test -s "$T/fa.addr"
addr=$(cat "$T/fa.addr" 2>/dev/null)
check "fork: server registered" test -n "$addr"
timeout 40 python3 "$TOP/tests/peers/relay_tool.py" seq 127.0.0.1 \
    "${addr##*:}" -n 50 -par 4 >/dev/null 2>&1
wait "$fa"
rc=$?
note "fork: $(tail -1 "$T/fa.out")"
check "fork: 200 forks from a thread, no child deadlocked, 50 clients served" \
    test $rc = 0
check "fork: accept() was interrupted by signals and carried on" \
    grep -q 'eintr=[1-9]' "$T/fa.out"
finish
