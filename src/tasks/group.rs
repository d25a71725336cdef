//! `TaskGroup`: structured concurrency, asyncio's way.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::{Arc, Mutex};

use super::task::{Task, TaskError, catching};
use crate::contextvars::InContext;
use crate::threading::{Event, runtime_handle};

/// One failure in a task group: a task's (or the body's) error, or a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<E> {
    /// The error a task returned.
    Error(E),
    /// A task panicked; the panic message.
    Panicked(String),
}

impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(e) => e.fmt(f),
            Failure::Panicked(m) => write!(f, "panicked: {m}"),
        }
    }
}

/// Every failure of a task group, in the order they happened.
///
/// Python: the `ExceptionGroup` a `TaskGroup` raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskGroupError<E> {
    /// The failures (at least one).
    pub failures: Vec<Failure<E>>,
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unhandled errors in a TaskGroup ({} sub-exception",
            self.failures.len()
        )?;
        if self.failures.len() != 1 {
            f.write_str("s")?;
        }
        f.write_str(")")?;
        for fail in &self.failures {
            write!(f, "; {fail}")?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for TaskGroupError<E> {}

/// The group is shutting down (a task failed) or has finished: it takes no
/// new task.
///
/// Python: `RuntimeError: TaskGroup ... is shutting down / is finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupClosed;

impl fmt::Display for GroupClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the TaskGroup is shutting down or finished")
    }
}

impl std::error::Error for GroupClosed {}

struct Inner<E> {
    closed: AtomicBool,
    failed: Event,
    /// Tasks not ended yet; `idle` is set exactly when it is 0 (both change
    /// under the mutex).
    live: Mutex<usize>,
    idle: Event,
    failures: Mutex<Vec<Failure<E>>>,
    aborts: Mutex<Vec<tokio::task::AbortHandle>>,
}

/// A scope that tasks are spawned into: the first failure cancels the
/// others, every failure is returned together, and the scope does not end
/// before every task has. Build one with [`task_group`].
///
/// Python: `asyncio.TaskGroup` (the `async with` block is the body
/// closure). A cheap handle: tasks of the group can spawn into it too.
pub struct TaskGroup<E> {
    inner: Arc<Inner<E>>,
}

impl<E> Clone for TaskGroup<E> {
    fn clone(&self) -> Self {
        TaskGroup {
            inner: self.inner.clone(),
        }
    }
}

impl<E> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("running", &*lock(&self.inner.live))
            .field("failed", &self.inner.failed.is_set())
            .finish()
    }
}

impl<E> Inner<E> {
    /// Takes no more tasks and cancels the running ones. A `spawn` racing
    /// this either lands in the list taken here or sees `closed` under the
    /// same lock and cancels its own task.
    fn close_and_cancel(&self) {
        self.closed.store(true, Release);
        let aborts = std::mem::take(&mut *lock(&self.aborts));
        for a in aborts {
            a.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts a task of the group until it ends, however it ends.
struct Live<E: Send + 'static>(Arc<Inner<E>>);

impl<E: Send + 'static> Live<E> {
    fn new(inner: Arc<Inner<E>>) -> Self {
        let mut live = lock(&inner.live);
        *live += 1;
        inner.idle.clear();
        drop(live);
        Live(inner)
    }
}

impl<E: Send + 'static> Drop for Live<E> {
    fn drop(&mut self) {
        let mut live = lock(&self.0.live);
        *live -= 1;
        if *live == 0 {
            self.0.idle.set();
        }
    }
}

impl<E: Send + 'static> TaskGroup<E> {
    /// Ties the group to `token`: once it is cancelled, the group takes no
    /// new task and every task in it is cancelled (as when one fails), and
    /// the group's scope ends when they have. Holds the group weakly.
    #[cfg(feature = "tokio-util")]
    pub fn cancel_on(&self, token: &tokio_util::sync::CancellationToken) {
        let weak = Arc::downgrade(&self.inner);
        crate::runtime::on_cancel(token, move || {
            if let Some(inner) = weak.upgrade() {
                inner.close_and_cancel();
            }
        });
    }

    fn new() -> TaskGroup<E> {
        let idle = Event::new();
        idle.set();
        TaskGroup {
            inner: Arc::new(Inner {
                closed: AtomicBool::new(false),
                failed: Event::new(),
                live: Mutex::new(0),
                idle,
                failures: Mutex::new(Vec::new()),
                aborts: Mutex::new(Vec::new()),
            }),
        }
    }

    fn fail(inner: &Inner<E>, failure: Failure<E>) {
        lock(&inner.failures).push(failure);
        inner.failed.set();
        inner.close_and_cancel();
    }

