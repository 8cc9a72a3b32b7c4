#!/usr/bin/env python3
"""ext_tool.py - raw protocol peers for the extension tests.

Each mode speaks the wire protocol by hand (docs/PROTOCOL.md), checks what
relayd answers, and exits 0 when every check held, 1 otherwise (reasons
on stderr).  All waits are bounded.

  auth-replay HOST CTL SECRETFILE   a good handshake, then the same [AUTH]
                                    bytes replayed on a new connection
  auth-wrong HOST CTL               a handshake with a wrong secret
  forge-data HOST CTL [SECRETFILE]  forged and stray data connections must
                                    never receive a client's bytes
  pipeline HOST CTL N               N clients at once: N [NEW] lines before
                                    any data connection, each paired by id
  pool HOST CTL [SECRETFILE]        pre-opened data connections: a forged one
                                    is refused, a real one gets [NEW] and the
                                    client's bytes with no control round trip
  pool-cap HOST CTL SECRETFILE      the granted pool size plus 3 pooled
                                    connections at once: how many relayd
                                    challenges (the rest it closes)
  silent-data HOST CTL N HELD       N data connections that never send their
                                    [DATA] line; prints how many relayd closed
                                    at once and how many it still holds, then
                                    whether a client is still paired through
                                    a genuine one
  refusal-behind HOST CTL           a peer that pings without reading until
                                    relayd holds [PONG]s in its own buffer,
                                    then sends a malformed line; prints how
                                    many [PONG]s and what last line came
  genuine-first HOST CTL PID N      with relayd (PID) stopped, a genuine data
                                    connection and then N silent ones queue
                                    up; prints whether the genuine one's
                                    client was still paired
"""
import array
import fcntl
import hashlib
import hmac
import os
import signal
import socket
import sys
import termios
import time

from peerlib import closed_count, deaf_hello, die, relay_unacked, run

TIMEOUT = 10.0




class Line:
    """A line reader over a socket that never reads past a LF."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def read(self, timeout=TIMEOUT):
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            b = self.s.recv(4096)
            if not b:
                return None
            self.buf += b
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


def fields(line):
    out = {}
    for tok in line.split(" ")[1:]:
        if "=" in tok:
            k, v = tok.split("=", 1)
            out[k] = v
    return out


def mac(secret, msg):
    return hmac.new(secret, msg.encode(), hashlib.sha256).hexdigest()


def read_secret(path):
    with open(path, "rb") as f:
        return f.read().rstrip(b"\r\n")


def register(host, ctl, secret=None, ext="addr,pipe"):
    s = socket.create_connection((host, int(ctl)), timeout=TIMEOUT)
    r = Line(s)
    pool = " pool=4" if "pool" in ext else ""
    s.sendall(("[HELLO] v=1 ext=%s%s\n" % (ext, pool)).encode())
    line = r.read()
    if line is not None and line.startswith("[CHALLENGE]"):
        nonce = line.split(" ")[1]
        if secret is None:
            die("relay asked for a secret we do not have")
        s.sendall(("[AUTH] %s\n" % mac(secret, "relayd-ctl:" + nonce)).encode())
        line = r.read()
    if line is None or not line.startswith("[OK]"):
        die("registration refused: %r" % line)
    return s, r, fields(line)


def cmd_auth_replay(a):
    host, ctl, secret = a[0], a[1], read_secret(a[2])
    s1 = socket.create_connection((host, int(ctl)), timeout=TIMEOUT)
    r1 = Line(s1)
    s1.sendall(b"[HELLO] v=1\n")
    ch1 = r1.read()
    if ch1 is None or not ch1.startswith("[CHALLENGE] "):
        die("no challenge: %r" % ch1)
    auth = "[AUTH] %s\n" % mac(secret, "relayd-ctl:" + ch1.split(" ")[1])
    s1.sendall(auth.encode())
    ok = r1.read()
    if ok is None or not ok.startswith("[OK]"):
        die("the right secret was refused: %r" % ok)
    # An eavesdropper replays every byte it saw on a new connection.
    s2 = socket.create_connection((host, int(ctl)), timeout=TIMEOUT)
    r2 = Line(s2)
    s2.sendall(b"[HELLO] v=1\n")
    ch2 = r2.read()
    if ch2 is None or not ch2.startswith("[CHALLENGE] "):
        die("no challenge on the second connection: %r" % ch2)
    if ch2 == ch1:
        die("the relay reused a nonce: %s" % ch2)
    s2.sendall(auth.encode())
    verdict = r2.read()
    if verdict is None or not verdict.startswith("[ERR]"):
        die("a replayed handshake was accepted: %r" % verdict)
    if r2.read() is not None:
        die("the relay kept a refused connection open")
    print("replay refused: %s" % verdict)


def cmd_auth_wrong(a):
    host, ctl = a[0], a[1]
    s = socket.create_connection((host, int(ctl)), timeout=TIMEOUT)
    r = Line(s)
    s.sendall(b"[HELLO] v=1\n")
    ch = r.read()
    if ch is None or not ch.startswith("[CHALLENGE] "):
        die("no challenge: %r" % ch)
    s.sendall(("[AUTH] %s\n" % mac(b"not-the-secret", "relayd-ctl:" +
                                   ch.split(" ")[1])).encode())
    verdict = r.read()
    if verdict is None or not verdict.startswith("[ERR]"):
        die("a wrong secret was accepted: %r" % verdict)
    print("wrong secret refused: %s" % verdict)


def drain(sock, timeout):
    """Bytes until EOF/reset or timeout; None if still open at timeout."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            b = sock.recv(4096)
            if not b:
                return got
            got += b
    except socket.timeout:
        return None
    except OSError:
        return got


