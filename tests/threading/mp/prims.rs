//! The cross-process twins (`conex::multiprocessing`'s Lock, RLock,
//! Semaphore, BoundedSemaphore, Event, Condition, Barrier) under the names
//! and signatures of `conex::threading`'s, so that the conformance bodies
//! (conf_locks.rs, conf_signals.rs) and the faces (common/face.rs) compile
//! unchanged against them: the same suite runs over the twins. Workers are
//! threads of this process; the primitives' state lives in shared memory
//! and their waits are the futex waits other processes use (the sync tests
//! of tests/multiprocessing cross real processes).
//!
//! What the twins do not have is supplied here, for the test only: waiter
//! counts of Lock and Semaphore (counted around the calls), `RLock::locked`
//! (a probe), semaphore permits (acquire + a releasing guard), a barrier's
//! default timeout. What they cannot have panics (a `Condition` over a
//! plain `Lock`, a barrier `action`): the tests that need those are not
//! instantiated for these faces.

#![allow(dead_code, clippy::manual_async_fn)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use conex::multiprocessing as mp;
// Everything else (Thread, get_ident, errors, ...) is threading's; the
// items defined below shadow the glob.
pub use conex::threading::*;

/// Counts a waiter for as long as it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicUsize) -> Waiting<'a> {
        n.fetch_add(1, SeqCst);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

// ---------------------------------------------------------------- Lock

#[derive(Clone)]
pub struct Lock {
    inner: mp::Lock,
    waiters: Arc<AtomicUsize>,
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.locked())
            .finish()
    }
}

pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.inner.release();
    }
}

impl Lock {
    pub fn new() -> Lock {
        Lock {
            inner: mp::Lock::new().expect("a shared lock"),
            waiters: Arc::new(AtomicUsize::new(0)),
        }
    }
    pub fn acquire(&self) -> impl Future<Output = ()> + Send + '_ {
        async move {
            let _w = Waiting::new(&self.waiters);
            self.inner.acquire().await
        }
    }
    pub fn try_acquire(&self) -> bool {
        self.inner.try_acquire()
    }
    pub fn acquire_timeout(&self, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        async move {
            let _w = Waiting::new(&self.waiters);
            self.inner.acquire_timeout(d).await
        }
    }
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.inner.release()
    }
    pub fn locked(&self) -> bool {
        self.inner.locked()
    }
    pub fn lock(&self) -> impl Future<Output = LockGuard<'_>> + Send + '_ {
        async move {
            self.acquire().await;
            LockGuard { lock: self }
        }
    }
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.inner.try_acquire().then(|| LockGuard { lock: self })
    }
    pub fn lock_timeout(
        &self,
        d: Duration,
    ) -> impl Future<Output = Option<LockGuard<'_>>> + Send + '_ {
        async move {
            self.acquire_timeout(d)
                .await
                .then(|| LockGuard { lock: self })
        }
    }
    pub fn n_waiting(&self) -> usize {
        self.waiters.load(SeqCst)
    }
    pub fn blocking(&self) -> BlockingLock<'_> {
        BlockingLock(self)
    }
}

pub struct BlockingLock<'a>(&'a Lock);

impl<'a> BlockingLock<'a> {
    pub fn acquire(&self) {
        let _w = Waiting::new(&self.0.waiters);
        self.0.inner.blocking().acquire()
    }
    pub fn try_acquire(&self) -> bool {
        self.0.try_acquire()
    }
    pub fn acquire_timeout(&self, d: Duration) -> bool {
        let _w = Waiting::new(&self.0.waiters);
        self.0.inner.blocking().acquire_timeout(d)
    }
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.0.release()
    }
    pub fn locked(&self) -> bool {
        self.0.locked()
    }
    pub fn lock(&self) -> LockGuard<'a> {
        self.acquire();
        LockGuard { lock: self.0 }
    }
    pub fn try_lock(&self) -> Option<LockGuard<'a>> {
        self.0.try_lock()
    }
    pub fn lock_timeout(&self, d: Duration) -> Option<LockGuard<'a>> {
        self.acquire_timeout(d).then(|| LockGuard { lock: self.0 })
    }
}

// --------------------------------------------------------------- RLock

/// A shared reentrant lock; `repr(transparent)` so that a Condition's
/// `&mp::RLock` can be seen as one.
#[repr(transparent)]
#[derive(Clone)]
pub struct RLock(mp::RLock);

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

impl std::fmt::Debug for RLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RLock").finish_non_exhaustive()
    }
}

