//! Queue behaviours from CPython's Lib/test/test_queue.py (BaseQueueTestMixin,
//! BlockingTestMixin, the 3.13 shutdown tests), run through every face and
//! for every queue kind.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conex::queue::*;
use conex::threading::{Barrier, Event};

use crate::face::{Face, SETTLE, assert_timeout, wait_until};

const QUEUE_SIZE: usize = 5;

/// Runs `body` for a FIFO, a LIFO and a priority queue of `maxsize`, with
/// the order each must give back 111, 333, 222.
async fn each_kind<F: Face, Fut>(maxsize: usize, body: impl Fn(AnyQueue, [i32; 3]) -> Fut)
where
    Fut: std::future::Future<Output = ()>,
{
    body(AnyQueue::Fifo(Queue::new(maxsize)), [111, 333, 222]).await;
    body(AnyQueue::Lifo(LifoQueue::new(maxsize)), [222, 333, 111]).await;
    body(
        AnyQueue::Priority(PriorityQueue::new(maxsize)),
        [111, 222, 333],
    )
    .await;
}

#[derive(Clone)]
enum AnyQueue {
    Fifo(Queue<i32>),
    Lifo(LifoQueue<i32>),
    Priority(PriorityQueue<i32>),
}

macro_rules! on {
    ($q:expr, $b:ident => $e:expr) => {
        match $q {
            AnyQueue::Fifo($b) => $e,
            AnyQueue::Lifo($b) => $e,
            AnyQueue::Priority($b) => $e,
        }
    };
}

// BaseQueueTestMixin.simple_queue_test / test_simple_queue, over each kind.
pub async fn simple_queue<F: Face>() {
    each_kind::<F, _>(QUEUE_SIZE, |q, order| async move {
        on!(&q, q => {
            assert!(q.empty() && !q.full());
            assert_eq!(q.maxsize(), QUEUE_SIZE);
            for v in [111, 333, 222] {
                F::q_put(q, v).await.unwrap();
            }
            assert_eq!(q.qsize(), 3);
            let got = [
                F::q_get(q).await.unwrap(),
                F::q_get(q).await.unwrap(),
                F::q_get(q).await.unwrap(),
            ];
            assert_eq!(got, order, "items came out in the wrong order");
            for i in 0..QUEUE_SIZE - 1 {
                F::q_put(q, i as i32).await.unwrap();
                assert!(!q.empty());
            }
            assert!(!q.full());
            F::q_put(q, 99).await.unwrap();
            assert!(q.full());
            assert!(matches!(q.put_nowait(1), Err(PutError::Full(1))));
            let t = Instant::now();
            assert!(matches!(
                F::q_put_timeout(q, 2, Duration::from_millis(100)).await,
                Err(PutError::Full(2))
            ));
            assert_timeout(t.elapsed(), Duration::from_millis(100));
            // A blocked put is released by a get (do_blocking_test).
            let q2 = q.clone();
            let w = F::spawn(async move { F::q_put(&q2, 7).await });
            wait_until::<F>("putter waiting", || q.n_waiting().putters == 1).await;
            F::q_get(q).await.unwrap();
            w.await.unwrap();
            // Empty it; a blocked get is released by a put.
            while !q.empty() {
                F::q_get(q).await.unwrap();
            }
            assert_eq!(q.get_nowait(), Err(GetError::Empty));
            let t = Instant::now();
            assert_eq!(
                F::q_get_timeout(q, Duration::from_millis(100)).await,
                Err(GetError::Empty)
            );
            assert_timeout(t.elapsed(), Duration::from_millis(100));
            let q2 = q.clone();
            let w = F::spawn(async move { F::q_get(&q2).await });
            wait_until::<F>("getter waiting", || q.n_waiting().getters == 1).await;
            F::q_put(q, 5).await.unwrap();
            assert_eq!(w.await, Ok(5));
        })
    })
    .await;
}

