//! `Pool` (processes) and `dummy::Pool` (threads): one API over two
//! backends.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU64;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::callable::{Caller, Plain, StarFn};
use super::super::context::{Context, StartMethod, cpu_count, get_start_method};
use super::core::{
    Chunk, Config, Core, Initializer, Job, OnDeath, Outcomes, Whole, remote_to_work,
};
use crate::futures::{
    Future, FutureError, SubmitError, ThreadPoolExecutor, WorkError, ZeroWorkers, can_block_here,
};
use crate::queue::SimpleQueue;

mod sealed {
    pub trait Sealed {}
}

/// What runs a pool's work: worker processes ([`Processes`], for
/// [`Pool`](super::super::Pool)) or threads of this process ([`Threads`],
/// for [`dummy::Pool`](super::super::dummy::Pool)). Sealed.
pub trait Backend: sealed::Sealed + Send + Sync + Sized + 'static {
    #[doc(hidden)]
    fn build(cfg: PoolConfig) -> Result<Self, ZeroWorkers>;
    #[doc(hidden)]
    fn close(&self);
    #[doc(hidden)]
    fn terminate(&self);
    #[doc(hidden)]
    fn join(&self);
    #[doc(hidden)]
    fn wait_ready(&self);
    #[doc(hidden)]
    fn processes(&self) -> usize;
}

/// A backend that can run calls of `C` (serde types for processes, any
/// `Send` types for threads).
pub trait Runs<C: Caller>: Backend {
    /// `target` over `args`, `chunksize` calls per unit of work; one future
    /// per call, in order.
    #[doc(hidden)]
    fn run(
        &self,
        target: usize,
        args: Vec<C::Arg>,
        chunksize: usize,
    ) -> Result<Vec<Future<C::Out>>, SubmitError>;

    /// `target` over `args` in chunks of `chunksize` calls, one future per
    /// chunk (what `map` uses: no future per call).
    #[doc(hidden)]
    fn run_chunks(
        &self,
        target: usize,
        args: Vec<C::Arg>,
        chunksize: usize,
    ) -> Result<Vec<Future<Outcomes<C::Out>>>, SubmitError>;
}

/// `args` split into chunks of `chunksize` (at least 1).
fn chunks<T>(args: Vec<T>, chunksize: usize) -> impl Iterator<Item = Vec<T>> {
    let mut args = args.into_iter().peekable();
    std::iter::from_fn(move || {
        args.peek()?;
        Some(args.by_ref().take(chunksize.max(1)).collect())
    })
}

/// The options of a pool, before its backend is made.
#[doc(hidden)]
#[allow(missing_debug_implementations)]
pub struct PoolConfig {
    processes: Option<usize>,
    init_process: Option<Initializer>,
    init_thread: Option<Arc<dyn Fn() + Send + Sync>>,
    max_tasks: Option<NonZeroU64>,
    method: Option<StartMethod>,
    on_death: OnDeath,
}

/// Worker processes: the backend of [`Pool`](super::super::Pool).
pub struct Processes {
    core: Arc<Core>,
}

impl fmt::Debug for Processes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processes")
            .field("workers", &self.core.workers())
            .finish()
    }
}

impl sealed::Sealed for Processes {}

