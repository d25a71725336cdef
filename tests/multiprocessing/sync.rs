//! Cross-process Lock, RLock, Semaphore, BoundedSemaphore, Event,
//! Condition and Barrier, passed to children as arguments, on both faces.

use std::time::{Duration, Instant};

use conex::multiprocessing::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, Process, RLock, RawValue, Semaphore,
    SharedMemory, StartMethod,
};
use conex::threading::ReleaseError;

use crate::{RT, Test};

pub(crate) const TESTS: &[Test] = &[
    ("sync::lock_basics", lock_basics),
    (
        "sync::lock_excludes_across_processes",
        lock_excludes_across_processes,
    ),
    (
        "sync::lock_released_by_another_process",
        lock_released_by_another_process,
    ),
    (
        "sync::lock_async_cancelled_wait_loses_nothing",
        lock_async_cancelled_wait_loses_nothing,
    ),
    ("sync::rlock_recursion_and_owner", rlock_recursion_and_owner),
    (
        "sync::semaphore_counts_across_processes",
        semaphore_counts_across_processes,
    ),
    (
        "sync::bounded_semaphore_refuses_extra_release",
        bounded_semaphore_refuses_extra_release,
    ),
    ("sync::event_wakes_a_child", event_wakes_a_child),
    (
        "sync::event_set_then_clear_still_wakes",
        event_set_then_clear_still_wakes,
    ),
    (
        "sync::condition_notify_n_across_processes",
        condition_notify_n_across_processes,
    ),
    (
        "sync::condition_wait_for_timeout_and_misuse",
        condition_wait_for_timeout_and_misuse,
    ),
    ("sync::barrier_across_processes", barrier_across_processes),
    (
        "sync::barrier_timeout_abort_reset",
        barrier_timeout_abort_reset,
    ),
    (
        "sync::barrier_cancelled_wait_breaks_it",
        barrier_cancelled_wait_breaks_it,
    ),
    (
        "sync::ten_thousand_tasks_on_one_event_take_no_thread_each",
        ten_thousand_tasks_on_one_event_take_no_thread_each,
    ),
    (
        "sync::semaphore_handed_round_ten_thousand_tasks_in_two_processes",
        semaphore_handed_round_ten_thousand_tasks_in_two_processes,
    ),
    (
        "sync::woken_async_waiter_dropped_passes_its_wake_on",
        woken_async_waiter_dropped_passes_its_wake_on,
    ),
    (
        "sync::a_thousand_tasks_on_one_condition_take_no_thread_each",
        a_thousand_tasks_on_one_condition_take_no_thread_each,
    ),
    (
        "sync::condition_async_waits_dropped_at_each_await",
        condition_async_waits_dropped_at_each_await,
    ),
    (
        "sync::async_waits_end_their_watch_thread",
        async_waits_end_their_watch_thread,
    ),
];

/// How many threads this process has.
pub(crate) fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// How many of this process's threads are conex watch threads.
fn watch_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| {
        d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|c| c.trim() == "conex-xwait")
            .count()
    })
}

/// In a quiet child: 10,000 tasks on a 2-worker runtime await `go`; it
/// sets `ready` once all wait, and `done` once all are through. Returns
/// the extra threads the waits took.
fn many_event_waiters((go, ready, done): (Event, Event, Event)) -> usize {
    let rt = crate::two_workers();
    rt.block_on(async {
        let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let before = threads();
        let tasks: Vec<_> = (0..10_000)
            .map(|_| {
                let (go, started) = (go.clone(), started.clone());
                tokio::spawn(async move {
                    started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    go.wait().await;
                })
            })
            .collect();
        while started.load(std::sync::atomic::Ordering::SeqCst) < 10_000 {
            tokio::task::yield_now().await;
        }
        // Each task registered in the poll that counted it.
        let extra = threads().saturating_sub(before);
        ready.set();
        for t in tasks {
            t.await.unwrap();
        }
        done.set();
        extra
    })
}

