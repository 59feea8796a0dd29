#!/bin/sh
# Debian packages end to end (issue 15), for CI (.ci/run) and by hand:
#  1. copies the source tree to a scratch directory (dpkg-buildpackage
#     writes ../*.deb: nothing lands in the checkout), checks that
#     debian/changelog carries the CMake project version;
#  2. dpkg-buildpackage -us -uc -b (the symbols check is part of it:
#     debian/rules sets DPKG_GENSYMBOLS_CHECK_LEVEL=4);
#  3. lintian on the result: any error fails (warnings are printed);
#  4. checks the packages' contents and that libatomkit0's Depends names
#     libc alone (plus hiredis exactly when the library links it);
#  5. installs the .debs and builds the C and C++ consumers
#     (tests/install/consumers.sh) against the installed package: pkg-config
#     and find_package, shared and static.
# Step 5 installs with apt (root, or sudo). AK_DEB_INSTALL=extract instead
# unpacks the .debs into a scratch root with dpkg-deb -x (no root, no dpkg
# lock) and points pkg-config/CMake/the loader there.
# Env: AK_DEB_OUT (where the .debs end up; default a new /tmp directory),
#      AK_DEB_SKIP_BUILD=1 (steps 3-5 only, on the .debs already in AK_DEB_OUT),
#      DEB_BUILD_OPTIONS (e.g. nocheck, parallel=N) is passed through.
# usage: tests/deb/run.sh
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
mode=${AK_DEB_INSTALL:-system}
out=${AK_DEB_OUT:-$(mktemp -d /tmp/atomkit-deb.XXXXXX)}
mkdir -p "$out"
step() { printf '\n==== deb: %s (%s)\n' "$*" "$(date +%T)"; }

version=$(sed -n 's/^project(atomkit VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
debver=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
case "$debver" in
    "$version"|"$version"-*|"$version"+*) ;;
    *) echo "debian/changelog says $debver but CMakeLists.txt says $version: add a changelog entry (dch -v $version)" >&2
       exit 1 ;;
esac

tree="$out/atomkit-$version"
if [ "${AK_DEB_SKIP_BUILD:-0}" != 1 ]; then
    step "copy the tree to $out/atomkit-$version"
    rm -rf "$tree"
    mkdir -p "$tree"
    if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # tracked and untracked-but-not-ignored files: exactly what a checkout holds
        (cd "$src" && git ls-files -z --cached --others --exclude-standard |
            xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
            tar --null -T - -cf -) | tar -C "$tree" -xf -
    else
        (cd "$src" && tar --exclude='./build*' --exclude=./.git -cf - .) | tar -C "$tree" -xf -
    fi

    step "dpkg-buildpackage -us -uc -b"
    jobs=$(nproc 2>/dev/null || echo 2)
    case "${DEB_BUILD_OPTIONS:-}" in *parallel=*) ;; *) DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} parallel=$jobs" ;; esac
    export DEB_BUILD_OPTIONS
    (cd "$tree" && dpkg-buildpackage -us -uc -b) > "$out/build.log" 2>&1 || {
        tail -n 80 "$out/build.log"; echo "dpkg-buildpackage failed: $out/build.log" >&2; exit 1; }
    grep -E "dpkg-gensymbols|^[0-9]+% tests passed|tests failed" "$out/build.log" || true
fi
changes=$(ls "$out"/atomkit_*.changes)
lib=$(ls "$out"/libatomkit0_*.deb)
dev=$(ls "$out"/libatomkit-dev_*.deb)

step "lintian"
lintian --fail-on error --display-level '>=warning' "$changes"

step "package contents and dependencies"
dpkg-deb -c "$dev" > "$out/dev.contents"
dpkg-deb -c "$lib" > "$out/lib.contents"
for f in usr/include/atomkit.h usr/include/atomkit/bits/stdatomic.h usr/include/atomkit/version.h \
         libatomkit.a libatomkit.so pkgconfig/atomkit.pc cmake/atomkit/atomkitConfig.cmake \
         cmake/atomkit/atomkitTargets.cmake usr/share/doc/libatomkit-dev/README.md \
         usr/share/doc/libatomkit-dev/examples/consumer.cpp; do
    grep -q "$f" "$out/dev.contents" || { echo "libatomkit-dev lacks $f" >&2; exit 1; }
done
grep -q 'libatomkit\.so\.0 ->' "$out/lib.contents" || { echo "libatomkit0 lacks libatomkit.so.0" >&2; exit 1; }
depends=$(dpkg-deb -f "$lib" Depends)
echo "libatomkit0 Depends: $depends"
rest=$(echo "$depends" | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -v -e '^libc6$' -e '^libhiredis' || true)
[ -z "$rest" ] || { echo "libatomkit0 depends on more than libc (and hiredis): $rest" >&2; exit 1; }
dpkg-deb -x "$lib" "$out/libroot"
if objdump -p "$out"/libroot/usr/lib/*/libatomkit.so.0 | grep -q 'NEEDED.*libhiredis'; then
    echo "$depends" | grep -q libhiredis || { echo "the library links hiredis but Depends omits it" >&2; exit 1; }
else
    ! echo "$depends" | grep -q libhiredis || { echo "Depends names hiredis, the library does not link it" >&2; exit 1; }
fi

step "install ($mode) and build the consumers against the package"
cc=${CC:-cc}
cxx=${CXX:-c++}
command -v "$cxx" >/dev/null 2>&1 || cxx=""
work="$out/consumers"
rm -rf "$work"
mkdir -p "$work"
if [ "$mode" = extract ]; then
    root="$out/root"
    rm -rf "$root"
    dpkg-deb -x "$lib" "$root"
    dpkg-deb -x "$dev" "$root"
    pcdir=$(dirname "$(find "$root" -name atomkit.pc)")
    PKG_CONFIG_PATH="$pcdir" CMAKE_PREFIX_PATH="$root/usr" LD_LIBRARY_PATH="$(dirname "$pcdir")" \
        sh "$src/tests/install/consumers.sh" "$src/tests/install" "$work" "$cc" "$cxx" cmake pkg-config
else
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y -qq --no-install-recommends "$lib" "$dev" >/dev/null
    trap '$SUDO apt-get purge -y -qq libatomkit-dev libatomkit0 >/dev/null || true' EXIT
    echo "pkg-config --libs atomkit: $(pkg-config --libs atomkit)"
    sh "$src/tests/install/consumers.sh" "$src/tests/install" "$work" "$cc" "$cxx" cmake pkg-config
fi
rm -rf "$tree" "$out/libroot" "$out/root"
step "passed: packages in $out"
ls -1 "$out"/*.deb