// BaseQueueTestMixin.test_queue_task_done
pub async fn task_done_too_many<F: Face>() {
    let q = Queue::<i32>::unbounded();
    assert_eq!(q.task_done(), Err(TaskDoneError));
    F::q_put(&q, 1).await.unwrap();
    F::q_get(&q).await.unwrap();
    q.task_done().unwrap();
    assert_eq!(q.task_done(), Err(TaskDoneError));
}

// BaseQueueTestMixin.queue_join_test / test_queue_join, twice in a row.
pub async fn join_after_task_done<F: Face>() {
    let q = Queue::<i32>::unbounded();
    let cum = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (q, cum) = (q.clone(), cum.clone());
            F::spawn(async move {
                loop {
                    let x = F::q_get(&q).await.unwrap();
                    if x < 0 {
                        q.task_done().unwrap();
                        return;
                    }
                    cum.fetch_add(x as usize, SeqCst);
                    q.task_done().unwrap();
                }
            })
        })
        .collect();
    for round in 0..2 {
        for i in 0..100 {
            F::q_put(&q, i).await.unwrap();
        }
        F::q_join(&q).await;
        assert_eq!(
            cum.load(SeqCst),
            (round + 1) * 4950,
            "join returned before all were done"
        );
    }
    for _ in 0..2 {
        F::q_put(&q, -1).await.unwrap();
    }
    F::q_join(&q).await;
    for w in workers {
        w.await;
    }
    assert_eq!(q.unfinished_tasks(), 0);
}

// BaseQueueTestMixin.test_nowait
pub async fn nowait<F: Face>() {
    let q = Queue::new(QUEUE_SIZE);
    for i in 0..QUEUE_SIZE {
        q.put_nowait(i).unwrap();
    }
    assert!(matches!(q.put_nowait(9), Err(PutError::Full(9))));
    for i in 0..QUEUE_SIZE {
        assert_eq!(q.get_nowait(), Ok(i));
    }
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
}

// Equal priorities come out in insertion order (stable).
pub async fn priority_is_stable<F: Face>() {
    let q = PriorityQueue::unbounded();
    for (i, p) in [3, 1, 2, 1, 3, 1].into_iter().enumerate() {
        F::q_put(&q, (p, i)).await.unwrap();
    }
    let mut out = Vec::new();
    while let Ok(v) = q.get_nowait() {
        out.push(v);
    }
    assert_eq!(out, [(1, 1), (1, 3), (1, 5), (2, 2), (3, 0), (3, 4)]);
}

// One queue serves the async face and the blocking facade at once.
pub async fn mixed_faces<F: Face>() {
    let q = Queue::new(4);
    let sum = Arc::new(AtomicUsize::new(0));
    let (q1, s1) = (q.clone(), sum.clone());
    let consumer = conex::threading::Thread::spawn_blocking(move || {
        while let Ok(v) = q1.blocking().get() {
            s1.fetch_add(v, SeqCst);
            q1.task_done().unwrap();
        }
    });
    let (q2, s2) = (q.clone(), sum.clone());
    let async_consumer = conex::threading::Thread::spawn(async move {
        while let Ok(v) = q2.get().await {
            s2.fetch_add(v, SeqCst);
            q2.task_done().unwrap();
        }
    });
    for i in 1..=1000 {
        F::q_put(&q, i).await.unwrap();
    }
    F::q_join(&q).await;
    q.shutdown(false);
    F::join(&consumer).await.unwrap();
    F::join(&async_consumer).await.unwrap();
    assert_eq!(sum.load(SeqCst), 500_500);
}

