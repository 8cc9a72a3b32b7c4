#!/bin/sh
# expose-sshd.sh - run a second, throwaway sshd through relayd, using the
# preload shim: SSH into a machine behind NAT.  Key logins only.
#
#   examples/expose-sshd.sh relay.example.net:8080
#   RELAY_HOST=relay.example.net RELAY_PORT=8080 examples/expose-sshd.sh
#
# Accepts the keys in $AUTHORIZED_KEYS, or each user's own
# ~/.ssh/authorized_keys.  A fresh host key is made for each run.
# Prints the public address; clients use  ssh -p <port> user@<host>.
# shellcheck source-path=SCRIPTDIR source=expose-lib.sh
. "$(dirname "$0")/expose-lib.sh"

sshd=/usr/sbin/sshd # sshd re-executes itself: it needs an absolute path
[ -x "$sshd" ] || expose_die "sshd not found (apt-get install openssh-server)"
ssh-keygen -q -t ed25519 -N '' -C relay-host-key -f "$WORK/host_key"
# Privilege separation needs this directory when sshd runs as root.
[ "$(id -u)" != 0 ] || [ -d /run/sshd ] || mkdir -m 755 /run/sshd

keys=.ssh/authorized_keys
strict=yes
if [ -n "${AUTHORIZED_KEYS:-}" ]; then
	cp "$AUTHORIZED_KEYS" "$WORK/authorized_keys"
	keys=$WORK/authorized_keys
	strict=no # the copy lives in a temporary directory
fi

cat >"$WORK/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port 2222
HostKey $WORK/host_key
PidFile $WORK/sshd.pid
AuthorizedKeysFile $keys
StrictModes $strict
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
CONF

# -D: stay in the foreground; -e: log to stderr.
LD_PRELOAD=$PRELOAD RELAY_HOST=$RELAY_HOST RELAY_PORT=$RELAY_PORT \
    RELAY_ADDR_FILE=$ADDR_FILE RELAY_PORTS=2222 \
    "$sshd" -D -e -f "$WORK/sshd_config" >&2 &
expose_wait $! sshd "ssh://"
