//! The process side of both pools: worker processes, the jobs they run,
//! and one driver thread per worker in this process.
//!
//! Data and wake-ups: a submission becomes a [`Job`] (a chunk of calls with
//! one [`Future`] per call) on an in-process queue. Each driver thread owns
//! one worker process and its connection: it takes a job, claims the
//! futures that were not cancelled, sends the chunk as one frame, blocks
//! for the one reply frame, and completes the futures. The worker is a
//! [`Process`] running [`pool_worker`]: receive a call, run it, reply,
//! until the connection closes.
//!
//! Faults stay local: when the connection breaks, the driver reaps its
//! worker, fails only the job it held (naming the worker and how it
//! ended), and starts a replacement ([`OnDeath::Replace`]) or breaks the
//! pool as Python does ([`OnDeath::Break`]). A worker that died while idle
//! is noticed before the next job is sent to it, so that job is not lost.

use std::num::NonZeroU64;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::callable::{Call, Caller};
use super::super::connection::{Connection, pipe};
use super::super::context::StartMethod;
use super::super::errors::{ConnectionError, RemoteError};
use super::super::handles;
use super::super::process::{Process, ProcessHandle};
use crate::futures::{Future, SubmitError, WorkError};
use crate::io::driver::block_on_io;
use crate::queue::Queue;
use crate::threading::{Event, Semaphore};

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

/// Calls of `C` over a chunk of arguments, one future each.
pub(crate) struct Chunk<C: Caller> {
    target: usize,
    items: Vec<(Future<C::Out>, C::Arg)>,
    running: Vec<Future<C::Out>>,
}

impl<C: Caller> Chunk<C> {
    /// The job and its futures, in argument order.
    pub(crate) fn new(target: usize, args: Vec<C::Arg>) -> (Chunk<C>, Vec<Future<C::Out>>) {
        let items: Vec<_> = args.into_iter().map(|a| (Future::new(), a)).collect();
        let futures = items.iter().map(|(f, _)| f.clone()).collect();
        (
            Chunk {
                target,
                items,
                running: Vec::new(),
            },
            futures,
        )
    }
}

pub(crate) fn remote_to_work(e: RemoteError) -> WorkError {
    let w = WorkError::new(e.type_name, e.message);
    match e.backtrace {
        Some(bt) => w.with_traceback(bt),
        None => w,
    }
}

impl<C> Job for Chunk<C>
where
    C: Caller,
    C::Arg: Serialize + DeserializeOwned + Send,
    C::Out: Serialize + DeserializeOwned + Send + 'static,
{
    fn start(&mut self) -> Option<Msg> {
        let mut args = Vec::with_capacity(self.items.len());
        for (f, a) in self.items.drain(..) {
            if f.set_running_or_notify_cancel().unwrap_or(false) {
                self.running.push(f);
                args.push(a);
            }
        }
        if args.is_empty() {
            return None;
        }
        match encode_call::<C>(self.target, &args) {
            Ok(msg) => Some(msg),
            Err(err) => {
                for f in self.running.drain(..) {
                    let _ = f.set_exception(err.clone());
                }
                None
            }
        }
    }

    fn install_stopper(&self, stop: &dyn Fn() -> Box<dyn FnOnce() + Send>) {
        for f in &self.running {
            f.set_stopper(stop());
        }
    }

    fn finish(self: Box<Self>, reply: Reply) {
        match decode_outcomes::<C::Out>(reply, self.running.len()) {
            Ok(outs) => {
                for (f, out) in self.running.into_iter().zip(outs) {
                    let _ = match out {
                        Ok(v) => f.set_result(v),
                        Err(e) => f.set_exception(e),
                    };
                }
            }
            Err(e) => self.fail(e),
        }
    }

    fn fail(self: Box<Self>, error: WorkError) {
        for f in self.running.iter().chain(self.items.iter().map(|(f, _)| f)) {
            let _ = f.set_exception(error.clone());
        }
    }

    fn cancel(self: Box<Self>) {
        for (f, _) in &self.items {
            f.cancel();
        }
    }
}

