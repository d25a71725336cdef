//! The shared core of the cross-process queues: a byte ring in one shared
//! block, built so that a process killed at any instruction leaves it
//! whole for everyone else.
//!
//! An item is a record `[len: u32][postcard bytes]` written at the tail
//! and read at the head, wrapping around. Every change happens under one
//! [robust lock](RobustLock) (a waiter takes it over from a holder that
//! died) and becomes visible by one atomic store: the queue's state
//! (head, tail, count, puts, dropped, shutdown) lives in two copies, the
//! holder writes the new state into the copy not in use and then flips
//! the *selector* word to it. A holder killed before the flip changed
//! nothing (the bytes it may have copied lie past the tail); after it,
//! the change is whole. So a producer killed mid-put loses only its own
//! item, a consumer killed mid-get loses nothing or the item it had
//! taken, and no item is duplicated, invented or stuck: there are no
//! separate permits or slots to leak, a free slot is `count < maxsize`.
//!
//! The selector also counts commits, and it is the futex word that
//! getters and putters sleep on (each kind with its own futex bits): a
//! put wakes one getter, a get wakes every putter (one that fits may sleep
//! behind one that does not), a shutdown wakes all. A process killed
//! between its commit and its wake leaves a sleeper asleep for at most
//! [`WAKE_SLICE`], the longest sleep of a ring wait. Lock-free readers
//! (`qsize`, `is_shutdown`) read a copy between two equal selector loads.
//!
//! An item is in shared memory when `put` returns: a producer that exits
//! right after loses nothing (there is no feeder thread, unlike Python's).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::multiprocessing::synchronize::Block;
use crate::multiprocessing::synchronize::futex::{self, On, Step};
use crate::multiprocessing::synchronize::robust::{RobustLock, Taken};
use crate::multiprocessing::synchronize::watch;

const LOCK: usize = 0;
const LOCK_SLEEPERS: usize = 4;
const SELECTOR: usize = 8;
const GET_SLEEPERS: usize = 12;
const PUT_SLEEPERS: usize = 16;
const JOIN_GEN: usize = 20;
const JOIN_SLEEPERS: usize = 24;
const DONE: usize = 32;
const CAPACITY: usize = 40;
const MAXSIZE: usize = 48;
const STATES: usize = 64;
const STATE_LEN: usize = 48;
const DATA: usize = STATES + 2 * STATE_LEN + 32;

/// The futex bits of sleeping getters and putters.
const GETTER: u32 = 1;
const PUTTER: u32 = 2;

/// The longest one sleep of a ring wait lasts: the bound on a wake-up that
/// a process killed between its commit and its wake never sent.
pub(crate) const WAKE_SLICE: Duration = Duration::from_millis(100);

/// The largest maxsize (and count) a queue keeps.
pub(crate) const MAX_ITEMS: usize = i32::MAX as usize;

/// Why the ring refused.
#[derive(Debug)]
pub(crate) enum RingError {
    /// No slot, or not enough bytes, before the deadline (or at once).
    Full,
    /// Nothing to get before the deadline (or at once).
    Empty,
    /// Shut down (and, for a get, drained).
    ShutDown,
    /// The item is larger than the whole ring.
    TooLarge(usize, usize),
    /// The record at the head does not fit the ring: another program wrote
    /// over the block.
    Corrupt,
}

/// The queue's state: one copy of the two.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct State {
    /// Logical offsets (they only grow) of the first and past the last
    /// byte queued.
    head: u64,
    tail: u64,
    /// Items queued.
    count: u64,
    /// Items ever put, and items dropped by an immediate shutdown (both
    /// count tasks for `join`).
    puts: u64,
    dropped: u64,
    /// 0, 1 (shut down) or 2 (and drained at once).
    shutdown: u64,
}

/// The bytes queued (0 for a state garbled by another program).
fn used(s: &State) -> u64 {
    s.tail.saturating_sub(s.head)
}

#[derive(Clone)]
pub(crate) struct Ring {
    pub(crate) block: Arc<Block>,
}

/// Which waiters a wait is for.
#[derive(Clone, Copy)]
enum Kind {
    Get,
    /// A put of a record of this many bytes.
    Put(u64),
}

impl Kind {
    fn bits(self) -> u32 {
        match self {
            Kind::Get => GETTER,
            Kind::Put(_) => PUTTER,
        }
    }

    fn sleepers(self) -> usize {
        match self {
            Kind::Get => GET_SLEEPERS,
            Kind::Put(_) => PUT_SLEEPERS,
        }
    }
}

