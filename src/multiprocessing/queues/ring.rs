//! The shared core of the cross-process queues: a byte ring in one shared
//! block, with the queue's counters, three semaphores of the one wait
//! core (the lock, the items, the free slots) and two futex words (free
//! bytes, unfinished tasks).
//!
//! An item is a record `[len: u32][postcard bytes]` written at the tail
//! and read at the head, wrapping around. `put` takes a slot (the
//! maxsize bound), then the lock, waits for bytes if the ring is short of
//! them, writes, and releases one item; `get` takes an item, then the
//! lock, reads, and gives the slot and the bytes back. An item is in
//! shared memory when `put` returns: a producer that exits right after
//! loses nothing (there is no feeder thread, unlike Python's).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Instant;

use crate::multiprocessing::synchronize::Block;
use crate::multiprocessing::synchronize::futex;
use crate::multiprocessing::synchronize::sem::Sem;

const LOCK: usize = 0;
const ITEMS: usize = 16;
const SLOTS: usize = 32;
const UNFINISHED: usize = 48;
const JOIN_SLEEPERS: usize = 52;
const SHUTDOWN: usize = 56;
const SPACE: usize = 60;
const SPACE_SLEEPERS: usize = 64;
const HEAD: usize = 72;
const TAIL: usize = 80;
const CAPACITY: usize = 88;
const MAXSIZE: usize = 96;
const COUNT: usize = 104;
const DATA: usize = 128;

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
}

#[derive(Clone)]
pub(crate) struct Ring {
    pub(crate) block: Arc<Block>,
}