/// The frame of a chunk: the batch call of `target` and the encoded
/// arguments.
fn encode_call<C>(target: usize, args: &Vec<C::Arg>) -> Result<Msg, WorkError>
where
    C: Caller,
    C::Arg: Serialize + DeserializeOwned,
    C::Out: Serialize,
{
    let (bytes, fds) = handles::collect(|| postcard::to_allocvec(args));
    match bytes {
        Ok(args) => Ok(Msg {
            call: Call::batch::<C>(target),
            args,
            fds,
        }),
        Err(e) => Err(WorkError::new(
            "EncodeError",
            format!("cannot encode the arguments: {e}"),
        )),
    }
}

/// The per-call outcomes of a worker's reply to a chunk of `n` calls.
fn decode_outcomes<T: DeserializeOwned>(
    reply: Reply,
    n: usize,
) -> Result<Vec<Result<T, WorkError>>, WorkError> {
    let (bytes, fds) = reply.map_err(remote_to_work)?;
    let outs = handles::provide(fds, || {
        postcard::from_bytes::<Vec<Result<T, RemoteError>>>(&bytes)
    })
    .map_err(|e| WorkError::new("DecodeError", format!("cannot decode the result: {e}")))?;
    if outs.len() != n {
        return Err(WorkError::new(
            "DecodeError",
            format!("{} results for {n} calls", outs.len()),
        ));
    }
    Ok(outs
        .into_iter()
        .map(|o| o.map_err(remote_to_work))
        .collect())
}

/// The outcomes of a chunk of calls, in order.
pub(crate) type Outcomes<T> = Vec<Result<T, WorkError>>;

/// Calls of `C` over a chunk of arguments with one future for the whole
/// chunk: what `Pool.map` and `Executor::map` send (no future per call).
pub(crate) struct Whole<C: Caller> {
    target: usize,
    args: Vec<C::Arg>,
    future: Future<Outcomes<C::Out>>,
}

impl<C: Caller> Whole<C> {
    pub(crate) fn new(target: usize, args: Vec<C::Arg>) -> (Whole<C>, Future<Outcomes<C::Out>>) {
        let future = Future::new();
        (
            Whole {
                target,
                args,
                future: future.clone(),
            },
            future,
        )
    }
}

impl<C> Job for Whole<C>
where
    C: Caller,
    C::Arg: Serialize + DeserializeOwned + Send,
    C::Out: Serialize + DeserializeOwned + Send + 'static,
{
    fn start(&mut self) -> Option<Msg> {
        if !self.future.set_running_or_notify_cancel().unwrap_or(false) {
            return None;
        }
        match encode_call::<C>(self.target, &self.args) {
            Ok(msg) => Some(msg),
            Err(e) => {
                let _ = self.future.set_exception(e);
                None
            }
        }
    }

    fn install_stopper(&self, stop: &dyn Fn() -> Box<dyn FnOnce() + Send>) {
        self.future.set_stopper(stop());
    }

    fn finish(self: Box<Self>, reply: Reply) {
        let _ = match decode_outcomes::<C::Out>(reply, self.args.len()) {
            Ok(outs) => self.future.set_result(outs),
            Err(e) => self.future.set_exception(e),
        };
    }

    fn fail(self: Box<Self>, error: WorkError) {
        let _ = self.future.set_exception(error);
    }

    fn cancel(self: Box<Self>) {
        self.future.cancel();
    }
}

/// A call that arrives already encoded (from a manager's client, of the
/// same binary): the batch call and its encoded `Vec` of arguments; its
/// future holds the worker's encoded reply.
pub(crate) struct Raw {
    call: Call,
    args: Option<Vec<u8>>,
    future: Future<Vec<u8>>,
}

