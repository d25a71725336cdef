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
//!
//! **queue, tasks, contextvars, sched**: a request pipeline. A `TaskGroup`
//! of parser tasks feeds a bounded `Queue`; worker Threads take items and
//! mark them done, and `join` says when all are processed; every worker sees
//! the request id set in a `ContextVar` before they started; a `Scheduler`
//! prints progress on a timer; a `PriorityQueue` ranks the results.
//!
//! **concurrent.futures**: a `ThreadPoolExecutor` hashes generated files,
//! the results gathered with `as_completed`.
//!
//! **subprocess**: the generated pages' words through a real pipeline
//! (`tr | sort | uniq -c | sort -rn | head`), 8 MiB echoed through `cat` by
//! `communicate`, a command cut short by its timeout (and the output it had
//! printed), and the blocking facade from an OS thread.
//!
//! **multiprocessing**: worker processes (one started by `spawn`, one by
//! the fork server) take batches of page ids over a `Pipe`, count the
//! words of each page, answer with their counts and add their totals into
//! a shared `Array` (under its cross-process lock) the parent reads at the
//! end; two more take numbers from a `JoinableQueue`, mark them done and
//! put their sums on a `Queue`; 64 KiB go through a `SharedMemory` block
//! to a child; a
//! `Listener` with an auth key accepts a child that holds the key and
//! refuses a client that does not; a worker's panic comes back with its
//! remote backtrace.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
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
            .await
            .expect("the guard is held");
        self.items.lock().unwrap().push_back(item);
        self.cond.notify_all().unwrap();
    }

    /// From the indexer's OS thread (blocking facade).
    fn get_blocking(&self) -> Page {
        let items = self.items.clone();
        let cond = self.cond.blocking();
        let g = cond.lock();
        let _g = cond
            .wait_for(g, move || !items.lock().unwrap().is_empty())
            .expect("the guard is held");
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
    // Worker processes are this binary again: init diverts them here.
    conex::multiprocessing::init();
    println!("conex tour");
    println!("==========\n");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(threading_tour());
    rt.block_on(pipeline_tour());
    futures_tour();
    rt.block_on(subprocess_tour());
    rt.block_on(multiprocessing_tour());
    pools_tour();
    managers_tour();
    // Python's interpreter waits for non-daemon threads at exit.
    threading::join_non_daemon_blocking();
}

