//! Cancellation: every async method's future is dropped at each of its await
//! points (registered and waiting; woken but not yet run; re-acquiring), and
//! nothing is lost: no permit, no lock, no notification, no wake-up.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use conex::threading::*;
use futures::task::{ArcWake, waker};

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl ArcWake for Flag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, SeqCst);
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A future under test, polled by hand.
struct Probe<'a, T> {
    fut: BoxFut<'a, T>,
    woken: Arc<Flag>,
}

impl<'a, T> Probe<'a, T> {
    fn new(fut: BoxFut<'a, T>) -> Self {
        Probe {
            fut,
            woken: Arc::new(Flag(AtomicBool::new(false))),
        }
    }

    fn poll(&mut self) -> Poll<T> {
        self.woken.0.store(false, SeqCst);
        let w = waker(self.woken.clone());
        self.fut.as_mut().poll(&mut Context::from_waker(&w))
    }

    fn woken(&self) -> bool {
        self.woken.0.load(SeqCst)
    }

    #[track_caller]
    fn pending(&mut self) {
        assert!(self.poll().is_pending(), "expected the future to wait");
    }

    #[track_caller]
    fn ready(&mut self) -> T {
        match self.poll() {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("expected the future to complete"),
        }
    }
}

/// The await points of an acquire-like future on a resource whose one
/// free unit the test holds: dropped while queued, and dropped after the
/// release woke it but before it ran. Neither may keep the unit or swallow
/// the wake-up: the next waiter gets it. Returns the next waiter's output.
fn check_acquire<'a, T: 'a>(
    hold: &dyn Fn(),
    release: &dyn Fn(),
    queued: &dyn Fn() -> usize,
    make: &dyn Fn() -> BoxFut<'a, T>,
) -> T {
    hold();
    // 1. Dropped while queued: it leaves the queue.
    let mut a = Probe::new(make());
    a.pending();
    assert_eq!(queued(), 1);
    drop(a);
    assert_eq!(queued(), 0, "a dropped waiter leaves the queue");
    // 2. Woken, dropped before it ran: the wake-up goes to the next one.
    let mut a = Probe::new(make());
    let mut b = Probe::new(make());
    a.pending();
    b.pending();
    release();
    assert!(a.woken() && !b.woken(), "FIFO: the first waiter is woken");
    drop(a);
    assert!(b.woken(), "the dropped waiter's wake-up was passed on");
    let got = b.ready();
    assert_eq!(queued(), 0);
    got
}

#[tokio::test]
async fn lock_methods_lose_nothing() {
    let lock = Lock::new();
    let hold = || assert!(lock.try_acquire());
    let release = || lock.release().unwrap();
    let queued = || lock.n_waiting();
    let t = Duration::from_secs(3600);
    check_acquire(&hold, &release, &queued, &|| Box::pin(lock.acquire()));
    lock.release().unwrap(); // acquire() keeps the lock once it completes
    drop(check_acquire(&hold, &release, &queued, &|| {
        Box::pin(lock.lock())
    }));
    assert!(!lock.locked(), "the guard released it");
    assert!(check_acquire(&hold, &release, &queued, &|| Box::pin(
        lock.acquire_timeout(t)
    )));
    lock.release().unwrap();
    let g = check_acquire(&hold, &release, &queued, &|| Box::pin(lock.lock_timeout(t)));
    assert!(g.is_some());
    drop(g);
    assert!(!lock.locked());
}

/// An RLock held by another owner: a thread that acquires and releases on
/// command.
struct OtherOwner {
    cmd: mpsc::Sender<bool>,
    ack: mpsc::Receiver<()>,
}

impl OtherOwner {
    fn new(rl: &RLock) -> OtherOwner {
        let (cmd, cmd_rx) = mpsc::channel::<bool>();
        let (ack_tx, ack) = mpsc::channel();
        let rl = rl.clone();
        std::thread::spawn(move || {
            for acquire in cmd_rx {
                if acquire {
                    rl.blocking().acquire();
                } else {
                    rl.release().unwrap();
                }
                ack_tx.send(()).unwrap();
            }
        });
        OtherOwner { cmd, ack }
    }

    fn run(&self, acquire: bool) {
        self.cmd.send(acquire).unwrap();
        self.ack.recv().unwrap();
    }
}

