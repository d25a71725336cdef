//! Queues against their peers (../shared/ANCHORS.md): SPSC and MPMC async,
//! SPSC through the blocking facade, and the priority queue against a
//! Mutex<BinaryHeap> with a Condvar. Throughput in items.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(1));
    g
}

const CAP: usize = 1024;

/// One producer task, one consumer task, a bounded queue of 1024.
fn spsc_async(c: &mut Criterion) {
    let rt = rt();
    let mut g = group(c, "queue_spsc_async_bounded_1024");
    g.bench_function("conex::Queue", |b| {
        b.iter_custom(|n| {
            rt.block_on(async {
                let q = conex::queue::Queue::new(CAP);
                let q2 = q.clone();
                let t = Instant::now();
                let p = tokio::spawn(async move {
                    for i in 0..n {
                        q2.put(i).await.unwrap();
                    }
                });
                for _ in 0..n {
                    black_box(q.get().await.unwrap());
                }
                p.await.unwrap();
                t.elapsed()
            })
        })
    });
    g.bench_function("flume", |b| {
        b.iter_custom(|n| {
            rt.block_on(async {
                let (tx, rx) = flume::bounded(CAP);
                let t = Instant::now();
                let p = tokio::spawn(async move {
                    for i in 0..n {
                        tx.send_async(i).await.unwrap();
                    }
                });
                for _ in 0..n {
                    black_box(rx.recv_async().await.unwrap());
                }
                p.await.unwrap();
                t.elapsed()
            })
        })
    });
    g.bench_function("async-channel", |b| {
        b.iter_custom(|n| {
            rt.block_on(async {
                let (tx, rx) = async_channel::bounded(CAP);
                let t = Instant::now();
                let p = tokio::spawn(async move {
                    for i in 0..n {
                        tx.send(i).await.unwrap();
                    }
                });
                for _ in 0..n {
                    black_box(rx.recv().await.unwrap());
                }
                p.await.unwrap();
                t.elapsed()
            })
        })
    });
    g.finish();
}

/// 4 producer tasks and 4 consumer tasks.
fn mpmc_async(c: &mut Criterion) {
    const P: u64 = 4;
    let rt = rt();
    let mut g = group(c, "queue_mpmc_4x4_async");
    macro_rules! mpmc {
        ($name:expr, $make:expr, ($tx:ident, $rx:ident), $send:expr, $recv:expr) => {
            g.bench_function($name, |b| {
                b.iter_custom(|n| {
                    rt.block_on(async {
                        let ($tx, $rx) = $make;
                        let t = Instant::now();
                        let mut hs = Vec::new();
                        for _ in 0..P {
                            let $tx = $tx.clone();
                            hs.push(tokio::spawn(async move {
                                for i in 0..n / P {
                                    $send(&$tx, i).await;
                                }
                            }));
                            let $rx = $rx.clone();
                            hs.push(tokio::spawn(async move {
                                for _ in 0..n / P {
                                    black_box($recv(&$rx).await);
                                }
                            }));
                        }
                        for h in hs {
                            h.await.unwrap();
                        }
                        t.elapsed()
                    })
                })
            });
        };
    }
    mpmc!(
        "conex::Queue",
        {
            let q = conex::queue::Queue::new(CAP);
            (q.clone(), q)
        },
        (tx, rx),
        |q: &conex::queue::Queue<u64>, i| {
            let q = q.clone();
            async move { q.put(i).await.unwrap() }
        },
        |q: &conex::queue::Queue<u64>| {
            let q = q.clone();
            async move { q.get().await.unwrap() }
        }
    );
    mpmc!(
        "async-channel",
        async_channel::bounded::<u64>(CAP),
        (tx, rx),
        |tx: &async_channel::Sender<u64>, i| {
            let tx = tx.clone();
            async move { tx.send(i).await.unwrap() }
        },
        |rx: &async_channel::Receiver<u64>| {
            let rx = rx.clone();
            async move { rx.recv().await.unwrap() }
        }
    );
    mpmc!(
        "flume",
        flume::bounded::<u64>(CAP),
        (tx, rx),
        |tx: &flume::Sender<u64>, i| {
            let tx = tx.clone();
            async move { tx.send_async(i).await.unwrap() }
        },
        |rx: &flume::Receiver<u64>| {
            let rx = rx.clone();
            async move { rx.recv_async().await.unwrap() }
        }
    );
    g.finish();
}

/// One producer thread, one consumer thread, through the blocking facade.
fn spsc_blocking(c: &mut Criterion) {
    let mut g = group(c, "queue_spsc_blocking");
    g.bench_function("conex::Queue.blocking()", |b| {
        b.iter_custom(|n| {
            let q = conex::queue::Queue::new(CAP);
            let q2 = q.clone();
            let t = Instant::now();
            let p = std::thread::spawn(move || {
                for i in 0..n {
                    q2.blocking().put(i).unwrap();
                }
            });
            for _ in 0..n {
                black_box(q.blocking().get().unwrap());
            }
            p.join().unwrap();
            t.elapsed()
        })
    });
    g.bench_function("crossbeam-channel", |b| {
        b.iter_custom(|n| {
            let (tx, rx) = crossbeam_channel::bounded(CAP);
            let t = Instant::now();
            let p = std::thread::spawn(move || {
                for i in 0..n {
                    tx.send(i).unwrap();
                }
            });
            for _ in 0..n {
                black_box(rx.recv().unwrap());
            }
            p.join().unwrap();
            t.elapsed()
        })
    });
    g.bench_function("std sync_channel", |b| {
        b.iter_custom(|n| {
            let (tx, rx) = std::sync::mpsc::sync_channel(CAP);
            let t = Instant::now();
            let p = std::thread::spawn(move || {
                for i in 0..n {
                    tx.send(i).unwrap();
                }
            });
            for _ in 0..n {
                black_box(rx.recv().unwrap());
            }
            p.join().unwrap();
            t.elapsed()
        })
    });
    g.finish();
}

/// Put + get on a priority queue holding ~1000 items, one thread.
fn priority(c: &mut Criterion) {
    let mut g = group(c, "priority_queue_put_get");
    let keys: Vec<u64> = (0..1000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40)
        .collect();
    g.bench_function("conex::PriorityQueue", |b| {
        let q = conex::queue::PriorityQueue::unbounded();
        for k in &keys {
            q.put_nowait(*k).unwrap();
        }
        let mut i = 0usize;
        b.iter(|| {
            q.blocking().put(keys[i % 1000] ^ 1).unwrap();
            black_box(q.blocking().get().unwrap());
            i += 1;
        })
    });
    g.bench_function("Mutex<BinaryHeap> + Condvar", |b| {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        use std::sync::{Condvar, Mutex};
        let heap = Mutex::new(BinaryHeap::new());
        let not_empty = Condvar::new();
        for k in &keys {
            heap.lock().unwrap().push(Reverse(*k));
        }
        let mut i = 0usize;
        b.iter(|| {
            heap.lock().unwrap().push(Reverse(keys[i % 1000] ^ 1));
            not_empty.notify_one();
            let mut h = heap.lock().unwrap();
            while h.is_empty() {
                h = not_empty.wait(h).unwrap();
            }
            black_box(h.pop());
            i += 1;
        })
    });
    g.finish();
}

criterion_group!(benches, spsc_async, mpmc_async, spsc_blocking, priority);
criterion_main!(benches);