/// queue + tasks + contextvars + sched.
async fn pipeline_tour() {
    use conex::contextvars::ContextVar;
    use conex::queue::{PriorityQueue, Queue};
    use conex::sched::Scheduler;
    use conex::tasks::task_group;

    const PARSERS: usize = 3;
    const WORKERS: usize = 4;
    const REQUESTS: usize = 600;
    println!("[queue, tasks, contextvars, sched] a request pipeline");
    let t0 = Instant::now();
    let request_id = ContextVar::new("request_id");
    request_id.set(format!("req-{:04x}", 0xc0ffeeu32 & 0xffff));
    let queue: Queue<(usize, String)> = Queue::new(16);
    let processed = Arc::new(AtomicUsize::new(0));
    let ranking = PriorityQueue::unbounded();

    // Progress on a timer: each event prints and enters the next one.
    let sched = Scheduler::new();
    fn tick(s: Scheduler, processed: Arc<AtomicUsize>, t0: Instant, stop: Arc<AtomicBool>) {
        if stop.load(SeqCst) {
            return;
        }
        println!(
            "  scheduler: {:>4} of {REQUESTS} requests processed (t = {:>5.1} ms)",
            processed.load(SeqCst),
            t0.elapsed().as_secs_f64() * 1e3
        );
        let s2 = s.clone();
        s.enter(Duration::from_millis(40), 0, move || {
            tick(s2, processed, t0, stop)
        });
    }
    let stop_ticks = Arc::new(AtomicBool::new(false));
    {
        let (s2, p2, st2) = (sched.clone(), processed.clone(), stop_ticks.clone());
        sched.enter(Duration::from_millis(10), 0, move || tick(s2, p2, t0, st2));
    }
    let ticker = {
        let s = sched.clone();
        Thread::builder()
            .name("scheduler")
            .spawn(async move { s.run().await })
    };

    // Workers: task-backed Threads, each in a copy of this context.
    let seen_ids = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            let (q, processed, ranking, seen, rid) = (
                queue.clone(),
                processed.clone(),
                ranking.clone(),
                seen_ids.clone(),
                request_id.clone(),
            );
            Thread::builder()
                .name(format!("worker-{i}"))
                .spawn(async move {
                    seen.lock().unwrap().push(rid.get().unwrap());
                    rid.set(format!("worker-{i}-private")); // stays in this Thread
                    while let Ok((n, text)) = q.get().await {
                        let score = text.bytes().map(u64::from).sum::<u64>() % 1000;
                        ranking.put_nowait((std::cmp::Reverse(score), n)).unwrap();
                        processed.fetch_add(1, SeqCst);
                        q.task_done().unwrap();
                    }
                })
        })
        .collect();

    // Parsers: a TaskGroup; the first failure would cancel the others.
    let q2 = queue.clone();
    let parsed = task_group(|tg| async move {
        for p in 0..PARSERS {
            let q = q2.clone();
            tg.spawn(async move {
                for n in (p..REQUESTS).step_by(PARSERS) {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    q.put((n, page_text(n as u64)))
                        .await
                        .map_err(|_| "queue shut down")?;
                }
                Ok::<_, &str>(())
            })
            .expect("the group is open");
        }
        Ok(PARSERS)
    })
    .await;
    queue.join().await;
    let joined_at = t0.elapsed();
    queue.shutdown(false);
    for w in workers {
        w.join().await.expect("a worker failed");
    }
    stop_ticks.store(true, SeqCst);
    ticker.join().await.expect("the scheduler failed");
    let top: Vec<_> = (0..3).filter_map(|_| ranking.get_nowait().ok()).collect();
    let ids = seen_ids.lock().unwrap().clone();
    println!(
        "  {} parser tasks (TaskGroup: {:?}) fed {REQUESTS} requests through a Queue(16); join() returned after {:.1} ms",
        PARSERS,
        parsed.map(|n| format!("{n} ok")).map_err(|e| e.to_string()),
        joined_at.as_secs_f64() * 1e3
    );
    println!(
        "  every worker saw the request id set before it started: {} (and the caller still has {})",
        ids.iter().all(|id| *id == ids[0]) && ids.len() == WORKERS,
        request_id.get().unwrap()
    );
    println!("  top results by score (PriorityQueue): {top:?}");
    assert_eq!(processed.load(SeqCst), REQUESTS);
    println!();
}

