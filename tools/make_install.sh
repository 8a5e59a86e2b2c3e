#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# make_install.sh - `make install`: build/ (preset plain, built by `make build`) installed into
# PREFIX (default /usr/local; DESTDIR is honoured). Installing into the system (no DESTDIR) as
# root refreshes the loader's cache (ldconfig), so a program linked with
# `pkg-config --libs chm` runs without LD_LIBRARY_PATH, as README.md's example does; a library
# directory that the loader does not search is named, with the two ways to fix it.
#
# env: PREFIX, DESTDIR; CMAKE: tools/presets.sh
set -euo pipefail
. "$(dirname "$0")/presets.sh"

PREFIX=${PREFIX:-/usr/local}
dir=$(preset_dir plain)
echo "$CMAKE --install $dir --prefix $PREFIX"
"$CMAKE" --install "$dir" --prefix "$PREFIX"
libdir=$(dirname "$(grep -m1 '/libchm\.so\.[0-9]*$' "$dir/install_manifest.txt")")
if [ -n "${DESTDIR:-}" ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi
if ! /sbin/ldconfig -p 2>/dev/null | grep -q " => $libdir/libchm\.so\.[0-9]*$"; then
    echo "note: the loader does not search $libdir: programs linked with libchm.so need"
    echo "      LD_LIBRARY_PATH=$libdir, or (as root) $libdir in /etc/ld.so.conf.d/ and ldconfig"
fi
