#!/usr/bin/env python3
"""fault_tool.py - hostile and heavy peers for the fault-injection tests
(tests/e2e/fault_*.sh).

Every mode is bounded in time and count; a mode exits 0 when its check
held and 1 (with a reason on stderr) when it did not.  Lines on stdout
are "key=value" facts the scripts grep.

Clients
  integrity HOST PORT -n N [-min B] [-max B]
        N concurrent echo sessions, each with its own random payload,
        written while reading; every session's bytes are checked by
        sha256 on arrival.  A mismatch is searched for in the other
        sessions' payloads, to tell cross-talk from corruption.
  load HOST PORT -par P -until FILE -out FILE
        P echo loops until FILE exists (at most 90 s); every completed
        session must be intact, failed connections are only counted.
        Appends "t=<time> ok=<n> err=<n> bad=<n>" to OUT twice a second.
  reset HOST PORT -n N
        N clients stream to an echo server, read a little, then close
        with SO_LINGER 0 (RST) while bytes flow both ways.
  stream HOST PORT -n N -ready FILE
        N clients stream to an echo server and read until the server
        side ends; "ended=<n> hung=<n>" once all ended or 20 s passed.
  noread HOST PORT -n N -bytes B -hold S -pid PID
        N clients of a push-server read nothing for S seconds while
        relayd's RSS (PID) is sampled, then read and check all N*B bytes.
  silent HOST PORT -n N -hold S
        slowloris: N clients connect and send nothing; after S seconds
        "open=<n> closed=<n>" (closed: the relay hung up on them).
  garbage HOST PORT -n N [-seed S]
        N connections carrying random bytes of assorted sizes, some with
        a protocol tag in front; each ends with a close, a half-close
        and a short read, or a reset.
  regflood HOST PORT -n N
        N control connections at once, sending nothing; after 2 s
        "open=<n> closed=<n>".
  stall-ctl HOST PORT -clients N
        registers with the extensions (pipelined [NEW]), reads its [OK],
        then never reads again while N clients connect to its public
        port; "cport=<port>" then "clients-closed=<n>" once the relay
        gave up on the registration (or 20 s passed).
  deaf-refusals HOST PORT -n N
        N registrations in turn, each pinging without reading until
        relayd's [PONG]s back up, then sending a malformed line (its
        refusal then lingers); then closes them all and registers twice:
        "admitted=<a> of N ..., <b> after they closed".

Servers
  echo-server PORT          asyncio echo server on 127.0.0.1:PORT
  push-server PORTFILE -bytes B
        per connection: a 16-byte seed line, then B bytes derived from
        the seed, then close.
"""
import asyncio
import hashlib
import os
import random
import re
import socket
import struct
import sys
import threading
import time

from peerlib import deaf_hello, die, opt, payload, relay_unacked, run

DEADLINE = 90.0






def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


# --- echo sessions (asyncio) ------------------------------------------------