/// concurrent.futures: hash generated files on a thread pool.
fn futures_tour() {
    use conex::futures::{Executor, ThreadPoolExecutor, as_completed_blocking};

    const FILES: usize = 24;
    const SIZE: usize = 1 << 20;
    println!(
        "[concurrent.futures] hash {FILES} generated files of 1 MiB with a ThreadPoolExecutor"
    );
    let dir = std::env::temp_dir().join(format!("conex-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp directory");
    let paths: Vec<std::path::PathBuf> = (0..FILES)
        .map(|i| {
            let path = dir.join(format!("file-{i:02}.bin"));
            let mut x = i as u64 + 1;
            let bytes: Vec<u8> = (0..SIZE)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            std::fs::write(&path, bytes).expect("write a generated file");
            path
        })
        .collect();

    /// FNV-1a over the file's bytes (blocking I/O and CPU: thread-pool work).
    fn hash_file(path: std::path::PathBuf) -> (String, u64) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (name, h)
    }

    let t = Instant::now();
    let sequential: Vec<_> = paths.iter().cloned().map(hash_file).collect();
    let seq_time = t.elapsed();

    let pool = ThreadPoolExecutor::new(4).expect("a pool");
    let t = Instant::now();
    let futs: Vec<_> = paths
        .iter()
        .cloned()
        .map(|p| pool.submit(hash_file, p).expect("the pool is open"))
        .collect();
    let mut first = Vec::new();
    let mut results = Vec::new();
    for f in as_completed_blocking(&futs, Some(Duration::from_secs(60))) {
        let (name, h) = f.expect("in time").blocking().result().expect("hashed");
        if first.len() < 3 {
            first.push(name.clone());
        }
        results.push((name, h));
    }
    let pool_time = t.elapsed();
    results.sort();
    let mut expected = sequential.clone();
    expected.sort();
    assert_eq!(results, expected, "the pool computed the same hashes");
    println!(
        "  sequential {:.1} ms, ThreadPoolExecutor(4) {:.1} ms on {} workers; first finished: {}",
        seq_time.as_secs_f64() * 1e3,
        pool_time.as_secs_f64() * 1e3,
        pool.workers(),
        first.join(", ")
    );
    println!("  {} = {:016x}, ...", results[0].0, results[0].1);
    pool.shutdown(true, false);
    let _ = std::fs::remove_dir_all(&dir);
    println!();
}

/// subprocess: pipelines, communicate, timeouts, the blocking facade.
async fn subprocess_tour() {
    use conex::subprocess::{self, Command, PIPE};

    println!("[subprocess] real programs, async and blocking");
    // 1. A pipeline: the words of 3000 generated pages, counted by the shell's tools.
    let text: String = (0..3000).map(|id| page_text(id) + "\n").collect();
    let t = Instant::now();
    let done = (Command::new(["tr", "-s", " ", "\\n"])
        | Command::new(["sort"])
        | Command::new(["uniq", "-c"])
        | Command::new(["sort", "-rn"])
        | Command::new(["head", "-n", "4"]))
    .input(text.clone())
    .stdout(PIPE)
    .text()
    .check()
    .await
    .expect("the pipeline runs");
    let top: Vec<String> = done
        .stdout
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().rev().collect::<Vec<_>>().join(" x"))
        .collect();
    println!(
        "  tr | sort | uniq -c | sort -rn | head: {} KiB in, exit statuses {:?}, {:.1} ms",
        text.len() / 1024,
        done.returncodes,
        t.elapsed().as_secs_f64() * 1e3
    );
    println!("  top words: {}", top.join(", "));

    // 2. communicate: 8 MiB in and out of `cat` at once, no deadlock.
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let t = Instant::now();
    let mut cat = Command::new(["cat"])
        .stdin(PIPE)
        .stdout(PIPE)
        .popen()
        .expect("cat");
    let (out, _) = cat.communicate(&data).await.expect("communicate");
    let secs = t.elapsed().as_secs_f64();
    assert!(out.as_deref() == Some(&data[..]), "cat echoed every byte");
    println!(
        "  communicate: 8 MiB through cat and back in {:.1} ms ({:.0} MiB/s each way), exit {:?}",
        secs * 1e3,
        8.0 / secs,
        cat.returncode()
    );

    // 3. A timeout kills the command and keeps what it had printed.
    let t = Instant::now();
    let err = Command::shell("for i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 0.1; done")
        .stdout(PIPE)
        .timeout(Duration::from_millis(350))
        .run()
        .await
        .expect_err("ten ticks take a second");
    let timeout = err.as_timeout().expect("TimeoutExpired");
    let partial = timeout
        .stdout_lossy()
        .unwrap_or_default()
        .replace('\n', " | ");
    println!(
        "  timeout after {:.0} ms: \"{err}\"; output so far: {}",
        t.elapsed().as_secs_f64() * 1e3,
        partial.trim_end_matches(" | ")
    );

    // 4. The blocking facade from a plain OS thread, no runtime involved.
    let os = std::thread::spawn(|| {
        let (code, out) = subprocess::getstatusoutput_blocking("uname -sm; exit 3").expect("sh");
        (code, out)
    })
    .join()
    .expect("thread");
    println!("  blocking facade on an OS thread: getstatusoutput(\"uname -sm; exit 3\") = {os:?}");
    println!();
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

