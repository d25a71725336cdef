/*
 * OLD protocol (buggy): sample the value, try to take a permit, and if that
 * fails sleep on the *sampled* value -- which may be a positive count.
 *
 *   acquire: loop { seen = value;
 *                   if (seen > 0 && try_acquire()) return;
 *                   sleepers++; FUTEX_WAIT(value, seen); sleepers--; }
 *   try_acquire: CAS loop, decrement while value > 0, fail if it reads 0
 *   release: value++; if (sleepers > 0) FUTEX_WAKE(value, 1)
 *
 * Expected result: lost wake-up (watchdog assertion / invalid end state).
 */
#include "futex_common.pml"
/* (futex_watchdog.pml is included at the end, after the workers) */

inline sem_acquire() {
    do
    :: true ->
        seen = value;                               /* seen = value.load() */
        if
        :: seen > 0 ->                              /* if seen > 0 && try_acquire() */
            /* try_acquire(): CAS loop */
            do
            :: true ->
                v = value;                          /*   v = value.load() */
                if
                :: v == 0 -> ok = false; break      /*   if v == 0 { return false } */
                :: else ->
                    atomic {                        /*   CAS(value, v, v-1) */
                        if
                        :: value == v -> value = v - 1; ok = true
                        :: else -> ok = false
                        fi
                    };
                    if
                    :: ok -> break                  /*   success: return true */
                    :: else -> skip                 /*   CAS failed: retry loop */
                    fi
                fi
            od
        :: else -> ok = false
        fi;
        if
        :: ok -> break                              /*   ... return (permit taken) */
        :: else -> skip
        fi;
        sleepers++;                                 /* sleepers.fetch_add(1) */
        futex_wait(seen);                           /* FUTEX_WAIT(value, seen)  <-- bug: seen may be > 0 */
        sleepers--                                  /* sleepers.fetch_sub(1) */
    od
}

active [N] proctype worker() {
    byte seen, v;
    bool ok;
    WORKER_BODY
}

#include "futex_watchdog.pml"
