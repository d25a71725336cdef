//! concurrent.futures against its peers (../shared/ANCHORS.md): a burst of
//! 10k no-op submits then all results, one submit+result at a time, and map
//! over 10k items.

use std::hint::black_box;
use std::time::{Duration, Instant};

use conex::futures::{Executor, MapOptions, ThreadPoolExecutor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g
}

fn noop(x: u64) -> u64 {
    black_box(x)
}

const BURST: u64 = 10_000;

/// ThreadPoolExecutor(4): 10k submits of a no-op, then every result.
fn burst(c: &mut Criterion) {
    let mut g = group(c, "executor_10k_submits_then_results");
    g.throughput(Throughput::Elements(BURST));
    let pool = ThreadPoolExecutor::new(4).unwrap();
    g.bench_function("conex::ThreadPoolExecutor(4)", |b| {
        b.iter(|| {
            let futs: Vec<_> = (0..BURST).map(|i| pool.submit(noop, i).unwrap()).collect();
            for f in futs {
                black_box(f.blocking().take_result().unwrap());
            }
        })
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .build()
        .unwrap();
    g.bench_function("tokio spawn_blocking (4 threads)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..BURST)
                    .map(|i| tokio::task::spawn_blocking(move || noop(i)))
                    .collect();
                for h in hs {
                    black_box(h.await.unwrap());
                }
            })
        })
    });
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    g.bench_function("rayon scope (4 threads)", |b| {
        b.iter(|| {
            let mut out = vec![0u64; BURST as usize];
            rayon_pool.scope(|s| {
                for (i, slot) in out.iter_mut().enumerate() {
                    s.spawn(move |_| *slot = noop(i as u64));
                }
            });
            black_box(out);
        })
    });
    g.finish();
}

/// One submit and its result at a time.
fn one_at_a_time(c: &mut Criterion) {
    let mut g = group(c, "executor_one_submit_result");
    g.throughput(Throughput::Elements(1));
    let pool = ThreadPoolExecutor::new(4).unwrap();
    g.bench_function("conex::ThreadPoolExecutor(4)", |b| {
        b.iter_custom(|n| {
            let t = Instant::now();
            for i in 0..n {
                black_box(
                    pool.submit(noop, i)
                        .unwrap()
                        .blocking()
                        .take_result()
                        .unwrap(),
                );
            }
            t.elapsed()
        })
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .build()
        .unwrap();
    g.bench_function("tokio spawn_blocking + await", |b| {
        b.iter_custom(|n| {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..n {
                    black_box(tokio::task::spawn_blocking(move || noop(i)).await.unwrap());
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

/// map over 10k items (reported against rayon's par_iter).
fn map(c: &mut Criterion) {
    use rayon::prelude::*;
    let mut g = group(c, "executor_map_10k");
    g.throughput(Throughput::Elements(BURST));
    let pool = ThreadPoolExecutor::new(4).unwrap();
    g.bench_function("conex::ThreadPoolExecutor(4).map", |b| {
        b.iter(|| {
            let out: u64 = pool
                .map(noop, 0..BURST, MapOptions::new())
                .unwrap()
                .map(Result::unwrap)
                .sum();
            black_box(out);
        })
    });
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    g.bench_function("rayon par_iter (4 threads)", |b| {
        b.iter(|| {
            let out: u64 = rayon_pool.install(|| (0..BURST).into_par_iter().map(noop).sum());
            black_box(out);
        })
    });
    g.finish();
}

/// asyncio's create_task: conex's `tasks::spawn` (a copy of the context,
/// a registry entry for `all_tasks`, a name) against a bare `tokio::spawn`,
/// 1,000 spawned then awaited, on a 2-worker runtime.
fn task_spawn(c: &mut Criterion) {
    let mut g = group(c, "task_spawn_1000");
    g.throughput(Throughput::Elements(1000));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    g.bench_function("conex::tasks::spawn", |b| {
        b.iter(|| {
            rt.block_on(async {
                let ts: Vec<_> = (0..1000u64)
                    .map(|i| conex::tasks::spawn(async move { i }))
                    .collect();
                let mut sum = 0;
                for t in ts {
                    sum += t.await.unwrap();
                }
                black_box(sum)
            })
        })
    });
    g.bench_function("tokio::spawn", |b| {
        b.iter(|| {
            rt.block_on(async {
                let ts: Vec<_> = (0..1000u64)
                    .map(|i| tokio::spawn(async move { i }))
                    .collect();
                let mut sum = 0;
                for t in ts {
                    sum += t.await.unwrap();
                }
                black_box(sum)
            })
        })
    });
    g.finish();
}

criterion_group!(benches, burst, one_at_a_time, map, task_spawn);
criterion_main!(benches);
