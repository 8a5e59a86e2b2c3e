# SPDX-License-Identifier: BSD-2-Clause
# presets.sh - sourced (bash) by tools/make_*.sh: configure, build and test the configurations of
# CMakePresets.json with the compilers and options given to make. It changes to the repository
# root (where the presets are).
#
#   preset_dir PRESET                 the preset's build directory (its binaryDir)
#   configure PRESET [DIR] [-D...]    cmake --preset PRESET (in DIR instead of its binaryDir)
#   build PRESET [DIR]                cmake --build --preset PRESET (or DIR), -j JOBS
#
# Environment (make passes what it was given):
#   CC, CXX      compilers (default cc; CXX defaults to the C++ compiler matching CC: clang ->
#                clang++, gcc -> g++, otherwise g++)
#   CMAKE_FLAGS  more -D options for every configuration (given after the preset's, so they win)
#   JOBS         parallel build jobs and ctest -j (default 2)
#   CMAKE, CTEST the cmake and ctest executables
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

CMAKE=${CMAKE:-cmake}
CTEST=${CTEST:-ctest}
JOBS=${JOBS:-2}
CMAKE_FLAGS=${CMAKE_FLAGS:-}
CC=${CC:-cc}
if [ -z "${CXX:-}" ]; then
    case $CC in
    *clang*) CXX=${CC/clang/clang++} ;;
    *gcc*) CXX=${CC/gcc/g++} ;;
    *) CXX=g++ ;;
    esac
fi
CC_PATH=$(command -v "$CC" 2>/dev/null || echo "$CC")
CXX_PATH=$(command -v "$CXX" 2>/dev/null || echo "$CXX")
# cmake --build runs its own make: keep make's flags (-w, the jobserver, CC=...) out of it
unset MAKEFLAGS MFLAGS MAKELEVEL

# preset_dir PRESET: the configure preset's binaryDir, relative to the repository root
preset_dir() {
    local dir
    dir=$(awk -v want="$1" '
        match($0, /"name": *"[^"]*"/) {
            name = substr($0, RSTART, RLENGTH); sub(/^"name": *"/, "", name); sub(/"$/, "", name)
        }
        match($0, /"binaryDir": *"[^"]*"/) {
            dir = substr($0, RSTART, RLENGTH); sub(/^"binaryDir": *"/, "", dir); sub(/"$/, "", dir)
            if (name == want) { print dir; exit }
        }' CMakePresets.json)
    # shellcheck disable=SC2016  # CMake's macros, literally
    dir=${dir#'${sourceDir}/'}
    # shellcheck disable=SC2016
    dir=${dir//'${presetName}'/$1}
    if [ -z "$dir" ]; then
        echo "presets.sh: no configure preset '$1' with a binaryDir in CMakePresets.json" >&2
        return 1
    fi
    echo "$dir"
}

# fresh_if_new_compiler DIR C_COMPILER CXX_COMPILER: CMake answers a compiler change by deleting
# its cache and configuring again *without* the -D options of that command line (a sanitizer dir
# would silently become a plain build), so a build dir configured with other compilers is
# cleared first.
fresh_if_new_compiler() {
    local cache=$1/CMakeCache.txt
    [ -f "$cache" ] || return 0
    if [ "$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$cache")" != "$2" ] ||
        [ "$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")" != "$3" ]; then
        echo "$1: other compilers than $2 / $3: configuring from scratch"
        rm -rf "$1/CMakeCache.txt" "$1/CMakeFiles"
    fi
}

# configure PRESET [DIR] [-D...]: (re)configure (cheap when nothing changed) with the compilers
# CC_PATH / CXX_PATH, CMAKE_FLAGS and the options given (which win over CMAKE_FLAGS); DIR (an
# argument not starting with -) replaces the preset's binaryDir.
configure() {
    local preset=$1 dir
    shift
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
        dir=$1
        shift
    else
        dir=$(preset_dir "$preset") || return 1
    fi
    fresh_if_new_compiler "$dir" "$CC_PATH" "$CXX_PATH"
    # shellcheck disable=SC2086  # CMAKE_FLAGS is a list of options
    "$CMAKE" --preset "$preset" -B "$dir" -DCMAKE_C_COMPILER="$CC_PATH" \
        -DCMAKE_CXX_COMPILER="$CXX_PATH" $CMAKE_FLAGS "$@"
}

# build PRESET [DIR]: cmake --build --preset PRESET (its targets), or everything in DIR when
# that is not the preset's binaryDir; JOBS parallel jobs.
build() {
    if [ $# -gt 1 ] && [ "$2" != "$(preset_dir "$1")" ]; then
        "$CMAKE" --build "$2" -j "$JOBS"
    else
        "$CMAKE" --build --preset "$1" -j "$JOBS"
    fi
}
