//! A lock word in shared memory that knows its owner, so a process killed
//! while it holds the lock does not wedge everyone else: the queue ring's
//! lock, [`Lock`](super::Lock) and [`RLock`](super::RLock) (and through
//! it `Condition`, `Barrier`, `Value` and `Array`).
//!
//! The word holds the pid of the holding process (0: free). A waiter
//! sleeps on it through the one wait loop, [`futex::wait_for`], in slices
//! of [`SLICE`]; once it has waited [`PATIENCE`], each look also asks the
//! OS whether the holder still runs, and takes the lock over (one
//! compare-and-swap from the dead pid to its own, marked [`TAKING`]) when
//! it does not. The taker fixes up what it keeps beside the word (an
//! RLock's owner and count) and then [`adopt`](RobustLock::adopt)s the
//! word: while it is marked, no one of the taker's process can mistake the
//! dead owner's stale fields for its own. A taker killed while the word is
//! marked is a dead holder like any other.
//!
//! What the lock guards is the user's to keep consistent: the queue ring
//! publishes each change with a single atomic store (see
//! `queues/ring.rs`), so a takeover finds it whole; what a user guards with
//! a `Lock` may be half-changed, as after a panic in a `std::sync::Mutex`
//! (the takeover is reported through `tracing`, or on stderr, naming the
//! dead pid).
//!
//! A pid the OS gave to a new process before a waiter noticed the death
//! looks alive: the waiter then waits for that process to end (Linux
//! reuses a pid only after it has handed out all the others, 4 million by
//! default on 64-bit systems). The processes sharing the word must see
//! one another's pids: the same PID namespace (a lock handed into a
//! container with its own would see a live holder as dead).
//!
//! An async waiter queues on this process's watch of the word
//! ([`super::watch`], policy [`robust`]): the watch's thread wakes one task
//! per release, and one when a look a whole slice after the last finds
//! the same holder dead; the task takes the lock in its own poll.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::block::Block;
use super::futex::{self, Step};
use super::watch;

/// The longest one sleep on a held lock lasts.
pub(crate) const SLICE: Duration = Duration::from_millis(10);

/// How long a waiter waits before it asks whether the holder still runs
/// (a lock is held for a copy; asking costs a system call).
pub(crate) const PATIENCE: Duration = Duration::from_millis(5);

/// The mark of a word taken over from a dead holder and not yet adopted
/// (pids stay below 2^22 on Linux).
pub(crate) const TAKING: u32 = 1 << 31;

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
    /// From a holder that died holding it (its pid): the word is marked
    /// until the taker [`adopt`](RobustLock::adopt)s it.
    FromDead(u32),
}

/// The watch policy of a robust word: a release lets one waiter through;
/// so does a holder found dead at a look that sees the same holder as the
/// last one (a slice apart: the watch's patience).
pub(crate) fn robust(prev: u32, now: u32) -> watch::Wake {
    if now == 0 || (now == prev && !crate::sys::pid_running(now & !TAKING)) {
        watch::Wake::Some(1)
    } else {
        watch::Wake::None
    }
}

impl<'a> RobustLock<'a> {
    /// The robust lock whose word is at byte `base` of `block` and its
    /// sleeper count right after it.
    pub(crate) fn at(block: &'a Block, base: usize) -> RobustLock<'a> {
        RobustLock {
            word: block.u32(base),
            sleepers: block.u32(base + 4),
        }
    }

    /// The holder's pid (0: free).
    pub(crate) fn holder(&self) -> u32 {
        self.word.load(SeqCst) & !TAKING
    }

    /// Takes a free lock.
    pub(crate) fn try_lock(&self) -> bool {
        self.word.load(SeqCst) == 0
            && self
                .word
                .compare_exchange(0, crate::sys::pid(), SeqCst, SeqCst)
                .is_ok()
    }

    /// One look at `holder` by a waiter that started at `since`: take a
    /// free word, or a dead holder's once patience is spent.
    fn step(&self, holder: u32, since: Instant) -> Step<Taken> {
        let me = crate::sys::pid();
        if holder == 0 {
            return match self.word.compare_exchange(0, me, SeqCst, SeqCst) {
                Ok(_) => Step::Done(Taken::Free),
                Err(_) => Step::Again,
            };
        }
        let pid = holder & !TAKING;
        if pid != me && since.elapsed() >= PATIENCE && !crate::sys::pid_running(pid) {
            return match self
                .word
                .compare_exchange(holder, me | TAKING, SeqCst, SeqCst)
            {
                Ok(_) => {
                    crate::diag!(
                        warn,
                        "a lock held by process {pid}, which died holding it, was taken over by process {me}"
                    );
                    Step::Done(Taken::FromDead(pid))
                }
                Err(_) => Step::Again,
            };
        }
        Step::Blocked
    }

    /// Takes the lock, waiting until `deadline` (None: no bound). `None`
    /// when the deadline passed first.
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> Option<Taken> {
        for _ in 0..64 {
            if self.try_lock() {
                return Some(Taken::Free);
            }
            std::hint::spin_loop();
        }
        let since = Instant::now();
        let on = futex::On::new(self.word, self.sleepers).slice(SLICE);
        futex::wait_for(on, deadline, None, |holder| self.step(holder, since))
    }

    /// Ends a takeover: the word, marked, becomes plainly this process's.
    /// False if someone freed the word meanwhile (a `Lock` released by
    /// another process): the lock is then not held.
    pub(crate) fn adopt(&self) -> bool {
        let me = crate::sys::pid();
        self.word
            .compare_exchange(me | TAKING, me, SeqCst, SeqCst)
            .is_ok()
    }

    /// Frees the lock and wakes one waiter. False if it was free already.
    pub(crate) fn unlock(&self) -> bool {
        let was = self.word.swap(0, SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
            futex::wake(self.word, 1);
        }
        was != 0
    }
}

/// The async face of [`RobustLock::lock`] for the lock at byte `base` of
/// `block`: the task queues on this process's watch of the word and takes
/// the lock in its own poll, so a dropped wait holds nothing.
pub(crate) async fn lock_async(
    block: &Arc<Block>,
    base: usize,
    deadline: Option<Instant>,
) -> Option<Taken> {
    let lock = RobustLock::at(block, base);
    if lock.try_lock() {
        return Some(Taken::Free);
    }
    let spec = watch::Spec {
        word: base,
        sleepers: base + 4,
        bits: futex::ALL,
        policy: robust,
    };
    let since = Instant::now();
    watch::wait(block, spec, deadline, move |holder| {
        lock.step(holder, since)
    })
    .await
}