    /// Starts `fut` as a task of the group (in a copy of the caller's
    /// context). If it returns `Err` or panics, the group cancels its other
    /// tasks and its body, and the failure is reported by [`task_group`];
    /// the task's own handle then yields [`TaskError::Failed`].
    ///
    /// Python: `TaskGroup.create_task(coro)`.
    ///
    /// # Errors
    /// [`GroupClosed`] once a task has failed or the group has finished.
    pub fn spawn<T, F>(&self, fut: F) -> Result<Task<T>, GroupClosed>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        if self.inner.closed.load(Acquire) {
            return Err(GroupClosed);
        }
        let live = Live::new(self.inner.clone());
        let inner = self.inner.clone();
        let body = InContext::copy_current(async move {
            let _live = live;
            match catching(fut).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => {
                    Self::fail(&inner, Failure::Error(e));
                    Err(TaskError::Failed)
                }
                Err(TaskError::Panicked(m)) => {
                    Self::fail(&inner, Failure::Panicked(m));
                    Err(TaskError::Failed)
                }
                Err(other) => Err(other),
            }
        });
        let (info, body) = super::introspect::track(None, body);
        let handle = runtime_handle().spawn(body);
        {
            let mut aborts = lock(&self.inner.aborts);
            // Closed meanwhile (a failure took the list already): cancel.
            if self.inner.closed.load(Acquire) {
                handle.abort();
            } else {
                aborts.push(handle.abort_handle());
            }
        }
        Ok(Task::from_handle(handle).tracked(info))
    }

    /// Whether a task of the group has failed (the others are being
    /// cancelled).
    pub fn failed(&self) -> bool {
        self.inner.failed.is_set()
    }
}

/// Runs `body` with a new [`TaskGroup`], then waits for every task spawned
/// into it. The first failure (an `Err` or a panic, of the body or of a
/// task) cancels the body and every other task; once all have ended, every
/// failure is returned together.
///
/// Python: `async with asyncio.TaskGroup() as tg: ...`.
///
/// # Errors
/// [`TaskGroupError`] with every failure, in the order they happened.
///
/// # Cancel safety
/// Dropping the future cancels the body and every task of the group.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks::{task_group, Failure};
///
/// let sum = task_group(|tg| async move {
///     let a = tg.spawn(async { Ok::<_, String>(1) }).unwrap();
///     let b = tg.spawn(async { Ok(2) }).unwrap();
///     Ok(a.await.unwrap() + b.await.unwrap())
/// })
/// .await;
/// assert_eq!(sum, Ok(3));
///
/// let failed = task_group(|tg| async move {
///     tg.spawn(std::future::pending::<Result<(), String>>()).unwrap(); // cancelled
///     // Spawned last: once a task has failed, spawning is refused
///     // (`GroupClosed`), and on a multi-thread runtime that can be at once.
///     tg.spawn(async { Err::<(), _>("boom".to_string()) }).unwrap();
///     Ok(())
/// })
/// .await;
/// assert_eq!(failed.unwrap_err().failures, vec![Failure::Error("boom".to_string())]);
/// # }
/// ```
pub async fn task_group<E, R, F, Fut>(body: F) -> Result<R, TaskGroupError<E>>
where
    E: Send + 'static,
    F: FnOnce(TaskGroup<E>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    let tg = TaskGroup::new();
    let guard = CancelOnDrop(tg.clone());
    let failed = tg.inner.failed.clone();
    let body = std::pin::pin!(catching(body(tg.clone())));
    let outcome = {
        let wait_failed = std::pin::pin!(failed.wait());
        match futures::future::select(body, wait_failed).await {
            futures::future::Either::Left((out, _)) => Some(out),
            // A task failed: the body is cancelled (dropped) here.
            futures::future::Either::Right(_) => None,
        }
    };
    let value = match outcome {
        Some(Ok(Ok(v))) => Some(v),
        Some(Ok(Err(e))) => {
            TaskGroup::fail(&tg.inner, Failure::Error(e));
            None
        }
        Some(Err(TaskError::Panicked(m))) => {
            TaskGroup::fail(&tg.inner, Failure::Panicked(m));
            None
        }
        Some(Err(_)) | None => None,
    };
    // Every task ends before the scope does.
    tg.inner.idle.wait().await;
    tg.inner.closed.store(true, Release);
    std::mem::forget(guard);
    let failures = std::mem::take(&mut *lock(&tg.inner.failures));
    match value {
        Some(v) if failures.is_empty() => Ok(v),
        _ => Err(TaskGroupError { failures }),
    }
}

/// Cancels every task of the group if `task_group`'s future is dropped.
struct CancelOnDrop<E: Send + 'static>(TaskGroup<E>);

impl<E: Send + 'static> Drop for CancelOnDrop<E> {
    fn drop(&mut self) {
        self.0.inner.close_and_cancel();
    }
}
