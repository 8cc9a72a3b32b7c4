#!/bin/bash
# shim_queue.sh - the helper's queue of relayed clients, over time: a wake
# taken by someone who is not the shim (a process without the library)
# is sent again after 2 s and the client is still served; a client the
# server does not accept is taken back and closed after 30 s, with a line
# in the server's stderr, and the helper goes on serving; once the server
# accepts again it gets the client still waiting, never one dropped.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_lib.sh"

shim_need_build
shim_relayd

# wait_eof HOST:PORT [DELAY]: DELAY seconds on, connect, send a line,
# print the seconds until the relay closes the connection and how many
# bytes came before that.
wait_eof() {
	python3 -c 'import socket, sys, time
time.sleep(float(sys.argv[2]))
h, p = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((h, int(p)), timeout=5)
s.sendall(b"anyone?\n")
s.settimeout(60)
t0, got = time.time(), 0
try:
    while True:
        b = s.recv(4096)
        if not b:
            break
        got += len(b)
except OSError as e:
    print("error", e)
print("eof after %d s, %d bytes" % (time.time() - t0, got))' "$1" "${2:-0}"
}

# --- a server that stops accepting: its clients go after 30 s ---------------
# Started first: the other checks run while it waits.  Three clients come
# 0, 3 and 8 s apart.  The helper drops each after 30 s in the queue; once
# it has dropped two, the server accepts again (SIGUSR1) and must get the
# third, never the second (the helper once put the first live client it
# met behind the others when dropping one, so the next drop missed its
# client, which stayed queued for the server to take).
shim_run never "$SSRV" -m never -l "127.0.0.1:$(free_port)"
NEVER_PID=$SPID
NEVER_CLIENTS=
if pub=$(shim_public never); then
	i=0
	for delay in 0 3 8; do
		i=$((i + 1))
		wait_eof "$pub" "$delay" >"$T/never$i.client" 2>&1 &
		NEVER_CLIENTS="$NEVER_CLIENTS $!"
		track_pid "$!"
	done
else
	fail "never: registers"
fi

# --- a wake taken past the shim is sent again --------------------------------
shim_run steal "$SSRV" -m poll -k 1 -l "127.0.0.1:$(free_port)"
STEAL_PID=$SPID
if pub=$(shim_public steal); then
	t0=$(date +%s%N)
	check "stolen wake: the client is still served" ask -n 1 "$(port_of "$pub")"
	ms=$((($(date +%s%N) - t0) / 1000000))
	note "stolen wake: served after $ms ms"
	check "stolen wake: the raw accept4 took the first wake" \
	    grep -qx STOLE "$T/steal.out"
	check "stolen wake: served by a wake sent again 2 s on (${ms} ms)" \
	    test "$ms" -ge 1900 -a "$ms" -lt 10000
	t0=$(date +%s%N)
	check "stolen wake: the next client is served at once" \
	    ask -n 3 "$(port_of "$pub")"
	ms=$((($(date +%s%N) - t0) / 1000000))
	check "... in under 2 s (${ms} ms)" test "$ms" -lt 2000
else
	fail "steal: registers"
fi
shim_stop steal "$STEAL_PID"

# --- back to the server that does not accept --------------------------------
if [ -n "$NEVER_CLIENTS" ]; then
	if wait_for 45 count_ge 2 'dropped it' "$T/never.err"; then
		kill -USR1 "$NEVER_PID"
	else
		fail "never: the helper drops the first two clients"
	fi
	# shellcheck disable=SC2086
	wait_for 50 gone $NEVER_CLIENTS
	for i in 1 2 3; do
		note "never: client $i saw $(cat "$T/never$i.client")"
	done
	for i in 1 2; do
		secs=$(sed -n 's/^eof after \([0-9]*\) s.*/\1/p' "$T/never$i.client")
		check "never: client $i is closed after 30 s, not before (${secs:-no EOF} s)" \
		    test -n "$secs" -a "${secs:-0}" -ge 29 -a "${secs:-0}" -le 40
		check "never: ... having got nothing (the server never had it)" \
		    grep -q ', 0 bytes$' "$T/never$i.client"
	done
	check "never: the client still waiting is served once the server accepts" \
	    grep -q 'eof after [0-9]* s, [1-9][0-9]* bytes$' "$T/never3.client"
	check "never: the helper says why, once for each dropped client" \
	    test "$(grep -c 'did not accept a client within 30s; dropped it' \
		"$T/never.err")" = 2
	check "never: the server is untouched" alive "$NEVER_PID"
fi
shim_stop never "$NEVER_PID"

shim_helpers_gone
finish