// test_shutdown_empty, test_shutdown_nonempty, test_shutdown_immediate,
// test_shutdown_allowed_transitions
pub async fn shutdown_basics<F: Face>() {
    let q = Queue::<char>::unbounded();
    q.shutdown(false);
    assert_eq!(F::q_put(&q, 'x').await, Err(PutError::ShutDown('x')));
    assert_eq!(F::q_get(&q).await, Err(GetError::ShutDown));

    let q = Queue::unbounded();
    F::q_put(&q, 'x').await.unwrap();
    q.shutdown(false);
    assert_eq!(F::q_get(&q).await, Ok('x'));
    assert_eq!(F::q_get(&q).await, Err(GetError::ShutDown));

    let q = Queue::unbounded();
    F::q_put(&q, 'x').await.unwrap();
    q.shutdown(true);
    assert_eq!(F::q_get(&q).await, Err(GetError::ShutDown));

    let q = Queue::<i32>::unbounded();
    assert!(!q.is_shutdown());
    q.shutdown(false);
    assert!(q.is_shutdown());
    q.shutdown(true);
    assert!(q.is_shutdown());
    q.shutdown(false);
}

// test_shutdown_all_methods_in_one_thread and its immediate twin
pub async fn shutdown_all_methods_one_worker<F: Face>() {
    for immediate in [false, true] {
        let q = Queue::new(2);
        F::q_put(&q, 'L').await.unwrap();
        q.put_nowait('O').unwrap();
        q.shutdown(immediate);
        assert_eq!(F::q_put(&q, 'E').await, Err(PutError::ShutDown('E')));
        assert!(matches!(q.put_nowait('W'), Err(PutError::ShutDown('W'))));
        if immediate {
            assert_eq!(F::q_get(&q).await, Err(GetError::ShutDown));
            assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
            assert_eq!(q.task_done(), Err(TaskDoneError));
            F::q_join(&q).await;
        } else {
            assert!("LO".contains(F::q_get(&q).await.unwrap()));
            q.task_done().unwrap();
            assert!("LO".contains(F::q_get(&q).await.unwrap()));
            q.task_done().unwrap();
            F::q_join(&q).await;
            assert_eq!(F::q_get(&q).await, Err(GetError::ShutDown));
            assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
            assert_eq!(
                F::q_get_timeout(&q, Duration::from_secs(1)).await,
                Err(GetError::ShutDown)
            );
        }
    }
}

// test_shutdown_all_methods_in_many_threads and its immediate twin:
// producers, consumers, joiners and a shutdown racing each other.
pub async fn shutdown_all_methods_many_workers<F: Face>() {
    for immediate in [false, true] {
        let q = Queue::unbounded();
        let (writers, readers, joiners) = (4, 6, if immediate { 2 } else { 0 });
        let per_writer = 2000;
        let when_shutdown = per_writer / 2;
        let start = Barrier::new(writers + readers + joiners);
        let shutdown_now = Event::new();
        let res_puts = Arc::new(Mutex::new(Vec::new()));
        let res_gets = Arc::new(Mutex::new(Vec::new()));
        let mut ws = Vec::new();
        for _ in 0..writers {
            let (q, start, ev, res) = (
                q.clone(),
                start.clone(),
                shutdown_now.clone(),
                res_puts.clone(),
            );
            ws.push(F::spawn(async move {
                for i in 0..when_shutdown / 2 {
                    F::q_put(&q, i).await.unwrap();
                }
                F::barrier_wait(&start).await.unwrap();
                for i in when_shutdown / 2..per_writer {
                    if F::q_put(&q, i).await.is_err() {
                        res.lock().unwrap().push(false);
                        break;
                    }
                    if i == when_shutdown && !ev.is_set() {
                        ev.set();
                        res.lock().unwrap().push(true);
                    }
                }
            }));
        }
        for _ in 0..readers {
            let (q, start, res) = (q.clone(), start.clone(), res_gets.clone());
            ws.push(F::spawn(async move {
                F::q_get(&q).await.unwrap();
                q.task_done().unwrap();
                F::barrier_wait(&start).await.unwrap();
                loop {
                    match q.get_nowait() {
                        Ok(_) => q.task_done().unwrap(),
                        Err(GetError::ShutDown) => {
                            res.lock().unwrap().push(true);
                            break;
                        }
                        Err(GetError::Empty) => F::sleep(Duration::from_micros(50)).await,
                    }
                }
            }));
        }
        for _ in 0..joiners {
            let (q, start) = (q.clone(), start.clone());
            ws.push(F::spawn(async move {
                F::barrier_wait(&start).await.unwrap();
                F::q_join(&q).await;
            }));
        }
        let (q2, ev) = (q.clone(), shutdown_now.clone());
        let shut = F::spawn(async move {
            F::ev_wait(&ev).await;
            q2.shutdown(immediate);
            q2.qsize() == 0
        });
        for w in ws {
            w.await;
        }
        let emptied = shut.await;
        assert!(res_puts.lock().unwrap().contains(&true));
        assert_eq!(res_gets.lock().unwrap().len(), readers);
        if immediate {
            assert!(emptied && q.empty());
        }
    }
}

