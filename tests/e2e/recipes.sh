#!/bin/bash
# recipes.sh - each examples/expose-*.sh recipe, run as a user would,
# against a local relayd, with a real client: curl (python, nginx),
# redis-cli (redis), ssh with a throwaway key (sshd).
. "$(dirname "$0")/lib.sh"

if [ ! -f "$SHIM" ]; then
	echo "SKIP: $BUILD/lib/librelayshim.so is not built: recipes not run"
	exit 0
fi

start_relayd || { fail "relayd starts"; finish; }
RELAY=127.0.0.1:$RELAYD_PORT
# Recipes make their temporary directories here, so we can see them go.
mkdir -p "$T/tmp"

# Under ASan the runtime must be preloaded first; the recipes keep an
# LD_PRELOAD they find and append the shim.
ASAN_PRE=
[ "$SANITIZE" = 1 ] && ASAN_PRE=$(gcc -print-file-name=libasan.so)

# start_recipe NAME [ENV=VALUE...]: run examples/expose-NAME.sh in its
# own process group; sets RPID, RADDR (the public address it prints) and
# ROUT/RERR (its stdout and stderr, fresh files for every run: a file
# reused from an earlier run could be read before the new one truncates
# it).
RUN=0
start_recipe() {
	local name=$1
	shift
	RUN=$((RUN + 1))
	ROUT=$T/$name.$RUN.out
	RERR=$T/$name.$RUN.err
	env TMPDIR="$T/tmp" RELAYSHIM_LIB="$SHIM" LD_PRELOAD="$ASAN_PRE" "$@" \
	    setsid "$TOP/examples/expose-$name.sh" "$RELAY" >"$ROUT" 2>"$RERR" &
	RPID=$!
	track_pid "$RPID"
	RADDR=
	if ! wait_for 20 test -s "$ROUT"; then
		fail "$name: recipe prints a public address"
		sed 's/^/  # /' "$RERR" | tail -15
		return 1
	fi
	RADDR=$(head -1 "$ROUT")
	check "$name: prints the public address alone on stdout" \
	    grep -Eqx '127\.0\.0\.1:[0-9]+' "$ROUT"
	note "$name public address $RADDR"
}

# group_alive PGID: a live process in the group (zombies left to an init
# that does not reap them do not count).
group_alive() {
	ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'
}
group_gone() { ! group_alive "$1"; }

# stop_recipe NAME: Ctrl-C's effect (SIGTERM here); the recipe must stop
# its server and remove its temporary directory.
stop_recipe() {
	local name=$1
	kill -TERM "$RPID" 2>/dev/null
	check "$name: recipe exits on SIGTERM" wait_for 10 sh -c "! kill -0 $RPID"
	check "$name: recipe removes its temporary directory" \
	    wait_for 5 test -z "$(ls -A "$T/tmp")"
	# Anything left in its process group is a server it failed to stop.
	if wait_for 5 group_gone "$RPID"; then
		pass "$name: recipe leaves no process behind"
	else
		fail "$name: recipe leaves no process behind"
		ps -o pid,stat,args -g "$RPID" | sed 's/^/  # /'
		kill -KILL -- "-$RPID" 2>/dev/null
	fi
	rm -rf "${T:?}/tmp/"*
}

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# --- python http.server ---------------------------------------------------
if start_recipe python; then
	body=$(curl -sS --max-time 10 "http://$RADDR/")
	check "python: curl through relayd" \
	    test "$body" = "Hello from python through relayd"
	stop_recipe python
fi

# --- nginx ------------------------------------------------------------------
if ! have nginx; then
	echo "SKIP: nginx not installed"
elif start_recipe nginx; then
	body=$(curl -sS --max-time 10 "http://$RADDR/")
	check "nginx: curl through relayd" \
	    test "$body" = "Hello from nginx through relayd"
	codes=$(for i in $(seq 20); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 \
		    "http://$RADDR/" &
	done; wait)
	check "nginx: 20 concurrent requests all 200" \
	    test "$(grep -c '^200$' <<<"$codes")" = 20
	[ "$body" = "Hello from nginx through relayd" ] ||
	    note "got: $(curl -s -i --max-time 5 "http://$RADDR/" | head -1)"
	stop_recipe nginx
