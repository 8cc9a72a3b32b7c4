#!/bin/bash
# run.sh - the benchmark suite behind `make bench` (docs/PERFORMANCE.md).
#
# Runs the same workloads, on 127.0.0.1, through a direct connection (the
# limit), relayd (rbench dial as the server side), a socat two-listener
# rendezvous relay, haproxy in TCP mode with forced splice, and, once
# build/lib/librelayshim.so exists, the shim + relayd.  Configurations are
# interleaved in a rotated order inside every repetition, so slow drifts
# of a shared machine hit all of them alike.  Raw figures go to
# $BENCH_OUT/results.tsv; bench/report.py prints medians, ranges, ratios
# and the issue's targets and draws the chart.
#
# Environment:
#   BENCH_REPS=5     repetitions
#   BENCH_SECS=3     seconds per throughput / connection-rate run
#   BENCH_SMOKE=1    everything once, about 1 s each (make check uses it)
#   BENCH_OUT=dir    output directory (default bench/out)
#   BENCH_DEPS=0     do not run scripts/install-deps.sh; missing peers are
#                    skipped
#   BENCH_WAN=0      skip the network-namespace WAN profile
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
export BUILD=${BUILD:-build}
SMOKE=${BENCH_SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
	REPS=1 SECS=1 LAT_N=2000 LAT_W=200 HOLD_N=200 WAN_N=5 STALL_SECS=1
else
	REPS=${BENCH_REPS:-5} SECS=${BENCH_SECS:-3} LAT_N=20000 LAT_W=2000
	HOLD_N=10000 WAN_N=20 STALL_SECS=3
fi
OUT=${BENCH_OUT:-$TOP/bench/out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ "${BENCH_DEPS:-1}" = 1 ]; then
	scripts/install-deps.sh bench || exit 1
fi
make --no-print-directory all bench-build >"$OUT/build.log" 2>&1 || {
	cat "$OUT/build.log"
	exit 1
}

# shellcheck source=../tests/e2e/lib.sh
. tests/e2e/lib.sh
RBENCH=$TOP/$BUILD/bench/rbench
RES=$OUT/results.tsv
HZ=$(getconf CLK_TCK)
START=$(date +%s)
printf 'rep\tworkload\tconfig\tmetric\tvalue\n' >"$RES"

# Ten thousand held sessions need fds on every side.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

say() { printf '%s\n' "$*"; }
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }
# kv KEY < line: the value of KEY=value in an rbench output line.
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -1; }
# cpu_ticks PID: user+system time of PID and its reaped children.
cpu_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' \
	    "/proc/$1/stat" 2>/dev/null || echo 0
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

declare -A ADDR RPID RLOG SKIP
# SIDE[config]: "role:pid ..." of the other processes whose CPU a new
# connection costs (the server, the shim's helper).
declare -A SIDE
CFGS=()

# ---- configurations ------------------------------------------------------

# start_rbench_server NAME CMD...: start an rbench server, wait for its
# "listening port=" line; sets SRV_PORT.
start_rbench_server() {
	local log=$T/$1.log
	shift
	spawn "$log" "$@"
	SRV_PID=$SPAWNED
	wait_for 10 grep -q 'listening port=' "$log" || {
		say "server $1 did not start:"
		cat "$log"
		return 1
	}
	SRV_PORT=$(kv port <"$log")
}

setup_direct() {
	start_rbench_server direct "$RBENCH" serve -l 127.0.0.1:0 || exit 1
	DIRECT_PORT=$SRV_PORT
	SIDE[direct]="server:$SRV_PID"
	ADDR[direct]=127.0.0.1:$DIRECT_PORT
	CFGS+=(direct)
}

# setup_relayd NAME: relayd (default flags but the per-registration
# client limit, which the hold test exceeds) with rbench dial behind it.
setup_relayd() {
	start_relayd -max-clients 20000 || exit 1
	RPID[$1]=$RELAYD_PID
	RLOG[$1]=$RELAYD_LOG
	spawn "$T/$1.dial.log" "$RBENCH" dial -r "127.0.0.1:$RELAYD_PORT"
	SIDE[$1]="server:$SPAWNED"
	local p
	p=$(nth_public_port 1) || {
		say "relayd did not register rbench dial"
		exit 1
	}
	ADDR[$1]=127.0.0.1:$p
}

