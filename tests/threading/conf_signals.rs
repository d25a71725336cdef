//! Event, Condition and Barrier behaviours, from CPython's
//! Lib/test/lock_tests.py (EventTests, ConditionTests, BarrierTests), run
//! through every face.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::prims::*;

use super::conf_locks::Bunch;
use super::face::{Face, SETTLE, assert_timeout, wait_until};

// ---------------------------------------------------------------- Event

// EventTests.test_is_set
pub async fn event_is_set<F: Face>() {
    let evt = Event::new();
    assert!(!evt.is_set());
    evt.set();
    assert!(evt.is_set());
    evt.set();
    assert!(evt.is_set());
    evt.clear();
    assert!(!evt.is_set());
    evt.clear();
    assert!(!evt.is_set());
}

async fn check_notify<F: Face>(evt: &Event) {
    let n = 5;
    let results = Arc::new(Mutex::new(Vec::new()));
    let b = Bunch::<F>::new(n, || {
        let (e, r) = (evt.clone(), results.clone());
        async move {
            F::ev_wait(&e).await;
            r.lock().unwrap().push(1);
            F::ev_wait(&e).await;
            r.lock().unwrap().push(2);
        }
    });
    wait_until::<F>("all waiting", || evt.n_waiting() == n).await;
    assert!(results.lock().unwrap().is_empty());
    evt.set();
    b.wait_for_finished().await;
    let mut r = results.lock().unwrap().clone();
    r.sort();
    assert_eq!(r, [vec![1; n], vec![2; n]].concat());
}

// EventTests.test_notify
pub async fn event_notify<F: Face>() {
    let evt = Event::new();
    check_notify::<F>(&evt).await;
    // Another time, after an explicit clear().
    evt.set();
    evt.clear();
    check_notify::<F>(&evt).await;
}

// EventTests.test_timeout
pub async fn event_timeout<F: Face>() {
    let evt = Event::new();
    let run = |evt: Event| {
        Bunch::<F>::new(5, move || {
            let e = evt.clone();
            async move {
                let r0 = F::ev_wait_timeout(&e, Duration::ZERO).await;
                let t = Instant::now();
                let r1 = F::ev_wait_timeout(&e, Duration::from_millis(500)).await;
                assert_eq!((r0, r1), (e.is_set(), e.is_set()));
                if !r1 {
                    assert_timeout(t.elapsed(), Duration::from_millis(500));
                }
            }
        })
    };
    run(evt.clone()).wait_for_finished().await;
    evt.set();
    run(evt.clone()).wait_for_finished().await;
    assert_eq!(evt.n_waiting(), 0);
}

// EventTests.test_set_and_clear: waiters woken by set() see true even if
// clear() follows at once.
pub async fn event_set_and_clear<F: Face>() {
    let evt = Event::new();
    let results = Arc::new(Mutex::new(Vec::new()));
    let n = 5;
    let b = Bunch::<F>::new(n, || {
        let (e, r) = (evt.clone(), results.clone());
        async move {
            let got = F::ev_wait_timeout(&e, Duration::from_secs(30)).await;
            r.lock().unwrap().push(got);
        }
    });
    wait_until::<F>("all waiting", || evt.n_waiting() == n).await;
    evt.set();
    evt.clear();
    b.wait_for_finished().await;
    assert_eq!(*results.lock().unwrap(), vec![true; n]);
}

// ---------------------------------------------------------------- Condition

// ConditionTests.test_acquire
pub async fn cond_acquire<F: Face>() {
    // The default lock is an RLock: the condition can be taken twice.
    let cond = Condition::new();
    let a = F::cond_lock(&cond).await;
    let b = F::cond_lock(&cond).await;
    drop(b);
    drop(a);
    assert!(!cond.underlying_lock().locked());
    cond.acquire().await;
    cond.release().unwrap();

    let lock = Lock::new();
    let cond = Condition::with_lock(lock.clone());
    let g = F::cond_lock(&cond).await;
    assert!(!lock.try_acquire());
    drop(g);
    assert!(lock.try_acquire());
    assert!(!cond.try_acquire());
    lock.release().unwrap();
    {
        let _g = F::cond_lock(&cond).await;
        assert!(!lock.try_acquire());
    }
}

