//! The synchronization primitives: `Lock`, `RLock`, `Semaphore`,
//! `BoundedSemaphore`, `Condition`, `Event`, `Barrier` and their proxies.

use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::super::client::{BaseProxy, Proxy, arg};
use super::super::protocol::ManagerError;
use super::super::server::{Caller, Served, decode_arg as a, encode_result as ok};
use super::{acquire_with, err, no_method, release_error};
use crate::multiprocessing::errors::RemoteError;
use crate::threading::{self};

// ------------------------------------------------------ Lock and RLock

pub(super) struct LockObj {
    pub(super) lock: threading::Lock,
    /// The connection that holds it (to release it if that client dies).
    pub(super) holder: Mutex<Option<u64>>,
}

impl Served for LockObj {
    fn call(&self, cx: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let l = self.lock.blocking();
        match method {
            "acquire" => {
                let got = acquire_with(
                    args,
                    || l.try_acquire(),
                    || l.acquire(),
                    |t| l.acquire_timeout(t),
                )?;
                if got {
                    *self.holder.lock() = Some(cx.conn);
                }
                ok(&got)
            }
            "release" => {
                let mut h = self.holder.lock();
                l.release().map_err(release_error)?;
                *h = None;
                ok(&())
            }
            "locked" => ok(&l.locked()),
            _ => Err(no_method("Lock", method)),
        }
    }

    fn disconnected(&self, cx: Caller) {
        let mut h = self.holder.lock();
        if *h == Some(cx.conn) {
            *h = None;
            let _ = self.lock.release();
        }
    }
}

/// Releases every level the calling (server) thread holds of `r`.
fn release_all(r: &threading::RLock) {
    while r.is_owned() {
        if r.release().is_err() {
            break;
        }
    }
}

pub(super) struct RLockObj(pub(super) threading::RLock);

/// RLock-like calls on the server thread of the calling connection (each
/// client thread has its own connection, so ownership is per client
/// thread, as Python's).
fn rlock_call(
    r: &threading::RLock,
    typeid: &str,
    method: &str,
    args: &[Vec<u8>],
) -> Option<Result<Vec<u8>, RemoteError>> {
    let b = r.blocking();
    Some(match method {
        "acquire" => acquire_with(
            args,
            || b.try_acquire(),
            || b.acquire(),
            |t| b.acquire_timeout(t),
        )
        .and_then(|got| ok(&got)),
        "release" => b.release().map_err(release_error).and_then(|()| ok(&())),
        "locked" => ok(&b.locked()),
        _ => {
            let _ = typeid;
            return None;
        }
    })
}

impl Served for RLockObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        rlock_call(&self.0, "RLock", method, args)
            .unwrap_or_else(|| Err(no_method("RLock", method)))
    }

    fn disconnected(&self, _: Caller) {
        release_all(&self.0);
    }
}

/// A proxy to a lock (`Lock` or `RLock`) in a manager.
///
/// Python: `SyncManager.Lock()` / `RLock()` (an `AcquirerProxy`). A lock
/// whose holder disconnects (its process died, or dropped the connection)
/// is released by the server: a dead client never leaves it taken.
pub struct LockProxy {
    base: BaseProxy,
}

proxy_type!(LockProxy);

/// `acquire` / `release` of the lock-like proxies.
macro_rules! acquirer {
    ($name:ident) => {
        impl $name {
            /// `acquire()`: waits for it.
            ///
            /// # Errors
            /// [`ManagerError::Connection`] if the server is gone.
            pub fn acquire(&self) -> Result<(), ManagerError> {
                self.base
                    .call::<bool>("acquire", vec![arg(&true), arg(&None::<Duration>)])
                    .map(|_| ())
            }

            /// `acquire(blocking=False)`: whether it was taken.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn try_acquire(&self) -> Result<bool, ManagerError> {
                self.base
                    .call("acquire", vec![arg(&false), arg(&None::<Duration>)])
            }

            /// `acquire(timeout=t)`: whether it was taken in time.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
                self.base
                    .call("acquire", vec![arg(&true), arg(&Some(timeout))])
            }

            /// `release()`.
            ///
            /// # Errors
            /// A remote `RuntimeError` if not held (`ValueError` for a
            /// bounded semaphore released too often).
            pub fn release(&self) -> Result<(), ManagerError> {
                self.base.call("release", vec![])
            }
        }
    };
}

acquirer!(LockProxy);

