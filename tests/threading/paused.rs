//! Timeouts of the async faces under paused tokio time: deterministic, and
//! exact (the paused clock only moves when every task waits).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use conex::threading::*;
use tokio::time::Instant;

const T: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn acquire_timeouts_expire_exactly() {
    let lock = Lock::new();
    lock.acquire().await;
    let start = Instant::now();
    assert!(!lock.acquire_timeout(T).await);
    assert_eq!(start.elapsed(), T);
    assert!(lock.lock_timeout(T).await.is_none());
    assert!(lock.locked(), "a timed-out guard attempt releases nothing");
    assert_eq!(lock.n_waiting(), 0);

    let rl = RLock::new();
    let r2 = rl.clone();
    std::thread::spawn(move || r2.blocking().acquire())
        .join()
        .unwrap();
    let start = Instant::now();
    assert!(!rl.acquire_timeout(T).await);
    assert_eq!(start.elapsed(), T);

    let sem = Semaphore::new(0);
    let start = Instant::now();
    assert!(!sem.acquire_timeout(T).await);
    assert!(sem.permit_timeout(T).await.is_none());
    assert_eq!(
        sem.value(),
        0,
        "a timed-out permit attempt makes up nothing"
    );
    assert_eq!(start.elapsed(), 2 * T);
    assert_eq!(sem.n_waiting(), 0);
}

// A release that comes before the deadline wins.
#[tokio::test(start_paused = true)]
async fn acquire_succeeds_before_deadline() {
    let lock = Lock::new();
    lock.acquire().await;
    let l2 = lock.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        l2.release().unwrap();
    });
    let start = Instant::now();
    assert!(lock.acquire_timeout(T).await);
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn event_and_condition_timeouts() {
    let ev = Event::new();
    let start = Instant::now();
    assert!(!ev.wait_timeout(T).await);
    assert_eq!(start.elapsed(), T);
    assert!(!ev.wait_timeout(Duration::ZERO).await);
    ev.set();
    assert!(ev.wait_timeout(Duration::ZERO).await);

    let cond = Condition::new();
    let g = cond.lock().await;
    let start = Instant::now();
    let (g, notified) = cond.wait_timeout(g, T).await.unwrap();
    assert!(!notified);
    assert_eq!(start.elapsed(), T);
    assert!(cond.underlying_lock().is_owned());
    let (g, value) = cond.wait_for_timeout(g, T, || false).await.unwrap();
    assert!(!value);
    assert_eq!(start.elapsed(), 2 * T);
    // A predicate already true returns at once, without waiting.
    let (g, value) = cond.wait_for_timeout(g, T, || true).await.unwrap();
    assert!(value);
    assert_eq!(start.elapsed(), 2 * T);
    drop(g);
}

// Condition.wait(timeout) re-acquires the lock after the timeout even if
// that takes longer: the re-acquire is not bounded by the timeout.
#[tokio::test(start_paused = true)]
async fn condition_reacquire_is_not_bounded() {
    let cond = Condition::with_lock(Lock::new());
    let lock = cond.underlying_lock().clone();
    let g = cond.lock().await;
    let l2 = lock.clone();
    let holder = tokio::spawn(async move {
        // Take the lock while the waiter has it released, hold it past the
        // waiter's deadline.
        let g = l2.lock().await;
        tokio::time::sleep(3 * T).await;
        drop(g);
    });
    let start = Instant::now();
    let (_g, notified) = cond.wait_timeout(g, T).await.unwrap();
    assert!(!notified);
    assert_eq!(start.elapsed(), 3 * T);
    holder.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn barrier_timeout_breaks_it() {
    let b = Barrier::new(3);
    let b2 = b.clone();
    let other = tokio::spawn(async move { b2.wait().await });
    let start = Instant::now();
    assert_eq!(b.wait_timeout(T).await, Err(BrokenBarrier));
    assert_eq!(start.elapsed(), T);
    assert_eq!(other.await.unwrap(), Err(BrokenBarrier));
    assert!(b.broken());
    // The default timeout applies to wait().
    let b = Barrier::builder(2).timeout(T).build();
    assert_eq!(b.wait().await, Err(BrokenBarrier));
}

#[tokio::test(start_paused = true)]
async fn timer_fires_after_interval() {
    let fired = Arc::new(AtomicUsize::new(0));
    let f2 = fired.clone();
    let t = Timer::new(T, move || {
        f2.fetch_add(1, SeqCst);
    });
    let start = Instant::now();
    t.start().unwrap();
    tokio::time::sleep(T - Duration::from_millis(1)).await;
    assert_eq!(fired.load(SeqCst), 0);
    t.join().await.unwrap();
    assert_eq!(start.elapsed(), T);
    assert_eq!(fired.load(SeqCst), 1);

    let f3 = fired.clone();
    let c = Timer::new(T, move || {
        f3.fetch_add(1, SeqCst);
    });
    c.start().unwrap();
    tokio::time::sleep(T / 2).await;
    c.cancel();
    c.join().await.unwrap();
    tokio::time::sleep(T).await;
    assert_eq!(fired.load(SeqCst), 1, "a cancelled timer never fires");
}

#[tokio::test(start_paused = true)]
async fn join_timeout_expires() {
    let t = Thread::spawn(async { tokio::time::sleep(3 * T).await });
    let start = Instant::now();
    assert_eq!(t.join_timeout(T).await, Ok(false), "still alive");
    assert_eq!(start.elapsed(), T);
    assert_eq!(t.join_timeout(3 * T).await, Ok(true));
    assert_eq!(start.elapsed(), 3 * T);
}
