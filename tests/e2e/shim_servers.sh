#!/bin/bash
# shim_servers.sh - real, unmodified servers under librelayshim.so with
# real clients through relayd: node's http server, socat fork with an
# echo, busybox httpd; and relayshim's standalone mode in front of a
# plain python http.server and of a server that checks PROXY headers.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_lib.sh"

FIX=$TOP/tests/fixtures
shim_need_build
shim_relayd
mkdir -p "$T/www"
echo "served by busybox" >"$T/www/index.html"
echo "plain file" >"$T/www/plain.txt"

# Start everything first: the servers come up while the others do.
NODE_P=$(free_port)
shim_run node node "$FIX/node_http.js" "$NODE_P"
NODE_PID=$SPID
SOCAT_P=$(free_port)
shim_run socat socat "TCP-LISTEN:$SOCAT_P,reuseaddr,fork" EXEC:cat
SOCAT_PID=$SPID
BB_P=$(free_port)
shim_run busybox busybox httpd -f -p "$BB_P" -h "$T/www"
BB_PID=$SPID

# --- node ---------------------------------------------------------------------
if pub=$(shim_public node); then
	note "node asked [::]:$NODE_P, public $pub"
	check "node: server.address() is the asked :::$NODE_P" \
	    wait_for 5 grep -qx "ADDRESS :::$NODE_P" "$T/node.out"
	check "node: curl GET through the relay" \
	    test "$(curl -sS --max-time 10 "http://$pub/a/b?c")" = \
	    "node GET /a/b?c 0"
	check "node: curl POST of 200 KiB" \
	    test "$(head -c 204800 /dev/zero | tr '\0' x |
	    curl -sS --max-time 10 --data-binary @- "http://$pub/up")" = \
	    "node POST /up 204800"
	check "node: 20 parallel requests" bash -c '
	    seq 20 | xargs -P 10 -I{} curl -sf --max-time 10 \
		"http://$1/n{}" >"$2" && test "$(grep -c "^node GET /n" "$2")" = 20
	    ' _ "$pub" "$T/node.par"
	check "node: the asked port is not bound" \
	    not_bound_publicly "$NODE_P"
else
	fail "node: registers with the relay"
fi

# --- socat TCP-LISTEN,fork EXEC:cat --------------------------------------------
if pub=$(shim_public socat); then
	note "socat asked 0.0.0.0:$SOCAT_P, public $pub"
	check "socat: a line comes back" test "$(printf 'hello socat\n' |
	    timeout 10 nc -N 127.0.0.1 "$(port_of "$pub")")" = "hello socat"
	check "socat: 256 KiB echoed intact (half-close)" \
	    python3 "$FIX/echo_check.py" "$(port_of "$pub")" 262144 1
	check "socat: 6 clients at once, 16 KiB each" \
	    python3 "$FIX/echo_check.py" "$(port_of "$pub")" 16384 6
	check "socat: no complaint on stderr" \
	    bash -c '! grep -v "^relayshim:" "$1" | grep -q .' _ "$T/socat.err"
else
	fail "socat: registers with the relay"
fi

# --- busybox httpd -f ------------------------------------------------------------
if pub=$(shim_public busybox); then
	note "busybox asked port $BB_P, public $pub"
	check "busybox: curl gets the page" \
	    test "$(curl -sS --max-time 10 "http://$pub/")" = "served by busybox"
	check "busybox: 10 requests in a row" bash -c '
	    for i in $(seq 10); do
		test "$(curl -sf --max-time 10 "http://$1/plain.txt")" = \
		    "plain file" || exit 1
	    done' _ "$pub"
	check "busybox: 404 passes through" test "$(curl -s -o /dev/null \
	    -w '%{http_code}' --max-time 10 "http://$pub/missing")" = 404
else
	fail "busybox: registers with the relay"
fi

shim_stop node "$NODE_PID"
shim_stop socat "$SOCAT_PID"
shim_stop busybox "$BB_PID"

# --- standalone: relayshim -relay -to, in front of a plain server -----------------
PY_P=$(free_port)
spawn "$T/plainpy.log" python3 -m http.server "$PY_P" --bind 127.0.0.1 \
    --directory "$T/www"
spawn "$T/sa.log" "$HELPER" -relay "127.0.0.1:$RELAYD_PORT" \
    -to "127.0.0.1:$PY_P" -addr-file "$T/sa.addr"
SA_PID=$SPAWNED
PX_P=$(free_port)
spawn "$T/px.log" python3 "$FIX/proxy_check.py" serve "$PX_P"
spawn "$T/sa1.log" "$HELPER" -relay "127.0.0.1:$RELAYD_PORT" \
    -to "127.0.0.1:$PX_P" -proxy-protocol 1 -addr-file "$T/sa1.addr"
spawn "$T/sa2.log" "$HELPER" -relay "127.0.0.1:$RELAYD_PORT" \
    -to "127.0.0.1:$PX_P" -proxy-protocol 2 -addr-file "$T/sa2.addr"
