#!/bin/bash
# shim_edge.sh - librelayshim.so at the edges: IPv6 listeners, several
# listeners per process, AF_UNIX left alone, v4+v6 on one port; relay
# down at start, relay lost and back; servers that daemonize, scrub their
# environment, reap unknown children, or re-exec themselves.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_lib.sh"

shim_need_build
shim_relayd
mkdir -p "$T/www"
echo "six" >"$T/www/v6.txt"

# regs: registrations relayd has logged so far.
regs() { grep -c 'Serving relay requests on port' "$RELAYD_LOG"; }

# Everything that needs no relay restart starts at once; SP[name]: pid.
declare -A SP
V6_P=$(free_port ::1)
shim_run py6 python3 -m http.server "$V6_P" --bind :: --directory "$T/www"
SP[py6]=$SPID
A=$(free_port)
B=$(free_port)
shim_run two "$SSRV" -m poll -l "0.0.0.0:$A" -l "0.0.0.0:$B"
SP[two]=$SPID
D=$(free_port)
shim_run dual "$SSRV" -m poll -a full -l "0.0.0.0:$D" -l "[::]:$D"
SP[dual]=$SPID
shim_run daemon "$SSRV" -d "$T/daemon.pid" -l "0.0.0.0:$(free_port)"
DAEMON_FG=$SPID
shim_run clean "$SSRV" -m poll -c -n 2 -L "0.0.0.0:$(free_port)" \
    -l "0.0.0.0:$(free_port)"
SP[clean]=$SPID
shim_run reap "$SSRV" -m poll -r -l "0.0.0.0:$(free_port)"
SP[reap]=$SPID
shim_run reapthr "$SSRV" -m poll -R -l "0.0.0.0:$(free_port)" \
    -l "0.0.0.0:$(free_port)" -l "0.0.0.0:$(free_port)" \
    -l "0.0.0.0:$(free_port)"
SP[reapthr]=$SPID
X_P=$(free_port)
shim_run reexec "$SSRV" -m epoll -x -l "0.0.0.0:$X_P"
SP[reexec]=$SPID
RP_P=$(free_port)
shim_run rpexec "$SSRV" -m poll -P -x -l "0.0.0.0:$RP_P" -l "0.0.0.0:$RP_P"
SP[rpexec]=$SPID
shim_run perconn "$SSRV" -X -r -l "0.0.0.0:$(free_port)"
SP[perconn]=$SPID
shim_run closefds "$SSRV" -m epoll -C -n 2 -l "0.0.0.0:$(free_port)"
SP[closefds]=$SPID

# --- IPv6 listener ---------------------------------------------------------------
if pub=$(shim_public py6); then
	note "http.server asked [::]:$V6_P, public $pub"
	check "v6: the shim names the asked [::]:$V6_P" \
	    grep -qx "relayshim: \[::\]:$V6_P -> $pub" "$T/py6.err"
	check "v6: curl through the relay" \
	    test "$(curl -sS --max-time 10 "http://$pub/v6.txt")" = six
	check "v6: [::]:$V6_P is not bound" \
	    not_bound_publicly "$V6_P"
else
	fail "v6: http.server on [::] registers"
fi

# --- two listeners in one process ----------------------------------------------
if shim_ready two && p1=$(shim_public two 1) && p2=$(shim_public two 2); then
	check "two: two public ports" test "$p1" != "$p2"
	check "two: each reports its asked port" \
	    grep -qx "LISTEN 1 0.0.0.0:$B" "$T/two.out"
	ask -n 2 "$(port_of "$p1")" && answers_all "l=0"
	check "two: the first public port reaches listener 0" test $? = 0
	ask -n 2 "$(port_of "$p2")" && answers_all "l=1"
	check "two: the second public port reaches listener 1" test $? = 0
else
	fail "two: both listeners register"
fi

