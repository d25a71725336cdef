//! Process pools: ProcessPoolExecutor (derived from CPython's
//! Lib/test/test_concurrent_futures/: test_process_pool, test_deadlock,
//! test_shutdown, test_init), Pool (_test_multiprocessing's _TestPool,
//! _TestPoolWorkerLifetime) and multiprocessing.dummy. Real worker
//! processes; fault tests kill them.

use std::collections::HashSet;
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conex::futures::{
    Executor, FutureError, MapOptions, OnDeath, ProcessPoolExecutor, SubmitError,
};
use conex::multiprocessing::{Connection, Pool, StartMethod, dummy, get_context, pipe};

use crate::Test;

pub(crate) const TESTS: &[Test] = &[
    (
        "pool::a_thousand_tasks_await_results_without_threads",
        a_thousand_tasks_await_results_without_threads,
    ),
    ("ppe::submit_and_map_in_order", submit_and_map_in_order),
    ("ppe::executor_conformance", executor_conformance),
    (
        "ppe::remote_panic_keeps_backtrace",
        remote_panic_keeps_backtrace,
    ),
    ("ppe::fallible_error_keeps_type", fallible_error_keeps_type),
    (
        "ppe::killed_worker_fails_only_its_call",
        killed_worker_fails_only_its_call,
    ),
    (
        "ppe::idle_worker_death_loses_nothing",
        idle_worker_death_loses_nothing,
    ),
    ("ppe::worker_exiting_on_its_own", worker_exiting_on_its_own),
    ("ppe::break_policy_is_pythons", break_policy_is_pythons),
    ("ppe::initializer_runs_first", initializer_runs_first),
    (
        "ppe::failing_initializer_breaks",
        failing_initializer_breaks,
    ),
    ("ppe::max_tasks_per_child", max_tasks_per_child),
    (
        "ppe::shutdown_with_pending_work",
        shutdown_with_pending_work,
    ),
    ("ppe::kill_on_cancel", kill_on_cancel),
    ("ppe::forkserver_context", forkserver_context),
    ("pool::apply_map_starmap", apply_map_starmap),
    #[cfg(feature = "tracing")]
    (
        "pool::a_killed_worker_is_one_warn_event",
        traced::a_killed_worker_is_one_warn_event,
    ),
    #[cfg(feature = "tracing")]
    (
        "tracing::work_is_spans_and_events",
        traced::work_is_spans_and_events,
    ),
    #[cfg(feature = "tracing")]
    (
        "tracing::log_to_stderr_prints_in_pythons_format",
        traced::log_to_stderr_prints_in_pythons_format,
    ),
    (
        "pool::async_results_and_callbacks",
        async_results_and_callbacks,
    ),
    ("pool::imap_and_imap_unordered", imap_and_imap_unordered),
    ("pool::terminate_stops_work", terminate_stops_work),
    ("pool::close_and_join", close_and_join),
    (
        "pool::maxtasksperchild_with_backlog",
        maxtasksperchild_with_backlog,
    ),
    ("pool::dead_worker_in_map", dead_worker_in_map),
    ("dummy::same_api_on_threads", dummy_same_api_on_threads),
];

fn square(x: u64) -> u64 {
    x * x
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn sleep_ms(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

fn boom(x: u64) -> u64 {
    if x == 3 {
        panic!("three is right out");
    }
    x
}

#[derive(Debug)]
struct Odd(u64);

impl std::fmt::Display for Odd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is odd", self.0)
    }
}

impl std::error::Error for Odd {}

fn even_only(x: u64) -> Result<u64, Odd> {
    if x % 2 == 1 { Err(Odd(x)) } else { Ok(x) }
}