pub struct RLockGuard<'a> {
    g: mp::RLockGuard<'a>,
}

impl RLock {
    pub fn new() -> RLock {
        RLock(mp::RLock::new().expect("a shared rlock"))
    }
    fn of(r: &mp::RLock) -> &RLock {
        // SAFETY: RLock is a repr(transparent) wrapper of mp::RLock.
        unsafe { &*(r as *const mp::RLock as *const RLock) }
    }
    pub fn acquire(&self) -> impl Future<Output = ()> + Send + '_ {
        self.0.acquire()
    }
    pub fn try_acquire(&self) -> bool {
        self.0.try_acquire()
    }
    pub fn acquire_timeout(&self, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        self.0.acquire_timeout(d)
    }
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.0.release()
    }
    /// Held by anyone (probed: the twin has no such call).
    pub fn locked(&self) -> bool {
        if self.0.is_owned() {
            return true;
        }
        if self.0.try_acquire() {
            let _ = self.0.release();
            false
        } else {
            true
        }
    }
    pub fn is_owned(&self) -> bool {
        self.0.is_owned()
    }
    pub fn recursion_count(&self) -> usize {
        if self.0.is_owned() {
            self.0.recursion_level() as usize
        } else {
            0
        }
    }
    pub fn lock(&self) -> impl Future<Output = RLockGuard<'_>> + Send + '_ {
        async move {
            RLockGuard {
                g: self.0.lock().await,
            }
        }
    }
    pub fn try_lock(&self) -> Option<RLockGuard<'_>> {
        // Reentrant: take a guarded level while holding the probed one,
        // then give the probed one back.
        self.0.try_acquire().then(|| {
            let g = self.0.blocking().lock();
            let _ = self.0.release();
            RLockGuard { g }
        })
    }
    pub fn blocking(&self) -> BlockingRLock<'_> {
        BlockingRLock(self)
    }
}

pub struct BlockingRLock<'a>(&'a RLock);

impl<'a> BlockingRLock<'a> {
    pub fn acquire(&self) {
        self.0.0.blocking().acquire()
    }
    pub fn try_acquire(&self) -> bool {
        self.0.try_acquire()
    }
    pub fn acquire_timeout(&self, d: Duration) -> bool {
        self.0.0.blocking().acquire_timeout(d)
    }
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.0.release()
    }
    pub fn lock(&self) -> RLockGuard<'a> {
        RLockGuard {
            g: self.0.0.blocking().lock(),
        }
    }
    pub fn lock_timeout(&self, d: Duration) -> Option<RLockGuard<'a>> {
        self.acquire_timeout(d).then(|| {
            let g = self.0.0.blocking().lock();
            let _ = self.0.release();
            RLockGuard { g }
        })
    }
}

// ----------------------------------------------------------- Semaphore

#[derive(Clone)]
pub struct Semaphore {
    inner: mp::Semaphore,
    waiters: Arc<AtomicUsize>,
    initial: usize,
}

impl Default for Semaphore {
    fn default() -> Self {
        Semaphore::new(1)
    }
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    live: bool,
}

impl SemaphorePermit<'_> {
    pub fn forget(mut self) {
        self.live = false;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.live {
            let _ = self.sem.release(1);
        }
    }
}

impl Semaphore {
    pub const MAX_VALUE: usize = mp::Semaphore::MAX_VALUE as usize;

    pub fn new(value: usize) -> Semaphore {
        let value = u32::try_from(value).expect("value above MAX_VALUE");
        Semaphore {
            inner: mp::Semaphore::new(value).expect("value above MAX_VALUE"),
            waiters: Arc::new(AtomicUsize::new(0)),
            initial: value as usize,
        }
    }
    fn permit_of(&self) -> SemaphorePermit<'_> {
        SemaphorePermit {
            sem: self,
            live: true,
        }
    }
    pub fn acquire(&self) -> impl Future<Output = ()> + Send + '_ {
        async move {
            let _w = Waiting::new(&self.waiters);
            self.inner.acquire().await
        }
    }
    pub fn try_acquire(&self) -> bool {
        self.inner.try_acquire()
    }
    pub fn acquire_timeout(&self, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        async move {
            let _w = Waiting::new(&self.waiters);
            self.inner.acquire_timeout(d).await
        }
    }
    pub fn release(&self, n: usize) -> Result<(), ReleaseError> {
        self.inner.release(n as u32)
    }
    pub fn value(&self) -> usize {
        self.inner.get_value() as usize
    }
    pub fn locked(&self) -> bool {
        self.value() == 0
    }
    pub fn permit(&self) -> impl Future<Output = SemaphorePermit<'_>> + Send + '_ {
        async move {
            self.acquire().await;
            self.permit_of()
        }
    }
    pub fn try_permit(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire().then(|| self.permit_of())
    }
    pub fn permit_timeout(
        &self,
        d: Duration,
    ) -> impl Future<Output = Option<SemaphorePermit<'_>>> + Send + '_ {
        async move { self.acquire_timeout(d).await.then(|| self.permit_of()) }
    }
    pub fn n_waiting(&self) -> usize {
        self.waiters.load(SeqCst)
    }
    pub fn blocking(&self) -> BlockingSemaphore<'_> {
        BlockingSemaphore(self)
    }
}

