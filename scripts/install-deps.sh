#!/bin/sh
# install-deps.sh - install what building and testing need, from Debian.
# Installs only what is missing; "apt-get update" runs first when it must.
# Usage: scripts/install-deps.sh [build|demo|test|bench|fuzz]   (default: test)
set -eu

what=${1:-test}
build="gcc make pkg-config libev-dev"
test="$build libcmocka-dev libsodium-dev python3 curl netcat-openbsd socat busybox nginx-light \
redis-server redis-tools lighttpd wrk nodejs iproute2 procps mandoc \
valgrind cppcheck clang-format openssh-server openssh-client systemd"
bench="$test iperf3 haproxy gnuplot-nox"
# libFuzzer's runtime is only recommended by clang, and we install none.
fuzz="$build clang libclang-rt-dev"

case $what in
build) pkgs=$build ;;
demo) pkgs="$build python3 curl" ;;
test) pkgs=$test ;;
bench) pkgs=$bench ;;
fuzz) pkgs=$fuzz ;;
*) echo "usage: $0 [build|demo|test|bench|fuzz]" >&2; exit 2 ;;
esac

missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
	    grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nginx, redis and sshd must not start as system services here: the tests
# run their own instances on free ports.  A policy the machine had
# already is put back, whatever happens.
prc=/usr/sbin/policy-rc.d
saved=
if [ -e "$prc" ]; then
	saved=$(mktemp)
	cp -p "$prc" "$saved"
fi
restore() {
	if [ -n "$saved" ]; then mv -f "$saved" "$prc"; else rm -f "$prc"; fi
}
trap restore EXIT
printf '#!/bin/sh\nexit 101\n' > "$prc"
chmod 755 "$prc"
apt-get install -y -qq --no-install-recommends $missing >/dev/null
