//! `ThreadPoolExecutor`: a pool of OS threads running submitted work.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parking_lot::Mutex;

use super::errors::{SubmitError, WorkError, ZeroWorkers};
use super::executor::Executor;
use super::future::Future;
use crate::contextvars::TaskContext;
use crate::queue::{PutError, Queue};
use crate::threading::{Semaphore, Thread};

/// One submitted call, type-erased: run it (if its future was not
/// cancelled), or fail it (the pool broke).
pub(crate) trait WorkItem: Send {
    fn run(self: Box<Self>);
    fn cancel(self: Box<Self>);
    fn fail(self: Box<Self>, error: WorkError);
}

/// A call and the future it completes, with the submitter's context.
pub(crate) struct Call<T, F> {
    pub(crate) future: Future<T>,
    pub(crate) f: F,
    pub(crate) ctx: TaskContext,
}

impl<T, F> WorkItem for Call<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, WorkError> + Send,
{
    fn run(self: Box<Self>) {
        let Call { future, f, mut ctx } = *self;
        if !future.set_running_or_notify_cancel().unwrap_or(false) {
            return;
        }
        let out = ctx.enter(|| catch_unwind(AssertUnwindSafe(f)));
        let _ = match out {
            Ok(Ok(v)) => future.set_result(v),
            Ok(Err(e)) => future.set_exception(e),
            Err(p) => future.set_exception(WorkError::from_panic(&*p)),
        };
    }

    fn cancel(self: Box<Self>) {
        self.future.cancel();
    }

    fn fail(self: Box<Self>, error: WorkError) {
        let _ = self.future.set_exception(error);
    }
}

type Initializer = Arc<dyn Fn() -> Result<(), WorkError> + Send + Sync>;

struct Shared {
    queue: Queue<Box<dyn WorkItem>>,
    max_workers: usize,
    prefix: String,
    initializer: Option<Initializer>,
    /// Workers waiting for work (Python's `_idle_semaphore`).
    idle: Semaphore,
    workers: Mutex<Vec<Thread>>,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    shutdown: bool,
    broken: Option<String>,
}

impl Shared {
    /// Python's `_adjust_thread_count`: an idle worker takes the new work,
    /// otherwise a new one starts while there are fewer than `max_workers`.
    fn adjust_thread_count(self: &Arc<Self>) {
        if self.idle.try_acquire() {
            return;
        }
        let mut workers = self.workers.lock();
        if workers.len() >= self.max_workers {
            return;
        }
        let shared = self.clone();
        let name = format!("{}_{}", self.prefix, workers.len());
        match Thread::builder()
            .name(name)
            .daemon(true)
            .spawn_blocking(move || shared.worker())
        {
            Ok(t) => workers.push(t.thread().clone()),
            Err(e) => {
                if workers.is_empty() {
                    drop(workers);
                    self.set_broken(format!("cannot start a worker thread: {e}"));
                }
            }
        }
    }

    fn worker(self: Arc<Self>) {
        if let Some(init) = &self.initializer {
            let failed = match catch_unwind(AssertUnwindSafe(|| init())) {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(p) => Some(crate::panic_str(&*p).to_owned()),
            };
            if let Some(why) = failed {
                self.set_broken(format!(
                    "A thread initializer failed, the thread pool is not usable anymore ({why})"
                ));
                return;
            }
        }
        while let Ok(item) = self.queue.blocking().get() {
            item.run();
            self.idle.release(1).ok();
        }
    }

    /// Python's `_initializer_failed`: pending work fails with
    /// `BrokenThreadPool`, and so does later work.
    fn set_broken(&self, why: String) {
        self.state.lock().broken.get_or_insert(why.clone());
        while let Ok(item) = self.queue.get_nowait() {
            item.fail(WorkError::new("BrokenThreadPool", why.clone()));
        }
    }

    fn submit_item(self: &Arc<Self>, item: Box<dyn WorkItem>) -> Result<(), SubmitError> {
        {
            let st = self.state.lock();
            if let Some(why) = &st.broken {
                return Err(SubmitError::Broken(why.clone()));
            }
            if st.shutdown {
                return Err(SubmitError::Shutdown);
            }
        }
        match self.queue.put_nowait(item) {
            Ok(()) => {}
            Err(PutError::ShutDown(_) | PutError::Full(_)) => return Err(SubmitError::Shutdown),
        }
        self.adjust_thread_count();
        Ok(())
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.state.lock().shutdown = true;
        if cancel_futures {
            while let Ok(item) = self.queue.get_nowait() {
                item.cancel();
            }
        }
        // Workers take what is left, then see the shutdown and leave.
        self.queue.shutdown(false);
        if wait {
            let workers = self.workers.lock().clone();
            for w in workers {
                let _ = w.blocking().join();
            }
        }
    }
}

/// Shuts the pool down when the last handle goes.
struct Handle(Arc<Shared>);

/// Whether a pool dropped here may block the thread to wait for its
/// workers: not on the thread of a current-thread runtime (that is
/// refused), where the pool is only shut down and its workers finish the
/// queued work on their own.
pub(crate) fn can_block_here() -> bool {
    tokio::runtime::Handle::try_current()
        .map(|h| h.runtime_flavor() != tokio::runtime::RuntimeFlavor::CurrentThread)
        .unwrap_or(true)
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.shutdown(can_block_here(), false);
    }
}