// Not in CPython: 10,000 async waiters of one process on one cross-process
// Event cost at most 4 extra threads while they wait (one watch thread
// sleeps for all), and a set() from another process releases them all.
fn ten_thousand_tasks_on_one_event_take_no_thread_each() {
    let (go, ready, done) = (
        Event::new().unwrap(),
        Event::new().unwrap(),
        Event::new().unwrap(),
    );
    let p = Process::new(
        many_event_waiters,
        (go.clone(), ready.clone(), done.clone()),
    );
    p.start().unwrap();
    assert!(ready.blocking().wait_timeout(Duration::from_secs(60)));
    let t0 = Instant::now();
    go.set();
    assert!(done.blocking().wait_timeout(Duration::from_secs(60)));
    let released = t0.elapsed();
    let extra = p.blocking().result().unwrap();
    assert!(extra <= 4, "{extra} extra threads for 10,000 waiting tasks");
    // Wide: the figure itself (well under a second) is the example's.
    assert!(released < Duration::from_secs(30), "{released:?}");
}

/// `n` tasks each take `s` once, bump the shared counter with a read, a
/// yield and a write (a lost update if two held it at once), and release.
/// Returns how many got through.
async fn take_turns(s: Semaphore, count: RawValue<u64>, n: usize) -> usize {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (s, count) = (s.clone(), count.clone());
            tokio::spawn(async move {
                s.acquire().await;
                let v = count.get();
                tokio::task::yield_now().await;
                count.set(v + 1);
                s.release(1).unwrap();
            })
        })
        .collect();
    let mut through = 0;
    for t in tasks {
        t.await.unwrap();
        through += 1;
    }
    through
}

fn take_turns_in_child((s, count, n): (Semaphore, RawValue<u64>, usize)) -> usize {
    crate::two_workers().block_on(take_turns(s, count, n))
}

// Not in CPython: a Semaphore(1) handed round 10,000 waiting tasks in two
// processes: each acquires exactly once, none at the same time, and no
// wake-up is lost (a lost one hangs, which the bound turns into a failure).
fn semaphore_handed_round_ten_thousand_tasks_in_two_processes() {
    let s = Semaphore::new(1).unwrap();
    let count = RawValue::new(0u64).unwrap();
    let p = Process::new(take_turns_in_child, (s.clone(), count.clone(), 5_000));
    p.start().unwrap();
    let here = RT.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(120),
            take_turns(s.clone(), count.clone(), 5_000),
        )
        .await
        .expect("a lost wake-up: the hand-round stalled")
    });
    assert_eq!(here, 5_000);
    assert_eq!(p.blocking().result().unwrap(), 5_000);
    assert_eq!(count.get(), 10_000);
    assert_eq!(s.get_value(), 1);
}

/// A waker that records that it was woken.
struct Flag(std::sync::atomic::AtomicBool);

impl futures::task::ArcWake for Flag {
    fn wake_by_ref(f: &std::sync::Arc<Self>) {
        f.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

// Not in CPython: an async waiter woken for a permit and dropped before
// it polls again takes nothing, and its wake-up goes to the next waiter.
fn woken_async_waiter_dropped_passes_its_wake_on() {
    use std::future::Future;
    use std::sync::atomic::Ordering::SeqCst;
    let _rt = RT.enter();
    let s = Semaphore::new(0).unwrap();
    let (fa, fb) = (
        std::sync::Arc::new(Flag(false.into())),
        std::sync::Arc::new(Flag(false.into())),
    );
    let (wa, wb) = (
        futures::task::waker(fa.clone()),
        futures::task::waker(fb.clone()),
    );
    let mut a = Box::pin(s.acquire());
    let mut b = Box::pin(s.acquire());
    assert!(
        a.as_mut()
            .poll(&mut std::task::Context::from_waker(&wa))
            .is_pending()
    );
    assert!(
        b.as_mut()
            .poll(&mut std::task::Context::from_waker(&wb))
            .is_pending()
    );
    s.release(1).unwrap();
    let t0 = Instant::now();
    while !fa.0.load(SeqCst) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the first waiter was never woken"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!fb.0.load(SeqCst), "one permit woke both waiters");
    drop(a);
    assert_eq!(s.get_value(), 1, "the dropped waiter took the permit");
    assert!(
        fb.0.load(SeqCst),
        "the dropped waiter's wake-up was not passed on"
    );
    assert!(
        b.as_mut()
            .poll(&mut std::task::Context::from_waker(&wb))
            .is_ready()
    );
    assert_eq!(s.get_value(), 0);
}

// Not in CPython: the thread that sleeps for a process's async waiters on
// a word ends once none waits (checked in a quiet child).
fn watch_thread_count_after_waits(e: Event) -> (usize, usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(!e.wait_timeout(Duration::from_millis(20)).await);
        let during = {
            let waiting = tokio::spawn({
                let e = e.clone();
                async move { e.wait_timeout(Duration::from_secs(30)).await }
            });
            tokio::task::yield_now().await;
            let n = watch_threads();
            e.set();
            assert!(waiting.await.unwrap());
            n
        };
        let t0 = Instant::now();
        while watch_threads() > 0 && t0.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (during, watch_threads())
    })
}

