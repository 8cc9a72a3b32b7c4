#!/bin/bash
# logging.sh - relayd's log levels and destinations, and -t.
#
#  - default: the original's lines, byte-exact, each behind Go's
#    "YYYY/MM/DD HH:MM:SS " prefix; no debug lines;
#  - -v: per-session debug lines carrying "reg N:" and "session N:" (the
#    registration id is the one the metrics show), and every line of
#    relayd's own carries an id or names relayd;
#  - -q: the original's info lines are gone, warnings stay;
#  - -syslog: lines go to syslog (a datagram socket at /dev/log that this
#    test reads), none to stderr;
#  - -t: checks the flags, binds nothing, exits 0; a bad -secret-file
#    fails it with a message naming the file.
. "$(dirname "$0")/lib.sh"

TS='[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} '
# The original relay's six lines (original-protocol.md section 1.4).
ORIG="^$TS(Request to relay from: [^ ]+|Serving relay requests on port [0-9]+|Client connected: [^ ]+|Server connected: [^ ]+|Client disconnected .+|server disconnected .+)\$"

PEER=$T/peer.py
cat >"$PEER" <<'PY'
import os, socket, sys

def line(*a):
    print(*a, flush=True)

cmd = sys.argv[1]
if cmd == "client":
    # Sends <n> bytes, half-closes, counts what comes back.
    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20)
    line("local %s:%d" % s.getsockname())
    s.sendall(b"x" * int(sys.argv[3]))
    s.shutdown(socket.SHUT_WR)
    n = 0
    while True:
        b = s.recv(65536)
        if not b:
            break
        n += len(b)
    line("received", n)
elif cmd == "hold":
    # Connects and waits (20 s at most) for the other end to close.
    s = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20)
    line("local %s:%d" % s.getsockname())
    try:
        while s.recv(4096):
            pass
        line("closed")
    except socket.timeout:
        line("timeout")
elif cmd == "syslogd":
    # A syslog daemon of one socket: each datagram becomes a line.
    path, out = sys.argv[2], sys.argv[3]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o666)
    with open(out, "ab", buffering=0) as f:
        while True:
            d = s.recv(65536).rstrip(b"\n").replace(b"\n", b"\\n")
            f.write(d + b"\n")
PY

# sample ADDR NAME PUBLIC_PORT: the per-registration metric line.
sample() {
	curl -fsS --max-time 5 "http://$1/metrics" |
	    grep "^$2{.*public_port=\"$3\"" | head -1
}
label() { sed -n "s/.*[{,]$2=\"\([^\"]*\)\".*/\1/p" <<<"$1"; }
metrics_up() { curl -fsS --max-time 5 "http://$1/metrics" >/dev/null; }
reg_public_port() {
	curl -fsS --max-time 5 "http://$1/metrics" |
	    sed -n 's/^relayd_registration_sessions{.*public_port="\([0-9]*\)".*/\1/p' |
	    head -1
}

# start_bare LOG OUT FLAGS...: relayd on a port picked here, for runs in
# which its start-up line is not on stderr (-q, -syslog); ready once it
# has printed "Waiting for clients..." on stdout.  Sets RELAYD_PID and
# RELAYD_PORT.
start_bare() {
	local log=$1 out=$2
	shift 2
	RELAYD_PORT=$(free_port)
	$RELAYD_WRAP "$@" -bind 127.0.0.1 -port "$RELAYD_PORT" >"$out" \
	    2>"$log" &
	RELAYD_PID=$!
	track_pid "$RELAYD_PID"
	wait_for 20 grep -q '^Waiting for clients\.\.\.$' "$out" &&
	    wait_for 5 listening "$RELAYD_PORT"
}