def cmd_forge_data(a):
    host, ctl = a[0], a[1]
    secret = read_secret(a[2]) if len(a) > 2 else None
    s, r, ok = register(host, ctl, secret)
    port, sport, key = int(ok["port"]), int(ok["sport"]), ok["reg"]
    c = socket.create_connection((host, port), timeout=TIMEOUT)
    c.sendall(b"for-the-real-server")
    new = r.read()
    if new is None or not new.startswith("[NEW]%d " % sport):
        die("bad notification: %r" % new)
    cid = fields(new)["id"]
    # 1: a stray connection that says nothing.
    stray = socket.create_connection((host, sport), timeout=TIMEOUT)
    # 2: the right id with a wrong registration key.
    f1 = socket.create_connection((host, sport), timeout=TIMEOUT)
    f1.sendall(("[DATA] reg=%s id=%s\n" % ("0" * 32, cid)).encode())
    # 3: the right key, an id that was never announced.
    f2 = socket.create_connection((host, sport), timeout=TIMEOUT)
    f2.sendall(("[DATA] reg=%s id=%x\n" % (key, int(cid, 16) ^ 1)).encode())
    forged = [f1, f2]
    if secret is not None:
        # 4: key and id right, but a MAC made without the secret.
        f3 = socket.create_connection((host, sport), timeout=TIMEOUT)
        f3.sendall(("[DATA] reg=%s id=%s mac=%s\n" %
                    (key, cid, "ab" * 32)).encode())
        forged.append(f3)
    for i, f in enumerate(forged):
        got = drain(f, 5)
        if got is None:
            die("forged data connection %d was kept open" % i)
        if b"for-the-real-server" in got:
            die("forged data connection %d got the client's bytes" % i)
    line = "[DATA] reg=%s id=%s" % (key, cid)
    if secret is not None:
        line += " mac=%s" % mac(secret, "relayd-data:%s:%s" % (key, cid))
    d = socket.create_connection((host, sport), timeout=TIMEOUT)
    d.sendall((line + "\n").encode())
    d.settimeout(TIMEOUT)
    want = b"for-the-real-server"
    got = b""
    while len(got) < len(want):
        b = d.recv(4096)
        if not b:
            break
        got += b
    if got != want:
        die("the real data connection got %r" % got)
    d.sendall(b"reply")
    c.settimeout(TIMEOUT)
    if c.recv(100) != b"reply":
        die("the client did not get the reply")
    got = drain(stray, 15)
    if got is None or got:
        die("the stray connection was not closed empty: %r" % got)
    print("forged and stray data connections refused; real one paired")


def cmd_pipeline(a):
    host, ctl, n = a[0], a[1], int(a[2])
    s, r, ok = register(host, ctl)
    port, sport, key = int(ok["port"]), int(ok["sport"]), ok["reg"]
    clients = {}
    for i in range(n):
        c = socket.create_connection((host, port), timeout=TIMEOUT)
        c.sendall(b"client-%d;" % i)
        clients[c.getsockname()[1]] = (i, c)
    news = []
    for _ in range(n):
        line = r.read()
        if line is None or not line.startswith("[NEW]"):
            die("expected %d notifications, got %r after %d" %
                (n, line, len(news)))
        news.append(fields(line))
    # Answer in reverse order: pairing must follow the ids, not FIFO.
    for f in reversed(news):
        src_port = int(f["from"].rsplit(":", 1)[1])
        i, c = clients[src_port]
        d = socket.create_connection((host, sport), timeout=TIMEOUT)
        d.sendall(("[DATA] reg=%s id=%s\n" % (key, f["id"])).encode())
        want = b"client-%d;" % i
        d.settimeout(TIMEOUT)
        got = b""
        while len(got) < len(want):
            b = d.recv(100)
            if not b:
                break
            got += b
        if got != want:
            die("data connection for %s got %r, want %r" %
                (f["id"], got, want))
        d.close()
    print("%d pipelined clients paired by id" % n)


