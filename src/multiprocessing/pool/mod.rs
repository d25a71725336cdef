//! Process pools: Python's `multiprocessing.Pool`,
//! `concurrent.futures.ProcessPoolExecutor` and `multiprocessing.dummy`.
//!
//! Both pools share one engine: each worker process has a driver thread
//! here that sends it a chunk of calls as one frame and waits for the one
//! reply frame; a worker that dies fails only the calls it held (the error
//! names it and the signal) and is replaced.

mod api;
mod backend;
pub(crate) mod core;
mod executor;
mod imap;
mod result;

pub use self::core::OnDeath;
pub use api::{PoolBuilder, PoolOf, StillRunning};
pub use backend::{Backend, Processes, Runs, Threads};
pub use executor::{ProcessPoolBuilder, ProcessPoolExecutor};
pub use imap::{IMap, IMapStream};
pub use result::AsyncResult;
