//! The synchronization primitives: `Lock`, `RLock`, `Semaphore`,
//! `BoundedSemaphore`, `Condition`, `Event`, `Barrier` and their proxies.
//!
//! In the server, a lock belongs to a caller: a connection (a client
//! process) and the task or thread in it that asked. Waits run as tasks
//! of the server (their connection goes on serving the client's other
//! calls), and end early when the caller cancels.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Either, select};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::super::client::{BaseProxy, Proxy, Undo, arg};
use super::super::protocol::ManagerError;
use super::super::server::{Caller, Outcome, Served, decode_arg as a, encode_result as ok};
use super::{err, no_method, release_error};
use crate::multiprocessing::errors::RemoteError;
use crate::threading;

/// Python's `(blocking, timeout)` of an acquire or a wait: `None` for
/// "do not wait", else the timeout (`Some(None)`: wait for good).
fn blocking_timeout(args: &[Vec<u8>]) -> Result<Option<Option<Duration>>, RemoteError> {
    let blocking: bool = a(args, 0)?;
    let timeout: Option<Duration> = a(args, 1)?;
    Ok(blocking.then_some(timeout))
}

/// Runs `fut` as a wait of the server, its result encoded.
fn later<T: Serialize>(
    fut: impl Future<Output = Result<T, RemoteError>> + Send + 'static,
) -> Outcome {
    Outcome::Later(async move { ok(&fut.await?) }.boxed())
}

/// Waits for `fut`, or for good with no timeout; `None` on timeout.
async fn within<F: Future>(timeout: Option<Duration>, fut: F) -> Option<F::Output> {
    match timeout {
        None => Some(fut.await),
        Some(t) => tokio::time::timeout(t, fut).await.ok(),
    }
}

// ------------------------------------------------------ Lock and RLock

/// Who holds a lock: the connection and the task or thread in it.
type Who = (u64, u64);

fn who(cx: &Caller) -> Who {
    (cx.conn, cx.owner)
}

/// A lock of the server owned by a caller: `Lock` (any caller may
/// release it, as Python's) or `RLock` (the owner only, once per level).
pub(super) struct Owned {
    lock: threading::Lock,
    /// The holder and its depth.
    state: Mutex<(Option<Who>, usize)>,
    reentrant: bool,
}

impl Owned {
    pub(super) fn new(reentrant: bool) -> Owned {
        Owned {
            lock: threading::Lock::new(),
            state: Mutex::new((None, 0)),
            reentrant,
        }
    }

    fn try_take(&self, w: Who) -> bool {
        let mut st = self.state.lock();
        if self.reentrant && st.0 == Some(w) {
            st.1 += 1;
            return true;
        }
        if self.lock.try_acquire() {
            *st = (Some(w), 1);
            return true;
        }
        false
    }

    /// Takes it for `w`, waiting at most `timeout`; whether it did.
    async fn take(&self, w: Who, timeout: Option<Duration>) -> bool {
        if self.try_take(w) {
            return true;
        }
        let got = match timeout {
            None => {
                self.lock.acquire().await;
                true
            }
            Some(t) => self.lock.acquire_timeout(t).await,
        };
        if got {
            // In the same poll as the acquire: a cancel cannot come between.
            *self.state.lock() = (Some(w), 1);
        }
        got
    }

    fn release(&self, w: Who) -> Result<(), RemoteError> {
        let mut st = self.state.lock();
        if self.reentrant {
            if st.0 != Some(w) {
                return Err(err("RuntimeError", "cannot release un-acquired lock"));
            }
            st.1 -= 1;
            if st.1 > 0 {
                return Ok(());
            }
        }
        self.lock.release().map_err(release_error)?;
        *st = (None, 0);
        Ok(())
    }

    fn owned_by(&self, w: Who) -> bool {
        self.state.lock().0 == Some(w)
    }

    /// Releases every level `w` holds; the depth, to restore.
    fn release_all(&self, w: Who) -> usize {
        let mut st = self.state.lock();
        let depth = st.1;
        *st = (None, 0);
        let _ = self.lock.release();
        let _ = w;
        depth
    }

    fn disconnected(&self, conn: u64) {
        let mut st = self.state.lock();
        if st.0.is_some_and(|w| w.0 == conn) {
            *st = (None, 0);
            let _ = self.lock.release();
        }
    }

