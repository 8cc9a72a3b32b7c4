#!/bin/bash
# ext_compat.sh - both directions of compatibility: the shim against a
# relay that speaks only the original protocol, the shim with extensions
# turned off against relayd, and many clients at once through the shim.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/www" && echo compat-page >"$T/www/index.html"

# An original-protocol relay (tests/peers/orig_relay.py).
python3 "$TOP/tests/peers/orig_relay.py" "$T/orig.port" >"$T/orig.out" \
    2>"$T/orig.log" &
track_pid "$!"
wait_for 10 test -s "$T/orig.port"
oport=$(cat "$T/orig.port")
port=$(free_port)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$oport \
    exec python3 -m http.server --bind 127.0.0.1 "$port") >"$T/py1.log" 2>&1 &
track_pid "$!"
wait_for 10 grep -q 'Serving relay requests on port' "$T/orig.log"
pub=$(sed -n 's/.*Serving relay requests on port \([0-9]*\).*/\1/p' "$T/orig.log" | head -1)
check "shim registers with an original relay" test -n "$pub"
check "shim says the relay speaks only the original protocol" \
    wait_for 10 grep -q 'speaks only the original protocol' "$T/py1.log"
ok=0
for i in 1 2 3 4 5; do
	curl -sS -m 5 "http://127.0.0.1:$pub/" | grep -q compat-page && ok=$((ok + 1))
done
check "5 requests through an original relay" test "$ok" = 5

# With a secret there is no falling back: an original relay that
# announces a client before any [OK] fails the registration.
printf 'a-secret-of-32-bytes-0123456789\n' >"$T/secret"
before=$(grep -c 'Serving relay requests on port' "$T/orig.log")
spawn "$T/sec.out" env LD_PRELOAD="$SHIM_PRELOAD" RELAY_HOST=127.0.0.1 \
    RELAY_PORT="$oport" RELAY_SECRET_FILE="$T/secret" RELAY_TIMEOUT=8 \
    "$TBIN/shim_server" -m poll -l "127.0.0.1:$(free_port)"
sec=$SPAWNED
if wait_for 5 count_ge $((before + 1)) 'Serving relay requests on port' "$T/orig.log"; then
	spub=$(sed -n 's/.*Serving relay requests on port \([0-9]*\).*/\1/p' \
	    "$T/orig.log" | tail -1)
	python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
time.sleep(3)' "$spub" &
	track_pid "$!"
	wait_for 15 gone "$sec"
	check "a secret, an original relay that announces a client: listen() fails" \
	    grep -q '^shim_server: listen: Connection timed out' "$T/sec.out"
	check "... saying the relay announced a client instead" \
	    grep -q 'announced a client instead' "$T/sec.out"
else
	fail "a secret, an original relay: the helper connects"
fi

# relayd, extensions off: the original protocol only.
start_relayd || exit 1
port=$(free_port)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_EXTENSIONS=0 \
    exec python3 -m http.server --bind 127.0.0.1 "$port") >"$T/py2.log" 2>&1 &
track_pid "$!"
pub=$(nth_public_port 1)
check "RELAY_EXTENSIONS=0: registered" test -n "$pub"
check "RELAY_EXTENSIONS=0: no extension negotiated" \
    bash -c "! grep -q 'extensions negotiated' '$RELAYD_LOG'"
check "RELAY_EXTENSIONS=0: served" \
    bash -c "curl -sS -m 5 http://127.0.0.1:$pub/ | grep -q compat-page"

# Extensions on: 40 clients at once are all served.
start_relayd || exit 1
port=$(free_port)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_ADDR_FILE=$T/addr3 \
    exec python3 -m http.server --bind 127.0.0.1 "$port") >"$T/py3.log" 2>&1 &
track_pid "$!"
wait_for 10 test -s "$T/addr3"
addr=$(cat "$T/addr3")
for i in $(seq 1 40); do
	curl -sS -m 20 "http://$addr/" -o "$T/c.$i" &
done
wait_for 30 bash -c "[ \$(cat $T/c.* 2>/dev/null | grep -c compat-page) -ge 40 ]"
check "40 concurrent clients all served" \
    test "$(cat "$T"/c.* 2>/dev/null | grep -c compat-page)" = 40
finish