setup_socat() {
	if ! command -v socat >/dev/null; then
		SKIP[socat]="socat not installed"
		return
	fi
	local a b
	a=$(free_port)
	b=$(free_port)
	spawn "$T/socat.log" socat -b 65536 \
	    "TCP-LISTEN:$a,bind=127.0.0.1,reuseaddr,fork" \
	    "TCP-LISTEN:$b,bind=127.0.0.1,reuseaddr,retry=5000,interval=0.001"
	RPID[socat]=$SPAWNED
	wait_for 10 listening "$a" || exit 1
	spawn "$T/socat.pool.log" "$RBENCH" pool -c "127.0.0.1:$b" -n 4
	ADDR[socat]=127.0.0.1:$a
	CFGS+=(socat)
}

setup_haproxy() {
	if ! command -v haproxy >/dev/null; then
		SKIP[haproxy]="haproxy not installed"
		return
	fi
	local h
	h=$(free_port)
	# maxconn: the splice pipes cost fds too, under a 20,000-fd limit.
	cat >"$T/haproxy.cfg" <<EOF
global
	maxconn 4000
defaults
	mode tcp
	timeout connect 5s
	timeout client 120s
	timeout server 120s
	option splice-request
	option splice-response
frontend fe
	bind 127.0.0.1:$h
	default_backend be
backend be
	server direct 127.0.0.1:$DIRECT_PORT
EOF
	spawn "$T/haproxy.log" haproxy -db -f "$T/haproxy.cfg"
	RPID[haproxy]=$SPAWNED
	wait_for 10 listening "$h" || {
		cat "$T/haproxy.log"
		exit 1
	}
	ADDR[haproxy]=127.0.0.1:$h
	CFGS+=(haproxy)
}

# The shim registers rbench serve itself; the public address comes from
# RELAY_ADDR_FILE.  Its own relayd, so relayd's CPU figures stay apart.
setup_shim() {
	if [ ! -f "$SHIM" ]; then
		SKIP[shim]="shim not built"
		return
	fi
	setup_relayd shim-relayd
	RPID[shim]=${RPID[shim-relayd]}
	rm -f "$T/shim.addr"
	spawn "$T/shim.serve.log" env LD_PRELOAD="$SHIM_PRELOAD" \
	    RELAY_HOST=127.0.0.1 RELAY_PORT="$RELAYD_PORT" \
	    RELAY_ADDR_FILE="$T/shim.addr" "$RBENCH" serve -l 127.0.0.1:0
	local srv=$SPAWNED p
	if ! wait_for 10 test -s "$T/shim.addr"; then
		say "shim did not publish an address:"
		cat "$T/shim.serve.log"
		SKIP[shim]="shim did not register"
		return
	fi
	ADDR[shim]=$(head -1 "$T/shim.addr")
	SIDE[shim]="server:$srv"
	# The helper left the server's process tree; its stderr is the
	# server's log.
	for p in $(pgrep -f -- 'relayshim -shim-fd 3'); do
		[ "$(readlink "/proc/$p/fd/2")" = "$T/shim.serve.log" ] &&
		    SIDE[shim]+=" helper:$p"
	done
	CFGS+=(shim)
}

# ---- workloads -----------------------------------------------------------

WORKLOADS=(tput1up tput4up tput1down tput4down lat connrate)

