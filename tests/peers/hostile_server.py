#!/usr/bin/env python3
"""hostile_server.py - a server to run under librelayshim.so while the
relay misbehaves (tests/e2e/shim_hostile.sh).

  hostile_server.py PORT...

Listens on 127.0.0.1:PORT for each PORT, non-blocking, in one select()
loop.  A listen() that fails is reported ("LISTEN-FAIL port errno") and
the server carries on with the others.  Every socket accept() returns is
checked: a connected TCP stream socket of the listener's family, not a
listener, not one of ours ("BADSOCK reason" otherwise).  Each client
gets, in a thread, one line read and "reply:<line> peer=<addr>" back.
Prints "READY", then "ACCEPT port peer ms" per client.
"""
import errno
import os
import select
import socket
import stat
import sys
import threading
import time


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def serve(c, peer):
    try:
        c.settimeout(5)
        buf = b""
        while not buf.endswith(b"\n"):
            b = c.recv(4096)
            if not b:
                break
            buf += b
        c.sendall(b"reply:%s peer=%s\n" % (buf.strip(), peer.encode()))
    except OSError as e:
        say("CLIENT-ERR %s %s" % (peer, e))
    finally:
        c.close()


def check(c, lfd, family, listeners):
    fd = c.fileno()
    if fd < 0:
        return "negative fd"
    if fd in listeners:
        return "a listener's fd"
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return "not a socket"
        if c.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) != \
                socket.SOCK_STREAM:
            return "not a stream socket"
        if c.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return "a listening socket"
        if c.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) != family:
            return "wrong family"
    except OSError as e:
        return "unusable: %s" % e
    return None


def main():
    ls = {}
    for p in sys.argv[1:]:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", int(p)))
            s.listen(64)
        except OSError as e:
            say("LISTEN-FAIL %s %s" % (p, errno.errorcode.get(e.errno, e)))
            s.close()
            continue
        s.setblocking(False)
        ls[s.fileno()] = (s, p)
        say("LISTEN-OK %s" % p)
    say("READY")
    while True:
        r, _, _ = select.select([s for s, _ in ls.values()], [], [], 1.0)
        for s in r:
            t0 = time.time()
            try:
                c, addr = s.accept()
            except (BlockingIOError, InterruptedError):
                say("ACCEPT-AGAIN %s" % ls[s.fileno()][1])
                continue
            except OSError as e:
                say("ACCEPT-ERR %s %s" % (ls[s.fileno()][1], e))
                continue
            ms = (time.time() - t0) * 1000
            bad = check(c, s.fileno(), s.family, ls)
            peer = "%s:%s" % (addr[0], addr[1]) if addr else "-"
            if bad:
                say("BADSOCK %s %s" % (ls[s.fileno()][1], bad))
                c.close()
                continue
            say("ACCEPT %s %s %.0f" % (ls[s.fileno()][1], peer, ms))
            c.setblocking(True)
            threading.Thread(target=serve, args=(c, peer),
                             daemon=True).start()


if __name__ == "__main__":
    main()
