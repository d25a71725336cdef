/*
 * Shared part of the futex counting-semaphore models.
 * Included by futex_sem_old.pml and futex_sem_new.pml (cpp #include).
 *
 * Memory model: every SeqCst load / store / CAS / fetch_add in the Rust
 * code is exactly one Promela step (one statement, or one atomic{}).
 */

#define N      3      /* processes sharing the semaphore (futex_wake_one and
                         the watchdog spell out blocked[0..2]: keep N = 3) */
#ifndef ROUNDS
#define ROUNDS 2      /* acquire/CS/release rounds per process      */
#endif
#ifndef INIT_VALUE
#define INIT_VALUE 1  /* initial permit count                       */
#endif

byte value    = INIT_VALUE; /* shared word: the permit count (the futex word) */
byte sleepers = 0;          /* shared word: number of registered sleepers     */

/* Kernel futex wait queue for `value`: blocked[p] == true  <=>  process p is
 * enqueued in the kernel and cannot run until a FUTEX_WAKE clears its flag. */
bool blocked[N];

byte in_cs    = 0;  /* processes currently in the critical section (for mutex) */
byte finished = 0;  /* processes that completed all their rounds              */

/* FUTEX_WAIT(&value, expected):
 *   step 1 (atomic, in the kernel): if value == expected, enqueue caller
 *          (blocked[_pid] = true); otherwise return at once (EAGAIN).
 *   step 2: the caller cannot proceed until its flag has been cleared by a
 *          FUTEX_WAKE.  No spurious returns are modelled (they are allowed
 *          by the real futex but would only hide a lost wake-up). */
inline futex_wait(expected) {
    assert(_pid < N);          /* workers must be _pid 0..N-1 */
    atomic {
        if
        :: value == expected -> blocked[_pid] = true
        :: else -> skip
        fi
    };
    (blocked[_pid] == false)   /* stuck here while enqueued */
}

/* FUTEX_WAKE(&value, 1): atomically dequeue and unblock at most one queued
 * waiter (chosen nondeterministically: a superset of the kernel's order).
 * If nobody is queued the wake is lost -- it is NOT remembered. */
inline futex_wake_one() {
    atomic {
        if
        :: blocked[0] -> blocked[0] = false
        :: blocked[1] -> blocked[1] = false
        :: blocked[2] -> blocked[2] = false
        :: else -> skip            /* empty queue: wake is a no-op */
        fi
    }
}

/* release: value.fetch_add(1); if sleepers.load() > 0 { FUTEX_WAKE(value, 1) }
 * (identical in OLD and NEW) */
inline sem_release() {
    value++;                                   /* value.fetch_add(1, SeqCst) */
    if
    :: sleepers > 0 -> futex_wake_one()        /* if sleepers.load() > 0 { FUTEX_WAKE(value,1) } */
    :: else -> skip                            /* nobody registered: no wake */
    fi
}

inline critical_section() {
    in_cs++;
    assert(in_cs <= INIT_VALUE);   /* mutual exclusion (initial value 1) */
    in_cs--
}

/* Each worker: ROUNDS x { acquire; critical section; release }. */
#define WORKER_BODY                                   \
    byte r = 0;                                       \
    do                                                \
    :: r < ROUNDS ->                                  \
        sem_acquire();                                \
        critical_section();                           \
        sem_release();                                \
        r++                                           \
    :: else -> break                                  \
    od;                                               \
    finished++
