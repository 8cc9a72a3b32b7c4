#!/bin/bash
# stats.sh - relayd's metrics endpoint (-stats) and scripts/relayctl.
#
# With -stats 127.0.0.1:PORT: the text parses as Prometheus exposition;
# registrations, sessions, queued clients, exact byte counts each way and
# errors by kind (data_timeout, stray_data_connection, limit) move as
# they should; the per-registration samples carry the public port relayd
# logged and the server port it announced; relayctl shows the same.
# With -stats PATH: the same text over the UNIX socket, an echo session's
# bytes, relayctl -s, and the socket removed at exit.
. "$(dirname "$0")/lib.sh"

RELAYCTL=$TOP/scripts/relayctl
PEER=$T/peer.py
cat >"$PEER" <<'PY'
import os, socket, sys, time

def line(*a):
    print(*a, flush=True)

def read_all(s):
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            return n
        n += len(b)

cmd = sys.argv[1]
if cmd == "sink":
    # A local server for orig_helper -to: reads to EOF, answers <reply>
    # bytes, closes.  Prints its port first.
    reply = int(sys.argv[2])
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    line(ls.getsockname()[1])
    while True:
        c, _ = ls.accept()
        got = read_all(c)
        c.sendall(b"y" * reply)
        c.close()
        line("sink got", got)
elif cmd == "client":
    # Sends <n> bytes, keeps the session open until <gofile> exists, then
    # half-closes and counts what comes back.
    port, n, go = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"x" * n)
    line("sent", n)
    deadline = time.time() + 20
    while not os.path.exists(go) and time.time() < deadline:
        time.sleep(0.02)
    s.shutdown(socket.SHUT_WR)
    line("received", read_all(s))
elif cmd == "ctl":
    # A control connection that never dials back: prints what relayd sends.
    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    line("local", "%s:%d" % s.getsockname())
    f = s.makefile("rb")
    for l in f:
        line(l.decode().rstrip("\n"))
    line("EOF")
elif cmd == "hold":
    # Connects and waits for relayd to close the connection.
    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20)
    line("connected")
    try:
        read_all(s)
        line("closed")
    except socket.timeout:
        line("timeout")
elif cmd == "parse":
    # Prometheus text exposition, as relayd should write it: HELP and TYPE
    # once per family and before its samples, every sample
    # name{label="value",...} value, no series twice.
    import re
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
                        r'(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
                        r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})?'
                        r' (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)$')
    typed, helped, seen, bad = {}, set(), set(), []
    text = open(sys.argv[2]).read()
    if not text.endswith("\n"):
        bad.append("no final newline")
    for l in text.splitlines():
        m = re.match(r'^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$', l)
        if m:
            kind, name, rest = m.groups()
            if kind == "TYPE":
                if name in typed or rest not in ("counter", "gauge"):
                    bad.append(l)
                typed[name] = rest
            else:
                if name in helped:
                    bad.append(l)
                helped.add(name)
            continue
        m = sample.match(l)
        if not m:
            bad.append(l)
            continue
        name = m.group(1)
        if name not in typed:
            bad.append("no TYPE before: " + l)
        elif typed[name] == "counter" and not name.endswith("_total"):
            bad.append("counter not named _total: " + l)
        series = l.rsplit(" ", 1)[0]
        if series in seen:
            bad.append("twice: " + l)
        seen.add(series)
    for b in bad:
        line("bad:", b)
    sys.exit(1 if bad or not seen else 0)
PY

