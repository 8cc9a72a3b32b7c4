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
PIDS+=($!)
wait_for 10 test -s "$T/py6.addr"
pub=$(sed 's/.*://' "$T/py6.addr")
curl -sS -m 5 -g "http://[::1]:$pub/" >/dev/null
check "python sees the IPv6 client ::1" \
    wait_for 5 grep -q '^::1 .*GET / ' "$T/py6.log"

# IPv4 clients from 127.0.0.2; the relay itself is at 127.0.0.1.
start_relayd || exit 1
port=$(free_port)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_ADDR_FILE=$T/py.addr \
    exec python3 -m http.server --bind 127.0.0.1 "$port") >"$T/py.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -s "$T/py.addr"
pub=$(sed 's/.*://' "$T/py.addr")
curl -sS -m 5 --interface 127.0.0.2 "http://127.0.0.1:$pub/" >/dev/null
check "python sees the IPv4 client 127.0.0.2" \
    wait_for 5 grep -q '^127.0.0.2 .*GET / ' "$T/py.log"

# An IPv6 listener sees an IPv4 client v4-mapped.
port=$(free_port ::1)
(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
    RELAY_PORT=$RELAYD_PORT RELAY_ADDR_FILE=$T/pym.addr \
    exec python3 -m http.server --bind ::1 "$port") >"$T/pym.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -s "$T/pym.addr"
pub=$(sed 's/.*://' "$T/pym.addr")
curl -sS -m 5 --interface 127.0.0.2 "http://127.0.0.1:$pub/" >/dev/null
check "an IPv6 listener sees 127.0.0.2 as ::ffff:127.0.0.2" \
    wait_for 5 grep -q '^::ffff:127.0.0.2 .*GET / ' "$T/pym.log"

# redis-server (IPv4 listener).
if command -v redis-server >/dev/null; then
	rport=$(free_port)
	LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
	    RELAY_ADDR_FILE=$T/redis.addr redis-server --port "$rport" \
	    --bind 127.0.0.1 --save '' --appendonly no --protected-mode no \
	    --dir "$T" >"$T/redis.log" 2>&1 &
	PIDS+=($!)
	wait_for 10 test -s "$T/redis.addr"
	rpub=$(head -1 "$T/redis.addr" | sed 's/.*://')
	out=$(python3 - "$rpub" <<'PY'
import socket, sys
s = socket.socket()
s.bind(("127.0.0.2", 0))
s.connect(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
s.sendall(b"CLIENT LIST\r\n")
data = b""
while b"\r\n" not in data[data.find(b"\r\n") + 2:] and len(data) < 65536:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.decode(errors="replace"))
PY
)
	note "CLIENT LIST: $out"
	check "redis CLIENT LIST shows addr=127.0.0.2" \
	    bash -c "echo '$out' | grep -q 'addr=127.0.0.2:'"
else
	echo "SKIP: redis-server not installed"
fi

# nginx $remote_addr.
if command -v nginx >/dev/null; then
	nport=$(free_port)
	mkdir -p "$T/nginx/logs"
	cat >"$T/nginx/nginx.conf" <<NGX
daemon off;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 64; }
http {
	access_log $T/nginx/access.log;
	client_body_temp_path $T/nginx;
	proxy_temp_path $T/nginx;
	fastcgi_temp_path $T/nginx;
	uwsgi_temp_path $T/nginx;
	scgi_temp_path $T/nginx;
	server { listen 127.0.0.1:$nport; root $T/www; }
}
NGX
	LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
	    RELAY_ADDR_FILE=$T/nginx.addr nginx -p "$T/nginx" \
	    -c "$T/nginx/nginx.conf" >"$T/nginx.out" 2>&1 &
	PIDS+=($!)
	wait_for 10 test -s "$T/nginx.addr"
	npub=$(sed 's/.*://' "$T/nginx.addr")
	curl -sS -m 5 --interface 127.0.0.2 "http://127.0.0.1:$npub/" >/dev/null
	check "nginx \$remote_addr is 127.0.0.2" \
	    wait_for 5 grep -q '^127.0.0.2 ' "$T/nginx/access.log"
	note "nginx access log: $(cat "$T/nginx/access.log")"
else
	echo "SKIP: nginx not installed"
fi
finish
