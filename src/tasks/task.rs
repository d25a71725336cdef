//! `Task`: a spawned future's handle, and the ways to start one
//! (`spawn`, `spawn_eager`, `to_thread`, `shield`).

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::FutureExt;

use super::introspect::{TaskInfo, track};
use crate::contextvars::{InContext, TaskContext};
use crate::threading::runtime_handle;

/// Why a task produced no value.
///
/// Python: the exception a task raised, as seen by whoever awaits it
/// (`CancelledError` for a cancelled one).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the panic message.
    Panicked(String),
    /// The task was cancelled (aborted, its group failed, its runtime shut
    /// down) before it finished.
    Cancelled,
    /// The task failed and its error went to its [`TaskGroup`](super::TaskGroup)
    /// (which returns every error together).
    Failed,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(m) => write!(f, "the task panicked: {m}"),
            TaskError::Cancelled => f.write_str("the task was cancelled"),
            TaskError::Failed => f.write_str("the task failed (its error went to its task group)"),
        }
    }
}

impl std::error::Error for TaskError {}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    crate::panic_str(payload).to_owned()
}

pub(crate) type Output<T> = Result<T, TaskError>;

enum State<T> {
    Running(tokio::task::JoinHandle<Output<T>>),
    Finished(Option<Output<T>>),
}

/// A future running on its own as a task, in a copy of its spawner's
/// context (contextvars).
///
/// Python: `asyncio.Task`. Awaiting it gives the future's value, or a
/// [`TaskError`] if it panicked or was cancelled. Dropping the handle
/// detaches the task (it runs on), as dropping a reference to a Python task
/// does.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks;
///
/// let task = tasks::spawn(async { 6 * 7 });
/// assert_eq!(task.await, Ok(42));
/// # }
/// ```
pub struct Task<T> {
    state: State<T>,
    /// Its name and state, as `current_task()` and `all_tasks()` see it.
    info: Option<TaskInfo>,
    /// Cancel requests made through this handle, and the last message.
    cancels: std::sync::atomic::AtomicU32,
    message: std::sync::Mutex<Option<String>>,
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.info.as_ref().map(TaskInfo::name))
            .field("done", &self.done())
            .finish_non_exhaustive()
    }
}

impl<T> Task<T> {
    pub(crate) fn from_handle(h: tokio::task::JoinHandle<Output<T>>) -> Task<T> {
        Task::with_state(State::Running(h))
    }

    pub(crate) fn finished(out: Output<T>) -> Task<T> {
        Task::with_state(State::Finished(Some(out)))
    }

    /// With its registry entry (the abort handle recorded for
    /// [`TaskInfo::cancel`]).
    pub(crate) fn tracked(mut self, info: TaskInfo) -> Task<T> {
        if let State::Running(h) = &self.state {
            info.set_abort(h.abort_handle());
        }
        self.info = Some(info);
        self
    }

    /// Its name and state, as [`current_task`](super::current_task) and
    /// [`all_tasks`](super::all_tasks) give them to anyone.
    ///
    /// # Panics
    /// Never for tasks conex started (every one has its entry).
    pub fn info(&self) -> &TaskInfo {
        self.info.as_ref().expect("every conex task is registered")
    }

    /// Its name. Python: `Task.get_name()`.
    pub fn name(&self) -> String {
        self.info().name()
    }

    /// Renames it. Python: `Task.set_name(value)`.
    pub fn set_name(&self, name: impl Into<String>) {
        self.info().set_name(name);
    }

    fn with_state(state: State<T>) -> Task<T> {
        Task {
            state,
            info: None,
            cancels: std::sync::atomic::AtomicU32::new(0),
            message: std::sync::Mutex::new(None),
        }
    }

    /// Whether the task has finished (returned, panicked or was cancelled).
    ///
    /// Python: `Task.done()`.
    pub fn done(&self) -> bool {
        match &self.state {
            State::Running(h) => h.is_finished(),
            State::Finished(_) => true,
        }
    }

