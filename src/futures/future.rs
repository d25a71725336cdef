//! `Future`: Python's `concurrent.futures.Future`, a result that will
//! exist, awaitable by tasks and blockable by threads.

use std::fmt;
use std::future::{Future as StdFuture, IntoFuture};
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::errors::{FutureError, InvalidState, WorkError};
use crate::wait::flag::Flag;
use crate::wait::{WaitFuture, block_on, std_deadline};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Cancelled,
    Finished,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Cancelled => "cancelled",
            Status::Finished => "finished",
        }
    }
}

type Callback<T> = Box<dyn FnOnce(&Future<T>) + Send>;

struct State<T> {
    status: Status,
    /// `Some` once finished, until the value is taken.
    outcome: Option<Result<T, WorkError>>,
    callbacks: Vec<Callback<T>>,
    /// What stops the work when a running future is cancelled (a process
    /// pool's kill-on-cancel); `None`: running work cannot be cancelled.
    stopper: Option<Box<dyn FnOnce() + Send>>,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    done: Flag,
}

/// The eventual result of a piece of work: pending, running, cancelled or
/// finished with a value or an error.
///
/// Python: `concurrent.futures.Future`. A cheap handle: clones are the same
/// future, and any number of tasks and threads can wait on it. Executors
/// create them ([`ThreadPoolExecutor::submit`](super::ThreadPoolExecutor),
/// ...); executor authors drive them with
/// [`set_running_or_notify_cancel`](Future::set_running_or_notify_cancel),
/// [`set_result`](Future::set_result) and
/// [`set_exception`](Future::set_exception).
///
/// `.await` on a future (or [`result`](Future::result)) gives a clone of the
/// value; [`take_result`](Future::take_result) moves it out instead.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::futures::{Future, FutureError};
///
/// let fut = Future::new();
/// let f2 = fut.clone();
/// std::thread::spawn(move || {
///     assert!(f2.set_running_or_notify_cancel().unwrap());
///     f2.set_result(42).unwrap();
/// });
/// assert_eq!(fut.clone().await, Ok(42));      // from a task
/// assert_eq!(fut.blocking().result(), Ok(42)); // from a thread
/// assert!(!fut.cancel(), "a finished future cannot be cancelled");
/// assert_eq!(Future::<u8>::cancelled_future().blocking().result(), Err(FutureError::Cancelled));
/// # }
/// ```
pub struct Future<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            inner: self.inner.clone(),
        }
    }
}

impl<T> PartialEq for Future<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T> Eq for Future<T> {}

impl<T> Hash for Future<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.state.lock();
        let mut d = f.debug_struct("Future");
        d.field("state", &st.status.name());
        if let Some(Err(e)) = &st.outcome {
            d.field("raised", &e.type_name());
        }
        d.finish()
    }
}

impl<T> Default for Future<T> {
    fn default() -> Self {
        Future::new()
    }
}

