#!/bin/bash
# shim_redis.sh - an unmodified Debian redis-server under librelayshim.so,
# reached through relayd: in the foreground (it listens on 0.0.0.0 and ::
# at once), with --daemonize yes, and with RELAY_EXTENSIONS=0.  redis-cli and redis-benchmark talk
# to it through the relay; no helper may outlive it.
. "$(dirname "$0")/lib.sh"
. "$TOP/tests/fixtures/shim_e2e.sh"

need redis-server redis-cli redis-benchmark ss
shim_built
start_relayd || { fail "relayd starts"; finish; }

# cli ARGS...: redis-cli through the relay.
cli() { timeout 10 redis-cli -h 127.0.0.1 -p "${ADDR#*:}" "$@"; }

# bench NAME: redis-benchmark through the relay answers every test.
bench() {
	local out
	out=$(timeout 60 redis-benchmark -h 127.0.0.1 -p "${ADDR#*:}" -q \
	    -n 2000 -c 20 -t ping,set,get 2>&1 | tr '\r' '\n')
	if [ "$(grep -Ec '^(PING_INLINE|PING_MBULK|SET|GET): [0-9.]+ requests per second' \
	    <<<"$out")" = 4 ] && ! grep -Eiq 'error|refused|reset' <<<"$out"; then
		pass "$1: redis-benchmark -n 2000 -c 20 -t ping,set,get, no error"
	else
		fail "$1: redis-benchmark -n 2000 -c 20 -t ping,set,get, no error"
		grep -v 'rps=' <<<"$out" | sed 's/^/  # /' | head -20
	fi
}

# use_redis NAME: the checks every variant runs once redis is up.
use_redis() {
	local name=$1
	check "$name: PING through the relay" test "$(cli PING)" = PONG
	check "$name: SET through the relay" test "$(cli SET shimkey v1)" = OK
	check "$name: GET through the relay" test "$(cli GET shimkey)" = v1
	bench "$name"
	check "$name: the benchmark's keys are there" \
	    test "$(cli EXISTS key:__rand_int__)" = 1
}

# --- foreground: listeners on 0.0.0.0:P and [::]:P ----------------------
name=plain
d=$T/$name
mkdir -p "$d"
P=$(free_port)
spawn "$d/stderr" env LD_PRELOAD="$SHIM_PRELOAD" RELAY_HOST=127.0.0.1 \
    RELAY_PORT="$RELAYD_PORT" RELAY_ADDR_FILE="$d/addr" \
    redis-server --port "$P" --save '' --appendonly no \
    --protected-mode no --dir "$d"
RPID=$SPAWNED
if relay_addr "$name" "$d/addr"; then
	check "$name: the shim names the public address on stderr" \
	    grep -Fxq "relayshim: 0.0.0.0:$P -> $ADDR" "$d/stderr"
	check "$name: redis is ready" \
	    wait_for 5 grep -q 'Ready to accept connections' "$d/stderr"
	not_listening "$name" "$P"
	track_helpers "$name" "$RPID"
	shim_loaded "$name" "$RPID"
	use_redis "$name"
	check "$name: SHUTDOWN NOSAVE through the relay" \
	    test -z "$(cli SHUTDOWN NOSAVE 2>&1)"
	check "$name: redis exits" wait_for 10 none_alive "$RPID"
	helpers_gone "$name"
	asan_clean "$name"
else
	sed 's/^/  # /' "$d/stderr"
fi

# --- --daemonize yes: redis forks before it listens ---------------------
name=daemonize
d=$T/$name
mkdir -p "$d"
P=$(free_port)
LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAYD_PORT \
    RELAY_ADDR_FILE=$d/addr timeout 10 redis-server --port "$P" --save '' \
    --appendonly no --protected-mode no --dir "$d" --daemonize yes \
    --pidfile "$d/redis.pid" --logfile "$d/redis.log" >"$d/stderr" 2>&1
check "$name: redis-server returns 0 after daemonizing" test $? = 0
if wait_for 5 test -s "$d/redis.pid"; then
	RPID=$(cat "$d/redis.pid")
	track_pid "$RPID"
	pass "$name: redis writes its pid file"
else
	fail "$name: redis writes its pid file"
	RPID=
fi
if [ -n "$RPID" ] && relay_addr "$name" "$d/addr"; then
	check "$name: redis is ready" \
	    wait_for 5 grep -q 'Ready to accept connections' "$d/redis.log"
	not_listening "$name" "$P"
	track_helpers "$name" "$RPID"
	shim_loaded "$name" "$RPID"
	use_redis "$name"
	kill "$RPID"
	check "$name: redis exits on SIGTERM" wait_for 10 none_alive "$RPID"
	helpers_gone "$name"
	asan_clean "$name"
else
	sed 's/^/  # /' "$d/stderr" "$d/redis.log" 2>/dev/null
fi
# --- RELAY_EXTENSIONS=0: the original protocol, no address advertised ----
name=original
d=$T/$name
mkdir -p "$d"
P=$(free_port)
n=$(($(grep -c 'Serving relay requests on port' "$RELAYD_LOG") + 1))
spawn "$d/stderr" env LD_PRELOAD="$SHIM_PRELOAD" RELAY_HOST=127.0.0.1 \
    RELAY_PORT="$RELAYD_PORT" RELAY_ADDR_FILE="$d/addr" RELAY_EXTENSIONS=0 \
    redis-server --port "$P" --save '' --appendonly no \
    --protected-mode no --dir "$d"
RPID=$SPAWNED
if pub=$(nth_public_port "$n"); then
	ADDR=127.0.0.1:$pub
	pass "$name: relayd serves it on port $pub"
	check "$name: the shim says where the public port is" \
	    wait_for 5 grep -q "^relayshim: 0\.0\.0\.0:$P -> 127\.0\.0\.1 (public port in the relay's log" \
	    "$d/stderr"
	check "$name: no address file without the extension" \
	    test ! -s "$d/addr"
	check "$name: redis is ready" \
	    wait_for 5 grep -q 'Ready to accept connections' "$d/stderr"
	not_listening "$name" "$P"
	track_helpers "$name" "$RPID"
	use_redis "$name"
	kill "$RPID"
	check "$name: redis exits on SIGTERM" wait_for 10 none_alive "$RPID"
	helpers_gone "$name"
	asan_clean "$name"
else
	fail "$name: relayd serves it"
	sed 's/^/  # /' "$d/stderr"
fi
finish
