//! The cross-process `Condition`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::block::Block;
use super::census::{Census, SLOTS};
use super::rlock::{RLock, RLockGuard, me};
use super::sem::{Sem, deadline};
use super::{census, futex, robust, watch};
use crate::threading::NotOwned;

// Python's multiprocessing.Condition keeps three semaphores: sleepers
// announced, sleepers woken, and the one they sleep on. Here the first two
// are counted per process in a census (high half of a slot's value:
// announced, low half: woken), so the sleepers of a process that died
// can be told apart and taken out; the third is a semaphore at WAIT; ACKS
// is bumped after each woken count, for a notifier to sleep on.
const WAIT: usize = 0;
const ACKS: usize = 16;
const ACKS_SLEEPERS: usize = 20;
const CENSUS: usize = 24;
/// One announced sleeper in a census value.
const ANNOUNCED: u64 = 1 << 32;

fn announced(v: u64) -> u64 {
    v >> 32
}

fn woken(v: u64) -> u64 {
    v & 0xffff_ffff
}

/// Takes `f(value)` (at most what it returns, as a count of `unit`s) off
/// `slot` in one CAS; returns how many it took.
fn take(slot: &AtomicU64, unit: u64, f: impl Fn(u64) -> u64) -> u64 {
    let mut v = slot.load(SeqCst);
    loop {
        let t = f(v);
        if t == 0 {
            return 0;
        }
        match slot.compare_exchange_weak(v, v - t * unit, SeqCst, SeqCst) {
            Ok(_) => return t,
            Err(now) => v = now,
        }
    }
}

/// A sleeper is awake (notified or not): counted woken in census `slot`,
/// and a notifier waiting for it woken.
fn ack_in(block: &Block, slot: usize) {
    Census::at(block, CENSUS).value(slot).fetch_add(1, SeqCst);
    let acks = block.u32(ACKS);
    acks.fetch_add(1, SeqCst);
    if block.u32(ACKS_SLEEPERS).load(SeqCst) > 0 {
        futex::wake(acks, u32::MAX);
    }
}

/// What this process's watch of a condition's permits does for its
/// waiting tasks: takes a permit and acknowledges it for them, gives one
/// back for a task that left before it saw its grant, acknowledges a task
/// that leaves without one.
const GRANT: watch::Grant = watch::Grant {
    take: |b| {
        Sem::try_acquire_in(b, WAIT) && {
            ack_in(b, Census::at(b, CENSUS).mine());
            true
        }
    },
    give_back: |b| {
        let _ = Sem::release_in(b, WAIT, 1);
    },
    leave: |b| ack_in(b, Census::at(b, CENSUS).mine()),
};

/// A woken async wait dropped before it re-took the lock: its permit goes
/// back, for another sleeper.
struct PassOnDrop<'a> {
    block: &'a Block,
    armed: bool,
}

impl Drop for PassOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = Sem::release_in(self.block, WAIT, 1);
        }
    }
}

/// A sleeper between the two halves of a wait: who it is, the levels of
/// the lock it released, its census slot.
#[derive(Clone, Copy)]
struct Sleeper {
    me: (u32, u64),
    levels: u32,
    slot: usize,
}

/// A condition variable shared by processes, over a cross-process
/// [`RLock`]. Python: `multiprocessing.Condition(lock=None)`.
///
/// The calls of [`threading::Condition`](crate::threading::Condition):
/// [`lock`](Condition::lock) gives a guard, [`wait`](Condition::wait)
/// takes it, releases every level of the lock while it sleeps, and gives
/// it back re-acquired; [`notify`](Condition::notify) and
/// [`notify_all`](Condition::notify_all) need the lock. The algorithm is
/// Python's (`multiprocessing.synchronize.Condition`): a notifier wakes
/// `n` announced sleepers and waits until they are awake, so no
/// notification reaches a waiter that came later.
///
/// # A process killed
/// The lock is an [`RLock`]: one whose owner died is taken over. Sleepers
/// are counted per process: a notifier that waits for a sleeper of a dead
/// process to wake stops waiting for it (after a few milliseconds) and
/// takes the dead process's sleepers out of the count, where CPython's
/// notifier waits for good. After such a takeover a waiter may be woken
/// once without a notification meant for it (a spurious wake, which a
/// `wait_for` loop absorbs). Sleepers of more than 32 processes at once
/// share one slot whose dead are not taken out, as in CPython.
///
/// # Cancel safety
/// A dropped `wait` has given its guard away: the caller cannot believe
/// it still holds the lock. It never holds the lock after the drop (it
/// re-takes it in its own poll), and a notification it had been given is
/// passed on to another sleeper. Waiting tasks take no thread each: one
/// thread per process sleeps on the condition for all of them, and
/// takes a notification for the oldest one at once, so a notifier never
/// waits for a task of its own process to be polled.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// use std::time::Duration;
///
/// let c = conex::multiprocessing::Condition::new()?;
/// let g = c.lock().await;
/// let (g, notified) = c.wait_timeout(g, Duration::from_millis(5)).await.unwrap();
/// assert!(!notified);
/// c.notify_all().unwrap();
/// drop(g);
/// assert!(c.notify(1).is_err()); // not holding the lock
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Condition {
    block: Arc<Block>,
    lock: RLock,
}