pub struct BlockingSemaphore<'a>(&'a Semaphore);

impl<'a> BlockingSemaphore<'a> {
    pub fn acquire(&self) {
        let _w = Waiting::new(&self.0.waiters);
        self.0.inner.blocking().acquire()
    }
    pub fn try_acquire(&self) -> bool {
        self.0.try_acquire()
    }
    pub fn acquire_timeout(&self, d: Duration) -> bool {
        let _w = Waiting::new(&self.0.waiters);
        self.0.inner.blocking().acquire_timeout(d)
    }
    pub fn release(&self, n: usize) -> Result<(), ReleaseError> {
        self.0.release(n)
    }
    pub fn value(&self) -> usize {
        self.0.value()
    }
    pub fn permit(&self) -> SemaphorePermit<'a> {
        self.acquire();
        self.0.permit_of()
    }
    pub fn try_permit(&self) -> Option<SemaphorePermit<'a>> {
        self.0.try_permit()
    }
    pub fn permit_timeout(&self, d: Duration) -> Option<SemaphorePermit<'a>> {
        self.acquire_timeout(d).then(|| self.0.permit_of())
    }
}

#[derive(Clone)]
pub struct BoundedSemaphore(Semaphore);

impl Default for BoundedSemaphore {
    fn default() -> Self {
        BoundedSemaphore::new(1)
    }
}

impl BoundedSemaphore {
    pub fn new(value: usize) -> BoundedSemaphore {
        BoundedSemaphore(Semaphore {
            inner: mp::BoundedSemaphore::new(value as u32).expect("a shared semaphore"),
            waiters: Arc::new(AtomicUsize::new(0)),
            initial: value,
        })
    }
    pub fn initial_value(&self) -> usize {
        self.0.initial
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;
    fn deref(&self) -> &Semaphore {
        &self.0
    }
}

// --------------------------------------------------------------- Event

#[derive(Clone)]
pub struct Event(mp::Event);

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl Event {
    pub fn new() -> Event {
        Event(mp::Event::new().expect("a shared event"))
    }
    pub fn is_set(&self) -> bool {
        self.0.is_set()
    }
    pub fn set(&self) {
        self.0.set()
    }
    pub fn clear(&self) {
        self.0.clear()
    }
    pub fn wait(&self) -> impl Future<Output = ()> + Send + '_ {
        self.0.wait()
    }
    pub fn wait_timeout(&self, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        self.0.wait_timeout(d)
    }
    pub fn n_waiting(&self) -> usize {
        self.0.n_waiting()
    }
    pub fn blocking(&self) -> BlockingEvent<'_> {
        BlockingEvent(self)
    }
}

pub struct BlockingEvent<'a>(&'a Event);

impl BlockingEvent<'_> {
    pub fn wait(&self) {
        self.0.0.blocking().wait()
    }
    pub fn wait_timeout(&self, d: Duration) -> bool {
        self.0.0.blocking().wait_timeout(d)
    }
    pub fn set(&self) {
        self.0.set()
    }
    pub fn clear(&self) {
        self.0.clear()
    }
    pub fn is_set(&self) -> bool {
        self.0.is_set()
    }
}

// ----------------------------------------------------------- Condition

/// What a Condition can be built over: only an `RLock` crosses processes;
/// `Lock` is accepted by the types and refused when used.
pub trait ConditionLock: Send + Sync + 'static {
    type Guard<'a>: Send
    where
        Self: 'a;
    fn into_rlock(self) -> RLock;
    fn wrap<'a>(g: mp::RLockGuard<'a>) -> Self::Guard<'a>
    where
        Self: 'a;
    fn unwrap<'a>(g: Self::Guard<'a>) -> mp::RLockGuard<'a>
    where
        Self: 'a;
    fn view(r: &mp::RLock) -> &Self;
}

