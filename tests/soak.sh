#!/bin/sh
# tests/soak.sh — the soak run: the torture tests for hours, watched.
#
#   tests/soak.sh [BUILD_DIR [DURATION_S [INTERVAL_S]]]      (build, 3600, 60)
#   make soak DURATION=3600
#
# Runs, side by side and for DURATION_S seconds, the soak builds of the SMR,
# reload, Value, seqlock and counter torture tests (one process each, for the
# whole duration: growth shows up in one process), and the limiter torture in
# back-to-back rounds of up to 60 s (it records every admitted event to check
# every window, so one process per round keeps that bounded). Each process's
# monitor (tests/soak/monitor.c) prints a progress line per interval: pending
# objects, grace periods/s, longest read section, RSS, fds. This script
# prints the latest line of each once per interval.
#
# Fails (exit 1) if any test fails: a poisoned read or any other check of the
# torture test, a leak (objects pending after ak_barrier), growth (RSS, fds,
# pending between the second and the last interval) or a grace-period stall
# (the monitor exits 3). Env: SOAK_NICE (default 0; `nice -n 19` the whole
# script on a shared machine), SOAK_LOGDIR (default: a fresh temp dir; kept),
# SOAK_THREADS (reader threads per test, default 2).
set -u
if [ "${AK_UNDER_QEMU_USER:-0}" = 1 ]; then
    # The script starts the test binaries itself, not through CTest's emulator.
    echo "soak: skipped under qemu-user (AK_UNDER_QEMU_USER=1): it runs the binaries directly"
    exit 77
fi
build=${1:-build}
dur=${2:-${DURATION:-3600}}
iv=${3:-${SOAK_INTERVAL:-60}}
nice_n=${SOAK_NICE:-0}
thr=${SOAK_THREADS:-2}
bin=$build/soak
logdir=${SOAK_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/ak-soak.XXXXXX")}
mkdir -p "$logdir"
long="smr_torture reload_torture value_readers seqlock_torn counter_sum"
for t in $long limiter_threads; do
    if [ ! -x "$bin/soak_$t" ]; then
        echo "soak: $bin/soak_$t missing (build first: make)"; exit 1
    fi
done
echo "soak: ${dur}s, progress every ${iv}s, logs in $logdir"
start=$(date +%s)
pids=""
for t in $long; do
    threads=$thr
    [ "$t" = counter_sum ] && threads=4
    AK_SOAK_INTERVAL=$iv AK_STRESS_SECONDS=$dur AK_STRESS_THREADS=$threads \
        nice -n "$nice_n" "$bin/soak_$t" >"$logdir/$t.log" 2>&1 &
    pids="$pids $t:$!"
done
# The limiter in rounds; its log ends with "rounds N ok" or "round N FAILED".
(
    n=0
    while :; do
        left=$(( start + dur - $(date +%s) ))
        [ "$left" -le 0 ] && break
        [ "$left" -gt 60 ] && left=60
        [ "$left" -lt 4 ] && left=4
        n=$((n + 1))
        if ! AK_STRESS_SECONDS=$left AK_STRESS_THREADS=$thr nice -n "$nice_n" \
                "$bin/soak_limiter_threads" >"$logdir/limiter_round.log" 2>&1; then
            cat "$logdir/limiter_round.log"
            echo "[soak] limiter_threads round $n FAILED"
            exit 1
        fi
        echo "[soak] limiter_threads t=$(( $(date +%s) - start )) rounds=$n ok"
    done
    echo "[soak] limiter_threads summary: $n rounds ok"
) >"$logdir/limiter_threads.log" 2>&1 &
pids="$pids limiter_threads:$!"

status=0
alive() { kill -0 "$1" 2>/dev/null; }
# Progress, and early failure: a test that exits before the end is waited
# for at once; a failure stops the others (by pid).
done_list=""
while :; do
    running=0
    for e in $pids; do
        t=${e%%:*}; p=${e#*:}
        case " $done_list " in *" $t "*) continue ;; esac
        if alive "$p"; then
            running=1
        else
            if wait "$p"; then rc=0; else rc=$?; fi
            done_list="$done_list $t"
            if [ "$rc" -ne 0 ]; then
                echo "soak: $t FAILED (exit $rc) after $(( $(date +%s) - start ))s; its log:"
                tail -n 40 "$logdir/$t.log"
                status=1
            fi
        fi
    done
    [ "$running" -eq 0 ] && break
    if [ "$status" -ne 0 ]; then
        for e in $pids; do kill "${e#*:}" 2>/dev/null; done
        wait
        break
    fi
    sleep_for=$iv
    now=$(date +%s)
    # wake up often enough to notice a failure, print once per interval
    i=0
    while [ "$i" -lt "$sleep_for" ]; do
        sleep 1; i=$((i + 1))
        for e in $pids; do
            case " $done_list " in *" ${e%%:*} "*) continue ;; esac
            alive "${e#*:}" || { i=$sleep_for; break; }
        done
    done
    echo "soak: t=$(( $(date +%s) - start ))s"
    for t in $long limiter_threads; do
        l=$(grep '^\[soak\]' "$logdir/$t.log" 2>/dev/null | tail -n 1)
        [ -n "$l" ] && echo "  $l"
    done
done
echo "soak: summaries"
for t in $long limiter_threads; do
    grep -h "summary\|FAIL\|passed, \|failed" "$logdir/$t.log" | sed 's/^/  /'
done
if [ "$status" -eq 0 ]; then
    echo "soak: PASS (${dur}s)"
else
    echo "soak: FAIL"
fi
exit $status