impl LockProxy {
    /// `locked()`.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub fn locked(&self) -> Result<bool, ManagerError> {
        self.base.call("locked", vec![])
    }
}

// ------------------------------------------------------------ Semaphore

pub(super) struct SemaphoreObj(pub(super) threading::Semaphore);
pub(super) struct BoundedObj(pub(super) threading::BoundedSemaphore);

fn semaphore_call(
    s: &threading::Semaphore,
    typeid: &str,
    method: &str,
    args: &[Vec<u8>],
) -> Result<Vec<u8>, RemoteError> {
    let b = s.blocking();
    match method {
        "acquire" => acquire_with(
            args,
            || b.try_acquire(),
            || b.acquire(),
            |t| b.acquire_timeout(t),
        )
        .and_then(|got| ok(&got)),
        "release" => {
            let n: usize = if args.is_empty() { 1 } else { a(args, 0)? };
            b.release(n).map_err(release_error).and_then(|()| ok(&()))
        }
        "value" => ok(&b.value()),
        _ => Err(no_method(typeid, method)),
    }
}

impl Served for SemaphoreObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        semaphore_call(&self.0, "Semaphore", method, args)
    }
}

impl Served for BoundedObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        semaphore_call(&self.0, "BoundedSemaphore", method, args)
    }
}

/// A proxy to a semaphore (or bounded semaphore) in a manager.
///
/// Python: `SyncManager.Semaphore(value)` / `BoundedSemaphore(value)`.
/// Permits are not tied to who took them: a client that dies holding some
/// does not give them back (semaphores are often released by another
/// party).
pub struct SemaphoreProxy {
    base: BaseProxy,
}

proxy_type!(SemaphoreProxy);
acquirer!(SemaphoreProxy);

impl SemaphoreProxy {
    /// `release(n)`.
    ///
    /// # Errors
    /// A remote `ValueError` if a bounded semaphore would go above its
    /// initial value.
    pub fn release_n(&self, n: usize) -> Result<(), ManagerError> {
        self.base.call("release", vec![arg(&n)])
    }

    /// The number of permits now.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn value(&self) -> Result<usize, ManagerError> {
        self.base.call("value", vec![])
    }
}

// ------------------------------------------------------------ Condition

pub(super) struct ConditionObj(pub(super) threading::Condition<threading::RLock>);

impl Served for ConditionObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let lock = self.0.underlying_lock();
        if let Some(r) = rlock_call(lock, "Condition", method, args) {
            return r;
        }
        let not_owned = |e: threading::NotOwned| err("RuntimeError", e.to_string());
        match method {
            "wait" => {
                let timeout: Option<Duration> = a(args, 0)?;
                // The level this thread holds, as a guard for the wait,
                // kept (not released) afterwards: the client releases it.
                // Not held: the wait's own check refuses, lock untouched.
                let guard = threading::RLockGuard { rlock: lock };
                let (guard, notified) = match timeout {
                    None => (self.0.blocking().wait(guard).map_err(not_owned)?, true),
                    Some(t) => self
                        .0
                        .blocking()
                        .wait_timeout(guard, t)
                        .map_err(not_owned)?,
                };
                std::mem::forget(guard);
                ok(&notified)
            }
            "notify" => {
                let n: usize = a(args, 0)?;
                self.0.notify(n).map_err(not_owned).and_then(|()| ok(&()))
            }
            "notify_all" => self
                .0
                .notify_all()
                .map_err(not_owned)
                .and_then(|()| ok(&())),
            _ => Err(no_method("Condition", method)),
        }
    }

    fn disconnected(&self, _: Caller) {
        release_all(self.0.underlying_lock());
    }
}

/// A proxy to a condition variable (over an `RLock`) in a manager.
///
/// Python: `SyncManager.Condition()`. `wait` needs the lock held by the
/// calling thread ([`acquire`](ConditionProxy::acquire) first), as
/// Python's; its predicate form cannot cross (a closure), so loop on
/// [`wait`](ConditionProxy::wait) instead.
pub struct ConditionProxy {
    base: BaseProxy,
}

proxy_type!(ConditionProxy);
acquirer!(ConditionProxy);