# session LOG N: one echo session of N bytes through orig_helper -echo,
# registered with the relayd on $RELAYD_PORT; sets PUB (its public port,
# from LOG) and CLIENT (the client's address) and waits for both
# directions to end in LOG.
session() {
	local log=$1 n=$2 before regs
	before=$(grep -c 'server disconnected' "$log")
	regs=$(grep -c 'Serving relay' "$log")
	spawn "$T/helper.$RELAYD_PORT.log" "$TBIN/orig_helper" -host 127.0.0.1 \
	    -port "$RELAYD_PORT" -echo
	PUB=$(nth_public_port $((regs + 1)) "$log")
	python3 "$PEER" client "$PUB" "$n" >"$T/client.out" 2>&1
	CLIENT=$(sed -n 's/^local //p' "$T/client.out")
	grep -qx "received $n" "$T/client.out" || note "client: $(cat "$T/client.out")"
	wait_for 5 count_ge $((before + 1)) 'server disconnected' "$log"
	wait_for 5 count_ge $((before + 1)) 'Client disconnected' "$log"
}

# ---- default -----------------------------------------------------------
day0=$(date +%Y/%m/%d)
if ! start_relayd; then
	fail "relayd starts"
	finish
fi
session "$RELAYD_LOG" 1000
day1=$(date +%Y/%m/%d)
note "default log:"
note "$(cat "$RELAYD_LOG")"
check "default: every line has Go's timestamp prefix" \
    bash -c "! grep -Evq '^$TS' '$RELAYD_LOG'"
check "default: the date is today's (local time)" bash -c \
    "! cut -c1-10 '$RELAYD_LOG' | grep -vxq -e '$day0' -e '$day1'"
check "default: stdout is exactly the original's line" \
    cmp -s "$RELAYD_OUT" <(printf 'Waiting for clients...\n')
check "default: Request to relay from: ADDR" \
    grep -Eq "^${TS}Request to relay from: 127\.0\.0\.1:[0-9]+\$" "$RELAYD_LOG"
check "default: Serving relay requests on port N" \
    grep -Eq "^${TS}Serving relay requests on port $PUB\$" "$RELAYD_LOG"
check "default: Client connected: <the client's address>" \
    grep -Eq "^${TS}Client connected: $CLIENT\$" "$RELAYD_LOG"
check "default: Server connected: ADDR" \
    grep -Eq "^${TS}Server connected: 127\.0\.0\.1:[0-9]+\$" "$RELAYD_LOG"
check "default: Client disconnected <nil>" \
    grep -Eq "^${TS}Client disconnected <nil>\$" "$RELAYD_LOG"
check "default: server disconnected <nil>" \
    grep -Eq "^${TS}server disconnected <nil>\$" "$RELAYD_LOG"
check "default: the original's lines in the original's order" bash -c "
	grep -Eo 'Request to relay|Serving relay|Client connected|Server connected' \
	    '$RELAYD_LOG' | tr '\n' , |
	    grep -qx 'Request to relay,Serving relay,Client connected,Server connected,'"
check "default: no debug lines" \
    bash -c "! grep -Eq 'session [0-9]+:|paired' '$RELAYD_LOG'"
check "default: relayd's own lines carry no ident prefix" \
    bash -c "! grep -Eq '^${TS}relayd: relayd' '$RELAYD_LOG'"
# Every line is the original's or one of relayd's own, which say whose
# they are.
check "default: only the original's lines and relayd's start-up line" \
    bash -c "! grep -Ev '$ORIG' '$RELAYD_LOG' |
	grep -Evq '^${TS}relayd [0-9.]+: servers register on port [0-9]+ '"