fn sem(block: &Arc<Block>, base: usize) -> Sem {
    Sem {
        block: block.clone(),
        base,
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
        Sem::init(block.clone(), LOCK, 1, 1);
        Sem::init(block.clone(), ITEMS, 0, MAX_ITEMS as u32);
        Sem::init(block.clone(), SLOTS, maxsize as u32, maxsize as u32);
        block.u64(CAPACITY).store(capacity as u64, SeqCst);
        block.u64(MAXSIZE).store(maxsize as u64, SeqCst);
        Ok(Ring { block })
    }

    /// Checks a block that arrived from another process.
    pub(crate) fn from_block(block: Block) -> Result<Ring, String> {
        let cap = block.u64(CAPACITY).load(SeqCst) as usize;
        if cap == 0 || DATA.saturating_add(cap) > block.len() {
            return Err("not a conex queue".into());
        }
        Ok(Ring {
            block: Arc::new(block),
        })
    }

    fn capacity(&self) -> u64 {
        self.block.u64(CAPACITY).load(SeqCst)
    }

    pub(crate) fn maxsize(&self) -> usize {
        match self.block.u64(MAXSIZE).load(SeqCst) as usize {
            MAX_ITEMS => 0,
            m => m,
        }
    }

    pub(crate) fn qsize(&self) -> usize {
        self.block.u64(COUNT).load(SeqCst) as usize
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.block.u32(UNFINISHED).load(SeqCst) as usize
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.block.u32(SHUTDOWN).load(SeqCst) != 0
    }

    fn lock(&self) {
        sem(&self.block, LOCK).acquire_blocking(None, None);
    }

    fn unlock(&self) {
        let _ = sem(&self.block, LOCK).release(1);
    }

    /// Copies `src` into the ring at logical offset `at`.
    fn write_at(&self, at: u64, src: &[u8]) {
        let cap = self.capacity();
        let start = (at % cap) as usize;
        let first = src.len().min(cap as usize - start);
        let (a, b) = src.split_at(first);
        // SAFETY: both ranges lie inside the data area (start < cap, and
        // the split keeps each part within it) of the live block. The lock
        // keeps other processes' conex code off these bytes; the copies are
        // atomic anyway, so a peer that breaks the protocol (or dies
        // mid-copy) can garble bytes but not cause undefined behaviour here.
        unsafe {
            let data = self.block.ptr().add(DATA);
            crate::multiprocessing::shm_copy::copy_in(a, data.add(start));
            crate::multiprocessing::shm_copy::copy_in(b, data);
        }
    }

    fn read_at(&self, at: u64, dst: &mut [u8]) {
        let cap = self.capacity();
        let start = (at % cap) as usize;
        let first = dst.len().min(cap as usize - start);
        let (a, b) = dst.split_at_mut(first);
        // SAFETY: as in `write_at`.
        unsafe {
            let data = self.block.ptr().add(DATA);
            crate::multiprocessing::shm_copy::copy_out(data.add(start), a);
            crate::multiprocessing::shm_copy::copy_out(data, b);
        }
    }

    /// Takes a free slot: waits (until `deadline`, or not at all when
    /// `wait` is false); in a task, `cancel`-able.
    pub(crate) fn take_slot(
        &self,
        wait: bool,
        deadline: Option<Instant>,
        cancel: Option<&AtomicBool>,
    ) -> Result<(), RingError> {
        if self.is_shutdown() {
            return Err(RingError::ShutDown);
        }
        let slots = sem(&self.block, SLOTS);
        let got = if wait {
            slots.acquire_blocking_stop(deadline, cancel, Some(SHUTDOWN))
        } else {
            slots.try_acquire()
        };
        if self.is_shutdown() {
            if got {
                let _ = slots.release(1);
            }
            return Err(RingError::ShutDown);
        }
        if got { Ok(()) } else { Err(RingError::Full) }
    }

    /// Async [`take_slot`](Ring::take_slot) (waiting).
    pub(crate) async fn take_slot_async(&self, deadline: Option<Instant>) -> Result<(), RingError> {
        if self.is_shutdown() {
            return Err(RingError::ShutDown);
        }
        let slots = sem(&self.block, SLOTS);
        let got = slots.acquire_async_stop(deadline, Some(SHUTDOWN)).await;
        if self.is_shutdown() {
            if got {
                let _ = slots.release(1);
            }
            return Err(RingError::ShutDown);
        }
        if got { Ok(()) } else { Err(RingError::Full) }
    }

    /// Gives back a slot taken for an item that was not written.
    pub(crate) fn return_slot(&self) {
        let _ = sem(&self.block, SLOTS).release(1);
    }

    /// Writes an item (its slot already taken), waiting for ring bytes
    /// until `deadline`. On an error the slot is given back.
    pub(crate) fn write(&self, item: &[u8], deadline: Option<Instant>) -> Result<(), RingError> {
        let need = 4 + item.len() as u64;
        if need > self.capacity() {
            self.return_slot();
            return Err(RingError::TooLarge(
                item.len(),
                self.capacity() as usize - 4,
            ));
        }
        // Under the lock: write if the ring has the bytes; otherwise sleep
        // until a get frees some (it bumps the SPACE word).
        let done = futex::wait_for(
            self.block.u32(SPACE),
            self.block.u32(SPACE_SLEEPERS),
            deadline,
            None,
            |_| {
                self.lock();
                if self.is_shutdown() {
                    self.unlock();
                    return futex::Step::Done(Err(RingError::ShutDown));
                }
                let (head, tail) = (
                    self.block.u64(HEAD).load(SeqCst),
                    self.block.u64(TAIL).load(SeqCst),
                );
                if self.capacity() - (tail - head) < need {
                    // SPACE only grows: the value shown is a generation,
                    // and any get since it was read changes it.
                    self.unlock();
                    return futex::Step::Blocked;
                }
                self.write_at(tail, &(item.len() as u32).to_le_bytes());
                self.write_at(tail + 4, item);
                self.block.u64(TAIL).store(tail + need, SeqCst);
                self.block.u64(COUNT).fetch_add(1, SeqCst);
                self.block.u32(UNFINISHED).fetch_add(1, SeqCst);
                self.unlock();
                futex::Step::Done(Ok(()))
            },
        );
        match done {
            Some(Ok(())) => {
                let _ = sem(&self.block, ITEMS).release(1);
                Ok(())
            }
            Some(Err(e)) => {
                self.return_slot();
                Err(e)
            }
            None => {
                self.return_slot();
                Err(RingError::Full)
            }
        }
    }

    /// Takes an item permit: waits (until `deadline`, or not at all).
    pub(crate) fn take_item(
        &self,
        wait: bool,
        deadline: Option<Instant>,
        cancel: Option<&AtomicBool>,
    ) -> Result<(), RingError> {
        let items = sem(&self.block, ITEMS);
        let got = if wait {
            items.acquire_blocking_stop(deadline, cancel, Some(SHUTDOWN))
        } else {
            items.try_acquire()
        };
        match got {
            true => Ok(()),
            // Shut down: what is queued is still got, then ShutDown.
            false if self.is_shutdown() => {
                if items.try_acquire() {
                    Ok(())
                } else {
                    Err(RingError::ShutDown)
                }
            }
            false => Err(RingError::Empty),
        }
    }

    /// Async [`take_item`](Ring::take_item) (waiting).
    pub(crate) async fn take_item_async(&self, deadline: Option<Instant>) -> Result<(), RingError> {
        let items = sem(&self.block, ITEMS);
        if items.acquire_async_stop(deadline, Some(SHUTDOWN)).await {
            return Ok(());
        }
        if self.is_shutdown() {
            if items.try_acquire() {
                Ok(())
            } else {
                Err(RingError::ShutDown)
            }
        } else {
            Err(RingError::Empty)
        }
    }

    /// Reads the head item (its permit already taken).
    pub(crate) fn read(&self) -> Result<Vec<u8>, RingError> {
        self.lock();
        if self.qsize() == 0 {
            // Drained by an immediate shutdown after the permit was taken.
            self.unlock();
            return Err(RingError::ShutDown);
        }
        let head = self.block.u64(HEAD).load(SeqCst);
        let mut len = [0u8; 4];
        self.read_at(head, &mut len);
        let len = u32::from_le_bytes(len) as usize;
        let mut item = vec![0u8; len];
        self.read_at(head + 4, &mut item);
        self.block.u64(HEAD).store(head + 4 + len as u64, SeqCst);
        self.block.u64(COUNT).fetch_sub(1, SeqCst);
        self.unlock();
        self.space_freed();
        let _ = sem(&self.block, SLOTS).release(1);
        Ok(item)
    }

    fn space_freed(&self) {
        let word = self.block.u32(SPACE);
        word.fetch_add(1, SeqCst);
        if self.block.u32(SPACE_SLEEPERS).load(SeqCst) > 0 {
            futex::wake(word, u32::MAX);
        }
    }

    /// One task done: false if none was unfinished.
    pub(crate) fn task_done(&self) -> bool {
        let w = self.block.u32(UNFINISHED);
        let mut cur = w.load(SeqCst);
        loop {
            if cur == 0 {
                return false;
            }
            match w.compare_exchange_weak(cur, cur - 1, SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur == 1 && self.block.u32(JOIN_SLEEPERS).load(SeqCst) > 0 {
            futex::wake(w, u32::MAX);
        }
        true
    }

    /// Blocks until no task is unfinished (or `cancel`).
    pub(crate) fn join_blocking(&self, cancel: Option<&AtomicBool>) {
        let _ = futex::wait_for(
            self.unfinished_word(),
            self.block.u32(JOIN_SLEEPERS),
            None,
            cancel,
            |v| {
                if v == 0 {
                    futex::Step::Done(())
                } else {
                    futex::Step::Blocked
                }
            },
        );
    }

    pub(crate) fn unfinished_word(&self) -> &std::sync::atomic::AtomicU32 {
        self.block.u32(UNFINISHED)
    }

    /// Shuts the queue down; `immediate` also drops what is queued.
    pub(crate) fn shutdown(&self, immediate: bool) {
        self.lock();
        self.block
            .u32(SHUTDOWN)
            .store(1 + u32::from(immediate), SeqCst);
        if immediate {
            let n = self.qsize() as u32;
            let tail = self.block.u64(TAIL).load(SeqCst);
            self.block.u64(HEAD).store(tail, SeqCst);
            self.block.u64(COUNT).store(0, SeqCst);
            sem(&self.block, ITEMS).set_value(0);
            let u = self.block.u32(UNFINISHED);
            let left = u.load(SeqCst).saturating_sub(n);
            u.store(left, SeqCst);
            if n > 0 {
                let _ = sem(&self.block, SLOTS).release(n);
            }
        }
        self.unlock();
        sem(&self.block, ITEMS).wake_all();
        sem(&self.block, SLOTS).wake_all();
        futex::wake(self.block.u32(UNFINISHED), u32::MAX);
        self.space_freed();
    }
}
