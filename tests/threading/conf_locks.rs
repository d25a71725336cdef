//! Lock, RLock, Semaphore and BoundedSemaphore behaviours, from CPython's
//! Lib/test/lock_tests.py (BaseLockTests, LockTests, RLockTests,
//! BaseSemaphoreTests, SemaphoreTests, BoundedSemaphoreTests), run through
//! every face.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::prims::*;

use super::face::{Face, SETTLE, assert_timeout, wait_until};

/// Python's `Bunch`: `n` workers running the same body.
pub struct Bunch<F: Face> {
    pub started: Arc<AtomicUsize>,
    pub finished: Arc<AtomicUsize>,
    joins: Vec<futures::future::BoxFuture<'static, ()>>,
    _face: std::marker::PhantomData<F>,
}

impl<F: Face> Bunch<F> {
    pub fn new<Fut>(n: usize, body: impl Fn() -> Fut) -> Bunch<F>
    where
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let started = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let joins = (0..n)
            .map(|_| {
                let (s, f, fut) = (started.clone(), finished.clone(), body());
                F::spawn(async move {
                    s.fetch_add(1, SeqCst);
                    fut.await;
                    f.fetch_add(1, SeqCst);
                })
            })
            .collect();
        Bunch {
            started,
            finished,
            joins,
            _face: std::marker::PhantomData,
        }
    }

    pub fn wait_for_started(&self, n: usize) -> impl std::future::Future<Output = ()> + Send {
        let s = self.started.clone();
        async move { wait_until::<F>("workers started", || s.load(SeqCst) >= n).await }
    }

    pub fn finished(&self) -> usize {
        self.finished.load(SeqCst)
    }

    /// Joins every worker (re-raising a worker's panic).
    pub async fn wait_for_finished(self) {
        for j in self.joins {
            j.await;
        }
    }
}

// ---------------------------------------------------------------- Lock

// BaseLockTests.test_constructor, test_repr
pub async fn lock_constructor_and_repr<F: Face>() {
    let lock = Lock::new();
    assert_eq!(format!("{lock:?}"), "Lock { locked: false }");
    F::acquire(&lock).await;
    assert_eq!(format!("{lock:?}"), "Lock { locked: true }");
    lock.release().unwrap();
}

// BaseLockTests.test_acquire_destroy
pub async fn lock_acquire_destroy<F: Face>() {
    let lock = Lock::new();
    F::acquire(&lock).await;
    drop(lock);
}

// BaseLockTests.test_acquire_release
pub async fn lock_acquire_release<F: Face>() {
    let lock = Lock::new();
    F::acquire(&lock).await;
    lock.release().unwrap();
    assert!(!lock.locked());
}

// BaseLockTests.test_try_acquire
pub async fn lock_try_acquire<F: Face>() {
    let lock = Lock::new();
    assert!(lock.try_acquire());
    assert!(!lock.try_acquire());
    lock.release().unwrap();
}

// BaseLockTests.test_try_acquire_contended
pub async fn lock_try_acquire_contended<F: Face>() {
    let lock = Lock::new();
    F::acquire(&lock).await;
    let l2 = lock.clone();
    let got = F::spawn(async move { l2.try_acquire() }).await;
    assert!(!got);
    lock.release().unwrap();
}

// BaseLockTests.test_acquire_contended
pub async fn lock_acquire_contended<F: Face>() {
    let lock = Lock::new();
    F::acquire(&lock).await;
    let b = Bunch::<F>::new(5, || {
        let l = lock.clone();
        async move {
            F::acquire(&l).await;
            l.release().unwrap();
        }
    });
    b.wait_for_started(5).await;
    wait_until::<F>("all 5 queued", || lock.n_waiting() == 5).await;
    assert_eq!(b.finished(), 0);
    lock.release().unwrap();
    b.wait_for_finished().await;
    assert!(!lock.locked());
}

// BaseLockTests.test_with
pub async fn lock_with<F: Face>() {
    let lock = Lock::new();
    {
        let _g = F::lock(&lock).await;
        assert!(lock.locked());
    }
    assert!(!lock.locked());
    // A panic inside `with lock:` releases it too.
    let l2 = lock.clone();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _g = l2.try_lock().unwrap();
        panic!("TypeError");
    }));
    assert!(r.is_err());
    let l3 = lock.clone();
    F::spawn(async move {
        F::acquire(&l3).await;
        l3.release().unwrap();
    })
    .await;
}