# run_one REP WORKLOAD CONFIG: one measurement, recorded in results.tsv.
run_one() {
	local rep=$1 w=$2 c=$3 addr=${ADDR[$3]} pid=${RPID[$3]:-} out rc
	local t0=0 t1 args
	if [ -n "$pid" ] && ! alive "$pid"; then
		say "  $c: relay process $pid is gone"
		rec "$rep" "$w" "$c" failed 1
		return
	fi
	case $w in
	tput1up) args=(tput -P 1 -d up -t "$SECS") ;;
	tput4up) args=(tput -P 4 -d up -t "$SECS") ;;
	tput1down) args=(tput -P 1 -d down -t "$SECS") ;;
	tput4down) args=(tput -P 4 -d down -t "$SECS") ;;
	lat) args=(lat -n "$LAT_N" -w "$LAT_W" -t 10) ;;
	connrate) args=(connrate -T 8 -t "$SECS") ;;
	esac
	local -A side0
	local s
	[ -n "$pid" ] && t0=$(cpu_ticks "$pid")
	for s in ${SIDE[$c]:-}; do side0[$s]=$(cpu_ticks "${s#*:}"); done
	out=$("$RBENCH" "${args[0]}" -c "$addr" "${args[@]:1}" 2>"$T/run.err")
	rc=$?
	[ -n "$pid" ] && t1=$(cpu_ticks "$pid")
	if [ "$rc" != 0 ]; then
		say "  $w $c: rbench failed (status $rc): $out $(tail -2 "$T/run.err")"
		rec "$rep" "$w" "$c" failed 1
	fi
	case $w in
	tput*)
		local g b
		g=$(kv gbps <<<"$out")
		b=$(kv bytes <<<"$out")
		[ -n "$g" ] && [ "$rc" = 0 ] && rec "$rep" "$w" "$c" gbps "$g"
		if [ -n "$pid" ] && [ -n "$b" ]; then
			rec "$rep" "$w" "$c" bytes "$b"
			rec "$rep" "$w" "$c" cpu_s "$(echo "$t0 $t1 $HZ" |
			    awk '{ printf "%.2f", ($2 - $1) / $3 }')"
		fi
		say "  $w $c: ${g:-?} Gbit/s"
		;;
	lat)
		local p50 p99
		p50=$(kv p50_us <<<"$out")
		p99=$(kv p99_us <<<"$out")
		if [ -n "$p50" ]; then
			rec "$rep" lat "$c" p50_us "$p50"
			rec "$rep" lat "$c" p99_us "$p99"
		fi
		say "  lat $c: p50 ${p50:-?} us, p99 ${p99:-?} us"
		;;
	connrate)
		local cps ok
		cps=$(kv cps <<<"$out")
		ok=$(kv ok <<<"$out")
		[ -n "$cps" ] && rec "$rep" connrate "$c" cps "$cps"
		rec "$rep" connrate "$c" conn_err "$(kv err <<<"$out")"
		[ -n "$ok" ] && rec "$rep" connrate "$c" conns "$ok"
		if [ -n "$pid" ] && [ -n "$ok" ]; then
			rec "$rep" connrate "$c" cpu_s "$(echo "$t0 $t1 $HZ" |
			    awk '{ printf "%.2f", ($2 - $1) / $3 }')"
		fi
		# Where else a connection's CPU goes: the client (its own
		# count), the server, the shim's helper.
		[ -n "$ok" ] && rec "$rep" connrate "$c" cpu_s_client \
		    "$(kv cpu_s <<<"$out")"
		for s in ${SIDE[$c]:-}; do
			rec "$rep" connrate "$c" "cpu_s_${s%%:*}" \
			    "$(echo "${side0[$s]} $(cpu_ticks "${s#*:}") $HZ" |
				awk '{ printf "%.2f", ($2 - $1) / $3 }')"
		done
		say "  connrate $c: ${cps:-?} conn/s"
		;;
	esac
}

# ---- nginx + wrk: HTTP connections per second (shim only) -----------------

# start_nginx NAME [env...]: nginx with one worker on a free port.
start_nginx() {
	local name=$1 port dir=$T/nginx-$1
	shift
	port=$(free_port)
	mkdir -p "$dir/logs"
	cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $dir;
	proxy_temp_path $dir;
	server {
		listen 127.0.0.1:$port;
		location / { return 200 "ok\n"; }
	}
}
EOF
	spawn "$dir/out.log" env "$@" nginx -p "$dir" -c "$dir/nginx.conf" \
	    -e "$dir/logs/error.log"
	NGINX_PORT=$port
}

setup_nginx() {
	NGINX_CFGS=()
	if [ -n "${SKIP[shim]:-}" ]; then
		SKIP[nginx]=${SKIP[shim]}
		return
	fi
	if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
		SKIP[nginx]="nginx or wrk not installed"
		return
	fi
	start_nginx direct
	wait_for 10 listening "$NGINX_PORT" || exit 1
	ADDR[nginx-direct]=127.0.0.1:$NGINX_PORT
	rm -f "$T/nginx.addr"
	start_nginx shim LD_PRELOAD="$SHIM_PRELOAD" RELAY_HOST=127.0.0.1 \
	    RELAY_PORT="$RELAYD_PORT" RELAY_ADDR_FILE="$T/nginx.addr"
	if ! wait_for 10 test -s "$T/nginx.addr"; then
		SKIP[nginx]="nginx under the shim did not register"
		return
	fi
	ADDR[nginx-shim]=$(head -1 "$T/nginx.addr")
	NGINX_CFGS=(nginx-direct nginx-shim)
}

run_wrk() {
	local rep=$1 c=$2 out rps
	out=$(wrk -t1 -c8 -d"${SECS}s" -H 'Connection: close' \
	    "http://${ADDR[$c]}/" 2>&1)
	rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
	[ -n "$rps" ] && rec "$rep" http "$c" rps "$rps"
	if grep -q 'Socket errors\|Non-2xx' <<<"$out"; then
		rec "$rep" http "$c" failed 1
		say "  http $c: $(grep 'Socket errors\|Non-2xx' <<<"$out")"
	fi
	say "  http $c: ${rps:-?} req/s"
}

# ---- memory: idle relayd, then N idle sessions ----------------------------

