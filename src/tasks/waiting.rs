//! Waiting for several tasks: `gather`, `wait`, `as_completed`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use futures::stream::{FuturesUnordered, StreamExt};

use super::task::{Task, TaskError, spawn};
use super::timeout::Timeout;

/// Whether a task's value counts as an exception for
/// [`ReturnWhen::FirstException`]: an `Err`. Implemented for `Result` and
/// `()`; wrap other values in `Ok` to wait on them that way.
pub trait Outcome {
    /// Whether this value is a failure.
    fn is_exception(&self) -> bool;
}

impl<T, E> Outcome for Result<T, E> {
    fn is_exception(&self) -> bool {
        self.is_err()
    }
}

impl Outcome for () {
    fn is_exception(&self) -> bool {
        false
    }
}

/// When [`wait`] returns.
///
/// Python: `asyncio.FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReturnWhen {
    /// As soon as any task finishes.
    FirstCompleted,
    /// As soon as a task fails (an `Err`, a panic, a cancellation), or when
    /// all have finished.
    FirstException,
    /// When all have finished.
    AllCompleted,
}

/// One gathered task and its place in the input.
struct Indexed<T> {
    index: usize,
    task: Task<T>,
}

impl<T> Future for Indexed<T> {
    type Output = (usize, Result<T, TaskError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let index = self.index;
        Pin::new(&mut self.task).poll(cx).map(|out| (index, out))
    }
}

/// The tasks a gather still waits for, polled only when woken (a
/// `FuturesUnordered`, so a wake-up costs one poll, not one per task).
/// Dropped while armed (an abandoned gather), it cancels them.
struct Gathered<T> {
    pending: FuturesUnordered<Indexed<T>>,
    armed: bool,
}

impl<T: Send + 'static> Gathered<T> {
    fn spawn<I, F>(futs: I) -> Self
    where
        I: IntoIterator<Item = F>,
        F: Future<Output = T> + Send + 'static,
    {
        let pending = futs
            .into_iter()
            .enumerate()
            .map(|(index, f)| Indexed {
                index,
                task: spawn(f),
            })
            .collect();
        Gathered {
            pending,
            armed: true,
        }
    }
}

impl<T> Drop for Gathered<T> {
    fn drop(&mut self) {
        if self.armed {
            for t in self.pending.iter() {
                t.task.cancel();
            }
        }
    }
}

/// Runs the futures concurrently (each as a task, in a copy of the caller's
/// context) and returns their values in input order; the first `Err`
/// returns at once and the other tasks keep running.
///
/// Python: `asyncio.gather(*aws)`. A panic in a task is raised again here,
/// as Python raises the task's exception.
///
/// # Errors
/// The first `Err` a future returned.
///
/// # Cancel safety
/// Dropping the future cancels every task not finished yet (as cancelling
/// Python's `gather` does).
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks::gather;
///
/// let all = gather((1..=3).map(|n| async move { Ok::<_, String>(n * 10) })).await;
/// assert_eq!(all, Ok(vec![10, 20, 30]));
/// # }
/// ```
pub async fn gather<I, F, T, E>(futs: I) -> Result<Vec<T>, E>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let mut tasks = Gathered::spawn(futs);
    let mut values: Vec<Option<T>> = (0..tasks.pending.len()).map(|_| None).collect();
    while let Some((i, out)) = tasks.pending.next().await {
        match out {
            Ok(Ok(v)) => values[i] = Some(v),
            Ok(Err(e)) => {
                // Python: the other awaitables are not cancelled.
                tasks.armed = false;
                return Err(e);
            }
            Err(TaskError::Panicked(m)) => std::panic::resume_unwind(Box::new(m)),
            Err(other) => panic!("a gathered task ended without a value: {other}"),
        }
    }
    Ok(values
        .into_iter()
        .map(|v| v.expect("every value arrived"))
        .collect())
}

/// Runs the futures concurrently (each as a task) and returns every
/// outcome in input order: values, and panics or cancellations as
/// [`TaskError`]s, nothing raised.
///
/// Python: `asyncio.gather(*aws, return_exceptions=True)` (a future that
/// returns `Result` keeps its `Err` inside the value).
///
/// # Cancel safety
/// Dropping the future cancels every task not finished yet.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks::gather_settled;
/// use std::future::Future;
/// use std::pin::Pin;
///
/// type Job = Pin<Box<dyn Future<Output = Result<u8, &'static str>> + Send>>;
/// let jobs: Vec<Job> = vec![Box::pin(async { Ok(1) }), Box::pin(async { Err("nope") })];
/// let outs = gather_settled(jobs).await;
/// assert_eq!(outs[0], Ok(Ok(1)));
/// assert_eq!(outs[1], Ok(Err("nope")));
/// # }
/// ```
pub async fn gather_settled<I, F>(futs: I) -> Vec<Result<F::Output, TaskError>>
where
    I: IntoIterator<Item = F>,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut tasks = Gathered::spawn(futs);
    let mut outs: Vec<Option<Result<F::Output, TaskError>>> =
        (0..tasks.pending.len()).map(|_| None).collect();
    while let Some((i, out)) = tasks.pending.next().await {
        outs[i] = Some(out);
    }
    outs.into_iter()
        .map(|o| o.expect("every outcome arrived"))
        .collect()
}

