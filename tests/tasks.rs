//! asyncio's task tools, from CPython's Lib/test/test_asyncio/
//! (test_taskgroups.py, test_timeouts.py, test_waitfor.py, test_tasks.py,
//! test_threads.py, test_eager_task_factory.py, test_runners.py).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use conex::contextvars::ContextVar;
use conex::tasks::*;
use futures::StreamExt;
use tokio::time::Instant;

const LONG: Duration = Duration::from_secs(3600);

/// Sets a flag when dropped: proves a future was cancelled (dropped).
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

// test_taskgroups.test_taskgroup_01: results are available after the group.
#[tokio::test]
async fn taskgroup_results() {
    let r = task_group(|tg| async move {
        let t1 = tg.spawn(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, GroupClosedOr>(42)
        })?;
        let t2 = tg.spawn(async { Ok(11) })?;
        Ok::<_, GroupClosedOr>((t1, t2))
    })
    .await;
    let (t1, t2) = r.unwrap();
    assert_eq!(t1.await, Ok(42));
    assert_eq!(t2.await, Ok(11));
}

#[derive(Debug, PartialEq)]
enum GroupClosedOr {
    Closed,
    Msg(String),
}
impl std::fmt::Display for GroupClosedOr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl From<GroupClosed> for GroupClosedOr {
    fn from(_: GroupClosed) -> Self {
        GroupClosedOr::Closed
    }
}

// test_taskgroup_02 / _06: the first failure cancels the other tasks (and
// the body); every failure is returned together.
#[tokio::test]
async fn taskgroup_failure_cancels_others() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let body_cancelled = Arc::new(AtomicBool::new(false));
    let (c2, b2) = (cancelled.clone(), body_cancelled.clone());
    let r = task_group(|tg| async move {
        let _guard = DropFlag(b2);
        tg.spawn(async move {
            let _guard = DropFlag(c2);
            tokio::time::sleep(LONG).await;
            Ok(())
        })
        .unwrap();
        tg.spawn(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Err::<(), _>(GroupClosedOr::Msg("zero division".into()))
        })
        .unwrap();
        tokio::time::sleep(LONG).await;
        Ok(())
    })
    .await;
    let err = r.unwrap_err();
    assert_eq!(
        err.failures,
        vec![Failure::Error(GroupClosedOr::Msg("zero division".into()))]
    );
    assert!(cancelled.load(SeqCst), "the sibling was cancelled");
    assert!(body_cancelled.load(SeqCst), "the body was cancelled");
    assert!(err.to_string().contains("1 sub-exception"));
}

// test_taskgroup_03 / _08: an error in the body cancels the tasks and is
// reported with theirs; panics are failures too.
#[tokio::test]
async fn taskgroup_body_error_and_panics() {
    let r = task_group(|tg| async move {
        tg.spawn(async {
            tokio::time::sleep(LONG).await;
            Ok::<(), String>(())
        })
        .unwrap();
        Err::<(), _>("body failed".to_string())
    })
    .await;
    assert_eq!(
        r.unwrap_err().failures,
        vec![Failure::Error("body failed".to_string())]
    );

    let r = task_group(|tg| async move {
        let t = tg
            .spawn(async { panic!("task panicked") as Result<(), String> })
            .unwrap();
        let _ = t.await;
        Ok(())
    })
    .await;
    assert_eq!(
        r.unwrap_err().failures,
        vec![Failure::Panicked("task panicked".into())]
    );
}

// test_taskgroup_14: no new task once the group is shutting down; the
// scope waits for every task, including ones spawned by tasks.
#[tokio::test]
async fn taskgroup_closing_and_nested_spawns() {
    let done = Arc::new(AtomicUsize::new(0));
    let d2 = done.clone();
    let r = task_group(|tg| async move {
        let tg2 = tg.clone();
        tg.spawn(async move {
            let d3 = d2.clone();
            tg2.spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                d3.fetch_add(1, SeqCst);
                Ok::<(), ()>(())
            })
            .unwrap();
            d2.fetch_add(1, SeqCst);
            Ok(())
        })
        .unwrap();
        Ok(())
    })
    .await;
    assert_eq!(r, Ok(()));
    assert_eq!(done.load(SeqCst), 2, "the scope waited for the nested task");

    let r = task_group(|tg| async move {
        tg.spawn(async { Err::<(), _>(1) }).unwrap();
        while !tg.failed() {
            tokio::task::yield_now().await;
        }
        // Shutting down: refused.
        assert!(tg.spawn(async { Ok(()) }).is_err());
        Ok(())
    })
    .await;
    assert_eq!(r.unwrap_err().failures, vec![Failure::Error(1)]);
}

