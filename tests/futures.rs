//! concurrent.futures behaviours from CPython's Lib/test/test_concurrent_futures/
//! (test_future, test_wait, test_as_completed, test_shutdown,
//! test_thread_pool, test_init, executor tests), both faces, and
//! cancellation of result and wait at every await point.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use conex::contextvars::ContextVar;
use conex::futures::*;
use conex::threading::Event;
use futures::StreamExt;

#[path = "common/executor.rs"]
mod common_executor;

fn failed(msg: &str) -> WorkError {
    WorkError::new("ValueError", msg)
}

// ------------------------------------------------------------ test_future

// FutureTests.test_done_callback_with_result / _with_exception /
// _with_cancel / _already_successful / _already_failed / _already_cancelled
#[test]
fn done_callbacks() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = |tag: &'static str| {
        let seen = seen.clone();
        move |f: &Future<u8>| seen.lock().unwrap().push((tag, f.done(), f.cancelled()))
    };
    let f = Future::new();
    f.add_done_callback(log("result"));
    assert!(seen.lock().unwrap().is_empty());
    f.set_result(5).unwrap();
    let f = Future::<u8>::new();
    f.add_done_callback(log("exception"));
    f.set_exception(failed("x")).unwrap();
    let f = Future::<u8>::new();
    f.add_done_callback(log("cancel"));
    assert!(f.cancel());
    // Already done: the callback runs at once, here.
    f.add_done_callback(log("already"));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("result", true, false),
            ("exception", true, false),
            ("cancel", true, true),
            ("already", true, true)
        ]
    );
}

// FutureTests.test_done_callback_raises: a panicking callback does not stop
// the others (its panic is reported on stderr).
#[test]
fn panicking_callback_does_not_stop_others() {
    let ran = Arc::new(AtomicUsize::new(0));
    let f = Future::<u8>::new();
    f.add_done_callback(|_| panic!("doh!"));
    let r2 = ran.clone();
    f.add_done_callback(move |_| {
        r2.fetch_add(1, SeqCst);
    });
    f.set_result(1).unwrap();
    assert_eq!(ran.load(SeqCst), 1);
    // And already done:
    f.add_done_callback(|_| panic!("again"));
    let r3 = ran.clone();
    f.add_done_callback(move |_| {
        r3.fetch_add(1, SeqCst);
    });
    assert_eq!(ran.load(SeqCst), 2);
}

#[cfg(feature = "tracing")]
#[path = "common/events.rs"]
mod events;

#[cfg(feature = "tracing")]
mod traced {
    use super::*;

    use crate::events::Events;

    // FutureTests.test_done_callback_raises, with logging configured: the
    // report of a panicking callback reaches the program's tracing subscriber
    // (an ERROR event of target `conex`) instead of stderr.
    #[test]
    fn a_panicking_callback_is_a_tracing_event() {
        let events = Arc::new(Events::default());
        tracing::subscriber::with_default(events.clone(), || {
            let f = Future::<u8>::new();
            f.add_done_callback(|_| panic!("doh!"));
            f.set_result(1).unwrap();
        });
        let seen = events.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].starts_with("ERROR exception calling callback"),
            "{seen:?}"
        );
        assert!(seen[0].contains("doh!"), "{seen:?}");
    }
}

// FutureTests.test_cancel, test_cancelled, test_done, test_running,
// test_repr
#[test]
fn states() {
    let f = Future::<u8>::new();
    assert!(!f.done() && !f.running() && !f.cancelled());
    assert!(format!("{f:?}").contains("pending"));
    assert_eq!(f.set_running_or_notify_cancel(), Ok(true));
    assert!(f.running());
    assert!(!f.cancel(), "a running future cannot be cancelled");
    assert!(
        f.set_running_or_notify_cancel().is_err(),
        "not pending any more: InvalidState"
    );
    f.set_result(1).unwrap();
    assert!(f.done() && !f.running());
    assert!(format!("{f:?}").contains("finished"));
    let c = Future::<u8>::new();
    assert!(c.cancel());
    assert!(c.cancel(), "cancelling twice is still true");
    assert!(c.cancelled() && c.done());
    assert_eq!(c.set_running_or_notify_cancel(), Ok(false));
}