/// Reports its pid, then sleeps until killed.
fn report_and_hang(c: Connection) {
    c.blocking().send(&std::process::id()).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

fn exit_with(code: i32) -> u64 {
    std::process::exit(code)
}

fn kill_self(x: u64) -> u64 {
    if x == 5 {
        // SAFETY: signals this process.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
    x
}

fn kill(pid: u32) {
    // SAFETY: signals a worker of this test.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
}

fn broken_message(e: FutureError) -> String {
    match e {
        FutureError::Failed(w) => {
            assert_eq!(w.type_name(), "BrokenProcessPool", "{w}");
            w.message().to_owned()
        }
        other => panic!("expected BrokenProcessPool, got {other:?}"),
    }
}

// test_process_pool / ExecutorTest.test_submit, test_map (chunksize 1 and
// more: results in input order either way)
fn submit_and_map_in_order() {
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let f = pool.submit(square, 12).unwrap();
    assert_eq!(f.blocking().result(), Ok(144));
    for chunk in [1, 7, 100] {
        let opts = MapOptions::new().chunksize(NonZeroUsize::new(chunk));
        let out: Vec<u64> = pool
            .map(square, 0..250u64, opts)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(out, (0..250u64).map(|x| x * x).collect::<Vec<_>>());
    }
    // A bounded look-ahead reads an endless input lazily.
    let opts = MapOptions::new().buffersize(NonZeroUsize::new(4).unwrap());
    let first: Vec<u64> = pool
        .map(square, 0u64.., opts)
        .unwrap()
        .take(10)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first[9], 81);
    assert!(pool.pids().len() <= 2);
}

// The ExecutorTest body the thread pool and task executor run too
// (tests/common/executor.rs), over worker processes
fn executor_conformance() {
    crate::common_executor::executor_behaviour(ProcessPoolExecutor::new(2).unwrap());
}

// test_process_pool.ProcessPoolExecutorTest.test_traceback: the remote
// error is the future's, with the worker's traceback
fn remote_panic_keeps_backtrace() {
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let f = pool.submit(boom, 3).unwrap();
    let Err(FutureError::Failed(e)) = f.blocking().result() else {
        panic!("should fail")
    };
    assert_eq!(e.type_name(), "panic");
    assert_eq!(e.message(), "three is right out");
    assert!(
        e.traceback().unwrap().contains("boom"),
        "{:?}",
        e.traceback()
    );
    // The worker survived its panic: the next call runs.
    assert_eq!(pool.submit(boom, 4).unwrap().blocking().result(), Ok(4));
}

// ExecutorTest.test_map_exception: an error keeps its type name and
// message; in a chunk only the failing call fails
fn fallible_error_keeps_type() {
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let f = pool.submit_fallible(even_only, 7).unwrap();
    let Err(FutureError::Failed(e)) = f.blocking().result() else {
        panic!("should fail")
    };
    assert!(e.type_name().ends_with("Odd"), "{}", e.type_name());
    assert_eq!(e.message(), "7 is odd");
    let opts = MapOptions::new().chunksize(NonZeroUsize::new(10));
    let out: Vec<_> = pool.map(boom, 0..10u64, opts).unwrap().collect();
    assert_eq!(out[..3], [Ok(0), Ok(1), Ok(2)]);
    assert!(out[3].is_err(), "map ends at the first error");
}

// test_deadlock / test_process_pool.test_killed_child: Python breaks the
// pool; here only the killed worker's call fails, naming the worker and
// the signal, and the rest completes on a replacement
fn killed_worker_fails_only_its_call() {
    let pool = ProcessPoolExecutor::new(2).unwrap();
    let (mine, theirs) = pipe(true).unwrap();
    let victim = pool.submit(report_and_hang, theirs).unwrap();
    let victim_pid: u32 = mine.blocking().recv().unwrap();
    let others: Vec<_> = (0..20u64)
        .map(|x| pool.submit(square, x).unwrap())
        .collect();
    kill(victim_pid);
    let msg = broken_message(victim.blocking().result().unwrap_err());
    assert!(msg.contains(&format!("pid {victim_pid}")), "{msg}");
    assert!(msg.contains("SIGKILL"), "{msg}");
    for (x, f) in others.iter().enumerate() {
        assert_eq!(f.blocking().result(), Ok((x * x) as u64));
    }
    // A replacement took the victim's place.
    let later: Vec<_> = (0..4).map(|_| pool.submit(sleep_ms, 50).unwrap()).collect();
    let pids: HashSet<u32> = later
        .iter()
        .map(|f| f.blocking().result().unwrap())
        .collect();
    assert!(!pids.contains(&victim_pid));
    assert!(pool.pids().len() <= 2);
}

/// Waits until every thread of `pid` has exited (its descriptors are
/// closed then), though the process is not reaped yet. The leader turns
/// zombie before its other threads are gone, so each thread is checked.
fn wait_dead(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let alive = || {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return false;
        };
        tasks.flatten().any(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .chars()
                .next();
            !matches!(state, None | Some('Z') | Some('X'))
        })
    };
    while alive() {
        assert!(std::time::Instant::now() < deadline, "{pid} did not die");
        std::thread::sleep(Duration::from_millis(2));
    }
}