impl<T> Future<T> {
    /// What makes this future itself (clones share it).
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.inner) as *const () as usize
    }

    /// A new pending future (for executor authors).
    ///
    /// Python: `concurrent.futures.Future()`.
    pub fn new() -> Future<T> {
        Future {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    status: Status::Pending,
                    outcome: None,
                    callbacks: Vec::new(),
                    stopper: None,
                }),
                done: Flag::new(false),
            }),
        }
    }

    /// A future that is already cancelled.
    pub fn cancelled_future() -> Future<T> {
        let f = Future::new();
        f.cancel();
        f
    }

    /// Moves to a final state (under the lock), then wakes the waiters and
    /// runs the callbacks (outside it).
    fn complete(&self, mut st: parking_lot::MutexGuard<'_, State<T>>, status: Status) {
        st.status = status;
        let callbacks = std::mem::take(&mut st.callbacks);
        let stopper = st.stopper.take();
        drop(st);
        if status == Status::Cancelled {
            if let Some(stop) = stopper {
                stop();
            }
        }
        self.inner.done.set();
        for cb in callbacks {
            self.run_callback(cb);
        }
    }

    fn run_callback(&self, cb: Callback<T>) {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| cb(self))) {
            // Python logs "exception calling callback for <Future>" and goes on.
            crate::diag!(
                error,
                "exception calling callback for {self:?}: {}",
                crate::panic_str(&*p)
            );
        }
    }

    /// Cancels the future if it has not started: returns `true` if it is
    /// (now) cancelled, `false` if it is running or finished.
    ///
    /// Running work is not cancelled (Python's rule), except where its
    /// executor can stop it and was asked to: a
    /// [`ProcessPoolExecutor`](super::ProcessPoolExecutor) built with
    /// `kill_on_cancel` kills the worker running it (and replaces it).
    ///
    /// Python: `Future.cancel()`.
    pub fn cancel(&self) -> bool {
        let st = self.inner.state.lock();
        match st.status {
            Status::Running if st.stopper.is_some() => {
                self.complete(st, Status::Cancelled);
                true
            }
            Status::Running | Status::Finished => false,
            Status::Cancelled => true,
            Status::Pending => {
                self.complete(st, Status::Cancelled);
                true
            }
        }
    }

    /// Lets [`cancel`](Future::cancel) stop this running work with `stop`
    /// (run once, outside the future's lock); `false` if the future is not
    /// running (nothing is installed then).
    #[cfg_attr(not(all(feature = "multiprocessing", unix)), allow(dead_code))]
    pub(crate) fn set_stopper(&self, stop: Box<dyn FnOnce() + Send>) -> bool {
        let mut st = self.inner.state.lock();
        if st.status == Status::Running {
            st.stopper = Some(stop);
            true
        } else {
            false
        }
    }

    /// Calls `f` with the outcome of a finished future (`None` while it is
    /// not finished, when cancelled, or once the value was taken).
    #[cfg_attr(not(all(feature = "multiprocessing", unix)), allow(dead_code))]
    pub(crate) fn peek<U>(&self, f: impl FnOnce(Option<&Result<T, WorkError>>) -> U) -> U {
        let st = self.inner.state.lock();
        match st.status {
            Status::Finished => f(st.outcome.as_ref()),
            _ => f(None),
        }
    }

    /// Whether the future was cancelled.
    ///
    /// Python: `Future.cancelled()`.
    pub fn cancelled(&self) -> bool {
        self.inner.state.lock().status == Status::Cancelled
    }

    /// Whether the work is running now.
    ///
    /// Python: `Future.running()`.
    pub fn running(&self) -> bool {
        self.inner.state.lock().status == Status::Running
    }

    /// Whether the future finished with an error.
    pub(crate) fn failed(&self) -> bool {
        let st = self.inner.state.lock();
        st.status == Status::Finished && matches!(st.outcome, Some(Err(_)))
    }

    /// Whether the future is cancelled or finished.
    ///
    /// Python: `Future.done()`.
    pub fn done(&self) -> bool {
        matches!(
            self.inner.state.lock().status,
            Status::Cancelled | Status::Finished
        )
    }

    /// Marks the future running, unless it was cancelled: returns `false`
    /// then (the work must not run). For executor authors.
    ///
    /// Python: `Future.set_running_or_notify_cancel()`.
    ///
    /// # Errors
    /// [`InvalidState`] if the future is already running or finished.
    pub fn set_running_or_notify_cancel(&self) -> Result<bool, InvalidState> {
        let mut st = self.inner.state.lock();
        match st.status {
            Status::Cancelled => Ok(false),
            Status::Pending => {
                st.status = Status::Running;
                Ok(true)
            }
            s => Err(InvalidState { state: s.name() }),
        }
    }

    fn finish(&self, outcome: Result<T, WorkError>) -> Result<(), InvalidState> {
        let mut st = self.inner.state.lock();
        match st.status {
            Status::Pending | Status::Running => {
                st.outcome = Some(outcome);
                self.complete(st, Status::Finished);
                Ok(())
            }
            s => Err(InvalidState { state: s.name() }),
        }
    }

    /// Finishes the future with a value. For executor authors.
    ///
    /// Python: `Future.set_result(result)`.
    ///
    /// # Errors
    /// [`InvalidState`] if it is already finished or cancelled (the first
    /// outcome is kept).
    pub fn set_result(&self, value: T) -> Result<(), InvalidState> {
        self.finish(Ok(value))
    }

    /// Finishes the future with an error. For executor authors.
    ///
    /// Python: `Future.set_exception(exception)`.
    ///
    /// # Errors
    /// As [`set_result`](Future::set_result).
    pub fn set_exception(&self, error: WorkError) -> Result<(), InvalidState> {
        self.finish(Err(error))
    }

    /// Runs `callback` once the future is cancelled or finished (at once,
    /// here, if it already is). A callback that panics does not stop the
    /// others; its panic is reported on stderr.
    ///
    /// Python: `Future.add_done_callback(fn)`.
    pub fn add_done_callback(&self, callback: impl FnOnce(&Future<T>) + Send + 'static) {
        let mut st = self.inner.state.lock();
        if matches!(st.status, Status::Cancelled | Status::Finished) {
            drop(st);
            self.run_callback(Box::new(callback));
        } else {
            st.callbacks.push(Box::new(callback));
        }
    }

    /// A clone of the value of a future that `finished` (or a timeout).
    fn value(&self, finished: bool) -> Result<T, FutureError>
    where
        T: Clone,
    {
        if !finished {
            return Err(FutureError::Timeout);
        }
        let st = self.inner.state.lock();
        match (&st.status, &st.outcome) {
            (Status::Cancelled, _) => Err(FutureError::Cancelled),
            (_, None) => Err(FutureError::Taken),
            (_, Some(Err(e))) => Err(FutureError::Failed(e.clone())),
            (_, Some(Ok(v))) => Ok(v.clone()),
        }
    }

    fn error(&self, finished: bool) -> Result<Option<WorkError>, FutureError> {
        if !finished {
            return Err(FutureError::Timeout);
        }
        let st = self.inner.state.lock();
        match (&st.status, &st.outcome) {
            (Status::Cancelled, _) => Err(FutureError::Cancelled),
            (_, Some(Err(e))) => Ok(Some(e.clone())),
            _ => Ok(None),
        }
    }
}

