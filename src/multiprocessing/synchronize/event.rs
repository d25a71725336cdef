//! The cross-process `Event`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::block::Block;
use super::sem::deadline;
use super::{futex, watch};

// Word 0: a generation (bumped by every set) shifted left once, and the
// flag in bit 0. Word 1: sleepers.
const WORD: usize = 0;
const SLEEPERS: usize = 4;

/// Every waiter may go once the flag is set or was set since (a new
/// generation, even if cleared again).
fn set_or_new_generation(prev: u32, now: u32) -> watch::Wake {
    if now & 1 == 1 || now >> 1 != prev >> 1 {
        watch::Wake::All
    } else {
        watch::Wake::None
    }
}

/// An event flag shared by processes. Python: `multiprocessing.Event()`.
///
/// As [`threading::Event`](crate::threading::Event): a waiter woken by
/// `set` returns true even if `clear` follows at once (each `set` starts a
/// new generation, and a waiter returns when the generation it slept in
/// has ended).
///
/// # Cancel safety
/// Waiting takes nothing: a dropped wait loses nothing.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let e = conex::multiprocessing::Event::new()?;
/// assert!(!e.wait_timeout(std::time::Duration::from_millis(1)).await);
/// e.set();
/// assert!(e.is_set());
/// e.wait().await;
/// e.clear();
/// assert!(!e.is_set());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Event {
    block: Arc<Block>,
}

super::serde_via_block!(Event, |block| Event { block });

impl Event {
    /// A new, clear event.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new() -> std::io::Result<Event> {
        Ok(Event {
            block: Arc::new(Block::new(16)?),
        })
    }

    fn word(&self) -> &std::sync::atomic::AtomicU32 {
        self.block.u32(WORD)
    }

    /// Whether the flag is set. Python: `is_set()`.
    pub fn is_set(&self) -> bool {
        self.word().load(SeqCst) & 1 == 1
    }

    /// Sets the flag and wakes every waiter. Python: `set()`.
    pub fn set(&self) {
        let w = self.word();
        let mut cur = w.load(SeqCst);
        loop {
            if cur & 1 == 1 {
                return;
            }
            let next = (cur | 1).wrapping_add(2);
            match w.compare_exchange_weak(cur, next, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if self.block.u32(SLEEPERS).load(SeqCst) > 0 {
            futex::wake(w, u32::MAX);
        }
    }

    /// Clears the flag. Python: `clear()`.
    pub fn clear(&self) {
        self.word().fetch_and(!1, SeqCst);
    }

    /// Sleeps until set (true) or the deadline / cancel (false).
    fn wait_blocking(&self, deadline: Option<Instant>, cancel: Option<&AtomicBool>) -> bool {
        let start = self.word().load(SeqCst);
        if start & 1 == 1 {
            return true;
        }
        // Set now, or a set (a new generation) since `start`.
        futex::wait_for(
            futex::On::new(self.word(), self.block.u32(SLEEPERS)),
            deadline,
            cancel,
            |now| {
                if now & 1 == 1 || now >> 1 != start >> 1 {
                    futex::Step::Done(())
                } else {
                    futex::Step::Blocked
                }
            },
        )
        .is_some()
    }

    /// The async wait: on this process's watch of the flag word (one
    /// thread sleeps on it for every waiting task).
    async fn wait_async(&self, deadline: Option<Instant>) -> bool {
        let start = self.word().load(SeqCst);
        if start & 1 == 1 {
            return true;
        }
        let spec = watch::Spec {
            word: WORD,
            sleepers: SLEEPERS,
            bits: futex::ALL,
            policy: set_or_new_generation,
        };
        watch::wait(&self.block, spec, deadline, |now| {
            if now & 1 == 1 || now >> 1 != start >> 1 {
                futex::Step::Done(())
            } else {
                futex::Step::Blocked
            }
        })
        .await
        .is_some()
    }

    /// Waits until the flag is set. Python: `wait()`.
    pub async fn wait(&self) {
        self.wait_async(None).await;
    }

    /// Waits at most `timeout`; returns whether it was set. Python:
    /// `wait(timeout)`.
    pub async fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_async(deadline(timeout)).await
    }

    /// How many waiters, of every process, are asleep in `wait` now: a
    /// snapshot, for monitoring and tests (as
    /// [`threading::Event::n_waiting`](crate::threading::Event::n_waiting)).
    pub fn n_waiting(&self) -> usize {
        self.block.u32(SLEEPERS).load(SeqCst) as usize
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingEvent<'_> {
        BlockingEvent { ev: self }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("multiprocessing::Event")
            .field("set", &self.is_set())
            .finish()
    }
}

/// The blocking facade of an [`Event`].
#[derive(Debug)]
pub struct BlockingEvent<'a> {
    ev: &'a Event,
}

impl BlockingEvent<'_> {
    /// [`Event::wait`], blocking.
    pub fn wait(&self) {
        self.ev.wait_blocking(None, None);
    }

    /// [`Event::wait_timeout`], blocking.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.ev.wait_blocking(deadline(timeout), None)
    }
}
