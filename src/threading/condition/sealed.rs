//! The workings of `ConditionLock`: public items of a private module.

use super::{Lock, RLock};

/// Which lock a condition is built on.
#[derive(Clone, Copy, Debug)]
pub enum LockKind<'a> {
    Plain(&'a Lock),
    Reentrant(&'a RLock),
}

pub trait Sealed {
    fn kind(&self) -> LockKind<'_>;
}

/// A guard of lock `L`: the lock it came from, and a guard made for a
/// lock the caller has just acquired.
pub trait GuardOf<'a, L: ?Sized> {
    fn source(&self) -> &'a L;
    fn make(lock: &'a L) -> Self;
}

impl Sealed for Lock {
    fn kind(&self) -> LockKind<'_> {
        LockKind::Plain(self)
    }
}

impl Sealed for RLock {
    fn kind(&self) -> LockKind<'_> {
        LockKind::Reentrant(self)
    }
}

impl<'a> GuardOf<'a, Lock> for crate::threading::LockGuard<'a> {
    fn source(&self) -> &'a Lock {
        self.lock
    }
    fn make(lock: &'a Lock) -> Self {
        crate::threading::LockGuard { lock }
    }
}

impl<'a> GuardOf<'a, RLock> for crate::threading::RLockGuard<'a> {
    fn source(&self) -> &'a RLock {
        self.rlock
    }
    fn make(rlock: &'a RLock) -> Self {
        crate::threading::RLockGuard { rlock }
    }
}
