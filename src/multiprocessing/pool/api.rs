//! `Pool` (processes) and `dummy::Pool` (threads): one API over two
//! backends.

use std::fmt;
use std::num::NonZeroU64;
use std::num::NonZeroUsize;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::callable::{Caller, Plain, StarFn};
use super::super::context::Context;
use super::backend::{Backend, PoolConfig, Processes, Runs};
use super::core::{Chunk, Initializer, Job, OnDeath};
use super::imap::IMap;
use super::result::{AsyncResult, gather};
use crate::futures::{Future, FutureError, SubmitError, WorkError, ZeroWorkers, can_block_here};

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
    /// The number of workers (default
    /// [`cpu_count`](super::super::context::cpu_count)).
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

    /// A pool of `processes` workers (`None`:
    /// [`cpu_count`](super::super::context::cpu_count)).
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