// test_shutdown_get and test_shutdown_immediate_get: getters of a full
// queue; without immediate one of three fails, with it both fail.
pub async fn shutdown_releases_getters<F: Face>() {
    for immediate in [false, true] {
        let q = Queue::new(2);
        F::q_put(&q, 'Y').await.unwrap();
        F::q_put(&q, 'D').await.unwrap();
        let go = Event::new();
        let n = if immediate { 2 } else { 3 };
        let ws: Vec<_> = (0..n)
            .map(|_| {
                let (q, go) = (q.clone(), go.clone());
                F::spawn(async move {
                    F::ev_wait(&go).await;
                    F::q_get(&q).await.is_ok()
                })
            })
            .collect();
        q.shutdown(immediate);
        go.set();
        let mut results = Vec::new();
        for w in ws {
            results.push(w.await);
        }
        results.sort();
        if immediate {
            assert_eq!(results, [false, false]);
        } else {
            assert_eq!(results, [false, true, true]);
        }
    }
}

// test_shutdown_put and test_shutdown_immediate_put: putters blocked on a
// full queue are released with ShutDown (and their item back).
pub async fn shutdown_releases_putters<F: Face>() {
    for immediate in [false, true] {
        let q = Queue::new(2);
        F::q_put(&q, 'Y').await.unwrap();
        F::q_put(&q, 'D').await.unwrap();
        let ws: Vec<_> = ['E', 'W']
            .into_iter()
            .map(|item| {
                let q = q.clone();
                F::spawn(async move { F::q_put(&q, item).await })
            })
            .collect();
        wait_until::<F>("putters blocked", || q.n_waiting().putters == 2).await;
        q.shutdown(immediate);
        let mut back = Vec::new();
        for w in ws {
            back.push(w.await.unwrap_err().into_inner());
        }
        back.sort();
        assert_eq!(back, ['E', 'W']);
    }
}

// test_shutdown_join and test_shutdown_immediate_join
pub async fn shutdown_releases_joiners<F: Face>() {
    for immediate in [false, true] {
        let q = Queue::unbounded();
        F::q_put(&q, 'Y').await.unwrap();
        let joins: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                F::spawn(async move { F::q_join(&q).await })
            })
            .collect();
        wait_until::<F>("joiners waiting", || q.n_waiting().joiners == 2).await;
        if immediate {
            q.shutdown(true);
        } else {
            let q2 = q.clone();
            let worker = F::spawn(async move {
                let _ = F::q_get(&q2).await.unwrap();
                q2.task_done().unwrap();
            });
            q.shutdown(false);
            worker.await;
        }
        for j in joins {
            j.await;
        }
    }
}

// test_shutdown_put_join and test_shutdown_immediate_put_join
pub async fn shutdown_put_join<F: Face>() {
    for immediate in [false, true] {
        let q = Queue::new(2);
        F::q_put(&q, 'Y').await.unwrap();
        let (q1, q2) = (q.clone(), q.clone());
        let putter = F::spawn(async move {
            // Not full: this put succeeds or meets the shutdown.
            let _ = F::q_put(&q1, 'E').await;
        });
        putter.await;
        let joiner = F::spawn(async move { F::q_join(&q2).await });
        q.shutdown(immediate);
        if immediate {
            assert_eq!(q.get_nowait(), Err(GetError::ShutDown));
        } else {
            while q.get_nowait().is_ok() {
                q.task_done().unwrap();
            }
        }
        joiner.await;
        assert_eq!(q.unfinished_tasks(), 0);
    }
}