// BaseLockTests.test_thread_leak: finished workers leave no Thread behind.
pub async fn lock_thread_leak<F: Face>() {
    let lock = Lock::new();
    let idents = Arc::new(Mutex::new(Vec::new()));
    let b = Bunch::<F>::new(15, || {
        let (l, ids) = (lock.clone(), idents.clone());
        async move {
            ids.lock().unwrap().push(get_ident());
            F::acquire(&l).await;
            l.release().unwrap();
        }
    });
    b.wait_for_finished().await;
    let alive: Vec<u64> = enumerate().iter().filter_map(Thread::ident).collect();
    for id in idents.lock().unwrap().iter() {
        assert!(!alive.contains(id), "finished worker {id} still listed");
    }
}

// BaseLockTests.test_timeout
pub async fn lock_timeout<F: Face>() {
    let lock = Lock::new();
    // TIMEOUT_MAX and larger are fine (no overflow).
    assert!(F::acquire_timeout(&lock, TIMEOUT_MAX).await);
    lock.release().unwrap();
    assert!(F::acquire_timeout(&lock, Duration::MAX).await);
    lock.release().unwrap();
    let t = Instant::now();
    assert!(F::acquire_timeout(&lock, Duration::from_secs(5)).await);
    assert!(t.elapsed() < Duration::from_secs(5));
    let l2 = lock.clone();
    let (got, dt) = F::spawn(async move {
        let t = Instant::now();
        let got = F::acquire_timeout(&l2, Duration::from_millis(500)).await;
        (got, t.elapsed())
    })
    .await;
    assert!(!got);
    assert_timeout(dt, Duration::from_millis(500));
    lock.release().unwrap();
}

// LockTests.test_reacquire: a Lock must be released before it is acquired
// again, even by the same worker.
pub async fn lock_reacquire<F: Face>() {
    let lock = Lock::new();
    let phase = Arc::new(AtomicUsize::new(0));
    let (l2, p2) = (lock.clone(), phase.clone());
    let w = F::spawn(async move {
        F::acquire(&l2).await;
        p2.fetch_add(1, SeqCst);
        F::acquire(&l2).await;
        p2.fetch_add(1, SeqCst);
    });
    wait_until::<F>("first acquire", || phase.load(SeqCst) == 1).await;
    wait_until::<F>("second acquire queued", || lock.n_waiting() == 1).await;
    assert_eq!(phase.load(SeqCst), 1);
    lock.release().unwrap();
    w.await;
    assert_eq!(phase.load(SeqCst), 2);
    lock.release().unwrap();
}

// LockTests.test_different_thread: another worker may release the lock.
pub async fn lock_different_thread<F: Face>() {
    let lock = Lock::new();
    F::acquire(&lock).await;
    let l2 = lock.clone();
    F::spawn(async move { l2.release().unwrap() }).await;
    F::acquire(&lock).await;
    lock.release().unwrap();
}

// LockTests.test_state_after_timeout
pub async fn lock_state_after_timeout<F: Face>() {
    let lock = Lock::new();
    F::acquire(&lock).await;
    assert!(!F::acquire_timeout(&lock, Duration::from_millis(10)).await);
    lock.release().unwrap();
    assert!(!lock.locked());
    assert!(lock.try_acquire());
    assert_eq!(lock.n_waiting(), 0);
}

// LockTests.test_locked and the RuntimeError of release() when unlocked.
pub async fn lock_locked_and_release_unlocked<F: Face>() {
    let lock = Lock::new();
    assert!(!lock.locked());
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
    F::acquire(&lock).await;
    assert!(lock.locked());
    lock.release().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
}

// Many workers hammering one lock: mutual exclusion holds.
pub async fn lock_mutual_exclusion<F: Face>() {
    let lock = Lock::new();
    let inside = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let b = Bunch::<F>::new(6, || {
        let (l, inside, total) = (lock.clone(), inside.clone(), total.clone());
        async move {
            for _ in 0..2000 {
                let _g = F::lock(&l).await;
                assert_eq!(inside.fetch_add(1, SeqCst), 0, "two holders at once");
                total.fetch_add(1, SeqCst);
                inside.fetch_sub(1, SeqCst);
            }
        }
    });
    b.wait_for_finished().await;
    assert_eq!(total.load(SeqCst), 12_000);
    assert!(!lock.locked());
}

