#!/bin/sh
# Installs the build tree into a temporary prefix, then builds and runs a
# consumer twice: through pkg-config and through find_package(atomkit).
# usage: run.sh BUILD_DIR SRC_DIR CC CMAKE PKG_CONFIG
set -eu
build=$1 src=$2 cc=$3 cmake=$4 pkgconfig=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cmake" --install "$build" --prefix "$tmp/prefix" >/dev/null
pcdir=$(dirname "$(find "$tmp/prefix" -name atomkit.pc | head -n1)")
libdir=$(dirname "$pcdir")

echo "== pkg-config ($pcdir)"
flags=$(PKG_CONFIG_PATH="$pcdir" "$pkgconfig" --cflags --libs atomkit)
echo "flags: $flags"
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "$src/consumer.c" -o "$tmp/c_pc" $flags
LD_LIBRARY_PATH="$libdir" "$tmp/c_pc"
sflags=$(PKG_CONFIG_PATH="$pcdir" "$pkgconfig" --static --cflags --libs atomkit)
# the archive by path, then what --static adds (Requires.private: hiredis
# when the fleet limiter is built)
"$cc" -std=c11 "$src/consumer.c" -o "$tmp/c_pc_static" "$pcdir/../libatomkit.a" $(PKG_CONFIG_PATH="$pcdir" "$pkgconfig" --cflags atomkit) \
    $(PKG_CONFIG_PATH="$pcdir" "$pkgconfig" --static --libs-only-l atomkit | sed 's/-latomkit//') -pthread
"$tmp/c_pc_static"
echo "static flags: $sflags"

if grep -q "define AK_HAVE_FLEET 1" "$tmp/prefix/include/atomkit/version.h"; then
    test -f "$tmp/prefix/share/atomkit/fleet_gcra.lua" || { echo "fleet_gcra.lua not installed"; exit 1; }
    echo "fleet: share/atomkit/fleet_gcra.lua installed"
fi

echo "== find_package"
"$cmake" -S "$src" -B "$tmp/consumer" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
"$cmake" --build "$tmp/consumer" >/dev/null
"$tmp/consumer/consumer_shared"
"$tmp/consumer/consumer_static"
echo "1 passed, 0 failed"