fi
# With SERVE_DIR: static files.  Run as root, nginx reads them as nobody,
# so the directory (and the way to it) must be readable by all.
if have nginx; then
	chmod 711 "$T"
	mkdir -p "$T/www"
	echo "static file via nginx" >"$T/www/page.txt"
	chmod 755 "$T/www"
	chmod 644 "$T/www/page.txt"
	if start_recipe nginx SERVE_DIR="$T/www"; then
		body=$(curl -sS --max-time 10 "http://$RADDR/page.txt")
		check "nginx: SERVE_DIR file through relayd" \
		    test "$body" = "static file via nginx"
		stop_recipe nginx
	fi
fi

# --- redis --------------------------------------------------------------------
if ! have redis-server || ! have redis-cli; then
	echo "SKIP: redis-server or redis-cli not installed"
elif start_recipe redis REDIS_PASSWORD=relay-test-pw; then
	rcli() {
		REDISCLI_AUTH=relay-test-pw timeout 10 redis-cli \
		    -h "${RADDR%:*}" -p "${RADDR##*:}" "$@"
	}
	check "redis: SET through relayd" test "$(rcli SET relay works)" = OK
	check "redis: GET through relayd" test "$(rcli GET relay)" = works
	check "redis: a wrong password is refused" \
	    sh -c "REDISCLI_AUTH=wrong timeout 10 redis-cli -h '${RADDR%:*}' \
	    -p '${RADDR##*:}' GET relay 2>&1 | grep -q WRONGPASS"
	stop_recipe redis
fi

# --- sshd ---------------------------------------------------------------------
if [ ! -x /usr/sbin/sshd ] || ! have ssh || ! have ssh-keygen; then
	echo "SKIP: openssh-server or the ssh client not installed"
else
	ssh-keygen -q -t ed25519 -N '' -f "$T/id_test"
	if start_recipe sshd AUTHORIZED_KEYS="$T/id_test.pub"; then
		banner=$(python3 - "${RADDR##*:}" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
print(s.makefile("rb").readline().decode(errors="replace").strip())
PY
)
		check "sshd: SSH banner through relayd" \
		    grep -q '^SSH-2\.0-' <<<"$banner"
		out=$(timeout 20 ssh -F /dev/null -i "$T/id_test" \
		    -o BatchMode=yes -o StrictHostKeyChecking=no \
		    -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 \
		    -o LogLevel=ERROR -p "${RADDR##*:}" \
		    "$(id -un)@127.0.0.1" echo relay-ok 2>"$T/ssh.err")
		check "sshd: key login and a command through relayd" \
		    test "$out" = relay-ok
		[ "$out" = relay-ok ] || sed 's/^/  # /' "$T/ssh.err" "$RERR"
		stop_recipe sshd
	fi
fi

# --- argument handling (no server needed) ---------------------------------------
check "recipes: --help prints the usage comment" \
    sh -c "'$TOP/examples/expose-python.sh' --help | grep -q RELAY_HOST"
check "recipes: no relay given -> error, non-zero" \
    sh -c "! env -u RELAY_HOST '$TOP/examples/expose-python.sh' 2>/dev/null"
# (Only meaningful where no shim is installed system-wide to fall back on.)
if [ ! -e /usr/local/lib/librelayshim.so ] && [ ! -e /usr/lib/librelayshim.so ]
then
	check "recipes: missing shim -> error, non-zero" \
	    sh -c "! RELAYSHIM_LIB=/nonexistent \
	    '$TOP/examples/expose-python.sh' 127.0.0.1:1 2>/dev/null"
fi

if [ "$NFAIL" != 0 ]; then
	note "relayd log:"
	sed 's/^/  # /' "$RELAYD_LOG" | tail -20
	for f in "$T"/*.err; do
		note "$f:"
		sed 's/^/  # /' "$f" | tail -10
	done
fi
finish
