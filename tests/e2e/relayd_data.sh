#!/bin/bash
# relayd_data.sh - payload through relayd with the original-style helper
# (orig_helper): echo, 8 MiB each way, half-close both ways, back-to-back
# and 200 concurrent clients.  Also checks that orig_helper itself keeps
# the original helper's quirks, since the other tests lean on them.
. "$(dirname "$0")/lib.sh"

# --- orig_helper against a fake relay: is it faithful? -------------------
fake=$T/fake.py
cat >"$fake" <<'PY'
import socket, sys, time
# A fake relay: one control peer, then the data connections it makes.
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(8)
ds = socket.socket(); ds.bind(("127.0.0.1", 0)); ds.listen(8)
dport = ds.getsockname()[1]
print(ls.getsockname()[1], flush=True)
ctl, _ = ls.accept()
ctl.settimeout(1)
try:
    early = ctl.recv(100)
except socket.timeout:
    early = b""
# Two lines in one write: the original helper acts on the first only.
ctl.sendall(b"[NEW]%d\n[NEW]%d\n" % (dport, dport))
ds.settimeout(1.5)
n = 0
try:
    while True:
        ds.accept()
        n += 1
except socket.timeout:
    pass
# Then one line per write, 300 ms apart, with CR LF: both act.
for _ in range(2):
    ctl.sendall(b"[NEW]%d\r\n" % dport)
    time.sleep(0.3)
m = 0
try:
    while True:
        ds.accept()
        m += 1
except socket.timeout:
    pass
ctl.sendall(b"[BOGUS]\n")
time.sleep(0.3)
ctl.sendall(b"[NEW]%d\n" % dport)
k = 0
try:
    while True:
        ds.accept()
        k += 1
except socket.timeout:
    pass
print("sent-before=%r pipelined=%d separate=%d after-bogus=%d"
      % (early, n, m, k), flush=True)
PY
python3 "$fake" >"$T/fake.out" 2>&1 &
fpid=$!
track_pid "$fpid"
wait_for 5 test -s "$T/fake.out"
fport=$(head -1 "$T/fake.out")
spawn "$T/fh.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$fport" \
    -to 127.0.0.1:1
wait "$fpid"
res=$(tail -1 "$T/fake.out")
note "fake relay: $res"
check "peer: orig_helper sends nothing on control" \
    grep -q "sent-before=b''" "$T/fake.out"
check "peer: two [NEW] in one read give one data connection (original bug)" \
    grep -q "pipelined=1 " "$T/fake.out"
check "peer: [NEW] lines in separate reads each give one (CR LF ok)" \
    grep -q "separate=2" "$T/fake.out"
check "peer: unknown message stops processing" \
    wait_for 3 grep -q '^\[RS\] Error. Msg not understood \[BOGUS\]$' "$T/fh.log"
check "peer: ...for good: a later [NEW] is not acted on" \
    grep -q "after-bogus=0" "$T/fake.out"
check "peer: local dial failure reported" \
    grep -q '^\[RS\] Error creating client. Skipping$' "$T/fh.log"

# --- through relayd --------------------------------------------------------
start_relayd || { fail "relayd starts"; finish; }
spawn "$T/helper.log" "$TBIN/orig_helper" -host 127.0.0.1 \
    -port "$RELAYD_PORT" -echo
check "data: helper prints its echo address" \
    wait_for 5 grep -q '^Listening on: 127.0.0.1:[0-9]*$' "$T/helper.log"
check "data: helper connects" \
    wait_for 5 grep -q '^Connected to relayServer 127.0.0.1:' "$T/helper.log"
cport=$(nth_public_port 1)
check "data: public port logged" test -n "$cport"

tool "data: echo round trip" echo 127.0.0.1 "$cport"
check "data: helper logged the session" \
    grep -q '^\[RS\] New connection from client 127.0.0.1:[0-9]*$' \
    "$T/helper.log"
