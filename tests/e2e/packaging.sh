#!/bin/bash
# packaging.sh - `make install` into a DESTDIR, the installed files, the
# installed binaries working together, `relayd -t`, the systemd unit
# (systemd-analyze verify), and `make uninstall`.
. "$(dirname "$0")/lib.sh"

R=$T/root
U=$R/usr/lib/systemd/system/relayd.service
cd "$TOP" || exit 1

if ! make --no-print-directory -s install BUILD="$BUILD" \
    SANITIZE="$SANITIZE" DESTDIR="$R" PREFIX=/usr >"$T/install.log" 2>&1; then
	fail "make install DESTDIR=... PREFIX=/usr"
	sed 's/^/  # /' "$T/install.log" | tail -20
	finish
fi
pass "make install DESTDIR=... PREFIX=/usr"

check "installs bin/relayd" test -x "$R/usr/bin/relayd"
check "installs bin/relay-run" test -x "$R/usr/bin/relay-run"
check "installs the systemd unit" test -f "$U"
check "unit: @BINDIR@ replaced by /usr/bin" \
    grep -qx 'ExecStart=/usr/bin/relayd -port 8080' "$U"
check "unit: no @...@ placeholder left" sh -c "! grep -q '@[A-Z]*@' '$U'"
for key in DynamicUser=yes ProtectSystem=strict ProtectHome=yes \
    PrivateTmp=yes NoNewPrivileges=yes CapabilityBoundingSet= \
    LimitNOFILE=65536 Restart=on-failure \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
    SystemCallFilter=@system-service; do
	check "unit: $key" grep -qx "$key" "$U"
done

if [ -f "$SHIM" ]; then
	check "installs lib/librelayshim.so" test -f "$R/usr/lib/librelayshim.so"
	check "installs bin/relayshim" test -x "$R/usr/bin/relayshim"
else
	echo "SKIP: librelayshim.so is not built; its install is not checked"
fi