// FutureTests.test_multiple_set_result / test_multiple_set_exception: a
// second set fails with InvalidState and keeps the first value.
#[test]
fn second_set_is_refused() {
    let f = Future::new();
    f.set_result(1).unwrap();
    assert!(f.set_result(2).is_err());
    assert!(f.set_exception(failed("late")).is_err());
    assert_eq!(f.blocking().result(), Ok(1));
    let e = Future::<u8>::new();
    e.set_exception(failed("first")).unwrap();
    assert!(e.set_result(3).is_err());
    assert_eq!(e.blocking().exception(), Ok(Some(failed("first"))));
    let c = Future::<u8>::new();
    c.cancel();
    assert!(
        c.set_result(1).is_err(),
        "a cancelled future takes no result"
    );
}

// FutureTests.test_result_with_timeout / _with_success / _with_cancel,
// test_exception_with_timeout / _with_success / _with_cancel (blocking
// face, with the other side on a thread).
#[test]
fn result_and_exception_blocking() {
    let f = Future::<u8>::new();
    let t = Instant::now();
    assert_eq!(
        f.blocking().result_timeout(Duration::from_millis(100)),
        Err(FutureError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(60));
    assert_eq!(
        f.blocking().exception_timeout(Duration::from_millis(10)),
        Err(FutureError::Timeout)
    );
    let f2 = f.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        f2.set_result(42).unwrap();
    });
    assert_eq!(f.blocking().result_timeout(Duration::from_secs(30)), Ok(42));
    assert_eq!(f.blocking().exception(), Ok(None));

    let e = Future::<u8>::new();
    let e2 = e.clone();
    std::thread::spawn(move || e2.set_exception(failed("boom")).unwrap());
    assert_eq!(
        e.blocking().result(),
        Err(FutureError::Failed(failed("boom")))
    );
    assert_eq!(e.blocking().exception(), Ok(Some(failed("boom"))));

    let c = Future::<u8>::new();
    let c2 = c.clone();
    std::thread::spawn(move || c2.cancel());
    assert_eq!(c.blocking().result(), Err(FutureError::Cancelled));
    assert_eq!(c.blocking().exception(), Err(FutureError::Cancelled));
}

// The async face of the same, and a non-Clone value taken out.
#[tokio::test]
async fn result_async_and_take() {
    let f = Future::new();
    let f2 = f.clone();
    tokio::spawn(async move { f2.set_result(String::from("v")).unwrap() });
    assert_eq!(f.result().await, Ok("v".to_string()));
    assert_eq!(f.clone().await, Ok("v".to_string()));
    assert_eq!(f.take_result().await, Ok("v".to_string()));
    assert_eq!(f.result().await, Err(FutureError::Taken));
    struct NotClone(u8);
    let n = Future::new();
    n.set_result(NotClone(3)).unwrap();
    assert_eq!(n.take_result().await.map(|v| v.0), Ok(3));
    assert_eq!(
        Future::<u8>::new()
            .result_timeout(Duration::from_millis(5))
            .await,
        Err(FutureError::Timeout)
    );
}

// Errors raised by the work keep their type name and message; a panic
// becomes an error on the future.
#[test]
fn work_errors_keep_type_and_message() {
    let pool = ThreadPoolExecutor::new(2).unwrap();
    let f = pool.spawn_fallible(|| "x".parse::<u32>()).unwrap();
    let e = f.blocking().exception().unwrap().unwrap();
    assert_eq!(e.type_name(), "ParseIntError");
    assert_eq!(e.message(), "invalid digit found in string");
    assert!(e.downcast_ref::<std::num::ParseIntError>().is_some());
    let p = pool.spawn(|| -> u8 { panic!("worker panic") }).unwrap();
    let e = p.blocking().exception().unwrap().unwrap();
    assert!(e.is_panic());
    assert_eq!(e.message(), "worker panic");
    // The pool survives a panicking task.
    assert_eq!(pool.spawn(|| 1).unwrap().blocking().result(), Ok(1));
}

// ----------------------------------------------------- executors, generic

use common_executor::executor_behaviour;

#[test]
fn thread_pool_executor_behaviour() {
    executor_behaviour(ThreadPoolExecutor::new(4).unwrap());
}

#[test]
fn task_executor_behaviour() {
    executor_behaviour(TaskExecutor::new(4).unwrap());
}