# fetch ADDR: the metrics text (HTTP over TCP, or over the UNIX socket).
fetch() {
	case $1 in
	/*) curl -fsS --max-time 5 --unix-socket "$1" http://relayd/metrics ;;
	*) curl -fsS --max-time 5 "http://$1/metrics" ;;
	esac
}

# metric ADDR SERIES: the value of one series ('name' or 'name{...}').
metric() {
	fetch "$1" | awk -v s="$2" '$1 == s { print $2; found = 1 }
	    END { exit !found }'
}

# reg_sample ADDR NAME PUBLIC_PORT: the per-registration sample's labels
# and value for the registration on that public port.
reg_sample() {
	fetch "$1" | grep "^$2{.*public_port=\"$3\"" | head -1
}

# metric_is ADDR SERIES VALUE (polled by wait_for).
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }

# expect NAME ADDR SERIES VALUE: wait up to 5 s for SERIES to be VALUE.
expect() {
	if wait_for 5 metric_is "$2" "$3" "$4"; then
		pass "$1"
	else
		fail "$1"
		note "$3 is $(metric "$2" "$3" || echo missing), want $4"
	fi
}

# relayd_ports PID: ports PID listens on, one a line.
relayd_ports() {
	ss -Hltnp 2>/dev/null | grep "pid=$1," |
	    awk '{ n = split($4, a, ":"); print a[n] }' | sort -u
}

parses() {
	fetch "$1" >"$T/parse.txt" && python3 "$PEER" parse "$T/parse.txt"
}

# ---- -stats host:port ------------------------------------------------------
sport=$(free_port)
S=127.0.0.1:$sport
if ! start_relayd -stats "$S" -max-regs 2 -data-timeout 1; then
	fail "relayd starts with -stats $S"
	finish
fi
check "log names the metrics port" \
    grep -q "relayd: metrics on port $sport\$" "$RELAYD_LOG"
check "GET answers with HTTP 200 and Prometheus' content type" \
    bash -c "curl -fsS -D - -o /dev/null --max-time 5 http://$S/metrics |
	tr -d '\r' | grep -q '^Content-Type: text/plain; version=0.0.4\$'"
check "metrics parse as Prometheus text (idle)" parses "$S"
expect "registrations 0 at start" "$S" relayd_registrations 0
for k in accept limit data_timeout stray_data_connection protocol auth io; do
	check "errors_total{kind=\"$k\"} present and 0 at start" \
	    metric_is "$S" "relayd_errors_total{kind=\"$k\"}" 0
done
check "uptime_seconds is a number" \
    bash -c "[[ \$(curl -fsS --max-time 5 http://$S/metrics |
	awk '\$1 == \"relayd_uptime_seconds\" { print \$2 }') =~ ^[0-9]+\$ ]]"

# Registration 1: orig_helper, relaying to a sink that answers 7777 bytes.
N_UP=123456
N_DOWN=7777
python3 "$PEER" sink "$N_DOWN" >"$T/sink.out" 2>&1 &
track_pid "$!"
wait_for 5 test -s "$T/sink.out"
sinkport=$(head -1 "$T/sink.out")
spawn "$T/helper.log" "$TBIN/orig_helper" -host 127.0.0.1 \
    -port "$RELAYD_PORT" -to "127.0.0.1:$sinkport"
helper_pid=$SPAWNED
pub1=$(nth_public_port 1)
peer1=$(sed -n 's/.*Request to relay from: //p' "$RELAYD_LOG" | head -1)
expect "registrations 1 after one registration" "$S" relayd_registrations 1
expect "registrations_total 1" "$S" relayd_registrations_total 1
# The server-facing port: the one relayd listens on that is none of the
# control, metrics and public ports (only one registration exists).
sport1=$(relayd_ports "$RELAYD_PID" |
    grep -vx -e "$RELAYD_PORT" -e "$sport" -e "$pub1" | head -1)
note "registration 1: public $pub1, server ${sport1:-?}, peer $peer1"
r1=$(reg_sample "$S" relayd_registration_sessions "$pub1")
check "per-registration sample carries the logged public port" \
    test -n "$r1"
check "per-registration sample carries the server port" \
    grep -q "server_port=\"$sport1\"" <<<"$r1"
check "per-registration sample carries the logged peer" \
    grep -q "peer=\"$peer1\"" <<<"$r1"
note "$r1"

# One session, held open until $T/go exists.
python3 "$PEER" client "$pub1" "$N_UP" "$T/go" >"$T/client.out" 2>&1 &
track_pid "$!"
expect "sessions 1 while the session is open" "$S" relayd_sessions 1
expect "sessions_total 1" "$S" relayd_sessions_total 1
check "registration's sessions sample is 1" bash -c \
    "[ \"\$(curl -fsS --max-time 5 http://$S/metrics |
	grep '^relayd_registration_sessions{.*public_port=\"$pub1\"' |
	awk '{ print \$NF }')\" = 1 ]"
expect "clients_queued 0 once paired" "$S" relayd_clients_queued 0
check "bytes_total counts only ended sessions (0 while open)" \
    metric_is "$S" 'relayd_bytes_total{direction="client_to_server"}' 0
check "metrics parse as Prometheus text (one session open)" parses "$S"
touch "$T/go"
check "client got the sink's answer" \
    wait_for 10 grep -qx "received $N_DOWN" "$T/client.out"
expect "sessions 0 after the session ended" "$S" relayd_sessions 0
expect "bytes client_to_server exact after the session" "$S" \
    'relayd_bytes_total{direction="client_to_server"}' "$N_UP"
expect "bytes server_to_client exact after the session" "$S" \
    'relayd_bytes_total{direction="server_to_client"}' "$N_DOWN"
expect "sessions_total still 1" "$S" relayd_sessions_total 1
expect "no io errors from a clean session" "$S" \
    'relayd_errors_total{kind="io"}' 0

# Registration 2: a control connection that never dials back, so its
# client queues and times out after -data-timeout 1.
python3 "$PEER" ctl "$RELAYD_PORT" >"$T/ctl2.out" 2>&1 &
ctl2_pid=$!
track_pid "$ctl2_pid"
pub2=$(nth_public_port 2)
expect "registrations 2" "$S" relayd_registrations 2
python3 "$PEER" hold "$pub2" >"$T/hold.out" 2>&1 &
track_pid "$!"
wait_for 5 grep -q '^\[NEW\]' "$T/ctl2.out"
sport2=$(sed -n 's/^\[NEW\]\([0-9]*\)$/\1/p' "$T/ctl2.out" | head -1)
note "registration 2: public $pub2, server ${sport2:-?}"
expect "clients_queued 1 while a client waits" "$S" relayd_clients_queued 1
r2=$(reg_sample "$S" relayd_registration_queued "$pub2")
check "registration's queued sample is 1" \
    bash -c '[ "${1##* }" = 1 ]' - "$r2"
check "registration 2's server port is the one [NEW] announced" \
    grep -q "server_port=\"$sport2\"" <<<"$r2"
note "$r2"
check "metrics parse as Prometheus text (two registrations)" parses "$S"
expect "errors_total{kind=\"data_timeout\"} 1 after the timeout" "$S" \
    'relayd_errors_total{kind="data_timeout"}' 1
check "the timed-out client was closed" \
    wait_for 5 grep -qx closed "$T/hold.out"
expect "clients_queued 0 after the timeout" "$S" relayd_clients_queued 0
check "relayd logged the timeout" grep -q 'reg [0-9]*: no data connection' \
    "$RELAYD_LOG"

# A stray connection to the server port, no client announced.
python3 "$PEER" hold "$sport2" >"$T/stray.out" 2>&1
expect "errors_total{kind=\"stray_data_connection\"} 1 after a stray" "$S" \
    'relayd_errors_total{kind="stray_data_connection"}' 1
check "the stray connection was closed" grep -qx closed "$T/stray.out"

# A third registration is refused (-max-regs 2).
python3 "$PEER" ctl "$RELAYD_PORT" >"$T/ctl3.out" 2>&1 &
track_pid "$!"
check "the refused registration is closed" \
    wait_for 5 grep -qx EOF "$T/ctl3.out"
expect "errors_total{kind=\"limit\"} 1 after a refused registration" "$S" \
    'relayd_errors_total{kind="limit"}' 1
expect "registrations still 2" "$S" relayd_registrations 2
expect "registrations_total still 2" "$S" relayd_registrations_total 2

# relayctl reads the same numbers.
ctl=$(timeout 10 "$RELAYCTL" -a "$S" 2>&1)
note "relayctl -a $S:"
note "$ctl"
check "relayctl: registrations" grep -qx \
    'registrations: *2 open, 2 since start' <<<"$ctl"
check "relayctl: sessions" grep -qx 'sessions: *0 open, 1 since start' \
    <<<"$ctl"
check "relayctl: queued clients" grep -qx 'queued clients: *0' <<<"$ctl"
check "relayctl: bytes each way" grep -q \
    "^bytes: *$N_UP client to server ([0-9.]* KiB), $N_DOWN server to client" \
    <<<"$ctl"
check "relayctl: errors by kind" grep -qx \
    'errors: *limit 1, data_timeout 1, stray_data_connection 1' <<<"$ctl"
check "relayctl: uptime" grep -q '^uptime: *[0-9][0-9]:[0-9][0-9]:[0-9][0-9] ([0-9]* s)$' \
    <<<"$ctl"
regs=$(timeout 10 "$RELAYCTL" -a "$S" regs 2>&1)
note "$regs"
check "relayctl regs: registration 1 (public, server, peer, 0 sessions, 0 queued)" \
    grep -Eq "^[0-9]+ +$pub1 +$sport1 +$peer1 +0 +0\$" <<<"$regs"
check "relayctl regs: registration 2" \
    grep -Eq "^[0-9]+ +$pub2 +$sport2 +127\.0\.0\.1:[0-9]+ +0 +0\$" <<<"$regs"
check "relayctl regs: a header and two registrations" \
    test "$(wc -l <<<"$regs")" = 3
check "relayctl raw: relayd's text as served" bash -c "
	diff <(timeout 10 '$RELAYCTL' -a '$S' raw | grep -v uptime_seconds) \
	    <(curl -fsS --max-time 5 http://$S/metrics | grep -v uptime_seconds)"
check "relayctl: a dead address fails with status 1" \
    bash -c "timeout 10 '$RELAYCTL' -a 127.0.0.1:$(free_port) >/dev/null 2>&1;
	[ \$? = 1 ]"
check "relayctl --help" bash -c "'$RELAYCTL' --help | grep -q '^Usage: relayctl'"
check "relayctl: unknown command fails with status 2" \
    bash -c "'$RELAYCTL' -a '$S' bogus >/dev/null 2>&1; [ \$? = 2 ]"

# Control connections closing end their registrations.
kill "$helper_pid"
expect "registrations 1 after registration 1's control connection closed" \
    "$S" relayd_registrations 1
check "registration 1's samples are gone" \
    bash -c "! curl -fsS --max-time 5 http://$S/metrics |
	grep -q 'public_port=\"$pub1\"'"
kill "$ctl2_pid"
expect "registrations 0 after both closed" "$S" relayd_registrations 0
check "no per-registration samples left" \
    bash -c "! curl -fsS --max-time 5 http://$S/metrics |
	grep -q '^relayd_registration_[a-z]*{'"
expect "registrations_total stays 2" "$S" relayd_registrations_total 2
check "relayctl regs: no registrations" \
    bash -c "[ \"\$('$RELAYCTL' -a '$S' regs)\" = 'no registrations' ]"
check "metrics parse as Prometheus text (after everything)" parses "$S"

# ---- -stats /path (UNIX socket) -------------------------------------------
U=$T/stats.sock
if start_relayd -stats "$U"; then
	check "log names the metrics socket" \
	    grep -q "relayd: metrics .*$U" "$RELAYD_LOG"
	check "metrics parse as Prometheus text (UNIX socket)" parses "$U"
	spawn "$T/echo.log" "$TBIN/orig_helper" -host 127.0.0.1 \
	    -port "$RELAYD_PORT" -echo
	pubu=$(nth_public_port 1)
	expect "UNIX: registrations 1" "$U" relayd_registrations 1
	python3 "$PEER" client "$pubu" 5000 /dev/null >"$T/uclient.out" 2>&1
	check "UNIX: echo came back" grep -qx 'received 5000' "$T/uclient.out"
	expect "UNIX: sessions 0 after the echo" "$U" relayd_sessions 0
	expect "UNIX: sessions_total 1" "$U" relayd_sessions_total 1
	expect "UNIX: bytes client_to_server 5000" "$U" \
	    'relayd_bytes_total{direction="client_to_server"}' 5000
	expect "UNIX: bytes server_to_client 5000" "$U" \
	    'relayd_bytes_total{direction="server_to_client"}' 5000
	plain=$(printf 'stats\n' | timeout 5 socat -t 5 - "UNIX-CONNECT:$U")
	check "UNIX: a plain line gets the text without headers" \
	    bash -c 'grep -q "^relayd_sessions_total 1$" <<<"$1" &&
		! grep -q "^HTTP/" <<<"$1"' - "$plain"
	ctl=$(timeout 10 "$RELAYCTL" -s "$U" 2>&1)
	note "$ctl"
	check "relayctl -s: sessions" grep -qx \
	    'sessions: *0 open, 1 since start' <<<"$ctl"
	check "relayctl -s: bytes" grep -q \
	    '^bytes: *5000 client to server (4.9 KiB), 5000 server to client (4.9 KiB)$' \
	    <<<"$ctl"
	check "relayctl -s: registration" grep -Eq "^[0-9]+ +$pubu +[0-9]+ +127\.0\.0\.1:[0-9]+ +0 +0\$" \
	    <<<"$ctl"
	check "relayctl: RELAYD_STATS names the socket" \
	    bash -c "RELAYD_STATS='$U' '$RELAYCTL' | grep -q '^sessions: *0 open, 1'"
	# relayctl without python3: socat does the socket I/O.
	mkdir -p "$T/nopy"
	for t in sh awk socat sed cat; do
		ln -sf "$(command -v "$t")" "$T/nopy/$t"
	done
	check "relayctl works with socat and no python3" bash -c \
	    "PATH='$T/nopy' sh '$RELAYCTL' -s '$U' | grep -q '^sessions: *0 open, 1'"
	# At most 16 connections at a time: 20 silent ones, then the 4
	# beyond are closed at once, and a reader still gets in after.
	held=$(timeout 20 python3 - "$U" "$TOP/tests/peers" <<'PY'
import socket, sys, time
sys.path.insert(0, sys.argv[2])
from peerlib import closed_count
cs = []
for _ in range(20):
    c = socket.socket(socket.AF_UNIX)
    c.connect(sys.argv[1])
    cs.append(c)
# The 4 beyond the limit are closed at accept: wait for them (bounded).
end = time.time() + 5
while closed_count(cs) < 4 and time.time() < end:
    time.sleep(0.05)
time.sleep(0.2)  # and give a wrong fifth the time to show
print("closed=%d" % closed_count(cs))
PY
)
	note "20 silent metrics connections: $held"
	check "metrics: at most 16 connections held, the rest closed at once" \
	    test "$held" = "closed=4"
	check "metrics: answered again once they are gone" parses "$U"
	kill "$RELAYD_PID"
	wait "$RELAYD_PID" 2>/dev/null
	check "the metrics socket is removed at exit" test ! -e "$U"
else
	fail "relayd starts with -stats $U"
fi

# A socket left behind at the -stats path (a relayd killed by SIGKILL) is
# replaced; any other kind of file there is an error.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    "$T/stale.sock"
check "a stale socket is left at the path" test -S "$T/stale.sock"
if start_relayd -stats "$T/stale.sock"; then
	check "relayd replaces a stale metrics socket and answers on it" \
	    parses "$T/stale.sock"
else
	fail "relayd starts over a stale metrics socket"
fi
echo not-a-socket >"$T/file.sock"
timeout 5 "$RELAYD" -bind 127.0.0.1 -port 0 -stats "$T/file.sock" \
    >/dev/null 2>"$T/file.err"
check "relayd refuses a -stats path that holds a regular file (exit 1)" \
    test $? = 1
check "... and leaves the file alone" grep -qx not-a-socket "$T/file.sock"

# ---- a metrics reader that does not read --------------------------------------
# 1,500 registrations make an answer larger than a UNIX socket's send
# buffer; a reader that never reads must not hold up the main thread,
# which accepts the servers: other metrics readers and new registrations
# go on, and the stuck reader is closed after 5 s.
U=$T/stuck.sock
if start_relayd -stats "$U" -max-regs 2000 -max-regs-per-ip 2000; then
	# line_holds PATTERN COND: the output has a line matching PATTERN,
	# and COND (awk) holds on it; a missing line fails.
	line_holds() {
		awk "/$1/ { f = 1; ok = ($2) } END { exit !(f && ok) }" \
		    "$T/stuck.out"
	}
	timeout 90 python3 - "$RELAYD_PORT" "$U" >"$T/stuck.out" 2>&1 <<'PY'
import socket, sys, time
ctl, path = int(sys.argv[1]), sys.argv[2]

def dial():
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(10)
    c.connect(path)
    c.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    return c

def get():
    t0 = time.time()
    c = dial()
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    return n, time.time() - t0

regs = [socket.create_connection(("127.0.0.1", ctl), 5) for _ in range(1500)]
while True:                     # until relayd lists them all
    n, _ = get()
    if n > 1500 * 200:
        break
    time.sleep(0.2)
print("answer bytes", n)
stuck = dial()
time.sleep(0.5)
t0 = time.time()
r = socket.create_connection(("127.0.0.1", ctl), 5)
r.settimeout(10)
r.sendall(b"[HELLO] v=1 ka=10 ext=addr\n")
ok = r.recv(4096)
print("registration %.2f s %s" % (time.time() - t0, ok[:4].decode()))
n, took = get()
print("other reader %.2f s" % took)
time.sleep(6)                   # never read before relayd gives up
got = 0
try:
    while True:
        b = stuck.recv(65536)
        if not b:
            break
        got += len(b)
except OSError:
    pass
print("stuck reader closed after %d of %d bytes" % (got, n))
PY
	rc=$?
	note "$(tr '\n' ';' <"$T/stuck.out")"
	check "stuck reader: the client script ran to its end" test "$rc" = 0
	check "stuck reader: the answer is larger than a socket buffer" \
	    line_holds '^answer bytes' '$3 > 300000'
	check "stuck reader: another reader is answered at once" \
	    line_holds '^other reader' '$3 < 1'
	check "stuck reader: relayd still answers a new registration at once" \
	    line_holds '^registration' '$2 < 1 && $4 == "[OK]"'
	check "stuck reader: closed by relayd, the answer cut short" \
	    line_holds '^stuck reader closed' '$5 < $7' 
	check "stuck reader: relayd is alive" alive "$RELAYD_PID"
else
	fail "relayd starts with -stats $U -max-regs 2000"
fi

finish