// Dropping the group's future cancels every task in it.
#[tokio::test]
async fn taskgroup_dropped_cancels_tasks() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let c2 = cancelled.clone();
    let fut = task_group(|tg| async move {
        tg.spawn(async move {
            let _g = DropFlag(c2);
            tokio::time::sleep(LONG).await;
            Ok::<(), ()>(())
        })
        .unwrap();
        tokio::time::sleep(LONG).await;
        Ok(())
    });
    let _ = tokio::time::timeout(Duration::from_millis(20), fut).await;
    for _ in 0..100 {
        if cancelled.load(SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(cancelled.load(SeqCst));
}

// test_timeouts: test_timeout_basic, test_timeout_at_basic,
// test_timeout_zero, test_nested_timeouts, test_reschedule; test_waitfor.
#[tokio::test(start_paused = true)]
async fn timeouts() {
    let start = Instant::now();
    assert_eq!(
        timeout(Duration::from_secs(1), tokio::time::sleep(LONG)).await,
        Err(Timeout)
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(timeout(Duration::from_secs(1), async { 5 }).await, Ok(5));
    assert_eq!(
        timeout(Duration::ZERO, tokio::time::sleep(LONG)).await,
        Err(Timeout)
    );
    assert_eq!(
        timeout_at(Instant::now() + Duration::from_secs(2), async { 6 }).await,
        Ok(6)
    );
    assert_eq!(
        timeout_at(
            Instant::now() - Duration::from_secs(1),
            tokio::time::sleep(LONG)
        )
        .await,
        Err(Timeout),
        "a deadline in the past expires at once"
    );
    // Nested: the inner, shorter one fires; the outer is untouched.
    let outer = TimeoutScope::after(Duration::from_secs(10));
    let r = outer
        .run(timeout(Duration::from_secs(1), tokio::time::sleep(LONG)))
        .await;
    assert_eq!(r, Ok(Err(Timeout)));
    assert!(!outer.expired());

    // Rescheduling while running: earlier, later, and to none.
    let scope = TimeoutScope::after(Duration::from_secs(100));
    let s2 = scope.clone();
    let start = Instant::now();
    let r = scope
        .run(async move {
            s2.reschedule(Some(Instant::now() + Duration::from_secs(2)));
            tokio::time::sleep(LONG).await;
        })
        .await;
    assert_eq!(r, Err(Timeout));
    assert!(scope.expired());
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let scope = TimeoutScope::after(Duration::from_secs(1));
    let s3 = scope.clone();
    let r = scope
        .run(async move {
            s3.reschedule(None);
            tokio::time::sleep(Duration::from_secs(5)).await;
            "finished"
        })
        .await;
    assert_eq!(r, Ok("finished"));
    assert_eq!(scope.when(), None);
}

// test_tasks.test_gather and return_exceptions=True
#[tokio::test]
async fn gather_in_order_and_settled() {
    let r = gather((0..5u64).map(|i| async move {
        tokio::time::sleep(Duration::from_millis(10 * (5 - i))).await;
        Ok::<_, ()>(i)
    }))
    .await;
    assert_eq!(r, Ok(vec![0, 1, 2, 3, 4]));

    // The first error returns at once; the others keep running.
    let finished = Arc::new(AtomicBool::new(false));
    let f2 = finished.clone();
    type Fut =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<u8, &'static str>> + Send>>;
    let futs: Vec<Fut> = vec![
        Box::pin(async { Err("bad") }),
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            f2.store(true, SeqCst);
            Ok(1)
        }),
    ];
    assert_eq!(gather(futs).await, Err("bad"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        finished.load(SeqCst),
        "gather's other tasks are not cancelled by an error"
    );

    let outs = gather_settled(vec![
        Box::pin(async { 1 }) as std::pin::Pin<Box<dyn std::future::Future<Output = i32> + Send>>,
        Box::pin(async { panic!("oops") }),
    ])
    .await;
    assert_eq!(outs[0], Ok(1));
    assert_eq!(outs[1], Err(TaskError::Panicked("oops".into())));
}

// Dropping gather cancels its tasks (test_gather_cancel...).
#[tokio::test]
async fn gather_dropped_cancels() {
    let cancelled = Arc::new(AtomicBool::new(false));
    let c2 = cancelled.clone();
    let g = gather(vec![async move {
        let _g = DropFlag(c2);
        tokio::time::sleep(LONG).await;
        Ok::<(), ()>(())
    }]);
    let _ = tokio::time::timeout(Duration::from_millis(10), g).await;
    for _ in 0..100 {
        if cancelled.load(SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(cancelled.load(SeqCst));
}

// test_tasks.test_wait_first_completed, test_wait_first_exception,
// test_wait_with_timeout (ALL_COMPLETED)
#[tokio::test(start_paused = true)]
async fn wait_modes() {
    let quick = spawn(async { Ok::<u8, ()>(1) });
    let slow = spawn(async {
        tokio::time::sleep(LONG).await;
        Ok(2)
    });
    let (done, pending) = wait(vec![quick, slow], None, ReturnWhen::FirstCompleted).await;
    assert_eq!((done.len(), pending.len()), (1, 1));
    let mut done = done;
    assert_eq!(done.pop().unwrap().await, Ok(Ok(1)));

    let failing = spawn(async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Err::<u8, ()>(())
    });
    let ok = spawn(async { Ok(3) });
    let start = Instant::now();
    let (done, pending) = wait(
        pending.into_iter().chain([failing, ok]),
        None,
        ReturnWhen::FirstException,
    )
    .await;
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!((done.len(), pending.len()), (2, 1));

    let start = Instant::now();
    let (done, pending) = wait(
        pending,
        Some(Duration::from_secs(5)),
        ReturnWhen::AllCompleted,
    )
    .await;
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!((done.len(), pending.len()), (0, 1));
    for t in pending {
        assert!(t.cancel());
    }
}

// test_tasks.test_as_completed and test_as_completed_with_timeout
#[tokio::test(start_paused = true)]
async fn as_completed_order_and_timeout() {
    let tasks: Vec<_> = [3u64, 1, 2]
        .into_iter()
        .map(|s| {
            spawn(async move {
                tokio::time::sleep(Duration::from_secs(s)).await;
                s
            })
        })
        .collect();
    let mut order = Vec::new();
    let mut s = std::pin::pin!(as_completed(tasks, None));
    while let Some(t) = s.next().await {
        order.push(t.unwrap().await.unwrap());
    }
    assert_eq!(order, [1, 2, 3]);

    let tasks = vec![
        spawn(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            1
        }),
        spawn(async {
            tokio::time::sleep(LONG).await;
            2
        }),
    ];
    let outs: Vec<_> = as_completed(tasks, Some(Duration::from_secs(5)))
        .collect()
        .await;
    assert_eq!(outs.len(), 2);
    assert!(outs[0].is_ok());
    assert!(matches!(outs[1], Err(Timeout)));
}

// test_tasks.test_shield_result and test_shield_cancel_outer
#[tokio::test]
async fn shield_survives_outer_cancel() {
    assert_eq!(shield(async { 7 }).await, Ok(7));
    let finished = Arc::new(AtomicBool::new(false));
    let f2 = finished.clone();
    let outer = shield(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        f2.store(true, SeqCst);
    });
    let _ = tokio::time::timeout(Duration::from_millis(1), outer).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        finished.load(SeqCst),
        "the shielded work finished although its awaiter was cancelled"
    );
}

