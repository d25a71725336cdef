//! The threading chapter's test suite (one binary): the conformance suite
//! over every face, Thread and module functions, cancellation at every await
//! point, and timing under paused tokio time.

// The conformance bodies and faces are compiled twice on purpose: over
// threading's primitives and over the cross-process twins (mp/).
#![allow(clippy::duplicate_mod)]

mod cancel;
mod conf_locks;
mod conf_signals;
#[path = "../common/face.rs"]
#[allow(dead_code)]
mod face;
/// The primitives the faces and conformance bodies use: threading's.
mod prims {
    pub use conex::threading::*;
}
mod paused;
mod threads;

/// Instantiates every generic test for one face.
macro_rules! conformance {
    ($modname:ident, $face:ty) => {
        mod $modname {
            use crate::face::Face;
            conformance!(@tests $face;
                conf_locks::lock_constructor_and_repr,
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
                conf_locks::lock_fifo_wake_order,
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
                conf_signals::cond_acquire,
                conf_signals::cond_unacquired_wait,
                conf_signals::cond_unacquired_notify,
                conf_signals::cond_wait_after_release_is_refused,
                conf_signals::cond_plain_lock_wait_after_release_is_refused,
                conf_signals::cond_notify,
                conf_signals::cond_timeout,
                conf_signals::cond_waitfor,
                conf_signals::cond_waitfor_timeout,
                conf_signals::cond_rlock_levels,
                conf_signals::cond_fifo,
                conf_signals::barrier_lockstep,
                conf_signals::barrier_wait_return,
                conf_signals::barrier_action,
                conf_signals::barrier_abort,
                conf_signals::barrier_reset,
                conf_signals::barrier_abort_and_reset,
                conf_signals::barrier_timeout,
                conf_signals::barrier_default_timeout,
                conf_signals::barrier_single_and_constructor,
                conf_signals::barrier_action_panics,
                threads::join_semantics,
                threads::join_timeout_semantics,
                threads::join_value_and_panic,
            );
        }
    };
    // One test per body, the bodies found beside the face's module (here,
    // or in mp/ for the cross-process twins, which uses this arm too).
    (@tests $face:ty; $($m:ident :: $t:ident),* $(,)?) => {
        $(
            #[test]
            fn $t() {
                <$face as Face>::run(super::$m::$t::<$face>());
            }
        )*
    };
}

conformance!(async_face, crate::face::Async);
conformance!(blocking_face, crate::face::Blocking);

/// The same conformance bodies over the cross-process twins.
#[cfg(feature = "multiprocessing")]
mod mp;
