# expose-lib.sh - what the expose-*.sh recipes share.  Sourced, not run.
#
# Usage of every recipe:
#   expose-NAME.sh [RELAY_HOST:RELAY_PORT | RELAY_HOST RELAY_PORT]
# or with RELAY_HOST and RELAY_PORT in the environment.
#
# After sourcing, a recipe has:
#   RELAY_HOST, RELAY_PORT  the relay's control address
#   SHIM_LIB                absolute path of librelayshim.so
#   PRELOAD                 the LD_PRELOAD value to start its server with
#   WORK                    a private temporary directory, removed on exit
#   ADDR_FILE               where the shim writes the public address
# and calls expose_wait PID NAME URL-PREFIX once its server is started.
# Servers send their own output to stderr: stdout carries the public
# address alone, for scripts.
set -eu

expose_prog=${0##*/}

expose_die() {
	echo "$expose_prog: $*" >&2
	exit 1
}

# The relay: arguments win over the environment.
case $# in
0) ;;
1) case $1 in
   -h | --help)
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
	exit 0 ;;
   \[*\]:*) RELAY_HOST=${1%]:*}; RELAY_HOST=${RELAY_HOST#\[}
	RELAY_PORT=${1##*]:} ;;
   *:*) RELAY_HOST=${1%:*}; RELAY_PORT=${1##*:} ;;
   *) RELAY_HOST=$1 ;;
   esac ;;
2) RELAY_HOST=$1; RELAY_PORT=$2 ;;
*) expose_die "usage: $expose_prog [HOST:PORT | HOST PORT]" ;;
esac
[ -n "${RELAY_HOST:-}" ] ||
    expose_die "no relay: give HOST:PORT or set RELAY_HOST and RELAY_PORT"
RELAY_PORT=${RELAY_PORT:-8080}

# The shim: $RELAYSHIM_LIB, the build tree next to these examples, or the
# installed copy.
SHIM_LIB=${RELAYSHIM_LIB:-$(dirname "$0")/../build/lib/librelayshim.so}
[ -f "$SHIM_LIB" ] || SHIM_LIB=/usr/local/lib/librelayshim.so
[ -f "$SHIM_LIB" ] || SHIM_LIB=/usr/lib/librelayshim.so
[ -f "$SHIM_LIB" ] ||
    expose_die "librelayshim.so not found (run make, or set RELAYSHIM_LIB)"
# Absolute, because servers change directory before they exec helpers.
SHIM_LIB=$(cd "$(dirname "$SHIM_LIB")" && pwd)/librelayshim.so
# Anything preloaded already (an ASan runtime) must stay first.
# shellcheck disable=SC2034 # used by the recipes
PRELOAD=${LD_PRELOAD:+$LD_PRELOAD:}$SHIM_LIB

WORK=$(mktemp -d "${TMPDIR:-/tmp}/expose.XXXXXX")
ADDR_FILE=$WORK/public-address
expose_pid=

expose_cleanup() {
	if [ -n "$expose_pid" ] && kill -0 "$expose_pid" 2>/dev/null; then
		kill "$expose_pid" 2>/dev/null || true
		wait "$expose_pid" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap expose_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# expose_wait PID NAME URL-PREFIX: wait until the shim has registered the
# server, print the public address (alone, on stdout, for scripts), then
# stay in the foreground until the server exits or we are stopped.
expose_wait() {
	expose_pid=$1
	i=0
	while [ ! -s "$ADDR_FILE" ]; do
		kill -0 "$expose_pid" 2>/dev/null ||
		    expose_die "$2 exited before it registered with the relay"
		i=$((i + 1))
		[ "$i" -le 150 ] || expose_die \
		    "$2 did not register with $RELAY_HOST:$RELAY_PORT in 15 s"
		sleep 0.1
	done
	addr=$(cat "$ADDR_FILE")
	echo "$addr"
	echo "$expose_prog: $2 is reachable at $3$addr (Ctrl-C stops it)" >&2
	status=0
	wait "$expose_pid" || status=$?
	expose_pid=
	exit "$status"
}