// Waiters are served in FIFO order (asyncio.Lock's fairness among waiters).
pub async fn lock_fifo_wake_order<F: Face>() {
    let lock = Lock::new();
    F::acquire(&lock).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for i in 0..4 {
        let (l, o) = (lock.clone(), order.clone());
        workers.push(F::spawn(async move {
            F::acquire(&l).await;
            o.lock().unwrap().push(i);
            l.release().unwrap();
        }));
        wait_until::<F>("queued in order", || lock.n_waiting() == i + 1).await;
    }
    lock.release().unwrap();
    for w in workers {
        w.await;
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
}

// ---------------------------------------------------------------- RLock

// RLockTests.test_reacquire
pub async fn rlock_reacquire<F: Face>() {
    let lock = RLock::new();
    F::racquire(&lock).await;
    F::racquire(&lock).await;
    lock.release().unwrap();
    F::racquire(&lock).await;
    lock.release().unwrap();
    lock.release().unwrap();
    assert!(!lock.locked());
}

// RLockTests.test_release_unacquired
pub async fn rlock_release_unacquired<F: Face>() {
    let lock = RLock::new();
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
    F::racquire(&lock).await;
    F::racquire(&lock).await;
    lock.release().unwrap();
    F::racquire(&lock).await;
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
}

// RLockTests.test_different_thread: only the owner may release.
pub async fn rlock_different_thread<F: Face>() {
    let lock = RLock::new();
    let can_exit = Event::new();
    let holding = Event::new();
    let (l2, c2, h2) = (lock.clone(), can_exit.clone(), holding.clone());
    let w = F::spawn(async move {
        F::racquire(&l2).await;
        h2.set();
        F::ev_wait(&c2).await;
        l2.release().unwrap();
    });
    F::ev_wait(&holding).await;
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
    assert!(!lock.try_acquire());
    can_exit.set();
    w.await;
    assert!(!lock.locked());
}

// RLockTests.test__is_owned
pub async fn rlock_is_owned<F: Face>() {
    let lock = RLock::new();
    assert!(!lock.is_owned());
    F::racquire(&lock).await;
    assert!(lock.is_owned());
    F::racquire(&lock).await;
    assert!(lock.is_owned());
    let l2 = lock.clone();
    assert!(!F::spawn(async move { l2.is_owned() }).await);
    lock.release().unwrap();
    assert!(lock.is_owned());
    lock.release().unwrap();
    assert!(!lock.is_owned());
}

// RLockTests.test_recursion_count
pub async fn rlock_recursion_count<F: Face>() {
    let lock = RLock::new();
    assert_eq!(lock.recursion_count(), 0);
    F::racquire(&lock).await;
    assert_eq!(lock.recursion_count(), 1);
    F::racquire(&lock).await;
    F::racquire(&lock).await;
    assert_eq!(lock.recursion_count(), 3);
    let l2 = lock.clone();
    assert_eq!(F::spawn(async move { l2.recursion_count() }).await, 0);
    lock.release().unwrap();
    assert_eq!(lock.recursion_count(), 2);
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.recursion_count(), 0);
}

// BaseLockTests.test_acquire_contended and test_timeout for RLock.
pub async fn rlock_contended_and_timeout<F: Face>() {
    let lock = RLock::new();
    F::racquire(&lock).await;
    F::racquire(&lock).await;
    let l2 = lock.clone();
    let (got, dt) = F::spawn(async move {
        let t = Instant::now();
        (
            F::racquire_timeout(&l2, Duration::from_millis(300)).await,
            t.elapsed(),
        )
    })
    .await;
    assert!(!got);
    assert_timeout(dt, Duration::from_millis(300));
    let b = Bunch::<F>::new(5, || {
        let l = lock.clone();
        async move {
            F::racquire(&l).await;
            F::racquire(&l).await;
            l.release().unwrap();
            l.release().unwrap();
        }
    });
    b.wait_for_started(5).await;
    F::sleep(SETTLE).await;
    assert_eq!(b.finished(), 0);
    lock.release().unwrap();
    F::sleep(SETTLE).await;
    assert_eq!(b.finished(), 0, "one release of two levels must not unlock");
    lock.release().unwrap();
    b.wait_for_finished().await;
    assert!(!lock.locked());
}

// BaseLockTests.test_with for RLock: nested guards.
pub async fn rlock_with<F: Face>() {
    let lock = RLock::new();
    {
        let _a = F::rlock(&lock).await;
        let _b = F::rlock(&lock).await;
        assert_eq!(lock.recursion_count(), 2);
    }
    assert!(!lock.locked());
}

// ---------------------------------------------------------------- Semaphore

// BaseSemaphoreTests.test_constructor: Python refuses a negative value; a
// usize cannot be negative, the refused value is one above MAX_VALUE.
pub async fn sem_constructor<F: Face>() {
    assert!(catch_unwind(|| Semaphore::new(Semaphore::MAX_VALUE + 1)).is_err());
    assert_eq!(
        Semaphore::new(Semaphore::MAX_VALUE).value(),
        Semaphore::MAX_VALUE
    );
    assert_eq!(Semaphore::default().value(), 1);
    assert_eq!(BoundedSemaphore::default().initial_value(), 1);
}

