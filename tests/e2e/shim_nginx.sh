#!/bin/bash
# shim_nginx.sh - an unmodified Debian nginx under librelayshim.so, reached
# through relayd: 2 worker processes, daemon on (it forks and the parent
# exits after listen()), accept_mutex on and off (EPOLLEXCLUSIVE), a v4
# and a [::] listener, a listener per worker (reuseport); a HUP reload
# and a USR2 binary upgrade.  Both
# workers must serve, wrk must see no error, and no helper may outlive
# nginx.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_e2e.sh"

need nginx curl wrk ss
shim_built
start_relayd || { fail "relayd starts"; finish; }

# Workers run as nobody and serve files from here.
chmod 755 "$T"
mkdir -p "$T/html"
head -c 3000 /dev/urandom | base64 >"$T/html/index.html"

# nginx_conf DIR LISTEN MUTEX [LINES]: write DIR/nginx.conf; LINES go on
# top (env directives).
nginx_conf() {
	local d=$1 listen=$2 mutex=$3 top=${4:-}
	mkdir -p "$d"
	chmod 755 "$d"
	cat >"$d/nginx.conf" <<EOF
$top
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
}

# start_nginx NAME DIR: start nginx under the shim, wait for its pid file;
# sets MASTER.  The nginx command returns once it has daemonized; its
# absolute path lets a USR2 upgrade exec it again.
start_nginx() {
	local name=$1 d=$2
	MASTER=
	if ! LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
	    RELAY_PORT=$RELAYD_PORT RELAY_ADDR_FILE=$d/addr \
	    timeout 20 "$(command -v nginx)" -p "$d" -c "$d/nginx.conf" \
	    >"$d/stdout" 2>"$d/stderr"; then
		fail "$name: nginx starts"
		sed 's/^/  # /' "$d/stderr" "$d/error.log"
		return 1
	fi
	if ! wait_for 5 test -s "$d/nginx.pid"; then
		fail "$name: nginx writes its pid file"
		return 1
	fi
	MASTER=$(cat "$d/nginx.pid")
	track_pid "$MASTER"
}

# run_nginx NAME LISTEN MUTEX PORT: one nginx from start to stop.
run_nginx() {
	local name=$1 listen=$2 mutex=$3 port=$4 d=$T/$1 master pids n
	nginx_conf "$d" "$listen" "$mutex"
	start_nginx "$name" "$d" || return
	master=$MASTER
	relay_addr "$name" "$d/addr" || return
	check "$name: the shim names the public address on stderr" \
	    grep -Fxq "relayshim: ${listen%% *} -> $ADDR" "$d/stderr"
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
	# On a loaded machine the mutex holder may keep up with one wrk run
	# alone: at most two more before the check.
	for _ in 1 2; do
		[ "$mutex" = on ] && [ "$n" -lt 2 ] || break
		timeout 20 wrk -t2 -c20 -d3s --timeout 5s \
		    "http://$ADDR/index.html" >/dev/null 2>&1
		pids=$(awk '{print $2}' "$d/access.log" | sort -u | tr '\n' ' ')
		n=$(wc -w <<<"$pids")
	done
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

# workers_of PID: its children, sorted, on one line.
workers_of() { pgrep -P "$1" | sort | tr '\n' ' '; }
# workers_changed PID OLD: PID has 2 children, none of them in OLD.
workers_changed() {
	local w
	w=$(workers_of "$1")
	[ "$(wc -w <<<"$w")" = 2 ] || return 1
	for p in $w; do
		case " $2 " in *" $p "*) return 1 ;; esac
	done
}
# served_by PIDS N LOG: the last N requests in LOG came from PIDS.
served_by() {
	tail -n "$2" "$3" | awk '{print $2}' | sort -u | while read -r p; do
		case " $1 " in *" $p "*) ;; *) exit 1 ;; esac
	done
}

# run_nginx_reload NAME PORT: a HUP reload (new workers, the same
# listener and registration), then a USR2 binary upgrade.  nginx gives the
# new binary only the variables its config names with `env` (here none of
# the shim's): the shim's execve hook puts them back because the new image
# keeps a relayed listener, and the new binary adopts that listener, so
# the registration, the helper and the public address all stay.
# run_nginx_reload NAME PORT [LISTEN-OPTIONS]: HUP, then a USR2 upgrade.
run_nginx_reload() {
	local name=$1 port=$2 d=$T/$1 old new w helpers
	nginx_conf "$d" "0.0.0.0:$port${3:+ $3}" off "env ASAN_OPTIONS;"
	start_nginx "$name" "$d" || return
	old=$MASTER
	relay_addr "$name" "$d/addr" || return
	track_helpers "$name" "$old" $(pgrep -P "$old")
	helpers=$(shim_helpers | tr '\n' ' ')
	check "$name: 10 requests before the reload" \
	    curl_many 10 "http://$ADDR/index.html" "$T/html/index.html"

	w=$(workers_of "$old")
	kill -HUP "$old"
	check "$name: HUP replaces both workers" \
	    wait_for 10 workers_changed "$old" "$w"
	check "$name: 20 requests after HUP" \
	    curl_many 20 "http://$ADDR/index.html" "$T/html/index.html"
	check "$name: the new workers served them" \
	    served_by "$(workers_of "$old")" 20 "$d/access.log"
	check "$name: HUP kept the helper and the registration" \
	    test "$(shim_helpers | tr '\n' ' ')" = "$helpers"
	not_listening "$name (HUP)" "$port"

	kill -USR2 "$old"
	if ! wait_for 10 test -s "$d/nginx.pid.oldbin" ||
	    ! wait_for 10 test -s "$d/nginx.pid"; then
		fail "$name: USR2 starts a new binary"
		sed 's/^/  # /' "$d/error.log" | tail -5
		return
	fi
	new=$(cat "$d/nginx.pid")
	track_pid "$new"
	pass "$name: USR2 starts a new binary ($new)"
	kill -QUIT "$old"
	check "$name: the old master quits" wait_for 10 none_alive "$old"
	check "$name: 20 requests after the upgrade, same public address" \
	    curl_many 20 "http://$ADDR/index.html" "$T/html/index.html"
	check "$name: the new binary's workers served them" \
	    served_by "$(workers_of "$new")" 20 "$d/access.log"
	not_listening "$name (upgraded)" "$port"
	shim_loaded "$name (upgraded)" "$new"
	check "$name: the upgrade kept the helper and the registration" \
	    test "$(shim_helpers | tr '\n' ' ')" = "$helpers"
	check "$name: the new binary did not bind the real port" \
	    bash -c "! grep -q 'bind() to 0.0.0.0:$port failed' '$d/error.log'"

	kill "$new"
	check "$name: nginx stops on SIGTERM" wait_for 10 none_alive "$new"
	helpers_gone "$name"
	asan_clean "$name"
}

P=$(free_port)
run_nginx v4-mutex-off "0.0.0.0:$P" off "$P"
P=$(free_port)
run_nginx v4-mutex-on "0.0.0.0:$P" on "$P"
P=$(free_port ::1)
run_nginx v6-mutex-on "[::]:$P" on "$P"
# One listening socket per worker (SO_REUSEPORT): the kernel spreads the
# wakes over sockets that share one registration.
P=$(free_port)
run_nginx v4-reuseport "0.0.0.0:$P reuseport" off "$P"
run_nginx_reload v4-reload "$(free_port)"
run_nginx_reload reuseport-reload "$(free_port)" reuseport
finish