// Task.cancel / done, test_task_cancel
#[tokio::test]
async fn task_cancel_and_done() {
    let t = spawn(tokio::time::sleep(LONG));
    assert!(!t.done());
    assert!(t.cancel());
    assert_eq!(t.await, Err(TaskError::Cancelled));
    let t = spawn(async { 1 });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(t.done());
    assert!(!t.cancel(), "a finished task cannot be cancelled");
    assert_eq!(t.await, Ok(1));
    let p = spawn(async { panic!("task failed") as () });
    assert_eq!(p.await, Err(TaskError::Panicked("task failed".into())));
}

// test_threads.test_to_thread, test_to_thread_exception,
// test_to_thread_contextvars
#[tokio::test]
async fn to_thread_runs_blocking_with_context() {
    let var = ContextVar::new("var");
    var.set("parent");
    let v2 = var.clone();
    let r = to_thread(move || {
        let seen = v2.get().unwrap();
        v2.set("child");
        (seen, std::thread::current().name().map(str::to_owned))
    })
    .await
    .unwrap();
    assert_eq!(r.0, "parent");
    assert_eq!(var.get(), Ok("parent"));
    assert_eq!(
        to_thread(|| -> u8 { panic!("in thread") }).await,
        Err(TaskError::Panicked("in thread".into()))
    );
}

