#!/bin/bash
# shim_nginx.sh - an unmodified Debian nginx under librelayshim.so, reached
# through relayd: 2 worker processes, daemon on (it forks and the parent
# exits after listen()), accept_mutex on and off (EPOLLEXCLUSIVE), a v4
# and a [::] listener.  Both workers must serve, wrk must see no error,
# and no helper may outlive nginx.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_e2e.sh"

need nginx curl wrk ss
shim_built
start_relayd || { fail "relayd starts"; finish; }

# Workers run as nobody and serve files from here.
chmod 755 "$T"
mkdir -p "$T/html"
head -c 3000 /dev/urandom | base64 >"$T/html/index.html"

# run_nginx NAME LISTEN MUTEX PORT: one nginx from start to stop.
run_nginx() {
	local name=$1 listen=$2 mutex=$3 port=$4 d=$T/$1 master pids n
	mkdir -p "$d"
	chmod 755 "$d"
	cat >"$d/nginx.conf" <<EOF
worker_processes 2;
daemon on;
pid $d/nginx.pid;
error_log $d/error.log info;
events {
	worker_connections 256;
	accept_mutex $mutex;
}
http {
	log_format relay '\$remote_addr \$pid \$status';
	access_log $d/access.log relay;
	keepalive_requests 50;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fastcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	server {
		listen $listen;
		root $T/html;
	}
}
EOF
	# nginx itself returns once it has daemonized.
	if ! LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
	    RELAY_PORT=$RELAYD_PORT RELAY_ADDR_FILE=$d/addr \
	    timeout 20 nginx -p "$d" -c "$d/nginx.conf" \
	    >"$d/stdout" 2>"$d/stderr"; then
		fail "$name: nginx starts"
		sed 's/^/  # /' "$d/stderr" "$d/error.log"
		return
	fi
	if ! wait_for 5 test -s "$d/nginx.pid"; then
		fail "$name: nginx writes its pid file"
		return
	fi
	master=$(cat "$d/nginx.pid")
	PIDS+=("$master")
	relay_addr "$name" "$d/addr" || return
	check "$name: the shim names the public address on stderr" \
	    grep -Fxq "relayshim: $listen -> $ADDR" "$d/stderr"
	not_listening "$name" "$port"
	track_helpers "$name" "$master" $(pgrep -P "$master")
	shim_loaded "$name" "$(pgrep -P "$master" | head -1)"

	check "$name: 60 curl requests through the relay, all 200 and intact" \
	    curl_many 60 "http://$ADDR/index.html" "$T/html/index.html"
	# Without the shim too, nginx with accept_mutex on hands light load
	# to one worker: the holder sleeps in epoll_wait with the mutex held,
	# the other retries every accept_mutex_delay.  The second one joins
	# under wrk's load, once keepalive_requests makes wrk reconnect.
	[ "$mutex" = on ] && wrk_clean "$name" "http://$ADDR/index.html"
	pids=$(awk '{print $2}' "$d/access.log" | sort -u | tr '\n' ' ')
	n=$(wc -w <<<"$pids")
	check "$name: both workers served requests (pids $pids)" test "$n" = 2
	note "$name: requests per worker: $(awk '{print $2}' "$d/access.log" |
	    sort | uniq -c | tr -s ' \n' '  ')"
	check "$name: worker pids are nginx's" \
	    test "$(pgrep -P "$master" | sort | tr '\n' ' ')" = "$pids"
	[ "$mutex" = off ] && wrk_clean "$name" "http://$ADDR/index.html"
	check "$name: nginx logged only 200s" \
	    test -z "$(awk '$3 != 200' "$d/access.log")"
	check "$name: no wake header reached nginx's logs" \
	    not grep -aq RSHM "$d/access.log" "$d/error.log"
	check "$name: no worker died" \
	    not grep -Eq 'exited on signal|exited with code [1-9]' "$d/error.log"

	kill "$master"
	check "$name: nginx stops on SIGTERM" wait_for 10 none_alive "$master"
	helpers_gone "$name"
	asan_clean "$name"
}

P=$(free_port)
run_nginx v4-mutex-off "0.0.0.0:$P" off "$P"
P=$(free_port)
run_nginx v4-mutex-on "0.0.0.0:$P" on "$P"
P=$(free_port ::1)
run_nginx v6-mutex-on "[::]:$P" on "$P"
finish
