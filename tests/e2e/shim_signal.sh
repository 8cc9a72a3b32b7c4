#!/bin/bash
# shim_signal.sh - a signal handler that calls the hooked functions
# (getsockname, getpeername, accept4; dup and close of the listener)
# 10000 times a second, on the very thread that is inside the shim's
# accept() or getsockname(): the hooks are re-entered and must neither
# deadlock nor answer from a half-updated registry.  200 clients go
# through a real relayd; the server must serve them all and exit by
# itself.  Then a thread cancelled inside bind() (cancel_bind), and
# threads reading the registry while another rewrites it (seq_stress),
# also under ThreadSanitizer.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_lib.sh"

shim_need_build
SIGSRV=$TBIN/signal_accept
[ -x "$SIGSRV" ] || { fail "$SIGSRV is built (make tests-build)"; finish; }
shim_relayd

N=200
P=$(free_port)
# timeout: a server deadlocked in a hook is ended, and reported below.
shim_run sig timeout -s KILL 40 "$SIGSRV" "$P" "$N"
srv=$SPID
if ! pub=$(shim_public sig) || ! shim_ready sig; then
	fail "sig: the server registers"
	finish
fi
note "signal_accept asked 0.0.0.0:$P, public $pub"
timeout 60 $RELAY_TOOL seq 127.0.0.1 "$(port_of "$pub")" -n "$N" -par 4 \
    >"$T/seq.out" 2>&1
rc=$?
note "clients: $(tail -1 "$T/seq.out")"
check "sig: all $N clients answered through the relay" test $rc = 0
check "sig: the server finished by itself (no deadlock in a hook)" \
    wait_for 20 grep -q '^served=' "$T/sig.out"
wait "$srv"
rc=$?
note "server: $(grep '^served=' "$T/sig.out") (exit $rc)"
[ $rc = 0 ] || sed 's/^/  #   /' "$T/sig.err" | tail -5
check "sig: $N served, and the handler's getsockname() named port $P" \
    test $rc = 0
check "sig: ticks landed inside hooked calls" \
    grep -Eq ' inside=[1-9]' "$T/sig.out"
check "sig: accept4() from the handler took relayed clients" \
    grep -Eq ' handler=[1-9]' "$T/sig.out"

# --- a thread cancelled inside bind() ------------------------------------------------
# bind() reaches cancellation points (open, close) while it holds the
# registry, reclaiming the record of a closed socket: a cancel acted upon
# there left the registry locked, and every later getsockname() of the
# process waited for ever, with every signal blocked.
shim_run cancel timeout -s KILL 10 "$TBIN/cancel_bind"
wait "$SPID"
rc=$?
note "cancel_bind: $(tr '\n' ' ' <"$T/cancel.out")(exit $rc)"
check "cancel: a thread cancelled in bind() is cancelled once out of it" \
    grep -qx 'returned=1 cancelled=1' "$T/cancel.out"
check "cancel: the process binds and names sockets afterwards" test $rc = 0

# --- the registry read while it is written, from many threads ------------------------
# seq_stress NAME PRELOAD [ENV=VALUE...]: seq_stress under PRELOAD, N
# clients through the relay; returns the server's exit status.
seq_stress() {
	local name=$1 pre=$2 p pub pid
	shift 2
	p=$(free_port)
	env "$@" RELAY_ADDR_FILE="$T/$name.addr" LD_PRELOAD="$pre" \
	    timeout -s KILL 40 "$TBIN/seq_stress" "$p" "$N" \
	    >"$T/$name.out" 2>"$T/$name.err" &
	pid=$!
	track_pid "$pid"
	if ! pub=$(shim_public "$name") || ! shim_ready "$name"; then
		wait "$pid"
		return 99
	fi
	timeout 60 $RELAY_TOOL seq 127.0.0.1 "$(port_of "$pub")" -n "$N" \
	    -par 4 >"$T/$name.seq" 2>&1
	wait "$pid"
	rc=$?
	note "$name: $(grep '^served=' "$T/$name.out") (exit $rc)"
	return $rc
}

seq_stress seq "$SHIM_PRELOAD"
check "seq: $N served while bind() rewrote the registry; getsockname() never lied" \
    test $? = 0

# The same under ThreadSanitizer: the library built with it into $T, its
# runtime preloaded before it.  Not over an ASan build (two runtimes), nor
# where there is no TSan runtime, or it cannot map its shadow here.
TSAN_RT=$(gcc -print-file-name=libtsan.so)
if [ "$SANITIZE" = 1 ] || [ "${TSAN_RT#/}" = "$TSAN_RT" ] ||
    ! LD_PRELOAD=$TSAN_RT /bin/true 2>/dev/null; then
	echo "SKIP: tsan (ASan build, or no usable ThreadSanitizer runtime)"
else
	make -C "$TOP" --no-print-directory CC=gcc BUILD="$T/tsan" \
	    OPT='-O1 -g' CFLAGS=-fsanitize=thread LDFLAGS=-fsanitize=thread \
	    "$T/tsan/lib/librelayshim.so" >"$T/tsan.build" 2>&1
	rc=$?
	check "tsan: the library builds under ThreadSanitizer (-Werror)" \
	    test $rc = 0
	[ $rc = 0 ] || grep -m3 'error' "$T/tsan.build" | sed 's/^/  #   /'
	if [ $rc = 0 ]; then
		seq_stress tsan "$TSAN_RT:$T/tsan/lib/librelayshim.so" \
		    RELAYSHIM_HELPER="$HELPER" \
		    TSAN_OPTIONS=exitcode=66:report_thread_leaks=0
		rc=$?
		[ $rc = 0 ] || grep -A8 'WARNING: ThreadSanitizer' "$T/tsan.err" |
		    head -20 | sed 's/^/  #   /'
		check "tsan: $N served under ThreadSanitizer, no race reported" \
		    test $rc = 0
	fi
fi
finish
