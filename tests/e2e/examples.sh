#!/bin/bash
# examples.sh - the example servers (examples/*_server.c) against relayd,
# with real clients: python for the echo server, curl for the web server.
. "$(dirname "$0")/lib.sh"

EX=$TOP/$BUILD/examples
for b in echo_server web_server; do
	if [ ! -x "$EX/$b" ]; then
		fail "$b is built (run make tests-build)"
		finish
	fi
done

start_relayd || { fail "relayd starts"; finish; }

# --- echo server ---------------------------------------------------------
spawn "$T/echo.log" "$EX/echo_server" -host 127.0.0.1 -port "$RELAYD_PORT"
ECHO_PID=$SPAWNED
check "echo: prints its listener" \
    wait_for 5 grep -Eq '^Listening on: 127\.0\.0\.1:[0-9]+$' "$T/echo.log"
check "echo: connects to the relay" \
    wait_for 5 grep -q "^Connected to relayServer 127.0.0.1:$RELAYD_PORT\$" \
    "$T/echo.log"
EPUB=$(nth_public_port 1) || { fail "echo: relay serves it"; finish; }
note "echo server public port $EPUB"

# echo_client PORT NBYTES CONNS: CONNS clients at once, each sends NBYTES
# of random data, half-closes, and must get exactly the same bytes back.
echo_client() { python3 "$TOP/tests/fixtures/echo_check.py" "$@"; }

check "echo: one line comes back" \
    test "$(printf 'hello relay\n' | timeout 10 nc -N 127.0.0.1 "$EPUB")" = \
    "hello relay"
check "echo: 1 MiB comes back intact (half-close)" echo_client "$EPUB" 1048576 1
check "echo: 8 clients at once, 64 KiB each" echo_client "$EPUB" 65536 8
check "echo: logs each bridged client" \
    wait_for 5 test "$(grep -c '^\[RS\] New connection from client' \
    "$T/echo.log")" -ge 10
check "echo: logs the local echo" grep -q '^Server Wrote: ' "$T/echo.log"

# --- web server ----------------------------------------------------------
spawn "$T/web.log" "$EX/web_server" --host=127.0.0.1 -port="$RELAYD_PORT"
WEB_PID=$SPAWNED
check "web: connects to the relay" \
    wait_for 5 grep -q '^Connected to relayServer' "$T/web.log"
WPUB=$(nth_public_port 2) || { fail "web: relay serves it"; finish; }
note "web server public port $WPUB"

body=$(curl -sS --max-time 10 "http://127.0.0.1:$WPUB/relay-test")
check "web: curl /relay-test" test "$body" = "Hi there, I love relay-test!"
[ "$body" = "Hi there, I love relay-test!" ] || note "got: $body"
head=$(curl -sSi --max-time 10 "http://127.0.0.1:$WPUB/x" | tr -d '\r')
check "web: answers HTTP/1.1 200 OK" \
    test "$(echo "$head" | head -1)" = "HTTP/1.1 200 OK"
# "Hi there, I love x!" is 19 bytes.
check "web: sends the body's length" grep -qx 'Content-Length: 19' <<<"$head"
body=$(curl -sS --max-time 10 "http://127.0.0.1:$WPUB/caf%C3%A9?q=1")
check "web: path decoded, query dropped (as Go's r.URL.Path)" \
    test "$body" = "Hi there, I love café!"
codes=$(for i in 1 2 3 4 5 6 7 8 9 10; do
	curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 \
	    "http://127.0.0.1:$WPUB/n$i" &
done; wait)
check "web: 10 concurrent requests all answered" \
    test "$(echo "$codes" | grep -c '^200$')" = 10

# The echo server's registration is still independent of the web one.
check "echo: still echoes after the web traffic" echo_client "$EPUB" 4096 2

# --- flags and the end of the control connection -------------------------
check "examples: -h prints usage and exits 0" \
    sh -c "'$EX/echo_server' -h | grep -q -- '-port PORT'"
check "examples: a bad flag exits non-zero" \
    sh -c "! '$EX/web_server' -bogus 1 2>/dev/null"
check "examples: no relay -> exits non-zero" \
    sh -c "! timeout 5 '$EX/echo_server' -host 127.0.0.1 -port $(free_port) \
    >/dev/null 2>&1"

kill "$RELAYD_PID"
check "echo: reports the control connection's EOF" \
    wait_for 5 grep -q '^\[RS\] Error reading from connection' "$T/echo.log"
check "echo: exits when the relay goes away" wait_for 5 sh -c "! kill -0 $ECHO_PID"
check "web: exits when the relay goes away" wait_for 5 sh -c "! kill -0 $WEB_PID"

if [ "$NFAIL" != 0 ]; then
	note "relayd log:"; sed 's/^/  # /' "$RELAYD_LOG" | tail -20
	note "echo log:"; sed 's/^/  # /' "$T/echo.log" | tail -20
	note "web log:"; sed 's/^/  # /' "$T/web.log" | tail -20
fi
finish