// test_eager_task_factory: an eager task runs at once until its first
// wait; one that never waits never becomes a task.
#[tokio::test(flavor = "current_thread")]
async fn eager_tasks() {
    let steps = Arc::new(AtomicUsize::new(0));
    let s2 = steps.clone();
    let t = spawn_eager(async move {
        s2.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        s2.fetch_add(1, SeqCst);
        2
    });
    assert_eq!(
        steps.load(SeqCst),
        1,
        "ran synchronously up to its first await"
    );
    assert_eq!(t.await, Ok(2));
    assert_eq!(steps.load(SeqCst), 2);
    let done = spawn_eager(async { 3 });
    assert!(done.done(), "completed without a task");
    assert_eq!(done.await, Ok(3));
    // A plain spawn on a current-thread runtime has not started yet.
    let s3 = steps.clone();
    let lazy = spawn(async move { s3.fetch_add(10, SeqCst) });
    assert_eq!(steps.load(SeqCst), 2);
    lazy.await.unwrap();
    assert_eq!(steps.load(SeqCst), 12);
}

// test_runners: asyncio.run, Runner keeping its context between runs,
// refusing to run inside a running loop, close.
#[test]
fn runner_and_run() {
    assert_eq!(run(async { 42 }), Ok(42));
    let runner = Runner::new().unwrap();
    let var = ContextVar::new("counter");
    for i in 1..=3 {
        let v = var.clone();
        let seen = runner.run(async move {
            let n = v.get_or(0) + 1;
            v.set(n);
            n
        });
        assert_eq!(
            seen,
            Ok(i),
            "the runner's context carries over between runs"
        );
    }
    assert!(var.get().is_err());
    // Inside a runtime: refused, with the fix in the message.
    let r = runner.run(async {
        let inner = Runner::new().unwrap();
        let refused = inner.run(async {});
        std::mem::forget(inner); // dropping a runtime inside a runtime panics
        refused
    });
    assert_eq!(r, Ok(Err(RunError::InsideRuntime)));
    assert!(RunError::InsideRuntime.to_string().contains("await"));
    runner.close();
}

// sleep
#[tokio::test(start_paused = true)]
async fn sleep_waits() {
    let start = Instant::now();
    sleep(Duration::from_secs(3)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

// Not in asyncio (no tokens there): a TaskGroup tied to a
// CancellationToken cancels its tasks and takes no new one once the token
// is cancelled.
#[cfg(feature = "tokio-util")]
#[tokio::test]
async fn taskgroup_cancelled_by_a_token() {
    let token = tokio_util::sync::CancellationToken::new();
    let cancelled = Arc::new(AtomicBool::new(false));
    let (c2, t2) = (cancelled.clone(), token.clone());
    let r = task_group(|tg| async move {
        tg.cancel_on(&t2);
        let guard = DropFlag(c2);
        tg.spawn(async move {
            let _guard = guard;
            tokio::time::sleep(LONG).await;
            Ok::<(), GroupClosedOr>(())
        })
        .unwrap();
        t2.cancel();
        let t0 = std::time::Instant::now();
        while tg.spawn(async { Ok(()) }).is_ok() {
            assert!(t0.elapsed() < Duration::from_secs(10), "still open");
            tokio::task::yield_now().await;
        }
        Ok(())
    })
    .await;
    assert!(cancelled.load(SeqCst), "the task was not cancelled: {r:?}");
}

// Not in asyncio: an Event and a CancellationToken carry a set or a
// cancellation across, each way, and a clear does not undo it.
#[cfg(feature = "tokio-util")]
#[tokio::test]
async fn events_and_tokens_convert() {
    use conex::threading::Event;
    let token = tokio_util::sync::CancellationToken::new();
    let e = Event::from_token(&token);
    assert!(!e.is_set());
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), e.wait())
        .await
        .unwrap();
    let e2 = Event::new();
    let t = e2.to_token();
    assert!(!t.is_cancelled());
    e2.set();
    tokio::time::timeout(Duration::from_secs(10), t.cancelled())
        .await
        .unwrap();
    e2.clear();
    assert!(t.is_cancelled());
    // Already cancelled / already set: at once.
    assert!(Event::from_token(&token).is_set());
    e2.set();
    assert!(e2.to_token().is_cancelled());
}