fn async_waits_end_their_watch_thread() {
    let e = Event::new().unwrap();
    let p = Process::new(watch_thread_count_after_waits, e.clone());
    p.start().unwrap();
    let (during, after) = p.blocking().result().unwrap();
    assert!(during <= 1, "{during} watch threads for one event");
    assert_eq!(after, 0, "the watch thread outlived its waiters");
}

// _TestLock.test_lock
fn lock_basics() {
    let l = Lock::new().unwrap();
    assert!(!l.locked());
    assert!(l.try_acquire());
    assert!(l.locked());
    assert!(!l.try_acquire());
    assert!(!l.blocking().acquire_timeout(Duration::from_millis(10)));
    l.release().unwrap();
    assert!(matches!(l.release(), Err(ReleaseError::Unlocked)));
    {
        let _g = l.blocking().lock();
        assert!(l.locked());
    }
    assert!(!l.locked());
}

/// Adds 1 to the counter at the start of `shm`, `n` times, under `lock`,
/// with a read and a separate write (a lost update without the lock).
fn add_under_lock((lock, shm, n): (Lock, SharedMemory, u32)) {
    for _ in 0..n {
        let _g = lock.blocking().lock();
        let v = read_counter(&shm);
        std::hint::black_box(v);
        shm.write(0, &(v + 1).to_ne_bytes()).unwrap();
    }
}

fn read_counter(shm: &SharedMemory) -> u64 {
    let mut cell = [0u8; 8];
    shm.read(0, &mut cell).unwrap();
    u64::from_ne_bytes(cell)
}

// _TestLock / test_multiprocessing's lock-protected counter
fn lock_excludes_across_processes() {
    let lock = Lock::new().unwrap();
    let shm = SharedMemory::create(None, 8).unwrap();
    let name = shm.name().to_owned();
    let ps: Vec<_> = (0..3)
        .map(|i| {
            let m = if i == 1 {
                StartMethod::Forkserver
            } else {
                StartMethod::Spawn
            };
            let p = Process::builder().start_method(m).build(
                add_under_lock,
                (lock.clone(), SharedMemory::attach(&name).unwrap(), 2000),
            );
            p.start().unwrap();
            p
        })
        .collect();
    // This process takes part too, through the async face.
    let mut shm = shm;
    RT.block_on(async {
        for _ in 0..2000 {
            let _g = lock.lock().await;
            let v = read_counter(&shm);
            std::hint::black_box(v);
            shm.write(0, &(v + 1).to_ne_bytes()).unwrap();
        }
    });
    for p in &ps {
        p.blocking().result().unwrap();
    }
    assert_eq!(read_counter(&shm), 8000);
    shm.unlink().unwrap();
}

fn release_it(lock: Lock) -> bool {
    lock.release().is_ok()
}

// _TestLock.test_lock (release from another thread is allowed; here
// another process)
fn lock_released_by_another_process() {
    let lock = Lock::new().unwrap();
    lock.blocking().acquire();
    let p = Process::new(release_it, lock.clone());
    p.start().unwrap();
    assert!(p.blocking().result().unwrap());
    assert!(!lock.locked());
    let q = Process::new(release_it, lock.clone());
    q.start().unwrap();
    assert!(
        !q.blocking().result().unwrap(),
        "releasing an unlocked lock fails in the child too"
    );
}

