//! Cross-process Lock, RLock, Semaphore, BoundedSemaphore and Event,
//! passed to children as arguments, on both faces.

use std::time::Duration;

use conex::multiprocessing::{
    BoundedSemaphore, Event, Lock, Process, RLock, Semaphore, SharedMemory, StartMethod,
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
];

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
fn add_under_lock((lock, mut shm, n): (Lock, SharedMemory, u32)) {
    for _ in 0..n {
        let _g = lock.blocking().lock();
        let cell: [u8; 8] = shm.buf()[..8].try_into().unwrap();
        let v = u64::from_ne_bytes(cell);
        std::hint::black_box(v);
        shm.buf_mut()[..8].copy_from_slice(&(v + 1).to_ne_bytes());
    }
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
            let v = u64::from_ne_bytes(shm.buf()[..8].try_into().unwrap());
            std::hint::black_box(v);
            shm.buf_mut()[..8].copy_from_slice(&(v + 1).to_ne_bytes());
        }
    });
    for p in &ps {
        p.blocking().result().unwrap();
    }
    assert_eq!(u64::from_ne_bytes(shm.buf()[..8].try_into().unwrap()), 8000);
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
    assert!(matches!(r.release(), Err(ReleaseError::NotOwner)));
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
    while e.waiting() < 6 {
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