# ---- -v ----------------------------------------------------------------
sport=$(free_port)
if start_relayd -v -stats "127.0.0.1:$sport"; then
	# A registration whose sample we read before its session.
	spawn "$T/helperv.log" "$TBIN/orig_helper" -host 127.0.0.1 \
	    -port "$RELAYD_PORT" -echo
	PUB=$(nth_public_port 1)
	wait_for 5 test -n "$(sample "127.0.0.1:$sport" \
	    relayd_registration_sessions "$PUB")"
	smp=$(sample "127.0.0.1:$sport" relayd_registration_sessions "$PUB")
	rid=$(label "$smp" id)
	python3 "$PEER" client "$PUB" 4321 >"$T/client.out" 2>&1
	CLIENT=$(sed -n 's/^local //p' "$T/client.out")
	wait_for 5 grep -q 'session [0-9]*: closed' "$RELAYD_LOG"
	note "-v log:"
	note "$(cat "$RELAYD_LOG")"
	check "-v: reg N: client ADDR paired (N is the metrics' id)" \
	    grep -Eq "^${TS}reg $rid: client $CLIENT paired\$" "$RELAYD_LOG"
	sid=$(sed -En "s|^${TS}session ([0-9]+): reg $rid, on worker [0-9]+\$|\1|p" \
	    "$RELAYD_LOG" | head -1)
	check "-v: session S: reg N, on worker W" test -n "$sid"
	check "-v: session S: closed (...), bytes each way" grep -Eq \
	    "^${TS}session $sid: closed \(both directions done\), 4321 bytes to server, 4321 to client\$" \
	    "$RELAYD_LOG"
	check "-v: the session id differs from the registration id" \
	    test "$sid" != "$rid"
	check "-v: the original's lines are still there, byte-exact" bash -c "
		grep -Eq '^${TS}Client connected: $CLIENT\$' '$RELAYD_LOG' &&
		grep -Eq '^${TS}Server connected: 127\.0\.0\.1:[0-9]+\$' '$RELAYD_LOG' &&
		grep -Eq '^${TS}Client disconnected <nil>\$' '$RELAYD_LOG' &&
		grep -Eq '^${TS}server disconnected <nil>\$' '$RELAYD_LOG'"
	check "-v: every line has Go's timestamp prefix" \
	    bash -c "! grep -Evq '^$TS' '$RELAYD_LOG'"
	# Closing the registration adds relayd's own line about it.
	kill "$SPAWNED"
	wait_for 5 grep -q "reg $rid: closing registration" "$RELAYD_LOG"
	bad=$(grep -Ev "$ORIG" "$RELAYD_LOG" |
	    grep -Ev "^${TS}(reg [0-9]+|session [0-9]+|relayd( [0-9.]+)?): ")
	check "-v: every line not the original's carries reg N:, session N: or relayd:" \
	    test -z "$bad"
	[ -n "$bad" ] && note "without an id: $bad"
	# The original's lines about a session carry no id: they must stay
	# byte-exact.
	n_orig=$(grep -Ec "^${TS}(Client connected|Server connected|Client disconnected|server disconnected)" "$RELAYD_LOG")
	note "$n_orig original lines about this session carry no id (by design)"
else
	fail "relayd starts with -v"
fi

# ---- -q ----------------------------------------------------------------
sport=$(free_port)
if start_bare "$T/q.log" "$T/q.out" "$RELAYD" -q -stats "127.0.0.1:$sport" \
    -max-regs 1; then
	S=127.0.0.1:$sport
	wait_for 5 metrics_up "$S"
	spawn "$T/helperq.log" "$TBIN/orig_helper" -host 127.0.0.1 \
	    -port "$RELAYD_PORT" -echo
	wait_for 5 test -n "$(reg_public_port "$S")"
	PUB=$(reg_public_port "$S")
	smp=$(sample "$S" relayd_registration_sessions "$PUB")
	srv=$(label "$smp" server_port)
	python3 "$PEER" client "$PUB" 100 >"$T/client.out" 2>&1
	check "-q: relaying works" grep -qx 'received 100' "$T/client.out"
	# A refused registration (-max-regs 1) and a stray data connection:
	# two warnings.
	python3 "$PEER" hold "$RELAYD_PORT" >"$T/refused.out" 2>&1
	python3 "$PEER" hold "$srv" >"$T/stray.out" 2>&1
	wait_for 5 grep -q 'stray connection' "$T/q.log"
	note "-q log:"
	note "$(cat "$T/q.log")"
	check "-q: the refusal warning is logged" grep -Eq \
	    "^${TS}registration limit reached; refusing 127\.0\.0\.1:[0-9]+\$" \
	    "$T/q.log"
	check "-q: the stray-connection warning is logged" grep -Eq \
	    "^${TS}reg [0-9]+: stray connection from 127\.0\.0\.1:[0-9]+ on server port $srv with no client waiting; closed\$" \
	    "$T/q.log"
	check "-q: none of the original's info lines" \
	    bash -c "! grep -Eq '$ORIG' '$T/q.log'"
	check "-q: no start-up info lines" \
	    bash -c "! grep -Eq 'servers register on port|metrics on' '$T/q.log'"
	check "-q: stdout still has the original's line" \
	    cmp -s "$T/q.out" <(printf 'Waiting for clients...\n')
