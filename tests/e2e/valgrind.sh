#!/bin/bash
# valgrind.sh - relayd's end-to-end traffic under valgrind (memcheck, full
# leak check): echo, 8 MiB both ways, half-close, many clients, a control
# connection closed under queued clients, stray connections, a shim
# registration; then SIGTERM must end it with status 0, not valgrind's 99,
# and valgrind must have said nothing.  Also relayd -user nobody: the
# privilege drop after binding, and service after it.
. "$(dirname "$0")/lib.sh"

# --- -user nobody ----------------------------------------------------------------
if [ "$(id -u)" = 0 ] && getent passwd nobody >/dev/null; then
	start_relayd -user nobody || fail "relayd -user nobody starts"
	uid=$(getent passwd nobody | cut -d: -f3)
	check "-user nobody: every uid is nobody's ($uid)" \
	    grep -Eq "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid\s*$" \
	    "/proc/$RELAYD_PID/status"
	check "-user nobody: no supplementary groups but nobody's" \
	    bash -c "! grep -Eq '^Groups:.*\b0\b' /proc/$RELAYD_PID/status"
	spawn "$T/nobody.log" "$TBIN/orig_helper" -host 127.0.0.1 \
	    -port "$RELAYD_PORT" -echo
	cport=$(nth_public_port 1)
	check "-user nobody: still opens ports and serves" \
	    timeout 20 $RELAY_TOOL echo 127.0.0.1 "$cport" -bytes 1000000
	kill "$RELAYD_PID"
else
	echo "SKIP: -user nobody: not root, or no user nobody"
fi

if ! command -v valgrind >/dev/null; then
	echo "SKIP: valgrind: not installed"
	finish
fi
if [ "$SANITIZE" = 1 ]; then
	echo "SKIP: valgrind: not with a sanitizer build"
	finish
fi

RELAYD_WRAP="valgrind -q --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect --track-fds=no" \
    start_relayd -threads 2 -hello-timeout 2 -data-timeout 3 ||
    { fail "relayd starts under valgrind"; finish; }
vg=$RELAYD_PID
check "valgrind: relayd runs under memcheck" \
    bash -c "readlink /proc/$vg/exe | grep -q memcheck"
spawn "$T/h.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" -echo
cport=$(nth_public_port 1)
check "valgrind: echo" timeout 60 $RELAY_TOOL echo 127.0.0.1 "$cport"
check "valgrind: 8 MiB both ways, half-closed" \
    timeout 120 $RELAY_TOOL echo 127.0.0.1 "$cport" -bytes $((8 << 20))
check "valgrind: 20 clients at once" \
    timeout 120 $RELAY_TOOL many 127.0.0.1 "$cport" -n 20 -bytes 50000

# A server that shuts its side first (half-close the other way).
spawn "$T/shut.log" $RELAY_TOOL srv-shut-first "$T/shut.port" "$T/shut.got"
wait_for 10 test -s "$T/shut.port"
spawn "$T/h2.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" \
    -to "127.0.0.1:$(cat "$T/shut.port")"
sport2=$(nth_public_port 2)
out=$(timeout 30 python3 - "$sport2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
got = b""
while not got.endswith(b"\n"):
    b = s.recv(100)
    if not b:
        break
    got += b
eof = s.recv(100) == b""
s.sendall(b"after-server-shut\n")
s.shutdown(socket.SHUT_WR)
print("greeting=%r eof=%s" % (got, eof))
s.settimeout(20)
print("end=%r" % s.recv(100))
PY
)
note "$out"
check "valgrind: server half-closes first, the client still sends" \
    wait_for 10 grep -q after-server-shut "$T/shut.got"

# Stray connections on every server-facing port, nothing waiting.
for p in $(ss -Hltnp | grep "pid=$vg," | awk '{n = split($4, a, ":"); print a[n]}' |
    grep -vx "$RELAYD_PORT"); do
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"stray\n")
s.settimeout(5)
try:
    s.recv(10)
except OSError:
    pass' "$p" 2>/dev/null
done
check "valgrind: stray connections closed and logged" \
    wait_for 10 grep -q 'stray connection' "$RELAYD_LOG"

# A registration whose control connection closes with clients queued.
n=$(($(grep -c 'Serving relay requests' "$RELAYD_LOG") + 1))
before=$(grep -c 'Client connected: ' "$RELAYD_LOG")
spawn "$T/deaf.log" $RELAY_TOOL hold 127.0.0.1 "$RELAYD_PORT" -n 1 \
    -ready "$T/deaf.ready" -until "$T/deaf.release"
wait_for 10 test -s "$T/deaf.ready"
dport=$(nth_public_port "$n")
spawn "$T/q.log" $RELAY_TOOL hold 127.0.0.1 "$dport" -n 5 -ready "$T/q.ready" \
    -until "$T/q.release"
wait_for 10 test -s "$T/q.ready"
wait_for 10 count_ge $((before + 5)) "Client connected: " "$RELAYD_LOG"
touch "$T/deaf.release"
check "valgrind: control connection closed with clients queued" \
    wait_for 10 grep -q 'closing client .*registration closed' "$RELAYD_LOG"
touch "$T/q.release"

# An extension registration (the shim), with an unauthenticated stray.
port=$(free_port)
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
    RELAY_ADDR_FILE=$T/echo.addr python3 "$TOP/tests/peers/fault_tool.py" \
    echo-server "$port" >"$T/echo.log" 2>&1 &
track_pid "$!"
wait_for 30 test -s "$T/echo.addr"
eport=$(sed 's/.*://' "$T/echo.addr" 2>/dev/null)
check "valgrind: extension registration serves" \
    timeout 60 $RELAY_TOOL many 127.0.0.1 "$eport" -n 10 -bytes 100000
python3 "$TOP/tests/peers/fault_tool.py" garbage 127.0.0.1 "$RELAYD_PORT" \
    -n 12 >/dev/null 2>&1

kill -TERM "$vg"
# Bounded: a relayd that hangs on SIGTERM fails here, not at the
# runner's timeout.
if wait_for 60 gone "$vg"; then
	wait "$vg"
	rc=$?
else
	rc=hung
fi
check "valgrind: SIGTERM ends relayd with status 0 (not 99)" test $rc = 0
check "valgrind: no report from valgrind" \
    bash -c "! grep -q '^==[0-9]*==' $RELAYD_LOG"
grep '^==[0-9]*==' "$RELAYD_LOG" | head -40 | sed 's/^/  # /'
finish
