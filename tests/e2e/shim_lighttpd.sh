#!/bin/bash
# shim_lighttpd.sh - an unmodified Debian lighttpd under librelayshim.so,
# reached through relayd: server.max-worker = 2 (a supervisor and two
# pre-forked workers sharing the listener, running as nobody).  curl
# through the relay; no helper may outlive lighttpd.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_e2e.sh"

need lighttpd curl ss
shim_built
start_relayd || { fail "relayd starts"; finish; }

name=prefork
d=$T/$name
# The workers run as nobody: they read html/ and write their logs in log/.
chmod 755 "$T"
mkdir -p "$d/html" "$d/log"
chmod 755 "$d"
chown nobody "$d/log"
head -c 3000 /dev/urandom | base64 >"$d/html/index.html"
P=$(free_port)
cat >"$d/lighttpd.conf" <<EOF
server.document-root = "$d/html"
server.bind = "0.0.0.0"
server.port = $P
server.pid-file = "$d/lighttpd.pid"
server.errorlog = "$d/log/error.log"
server.max-worker = 2
server.username = "nobody"
server.groupname = "nogroup"
server.modules = ( "mod_accesslog" )
accesslog.filename = "$d/log/access.log"
index-file.names = ( "index.html" )
EOF

# children_are PID N: PID has exactly N child processes.
children_are() { [ "$(pgrep -P "$1" | wc -l)" = "$2" ]; }

spawn "$d/stderr" env LD_PRELOAD="$SHIM_PRELOAD" RELAY_HOST=127.0.0.1 \
    RELAY_PORT="$RELAYD_PORT" RELAY_ADDR_FILE="$d/addr" \
    lighttpd -D -f "$d/lighttpd.conf"
LPID=$SPAWNED
if relay_addr "$name" "$d/addr"; then
	check "$name: the shim names the public address on stderr" \
	    grep -Fxq "relayshim: 0.0.0.0:$P -> $ADDR" "$d/stderr"
	check "$name: lighttpd started 2 workers" \
	    wait_for 5 children_are "$LPID" 2
	not_listening "$name" "$P"
	track_helpers "$name" "$LPID" $(pgrep -P "$LPID")
	shim_loaded "$name" "$(pgrep -P "$LPID" | head -1)"
	check "$name: 60 curl requests through the relay, all 200 and intact" \
	    curl_many 60 "http://$ADDR/index.html" "$d/html/index.html"
	check "$name: one keep-alive connection, 20 requests" \
	    test "$(timeout 20 curl -sS -o /dev/null -w '%{http_code}\n' \
	    $(for _ in $(seq 20); do echo "http://$ADDR/index.html"; done) |
	    grep -c '^200$')" = 20
	check "$name: no wake header reached lighttpd's logs" \
	    not grep -aqr RSHM "$d/log" "$d/stderr"
	kill "$LPID"
	check "$name: lighttpd stops on SIGTERM" wait_for 10 none_alive "$LPID"
	helpers_gone "$name"
	asan_clean "$name"
else
	sed 's/^/  # /' "$d/stderr" "$d/log/error.log" 2>/dev/null
fi
finish
