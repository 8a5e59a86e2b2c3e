#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# install-deps.sh - install the Debian packages chm needs to build, test and benchmark.
#
# Idempotent and quiet when everything is present: it asks dpkg which packages are missing and
# only then runs `apt-get update` and `apt-get install -y --no-install-recommends` for those.
# Runs apt-get directly as root, through sudo otherwise; without either it prints the command
# to run and fails.
#
# usage: tools/install-deps.sh [EXTRA_PACKAGE...]     (e.g. clang-format)
# env:   CHM_LLVM_VERSION  LLVM major version whose sanitizer runtime clang needs (default 14)
set -eu

llvm=${CHM_LLVM_VERSION:-14}
# libclang-rt-N-dev holds clang's sanitizer runtimes (only "Recommended" by clang on Debian 12,
# so --no-install-recommends would leave `make test CC=clang` without -fsanitize support).
# It also holds libFuzzer (libclang_rt.fuzzer*.a) for `make fuzz`: libfuzzer-N-dev, the
# standalone libFuzzer.a, is not needed.
# python3-matplotlib: tools/plot_results.py (make bench, and a test); libbenchmark-tools:
# Google Benchmark's compare.py (/usr/share/benchmark/compare.py) for chm_gbench. Its U test
# needs python3-scipy (which pulls in boost, sympy and OpenBLAS): not installed by default;
# `tools/install-deps.sh python3-scipy` before comparing with compare.py's U test.
# python3-munkres: matplotlib's python3-fonttools depends on "python3-scipy | python3-munkres",
# and apt takes the first alternative unless the second is asked for: without it, scipy (and
# boost and OpenBLAS) would come in anyway.
# libcuckoo-dev, libtbb-dev: chmbench's C++ peers cuckoo and tbb (bench/peers/cxx_peers.h); a
# build without them still works and reports those peers as skipped.
# openjdk-17-jdk-headless, golang-go (Go 1.19): chmbench's Java and Go originals (java:chm, ...,
# go:syncmap, ...; bench/originals/) and tools/go_sync_bench.py. The JDK comes with this
# machine's image; Go installs in about 8 s. Without them those trials are reported skipped and
# their tests skip.
packages="cmake make pkg-config gcc g++ clang libclang-rt-$llvm-dev libck-dev liburcu-dev
libbenchmark-dev libbenchmark-tools python3 python3-matplotlib python3-munkres libcuckoo-dev
libtbb-dev openjdk-17-jdk-headless golang-go $*"

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    # shellcheck disable=SC2086  # one word per package
    echo "install-deps.sh: not a Debian-like system (no dpkg-query/apt-get); make sure these" \
        "(or their equivalents) are installed:" $packages >&2
    exit 0
fi

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

missing=
for p in $packages; do
    if installed "$p"; then
        continue
    fi
    # pkgconf provides the pkg-config command (Debian 12's pkg-config is a transitional package)
    if [ "$p" = pkg-config ] && installed pkgconf; then
        continue
    fi
    missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps.sh: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
    as_root=
elif command -v sudo >/dev/null 2>&1; then
    if [ -t 0 ]; then as_root=sudo; else as_root="sudo -n"; fi
else
    echo "install-deps.sh: not root and no sudo; as root, run:" >&2
    echo "    apt-get update && apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! $as_root apt-get update -qq; then
    echo "install-deps.sh: warning: apt-get update failed; trying the cached package lists" >&2
fi
# shellcheck disable=SC2086  # word splitting of $missing is intended
$as_root apt-get install -y -qq --no-install-recommends $missing

still=
for p in $missing; do
    installed "$p" || still="$still $p"
done
if [ -n "$still" ]; then
    echo "install-deps.sh: still missing after apt-get install:$still" >&2
    exit 1
fi