fn hold_until((lock, held, go): (Lock, Event, Event)) {
    lock.blocking().acquire();
    held.set();
    go.blocking().wait();
    lock.release().unwrap();
}

// Not in CPython (a blocked acquire cannot be cancelled there): an async
// acquire dropped while waiting holds nothing, even when the lock is
// released right as it is dropped.
fn lock_async_cancelled_wait_loses_nothing() {
    let lock = Lock::new().unwrap();
    let (held, go) = (Event::new().unwrap(), Event::new().unwrap());
    let p = Process::new(hold_until, (lock.clone(), held.clone(), go.clone()));
    p.start().unwrap();
    held.blocking().wait();
    RT.block_on(async {
        for _ in 0..5 {
            assert!(
                tokio::time::timeout(Duration::from_millis(5), lock.acquire())
                    .await
                    .is_err()
            );
        }
        assert!(!lock.acquire_timeout(Duration::from_millis(5)).await);
        go.set();
        // Another waiter, racing the release: it gets the lock (and gives
        // it back) or is cancelled (and must hold nothing).
        if tokio::time::timeout(Duration::from_millis(1), lock.acquire())
            .await
            .is_ok()
        {
            lock.release().unwrap();
        }
    });
    p.blocking().join().unwrap();
    // Whatever the race, nobody holds it after a moment: a cancelled
    // waiter that won gave it back.
    assert!(lock.blocking().acquire_timeout(Duration::from_secs(10)));
    lock.release().unwrap();
}

fn release_foreign(r: RLock) -> bool {
    matches!(r.release(), Err(ReleaseError::NotOwner))
}

// _TestLock.test_rlock
fn rlock_recursion_and_owner() {
    let r = RLock::new().unwrap();
    r.blocking().acquire();
    r.blocking().acquire();
    assert!(r.try_acquire());
    assert_eq!(r.recursion_level(), 3);
    assert!(r.is_owned());
    // Another thread is not the owner.
    let r2 = r.clone();
    assert!(
        std::thread::spawn(move || !r2.try_acquire() && r2.release().is_err())
            .join()
            .unwrap()
    );
    // Nor is another process.
    let p = Process::new(release_foreign, r.clone());
    p.start().unwrap();
    assert!(p.blocking().result().unwrap());
    for _ in 0..3 {
        r.release().unwrap();
    }
    // A free lock: Unlocked, as threading.RLock (RLockTests.test_release_unacquired).
    assert!(matches!(r.release(), Err(ReleaseError::Unlocked)));
    assert_eq!(r.recursion_level(), 0);
}

fn take_two((s, done): (Semaphore, Event)) -> u32 {
    s.blocking().acquire();
    s.blocking().acquire();
    done.set();
    s.get_value()
}

// _TestSemaphore.test_semaphore / test_timeout
fn semaphore_counts_across_processes() {
    let s = Semaphore::new(1).unwrap();
    assert_eq!(s.get_value(), 1);
    let done = Event::new().unwrap();
    let p = Process::new(take_two, (s.clone(), done.clone()));
    p.start().unwrap();
    // The child takes one and waits for the second.
    assert!(!done.blocking().wait_timeout(Duration::from_millis(50)));
    s.release(1).unwrap();
    assert!(done.blocking().wait_timeout(Duration::from_secs(30)));
    assert_eq!(p.blocking().result().unwrap(), 0);
    assert!(!s.blocking().acquire_timeout(Duration::from_millis(10)));
    s.release(3).unwrap();
    assert_eq!(s.get_value(), 3);
    assert!(matches!(s.release(0), Err(ReleaseError::ZeroCount)));
}