fn failed<T: Outcome>(out: &Result<T, TaskError>) -> bool {
    match out {
        Ok(v) => v.is_exception(),
        Err(_) => true,
    }
}

/// Waits for the tasks until `return_when` (or the timeout) and returns
/// `(done, pending)`. Nothing is cancelled; awaiting a done task gives its
/// outcome at once.
///
/// Python: `asyncio.wait(aws, timeout=None, return_when=ALL_COMPLETED)`.
///
/// # Cancel safety
/// Dropping the future loses nothing but the task handles (the tasks run
/// on, detached).
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks::{self, wait, ReturnWhen};
/// use std::time::Duration;
///
/// let quick = tasks::spawn(async { Ok::<_, ()>("quick") });
/// let slow = tasks::spawn(async {
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     Ok("slow")
/// });
/// let (done, pending) = wait(vec![quick, slow], None, ReturnWhen::FirstCompleted).await;
/// assert_eq!((done.len(), pending.len()), (1, 1));
/// # for t in pending { t.cancel(); }
/// # }
/// ```
pub async fn wait<T: Outcome>(
    tasks: impl IntoIterator<Item = Task<T>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> (Vec<Task<T>>, Vec<Task<T>>) {
    let mut tasks: Vec<Task<T>> = tasks.into_iter().collect();
    let mut finished = vec![false; tasks.len()];
    let all = std::future::poll_fn(|cx| {
        let mut any_done = false;
        let mut any_failed = false;
        for (i, t) in tasks.iter_mut().enumerate() {
            if let Poll::Ready(out) = t.peek(cx) {
                finished[i] = true;
                any_done = true;
                any_failed |= failed(out);
            }
        }
        let all_done = finished.iter().all(|f| *f);
        let ready = all_done
            || match return_when {
                ReturnWhen::FirstCompleted => any_done,
                ReturnWhen::FirstException => any_failed,
                ReturnWhen::AllCompleted => false,
            };
        if ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    match timeout {
        Some(d) => {
            let _ = tokio::time::timeout(d, all).await;
        }
        None => all.await,
    }
    let mut done = Vec::new();
    let mut pending = Vec::new();
    for t in tasks {
        if t.done() {
            done.push(t)
        } else {
            pending.push(t)
        }
    }
    (done, pending)
}

/// The tasks, yielded as each finishes (each one once); with a timeout, a
/// final `Err(Timeout)` if some have not finished by then.
///
/// Python: `asyncio.as_completed(aws, timeout=None)` as an async iterator
/// (3.13).
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks::{self, as_completed};
/// use futures::StreamExt;
/// use std::time::Duration;
///
/// let late = tasks::spawn(async { tokio::time::sleep(Duration::from_millis(50)).await; "late" });
/// let early = tasks::spawn(async { "early" });
/// let mut order = Vec::new();
/// let mut stream = std::pin::pin!(as_completed(vec![late, early], None));
/// while let Some(task) = stream.next().await {
///     order.push(task.unwrap().await.unwrap());
/// }
/// assert_eq!(order, ["early", "late"]);
/// # }
/// ```
pub fn as_completed<T>(
    tasks: impl IntoIterator<Item = Task<T>>,
    timeout: Option<Duration>,
) -> impl Stream<Item = Result<Task<T>, Timeout>> {
    AsCompleted {
        tasks: tasks.into_iter().collect(),
        deadline: timeout.map(|d| Box::pin(tokio::time::sleep(d))),
        timed_out: false,
    }
}

struct AsCompleted<T> {
    tasks: Vec<Task<T>>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timed_out: bool,
}

impl<T> Stream for AsCompleted<T> {
    type Item = Result<Task<T>, Timeout>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(None);
        }
        if let Some(i) = this.tasks.iter_mut().position(|t| t.peek(cx).is_ready()) {
            return Poll::Ready(Some(Ok(this.tasks.swap_remove(i))));
        }
        if this.tasks.is_empty() {
            return Poll::Ready(None);
        }
        if let Some(d) = &mut this.deadline {
            if d.as_mut().poll(cx).is_ready() {
                this.timed_out = true;
                return Poll::Ready(Some(Err(Timeout)));
            }
        }
        Poll::Pending
    }
}