// asyncio: test_tasks.py test_cancel_with_message_then_future_result and
// test_cancelling: a cancel with a message ends the task as cancelled, the
// handle keeps the message and counts the requests; a finished task
// refuses both and keeps no message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_with_a_message_and_cancelling() {
    let t = conex::tasks::spawn(std::future::pending::<()>());
    assert_eq!((t.cancelling(), t.cancel_message()), (0, None));
    assert!(t.cancel_with("first"));
    assert!(t.cancel_with("second") || t.done());
    assert!(t.cancelling() >= 1);
    assert!(matches!(
        t.cancel_message().as_deref(),
        Some("first" | "second")
    ));
    assert_eq!(t.await, Err(conex::tasks::TaskError::Cancelled));
    let done = conex::tasks::spawn(async { 1 });
    while !done.done() {
        tokio::task::yield_now().await;
    }
    assert!(!done.cancel_with("too late"));
    assert_eq!((done.cancelling(), done.cancel_message()), (0, None));
    assert_eq!(done.await, Ok(1));
}

// asyncio: test_tasks.py test_create_task_with_context_arg and the
// RuntimeError of a context entered elsewhere: spawn_in runs the task in
// the context given (what it sets stays there, not in the caller's), and
// refuses a context that another task has entered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_in_runs_in_the_context_given() {
    use conex::contextvars::{AlreadyEntered, Context, ContextVar};
    let var = ContextVar::new("var");
    let ctx = Context::new();
    let v = var.clone();
    let t = conex::tasks::spawn_in(&ctx, async move {
        v.set(7u8);
        v.get().unwrap()
    });
    assert_eq!(t.await.unwrap(), Ok(7));
    assert_eq!(ctx.get(&var), Some(7));
    assert!(var.get().is_err());
    // Entered by a task that waits inside it: a second one is refused.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (in_tx, in_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = conex::tasks::spawn_in(&ctx, async move {
        let _ = in_tx.send(()); // the body runs once the context is entered
        let _ = rx.await;
    });
    in_rx.await.unwrap();
    assert!(ctx.run(|| ()).is_err(), "entered by the holder");
    let refused = conex::tasks::spawn_in(&ctx, async {});
    assert_eq!(refused.await.unwrap(), Err(AlreadyEntered));
    tx.send(()).unwrap();
    assert_eq!(holder.await.unwrap(), Ok(()));
}

// ------------------------------------------------------- introspection

// test_tasks.test_current_task: inside a task conex started, the task
// itself; outside any, none.
#[tokio::test]
async fn current_task_is_the_running_one() {
    assert!(current_task().is_none(), "the test's body is no conex task");
    let t = spawn_named("me", async { current_task().map(|t| (t.name(), t.done())) });
    let me = t.info().clone();
    assert_eq!(t.await.unwrap(), Some(("me".to_string(), false)));
    assert!(me.done());
    // A plain tokio task is not one of conex's.
    assert!(
        tokio::spawn(async { current_task() })
            .await
            .unwrap()
            .is_none()
    );
    // A nested spawn sees its own task, not its parent's.
    let outer = spawn_named("outer", async {
        spawn_named("inner", async { current_task().unwrap().name() })
            .await
            .unwrap()
    });
    assert_eq!(outer.await.unwrap(), "inner");
}