impl serde::Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&*self.block, &self.lock).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Condition, D::Error> {
        let (block, lock) = <(Block, RLock)>::deserialize(d)?;
        Ok(Condition {
            block: Arc::new(block),
            lock,
        })
    }
}

impl Condition {
    /// A condition over a new [`RLock`].
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new() -> std::io::Result<Condition> {
        Self::with_lock(RLock::new()?)
    }

    /// A condition over `lock` (shared with whoever else holds it).
    /// Python: `Condition(lock)`.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn with_lock(lock: RLock) -> std::io::Result<Condition> {
        let block = Arc::new(Block::new(CENSUS + census::LEN)?);
        Sem::init(block.clone(), WAIT, 0, Sem::MAX);
        Ok(Condition { block, lock })
    }

    fn wait_sem(&self) -> Sem {
        Sem {
            block: self.block.clone(),
            base: WAIT,
        }
    }

    fn census(&self) -> Census<'_> {
        Census::at(&self.block, CENSUS)
    }

    /// Its lock.
    pub fn rlock(&self) -> &RLock {
        &self.lock
    }

    /// Acquires the lock. Python: `with cond:`.
    pub async fn lock(&self) -> RLockGuard<'_> {
        self.lock.lock().await
    }

    fn check<'g>(&self, guard: &RLockGuard<'g>) {
        assert!(
            self.lock.same(guard.rlock()),
            "Condition::wait was given the guard of another lock"
        );
    }

    /// The first half of a wait: announce a sleeper, release every level.
    /// Not held by the caller (a Python-style release while the guard was
    /// kept, or another owner): [`NotOwned`], the lock untouched and the
    /// stale guard forgotten, so it releases nothing.
    fn begin(&self, guard: RLockGuard<'_>) -> Result<Sleeper, NotOwned> {
        self.check(&guard);
        if !self.lock.is_owned() {
            std::mem::forget(guard);
            return Err(NotOwned);
        }
        let me = me();
        let slot = self.census().mine();
        self.census().value(slot).fetch_add(ANNOUNCED, SeqCst);
        std::mem::forget(guard);
        let levels = self.lock.release_all(me);
        Ok(Sleeper { me, levels, slot })
    }

    /// A sleeper is awake (notified or not).
    fn ack(&self, slot: usize) {
        ack_in(&self.block, slot);
    }

    /// The sleep and the second half, blocking: returns whether a notify
    /// came (false at the deadline).
    fn sleep(&self, s: Sleeper, deadline: Option<Instant>) -> bool {
        let notified = self.wait_sem().acquire_blocking(deadline, None);
        self.ack(s.slot);
        self.lock.restore_blocking(s.me, s.levels.max(1));
        notified
    }

    async fn wait_until<'g>(
        &self,
        guard: RLockGuard<'g>,
        deadline: Option<Instant>,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        let lock = guard.rlock();
        let s = self.begin(guard)?;
        let notified = if self.wait_sem().try_acquire() {
            self.ack(s.slot);
            true
        } else {
            // This process's watch of the permits takes one for the oldest
            // waiting task and acknowledges it at once: a notifier never
            // waits for a task to be polled. Timed out or dropped without
            // a permit, the wait acknowledges itself (a timed-out sleeper).
            let spec = watch::Spec {
                word: WAIT,
                sleepers: WAIT + 4,
                bits: futex::ALL,
                policy: watch::by_count,
            };
            watch::wait_granted(&self.block, spec, GRANT, deadline).await
        };
        // Dropped while it re-takes the lock: a notification it was given
        // goes back for another sleeper (the lock is not held: the restore
        // takes it in the task's poll).
        let mut pass = PassOnDrop {
            block: &self.block,
            armed: notified,
        };
        self.lock.restore_async(s.me, s.levels.max(1)).await;
        pass.armed = false;
        Ok((RLockGuard::held(lock), notified))
    }

    /// Releases the lock, sleeps until notified, re-acquires it. Python:
    /// `wait()`.
    ///
    /// # Errors
    /// [`NotOwned`] if the caller does not hold the lock (Python's
    /// `RuntimeError: cannot wait on un-acquired lock`); the lock is left
    /// as it was.
    ///
    /// # Panics
    /// If `guard` is another lock's.
    pub async fn wait<'g>(&self, guard: RLockGuard<'g>) -> Result<RLockGuard<'g>, NotOwned> {
        Ok(self.wait_until(guard, None).await?.0)
    }

    /// [`wait`](Condition::wait) for at most `timeout`; the flag says
    /// whether a notify came. Python: `wait(timeout)`.
    ///
    /// # Errors
    /// [`NotOwned`] as [`wait`](Condition::wait).
    pub async fn wait_timeout<'g>(
        &self,
        guard: RLockGuard<'g>,
        timeout: Duration,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        self.wait_until(guard, deadline(timeout)).await
    }

    /// Waits until `predicate` holds (checked under the lock). Python:
    /// `wait_for(predicate)`.
    ///
    /// # Errors
    /// [`NotOwned`] as [`wait`](Condition::wait), once a wait is needed.
    pub async fn wait_for<'g>(
        &self,
        mut guard: RLockGuard<'g>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<RLockGuard<'g>, NotOwned> {
        while !predicate() {
            guard = self.wait(guard).await?;
        }
        Ok(guard)
    }

    /// [`wait_for`](Condition::wait_for) for at most `timeout`; the flag is
    /// the predicate's last value. Python: `wait_for(predicate, timeout)`.
    ///
    /// # Errors
    /// [`NotOwned`] as [`wait_for`](Condition::wait_for).
    pub async fn wait_for_timeout<'g>(
        &self,
        guard: RLockGuard<'g>,
        timeout: Duration,
        predicate: impl FnMut() -> bool,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        self.wait_for_until(guard, deadline(timeout), predicate)
            .await
    }

    pub(crate) async fn wait_for_until<'g>(
        &self,
        mut guard: RLockGuard<'g>,
        end: Option<Instant>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        loop {
            if predicate() {
                return Ok((guard, true));
            }
            if end.is_some_and(|e| Instant::now() >= e) {
                return Ok((guard, false));
            }
            guard = self.wait_until(guard, end).await?.0;
        }
    }

    /// Wakes up to `n` waiters (of any process). Python: `notify(n)`.
    ///
    /// # Errors
    /// [`NotOwned`] unless the caller holds the lock.
    pub fn notify(&self, n: usize) -> Result<(), NotOwned> {
        if !self.lock.is_owned() {
            return Err(NotOwned);
        }
        self.notify_held(n);
        Ok(())
    }

    /// Wakes every waiter. Python: `notify_all()`.
    ///
    /// # Errors
    /// [`NotOwned`] unless the caller holds the lock.
    pub fn notify_all(&self) -> Result<(), NotOwned> {
        self.notify(usize::MAX)
    }

    /// Python's notify, by someone holding the lock, over the census.
    fn notify_held(&self, n: usize) {
        let (c, wait) = (self.census(), self.wait_sem());
        // Sleepers that timed out since the last notify (woken and still
        // announced, in their own process's slot) are not sleeping.
        for i in 0..SLOTS {
            take(c.value(i), ANNOUNCED + 1, |v| announced(v).min(woken(v)));
        }
        let n = n.min(u32::MAX as usize) as u64;
        let (mut chosen, mut k) = ([0u64; SLOTS], 0u64);
        for (i, chosen) in chosen.iter_mut().enumerate() {
            if k == n {
                break;
            }
            *chosen = take(c.value(i), ANNOUNCED, |v| announced(v).min(n - k));
            k += *chosen;
        }
        if k == 0 {
            return;
        }
        let _ = wait.release(k as u32);
        // Wait until `k` sleepers (of any process: any sleeper may take any
        // permit) are awake, or are found dead.
        let (mut acked, mut owed, mut forgave) = ([0u64; SLOTS], k, false);
        let since = Instant::now();
        let on = futex::On::new(self.block.u32(ACKS), self.block.u32(ACKS_SLEEPERS))
            .slice(robust::SLICE);
        futex::wait_for(on, None, None, |_| {
            for (i, acked) in acked.iter_mut().enumerate() {
                let t = take(c.value(i), 1, |v| woken(v).min(owed));
                *acked += t;
                owed -= t;
            }
            if owed > 0 && since.elapsed() >= robust::PATIENCE {
                for i in c.dead() {
                    c.reap(i);
                    owed = owed.saturating_sub(chosen[i].saturating_sub(acked[i]));
                    forgave = true;
                }
            }
            if owed == 0 {
                futex::Step::Done(())
            } else {
                futex::Step::Blocked
            }
        });
        // Notifications a timed-out sleeper did not take: void (unless a
        // dead sleeper was forgiven: a live one may still be on its way to
        // its permit, and a spare permit is at worst a spurious wake).
        if !forgave {
            while wait.try_acquire() {}
        }
    }

    /// How many waiters, of every process, wait for a notification and were
    /// not notified yet: a snapshot, for monitoring and tests (as
    /// [`threading::Condition::n_waiting`](crate::threading::Condition::n_waiting)).
    pub fn n_waiting(&self) -> usize {
        let c = self.census();
        c.sum(announced).saturating_sub(c.sum(woken)) as usize
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingCondition<'_> {
        BlockingCondition { c: self }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("multiprocessing::Condition")
            .field("lock", &self.lock)
            .finish()
    }
}