impl Raw {
    pub(crate) fn new(call: Call, args: Vec<u8>) -> (Raw, Future<Vec<u8>>) {
        let future = Future::new();
        (
            Raw {
                call,
                args: Some(args),
                future: future.clone(),
            },
            future,
        )
    }
}

impl Job for Raw {
    fn start(&mut self) -> Option<Msg> {
        if !self.future.set_running_or_notify_cancel().unwrap_or(false) {
            return None;
        }
        Some(Msg {
            call: self.call,
            args: self.args.take().unwrap_or_default(),
            fds: Vec::new(),
        })
    }

    fn install_stopper(&self, stop: &dyn Fn() -> Box<dyn FnOnce() + Send>) {
        self.future.set_stopper(stop());
    }

    fn finish(self: Box<Self>, reply: Reply) {
        let _ = match reply {
            Ok((bytes, _fds)) => self.future.set_result(bytes),
            Err(e) => self.future.set_exception(remote_to_work(e)),
        };
    }

    fn fail(self: Box<Self>, error: WorkError) {
        let _ = self.future.set_exception(error);
    }

    fn cancel(self: Box<Self>) {
        self.future.cancel();
    }
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

#[derive(Default)]
struct State {
    shutdown: bool,
    broken: Option<String>,
    terminated: bool,
    drivers: Vec<std::thread::JoinHandle<()>>,
    slots: Vec<Arc<Slot>>,
}

/// One driver's worker, as others see it (to kill it).
#[derive(Default)]
struct Slot {
    /// The worker process now, and the number of the job it runs (0: none).
    current: Mutex<(Option<ProcessHandle>, u64)>,
    /// Set when a cancellation killed the worker on purpose.
    killed_for_cancel: AtomicBool,
}

impl Slot {
    fn kill(&self) {
        if let Some(p) = &self.current.lock().0 {
            let _ = p.kill();
        }
    }
}

/// The shared state of a process pool.
pub(crate) struct Core {
    config: Config,
    queue: Queue<Box<dyn Job>>,
    state: Mutex<State>,
    /// Drivers waiting for work (Python's `_idle_worker_semaphore`).
    idle: Semaphore,
    /// Workers started so far (for names), and that finished starting.
    started: AtomicUsize,
    ready: AtomicUsize,
    all_ready: Event,
    job_seq: AtomicU64,
}

impl Core {
    pub(crate) fn new(config: Config) -> Arc<Core> {
        let core = Arc::new(Core {
            queue: Queue::unbounded(),
            state: Mutex::new(State::default()),
            idle: Semaphore::new(0),
            started: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            all_ready: Event::new(),
            job_seq: AtomicU64::new(1),
            config,
        });
        if core.config.eager {
            for _ in 0..core.config.workers {
                core.add_driver();
            }
        }
        core
    }

    pub(crate) fn workers(&self) -> usize {
        self.config.workers
    }

    /// How many worker processes run now.
    pub(crate) fn live_workers(&self) -> usize {
        let st = self.state.lock();
        st.slots
            .iter()
            .filter(|s| s.current.lock().0.is_some())
            .count()
    }

    /// The pids of the workers running now.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let st = self.state.lock();
        st.slots
            .iter()
            .filter_map(|s| s.current.lock().0.as_ref().and_then(|p| p.pid()))
            .collect()
    }

    /// Queues a job; starts a driver if none is idle and there is room.
    pub(crate) fn submit(self: &Arc<Self>, job: Box<dyn Job>) -> Result<(), SubmitError> {
        {
            let st = self.state.lock();
            if let Some(why) = &st.broken {
                return Err(SubmitError::Broken(why.clone()));
            }
            if st.shutdown {
                return Err(SubmitError::Shutdown);
            }
        }
        if self.queue.put_nowait(job).is_err() {
            return Err(SubmitError::Shutdown);
        }
        if !self.config.eager && !self.idle.try_acquire() {
            self.add_driver();
        }
        Ok(())
    }