def read_upto(d, n):
    """Up to n bytes from d: fewer if it ends or fails first."""
    d.settimeout(TIMEOUT)
    got = b""
    try:
        while len(got) < n:
            b = d.recv(n - len(got))
            if not b:
                break
            got += b
    except OSError:
        pass
    return got


def cmd_silent_data(a):
    host, ctl, n = a[0], a[1], int(a[2])
    s, r, ok = register(host, ctl)
    conns = [socket.create_connection((host, int(ok["sport"])),
                                      timeout=TIMEOUT) for _ in range(n)]
    # Closing is at accept time: once the last silent connection is
    # accepted, the count is final (bounded wait, no fixed sleep).
    end = time.time() + 5
    while closed_count(conns) < n - int(a[3]) and time.time() < end:
        time.sleep(0.05)
    closed = closed_count(conns)
    # A genuine data connection after them must still get its client.
    c = socket.create_connection((host, int(ok["port"])), timeout=TIMEOUT)
    c.sendall(b"still-served")
    f = fields(r.read() or "")
    d = socket.create_connection((host, int(ok["sport"])), timeout=TIMEOUT)
    d.sendall(("[DATA] reg=%s id=%s\n" % (ok["reg"], f.get("id"))).encode())
    got = read_upto(d, 12)
    print("closed=%d held=%d paired=%d" % (closed, n - closed,
                                          got == b"still-served"))


def cmd_refusal_behind(a):
    """A refusal queued behind answers the peer has not read: every one of
    them, and the [ERR], must still arrive."""
    host, ctl = a[0], int(a[1])
    s, ok = deaf_hello(host, ctl)
    if not ok:
        die("not registered")

    def unread():
        q = array.array("i", [0])
        fcntl.ioctl(s, termios.FIONREAD, q)
        return q[0]

    # Ping until some [PONG]s are neither here nor in relayd's kernel:
    # they are in relayd's own buffer (at most 50 of 7 bytes, under its
    # 1 KiB).
    sent = held = 0
    while sent < 200000 and held <= 0:
        s.sendall(b"[PING]\n" * 50)
        sent += 50
        time.sleep(0.05)
        held = 7 * sent - unread() - relay_unacked(s, ctl)
    s.sendall(b"[NEW]notaport\n")
    buf = b""
    s.settimeout(10)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
    except OSError as e:
        print("error:", e)
    lines = buf.split(b"\n")
    print("%d of %d pongs, %d bytes held by relayd, last: %s" % (
        lines.count(b"[PONG]"), sent, held,
        lines[-2][:30].decode() if len(lines) > 1 else ""))


def cmd_genuine_first(a):
    """The eviction at the cap on unnamed data connections must spare one
    whose [DATA] line is already there, unread only because relayd
    accepted a burst of silent ones in the same turn of its loop."""
    host, ctl, pid, n = a[0], a[1], int(a[2]), int(a[3])
    s, r, ok = register(host, ctl)
    c = socket.create_connection((host, int(ok["port"])), timeout=TIMEOUT)
    c.sendall(b"still-served")
    f = fields(r.read() or "")
    os.kill(pid, signal.SIGSTOP)
    try:
        # Every thread stopped before the burst, bounded.
        end = time.time() + 5
        while time.time() < end and not all(
                open("/proc/%d/task/%s/stat" % (pid, t)).read()
                .rsplit(")", 1)[1].split()[0] == "T"
                for t in os.listdir("/proc/%d/task" % pid)):
            time.sleep(0.01)
        d = socket.create_connection((host, int(ok["sport"])),
                                     timeout=TIMEOUT)
        d.sendall(("[DATA] reg=%s id=%s\n" % (ok["reg"], f.get("id")))
                  .encode())
        silent = [socket.create_connection((host, int(ok["sport"])),
                                           timeout=TIMEOUT)
                  for _ in range(n)]
    finally:
        os.kill(pid, signal.SIGCONT)
    got = read_upto(d, 12)
    print("paired=%d closed=%d" % (got == b"still-served",
                                   closed_count(silent)))