else
	fail "relayd starts with -q"
	note "$(cat "$T/q.log")"
fi

# ---- -syslog -----------------------------------------------------------
# glibc's syslog(3) writes datagrams to /dev/log.  relayd runs in a mount
# namespace of its own whose /dev is a directory of ours: "log" leads to
# our socket, "null" is the real one.  The host's /dev is never touched,
# so no other process's log lines come here, and nothing is left behind.
SYSLOG_SOCK=$T/log.sock
SYSLOG_OUT=$T/syslog.txt
how=
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
	python3 "$PEER" syslogd "$SYSLOG_SOCK" "$SYSLOG_OUT" \
	    2>"$T/syslogd.err" &
	track_pid "$!"
	mkdir -p "$T/dev"
	wait_for 5 test -S "$SYSLOG_SOCK" && how=unshare
fi
if [ -z "$how" ]; then
	echo "SKIP: -syslog (needs root for a mount namespace)"
else
	start_bare "$T/sl.log" "$T/sl.out" unshare -m sh -c \
	    'touch "$0/null" && mount --bind /dev/null "$0/null" &&
	     ln -s "$1" "$0/log" && mount --bind "$0" /dev &&
	     shift && exec "$@"' "$T/dev" "$SYSLOG_SOCK" \
	    "$RELAYD" -syslog -max-regs 1
	rc=$?
	check "-syslog: relayd starts" test $rc = 0
	pid=$RELAYD_PID
	python3 "$PEER" hold "$RELAYD_PORT" >/dev/null 2>&1 &
	track_pid "$!"
	wait_for 5 grep -q "relayd\[$pid\]: Serving relay requests" "$SYSLOG_OUT"
	python3 "$PEER" hold "$RELAYD_PORT" >/dev/null 2>&1
	wait_for 5 grep -q "relayd\[$pid\]: registration limit" "$SYSLOG_OUT"
	mine=$(grep "relayd\[$pid\]: " "$SYSLOG_OUT")
	note "syslog:"
	note "$mine"
	# <30> is daemon.info, <28> daemon.warning.
	SL="[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} relayd\\[$pid\\]: "
	check "-syslog: start-up line at daemon.info" grep -Eq \
	    "^<30>${SL}relayd [0-9.]+: servers register on port $RELAYD_PORT " \
	    <<<"$mine"
	check "-syslog: Request to relay from: ADDR, at daemon.info" grep -Eq \
	    "^<30>${SL}Request to relay from: 127\.0\.0\.1:[0-9]+\$" <<<"$mine"
	check "-syslog: Serving relay requests on port N" grep -Eq \
	    "^<30>${SL}Serving relay requests on port [0-9]+\$" <<<"$mine"
	check "-syslog: a warning at daemon.warning" grep -Eq \
	    "^<28>${SL}registration limit reached; refusing 127\.0\.0\.1:[0-9]+\$" \
	    <<<"$mine"
	check "-syslog: no Go timestamp inside syslog messages" \
	    bash -c "! grep -Eq '\]: $TS' <<<\"\$1\"" - "$mine"
	check "-syslog: nothing on stderr" test ! -s "$T/sl.log"
	[ -s "$T/sl.log" ] && note "stderr: $(cat "$T/sl.log")"
	check "-syslog: stdout still has the original's line" \
	    cmp -s "$T/sl.out" <(printf 'Waiting for clients...\n')
	kill "$pid"
	wait "$pid" 2>/dev/null
	check "-syslog: the stop is logged too" \
	    wait_for 5 grep -q "relayd\[$pid\]: relayd: stopped" "$SYSLOG_OUT"