    fn add_driver(self: &Arc<Self>) {
        let mut st = self.state.lock();
        if st.slots.len() >= self.config.workers || st.shutdown {
            return;
        }
        let slot = Arc::new(Slot::default());
        st.slots.push(slot.clone());
        let core = self.clone();
        let n = st.slots.len();
        match std::thread::Builder::new()
            .name(format!("conex-pool-driver-{n}"))
            .spawn(move || core.drive(slot))
        {
            Ok(h) => st.drivers.push(h),
            Err(e) => {
                st.slots.pop();
                if st.slots.is_empty() {
                    drop(st);
                    self.set_broken(format!("cannot start a pool thread: {e}"));
                }
            }
        }
    }

    /// Blocks until every worker has started (and run the initializer),
    /// or the pool broke.
    pub(crate) fn wait_ready(&self) {
        self.all_ready.blocking().wait();
    }

    fn note_ready(&self) {
        if self.ready.fetch_add(1, Ordering::AcqRel) + 1 >= self.config.workers {
            self.all_ready.set();
        }
    }

    fn broken_reason(&self) -> Option<String> {
        let st = self.state.lock();
        if st.terminated {
            Some("the pool was terminated".into())
        } else {
            st.broken.clone()
        }
    }

    /// Python's broken pool: pending work fails, running work is stopped
    /// (its worker killed), later submissions are refused.
    pub(crate) fn set_broken(&self, why: String) {
        self.stop_now(&why, |st| {
            st.broken.get_or_insert(why.clone());
        });
    }

    /// Python's `Pool.terminate()`: stop now, killing the workers; work
    /// not finished fails with "the pool was terminated".
    pub(crate) fn terminate(&self) {
        self.stop_now("the pool was terminated", |st| {
            st.shutdown = true;
            st.terminated = true;
        });
    }

    /// Marks the state (`mark`), fails the queued work with `why` and kills
    /// every worker (their drivers fail what they held and end).
    fn stop_now(&self, why: &str, mark: impl FnOnce(&mut State)) {
        let slots = {
            let mut st = self.state.lock();
            mark(&mut st);
            st.slots.clone()
        };
        self.all_ready.set();
        self.queue.shutdown(false);
        while let Ok(job) = self.queue.get_nowait() {
            job.fail(broken(why));
        }
        for s in slots {
            s.kill();
        }
    }

    /// No new work; with `cancel_futures`, queued work is cancelled. The
    /// drivers finish what is queued, then close their workers.
    pub(crate) fn shutdown(&self, cancel_futures: bool) {
        self.state.lock().shutdown = true;
        if cancel_futures {
            while let Ok(job) = self.queue.get_nowait() {
                job.cancel();
            }
        }
        self.queue.shutdown(false);
    }

    /// Waits for every driver (and so every worker) to end.
    pub(crate) fn join(&self) {
        loop {
            let drivers = std::mem::take(&mut self.state.lock().drivers);
            if drivers.is_empty() {
                return;
            }
            for d in drivers {
                let _ = d.join();
            }
        }
    }