def cmd_pool_cap(a):
    """The granted pool size holds even while [AUTH]s are pending: open
    that many plus 3 pooled connections at once, all challenged first."""
    host, ctl, secret = a[0], a[1], read_secret(a[2])
    s, r, ok = register(host, ctl, secret, ext="addr,pipe,pool")
    grant, sport, key = int(ok.get("pool", "0")), int(ok["sport"]), ok["reg"]
    if grant < 1:
        die("pool not granted: %r" % ok)
    conns = []
    for _ in range(grant + 3):
        d = socket.create_connection((host, sport), timeout=TIMEOUT)
        d.sendall(("[DATA] reg=%s pool=1\n" % key).encode())
        conns.append((d, Line(d)))
    challenged = []
    for d, dr in conns:
        try:
            ch = dr.read(5)
        except OSError:
            ch = None
        if ch is not None and ch.startswith("[CHALLENGE] "):
            challenged.append((d, ch.split(" ")[1]))
    for d, nonce in challenged:
        d.sendall(("[AUTH] %s\n" % mac(secret, "relayd-pool:%s:%s" %
                                        (key, nonce))).encode())
    print("granted=%d challenged=%d" % (grant, len(challenged)))


def cmd_pool(a):
    host, ctl = a[0], a[1]
    secret = read_secret(a[2]) if len(a) > 2 else None
    s, r, ok = register(host, ctl, secret, ext="addr,pipe,pool")
    if "pool" not in ok.get("ext", "") or int(ok.get("pool", "0")) < 1:
        die("pool not granted: %r" % ok)
    port, sport, key = int(ok["port"]), int(ok["sport"]), ok["reg"]
    # Forged: a wrong registration key, or (with a secret) a wrong MAC.
    f1 = socket.create_connection((host, sport), timeout=TIMEOUT)
    f1.sendall(("[DATA] reg=%s pool=1\n" % ("0" * 32)).encode())
    forged = [f1]
    if secret is not None:
        f2 = socket.create_connection((host, sport), timeout=TIMEOUT)
        f2.sendall(("[DATA] reg=%s pool=1\n" % key).encode())
        ch = Line(f2).read()
        if ch is None or not ch.startswith("[CHALLENGE] "):
            die("no challenge on a pooled connection: %r" % ch)
        f2.sendall(("[AUTH] %s\n" % ("cd" * 32)).encode())
        forged.append(f2)
    for i, f in enumerate(forged):
        if drain(f, 5) is None:
            die("forged pooled connection %d was kept open" % i)
    # A real pooled connection.
    d = socket.create_connection((host, sport), timeout=TIMEOUT)
    d.sendall(("[DATA] reg=%s pool=1\n" % key).encode())
    dr = Line(d)
    if secret is not None:
        ch = dr.read()
        if ch is None or not ch.startswith("[CHALLENGE] "):
            die("no challenge: %r" % ch)
        nonce = ch.split(" ")[1]
        d.sendall(("[AUTH] %s\n" % mac(secret, "relayd-pool:%s:%s" %
                                         (key, nonce))).encode())
    time.sleep(0.2)
    c = socket.create_connection((host, port), timeout=TIMEOUT)
    c.sendall(b"via-the-pool")
    new = dr.read()
    if new is None or not new.startswith("[NEW]%d id=" % sport):
        die("no [NEW] on the pooled connection: %r" % new)
    f = fields(new)
    if int(f["from"].rsplit(":", 1)[1]) != c.getsockname()[1]:
        die("from= is not the client: %r" % new)
    want = b"via-the-pool"
    got = dr.buf
    d.settimeout(TIMEOUT)
    while len(got) < len(want):
        b = d.recv(100)
        if not b:
            break
        got += b
    if got != want:
        die("pooled connection got %r" % got)
    # Nothing was announced on the control connection.
    s.settimeout(0.5)
    try:
        extra = s.recv(100)
    except socket.timeout:
        extra = b""
    if b"[NEW]" in extra:
        die("the client was also announced on the control connection")
    print("pooled data connection used; forged ones refused")


def main():
    run(__doc__, {
        "auth-replay": cmd_auth_replay,
        "auth-wrong": cmd_auth_wrong,
        "forge-data": cmd_forge_data,
        "pipeline": cmd_pipeline,
        "pool": cmd_pool,
        "silent-data": cmd_silent_data,
        "genuine-first": cmd_genuine_first,
        "refusal-behind": cmd_refusal_behind,
        "pool-cap": cmd_pool_cap,
    })


if __name__ == "__main__":
    main()
