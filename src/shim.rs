//! The loom shim: every synchronization type the wait core and the
//! primitives use comes from here, so that `RUSTFLAGS="--cfg conex_loom"`
//! swaps std for loom and the loom models in `wait::loom_models` explore
//! every interleaving of the real code.
//!
//! The cfg is named after the crate (not plain `loom`) because tokio reacts
//! to `--cfg loom` itself.

#[cfg(not(conex_loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};
#[cfg(not(conex_loom))]
pub(crate) use std::sync::Arc;

#[cfg(conex_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

pub(crate) mod atomic {
    #[cfg(not(conex_loom))]
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[cfg(conex_loom)]
    pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
}

pub(crate) mod thread {
    #[cfg(not(conex_loom))]
    pub(crate) use std::thread::{Thread, current, park};

    #[cfg(conex_loom)]
    pub(crate) use loom::thread::{Thread, current, park};

    /// Parks for at most `dur`. Loom has no clock: there it parks until
    /// unparked, and models never rely on a timeout firing.
    pub(crate) fn park_timeout(dur: std::time::Duration) {
        #[cfg(not(conex_loom))]
        std::thread::park_timeout(dur);
        #[cfg(conex_loom)]
        {
            let _ = dur;
            loom::thread::park();
        }
    }

    /// Gives the CPU away once (used by the spin phase of the blocking driver).
    pub(crate) fn yield_now() {
        #[cfg(not(conex_loom))]
        std::thread::yield_now();
        #[cfg(conex_loom)]
        loom::thread::yield_now();
    }
}

/// Locks an internal mutex (parking_lot's: no poisoning; loom's under
/// loom, where a poisoned lock is taken over: no user code runs while one
/// of these is held, so the state it guards stays consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(conex_loom))]
    {
        m.lock()
    }
    #[cfg(conex_loom)]
    {
        match m.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