// _TestSemaphore.test_bounded_semaphore
fn bounded_semaphore_refuses_extra_release() {
    let b = BoundedSemaphore::new(2).unwrap();
    assert!(matches!(b.release(1), Err(ReleaseError::TooManyReleases)));
    assert!(b.try_acquire());
    b.release(1).unwrap();
    assert_eq!(b.get_value(), 2);
    let s = Semaphore::new(0).unwrap();
    s.release(5).unwrap();
    assert_eq!(s.get_value(), 5);
}

fn wait_for(e: Event) -> bool {
    e.blocking().wait_timeout(Duration::from_secs(60))
}

// _TestEvent.test_event
fn event_wakes_a_child() {
    let e = Event::new().unwrap();
    assert!(!e.is_set());
    assert!(!e.blocking().wait_timeout(Duration::from_millis(10)));
    let p = Process::new(wait_for, e.clone());
    p.start().unwrap();
    RT.block_on(async {
        assert!(!e.wait_timeout(Duration::from_millis(20)).await);
        e.set();
        e.wait().await;
    });
    assert!(p.blocking().result().unwrap());
    e.clear();
    assert!(!e.is_set());
}

// lock_tests.EventTests.test_set_and_clear: waiters woken by set return
// true even if clear follows at once.
fn event_set_then_clear_still_wakes() {
    let e = Event::new().unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let p = Process::new(wait_for, e.clone());
            p.start().unwrap();
            p
        })
        .collect();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || e.blocking().wait_timeout(Duration::from_secs(60)))
        })
        .collect();
    // Every waiter has read the generation it waits in once it counts as
    // waiting: from then on a set wakes it, whatever follows.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while e.n_waiting() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "the waiters never waited"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    e.set();
    e.clear();
    for t in threads {
        assert!(t.join().unwrap());
    }
    for p in &waiters {
        assert!(p.blocking().result().unwrap());
    }
}

/// Waits on `c` (no predicate), then counts itself in `woke` under the
/// lock.
fn wait_then_count((c, woke): (Condition, RawValue<u32>)) {
    let c2 = c.blocking();
    let g = c2.lock();
    let g = c2.wait(g).unwrap();
    woke.set(woke.get() + 1);
    drop(g);
}

fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

// _TestCondition.test_notify / test_notify_n / test_notify_all
fn condition_notify_n_across_processes() {
    let c = Condition::new().unwrap();
    let woke = RawValue::new(0u32).unwrap();
    let ps: Vec<_> = (0..3)
        .map(|_| {
            let p = Process::new(wait_then_count, (c.clone(), woke.clone()));
            p.start().unwrap();
            p
        })
        .collect();
    poll_until("three sleepers", || c.n_waiting() == 3);
    {
        let g = c.blocking().lock();
        c.notify(2).unwrap();
        drop(g);
    }
    poll_until("two wake-ups", || woke.get() == 2);
    // The third stays asleep (CPython checks the same after a pause).
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(woke.get(), 2);
    assert_eq!(c.n_waiting(), 1);
    {
        let g = c.blocking().lock();
        c.notify_all().unwrap();
        drop(g);
    }
    for p in &ps {
        p.blocking().result().unwrap();
    }
    assert_eq!(woke.get(), 3);
}

fn set_and_notify((c, flag): (Condition, RawValue<u32>)) {
    let g = c.blocking().lock();
    flag.set(1);
    c.notify_all().unwrap();
    drop(g);
}

// _TestCondition.test_waitfor / test_timeout; notify without the lock
fn condition_wait_for_timeout_and_misuse() {
    let c = Condition::new().unwrap();
    assert!(c.notify(1).is_err(), "notify needs the lock");
    let flag = RawValue::new(0u32).unwrap();
    RT.block_on(async {
        let g = c.lock().await;
        let (g, notified) = c.wait_timeout(g, Duration::from_millis(20)).await.unwrap();
        assert!(!notified);
        let (g, ok) = c
            .wait_for_timeout(g, Duration::from_millis(20), || flag.get() == 1)
            .await
            .unwrap();
        assert!(!ok);
        // A child sets the flag and notifies; the async wait_for sees it.
        let p = Process::new(set_and_notify, (c.clone(), flag.clone()));
        p.start().unwrap();
        let g = c.wait_for(g, || flag.get() == 1).await.unwrap();
        assert!(
            c.rlock().is_owned(),
            "the lock is held again after the wait"
        );
        drop(g);
        p.result().await.unwrap();
    });
    assert!(!c.rlock().is_owned());
}

