//! What runs a pool's work: the [`Backend`] trait and its two kinds,
//! worker processes ([`Processes`]) and threads ([`Threads`]).

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::callable::Caller;
use super::super::context::{StartMethod, cpu_count, get_start_method};
use super::core::{
    Chunk, Config, Core, Initializer, Job, OnDeath, Outcomes, Whole, remote_to_work,
};
use crate::futures::{
    Future, FutureError, SubmitError, ThreadPoolExecutor, WorkError, ZeroWorkers,
};

/// The workings of the backends: public items of a private module, so the
/// pool reaches them and a user cannot name or implement them.
mod sealed {
    use super::{Caller, Future, Outcomes, PoolConfig, SubmitError, ZeroWorkers};

    pub trait Sealed: Sized {
        fn build(cfg: PoolConfig) -> Result<Self, ZeroWorkers>;
        fn close(&self);
        fn terminate(&self);
        fn join(&self);
        fn wait_ready(&self);
        fn processes(&self) -> usize;
    }

    pub trait Run<C: Caller> {
        /// `target` over `args`, `chunksize` calls per unit of work; one
        /// future per call, in order.
        fn run(
            &self,
            target: usize,
            args: Vec<C::Arg>,
            chunksize: usize,
        ) -> Result<Vec<Future<C::Out>>, SubmitError>;

        /// `target` over `args` in chunks of `chunksize` calls, one future
        /// per chunk (what `map` uses: no future per call).
        fn run_chunks(
            &self,
            target: usize,
            args: Vec<C::Arg>,
            chunksize: usize,
        ) -> Result<Vec<Future<Outcomes<C::Out>>>, SubmitError>;
    }
}

/// What runs a pool's work: worker processes ([`Processes`], for
/// [`Pool`](super::super::Pool)) or threads of this process ([`Threads`],
/// for [`dummy::Pool`](super::super::dummy::Pool)). Sealed.
pub trait Backend: sealed::Sealed + Send + Sync + Sized + 'static {}

/// A backend that can run calls of `C` (serde types for processes, any
/// `Send` types for threads). Sealed.
pub trait Runs<C: Caller>: Backend + sealed::Run<C> {}

/// `args` split into chunks of `chunksize` (at least 1).
fn chunks<T>(args: Vec<T>, chunksize: usize) -> impl Iterator<Item = Vec<T>> {
    let mut args = args.into_iter().peekable();
    std::iter::from_fn(move || {
        args.peek()?;
        Some(args.by_ref().take(chunksize.max(1)).collect())
    })
}

/// The options of a pool, before its backend is made.
#[allow(missing_debug_implementations)]
pub struct PoolConfig {
    pub(super) processes: Option<usize>,
    pub(super) init_process: Option<Initializer>,
    pub(super) init_thread: Option<Arc<dyn Fn() + Send + Sync>>,
    pub(super) max_tasks: Option<NonZeroU64>,
    pub(super) method: Option<StartMethod>,
    pub(super) on_death: OnDeath,
}

impl PoolConfig {
    /// How many workers to start: the number asked for (0 is refused, as
    /// Python's `ValueError`), or one per CPU.
    fn workers(&self) -> Result<usize, ZeroWorkers> {
        match self.processes {
            Some(0) => Err(ZeroWorkers),
            Some(n) => Ok(n),
            None => Ok(cpu_count()),
        }
    }
}

/// Worker processes: the backend of [`Pool`](super::super::Pool).
pub struct Processes {
    pub(super) core: Arc<Core>,
}

impl fmt::Debug for Processes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processes")
            .field("workers", &self.core.workers())
            .finish()
    }
}

impl Backend for Processes {}

impl sealed::Sealed for Processes {
    fn build(cfg: PoolConfig) -> Result<Self, ZeroWorkers> {
        let workers = cfg.workers()?;
        Ok(Processes {
            core: Core::new(Config {
                workers,
                method: cfg.method.unwrap_or_else(get_start_method),
                initializer: cfg.init_process,
                max_tasks: cfg.max_tasks,
                on_death: cfg.on_death,
                kill_on_cancel: false,
                eager: true,
            }),
        })
    }
    fn close(&self) {
        self.core.shutdown(false);
    }
    fn terminate(&self) {
        self.core.terminate();
    }
    fn join(&self) {
        self.core.join();
    }
    fn wait_ready(&self) {
        self.core.wait_ready();
    }
    fn processes(&self) -> usize {
        self.core.workers()
    }
}

/// Queues `target` over `args` as jobs of `chunksize` calls on `core`.
pub(crate) fn submit_chunks<C>(
    core: &Arc<Core>,
    target: usize,
    args: Vec<C::Arg>,
    chunksize: usize,
) -> Result<Vec<Future<C::Out>>, SubmitError>
where
    C: Caller,
    C::Arg: Serialize + DeserializeOwned + Send + 'static,
    C::Out: Serialize + DeserializeOwned + Send + 'static,
{
    let mut futures = Vec::with_capacity(args.len());
    for chunk in chunks(args, chunksize) {
        let (job, fs) = Chunk::<C>::new(target, chunk);
        core.submit(Box::new(job) as Box<dyn Job>)?;
        futures.extend(fs);
    }
    Ok(futures)
}