// test_process_pool.test_killed_child, with the worker killed while idle:
// it is noticed before the next call is sent, which runs on a replacement
fn idle_worker_death_loses_nothing() {
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let first = pool.submit(pid, ()).unwrap().blocking().result().unwrap();
    kill(first);
    wait_dead(first);
    let fs: Vec<_> = (0..3).map(|_| pool.submit(pid, ()).unwrap()).collect();
    for f in fs {
        let next = f
            .blocking()
            .result()
            .expect("no call is lost to an idle death");
        assert_ne!(next, first);
    }
}

// test_deadlock.ExecutorDeadlockTest.test_crash_during_func_exec_on_worker
// (a worker that exits by itself): its call fails with the exit code
fn worker_exiting_on_its_own() {
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let f = pool.submit(exit_with, 3).unwrap();
    let msg = broken_message(f.blocking().result().unwrap_err());
    assert!(msg.contains("exited with code 3"), "{msg}");
    assert_eq!(pool.submit(square, 5).unwrap().blocking().result(), Ok(25));
}

// test_process_pool.test_killed_child with Python's policy: everything
// pending fails and the executor refuses new work
fn break_policy_is_pythons() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .on_worker_death(OnDeath::Break)
        .build()
        .unwrap();
    let fs: Vec<_> = (0..8u64)
        .map(|x| pool.submit(kill_self, x).unwrap())
        .collect();
    for (x, f) in fs.iter().enumerate() {
        match x {
            0..5 => assert_eq!(f.blocking().result(), Ok(x as u64)),
            _ => {
                broken_message(f.blocking().result().unwrap_err());
            }
        }
    }
    assert!(matches!(
        pool.submit(square, 1),
        Err(SubmitError::Broken(_))
    ));
}

static INIT: AtomicU64 = AtomicU64::new(0);

fn init_global(v: u64) {
    INIT.store(v, Ordering::SeqCst);
}

fn read_global(_: ()) -> u64 {
    INIT.load(Ordering::SeqCst)
}

fn init_panics(_: ()) {
    panic!("no initialisation today");
}

// test_init.InitializerMixin.test_initializer
fn initializer_runs_first() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(init_global, 42)
        .build()
        .unwrap();
    let fs: Vec<_> = (0..6)
        .map(|_| pool.submit(read_global, ()).unwrap())
        .collect();
    for f in fs {
        assert_eq!(f.blocking().result(), Ok(42));
    }
    assert_eq!(INIT.load(Ordering::SeqCst), 0, "ran in the workers only");
}

// test_init.FailingInitializerMixin.test_initializer: BrokenProcessPool
// for the pending work and refusal afterwards
fn failing_initializer_breaks() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .initializer(init_panics, ())
        .build()
        .unwrap();
    let f = pool.submit(square, 2).unwrap();
    let msg = broken_message(f.blocking().result().unwrap_err());
    assert!(msg.contains("initializer"), "{msg}");
    assert!(msg.contains("no initialisation today"), "{msg}");
    assert!(matches!(
        pool.submit(square, 1),
        Err(SubmitError::Broken(_))
    ));
}

// test_process_pool.test_max_tasks_per_child
fn max_tasks_per_child() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .max_tasks_per_child(NonZeroU64::new(3).unwrap())
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..7)
        .map(|_| pool.submit(pid, ()).unwrap().blocking().result().unwrap())
        .collect();
    assert!(pids[0] == pids[1] && pids[1] == pids[2]);
    assert!(pids[3] == pids[4] && pids[4] == pids[5]);
    assert_ne!(pids[2], pids[3]);
    assert_ne!(pids[5], pids[6]);
}

