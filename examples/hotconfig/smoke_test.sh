#!/bin/sh
# Smoke test for examples/hotconfig (run by CTest as example_hotconfig):
# start the daemon, change the file (rename), break it (rejected, old config
# keeps serving), fix it, swap a Kubernetes-style ..data symlink, send SIGHUP,
# and check what it printed. Every wait has a deadline.
set -u
BIN=$1
D=$(mktemp -d "${TMPDIR:-/tmp}/hotconfig_XXXXXX")
trap 'kill $PID 2>/dev/null; rm -rf "$D"' EXIT
OUT=$D/out.txt
cfg() { printf '[server]\nport = %s\nworkers = 2\n[limits]\nmax_conn = %s\n' "$1" "$2"; }
mkdir "$D/..v1" && cfg 8001 10 > "$D/..v1/app.ini"
ln -s ..v1 "$D/..data" && ln -s ..data/app.ini "$D/app.ini"
"$BIN" --duration 20 "$D/app.ini" > "$OUT" 2>&1 &
PID=$!
wait_for() { # pattern, seconds
  i=0
  while [ $i -lt $(($2 * 20)) ]; do
    grep -q "$1" "$OUT" && return 0
    sleep 0.05; i=$((i + 1))
  done
  echo "FAIL: no '$1' within $2 s"; cat "$OUT"; exit 1
}
wait_for "serving demo\|serving hotconfig" 5
sleep 0.2
# 1. Kubernetes AtomicWriter-style swap: new dir, ..data_tmp, rename over ..data
mkdir "$D/..v2" && cfg 8002 10 > "$D/..v2/app.ini"
ln -s ..v2 "$D/..data_tmp" && mv -T "$D/..data_tmp" "$D/..data" && rm -rf "$D/..v1"
wait_for "port 8001 -> 8002" 5
# 2. an invalid config is rejected, the old one keeps serving
cfg 8003 1 > "$D/..v2/app.ini.tmp" && mv "$D/..v2/app.ini.tmp" "$D/..v2/app.ini"
wait_for "REJECTED, still serving generation 2" 5
# 3. fixed: picked up
cfg 8004 10 > "$D/..v2/app.ini.tmp" && mv "$D/..v2/app.ini.tmp" "$D/..v2/app.ini"
wait_for "port 8002 -> 8004" 5
# 4. SIGHUP with identical bytes: unchanged
kill -HUP $PID
wait_for "SIGHUP: unchanged" 5
kill -TERM $PID
i=0; while kill -0 $PID 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
wait $PID; RC=$?
grep -q "0 inconsistent" "$OUT" || { echo "FAIL: inconsistent reads"; cat "$OUT"; exit 1; }
[ $RC -eq 0 ] || { echo "FAIL: exit status $RC"; cat "$OUT"; exit 1; }
cat "$OUT"
echo "hotconfig smoke test: OK"