// test_tasks.test_task_set_name_pylong / test_task_repr: default names
// are Task-<n>, and a name can be changed.
#[tokio::test]
async fn default_names_and_renaming() {
    let a = spawn(async {});
    let b = spawn(async {});
    let (na, nb) = (a.name(), b.name());
    let num = |n: &str| n.strip_prefix("Task-").unwrap().parse::<u64>().unwrap();
    assert!(num(&nb) > num(&na), "{na} then {nb}");
    b.set_name("renamed");
    assert_eq!(b.info().name(), "renamed");
    assert!(format!("{b:?}").contains("renamed"));
    a.await.unwrap();
    b.await.unwrap();
}

// test_tasks.test_all_tasks (asyncio.all_tasks): the tasks not done, from
// every way conex starts one; a done task leaves the list.
#[tokio::test]
async fn all_tasks_lists_the_live_ones() {
    let gate = Arc::new(conex::threading::Event::new());
    let g = gate.clone();
    let plain = spawn_named("all-plain", async move { g.wait().await });
    let g = gate.clone();
    let eager = spawn_eager(async move { g.wait().await });
    eager.set_name("all-eager");
    let done_eagerly = spawn_eager(async { 5 });
    assert!(done_eagerly.info().done(), "finished in its first poll");
    let g = gate.clone();
    let grouped = task_group(move |tg| async move {
        let t = tg.spawn(async move {
            g.wait().await;
            Ok::<_, GroupClosedOr>(())
        })?;
        t.set_name("all-grouped");
        let names: Vec<String> = all_tasks().iter().map(TaskInfo::name).collect();
        for n in ["all-plain", "all-eager", "all-grouped"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        assert!(!all_tasks().contains(done_eagerly.info()));
        gate.set();
        Ok::<_, GroupClosedOr>(())
    })
    .await;
    assert!(grouped.is_ok());
    plain.await.unwrap();
    eager.await.unwrap();
    let names: Vec<String> = all_tasks().iter().map(TaskInfo::name).collect();
    assert!(!names.iter().any(|n| n.starts_with("all-")), "{names:?}");
}

// test_tasks.test_cancel (through the object current_task gives): a task
// cancelled by its info is dropped at its next await.
#[tokio::test]
async fn task_info_cancels() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(dropped.clone());
    let t = spawn_named("victim", async move {
        let _flag = flag;
        tokio::time::sleep(LONG).await;
    });
    let victim = all_tasks()
        .into_iter()
        .find(|i| i.name() == "victim")
        .unwrap();
    assert!(victim.cancel());
    assert_eq!(t.await, Err(TaskError::Cancelled));
    assert!(dropped.load(SeqCst));
    assert!(victim.done());
    assert!(!victim.cancel(), "done: nothing to cancel");
}

// test_runners.test_run_... : the Runner's main future is a task, so
// current_task() inside it is some (asyncio wraps it in a Task).
#[test]
fn runner_main_is_a_task() {
    let r = Runner::new().unwrap();
    let seen = r
        .run(async {
            let me = current_task().expect("the main task");
            assert!(all_tasks().contains(&me));
            me
        })
        .unwrap();
    assert!(seen.done());
}

// #[conex::main]: #[tokio::main]'s options, the body's value passed out.
mod entry_current {
    #[conex::main(flavor = "current_thread")]
    pub async fn main() -> tokio::runtime::RuntimeFlavor {
        tokio::runtime::Handle::current().runtime_flavor()
    }
}

mod entry_workers {
    #[conex::main(worker_threads = 3)]
    pub async fn main() -> Result<usize, String> {
        let n = tokio::runtime::Handle::current().metrics().num_workers();
        // A task of conex's runs on it.
        let t = conex::tasks::spawn(async { 1 })
            .await
            .map_err(|e| e.to_string())?;
        Ok(n + t - 1)
    }
}

#[test]
fn conex_main_builds_the_runtime_asked_for() {
    assert_eq!(
        entry_current::main(),
        tokio::runtime::RuntimeFlavor::CurrentThread
    );
    assert_eq!(entry_workers::main(), Ok(3));
}
