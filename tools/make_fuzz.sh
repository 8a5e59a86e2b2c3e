#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make_fuzz.sh - `make fuzz`: differential fuzzing (tests/fuzz/fuzz_chm.c) with libFuzzer, ASan
# and UBSan. Builds fuzz_chm in build-fuzz/ (preset fuzz; always with FUZZ_CC, whatever CC says:
# libFuzzer comes with clang only) and runs it on build-fuzz/corpus, a copy of tests/fuzz/corpus
# (new inputs never dirty the repository), until Ctrl-C or for FUZZ_TIME seconds. Findings land
# in build-fuzz/crashes/; reproduce one with `build-fuzz/tests/fuzz/fuzz_chm FILE`
# (FUZZ_CHM_TRACE=1 prints each operation). An input runs in well under a second; -timeout=120
# reports hangs without false alarms on a loaded machine.
#
# env: FUZZ_CC    the clang to build with (default clang; its clang++ for C++)
#      FUZZ_TIME  seconds to fuzz (default 0: no limit; with -jobs, the limit of each run)
#      FUZZ_ARGS  more libFuzzer options, e.g. '-jobs=4 -workers=2' (4 runs on 2 processes,
#                 logs in build-fuzz/fuzz-N.log)
#      CMAKE_FLAGS, JOBS, CMAKE: tools/presets.sh
set -euo pipefail
. "$(dirname "$0")/presets.sh"

FUZZ_CC=${FUZZ_CC:-clang}
FUZZ_TIME=${FUZZ_TIME:-0}
FUZZ_ARGS=${FUZZ_ARGS:-}
# shellcheck disable=SC2034  # configure's compilers
CC_PATH=$(command -v "$FUZZ_CC" 2>/dev/null || echo "$FUZZ_CC")
# shellcheck disable=SC2034
CXX_PATH=$(command -v "${FUZZ_CC/clang/clang++}" 2>/dev/null || echo "${FUZZ_CC/clang/clang++}")

dir=$(preset_dir fuzz)
configure fuzz
build fuzz
mkdir -p "$dir/corpus" "$dir/crashes"
cp tests/fuzz/corpus/* "$dir/corpus/"
cd "$dir"
# shellcheck disable=SC2086  # FUZZ_ARGS is a list of options
exec ./tests/fuzz/fuzz_chm -artifact_prefix=crashes/ -timeout=120 -max_total_time="$FUZZ_TIME" \
    -print_final_stats=1 $FUZZ_ARGS corpus
