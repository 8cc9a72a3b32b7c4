#!/bin/bash
# relayd_idle.sh - -idle-timeout closes a session that moves no bytes,
# and only such a session.
. "$(dirname "$0")/lib.sh"

start_relayd -idle-timeout 1 || exit 1
spawn "$T/helper.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" -echo
pub=$(nth_public_port 1) || { fail "orig_helper registered"; finish; }

out=$(timeout 20 python3 - "$pub" <<'PY'
import socket, sys, threading, time
port = int(sys.argv[1])

def quiet():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    t0 = time.time()
    s.settimeout(10)
    end = s.recv(1)          # relayd closes it: b""
    return end, time.time() - t0

def chatty(res):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(5)
    ok = True
    for _ in range(12):      # 3.6 s, a byte every 0.3 s
        s.sendall(b"y")
        ok = ok and s.recv(1) == b"y"
        time.sleep(0.3)
    res.append(ok)

res = []
t = threading.Thread(target=chatty, args=(res,))
t.start()
end, dt = quiet()
t.join()
print("quiet-closed=%s after %.1fs" % (end == b"", dt))
print("chatty-served=%s" % (res == [True]))
PY
)
note "$out"
check "a silent session is closed" grep -q 'quiet-closed=True' <<<"$out"
dt=$(sed -n 's/.*after \([0-9.]*\)s/\1/p' <<<"$out")
check "within about one interval (closed after ${dt}s, timeout 1s)" \
    awk -v d="$dt" 'BEGIN { exit !(d >= 0.9 && d < 3.0) }'
check "a session that keeps talking is left alone" \
    grep -q 'chatty-served=True' <<<"$out"
check "the close is logged with the session id" \
    grep -Eq 'session [0-9]+: idle for 1s; closing it' "$RELAYD_LOG"
finish
