//! sched behaviours from CPython's Lib/test/test_sched.py, under paused
//! tokio time, with a simulated clock, and through the blocking facade.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conex::contextvars::ContextVar;
use conex::sched::*;
use tokio::time::Instant;

fn log() -> Arc<Mutex<Vec<u64>>> {
    Arc::new(Mutex::new(Vec::new()))
}

fn push(l: &Arc<Mutex<Vec<u64>>>, v: u64) -> impl FnOnce() + Send + 'static {
    let l = l.clone();
    move || l.lock().unwrap().push(v)
}

// TestCase.test_enter: events run in time order.
#[tokio::test(start_paused = true)]
async fn enter_runs_in_time_order() {
    let s = Scheduler::new();
    let l = log();
    for x in [500u64, 100, 300, 200, 400] {
        s.enter(Duration::from_millis(x), 1, push(&l, x));
    }
    let start = Instant::now();
    s.run().await;
    assert_eq!(*l.lock().unwrap(), [100, 200, 300, 400, 500]);
    assert_eq!(start.elapsed(), Duration::from_millis(500));
}

// TestCase.test_enterabs
#[tokio::test(start_paused = true)]
async fn enterabs_runs_at_absolute_times() {
    let s = Scheduler::new();
    let l = log();
    let base = Instant::now();
    for x in [5u64, 1, 3, 2, 4] {
        s.enterabs(base + Duration::from_secs(x), 1, push(&l, x));
    }
    s.run().await;
    assert_eq!(*l.lock().unwrap(), [1, 2, 3, 4, 5]);
}

// TestCase.test_priority: equal times run by priority, then by entry.
#[tokio::test(start_paused = true)]
async fn equal_times_run_by_priority_then_entry() {
    let s = Scheduler::new();
    let l = log();
    let t = Instant::now() + Duration::from_millis(10);
    for (prio, tag) in [(3, 1u64), (1, 2), (2, 3), (1, 4), (0, 5)] {
        s.enterabs(t, prio, push(&l, tag));
    }
    s.run().await;
    assert_eq!(*l.lock().unwrap(), [5, 2, 4, 3, 1]);
}

// TestCase.test_cancel and test_queue, test_empty
#[tokio::test(start_paused = true)]
async fn cancel_removes_exactly_that_event() {
    let s = Scheduler::new();
    let l = log();
    assert!(s.empty());
    let e5 = s.enter(Duration::from_millis(5), 1, push(&l, 5));
    let e1 = s.enter(Duration::from_millis(1), 1, push(&l, 1));
    let e3 = s.enter(Duration::from_millis(3), 1, push(&l, 3));
    let e4 = s.enter(Duration::from_millis(3), 1, push(&l, 4)); // same time as e3
    assert_eq!(s.queue(), vec![e1, e3, e4, e5]);
    s.cancel(&e3).unwrap();
    s.cancel(&e5).unwrap();
    assert_eq!(s.cancel(&e5), Err(NotScheduled));
    assert_eq!(s.queue(), vec![e1, e4]);
    assert!(!s.empty());
    s.run().await;
    assert_eq!(*l.lock().unwrap(), [1, 4]);
    assert!(s.empty());
    assert_eq!(
        s.cancel(&e1),
        Err(NotScheduled),
        "an event that ran is gone"
    );
}

// TestCase.test_enter_concurrent and test_cancel_concurrent: while run()
// waits, events entered or cancelled from another task are honoured at
// once (Python's run would sleep through them).
#[tokio::test(start_paused = true)]
async fn concurrent_enter_and_cancel_wake_the_run() {
    let s = Scheduler::new();
    let l = log();
    let late = s.enter(Duration::from_secs(100), 1, push(&l, 100));
    let runner = tokio::spawn({
        let s = s.clone();
        async move { s.run().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    s.enter(Duration::from_secs(2), 1, push(&l, 2));
    s.cancel(&late).unwrap();
    runner.await.unwrap();
    assert_eq!(*l.lock().unwrap(), [2]);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "ran at 2 s, not after 100 s"
    );
}

// TestCase.test_run_non_blocking: only what is due runs; the next deadline
// comes back.
#[tokio::test(start_paused = true)]
async fn run_pending_runs_only_what_is_due() {
    let s = Scheduler::new();
    let l = log();
    let now = Instant::now();
    s.enterabs(now, 1, push(&l, 0));
    let later = s.enter(Duration::from_secs(10), 1, push(&l, 10));
    assert_eq!(s.run_pending().await, Some(later.time()));
    assert_eq!(*l.lock().unwrap(), [0]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(s.run_pending().await, None);
    assert_eq!(*l.lock().unwrap(), [0, 10]);
}

// Actions may be futures; each action runs in the context it was entered
// from.
#[tokio::test(start_paused = true)]
async fn async_actions_and_contexts() {
    let s = Scheduler::new();
    let l = log();
    let var = ContextVar::new("job");
    var.set(1u64);
    let (l2, v2) = (l.clone(), var.clone());
    s.enter_async(Duration::from_secs(1), 0, async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        l2.lock().unwrap().push(v2.get().unwrap());
    });
    var.set(2);
    let (l3, v3) = (l.clone(), var.clone());
    s.enter(Duration::from_secs(1), 1, move || {
        l3.lock().unwrap().push(v3.get().unwrap())
    });
    s.run().await;
    // The async action (entered with job=1) ran first and finished before
    // the next event.
    assert_eq!(*l.lock().unwrap(), [1, 2]);
}

/// A simulated clock (test_sched.py's Timer): delays advance time at once.
#[derive(Clone, Default)]
struct Simulated(Arc<AtomicU64>);

impl Clock for Simulated {
    type Instant = u64;
    fn now(&self) -> u64 {
        self.0.load(SeqCst)
    }
    fn add(&self, from: u64, delay: Duration) -> u64 {
        from + delay.as_secs()
    }
    fn delay_until(&self, deadline: u64) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        self.delay_until_blocking(deadline);
        Box::pin(async {})
    }
    fn delay_until_blocking(&self, deadline: u64) {
        self.0.fetch_max(deadline, SeqCst);
    }
}

#[test]
fn custom_clock_blocking_run() {
    let clock = Simulated::default();
    let s = Scheduler::with_clock(clock.clone());
    let l = log();
    for x in [30u64, 10, 20] {
        s.enterabs(x, 0, push(&l, x));
    }
    assert_eq!(s.blocking().run_pending(), Some(10));
    s.blocking().run();
    assert_eq!(*l.lock().unwrap(), [10, 20, 30]);
    assert_eq!(clock.now(), 30);
}

// The blocking facade on tokio's clock, with an event entered from another
// thread while it waits.
#[test]
fn blocking_run_wakes_for_events_from_other_threads() {
    let s = Scheduler::new();
    let l = log();
    let far = s.enter(Duration::from_secs(3600), 0, push(&l, 3600));
    let (s2, l2) = (s.clone(), l.clone());
    let other = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        s2.enter(Duration::from_millis(10), 0, push(&l2, 1));
        s2.cancel(&far).unwrap();
    });
    let start = std::time::Instant::now();
    s.blocking().run();
    other.join().unwrap();
    assert_eq!(*l.lock().unwrap(), [1]);
    assert!(start.elapsed() < Duration::from_secs(60));
    // An async action through the blocking facade.
    let l3 = l.clone();
    s.enter_async(Duration::from_millis(1), 0, async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        l3.lock().unwrap().push(2);
    });
    s.blocking().run();
    assert_eq!(*l.lock().unwrap(), [1, 2]);
}
