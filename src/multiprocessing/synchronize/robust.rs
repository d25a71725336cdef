//! A lock word in shared memory that knows its owner, so a process killed
//! while it holds the lock does not wedge everyone else.
//!
//! The word holds the pid of the holding process (0: free). A waiter
//! sleeps on it through the one wait loop, [`futex::wait_for`], in slices
//! of [`SLICE`]; once it has waited [`PATIENCE`], each look also asks the
//! OS whether the holder still runs, and takes the lock over (one
//! compare-and-swap from the dead pid to its own) when it does not. What
//! the lock guards must therefore be consistent at every instruction of
//! its holder: the queue ring, its one user, publishes each change with a
//! single atomic store (see `queues/ring.rs`).
//!
//! A pid the OS gave to a new process before a waiter noticed the death
//! looks alive: the waiter then waits for that process to end (Linux
//! reuses a pid only after it has handed out all the others, 4 million by
//! default on 64-bit systems). The processes sharing the word must see
//! one another's pids: the same PID namespace (a queue handed into a
//! container with its own would see a live holder as dead).
//!
//! An async caller takes the lock on its runtime thread: the wait lasts a
//! holder's copy, or, for a dead holder, at most [`PATIENCE`] plus one
//! [`SLICE`].

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::futex::{self, Step};

/// The longest one sleep on a held lock lasts.
pub(crate) const SLICE: Duration = Duration::from_millis(10);

/// How long a waiter waits before it asks whether the holder still runs
/// (a lock is held for a copy; asking costs a system call).
pub(crate) const PATIENCE: Duration = Duration::from_millis(5);

/// A robust lock: `word` and its sleepers count, both in shared memory.
#[derive(Clone, Copy)]
pub(crate) struct RobustLock<'a> {
    pub(crate) word: &'a AtomicU32,
    pub(crate) sleepers: &'a AtomicU32,
}

/// How a lock was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// From a free word.
    Free,
    /// From a holder that died holding it (its pid).
    FromDead(u32),
}

impl RobustLock<'_> {
    /// Takes the lock, waiting until `deadline` (None: no bound). `None`
    /// when the deadline passed first.
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> Option<Taken> {
        let me = std::process::id();
        for _ in 0..64 {
            if self.word.load(SeqCst) == 0
                && self.word.compare_exchange(0, me, SeqCst, SeqCst).is_ok()
            {
                return Some(Taken::Free);
            }
            std::hint::spin_loop();
        }
        let since = Instant::now();
        let on = futex::On::new(self.word, self.sleepers).slice(SLICE);
        futex::wait_for(on, deadline, None, |holder| {
            if holder == 0 {
                return match self.word.compare_exchange(0, me, SeqCst, SeqCst) {
                    Ok(_) => Step::Done(Taken::Free),
                    Err(_) => Step::Again,
                };
            }
            if holder != me && since.elapsed() >= PATIENCE && !crate::sys::pid_running(holder) {
                return match self.word.compare_exchange(holder, me, SeqCst, SeqCst) {
                    Ok(_) => Step::Done(Taken::FromDead(holder)),
                    Err(_) => Step::Again,
                };
            }
            Step::Blocked
        })
    }

    /// Frees the lock (held by this process) and wakes one waiter.
    pub(crate) fn unlock(&self) {
        self.word.store(0, SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
            futex::wake(self.word, 1);
        }
    }
}
