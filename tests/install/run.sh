#!/bin/sh
# Installs the build tree into a temporary prefix, then builds and runs the
# consumers (consumers.sh) through pkg-config and through find_package(atomkit),
# in C and, when CXX is given, in C++.
# usage: run.sh BUILD_DIR SRC_DIR CC CMAKE PKG_CONFIG [CXX]
set -eu
build=$1 src=$2 cc=$3 cmake=$4 pkgconfig=$5 cxx=${6:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cmake" --install "$build" --prefix "$tmp/prefix" >/dev/null
pcdir=$(dirname "$(find "$tmp/prefix" -name atomkit.pc | head -n1)")
if grep -q "define AK_HAVE_FLEET 1" "$tmp/prefix/include/atomkit/version.h"; then
    test -f "$tmp/prefix/share/atomkit/fleet_gcra.lua" || { echo "fleet_gcra.lua not installed"; exit 1; }
    echo "fleet: share/atomkit/fleet_gcra.lua installed"
fi
PKG_CONFIG_PATH="$pcdir" CMAKE_PREFIX_PATH="$tmp/prefix" LD_LIBRARY_PATH="$(dirname "$pcdir")" \
    sh "$src/consumers.sh" "$src" "$tmp" "$cc" "$cxx" "$cmake" "$pkgconfig"
