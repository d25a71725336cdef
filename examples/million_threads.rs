//! A million task-backed Threads waiting on one Event: what Python cannot
//! do (a million OS threads), measured. Prints the peak memory and how long
//! `set()` takes to release them all.
//!
//! `cargo run --release --example million_threads [N]`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conex::threading::{Event, Thread};

/// Peak resident set size in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let go = Event::new();
    let all_done = Event::new();
    let finished = Arc::new(AtomicUsize::new(0));

    let t0 = Instant::now();
    let mut threads = Vec::with_capacity(n);
    for _ in 0..n {
        let (go, all_done, finished) = (go.clone(), all_done.clone(), finished.clone());
        threads.push(Thread::spawn(async move {
            go.wait().await;
            if finished.fetch_add(1, Ordering::AcqRel) + 1 == n {
                all_done.set();
            }
        }));
    }
    while go.n_waiting() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let spawned = t0.elapsed();
    let rss = peak_rss_mib();

    let t1 = Instant::now();
    go.set();
    all_done.wait().await;
    let released = t1.elapsed();
    for t in threads {
        t.join().await.expect("a waiting thread failed");
    }
    let joined = t1.elapsed();

    println!("{n} task-backed Threads waiting on one Event");
    println!(
        "  spawned and all waiting in {:.2} s",
        spawned.as_secs_f64()
    );
    match rss {
        Some(mib) => println!(
            "  peak RSS {mib:.0} MiB ({:.0} bytes per waiting Thread); target < 1024 MiB",
            mib * 1024.0 * 1024.0 / n as f64
        ),
        None => println!("  peak RSS: not available on this platform"),
    }
    println!(
        "  set() released all of them in {:.3} s (target < 2 s); all joined after {:.3} s",
        released.as_secs_f64(),
        joined.as_secs_f64()
    );
}