fn slow(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn fail(x: u64) -> Result<u64, std::fmt::Error> {
    if x == 2 { Err(std::fmt::Error) } else { Ok(x) }
}

// ExecutorTest.test_map_exception and test_map_timeout
#[test]
fn map_raises_at_the_failing_item_and_times_out() {
    let pool = ThreadPoolExecutor::new(2).unwrap();
    // Errors through map: a fallible function via a wrapper fn.
    fn wrapped(x: u64) -> Result<u64, String> {
        fail(x).map_err(|e| e.to_string())
    }
    let results: Vec<_> = pool
        .map(wrapped, 0..5, MapOptions::new())
        .unwrap()
        .collect();
    assert_eq!(
        results[2],
        Ok(Err("an error occurred when formatting an argument".into()))
    );
    let mut m = pool
        .map(
            slow,
            [0, 0, 800, 0],
            MapOptions::new().timeout(Duration::from_millis(200)),
        )
        .unwrap();
    assert_eq!(m.next(), Some(Ok(0)));
    assert_eq!(m.next(), Some(Ok(0)));
    assert_eq!(m.next(), Some(Err(FutureError::Timeout)));
    assert_eq!(m.next(), None, "the map ends after its error");
}

// ExecutorTest.test_map (as a Stream): the results in input order; a
// stream dropped mid-select between results loses none; the timeout ends
// it with an error.
#[test]
fn map_results_are_a_stream() {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool = ThreadPoolExecutor::new(2).unwrap();
        let mut m = pool
            .map(slow, [30, 0, 10, 0, 20], MapOptions::new())
            .unwrap()
            .into_stream();
        let mut got = Vec::new();
        loop {
            tokio::select! {
                r = m.next() => match r {
                    Some(v) => got.push(v.unwrap()),
                    None => break,
                },
                _ = tokio::task::yield_now() => {}
            }
        }
        assert_eq!(got, [30, 0, 10, 0, 20]);
        let m = pool
            .map(
                slow,
                [0, 800, 0],
                MapOptions::new().timeout(Duration::from_millis(200)),
            )
            .unwrap()
            .into_stream();
        let out: Vec<_> = m.collect().await;
        assert_eq!(out, [Ok(0), Err(FutureError::Timeout)]);
    });
}

// test_thread_pool.test_default_workers, ExecutorTest.test_max_workers_negative
#[test]
fn worker_counts() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let pool = ThreadPoolExecutor::builder().build().unwrap();
    assert_eq!(pool.max_workers(), (cpus + 4).min(32));
    assert!(matches!(ThreadPoolExecutor::new(0), Err(ZeroWorkers)));
    assert!(matches!(TaskExecutor::new(0), Err(ZeroWorkers)));
}

// test_thread_pool.test_idle_thread_reuse: workers start lazily and are
// reused while idle.
#[test]
fn idle_workers_are_reused() {
    let pool = ThreadPoolExecutor::new(8).unwrap();
    assert_eq!(pool.workers(), 0, "no thread before the first submit");
    for _ in 0..20 {
        pool.spawn(|| ()).unwrap().blocking().result().unwrap();
    }
    assert_eq!(
        pool.workers(),
        1,
        "one-at-a-time work reuses one idle worker"
    );
}

// test_thread_pool.test_thread_names_assigned / _default; contexts.
#[test]
fn names_and_contexts() {
    let pool = ThreadPoolExecutor::builder()
        .thread_name_prefix("SpecialPool")
        .max_workers(2)
        .build()
        .unwrap();
    let name = pool
        .spawn(|| std::thread::current().name().unwrap().to_owned())
        .unwrap();
    assert!(
        name.blocking()
            .result()
            .unwrap()
            .starts_with("SpecialPool_")
    );
    let var = ContextVar::new("request");
    var.set(9u8);
    let v2 = var.clone();
    let seen = pool
        .spawn(move || {
            let before = v2.get().unwrap();
            v2.set(1);
            before
        })
        .unwrap();
    assert_eq!(
        seen.blocking().result(),
        Ok(9),
        "work runs in a copy of the submitter's context"
    );
    assert_eq!(var.get(), Ok(9));
}