impl<T: Send + 'static> Future<T> {
    /// Waits for the future and returns a clone of its value.
    ///
    /// Python: `Future.result()`.
    ///
    /// # Errors
    /// [`FutureError::Cancelled`], [`FutureError::Failed`] with the work's
    /// error, [`FutureError::Taken`] after [`take_result`](Future::take_result).
    ///
    /// # Cancel safety
    /// Dropping the future only stops waiting (the work is not cancelled).
    pub async fn result(&self) -> Result<T, FutureError>
    where
        T: Clone,
    {
        WaitFuture::new(self.inner.done.wait()).await;
        self.value(true)
    }

    /// As [`result`](Future::result), waiting at most `timeout` (tokio's
    /// clock).
    ///
    /// Python: `Future.result(timeout)`.
    ///
    /// # Errors
    /// As [`result`](Future::result), plus [`FutureError::Timeout`].
    ///
    /// # Cancel safety
    /// As [`result`](Future::result).
    pub async fn result_timeout(&self, timeout: Duration) -> Result<T, FutureError>
    where
        T: Clone,
    {
        let done = WaitFuture::timeout(self.inner.done.wait(), timeout).await;
        self.value(done)
    }

    /// Waits for the future and moves its value out (for values that are not
    /// `Clone`, or to avoid a copy); later calls get [`FutureError::Taken`].
    ///
    /// # Errors
    /// As [`result`](Future::result).
    ///
    /// # Cancel safety
    /// As [`result`](Future::result): the value stays if the wait is dropped.
    pub async fn take_result(&self) -> Result<T, FutureError> {
        WaitFuture::new(self.inner.done.wait()).await;
        self.take_now()
    }

    fn take_now(&self) -> Result<T, FutureError> {
        let mut st = self.inner.state.lock();
        match st.status {
            Status::Cancelled => Err(FutureError::Cancelled),
            _ => match st.outcome.take() {
                None => Err(FutureError::Taken),
                Some(Err(e)) => {
                    st.outcome = Some(Err(e.clone()));
                    Err(FutureError::Failed(e))
                }
                Some(Ok(v)) => Ok(v),
            },
        }
    }

    /// Waits for the future and returns the work's error (`None` if it
    /// returned a value).
    ///
    /// Python: `Future.exception()`.
    ///
    /// # Errors
    /// [`FutureError::Cancelled`].
    ///
    /// # Cancel safety
    /// As [`result`](Future::result).
    pub async fn exception(&self) -> Result<Option<WorkError>, FutureError> {
        WaitFuture::new(self.inner.done.wait()).await;
        self.error(true)
    }

    /// As [`exception`](Future::exception), waiting at most `timeout`.
    ///
    /// Python: `Future.exception(timeout)`.
    ///
    /// # Errors
    /// [`FutureError::Cancelled`], [`FutureError::Timeout`].
    ///
    /// # Cancel safety
    /// As [`result`](Future::result).
    pub async fn exception_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<WorkError>, FutureError> {
        let done = WaitFuture::timeout(self.inner.done.wait(), timeout).await;
        self.error(done)
    }

    /// One future for the outcomes of `futures`, in order, once all are
    /// done (a cancelled one counts as a `CancelledError`).
    pub(crate) fn join_outcomes(futures: Vec<Future<T>>) -> Future<Vec<Result<T, WorkError>>> {
        let out = Future::new();
        let _ = out.set_running_or_notify_cancel();
        if futures.is_empty() {
            let _ = out.set_result(Vec::new());
            return out;
        }
        let all = Arc::new(futures);
        let left = Arc::new(std::sync::atomic::AtomicUsize::new(all.len()));
        for f in all.iter() {
            let (out, all, left) = (out.clone(), all.clone(), left.clone());
            f.add_done_callback(move |_| {
                if left.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) != 1 {
                    return;
                }
                let outcomes = all
                    .iter()
                    .map(|f| match f.take_now() {
                        Ok(v) => Ok(v),
                        Err(FutureError::Failed(e)) => Err(e),
                        Err(e) => Err(WorkError::new("CancelledError", e.to_string())),
                    })
                    .collect();
                let _ = out.set_result(outcomes);
            });
        }
        out
    }

    /// Waits until the future is done (no outcome read).
    pub(crate) fn wait_done(&self) -> impl StdFuture<Output = bool> + Send + '_ {
        WaitFuture::new(self.inner.done.wait())
    }

    /// The blocking facade: wait on the future from an OS thread.
    pub fn blocking(&self) -> BlockingFuture<'_, T> {
        BlockingFuture { fut: self }
    }
}