impl ConditionLock for RLock {
    type Guard<'a> = RLockGuard<'a>;
    fn into_rlock(self) -> RLock {
        self
    }
    fn wrap<'a>(g: mp::RLockGuard<'a>) -> RLockGuard<'a>
    where
        Self: 'a,
    {
        RLockGuard { g }
    }
    fn unwrap<'a>(g: RLockGuard<'a>) -> mp::RLockGuard<'a>
    where
        Self: 'a,
    {
        g.g
    }
    fn view(r: &mp::RLock) -> &RLock {
        RLock::of(r)
    }
}

impl ConditionLock for Lock {
    type Guard<'a> = LockGuard<'a>;
    fn into_rlock(self) -> RLock {
        panic!("a cross-process Condition is over an RLock only")
    }
    fn wrap<'a>(_: mp::RLockGuard<'a>) -> LockGuard<'a>
    where
        Self: 'a,
    {
        unreachable!()
    }
    fn unwrap<'a>(_: LockGuard<'a>) -> mp::RLockGuard<'a>
    where
        Self: 'a,
    {
        unreachable!()
    }
    fn view(_: &mp::RLock) -> &Lock {
        unreachable!()
    }
}

pub struct Condition<L: ConditionLock = RLock> {
    inner: Arc<mp::Condition>,
    _l: std::marker::PhantomData<fn() -> L>,
}

impl<L: ConditionLock> Clone for Condition<L> {
    fn clone(&self) -> Self {
        Condition {
            inner: self.inner.clone(),
            _l: std::marker::PhantomData,
        }
    }
}

impl Default for Condition<RLock> {
    fn default() -> Self {
        Condition::new()
    }
}

impl Condition<RLock> {
    pub fn new() -> Condition<RLock> {
        Condition {
            inner: Arc::new(mp::Condition::new().expect("a shared condition")),
            _l: std::marker::PhantomData,
        }
    }
}

impl<L: ConditionLock> Condition<L> {
    pub fn with_lock(lock: L) -> Condition<L> {
        Condition {
            inner: Arc::new(mp::Condition::with_lock(lock.into_rlock().0).expect("a condition")),
            _l: std::marker::PhantomData,
        }
    }
    pub fn underlying_lock(&self) -> &L {
        L::view(self.inner.rlock())
    }
    pub fn acquire(&self) -> impl Future<Output = ()> + Send + '_ {
        self.inner.rlock().acquire()
    }
    pub fn try_acquire(&self) -> bool {
        self.inner.rlock().try_acquire()
    }
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.inner.rlock().release()
    }
    pub fn lock(&self) -> impl Future<Output = L::Guard<'_>> + Send + '_ {
        async move { L::wrap(self.inner.lock().await) }
    }
    pub fn try_lock(&self) -> Option<L::Guard<'_>> {
        let r = self.inner.rlock();
        r.try_acquire().then(|| {
            let g = r.blocking().lock();
            let _ = r.release();
            L::wrap(g)
        })
    }
    pub fn wait<'g>(
        &'g self,
        g: L::Guard<'g>,
    ) -> impl Future<Output = Result<L::Guard<'g>, NotOwned>> + Send + 'g {
        async move { self.inner.wait(L::unwrap(g)).await.map(L::wrap) }
    }
    pub fn wait_timeout<'g>(
        &'g self,
        g: L::Guard<'g>,
        d: Duration,
    ) -> impl Future<Output = Result<(L::Guard<'g>, bool), NotOwned>> + Send + 'g {
        async move {
            let (g, n) = self.inner.wait_timeout(L::unwrap(g), d).await?;
            Ok((L::wrap(g), n))
        }
    }
    pub fn wait_for<'g, P: FnMut() -> bool + Send + 'g>(
        &'g self,
        g: L::Guard<'g>,
        p: P,
    ) -> impl Future<Output = Result<L::Guard<'g>, NotOwned>> + Send + 'g {
        async move { self.inner.wait_for(L::unwrap(g), p).await.map(L::wrap) }
    }
    pub fn wait_for_timeout<'g, P: FnMut() -> bool + Send + 'g>(
        &'g self,
        g: L::Guard<'g>,
        d: Duration,
        p: P,
    ) -> impl Future<Output = Result<(L::Guard<'g>, bool), NotOwned>> + Send + 'g {
        async move {
            let (g, ok) = self.inner.wait_for_timeout(L::unwrap(g), d, p).await?;
            Ok((L::wrap(g), ok))
        }
    }
    pub fn notify(&self, n: usize) -> Result<(), NotOwned> {
        self.inner.notify(n)
    }
    pub fn notify_all(&self) -> Result<(), NotOwned> {
        self.inner.notify_all()
    }
    pub fn n_waiting(&self) -> usize {
        self.inner.n_waiting()
    }
    pub fn blocking(&self) -> BlockingCondition<'_, L> {
        BlockingCondition(self)
    }
}