// test_shutdown.ProcessPoolShutdownTest: test_cancel_futures,
// test_submit_after_interpreter_shutdown (refused), shutdown(wait) waits
fn shutdown_with_pending_work() {
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let first = pool.submit(sleep_ms, 300).unwrap();
    let rest: Vec<_> = (0..5).map(|_| pool.submit(sleep_ms, 10).unwrap()).collect();
    while !first.running() {
        std::thread::sleep(Duration::from_millis(5));
    }
    pool.shutdown(true, true);
    assert!(first.blocking().result().is_ok(), "running work completes");
    assert!(
        rest.iter().all(|f| f.cancelled()),
        "pending work is cancelled"
    );
    assert_eq!(pool.submit(square, 1), Err(SubmitError::Shutdown));
    // And without cancelling: pending work runs before shutdown returns.
    let pool = ProcessPoolExecutor::new(1).unwrap();
    let fs: Vec<_> = (0..5u64).map(|x| pool.submit(square, x).unwrap()).collect();
    pool.shutdown(true, false);
    assert!(fs.iter().all(|f| f.done() && !f.cancelled()));
}

// Not in Python (cancel() of running work returns False there): with
// kill_on_cancel the worker is killed and replaced
fn kill_on_cancel() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(1)
        .kill_on_cancel(true)
        .build()
        .unwrap();
    let (mine, theirs) = pipe(true).unwrap();
    let f = pool.submit(report_and_hang, theirs).unwrap();
    let victim: u32 = mine.blocking().recv().unwrap();
    assert!(f.running());
    assert!(
        f.cancel(),
        "a running call is cancelled by killing its worker"
    );
    assert!(f.cancelled());
    assert_eq!(f.blocking().result(), Err(FutureError::Cancelled));
    let next = pool.submit(pid, ()).unwrap().blocking().result().unwrap();
    assert_ne!(next, victim, "a replacement runs the next call");
    // Without the option, running work is not cancelled (Python's rule).
    let plain = ProcessPoolExecutor::new(1).unwrap();
    let f = plain.submit(sleep_ms, 200).unwrap();
    while !f.running() {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!f.cancel());
    assert!(f.blocking().result().is_ok());
}

// ProcessPoolForkserverMixin: the same executor on another start method
fn forkserver_context() {
    let pool = ProcessPoolExecutor::builder()
        .max_workers(2)
        .mp_context(get_context(Some(StartMethod::Forkserver)))
        .build()
        .unwrap();
    let fs: Vec<_> = (0..10u64)
        .map(|x| pool.submit(square, x).unwrap())
        .collect();
    let total: u64 = fs.iter().map(|f| f.blocking().result().unwrap()).sum();
    assert_eq!(total, 285);
}

// _TestPool.test_apply, test_map, test_starmap, test_map_chunksize,
// test_empty_iterable
fn apply_map_starmap() {
    let pool = Pool::new(Some(2)).unwrap();
    pool.wait_ready();
    assert_eq!(pool.processes(), 2);
    assert_eq!(pool.apply(square, 9), Ok(81));
    let want: Vec<u64> = (0..100u64).map(|x| x * x).collect();
    for chunk in [0, 1, 30] {
        assert_eq!(
            pool.map(square, 0..100u64, NonZeroUsize::new(chunk))
                .unwrap(),
            want
        );
    }
    assert_eq!(
        pool.map(square, Vec::<u64>::new(), None).unwrap(),
        Vec::<u64>::new()
    );
    let pairs: Vec<(u64, u64)> = (0..10).map(|i| (i, 10 * i)).collect();
    let sums = pool
        .starmap(
            add as fn(u64, u64) -> u64,
            pairs.clone(),
            NonZeroUsize::new(3),
        )
        .unwrap();
    assert_eq!(sums, pairs.iter().map(|(a, b)| a + b).collect::<Vec<_>>());
    let r = pool
        .starmap_async(add as fn(u64, u64) -> u64, pairs, None)
        .unwrap();
    assert_eq!(r.get().unwrap().len(), 10);
    // A failing call fails the map, with its error.
    let Err(FutureError::Failed(e)) = pool.map(boom, 0..10u64, NonZeroUsize::new(2)) else {
        panic!("map should fail")
    };
    assert_eq!(e.message(), "three is right out");
}

