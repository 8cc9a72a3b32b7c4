#!/bin/sh
# expose-python.sh - serve a directory with Python's http.server through
# relayd, using the preload shim (no change to the server).
#
#   examples/expose-python.sh relay.example.net:8080
#   RELAY_HOST=relay.example.net RELAY_PORT=8080 examples/expose-python.sh
#
# Serves $SERVE_DIR, or a page of its own by default (not the current
# directory: that would publish whatever happens to be in it).  Prints
# the public address; clients use http://<public address>/.
# shellcheck source-path=SCRIPTDIR source=expose-lib.sh
. "$(dirname "$0")/expose-lib.sh"

dir=${SERVE_DIR:-$WORK/www}
mkdir -p "$WORK/www"
echo "Hello from python through relayd" >"$WORK/www/index.html"

# The port asked for here does not matter: the shim binds loopback
# instead and registers it with the relay (RELAY_PORTS: only this one).
LD_PRELOAD=$PRELOAD RELAY_HOST=$RELAY_HOST RELAY_PORT=$RELAY_PORT \
    RELAY_ADDR_FILE=$ADDR_FILE RELAY_PORTS=8000 \
    python3 -m http.server --bind 127.0.0.1 --directory "$dir" 8000 >&2 &
expose_wait $! "python http.server" "http://"
