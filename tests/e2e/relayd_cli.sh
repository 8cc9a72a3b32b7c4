#!/bin/bash
# relayd_cli.sh - relayd's command line, startup output, bind errors and
# signals, compared with what the original relay accepted (Go flags).
. "$(dirname "$0")/lib.sh"

# run_port NAME ARGS...: relayd started with ARGS (a port placeholder
# @P@ is replaced by a free port) must log and listen on that port.
run_port() {
	local name=$1 p args=() a log=$T/cli.$1.log pid ok=0
	shift
	p=$(free_port)
	for a in "$@"; do args+=("${a//@P@/$p}"); done
	$RELAYD_WRAP "$RELAYD" -bind 127.0.0.1 "${args[@]}" >"$T/cli.$name.out" \
	    2>"$log" &
	pid=$!
	track_pid "$pid"
	if wait_for 10 grep -q "servers register on port $p\b" "$log" &&
	    wait_for 5 listening "$p"; then
		ok=1
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ $ok = 1 ] || { note "$name:"; sed 's/^/  # /' "$log"; }
	check "cli: $name binds the given port" test $ok = 1
}

run_port "-port N" -port @P@
run_port "-port=N" -port=@P@
run_port "--port N" --port @P@
run_port "--port=N" --port=@P@
# Go's flag package ends the flags at "--", and takes its bool spellings.
run_port "-- N (positional after --)" -- @P@
check "cli: -v=TRUE and -q=F are Go's bools" \
    "$RELAYD" -t -v=TRUE -q=F
# ... and mean what they say: -q=F leaves the info lines on, -q=T does not.
qp=$(free_port)
spawn "$T/qf.log" "$RELAYD" -bind 127.0.0.1 -port "$qp" -q=F
check "cli: -q=F: info lines are logged" \
    wait_for 5 grep -q 'servers register on port' "$T/qf.log"
kill "$SPAWNED"
qp=$(free_port)
spawn "$T/qt.log" "$RELAYD" -bind 127.0.0.1 -port "$qp" -q=T
wait_for 5 listening "$qp"
check "cli: -q=T: relayd runs, quietly" \
    bash -c "! grep -q 'servers register on port' '$T/qt.log'"
check "cli: ... and it is listening" listening "$qp"
kill "$SPAWNED"
run_port "positional port" @P@

# -port 0: the kernel's choice is printed (the original printed nothing).
start_relayd
check "cli: -port 0 prints the chosen port" \
    test -n "$RELAYD_PORT" -a "${RELAYD_PORT:-0}" != 0
check "cli: the printed port is the one listening" listening "$RELAYD_PORT"

# stdout is exactly the original's one line, even after a session.
spawn "$T/helper.log" "$TBIN/orig_helper" -host 127.0.0.1 -port "$RELAYD_PORT" -echo
cport=$(nth_public_port 1)
out=$(python3 "$TOP/tests/peers/relay_tool.py" echo 127.0.0.1 "$cport" 2>&1)
check "cli: a session works (precondition)" test $? = 0
printf 'Waiting for clients...\n' >"$T/want.out"
check "cli: stdout is exactly 'Waiting for clients...'" \
    cmp -s "$T/want.out" "$RELAYD_OUT"
note "$out"

# Signals end relayd cleanly, with status 0.
for sig in TERM INT; do
	start_relayd
	kill -"$sig" "$RELAYD_PID"
	if wait_for 10 sh -c "! kill -0 $RELAYD_PID"; then
		wait "$RELAYD_PID"
		rc=$?
	else
		rc=timeout
	fi
	check "cli: SIG$sig exits with status 0 (got $rc)" test "$rc" = 0
	check "cli: stdout still exactly one line after SIG$sig" \
	    cmp -s "$T/want.out" "$RELAYD_OUT"
done

# --help: status 0, lists the flags.
"$RELAYD" --help >"$T/help.out" 2>&1
rc=$?
check "cli: --help exits 0" test $rc = 0
for f in -port -bind -max-regs -data-timeout -threads; do
	check "cli: --help lists $f" grep -q -- "^ *$f\b" "$T/help.out"
done
"$RELAYD" -h >/dev/null 2>&1
check "cli: -h exits 0" test $? = 0

# --version
v=$("$RELAYD" --version 2>&1)
rc=$?
check "cli: --version exits 0" test $rc = 0
check "cli: --version prints a version ($v)" \
    sh -c "echo '$v' | grep -Eq '[0-9]+\.[0-9]+'"

# Unknown flags and bad values: status 2, like Go's flag package.
"$RELAYD" -no-such-flag >"$T/bad.out" 2>&1
rc=$?
check "cli: unknown flag exits 2 (got $rc)" test $rc = 2
check "cli: unknown flag is named on stderr" grep -q no-such-flag "$T/bad.out"
"$RELAYD" -port banana >/dev/null 2>&1
rc=$?
check "cli: non-numeric port exits 2 (got $rc)" test $rc = 2
"$RELAYD" -port 70000 >/dev/null 2>&1
rc=$?
check "cli: port 70000 exits 2 (got $rc)" test $rc = 2
"$RELAYD" -port >/dev/null 2>&1
rc=$?
check "cli: -port without a value exits 2 (got $rc)" test $rc = 2

# Port already in use: a clear message and status 1 (the original
# printed garbage and crashed with SIGSEGV).
start_relayd
busy=$RELAYD_PORT
timeout 10 "$RELAYD" -bind 127.0.0.1 -port "$busy" >"$T/busy.out" \
    2>"$T/busy.err"
rc=$?
check "cli: port in use exits 1 (got $rc)" test $rc = 1
check "cli: port in use says so on stderr" \
    grep -qi 'address already in use' "$T/busy.err"
check "cli: port in use names the port" grep -q "$busy" "$T/busy.err"
note "stderr: $(head -3 "$T/busy.err")"
check "cli: first relayd unaffected" alive "$RELAYD_PID"

# SIGHUP (a closed terminal) stops relayd as SIGTERM does: cleanly, the
# metrics socket removed, status 0.
start_relayd -stats "$T/hup.sock" || fail "cli: relayd -stats starts"
kill -HUP "$RELAYD_PID"
wait_for 10 gone "$RELAYD_PID"
wait "$RELAYD_PID"
rc=$?
check "cli: SIGHUP: status 0 (got $rc)" test "$rc" = 0
check "cli: SIGHUP: logged as a stop" \
    grep -q 'relayd: signal 1, stopping' "$RELAYD_LOG"
check "cli: SIGHUP: the metrics socket is removed" test ! -e "$T/hup.sock"

finish