impl Backend for Processes {
    fn build(cfg: PoolConfig) -> Result<Self, ZeroWorkers> {
        let workers = match cfg.processes {
            Some(0) => return Err(ZeroWorkers),
            Some(n) => n,
            None => cpu_count(),
        };
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

impl sealed::Sealed for Threads {}

impl Backend for Threads {
    fn build(cfg: PoolConfig) -> Result<Self, ZeroWorkers> {
        let processes = match cfg.processes {
            Some(0) => return Err(ZeroWorkers),
            Some(n) => n,
            None => cpu_count(),
        };
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
    fn run(
        &self,
        target: usize,
        args: Vec<C::Arg>,
        _chunksize: usize,
    ) -> Result<Vec<Future<C::Out>>, SubmitError> {
        args.into_iter()
            .map(|a| {
                self.pool.spawn_fallible(move || {
                    // SAFETY: `target` is a `fn` of `C`'s type: the pool's
                    // methods take it typed and erase it only here.
                    unsafe { C::call(target, a) }.map_err(RemoteFailure)
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
                            // SAFETY: as in `run`.
                            let call = || unsafe { C::call(target, a) };
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
fn relay<T: Send + 'static>(
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

/// Builds a [`Pool`](super::super::Pool) (or a
/// [`dummy::Pool`](super::super::dummy::Pool)).
///
/// Python: the arguments of `Pool(processes=None, initializer=None,
/// initargs=(), maxtasksperchild=None, context=None)`.
pub struct PoolBuilder<B> {
    cfg: PoolConfig,
    _backend: std::marker::PhantomData<fn() -> B>,
}

impl<B> fmt::Debug for PoolBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.cfg.processes)
            .field("initializer", &self.cfg.init_process.is_some())
            .field("maxtasksperchild", &self.cfg.max_tasks)
            .field("method", &self.cfg.method)
            .field("on_death", &self.cfg.on_death)
            .finish()
    }
}

impl<B: Backend> PoolBuilder<B> {
    /// The number of workers (default [`cpu_count`]).
    pub fn processes(mut self, n: usize) -> Self {
        self.cfg.processes = Some(n);
        self
    }

    /// Runs `f(args)` in each worker before it takes work (each
    /// replacement too). If it panics the pool is broken: pending and later
    /// work fails with `BrokenProcessPool`, as in Python.
    pub fn initializer<A>(mut self, f: fn(A), args: A) -> Self
    where
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let a = args.clone();
        self.cfg.init_process = Some(initializer(f, args));
        self.cfg.init_thread = Some(Arc::new(move || f(a.clone())));
        self
    }

    /// A worker process is replaced by a fresh one after this many calls
    /// (Python's `maxtasksperchild`; the other workers keep taking the
    /// backlog meanwhile). Threads ignore it.
    pub fn maxtasksperchild(mut self, n: NonZeroU64) -> Self {
        self.cfg.max_tasks = Some(n);
        self
    }

    /// How workers are started (Python's `context`). Threads ignore it.
    pub fn context(mut self, ctx: Context) -> Self {
        self.cfg.method = Some(ctx.start_method());
        self
    }

    /// What a worker's death does (default [`OnDeath::Replace`]).
    pub fn on_worker_death(mut self, policy: OnDeath) -> Self {
        self.cfg.on_death = policy;
        self
    }

    /// The pool, its workers starting.
    ///
    /// # Errors
    /// [`ZeroWorkers`] for `processes(0)` (Python's `ValueError`).
    pub fn build(self) -> Result<PoolOf<B>, ZeroWorkers> {
        Ok(PoolOf {
            backend: B::build(self.cfg)?,
            state: Mutex::new(Run::Running),
        })
    }
}

/// The initializer job of a process pool: `f(args)` as a one-call chunk.
pub(crate) fn initializer<A>(f: fn(A), args: A) -> Initializer
where
    A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    Arc::new(move || {
        let (job, mut futs) = Chunk::<Plain<A, ()>>::new(f as usize, vec![args.clone()]);
        (Box::new(job) as Box<dyn Job>, futs.remove(0))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Running,
    Closed,
    Terminated,
    Joined,
}

/// A pool of workers running plain `fn`s: the one implementation behind
/// [`Pool`](super::super::Pool) (worker processes) and
/// [`dummy::Pool`](super::super::dummy::Pool) (threads); use those names.
///
/// Python: `multiprocessing.Pool` / `multiprocessing.dummy.Pool`.
pub struct PoolOf<B: Backend> {
    backend: B,
    state: Mutex<Run>,
}

impl<B: Backend> fmt::Debug for PoolOf<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.backend.processes())
            .field("state", &*self.state.lock())
            .finish()
    }
}

/// Python's `Pool.map` default: about four chunks per worker.
fn default_chunksize(len: usize, workers: usize) -> usize {
    len.div_ceil(workers.max(1) * 4).max(1)
}

fn submit_failed(e: SubmitError) -> FutureError {
    FutureError::Failed(WorkError::new("ValueError", e.to_string()))
}

impl<B: Backend> PoolOf<B> {
    /// A builder: `Pool::builder().processes(4).initializer(f, args).build()`.
    pub fn builder() -> PoolBuilder<B> {
        PoolBuilder {
            cfg: PoolConfig {
                processes: None,
                init_process: None,
                init_thread: None,
                max_tasks: None,
                method: None,
                on_death: OnDeath::Replace,
            },
            _backend: std::marker::PhantomData,
        }
    }

    /// A pool of `processes` workers (`None`: [`cpu_count`]).
    ///
    /// Python: `Pool(processes)`.
    ///
    /// # Errors
    /// [`ZeroWorkers`] for `Some(0)`.
    pub fn new(processes: Option<usize>) -> Result<PoolOf<B>, ZeroWorkers> {
        let b = PoolOf::<B>::builder();
        match processes {
            Some(n) => b.processes(n).build(),
            None => b.build(),
        }
    }

    /// The number of workers.
    pub fn processes(&self) -> usize {
        self.backend.processes()
    }

    /// Blocks until every worker has started and run the initializer (or
    /// the pool broke). Not in Python; it moves start-up cost out of what
    /// follows.
    pub fn wait_ready(&self) {
        self.backend.wait_ready();
    }

    fn check_running(&self) -> Result<(), SubmitError> {
        match *self.state.lock() {
            Run::Running => Ok(()),
            _ => Err(SubmitError::Shutdown),
        }
    }

    fn run<C: Caller>(
        &self,
        target: usize,
        args: Vec<C::Arg>,
        chunksize: usize,
    ) -> Result<Vec<Future<C::Out>>, SubmitError>
    where
        B: Runs<C>,
    {
        self.check_running()?;
        self.backend.run(target, args, chunksize)
    }

    /// Runs `f(arg)` on a worker and waits for it.
    ///
    /// Python: `Pool.apply(func, args)`.
    ///
    /// # Errors
    /// The call's error ([`FutureError::Failed`]: a panic with its remote
    /// backtrace, or a worker that died), or the pool is not running.
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, FutureError>
    where
        A: 'static,
        R: Send + 'static,
        B: Runs<Plain<A, R>>,
    {
        self.apply_async(f, arg)
            .map_err(submit_failed)?
            .future
            .blocking()
            .take_result()
    }

    /// Starts `f(arg)` on a worker; its [`AsyncResult`].
    ///
    /// Python: `Pool.apply_async(func, args, callback, error_callback)`
    /// (the callbacks are [`AsyncResult::callback`] and
    /// [`AsyncResult::error_callback`]).
    ///
    /// # Errors
    /// [`SubmitError::Shutdown`] once the pool is closed or terminated
    /// (Python's `ValueError: Pool not running`), `Broken` once broken.
    pub fn apply_async<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<AsyncResult<R>, SubmitError>
    where
        A: 'static,
        R: Send + 'static,
        B: Runs<Plain<A, R>>,
    {
        let mut fs = self.run::<Plain<A, R>>(f as usize, vec![arg], 1)?;
        Ok(AsyncResult {
            future: fs.remove(0),
        })
    }

    /// `f` over `args`, results in order; blocks until all are done.
    /// `chunksize` calls go to a worker at a time; `None` is Python's
    /// default (about four chunks per worker). Write a size as
    /// `NonZeroUsize::new(n)` (zero is `None`, the default).
    ///
    /// Python: `Pool.map(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// The first failed call's error, in input order.
    pub fn map<A, R>(
        &self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = A>,
        chunksize: Option<NonZeroUsize>,
    ) -> Result<Vec<R>, FutureError>
    where
        A: 'static,
        R: Send + 'static,
        B: Runs<Plain<A, R>>,
    {
        self.map_async(f, args, chunksize)
            .map_err(submit_failed)?
            .future
            .blocking()
            .take_result()
    }

    /// [`map`](PoolOf::map) without waiting: one [`AsyncResult`] for the
    /// whole list.
    ///
    /// Python: `Pool.map_async(func, iterable, chunksize, callback,
    /// error_callback)`.
    ///
    /// # Errors
    /// As [`apply_async`](PoolOf::apply_async).
    pub fn map_async<A, R>(
        &self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = A>,
        chunksize: Option<NonZeroUsize>,
    ) -> Result<AsyncResult<Vec<R>>, SubmitError>
    where
        A: 'static,
        R: Send + 'static,
        B: Runs<Plain<A, R>>,
    {
        let args: Vec<A> = args.into_iter().collect();
        let cs = chunksize.map_or_else(
            || default_chunksize(args.len(), self.processes()),
            NonZeroUsize::get,
        );
        self.check_running()?;
        let fs = self.backend.run_chunks(f as usize, args, cs)?;
        Ok(AsyncResult { future: gather(fs) })
    }

    /// `f` over `args` as a stream of results in input order, each as soon
    /// as it and those before it are done (`chunksize` `None` means 1, as
    /// Python's default).
    ///
    /// Python: `Pool.imap(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// As [`apply_async`](PoolOf::apply_async).
    pub fn imap<A, R>(
        &self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = A>,
        chunksize: Option<NonZeroUsize>,
    ) -> Result<IMap<R>, SubmitError>
    where
        A: 'static,
        R: Send + 'static,
        B: Runs<Plain<A, R>>,
    {
        let fs = self.run::<Plain<A, R>>(
            f as usize,
            args.into_iter().collect(),
            chunksize.map_or(1, NonZeroUsize::get),
        )?;
        Ok(IMap::ordered(fs))
    }

    /// As [`imap`](PoolOf::imap), results in the order they finish.
    ///
    /// Python: `Pool.imap_unordered(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// As [`apply_async`](PoolOf::apply_async).
    pub fn imap_unordered<A, R>(
        &self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = A>,
        chunksize: Option<NonZeroUsize>,
    ) -> Result<IMap<R>, SubmitError>
    where
        A: 'static,
        R: Send + 'static,
        B: Runs<Plain<A, R>>,
    {
        let fs = self.run::<Plain<A, R>>(
            f as usize,
            args.into_iter().collect(),
            chunksize.map_or(1, NonZeroUsize::get),
        )?;
        Ok(IMap::unordered(fs))
    }

    /// A `fn` of several arguments over tuples of them, results in order.
    ///
    /// Python: `Pool.starmap(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// As [`map`](PoolOf::map).
    pub fn starmap<F, T, R>(
        &self,
        f: F,
        args: impl IntoIterator<Item = T>,
        chunksize: Option<NonZeroUsize>,
    ) -> Result<Vec<R>, FutureError>
    where
        F: StarFn<T, R>,
        R: Send + 'static,
        B: Runs<F::Caller>,
    {
        self.starmap_async(f, args, chunksize)
            .map_err(submit_failed)?
            .future
            .blocking()
            .take_result()
    }

    /// [`starmap`](PoolOf::starmap) without waiting.
    ///
    /// Python: `Pool.starmap_async(func, iterable, chunksize, callback,
    /// error_callback)`.
    ///
    /// # Errors
    /// As [`apply_async`](PoolOf::apply_async).
    pub fn starmap_async<F, T, R>(
        &self,
        f: F,
        args: impl IntoIterator<Item = T>,
        chunksize: Option<NonZeroUsize>,
    ) -> Result<AsyncResult<Vec<R>>, SubmitError>
    where
        F: StarFn<T, R>,
        R: Send + 'static,
        B: Runs<F::Caller>,
    {
        let args: Vec<T> = args.into_iter().collect();
        let cs = chunksize.map_or_else(
            || default_chunksize(args.len(), self.processes()),
            NonZeroUsize::get,
        );
        self.check_running()?;
        let fs = self.backend.run_chunks(f.addr(), args, cs)?;
        Ok(AsyncResult { future: gather(fs) })
    }

    /// No more work may be submitted; the workers finish what is queued,
    /// then exit.
    ///
    /// Python: `Pool.close()`.
    pub fn close(&self) {
        let mut st = self.state.lock();
        if *st == Run::Running {
            *st = Run::Closed;
            drop(st);
            self.backend.close();
        }
    }

    /// Stops the workers now: worker processes are killed, and work not
    /// finished fails with `BrokenProcessPool` ("the pool was terminated").
    /// Threads cannot be killed: a thread pool cancels the queued work and
    /// lets running calls finish.
    ///
    /// Python: `Pool.terminate()`.
    pub fn terminate(&self) {
        let mut st = self.state.lock();
        if matches!(*st, Run::Running | Run::Closed) {
            *st = Run::Terminated;
            drop(st);
            self.backend.terminate();
        }
    }

    /// Waits for the workers to exit, after [`close`](PoolOf::close) or
    /// [`terminate`](PoolOf::terminate).
    ///
    /// Python: `Pool.join()`.
    ///
    /// # Errors
    /// [`StillRunning`] if the pool was neither closed nor terminated
    /// (Python's `ValueError`).
    pub fn join(&self) -> Result<(), StillRunning> {
        if *self.state.lock() == Run::Running {
            return Err(StillRunning);
        }
        self.backend.join();
        *self.state.lock() = Run::Joined;
        Ok(())
    }
}

impl PoolOf<Processes> {
    /// Queues an already-encoded batch call (from a manager's client of the
    /// same binary); its future holds the worker's encoded reply.
    pub(crate) fn submit_raw(
        &self,
        call: super::super::callable::Call,
        args: Vec<u8>,
    ) -> Result<Future<Vec<u8>>, SubmitError> {
        self.check_running()?;
        let (job, future) = super::core::Raw::new(call, args);
        self.backend.core.submit(Box::new(job))?;
        Ok(future)
    }
}

impl<B: Backend> Drop for PoolOf<B> {
    /// Python's `with Pool() as p:` ends with `terminate()`: dropping a pool
    /// terminates it (killing its worker processes; unfinished work fails)
    /// and waits for them. Call [`close`](PoolOf::close) and
    /// [`join`](PoolOf::join) first to let queued work finish.
    fn drop(&mut self) {
        self.terminate();
        if can_block_here() {
            self.backend.join();
        }
    }
}

/// [`Pool::join`](PoolOf::join) before `close` or `terminate`.
///
/// Python: `ValueError: Pool is still running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StillRunning;

impl fmt::Display for StillRunning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pool is still running: close() or terminate() it before join()")
    }
}

impl std::error::Error for StillRunning {}

/// One future for the values of chunks of calls, in order; the first
/// failure to come back fails it at once (Python's `MapResult`).
fn gather<R: Send + 'static>(chunks: Vec<Future<Outcomes<R>>>) -> Future<Vec<R>> {
    let out = Future::new();
    let _ = out.set_running_or_notify_cancel();
    if chunks.is_empty() {
        let _ = out.set_result(Vec::new());
        return out;
    }
    let all = Arc::new(chunks);
    let left = Arc::new(AtomicUsize::new(all.len()));
    for f in all.iter() {
        let (out, all, left) = (out.clone(), all.clone(), left.clone());
        f.add_done_callback(move |f| {
            let failed = f.peek(|o| match o {
                None => Some(WorkError::new("CancelledError", "a chunk was cancelled")),
                Some(Err(e)) => Some(e.clone()),
                Some(Ok(outs)) => outs.iter().find_map(|r| r.as_ref().err().cloned()),
            });
            if let Some(e) = failed {
                let _ = out.set_exception(e);
            }
            if left.fetch_sub(1, Ordering::AcqRel) == 1 && !out.done() {
                let mut values = Vec::new();
                for chunk in all.iter() {
                    match chunk.blocking().take_result() {
                        Ok(outs) => values.extend(outs.into_iter().filter_map(Result::ok)),
                        Err(e) => {
                            let _ =
                                out.set_exception(WorkError::new("RuntimeError", e.to_string()));
                            return;
                        }
                    }
                }
                let _ = out.set_result(values);
            }
        });
    }
    out
}

