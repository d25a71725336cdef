//! Async waiters across processes at scale (issue 16): 10,000 tasks of a
//! child awaiting one cross-process `Event` (threads used while they wait,
//! time from `set()` in the parent to the last one through), and a
//! `Semaphore(1)` handed round 10,000 tasks in two processes, and 10,000
//! tasks of a child waiting on one cross-process `Condition` that the
//! parent notifies all at once. Five rounds each; prints the median and
//! the spread.
//!
//! `cargo run --release --example xprocess_waiters`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use conex::multiprocessing::{Condition, Event, Process, RawValue, Semaphore};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The child: 10,000 tasks await `go`; `ready` once all wait, `done` once
/// all are through. Returns the extra threads the waits took.
fn waiters((go, ready, done): (Event, Event, Event)) -> usize {
    runtime().block_on(async {
        let started = Arc::new(AtomicUsize::new(0));
        let before = threads();
        let tasks: Vec<_> = (0..10_000)
            .map(|_| {
                let (go, started) = (go.clone(), started.clone());
                tokio::spawn(async move {
                    started.fetch_add(1, SeqCst);
                    go.wait().await;
                })
            })
            .collect();
        while started.load(SeqCst) < 10_000 {
            tokio::task::yield_now().await;
        }
        let extra = threads().saturating_sub(before);
        ready.set();
        for t in tasks {
            t.await.unwrap();
        }
        done.set();
        extra
    })
}

async fn take_turns(s: Semaphore, count: RawValue<u64>, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (s, count) = (s.clone(), count.clone());
            tokio::spawn(async move {
                s.acquire().await;
                count.set(count.get() + 1);
                s.release(1).unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

fn turns_in_child((s, count, n): (Semaphore, RawValue<u64>, usize)) {
    runtime().block_on(take_turns(s, count, n));
}

/// The child: 10,000 tasks wait on `c`; `ready` once all wait, `done`
/// once all re-took the lock and are through. Returns the extra threads.
fn cond_waiters((c, ready, done): (Condition, Event, Event)) -> usize {
    runtime().block_on(async {
        let before = threads();
        let tasks: Vec<_> = (0..10_000)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move {
                    let g = c.lock().await;
                    let g = c.wait(g).await.unwrap();
                    drop(g);
                })
            })
            .collect();
        while c.n_waiting() < 10_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let extra = threads().saturating_sub(before);
        ready.set();
        for t in tasks {
            t.await.unwrap();
        }
        done.set();
        extra
    })
}

fn spread(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "median {:.1} ms (min {:.1}, max {:.1})",
        v[v.len() / 2].as_secs_f64() * 1e3,
        v[0].as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3
    )
}

fn main() {
    conex::multiprocessing::init();
    let (mut extra, mut release) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (go, ready, done) = (
            Event::new().unwrap(),
            Event::new().unwrap(),
            Event::new().unwrap(),
        );
        let p = Process::new(waiters, (go.clone(), ready.clone(), done.clone()));
        p.start().unwrap();
        ready.blocking().wait();
        let t0 = Instant::now();
        go.set();
        done.blocking().wait();
        release.push(t0.elapsed());
        extra.push(p.blocking().result().unwrap());
    }
    println!(
        "10,000 tasks on one cross-process Event (2-worker runtime): at most {} extra threads \
         while waiting; set() to all through: {}",
        extra.iter().max().unwrap(),
        spread(release)
    );

    let rt = runtime();
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let s = Semaphore::new(1).unwrap();
        let count = RawValue::new(0u64).unwrap();
        let p = Process::new(turns_in_child, (s.clone(), count.clone(), 5_000));
        let t0 = Instant::now();
        p.start().unwrap();
        rt.block_on(take_turns(s, count.clone(), 5_000));
        p.blocking().result().unwrap();
        rounds.push(t0.elapsed());
        assert_eq!(count.get(), 10_000);
    }
    println!(
        "Semaphore(1) handed round 10,000 tasks in two processes (each once): {}",
        spread(rounds)
    );

    let (mut extra, mut notify, mut through) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let (c, ready, done) = (
            Condition::new().unwrap(),
            Event::new().unwrap(),
            Event::new().unwrap(),
        );
        let p = Process::new(cond_waiters, (c.clone(), ready.clone(), done.clone()));
        p.start().unwrap();
        ready.blocking().wait();
        let t0 = Instant::now();
        {
            let g = c.blocking().lock();
            // Returns once every sleeper is awake (Python's notify).
            c.notify_all().unwrap();
            drop(g);
        }
        notify.push(t0.elapsed());
        done.blocking().wait();
        through.push(t0.elapsed());
        extra.push(p.blocking().result().unwrap());
    }
    println!(
        "10,000 tasks on one cross-process Condition (2-worker runtime): at most {} extra \
         threads while waiting; notify_all() returns: {}; all re-took the lock and are \
         through: {}",
        extra.iter().max().unwrap(),
        spread(notify),
        spread(through)
    );
}
