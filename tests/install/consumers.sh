#!/bin/sh
# Builds and runs the consumers (consumer.c, and consumer.cpp when a C++
# compiler is given) against an installed atomkit: through pkg-config
# (shared and static) and through find_package(atomkit) (both targets).
# Where atomkit is comes from the environment the caller sets
# (PKG_CONFIG_PATH, CMAKE_PREFIX_PATH, LD_LIBRARY_PATH), or the system's
# default paths (an installed libatomkit-dev package).
# usage: consumers.sh SRC_DIR WORK_DIR CC CXX|"" CMAKE PKG_CONFIG
set -eu
src=$1 work=$2 cc=$3 cxx=$4 cmake=$5 pkgconfig=$6
n=0

echo "== pkg-config"
flags=$("$pkgconfig" --cflags --libs atomkit)
cflags=$("$pkgconfig" --cflags atomkit)
libdir=$("$pkgconfig" --variable=libdir atomkit)
# A static link takes the archive by path, then what --static adds
# (Requires.private: hiredis when the fleet limiter is built).
slibs=$("$pkgconfig" --static --libs-only-l atomkit | sed 's/-latomkit//')
echo "flags: $flags (static: $("$pkgconfig" --static --libs atomkit))"
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "$src/consumer.c" -o "$work/c_pc" $flags
"$work/c_pc"; n=$((n + 1))
"$cc" -std=c11 "$src/consumer.c" -o "$work/c_pc_static" "$libdir/libatomkit.a" $cflags $slibs -pthread
"$work/c_pc_static"; n=$((n + 1))
if [ -n "$cxx" ]; then
    "$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror "$src/consumer.cpp" -o "$work/cxx_pc" $flags
    "$work/cxx_pc"; n=$((n + 1))
    "$cxx" -std=c++17 "$src/consumer.cpp" -o "$work/cxx_pc_static" "$libdir/libatomkit.a" $cflags $slibs -pthread
    "$work/cxx_pc_static"; n=$((n + 1))
fi

echo "== find_package"
set -- -S "$src" -B "$work/consumer" -DCMAKE_C_COMPILER="$cc"
[ -z "$cxx" ] || set -- "$@" -DAK_CONSUMER_CXX=ON -DCMAKE_CXX_COMPILER="$cxx"
"$cmake" "$@" >/dev/null
"$cmake" --build "$work/consumer" >/dev/null
for exe in consumer_shared consumer_static consumer_cxx_shared consumer_cxx_static; do
    if [ -x "$work/consumer/$exe" ]; then
        "$work/consumer/$exe"; n=$((n + 1))
    fi
done
echo "$n passed, 0 failed"