pub struct BlockingCondition<'a, L: ConditionLock>(&'a Condition<L>);

impl<'a, L: ConditionLock> BlockingCondition<'a, L> {
    pub fn acquire(&self) {
        self.0.inner.rlock().blocking().acquire()
    }
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.0.release()
    }
    pub fn lock(&self) -> L::Guard<'a> {
        L::wrap(self.0.inner.blocking().lock())
    }
    pub fn wait<'g>(&self, g: L::Guard<'g>) -> Result<L::Guard<'g>, NotOwned> {
        self.0.inner.blocking().wait(L::unwrap(g)).map(L::wrap)
    }
    pub fn wait_timeout<'g>(
        &self,
        g: L::Guard<'g>,
        d: Duration,
    ) -> Result<(L::Guard<'g>, bool), NotOwned> {
        let (g, n) = self.0.inner.blocking().wait_timeout(L::unwrap(g), d)?;
        Ok((L::wrap(g), n))
    }
    pub fn wait_for<'g>(
        &self,
        g: L::Guard<'g>,
        p: impl FnMut() -> bool,
    ) -> Result<L::Guard<'g>, NotOwned> {
        self.0
            .inner
            .blocking()
            .wait_for(L::unwrap(g), p)
            .map(L::wrap)
    }
    pub fn wait_for_timeout<'g>(
        &self,
        g: L::Guard<'g>,
        d: Duration,
        p: impl FnMut() -> bool,
    ) -> Result<(L::Guard<'g>, bool), NotOwned> {
        let (g, ok) = self
            .0
            .inner
            .blocking()
            .wait_for_timeout(L::unwrap(g), d, p)?;
        Ok((L::wrap(g), ok))
    }
    pub fn notify(&self, n: usize) -> Result<(), NotOwned> {
        self.0.notify(n)
    }
    pub fn notify_all(&self) -> Result<(), NotOwned> {
        self.0.notify_all()
    }
}

// ------------------------------------------------------------- Barrier

#[derive(Clone)]
pub struct Barrier {
    inner: mp::Barrier,
    timeout: Option<Duration>,
}

pub struct BarrierBuilder {
    parties: usize,
    timeout: Option<Duration>,
    action: bool,
}

impl BarrierBuilder {
    pub fn action(mut self, _action: impl Fn() + Send + Sync + 'static) -> Self {
        self.action = true;
        self
    }
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    pub fn build(self) -> Barrier {
        assert!(
            !self.action,
            "a cross-process Barrier has no action (a closure cannot cross)"
        );
        Barrier {
            inner: mp::Barrier::new(self.parties).expect("a shared barrier"),
            timeout: self.timeout,
        }
    }
}

impl Barrier {
    pub fn new(parties: usize) -> Barrier {
        Barrier::builder(parties).build()
    }
    pub fn builder(parties: usize) -> BarrierBuilder {
        BarrierBuilder {
            parties,
            timeout: None,
            action: false,
        }
    }
    pub fn wait(&self) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_ {
        async move {
            match self.timeout {
                Some(t) => self.inner.wait_timeout(t).await,
                None => self.inner.wait().await,
            }
        }
    }
    pub fn wait_timeout(
        &self,
        d: Duration,
    ) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_ {
        self.inner.wait_timeout(d)
    }
    pub fn reset(&self) {
        self.inner.reset()
    }
    pub fn abort(&self) {
        self.inner.abort()
    }
    pub fn parties(&self) -> usize {
        self.inner.parties()
    }
    pub fn n_waiting(&self) -> usize {
        self.inner.n_waiting()
    }
    pub fn broken(&self) -> bool {
        self.inner.broken()
    }
    pub fn blocking(&self) -> BlockingBarrier<'_> {
        BlockingBarrier(self)
    }
}

pub struct BlockingBarrier<'a>(&'a Barrier);

impl BlockingBarrier<'_> {
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        match self.0.timeout {
            Some(t) => self.0.inner.blocking().wait_timeout(t),
            None => self.0.inner.blocking().wait(),
        }
    }
    pub fn wait_timeout(&self, d: Duration) -> Result<usize, BrokenBarrier> {
        self.0.inner.blocking().wait_timeout(d)
    }
}