async def echo_session(host, port, data, timeout, barrier=None):
    """Write <data> while reading; half-close; return what came back.
    With <barrier> (head, arrived, go): the first <head> bytes go first
    and must come back before anything more is written; then the session
    counts itself in <arrived> and waits for <go>, so every session is
    open end to end at the same time."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port), timeout)
    got = bytearray()
    start = 0
    try:
        if barrier is not None:
            head, arrived, go = barrier
            writer.write(data[:head])
            await writer.drain()
            while len(got) < head:
                b = await asyncio.wait_for(reader.read(65536), timeout)
                if not b:
                    break
                got.extend(b)
            arrived()
            await asyncio.wait_for(go.wait(), timeout)
            start = head

        async def rd():
            while True:
                b = await reader.read(65536)
                if not b:
                    return
                got.extend(b)

        rtask = asyncio.ensure_future(rd())
        try:
            for off in range(start, len(data), 16384):
                writer.write(data[off:off + 16384])
                await writer.drain()
            writer.write_eof()
            await asyncio.wait_for(rtask, timeout)
        finally:
            rtask.cancel()
    finally:
        writer.close()
    return bytes(got)


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def cmd_integrity(args):
    n = opt(args, "-n", 1000)
    lo = opt(args, "-min", 1)
    hi = opt(args, "-max", 65536)
    pid = opt(args, "-pid", 0)
    host, port = args[0], int(args[1])
    rng = random.Random(os.urandom(16))
    # Every payload starts with its session number, so misplaced bytes
    # can be traced to the session they came from.
    datas = [b"session %06d|" % i + os.urandom(rng.randint(lo, hi))
             for i in range(n)]
    sums = [hashlib.sha256(d).hexdigest() for d in datas]
    results = [None] * n
    count = [0]
    peak = {}

    async def one(i, go):
        def arrived():
            count[0] += 1
            if count[0] == n:
                # Every session is paired and has echoed its head.
                peak["fds"] = fd_count(pid) if pid else -1
                peak["rss"] = rss_kb(pid) if pid else -1
                go.set()

        try:
            back = await echo_session(host, port, datas[i], 60,
                                      (14, arrived, go))
            results[i] = back
        except (OSError, asyncio.TimeoutError) as e:
            results[i] = e
            arrived()

    async def run():
        go = asyncio.Event()
        await asyncio.gather(*(one(i, go) for i in range(n)))

    t0 = time.time()
    asyncio.run(run())
    secs = time.time() - t0
    ok = 0
    problems = []
    total = 0
    for i, r in enumerate(results):
        if isinstance(r, bytes) and hashlib.sha256(r).hexdigest() == sums[i]:
            ok += 1
            total += 2 * len(r)
            continue
        if isinstance(r, bytes):
            m = re.match(rb"session (\d{6})\|", r)
            src = int(m.group(1)) if m else -1
            problems.append("%d: %d of %d bytes, wrong sha256%s" % (
                i, len(r), len(datas[i]),
                " (starts with session %d's bytes: CROSS-TALK)" % src
                if src not in (-1, i) else ""))
        else:
            problems.append("%d: %s" % (i, r or "no result"))
    out("open-at-once=%d relayd-fds=%s relayd-rss-kb=%s" % (
        n, peak.get("fds"), peak.get("rss")))
    out("sessions=%d intact=%d bytes=%d secs=%.1f" % (n, ok, total, secs))
    if problems:
        out("cross-talk=%d" % sum("CROSS-TALK" in p for p in problems))
        die("%d sessions failed: %s" % (len(problems),
                                       "; ".join(problems[:8])))
    out("cross-talk=0")


def cmd_load(args):
    par = opt(args, "-par", 10)
    until = opt(args, "-until", "")
    outf = opt(args, "-out", "")
    host, port = args[0], int(args[1])
    st = {"ok": 0, "err": 0, "bad": 0}
    bad = []
    end = time.time() + DEADLINE

    async def loop(k):
        rng = random.Random(k)
        while not os.path.exists(until) and time.time() < end:
            data = os.urandom(rng.randint(1, 65536))
            try:
                back = await echo_session(host, port, data, 5)
            except (OSError, asyncio.TimeoutError):
                st["err"] += 1
                await asyncio.sleep(0.05)
                continue
            if back == data:
                st["ok"] += 1
            elif data.startswith(back):
                # Cut short: the relay or the server went away.  Bytes
                # that differ from what was sent would be corruption.
                st["err"] += 1
            else:
                st["bad"] += 1
                bad.append("%d of %d bytes" % (len(back), len(data)))

    async def report():
        while not os.path.exists(until) and time.time() < end:
            with open(outf, "a") as f:
                f.write("t=%.2f ok=%d err=%d bad=%d\n" % (
                    time.time(), st["ok"], st["err"], st["bad"]))
            await asyncio.sleep(0.5)

    async def run():
        await asyncio.gather(report(), *(loop(k) for k in range(par)))

    asyncio.run(run())
    out("ok=%d err=%d bad=%d" % (st["ok"], st["err"], st["bad"]))
    if st["bad"]:
        die("corrupted sessions: %s" % "; ".join(bad[:5]))


def cmd_reset(args):
    n = opt(args, "-n", 20)
    host, port = args[0], int(args[1])
    done = 0
    for i in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.settimeout(10)
        chunk = os.urandom(65536)
        got = 0
        # Keep both directions busy, then reset in the middle.
        for _ in range(4):
            s.sendall(chunk)
            got += len(s.recv(65536))
        s.sendall(chunk)
        rst_close(s)
        if got > 0:
            done += 1
    out("reset=%d" % done)
    if done != n:
        die("only %d of %d clients saw echoed bytes before the reset"
            % (done, n))


def cmd_stream(args):
    n = opt(args, "-n", 10)
    ready = opt(args, "-ready", "")
    host, port = args[0], int(args[1])
    socks = [socket.create_connection((host, port), timeout=10)
             for _ in range(n)]
    for s in socks:
        s.setblocking(False)
    ended = set()
    flowing = set()
    chunk = os.urandom(16384)
    end = time.time() + 20
    announced = False
    while len(ended) < n and time.time() < end:
        for i, s in enumerate(socks):
            if i in ended:
                continue
            try:
                s.send(chunk)
            except BlockingIOError:
                pass
            except OSError:
                ended.add(i)
                continue
            try:
                b = s.recv(65536)
                if b:
                    flowing.add(i)
                else:
                    ended.add(i)
            except BlockingIOError:
                pass
            except OSError:
                ended.add(i)
        if not announced and len(flowing) == n:
            announced = True
            with open(ready, "w") as f:
                f.write("flowing\n")
        time.sleep(0.01)
    for s in socks:
        s.close()
    out("flowing=%d ended=%d hung=%d" % (len(flowing), len(ended),
                                          n - len(ended)))
    if len(ended) != n:
        die("%d clients never saw their session end" % (n - len(ended)))


def cmd_noread(args):
    n = opt(args, "-n", 10)
    nbytes = opt(args, "-bytes", 5 << 20)
    hold = opt(args, "-hold", 3.0)
    pid = opt(args, "-pid", 0)
    host, port = args[0], int(args[1])
    socks = [socket.create_connection((host, port), timeout=20)
             for _ in range(n)]
    base = rss_kb(pid)
    peak = base
    end = time.time() + hold
    while time.time() < end:
        peak = max(peak, rss_kb(pid))
        time.sleep(0.05)
    out("rss-hold-peak-kb=%d" % peak)
    ok = [0]
    errs = []
    lock = threading.Lock()

    def drain(s):
        try:
            s.settimeout(30)
            hdr = b""
            while len(hdr) < 16:
                b = s.recv(16 - len(hdr))
                if not b:
                    raise EOFError("no seed line")
                hdr += b
            seed = int(hdr[5:15])
            want = hashlib.sha256(payload(nbytes, seed))
            h = hashlib.sha256()
            got = 0
            while True:
                b = s.recv(1 << 20)
                if not b:
                    break
                h.update(b)
                got += len(b)
            if got == nbytes and h.hexdigest() == want.hexdigest():
                with lock:
                    ok[0] += 1
            else:
                with lock:
                    errs.append("got %d of %d bytes" % (got, nbytes))
        except (OSError, EOFError, ValueError) as e:
            with lock:
                errs.append(str(e))

    ts = [threading.Thread(target=drain, args=(s,)) for s in socks]
    for t in ts:
        t.start()
    while any(t.is_alive() for t in ts):
        peak = max(peak, rss_kb(pid))
        time.sleep(0.05)
    out("rss-base-kb=%d rss-peak-kb=%d intact=%d of %d bytes-each=%d"
        % (base, peak, ok[0], n, nbytes))
    if errs:
        die("; ".join(errs[:5]))


def cmd_silent(args):
    n = opt(args, "-n", 100)
    hold = opt(args, "-hold", 2.0)
    host, port = args[0], int(args[1])
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection((host, port), timeout=5))
        except OSError:
            pass
    end = time.time() + hold
    closed = set()
    while time.time() < end:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            s.setblocking(False)
            try:
                if s.recv(4096) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.05)
    out("connected=%d open=%d closed=%d" % (len(socks),
                                            len(socks) - len(closed),
                                            len(closed)))
    for s in socks:
        s.close()


TAGS = [b"", b"", b"[HELLO]", b"[HELLO] v=1 ext=addr,pipe ", b"[DATA]",
        b"[DATA] id=", b"[AUTH] ", b"[NEW]", b"[PING]", b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01", b"PROXY TCP4 ", b"\r\n\r\n\0\0\0\x0dQUIT\n"]
SIZES = [0, 1, 2, 7, 64, 255, 256, 257, 511, 1000, 4096, 65536, 300000]


def cmd_garbage(args):
    n = opt(args, "-n", 50)
    seed = opt(args, "-seed", 1)
    host, port = args[0], int(args[1])
    rng = random.Random(seed)
    refused = 0
    for i in range(n):
        data = rng.choice(TAGS) + os.urandom(rng.choice(SIZES))
        if rng.random() < 0.3:
            data = data.replace(b"\n", b"")
        try:
            s = socket.create_connection((host, port), timeout=5)
        except OSError:
            refused += 1
            continue
        s.settimeout(0.3)
        try:
            s.sendall(data)
            how = i % 3
            if how == 0:
                s.close()
            elif how == 1:
                s.shutdown(socket.SHUT_WR)
                try:
                    while s.recv(65536):
                        pass
                except OSError:
                    pass
                s.close()
            else:
                rst_close(s)
        except OSError:
            s.close()
    out("garbage=%d refused=%d" % (n, refused))


def cmd_regflood(args):
    n = opt(args, "-n", 100)
    host, port = args[0], int(args[1])
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection((host, port), timeout=5))
        except OSError:
            pass
    end = time.time() + 2.0
    closed = set()
    while time.time() < end and len(closed) < len(socks):
        for i, s in enumerate(socks):
            if i in closed:
                continue
            s.setblocking(False)
            try:
                b = s.recv(4096)
                if b == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.05)
    out("connected=%d open=%d closed=%d" % (len(socks),
                                            len(socks) - len(closed),
                                            len(closed)))
    for s in socks:
        s.close()


def cmd_stall_ctl(args):
    n = opt(args, "-clients", 2000)
    host, port = args[0], int(args[1])
    ctl = socket.socket()
    # A small receive buffer fills with [NEW] lines sooner.
    ctl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    ctl.settimeout(10)
    ctl.connect((host, port))
    ctl.sendall(b"[HELLO] v=1 ext=addr,pipe\n")
    line = b""
    while not line.endswith(b"\n"):
        b = ctl.recv(1)
        if not b:
            die("relay closed before [OK]")
        line += b
    m = re.search(rb" port=(\d+)", line)
    if not line.startswith(b"[OK]") or not m:
        die("unexpected answer %r" % line)
    cport = int(m.group(1))
    out("cport=%d" % cport)
    clients = []
    for _ in range(n):
        try:
            clients.append(socket.create_connection((host, cport),
                                                    timeout=5))
        except OSError:
            break
    out("clients=%d" % len(clients))
    end = time.time() + 20
    closed = set()
    while time.time() < end and len(closed) < len(clients):
        for i, s in enumerate(clients):
            if i in closed:
                continue
            s.setblocking(False)
            try:
                # A byte now and then: a connection whose handshake ended
                # just as the listener closed exists only on our side,
                # and only a segment of ours draws the RST that says so.
                s.send(b".")
                if s.recv(4096) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.05)
    out("clients-closed=%d" % len(closed))
    for s in clients:
        s.close()
    ctl.close()


# --- servers ----------------------------------------------------------------

def cmd_echo_server(args):
    port = int(args[0])

    async def handle(reader, writer):
        try:
            while True:
                b = await reader.read(65536)
                if not b:
                    break
                writer.write(b)
                await writer.drain()
            writer.write_eof()
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def run():
        srv = await asyncio.start_server(handle, "127.0.0.1", port,
                                         backlog=1024)
        out("READY")
        async with srv:
            await srv.serve_forever()

    asyncio.run(run())


def cmd_push_server(args):
    nbytes = opt(args, "-bytes", 5 << 20)
    portfile = args[0]
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    seeds = iter(range(1000, 1 << 30))

    def push(c, seed):
        try:
            c.settimeout(DEADLINE)
            c.sendall(b"seed=%010d\n" % seed)
            data = payload(nbytes, seed)
            c.sendall(data)
        except OSError:
            pass
        c.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=push, args=(c, next(seeds)),
                         daemon=True).start()


def cmd_deaf_refusals(args):
    n = opt(args, "-n", 4)
    host, port = args[0], int(args[1])
    held, admitted = [], 0
    for _ in range(n):
        s, ok = deaf_hello(host, port)
        if not ok:
            break
        admitted += 1
        sent = 0
        while sent < 200000 and relay_unacked(s, port) == 0:
            s.sendall(b"[PING]\n" * 100)
            sent += 100
            time.sleep(0.01)
        s.sendall(b"[BAD\n")
        held.append(s)
    for s in held:
        s.close()  # ends their lingering: the slots come back
    # Once relayd has read each EOF; bounded, and no other registrant.
    again, end = [], time.time() + 10
    while len(again) < 2 and time.time() < end:
        s, ok = deaf_hello(host, port)
        if ok:
            again.append(s)
        else:
            s.close()
            time.sleep(0.05)
    again = len(again)
    print("admitted=%d of %d deaf refusals, %d after they closed" %
          (admitted, n, again))


def main():
    run(__doc__, {
        "integrity": cmd_integrity,
        "load": cmd_load,
        "reset": cmd_reset,
        "stream": cmd_stream,
        "noread": cmd_noread,
        "silent": cmd_silent,
        "garbage": cmd_garbage,
        "regflood": cmd_regflood,
        "stall-ctl": cmd_stall_ctl,
        "deaf-refusals": cmd_deaf_refusals,
        "echo-server": cmd_echo_server,
        "push-server": cmd_push_server,
    })


if __name__ == "__main__":
    main()