// test_init: a failing initializer breaks the pool for pending and later
// work; a working one runs in every worker.
#[test]
fn initializers() {
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    let pool = ThreadPoolExecutor::builder()
        .max_workers(2)
        .initializer(move || {
            r2.fetch_add(1, SeqCst);
            Ok::<(), String>(())
        })
        .build()
        .unwrap();
    pool.spawn(|| ()).unwrap().blocking().result().unwrap();
    assert!(ran.load(SeqCst) >= 1);

    let broken = ThreadPoolExecutor::builder()
        .max_workers(1)
        .initializer(|| Err::<(), _>("no database"))
        .build()
        .unwrap();
    let first = broken.spawn(|| 1).unwrap();
    let e = first.blocking().exception().unwrap().unwrap();
    assert_eq!(e.type_name(), "BrokenThreadPool");
    assert!(e.message().contains("no database"));
    let later = broken.spawn(|| 2);
    assert!(matches!(later, Err(SubmitError::Broken(_))));
}

// test_shutdown: test_run_after_shutdown, test_cancel_futures,
// test_shutdown_no_wait, test_context_manager_shutdown / test_del_shutdown.
#[test]
fn shutdown_semantics() {
    let pool = ThreadPoolExecutor::new(1).unwrap();
    let started = Event::new();
    let release = Event::new();
    let (s2, r2) = (started.clone(), release.clone());
    let running = pool
        .spawn(move || {
            s2.set();
            r2.blocking().wait();
            "ran"
        })
        .unwrap();
    started.blocking().wait();
    let queued: Vec<_> = (0..5).map(|_| pool.spawn(|| "queued").unwrap()).collect();
    let p2 = pool.clone();
    let shut = std::thread::spawn(move || p2.shutdown(true, true));
    std::thread::sleep(Duration::from_millis(20));
    for q in &queued {
        assert!(q.cancelled(), "cancel_futures cancels queued work");
    }
    assert!(running.running(), "running work completes");
    release.set();
    shut.join().unwrap();
    assert_eq!(running.blocking().result(), Ok("ran"));
    assert!(matches!(pool.spawn(|| 0), Err(SubmitError::Shutdown)));

    // Dropping the last handle shuts down and waits.
    let done = Arc::new(AtomicBool::new(false));
    {
        let pool = ThreadPoolExecutor::new(2).unwrap();
        let d2 = done.clone();
        pool.spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            d2.store(true, SeqCst);
        })
        .unwrap();
    }
    assert!(done.load(SeqCst), "the drop waited for the work");
}

// TaskExecutor: a concurrency limit, shutdown with cancel_futures, async
// work, and run_coroutine_threadsafe's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_executor_limit_and_shutdown() {
    let ex = TaskExecutor::new(2).unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let futs: Vec<_> = (0..10)
        .map(|_| {
            let (now, peak) = (now.clone(), peak.clone());
            ex.spawn(async move {
                let n = now.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(n, SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                now.fetch_sub(1, SeqCst);
            })
            .unwrap()
        })
        .collect();
    for f in &futs {
        f.result().await.unwrap();
    }
    assert!(peak.load(SeqCst) <= 2);
    let gate = Event::new();
    let g2 = gate.clone();
    let running = ex.spawn(async move { g2.wait().await }).unwrap();
    let running2 = ex.spawn(std::future::pending::<()>()).unwrap();
    while !(running.running() && running2.running()) {
        tokio::task::yield_now().await;
    }
    // Only now: spawned together, its task could take a slot first (tasks
    // on two workers start in any order) and finish instead of queueing.
    let queued = ex.spawn(async {}).unwrap();
    let ex2 = ex.clone();
    let shut = tokio::spawn(async move { ex2.shutdown_and_wait(true).await });
    while !queued.cancelled() {
        tokio::task::yield_now().await;
    }
    assert!(matches!(ex.spawn(async {}), Err(SubmitError::Shutdown)));
    gate.set();
    running.result().await.unwrap();
    assert!(!shut.is_finished(), "shutdown waits for the running work");
    drop(running2);
}

#[test]
fn run_coroutine_threadsafe_answers_and_cancels() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = conex::futures::run_coroutine_threadsafe(async { 5 }, rt.handle());
    assert_eq!(f.blocking().result(), Ok(5));
    let dropped = Arc::new(AtomicBool::new(false));
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    let d2 = dropped.clone();
    let f = conex::futures::run_coroutine_threadsafe(
        async move {
            let _f = Flag(d2);
            std::future::pending::<()>().await
        },
        rt.handle(),
    );
    std::thread::sleep(Duration::from_millis(10));
    assert!(f.cancel());
    for _ in 0..200 {
        if dropped.load(SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        dropped.load(SeqCst),
        "cancelling the answer cancelled the task"
    );
}