# --- v4 and v6 on one port: one public port ----------------------------------------
if shim_ready dual && pub=$(shim_public dual); then
	check "dual: one stderr line, one address" \
	    test "$(grep -c '^relayshim:' "$T/dual.err")" = 1 -a \
	    "$(wc -l <"$T/dual.addr")" = 1
	check "dual: both report the asked port" \
	    test "$(grep -c "LISTEN [01] .*:$D\$" "$T/dual.out")" = 2
	check "dual: clients served through the shared port" \
	    ask -n 3 "$(port_of "$pub")"
else
	fail "dual: registers"
fi

# --- one port on two addresses, every socket bound before any listens ---------------
# asyncio's start_server with a host list does that.  Sockets that are
# not SO_REUSEPORT siblings must not share a loopback port: SO_REUSEADDR
# lets them bind it, and then the second listen() failed (EADDRINUSE).
M=$(free_port)
cat >"$T/multi.py" <<'PY'
import asyncio, sys
async def answer(r, w):
    w.write(b"hi " + await r.readline())
    await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(answer, host=["127.0.0.1", "127.0.0.2"],
                                     port=int(sys.argv[1]))
    print("LISTENING", len(srv.sockets), flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
PY
shim_run multi python3 "$T/multi.py" "$M"
if pub=$(shim_public multi); then
	check "multi: both addresses listen" \
	    wait_for 10 grep -qx 'LISTENING 2' "$T/multi.out"
	check "multi: a client is served through the relay" \
	    test "$(timeout 10 python3 -c 'import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
c.sendall(b"there\n")
print(c.recv(100).decode().strip())' "$(port_of "$pub")")" = "hi there"
else
	fail "multi: registers"
fi
shim_stop multi "$SPID"

# --- v4 and v6 on one port, and the first one closes --------------------------------
# They share the first one's helper, which woke only that one: once it
# was closed the helper left, and the v6 listener was unreachable.
S=$(free_port)
cat >"$T/sib.py" <<'PY'
import os, select, socket, sys
port, trigger = int(sys.argv[1]), sys.argv[2]
v4 = socket.socket()
v4.bind(("0.0.0.0", port))
v4.listen(16)
v6 = socket.socket(socket.AF_INET6)
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
v6.bind(("::", port))
v6.listen(16)
print("READY", flush=True)
ls = [v4, v6]
while True:
    if v4 in ls and os.path.exists(trigger):
        ls.remove(v4)
        v4.close()
        print("CLOSED v4", flush=True)
    for l in select.select(ls, [], [], 0.1)[0]:
        c, _ = l.accept()
        c.settimeout(5)
        line = c.recv(100)
        c.sendall(b"%s %s" % (b"v4" if l is v4 else b"v6", line))
        c.close()
PY
# sib_ask PORT: one client through the relay; prints the answer.
sib_ask() {
	timeout 15 python3 -c 'import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=12)
c.sendall(b"hello")
print(c.recv(100).decode())' "$1" 2>/dev/null
}
shim_run sib python3 "$T/sib.py" "$S" "$T/sib.close"
if pub=$(shim_public sib); then
	check "sibling: served while both listen" \
	    test "$(sib_ask "$(port_of "$pub")")" = "v4 hello"
	touch "$T/sib.close"
	wait_for 5 grep -q 'CLOSED v4' "$T/sib.out"
	check "sibling: the first listener closed, the v6 one serves the next client" \
	    test "$(sib_ask "$(port_of "$pub")")" = "v6 hello"
	sleep 4 # past the helper's three liveness checks
	check "sibling: ... and the ones after" \
	    test "$(sib_ask "$(port_of "$pub")")" = "v6 hello"
	check "sibling: the helper stayed" test -n "$(helpers_of sib)"
else
	fail "sibling: registers"
fi
shim_stop sib "$SPID"

# --- AF_UNIX listener next to a TCP one ------------------------------------------
R0=$(regs)
shim_run unix "$SSRV" -m poll -l "0.0.0.0:$(free_port)" -l "unix:$T/u.sock"
SP[unix]=$SPID
if shim_ready unix && pub=$(shim_public unix); then
	check "unix: its getsockname is the socket path" \
	    grep -qx "LISTEN 1 unix:$T/u.sock" "$T/unix.out"
	check "unix: served locally" ask -n 2 "unix:$T/u.sock"
	check "unix: ... by the AF_UNIX listener" answers_all "l=1"
	check "unix: served through the relay too" ask -n 2 "$(port_of "$pub")"
	check "unix: only the TCP listener registered" \
	    test "$(regs)" = $((R0 + 1)) -a "$(wc -l <"$T/unix.addr")" = 1
else
	fail "unix: starts"
fi

# --- RELAY_PORTS: the other listeners stay local, with no delay --------------------
SEL=$(free_port)
LOC=$(free_port)
RELAY_PORTS=$SEL shim_run sel "$SSRV" -m poll -l "0.0.0.0:$SEL" \
    -l "127.0.0.1:$LOC"
SP[sel]=$SPID
BAN=$(free_port)
RELAY_PORTS=$SEL shim_run banner socat \
    "TCP-LISTEN:$BAN,bind=127.0.0.1,reuseaddr,fork" SYSTEM:"echo banner"
BANNER_PID=$SPID
if shim_ready sel && pub=$(shim_public sel); then
	check "ports: the selected port is relayed" ask -n 2 "$(port_of "$pub")"
	check "ports: the other is really bound on 127.0.0.1:$LOC" listening "$LOC"
	check "ports: ... and serves locally" ask -n 2 "$LOC"
	check "ports: one registration" test "$(wc -l <"$T/sel.addr")" = 1
else
	fail "ports: the selected listener registers"
fi
# banner_ms: milliseconds until a server that speaks first says hello.
banner_ms() {
	local s e
	s=$(date +%s%N)
	timeout 5 nc 127.0.0.1 "$BAN" </dev/null | grep -q banner || return 1
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
}
if wait_for 5 listening "$BAN"; then
	best=99999
	for _ in 1 2 3; do
		ms=$(banner_ms) || ms=99999
		[ "$ms" -lt "$best" ] && best=$ms
	done
	check "ports: an unselected listener does not wait for a wake header (${best} ms)" \
	    test "$best" -lt 300
	check "ports: no registration for it" \
	    bash -c '! grep -q "^relayshim:" "$1"' _ "$T/banner.err"
else
	fail "ports: socat listens on 127.0.0.1:$BAN itself"
fi
kill "$BANNER_PID"

# --- daemonizes after listen() ---------------------------------------------------
wait "$DAEMON_FG"
check "daemon: the foreground process exits 0" test $? = 0
if wait_for 10 test -s "$T/daemon.pid" && pub=$(shim_public daemon); then
	DPID=$(cat "$T/daemon.pid")
	track_pid "$DPID"
	check "daemon: a new process serves" test "$DPID" != "$DAEMON_FG"
	check "daemon: served through the relay" ask -n 3 "$(port_of "$pub")"
	check "daemon: ... by the daemon process" \
	    test "$(distinct pid)" = 1 -a "$(grep -c "^pid=$DPID " "$T/ask.out")" = 3
else
	fail "daemon: writes its pid file and registers"
fi

# --- clearenv() after listen(), a listener after it, 2 workers ---------------------
if shim_ready clean && p1=$(shim_public clean 1) && p2=$(shim_public clean 2)
then
	pass "clean: a listener opened after clearenv() registers"
	check "clean: the first listener, from the workers" \
	    ask -n 6 -d 0.2 "$(port_of "$p1")"
	check "clean: 2 workers served ($(distinct pid))" test "$(distinct pid)" = 2
	check "clean: the late listener, from the workers" \
	    ask -n 2 "$(port_of "$p2")"
	check "clean: ... on listener 1" answers_all "l=1"
else
	fail "clean: both listeners register (one after clearenv)"
fi

# --- a SIGCHLD handler reaping waitpid(-1) -----------------------------------------
if shim_ready reap && pub=$(shim_public reap); then
	check "reap: 5 clients served by forked children" \
	    ask -n 5 "$(port_of "$pub")"
	check "reap: 5 different children" test "$(distinct pid)" = 5
	check "reap: never reaped a child it did not create" \
	    answers_all "unk=0"
	check "reap: ... (its stderr agrees)" \
	    bash -c '! grep -q "did not create" "$1"' _ "$T/reap.err"
else
	fail "reap: registers"
fi

# --- the same, from a signal thread (SIGCHLD blocked elsewhere) --------------------
if shim_ready reapthr && pub=$(shim_public reapthr 4); then
	check "reapthr: 4 listeners, clients served by forked children" \
	    ask -n 3 "$(port_of "$pub")"
	check "reapthr: its signal thread never reaped a child it did not create" \
	    answers_all "unk=0"
	check "reapthr: ... (its stderr agrees)" \
	    bash -c '! grep -q "did not create" "$1"' _ "$T/reapthr.err"
else
	fail "reapthr: registers 4 listeners"
fi

# --- re-exec after listen(): the listener is inherited ---------------------------
if shim_ready reexec && pub=$(shim_public reexec); then
	check "reexec: accept after exec works through the relay" \
	    ask -n 3 "$(port_of "$pub")"
	check "reexec: one registration (none after exec)" \
	    test "$(wc -l <"$T/reexec.addr")" = 1
	got=$(sed -n 's/^EXEC LISTEN 0 //p' "$T/reexec.out")
	note "reexec: getsockname after exec reports $got (asked 0.0.0.0:$X_P)"
else
	fail "reexec: registers"
fi

# --- SO_REUSEPORT siblings inherited across exec ---------------------------------
# Both share the first one's helper, whose socket name the second cannot
# derive from its own inode: it must still find it, or the wakes the
# kernel routes to it are lost (a client then waits for a 2 s re-wake).
if shim_ready rpexec && pub=$(shim_public rpexec); then
	served=$(python3 - "$(port_of "$pub")" <<'PY'
import re, socket, sys
port, ok, lst = int(sys.argv[1]), 0, set()
for i in range(16):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1.5)
        s.sendall(b"seq-%d\n" % i)
        got = s.recv(4096)
        m = re.search(rb" l=(\d+) ", got)
        if got.startswith(b"pid=") and m:
            ok += 1
            lst.add(int(m.group(1)))
        s.close()
    except OSError:
        pass
print("served=%d listeners=%s" % (ok, ",".join(map(str, sorted(lst)))))
PY
)
	note "rpexec: $served"
	check "rpexec: 16 clients one after another, each within 1.5 s" \
	    grep -q "^served=16 " <<<"$served"
	check "rpexec: both inherited siblings took wakes" \
	    grep -q " listeners=0,1$" <<<"$served"