    /// Cancels the task: it is dropped at its next await. Returns `false` if
    /// it had already finished.
    ///
    /// Python: `Task.cancel()` (in Rust a cancelled future cannot catch it).
    pub fn cancel(&self) -> bool {
        match &self.state {
            State::Running(h) if !h.is_finished() => {
                h.abort();
                self.cancels
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// [`cancel`](Task::cancel), recording `msg` for whoever looks at why
    /// ([`cancel_message`](Task::cancel_message)). Python:
    /// `Task.cancel(msg)` (the `CancelledError` carries the message; here
    /// the awaited result is [`TaskError::Cancelled`] and the handle keeps
    /// the message, since the task itself cannot catch anything).
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let t = conex::tasks::spawn(std::future::pending::<()>());
    /// assert_eq!(t.cancelling(), 0);
    /// assert!(t.cancel_with("shutting down"));
    /// assert_eq!(t.cancelling(), 1);
    /// assert_eq!(t.cancel_message().as_deref(), Some("shutting down"));
    /// assert_eq!(t.await, Err(conex::tasks::TaskError::Cancelled));
    /// # }
    /// ```
    pub fn cancel_with(&self, msg: impl Into<String>) -> bool {
        let cancelled = self.cancel();
        if cancelled {
            *self.message.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.into());
        }
        cancelled
    }

    /// The message of the last [`cancel_with`](Task::cancel_with) that
    /// took effect.
    pub fn cancel_message(&self) -> Option<String> {
        self.message
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many cancel requests were made through this handle while the
    /// task ran. Python: `Task.cancelling()`. (There is no `uncancel`: a
    /// Rust future cannot catch its cancellation and go on, which is what
    /// `uncancel` exists for; a requested cancel always takes effect.)
    pub fn cancelling(&self) -> u32 {
        self.cancels.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The outcome, if the task finished and it was not taken yet (by
    /// awaiting the task). Moves a finished task's outcome into the handle.
    pub(crate) fn peek(&mut self, cx: &mut Context<'_>) -> Poll<&Output<T>> {
        if let State::Running(h) = &mut self.state {
            match Pin::new(h).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => self.state = State::Finished(Some(joined(r))),
            }
        }
        match &self.state {
            State::Finished(Some(out)) => Poll::Ready(out),
            _ => panic!("a Task's outcome was already taken"),
        }
    }
}

fn joined<T>(r: Result<Output<T>, tokio::task::JoinError>) -> Output<T> {
    match r {
        Ok(out) => out,
        Err(e) if e.is_panic() => Err(TaskError::Panicked(panic_message(&*e.into_panic()))),
        Err(_) => Err(TaskError::Cancelled),
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    /// # Cancel safety
    /// Awaiting a task can be dropped and repeated: the task runs on.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Running(h) => Pin::new(h).poll(cx).map(joined),
            State::Finished(out) => Poll::Ready(
                out.take()
                    .expect("a finished Task polled after it returned its outcome"),
            ),
        }
    }
}

impl<T> Unpin for Task<T> {}

/// Catches a panic of `fut` as an outcome.
pub(crate) async fn catching<F: Future>(fut: F) -> Output<F::Output> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| TaskError::Panicked(panic_message(&*p)))
}

/// Starts `fut` as a task, in a copy of the caller's context, on the
/// current tokio runtime (or, outside any, on the one conex starts).
///
/// Python: `asyncio.create_task(coro)`.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::contextvars::ContextVar;
/// use conex::tasks;
///
/// let user = ContextVar::new("user");
/// user.set("ada");
/// let u2 = user.clone();
/// let t = tasks::spawn(async move { u2.get().unwrap() });
/// assert_eq!(t.await.unwrap(), "ada");
/// # }
/// ```
pub fn spawn<F>(fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn_tracked(None, fut)
}

/// [`spawn`], named (or by default).
pub(crate) fn spawn_tracked<F>(name: Option<String>, fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (info, fut) = track(name, InContext::copy_current(catching(fut)));
    Task::from_handle(runtime_handle().spawn(fut)).tracked(info)
}

/// Starts `fut` as a task that runs in `context` itself (entered around
/// each poll, as [`Context::scope`](crate::contextvars::Context::scope)),
/// not in a copy of the caller's: what it sets stays in `context` for
/// whoever runs there next.
///
/// Python: `asyncio.create_task(coro, context=ctx)`. As Python's (a
/// `RuntimeError` at the task's first step), a context entered elsewhere
/// at the time is an error: the task's value is
/// `Err(AlreadyEntered)` then.
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::contextvars::{Context, ContextVar};
///
/// let var = ContextVar::new("var");
/// let ctx = Context::new();
/// let v = var.clone();
/// let t = conex::tasks::spawn_in(&ctx, async move {
///     v.set(7);
/// });
/// assert!(t.await.unwrap().is_ok());
/// assert_eq!(ctx.get(&var), Some(7)); // kept in the context given
/// assert!(var.get().is_err()); // not the caller's
/// # }
/// ```
pub fn spawn_in<F>(
    context: &crate::contextvars::Context,
    fut: F,
) -> Task<Result<F::Output, crate::contextvars::AlreadyEntered>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (info, fut) = track(None, catching(context.scope(fut)));
    Task::from_handle(runtime_handle().spawn(fut)).tracked(info)
}

