#!/bin/bash
# ext_addr.sh - servers under the shim see the real client's address:
# python's request log, redis CLIENT LIST and nginx's $remote_addr, for an
# IPv4 client from 127.0.0.2 and an IPv6 client from ::1.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/www" && echo addr-page >"$T/www/index.html"

# IPv6: a relay on ::1, a python server with an IPv6 listener.
start_relayd -bind ::1 || exit 1
port=$(free_port ::1)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=::1 \
    RELAY_PORT=$RELAYD_PORT RELAY_ADDR_FILE=$T/py6.addr \
    exec python3 -m http.server --bind ::1 "$port") >"$T/py6.log" 2>&1 &
track_pid "$!"
wait_for 20 test -s "$T/py6.addr"
pub=$(sed 's/.*://' "$T/py6.addr")
curl -sS -m 5 -g "http://[::1]:$pub/" >/dev/null
check "python sees the IPv6 client ::1" \
    wait_for 10 grep -q '^::1 .*GET / ' "$T/py6.log"

# IPv4 clients from 127.0.0.2; the relay itself is at 127.0.0.1.
start_relayd || exit 1
port=$(free_port)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_ADDR_FILE=$T/py.addr \
    exec python3 -m http.server --bind 127.0.0.1 "$port") >"$T/py.log" 2>&1 &
track_pid "$!"
wait_for 20 test -s "$T/py.addr"
pub=$(sed 's/.*://' "$T/py.addr")
curl -sS -m 5 --interface 127.0.0.2 "http://127.0.0.1:$pub/" >/dev/null
check "python sees the IPv4 client 127.0.0.2" \
    wait_for 10 grep -q '^127.0.0.2 .*GET / ' "$T/py.log"

# An IPv6 listener sees an IPv4 client v4-mapped.
port=$(free_port ::1)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_ADDR_FILE=$T/pym.addr \
    exec python3 -m http.server --bind ::1 "$port") >"$T/pym.log" 2>&1 &
track_pid "$!"
wait_for 20 test -s "$T/pym.addr"
pub=$(sed 's/.*://' "$T/pym.addr")
curl -sS -m 5 --interface 127.0.0.2 "http://127.0.0.1:$pub/" >/dev/null
check "an IPv6 listener sees 127.0.0.2 as ::ffff:127.0.0.2" \
    wait_for 10 grep -q '^::ffff:127.0.0.2 .*GET / ' "$T/pym.log"

# redis_client_list RELAYPORT BIND CLIENT_SRC CONNECT_HOST N: CLIENT LIST as
# redis under the shim sees it, asked by a client bound to CLIENT_SRC.
redis_client_list() {
	local rport n=$5
	rport=$(free_port "$2")
	LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=$4 RELAY_PORT=$1 \
	    RELAY_ADDR_FILE=$T/redis$n.addr redis-server --port "$rport" \
	    --bind "$2" --save '' --appendonly no --protected-mode no \
	    --dir "$T" >"$T/redis$n.log" 2>&1 &
	track_pid "$!"
	wait_for 20 test -s "$T/redis$n.addr" || return 1
	python3 - "$3" "$4" "$(head -1 "$T/redis$n.addr" | sed 's/.*://')" <<'PY'
import socket, sys
src, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam)
s.bind((src, 0))
s.connect((host, port))
print("MYPORT=%d" % s.getsockname()[1])
s.settimeout(5)
s.sendall(b"CLIENT LIST\r\n")
data = b""
while data.count(b"\r\n") < 2 and len(data) < 65536:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.decode(errors="replace"))
PY
}

# nginx_remote_addr RELAYPORT LISTEN RELAYHOST CONNECT_HOST CLIENT_SRC N: nginx
# under the shim serves one request from a client bound to CLIENT_SRC;
# prints the client's port and nginx's access log.
nginx_remote_addr() {
	local nport n=$6 d h=${2#[}
	d=$T/nginx$n
	nport=$(free_port "${h%]}")
	mkdir -p "$d/logs"
	cat >"$d/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 64; }
http {
	log_format withport '\$remote_addr \$remote_port \$server_port';
	access_log $d/access.log withport;
	client_body_temp_path $d;
	proxy_temp_path $d;
	fastcgi_temp_path $d;
	uwsgi_temp_path $d;
	scgi_temp_path $d;
	server { listen $2:$nport; root $T/www; }
}
NGX
	LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=$3 RELAY_PORT=$1 \
	    RELAY_ADDR_FILE=$d/addr nginx -p "$d" -c "$d/nginx.conf" \
	    >"$d/out" 2>&1 &
	track_pid "$!"
	wait_for 20 test -s "$d/addr" || return 1
	python3 - "$5" "$4" "$(sed 's/.*://' "$d/addr")" >"$d/client" <<'PY'
import socket, sys
src, host, port = sys.argv[1], sys.argv[2].strip("[]"), int(sys.argv[3])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.bind((src, 0))
s.connect((host, port))
s.settimeout(5)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
while s.recv(4096):
    pass
print(s.getsockname()[1])
PY
	wait_for 10 test -s "$d/access.log"
	echo "client port $(cat "$d/client")"
	cat "$d/access.log"
}

if command -v redis-server >/dev/null; then
	out=$(redis_client_list "$RELAYD_PORT" 127.0.0.1 127.0.0.2 127.0.0.1 4)
	note "CLIENT LIST (v4): $out"
	myport=$(sed -n 's/^MYPORT=//p' <<<"$out")
	check "redis CLIENT LIST shows the client 127.0.0.2:$myport" \
	    grep -q "addr=127.0.0.2:$myport " <<<"$out"
else
	echo "SKIP: redis-server not installed"
fi
if command -v nginx >/dev/null; then
	out=$(nginx_remote_addr "$RELAYD_PORT" 127.0.0.1 127.0.0.1 127.0.0.1 \
	    127.0.0.2 4)
	note "nginx access log (v4): $out"
	cp=$(sed -n 's/^client port //p' <<<"$out")
	check "nginx \$remote_addr \$remote_port is the client 127.0.0.2 $cp" \
	    grep -q "^127.0.0.2 $cp " <<<"$out"
else
	echo "SKIP: nginx not installed"
fi

# The same two over IPv6: a relay on ::1 and clients from ::1.
start_relayd -bind ::1 || exit 1
if command -v redis-server >/dev/null; then
	out=$(redis_client_list "$RELAYD_PORT" ::1 ::1 ::1 6)
	note "CLIENT LIST (v6): $out"
	myport=$(sed -n 's/^MYPORT=//p' <<<"$out")
	check "redis CLIENT LIST shows the IPv6 client [::1]:$myport" \
	    grep -q "addr=\\[::1\\]:$myport " <<<"$out"
fi
if command -v nginx >/dev/null; then
	out=$(nginx_remote_addr "$RELAYD_PORT" "[::1]" ::1 "[::1]" ::1 6)
	note "nginx access log (v6): $out"
	cp=$(sed -n 's/^client port //p' <<<"$out")
	check "nginx \$remote_addr \$remote_port is the IPv6 client ::1 $cp" \
	    grep -q "^::1 $cp " <<<"$out"
fi
finish