/// A worker process: batches of page ids in, word counts out; its total
/// goes into slot `slot` of the shared `Array` of counters.
fn count_words(
    (conn, counters, slot): (
        conex::multiprocessing::Connection,
        conex::multiprocessing::Array<u64>,
        usize,
    ),
) -> usize {
    let conn = conn.blocking();
    let mut batches = 0;
    while let Ok(ids) = conn.recv::<Vec<u64>>() {
        let counts: Vec<u32> = ids
            .iter()
            .map(|&id| page_text(id).split_whitespace().count() as u32)
            .collect();
        let total: u64 = counts.iter().map(|&c| c as u64).sum();
        {
            // with counters.get_lock(): counters[slot] += total
            let lock = counters.get_lock();
            let _g = lock.blocking().lock();
            let now = counters.get(slot).expect("a slot per worker");
            counters.set(slot, now + total).expect("a slot per worker");
        }
        conn.send(&counts).expect("the parent listens");
        batches += 1;
    }
    batches
}

/// A worker: squares numbers from `work` (marking each done) until a
/// `None`, then puts its pid and sum on `results`.
fn sum_squares(
    (work, results): (
        conex::multiprocessing::JoinableQueue<Option<u64>>,
        conex::multiprocessing::Queue<(u32, u64)>,
    ),
) {
    let mut sum = 0;
    while let Ok(Some(n)) = work.blocking().get() {
        sum += n * n;
        work.task_done().expect("one get, one task_done");
    }
    results
        .blocking()
        .put((std::process::id(), sum))
        .expect("put");
}

/// A child reading a shared block.
fn checksum(block: conex::multiprocessing::SharedMemory) -> u64 {
    block.to_vec().iter().map(|&b| b as u64).sum()
}

/// A child that dials the parent's Listener with the inherited auth key.
fn dial_back(address: conex::multiprocessing::Address) -> String {
    let key = conex::multiprocessing::current_authkey();
    let c = conex::multiprocessing::Client::connect_blocking(&address, Some(&key))
        .expect("the key matches");
    c.blocking()
        .send(&format!("hello from pid {}", std::process::id()))
        .expect("send");
    c.blocking().recv::<String>().expect("reply")
}

fn divide((a, b): (i64, i64)) -> i64 {
    a.checked_div(b)
        .unwrap_or_else(|| panic!("cannot divide {a} by {b}"))
}

