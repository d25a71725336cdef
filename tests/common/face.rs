//! The faces a conformance test runs through. One test body (an async fn
//! generic over `F: Face`) drives both:
//!
//! - `Async`: the body and its workers are tasks on a 2-worker tokio
//!   runtime; waiting operations are the async methods (`.await`).
//! - `Blocking`: the body runs on the test's OS thread with no tokio runtime
//!   at all, workers are OS-thread-backed conex Threads, and waiting
//!   operations are the blocking facades. The body is still an async block,
//!   driven by `futures::executor::block_on`: each facade call completes
//!   inside a single poll.
//!
//! The cross-process twins of later modules implement the same trait.

use std::future::Future;
use std::time::{Duration, Instant};

use super::prims::*;
use conex::queue::{BaseQueue, GetError, Order, PutError};
use futures::future::BoxFuture;

pub trait Face: Send + Sync + 'static {
    const NAME: &'static str;

    /// Runs a test body on this face's driver.
    fn run(body: impl Future<Output = ()> + Send + 'static);
    /// Starts a worker; the returned future joins it (and re-raises its
    /// panic).
    fn spawn<T: Send + 'static>(
        f: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<'static, T>;
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;

    fn acquire(l: &Lock) -> impl Future<Output = ()> + Send + '_;
    fn acquire_timeout(l: &Lock, d: Duration) -> impl Future<Output = bool> + Send + '_;
    fn lock(l: &Lock) -> impl Future<Output = LockGuard<'_>> + Send + '_;

    fn racquire(l: &RLock) -> impl Future<Output = ()> + Send + '_;
    fn racquire_timeout(l: &RLock, d: Duration) -> impl Future<Output = bool> + Send + '_;
    fn rlock(l: &RLock) -> impl Future<Output = RLockGuard<'_>> + Send + '_;

    fn sem_acquire(s: &Semaphore) -> impl Future<Output = ()> + Send + '_;
    fn sem_acquire_timeout(s: &Semaphore, d: Duration) -> impl Future<Output = bool> + Send + '_;
    fn sem_permit(s: &Semaphore) -> impl Future<Output = SemaphorePermit<'_>> + Send + '_;

    fn ev_wait(e: &Event) -> impl Future<Output = ()> + Send + '_;
    fn ev_wait_timeout(e: &Event, d: Duration) -> impl Future<Output = bool> + Send + '_;

    fn cond_lock<L: ConditionLock>(c: &Condition<L>) -> impl Future<Output = L::Guard<'_>> + Send;
    fn cond_wait<'a, L: ConditionLock>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
    ) -> impl Future<Output = Result<L::Guard<'a>, NotOwned>> + Send;
    fn cond_wait_timeout<'a, L: ConditionLock>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
        d: Duration,
    ) -> impl Future<Output = Result<(L::Guard<'a>, bool), NotOwned>> + Send;
    fn cond_wait_for<'a, L: ConditionLock, P: FnMut() -> bool + Send + Unpin + 'a>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
        p: P,
    ) -> impl Future<Output = Result<L::Guard<'a>, NotOwned>> + Send;
    fn cond_wait_for_timeout<'a, L: ConditionLock, P: FnMut() -> bool + Send + Unpin + 'a>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
        d: Duration,
        p: P,
    ) -> impl Future<Output = Result<(L::Guard<'a>, bool), NotOwned>> + Send;

    fn barrier_wait(b: &Barrier) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_;
    fn barrier_wait_timeout(
        b: &Barrier,
        d: Duration,
    ) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_;

    fn join(t: &Thread) -> impl Future<Output = Result<(), JoinError>> + Send + '_;
    fn join_timeout(
        t: &Thread,
        d: Duration,
    ) -> impl Future<Output = Result<bool, JoinError>> + Send + '_;

    fn q_put<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
        item: T,
    ) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_;
    fn q_put_timeout<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
        item: T,
        d: Duration,
    ) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_;
    fn q_get<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
    ) -> impl Future<Output = Result<T, GetError>> + Send + '_;
    fn q_get_timeout<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
        d: Duration,
    ) -> impl Future<Output = Result<T, GetError>> + Send + '_;
    fn q_join<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
    ) -> impl Future<Output = ()> + Send + '_;
}

pub struct Async;
pub struct Blocking;

impl Face for Async {
    const NAME: &'static str = "async";

    fn run(body: impl Future<Output = ()> + Send + 'static) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(body);
    }

