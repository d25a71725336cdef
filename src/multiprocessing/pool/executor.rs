//! `ProcessPoolExecutor`: the `Executor` of `concurrent.futures` on worker
//! processes.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::callable::{Fallible, Plain};
use super::super::context::{Context, StartMethod, cpu_count, get_start_method};
use super::api::initializer;
use super::backend::submit_chunks;
use super::core::{Config, Core, Initializer, OnDeath, Outcomes, Whole};
use crate::futures::{Executor, Future, SubmitError, ZeroWorkers, can_block_here};

/// Shuts the pool down when the last handle goes.
struct Handle(Arc<Core>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.shutdown(false);
        if can_block_here() {
            self.0.join();
        }
    }
}

/// A pool of worker processes that runs submitted `fn`s and answers with
/// [`Future`]s.
///
/// Python: `concurrent.futures.ProcessPoolExecutor`. The same
/// [`Executor`] trait as [`ThreadPoolExecutor`](crate::futures::ThreadPoolExecutor):
/// `submit(f, arg)` with a plain `fn` on serde arguments, `map` (with
/// `chunksize`: each chunk is one message to a worker, and `buffersize`:
/// the bounded look-ahead), `shutdown(wait, cancel_futures)`. Workers
/// start on demand, one per submission while none is idle, up to
/// `max_workers` (default [`cpu_count`]); each is a process of this
/// binary (so `main` must call [`init`](crate::multiprocessing::init)
/// first thing).
///
/// # When a worker dies
/// Python breaks the whole pool (`BrokenProcessPool` for everything). Here
/// a worker killed or exiting mid-call fails only the calls it held, with
/// a `BrokenProcessPool` error naming the worker, its pid and the signal or
/// exit code; a replacement starts and the rest of the work completes.
/// Python's behaviour is [`OnDeath::Break`]. A failing initializer breaks
/// the pool either way (a replacement would fail again).
///
/// # Cancelling running work
/// [`Future::cancel`] does not stop a running call (Python's rule) unless
/// the pool is built with [`kill_on_cancel`](ProcessPoolBuilder::kill_on_cancel):
/// then it kills the worker running it (the future is cancelled, other
/// calls of the same chunk fail, a replacement starts).
///
/// Dropping the last handle shuts the pool down and waits for the work it
/// holds (Python's `with executor:`).
///
/// ```no_run
/// use conex::futures::{Executor, MapOptions, ProcessPoolExecutor};
///
/// fn is_prime(n: u64) -> bool {
///     n > 1 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
/// }
///
/// fn main() {
///     conex::multiprocessing::init(); // first thing: workers divert here
///     let pool = ProcessPoolExecutor::new(2).unwrap();
///     let f = pool.submit(is_prime, 112_272_535_095_293).unwrap();
///     assert!(f.blocking().result().unwrap());
///     let opts = MapOptions::new().chunksize(std::num::NonZeroUsize::new(100));
///     let primes = pool.map(is_prime, 0..1000u64, opts).unwrap().filter(|p| *p.as_ref().unwrap()).count();
///     assert_eq!(primes, 168);
/// }
/// ```
#[derive(Clone)]
pub struct ProcessPoolExecutor {
    handle: Arc<Handle>,
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.core().workers())
            .field("workers", &self.core().live_workers())
            .finish()
    }
}

/// Builds a [`ProcessPoolExecutor`].
///
/// Python: the arguments of `ProcessPoolExecutor(max_workers=None,
/// mp_context=None, initializer=None, initargs=(), max_tasks_per_child=None)`,
/// plus what a worker's death does and whether cancelling kills.
#[derive(Default)]
pub struct ProcessPoolBuilder {
    max_workers: Option<usize>,
    method: Option<StartMethod>,
    initializer: Option<Initializer>,
    max_tasks: Option<NonZeroU64>,
    on_death: OnDeath,
    kill_on_cancel: bool,
}

impl fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("method", &self.method)
            .field("initializer", &self.initializer.is_some())
            .field("max_tasks_per_child", &self.max_tasks)
            .field("on_death", &self.on_death)
            .field("kill_on_cancel", &self.kill_on_cancel)
            .finish()
    }
}

