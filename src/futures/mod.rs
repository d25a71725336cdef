//! Python's `concurrent.futures`: futures that tasks await and threads
//! block on, executors that run work and hand them out, and waiting on
//! many at once.
//!
//! | Python | conex |
//! |---|---|
//! | `Future`: `cancel`, `cancelled`, `running`, `done`, `result(timeout)`, `exception(timeout)`, `add_done_callback` | [`Future`] (async methods, and [`Future::blocking`]) |
//! | `Future.set_running_or_notify_cancel`, `set_result`, `set_exception` | same names |
//! | `Executor`: `submit(fn, *args)`, `map`, `shutdown(wait, cancel_futures)` | [`Executor`], [`MapOptions`] (`timeout`, `buffersize`, `chunksize`) |
//! | `ThreadPoolExecutor(max_workers, thread_name_prefix, initializer)` | [`ThreadPoolExecutor`], [`ThreadPoolBuilder`] |
//! | (asyncio's side) | [`TaskExecutor`]: async work as tasks, same `Future`, same trait |
//! | `ProcessPoolExecutor(max_workers, mp_context, initializer, initargs, max_tasks_per_child)`, `BrokenProcessPool` | [`ProcessPoolExecutor`], [`ProcessPoolBuilder`], [`OnDeath`] (with the `multiprocessing` feature) |
//! | `wait(fs, timeout, return_when)`, `FIRST_COMPLETED`, `FIRST_EXCEPTION`, `ALL_COMPLETED` | [`wait`], [`wait_blocking`], [`ReturnWhen`] |
//! | `as_completed(fs, timeout)` | [`as_completed`] (a `Stream`), [`as_completed_blocking`] (an `Iterator`) |
//! | `CancelledError`, `TimeoutError`, `InvalidStateError`, `BrokenExecutor`, the work's exception | [`FutureError`], [`InvalidState`], [`SubmitError`], [`WorkError`] |
//!
//! # How to choose
//! Blocking work (CPU loops, blocking I/O): [`ThreadPoolExecutor`]. Async
//! work with a concurrency limit: [`TaskExecutor`]. Code generic over
//! [`Executor`] runs on either (and on the process pool) unchanged.
//!
//! Work runs in a copy of the submitter's context (contextvars); an `Err`
//! from fallible work and a panic both become the future's error, keeping
//! the type name and message.

mod errors;
mod executor;
mod future;
mod task_pool;
mod thread_pool;
mod threadsafe;
mod waiting;

#[cfg(all(feature = "multiprocessing", unix))]
pub use crate::multiprocessing::{OnDeath, ProcessPoolBuilder, ProcessPoolExecutor};
#[cfg(all(feature = "multiprocessing", unix))]
pub(crate) use errors::describe_error;
pub use errors::{FutureError, InvalidState, SubmitError, Timeout, WorkError, ZeroWorkers};
#[cfg(all(feature = "multiprocessing", unix))]
pub(crate) use executor::inherent_shutdown;
pub use executor::{Executor, MapOptions, MapResults, MapStream};
pub use future::{BlockingFuture, Future};
pub use task_pool::TaskExecutor;
#[cfg(all(feature = "multiprocessing", unix))]
pub(crate) use thread_pool::can_block_here;
pub use thread_pool::{ThreadPoolBuilder, ThreadPoolExecutor};
pub use threadsafe::run_coroutine_threadsafe;
pub use waiting::{
    ReturnWhen, Unfinished, as_completed, as_completed_blocking, wait, wait_blocking,
};