    /// A driver's life: keep a worker, feed it jobs, replace it.
    fn drive(self: Arc<Self>, slot: Arc<Slot>) {
        let mut worker: Option<Worker> = None;
        let mut first = true;
        loop {
            if let Err(why) = self.keep_worker(&slot, &mut worker) {
                self.set_broken(why);
                break;
            }
            if std::mem::take(&mut first) {
                self.note_ready();
            }
            let Some(mut job) = self.next_job() else {
                break;
            };
            // A worker that died while idle is replaced before the job
            // (which has not started) goes to it.
            if let Err(why) = self.keep_worker(&slot, &mut worker) {
                job.fail(broken(&why));
                self.set_broken(why);
                break;
            }
            let w = worker.as_mut().expect("a worker");
            let Some(msg) = job.start() else {
                self.idle.release(1).ok();
                continue;
            };
            let seq = self.job_seq.fetch_add(1, Ordering::Relaxed);
            slot.current.lock().1 = seq;
            if self.config.kill_on_cancel {
                job.install_stopper(&|| {
                    let slot = slot.clone();
                    Box::new(move || {
                        let cur = slot.current.lock();
                        if cur.1 == seq {
                            slot.killed_for_cancel.store(true, Ordering::SeqCst);
                            if let Some(p) = &cur.0 {
                                let _ = p.kill();
                            }
                        }
                    })
                });
            }
            let reply = w.exchange(msg);
            slot.current.lock().1 = 0;
            match reply {
                Ok(reply) => {
                    job.finish(reply);
                    w.tasks += 1;
                    if self.config.max_tasks.is_some_and(|m| w.tasks >= m.get()) {
                        // Retired: a fresh worker takes the next job.
                        worker.take().expect("a worker").retire();
                        slot.current.lock().0 = None;
                    }
                }
                Err(_) => {
                    let w = worker.take().expect("a worker");
                    let for_cancel = slot.killed_for_cancel.swap(false, Ordering::SeqCst);
                    let who = w.describe();
                    let code = w.reap();
                    slot.current.lock().0 = None;
                    let why = match self.broken_reason() {
                        Some(why) => why,
                        None if for_cancel => {
                            format!("worker {who} was killed to cancel another call of its chunk")
                        }
                        None => format!("worker {who} {}", ended(code)),
                    };
                    job.fail(broken(&why));
                    if self.config.on_death == OnDeath::Break && !for_cancel {
                        self.set_broken(format!(
                            "A process in the process pool was terminated abruptly: {why}"
                        ));
                        break;
                    }
                    if self.broken_reason().is_some() {
                        break;
                    }
                }
            }
            self.idle.release(1).ok();
        }
        if let Some(w) = worker {
            w.retire();
        }
        slot.current.lock().0 = None;
    }

    /// The next job, or `None` once the queue is shut down and empty. A
    /// caller that submits one call at a time submits the next right after
    /// its result: a short spin takes it without a sleep and wake-up.
    fn next_job(&self) -> Option<Box<dyn Job>> {
        let mut backoff = crate::wait::Backoff::with_yields(QUEUE_YIELDS);
        while !backoff.is_completed() {
            match self.queue.get_nowait() {
                Ok(job) => return Some(job),
                Err(crate::queue::GetError::ShutDown) => return None,
                Err(_) => backoff.snooze(),
            }
        }
        self.queue.blocking().get().ok()
    }

    /// Makes sure `worker` is a live worker: reaps one that died, starts
    /// one where there is none.
    fn keep_worker(&self, slot: &Slot, worker: &mut Option<Worker>) -> Result<(), String> {
        if worker.as_ref().is_some_and(Worker::gone) {
            worker.take().expect("a worker").reap();
        }
        if worker.is_none() {
            *worker = Some(self.start_worker(slot)?);
        }
        Ok(())
    }

    /// Starts a worker process and runs the initializer in it.
    fn start_worker(&self, slot: &Slot) -> Result<Worker, String> {
        let (mine, theirs) = pipe(true).map_err(|e| format!("cannot make a pipe: {e}"))?;
        let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let kind = match self.config.method {
            StartMethod::Spawn => "SpawnPoolWorker",
            StartMethod::Forkserver => "ForkServerPoolWorker",
            StartMethod::Fork => "ForkPoolWorker",
        };
        let p: Process<()> = Process::builder()
            .name(format!("{kind}-{n}"))
            .daemon(true)
            .start_method(self.config.method)
            .build(pool_worker, theirs);
        p.start()
            .map_err(|e| format!("cannot start a worker process: {e}"))?;
        let w = Worker {
            process: (*p).clone(),
            conn: mine,
            tasks: 0,
        };
        slot.current.lock().0 = Some(w.process.clone());
        if let Some(init) = &self.config.initializer {
            let (mut job, fut) = init();
            let outcome = match job.start() {
                Some(msg) => match w.exchange(msg) {
                    Ok(reply) => {
                        job.finish(reply);
                        fut.blocking().take_result().map_err(|e| e.to_string())
                    }
                    Err(e) => Err(format!("the worker died: {e}")),
                },
                None => Ok(()),
            };
            if let Err(e) = outcome {
                slot.current.lock().0 = None;
                let _ = w.process.kill();
                w.reap();
                return Err(format!(
                    "A process in the process pool failed its initializer, the pool is not \
                     usable anymore ({e})"
                ));
            }
        }
        Ok(w)
    }
}