impl ConditionProxy {
    /// `wait(timeout)`: releases the lock, waits for a notification (or
    /// the timeout), takes the lock again; whether it was notified.
    ///
    /// # Errors
    /// A remote `RuntimeError` if the lock is not held.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        self.base.call("wait", vec![arg(&timeout)])
    }

    /// `notify(n)`.
    ///
    /// # Errors
    /// A remote `RuntimeError` if the lock is not held.
    pub fn notify(&self, n: usize) -> Result<(), ManagerError> {
        self.base.call("notify", vec![arg(&n)])
    }

    /// `notify_all()`.
    ///
    /// # Errors
    /// As [`notify`](ConditionProxy::notify).
    pub fn notify_all(&self) -> Result<(), ManagerError> {
        self.base.call("notify_all", vec![])
    }
}

// ---------------------------------------------------------------- Event

pub(super) struct EventObj(pub(super) threading::Event);

impl Served for EventObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let e = self.0.blocking();
        match method {
            "set" => {
                e.set();
                ok(&())
            }
            "clear" => {
                e.clear();
                ok(&())
            }
            "is_set" => ok(&e.is_set()),
            "wait" => {
                let timeout: Option<Duration> = a(args, 0)?;
                ok(&match timeout {
                    None => {
                        e.wait();
                        true
                    }
                    Some(t) => e.wait_timeout(t),
                })
            }
            _ => Err(no_method("Event", method)),
        }
    }
}

/// A proxy to an event in a manager.
///
/// Python: `SyncManager.Event()` (an `EventProxy`).
pub struct EventProxy {
    base: BaseProxy,
}

proxy_type!(EventProxy);

impl EventProxy {
    /// `set()`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn set(&self) -> Result<(), ManagerError> {
        self.base.call("set", vec![])
    }

    /// `clear()`.
    ///
    /// # Errors
    /// As [`set`](EventProxy::set).
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.base.call("clear", vec![])
    }

    /// `is_set()`.
    ///
    /// # Errors
    /// As [`set`](EventProxy::set).
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        self.base.call("is_set", vec![])
    }

    /// `wait(timeout)`: whether it is set.
    ///
    /// # Errors
    /// As [`set`](EventProxy::set).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        self.base.call("wait", vec![arg(&timeout)])
    }
}

// -------------------------------------------------------------- Barrier

pub(super) struct BarrierObj(pub(super) threading::Barrier);

impl Served for BarrierObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let b = self.0.blocking();
        let broken = |_| err("BrokenBarrierError", "the barrier is broken");
        match method {
            "wait" => {
                let timeout: Option<Duration> = a(args, 0)?;
                let r = match timeout {
                    None => b.wait(),
                    Some(t) => b.wait_timeout(t),
                };
                r.map_err(broken).and_then(|i| ok(&i))
            }
            "reset" => {
                self.0.reset();
                ok(&())
            }
            "abort" => {
                self.0.abort();
                ok(&())
            }
            "parties" => ok(&self.0.parties()),
            "n_waiting" => ok(&self.0.n_waiting()),
            "broken" => ok(&self.0.broken()),
            _ => Err(no_method("Barrier", method)),
        }
    }
}

/// A proxy to a barrier in a manager.
///
/// Python: `SyncManager.Barrier(parties, timeout)` (without `action`: a
/// closure cannot cross).
pub struct BarrierProxy {
    base: BaseProxy,
}

proxy_type!(BarrierProxy);

impl BarrierProxy {
    /// `wait(timeout)`: this party's index.
    ///
    /// # Errors
    /// A remote `BrokenBarrierError` if the barrier breaks (a timeout, an
    /// abort, a reset).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<usize, ManagerError> {
        self.base.call("wait", vec![arg(&timeout)])
    }

    /// `reset()`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.base.call("reset", vec![])
    }

    /// `abort()`.
    ///
    /// # Errors
    /// As [`reset`](BarrierProxy::reset).
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.base.call("abort", vec![])
    }

    /// `parties`.
    ///
    /// # Errors
    /// As [`reset`](BarrierProxy::reset).
    pub fn parties(&self) -> Result<usize, ManagerError> {
        self.base.call("parties", vec![])
    }

    /// `n_waiting`.
    ///
    /// # Errors
    /// As [`reset`](BarrierProxy::reset).
    pub fn n_waiting(&self) -> Result<usize, ManagerError> {
        self.base.call("n_waiting", vec![])
    }

    /// `broken`.
    ///
    /// # Errors
    /// As [`reset`](BarrierProxy::reset).
    pub fn broken(&self) -> Result<bool, ManagerError> {
        self.base.call("broken", vec![])
    }
}