run_hold() {
	local hard n pid log idle held rss
	hard=$(ulimit -Hn)
	# relayd holds two fds per session plus listeners and a pipe cache
	n=$HOLD_N
	if [ "$hard" != unlimited ] && [ $(((hard - 300) / 2)) -lt "$n" ]; then
		n=$(((hard - 300) / 2))
		say "  fd hard limit $hard: relayd can hold at most about $n" \
		    "sessions, not $HOLD_N"
	fi
	rec 0 hold relayd asked "$HOLD_N"
	rec 0 hold relayd fd_limit "$hard"
	setup_relayd relayd-mem
	pid=${RPID[relayd-mem]}
	idle=$(rss_kb "$pid")
	rec 0 hold relayd rss_idle_kb "$idle"
	# RSS counts every shared libc page the process has mapped; say how
	# much of it is relayd's own, and, for scale, the RSS of coreutils
	# sleep, a dynamically linked C program that does nothing.
	rec 0 hold relayd private_idle_kb "$(awk '/^Private_(Clean|Dirty):/ \
	    { s += $2 } END { print s }' "/proc/$pid/smaps_rollup")"
	rec 0 hold relayd pss_idle_kb "$(awk '/^Pss:/ { print $2 }' \
	    "/proc/$pid/smaps_rollup")"
	spawn /dev/null sleep 30
	local spid=$SPAWNED
	wait_for 5 grep -q nanosleep "/proc/$spid/wchan"
	rec 0 hold relayd rss_floor_kb "$(rss_kb "$spid")"
	kill "$spid" 2>/dev/null
	log=$T/hold.log
	spawn "$log" "$RBENCH" hold -c "${ADDR[relayd-mem]}" -n "$n" -t 600
	local hpid=$SPAWNED
	if ! wait_for 300 grep -q 'held=' "$log"; then
		say "  hold: no result:"
		cat "$log"
		rec 0 hold relayd held 0
		rec 0 hold relayd tried "$n"
		kill "$hpid" 2>/dev/null
		return
	fi
	rss=$(rss_kb "$pid")
	held=$(kv held <"$log")
	rec 0 hold relayd tried "$n"
	rec 0 hold relayd held "$held"
	rec 0 hold relayd hold_err "$(kv err <"$log")"
	rec 0 hold relayd rss_held_kb "$rss"
	rec 0 hold relayd fds "$(fd_count "$pid")"
	say "  relayd RSS idle ${idle} kB; $held of $n sessions held," \
	    "RSS ${rss} kB, $(fd_count "$pid") fds"
	kill "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
	alive "$pid" || say "  relayd died during the hold test"
}

# ---- main ----------------------------------------------------------------

say "bench: $(nproc) CPUs, $(uname -r), reps $REPS, ${SECS}s per run" \
    "$([ "$SMOKE" = 1 ] && echo '(smoke)')"
setup_direct
setup_relayd relayd
CFGS+=(relayd)
setup_socat
setup_haproxy
setup_shim
setup_nginx
for c in socat haproxy shim nginx; do
	[ -n "${SKIP[$c]:-}" ] && say "$c: SKIP (${SKIP[$c]})" &&
	    rec 0 skip "$c" reason "${SKIP[$c]}"
done

n=${#CFGS[@]}
for ((rep = 1; rep <= REPS; rep++)); do
	say "rep $rep/$REPS ($(($(date +%s) - START)) s)"
	wi=0
	for w in "${WORKLOADS[@]}"; do
		for ((i = 0; i < n; i++)); do
			run_one "$rep" "$w" "${CFGS[$(((i + rep + wi) % n))]}"
		done
		wi=$((wi + 1))
	done
	if [ ${#NGINX_CFGS[@]} -gt 0 ]; then
		for ((i = 0; i < 2; i++)); do
			run_wrk "$rep" "${NGINX_CFGS[$(((i + rep) % 2))]}"
		done
	fi
done

say "memory ($(($(date +%s) - START)) s)"
run_hold

if [ "${BENCH_WAN:-1}" = 1 ]; then
	say "WAN profile ($(($(date +%s) - START)) s)"
	BENCH_RES=$RES WAN_N=$WAN_N WAN_STALL_SECS=$STALL_SECS bench/wan.sh ||
	    say "WAN profile failed"
else
	rec 0 skip wan reason "BENCH_WAN=0"
fi

say "done in $(($(date +%s) - START)) s"
rec 0 meta all secs "$(($(date +%s) - START))"
machine="$(nproc) vCPU, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo |
    head -1), Linux $(uname -r)"
python3 bench/report.py "$RES" "$OUT" "$machine" || exit 1
# The README shows the chart of the latest full run.
if [ "$SMOKE" != 1 ] && [ -z "${BENCH_OUT:-}" ] && [ -f "$OUT/chart.png" ]; then
	cp "$OUT/chart.png" docs/bench-chart.png
fi
