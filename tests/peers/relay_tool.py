#!/usr/bin/env python3
"""relay_tool.py - clients and toy servers for the relayd end-to-end tests.

Every mode is bounded in time; a mode exits 0 when its check held and 1
(with a reason on stderr) when it did not.

  echo HOST PORT [-bytes N] [-seed S]   one client: send N bytes while
                  reading, shut write, read to EOF, compare sha256
  many HOST PORT -n N [-bytes B]        N concurrent echo clients
  seq HOST PORT -n N [-par P]           N short echo sessions, P at a time
  hold HOST PORT -n N -ready F -until G open N connections, write the count
                  of those that connected to F, keep them until G exists
  srv-late-reply PORTFILE               server: read to EOF, then reply
  srv-shut-first PORTFILE LOG           server: greet, shut write, then
                  append what the client sends to LOG
  srv-reset PORTFILE BYTES              server: on the client's first
                  bytes answer BYTES, wait until they are acknowledged, and
                  close with the upload unread (the kernel resets it)
  upload-read HOST PORT BYTES           client: upload without end while
                  reading slowly; exit 0 if BYTES arrived before EOF
"""
import array
import fcntl
import hashlib
import os
import socket
import sys
import termios
import threading
import time

from peerlib import die, opt, payload, run

DEADLINE = 60.0




def dial(host, port, timeout=DEADLINE):
    s = socket.create_connection((host, int(port)), timeout=timeout)
    s.settimeout(timeout)
    return s




def echo_once(host, port, data, timeout=DEADLINE):
    """Send data while reading; return the bytes read until EOF."""
    s = dial(host, port, timeout)
    got = []
    err = []

    def reader():
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    return
                got.append(b)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        err.append(e)
    t.join(timeout)
    s.close()
    if t.is_alive():
        raise TimeoutError("no EOF within %ss" % timeout)
    if err:
        raise err[0]
    return b"".join(got)




def cmd_echo(args):
    n = opt(args, "-bytes", 6)
    seed = opt(args, "-seed", 1)
    host, port = args
    data = payload(n, seed) if n != 6 else b"hello\n"
    t0 = time.time()
    back = echo_once(host, port, data)
    a = hashlib.sha256(data).hexdigest()
    b = hashlib.sha256(back).hexdigest()
    print("sent %d sha256 %s, got %d sha256 %s in %.2fs"
          % (len(data), a[:16], len(back), b[:16], time.time() - t0))
    if a != b:
        die("echoed bytes differ")


def cmd_many(args):
    n = opt(args, "-n", 10)
    size = opt(args, "-bytes", 4096)
    host, port = args
    ok = [0]
    bad = []
    lock = threading.Lock()

    def one(i):
        data = payload(size, 1000 + i)
        try:
            back = echo_once(host, port, data, 45)
            good = back == data
        except OSError as e:
            good = False
            with lock:
                bad.append("%d: %s" % (i, e))
        with lock:
            if good:
                ok[0] += 1
            elif len(bad) < 5:
                bad.append("%d: wrong bytes" % i)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("%d of %d clients served intact in %.2fs"
          % (ok[0], n, time.time() - t0))
    if ok[0] != n:
        die("failures: %s" % "; ".join(bad[:5]))


def cmd_seq(args):
    n = opt(args, "-n", 100)
    par = opt(args, "-par", 4)
    host, port = args
    nxt = [0]
    bad = []
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n or bad:
                return
            data = b"session %d\n" % i
            try:
                if echo_once(host, port, data, 20) != data:
                    raise ValueError("wrong bytes")
            except (OSError, ValueError) as e:
                with lock:
                    bad.append("%d: %s" % (i, e))

    ts = [threading.Thread(target=worker) for _ in range(par)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("%d sessions in %.2fs" % (n, time.time() - t0))
    if bad:
        die("failures: %s" % "; ".join(bad[:5]))


def cmd_hold(args):
    n = opt(args, "-n", 10)
    ready = opt(args, "-ready", "")
    until = opt(args, "-until", "")
    host, port = args
    socks = []
    for _ in range(n):
        try:
            socks.append(dial(host, port, 5))
        except OSError:
            pass
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % len(socks))
    os.rename(ready + ".tmp", ready)
    end = time.time() + DEADLINE
    while not os.path.exists(until) and time.time() < end:
        time.sleep(0.05)
    for s in socks:
        s.close()


def serve(portfile, handler):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    while True:
        c, _ = ls.accept()
        c.settimeout(DEADLINE)
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def read_all(c):
    got = []
    while True:
        b = c.recv(65536)
        if not b:
            return b"".join(got)
        got.append(b)


def cmd_srv_late_reply(args):
    def handler(c):
        req = read_all(c)
        c.sendall(b"reply-after-client-FIN " + req)
        c.close()

    serve(args[0], handler)


def cmd_srv_shut_first(args):
    log = args[1]

    def handler(c):
        c.sendall(b"greeting\n")
        c.shutdown(socket.SHUT_WR)
        got = read_all(c)
        with open(log, "ab") as f:
            f.write(got)
        c.close()

    serve(args[0], handler)


def cmd_srv_reset(args):
    size = int(args[1])

    def handler(c):
        c.recv(65536)
        c.sendall(b"r" * size)
        for _ in range(int(DEADLINE * 100)):
            q = array.array("i", [0])
            fcntl.ioctl(c, termios.TIOCOUTQ, q)
            if q[0] == 0:
                break
            time.sleep(0.01)
        c.close()

    serve(args[0], handler)


def cmd_upload_read(args):
    want = int(args[2])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(DEADLINE)
    s.connect((args[0], int(args[1])))

    def upload():
        try:
            while True:
                s.send(b"u" * 65536)
        except OSError:
            pass

    threading.Thread(target=upload, daemon=True).start()
    got = 0
    try:
        while got < want:
            b = s.recv(16384)
            if not b:
                break
            got += len(b)
            time.sleep(0.002)
    except OSError as e:
        die("%d of %d bytes, then %s" % (got, want, e))
    if got != want:
        die("%d of %d bytes, then EOF" % (got, want))
    print("%d of %d bytes" % (got, want))


def main():
    run(__doc__, {
        "srv-reset": cmd_srv_reset,
        "upload-read": cmd_upload_read,
        "echo": cmd_echo,
        "many": cmd_many,
        "seq": cmd_seq,
        "hold": cmd_hold,
        "srv-late-reply": cmd_srv_late_reply,
        "srv-shut-first": cmd_srv_shut_first,
    })


if __name__ == "__main__":
    main()