/// Yields between polls of the queue before a driver sleeps on it.
const QUEUE_YIELDS: u32 = 48;

fn broken(why: &str) -> WorkError {
    WorkError::new("BrokenProcessPool", why)
}

/// A worker process and this process's end of its connection.
struct Worker {
    process: ProcessHandle,
    conn: Connection,
    tasks: u64,
}

impl Worker {
    /// Whether it died (its end of the connection closed) while idle.
    fn gone(&self) -> bool {
        !matches!(self.conn.try_poll(), Ok(false))
    }

    fn exchange(&self, msg: Msg) -> Result<Reply, ConnectionError> {
        block_on_io(self.conn.send_with_fds(&(msg.call, msg.args), msg.fds))?;
        let frame = block_on_io(self.conn.recv_frame())?;
        let reply: Result<Vec<u8>, RemoteError> = postcard::from_bytes(&frame.bytes)
            .map_err(|e| ConnectionError::Decode(e.to_string()))?;
        Ok(reply.map(|b| (b, frame.fds)))
    }

    fn describe(&self) -> String {
        format!(
            "{} (pid {})",
            self.process.name(),
            self.process.pid().unwrap_or(0)
        )
    }

    /// Closes its connection (it exits on its own) and waits for it.
    fn retire(self) {
        self.conn.close();
        let _ = self.process.blocking().join();
    }

    /// Kills what is left of it and waits; its exit code.
    fn reap(self) -> Option<i32> {
        self.conn.close();
        if self
            .process
            .blocking()
            .join_timeout(std::time::Duration::from_secs(1))
            .ok()
            != Some(true)
        {
            let _ = self.process.kill();
            let _ = self.process.blocking().join();
        }
        self.process.exitcode()
    }
}

/// How a worker ended, in words.
fn ended(code: Option<i32>) -> String {
    match code {
        Some(c) if c < 0 => {
            let name = match -c {
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGBUS => " (SIGBUS)",
                libc::SIGINT => " (SIGINT)",
                _ => "",
            };
            format!("was killed by signal {}{name} while running this call", -c)
        }
        Some(c) => format!("exited with code {c} while running this call"),
        None => "ended while running this call".into(),
    }
}

/// A pool worker's loop, in the worker process: receive a call, run it,
/// reply; return (and exit) when the pool closes the connection.
fn pool_worker(conn: Connection) {
    while let Ok(frame) = block_on_io(conn.recv_frame()) {
        let reply: (Result<Vec<u8>, RemoteError>, Vec<OwnedFd>) =
            match postcard::from_bytes::<(Call, Vec<u8>)>(&frame.bytes) {
                Ok((call, args)) => {
                    // SAFETY: the pool sends calls made by `Call::batch` to a
                    // worker whose handshake proved it is this same binary.
                    match unsafe { call.run(&args, frame.fds) } {
                        super::super::callable::Outcome::Returned(b, fds) => (Ok(b), fds),
                        super::super::callable::Outcome::Panicked(e) => (Err(e), Vec::new()),
                    }
                }
                Err(e) => (
                    Err(RemoteError {
                        type_name: "DecodeError".into(),
                        message: format!("a malformed call: {e}"),
                        backtrace: None,
                    }),
                    Vec::new(),
                ),
            };
        if block_on_io(conn.send_with_fds(&reply.0, reply.1)).is_err() {
            return;
        }
    }
}
