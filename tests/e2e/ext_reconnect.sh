#!/bin/bash
# ext_reconnect.sh - relayd killed under a running server and started
# again: the server is reachable again on the same public port within
# seconds, without a restart; a session in flight on the dead relay ends.
. "$(dirname "$0")/lib.sh"

ctl=$(free_port)
start_relayd -port "$ctl" || exit 1
mkdir -p "$T/www" && echo reconnect-page >"$T/www/index.html"
port=$(free_port)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$ctl RELAY_ADDR_FILE=$T/addr \
    exec python3 -m http.server --bind 127.0.0.1 "$port") >"$T/py.log" 2>&1 &
srv=$!
track_pid "$srv"
wait_for 10 test -s "$T/addr"
addr=$(cat "$T/addr")
check "served before the restart" \
    bash -c "curl -sS -m 5 http://$addr/ | grep -q reconnect-page"

# A session in flight: a client that holds a connection open.
python3 - "$addr" "$T/inflight.ready" >"$T/inflight.out" 2>&1 <<'PY' &
import socket, sys, time
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)), timeout=30)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")   # incomplete request
open(sys.argv[2], "w").close()
s.settimeout(30)
try:
    b = s.recv(100)
    print("ended: %r" % b)
except OSError as e:
    print("ended: %s" % e)
PY
inflight=$!
track_pid "$inflight"
wait_for 10 test -e "$T/inflight.ready"
# The session is paired once relayd logs it.
wait_for 10 grep -q 'Server connected' "$RELAYD_LOG"
sleep 0.2

kill -9 "$RELAYD_PID"
wait_for 10 bash -c "! kill -0 $inflight"
check "the in-flight session ended when the relay died" \
    grep -q '^ended' "$T/inflight.out"
note "in-flight client: $(cat "$T/inflight.out")"
check "the server survives the relay's death" kill -0 "$srv"

start_relayd -port "$ctl" || exit 1
check "reachable again on the same public port" \
    wait_for 15 bash -c "curl -sS -m 2 http://$addr/ | grep -q reconnect-page"
check "relayd gave the same public port back" \
    grep -q "Serving relay requests on port ${addr##*:}" "$RELAYD_LOG"
check "the helper logged the loss and the new registration" \
    grep -q 'registered again' "$T/py.log"

# The old public port taken by someone else when the relay comes back:
# the helper asks for it again while its old registration might still
# hold it (three heartbeats, 1 s each here), then takes any port, since
# nobody asked for that one (RELAY_PUBLIC_PORT unset).
ctl2=$(free_port)
start_relayd -port "$ctl2" || exit 1
port=$(free_port)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$ctl2 RELAY_ADDR_FILE=$T/addr2 RELAY_HEARTBEAT=1 \
    exec python3 -m http.server --bind 127.0.0.1 "$port") >"$T/py2.log" 2>&1 &
track_pid "$!"
wait_for 10 test -s "$T/addr2"
old=$(sed 's/.*://' "$T/addr2")
kill -9 "$RELAYD_PID"
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
time.sleep(60)' "$old" &
track_pid "$!"
wait_for 5 listening "$old"
start_relayd -port "$ctl2" || exit 1
check "old port taken: the relay refuses it at first" \
    wait_for 10 grep -q "port $old unavailable" "$T/py2.log"
check "old port taken: after the heartbeats' grace the helper asks for any" \
    wait_for 20 grep -q "public port $old still taken after" "$T/py2.log"
wait_for 5 bash -c "grep -A5 'still taken' '$T/py2.log' | grep -q 'registered again'"
new=$(sed -n 's/.*registered again, public port \([0-9]*\).*/\1/p' \
    "$T/py2.log" | tail -1)
note "old port $old, new port ${new:-none}"
check "old port taken: registered again on another port" \
    test -n "$new" -a "$new" != "$old"
check "old port taken: served there" \
    bash -c "curl -sS -m 5 http://127.0.0.1:$new/ | grep -q reconnect-page"

# A relay that closes every new control connection at once (it is full):
# a server side of the original protocol counts the bare connect as a
# registration, so it must still back off, not retry five times a second.
start_relayd -max-regs 1 || exit 1
spawn "$T/first.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" -echo
nth_public_port 1 >/dev/null || fail "the first registration"
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_EXTENSIONS=0 \
    exec python3 -m http.server --bind 127.0.0.1 "$(free_port)") \
    >"$T/full.log" 2>&1 &
track_pid "$!"
sleep 4
n=$(grep -c 'registration limit reached' "$RELAYD_LOG")
note "refused connection attempts in 4 s: $n"
check "a relay that is full: retried with a growing pause (attempts in 4 s: $n)" \
    test "$n" -ge 2 -a "$n" -le 7
finish
