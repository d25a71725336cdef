//! The cross-process `Barrier`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

/// The barrier waits only with the guard it has just taken.
const HELD: &str = "the barrier's own wait holds its lock";

use super::block::Block;
use super::condition::Condition;
use super::sem::deadline;
use crate::threading::BrokenBarrier;

// The state word (as Python's Barrier: 0 filling, 1 draining, 2
// resetting, 3 broken), the waiter count, the party count. All changed
// under the condition's lock.
const STATE: usize = 0;
const COUNT: usize = 4;
const PARTIES: usize = 8;
/// Bumped each time the barrier opens: a waiter released by an opening
/// returns its index even if an abort or reset comes before it wakes.
const GENERATION: usize = 12;
const FILLING: u32 = 0;
const DRAINING: u32 = 1;
const RESETTING: u32 = 2;
const BROKEN: u32 = 3;

/// A barrier for a fixed number of parties across processes. Python:
/// `multiprocessing.Barrier(parties)` (without `action`: a closure cannot
/// cross to another process).
///
/// The semantics of [`threading::Barrier`](crate::threading::Barrier):
/// `wait` returns each party's arrival index (0..parties) once all have
/// arrived, then the barrier refills; a timeout, [`abort`](Barrier::abort)
/// or [`reset`](Barrier::reset) while parties wait breaks it for them
/// ([`BrokenBarrier`]).
///
/// # Cancel safety
/// A dropped `wait` breaks the barrier for the parties waiting with it
/// (as a timeout does): its place cannot be given back.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let b = conex::multiprocessing::Barrier::new(1)?;
/// assert_eq!(b.wait().await, Ok(0));
/// assert_eq!(b.parties(), 1);
/// b.abort();
/// assert!(b.broken());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Barrier {
    block: Arc<Block>,
    cond: Condition,
}

impl serde::Serialize for Barrier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&*self.block, &self.cond).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Barrier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Barrier, D::Error> {
        let (block, cond) = <(Block, Condition)>::deserialize(d)?;
        Ok(Barrier {
            block: Arc::new(block),
            cond,
        })
    }
}

/// Where an arriving party stands (decided under the lock).
enum Arrival {
    /// The barrier is broken: fail at once.
    Broken,
    /// The last party: the barrier opened; this is its index.
    Opened(usize),
    /// Wait for the others; its index, and the generation it waits in.
    Wait(usize, u32),
}