impl<C> Runs<C> for Processes
where
    C: Caller,
    C::Arg: Serialize + DeserializeOwned + Send + 'static,
    C::Out: Serialize + DeserializeOwned + Send + 'static,
{
}

impl<C> sealed::Run<C> for Processes
where
    C: Caller,
    C::Arg: Serialize + DeserializeOwned + Send + 'static,
    C::Out: Serialize + DeserializeOwned + Send + 'static,
{
    fn run(
        &self,
        target: usize,
        args: Vec<C::Arg>,
        chunksize: usize,
    ) -> Result<Vec<Future<C::Out>>, SubmitError> {
        submit_chunks::<C>(&self.core, target, args, chunksize)
    }

    fn run_chunks(
        &self,
        target: usize,
        args: Vec<C::Arg>,
        chunksize: usize,
    ) -> Result<Vec<Future<Outcomes<C::Out>>>, SubmitError> {
        chunks(args, chunksize)
            .map(|chunk| {
                let (job, future) = Whole::<C>::new(target, chunk);
                self.core.submit(Box::new(job))?;
                Ok(future)
            })
            .collect()
    }
}

/// Threads of this process: the backend of
/// [`dummy::Pool`](super::super::dummy::Pool).
#[derive(Debug)]
pub struct Threads {
    pool: ThreadPoolExecutor,
    processes: usize,
}

impl Backend for Threads {}

impl sealed::Sealed for Threads {
    fn build(cfg: PoolConfig) -> Result<Self, ZeroWorkers> {
        let processes = cfg.workers()?;
        let mut b = ThreadPoolExecutor::builder()
            .max_workers(processes)
            .thread_name_prefix("Thread");
        if let Some(init) = cfg.init_thread {
            b = b.initializer(move || {
                init();
                Ok::<(), std::convert::Infallible>(())
            });
        }
        Ok(Threads {
            pool: b.build()?,
            processes,
        })
    }
    fn close(&self) {
        self.pool.shutdown(false, false);
    }
    fn terminate(&self) {
        self.pool.shutdown(false, true);
    }
    fn join(&self) {
        self.pool.shutdown(true, false);
    }
    fn wait_ready(&self) {}
    fn processes(&self) -> usize {
        self.processes
    }
}

impl<C> Runs<C> for Threads
where
    C: Caller,
    C::Arg: Send + 'static,
    C::Out: Send + 'static,
{
}

impl<C> sealed::Run<C> for Threads
where
    C: Caller,
    C::Arg: Send + 'static,
    C::Out: Send + 'static,
{
    fn run(
        &self,
        target: usize,
        args: Vec<C::Arg>,
        _chunksize: usize,
    ) -> Result<Vec<Future<C::Out>>, SubmitError> {
        args.into_iter()
            .map(|a| {
                self.pool.spawn_fallible(move || {
                    // `target` is a `fn` of `C`'s type: the pool's methods
                    // take it typed and erase it only on the way here.
                    C::call(target, a).map_err(RemoteFailure)
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|fs| fs.into_iter().map(keep_remote_type).collect())
    }

    fn run_chunks(
        &self,
        target: usize,
        args: Vec<C::Arg>,
        chunksize: usize,
    ) -> Result<Vec<Future<Outcomes<C::Out>>>, SubmitError> {
        chunks(args, chunksize)
            .map(|chunk| {
                self.pool.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|a| {
                            let call = || C::call(target, a);
                            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
                                Ok(r) => r.map_err(remote_to_work),
                                Err(p) => Err(WorkError::from_panic(&*p)),
                            }
                        })
                        .collect()
                })
            })
            .collect()
    }
}

/// A work error from a [`Caller`], kept as the remote type name and message.
#[derive(Debug)]
struct RemoteFailure(super::super::errors::RemoteError);

impl fmt::Display for RemoteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.message.fmt(f)
    }
}

impl std::error::Error for RemoteFailure {}

/// The thread pool names an `Err` after its Rust type; a pool's work errors
/// are named after the error the `fn` returned, as in a worker process.
fn keep_remote_type<T: Send + 'static>(f: Future<T>) -> Future<T> {
    relay(f, |out| {
        out.map_err(|e| match e.downcast_ref::<RemoteFailure>() {
            Some(r) => remote_to_work(r.0.clone()),
            None => e,
        })
    })
}

/// A future that takes `f`'s outcome once it is done, through `map` (run
/// first, on the completing thread); a cancelled `f` gives a
/// `CancelledError`.
pub(super) fn relay<T: Send + 'static>(
    f: Future<T>,
    map: impl FnOnce(Result<T, WorkError>) -> Result<T, WorkError> + Send + 'static,
) -> Future<T> {
    let out = Future::new();
    let _ = out.set_running_or_notify_cancel();
    let o = out.clone();
    f.add_done_callback(move |f| {
        let outcome = match f.blocking().take_result() {
            Ok(v) => Ok(v),
            Err(FutureError::Failed(e)) => Err(e),
            Err(e) => Err(WorkError::new("CancelledError", e.to_string())),
        };
        let _ = match map(outcome) {
            Ok(v) => o.set_result(v),
            Err(e) => o.set_exception(e),
        };
    });
    out
}