// _TestPool.test_async, test_async_timeout, test_map_async_callbacks,
// test_async_error_callback, test_successful
fn async_results_and_callbacks() {
    let pool = Pool::new(Some(2)).unwrap();
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    let r = pool
        .apply_async(square, 11)
        .unwrap()
        .callback(move |v| g.store(*v, Ordering::SeqCst));
    assert_eq!(r.get(), Ok(121));
    assert_eq!(r.get(), Ok(121), "get can be called again");
    assert!(r.ready());
    assert_eq!(r.successful(), Some(true));
    // The callback ran before get returned (it runs on completion).
    assert_eq!(got.load(Ordering::SeqCst), 121);

    let slow = pool.apply_async(sleep_ms, 400).unwrap();
    assert_eq!(
        slow.get_timeout(Duration::from_millis(20)),
        Err(FutureError::Timeout)
    );
    assert!(!slow.ready());
    assert_eq!(slow.successful(), None);
    assert!(slow.wait_timeout(Duration::from_secs(20)));

    let errors = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let e2 = errors.clone();
    let bad = pool
        .apply_async(boom, 3)
        .unwrap()
        .error_callback(move |e| e2.lock().push(e.message().to_owned()));
    bad.wait();
    assert_eq!(bad.successful(), Some(false));
    assert_eq!(*errors.lock(), vec!["three is right out".to_owned()]);

    let m = pool
        .map_async(square, 0..5u64, NonZeroUsize::new(1))
        .unwrap();
    assert_eq!(m.take().unwrap(), vec![0, 1, 4, 9, 16]);
    // Awaitable from async code through its future.
    let r = pool.apply_async(square, 3).unwrap();
    assert_eq!(crate::RT.block_on(r.future().result()), Ok(9));
}

// _TestPool.test_imap, test_imap_unordered (and an error in the middle
// fails that item only)
fn imap_and_imap_unordered() {
    let pool = Pool::new(Some(2)).unwrap();
    let it = pool.imap(square, 0..50u64, NonZeroUsize::new(1)).unwrap();
    assert_eq!(it.size_hint(), (50, Some(50)));
    let out: Vec<u64> = it.map(Result::unwrap).collect();
    assert_eq!(out, (0..50u64).map(|x| x * x).collect::<Vec<_>>());
    let out: Vec<_> = pool
        .imap(boom, 0..6u64, NonZeroUsize::new(2))
        .unwrap()
        .collect();
    assert!(out[3].is_err() && out[4] == Ok(4) && out[5] == Ok(5));
    // Unordered: the fast calls overtake the slow one.
    let mut un = pool
        .imap_unordered(sleep_ms, [600u64, 1, 1, 1], NonZeroUsize::new(1))
        .unwrap();
    let first = un.next_timeout(Duration::from_secs(20)).unwrap();
    assert!(first.is_ok());
    let rest: Vec<_> = un.by_ref().collect();
    assert_eq!(rest.len(), 3);
    assert!(un.next().is_none());
    // next_timeout on a call still running: a timeout, nothing consumed.
    let mut it = pool.imap(sleep_ms, [500u64], NonZeroUsize::new(1)).unwrap();
    assert_eq!(
        it.next_timeout(Duration::from_millis(10)),
        Some(Err(FutureError::Timeout))
    );
    assert!(crate::RT.block_on(it.next_async()).unwrap().is_ok());
    assert!(it.next().is_none());
    // As a Stream: every result, in order, through StreamExt.
    use futures::StreamExt as _;
    let it = pool.imap(square, 0..20u64, NonZeroUsize::new(3)).unwrap();
    let out: Vec<u64> = crate::RT.block_on(it.into_stream().map(Result::unwrap).collect());
    assert_eq!(out, (0..20u64).map(|x| x * x).collect::<Vec<_>>());
    let un = pool
        .imap_unordered(square, 0..20u64, NonZeroUsize::new(1))
        .unwrap();
    let mut out: Vec<u64> = crate::RT.block_on(un.into_stream().map(Result::unwrap).collect());
    out.sort();
    assert_eq!(out, (0..20u64).map(|x| x * x).collect::<Vec<_>>());
}