// ConditionTests.test_unacquired_wait: waiting needs the lock's guard (a
// compile-time rule); a guard of another lock is refused.
pub async fn cond_unacquired_wait<F: Face>() {
    let cond = Condition::with_lock(Lock::new());
    let other = Lock::new();
    let g = other.try_lock().unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        cond.blocking().wait_timeout(g, Duration::ZERO).unwrap()
    }));
    assert!(r.is_err());
    assert!(
        !other.locked(),
        "the refused guard was dropped, releasing its lock"
    );
}

// ConditionTests.test_unacquired_wait, the runtime half: a caller whose
// guard outlived a Python-style `release()` gets Python's RuntimeError
// (`NotOwned`) from every wait, at once, and the RLock is left as it was:
// free, owned by nobody, and takeable by another worker.
pub async fn cond_wait_after_release_is_refused<F: Face>() {
    let cond = Condition::new();
    let d = Duration::from_millis(50);
    let g = F::cond_lock(&cond).await;
    cond.release().unwrap();
    let e = F::cond_wait(&cond, g).await.err();
    assert_eq!(e, Some(NotOwned));
    rlock_left_free::<F>(cond.clone()).await;
    let g = F::cond_lock(&cond).await;
    cond.release().unwrap();
    let e = F::cond_wait_timeout(&cond, g, d).await.err();
    assert_eq!(e, Some(NotOwned));
    rlock_left_free::<F>(cond.clone()).await;
    // The predicate forms, in a worker that owns its handle (a borrowed
    // predicate future trips rustc's higher-ranked Send limitation).
    let c2 = cond.clone();
    let refused = F::spawn(async move {
        let g = F::cond_lock(&c2).await;
        c2.release().unwrap();
        let a = F::cond_wait_for(&c2, g, || false).await.err();
        let g = F::cond_lock(&c2).await;
        c2.release().unwrap();
        let b = F::cond_wait_for_timeout(&c2, g, d, || false).await.err();
        // A predicate already true needs no wait, so no ownership
        // (Python checks only in `wait`).
        let g = F::cond_lock(&c2).await;
        c2.release().unwrap();
        let kept = F::cond_wait_for(&c2, g, || true).await.is_ok();
        (a, b, kept)
    });
    assert_eq!(refused.await, (Some(NotOwned), Some(NotOwned), true));
    rlock_left_free::<F>(cond.clone()).await;
}

/// The condition's RLock is free, owned by nobody, and another worker
/// can take it.
async fn rlock_left_free<F: Face>(cond: Condition) {
    assert!(!cond.underlying_lock().locked());
    assert!(!cond.underlying_lock().is_owned());
    let c2 = cond.clone();
    let taken = F::spawn(async move {
        let _g = F::cond_lock(&c2).await;
        c2.underlying_lock().is_owned()
    });
    assert!(taken.await, "another worker takes the lock");
    assert!(!cond.underlying_lock().locked());
}

// The same over a plain Lock (Python's `_is_owned` for a Lock: locked at
// all): released Python-style, every wait and notify is refused and the
// lock stays free.
pub async fn cond_plain_lock_wait_after_release_is_refused<F: Face>() {
    let lock = Lock::new();
    let cond = Condition::with_lock(lock.clone());
    let d = Duration::from_millis(50);
    let g = F::cond_lock(&cond).await;
    lock.release().unwrap();
    assert_eq!(cond.notify(1), Err(NotOwned));
    let e = F::cond_wait(&cond, g).await.err();
    assert_eq!(e, Some(NotOwned));
    assert!(!lock.locked());
    let g = F::cond_lock(&cond).await;
    lock.release().unwrap();
    let e = F::cond_wait_timeout(&cond, g, d).await.err();
    assert_eq!(e, Some(NotOwned));
    assert!(!lock.locked());
    let (c2, l2) = (cond.clone(), lock.clone());
    let refused = F::spawn(async move {
        let g = F::cond_lock(&c2).await;
        l2.release().unwrap();
        let a = F::cond_wait_for(&c2, g, || false).await.err();
        let g = F::cond_lock(&c2).await;
        l2.release().unwrap();
        let b = F::cond_wait_for_timeout(&c2, g, d, || false).await.err();
        (a, b)
    });
    assert_eq!(refused.await, (Some(NotOwned), Some(NotOwned)));
    assert!(lock.try_acquire(), "the lock was left free");
    lock.release().unwrap();
}

