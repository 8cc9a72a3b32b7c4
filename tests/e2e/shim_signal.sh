#!/bin/bash
# shim_signal.sh - a signal handler that calls the hooked functions
# (getsockname, getpeername, accept4; dup and close of the listener)
# 10000 times a second, on the very thread that is inside the shim's
# accept() or getsockname(): the hooks are re-entered and must neither
# deadlock nor answer from a half-updated registry.  200 clients go
# through a real relayd; the server must serve them all and exit by
# itself.
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
finish