/// Starts `fut` and runs it at once, in the caller, until its first await
/// that has to wait; a future that never waits completes without becoming
/// a task at all.
///
/// Python: a task created under `asyncio.eager_task_factory` (3.12).
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let started = Arc::new(AtomicBool::new(false));
/// let s2 = started.clone();
/// let t = tasks::spawn_eager(async move {
///     s2.store(true, Ordering::SeqCst); // runs before spawn_eager returns
///     tokio::task::yield_now().await;
///     1
/// });
/// assert!(started.load(Ordering::SeqCst));
/// assert_eq!(t.await, Ok(1));
/// # }
/// ```
pub fn spawn_eager<F>(fut: F) -> Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (info, fut) = track(None, InContext::copy_current(catching(fut)));
    let mut fut = Box::pin(fut);
    // The first poll happens here; the task's own first poll polls again,
    // so a wake-up sent to this throwaway waker is never needed.
    let waker = futures::task::noop_waker();
    match catch_unwind(AssertUnwindSafe(|| {
        fut.as_mut().poll(&mut Context::from_waker(&waker))
    })) {
        Ok(Poll::Ready(out)) => {
            drop(fut);
            Task::finished(out).tracked(info)
        }
        Ok(Poll::Pending) => Task::from_handle(runtime_handle().spawn(fut)).tracked(info),
        Err(p) => {
            drop(fut);
            Task::finished(Err(TaskError::Panicked(panic_message(&*p)))).tracked(info)
        }
    }
}

/// Runs blocking `f` on a thread of the runtime's blocking pool, in a copy
/// of the caller's context, and waits for it.
///
/// Python: `asyncio.to_thread(func)`.
///
/// # Cancel safety
/// Dropping the future does not stop `f` (a thread cannot be cancelled):
/// it runs to the end and its value is dropped.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// let n = conex::tasks::to_thread(|| std::fs::read_dir(".").map(|d| d.count()).unwrap_or(0)).await;
/// assert!(n.unwrap() > 0);
/// # }
/// ```
pub fn to_thread<F, T>(f: F) -> impl Future<Output = Result<T, TaskError>> + Send
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let mut ctx = TaskContext::copy_current();
    let h = runtime_handle().spawn_blocking(move || {
        ctx.enter(|| catch_unwind(AssertUnwindSafe(f)))
            .map_err(|p| TaskError::Panicked(panic_message(&*p)))
    });
    Task::from_handle(h)
}

/// Runs `fut` as a task that cancelling the returned future does not
/// cancel.
///
/// Python: `asyncio.shield(aw)`.
///
/// # Cancel safety
/// That is the point: dropping the returned future leaves the task
/// running.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks;
/// use std::time::Duration;
///
/// let shielded = tasks::shield(async { tokio::time::sleep(Duration::from_millis(5)).await; 3 });
/// // Even if this await were cancelled, the inner task would finish.
/// assert_eq!(shielded.await, Ok(3));
/// # }
/// ```
pub fn shield<F>(fut: F) -> impl Future<Output = Result<F::Output, TaskError>> + Send
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    spawn(fut)
}

/// Waits for `duration` (tokio's clock).
///
/// Python: `asyncio.sleep(delay)`.
///
/// # Cancel safety
/// Dropping it only stops waiting.
pub fn sleep(duration: std::time::Duration) -> impl Future<Output = ()> + Send {
    tokio::time::sleep(duration)
}
