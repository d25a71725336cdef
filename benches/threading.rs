//! The threading chapter against its peers, one criterion group per
//! workload of ../shared/ANCHORS.md, conex and the peers in the same group
//! so that each ratio comes from one run.
//!
//! `cargo bench --bench threading` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

fn rt_multi() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn rt_current() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn config<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g
}

/// Lock acquire+release, uncontended, async (one task).
fn lock_uncontended(c: &mut Criterion) {
    let rt = rt_multi();
    let mut g = config(c, "lock_uncontended_async");
    g.throughput(criterion::Throughput::Elements(1));

    macro_rules! uncontended {
        ($name:expr, $lock:expr) => {
            let lock = $lock;
            g.bench_function($name, |b| {
                b.iter_custom(|n| {
                    rt.block_on(async {
                        let t = Instant::now();
                        for _ in 0..n {
                            let guard = lock.lock().await;
                            black_box(&guard);
                        }
                        t.elapsed()
                    })
                })
            });
        };
    }
    uncontended!("conex::Lock", conex::threading::Lock::new());
    uncontended!("async_lock::Mutex", async_lock::Mutex::new(()));
    uncontended!("tokio::Mutex", tokio::sync::Mutex::new(()));
    g.finish();
}

/// Lock acquire+release, 4 tasks contending on a 2-worker runtime.
fn lock_contended(c: &mut Criterion) {
    const TASKS: u64 = 4;
    let rt = rt_multi();
    let mut g = config(c, "lock_contended_4_tasks");
    g.throughput(criterion::Throughput::Elements(1));

    macro_rules! contend {
        ($name:expr, $make:expr, $lock:ident => $body:expr) => {
            g.bench_function($name, |b| {
                b.iter_custom(|n| {
                    let $lock = Arc::new($make);
                    rt.block_on(async {
                        let t = Instant::now();
                        let tasks: Vec<_> = (0..TASKS)
                            .map(|_| {
                                let $lock = $lock.clone();
                                tokio::spawn(async move {
                                    for _ in 0..n / TASKS {
                                        $body;
                                    }
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.unwrap();
                        }
                        t.elapsed()
                    })
                })
            });
        };
    }
    contend!("conex::Lock", conex::threading::Lock::new(), l => {
        let guard = l.lock().await;
        black_box(&guard);
    });
    contend!("async_lock::Mutex", async_lock::Mutex::new(()), l => {
        let guard = l.lock().await;
        black_box(&guard);
    });
    contend!("tokio::Mutex", tokio::sync::Mutex::new(()), l => {
        let guard = l.lock().await;
        black_box(&guard);
    });
    g.finish();
}

/// Lock through the blocking facade, 4 OS threads contending.
fn lock_blocking(c: &mut Criterion) {
    const THREADS: u64 = 4;
    let mut g = config(c, "lock_blocking_4_threads");
    g.throughput(criterion::Throughput::Elements(1));

    fn run(n: u64, body: impl Fn() + Sync) -> Duration {
        let start = std::sync::Barrier::new(THREADS as usize + 1);
        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..n / THREADS {
                        body();
                    }
                });
            }
            start.wait();
            let t = Instant::now();
            // The scope joins every thread before it returns.
            t
        })
        .elapsed()
    }

    let lock = conex::threading::Lock::new();
    g.bench_function("conex::Lock.blocking()", |b| {
        b.iter_custom(|n| {
            run(n, || {
                let guard = lock.blocking().lock();
                black_box(&guard);
            })
        })
    });
    let m = parking_lot::Mutex::new(());
    g.bench_function("parking_lot::Mutex", |b| {
        b.iter_custom(|n| {
            run(n, || {
                let guard = m.lock();
                black_box(&guard);
            })
        })
    });
    let m = std::sync::Mutex::new(());
    g.bench_function("std::Mutex", |b| {
        b.iter_custom(|n| {
            run(n, || {
                let guard = m.lock().unwrap();
                black_box(&guard);
            })
        })
    });
    g.finish();
}