/// multiprocessing: processes, pipes, shared memory, listeners, panics.
async fn multiprocessing_tour() {
    use conex::multiprocessing::{
        Address, Array, Client, ConnectionError, JoinableQueue, Listener, Process, ProcessError,
        Queue, SharedMemory, StartMethod, current_authkey, pipe,
    };

    println!("[multiprocessing] worker processes of this very binary");
    // 1. Two workers, a pipe each, one shared Array of counters.
    let t = Instant::now();
    let counters = Array::<u64>::new(2).expect("shared array");
    let mut workers = Vec::new();
    for (slot, method) in [StartMethod::Spawn, StartMethod::Forkserver]
        .into_iter()
        .enumerate()
    {
        let (ours, theirs) = pipe(true).expect("pipe");
        let p = Process::builder()
            .name(format!("counter-{method}"))
            .start_method(method)
            .build(count_words, (theirs, counters.clone(), slot));
        p.start().expect("start");
        workers.push((p, ours));
    }
    let started = t.elapsed();
    let pages: Vec<u64> = (0..3000).collect();
    let mut words_by_reply = 0u64;
    for (i, batch) in pages.chunks(100).enumerate() {
        let (_, conn) = &workers[i % 2];
        conn.send(&batch.to_vec()).await.expect("send a batch");
    }
    for (i, _) in pages.chunks(100).enumerate() {
        let (_, conn) = &workers[i % 2];
        let counts: Vec<u32> = conn.recv().await.expect("counts");
        words_by_reply += counts.iter().map(|&c| c as u64).sum::<u64>();
    }
    let mut batches = Vec::new();
    for (p, conn) in &workers {
        conn.close();
        batches.push((
            p.name(),
            p.pid().unwrap_or(0),
            p.result().await.expect("worker result"),
        ));
    }
    let shared = counters.to_vec();
    let expected: u64 = pages
        .iter()
        .map(|&id| page_text(id).split_whitespace().count() as u64)
        .sum();
    assert_eq!(
        shared.iter().sum::<u64>(),
        expected,
        "the shared counters add up"
    );
    assert_eq!(words_by_reply, expected, "the replies add up");
    for (name, pid, n) in &batches {
        println!("  {name} (pid {pid}) counted {n} batches");
    }
    println!(
        "  {} pages, {} words: the shared Array {:?} sums to the replies' total; started both in {:.1} ms, all done in {:.1} ms",
        pages.len(),
        expected,
        shared,
        started.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );

    // 2. A JoinableQueue of work shared by two worker processes, results
    // back on a Queue; join() waits until every item is marked done.
    let t = Instant::now();
    let work = JoinableQueue::<Option<u64>>::new(256).expect("queue");
    let results = Queue::<(u32, u64)>::unbounded().expect("queue");
    let squarers: Vec<_> = (0..2)
        .map(|_| {
            let p = Process::new(sum_squares, (work.clone(), results.clone()));
            p.start().expect("start");
            p
        })
        .collect();
    for n in 1..=2000u64 {
        work.put(Some(n)).await.expect("put");
    }
    work.join().await;
    for _ in &squarers {
        work.put(None).await.expect("put");
    }
    let mut total = 0u64;
    let mut per_worker = Vec::new();
    for _ in &squarers {
        let (pid, sum) = results.get().await.expect("result");
        per_worker.push(pid);
        total += sum;
    }
    for p in &squarers {
        p.join().await.expect("join");
    }
    assert_eq!(total, (1..=2000u64).map(|n| n * n).sum::<u64>());
    println!(
        "  JoinableQueue: 2000 numbers squared by workers {per_worker:?}, sum {total}, joined and collected in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // 3. 64 KiB through a SharedMemory block: a child checksums what this
    // process wrote (it arrives attached, by name).
    let mut block = SharedMemory::create(None, 64 << 10).expect("shared memory");
    let pattern: Vec<u8> = (0..block.size()).map(|i| (i % 251) as u8).collect();
    block.write(0, &pattern).expect("in range");
    let expected: u64 = block.to_vec().iter().map(|&b| b as u64).sum();
    let reader = Process::new(
        checksum,
        SharedMemory::attach(block.name()).expect("attach"),
    );
    reader.start().expect("start");
    let got = reader.result().await.expect("checksum");
    assert_eq!(got, expected);
    println!(
        "  SharedMemory {:?}: a child summed its 64 KiB to {got}, as written",
        block.name()
    );
    block.unlink().expect("unlink");

    // 4. A Listener with this process's auth key: a child holding the key
    // (inherited) gets in; a client with the wrong key is refused, and the
    // listener goes on serving.
    let listener = Listener::bind(Address::unix_temp(), Some(&current_authkey())).expect("bind");
    let child = Process::new(dial_back, listener.address().clone());
    child.start().expect("start");
    let conn = listener.accept().await.expect("the child authenticates");
    let hello: String = conn.recv().await.expect("hello");
    conn.send(&"welcome".to_string()).await.expect("reply");
    println!(
        "  listener at {}: {hello:?}; child got {:?}",
        listener.address(),
        child.result().await.expect("child")
    );
    let address = listener.address().clone();
    let intruder = tokio::spawn(async move {
        Client::connect(&address, Some(b"not the key"))
            .await
            .map(|_| ())
    });
    let refused = listener.accept().await.expect_err("a wrong key is refused");
    let intruder = intruder
        .await
        .expect("task")
        .expect_err("the client sees it too");
    assert!(matches!(refused, ConnectionError::Authentication(_)));
    println!("  wrong key: listener says \"{refused}\", client says \"{intruder}\"");
    listener.close();

    // 5. A panic in a worker comes back with its message and backtrace.
    let p = Process::new(divide, (7, 0));
    p.start().expect("start");
    match p.result().await {
        Err(ProcessError::Panicked(e)) => {
            let frames = e.backtrace.as_deref().unwrap_or("").lines().count();
            println!(
                "  a worker panicked: {:?}, exit code {:?}, {frames} backtrace lines came back",
                e.message,
                p.exitcode()
            );
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    println!();
}

/// Python's docs example for ProcessPoolExecutor.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n == 2 {
        return true;
    }
    if n.is_multiple_of(2) {
        return false;
    }
    let sqrt_n = (n as f64).sqrt().floor() as u64;
    (3..=sqrt_n).step_by(2).all(|i| !n.is_multiple_of(i))
}

/// Steps of the Collatz sequence from `n` down to 1.
fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n != 1 {
        n = if n.is_multiple_of(2) {
            n / 2
        } else {
            3 * n + 1
        };
        steps += 1;
    }
    steps
}

