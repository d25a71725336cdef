#!/usr/bin/env bash
# Model-check the OLD and NEW futex counting-semaphore wait protocols with SPIN.
#
# Exit 0 iff
#   * OLD exhibits the lost wake-up: SPIN finds an invalid end state in which a
#     worker is asleep in the kernel while value > 0, AND the watchdog's
#     lost-wake-up assertion is violated;
#   * NEW has 0 errors in every run (safety: assertions + invalid end states,
#     with and without the watchdog; liveness: no non-progress cycle).
#
# Usage: ./check.sh [-v]     (-v also prints the OLD counterexample trail)
# All generated files (pan.*, *.trail, pan) live in a temp dir removed on exit.
set -u

VERBOSE=0
[ "${1:-}" = "-v" ] && VERBOSE=1

HERE="$(cd "$(dirname "$0")" && pwd)"

if ! command -v spin >/dev/null 2>&1; then
    echo "spin not on PATH: installing Debian package 'spin'" >&2
    apt-get update -qq && apt-get install -y -qq spin >/dev/null \
        || { echo "ERROR: could not install Debian package 'spin'" >&2; exit 2; }
fi
command -v gcc >/dev/null 2>&1 || { echo "ERROR: gcc not found" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/futex_sem_check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp "$HERE"/*.pml "$WORK"/
cd "$WORK" || exit 2

# Bounded memory: 512 MB cap, 2^20-slot hash table, 100k-deep DFS stack.
CC_COMMON="-O1 -w -DMEMLIM=512"
PAN_COMMON="-w20 -m100000"

# run_pan MODEL "SPIN_DEFINES" "GCC_FLAGS" "PAN_FLAGS"  -> output in $WORK/out.txt
run_pan() {
    local model=$1 sdefs=$2 cflags=$3 pflags=$4
    rm -f pan pan.* ./*.trail out.txt
    spin $sdefs -a "$model" >spin_a.log 2>&1 || { cat spin_a.log; echo "ERROR: spin -a $model failed" >&2; exit 2; }
    gcc $CC_COMMON $cflags -o pan pan.c || { echo "ERROR: gcc failed for $model" >&2; exit 2; }
    timeout 50 ./pan $PAN_COMMON $pflags >out.txt 2>&1
}
errors() { sed -n 's/.*errors: \([0-9]*\).*/\1/p' out.txt | head -1; }
states() { sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' out.txt | head -1; }
depth()  { sed -n 's/.*at depth \([0-9]*\).*/\1/p' out.txt | head -1; }
# final value of a global in the replayed trail
final_global() { spin $1 -t -g "$2" 2>/dev/null | sed -n "s/^[[:space:]]*$3 = \([0-9]*\)\$/\1/p" | tail -1; }

ok=1

# ---- OLD, run 1: plain SPIN, no watchdog -> expect "invalid end state" ------
run_pan futex_sem_old.pml "-DNO_WATCHDOG" "-DSAFETY -DBFS" ""
e=$(errors); s=$(states)
if grep -q "invalid end state" out.txt && [ "${e:-0}" -ge 1 ] && [ -f futex_sem_old.pml.trail ]; then
    v=$(final_global -DNO_WATCHDOG futex_sem_old.pml value)
    b=$(spin -DNO_WATCHDOG -t -g futex_sem_old.pml 2>/dev/null | grep -c 'blocked\[[0-9]\] = 1$')
    if [ "${v:-0}" -gt 0 ] && [ "$b" -ge 1 ]; then
        echo "old: lost wake-up found (invalid end state at depth $(depth): $b waiter(s) asleep in kernel, value=$v) as expected; $s states"
    else
        echo "old: FAIL - invalid end state found but not a lost wake-up (value=$v, blocked=$b)"; ok=0
    fi
else
    echo "old: FAIL - expected an invalid end state, got errors=${e:-?}"; cat out.txt; ok=0
fi

# ---- OLD, run 2: with watchdog -> expect the lost-wake-up assertion ---------
run_pan futex_sem_old.pml "" "-DSAFETY -DBFS" ""
e=$(errors); s=$(states)
if grep -q 'assertion violated  !(((value>0)&&' out.txt && [ "${e:-0}" -ge 1 ]; then
    echo "old+watchdog: lost wake-up found (assertion 'no waiter blocked while value>0' violated at depth $(depth)) as expected; $s states"
    if [ $VERBOSE = 1 ]; then
        echo "---- OLD counterexample (spin -t -p) ----"
        spin -t -p -g futex_sem_old.pml | grep -E '^ *[0-9]+:|value =|sleepers =|blocked' | sed 's/futex_sem_old.pml://;s/futex_common.pml://'
        echo "----------------------------------------"
    fi
else
    echo "old+watchdog: FAIL - expected the lost-wake-up assertion, got errors=${e:-?}"; cat out.txt; ok=0
fi

# ---- NEW: safety without watchdog, with watchdog, and non-progress cycles ----
check_new() {  # label spin_defs gcc_flags pan_flags what
    run_pan futex_sem_new.pml "$2" "$3" "$4"
    local e s; e=$(errors); s=$(states)
    if [ "$e" = "0" ] && grep -q "errors: 0" out.txt; then
        echo "$1: 0 errors, $s states ($5)"
    else
        echo "$1: FAIL - errors=${e:-?}"; cat out.txt; ok=0
    fi
}
check_new "new"            "-DNO_WATCHDOG" "-DSAFETY -DBFS" ""   "mutual exclusion + no invalid end state"
check_new "new+watchdog"   ""              "-DSAFETY -DBFS" ""   "no waiter blocked while value>0, all workers finish"
check_new "new+livelock"   ""              "-DNP"           "-l" "no non-progress cycle"

if [ $ok = 1 ]; then echo "PASS"; exit 0; else echo "FAIL"; exit 1; fi