// ------------------------------------------------------- test_wait

fn done_with(v: u8) -> Future<u8> {
    let f = Future::new();
    f.set_result(v).unwrap();
    f
}

fn failed_with(msg: &str) -> Future<u8> {
    let f = Future::new();
    f.set_exception(failed(msg)).unwrap();
    f
}

fn set_later(f: &Future<u8>, ms: u64, v: Result<u8, &'static str>) {
    let f = f.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(ms));
        let _ = match v {
            Ok(v) => f.set_result(v),
            Err(m) => f.set_exception(failed(m)),
        };
    });
}

// WaitTests: test_first_completed, _some_already_completed,
// test_first_exception, _some_already_complete, _one_already_failed,
// test_all_completed, test_timeout, test_20369 (duplicates).
#[test]
fn wait_blocking_modes() {
    let pending = Future::<u8>::new();
    let later = Future::new();
    set_later(&later, 20, Ok(1));
    let (done, not_done) = wait_blocking([&pending, &later], None, ReturnWhen::FirstCompleted);
    assert_eq!(
        (done, not_done),
        (vec![later.clone()], vec![pending.clone()])
    );

    let already = done_with(2);
    let (done, not_done) = wait_blocking([&pending, &already], None, ReturnWhen::FirstCompleted);
    assert_eq!((done.len(), not_done.len()), (1, 1));

    let bad = Future::new();
    set_later(&bad, 20, Err("bad"));
    let (done, not_done) =
        wait_blocking([&already, &bad, &pending], None, ReturnWhen::FirstException);
    assert_eq!(done.len(), 2);
    assert_eq!(not_done, vec![pending.clone()]);
    let one_failed = failed_with("early");
    let (done, _) = wait_blocking([&one_failed, &pending], None, ReturnWhen::FirstException);
    assert_eq!(done, vec![one_failed.clone()]);
    // A cancelled future is not an exception for FIRST_EXCEPTION.
    let c = Future::<u8>::cancelled_future();
    let (_, not_done) = wait_blocking(
        [&c, &pending],
        Some(Duration::from_millis(30)),
        ReturnWhen::FirstException,
    );
    assert_eq!(not_done, vec![pending.clone()]);

    let a = Future::new();
    set_later(&a, 10, Ok(1));
    let (done, not_done) =
        wait_blocking([&a, &already, &one_failed], None, ReturnWhen::AllCompleted);
    assert_eq!((done.len(), not_done.len()), (3, 0));

    let t = Instant::now();
    let (done, not_done) = wait_blocking(
        [&already, &pending],
        Some(Duration::from_millis(100)),
        ReturnWhen::AllCompleted,
    );
    assert!(t.elapsed() >= Duration::from_millis(60));
    assert_eq!((done.len(), not_done.len()), (1, 1));

    let (done, not_done) = wait_blocking(
        [&already, &already, &already],
        None,
        ReturnWhen::AllCompleted,
    );
    assert_eq!(
        (done.len(), not_done.len()),
        (1, 0),
        "duplicates count once"
    );
}

#[tokio::test]
async fn wait_async_mixed_executors() {
    let pool = ThreadPoolExecutor::new(2).unwrap();
    let tasks = TaskExecutor::new(2).unwrap();
    let a = pool.spawn(|| 1u8).unwrap();
    let b = tasks
        .spawn(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            2u8
        })
        .unwrap();
    let (done, not_done) = wait([&a, &b], None, ReturnWhen::AllCompleted).await;
    assert_eq!((done.len(), not_done.len()), (2, 0));
    let p = Future::<u8>::new();
    let (done, not_done) = wait(
        [&p],
        Some(Duration::from_millis(10)),
        ReturnWhen::AllCompleted,
    )
    .await;
    assert_eq!((done.len(), not_done.len()), (0, 1));
}