/// A call that takes its own worker down, to show the pool survive it.
fn crash_on(x: u64) -> u64 {
    if x == 13 {
        // SAFETY: signals this (worker) process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x
}

/// multiprocessing.Pool, concurrent.futures.ProcessPoolExecutor,
/// multiprocessing.dummy.
fn pools_tour() {
    use conex::futures::{Executor, MapOptions, ProcessPoolExecutor};
    use conex::multiprocessing::{Pool, dummy};
    use std::io::Write;

    println!("[pools] ProcessPoolExecutor and Pool on worker processes");
    // 1. The ProcessPoolExecutor example from Python's docs.
    const PRIMES: [u64; 6] = [
        112272535095293,
        112582705942171,
        112272535095293,
        115280095190773,
        115797848077099,
        1099726899285419,
    ];
    let t = Instant::now();
    let executor = ProcessPoolExecutor::new(2).expect("pool");
    let results = executor
        .map(is_prime, PRIMES, MapOptions::new())
        .expect("map");
    for (number, prime) in PRIMES.iter().zip(results) {
        println!("  {number} is prime: {}", prime.expect("a result"));
    }
    println!("  (2 worker processes, {:?})", t.elapsed());

    // 2. A worker killed mid-call fails that call only; a replacement runs the rest.
    let fs: Vec<_> = (10..17u64)
        .map(|x| executor.submit(crash_on, x).expect("submit"))
        .collect();
    let ok = fs.iter().filter(|f| f.blocking().result().is_ok()).count();
    let err = fs[3]
        .blocking()
        .result()
        .expect_err("the crashing call fails");
    println!("  {ok} of 7 calls completed; call 13: {err}");
    drop(executor);

    // 3. Pool.imap_unordered with a progress bar.
    let pool = Pool::new(Some(2)).expect("pool");
    let n = 400u64;
    let mut longest = 0;
    let mut done = 0;
    let start = 1_000_000u64;
    let results = pool
        .imap_unordered(collatz_steps, start..start + n, NonZeroUsize::new(10))
        .expect("imap_unordered");
    for steps in results {
        let steps = steps.expect("a result");
        done += 1;
        longest = longest.max(steps);
        if done % 40 == 0 || done == n {
            let bar = "#".repeat((done * 30 / n) as usize);
            print!("\r  collatz [{bar:<30}] {done}/{n}");
            let _ = std::io::stdout().flush();
        }
    }
    println!("\n  longest chain: {longest} steps");
    let steps = pool
        .map(collatz_steps, [27u64, 97, 871], None)
        .expect("map");
    println!("  Pool.map(collatz_steps, [27, 97, 871]) = {steps:?}");
    pool.close();
    pool.join().expect("join");

    // 4. The same API on threads: multiprocessing.dummy.
    let threads = dummy::Pool::new(Some(4)).expect("thread pool");
    let found = threads
        .map(is_prime, 1_000_000..1_000_100u64, None)
        .expect("map")
        .into_iter()
        .filter(|p| *p)
        .count();
    println!("  dummy::Pool (threads): {found} primes in 1000000..1000100");
    println!();
}

/// A manager's dict and list, updated by worker processes.
fn tally_words(
    (words, text): (
        conex::multiprocessing::managers::DictProxy<String, u32>,
        String,
    ),
) {
    for w in text.split_whitespace() {
        let w = w
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        if w.len() > 3 {
            // Not atomic across processes (get then set), so the manager's
            // lock guards it, as in Python.
            let n = words.blocking().get(&w).expect("get").unwrap_or(0);
            words.blocking().set(&w, &(n + 1)).expect("set");
        }
    }
}

fn guarded_tally(
    (words, lock, done, text): (
        conex::multiprocessing::managers::DictProxy<String, u32>,
        conex::multiprocessing::managers::LockProxy,
        conex::multiprocessing::managers::ListProxy<u32>,
        String,
    ),
) {
    lock.blocking().acquire().expect("acquire");
    tally_words((words, text));
    lock.blocking().release().expect("release");
    done.blocking().append(&std::process::id()).expect("append");
}

/// multiprocessing.managers: a server process owning shared objects.
fn managers_tour() {
    use conex::multiprocessing::{Process, manager};

    println!("[managers] a SyncManager's dict, updated by worker processes");
    let t = Instant::now();
    let m = manager().expect("manager");
    let words = m.dict::<String, u32>().expect("dict");
    let lock = m.lock().expect("lock");
    let done = m.list::<u32>().expect("list");
    let texts = [
        "Concurrent execution: threads, processes and pools of them.",
        "Processes share nothing but what a manager serves to them.",
        "A manager serves dicts, lists, queues and locks to processes.",
    ];
    let workers: Vec<_> = texts
        .iter()
        .map(|text| {
            let args = (words.clone(), lock.clone(), done.clone(), text.to_string());
            let p = Process::new(guarded_tally, args);
            p.start().expect("start");
            p
        })
        .collect();
    for p in &workers {
        p.blocking().join().expect("join");
    }
    let mut counts = words.blocking().items().expect("items");
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<String> = counts
        .iter()
        .take(4)
        .map(|(w, n)| format!("{w}={n}"))
        .collect();
    println!(
        "  {} workers ({} reported in) counted {} words; top: {}",
        workers.len(),
        done.blocking().len().expect("len"),
        counts.len(),
        top.join(", ")
    );
    // The proxies are async first: a thousand tasks on two workers call
    // the same dict at once over this process's one connection.
    let t2 = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let hits = m.dict::<u32, u32>().expect("dict");
    let threads_before = threads_now();
    let peak = rt.block_on(async {
        let tasks: Vec<_> = (0..1000u32)
            .map(|i| {
                let hits = hits.clone();
                tokio::spawn(async move {
                    hits.set(&i, &(i * 2)).await.expect("set");
                    hits.get(&i).await.expect("get")
                })
            })
            .collect();
        let peak = threads_now();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.expect("task"), Some(i as u32 * 2));
        }
        peak
    });
    println!(
        "  1000 tasks made 2000 concurrent DictProxy calls in {:?} ({} entries; {} threads before, {} once all were spawned)",
        t2.elapsed(),
        hits.blocking().len().expect("len"),
        threads_before,
        peak
    );
    println!(
        "  server process pid {:?}, {:?} in all",
        m.process().and_then(|p| p.pid()),
        t.elapsed()
    );
    println!();
}

/// The threads of this process now.
fn threads_now() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}
