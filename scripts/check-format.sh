#!/bin/sh
# check-format.sh - the C sources match the pinned .clang-format.
# Usage: scripts/check-format.sh [-i]   (-i rewrites the files in place)
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files 'common/*.[ch]' 'relayd/*.[ch]' 'shim/*.[ch]' \
    'examples/*.[ch]' 'tests/unit/*.c' 'tests/peers/*.c' 'tests/fuzz/*.c' \
    'bench/*.c')
if [ "${1:-}" = -i ]; then
	clang-format -i $files
	exit 0
fi
bad=0
for f in $files; do
	if ! clang-format "$f" | cmp -s - "$f"; then
		echo "check-format: $f differs from clang-format's output" >&2
		bad=1
	fi
done
exit $bad