// ConditionTests.test_unacquired_notify
pub async fn cond_unacquired_notify<F: Face>() {
    let cond = Condition::new();
    assert_eq!(cond.notify(1), Err(NotOwned));
    assert_eq!(cond.notify_all(), Err(NotOwned));
    let g = F::cond_lock(&cond).await;
    cond.notify(1).unwrap();
    // Held by another worker (an RLock): still not ours to notify.
    drop(g);
    let (c2, held, release) = (cond.clone(), Event::new(), Event::new());
    let (h2, r2) = (held.clone(), release.clone());
    let w = F::spawn(async move {
        let _g = F::cond_lock(&c2).await;
        h2.set();
        F::ev_wait(&r2).await;
    });
    F::ev_wait(&held).await;
    assert_eq!(cond.notify(1), Err(NotOwned));
    release.set();
    w.await;
}

async fn check_notify_cond<F: Face, L: ConditionLock>(cond: &Condition<L>) {
    let n = 5;
    let phase = Arc::new(AtomicUsize::new(0));
    let in_wait = Arc::new(AtomicUsize::new(0));
    let results1 = Arc::new(Mutex::new(Vec::new()));
    let results2 = Arc::new(Mutex::new(Vec::new()));
    let b = Bunch::<F>::new(n, || {
        let (c, p, iw) = (cond.clone(), phase.clone(), in_wait.clone());
        let (r1, r2) = (results1.clone(), results2.clone());
        async move {
            let g = F::cond_lock(&c).await;
            iw.fetch_add(1, SeqCst);
            let g = F::cond_wait(&c, g).await.unwrap();
            drop(g);
            r1.lock().unwrap().push(p.load(SeqCst));
            let g = F::cond_lock(&c).await;
            iw.fetch_add(1, SeqCst);
            let g = F::cond_wait(&c, g).await.unwrap();
            drop(g);
            r2.lock().unwrap().push(p.load(SeqCst));
        }
    });
    // Holding the lock with every worker counted in proves they all wait:
    // a worker counts itself under the lock and releases it only inside wait.
    let all_waiting = |k: usize| {
        let in_wait = in_wait.clone();
        async move {
            loop {
                let g = F::cond_lock(cond).await;
                if in_wait.load(SeqCst) == k {
                    return g;
                }
                drop(g);
                F::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    let g = all_waiting(n).await;
    assert!(results1.lock().unwrap().is_empty());
    // Notify 3 of them first.
    cond.notify(3).unwrap();
    phase.store(1, SeqCst);
    drop(g);
    wait_until::<F>("3 woken", || results1.lock().unwrap().len() == 3).await;
    F::sleep(SETTLE).await;
    assert_eq!(*results1.lock().unwrap(), vec![1; 3]);
    assert!(results2.lock().unwrap().is_empty());
    // Notify 5: the 2 still in their first wait and 3 in their second.
    let g = all_waiting(n + 3).await;
    cond.notify(5).unwrap();
    phase.store(2, SeqCst);
    drop(g);
    wait_until::<F>("8 woken", || {
        results1.lock().unwrap().len() + results2.lock().unwrap().len() == 8
    })
    .await;
    assert_eq!(*results1.lock().unwrap(), vec![1, 1, 1, 2, 2]);
    assert_eq!(*results2.lock().unwrap(), vec![2; 3]);
    // Notify all: the last 2 are in their second wait.
    let g = all_waiting(2 * n).await;
    cond.notify_all().unwrap();
    phase.store(3, SeqCst);
    drop(g);
    b.wait_for_finished().await;
    assert_eq!(*results2.lock().unwrap(), vec![2, 2, 2, 3, 3]);
    assert_eq!(cond.n_waiting(), 0);
}

// ConditionTests.test_notify (twice, to check the state left behind), on
// the default RLock and on a Lock.
pub async fn cond_notify<F: Face>() {
    let cond = Condition::new();
    check_notify_cond::<F, _>(&cond).await;
    check_notify_cond::<F, _>(&cond).await;
    let cond = Condition::with_lock(Lock::new());
    check_notify_cond::<F, _>(&cond).await;
}

// ConditionTests.test_timeout
pub async fn cond_timeout<F: Face>() {
    let cond = Condition::new();
    let results = Arc::new(Mutex::new(Vec::new()));
    let b = Bunch::<F>::new(5, || {
        let (c, r) = (cond.clone(), results.clone());
        async move {
            let g = F::cond_lock(&c).await;
            let t = Instant::now();
            let (g, notified) = F::cond_wait_timeout(&c, g, Duration::from_millis(500))
                .await
                .unwrap();
            let dt = t.elapsed();
            assert!(
                c.underlying_lock().is_owned(),
                "the lock is re-acquired after a timeout"
            );
            drop(g);
            r.lock().unwrap().push((dt, notified));
        }
    });
    b.wait_for_finished().await;
    let r = results.lock().unwrap();
    assert_eq!(r.len(), 5);
    for (dt, notified) in r.iter() {
        assert_timeout(*dt, Duration::from_millis(500));
        assert!(!notified, "no spurious wake-ups");
    }
}

// ConditionTests.test_waitfor
pub async fn cond_waitfor<F: Face>() {
    let cond = Condition::new();
    let state = Arc::new(AtomicUsize::new(0));
    let (c2, s2) = (cond.clone(), state.clone());
    let w = F::spawn(async move {
        let g = F::cond_lock(&c2).await;
        let s3 = s2.clone();
        let _g = F::cond_wait_for(&c2, g, move || s3.load(SeqCst) == 4)
            .await
            .unwrap();
        assert_eq!(s2.load(SeqCst), 4);
    });
    for _ in 0..4 {
        F::sleep(Duration::from_millis(10)).await;
        let _g = F::cond_lock(&cond).await;
        state.fetch_add(1, SeqCst);
        cond.notify(1).unwrap();
    }
    w.await;
}

// ConditionTests.test_waitfor_timeout
pub async fn cond_waitfor_timeout<F: Face>() {
    let cond = Condition::new();
    let state = Arc::new(AtomicUsize::new(0));
    let (c2, s2) = (cond.clone(), state.clone());
    let w = F::spawn(async move {
        let g = F::cond_lock(&c2).await;
        let t = Instant::now();
        let (_g, result) =
            F::cond_wait_for_timeout(&c2, g, Duration::from_millis(300), move || {
                s2.load(SeqCst) == 4
            })
            .await
            .unwrap();
        assert!(!result);
        assert_timeout(t.elapsed(), Duration::from_millis(300));
    });
    // Only 3 increments: state == 4 is never reached.
    for _ in 0..3 {
        F::sleep(Duration::from_millis(10)).await;
        let _g = F::cond_lock(&cond).await;
        state.fetch_add(1, SeqCst);
        cond.notify(1).unwrap();
    }
    w.await;
}

// An RLock's whole recursion level is released while waiting and restored
// after (Condition._release_save / _acquire_restore).
pub async fn cond_rlock_levels<F: Face>() {
    let cond = Condition::new();
    let rl = cond.underlying_lock().clone();
    let entered = Event::new();
    let (c2, e2) = (cond.clone(), entered.clone());
    let w = F::spawn(async move {
        let outer = F::rlock(c2.underlying_lock()).await;
        let _inner = F::rlock(c2.underlying_lock()).await;
        e2.set();
        let outer = F::cond_wait(&c2, outer).await.unwrap();
        assert_eq!(c2.underlying_lock().recursion_count(), 2);
        drop(outer);
    });
    F::ev_wait(&entered).await;
    // The waiter released both levels: the lock can be taken here.
    let g = F::rlock(&rl).await;
    assert_eq!(rl.recursion_count(), 1);
    cond.notify(1).unwrap();
    drop(g);
    w.await;
    assert!(!rl.locked());
}

// Waiters are woken in FIFO order.
pub async fn cond_fifo<F: Face>() {
    let cond = Condition::with_lock(Lock::new());
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for i in 0..4 {
        let (c, o) = (cond.clone(), order.clone());
        workers.push(F::spawn(async move {
            let g = F::cond_lock(&c).await;
            let _g = F::cond_wait(&c, g).await.unwrap();
            o.lock().unwrap().push(i);
        }));
        wait_until::<F>("in wait", || cond.n_waiting() == i + 1).await;
    }
    for k in 0..4 {
        let g = F::cond_lock(&cond).await;
        cond.notify(1).unwrap();
        drop(g);
        wait_until::<F>("one woken", || order.lock().unwrap().len() == k + 1).await;
    }
    for w in workers {
        w.await;
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
}

// ---------------------------------------------------------------- Barrier

const N: usize = 5;

fn barrier() -> Barrier {
    Barrier::builder(N).timeout(Duration::from_secs(20)).build()
}

/// Python's `run_threads`: N-1 workers plus the test body itself.
async fn run_threads<F: Face, Fut>(f: impl Fn() -> Fut)
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let b = Bunch::<F>::new(N - 1, &f);
    f().await;
    b.wait_for_finished().await;
}

async fn multipass<F: Face>(b: Barrier, r0: Arc<AtomicUsize>, r1: Arc<AtomicUsize>, n: usize) {
    for i in 0..n {
        r0.fetch_add(1, SeqCst);
        assert_eq!(r1.load(SeqCst), i * N);
        F::barrier_wait(&b).await.unwrap();
        r1.fetch_add(1, SeqCst);
        assert_eq!(r0.load(SeqCst), (i + 1) * N);
        F::barrier_wait(&b).await.unwrap();
    }
    assert!(!b.broken());
}

// BarrierTests.test_barrier and test_barrier_10
pub async fn barrier_lockstep<F: Face>() {
    for passes in [1, 10] {
        let b = barrier();
        let (r0, r1) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        run_threads::<F, _>(|| multipass::<F>(b.clone(), r0.clone(), r1.clone(), passes)).await;
        assert_eq!(b.n_waiting(), 0);
    }
}

// BarrierTests.test_wait_return
pub async fn barrier_wait_return<F: Face>() {
    let b = barrier();
    let results = Arc::new(Mutex::new(Vec::new()));
    run_threads::<F, _>(|| {
        let (b, r) = (b.clone(), results.clone());
        async move {
            let i = F::barrier_wait(&b).await.unwrap();
            r.lock().unwrap().push(i);
        }
    })
    .await;
    let mut r = results.lock().unwrap().clone();
    r.sort();
    assert_eq!(r, (0..N).collect::<Vec<_>>());
}

// BarrierTests.test_action
pub async fn barrier_action<F: Face>() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let b = Barrier::builder(N)
        .action(move || {
            c2.fetch_add(1, SeqCst);
        })
        .build();
    run_threads::<F, _>(|| {
        let (b, calls) = (b.clone(), calls.clone());
        async move {
            let i = F::barrier_wait(&b).await.unwrap();
            assert_eq!(calls.load(SeqCst), 1, "the action ran before the release");
            let _ = i;
        }
    })
    .await;
}

// BarrierTests.test_abort
pub async fn barrier_abort<F: Face>() {
    let b = barrier();
    let (r1, r2) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    run_threads::<F, _>(|| {
        let (b, r1, r2) = (b.clone(), r1.clone(), r2.clone());
        async move {
            let i = F::barrier_wait(&b).await.unwrap();
            if i == N / 2 {
                b.abort();
                return;
            }
            match F::barrier_wait(&b).await {
                Ok(_) => r1.fetch_add(1, SeqCst),
                Err(BrokenBarrier) => r2.fetch_add(1, SeqCst),
            };
        }
    })
    .await;
    assert_eq!(r1.load(SeqCst), 0);
    assert_eq!(r2.load(SeqCst), N - 1);
    assert!(b.broken());
    assert_eq!(F::barrier_wait(&b).await, Err(BrokenBarrier));
}

// BarrierTests.test_reset
pub async fn barrier_reset<F: Face>() {
    let b = barrier();
    let (r1, r2, r3) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    run_threads::<F, _>(|| {
        let (b, r1, r2, r3) = (b.clone(), r1.clone(), r2.clone(), r3.clone());
        async move {
            let i = F::barrier_wait(&b).await.unwrap();
            if i == N / 2 {
                wait_until::<F>("others in the barrier", || b.n_waiting() == N - 1).await;
                b.reset();
            } else {
                match F::barrier_wait(&b).await {
                    Ok(_) => r1.fetch_add(1, SeqCst),
                    Err(BrokenBarrier) => r2.fetch_add(1, SeqCst),
                };
            }
            // Pass the barrier again.
            F::barrier_wait(&b).await.unwrap();
            r3.fetch_add(1, SeqCst);
        }
    })
    .await;
    assert_eq!(r1.load(SeqCst), 0);
    assert_eq!(r2.load(SeqCst), N - 1);
    assert_eq!(r3.load(SeqCst), N);
}

// BarrierTests.test_abort_and_reset
pub async fn barrier_abort_and_reset<F: Face>() {
    let b = barrier();
    let b2 = Barrier::new(N);
    let (r1, r2, r3) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    run_threads::<F, _>(|| {
        let (b, b2) = (b.clone(), b2.clone());
        let (r1, r2, r3) = (r1.clone(), r2.clone(), r3.clone());
        async move {
            let i = F::barrier_wait(&b).await.unwrap();
            if i == N / 2 {
                b.abort();
            } else {
                match F::barrier_wait(&b).await {
                    Ok(_) => r1.fetch_add(1, SeqCst),
                    Err(BrokenBarrier) => r2.fetch_add(1, SeqCst),
                };
            }
            // Everyone has left the broken barrier: reset it, then use it.
            if F::barrier_wait(&b2).await.unwrap() == N / 2 {
                b.reset();
            }
            F::barrier_wait(&b2).await.unwrap();
            F::barrier_wait(&b).await.unwrap();
            r3.fetch_add(1, SeqCst);
        }
    })
    .await;
    assert_eq!(r1.load(SeqCst), 0);
    assert_eq!(r2.load(SeqCst), N - 1);
    assert_eq!(r3.load(SeqCst), N);
}

// BarrierTests.test_timeout: a waiter's timeout breaks the barrier.
pub async fn barrier_timeout<F: Face>() {
    let b = barrier();
    run_threads::<F, _>(|| {
        let b = b.clone();
        async move {
            let i = F::barrier_wait(&b).await.unwrap();
            if i == N / 2 {
                // One worker is late.
                F::sleep(Duration::from_millis(1000)).await;
            }
            assert_eq!(
                F::barrier_wait_timeout(&b, Duration::from_millis(300)).await,
                Err(BrokenBarrier)
            );
        }
    })
    .await;
    assert!(b.broken());
}

// BarrierTests.test_default_timeout
pub async fn barrier_default_timeout<F: Face>() {
    let b = Barrier::builder(N)
        .timeout(Duration::from_millis(300))
        .build();
    run_threads::<F, _>(|| {
        let b = b.clone();
        async move {
            let i = F::barrier_wait(&b).await.unwrap();
            if i == N / 2 {
                F::sleep(Duration::from_millis(1000)).await;
            }
            assert_eq!(F::barrier_wait(&b).await, Err(BrokenBarrier));
        }
    })
    .await;
}

// BarrierTests.test_single_thread and test_constructor
pub async fn barrier_single_and_constructor<F: Face>() {
    let b = Barrier::new(1);
    assert_eq!(F::barrier_wait(&b).await, Ok(0));
    assert_eq!(F::barrier_wait(&b).await, Ok(0));
    assert!(catch_unwind(|| Barrier::new(0)).is_err());
}

// An action that panics breaks the barrier; the panic goes on in the caller
// that ran it, the others get BrokenBarrier.
pub async fn barrier_action_panics<F: Face>() {
    let b = Barrier::builder(2)
        .action(|| panic!("action failed"))
        .build();
    let b2 = b.clone();
    let waiter = F::spawn(async move { F::barrier_wait(&b2).await });
    wait_until::<F>("first waiting", || b.n_waiting() == 1).await;
    let b3 = b.clone();
    let last =
        F::spawn(async move { catch_unwind(AssertUnwindSafe(|| b3.blocking().wait())).is_err() });
    assert!(
        last.await,
        "the action's panic reaches the caller that ran it"
    );
    assert_eq!(waiter.await, Err(BrokenBarrier));
    assert!(b.broken());
    b.reset();
    assert!(!b.broken());
}