// test_shutdown_get_task_done_join
pub async fn shutdown_get_task_done_join<F: Face>() {
    let q = Queue::new(2);
    F::q_put(&q, 'Y').await.unwrap();
    F::q_put(&q, 'D').await.unwrap();
    assert_eq!(q.unfinished_tasks(), q.qsize());
    let mut ws = Vec::new();
    for _ in 0..2 {
        let q = q.clone();
        ws.push(F::spawn(async move {
            let got = F::q_get(&q).await.is_ok();
            if got {
                q.task_done().unwrap();
            }
            got
        }));
    }
    for _ in 0..2 {
        let q = q.clone();
        ws.push(F::spawn(async move {
            F::q_join(&q).await;
            true
        }));
    }
    q.shutdown(false);
    for w in ws {
        assert!(w.await);
    }
}

// test_shutdown_pending_get: a get already waiting on an empty queue is
// released with ShutDown.
pub async fn shutdown_pending_get<F: Face>() {
    let q = Queue::<i32>::unbounded();
    let q2 = q.clone();
    let getter = F::spawn(async move { F::q_get(&q2).await });
    wait_until::<F>("getter waiting", || q.n_waiting().getters == 1).await;
    q.shutdown(false);
    assert_eq!(getter.await, Err(GetError::ShutDown));
}

// FIFO among waiting getters: they are served in the order they came.
pub async fn getters_served_in_order<F: Face>() {
    let q = Queue::<usize>::unbounded();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut ws = Vec::new();
    for i in 0..4 {
        let (q2, o) = (q.clone(), order.clone());
        ws.push(F::spawn(async move {
            let v = F::q_get(&q2).await.unwrap();
            o.lock().unwrap().push((i, v));
        }));
        wait_until::<F>("getter queued", || q.n_waiting().getters == i + 1).await;
    }
    for v in 0..4 {
        F::q_put(&q, v * 10).await.unwrap();
        wait_until::<F>("one served", || order.lock().unwrap().len() == v + 1).await;
    }
    for w in ws {
        w.await;
    }
    assert_eq!(*order.lock().unwrap(), [(0, 0), (1, 10), (2, 20), (3, 30)]);
    F::sleep(SETTLE).await;
}

// SimpleQueueTest: test_basic, test_order, test_many_threads.
pub async fn simple_queue_basics<F: Face>() {
    let q = SimpleQueue::new();
    assert!(q.empty());
    assert_eq!(q.get_nowait(), Err(GetError::Empty));
    for i in 0..10 {
        q.put(i);
    }
    assert_eq!(q.qsize(), 10);
    for i in 0..10 {
        assert_eq!(q.get_nowait(), Ok(i));
    }
    let t = Instant::now();
    assert_eq!(
        q.blocking().get_timeout(Duration::from_millis(100)),
        Err(GetError::Empty)
    );
    assert_timeout(t.elapsed(), Duration::from_millis(100));
    // Many producers and consumers.
    let total = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (q, total) = (q.clone(), total.clone());
            F::spawn(async move {
                for _ in 0..200 {
                    let v = if F::NAME == "async" {
                        q.get().await
                    } else {
                        q.blocking().get()
                    };
                    total.fetch_add(v, SeqCst);
                }
            })
        })
        .collect();
    let producers: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            F::spawn(async move {
                for i in 0..200 {
                    q.put(i);
                }
            })
        })
        .collect();
    for p in producers {
        p.await;
    }
    for c in consumers {
        c.await;
    }
    assert_eq!(total.load(SeqCst), 3 * 19_900);
}