/// The result of an `_async` call, to wait for or await.
///
/// Python: `multiprocessing.pool.AsyncResult` (`get`, `wait`, `ready`,
/// `successful`; `callback` and `error_callback` as methods here). It is a
/// [`Future`] underneath: [`future`](AsyncResult::future) to await it.
pub struct AsyncResult<R> {
    future: Future<R>,
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsyncResult").field(&self.future).finish()
    }
}

impl<R: Send + 'static> AsyncResult<R> {
    /// Blocks for the value (a clone: `get` can be called again).
    ///
    /// Python: `AsyncResult.get()`.
    ///
    /// # Errors
    /// The call's error.
    pub fn get(&self) -> Result<R, FutureError>
    where
        R: Clone,
    {
        self.future.blocking().result()
    }

    /// As [`get`](AsyncResult::get), at most `timeout`.
    ///
    /// Python: `AsyncResult.get(timeout)`.
    ///
    /// # Errors
    /// [`FutureError::Timeout`], or the call's error.
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, FutureError>
    where
        R: Clone,
    {
        self.future.blocking().result_timeout(timeout)
    }

    /// Blocks for the value and moves it out (no `Clone` needed).
    ///
    /// # Errors
    /// As [`get`](AsyncResult::get); [`FutureError::Taken`] the second time.
    pub fn take(&self) -> Result<R, FutureError> {
        self.future.blocking().take_result()
    }

    /// Blocks until the result is ready.
    ///
    /// Python: `AsyncResult.wait()`.
    pub fn wait(&self) {
        self.future.blocking().wait(None);
    }

    /// Blocks at most `timeout`; whether it is ready.
    ///
    /// Python: `AsyncResult.wait(timeout)`.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.future.blocking().wait(Some(timeout))
    }

    /// Whether the call has completed.
    ///
    /// Python: `AsyncResult.ready()`.
    pub fn ready(&self) -> bool {
        self.future.done()
    }

    /// Whether it completed without error; `None` while not ready (Python
    /// raises `ValueError` then).
    ///
    /// Python: `AsyncResult.successful()`.
    pub fn successful(&self) -> Option<bool> {
        self.ready()
            .then(|| !self.future.cancelled() && self.future.peek(|o| !matches!(o, Some(Err(_)))))
    }

    /// Runs `callback` with the value once it is there (at once if it is),
    /// before the result counts as ready; not on failure.
    ///
    /// Python: `apply_async(..., callback=...)`.
    pub fn callback(self, callback: impl FnOnce(&R) + Send + 'static) -> Self {
        self.then(move |o| {
            if let Ok(v) = o {
                callback(v);
            }
        })
    }

    /// Runs `callback` with the error if the call fails, before the result
    /// counts as ready.
    ///
    /// Python: `apply_async(..., error_callback=...)`.
    pub fn error_callback(self, callback: impl FnOnce(&WorkError) + Send + 'static) -> Self {
        self.then(move |o| {
            if let Err(e) = o {
                callback(e);
            }
        })
    }

    /// A result that becomes ready once `hook` has seen this one's outcome
    /// (Python runs callbacks before setting the result's event).
    fn then(self, hook: impl FnOnce(Result<&R, &WorkError>) + Send + 'static) -> Self {
        let future = relay(self.future, move |outcome| {
            let r = outcome.as_ref();
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(r))) {
                // As a future's callbacks: reported, and the result still
                // becomes ready.
                eprintln!("exception in a pool callback: {}", crate::panic_str(&*p));
            }
            outcome
        });
        AsyncResult { future }
    }

    /// The future underneath: `.await` it from async code.
    pub fn future(&self) -> &Future<R> {
        &self.future
    }
}

