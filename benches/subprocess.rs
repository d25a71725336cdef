//! subprocess against its peers (../shared/ANCHORS.md): run(["true"]) and
//! communicate with 1 MiB in and 1 MiB out through `cat`, each next to
//! std::process::Command, tokio::process and async-process.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use conex::subprocess::{Command, PIPE};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    g
}

/// Times `iters` runs of `f` inside a task on the runtime's workers, where
/// a tokio service runs them (criterion's `to_async` would poll on the
/// bench thread, adding a hop from the reactor to it for every peer).
fn in_task<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, f: F) -> Duration
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    rt.block_on(rt.spawn(async move {
        let start = std::time::Instant::now();
        for _ in 0..iters {
            f().await;
        }
        start.elapsed()
    }))
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Spawn `true` and wait for it.
fn run_true(c: &mut Criterion) {
    let mut g = group(c, "subprocess_run_true");
    g.throughput(Throughput::Elements(1));
    let rt = runtime();
    g.bench_function("conex run (async)", |b| {
        b.iter_custom(|n| {
            in_task(&rt, n, || async {
                black_box(Command::new(["true"]).run().await.unwrap());
            })
        })
    });
    g.bench_function("conex run (blocking facade)", |b| {
        b.iter(|| black_box(Command::new(["true"]).blocking().run().unwrap()))
    });
    g.bench_function("std::process::Command", |b| {
        b.iter(|| black_box(std::process::Command::new("true").status().unwrap()))
    });
    g.bench_function("tokio::process", |b| {
        b.iter_custom(|n| {
            in_task(&rt, n, || async {
                black_box(tokio::process::Command::new("true").status().await.unwrap());
            })
        })
    });
    g.bench_function("async-process", |b| {
        b.iter_custom(|n| {
            in_task(&rt, n, || async {
                black_box(async_process::Command::new("true").status().await.unwrap());
            })
        })
    });
    g.finish();
}

const MIB: usize = 1 << 20;

/// 1 MiB into `cat` and 1 MiB back out.
fn communicate(c: &mut Criterion) {
    let mut g = group(c, "subprocess_communicate_1MiB_cat");
    g.throughput(Throughput::Bytes(MIB as u64));
    let data: std::sync::Arc<Vec<u8>> = std::sync::Arc::new((0..MIB).map(|i| i as u8).collect());
    let rt = runtime();
    g.bench_function("conex communicate (async)", |b| {
        b.iter_custom(|n| {
            let data = data.clone();
            in_task(&rt, n, move || {
                let data = data.clone();
                async move {
                    let mut p = Command::new(["cat"])
                        .stdin(PIPE)
                        .stdout(PIPE)
                        .popen()
                        .unwrap();
                    let (out, _) = p.communicate(&data).await.unwrap();
                    assert_eq!(out.unwrap().len(), MIB);
                }
            })
        })
    });
    g.bench_function("conex communicate (blocking facade)", |b| {
        b.iter(|| {
            let mut p = Command::new(["cat"])
                .stdin(PIPE)
                .stdout(PIPE)
                .popen()
                .unwrap();
            let (out, _) = p.blocking().communicate(&data).unwrap();
            assert_eq!(out.unwrap().len(), MIB);
        })
    });
    g.bench_function("std Command + writer thread", |b| {
        b.iter(|| {
            let mut child = std::process::Command::new("cat")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut stdout = child.stdout.take().unwrap();
            std::thread::scope(|s| {
                let data = &data[..];
                s.spawn(move || stdin.write_all(data).unwrap());
                let mut out = Vec::new();
                stdout.read_to_end(&mut out).unwrap();
                assert_eq!(out.len(), MIB);
            });
            child.wait().unwrap();
        })
    });
    g.bench_function("tokio::process", |b| {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        b.iter_custom(|n| {
            let data = data.clone();
            in_task(&rt, n, move || {
                let data = data.clone();
                async move {
                    let mut child = tokio::process::Command::new("cat")
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .unwrap();
                    let mut stdin = child.stdin.take().unwrap();
                    let mut stdout = child.stdout.take().unwrap();
                    let write = async {
                        stdin.write_all(&data).await.unwrap();
                        drop(stdin);
                    };
                    let mut out = Vec::new();
                    let read = stdout.read_to_end(&mut out);
                    let ((), got) = tokio::join!(write, read);
                    assert_eq!(got.unwrap(), MIB);
                    child.wait().await.unwrap();
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, run_true, communicate);
criterion_main!(benches);
