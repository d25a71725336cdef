//! Cross-process synchronization: Python's `multiprocessing.Lock`,
//! `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition` and
//! `Barrier`
//! (`multiprocessing.synchronize`), with the in-process semantics of
//! [`crate::threading`].
//!
//! Each primitive's state lives in a small shared block ([`block`]); a
//! primitive is a cheap `Clone` handle to it, and it is serde data: passed
//! to a child (as a [`Process`](super::Process) argument or over a
//! Unix-socket [`Connection`](super::Connection)) it arrives as a handle to
//! the same state. Every blocking wait goes through one wait loop
//! ([`futex::wait_for`]), on a semaphore ([`sem`]), a robust lock word
//! that knows its holder's pid ([`robust`]) or a flag word; the async face of each
//! waits on the in-process wait core through [`watch`] (one thread per
//! process per watched word sleeps on the futex for every waiting task),
//! and a cancelled wait loses nothing.
//!
//! A process killed holding a `Lock` or `RLock` does not wedge the others:
//! a waiter takes the lock over; a `Condition`'s notifier and a
//! `Barrier`'s parties count their waiters per process ([`census`]) and
//! take a dead process's out (see the README's *What survives a kill*).
//!
//! Differences from the in-process primitives: wake-up order across
//! processes is the kernel's (futexes are not FIFO; neither are Python's
//! POSIX semaphores); timeouts run on the OS clock (not tokio's, which
//! `pause()` cannot stop in another process).

mod barrier;
mod block;
mod census;
mod condition;
mod event;
pub(crate) mod futex;
mod lock;
mod rlock;
pub(crate) mod robust;
pub(crate) mod sem;
mod semaphore;
pub(crate) mod watch;

pub use barrier::{Barrier, BlockingBarrier};
pub(crate) use block::Block;
pub use condition::{BlockingCondition, Condition};
pub use event::{BlockingEvent, Event};
pub use lock::{BlockingLock, Lock, LockGuard};
pub use rlock::{BlockingRLock, RLock, RLockGuard};
pub use semaphore::{BlockingSemaphore, BoundedSemaphore, Semaphore};

/// Serde for a handle whose whole state is one `Arc<Block>` field `block`
/// plus fields rebuilt from it.
macro_rules! serde_via_block {
    ($t:ident, |$b:ident| $rebuild:expr) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                (*self.block).serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let $b = std::sync::Arc::new(super::block::Block::deserialize(d)?);
                Ok($rebuild)
            }
        }
    };
}
pub(crate) use serde_via_block;
