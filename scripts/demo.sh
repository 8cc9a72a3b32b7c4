#!/bin/sh
# demo.sh - the whole thing in one run, on this machine's loopback:
# relayd, an unmodified server (python3 -m http.server) under the shim,
# and curl fetching a page through the relay's public port.
# Run it as "make demo" (which installs what is missing and builds first).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
T=$(mktemp -d "${TMPDIR:-/tmp}/relay-demo.XXXXXX")
relayd_pid= server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	[ -n "$relayd_pid" ] && kill "$relayd_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

wait_file() { # wait_file FILE PATTERN
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 100 ] && { echo "demo: timed out waiting for $1" >&2; cat "$1" >&2; exit 1; }
		sleep 0.1
	done
}

echo "== 1. the relay (on a public host in real life): relayd -port 0"
"$BUILD/bin/relayd" -port 0 -bind 127.0.0.1 >"$T/relayd.out" 2>"$T/relayd.log" &
relayd_pid=$!
wait_file "$T/relayd.log" 'servers register on port'
ctl=$(sed -n 's/.*servers register on port \([0-9]*\).*/\1/p' "$T/relayd.log")
echo "   relayd listens for servers on port $ctl"

echo "== 2. an unmodified server behind NAT: python3 -m http.server, under the shim"
mkdir -p "$T/www"
echo "Hello from a server that never opened a public port." >"$T/www/index.html"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "   LD_PRELOAD=$BUILD/lib/librelayshim.so RELAY_HOST=127.0.0.1 RELAY_PORT=$ctl python3 -m http.server $port"
lib=$(cd "$BUILD/lib" && pwd)/librelayshim.so
(cd "$T/www" && LD_PRELOAD="$lib" \
    RELAY_HOST=127.0.0.1 RELAY_PORT="$ctl" RELAY_ADDR_FILE="$T/addr" \
    exec python3 -m http.server "$port") >"$T/server.out" 2>"$T/server.log" &
server_pid=$!
wait_file "$T/server.log" 'relayshim:'
sed 's/^/   /' "$T/server.log"
addr=$(cat "$T/addr")

echo "== 3. a client anywhere: curl http://$addr/"
curl -sS -m 10 "http://$addr/" | sed 's/^/   /'
echo "== relayd's log:"
sed 's/^/   /' "$T/relayd.log"
echo "== done: the server's port $port was never bound on a public address."