else
	fail "rpexec: registers"
fi

# --- listeners closed and made again; the table of listeners -----------------------
# A closed listener is forgotten with its queue: no descriptor leaks per
# cycle.  At most 256 are held at once; the next bind() is refused, never
# left bound to loopback unregistered; closing them frees the slots.
out=$(LD_PRELOAD=$SHIM_PRELOAD timeout 60 python3 - 2>"$T/cycles.err" <<'PY'
import errno, os, socket
def nfds():
    return len(os.listdir("/proc/self/fd"))
base = None
for i in range(6):
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    s.listen(8)
    s.close()
    if i == 0:
        base = nfds()
print("leaked=%d" % (nfds() - base))
held, err = [], 0
for i in range(300):
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", 0))
    except OSError as e:
        err = e.errno
        s.close()
        break
    held.append(s)
print("held=%d enobufs=%d" % (len(held), err == errno.ENOBUFS))
for s in held:
    s.close()
s = socket.socket()
s.bind(("0.0.0.0", 0))
print("again=%s" % s.getsockname()[0])
PY
)
note "cycles: $(tr '\n' ' ' <<<"$out")"
check "cycles: listen and close 5 times, no descriptor left behind" \
    grep -qx "leaked=0" <<<"$out"
check "cycles: 256 relayed listeners at once, the next bind() fails ENOBUFS" \
    grep -qx "held=256 enobufs=1" <<<"$out"