// BaseSemaphoreTests.test_acquire, test_acquire_destroy
pub async fn sem_acquire<F: Face>() {
    let sem = Semaphore::new(1);
    F::sem_acquire(&sem).await;
    sem.release(1).unwrap();
    let sem = Semaphore::new(2);
    F::sem_acquire(&sem).await;
    F::sem_acquire(&sem).await;
    sem.release(1).unwrap();
    sem.release(1).unwrap();
    assert_eq!(sem.value(), 2);
    F::sem_acquire(&sem).await;
    drop(sem);
}

// BaseSemaphoreTests.test_acquire_contended
pub async fn sem_acquire_contended<F: Face>() {
    let sem = Semaphore::new(7);
    F::sem_acquire(&sem).await;
    let phase = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let b = Bunch::<F>::new(10, || {
        let (s, p, r) = (sem.clone(), phase.clone(), results.clone());
        async move {
            F::sem_acquire(&s).await;
            r.lock().unwrap().push(p.load(SeqCst));
            F::sem_acquire(&s).await;
            r.lock().unwrap().push(p.load(SeqCst));
        }
    });
    let count = || results.lock().unwrap().len();
    wait_until::<F>("6 acquired", || count() == 6).await;
    assert_eq!(*results.lock().unwrap(), vec![0; 6]);
    phase.store(1, SeqCst);
    for _ in 0..7 {
        sem.release(1).unwrap();
    }
    wait_until::<F>("13 acquired", || count() == 13).await;
    phase.store(2, SeqCst);
    for _ in 0..6 {
        sem.release(1).unwrap();
    }
    wait_until::<F>("19 acquired", || count() == 19).await;
    let mut r = results.lock().unwrap().clone();
    r.sort();
    let mut expected = vec![0; 6];
    expected.extend([1; 7]);
    expected.extend([2; 6]);
    assert_eq!(r, expected);
    assert!(!sem.try_acquire());
    sem.release(1).unwrap();
    b.wait_for_finished().await;
}

// BaseSemaphoreTests.test_multirelease: release(n) wakes n waiters.
pub async fn sem_multirelease<F: Face>() {
    let sem = Semaphore::new(7);
    F::sem_acquire(&sem).await;
    let results = Arc::new(Mutex::new(Vec::new()));
    let phase = Arc::new(AtomicUsize::new(0));
    let b = Bunch::<F>::new(10, || {
        let (s, p, r) = (sem.clone(), phase.clone(), results.clone());
        async move {
            F::sem_acquire(&s).await;
            r.lock().unwrap().push(p.load(SeqCst));
            F::sem_acquire(&s).await;
            r.lock().unwrap().push(p.load(SeqCst));
        }
    });
    let count = || results.lock().unwrap().len();
    wait_until::<F>("6 acquired", || count() == 6).await;
    phase.store(1, SeqCst);
    sem.release(7).unwrap();
    wait_until::<F>("13 acquired", || count() == 13).await;
    phase.store(2, SeqCst);
    sem.release(6).unwrap();
    wait_until::<F>("19 acquired", || count() == 19).await;
    F::sleep(SETTLE).await;
    assert_eq!(count(), 19, "release(n) must wake exactly n");
    assert!(!sem.try_acquire());
    sem.release(1).unwrap();
    b.wait_for_finished().await;
    assert_eq!(sem.release(0), Err(ReleaseError::ZeroCount));
}

// BaseSemaphoreTests.test_try_acquire
pub async fn sem_try_acquire<F: Face>() {
    let sem = Semaphore::new(2);
    assert!(sem.try_acquire());
    assert!(sem.try_acquire());
    assert!(!sem.try_acquire());
    sem.release(1).unwrap();
    assert!(sem.try_acquire());
}

// BaseSemaphoreTests.test_try_acquire_contended
pub async fn sem_try_acquire_contended<F: Face>() {
    let sem = Semaphore::new(4);
    F::sem_acquire(&sem).await;
    let results = Arc::new(Mutex::new(Vec::new()));
    let b = Bunch::<F>::new(5, || {
        let (s, r) = (sem.clone(), results.clone());
        async move {
            let a = s.try_acquire();
            let b = s.try_acquire();
            r.lock().unwrap().extend([a, b]);
        }
    });
    b.wait_for_finished().await;
    let mut r = results.lock().unwrap().clone();
    r.sort();
    let mut expected = vec![false; 7];
    expected.extend([true; 3]);
    assert_eq!(r, expected);
}

