//! The process side of both pools: worker processes, the jobs they run,
//! and one driver thread per worker in this process.
//!
//! Data and wake-ups: a submission becomes a [`Job`] (a chunk of calls with
//! one [`Future`] per call) on an in-process queue. Each driver thread owns
//! one worker process and its connection: it takes a job, claims the
//! futures that were not cancelled, sends the chunk as one frame, blocks
//! for the one reply frame, and completes the futures. The worker is a
//! [`Process`](super::super::process::Process) running
//! [`pool_worker`](worker::pool_worker): receive a call, run it, reply,
//! until the connection closes.
//!
//! Faults stay local: when the connection breaks, the driver reaps its
//! worker, fails only the job it held (naming the worker and how it
//! ended), and starts a replacement ([`OnDeath::Replace`]) or breaks the
//! pool as Python does ([`OnDeath::Break`]). A worker that died while idle
//! is noticed before the next job is sent to it, so that job is not lost.
//!
//! Here: the [`Job`] kinds (`jobs`), the shared state and its bookkeeping
//! (`state`), a driver's loop (`driver`), a worker process (`worker`), and
//! the typed reasons a pool breaks (`broken`).

use std::num::NonZeroU64;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::futures::{Future, WorkError};
use crate::multiprocessing::callable::Call;
use crate::multiprocessing::context::StartMethod;
use crate::multiprocessing::errors::RemoteError;

mod broken;
mod driver;
mod jobs;
mod state;
mod worker;

pub(crate) use jobs::{Chunk, Outcomes, Raw, Whole, remote_to_work};
pub(crate) use state::Core;

/// What a pool does when a worker process dies while running work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDeath {
    /// Fail only the work that worker held (with an error naming the
    /// worker and how it ended), start a replacement, and go on: the
    /// default.
    #[default]
    Replace,
    /// Python's behaviour: the pool is broken; everything pending or
    /// running fails with `BrokenProcessPool` and later submissions are
    /// refused.
    Break,
}

/// An encoded call: what one frame to a worker carries.
pub(crate) struct Msg {
    call: Call,
    args: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// A worker's reply: the encoded per-call outcomes with their handles, or
/// the error of the chunk as a whole.
type Reply = Result<(Vec<u8>, Vec<OwnedFd>), RemoteError>;

/// Submitted work, type-erased for the queue and the drivers.
pub(crate) trait Job: Send {
    /// Claims the calls whose futures were not cancelled (they are running
    /// from here) and encodes them; `None` if none is left.
    fn start(&mut self) -> Option<Msg>;
    /// Lets the running futures kill the worker when cancelled.
    fn install_stopper(&self, stop: &dyn Fn() -> Box<dyn FnOnce() + Send>);
    /// Completes the running futures from the worker's reply.
    fn finish(self: Box<Self>, reply: Reply);
    /// Fails every future not yet done.
    fn fail(self: Box<Self>, error: WorkError);
    /// Cancels a job that never started.
    fn cancel(self: Box<Self>);
}

/// Makes the initializer's job for a new worker, and its future.
pub(crate) type Initializer = Arc<dyn Fn() -> (Box<dyn Job>, Future<()>) + Send + Sync>;

/// How a pool of processes is made.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) method: StartMethod,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) max_tasks: Option<NonZeroU64>,
    pub(crate) on_death: OnDeath,
    pub(crate) kill_on_cancel: bool,
    /// Start every worker now (`Pool`), or one per submission while none is
    /// idle (`ProcessPoolExecutor`, as Python 3.9+).
    pub(crate) eager: bool,
}