check "cycles: ... and says so" \
    grep -q "more than 256 relayed listeners open; bind() of port 0 refused" \
    "$T/cycles.err"
check "cycles: once they are closed, bind() is relayed again" \
    grep -qx "again=0.0.0.0" <<<"$out"

# --- clients on fds 4096 apart ------------------------------------------------------
# Each accepted socket's real client address is its own, however many
# descriptors the server has (the table once wrapped at 4096).
out=$(RELAY_ADDR_FILE=$T/manyfd.addr LD_PRELOAD=$SHIM_PRELOAD timeout 60 \
    python3 - 2>"$T/manyfd.err" <<'PY'
import os, resource, socket, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < 6000:
    print("skip: fd hard limit %d" % hard)
    raise SystemExit(0)
resource.setrlimit(resource.RLIMIT_NOFILE, (6000, hard))
srv = socket.socket()
srv.bind(("0.0.0.0", 0))
srv.listen(16)
path = os.environ["RELAY_ADDR_FILE"]
end = time.time() + 10
while not (os.path.exists(path) and open(path).read().strip()):
    if time.time() > end:
        raise SystemExit("no public address")
    time.sleep(0.05)
port = int(open(path).read().split()[0].rsplit(":", 1)[1])
c1 = socket.create_connection(("127.0.0.1", port), timeout=5)
a1, _ = srv.accept()
c2 = socket.create_connection(("127.0.0.1", port), timeout=5)
fill = []
while True:
    fd = os.open("/dev/null", os.O_RDONLY)
    fill.append(fd)
    if fd >= a1.fileno() + 4095:
        break
a2, _ = srv.accept()
print("apart=%d" % (a2.fileno() - a1.fileno()))
print("first=%d second=%d" % (a1.getpeername() == c1.getsockname(),
                              a2.getpeername() == c2.getsockname()))
PY
)
note "manyfd: $(tr '\n' ' ' <<<"$out")"
case $out in
skip*) echo "SKIP: manyfd: $out" ;;
*)
	check "manyfd: two clients on fds 4096 apart" grep -qx "apart=4096" <<<"$out"
	check "manyfd: each keeps its own client address" \
	    grep -qx "first=1 second=1" <<<"$out"
	;;