impl<T: Clone + Send + 'static> IntoFuture for Future<T> {
    type Output = Result<T, FutureError>;
    type IntoFuture = Pin<Box<dyn StdFuture<Output = Self::Output> + Send>>;

    /// `.await` is [`Future::result`].
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.result().await })
    }
}

/// The blocking facade of a [`Future`]; see
/// [`BlockingLock`](crate::threading::BlockingLock) for where it may block.
pub struct BlockingFuture<'a, T> {
    fut: &'a Future<T>,
}

impl<T> fmt::Debug for BlockingFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingFuture").field(self.fut).finish()
    }
}

impl<T: Send + 'static> BlockingFuture<'_, T> {
    /// Blocks until the future is done or `timeout` passes; whether it is
    /// done.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> bool {
        block_on(self.fut.inner.done.wait(), timeout.and_then(std_deadline))
    }

    /// Blocks until the future is done and returns a clone of its value.
    ///
    /// # Errors
    /// As [`Future::result`].
    pub fn result(&self) -> Result<T, FutureError>
    where
        T: Clone,
    {
        let done = self.wait(None);
        self.fut.value(done)
    }

    /// Blocks at most `timeout`.
    ///
    /// # Errors
    /// As [`Future::result_timeout`].
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, FutureError>
    where
        T: Clone,
    {
        let done = self.wait(Some(timeout));
        self.fut.value(done)
    }

    /// Blocks until done and moves the value out.
    ///
    /// # Errors
    /// As [`Future::take_result`].
    pub fn take_result(&self) -> Result<T, FutureError> {
        self.wait(None);
        self.fut.take_now()
    }

    /// Blocks until done and returns the work's error, if any.
    ///
    /// # Errors
    /// As [`Future::exception`].
    pub fn exception(&self) -> Result<Option<WorkError>, FutureError> {
        let done = self.wait(None);
        self.fut.error(done)
    }

    /// Blocks at most `timeout` for the work's error.
    ///
    /// # Errors
    /// As [`Future::exception_timeout`].
    pub fn exception_timeout(&self, timeout: Duration) -> Result<Option<WorkError>, FutureError> {
        let done = self.wait(Some(timeout));
        self.fut.error(done)
    }
}
