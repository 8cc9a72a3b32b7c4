#!/bin/bash
# format.sh - every C source matches the pinned .clang-format
# (scripts/check-format.sh; scripts/check-format.sh -i fixes them).
. "$(dirname "$0")/lib.sh"

if ! command -v clang-format >/dev/null; then
	echo "SKIP: clang-format not installed"
	finish
fi
if (cd "$TOP" && scripts/check-format.sh) >"$T/fmt.log" 2>&1; then
	pass "C sources match .clang-format"
else
	fail "C sources match .clang-format"
	sed 's/^/  # /' "$T/fmt.log" | head -20
fi
finish
