//! The conex tour: every module at work on one job, printing what it did.
//!
//! `cargo run --release --example tour`
//!
//! **threading**: a level-by-level crawl of a generated site. Crawler
//! workers are task-backed `Thread`s; a `Semaphore` caps the fetches in
//! flight; a `Barrier` closes each level (its action promotes the next
//! level); an `Event` stops the crawl at the page budget, set by the
//! workers or by a watchdog `Timer`; pages go through a bounded buffer built
//! on a `Condition` (over a `Lock`) to an indexer on an OS-thread-backed
//! `Thread` that uses the blocking facade; an `RLock` guards nested stats
//! updates; a `Local` counts each worker's pages.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conex::threading::{
    self, Barrier, BoundedSemaphore, Condition, Event, Local, Lock, RLock, Thread, Timer,
};

const WORKERS: usize = 6;
const FETCH_LIMIT: usize = 3;
const PAGE_BUDGET: usize = 1500;
const BUFFER: usize = 32;

/// The generated site: page `id` links to a few pages of the next level.
fn links(id: u64) -> Vec<u64> {
    let fanout = 2 + (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61);
    (0..fanout).map(|k| id * 4 + 1 + k).collect()
}

/// A page's text: a few deterministic words.
fn page_text(id: u64) -> String {
    const WORDS: [&str; 12] = [
        "async",
        "thread",
        "lock",
        "queue",
        "event",
        "barrier",
        "future",
        "task",
        "signal",
        "process",
        "pipe",
        "condition",
    ];
    let mut x = id
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..8)
        .map(|_| {
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            WORDS[(x % WORDS.len() as u64) as usize]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A bounded buffer in Python's style: the data is guarded by the
/// condition's lock (the std Mutex inside is never contended).
/// A crawled page (`None` ends the stream).
type Page = Option<(u64, String)>;

#[derive(Clone)]
struct Buffer {
    cond: Condition<Lock>,
    items: Arc<Mutex<VecDeque<Page>>>,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            cond: Condition::with_lock(Lock::new()),
            items: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// From the crawler tasks (async).
    async fn put(&self, item: Page) {
        let items = self.items.clone();
        let g = self.cond.lock().await;
        let _g = self
            .cond
            .wait_for(g, move || items.lock().unwrap().len() < BUFFER)
            .await;
        self.items.lock().unwrap().push_back(item);
        self.cond.notify_all().unwrap();
    }

    /// From the indexer's OS thread (blocking facade).
    fn get_blocking(&self) -> Page {
        let items = self.items.clone();
        let cond = self.cond.blocking();
        let g = cond.lock();
        let _g = cond.wait_for(g, move || !items.lock().unwrap().is_empty());
        let item = self.items.lock().unwrap().pop_front().expect("not empty");
        cond.notify_all().unwrap();
        item
    }
}

/// Stats behind an RLock: `record` takes it and calls `bump`, which takes it
/// again (same task: no deadlock).
#[derive(Clone, Default)]
struct Stats {
    lock: RLock,
    fetched: Arc<AtomicUsize>,
    by_level: Arc<Mutex<HashMap<usize, usize>>>,
}

impl Stats {
    async fn record(&self, level: usize) {
        let _g = self.lock.lock().await;
        self.bump(level).await;
        self.fetched.fetch_add(1, SeqCst);
    }

    async fn bump(&self, level: usize) {
        let _g = self.lock.lock().await;
        assert_eq!(self.lock.recursion_count(), 2);
        *self.by_level.lock().unwrap().entry(level).or_default() += 1;
    }
}

fn main() {
    println!("conex tour");
    println!("==========\n");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(threading_tour());
    // Python's interpreter waits for non-daemon threads at exit.
    threading::join_non_daemon_blocking();
}

async fn threading_tour() {
    println!("[threading] crawl a generated site with {WORKERS} task-backed Threads");
    let t0 = Instant::now();

    let fetch_slots = BoundedSemaphore::new(FETCH_LIMIT);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let stop = Event::new();
    let stats = Stats::default();
    let per_worker = Local::new(|| 0usize);
    let buffer = Buffer::new();

    // The level being crawled, the next one, and a cursor into the current.
    let level = Arc::new(Mutex::new(vec![0u64]));
    let next = Arc::new(Mutex::new(Vec::new()));
    let cursor = Arc::new(AtomicUsize::new(0));
    let depth = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));

    // The barrier's action runs once per level, in the last worker to
    // arrive, before any is released: it promotes the next level.
    let barrier = {
        let (level, next, cursor, depth, finished, stop, stats) = (
            level.clone(),
            next.clone(),
            cursor.clone(),
            depth.clone(),
            finished.clone(),
            stop.clone(),
            stats.clone(),
        );
        Barrier::builder(WORKERS)
            .action(move || {
                let d = depth.fetch_add(1, SeqCst);
                let mut lv = level.lock().unwrap();
                let mut nx = next.lock().unwrap();
                println!(
                    "  level {d}: {:>4} pages crawled, {:>4} links found  (t = {:>5.1} ms, {} threads alive)",
                    stats.by_level.lock().unwrap().get(&d).copied().unwrap_or(0),
                    nx.len(),
                    t0.elapsed().as_secs_f64() * 1e3,
                    threading::active_count(),
                );
                *lv = std::mem::take(&mut *nx);
                cursor.store(0, SeqCst);
                if lv.is_empty() || stop.is_set() {
                    finished.store(true, SeqCst);
                }
            })
            .build()
    };

    // A watchdog: stop the crawl after 10 s whatever happens.
    let watchdog = {
        let stop = stop.clone();
        Timer::new(Duration::from_secs(10), move || {
            println!("  watchdog: time is up, stopping the crawl");
            stop.set();
        })
    };
    watchdog.set_name("watchdog");
    watchdog.start().expect("start the watchdog");

    // The indexer: an OS-thread-backed Thread on the blocking facade.
    let indexer = {
        let buffer = buffer.clone();
        Thread::builder()
            .name("indexer")
            .spawn_blocking(move || {
                let mut words: HashMap<String, usize> = HashMap::new();
                let mut pages = 0;
                while let Some((_, text)) = buffer.get_blocking() {
                    pages += 1;
                    for w in text.split_whitespace() {
                        *words.entry(w.to_owned()).or_default() += 1;
                    }
                }
                (pages, words)
            })
            .expect("start the indexer")
    };

    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let (fetch_slots, in_flight, max_in_flight) = (
                fetch_slots.clone(),
                in_flight.clone(),
                max_in_flight.clone(),
            );
            let (stop, stats, per_worker, buffer) = (
                stop.clone(),
                stats.clone(),
                per_worker.clone(),
                buffer.clone(),
            );
            let (level, next, cursor, depth, finished, barrier) = (
                level.clone(),
                next.clone(),
                cursor.clone(),
                depth.clone(),
                finished.clone(),
                barrier.clone(),
            );
            Thread::builder()
                .name(format!("crawler-{i}"))
                .spawn(async move {
                    loop {
                        // Take pages of the current level until it runs out.
                        loop {
                            let k = cursor.fetch_add(1, SeqCst);
                            let Some(id) = level.lock().unwrap().get(k).copied() else {
                                break;
                            };
                            if stop.is_set() {
                                break;
                            }
                            let text = {
                                let _slot = fetch_slots.permit().await;
                                let now = in_flight.fetch_add(1, SeqCst) + 1;
                                max_in_flight.fetch_max(now, SeqCst);
                                // The "network": a millisecond of latency.
                                tokio::time::sleep(Duration::from_millis(1)).await;
                                in_flight.fetch_sub(1, SeqCst);
                                page_text(id)
                            };
                            stats.record(depth.load(SeqCst)).await;
                            per_worker.with(|n| *n += 1);
                            if stats.fetched.load(SeqCst) >= PAGE_BUDGET {
                                stop.set();
                            }
                            next.lock().unwrap().extend(links(id));
                            buffer.put(Some((id, text))).await;
                        }
                        barrier.wait().await.expect("the barrier never breaks here");
                        if finished.load(SeqCst) {
                            return per_worker.get();
                        }
                    }
                })
        })
        .collect();

    let mut counts = Vec::new();
    for w in workers {
        let name = w.name();
        counts.push((name, w.join().await.expect("a crawler failed")));
    }
    watchdog.cancel();
    buffer.put(None).await;
    let (indexed, words) = indexer.join().await.expect("the indexer failed");
    let elapsed = t0.elapsed();

    let crawled = stats.fetched.load(SeqCst);
    println!(
        "  crawled {crawled} pages in {} levels in {:.1} ms ({:.0} pages/s); stop event set: {}",
        depth.load(SeqCst),
        elapsed.as_secs_f64() * 1e3,
        crawled as f64 / elapsed.as_secs_f64(),
        stop.is_set()
    );
    println!(
        "  fetches in flight never exceeded {} (Semaphore limit {FETCH_LIMIT})",
        max_in_flight.load(SeqCst)
    );
    let per: Vec<String> = counts.iter().map(|(n, c)| format!("{n}: {c}")).collect();
    println!("  pages per worker (Local): {}", per.join(", "));
    let mut top: Vec<_> = words.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!(
        "  indexer thread (OS thread, blocking facade) indexed {indexed} pages; top words: {}",
        top.iter()
            .take(3)
            .map(|(w, c)| format!("{w} x{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  watchdog Timer cancelled before firing: {}; threads alive now: {:?}",
        !watchdog.is_alive(),
        threading::enumerate()
            .iter()
            .map(Thread::name)
            .collect::<Vec<_>>()
    );
    assert_eq!(indexed, crawled, "every crawled page was indexed");
    assert!(max_in_flight.load(SeqCst) <= FETCH_LIMIT);
    println!();
}
