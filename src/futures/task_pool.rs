//! `TaskExecutor`: the executor of async work, on the tokio runtime.

use std::collections::HashMap;
use std::fmt;
use std::future::Future as StdFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use futures::FutureExt;
use parking_lot::Mutex;

use super::errors::{SubmitError, WorkError, ZeroWorkers};
use super::executor::Executor;
use super::future::Future;
use crate::contextvars::InContext;
use crate::threading::{Event, Semaphore};

struct Shared {
    rt: tokio::runtime::Handle,
    limit: Semaphore,
    max_concurrency: usize,
    next_id: AtomicU64,
    state: Mutex<State>,
    /// Set while no submitted work is unfinished.
    idle: Event,
}

struct State {
    shutdown: bool,
    unfinished: usize,
    /// How to cancel each piece of work not started yet.
    pending: HashMap<u64, Box<dyn Fn() -> bool + Send>>,
}

impl Shared {
    fn finished(&self, id: u64) {
        let mut st = self.state.lock();
        st.pending.remove(&id);
        st.unfinished -= 1;
        if st.unfinished == 0 {
            self.idle.set();
        }
    }

    fn shutdown(&self, cancel_futures: bool) {
        let cancels: Vec<_> = {
            let mut st = self.state.lock();
            st.shutdown = true;
            if cancel_futures {
                st.pending.drain().map(|(_, c)| c).collect()
            } else {
                Vec::new()
            }
        };
        for cancel in cancels {
            cancel();
        }
    }
}

struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.shutdown(false);
        // Waiting for tasks of a runtime from a synchronous drop is only
        // possible off that runtime's threads; inside it, the work finishes
        // on its own.
        if tokio::runtime::Handle::try_current().is_err() {
            self.0.idle.blocking().wait();
        }
    }
}

/// An executor of async work: each piece runs as a tokio task, at most
/// `max_concurrency` at a time, and answers with the same [`Future`] as the
/// thread pool, so code can move between threads and tasks by changing the
/// executor it is given.
///
/// Python: an asyncio-side `concurrent.futures.Executor` (asyncio has none;
/// this is what `loop.run_in_executor` pairs with). Work runs in a copy of
/// the submitter's context. A handle: clones are the same executor;
/// dropping the last one shuts it down (and, outside a runtime, waits).
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::futures::{Executor, TaskExecutor};
///
/// let ex = TaskExecutor::new(2).unwrap();
/// let f = ex.spawn(async { tokio::task::yield_now().await; 7 }).unwrap();
/// assert_eq!(f.await, Ok(7));
/// fn double(x: u32) -> u32 { x * 2 }
/// assert_eq!(ex.submit(double, 21).unwrap().await, Ok(42));
/// ex.shutdown_and_wait(false).await;
/// # }
/// ```
#[derive(Clone)]
pub struct TaskExecutor {
    handle: Arc<Handle>,
}

impl fmt::Debug for TaskExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.handle.0;
        f.debug_struct("TaskExecutor")
            .field("max_concurrency", &s.max_concurrency)
            .field("unfinished", &s.state.lock().unfinished)
            .finish()
    }
}

super::executor::inherent_shutdown!(TaskExecutor);

impl TaskExecutor {
    /// An executor running at most `max_concurrency` pieces of work at a
    /// time, on the current runtime (or the one conex starts outside any).
    ///
    /// # Errors
    /// [`ZeroWorkers`] for 0.
    pub fn new(max_concurrency: usize) -> Result<TaskExecutor, ZeroWorkers> {
        TaskExecutor::on(crate::threading::runtime_handle(), max_concurrency)
    }

    /// The same, on a given runtime.
    ///
    /// # Errors
    /// [`ZeroWorkers`] for 0.
    pub fn on(
        rt: tokio::runtime::Handle,
        max_concurrency: usize,
    ) -> Result<TaskExecutor, ZeroWorkers> {
        if max_concurrency == 0 {
            return Err(ZeroWorkers);
        }
        let idle = Event::new();
        idle.set();
        Ok(TaskExecutor {
            handle: Arc::new(Handle(Arc::new(Shared {
                rt,
                limit: Semaphore::new(max_concurrency),
                max_concurrency,
                next_id: AtomicU64::new(0),
                state: Mutex::new(State {
                    shutdown: false,
                    unfinished: 0,
                    pending: HashMap::new(),
                }),
                idle,
            }))),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.0
    }

    /// Runs `fut` as a task once a slot is free.
    ///
    /// # Errors
    /// [`SubmitError::Shutdown`] after a shutdown.
    pub fn spawn<T, F>(&self, fut: F) -> Result<Future<T>, SubmitError>
    where
        F: StdFuture<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_fallible(fut.map(Ok::<T, std::convert::Infallible>))
    }

    /// Runs a fallible future: its `Err` becomes the future's error.
    ///
    /// # Errors
    /// As [`spawn`](TaskExecutor::spawn).
    pub fn spawn_fallible<T, E, F>(&self, fut: F) -> Result<Future<T>, SubmitError>
    where
        F: StdFuture<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let shared = self.shared().clone();
        let future = Future::new();
        let id = shared.next_id.fetch_add(1, Relaxed);
        {
            let mut st = shared.state.lock();
            if st.shutdown {
                return Err(SubmitError::Shutdown);
            }
            st.unfinished += 1;
            shared.idle.clear();
            let f2 = future.clone();
            st.pending.insert(id, Box::new(move || f2.cancel()));
        }
        let (f2, s2) = (future.clone(), shared.clone());
        let task = InContext::copy_current(async move {
            let _slot = s2.limit.permit().await;
            s2.state.lock().pending.remove(&id);
            if f2.set_running_or_notify_cancel().unwrap_or(false) {
                let _ = match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(Ok(v)) => f2.set_result(v),
                    Ok(Err(e)) => f2.set_exception(WorkError::from_error(e)),
                    Err(p) => f2.set_exception(WorkError::from_panic(&*p)),
                };
            }
            s2.finished(id);
        });
        shared.rt.spawn(task);
        Ok(future)
    }

    /// Stops taking work (cancelling what has not started, with
    /// `cancel_futures`) and waits for the rest.
    ///
    /// # Cancel safety
    /// Dropping the future only stops waiting; the shutdown stands.
    pub async fn shutdown_and_wait(&self, cancel_futures: bool) {
        self.shared().shutdown(cancel_futures);
        self.shared().idle.wait().await;
    }
}

impl<A, R> Executor<A, R> for TaskExecutor
where
    A: Send + 'static,
    R: Send + 'static,
{
    /// Runs `f(arg)` inside a task (a function that blocks belongs on a
    /// [`ThreadPoolExecutor`](super::ThreadPoolExecutor)).
    fn submit(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError> {
        self.spawn(async move { f(arg) })
    }

    fn submit_fallible<E>(&self, f: fn(A) -> Result<R, E>, arg: A) -> Result<Future<R>, SubmitError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.spawn_fallible(async move { f(arg) })
    }

    /// With `wait`, blocks the thread until the work is done (from async
    /// code use [`TaskExecutor::shutdown_and_wait`]).
    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared().shutdown(cancel_futures);
        if wait {
            self.shared().idle.blocking().wait();
        }
    }
}