    fn spawn<T: Send + 'static>(
        f: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<'static, T> {
        // Daemons: a worker left behind by a failing test must not hold up
        // the test of join_non_daemon.
        let h = Thread::builder().daemon(true).spawn(f);
        Box::pin(async move { h.join().await.expect("worker failed") })
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(d)
    }

    fn acquire(l: &Lock) -> impl Future<Output = ()> + Send + '_ {
        l.acquire()
    }
    fn acquire_timeout(l: &Lock, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        l.acquire_timeout(d)
    }
    fn lock(l: &Lock) -> impl Future<Output = LockGuard<'_>> + Send + '_ {
        l.lock()
    }

    fn racquire(l: &RLock) -> impl Future<Output = ()> + Send + '_ {
        l.acquire()
    }
    fn racquire_timeout(l: &RLock, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        l.acquire_timeout(d)
    }
    fn rlock(l: &RLock) -> impl Future<Output = RLockGuard<'_>> + Send + '_ {
        l.lock()
    }

    fn sem_acquire(s: &Semaphore) -> impl Future<Output = ()> + Send + '_ {
        s.acquire()
    }
    fn sem_acquire_timeout(s: &Semaphore, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        s.acquire_timeout(d)
    }
    fn sem_permit(s: &Semaphore) -> impl Future<Output = SemaphorePermit<'_>> + Send + '_ {
        s.permit()
    }

    fn ev_wait(e: &Event) -> impl Future<Output = ()> + Send + '_ {
        e.wait()
    }
    fn ev_wait_timeout(e: &Event, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        e.wait_timeout(d)
    }

    fn cond_lock<L: ConditionLock>(c: &Condition<L>) -> impl Future<Output = L::Guard<'_>> + Send {
        c.lock()
    }
    fn cond_wait<'a, L: ConditionLock>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
    ) -> impl Future<Output = Result<L::Guard<'a>, NotOwned>> + Send {
        c.wait(g)
    }
    fn cond_wait_timeout<'a, L: ConditionLock>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
        d: Duration,
    ) -> impl Future<Output = Result<(L::Guard<'a>, bool), NotOwned>> + Send {
        c.wait_timeout(g, d)
    }
    fn cond_wait_for<'a, L: ConditionLock, P: FnMut() -> bool + Send + Unpin + 'a>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
        p: P,
    ) -> impl Future<Output = Result<L::Guard<'a>, NotOwned>> + Send {
        c.wait_for(g, p)
    }
    fn cond_wait_for_timeout<'a, L: ConditionLock, P: FnMut() -> bool + Send + Unpin + 'a>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
        d: Duration,
        p: P,
    ) -> impl Future<Output = Result<(L::Guard<'a>, bool), NotOwned>> + Send {
        c.wait_for_timeout(g, d, p)
    }

    fn barrier_wait(b: &Barrier) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_ {
        b.wait()
    }
    fn barrier_wait_timeout(
        b: &Barrier,
        d: Duration,
    ) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_ {
        b.wait_timeout(d)
    }

    fn join(t: &Thread) -> impl Future<Output = Result<(), JoinError>> + Send + '_ {
        t.join()
    }
    fn join_timeout(
        t: &Thread,
        d: Duration,
    ) -> impl Future<Output = Result<bool, JoinError>> + Send + '_ {
        t.join_timeout(d)
    }

    fn q_put<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
        item: T,
    ) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
        q.put(item)
    }
    fn q_put_timeout<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
        item: T,
        d: Duration,
    ) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
        q.put_timeout(item, d)
    }
    fn q_get<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
    ) -> impl Future<Output = Result<T, GetError>> + Send + '_ {
        q.get()
    }
    fn q_get_timeout<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
        d: Duration,
    ) -> impl Future<Output = Result<T, GetError>> + Send + '_ {
        q.get_timeout(d)
    }
    fn q_join<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
    ) -> impl Future<Output = ()> + Send + '_ {
        q.join()
    }
}

/// Wraps a synchronous (blocking) call as a future that completes in its
/// first poll.
async fn now<T>(f: impl FnOnce() -> T) -> T {
    f()
}

impl Face for Blocking {
    const NAME: &'static str = "blocking";

    fn run(body: impl Future<Output = ()> + Send + 'static) {
        assert!(tokio::runtime::Handle::try_current().is_err());
        futures::executor::block_on(body);
    }

