"""peerlib.py - what the Python test peers share (relay_tool.py,
fault_tool.py, ext_tool.py, and inline peers of the e2e scripts): dying
with a message, "-name value" options, reproducible payloads, counting
closed sockets, a control connection that stops reading, running the
subcommand named first.  Imported from the peers' own directory, which
Python puts first on sys.path when it runs one of them."""
import os
import random
import socket
import sys


def die(msg):
    """Print "<tool>: msg" on stderr and exit 1."""
    sys.stderr.write("%s: %s\n" % (os.path.basename(sys.argv[0])[:-3], msg))
    sys.exit(1)


def opt(args, name, default):
    """Remove "<name> <value>" from args; the value, typed as default."""
    if name in args:
        i = args.index(name)
        v = args[i + 1]
        del args[i:i + 2]
        return type(default)(v)
    return default


def payload(n, seed):
    """n pseudo-random bytes, the same for the same seed."""
    return random.Random(seed).randbytes(n)


def closed_count(socks):
    """How many of socks the peer has closed (EOF or reset), without
    waiting; leaves them non-blocking."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            n += s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            n += 1
    return n


def relay_unacked(s, port):
    """Bytes the peer on port has sent to socket s and s has not
    acknowledged yet: what sits in the peer's kernel for s, read from
    /proc/net/tcp{,6} (the peer is on this host)."""
    me = s.getsockname()[1]
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            rows = f.read().splitlines()[1:]
        for row in rows:
            col = row.split()
            if (int(col[1].split(":")[-1], 16) == port and
                    int(col[2].split(":")[-1], 16) == me):
                return int(col[4].split(":")[0], 16)
    return 0


def deaf_hello(host, port, timeout=3.0):
    """A control connection to relayd with a small receive buffer that
    sends [HELLO] v=1 and reads the answer line; the caller then stops
    reading.  Returns (socket, whether the answer was [OK])."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(timeout)
    s.connect((host, int(port)))
    s.sendall(b"[HELLO] v=1\n")
    line = b""
    try:
        while not line.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                break
            line += b
    except OSError:
        pass
    return s, line.startswith(b"[OK]")


def run(doc, commands):
    """Run commands[argv[1]](argv[2:]); the usage (doc) without one."""
    if len(sys.argv) < 2:
        die(doc)
    fn = commands.get(sys.argv[1])
    if fn is None:
        die("unknown mode %s" % sys.argv[1])
    fn(sys.argv[2:])
