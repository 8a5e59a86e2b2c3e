# SPDX-License-Identifier: BSD-2-Clause
# checklib.sh - what the shell test scripts share; sourced as `. "$(dirname "$0")/checklib.sh"`.
# Sets TMP (a temporary directory removed at exit) and pass/fail counters; check NAME COMMAND...
# counts NAME as passed when COMMAND succeeds. A script ends with checklib_finish, which prints
# the closing line "N passed, M failed" and exits 0 only when nothing failed.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() {
    name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
checklib_finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}