/// The results of [`imap`](PoolOf::imap) (input order) or
/// [`imap_unordered`](PoolOf::imap_unordered) (completion order): an
/// `Iterator` that blocks the thread, or
/// [`next_async`](IMap::next_async) for tasks.
///
/// Python: `multiprocessing.pool.IMapIterator` (`next(timeout)` is
/// [`next_timeout`](IMap::next_timeout)).
pub struct IMap<R> {
    futures: VecDeque<Option<Future<R>>>,
    /// Unordered: indices of finished futures, in the order they finished.
    finished: Option<SimpleQueue<usize>>,
    taken: usize,
}

impl<R> fmt::Debug for IMap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap")
            .field("left", &(self.futures.len() - self.taken))
            .field("ordered", &self.finished.is_none())
            .finish()
    }
}

impl<R: Send + 'static> IMap<R> {
    fn ordered(futures: Vec<Future<R>>) -> IMap<R> {
        IMap {
            futures: futures.into_iter().map(Some).collect(),
            finished: None,
            taken: 0,
        }
    }

    fn unordered(futures: Vec<Future<R>>) -> IMap<R> {
        let q = SimpleQueue::new();
        for (i, f) in futures.iter().enumerate() {
            let q = q.clone();
            f.add_done_callback(move |_| q.put(i));
        }
        IMap {
            futures: futures.into_iter().map(Some).collect(),
            finished: Some(q),
            taken: 0,
        }
    }

    /// The index of the next result to give, once it is done; `None` at
    /// the end or when `timeout` passed first (`Some(Err(..))` then).
    fn next_index(&mut self, timeout: Option<Duration>) -> Option<Result<usize, FutureError>> {
        if self.taken == self.futures.len() {
            return None;
        }
        match &self.finished {
            None => {
                let f = self.futures[self.taken].as_ref().expect("not taken");
                if f.blocking().wait(timeout) {
                    Some(Ok(self.taken))
                } else {
                    Some(Err(FutureError::Timeout))
                }
            }
            Some(q) => match timeout {
                None => Some(Ok(q.blocking().get())),
                Some(t) => Some(
                    q.blocking()
                        .get_timeout(t)
                        .map_err(|_| FutureError::Timeout),
                ),
            },
        }
    }

    fn take(&mut self, i: usize) -> Result<R, FutureError> {
        self.taken += 1;
        let f = self.futures[i].take().expect("each result is given once");
        f.blocking().take_result()
    }

    /// The next result, waiting at most `timeout`: `Some(Err(Timeout))` if
    /// it is not ready by then (nothing is consumed), `None` at the end.
    ///
    /// Python: `IMapIterator.next(timeout)`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, FutureError>> {
        match self.next_index(Some(timeout))? {
            Ok(i) => Some(self.take(i)),
            Err(e) => Some(Err(e)),
        }
    }

    /// The next result, for async code (`None` at the end).
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: the result stays for the next
    /// call.
    pub async fn next_async(&mut self) -> Option<Result<R, FutureError>> {
        if self.taken == self.futures.len() {
            return None;
        }
        let i = match &self.finished {
            None => {
                let f = self.futures[self.taken].clone().expect("not taken");
                f.wait_done().await;
                self.taken
            }
            Some(q) => q.get().await,
        };
        Some(self.take(i))
    }
}

impl<R: Send + 'static> Iterator for IMap<R> {
    type Item = Result<R, FutureError>;

    /// Blocks the thread for the next result.
    fn next(&mut self) -> Option<Self::Item> {
        let i = self.next_index(None)?.expect("no timeout");
        Some(self.take(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.futures.len() - self.taken;
        (n, Some(n))
    }
}