// AsCompletedTests: test_no_timeout, test_future_times_out,
// test_duplicate_futures, test_correct_timeout_exception_msg.
#[test]
fn as_completed_blocking_order_and_timeout() {
    let (a, b, c) = (Future::new(), done_with(1), Future::new());
    set_later(&a, 30, Ok(3));
    set_later(&c, 10, Ok(2));
    let order: Vec<u8> = as_completed_blocking([&a, &b, &c, &b], None)
        .map(|f| f.unwrap().blocking().result().unwrap())
        .collect();
    assert_eq!(order, [1, 2, 3]);

    let never = Future::<u8>::new();
    let never2 = Future::<u8>::new();
    let outs: Vec<_> =
        as_completed_blocking([&b, &never, &never2], Some(Duration::from_millis(50))).collect();
    assert_eq!(outs.len(), 2);
    assert!(outs[0].is_ok());
    let e = outs[1].clone().unwrap_err();
    assert_eq!(
        e,
        Unfinished {
            unfinished: 2,
            total: 3
        }
    );
    assert_eq!(e.to_string(), "2 (of 3) futures unfinished");
}

#[tokio::test]
async fn as_completed_stream() {
    let (a, b) = (Future::<u8>::new(), Future::new());
    set_later(&a, 20, Ok(1));
    set_later(&b, 5, Ok(2));
    let order: Vec<u8> = as_completed([&a, &b], None)
        .map(|f| f.unwrap().blocking().result().unwrap())
        .collect()
        .await;
    assert_eq!(order, [2, 1]);
    let n = Future::<u8>::new();
    let outs: Vec<_> = as_completed([&n], Some(Duration::from_millis(10)))
        .collect()
        .await;
    assert_eq!(
        outs,
        vec![Err(Unfinished {
            unfinished: 1,
            total: 1
        })]
    );
}

// ------------------------------------------- cancellation at every await

struct Noop;
impl futures::task::ArcWake for Noop {
    fn wake_by_ref(_: &Arc<Self>) {}
}

fn poll_once<F: std::future::Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    let w = futures::task::waker(Arc::new(Noop));
    f.poll(&mut Context::from_waker(&w))
}

// Dropping a pending result/exception/take/wait/as_completed loses
// nothing: the future completes normally and can still be read.
#[tokio::test]
async fn dropped_waits_lose_nothing() {
    let f = Future::<String>::new();
    {
        let mut r = Box::pin(f.result());
        assert!(poll_once(r.as_mut()).is_pending());
        let mut t = Box::pin(f.take_result());
        assert!(poll_once(t.as_mut()).is_pending());
        let mut e = Box::pin(f.exception());
        assert!(poll_once(e.as_mut()).is_pending());
        let mut w = Box::pin(wait([&f], None, ReturnWhen::AllCompleted));
        assert!(poll_once(w.as_mut()).is_pending());
        let mut s = Box::pin(as_completed([&f], None));
        let mut next = Box::pin(s.next());
        assert!(poll_once(next.as_mut()).is_pending());
    }
    f.set_result("kept".into()).unwrap();
    assert_eq!(
        f.take_result().await,
        Ok("kept".to_string()),
        "the dropped take left the value"
    );
}

fn slow_double(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * 2
}

// test_concurrent_futures' ExecutorShutdownTest.test_context_manager_shutdown:
// leaving `with` shuts the pool down after its work is done (also when the
// body panics), and `shutdown` needs no type annotations.
#[test]
fn with_shuts_down_on_exit_even_after_a_panic() {
    let pool = ThreadPoolExecutor::new(2).unwrap();
    let outside = pool.clone();
    let futs = pool.with(|ex| {
        (1..=4)
            .map(|x| ex.submit(slow_double, x).unwrap())
            .collect::<Vec<_>>()
    });
    // Shut down and waited: every future is done, new work is refused.
    assert!(futs.iter().all(|f| f.done()));
    let sum: u64 = futs.iter().map(|f| f.blocking().result().unwrap()).sum();
    assert_eq!(sum, 20);
    assert!(matches!(
        outside.submit(slow_double, 1),
        Err(SubmitError::Shutdown)
    ));

    let pool = ThreadPoolExecutor::new(1).unwrap();
    let outside = pool.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.with(|ex| {
            ex.submit(slow_double, 1).unwrap();
            panic!("the body fails");
        })
    }));
    assert!(r.is_err());
    assert!(matches!(
        outside.submit(slow_double, 1),
        Err(SubmitError::Shutdown)
    ));
    // And the plain call, no turbofish: a second shutdown is harmless.
    outside.shutdown(true, false);
}