    fn spawn<T: Send + 'static>(
        f: impl Future<Output = T> + Send + 'static,
    ) -> BoxFuture<'static, T> {
        let h = Thread::builder()
            .daemon(true)
            .spawn_blocking(move || futures::executor::block_on(f))
            .expect("spawn a worker thread");
        Box::pin(async move { h.blocking().join().expect("worker failed") })
    }

    fn sleep(d: Duration) -> impl Future<Output = ()> + Send {
        now(move || std::thread::sleep(d))
    }

    fn acquire(l: &Lock) -> impl Future<Output = ()> + Send + '_ {
        now(|| l.blocking().acquire())
    }
    fn acquire_timeout(l: &Lock, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        now(move || l.blocking().acquire_timeout(d))
    }
    fn lock(l: &Lock) -> impl Future<Output = LockGuard<'_>> + Send + '_ {
        now(|| l.blocking().lock())
    }

    fn racquire(l: &RLock) -> impl Future<Output = ()> + Send + '_ {
        now(|| l.blocking().acquire())
    }
    fn racquire_timeout(l: &RLock, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        now(move || l.blocking().acquire_timeout(d))
    }
    fn rlock(l: &RLock) -> impl Future<Output = RLockGuard<'_>> + Send + '_ {
        now(|| l.blocking().lock())
    }

    fn sem_acquire(s: &Semaphore) -> impl Future<Output = ()> + Send + '_ {
        now(|| s.blocking().acquire())
    }
    fn sem_acquire_timeout(s: &Semaphore, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        now(move || s.blocking().acquire_timeout(d))
    }
    fn sem_permit(s: &Semaphore) -> impl Future<Output = SemaphorePermit<'_>> + Send + '_ {
        now(|| s.blocking().permit())
    }

    fn ev_wait(e: &Event) -> impl Future<Output = ()> + Send + '_ {
        now(|| e.blocking().wait())
    }
    fn ev_wait_timeout(e: &Event, d: Duration) -> impl Future<Output = bool> + Send + '_ {
        now(move || e.blocking().wait_timeout(d))
    }

    fn cond_lock<L: ConditionLock>(c: &Condition<L>) -> impl Future<Output = L::Guard<'_>> + Send {
        now(|| c.blocking().lock())
    }
    fn cond_wait<'a, L: ConditionLock>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
    ) -> impl Future<Output = Result<L::Guard<'a>, NotOwned>> + Send {
        now(move || c.blocking().wait(g))
    }
    fn cond_wait_timeout<'a, L: ConditionLock>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
        d: Duration,
    ) -> impl Future<Output = Result<(L::Guard<'a>, bool), NotOwned>> + Send {
        now(move || c.blocking().wait_timeout(g, d))
    }
    fn cond_wait_for<'a, L: ConditionLock, P: FnMut() -> bool + Send + Unpin + 'a>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
        p: P,
    ) -> impl Future<Output = Result<L::Guard<'a>, NotOwned>> + Send {
        now(move || c.blocking().wait_for(g, p))
    }
    fn cond_wait_for_timeout<'a, L: ConditionLock, P: FnMut() -> bool + Send + Unpin + 'a>(
        c: &'a Condition<L>,
        g: L::Guard<'a>,
        d: Duration,
        p: P,
    ) -> impl Future<Output = Result<(L::Guard<'a>, bool), NotOwned>> + Send {
        now(move || c.blocking().wait_for_timeout(g, d, p))
    }

    fn barrier_wait(b: &Barrier) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_ {
        now(|| b.blocking().wait())
    }
    fn barrier_wait_timeout(
        b: &Barrier,
        d: Duration,
    ) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_ {
        now(move || b.blocking().wait_timeout(d))
    }

    fn join(t: &Thread) -> impl Future<Output = Result<(), JoinError>> + Send + '_ {
        now(|| t.blocking().join())
    }
    fn join_timeout(
        t: &Thread,
        d: Duration,
    ) -> impl Future<Output = Result<bool, JoinError>> + Send + '_ {
        now(move || t.blocking().join_timeout(d))
    }

    fn q_put<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
        item: T,
    ) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
        now(move || q.blocking().put(item))
    }
    fn q_put_timeout<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
        item: T,
        d: Duration,
    ) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
        now(move || q.blocking().put_timeout(item, d))
    }
    fn q_get<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
    ) -> impl Future<Output = Result<T, GetError>> + Send + '_ {
        now(move || q.blocking().get())
    }
    fn q_get_timeout<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
        d: Duration,
    ) -> impl Future<Output = Result<T, GetError>> + Send + '_ {
        now(move || q.blocking().get_timeout(d))
    }
    fn q_join<T: Send + 'static, O: Order<T>>(
        q: &BaseQueue<T, O>,
    ) -> impl Future<Output = ()> + Send + '_ {
        now(move || q.blocking().join())
    }
}

/// Polls `cond` (sleeping 1 ms between checks) until it holds; fails the
/// test after 20 s. For waiting on something that must happen, never for
/// asserting timing.
pub async fn wait_until<F: Face>(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "[{}] timed out waiting until {what}",
            F::NAME
        );
        F::sleep(Duration::from_millis(1)).await;
    }
}

/// Python's `assertTimeout`: at least 0.6x and under 10x the expected time.
#[track_caller]
pub fn assert_timeout(actual: Duration, expected: Duration) {
    assert!(
        actual >= expected.mul_f64(0.6),
        "waited {actual:?}, expected about {expected:?}"
    );
    assert!(
        actual < expected * 10,
        "waited {actual:?}, expected about {expected:?}"
    );
}

/// A grace period before asserting that something did *not* happen (such
/// checks can only pass falsely, never fail spuriously).
pub const SETTLE: Duration = Duration::from_millis(30);