check "data: relayd logged Client connected" \
    grep -q '^[0-9/]* [0-9:]* Client connected: 127.0.0.1:[0-9]*$' "$RELAYD_LOG"
check "data: relayd logged Server connected" \
    grep -q '^[0-9/]* [0-9:]* Server connected: 127.0.0.1:[0-9]*$' "$RELAYD_LOG"
check "data: relayd logged both directions ending cleanly" \
    wait_for 5 sh -c "grep -q 'Client disconnected <nil>\$' '$RELAYD_LOG' &&
	grep -q 'server disconnected <nil>\$' '$RELAYD_LOG'"

tool "data: 8 MiB each way, sha256 equal" \
    echo 127.0.0.1 "$cport" -bytes 8388608 -seed 7
tool "data: back to back, first" echo 127.0.0.1 "$cport" -bytes 1000 -seed 1
tool "data: back to back, second" echo 127.0.0.1 "$cport" -bytes 1001 -seed 2
tool "data: 200 concurrent clients served intact" \
    many 127.0.0.1 "$cport" -n 200 -bytes 2048
check "data: relayd alive after load" alive "$RELAYD_PID"

# --- half-close, both ways -------------------------------------------------
spawn "$T/late.log" $RELAY_TOOL srv-late-reply "$T/late.port"
wait_for 5 test -s "$T/late.port"
spawn "$T/h2.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" \
    -to "127.0.0.1:$(cat "$T/late.port")"
cport2=$(nth_public_port 2)
got=$(timeout 20 python3 - "$cport2" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
c.sendall(b"request")
c.shutdown(socket.SHUT_WR)
buf = b""
while True:
    b = c.recv(4096)
    if not b:
        break
    buf += b
print(buf.decode())
PY
)
check "data: client shuts write first, still gets the reply ($got)" \
    test "$got" = "reply-after-client-FIN request"

spawn "$T/shut.log" $RELAY_TOOL srv-shut-first "$T/shut.port" "$T/shut.got"
wait_for 5 test -s "$T/shut.port"
spawn "$T/h3.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" \
    -to "127.0.0.1:$(cat "$T/shut.port")"
cport3=$(nth_public_port 3)
got=$(timeout 20 python3 - "$cport3" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
buf = b""
while True:
    b = c.recv(4096)
    if not b:
        break
    buf += b
# The server has shut its side; this side may still talk.
c.sendall(b"client-after-server-FIN")
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(buf.decode().strip())
PY
)
check "data: server shuts first, client reads the greeting and EOF" \
    test "$got" = greeting
check "data: ...and the client can still send" \
    wait_for 5 grep -q '^client-after-server-FIN$' "$T/shut.got"

# The server answers 3 MiB, waits until its client's side has
# acknowledged every byte, and closes with the client's upload unread:
# its kernel resets the data connection.  Direct, the client gets the
# whole answer; relayd must not reset the client's side, with the tail
# of the answer still unsent, the moment the session ends.
before=$(grep -c 'Serving relay requests on port' "$RELAYD_LOG")
got=$(timeout 60 python3 - "$RELAYD_PORT" "$RELAYD_LOG" "$before" <<'PY'
import array, fcntl, re, socket, sys, termios, threading, time
ctl_port, log, before = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
RESP = 3 << 20
ctl = socket.create_connection(("127.0.0.1", ctl_port), timeout=10)
for _ in range(200):
    ports = re.findall(r"Serving relay requests on port (\d+)", open(log).read())
    if len(ports) > before:
        break
    time.sleep(0.05)
c = socket.socket()
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
c.connect(("127.0.0.1", int(ports[-1])))
line = b""
while not line.endswith(b"\n"):
    line += ctl.recv(1)
d = socket.create_connection(("127.0.0.1", int(line[5:-1])), timeout=10)
def upload():
    try:
        while True:
            c.send(b"u" * 65536)
    except OSError:
        pass
threading.Thread(target=upload, daemon=True).start()
got = [0]
def reader():
    try:
        while True:
            b = c.recv(16384)
            if not b:
                break
            got[0] += len(b)
            time.sleep(0.002)
    except OSError:
        pass
d.recv(65536)
rt = threading.Thread(target=reader)
rt.start()
d.sendall(b"r" * RESP)
for _ in range(3000):
    q = array.array("i", [0])
    fcntl.ioctl(d, termios.TIOCOUTQ, q)
    if q[0] == 0:
        break
    time.sleep(0.01)
d.close()
rt.join(40)
print("%d of %d" % (got[0], RESP))
PY
)
note "reset with the upload unread: the client got ${got:-nothing}"
check "data: a server's answer survives its reset of the client's upload" \
    test "$got" = "3145728 of 3145728"