/// The blocking facade of a [`Condition`].
#[derive(Debug)]
pub struct BlockingCondition<'a> {
    c: &'a Condition,
}

impl<'a> BlockingCondition<'a> {
    /// [`Condition::lock`], blocking.
    pub fn lock(&self) -> RLockGuard<'a> {
        self.c.lock.blocking().lock()
    }

    fn wait_until<'g>(
        &self,
        guard: RLockGuard<'g>,
        deadline: Option<Instant>,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        let lock = guard.rlock();
        let sleeper = self.c.begin(guard)?;
        let notified = self.c.sleep(sleeper, deadline);
        Ok((RLockGuard::held(lock), notified))
    }

    /// [`Condition::wait`], blocking.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait`].
    pub fn wait<'g>(&self, guard: RLockGuard<'g>) -> Result<RLockGuard<'g>, NotOwned> {
        Ok(self.wait_until(guard, None)?.0)
    }

    /// [`Condition::wait_timeout`], blocking.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait`].
    pub fn wait_timeout<'g>(
        &self,
        guard: RLockGuard<'g>,
        timeout: Duration,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        self.wait_until(guard, deadline(timeout))
    }

    /// [`Condition::wait_for`], blocking.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait_for`].
    pub fn wait_for<'g>(
        &self,
        mut guard: RLockGuard<'g>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<RLockGuard<'g>, NotOwned> {
        while !predicate() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`Condition::wait_for_timeout`], blocking.
    ///
    /// # Errors
    /// [`NotOwned`] as [`Condition::wait_for`].
    pub fn wait_for_timeout<'g>(
        &self,
        guard: RLockGuard<'g>,
        timeout: Duration,
        predicate: impl FnMut() -> bool,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        self.wait_for_until(guard, deadline(timeout), predicate)
    }

    pub(crate) fn wait_for_until<'g>(
        &self,
        mut guard: RLockGuard<'g>,
        end: Option<Instant>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<(RLockGuard<'g>, bool), NotOwned> {
        loop {
            if predicate() {
                return Ok((guard, true));
            }
            if end.is_some_and(|e| Instant::now() >= e) {
                return Ok((guard, false));
            }
            guard = self.wait_until(guard, end)?.0;
        }
    }
}
