#!/bin/bash
# ext_heartbeat.sh - heartbeats find a dead control connection on both
# sides within a bounded, configurable time: a server side that went
# silent loses its registration (and its ports) on relayd; a relay that
# stopped answering makes the shim's helper register again.
. "$(dirname "$0")/lib.sh"

start_relayd || exit 1

# 1. A server side that asks for 1 s heartbeats, then never answers.
python3 - "$RELAYD_PORT" "$T/silent.port" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"[HELLO] v=1 ka=1\n")
line = b""
while not line.endswith(b"\n"):
    line += s.recv(1)
port = [t.split("=")[1] for t in line.decode().split() if t.startswith("port=")][0]
open(sys.argv[2], "w").write("%s %.3f\n" % (port, time.time()))
time.sleep(30)          # reads nothing, answers no [PING]
PY
track_pid "$!"
wait_for 10 test -s "$T/silent.port"
read -r sp t0 <"$T/silent.port"
check "silent server side: registered with ka=1" listening "$sp"
check "relayd drops it: heartbeat timed out" \
    wait_for 10 grep -q 'heartbeat timed out' "$RELAYD_LOG"
dt=$(python3 -c "import sys, time; print('%.2f' % (time.time() - float(sys.argv[1])))" "$t0")
note "dropped ${dt}s after it registered"
# within(LO, HI): $dt lies in [LO, HI] seconds.
within() { python3 -c "import sys; sys.exit(not $1 <= float(sys.argv[1]) <= $2)" "$dt"; }
check "after 3 silent intervals of 1 s (2.5 to 5 s after registering)" \
    within 2.5 5
check "its public port is released at once" \
    wait_for 3 bash -c "! ss -Hltn 'sport = :$sp' | grep -q LISTEN"

# 2. The relay stops answering (SIGSTOP): the helper notices.
mkdir -p "$T/www" && echo heartbeat-page >"$T/www/index.html"
port=$(free_port)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_HEARTBEAT=1 RELAY_TIMEOUT=2 \
    RELAY_ADDR_FILE=$T/addr exec python3 -m http.server --bind 127.0.0.1 \
    "$port") >"$T/py.log" 2>&1 &
track_pid "$!"
wait_for 10 test -s "$T/addr"
addr=$(cat "$T/addr")
check "served before the relay stalls" \
    bash -c "curl -sS -m 5 http://$addr/ | grep -q heartbeat-page"
kill -STOP "$RELAYD_PID"
t0=$(date +%s.%N)
check "the helper detects the stalled relay" \
    wait_for 10 grep -q 'heartbeat timed out' "$T/py.log"
dt=$(python3 -c "import sys, time; print('%.2f' % (time.time() - float(sys.argv[1])))" "$t0")
note "detected ${dt}s after the relay stalled"
# The last heartbeat may have come up to 1 s before the stall.
check "after 3 silent intervals of 1 s (1.5 to 5 s after the stall)" \
    within 1.5 5
kill -CONT "$RELAYD_PID"
check "served again on the same public port after the relay resumes" \
    wait_for 20 bash -c "curl -sS -m 2 http://$addr/ | grep -q heartbeat-page"
finish