fi

# ---- -t ----------------------------------------------------------------
# A port that is taken and a socket path: relayd -t must touch neither.
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$T/busy.out" &
track_pid "$!"
wait_for 5 test -s "$T/busy.out"
busy=$(head -1 "$T/busy.out")
timeout 5 "$RELAYD" -t -bind 127.0.0.1 -port "$busy" \
    -stats "$T/t.sock" >"$T/t.out" 2>"$T/t.err"
rc=$?
check "-t: exits 0" test $rc = 0
check "-t: says the configuration is OK" \
    grep -qx 'relayd: configuration OK' "$T/t.out"
check "-t: binds nothing (a taken control port is no error)" \
    test ! -s "$T/t.err"
check "-t: no metrics socket" test ! -e "$T/t.sock"
check "-t: does not wait for clients" \
    bash -c "! grep -q 'Waiting for clients' '$T/t.out'"

printf 'a-secret-of-32-bytes-0123456789\n' >"$T/good.secret"
timeout 5 "$RELAYD" -t -secret-file "$T/good.secret" >"$T/t.out" 2>&1
check "-t: a good secret file passes" test $? = 0

timeout 5 "$RELAYD" -t -secret-file "$T/missing.secret" >"$T/t.out" 2>&1
rc=$?
note "missing secret: rc $rc: $(cat "$T/t.out")"
check "-t: a missing -secret-file fails with status 1" test $rc = 1
check "-t: ... and says which file and why" grep -qx \
    "relayd: cannot open secret file $T/missing.secret: No such file or directory" \
    "$T/t.out"
printf 'short\n' >"$T/short.secret"
timeout 5 "$RELAYD" -t -secret-file "$T/short.secret" >"$T/t.out" 2>&1
rc=$?
note "short secret: rc $rc: $(cat "$T/t.out")"
check "-t: a too-short secret fails with status 1, naming the file" \
    bash -c "[ $rc = 1 ] && grep -q 'secret file $T/short.secret: the secret must be' '$T/t.out'"
timeout 5 "$RELAYD" -t -secret-file "$T" >"$T/t.out" 2>&1
rc=$?
check "-t: a directory as -secret-file fails with status 1" \
    bash -c "[ $rc = 1 ] && grep -q 'secret file $T' '$T/t.out'"
timeout 5 "$RELAYD" -t -user no-such-user-relayd-test >"$T/t.out" 2>&1
rc=$?
check "-t: an unknown -user fails with status 1" \
    bash -c "[ $rc = 1 ] && grep -q 'unknown user no-such-user-relayd-test' '$T/t.out'"
timeout 5 "$RELAYD" -t -stats nonsense >"$T/t.out" 2>&1
rc=$?
check "-t: a -stats that is neither host:port nor /path fails with status 1" \
    bash -c "[ $rc = 1 ] && grep -q 'stats wants host:port or /path' '$T/t.out'"
echo keep >"$T/plain.file"
timeout 5 "$RELAYD" -t -stats "$T/plain.file" >"$T/t.out" 2>&1
rc=$?
check "-t: -stats on a file that is not a socket fails with status 1" \
    bash -c "[ $rc = 1 ] && grep -q 'is not a socket' '$T/t.out' &&
	grep -qx keep '$T/plain.file'"
timeout 5 "$RELAYD" -t -port 70000 >"$T/t.out" 2>&1
check "-t: a bad flag value fails with status 2" test $? = 2

finish
