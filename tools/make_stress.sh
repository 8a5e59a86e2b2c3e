#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make_stress.sh - `make stress`: long runs of the concurrency suites (the tests labelled torture
# in tests/CMakeLists.txt), 20-60 minutes, a progress line per run on stdout.
#
#   1. build-torture/ (preset torture): STRESS_ROUNDS rounds of the suites under
#      CHM_TORTURE=STRESS_MODE at CHM_TEST_SCALE=STRESS_TORTURE_SCALE, then
#      test_linearizability --stress (CHM_TORTURE=light) in place of its rounds;
#   2. build-torture-tsan/ (preset torture-tsan: TSan + yield points): every suite once,
#      CHM_TORTURE=light, CHM_TEST_SCALE=STRESS_SCALE (TSan's default would be 0.3).
# Each run's output goes to <dir>/stress-<suite>[-<round>].log; every run goes on after a
# failure (its log's tail is printed); any failure fails the script.
#
# env: STRESS_ROUNDS          rounds in build-torture/ (default 5)
#      STRESS_MODE            CHM_TORTURE there (default heavy)
#      STRESS_TORTURE_SCALE   CHM_TEST_SCALE there (default 0.5: heavy yields stretch each
#                             operation; half the operations keep every suite inside its 280 s
#                             watchdog on a loaded two-core machine, the rounds make up the length)
#      STRESS_SCALE           CHM_TEST_SCALE in build-torture-tsan/ (default 1)
#      BUILD_TYPE             CMAKE_BUILD_TYPE instead of the presets' RelWithDebInfo
#      CC, CXX, CMAKE_FLAGS, JOBS, CMAKE, CTEST: tools/presets.sh
set -euo pipefail
. "$(dirname "$0")/presets.sh"

STRESS_ROUNDS=${STRESS_ROUNDS:-5}
STRESS_MODE=${STRESS_MODE:-heavy}
STRESS_TORTURE_SCALE=${STRESS_TORTURE_SCALE:-0.5}
STRESS_SCALE=${STRESS_SCALE:-1}
options=()
[ -n "${BUILD_TYPE:-}" ] && options+=("-DCMAKE_BUILD_TYPE=$BUILD_TYPE")

# The one suite with a --stress mode of its own, run once in it instead of in rounds.
LONG_MODE_SUITE=test_linearizability

t0=$(date +%s)
torture_dir=$(preset_dir torture)
tsan_dir=$(preset_dir torture-tsan)
echo "==== $torture_dir: configure + build"
configure torture "${options[@]}"
build torture
# the suites: the tests labelled torture that are suite executables in tests/ (the same in both
# builds: only the sanitizer differs); a labelled check such as test_symbols, a script about
# the build rather than a concurrency suite, has nothing to repeat.
mapfile -t labelled < <("$CTEST" --test-dir "$torture_dir" -N -L torture |
    sed -n 's/^ *Test *#[0-9]*: *\([^ ]*\).*/\1/p')
suites=()
for t in "${labelled[@]}"; do
    if [ -x "$torture_dir/tests/$t" ]; then suites+=("$t"); fi
done
[ ${#suites[@]} -gt 0 ] || { echo "make_stress.sh: no tests labelled torture" >&2; exit 1; }
rounds_suites=()
for t in "${suites[@]}"; do
    [ "$t" = "$LONG_MODE_SUITE" ] || rounds_suites+=("$t")
done

fail=0
step=0
total=$((STRESS_ROUNDS * ${#rounds_suites[@]} + 1 + ${#suites[@]}))
# run LOG VAR=VALUE... COMMAND...: one run, its output in LOG, a progress line
run() {
    local log=$1 s
    shift
    step=$((step + 1))
    s=$(date +%s)
    printf '[stress %2d/%d, %5d s] %s ... ' $step $total $((s - t0)) "$*"
    if env "$@" >"$log" 2>&1; then
        echo "ok ($(($(date +%s) - s)) s)"
    else
        echo "FAILED ($(($(date +%s) - s)) s), log: $log"
        tail -n 30 "$log"
        fail=$((fail + 1))
    fi
}
# skip WHAT: a run that cannot happen (its executable is missing)
skip() {
    step=$((step + 1))
    echo "[stress $step/$total] no $1: skipped"
}

for r in $(seq 1 "$STRESS_ROUNDS"); do
    for t in "${rounds_suites[@]}"; do
        run "$torture_dir/stress-$t-$r.log" CHM_TORTURE="$STRESS_MODE" \
            CHM_TEST_SCALE="$STRESS_TORTURE_SCALE" "$torture_dir/tests/$t"
    done
done
lin=$torture_dir/tests/$LONG_MODE_SUITE
if [ -x "$lin" ]; then run "$torture_dir/stress-lin.log" CHM_TORTURE=light "$lin" --stress
else skip "$lin"; fi

echo "==== $tsan_dir: configure + build"
configure torture-tsan "${options[@]}"
build torture-tsan
export TSAN_OPTIONS=halt_on_error=1:allocator_may_return_null=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp
for t in "${suites[@]}"; do
    if [ -x "$tsan_dir/tests/$t" ]; then
        run "$tsan_dir/stress-$t.log" CHM_TORTURE=light CHM_TEST_SCALE="$STRESS_SCALE" \
            "$tsan_dir/tests/$t"
    else
        skip "$tsan_dir/tests/$t"
    fi
done

echo
echo "==== make stress: $((step - fail)) runs passed, $fail failed in $(($(date +%s) - t0)) s"
[ $fail -eq 0 ]