impl Ring {
    pub(crate) fn new(maxsize: usize, capacity: usize) -> std::io::Result<Ring> {
        let maxsize = if maxsize == 0 {
            MAX_ITEMS
        } else {
            maxsize.min(MAX_ITEMS)
        };
        let capacity = capacity.max(64);
        let block = Arc::new(Block::new(DATA + capacity)?);
        block.u64(CAPACITY).store(capacity as u64, SeqCst);
        block.u64(MAXSIZE).store(maxsize as u64, SeqCst);
        Ok(Ring { block })
    }

    /// Checks a block that arrived from another process.
    pub(crate) fn from_block(block: Block) -> Result<Ring, String> {
        let cap = block.u64(CAPACITY).load(SeqCst) as usize;
        let max = block.u64(MAXSIZE).load(SeqCst) as usize;
        if cap < 64 || DATA.saturating_add(cap) > block.len() || max == 0 || max > MAX_ITEMS {
            return Err("not a conex queue".into());
        }
        Ok(Ring {
            block: Arc::new(block),
        })
    }

    fn capacity(&self) -> u64 {
        self.block.u64(CAPACITY).load(SeqCst)
    }

    fn max_items(&self) -> u64 {
        self.block.u64(MAXSIZE).load(SeqCst)
    }

    pub(crate) fn maxsize(&self) -> usize {
        match self.max_items() as usize {
            MAX_ITEMS => 0,
            m => m,
        }
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        self.block.u32(offset)
    }

    fn load_state(&self, copy: u32) -> State {
        let base = STATES + copy as usize * STATE_LEN;
        let f = |i: usize| self.block.u64(base + 8 * i).load(SeqCst);
        State {
            head: f(0),
            tail: f(1),
            count: f(2),
            puts: f(3),
            dropped: f(4),
            shutdown: f(5),
        }
    }

    fn store_state(&self, copy: u32, s: &State) {
        let base = STATES + copy as usize * STATE_LEN;
        let fields = [s.head, s.tail, s.count, s.puts, s.dropped, s.shutdown];
        for (i, v) in fields.into_iter().enumerate() {
            self.block.u64(base + 8 * i).store(v, SeqCst);
        }
    }

    /// The committed state, read without the lock: a copy read between two
    /// equal selector loads (a commit bumps the selector's count, so a copy
    /// rewritten under the read shows as a changed selector).
    fn snapshot(&self) -> State {
        let sel = self.word(SELECTOR);
        loop {
            let before = sel.load(SeqCst);
            let s = self.load_state(before & 1);
            if sel.load(SeqCst) == before {
                return s;
            }
            std::hint::spin_loop();
        }
    }

    /// Runs `f` on the state under the lock (taken until `deadline`) and
    /// publishes what it changed with one store of the selector. `None`
    /// when the lock was not had by the deadline.
    fn locked<R>(&self, deadline: Option<Instant>, f: impl FnOnce(&mut State) -> R) -> Option<R> {
        let lock = RobustLock {
            word: self.word(LOCK),
            sleepers: self.word(LOCK_SLEEPERS),
        };
        // Taken from a dead holder or not, the committed state is whole.
        if let Taken::FromDead(_) = lock.lock(deadline)? {
            // Only holders free this word: the mark is still ours.
            lock.adopt();
        }
        let sel = self.word(SELECTOR).load(SeqCst);
        let before = self.load_state(sel & 1);
        let mut state = before;
        let r = f(&mut state);
        if state != before {
            let next = 1 - (sel & 1);
            self.store_state(next, &state);
            self.word(SELECTOR)
                .store(((sel >> 1).wrapping_add(1) << 1) | next, SeqCst);
        }
        lock.unlock();
        Some(r)
    }

    pub(crate) fn qsize(&self) -> usize {
        self.snapshot().count as usize
    }

    pub(crate) fn unfinished(&self) -> usize {
        let s = self.snapshot();
        (s.puts - s.dropped.min(s.puts)).saturating_sub(self.block.u64(DONE).load(SeqCst)) as usize
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.snapshot().shutdown != 0
    }

    /// Copies `src` into the ring at logical offset `at`.
    fn write_at(&self, at: u64, src: &[u8]) {
        let cap = self.capacity();
        let start = (at % cap) as usize;
        let first = src.len().min(cap as usize - start);
        let (a, b) = src.split_at(first);
        // Both parts lie inside the data area (start < cap, and the split
        // keeps each within it). The lock keeps other processes' conex code
        // off these bytes; the copies are atomic anyway, so a peer that
        // breaks the protocol (or dies mid-copy) can garble bytes but not
        // cause undefined behaviour here.
        let mem = self.block.mem();
        mem.write(DATA + start, a);
        mem.write(DATA, b);
    }