/// A pool of OS threads that runs submitted work and answers with
/// [`Future`]s.
///
/// Python: `concurrent.futures.ThreadPoolExecutor`. Workers start lazily,
/// one per submission while none is idle, up to `max_workers` (default
/// `min(32, cpus + 4)`), and are reused. Work runs in a copy of the
/// submitter's context (contextvars). A handle: clones are the same pool;
/// dropping the last one shuts it down and waits.
///
/// # Examples
///
/// ```
/// use conex::futures::{as_completed_blocking, Executor, ThreadPoolExecutor};
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = ThreadPoolExecutor::new(4).unwrap();
/// let futs: Vec<_> = (1..=4).map(|x| pool.submit(square, x).unwrap()).collect();
/// let mut sum = 0;
/// for f in as_completed_blocking(&futs, None) {
///     sum += f.unwrap().blocking().result().unwrap();
/// }
/// assert_eq!(sum, 30);
/// // Any closure, through the inherent method:
/// let name = pool.spawn(|| std::thread::current().name().unwrap().to_owned()).unwrap();
/// assert!(name.blocking().result().unwrap().starts_with("ThreadPoolExecutor-"));
/// pool.shutdown(true, false);
///
/// // Python's `with ThreadPoolExecutor(2) as ex:` -- shut down on exit:
/// let total: u64 = ThreadPoolExecutor::new(2).unwrap().with(|ex| {
///     let futs: Vec<_> = (1..=3).map(|x| ex.submit(square, x).unwrap()).collect();
///     futs.iter().map(|f| f.blocking().result().unwrap()).sum()
/// });
/// assert_eq!(total, 14);
/// ```
#[derive(Clone)]
pub struct ThreadPoolExecutor {
    handle: Arc<Handle>,
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.handle.0;
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &s.max_workers)
            .field("workers", &s.workers.lock().len())
            .field("queued", &s.queue.qsize())
            .finish()
    }
}

/// Builds a [`ThreadPoolExecutor`].
///
/// Python: the arguments of `ThreadPoolExecutor(max_workers=None,
/// thread_name_prefix='', initializer=None, initargs=())`.
#[derive(Default)]
pub struct ThreadPoolBuilder {
    max_workers: Option<usize>,
    prefix: Option<String>,
    initializer: Option<Initializer>,
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("prefix", &self.prefix)
            .field("initializer", &self.initializer.is_some())
            .finish()
    }
}

impl ThreadPoolBuilder {
    /// The most threads the pool runs (default `min(32, cpus + 4)`).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// The workers' name prefix (default `ThreadPoolExecutor-N`).
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Runs in each worker before it takes work; if it fails (an `Err` or a
    /// panic) the pool breaks: pending and later work fails with
    /// `BrokenThreadPool`.
    pub fn initializer<E: fmt::Display>(
        mut self,
        init: impl Fn() -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        self.initializer = Some(Arc::new(move || {
            init().map_err(|e| WorkError::new("InitializerError", e.to_string()))
        }));
        self
    }

    /// The pool.
    ///
    /// # Errors
    /// [`ZeroWorkers`] for `max_workers(0)`.
    pub fn build(self) -> Result<ThreadPoolExecutor, ZeroWorkers> {
        static POOLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let max_workers = match self.max_workers {
            Some(0) => return Err(ZeroWorkers),
            Some(n) => n,
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .saturating_add(4)
                .min(32),
        };
        let prefix = self.prefix.unwrap_or_else(|| {
            format!(
                "ThreadPoolExecutor-{}",
                POOLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )
        });
        Ok(ThreadPoolExecutor {
            handle: Arc::new(Handle(Arc::new(Shared {
                queue: Queue::unbounded(),
                max_workers,
                prefix,
                initializer: self.initializer,
                idle: Semaphore::new(0),
                workers: Mutex::new(Vec::new()),
                state: Mutex::new(PoolState::default()),
            }))),
        })
    }
}

super::executor::inherent_shutdown!(ThreadPoolExecutor);

impl ThreadPoolExecutor {
    /// A pool of at most `max_workers` threads.
    ///
    /// Python: `ThreadPoolExecutor(max_workers)`.
    ///
    /// # Errors
    /// [`ZeroWorkers`] for 0.
    pub fn new(max_workers: usize) -> Result<ThreadPoolExecutor, ZeroWorkers> {
        ThreadPoolExecutor::builder()
            .max_workers(max_workers)
            .build()
    }

    /// A builder (default worker count, name prefix, initializer).
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.0
    }

    /// Runs any closure on the pool.
    ///
    /// # Errors
    /// As [`Executor::submit`].
    pub fn spawn<T, F>(&self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_fallible(move || Ok::<T, std::convert::Infallible>(f()))
    }

    /// Runs a closure that can fail: its `Err` becomes the future's error.
    ///
    /// # Errors
    /// As [`Executor::submit`].
    pub fn spawn_fallible<T, E, F>(&self, f: F) -> Result<Future<T>, SubmitError>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let future = Future::new();
        let item = Box::new(Call {
            future: future.clone(),
            f: move || f().map_err(WorkError::from_error),
            ctx: TaskContext::copy_current(),
        });
        self.shared().submit_item(item)?;
        Ok(future)
    }

    /// The most threads this pool runs.
    pub fn max_workers(&self) -> usize {
        self.shared().max_workers
    }

    /// How many worker threads it has started.
    pub fn workers(&self) -> usize {
        self.shared().workers.lock().len()
    }
}

impl<A, R> Executor<A, R> for ThreadPoolExecutor
where
    A: Send + 'static,
    R: Send + 'static,
{
    fn submit(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError> {
        self.spawn(move || f(arg))
    }

    fn submit_fallible<E>(&self, f: fn(A) -> Result<R, E>, arg: A) -> Result<Future<R>, SubmitError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.spawn_fallible(move || f(arg))
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared().shutdown(wait, cancel_futures);
    }
}