#[tokio::test]
async fn rlock_methods_lose_nothing() {
    let rl = RLock::new();
    let other = OtherOwner::new(&rl);
    let hold = || other.run(true);
    let release = || other.run(false);
    let queued = || rl.n_waiting();
    let t = Duration::from_secs(3600);
    check_acquire(&hold, &release, &queued, &|| Box::pin(rl.acquire()));
    assert!(rl.is_owned());
    rl.release().unwrap();
    drop(check_acquire(&hold, &release, &queued, &|| {
        Box::pin(rl.lock())
    }));
    assert!(check_acquire(&hold, &release, &queued, &|| Box::pin(
        rl.acquire_timeout(t)
    )));
    rl.release().unwrap();
    drop(check_acquire(&hold, &release, &queued, &|| {
        Box::pin(rl.lock_timeout(t))
    }));
    assert!(!rl.locked());
    // A reentrant acquire never waits, so it has no await point to lose.
    let g = rl.lock().await;
    Probe::new(Box::pin(rl.acquire())).ready();
    assert_eq!(rl.recursion_count(), 2);
    rl.release().unwrap();
    drop(g);
    assert!(!rl.locked());
}

#[tokio::test]
async fn semaphore_methods_lose_nothing() {
    let sem = Semaphore::new(1);
    let hold = || assert!(sem.try_acquire());
    let release = || sem.release(1).unwrap();
    let queued = || sem.n_waiting();
    let t = Duration::from_secs(3600);
    check_acquire(&hold, &release, &queued, &|| Box::pin(sem.acquire()));
    sem.release(1).unwrap();
    drop(check_acquire(&hold, &release, &queued, &|| {
        Box::pin(sem.permit())
    }));
    assert!(check_acquire(&hold, &release, &queued, &|| Box::pin(
        sem.acquire_timeout(t)
    )));
    sem.release(1).unwrap();
    drop(check_acquire(&hold, &release, &queued, &|| {
        Box::pin(sem.permit_timeout(t))
    }));
    assert_eq!(sem.value(), 1, "no permit was lost or made up");

    // release(2) wakes two; one of them dropped unpolled passes its turn on.
    let sem = Semaphore::new(0);
    let mut a = Probe::new(Box::pin(sem.acquire()));
    let mut b = Probe::new(Box::pin(sem.acquire()));
    let mut c = Probe::new(Box::pin(sem.acquire()));
    a.pending();
    b.pending();
    c.pending();
    sem.release(2).unwrap();
    assert!(a.woken() && b.woken() && !c.woken());
    drop(a);
    assert!(c.woken());
    b.ready();
    c.ready();
    assert_eq!(sem.value(), 0);
}

#[tokio::test]
async fn condition_lock_methods_lose_nothing() {
    let cond = Condition::with_lock(Lock::new());
    let lock = cond.underlying_lock().clone();
    let hold = || assert!(lock.try_acquire());
    let release = || lock.release().unwrap();
    let queued = || lock.n_waiting();
    let t = Duration::from_secs(3600);
    check_acquire(&hold, &release, &queued, &|| Box::pin(cond.acquire()));
    cond.release().unwrap();
    drop(check_acquire(&hold, &release, &queued, &|| {
        Box::pin(cond.lock())
    }));
    assert!(check_acquire(&hold, &release, &queued, &|| Box::pin(
        cond.acquire_timeout(t)
    )));
    cond.release().unwrap();
    drop(check_acquire(&hold, &release, &queued, &|| {
        Box::pin(cond.lock_timeout(t))
    }));
    assert!(!lock.locked());
}

#[tokio::test]
async fn event_wait_loses_nothing() {
    let ev = Event::new();
    let t = Duration::from_secs(3600);
    for timed in [false, true] {
        let make = || -> BoxFut<'_, bool> {
            if timed {
                Box::pin(ev.wait_timeout(t))
            } else {
                Box::pin(async {
                    ev.wait().await;
                    true
                })
            }
        };
        // Dropped while waiting.
        let mut a = Probe::new(make());
        a.pending();
        assert_eq!(ev.n_waiting(), 1);
        drop(a);
        assert_eq!(ev.n_waiting(), 0);
        // Woken by set, dropped before it ran: the others are woken too, and
        // a set+clear cannot take their wake-up back.
        let mut a = Probe::new(make());
        let mut b = Probe::new(make());
        a.pending();
        b.pending();
        ev.set();
        ev.clear();
        assert!(a.woken() && b.woken());
        drop(a);
        assert!(b.ready());
        assert_eq!(ev.n_waiting(), 0);
    }
}