fn barrier_rounds((b, rounds): (Barrier, u32)) -> Vec<usize> {
    (0..rounds).map(|_| b.blocking().wait().unwrap()).collect()
}

// _TestBarrier.test_barrier / test_barrier_10 (several rounds)
fn barrier_across_processes() {
    let b = Barrier::new(3).unwrap();
    assert_eq!(b.parties(), 3);
    let ps: Vec<_> = (0..2)
        .map(|_| {
            let p = Process::new(barrier_rounds, (b.clone(), 3));
            p.start().unwrap();
            p
        })
        .collect();
    let mine: Vec<usize> = RT.block_on(async {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(b.wait().await.unwrap());
        }
        v
    });
    let theirs: Vec<Vec<usize>> = ps.iter().map(|p| p.blocking().result().unwrap()).collect();
    for round in 0..3 {
        let mut idx = vec![mine[round], theirs[0][round], theirs[1][round]];
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2], "round {round}: one index each");
    }
    assert!(!b.broken());
}

fn wait_once(b: Barrier) -> bool {
    b.blocking().wait().is_err()
}

// _TestBarrier.test_timeout / test_abort / test_reset
fn barrier_timeout_abort_reset() {
    let b = Barrier::new(2).unwrap();
    assert!(
        b.blocking()
            .wait_timeout(Duration::from_millis(20))
            .is_err()
    );
    assert!(b.broken());
    let p = Process::new(wait_once, b.clone());
    p.start().unwrap();
    assert!(
        p.blocking().result().unwrap(),
        "a broken barrier fails at once"
    );
    b.reset();
    assert!(!b.broken());
    // abort wakes a waiting party in another process.
    let p = Process::new(wait_once, b.clone());
    p.start().unwrap();
    poll_until("a waiting party", || b.n_waiting() == 1);
    b.abort();
    assert!(p.blocking().result().unwrap());
    b.reset();
    // Whole again: two parties pass.
    let p = Process::new(wait_once, b.clone());
    p.start().unwrap();
    assert!(b.blocking().wait_timeout(Duration::from_secs(60)).is_ok());
    assert!(!p.blocking().result().unwrap());
}

// Not in CPython: a dropped async wait breaks the barrier for the others.
fn barrier_cancelled_wait_breaks_it() {
    let b = Barrier::new(2).unwrap();
    RT.block_on(async {
        assert!(
            tokio::time::timeout(Duration::from_millis(20), b.wait())
                .await
                .is_err()
        );
    });
    assert!(b.broken());
    assert_eq!(b.n_waiting(), 0);
    b.reset();
    assert!(!b.broken());
}

/// In a quiet child: 1,000 tasks on a 2-worker runtime wait on `c`; each
/// counts itself in `woke` once notified and through. Returns the extra
/// threads the waits took (counted while all wait, before `ready` is set).
fn many_condition_waiters((c, woke, ready): (Condition, RawValue<u32>, Event)) -> usize {
    let rt = crate::two_workers();
    rt.block_on(async {
        let before = threads();
        let tasks: Vec<_> = (0..1_000)
            .map(|_| {
                let (c, woke) = (c.clone(), woke.clone());
                tokio::spawn(async move {
                    let g = c.lock().await;
                    let (g, notified) = c.wait_timeout(g, Duration::from_secs(60)).await.unwrap();
                    assert!(notified, "timed out, not notified");
                    woke.set(woke.get() + 1);
                    drop(g);
                })
            })
            .collect();
        while c.n_waiting() < 1_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let extra = threads().saturating_sub(before);
        ready.set();
        for t in tasks {
            t.await.unwrap();
        }
        extra
    })
}