impl Barrier {
    /// A barrier for `parties` parties.
    ///
    /// # Errors
    /// `InvalidInput` for 0 parties (Python: `ValueError`); the OS
    /// refused the shared memory.
    pub fn new(parties: usize) -> std::io::Result<Barrier> {
        if parties == 0 || parties > u32::MAX as usize {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "parties must be at least 1",
            ));
        }
        let block = Arc::new(Block::new(16)?);
        block.u32(PARTIES).store(parties as u32, SeqCst);
        Ok(Barrier {
            block,
            cond: Condition::new()?,
        })
    }

    fn state(&self) -> u32 {
        self.block.u32(STATE).load(SeqCst)
    }

    fn set_state(&self, s: u32) {
        self.block.u32(STATE).store(s, SeqCst);
    }

    /// Under the lock, once not draining or resetting: count this party in.
    fn arrive(&self) -> Arrival {
        if self.state() == BROKEN {
            return Arrival::Broken;
        }
        let index = self.block.u32(COUNT).fetch_add(1, SeqCst) as usize;
        if index + 1 == self.parties() {
            self.block.u32(GENERATION).fetch_add(1, SeqCst);
            self.set_state(DRAINING);
            self.notify_all();
            Arrival::Opened(index)
        } else {
            Arrival::Wait(index, self.generation())
        }
    }

    fn generation(&self) -> u32 {
        self.block.u32(GENERATION).load(SeqCst)
    }

    /// Whether a party waiting in generation `round` may stop waiting.
    fn released_or_broken(&self, round: u32) -> bool {
        self.state() != FILLING || self.generation() != round
    }

    /// Under the lock, after waiting in generation `round`: the party's
    /// answer (its index if the barrier opened for it, whatever happened
    /// since).
    fn settle(&self, index: usize, round: u32, woken: bool) -> Result<usize, BrokenBarrier> {
        let r = if self.generation() != round {
            Ok(index)
        } else if !woken {
            self.set_state(BROKEN);
            self.notify_all();
            Err(BrokenBarrier)
        } else if self.state() == BROKEN || self.state() == RESETTING {
            Err(BrokenBarrier)
        } else {
            Ok(index)
        };
        self.leave();
        r
    }

    /// Under the lock: count this party out; the last one out refills.
    fn leave(&self) {
        if self.block.u32(COUNT).fetch_sub(1, SeqCst) == 1 {
            let s = self.state();
            if s == DRAINING || s == RESETTING {
                self.set_state(FILLING);
                self.notify_all();
            }
        }
    }

    fn notify_all(&self) {
        // The caller holds the lock (every caller is under it).
        let _ = self.cond.notify_all();
    }

    fn open(&self) -> bool {
        let s = self.state();
        s != DRAINING && s != RESETTING
    }

    async fn wait_until(&self, end: Option<Instant>) -> Result<usize, BrokenBarrier> {
        let g = self.cond.lock().await;
        let (g, _) = self
            .cond
            .wait_for_until(g, None, || self.open())
            .await
            .expect(HELD);
        match self.arrive() {
            Arrival::Broken => Err(BrokenBarrier),
            Arrival::Opened(i) => {
                self.leave();
                drop(g);
                Ok(i)
            }
            Arrival::Wait(i, round) => {
                let mut leave = BreakOnDrop {
                    b: self,
                    armed: true,
                };
                let (g, woken) = self
                    .cond
                    .wait_for_until(g, end, || self.released_or_broken(round))
                    .await
                    .expect(HELD);
                leave.armed = false;
                let r = self.settle(i, round, woken);
                drop(g);
                r
            }
        }
    }

    /// Waits for the other parties; returns this party's arrival index.
    /// Python: `wait()`.
    ///
    /// # Errors
    /// [`BrokenBarrier`] if it is or becomes broken.
    pub async fn wait(&self) -> Result<usize, BrokenBarrier> {
        self.wait_until(None).await
    }

    /// [`wait`](Barrier::wait) for at most `timeout`; a timeout breaks the
    /// barrier. Python: `wait(timeout)`.
    ///
    /// # Errors
    /// [`BrokenBarrier`].
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrier> {
        self.wait_until(deadline(timeout)).await
    }

    /// Returns it to the empty state; parties waiting get
    /// [`BrokenBarrier`]. Python: `reset()`.
    pub fn reset(&self) {
        let _g = self.cond.blocking().lock();
        if self.block.u32(COUNT).load(SeqCst) > 0 {
            match self.state() {
                FILLING | BROKEN => self.set_state(RESETTING),
                _ => {}
            }
        } else {
            self.set_state(FILLING);
        }
        self.notify_all();
    }

    /// Breaks it: current and later waits fail until [`reset`](Barrier::reset).
    /// Python: `abort()`.
    pub fn abort(&self) {
        let _g = self.cond.blocking().lock();
        self.set_state(BROKEN);
        self.notify_all();
    }

    /// Its party count. Python: `parties`.
    pub fn parties(&self) -> usize {
        self.block.u32(PARTIES).load(SeqCst) as usize
    }

    /// Parties waiting now. Python: `n_waiting`.
    pub fn n_waiting(&self) -> usize {
        if self.state() == FILLING {
            self.block.u32(COUNT).load(SeqCst) as usize
        } else {
            0
        }
    }

    /// Whether it is broken. Python: `broken`.
    pub fn broken(&self) -> bool {
        self.state() == BROKEN
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingBarrier<'_> {
        BlockingBarrier { b: self }
    }
}

/// A waiting party whose wait was dropped: it breaks the barrier and
/// counts itself out (under the lock, blocking briefly).
struct BreakOnDrop<'a> {
    b: &'a Barrier,
    armed: bool,
}

impl Drop for BreakOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            // On a thread of its own: this task's id may still own the lock
            // (the dropped wait re-takes it on its behalf until it is
            // handed back), and the break must not pass for a re-entry.
            let b = self.b;
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _g = b.cond.blocking().lock();
                    b.set_state(BROKEN);
                    b.notify_all();
                    b.leave();
                });
            });
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("multiprocessing::Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}

/// The blocking facade of a [`Barrier`].
#[derive(Debug)]
pub struct BlockingBarrier<'a> {
    b: &'a Barrier,
}

impl BlockingBarrier<'_> {
    fn wait_until(&self, end: Option<Instant>) -> Result<usize, BrokenBarrier> {
        let (b, c) = (self.b, self.b.cond.blocking());
        let g = c.lock();
        let (g, _) = c.wait_for_until(g, None, || b.open()).expect(HELD);
        let r = match b.arrive() {
            Arrival::Broken => Err(BrokenBarrier),
            Arrival::Opened(i) => {
                b.leave();
                Ok(i)
            }
            Arrival::Wait(i, round) => {
                let (g2, woken) = c
                    .wait_for_until(g, end, || b.released_or_broken(round))
                    .expect(HELD);
                let r = b.settle(i, round, woken);
                drop(g2);
                return r;
            }
        };
        drop(g);
        r
    }

    /// [`Barrier::wait`], blocking.
    ///
    /// # Errors
    /// [`BrokenBarrier`].
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        self.wait_until(None)
    }

    /// [`Barrier::wait_timeout`], blocking.
    ///
    /// # Errors
    /// [`BrokenBarrier`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrier> {
        self.wait_until(deadline(timeout))
    }
}