// _TestPool.test_terminate: outstanding work ends, workers go
fn terminate_stops_work() {
    let pool = Pool::new(Some(2)).unwrap();
    pool.wait_ready();
    let r = pool
        .map_async(sleep_ms, [30_000u64; 4], NonZeroUsize::new(1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = std::time::Instant::now();
    pool.terminate();
    pool.join().unwrap();
    assert!(t.elapsed() < Duration::from_secs(15), "terminate kills");
    let Err(FutureError::Failed(e)) = r.take() else {
        panic!("work should fail")
    };
    assert!(e.message().contains("terminated"), "{e}");
    assert!(matches!(
        pool.apply_async(square, 1),
        Err(SubmitError::Shutdown)
    ));
}

// _TestPool.test_close / test_context ("Pool is still running" for a
// join before close; "Pool not running" after close)
fn close_and_join() {
    let pool = Pool::new(Some(2)).unwrap();
    let r = pool
        .map_async(sleep_ms, [50u64; 6], NonZeroUsize::new(1))
        .unwrap();
    assert!(pool.join().is_err(), "join before close is refused");
    pool.close();
    assert!(matches!(
        pool.apply_async(square, 1),
        Err(SubmitError::Shutdown)
    ));
    pool.join().unwrap();
    assert_eq!(
        r.take().unwrap().len(),
        6,
        "queued work finished before join"
    );
}

// _TestPoolWorkerLifetime.test_pool_worker_lifetime (and
// test_pool_worker_lifetime_early_close): workers are replaced and every
// task of the backlog completes
fn maxtasksperchild_with_backlog() {
    let pool = Pool::builder()
        .processes(3)
        .maxtasksperchild(NonZeroU64::new(10).unwrap())
        .build()
        .unwrap();
    let pids = pool.map(pid, vec![(); 100], NonZeroUsize::new(1)).unwrap();
    let distinct: HashSet<u32> = pids.into_iter().collect();
    assert!(distinct.len() >= 10, "{} workers", distinct.len());
    let sq = pool.map(square, 0..10u64, NonZeroUsize::new(1)).unwrap();
    assert_eq!(sq[9], 81);
}

// _TestPool: a worker that dies in map; Python would hang (bpo-22393) or
// break: here that call fails and the rest completes
fn dead_worker_in_map() {
    let pool = Pool::new(Some(2)).unwrap();
    let out: Vec<_> = pool
        .imap(kill_self, 0..10u64, NonZeroUsize::new(1))
        .unwrap()
        .collect();
    for (x, r) in out.into_iter().enumerate() {
        if x == 5 {
            let msg = broken_message(r.unwrap_err());
            assert!(msg.contains("signal 9"), "{msg}");
        } else {
            assert_eq!(r, Ok(x as u64));
        }
    }
}

thread_local! {
    static LOCAL: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn set_local(v: u64) {
    LOCAL.with(|l| l.set(v));
}

fn get_local(_: ()) -> u64 {
    LOCAL.with(|l| l.get())
}

// _TestPool run with the dummy (thread) pool: the same calls
fn dummy_same_api_on_threads() {
    let pool = dummy::Pool::builder()
        .processes(3)
        .initializer(set_local, 7)
        .build()
        .unwrap();
    assert_eq!(pool.apply(square, 4), Ok(16));
    assert_eq!(
        pool.apply(get_local, ()),
        Ok(7),
        "the initializer ran in the thread"
    );
    assert_eq!(
        pool.map(square, 0..5u64, NonZeroUsize::new(2)).unwrap(),
        vec![0, 1, 4, 9, 16]
    );
    assert_eq!(
        pool.starmap(add as fn(u64, u64) -> u64, [(1, 1), (2, 2)], None)
            .unwrap(),
        vec![2, 4]
    );
    let mut un: Vec<u64> = pool
        .imap_unordered(square, 0..5u64, NonZeroUsize::new(1))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    un.sort();
    assert_eq!(un, vec![0, 1, 4, 9, 16]);
    let Err(FutureError::Failed(e)) = pool.apply(boom, 3) else {
        panic!("should fail")
    };
    assert_eq!(
        (e.type_name(), e.message()),
        ("panic", "three is right out")
    );
    // Not serde: any Send type crosses to a thread.
    fn send_back(tx: std::sync::mpsc::Sender<u64>) -> bool {
        tx.send(5).is_ok()
    }
    let (tx, rx) = std::sync::mpsc::channel();
    assert_eq!(pool.apply(send_back, tx), Ok(true));
    assert_eq!(rx.recv(), Ok(5));
    pool.close();
    pool.join().unwrap();
}

#[cfg(feature = "tracing")]
pub(crate) use traced::{LOG_ROLE_ENV, log_role};

#[cfg(feature = "tracing")]
mod traced {
    use super::*;

    use crate::events::Events;

    static EVENTS: std::sync::OnceLock<std::sync::Arc<Events>> = std::sync::OnceLock::new();

    /// In a child (a process-wide subscriber of its own): a pool whose
    /// worker is killed by its call; the conex events seen.
    fn pool_death_events(_: ()) -> Vec<String> {
        let events = EVENTS.get_or_init(Default::default).clone();
        tracing::subscriber::set_global_default(events).unwrap();
        let pool = ProcessPoolExecutor::new(1).unwrap();
        assert!(
            pool.submit(kill_self, 5)
                .unwrap()
                .blocking()
                .result()
                .is_err()
        );
        assert_eq!(pool.submit(square, 3).unwrap().blocking().result(), Ok(9));
        pool.shutdown(true, false);
        EVENTS.get().unwrap().0.lock().unwrap().clone()
    }

    /// In a child with a process-wide subscriber: an OS-thread and a
    /// task-backed Thread, a Process, a Pool worker and a subprocess child;
    /// the conex spans and events seen.
    fn traced_work(_: ()) -> Vec<String> {
        let events = EVENTS.get_or_init(Default::default).clone();
        tracing::subscriber::set_global_default(events).unwrap();
        conex::threading::Thread::builder()
            .name("traced-os")
            .spawn_blocking(|| ())
            .unwrap()
            .blocking()
            .join()
            .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            conex::threading::Thread::builder()
                .name("traced-task")
                .spawn(async {})
                .join()
                .await
                .unwrap();
            assert_eq!(
                conex::subprocess::call(["true"]).await.unwrap(),
                0,
                "true ran"
            );
        });
        let p = conex::multiprocessing::Process::new(square, 4);
        p.start().unwrap();
        assert_eq!(p.blocking().result().unwrap(), 16);
        let pool = Pool::new(Some(1)).unwrap();
        assert_eq!(pool.apply(square, 3).unwrap(), 9);
        pool.close();
        pool.join().unwrap();
        // A manager's server in this process: a client with a wrong key is
        // refused, one with the right key is a connection span.
        use conex::multiprocessing::managers::SyncManager;
        let m = SyncManager::new(Some("127.0.0.1:0".parse().unwrap()), Some(b"right"));
        let server = std::sync::Arc::new(m.get_server().unwrap());
        let addr = server.address().clone();
        let serving = std::thread::spawn({
            let server = server.clone();
            move || server.serve_forever()
        });
        let wrong = SyncManager::new(Some(addr.clone()), Some(b"wrong"));
        assert!(wrong.connect().is_err() || wrong.dict::<u8, u8>().is_err());
        let right = SyncManager::new(Some(addr), Some(b"right"));
        right.connect().unwrap();
        let d = right.dict::<u8, u8>().unwrap();
        d.blocking().set(&1, &2).unwrap();
        drop((d, right));
        server.stop();
        let _ = serving.join();
        EVENTS.get().unwrap().0.lock().unwrap().clone()
    }

    // Not in CPython (whose multiprocessing logger is silent unless set
    // up): threads, processes, pool workers and subprocess children are
    // spans of target conex with their names and pids, and their ends are
    // events in them.
    pub(super) fn work_is_spans_and_events() {
        let p = conex::multiprocessing::Process::new(traced_work, ());
        p.start().unwrap();
        let seen = p.blocking().result().unwrap();
        let has = |what: &str| seen.iter().any(|e| e.contains(what));
        for what in [
            "SPAN thread name=traced-os ident=",
            "SPAN thread name=traced-task ident=",
            "SPAN process name=Process-",
            "start_method=Spawn",
            "INFO process exited",
            "SPAN process name=SpawnPoolWorker-1",
            "INFO process pool: worker started",
            "SPAN subprocess program=Some(\"true\") pid=",
            "DEBUG subprocess exited",
            "WARN manager: a client was refused",
            "SPAN manager connection conn=",
            "peer=Some(Tcp(127.0.0.1:",
            "DEBUG manager: client authenticated and connected",
        ] {
            assert!(has(what), "no {what:?} in {seen:#?}");
        }
    }

    /// Set when this suite's binary runs as [`log_role`].
    pub(crate) const LOG_ROLE_ENV: &str = "CONEX_TEST_LOG_ROLE";

    /// A program that logs to stderr at INFO and runs one child.
    pub(crate) fn log_role() -> ! {
        let log = conex::multiprocessing::log_to_stderr(conex::multiprocessing::Level::INFO);
        assert_eq!(log.level(), conex::multiprocessing::Level::INFO);
        let p = conex::multiprocessing::Process::new(square, 5);
        p.start().unwrap();
        assert_eq!(p.blocking().result().unwrap(), 25);
        std::process::exit(0)
    }

    // Python: multiprocessing.log_to_stderr(logging.INFO) prints
    // "[INFO/MainProcess] ..." lines. A program of this suite's binary
    // that calls it prints the child's exit in that form, and nothing
    // below INFO.
    pub(super) fn log_to_stderr_prints_in_pythons_format() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env(LOG_ROLE_ENV, "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.lines()
                .any(|l| l.starts_with("[INFO/MainProcess] process exited")
                    && l.contains("exitcode=0")),
            "{err}"
        );
        assert!(!err.contains("[DEBUG/"), "below the level: {err}");
    }

    // Not in CPython (its pool logs a dead worker at debug level): the
    // death of a pool worker is one WARN event, naming the signal.
    pub(super) fn a_killed_worker_is_one_warn_event() {
        let p = conex::multiprocessing::Process::new(pool_death_events, ());
        p.start().unwrap();
        let events = p.blocking().result().unwrap();
        let warns: Vec<_> = events.iter().filter(|e| e.starts_with("WARN")).collect();
        assert_eq!(warns.len(), 1, "{events:?}");
        assert!(warns[0].contains("SIGKILL"), "{events:?}");
    }
}

