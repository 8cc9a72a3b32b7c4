#!/bin/sh
# expose-nginx.sh - run nginx (master and two workers) through relayd,
# using the preload shim, with a throwaway configuration.
#
#   examples/expose-nginx.sh relay.example.net:8080
#   RELAY_HOST=relay.example.net RELAY_PORT=8080 examples/expose-nginx.sh
#
# Serves the files in $SERVE_DIR, or a greeting of its own by default.
# Started as root, nginx serves files as user nobody, who must be able to
# read them.  Prints the public address; clients use
# http://<public address>/.
# shellcheck source-path=SCRIPTDIR source=expose-lib.sh
. "$(dirname "$0")/expose-lib.sh"

nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || expose_die "nginx not found (apt-get install nginx-light)"
if [ -n "${SERVE_DIR:-}" ]; then
	serve="root $(cd "$SERVE_DIR" && pwd);"
else
	serve='location / { default_type text/plain;
		return 200 "Hello from nginx through relayd\n"; }'
fi
types=
[ ! -f /etc/nginx/mime.types ] || types="include /etc/nginx/mime.types;"
mkdir -p "$WORK/tmp"
chmod 755 "$WORK" # the workers' temporary files live here

cat >"$WORK/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $WORK/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
	access_log off;
	$types
	client_body_temp_path $WORK/tmp/body;
	proxy_temp_path $WORK/tmp/proxy;
	fastcgi_temp_path $WORK/tmp/fastcgi;
	uwsgi_temp_path $WORK/tmp/uwsgi;
	scgi_temp_path $WORK/tmp/scgi;
	server {
		# Any port: the shim binds loopback and registers with relayd.
		listen 127.0.0.1:8080;
		$serve
	}
}
CONF

LD_PRELOAD=$PRELOAD RELAY_HOST=$RELAY_HOST RELAY_PORT=$RELAY_PORT \
    RELAY_ADDR_FILE=$ADDR_FILE RELAY_PORTS=8080 \
    "$nginx" -p "$WORK" -c "$WORK/nginx.conf" -e stderr >&2 &
expose_wait $! nginx "http://"