    /// The acquire, release and locked calls of a lock-like object.
    fn start(self: Arc<Self>, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Option<Outcome> {
        let w = who(cx);
        Some(match method {
            "acquire" => match blocking_timeout(args) {
                Err(e) => Outcome::Now(Err(e)),
                Ok(None) => Outcome::Now(ok(&self.try_take(w))),
                Ok(Some(_)) if self.try_take(w) => Outcome::Now(ok(&true)),
                Ok(Some(timeout)) => later(async move { Ok(self.take(w, timeout).await) }),
            },
            "release" => Outcome::Now(self.release(w).and_then(|()| ok(&()))),
            "locked" => Outcome::Now(ok(&self.lock.locked())),
            _ => return None,
        })
    }
}

pub(super) struct LockObj(pub(super) Arc<Owned>);

impl Served for LockObj {
    fn call(&self, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        match self.0.clone().start(cx, method, args) {
            Some(Outcome::Now(r)) => r,
            Some(_) => Err(err("RuntimeError", "a wait outside a connection")),
            None => Err(no_method(
                if self.0.reentrant { "RLock" } else { "Lock" },
                method,
            )),
        }
    }

    fn start(self: Arc<Self>, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        let kind = if self.0.reentrant { "RLock" } else { "Lock" };
        self.0
            .clone()
            .start(cx, method, args)
            .unwrap_or_else(|| Outcome::Now(Err(no_method(kind, method))))
    }

    fn disconnected(&self, conn: u64) {
        self.0.disconnected(conn);
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
        dual! {
            impl[] $name {
                /// `acquire()`: waits for it.
                ///
                /// # Errors
                /// [`ManagerError::Connection`] if the server is gone.
                ///
                /// # Cancel safety
                /// Dropped before it returns, it takes nothing: the wait in
                /// the server stops, and a lock it had already taken is
                /// released.
                pub async fn acquire(&self) -> Result<(), ManagerError> {
                    self.base
                        .call_undo::<bool>(
                            "acquire",
                            vec![arg(&true), arg(&None::<Duration>)],
                            Undo::Release,
                        )
                        .await
                        .map(|_| ())
                }

                /// `acquire(blocking=False)`: whether it was taken.
                ///
                /// # Errors
                /// As [`acquire`](Self::acquire).
                pub async fn try_acquire(&self) -> Result<bool, ManagerError> {
                    self.base
                        .call_undo(
                            "acquire",
                            vec![arg(&false), arg(&None::<Duration>)],
                            Undo::Release,
                        )
                        .await
                }

                /// `acquire(timeout=t)`: whether it was taken in time.
                ///
                /// # Errors
                /// As [`acquire`](Self::acquire).
                ///
                /// # Cancel safety
                /// As [`acquire`](Self::acquire).
                pub async fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
                    self.base
                        .call_undo(
                            "acquire",
                            vec![arg(&true), arg(&Some(timeout))],
                            Undo::Release,
                        )
                        .await
                }

                /// `release()`.
                ///
                /// # Errors
                /// A remote `RuntimeError` if not held (`ValueError` for a
                /// bounded semaphore released too often).
                pub async fn release(&self) -> Result<(), ManagerError> {
                    self.base.call("release", vec![]).await
                }
            }
        }
    };
}

acquirer!(LockProxy);

dual! {
    impl[] LockProxy {
        /// `locked()`.
        ///
        /// # Errors
        /// As [`acquire`](Self::acquire).
        pub async fn locked(&self) -> Result<bool, ManagerError> {
            self.base.call("locked", vec![]).await
        }
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
    match method {
        "acquire" => ok(&s.try_acquire()),
        "release" => {
            let n: usize = if args.is_empty() { 1 } else { a(args, 0)? };
            s.release(n).map_err(release_error).and_then(|()| ok(&()))
        }
        "value" => ok(&s.value()),
        _ => Err(no_method(typeid, method)),
    }
}

/// A semaphore's acquire that may wait, as a wait of the server.
fn semaphore_start(
    s: &threading::Semaphore,
    take: impl FnOnce(Option<Duration>) -> BoxFuture<'static, bool>,
    typeid: &str,
    method: &str,
    args: &[Vec<u8>],
) -> Outcome {
    if method == "acquire" {
        match blocking_timeout(args) {
            Err(e) => return Outcome::Now(Err(e)),
            Ok(Some(timeout)) if !s.try_acquire() => {
                let f = take(timeout);
                return later(async move { Ok(f.await) });
            }
            Ok(Some(_)) => return Outcome::Now(ok(&true)),
            Ok(None) => {}
        }
    }
    Outcome::Now(semaphore_call(s, typeid, method, args))
}

/// Takes a permit of the semaphore at `sem(this)`, waiting at most
/// `timeout`.
fn take_permit<S: Send + Sync + 'static>(
    this: Arc<S>,
    sem: fn(&S) -> &threading::Semaphore,
    timeout: Option<Duration>,
) -> BoxFuture<'static, bool> {
    async move {
        let s = sem(&this);
        match timeout {
            None => {
                s.acquire().await;
                true
            }
            Some(t) => s.acquire_timeout(t).await,
        }
    }
    .boxed()
}