impl ProcessPoolBuilder {
    /// The most worker processes (default [`cpu_count`]).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// How workers are started (Python's `mp_context`).
    pub fn mp_context(mut self, ctx: Context) -> Self {
        self.method = Some(ctx.start_method());
        self
    }

    /// Runs `f(args)` in each worker before it takes work. If it panics,
    /// the pool is broken: pending and later work fails with
    /// `BrokenProcessPool` (Python's `initializer`, `initargs`).
    pub fn initializer<A>(mut self, f: fn(A), args: A) -> Self
    where
        A: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.initializer = Some(initializer(f, args));
        self
    }

    /// A worker is replaced by a fresh process after this many calls
    /// (Python's `max_tasks_per_child`).
    pub fn max_tasks_per_child(mut self, n: NonZeroU64) -> Self {
        self.max_tasks = Some(n);
        self
    }

    /// What a worker's death does (default [`OnDeath::Replace`]).
    pub fn on_worker_death(mut self, policy: OnDeath) -> Self {
        self.on_death = policy;
        self
    }

    /// Whether [`Future::cancel`] on a running call kills the worker
    /// running it (default `false`: running calls cannot be cancelled, as
    /// in Python). This includes the cancellations `map` makes when its
    /// results are dropped early or a call fails: the chunks still running
    /// are stopped then, not left to finish.
    pub fn kill_on_cancel(mut self, yes: bool) -> Self {
        self.kill_on_cancel = yes;
        self
    }

    /// The pool (its workers start with the first submissions).
    ///
    /// # Errors
    /// [`ZeroWorkers`] for `max_workers(0)`.
    pub fn build(self) -> Result<ProcessPoolExecutor, ZeroWorkers> {
        let workers = match self.max_workers {
            Some(0) => return Err(ZeroWorkers),
            Some(n) => n,
            None => cpu_count(),
        };
        Ok(ProcessPoolExecutor {
            handle: Arc::new(Handle(Core::new(Config {
                workers,
                method: self.method.unwrap_or_else(get_start_method),
                initializer: self.initializer,
                max_tasks: self.max_tasks,
                on_death: self.on_death,
                kill_on_cancel: self.kill_on_cancel,
                eager: false,
            }))),
        })
    }
}

crate::futures::inherent_shutdown!(ProcessPoolExecutor);

impl ProcessPoolExecutor {
    /// A pool of at most `max_workers` processes.
    ///
    /// Python: `ProcessPoolExecutor(max_workers)`.
    ///
    /// # Errors
    /// [`ZeroWorkers`] for 0.
    pub fn new(max_workers: usize) -> Result<ProcessPoolExecutor, ZeroWorkers> {
        ProcessPoolExecutor::builder()
            .max_workers(max_workers)
            .build()
    }

    /// A builder.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    fn core(&self) -> &Arc<Core> {
        &self.handle.0
    }

    /// The most worker processes.
    pub fn max_workers(&self) -> usize {
        self.core().workers()
    }

    /// The pids of the worker processes running now (Python's
    /// `_processes` keys).
    pub fn pids(&self) -> Vec<u32> {
        self.core().pids()
    }
}

impl<A, R> Executor<A, R> for ProcessPoolExecutor
where
    A: Serialize + DeserializeOwned + Send + 'static,
    R: Serialize + DeserializeOwned + Send + 'static,
{
    fn submit(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError> {
        let mut fs = submit_chunks::<Plain<A, R>>(self.core(), f as usize, vec![arg], 1)?;
        Ok(fs.remove(0))
    }

    fn submit_fallible<E>(&self, f: fn(A) -> Result<R, E>, arg: A) -> Result<Future<R>, SubmitError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut fs = submit_chunks::<Fallible<A, R, E>>(self.core(), f as usize, vec![arg], 1)?;
        Ok(fs.remove(0))
    }

    fn submit_chunk(
        &self,
        f: fn(A) -> R,
        args: Vec<A>,
    ) -> Result<Future<Outcomes<R>>, SubmitError> {
        let (job, future) = Whole::<Plain<A, R>>::new(f as usize, args);
        self.core().submit(Box::new(job))?;
        Ok(future)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.core().shutdown(cancel_futures);
        if wait {
            self.core().join();
        }
    }
}