wait_for 10 listening "$PY_P" || note "python http.server did not start"
wait_for 10 grep -q READY "$T/px.log" || note "proxy_check did not start"

if wait_for 10 test -s "$T/sa.addr"; then
	pub=$(head -1 "$T/sa.addr")
	note "standalone in front of 127.0.0.1:$PY_P, public $pub"
	check "standalone: curl through it gets the file" \
	    test "$(curl -sS --max-time 10 "http://$pub/plain.txt")" = \
	    "plain file"
	check "standalone: 10 parallel requests" bash -c '
	    seq 10 | xargs -P 10 -I{} curl -sf --max-time 10 \
		"http://$1/plain.txt" >"$2" &&
	    test "$(grep -c "^plain file$" "$2")" = 10' _ "$pub" "$T/sa.par"
	check "standalone: the server saw the requests" \
	    wait_for 5 count_ge 11 '"GET /plain.txt' "$T/plainpy.log"
else
	fail "standalone: registers and writes its address file"
	sed 's/^/  # /' "$T/sa.log" | head
fi
for v in 1 2; do
	if wait_for 10 test -s "$T/sa$v.addr"; then
		pub=$(head -1 "$T/sa$v.addr")
		if python3 "$FIX/proxy_check.py" ask "$(port_of "$pub")" \
		    >"$T/px$v.out" 2>&1; then
			pass "standalone -proxy-protocol $v: the server gets the client's own address"
		else
			fail "standalone -proxy-protocol $v: the server gets the client's own address"
			sed 's/^/  # /' "$T/px$v.out"
		fi
		check "standalone -proxy-protocol $v: header version $v" \
		    grep -q "^PROXY-OK v$v " "$T/px$v.out"
	else
		fail "standalone -proxy-protocol $v: registers"
		sed 's/^/  # /' "$T/sa$v.log" | head
	fi
done
kill "$SA_PID"
check "standalone: exits on SIGTERM" wait_for 5 gone "$SA_PID"
# The local server answers 8 MiB, waits until relayshim has acknowledged
# it all, and closes with its client's upload unread: its kernel resets
# the local connection.  Direct, the client gets the whole answer; so it
# must through relayshim, which may not reset the relay's side (dropping
# what it still holds) the moment its session ends.  Small buffers (this
# namespace's own) keep that tail in relayshim's hands when it happens.
if [ "${RELAY_TEST_NETNS:-}" = in ]; then
	sysctl -qw net.ipv4.tcp_rmem="4096 65536 65536" \
	    net.ipv4.tcp_wmem="4096 65536 65536"
fi
spawn "$T/rst.log" $RELAY_TOOL srv-reset "$T/rst.port" $((4 << 20))
wait_for 5 test -s "$T/rst.port"
spawn "$T/sarst.log" "$HELPER" -relay "127.0.0.1:$RELAYD_PORT" \
    -to "127.0.0.1:$(cat "$T/rst.port")" -addr-file "$T/sarst.addr"
if wait_for 10 test -s "$T/sarst.addr"; then
	got=$(timeout 90 $RELAY_TOOL upload-read 127.0.0.1 \
	    "$(port_of "$(head -1 "$T/sarst.addr")")" $((4 << 20)) 2>&1)
	note "standalone, local server reset with the upload unread: $got"
	check "standalone: the answer survives the local server's reset" \
	    test "$got" = "4194304 of 4194304 bytes"
else
	fail "standalone in front of a resetting server: registers"
fi

# -original: no [HELLO], so the relay never says who the client is; the
# PROXY header then says so (UNKNOWN, LOCAL) instead of inventing one.
start_relayd || fail "relayd for -original starts"
for v in 1 2; do
	spawn "$T/so$v.log" "$HELPER" -relay "127.0.0.1:$RELAYD_PORT" \
	    -to "127.0.0.1:$PX_P" -proxy-protocol "$v" -original
	if p=$(nth_public_port "$v"); then
		got=$(timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
s.sendall(b"hi\n")
print(s.makefile().readline().strip())' "$p" 2>&1)
		note "-original -proxy-protocol $v: $got"
		want=UNKNOWN
		[ "$v" = 2 ] && want=LOCAL
		check "standalone -original -proxy-protocol $v: the header says $want" \
		    test "$got" = "PROXY-OK v$v $want"
		check "standalone -original: no [HELLO] was sent (no handshake logged)" \
		    bash -c "! grep -q 'extensions negotiated' '$RELAYD_LOG'"
	else
		fail "standalone -original -proxy-protocol $v: registers"
	fi
done
# A local server that is not there: the client is closed, not left open.
spawn "$T/sodead.log" "$HELPER" -relay "127.0.0.1:$RELAYD_PORT" \
    -to "127.0.0.1:$(free_port)" -original
if p=$(nth_public_port 3); then
	got=$(timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
s.sendall(b"hi\n")
print("closed" if s.recv(100) == b"" else "open")' "$p" 2>&1)
	check "standalone: the local server unreachable, the client is closed" \
	    test "$got" = closed
else
	fail "standalone with a dead -to: registers"
fi

shim_helpers_gone
finish