/// Event ping-pong between two tasks on a current-thread runtime (round
/// trips).
fn event_pingpong_tasks(c: &mut Criterion) {
    let rt = rt_current();
    let mut g = config(c, "event_pingpong_tasks");
    g.throughput(criterion::Throughput::Elements(1));
    g.bench_function("conex::Event", |b| {
        b.iter_custom(|n| {
            rt.block_on(async {
                use conex::threading::Event;
                let (ping, pong) = (Event::new(), Event::new());
                let (p2, q2) = (ping.clone(), pong.clone());
                let t = Instant::now();
                let other = tokio::spawn(async move {
                    for _ in 0..n {
                        p2.wait().await;
                        p2.clear();
                        q2.set();
                    }
                });
                for _ in 0..n {
                    ping.set();
                    pong.wait().await;
                    pong.clear();
                }
                other.await.unwrap();
                t.elapsed()
            })
        })
    });
    g.bench_function("tokio::Notify", |b| {
        b.iter_custom(|n| {
            rt.block_on(async {
                use tokio::sync::Notify;
                let (ping, pong) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
                let (p2, q2) = (ping.clone(), pong.clone());
                let t = Instant::now();
                let other = tokio::spawn(async move {
                    for _ in 0..n {
                        p2.notified().await;
                        q2.notify_one();
                    }
                });
                for _ in 0..n {
                    ping.notify_one();
                    pong.notified().await;
                }
                other.await.unwrap();
                t.elapsed()
            })
        })
    });
    g.finish();
}

/// Event ping-pong between two OS threads through the blocking facade
/// (round trips).
fn event_pingpong_threads(c: &mut Criterion) {
    let mut g = config(c, "event_pingpong_threads");
    g.throughput(criterion::Throughput::Elements(1));
    g.bench_function("conex::Event.blocking()", |b| {
        b.iter_custom(|n| {
            use conex::threading::Event;
            let (ping, pong) = (Event::new(), Event::new());
            let (p2, q2) = (ping.clone(), pong.clone());
            let t = Instant::now();
            let other = std::thread::spawn(move || {
                for _ in 0..n {
                    p2.blocking().wait();
                    p2.clear();
                    q2.set();
                }
            });
            for _ in 0..n {
                ping.set();
                pong.blocking().wait();
                pong.clear();
            }
            other.join().unwrap();
            t.elapsed()
        })
    });
    g.bench_function("std park/unpark", |b| {
        b.iter_custom(|n| {
            use std::sync::atomic::{AtomicBool, Ordering::*};
            let ping = Arc::new(AtomicBool::new(false));
            let pong = Arc::new(AtomicBool::new(false));
            let main = std::thread::current();
            let (p2, q2) = (ping.clone(), pong.clone());
            let t = Instant::now();
            let other = std::thread::spawn(move || {
                for _ in 0..n {
                    while !p2.swap(false, Acquire) {
                        std::thread::park();
                    }
                    q2.store(true, Release);
                    main.unpark();
                }
            });
            let other_t = other.thread().clone();
            for _ in 0..n {
                ping.store(true, Release);
                other_t.unpark();
                while !pong.swap(false, Acquire) {
                    std::thread::park();
                }
            }
            other.join().unwrap();
            t.elapsed()
        })
    });
    g.finish();
}

/// A task-backed Thread: spawn + join, one at a time, from a task on a
/// 2-worker runtime (as a server spawns from its own tasks).
fn thread_spawn_join(c: &mut Criterion) {
    let rt = rt_multi();
    let mut g = config(c, "thread_spawn_join");
    g.throughput(criterion::Throughput::Elements(1));
    g.bench_function("conex::Thread::spawn", |b| {
        b.iter_custom(|n| {
            rt.block_on(rt.spawn(async move {
                let t = Instant::now();
                for i in 0..n {
                    let h = conex::threading::Thread::spawn(async move { black_box(i) });
                    black_box(h.join().await.unwrap());
                }
                t.elapsed()
            }))
            .unwrap()
        })
    });
    g.bench_function("tokio::spawn", |b| {
        b.iter_custom(|n| {
            rt.block_on(rt.spawn(async move {
                let t = Instant::now();
                for i in 0..n {
                    let h = tokio::spawn(async move { black_box(i) });
                    black_box(h.await.unwrap());
                }
                t.elapsed()
            }))
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    lock_uncontended,
    lock_contended,
    lock_blocking,
    event_pingpong_tasks,
    event_pingpong_threads,
    thread_spawn_join
);
criterion_main!(benches);
