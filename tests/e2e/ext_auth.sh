#!/bin/bash
# ext_auth.sh - the authentication extension and data connections that
# cannot be stolen: wrong, missing and replayed secrets, forged and stray
# data connections, and the right secret working end to end.
. "$(dirname "$0")/lib.sh"
TOOL=$TOP/tests/peers/ext_tool.py

echo "a-shared-secret-of-some-length" >"$T/secret"
echo "another-secret-entirely" >"$T/wrong"
start_relayd -secret-file "$T/secret" -hello-timeout 2 || exit 1
check "relayd says a secret is required" \
    grep -q 'a shared secret is required' "$RELAYD_LOG"

mkdir -p "$T/www" && echo authenticated-page >"$T/www/index.html"
serve() { # serve NAME SECRETFILE
	local port
	port=$(free_port)
	(cd "$T/www" && LD_PRELOAD=$SHIM_PRELOAD RELAY_HOST=127.0.0.1 \
	    RELAY_PORT=$RELAYD_PORT RELAY_SECRET_FILE=$2 \
	    RELAY_ADDR_FILE=$T/$1.addr exec python3 -m http.server \
	    --bind 127.0.0.1 "$port") >"$T/$1.log" 2>&1 &
	track_pid "$!"
	SERVE_PID=$!
}

# No secret: listen() fails with a clear message, the server exits.
serve nosecret ""
wait_for 10 bash -c "! kill -0 $SERVE_PID"
check "server without the secret exits" bash -c "! kill -0 $SERVE_PID"
check "shim says the relay wants a secret" \
    grep -q 'relayshim: cannot register .*requires a shared secret' "$T/nosecret.log"

# Wrong secret.
serve wrong "$T/wrong"
wait_for 10 bash -c "! kill -0 $SERVE_PID"
check "server with a wrong secret exits" bash -c "! kill -0 $SERVE_PID"
check "shim reports the refusal" \
    grep -q 'relayshim: cannot register .*authentication failed' "$T/wrong.log"
check "relayd logs the failed authentication" \
    grep -q 'failed authentication' "$RELAYD_LOG"

# The right secret.
serve good "$T/secret"
wait_for 10 test -s "$T/good.addr"
addr=$(cat "$T/good.addr" 2>/dev/null)
check "right secret: registered" test -n "$addr"
check "right secret: page served through the relay" \
    bash -c "curl -sS -m 5 http://$addr/ | grep -q authenticated-page"

# A peer of the original protocol cannot register at all.
python3 - "$RELAYD_PORT" <<'PY' >"$T/orig.out" 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.settimeout(10)
print("got %r" % s.recv(100))
PY
check "original-protocol peer is closed without a port" grep -q "got b''" "$T/orig.out"
check "relayd logs the missing handshake" \
    grep -q 'no authenticated \[HELLO\] in time' "$RELAYD_LOG"

check "replayed handshake refused" python3 "$TOOL" auth-replay 127.0.0.1 "$RELAYD_PORT" "$T/secret"
check "wrong MAC refused" python3 "$TOOL" auth-wrong 127.0.0.1 "$RELAYD_PORT"
check "forged and stray data connections refused (auth)" \
    python3 "$TOOL" forge-data 127.0.0.1 "$RELAYD_PORT" "$T/secret"
check "pooled data connections, with the secret" \
    python3 "$TOOL" pool 127.0.0.1 "$RELAYD_PORT" "$T/secret"
out=$(python3 "$TOOL" pool-cap 127.0.0.1 "$RELAYD_PORT" "$T/secret" 2>&1)
note "$out"
check "pooled connections beyond the granted pool are closed, [AUTH]s pending or not" \
    grep -Eq '^granted=([0-9]+) challenged=\1$' <<<"$out"
check "relayd still serves after all that" \
    bash -c "curl -sS -m 5 http://$addr/ | grep -q authenticated-page"

# Without a secret, forged data connections are refused all the same.
start_relayd -hello-timeout 2 || exit 1
check "forged and stray data connections refused (no auth)" \
    python3 "$TOOL" forge-data 127.0.0.1 "$RELAYD_PORT"
check "pipelined notifications, paired by id" \
    python3 "$TOOL" pipeline 127.0.0.1 "$RELAYD_PORT" 20
check "pooled data connections, no secret" \
    python3 "$TOOL" pool 127.0.0.1 "$RELAYD_PORT"

# Data connections that never name their client: at most -max-queue plus
# the largest pool (16) are held, the oldest closed at once, not after
# -hello-timeout (each would hold a descriptor until then); a genuine one
# that comes after them still gets its client.
start_relayd -max-queue 4 || exit 1
out=$(python3 "$TOOL" silent-data 127.0.0.1 "$RELAYD_PORT" 30 20 2>&1)
note "$out"
check "silent data connections: 20 held, 10 closed at once; a genuine one still pairs" \
    test "$out" = "closed=10 held=20 paired=1"
check "... each closing logged" \
    count_ge 11 'over the limit of 20 unnamed data connections; closed the oldest silent one' "$RELAYD_LOG"
# A genuine one accepted in the same turn as a burst of silent ones has
# its line waiting, unread: it is not the silent one to close.
out=$(python3 "$TOOL" genuine-first 127.0.0.1 "$RELAYD_PORT" "$RELAYD_PID" 30 \
    2>&1)
note "genuine first: $out"
check "silent data connections: a genuine one ahead of a burst of them is kept" \
    test "$out" = "paired=1 closed=11"

# fetch5 NAME: 5 requests to server NAME's public address; sets OK to the
# number served.
fetch5() {
	local addr i
	wait_for 10 test -s "$T/$1.addr"
	addr=$(cat "$T/$1.addr" 2>/dev/null)
	OK=0
	for i in 1 2 3 4 5; do
		curl -sS -m 5 "http://$addr/" | grep -q authenticated-page &&
		    OK=$((OK + 1))
	done
}

# The shim keeps a pool by default: clients ride pre-opened connections.
start_relayd -v || exit 1
serve pooled ""
fetch5 pooled
check "shim with a pool: 5 requests served" test "$OK" = 5
check "shim with a pool: clients went over pooled connections" \
    grep -q 'on a pooled data connection' "$RELAYD_LOG"

# A server side that has a secret, at a relay that has none: relayd
# sends [NEW] on a pooled connection at once, with no [CHALLENGE] first
# (the helper once waited for one and dropped every such client).
before=$(grep -c 'on a pooled data connection' "$RELAYD_LOG")
serve secretpool "$T/secret"
fetch5 secretpool
check "a secret, a relay without one: 5 requests served" test "$OK" = 5
# The pool is refilled after each client (2 connections, one request at
# a time), so every one of the 5 rides a pooled connection.
check "... all 5 over pooled connections" \
    count_ge $((before + 5)) 'on a pooled data connection' "$RELAYD_LOG"
finish