    fn read_at(&self, at: u64, dst: &mut [u8]) {
        let cap = self.capacity();
        let start = (at % cap) as usize;
        let first = dst.len().min(cap as usize - start);
        let (a, b) = dst.split_at_mut(first);
        let mem = self.block.mem();
        mem.read(DATA + start, a);
        mem.read(DATA, b);
    }

    /// Whether a wait of `kind` has something to try, judged from the
    /// committed state without the lock.
    fn ready(&self, kind: Kind) -> bool {
        let s = self.snapshot();
        match kind {
            Kind::Get => s.count > 0 || s.shutdown != 0,
            Kind::Put(need) => {
                s.shutdown != 0
                    || (s.count < self.max_items()
                        && self.capacity().saturating_sub(used(&s)) >= need)
            }
        }
    }

    fn on(&self, kind: Kind) -> On<'_> {
        On::new(self.word(SELECTOR), self.word(kind.sleepers()))
            .bits(kind.bits())
            .slice(WAKE_SLICE)
    }

    /// Puts a record at once if it fits, taking the lock until `deadline`.
    fn try_put(&self, item: &[u8], deadline: Option<Instant>) -> Result<(), RingError> {
        let need = 4 + item.len() as u64;
        if need > self.capacity() {
            return Err(RingError::TooLarge(
                item.len(),
                self.capacity() as usize - 4,
            ));
        }
        let done = self.locked(deadline, |s| {
            if s.shutdown != 0 {
                return Err(RingError::ShutDown);
            }
            if s.count >= self.max_items() || self.capacity().saturating_sub(used(s)) < need {
                return Err(RingError::Full);
            }
            self.write_at(s.tail, &(item.len() as u32).to_le_bytes());
            self.write_at(s.tail + 4, item);
            s.tail += need;
            s.count += 1;
            s.puts += 1;
            Ok(())
        });
        let done = done.unwrap_or(Err(RingError::Full));
        if done.is_ok() && self.word(GET_SLEEPERS).load(SeqCst) > 0 {
            futex::wake_bits(self.word(SELECTOR), 1, GETTER);
        }
        done
    }

    /// Gets the head record at once if there is one, taking the lock until
    /// `deadline`.
    fn try_get(&self, deadline: Option<Instant>) -> Result<Vec<u8>, RingError> {
        let got = self.locked(deadline, |s| {
            if s.count == 0 {
                return Err(if s.shutdown != 0 {
                    RingError::ShutDown
                } else {
                    RingError::Empty
                });
            }
            let mut len = [0u8; 4];
            self.read_at(s.head, &mut len);
            let len = u64::from(u32::from_le_bytes(len));
            if 4 + len > used(s) {
                return Err(RingError::Corrupt);
            }
            let mut item = vec![0u8; len as usize];
            self.read_at(s.head + 4, &mut item);
            s.head += 4 + len;
            s.count -= 1;
            Ok(item)
        });
        let got = got.unwrap_or(Err(RingError::Empty));
        if got.is_ok() && self.word(PUT_SLEEPERS).load(SeqCst) > 0 {
            futex::wake_bits(self.word(SELECTOR), u32::MAX, PUTTER);
        }
        got
    }

    /// What an async wait of `kind` watches: the selector, with the
    /// kind's sleeper count and futex bits; every commit may concern it.
    fn spec(kind: Kind) -> watch::Spec {
        watch::Spec {
            word: SELECTOR,
            sleepers: kind.sleepers(),
            bits: kind.bits(),
            policy: watch::on_change,
        }
    }

    /// Puts a record: at once (`wait` false), or waiting for room until
    /// `deadline`; `cancel` stops the wait.
    pub(crate) fn put(
        &self,
        item: &[u8],
        wait: bool,
        deadline: Option<Instant>,
        cancel: Option<&AtomicBool>,
    ) -> Result<(), RingError> {
        if !wait {
            return self.try_put(item, None);
        }
        let kind = Kind::Put(4 + item.len() as u64);
        futex::wait_for(self.on(kind), deadline, cancel, |_| {
            if !self.ready(kind) {
                return Step::Blocked;
            }
            match self.try_put(item, deadline) {
                Err(RingError::Full) => Step::Blocked,
                r => Step::Done(r),
            }
        })
        .unwrap_or(Err(RingError::Full))
    }

    /// The async face of [`put`](Ring::put) (waiting), on this process's
    /// watch of the ring (one thread sleeps on the futex for every waiting
    /// task). The put itself runs in the future's poll, so a dropped
    /// future put nothing or everything.
    pub(crate) async fn put_async(
        &self,
        item: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), RingError> {
        match self.try_put(item, deadline) {
            Err(RingError::Full) => {}
            r => return r,
        }
        let kind = Kind::Put(4 + item.len() as u64);
        watch::wait(&self.block, Self::spec(kind), deadline, |_| {
            if !self.ready(kind) {
                return Step::Blocked;
            }
            match self.try_put(item, deadline) {
                Err(RingError::Full) => Step::Blocked,
                r => Step::Done(r),
            }
        })
        .await
        .unwrap_or(Err(RingError::Full))
    }

    /// Gets a record: at once (`wait` false), or waiting for one until
    /// `deadline`; `cancel` stops the wait.
    pub(crate) fn get(
        &self,
        wait: bool,
        deadline: Option<Instant>,
        cancel: Option<&AtomicBool>,
    ) -> Result<Vec<u8>, RingError> {
        if !wait {
            return self.try_get(None);
        }
        futex::wait_for(self.on(Kind::Get), deadline, cancel, |_| {
            if !self.ready(Kind::Get) {
                return Step::Blocked;
            }
            match self.try_get(deadline) {
                Err(RingError::Empty) => Step::Blocked,
                r => Step::Done(r),
            }
        })
        .unwrap_or(Err(RingError::Empty))
    }

    /// The async face of [`get`](Ring::get) (waiting), as
    /// [`put_async`](Ring::put_async). The get itself runs in the future's
    /// poll, so a dropped future took nothing (and passes its wake-up on).
    pub(crate) async fn get_async(&self, deadline: Option<Instant>) -> Result<Vec<u8>, RingError> {
        match self.try_get(deadline) {
            Err(RingError::Empty) => {}
            r => return r,
        }
        watch::wait(&self.block, Self::spec(Kind::Get), deadline, |_| {
            if !self.ready(Kind::Get) {
                return Step::Blocked;
            }
            match self.try_get(deadline) {
                Err(RingError::Empty) => Step::Blocked,
                r => Step::Done(r),
            }
        })
        .await
        .unwrap_or(Err(RingError::Empty))
    }

    /// One task done: false if none was unfinished.
    pub(crate) fn task_done(&self) -> bool {
        let done = self.block.u64(DONE);
        loop {
            let d = done.load(SeqCst);
            let s = self.snapshot();
            if (s.puts - s.dropped.min(s.puts)) <= d {
                return false;
            }
            if done.compare_exchange(d, d + 1, SeqCst, SeqCst).is_ok() {
                break;
            }
        }
        self.join_changed();
        true
    }

    /// Bumps the joiners' word; wakes them if nothing is unfinished.
    fn join_changed(&self) {
        let w = self.word(JOIN_GEN);
        w.fetch_add(1, SeqCst);
        if self.word(JOIN_SLEEPERS).load(SeqCst) > 0 && self.unfinished() == 0 {
            futex::wake(w, u32::MAX);
        }
    }

    /// Blocks until no task is unfinished (or `cancel`).
    pub(crate) fn join_blocking(&self, cancel: Option<&AtomicBool>) {
        let on = On::new(self.word(JOIN_GEN), self.word(JOIN_SLEEPERS)).slice(WAKE_SLICE);
        let _ = futex::wait_for(on, None, cancel, |_| {
            if self.unfinished() == 0 {
                Step::Done(())
            } else {
                Step::Blocked
            }
        });
    }

    /// Waits, as a task, until no task is unfinished, on this process's
    /// watch of the joiners' word. Takes nothing.
    pub(crate) async fn join_async(&self) {
        let spec = watch::Spec {
            word: JOIN_GEN,
            sleepers: JOIN_SLEEPERS,
            bits: futex::ALL,
            policy: watch::on_change,
        };
        watch::wait(&self.block, spec, None, |_| {
            if self.unfinished() == 0 {
                Step::Done(())
            } else {
                Step::Blocked
            }
        })
        .await;
    }

    /// Wakes every joiner.
    pub(crate) fn wake_joiners(&self) {
        futex::wake(self.word(JOIN_GEN), u32::MAX);
    }

    /// Shuts the queue down; `immediate` also drops what is queued (and
    /// counts it done).
    pub(crate) fn shutdown(&self, immediate: bool) {
        let _ = self.locked(None, |s| {
            s.shutdown = s.shutdown.max(1 + u64::from(immediate));
            if immediate {
                s.dropped += s.count;
                s.head = s.tail;
                s.count = 0;
            }
        });
        futex::wake(self.word(SELECTOR), u32::MAX);
        self.join_changed();
        self.wake_joiners();
    }
}
