//! The same conformance bodies over the cross-process twins
//! (`conex::multiprocessing`'s primitives, adapted to threading's names in
//! prims.rs), through both faces. Left out, and why: the Debug repr
//! (the twins print their own), wake-up order (futex waits are not FIFO,
//! as Python's POSIX semaphores), a Condition over a plain Lock and a
//! barrier action (neither can cross processes).
#[path = "../conf_locks.rs"]
#[allow(dead_code)] // the tests left out above
pub mod conf_locks;
#[path = "../conf_signals.rs"]
#[allow(dead_code)]
pub mod conf_signals;
#[path = "../../common/face.rs"]
#[allow(dead_code)]
pub mod face;
pub mod prims;

macro_rules! mp_conformance {
    ($modname:ident, $face:ty) => {
        mod $modname {
            use super::face::Face;
            conformance!(@tests $face;
                conf_locks::lock_acquire_destroy,
                conf_locks::lock_acquire_release,
                conf_locks::lock_try_acquire,
                conf_locks::lock_try_acquire_contended,
                conf_locks::lock_acquire_contended,
                conf_locks::lock_with,
                conf_locks::lock_thread_leak,
                conf_locks::lock_timeout,
                conf_locks::lock_reacquire,
                conf_locks::lock_different_thread,
                conf_locks::lock_state_after_timeout,
                conf_locks::lock_locked_and_release_unlocked,
                conf_locks::lock_mutual_exclusion,
                conf_locks::rlock_reacquire,
                conf_locks::rlock_release_unacquired,
                conf_locks::rlock_different_thread,
                conf_locks::rlock_is_owned,
                conf_locks::rlock_recursion_count,
                conf_locks::rlock_contended_and_timeout,
                conf_locks::rlock_with,
                conf_locks::sem_constructor,
                conf_locks::sem_acquire,
                conf_locks::sem_acquire_contended,
                conf_locks::sem_multirelease,
                conf_locks::sem_try_acquire,
                conf_locks::sem_try_acquire_contended,
                conf_locks::sem_acquire_timeout,
                conf_locks::sem_default_value,
                conf_locks::sem_with,
                conf_locks::sem_release_unacquired,
                conf_locks::bounded_release_unacquired,
                conf_locks::failed_guard_attempts_release_nothing,
                conf_signals::event_is_set,
                conf_signals::event_notify,
                conf_signals::event_timeout,
                conf_signals::event_set_and_clear,
                conf_signals::cond_unacquired_notify,
                conf_signals::cond_wait_after_release_is_refused,
                conf_signals::cond_timeout,
                conf_signals::cond_waitfor,
                conf_signals::cond_waitfor_timeout,
                conf_signals::cond_rlock_levels,
                conf_signals::barrier_lockstep,
                conf_signals::barrier_wait_return,
                conf_signals::barrier_abort,
                conf_signals::barrier_reset,
                conf_signals::barrier_abort_and_reset,
                conf_signals::barrier_timeout,
                conf_signals::barrier_default_timeout,
                conf_signals::barrier_single_and_constructor,
            );
        }
    };
}

mp_conformance!(async_face, super::face::Async);
mp_conformance!(blocking_face, super::face::Blocking);