impl Served for SemaphoreObj {
    fn call(&self, _: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        semaphore_call(&self.0, "Semaphore", method, args)
    }

    fn start(self: Arc<Self>, _: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        let this = self.clone();
        semaphore_start(
            &self.0,
            |t| take_permit(this, |o: &SemaphoreObj| &o.0, t),
            "Semaphore",
            method,
            args,
        )
    }
}

impl Served for BoundedObj {
    fn call(&self, _: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        semaphore_call(&self.0, "BoundedSemaphore", method, args)
    }

    fn start(self: Arc<Self>, _: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        let this = self.clone();
        semaphore_start(
            &self.0,
            |t| take_permit(this, |o: &BoundedObj| &o.0, t),
            "BoundedSemaphore",
            method,
            args,
        )
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

dual! {
    impl[] SemaphoreProxy {
        /// `release(n)`.
        ///
        /// # Errors
        /// A remote `ValueError` if a bounded semaphore would go above its
        /// initial value.
        pub async fn release_n(&self, n: usize) -> Result<(), ManagerError> {
            self.base.call("release", vec![arg(&n)]).await
        }

        /// The number of permits now.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone.
        pub async fn value(&self) -> Result<usize, ManagerError> {
            self.base.call("value", vec![]).await
        }
    }
}

// ------------------------------------------------------------ Condition

/// A condition variable over an owned `RLock`: each wait is an event of
/// its own, in the order they came (Python's `Condition` does the same
/// with a lock per waiter).
pub(super) struct ConditionObj {
    pub(super) lock: Arc<Owned>,
    pub(super) waiters: Mutex<VecDeque<Arc<threading::Event>>>,
}

impl ConditionObj {
    fn notify(&self, cx: &Caller, n: Option<usize>) -> Result<Vec<u8>, RemoteError> {
        if !self.lock.owned_by(who(cx)) {
            return Err(err("RuntimeError", "cannot notify on un-acquired lock"));
        }
        let mut w = self.waiters.lock();
        let n = n.unwrap_or(w.len()).min(w.len());
        for e in w.drain(..n) {
            e.set();
        }
        ok(&())
    }

    /// Releases the caller's levels, waits for a notification (or the
    /// timeout, or the caller's cancel), then takes the levels back (not
    /// if the caller's process is gone); whether it was notified.
    fn wait(self: Arc<Self>, cx: &Caller, timeout: Option<Duration>) -> Outcome {
        let w = who(cx);
        if !self.lock.owned_by(w) {
            return Outcome::Now(Err(err("RuntimeError", "cannot wait on un-acquired lock")));
        }
        let me = Arc::new(threading::Event::new());
        self.waiters.lock().push_back(me.clone());
        let depth = self.lock.release_all(w);
        let (cancel, gone) = (cx.cancel.clone(), cx.gone.clone());
        Outcome::Finish(
            async move {
                let stop = std::pin::pin!(cancel.wait());
                let _ = select(std::pin::pin!(within(timeout, me.wait())), stop).await;
                let notified = {
                    let mut ws = self.waiters.lock();
                    ws.retain(|e| !Arc::ptr_eq(e, &me));
                    // Notified at the last moment counts as notified.
                    me.is_set()
                };
                let back = std::pin::pin!(self.lock.take(w, None));
                match select(back, std::pin::pin!(gone.wait())).await {
                    Either::Left(_) => {
                        self.lock.state.lock().1 = depth;
                        ok(&notified)
                    }
                    Either::Right(_) => Err(err("EOFError", "the client is gone")),
                }
            }
            .boxed(),
        )
    }
}

impl Served for ConditionObj {
    fn call(&self, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        match method {
            "notify" => self.notify(cx, Some(a(args, 0)?)),
            "notify_all" => self.notify(cx, None),
            _ => match self.lock.clone().start(cx, method, args) {
                Some(Outcome::Now(r)) => r,
                Some(_) => Err(err("RuntimeError", "a wait outside a connection")),
                None => Err(no_method("Condition", method)),
            },
        }
    }

    fn start(self: Arc<Self>, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        match method {
            "wait" => match a::<Option<Duration>>(args, 0) {
                Ok(t) => self.wait(cx, t),
                Err(e) => Outcome::Now(Err(e)),
            },
            "acquire" | "release" | "locked" => self
                .lock
                .clone()
                .start(cx, method, args)
                .unwrap_or_else(|| Outcome::Now(Err(no_method("Condition", method)))),
            _ => Outcome::Now(self.call(cx, method, args)),
        }
    }

    fn disconnected(&self, conn: u64) {
        self.lock.disconnected(conn);
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

dual! {
    impl[] ConditionProxy {
        /// `wait(timeout)`: releases the lock, waits for a notification (or
        /// the timeout), takes the lock again; whether it was notified.
        ///
        /// # Errors
        /// A remote `RuntimeError` if the lock is not held.
        pub async fn wait(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
            self.base.call("wait", vec![arg(&timeout)]).await
        }

        /// `notify(n)`.
        ///
        /// # Errors
        /// A remote `RuntimeError` if the lock is not held.
        pub async fn notify(&self, n: usize) -> Result<(), ManagerError> {
            self.base.call("notify", vec![arg(&n)]).await
        }

        /// `notify_all()`.
        ///
        /// # Errors
        /// As [`notify`](ConditionProxy::notify).
        pub async fn notify_all(&self) -> Result<(), ManagerError> {
            self.base.call("notify_all", vec![]).await
        }
    }
}

// ---------------------------------------------------------------- Event

pub(super) struct EventObj(pub(super) threading::Event);

impl Served for EventObj {
    fn call(&self, _: &Caller, method: &str, _args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let e = &self.0;
        match method {
            "set" => {
                e.set();
                ok(&())
            }
            "clear" => {
                e.clear();
                ok(&())
            }
            "is_set" | "wait" => ok(&e.is_set()),
            _ => Err(no_method("Event", method)),
        }
    }

    fn start(self: Arc<Self>, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        if method != "wait" || self.0.is_set() {
            return Outcome::Now(self.call(cx, method, args));
        }
        match a::<Option<Duration>>(args, 0) {
            Err(e) => Outcome::Now(Err(e)),
            Ok(timeout) => later(async move {
                let e = &self.0;
                Ok(match timeout {
                    None => {
                        e.wait().await;
                        true
                    }
                    Some(t) => e.wait_timeout(t).await,
                })
            }),
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

dual! {
    impl[] EventProxy {
        /// `set()`.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone.
        pub async fn set(&self) -> Result<(), ManagerError> {
            self.base.call("set", vec![]).await
        }

        /// `clear()`.
        ///
        /// # Errors
        /// As [`set`](EventProxy::set).
        pub async fn clear(&self) -> Result<(), ManagerError> {
            self.base.call("clear", vec![]).await
        }

        /// `is_set()`.
        ///
        /// # Errors
        /// As [`set`](EventProxy::set).
        pub async fn is_set(&self) -> Result<bool, ManagerError> {
            self.base.call("is_set", vec![]).await
        }

        /// `wait(timeout)`: whether it is set.
        ///
        /// # Errors
        /// As [`set`](EventProxy::set).
        pub async fn wait(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
            self.base.call("wait", vec![arg(&timeout)]).await
        }
    }
}

// -------------------------------------------------------------- Barrier

pub(super) struct BarrierObj(pub(super) threading::Barrier);

impl Served for BarrierObj {
    fn call(&self, _: &Caller, method: &str, _args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        match method {
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

    fn start(self: Arc<Self>, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        if method != "wait" {
            return Outcome::Now(self.call(cx, method, args));
        }
        match a::<Option<Duration>>(args, 0) {
            Err(e) => Outcome::Now(Err(e)),
            Ok(timeout) => later(async move {
                let r = match timeout {
                    None => self.0.wait().await,
                    Some(t) => self.0.wait_timeout(t).await,
                };
                r.map_err(|_| err("BrokenBarrierError", "the barrier is broken"))
            }),
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

dual! {
    impl[] BarrierProxy {
        /// `wait(timeout)`: this party's index.
        ///
        /// # Errors
        /// A remote `BrokenBarrierError` if the barrier breaks (a timeout, an
        /// abort, a reset).
        pub async fn wait(&self, timeout: Option<Duration>) -> Result<usize, ManagerError> {
            self.base.call("wait", vec![arg(&timeout)]).await
        }

        /// `reset()`.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone.
        pub async fn reset(&self) -> Result<(), ManagerError> {
            self.base.call("reset", vec![]).await
        }

        /// `abort()`.
        ///
        /// # Errors
        /// As [`reset`](BarrierProxy::reset).
        pub async fn abort(&self) -> Result<(), ManagerError> {
            self.base.call("abort", vec![]).await
        }

        /// `parties`.
        ///
        /// # Errors
        /// As [`reset`](BarrierProxy::reset).
        pub async fn parties(&self) -> Result<usize, ManagerError> {
            self.base.call("parties", vec![]).await
        }

        /// `n_waiting`.
        ///
        /// # Errors
        /// As [`reset`](BarrierProxy::reset).
        pub async fn n_waiting(&self) -> Result<usize, ManagerError> {
            self.base.call("n_waiting", vec![]).await
        }

        /// `broken`.
        ///
        /// # Errors
        /// As [`reset`](BarrierProxy::reset).
        pub async fn broken(&self) -> Result<bool, ManagerError> {
            self.base.call("broken", vec![]).await
        }
    }
}
