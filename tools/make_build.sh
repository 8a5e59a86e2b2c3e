#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make_build.sh - `make build` (and the build step of `make findings`): configure and build one
# configuration of CMakePresets.json.
#
# usage: tools/make_build.sh [PRESET [DIR]]   (default plain: build/; DIR instead of its binaryDir)
# env:   BUILD_TYPE  CMAKE_BUILD_TYPE instead of the preset's (not for release)
#        PREFIX      CMAKE_INSTALL_PREFIX (make install's prefix)
#        CC, CXX, CMAKE_FLAGS, JOBS, CMAKE: tools/presets.sh
set -euo pipefail
. "$(dirname "$0")/presets.sh"

preset=${1:-plain}
dir=${2:-$(preset_dir "$preset")}
options=()
if [ -n "${BUILD_TYPE:-}" ] && [ "$preset" != release ]; then
    options+=("-DCMAKE_BUILD_TYPE=$BUILD_TYPE")
fi
[ -n "${PREFIX:-}" ] && options+=("-DCMAKE_INSTALL_PREFIX=$PREFIX")
configure "$preset" "$dir" "${options[@]}"
build "$preset" "$dir"