nman=0
for m in man/*.[0-9]; do
	[ -f "$m" ] || continue
	nman=$((nman + 1))
	s=${m##*.}
	check "installs man page $(basename "$m")" \
	    test -f "$R/usr/share/man/man$s/$(basename "$m")"
done
[ "$nman" = 0 ] && echo "SKIP: no man pages in man/ yet"

# --- relayd -t ------------------------------------------------------------
TP=$(free_port)
check "relayd -t exits 0" timeout 5 "$R/usr/bin/relayd" -t -bind 127.0.0.1 \
    -port "$TP"
check "relayd -t with a bad flag exits non-zero" \
    sh -c "! '$R/usr/bin/relayd' -t -no-such-flag >/dev/null 2>&1"
check "relayd -t with a bad port exits non-zero" \
    sh -c "! '$R/usr/bin/relayd' -t -port 99999 >/dev/null 2>&1"
check "relayd -t does not listen" \
    sh -c "! timeout 5 '$R/usr/bin/relayd' -t -bind 127.0.0.1 -port $TP 2>&1 |
    grep -q 'servers register on port'"

# --- relay-run's own arguments ----------------------------------------------
RR=$R/usr/bin/relay-run
: >"$T/empty.so" # a stand-in the loader skips with a warning
check "relay-run --help exits 0" sh -c "'$RR' --help | grep -q COMMAND"
check "relay-run without a command exits 2" \
    sh -c "'$RR' -r 127.0.0.1:1 >/dev/null 2>&1; test \$? = 2"
check "relay-run -r without a port exits 2" \
    sh -c "'$RR' -r nohost -- true >/dev/null 2>&1; test \$? = 2"
check "relay-run -r HOST: (an empty port) exits 2" \
    sh -c "'$RR' -r nohost: -- true >/dev/null 2>&1; test \$? = 2"
check "relay-run -r :PORT (an empty host) exits 2" \
    sh -c "'$RR' -r :9000 -- true >/dev/null 2>&1; test \$? = 2"
check "relay-run -r HOST:70000 exits 2" \
    sh -c "'$RR' -r nohost:70000 -- true >/dev/null 2>&1; test \$? = 2"
check "relayctl: a usage error says only the message, and exits 2" \
    sh -c "test \"\$('$TOP/scripts/relayctl' -s 2>&1)\" = 'relayctl: -s needs a path'; test \$? = 0 &&
    '$TOP/scripts/relayctl' -s >/dev/null 2>&1; test \$? = 2"
got=$(RELAYSHIM_LIB="$T/empty.so" "$RR" -r '[::1]:9' -a /x/addr -s /x/secret -- \
    sh -c 'echo "$RELAY_HOST $RELAY_PORT $RELAY_ADDR_FILE $RELAY_SECRET_FILE"' \
    2>/dev/null)
check "relay-run: -r [v6]:port, -a and -s set the environment" \
    test "$got" = "::1 9 /x/addr /x/secret"
got=$(RELAYSHIM_LIB="$T/empty.so" RELAY_HOST=10.0.0.1 RELAY_PORT=7 "$RR" -- \
    sh -c 'echo "$RELAY_HOST $RELAY_PORT"' 2>/dev/null)
check "relay-run: RELAY_HOST and RELAY_PORT from the environment" \
    test "$got" = "10.0.0.1 7"

# --- the installed pieces find each other ---------------------------------
if [ -f "$R/usr/lib/librelayshim.so" ]; then
	pre=
	[ "$SANITIZE" = 1 ] && pre=$(gcc -print-file-name=libasan.so)
	got=$(LD_PRELOAD=$pre "$R/usr/bin/relay-run" -r 127.0.0.1:1 -- \
	    sh -c 'echo "$LD_PRELOAD $RELAY_HOST $RELAY_PORT"' 2>/dev/null)
	check "relay-run finds ../lib/librelayshim.so" \
	    test "$got" = "${pre:+$pre:}$R/usr/lib/librelayshim.so 127.0.0.1 1"
	[ "$got" = "${pre:+$pre:}$R/usr/lib/librelayshim.so 127.0.0.1 1" ] ||
	    note "got: $got"

	# The installed relayd, relay-run, shim and helper, end to end.
	RELAYD=$R/usr/bin/relayd
	if start_relayd; then
		mkdir -p "$T/www"
		echo "installed and relayed" >"$T/www/index.html"
		spawn "$T/py.log" env LD_PRELOAD="$pre" \
		    "$R/usr/bin/relay-run" -r "127.0.0.1:$RELAYD_PORT" \
		    -a "$T/addr" -- python3 -m http.server --bind 127.0.0.1 \
		    --directory "$T/www" 0
		if wait_for 10 test -s "$T/addr"; then
			body=$(curl -sS --max-time 10 "http://$(cat "$T/addr")/")
			check "installed relay-run + shim: curl through relayd" \
			    test "$body" = "installed and relayed"
		else
			fail "installed relay-run + shim: public address written"
			sed 's/^/  # /' "$T/py.log" | tail -10
		fi
	else
		fail "installed relayd starts"
	fi
fi

# --- systemd-analyze verify -------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
	# verify checks that ExecStart exists: point it into DESTDIR.
	sed "s|^ExecStart=/usr/bin/|ExecStart=$R/usr/bin/|" "$U" \
	    >"$T/relayd.service"
	manopt=--man=no
	if [ "$nman" != 0 ] && [ -f "$R/usr/share/man/man8/relayd.8" ] &&
	    command -v man >/dev/null 2>&1; then
		manopt=--man=yes # Documentation=man:relayd(8) must resolve
	fi
	MANPATH=$R/usr/share/man systemd-analyze verify "$manopt" \
	    "$T/relayd.service" >"$T/verify.log" 2>&1
	rc=$?
	# Unknown keys are only warnings to verify: any output is a failure.
	check "systemd-analyze verify ($manopt): clean" \
	    test "$rc" = 0 -a ! -s "$T/verify.log"
	sed 's/^/  # /' "$T/verify.log"
	# And the check can fail: a misspelt key must be reported.
	sed 's/^NoNewPrivileges=/NoNewPrivilege=/' "$T/relayd.service" \
	    >"$T/bad.service"
	check "systemd-analyze verify reports a misspelt key" \
	    sh -c "systemd-analyze verify --man=no '$T/bad.service' 2>&1 |
	    grep -q 'Unknown key'"
else
	echo "SKIP: systemd-analyze not available; unit not verified"
fi

# --- make uninstall ----------------------------------------------------------
if make --no-print-directory -s uninstall DESTDIR="$R" PREFIX=/usr \
    >"$T/uninstall.log" 2>&1; then
	left=$(find "$R" -type f | sed "s|^$R||")
	check "make uninstall removes every installed file" test -z "$left"
	[ -n "$left" ] && note "left behind: $left"
else
	fail "make uninstall"
	sed 's/^/  # /' "$T/uninstall.log" | tail -10
fi
finish
