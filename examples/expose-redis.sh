#!/bin/sh
# expose-redis.sh - run a throwaway redis-server through relayd, using the
# preload shim.  Nothing is saved to disk.
#
#   examples/expose-redis.sh relay.example.net:8080
#   RELAY_HOST=relay.example.net RELAY_PORT=8080 examples/expose-redis.sh
#
# A redis reachable from the internet needs a password: $REDIS_PASSWORD,
# or a random one printed on stderr.  Prints the public address; clients
# use  redis-cli -h <host> -p <port> --askpass.
# shellcheck source-path=SCRIPTDIR source=expose-lib.sh
. "$(dirname "$0")/expose-lib.sh"

command -v redis-server >/dev/null ||
    expose_die "redis-server not found (apt-get install redis-server)"
pass=${REDIS_PASSWORD:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
[ -n "${REDIS_PASSWORD:-}" ] || echo "$expose_prog: password: $pass" >&2

# The password goes in a file, not on the command line that ps shows.
cat >"$WORK/redis.conf" <<CONF
bind 127.0.0.1
port 6379
requirepass $pass
save ""
appendonly no
dir $WORK
daemonize no
logfile ""
CONF
chmod 600 "$WORK/redis.conf"

# Port 6379 may be taken by a system redis: no matter, the shim binds
# loopback on a free port instead and registers that with relayd.
LD_PRELOAD=$PRELOAD RELAY_HOST=$RELAY_HOST RELAY_PORT=$RELAY_PORT \
    RELAY_ADDR_FILE=$ADDR_FILE RELAY_PORTS=6379 \
    redis-server "$WORK/redis.conf" >&2 &
expose_wait $! redis-server "redis://"
