#!/usr/bin/env python3
"""orig_relay.py - a stand-in for the original Go relayServer, for the
compatibility tests of the server side (shim, examples) against a relay
that speaks only the original protocol.

It reproduces the original's observable wire behaviour
(../shared/reference/original-protocol.md §2): it never reads the control
connection, opens two listeners per registration, logs
"Serving relay requests on port N" on stderr, and serially accepts one
client, writes "[NEW]<sport>\\n", pairs it with the next connection on
sport and copies both ways with half-close.

  orig_relay.py PORTFILE     listen on 127.0.0.1:0, write the port to
                             PORTFILE, serve until killed
"""
import socket
import sys
import threading
import time


def log(msg):
    sys.stderr.write(time.strftime("%Y/%m/%d %H:%M:%S ") + msg + "\n")
    sys.stderr.flush()


def copy(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def registration(ctl):
    cl = socket.socket()
    cl.bind(("127.0.0.1", 0))
    cl.listen(128)
    sv = socket.socket()
    sv.bind(("127.0.0.1", 0))
    sv.listen(128)
    sport = sv.getsockname()[1]
    log("Serving relay requests on port %d" % cl.getsockname()[1])
    while True:
        c, addr = cl.accept()
        log("Client connected: %s:%d" % addr)
        try:
            ctl.sendall(b"[NEW]%d\n" % sport)
        except OSError:
            pass
        d, _ = sv.accept()
        log("Server connected: %s:%d" % addr)
        threading.Thread(target=copy, args=(c, d), daemon=True).start()
        threading.Thread(target=copy, args=(d, c), daemon=True).start()


def main():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    print("Waiting for clients...", flush=True)
    while True:
        ctl, addr = ls.accept()
        log("Request to relay from: %s:%d" % addr)
        threading.Thread(target=registration, args=(ctl,),
                         daemon=True).start()


if __name__ == "__main__":
    main()