esac

# --- a daemon that closes the fds it did not open, then reuses the numbers ------
# The shim's queue fd is among them: the workers must fetch it again, and
# never take the server's own socket that now has its number.
if shim_ready closefds && pub=$(shim_public closefds); then
	check "closefds: served after the server closed the shim's fds" \
	    ask -n 6 -d 0.1 "$(port_of "$pub")"
	check "closefds: ... by both workers ($(distinct pid))" \
	    test "$(distinct pid)" = 2
	check "closefds: the server's socket on a reused fd number is untouched" \
	    answers_all "held=5"
	# A local connection that starts like a wake but has no token is a
	# plain local client, bytes intact.
	lport=$(ss -Hltnp | grep "pid=${SP[closefds]}," |
	    sed -n 's/.* 127\.0\.0\.1:\([0-9]*\) .*/\1/p' | head -1)
	forged=$(timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
s.sendall(b"RSHM" + b"x" * 28 + b" forged\n")
print(s.makefile().readline().strip())' "$lport" 2>&1)
	note "closefds: forged wake on 127.0.0.1:$lport answered: $forged"
	check "closefds: a forged wake is served as the local client it is" \
	    grep -q "peer=127.0.0.1:.* msg=RSHMxxxxxxxxxxxxxxxxxxxxxxxxxxxx forged" \
	    <<<"$forged"
	check "closefds: relayed clients are still served after it" \
	    ask -n 2 "$(port_of "$pub")"
else
	fail "closefds: registers"
fi

# --- a server that closes its listener with clients waiting, and lives on ------
# It still holds the helper's queue: the helper, leaving with the
# listener, must close the clients queued there instead of leaving them
# to wait as long as the server lives.  It listens, never accepts, and
# closes its listener after 4 s.
shim_run closer python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
time.sleep(4)
s.close()
time.sleep(60)' "$(free_port)"
SP[closer]=$SPID
if pub=$(shim_public closer); then
	timeout 30 python3 -c '
import socket, sys, time
cs = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
      for _ in range(2)]
