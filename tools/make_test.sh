#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make_test.sh - `make test`: configure, build and ctest each configuration of the test matrix
# through its CMakePresets.json presets (what each configuration is, and which tests its test
# preset selects, is said there and in tests/CMakeLists.txt, not here).
#
# Each configuration is configured, built and tested even if an earlier one failed, so one run
# shows every failure. ctest's output goes to the terminal and to <dir>/ctest.log. Then a
# summary: one line per build directory, each failed test with the command that reruns it alone,
# and last "N passed, M failed" (tests; a configuration that does not build counts as one
# failure; CI reads this line). Exit status 1 on any failure.
#
# usage: tools/make_test.sh
# env:   TEST_PRESETS  the matrix (default "plain tsan asan torture": build/, build-tsan/,
#                      build-asan/ and build-torture/)
#        BUILD_TYPE    CMAKE_BUILD_TYPE instead of the presets' RelWithDebInfo
#        PREFIX        CMAKE_INSTALL_PREFIX
#        CTEST_FLAGS   more ctest options (e.g. -R test_flood)
#        CC, CXX, CMAKE_FLAGS, JOBS, CMAKE, CTEST: tools/presets.sh
set -uo pipefail
. "$(dirname "$0")/presets.sh"

TEST_PRESETS=${TEST_PRESETS:-plain tsan asan torture}
CTEST_FLAGS=${CTEST_FLAGS:-}
options=()
[ -n "${BUILD_TYPE:-}" ] && options+=("-DCMAKE_BUILD_TYPE=$BUILD_TYPE")
[ -n "${PREFIX:-}" ] && options+=("-DCMAKE_INSTALL_PREFIX=$PREFIX")

# kind DIR: plain, thread, address or torture, as its cache says (the preset name if unknown)
kind() {
    local cache=$1/CMakeCache.txt sanitize validate
    sanitize=$(sed -n 's/^CHM_SANITIZE:[A-Z]*=//p' "$cache" 2>/dev/null)
    validate=$(sed -n 's/^CHM_VALIDATE:[A-Z]*=//p' "$cache" 2>/dev/null)
    if [ ! -f "$cache" ]; then echo "$2"
    elif [ "$validate" = ON ]; then echo torture
    elif [ -n "$sanitize" ]; then echo "$sanitize"
    else echo plain
    fi
}

summary=()
failed_tests=()
total_pass=0
total_fail=0
t0=$(date +%s)
for preset in $TEST_PRESETS; do
    dir=$(preset_dir "$preset") || exit 1
    echo
    echo "==== $dir ($preset): configure + build"
    if ! configure "$preset" "${options[@]}" || ! build "$preset"; then
        summary+=("$(printf '%-13s %-8s BUILD FAILED' "$dir" "$(kind "$dir" "$preset")")")
        total_fail=$((total_fail + 1))
        continue
    fi
    k=$(kind "$dir" "$preset")
    echo "==== $dir ($k): ctest --preset $preset"
    rc=0
    # shellcheck disable=SC2086  # CTEST_FLAGS is a list of options
    "$CTEST" --preset "$preset" -j "$JOBS" $CTEST_FLAGS 2>&1 | tee "$dir/ctest.log" || rc=$?
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$dir/ctest.log" | tail -n 1)
    if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
        nfail=${BASH_REMATCH[1]}
        ntot=${BASH_REMATCH[2]}
    else
        nfail=1
        ntot=1
    fi
    if [ $rc -ne 0 ] && [ "$nfail" -eq 0 ]; then
        nfail=1
        ntot=$((ntot + 1))
    fi
    total_pass=$((total_pass + ntot - nfail))
    total_fail=$((total_fail + nfail))
    if [ "$nfail" -eq 0 ]; then status=ok; else status=FAILED; fi
    while read -r name; do
        failed_tests+=("$(printf '%-13s %-24s ctest --test-dir %s -R %s --output-on-failure' \
            "$dir" "$name" "$dir" "'^$name\$'")")
    done < <(sed -n '/The following tests FAILED:/,$s/^[[:space:]]*[0-9]* - \([^ ]*\) .*/\1/p' \
        "$dir/ctest.log")
    if grep -q 'No tests were found' "$dir/ctest.log"; then
        summary+=("$(printf '%-13s %-8s NO TESTS FOUND (counted as 1 failure)' "$dir" "$k")")
    else
        summary+=("$(printf '%-13s %-8s %3d tests, %d failed  %s' "$dir" "$k" "$ntot" "$nfail" \
            "$status")")
    fi
done

echo
echo "==== make test summary (CC=$CC, $(($(date +%s) - t0)) s)"
for s in "${summary[@]}"; do echo "  $s"; done
if [ ${#failed_tests[@]} -gt 0 ]; then
    echo "failed tests, and the command that reruns one alone:"
    for f in "${failed_tests[@]}"; do echo "  $f"; done
fi
echo "$total_pass passed, $total_fail failed"
[ $total_fail -eq 0 ]