/// A call that waits until `path` exists.
fn when_exists(path: String) -> u32 {
    while !std::path::Path::new(&path).exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    1
}

/// In a quiet child: 1,000 tasks on a 2-worker runtime await the results
/// of 1,000 calls queued on a `Pool(2)` that cannot finish until `gate`
/// exists. Returns the extra threads taken while they all await, and the
/// sum of the results.
fn await_pool_results(gate: String) -> (usize, u32) {
    let pool = Pool::new(Some(2)).unwrap();
    // The pool's own threads start with its first call.
    assert_eq!(pool.apply(square, 3).unwrap(), 9);
    let rt = crate::two_workers();
    rt.block_on(async {
        let before = crate::sync::threads();
        let started = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..1_000)
            .map(|_| {
                let r = pool.apply_async(when_exists, gate.clone()).unwrap();
                let started = started.clone();
                tokio::spawn(async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    r.future().result().await.unwrap()
                })
            })
            .collect();
        while started.load(Ordering::SeqCst) < 1_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let extra = crate::sync::threads().saturating_sub(before);
        std::fs::write(&gate, b"go").unwrap();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        (extra, sum)
    })
}

// Not in CPython (whose AsyncResult.get blocks a thread): 1,000 tasks
// awaiting process-pool results take no thread each; the pool's drivers
// complete the futures they await.
fn a_thousand_tasks_await_results_without_threads() {
    let gate = std::env::temp_dir().join(format!("conex-pool-gate-{}", std::process::id()));
    let _ = std::fs::remove_file(&gate);
    let p = conex::multiprocessing::Process::new(
        await_pool_results,
        gate.to_string_lossy().into_owned(),
    );
    p.start().unwrap();
    let (extra, sum) = p.blocking().result().unwrap();
    let _ = std::fs::remove_file(&gate);
    assert_eq!(sum, 1_000);
    assert!(extra <= 4, "{extra} extra threads for 1,000 awaiting tasks");
}