t0 = time.time()
for c in cs:
    c.settimeout(25)
    try:
        while c.recv(4096):
            pass
    except OSError:
        pass
print("%.1f" % (time.time() - t0))' "$(port_of "$pub")" >"$T/closer.t" 2>&1
	took=$(cat "$T/closer.t")
	check "closer: its queued clients are closed when its listener goes (${took}s)" \
	    awk -v t="$took" 'BEGIN { exit !(t + 0 > 0 && t + 0 < 15) }'
	check "closer: the server lives on" alive "${SP[closer]}"
else
	fail "closer: registers"
fi

# --- a server that closes its listener and listens again on the port ---------
# The new listener must get a registration of its own: it once shared the
# closed one's, whose helper leaves with the old socket, and went dark.
shim_run relisten python3 -c '
import socket, sys, time
def listen():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sys.argv[1])))
    s.listen(8)
    return s
listen().close()
s = listen()
while True:
    c, _ = s.accept()
    c.sendall(b"second\n")
    c.close()' "$(free_port)"
SP[relisten]=$SPID
if pub=$(shim_public relisten 2); then
	# Served only once the first listener's helper has gone, and its
	# registration with it.
	old=$(shim_public relisten 1)
	wait_for 15 bash -c "! ss -Hltn 'sport = :${old##*:}' | grep -q LISTEN" ||
	    note "relisten: the first registration's port is still open"
	got=$(timeout 20 python3 -c '
import socket, sys
n = 0
for _ in range(3):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
    s.settimeout(5)
    n += s.recv(100) == b"second\n"
print(n)' "$(port_of "$pub")" 2>&1)
	check "relisten: the new listener is served through its own registration" \
	    test "$got" = 3
else
	fail "relisten: registers again"
fi

# --- a server that clears TCP_DEFER_ACCEPT on its listener --------------------
# nginx does on a binary upgrade (it finds the option on the inherited
# socket and turns off what its configuration does not ask for): a wake
# may then be accepted before its header is there, and must still be
# taken as a wake, not served as a local client that sent nothing.
shim_run nodefer python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(64)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 0)
while True:
    c, _ = s.accept()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 0)
    c.sendall(b"served\n")
    c.close()' "$(free_port)"
