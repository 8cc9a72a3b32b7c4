#!/bin/bash
# relayd_wire.sh - the bytes on relayd's control and data connections,
# checked with a raw control peer (no helper), against the original
# protocol: "[NEW]<sport>\n", one outstanding, junk ignored, FIFO pairing,
# plus the fixes: stray data connections, data timeouts, control close.
. "$(dirname "$0")/lib.sh"

# The Python checks share this prelude.  Each prints PASS:/FAIL: lines
# and exits non-zero if any failed.
cat >"$T/pre.py" <<'PY'
import os, re, socket, struct, subprocess, sys, time

CTL = int(os.environ["CTL"])
LOG = os.environ["LOG"]
H = "127.0.0.1"
NFAIL = 0


def ok(cond, name, detail=""):
    global NFAIL
    print("%s: %s%s" % ("PASS" if cond else "FAIL", name,
                        " (%s)" % detail if detail else ""), flush=True)
    if not cond:
        NFAIL += 1
    return cond


def serving():
    with open(LOG) as f:
        return re.findall(r"Serving relay requests on port (\d+)", f.read())


def log_has(pat, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        with open(LOG) as f:
            if re.search(pat, f.read()):
                return True
        time.sleep(0.05)
    return False


def register():
    """A raw control connection; returns (sock, cport)."""
    before = len(serving())
    s = socket.create_connection((H, CTL), timeout=5)
    end = time.time() + 5
    while len(serving()) <= before:
        if time.time() > end:
            raise TimeoutError("no 'Serving relay requests' line")
        time.sleep(0.05)
    return s, int(serving()[before])


def dial(port, timeout=5):
    s = socket.create_connection((H, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def quiet(s, secs):
    """Bytes that arrive on s within secs (b'' if none)."""
    s.settimeout(secs)
    try:
        return s.recv(4096)
    except socket.timeout:
        return b""
    finally:
        s.settimeout(5)


def read_line(s, timeout=5):
    s.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        buf += b
    return buf


def read_n(s, n, timeout=5):
    s.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            break
        buf += b
    return buf


def closed(s, timeout=5):
    """True once the peer closed s (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def listening(port):
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port],
                         capture_output=True, text=True).stdout
    return "LISTEN" in out


def new_port(line):
    m = re.fullmatch(rb"\[NEW\](\d+)\n", line)
    return int(m.group(1)) if m else None


def run(fn):
    try:
        fn()
    except Exception as e:
        ok(False, "%s raised %r" % (fn.__name__, e))
    sys.exit(1 if NFAIL else 0)
PY

# pycheck NAME: run the Python check on stdin against the current relayd.
pycheck() {
	local name=$1
	{ cat "$T/pre.py"; cat; } >"$T/$name.py"
	CTL=$RELAYD_PORT LOG=$RELAYD_LOG timeout 60 python3 "$T/$name.py" \
	    >"$T/$name.out" 2>&1
	local rc=$?
	cat "$T/$name.out"
	if [ $rc != 0 ]; then
		NFAIL=$((NFAIL + 1))
		grep -q "^FAIL:" "$T/$name.out" ||
		    echo "FAIL: wire: $name exited with $rc"
	fi
}

start_relayd || { fail "relayd starts"; finish; }

pycheck notify <<'PY'
def notify():
    ctl, cport = register()
    ok(quiet(ctl, 0.5) == b"", "wire: nothing sent before a client arrives")
    c = dial(cport)
    line = read_line(ctl)
    sport = new_port(line)
    ok(sport is not None, "wire: control gets exactly [NEW]<port>\\n",
       repr(line))
    ok(sport is not None and sport != cport,
       "wire: [NEW] carries the server port, not the public one",
       "sport %s cport %d" % (sport, cport))
    ok(sport is not None and listening(sport),
       "wire: the announced port is listening")
    ok(re.fullmatch(rb"\[NEW\][1-9][0-9]*\n", line) is not None,
       "wire: port in plain decimal, no padding, no CR")
    ok(quiet(ctl, 0.3) == b"", "wire: nothing after the [NEW] line")
    d = dial(sport)
    c.sendall(b"ping")
    ok(read_n(d, 4) == b"ping", "wire: raw client bytes, no preamble")
    d.sendall(b"pong")
    ok(read_n(c, 4) == b"pong", "wire: raw server bytes, no preamble")
    for s in (c, d, ctl):
        s.close()
run(notify)
PY

pycheck one_outstanding <<'PY'
def one_outstanding():
    ctl, cport = register()
    a = dial(cport)
    a.sendall(b"from-A")
    first = read_line(ctl)
    b = dial(cport)
    b.sendall(b"from-B")
    sport = new_port(first)
    ok(sport is not None, "wire: first client announced", repr(first))
    ok(quiet(ctl, 0.5) == b"",
       "wire: second [NEW] held back while one is outstanding")
    d1 = dial(sport)
    second = read_line(ctl)
    ok(second == first,
       "wire: second [NEW] once the first data connection arrived",
       repr(second))
    d2 = dial(sport)
    ok(read_n(d1, 6) == b"from-A", "wire: first data connection gets "
       "the first client (FIFO)")
    ok(read_n(d2, 6) == b"from-B", "wire: second data connection gets "
       "the second client")
    for s in (a, b, d1, d2, ctl):
        s.close()
run(one_outstanding)
PY

pycheck junk <<'PY'
def junk():
    ctl, cport = register()
    ctl.sendall(b"GET / HTTP/1.0\r\n\r\n\x00\xff\xfe junk [NEW]1\n")
    c = dial(cport)
    line = read_line(ctl)
    ok(new_port(line) is not None,
       "wire: junk on control ignored, client announced", repr(line))
    ctl.sendall(b"more junk\n" * 100)
    d = dial(new_port(line))
    c2 = dial(cport)
    line2 = read_line(ctl)
    ok(line2 == line, "wire: notifications continue after more junk",
       repr(line2))
    for s in (c, c2, d, ctl):
        s.close()
run(junk)
PY

pycheck early_bytes <<'PY'
def early_bytes():
    ctl, cport = register()
    c = dial(cport)
    c.sendall(b"sent-before-pairing\n")
    sport = new_port(read_line(ctl))
    time.sleep(0.2)  # the bytes sit in relayd (or the kernel) a while
    d = dial(sport)
    got = read_n(d, 20)
    ok(got == b"sent-before-pairing\n",
       "wire: bytes sent before pairing arrive after it", repr(got))
    for s in (c, d, ctl):
        s.close()
run(early_bytes)
PY

pycheck stray <<'PY'
def stray():
    ctl, cport = register()
    # Learn the server port from a first, fully served client.
    c0 = dial(cport)
    sport = new_port(read_line(ctl))
    d0 = dial(sport)
    c0.close()
    d0.close()
    s = dial(sport)
    ok(closed(s), "wire: stray connection to the server port is closed")
    ok(log_has(r"stray connection"), "wire: stray connection is logged")
    c = dial(cport)
    c.sendall(b"for-the-real-server")
    ok(new_port(read_line(ctl)) == sport, "wire: next client announced")
    d = dial(sport)
    got = read_n(d, 19)
    ok(got == b"for-the-real-server",
       "wire: stray did not steal the next client", repr(got))
    for x in (s, c, d, ctl):
        x.close()
run(stray)
PY

pycheck second_reg <<'PY'
def second_reg():
    ctl1, cport1 = register()
    ctl2, cport2 = register()
    c1 = dial(cport1)
    sport1 = new_port(read_line(ctl1))
    c2 = dial(cport2)
    sport2 = new_port(read_line(ctl2))
    ports = {cport1, cport2, sport1, sport2}
    ok(len(ports) == 4 and None not in ports,
       "wire: second registration gets its own two ports", repr(ports))
    ok(quiet(ctl1, 0.3) == b"",
       "wire: the other registration's client is not announced here")
    c3 = dial(cport2)
    d2 = dial(sport2)
    line = read_line(ctl2)
    ok(new_port(line) == sport2, "wire: registration 2 gets its own [NEW]")
    ok(quiet(ctl1, 0.3) == b"", "wire: registration 1 still quiet")
    for s in (c1, c2, c3, d2, ctl1, ctl2):
        s.close()
run(second_reg)
PY

pycheck ctl_close <<'PY'
def ctl_close():
    ctl, cport = register()
    a = dial(cport)
    sport = new_port(read_line(ctl))
    b = dial(cport)  # queued behind a
    ok(listening(cport) and listening(sport),
       "wire: both ports listen while registered")
    ctl.close()
    ok(log_has(r"closing registration.*\b%d\b" % cport),
       "wire: control close is logged")
    end = time.time() + 5
    while (listening(cport) or listening(sport)) and time.time() < end:
        time.sleep(0.05)
    ok(not listening(cport), "wire: public port closed with the control")
    ok(not listening(sport), "wire: server port closed with the control")
    ok(closed(a), "wire: the announced client is closed")
    ok(closed(b), "wire: the queued client is closed")
    try:
        dial(cport, 2).close()
        refused = False
    except OSError:
        refused = True
    ok(refused, "wire: new clients are refused")
run(ctl_close)
PY

pycheck client_leaves <<'PY'
def client_leaves():
    ctl, cport = register()
    a = dial(cport)
    sport = new_port(read_line(ctl))
    b = dial(cport)  # queued behind a
    a.close()
    # A reset, so gone for sure (an EOF may be a half-close).
    b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    b.close()
    # As the original: the announced client is still paired, and its
    # data connection sees EOF at once.
    d = dial(sport)
    ok(closed(d), "wire: client gone before pairing: data connection "
       "gets EOF")
    ok(log_has(r"left before it was announced"),
       "wire: a queued client that reset is dropped, not announced")
    ok(quiet(ctl, 0.3) == b"", "wire: no [NEW] for the client that left")
    c = dial(cport)
    c.sendall(b"next")
    ok(new_port(read_line(ctl)) == sport, "wire: next client announced")
    d2 = dial(sport)
    ok(read_n(d2, 4) == b"next", "wire: and paired with the next dial")
    for x in (c, d, d2, ctl):
        x.close()
run(client_leaves)
PY

pycheck client_halfclose <<'PY'
def client_halfclose():
    ctl, cport = register()
    a = dial(cport)
    sport = new_port(read_line(ctl))
    b = dial(cport)  # queued behind a
    b.shutdown(socket.SHUT_WR)  # says nothing, waits for a banner
    da = dial(sport)
    ok(new_port(read_line(ctl)) == sport,
       "wire: a queued client that only shut its side down is announced")
    db = dial(sport)
    db.sendall(b"BANNER")
    ok(read_n(b, 6) == b"BANNER", "wire: ... and gets the server's banner")
    ok(closed(db), "wire: ... and its data connection sees its EOF")
    for x in (a, b, da, db, ctl):
        x.close()
run(client_halfclose)
PY

pycheck session_outlives <<'PY'
def session_outlives():
    ctl, cport = register()
    a = dial(cport)
    sport = new_port(read_line(ctl))
    d = dial(sport)
    a.sendall(b"before")
    ok(read_n(d, 6) == b"before", "wire: a session runs")
    # relayd's end of the client's connection keeps a 15 s keepalive.
    ss = subprocess.run(["ss", "-Htno", "state", "established",
                         "sport = :%d" % cport],
                        capture_output=True, text=True).stdout
    m = re.search(r"timer:\(keepalive,(\d+)", ss)
    ok(m is not None and int(m.group(1)) <= 15,
       "wire: relayd's sockets have a 15 s keepalive", ss.strip())
    ctl.close()
    end = time.time() + 5
    while listening(cport) and time.time() < end:
        time.sleep(0.05)
    ok(not listening(cport),
       "wire: control closed: the registration's public port closes")
    a.sendall(b"after")
    ok(read_n(d, 5) == b"after", "wire: ... and the running session goes on")
    d.sendall(b"back")
    ok(read_n(a, 4) == b"back", "wire: ... both ways")
    for x in (a, d):
        x.close()
run(session_outlives)
PY

# A [HELLO] read only after a [NEW] of the original form went out (its
# segment was lost and resent) must not switch the registration to the
# extensions, even once that client's session is over: the shim's helper
# has settled on the original protocol and ignores the [OK].
pycheck late_hello <<'PY'
def late_hello():
    ctl, cport = register()
    a = dial(cport)
    sport = new_port(read_line(ctl))
    d = dial(sport)
    a.sendall(b"x")
    read_n(d, 1)
    def ends():
        with open(LOG) as f:
            text = f.read()
        return (text.count("Client disconnected"),
                text.count("server disconnected"))
    before = ends()
    a.close()
    d.close()
    # The session is over once relayd has seen both ends go.
    end = time.time() + 5
    while time.time() < end and not all(
            n > b for n, b in zip(ends(), before)):
        time.sleep(0.05)
    ctl.sendall(b"[HELLO] v=1 ka=10 ext=addr,pipe\n")
    okline = read_line(ctl)
    ok(okline.startswith(b"[OK] ") and b" ext=" not in okline,
       "wire: a late [HELLO] after a finished session gets [OK] without "
       "ext=", repr(okline))
    b = dial(cport)
    ok(new_port(read_line(ctl)) == sport,
       "wire: ... and the next client is announced in the original form")
    d2 = dial(sport)
    b.sendall(b"late")
    ok(read_n(d2, 4) == b"late", "wire: ... and paired by a raw dial")
    for x in (b, d2, ctl):
        x.close()
run(late_hello)
PY

# A control peer that never dials back: the client is dropped after
# -data-timeout and the next one is announced.
start_relayd -data-timeout 2 || fail "relayd -data-timeout 2 starts"
pycheck data_timeout <<'PY'
def data_timeout():
    ctl, cport = register()
    a = dial(cport)
    first = read_line(ctl)
    t0 = time.time()
    b = dial(cport)
    b.sendall(b"second-client")
    ok(closed(a, 6), "wire: unanswered client closed after the timeout")
    took = time.time() - t0
    # Tight enough that twice the timeout, or none, fails.
    ok(1.5 <= took <= 3.2, "wire: after -data-timeout (2 s)", "%.2fs" % took)
    ok(log_has(r"no data connection within"), "wire: the timeout is logged")
    second = read_line(ctl)
    ok(second == first, "wire: the next client is announced", repr(second))
    d = dial(new_port(second))
    ok(read_n(d, 13) == b"second-client", "wire: and served")
    for s in (b, d, ctl):
        s.close()
run(data_timeout)
PY

check "wire: relayd still alive" alive "$RELAYD_PID"

# Start-up raises the soft limit on open files to the hard one; with two
# workers, two sessions of one registration run on both (the fewest
# sessions wins; a tie stays on the registration's own worker).
hard=$(ulimit -Hn)
printf '#!/bin/sh\nulimit -Sn 256 && exec "$@"\n' >"$T/soft256.sh"
chmod +x "$T/soft256.sh"
RELAYD_WRAP="$T/soft256.sh $RELAYD_WRAP" start_relayd -threads 2 -v ||
    fail "relayd -threads 2 -v starts"
check "relayd raised its soft fd limit to the hard one ($hard)" \
    grep -Eq "^Max open files +$hard +$hard " "/proc/$RELAYD_PID/limits"
spawn "$T/w2.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" \
    -echo
w2port=$(nth_public_port 1)
timeout 20 python3 - "$w2port" <<'PY'
import socket, sys, time
cs = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
      for _ in range(2)]
for i, c in enumerate(cs):
    c.sendall(b"w%d" % i)
    c.settimeout(5)
    assert c.recv(2) == b"w%d" % i
time.sleep(0.3)
PY
check "two sessions of one registration: served" test $? = 0
workers=$(sed -n 's/.*session [0-9]*: reg [0-9]*, on worker \([0-9]*\).*/\1/p' \
    "$RELAYD_LOG" | sort -u | tr '\n' ' ')
note "sessions ran on workers: $workers"
check "two sessions of one registration ran on both workers" \
    test "$workers" = "0 1 "
finish