check "data: relayd alive at the end" alive "$RELAYD_PID"

# The helper notices the relay going away, as the original did.
kill "$RELAYD_PID"
check "data: helper reports EOF when relayd stops" \
    wait_for 5 grep -q '^\[RS\] Error reading from connection EOF$' \
    "$T/helper.log"

# A session whose client socket lingers (the session is over, the client
# has not read its answer yet) still counts under -max-clients: lingering
# sockets are not a way around the limit.  With -max-clients 1, client A's
# server answers 8 KiB, which A does not read, and goes; A's next bytes
# meet the reset; A's socket lingers.  B must be refused meanwhile, and C
# served once A has read everything.
start_relayd -v -max-clients 1 || fail "relayd -max-clients 1 starts"
got=$(timeout 60 python3 - "$RELAYD_PORT" "$RELAYD_LOG" <<'PY'
import re, socket, sys, time
ctl_port, log = int(sys.argv[1]), sys.argv[2]
ctl = socket.create_connection(("127.0.0.1", ctl_port), timeout=10)
for _ in range(200):
    ports = re.findall(r"Serving relay requests on port (\d+)", open(log).read())
    if ports:
        break
    time.sleep(0.05)
pub = int(ports[-1])
def new_line():
    line = b""
    while not line.endswith(b"\n"):
        b = ctl.recv(1)
        if not b:
            return None
        line += b
    return line
a = socket.socket()
a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
a.connect(("127.0.0.1", pub))
a.sendall(b"x")
d = socket.create_connection(("127.0.0.1", int(new_line()[5:-1])), timeout=10)
d.recv(1)
d.sendall(b"r" * 8192)
d.close()
def logged(what, secs=5):
    end = time.time() + secs
    while what not in open(log).read() and time.time() < end:
        time.sleep(0.05)
logged("server to client ended")
try:
    # The reset of the gone server ends the session: A lingers.
    for _ in range(100):
        if "client socket: lingers" in open(log).read():
            break
        a.send(b"y")
        time.sleep(0.05)
except OSError:
    pass
b = socket.create_connection(("127.0.0.1", pub), timeout=10)
b.settimeout(3)
try:
    b_got = "refused" if b.recv(1) == b"" else "answered"
except socket.timeout:
    b_got = "held"
except OSError:
    b_got = "refused"
b.close()
n = 0
a.settimeout(10)
while True:
    buf = a.recv(65536)
    if not buf:
        break
    n += len(buf)
logged("client socket: closed after lingering")
c = socket.create_connection(("127.0.0.1", pub), timeout=10)
c.sendall(b"c")
ctl.settimeout(5)
try:
    c_got = "announced" if (new_line() or b"").startswith(b"[NEW]") else "not announced"
except OSError:
    c_got = "not announced"
print("A got %d, B %s, C %s" % (n, b_got, c_got))
PY
)
note "max-clients 1 with a lingering session: ${got:-nothing}"
check "data: a lingering session counts under -max-clients (B refused, C served after)" \
    test "$got" = "A got 8192, B refused, C announced"
finish