// BaseSemaphoreTests.test_acquire_timeout
pub async fn sem_acquire_timeout<F: Face>() {
    let sem = Semaphore::new(2);
    let short = Duration::from_millis(5);
    assert!(F::sem_acquire_timeout(&sem, short).await);
    assert!(F::sem_acquire_timeout(&sem, short).await);
    assert!(!F::sem_acquire_timeout(&sem, short).await);
    sem.release(1).unwrap();
    assert!(F::sem_acquire_timeout(&sem, short).await);
    let t = Instant::now();
    assert!(!F::sem_acquire_timeout(&sem, Duration::from_millis(500)).await);
    assert_timeout(t.elapsed(), Duration::from_millis(500));
    assert_eq!(sem.n_waiting(), 0);
}

// BaseSemaphoreTests.test_default_value
pub async fn sem_default_value<F: Face>() {
    let sem = Semaphore::default();
    F::sem_acquire(&sem).await;
    let b = Bunch::<F>::new(1, || {
        let s = sem.clone();
        async move {
            F::sem_acquire(&s).await;
            s.release(1).unwrap();
        }
    });
    b.wait_for_started(1).await;
    wait_until::<F>("queued", || sem.n_waiting() == 1).await;
    assert_eq!(b.finished(), 0);
    sem.release(1).unwrap();
    b.wait_for_finished().await;
}

// BaseSemaphoreTests.test_with
pub async fn sem_with<F: Face>() {
    let sem = Semaphore::new(2);
    {
        let _p = F::sem_permit(&sem).await;
        assert!(sem.try_acquire());
        sem.release(1).unwrap();
        let _q = F::sem_permit(&sem).await;
        assert!(!sem.try_acquire());
    }
    assert_eq!(sem.value(), 2);
    let s2 = sem.clone();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _p = s2.try_permit().unwrap();
        panic!("TypeError");
    }));
    assert!(r.is_err());
    assert_eq!(sem.value(), 2);
}

// SemaphoreTests.test_release_unacquired: an unbounded semaphore may go
// above its initial value.
pub async fn sem_release_unacquired<F: Face>() {
    let sem = Semaphore::new(1);
    sem.release(1).unwrap();
    F::sem_acquire(&sem).await;
    F::sem_acquire(&sem).await;
    sem.release(1).unwrap();
    assert_eq!(sem.value(), 1);
}

// BoundedSemaphoreTests.test_release_unacquired
pub async fn bounded_release_unacquired<F: Face>() {
    let sem = BoundedSemaphore::default();
    assert_eq!(sem.release(1), Err(ReleaseError::TooManyReleases));
    F::sem_acquire(&sem).await;
    sem.release(1).unwrap();
    assert_eq!(sem.release(1), Err(ReleaseError::TooManyReleases));
    let sem = BoundedSemaphore::new(3);
    F::sem_acquire(&sem).await;
    F::sem_acquire(&sem).await;
    assert_eq!(sem.release(3), Err(ReleaseError::TooManyReleases));
    assert_eq!(sem.value(), 1, "a refused release changes nothing");
    sem.release(2).unwrap();
    assert_eq!(sem.value(), 3);
}

// A try or a timed guard that fails holds nothing, so dropping it releases
// nothing (it must not release somebody else's hold).
pub async fn failed_guard_attempts_release_nothing<F: Face>() {
    let lock = Lock::new();
    F::acquire(&lock).await;
    assert!(lock.try_lock().is_none());
    assert!(
        lock.blocking()
            .lock_timeout(Duration::from_millis(5))
            .is_none()
    );
    assert!(lock.locked(), "a failed attempt released the holder's lock");
    lock.release().unwrap();

    let rl = RLock::new();
    let (held, release) = (Event::new(), Event::new());
    let (r2, h2, x2) = (rl.clone(), held.clone(), release.clone());
    let w = F::spawn(async move {
        F::racquire(&r2).await;
        h2.set();
        F::ev_wait(&x2).await;
        r2.release().unwrap();
    });
    F::ev_wait(&held).await;
    assert!(rl.try_lock().is_none());
    assert!(
        rl.blocking()
            .lock_timeout(Duration::from_millis(5))
            .is_none()
    );
    assert!(rl.locked());
    release.set();
    w.await;
    assert!(!rl.locked());

    let sem = Semaphore::new(1);
    F::sem_acquire(&sem).await;
    assert!(sem.try_permit().is_none());
    assert!(
        sem.blocking()
            .permit_timeout(Duration::from_millis(5))
            .is_none()
    );
    assert_eq!(sem.value(), 0, "a failed attempt made up a permit");
}
