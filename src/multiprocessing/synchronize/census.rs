//! Per-process counts in shared memory: who is waiting, by process, so
//! that the waits of a process that died can be told apart and taken out
//! ([`Condition`](super::Condition)'s sleepers, [`Barrier`](super::Barrier)'s
//! parties).
//!
//! A census is [`TRACKED`] slots, each a pid word and a 64-bit value
//! (whose meaning is its user's), plus one overflow slot shared by the
//! processes that found every slot taken (its counts are never taken out:
//! they are kept as CPython keeps all of them). A process claims a slot
//! (one CAS of its pid into a free one) the first time it counts something
//! and keeps it; every count is one atomic operation on its slot's value,
//! so a process killed at any instruction leaves its value exact. The
//! user reaps a dead process's slot (value first, then pid) and decides
//! what its counts meant.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

use super::block::Block;

/// Slots that are claimed by one process each.
pub(crate) const TRACKED: usize = 32;
/// Every slot, the overflow one last.
pub(crate) const SLOTS: usize = TRACKED + 1;
/// Bytes a census takes in its block (at an 8-aligned offset).
pub(crate) const LEN: usize = PIDS + SLOTS * 8;
/// Bytes of the pid words, padded to 8.
const PIDS: usize = (SLOTS * 4).div_ceil(8) * 8;

/// The census at byte `base` (8-aligned) of a block.
#[derive(Clone, Copy)]
pub(crate) struct Census<'a> {
    block: &'a Block,
    base: usize,
}

impl<'a> Census<'a> {
    pub(crate) fn at(block: &'a Block, base: usize) -> Census<'a> {
        Census { block, base }
    }

    fn pid(&self, i: usize) -> &'a AtomicU32 {
        self.block.u32(self.base + 4 * i)
    }

    /// Slot `i`'s value.
    pub(crate) fn value(&self, i: usize) -> &'a AtomicU64 {
        self.block.u64(self.base + PIDS + 8 * i)
    }

    /// This process's slot, claimed if need be (reaping the empty slots of
    /// dead processes when none is free); the overflow slot when every
    /// slot is a live process's.
    pub(crate) fn mine(&self) -> usize {
        let me = crate::sys::pid();
        if let Some(i) = (0..TRACKED).find(|&i| self.pid(i).load(SeqCst) == me) {
            return i;
        }
        for pass in 0..2 {
            for i in 0..TRACKED {
                if self.pid(i).compare_exchange(0, me, SeqCst, SeqCst).is_ok() {
                    return i;
                }
            }
            if pass == 0 {
                for i in self.dead() {
                    if self.value(i).load(SeqCst) == 0 {
                        self.reap(i);
                    }
                }
            }
        }
        TRACKED
    }

    /// The tracked slots of processes that no longer run.
    pub(crate) fn dead(&self) -> impl Iterator<Item = usize> + 'a {
        let c = *self;
        let me = crate::sys::pid();
        (0..TRACKED).filter(move |&i| {
            let pid = c.pid(i).load(SeqCst);
            pid != 0 && pid != me && !crate::sys::pid_running(pid)
        })
    }

    /// Empties dead slot `i` and frees it; returns the value it held.
    pub(crate) fn reap(&self, i: usize) -> u64 {
        let pid = self.pid(i).load(SeqCst);
        let v = self.value(i).swap(0, SeqCst);
        let _ = self.pid(i).compare_exchange(pid, 0, SeqCst, SeqCst);
        v
    }

    /// The sum of `f` over every slot's value.
    pub(crate) fn sum(&self, f: impl Fn(u64) -> u64) -> u64 {
        (0..SLOTS).map(|i| f(self.value(i).load(SeqCst))).sum()
    }
}
