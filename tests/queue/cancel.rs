//! Cancellation of every queue future at each await point, and timeouts
//! under paused tokio time: a dropped get never loses an item, a dropped put
//! never inserts one, a wake-up is never swallowed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::Duration;

use conex::queue::*;
use futures::task::{ArcWake, waker};

struct Flag(AtomicBool);

impl ArcWake for Flag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, SeqCst);
    }
}

struct Probe<'a, T> {
    fut: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
    woken: Arc<Flag>,
}

impl<'a, T> Probe<'a, T> {
    fn new(fut: impl Future<Output = T> + Send + 'a) -> Self {
        Probe {
            fut: Box::pin(fut),
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
        assert!(self.poll().is_pending());
    }
    #[track_caller]
    fn ready(&mut self) -> T {
        match self.poll() {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("expected the future to complete"),
        }
    }
}

#[tokio::test]
async fn get_loses_no_item() {
    let q = Queue::<u32>::unbounded();
    for timed in [false, true] {
        let t = Duration::from_secs(3600);
        let make = || -> Pin<Box<dyn Future<Output = Result<u32, GetError>> + Send + '_>> {
            if timed {
                Box::pin(q.get_timeout(t))
            } else {
                Box::pin(async { q.get().await })
            }
        };
        // Dropped while waiting: it leaves the queue of getters.
        let mut a = Probe::new(make());
        a.pending();
        assert_eq!(q.n_waiting().getters, 1);
        drop(a);
        assert_eq!(q.n_waiting().getters, 0);
        // Woken by a put, dropped before it ran: the item stays and the
        // next getter is woken for it.
        let mut a = Probe::new(make());
        let mut b = Probe::new(make());
        a.pending();
        b.pending();
        q.put_nowait(7).unwrap();
        assert!(a.woken() && !b.woken());
        drop(a);
        assert!(b.woken(), "the wake-up was passed on");
        assert_eq!(q.qsize(), 1, "no item was lost");
        assert_eq!(b.ready(), Ok(7));
        assert_eq!(q.n_waiting(), conex::queue::Waiting::default());
    }
}

#[tokio::test]
async fn put_inserts_no_phantom() {
    let q = Queue::new(1);
    let q = &q;
    for timed in [false, true] {
        let t = Duration::from_secs(3600);
        let make =
            |v: u32| -> Pin<Box<dyn Future<Output = Result<(), PutError<u32>>> + Send + '_>> {
                if timed {
                    Box::pin(q.put_timeout(v, t))
                } else {
                    Box::pin(async move { q.put(v).await })
                }
            };
        q.put_nowait(0).unwrap(); // full
        let mut a = Probe::new(make(1));
        a.pending();
        drop(a);
        assert_eq!(q.qsize(), 1);
        assert_eq!(q.n_waiting().putters, 0);
        // Woken by a get, dropped before it ran: nothing is inserted, the
        // free slot goes to the next putter.
        let mut a = Probe::new(make(2));
        let mut b = Probe::new(make(3));
        a.pending();
        b.pending();
        assert_eq!(q.get_nowait(), Ok(0));
        assert!(a.woken() && !b.woken());
        drop(a);
        assert!(b.woken());
        assert_eq!(q.qsize(), 0, "the dropped put inserted nothing");
        assert_eq!(b.ready(), Ok(()));
        assert_eq!(q.get_nowait(), Ok(3));
        assert_eq!(q.unfinished_tasks(), 2);
        q.task_done().unwrap();
        q.task_done().unwrap();
    }
}

#[tokio::test]
async fn join_loses_nothing() {
    let q = Queue::unbounded();
    q.put_nowait(1).unwrap();
    let mut j = Probe::new(q.join());
    j.pending();
    drop(j);
    assert_eq!(q.n_waiting().joiners, 0);
    let mut j = Probe::new(q.join());
    j.pending();
    q.get_nowait().unwrap();
    q.task_done().unwrap();
    assert!(j.woken());
    j.ready();
}

#[tokio::test]
async fn simple_queue_get_loses_no_item() {
    let q = SimpleQueue::new();
    let mut a = Probe::new(q.get());
    let mut b = Probe::new(q.get());
    a.pending();
    b.pending();
    q.put(1);
    drop(a);
    assert_eq!(b.ready(), 1);
    let mut t = Probe::new(q.get_timeout(Duration::from_secs(60)));
    t.pending();
    drop(t);
    q.put(2);
    assert_eq!(q.get_nowait(), Ok(2));
}

#[tokio::test(start_paused = true)]
async fn timeouts_under_paused_time() {
    let q = Queue::new(1);
    let start = tokio::time::Instant::now();
    assert_eq!(
        q.get_timeout(Duration::from_secs(10)).await,
        Err(GetError::Empty)
    );
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    q.put_nowait(1).unwrap();
    assert!(matches!(
        q.put_timeout(2, Duration::from_secs(5)).await,
        Err(PutError::Full(2))
    ));
    assert_eq!(start.elapsed(), Duration::from_secs(15));
    // A get before the deadline wins.
    let q2 = q.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        q2.get_nowait().unwrap();
    });
    q.put_timeout(3, Duration::from_secs(5)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(17));
    let s = SimpleQueue::<u8>::new();
    assert_eq!(
        s.get_timeout(Duration::from_secs(1)).await,
        Err(GetError::Empty)
    );
}

/// An item whose drop puts the next, smaller one into its own queue.
struct Chain(u32, SimpleQueue<Chain>);

impl Drop for Chain {
    fn drop(&mut self) {
        if self.0 > 0 {
            self.1.put(Chain(self.0 - 1, SimpleQueue::clone(&self.1)));
        }
    }
}

// After SimpleQueueTest.test_reentrancy (there the collector runs a
// __del__ that puts in the middle of a put; a Rust destructor runs where
// its value is dropped, so the case to cover is an item's own): a
// destructor that puts into the same queue never deadlocks, on either
// face, and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_queue_put_from_a_destructor() {
    let q = SimpleQueue::new();
    q.put(Chain(3, q.clone()));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let item = q.get().await;
        seen.push(item.0);
        drop(item); // puts the next one
    }
    let item = q.blocking().get();
    seen.push(item.0);
    drop(item);
    let last = q.get_nowait().unwrap();
    seen.push(last.0);
    drop(last); // 0: puts nothing
    assert_eq!(seen, [3, 2, 1, 0]);
    assert!(q.empty());
}
