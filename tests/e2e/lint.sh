#!/bin/bash
# lint.sh - static analysis stays clean: "make lint" (cppcheck over the
# sources, mandoc -Tlint over the man pages) must report nothing.
. "$(dirname "$0")/lib.sh"

if ! command -v cppcheck >/dev/null; then
	echo "SKIP: cppcheck not installed"
	finish
fi
if (cd "$TOP" && timeout 400 make --no-print-directory lint) >"$T/lint.log" 2>&1; then
	pass "make lint: cppcheck and mandoc clean"
else
	fail "make lint: cppcheck and mandoc clean"
	sed 's/^/  # /' "$T/lint.log" | tail -30
fi
finish
