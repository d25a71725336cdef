/*
 * NEW protocol (fixed): register as a sleeper first, re-check the value
 * after registering, and only ever FUTEX_WAIT on the blocked value 0.
 *
 *   acquire: loop { sleepers++;
 *                   v = value;
 *                   if (v == 0) { FUTEX_WAIT(value, 0); sleepers--; continue }
 *                   if (CAS(value, v, v-1)) { sleepers--; return }
 *                   sleepers--;  // value moved: retry without sleeping
 *                 }
 *   release: value++; if (sleepers > 0) FUTEX_WAKE(value, 1)
 *
 * Expected result: no errors (no lost wake-up, no deadlock, mutual exclusion).
 */
#include "futex_common.pml"
/* (futex_watchdog.pml is included at the end, after the workers) */

inline sem_acquire() {
    do
    :: true ->
        sleepers++;                                 /* sleepers.fetch_add(1)   (register first) */
        v = value;                                  /* v = value.load()        (re-check after registering) */
        if
        :: v == 0 ->
            futex_wait(0);                          /* FUTEX_WAIT(value, 0)    (only on the blocked value) */
            sleepers--                              /* sleepers.fetch_sub(1); continue */
        :: else ->
            atomic {                                /* CAS(value, v, v-1) */
                if
                :: value == v -> value = v - 1; ok = true
                :: else -> ok = false
                fi
            };
            sleepers--;                             /* sleepers.fetch_sub(1)  (both branches) */
            if
            :: ok -> break                          /* CAS succeeded: return */
            :: else -> skip                         /* value moved under us: retry, no sleep */
            fi
        fi
    od
}

active [N] proctype worker() {
    byte v;
    bool ok;
    WORKER_BODY
}

#include "futex_watchdog.pml"