// Not in CPython: 1,000 async waiters of one process on one cross-process
// Condition take at most 4 extra threads (one watch thread takes each
// notification for a task), and a notify_all from another process, which
// waits until every sleeper is awake, returns and releases them all.
fn a_thousand_tasks_on_one_condition_take_no_thread_each() {
    let (c, woke) = (Condition::new().unwrap(), RawValue::new(0u32).unwrap());
    let ready = Event::new().unwrap();
    let p = Process::new(
        many_condition_waiters,
        (c.clone(), woke.clone(), ready.clone()),
    );
    p.start().unwrap();
    assert!(ready.blocking().wait_timeout(Duration::from_secs(60)));
    assert_eq!(c.n_waiting(), 1_000);
    {
        let g = c.blocking().lock();
        c.notify_all().unwrap();
        drop(g);
    }
    let extra = p.blocking().result().unwrap();
    assert!(extra <= 4, "{extra} extra threads for 1,000 waiting tasks");
    assert_eq!(woke.get(), 1_000);
    assert_eq!(c.n_waiting(), 0);
}

/// A wait on `c` (for `long`) polled once, so it sleeps.
async fn asleep(
    c: &Condition,
    long: Duration,
) -> std::pin::Pin<
    Box<
        impl std::future::Future<
            Output = Result<
                (conex::multiprocessing::RLockGuard<'_>, bool),
                conex::threading::NotOwned,
            >,
        > + '_,
    >,
> {
    let g = c.lock().await;
    let mut w = Box::pin(c.wait_timeout(g, long));
    assert!(poll_once(w.as_mut()).is_pending());
    w
}

/// Polls `f` once.
fn poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

// Not in CPython (a wait there cannot be cancelled): an async Condition
// wait dropped at each of its awaits loses no notification. All in one
// task (one owner), polled by hand, on the multi-thread runtime's own
// thread: the notifier blocks the very thread that would poll the woken
// waits, and returns all the same (the watch's thread takes each
// notification for a task and acknowledges it).
fn condition_async_waits_dropped_at_each_await() {
    let c = Condition::new().unwrap();
    let long = Duration::from_secs(60);
    RT.block_on(async {
        // 1. Dropped while asleep: nothing owed, no sleeper left counted.
        let a = asleep(&c, long).await;
        assert_eq!(c.n_waiting(), 1);
        drop(a);
        assert_eq!(c.n_waiting(), 0);

        // 2. Notified, then dropped before it saw it: the notification
        // goes to the next waiter.
        let a = asleep(&c, long).await;
        let mut b = asleep(&c, long).await;
        let g = c.lock().await;
        c.notify(1).unwrap(); // returns once A's notification is taken
        drop(g);
        drop(a);
        match poll_once(b.as_mut()) {
            std::task::Poll::Ready(r) => {
                let (g, notified) = r.unwrap();
                assert!(notified, "the passed-on notification is B's");
                drop(g);
            }
            std::task::Poll::Pending => panic!("B did not get A's notification"),
        }
        drop(b);
        assert_eq!(c.n_waiting(), 0);

        // 3. Notified with no one to pass it to: it goes back, and the
        // next waiter takes it at once.
        let a = asleep(&c, long).await;
        let g = c.lock().await;
        c.notify(1).unwrap();
        drop(g);
        drop(a);
        let g = c.lock().await;
        let (g, notified) = c.wait_timeout(g, Duration::from_millis(50)).await.unwrap();
        assert!(notified, "the given-back notification was lost");
        drop(g);

        // 4. Dropped while it re-takes the lock (held here): holds
        // nothing after, and its notification goes on.
        let mut a = asleep(&c, long).await;
        let g = c.lock().await;
        c.notify(1).unwrap();
        assert!(poll_once(a.as_mut()).is_pending(), "the lock is held here");
        drop(a);
        assert!(c.rlock().is_owned());
        assert_eq!(
            c.rlock().recursion_level(),
            1,
            "the dropped wait took a level"
        );
        let (g, notified) = c.wait_timeout(g, Duration::from_millis(50)).await.unwrap();
        assert!(notified, "the dropped wait's notification was lost");
        drop(g);
        assert!(!c.rlock().is_owned());
        assert_eq!(c.n_waiting(), 0);
    });
}
