//! The cross-process `Barrier`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

/// The barrier waits only with the guard it has just taken.
const HELD: &str = "the barrier's own wait holds its lock";

use super::block::Block;
use super::census::{self, Census};
use super::condition::Condition;
use super::rlock::RLockGuard;
use super::sem::deadline;
use crate::threading::BrokenBarrier;

// The state word (as Python's Barrier: 0 filling, 1 draining, 2
// resetting, 3 broken), the party count, and the census of waiting
// parties by process (its sum is Python's `_count`). All changed under
// the condition's lock, each by one atomic operation, so a holder killed
// between two of them leaves a state its taker can carry on from.
const STATE: usize = 0;
const PARTIES: usize = 8;
const CENSUS: usize = 16;
/// How often a waiting party looks for parties that died waiting.
const REAP: Duration = Duration::from_millis(100);
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
/// # A party killed
/// The parties waiting are counted per process. A party whose process
/// dies while it waits (noticed by the others within about 100 ms) breaks
/// the barrier, as its timeout would: the others get [`BrokenBarrier`]
/// instead of waiting for good, as they would in CPython. One that dies
/// after the barrier opened is counted out, so the barrier refills. The
/// lock is a robust [`RLock`](super::RLock). Parties of more than 32
/// processes at once share one slot whose dead are not counted out.
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
    /// The last party: the barrier opened; its index and census slot.
    Opened(usize, usize),
    /// Wait for the others; its index, the generation it waits in and its
    /// census slot.
    Wait(usize, u32, usize),
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
        let block = Arc::new(Block::new(CENSUS + census::LEN)?);
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

    fn census(&self) -> Census<'_> {
        Census::at(&self.block, CENSUS)
    }

    /// Parties waiting or draining (Python's `_count`).
    fn count(&self) -> usize {
        self.census().sum(|v| v) as usize
    }

    /// Under the lock: counts out the parties of processes that died
    /// waiting. Filling, that breaks the barrier (they will never arrive
    /// back, as a timeout); draining or resetting, the last one out
    /// refills it.
    fn reap_dead(&self) {
        let c = self.census();
        let mut gone = false;
        for i in c.dead() {
            gone |= c.reap(i) > 0;
        }
        if gone {
            match self.state() {
                FILLING => {
                    self.set_state(BROKEN);
                    self.notify_all();
                }
                DRAINING | RESETTING if self.count() == 0 => {
                    self.set_state(FILLING);
                    self.notify_all();
                }
                _ => {}
            }
        }
    }

    /// Under the lock, once not draining or resetting: count this party in.
    fn arrive(&self) -> Arrival {
        if self.state() == BROKEN {
            return Arrival::Broken;
        }
        let index = self.count();
        let slot = self.census().mine();
        self.census().value(slot).fetch_add(1, SeqCst);
        if index + 1 == self.parties() {
            self.block.u32(GENERATION).fetch_add(1, SeqCst);
            self.set_state(DRAINING);
            self.notify_all();
            Arrival::Opened(index, slot)
        } else {
            Arrival::Wait(index, self.generation(), slot)
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
    fn settle(
        &self,
        index: usize,
        round: u32,
        woken: bool,
        slot: usize,
    ) -> Result<usize, BrokenBarrier> {
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
        self.leave(slot);
        r
    }

    /// Under the lock: count this party (of census `slot`) out; the last
    /// one out refills.
    fn leave(&self, slot: usize) {
        self.census().value(slot).fetch_sub(1, SeqCst);
        if self.count() == 0 {
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

    /// Waits on the condition until `pred` (or `end`), looking for dead
    /// parties at every wake and at least every [`REAP`].
    async fn wait_reaping<'g>(
        &self,
        mut g: RLockGuard<'g>,
        end: Option<Instant>,
        mut pred: impl FnMut() -> bool,
    ) -> (RLockGuard<'g>, bool) {
        loop {
            let slice = reap_slice(end);
            let (g2, ok) = self
                .cond
                .wait_for_until(g, Some(slice), || {
                    self.reap_dead();
                    pred()
                })
                .await
                .expect(HELD);
            if ok || end.is_some_and(|e| Instant::now() >= e) {
                return (g2, ok);
            }
            g = g2;
        }
    }

    async fn wait_until(&self, end: Option<Instant>) -> Result<usize, BrokenBarrier> {
        let g = self.cond.lock().await;
        let (g, _) = self.wait_reaping(g, None, || self.open()).await;
        match self.arrive() {
            Arrival::Broken => Err(BrokenBarrier),
            Arrival::Opened(i, slot) => {
                self.leave(slot);
                drop(g);
                Ok(i)
            }
            Arrival::Wait(i, round, slot) => {
                let mut leave = BreakOnDrop {
                    b: self,
                    armed: true,
                    slot,
                };
                let (g, woken) = self
                    .wait_reaping(g, end, || self.released_or_broken(round))
                    .await;
                leave.armed = false;
                let r = self.settle(i, round, woken, slot);
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
        self.reap_dead();
        if self.count() > 0 {
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
            self.count()
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
    slot: usize,
}

impl Drop for BreakOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            // On a thread of its own: a drop cannot await the lock, and a
            // blocking take here could be on the thread that drives a
            // current-thread runtime (the facade refuses that). The thread
            // is a new owner, so the break never passes for a re-entry.
            let (b, slot) = (self.b, self.slot);
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _g = b.cond.blocking().lock();
                    b.set_state(BROKEN);
                    b.notify_all();
                    b.leave(slot);
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
    /// [`Barrier::wait_reaping`], blocking.
    fn wait_reaping<'g>(
        &self,
        mut g: RLockGuard<'g>,
        end: Option<Instant>,
        mut pred: impl FnMut() -> bool,
    ) -> (RLockGuard<'g>, bool) {
        let b = self.b;
        loop {
            let slice = reap_slice(end);
            let (g2, ok) = b
                .cond
                .blocking()
                .wait_for_until(g, Some(slice), || {
                    b.reap_dead();
                    pred()
                })
                .expect(HELD);
            if ok || end.is_some_and(|e| Instant::now() >= e) {
                return (g2, ok);
            }
            g = g2;
        }
    }

    fn wait_until(&self, end: Option<Instant>) -> Result<usize, BrokenBarrier> {
        let b = self.b;
        let g = b.cond.blocking().lock();
        let (g, _) = self.wait_reaping(g, None, || b.open());
        let r = match b.arrive() {
            Arrival::Broken => Err(BrokenBarrier),
            Arrival::Opened(i, slot) => {
                b.leave(slot);
                Ok(i)
            }
            Arrival::Wait(i, round, slot) => {
                let (g2, woken) = self.wait_reaping(g, end, || b.released_or_broken(round));
                let r = b.settle(i, round, woken, slot);
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

/// The end of one wait slice: [`REAP`] from now, or `end` if sooner.
fn reap_slice(end: Option<Instant>) -> Instant {
    let slice = Instant::now() + REAP;
    end.map_or(slice, |e| e.min(slice))
}