#[tokio::test]
async fn condition_wait_loses_nothing() {
    let cond = Condition::with_lock(Lock::new());
    let lock = cond.underlying_lock().clone();
    let t = Duration::from_secs(3600);
    type Waits<'a> = Box<dyn Fn(LockGuard<'a>) -> BoxFut<'a, LockGuard<'a>> + 'a>;
    let variants: Vec<Waits<'_>> = vec![
        Box::new(|g| Box::pin(async { cond.wait(g).await.unwrap() })),
        Box::new(|g| Box::pin(async { cond.wait_timeout(g, t).await.unwrap().0 })),
        Box::new(|g| Box::pin(async { cond.wait_for(g, || false).await.unwrap() })),
        Box::new(|g| Box::pin(async { cond.wait_for_timeout(g, t, || false).await.unwrap().0 })),
    ];
    for make in &variants {
        // 0. Dropped before its first poll: the guard is dropped, unlocking.
        let fut = make(lock.try_lock().unwrap());
        drop(fut);
        assert!(!lock.locked());

        // 1. Dropped while waiting for a notification: the lock was released
        //    by the wait and the guard is gone with the future.
        let mut a = Probe::new(make(lock.try_lock().unwrap()));
        a.pending();
        assert!(!lock.locked(), "wait released the lock");
        assert_eq!(cond.n_waiting(), 1);
        drop(a);
        assert_eq!(cond.n_waiting(), 0);
        assert!(!lock.locked(), "nobody holds the lock after the drop");

        // 2. Notified, dropped before it ran: the notification is passed on.
        let mut a = Probe::new(make(lock.try_lock().unwrap()));
        a.pending();
        let mut b = Probe::new(make(lock.try_lock().unwrap()));
        b.pending();
        let g = lock.try_lock().unwrap();
        cond.notify(1).unwrap();
        drop(g);
        assert!(a.woken() && !b.woken());
        drop(a);
        assert!(b.woken(), "the notification went to the next waiter");
        // (wait_for's predicate is false: b goes back to waiting.)
        let _ = b.poll();
        drop(b);
        assert_eq!(cond.n_waiting(), 0);
        assert!(!lock.locked());

        // 3. Notified, ran, now queued to re-acquire the lock (held here):
        //    dropped, the notification is passed on and the lock untouched.
        let mut a = Probe::new(make(lock.try_lock().unwrap()));
        a.pending();
        let mut b = Probe::new(make(lock.try_lock().unwrap()));
        b.pending();
        let g = lock.try_lock().unwrap();
        cond.notify(1).unwrap();
        a.pending(); // consumed the notification, now waiting for the lock
        assert_eq!(lock.n_waiting(), 1);
        drop(a);
        assert_eq!(lock.n_waiting(), 0);
        assert!(b.woken(), "the notification was passed on");
        assert!(lock.locked(), "the lock is still held here");
        drop(g);
        let _ = b.poll();
        drop(b);
        assert!(!lock.locked());
        assert_eq!(cond.n_waiting(), 0);
    }
}

#[tokio::test]
async fn barrier_wait_loses_nothing() {
    let b = Barrier::new(3);
    let t = Duration::from_secs(3600);
    for timed in [false, true] {
        let make = || -> BoxFut<'_, Result<usize, BrokenBarrier>> {
            if timed {
                Box::pin(b.wait_timeout(t))
            } else {
                Box::pin(b.wait())
            }
        };
        // Dropped while the round fills: the caller withdraws.
        let mut a = Probe::new(make());
        a.pending();
        assert_eq!(b.n_waiting(), 1);
        drop(a);
        assert_eq!(b.n_waiting(), 0);
        // The round still needs 3 arrivals.
        let mut x = Probe::new(make());
        let mut y = Probe::new(make());
        x.pending();
        y.pending();
        assert_eq!(b.n_waiting(), 2);
        // Released, dropped before it ran: the others are unaffected.
        let mut z = Probe::new(make());
        assert_eq!(z.ready(), Ok(2));
        assert!(x.woken() && y.woken());
        drop(x);
        assert_eq!(y.ready(), Ok(1));
        assert!(!b.broken());
        assert_eq!(b.n_waiting(), 0);
    }
}

#[tokio::test]
async fn join_futures_lose_nothing() {
    let release = Event::new();
    let r2 = release.clone();
    let t = Thread::spawn(async move {
        r2.wait().await;
        5
    });
    let mut j = Probe::new(Box::pin(t.thread().join()));
    j.pending();
    drop(j);
    let mut jt = Probe::new(Box::pin(t.thread().join_timeout(Duration::from_secs(3600))));
    jt.pending();
    drop(jt);
    let mut all = Probe::new(Box::pin(join_non_daemon()));
    all.pending();
    drop(all);
    assert!(t.is_alive(), "the thread runs on");
    release.set();
    assert_eq!(t.join().await, Ok(5));

    // A JoinHandle's join dropped mid-wait: the thread runs on (its value
    // is discarded, as a detached thread's).
    let release = Event::new();
    let (r2, ran) = (release.clone(), Arc::new(AtomicBool::new(false)));
    let ran2 = ran.clone();
    let h = Thread::spawn(async move {
        r2.wait().await;
        ran2.store(true, SeqCst);
        String::from("discarded")
    });
    let thread = h.thread().clone();
    let mut j = Probe::new(Box::pin(h.join()));
    j.pending();
    drop(j);
    release.set();
    thread.join().await.unwrap();
    assert!(ran.load(SeqCst));
}