SP[nodefer]=$SPID
if pub=$(shim_public nodefer); then
	got=$(timeout 60 python3 -c '
import socket, sys
n = 0
for _ in range(30):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
    s.settimeout(5)
    try:
        n += s.recv(100) == b"served\n"
    except OSError:
        pass
print(n)' "$(port_of "$pub")" 2>&1)
	check "nodefer: 30 of 30 relayed clients served ($got)" test "$got" = 30
else
	fail "nodefer: registers"
fi

# --- a server at its fd limit --------------------------------------------------
# The wake takes the server's last free descriptor; the relayed connection
# must take the wake's place, not be dropped for want of one.
shim_run fdlimit python3 -c '
import os, resource, socket, sys
s = socket.socket()
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
resource.setrlimit(resource.RLIMIT_NOFILE,
                   (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
fill = []
try:
    while True:
        fill.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
os.close(fill.pop())
print("READY", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"got " + c.recv(100))
    c.close()' "$(free_port)"
SP[fdlimit]=$SPID
if pub=$(shim_public fdlimit) && wait_for 10 grep -q READY "$T/fdlimit.out"; then
	for i in 1 2 3; do
		got=$(timeout 10 python3 -c '
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
c.sendall(b"hello")
print(c.recv(100).decode())' "$(port_of "$pub")" 2>&1)
		check "fdlimit: client $i served with one descriptor left ($got)" \
		    test "$got" = "got hello"
	done
	check "fdlimit: the server lives on" alive "${SP[fdlimit]}"
else
	fail "fdlimit: registers"
fi

# --- re-exec per connection ----------------------------------------------------------
if shim_ready perconn && pub=$(shim_public perconn); then
	check "perconn: clients served by re-exec'd children" \
	    ask -n 4 "$(port_of "$pub")"
	check "perconn: 4 different processes" test "$(distinct pid)" = 4
	check "perconn: no unknown child reaped" answers_all "unk=0"
else
	fail "perconn: registers"
fi

for n in py6 two dual unix sel clean reap reapthr reexec perconn; do
	shim_stop "$n" "${SP[$n]}"
done
[ -n "${DPID:-}" ] && shim_stop daemon "$DPID"

# --- relay down at start ------------------------------------------------------------
DEAD=$(free_port)
P=$(free_port)
RELAY_PORT=$DEAD shim_run down python3 -m http.server "$P" --bind 0.0.0.0 \
    --directory "$T/www"
DOWN_PID=$SPID
if wait_for 10 gone "$DOWN_PID"; then
	wait "$DOWN_PID"
	rc=$?
	check "down: http.server exits non-zero ($rc)" test "$rc" != 0
else
	fail "down: http.server exits"
fi
check "down: one relayshim line naming the relay" \
    test "$(grep -c '^relayshim:' "$T/down.err")" = 1
check "down: ... it says which relay and why" \
    grep -Eq "^relayshim: cannot register 0\.0\.0\.0:$P with relay 127\.0\.0\.1:$DEAD: .*(refused|Connection)" \
    "$T/down.err"
note "down: $(grep '^relayshim:' "$T/down.err")"
RELAY_PORT=$DEAD shim_run down2 "$SSRV" -l "0.0.0.0:$(free_port)"
wait "$SPID"
check "down: listen() fails with an errno ($?)" \
    grep -q '^shim_server: listen: ' "$T/down2.err"
note "down: $(grep '^shim_server:' "$T/down2.err")"

# --- relay lost, then back on the same control port -------------------------------
shim_run lost "$SSRV" -m poll -l "0.0.0.0:$(free_port)" -l "unix:$T/l.sock"
LOST_PID=$SPID
if shim_ready lost && pub=$(shim_public lost); then
	check "lost: served before" ask -n 1 "$(port_of "$pub")"
	OLD_CTL=$RELAYD_PORT
	kill "$RELAYD_PID"
	check "lost: the helper logs the loss" wait_for 10 grep -q \
	    "relay 127.0.0.1:$OLD_CTL: .*registering again" "$T/lost.err"
	check "lost: the server is still running" alive "$LOST_PID"
	check "lost: its AF_UNIX listener still serves" ask -n 2 "unix:$T/l.sock"
	start_relayd -port "$OLD_CTL" || fail "lost: relayd restarts"
	if wait_for 10 grep -q "registered again" "$T/lost.err"; then
		pass "lost: registers again within 10 s"
		# relayd's log names a port per registration before the
		# extension handshake asks for the old one: trust the helper.
		again=$(sed -n 's/.*registered again, public port \([0-9]*\).*/\1/p' \
		    "$T/lost.err" | tail -1)
		note "lost: public port before $(port_of "$pub"), after $again"
		# Nobody else can take it meanwhile: the test has its own
		# network namespace (and the port is free otherwise too).
		check "lost: got the same public port back" \
		    test "$again" = "$(port_of "$pub")"
		check "lost: reachable again" ask -n 2 "$again"
	else
		fail "lost: registers again within 10 s"
		sed 's/^/  # /' "$T/lost.err" | tail -5
	fi
	check "lost: the server never stopped" alive "$LOST_PID"
else
	fail "lost: registers"
fi
shim_stop lost "$LOST_PID"

shim_helpers_gone
finish
