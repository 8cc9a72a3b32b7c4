#!/usr/bin/env python3
"""fake_relay.py - a hostile or broken relay, for tests/e2e/shim_hostile.sh.

  fake_relay.py PORTFILE SCENARIO[,SCENARIO...]

Listens on a control port (written to PORTFILE) and a server-facing port
of its own.  Each control connection the shim's helper makes gets the
next scenario; the last one repeats.  Prints "EVENT ..." lines.

  garbage    answers [HELLO] with a malformed [OK] (so the helper falls
             back to the original protocol), then sends garbage lines,
             [NEW]0, [NEW]99999, [NEW] for a port nobody listens on, bad
             fields; then one good [NEW] (acting as the client: a line
             out, the server's reply back); then a line of 1 MiB with no
             LF, and waits for the helper to hang up
  drop       reads [HELLO] and closes at once
  halfok     reads [HELLO], sends half an [OK] line, closes
  huge       reads [HELLO], sends 1 MiB with no LF
  challenge  reads [HELLO], asks for a secret the server does not have
  errversion reads [HELLO], refuses: "unsupported protocol version"
  errauth    ... "authentication failed"
  errport    ... "port 40000 unavailable: Address already in use"
  errother   ... a reason of no known kind, with "port" inside a word
  goodext    a correct extension relay: [OK], [PING]/[PONG], and a
             [NEW] with an id and a client address; then a [NEW] whose
             data connection is reset at once; then holds the connection
"""
import os
import socket
import struct
import sys
import threading
import time


def ev(*a):
    sys.stdout.write("EVENT " + " ".join(str(x) for x in a) + "\n")
    sys.stdout.flush()


def readline(s, timeout=5.0):
    s.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            return None
        buf += b
    return buf


def dead_port():
    p = socket.socket()
    p.bind(("127.0.0.1", 0))
    port = p.getsockname()[1]
    p.close()
    return port


class Relay:
    def __init__(self, portfile, scenarios):
        self.ctl = socket.socket()
        self.ctl.bind(("127.0.0.1", 0))
        self.ctl.listen(16)
        self.data = socket.socket()
        self.data.bind(("127.0.0.1", 0))
        self.data.listen(16)
        self.sport = self.data.getsockname()[1]
        self.scenarios = scenarios
        with open(portfile + ".tmp", "w") as f:
            f.write("%d\n" % self.ctl.getsockname()[1])
        os.rename(portfile + ".tmp", portfile)

    def client(self, tag, dline=False, peer_rst=False):
        """Accept the helper's data connection and act as the client."""
        self.data.settimeout(10)
        try:
            d, _ = self.data.accept()
        except socket.timeout:
            ev("no-data-connection", tag)
            return
        if dline:
            line = readline(d)
            ev("data-line", tag, (line or b"").decode(errors="replace").strip())
        if peer_rst:
            d.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            d.close()
            ev("data-reset", tag)
            return
        d.sendall(b"%s\n" % tag.encode())
        reply = readline(d, 10)
        ev("reply", tag, (reply or b"<none>").decode(errors="replace").strip())
        d.close()

    def sc_garbage(self, c):
        hello = readline(c)
        ev("hello", (hello or b"").decode(errors="replace").strip())
        c.sendall(b"[OK] port=abc ext=\xff\n")
        time.sleep(1.5)  # the helper's hello_wait: it settles on original
        lines = [b"hello world\n", b"\x00\x01\x02\xff\xfe\n", b"\n",
                 b"\r\n", b"[NEW]0\n", b"[NEW]99999\n", b"[NEW]-1\n",
                 b"[NEW]\n", b"[NEW]abc\n", b"[NEWS]1\n", b"[OK]\n",
                 b"[CHALLENGE] zz\n", b"[PING] x=\n",
                 b"[NEW]%d id=zz\n" % self.sport,
                 b"[NEW]%d from=999.1.1.1:1\n" % self.sport,
                 b"[NEW]%d\n" % dead_port(),
                 b"[NEW]00%d\n" % self.sport]
        for ln in lines:
            c.sendall(ln)
        ev("garbage-sent", len(lines))
        c.sendall(b"[NEW]%d\n" % self.sport)
        self.client("hostile-1")
        try:
            c.sendall(b"A" * (1 << 20))
        except OSError:
            pass
        c.settimeout(10)
        try:
            while c.recv(4096):
                pass
            ev("huge-closed")
        except socket.timeout:
            ev("huge-kept")
        except OSError:
            ev("huge-closed")

    def sc_drop(self, c):
        readline(c)
        ev("drop")

    def sc_halfok(self, c):
        readline(c)
        c.sendall(b"[OK] v=1 port=")
        ev("halfok")

    def sc_huge(self, c):
        readline(c)
        try:
            c.sendall(b"B" * (1 << 20))
        except OSError:
            pass
        ev("huge")
        c.settimeout(10)
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass

    def sc_challenge(self, c):
        readline(c)
        c.sendall(b"[CHALLENGE] " + b"ab" * 16 + b"\n")
        ev("challenge")
        c.settimeout(10)
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass

    def refuse(self, c, why):
        readline(c)
        c.sendall(b"[ERR] %s\n" % why)
        ev("refused", why.decode())

    def sc_errversion(self, c):
        self.refuse(c, b"unsupported protocol version")

    def sc_errauth(self, c):
        self.refuse(c, b"authentication failed")

    def sc_errport(self, c):
        self.refuse(c, b"port 40000 unavailable: Address already in use")

    def sc_errother(self, c):
        self.refuse(c, b"too many registrations (see the report)")

    def sc_goodext(self, c):
        hello = readline(c)
        ev("hello", (hello or b"").decode(errors="replace").strip())
        c.sendall(b"[OK] v=1 port=40000 sport=%d ext=addr,pipe reg=%s\n"
                  % (self.sport, b"cd" * 16))
        c.sendall(b"[PING]\n")
        pong = readline(c)
        ev("pong", (pong or b"").decode().strip())
        c.sendall(b"[NEW]%d id=1f from=203.0.113.7:4242\n" % self.sport)
        self.client("ext-1", dline=True)
        c.sendall(b"[NEW]%d id=2f from=203.0.113.8:4343\n" % self.sport)
        self.client("ext-rst", dline=True, peer_rst=True)
        c.sendall(b"[NEW]%d id=3f from=[2001:db8::9]:99\n" % self.sport)
        self.client("ext-2", dline=True)
        ev("goodext-done")
        c.settimeout(None)
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass

    def run(self):
        i = 0
        end = time.time() + 120
        self.ctl.settimeout(1)
        while time.time() < end:
            try:
                c, _ = self.ctl.accept()
            except socket.timeout:
                continue
            name = self.scenarios[min(i, len(self.scenarios) - 1)]
            i += 1
            ev("control", i, name)
            t = threading.Thread(target=self.one, args=(c, name),
                                 daemon=True)
            t.start()
            t.join()

    def one(self, c, name):
        try:
            getattr(self, "sc_" + name)(c)
        except OSError as e:
            ev("error", name, e)
        c.close()


def main():
    Relay(sys.argv[1], sys.argv[2].split(",")).run()


if __name__ == "__main__":
    main()
