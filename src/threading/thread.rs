//! `Thread`: Python's `threading.Thread`, backed by a tokio task (the
//! default) or by an OS thread (for blocking work), with one handle API.
//! How a thread runs is in `run.rs`, its owner's handle in `join_handle.rs`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::current::{self, IdentMap};
use super::join_handle::{JoinHandle, Output};
use super::run::{self, Outcome};
use super::{AlreadyStarted, JoinError, StartError};
use crate::wait::flag::Flag;
use crate::wait::{WaitFuture, block_on, std_deadline};

// The thread's life, in one atomic: not started, alive, then how it ended.
const NEW: u8 = 0;
const ALIVE: u8 = 1;
const RETURNED: u8 = 2;
const PANICKED: u8 = 3;
const CANCELLED: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A tokio task.
    Task,
    /// An OS thread started by conex.
    Os,
    /// The program's main thread.
    Main,
    /// An OS thread conex did not start (Python's "dummy thread").
    Dummy,
}

pub(crate) type Launcher = Box<dyn FnOnce(Thread) -> std::io::Result<()> + Send>;

/// A thread's shared state, kept small: a million task-backed threads are
/// a million of these.
pub(crate) struct Core {
    pub(crate) ident: u64,
    native_id: AtomicU64,
    /// The thread's place in the registry (`u32::MAX`: not registered).
    pub(crate) reg_slot: AtomicU32,
    pub(crate) kind: Kind,
    daemon: AtomicBool,
    state: AtomicU8,
    done: Flag,
    extra: Mutex<Extra>,
}

/// What most threads never use.
#[derive(Default)]
struct Extra {
    name: Option<Box<str>>,
    launcher: Option<Launcher>,
    panic_message: Option<Box<str>>,
    locals: Option<Box<IdentMap<Box<dyn Any + Send>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Core {
    fn extra(&self) -> MutexGuard<'_, Extra> {
        lock(&self.extra)
    }

    /// Takes this thread's value of the `Local` with id `id` out.
    pub(crate) fn take_local(&self, id: u64) -> Option<Box<dyn Any + Send>> {
        self.extra().locals.as_mut()?.remove(&id)
    }

    /// Stores a `Local` value; returns the one it displaced.
    pub(crate) fn put_local(&self, id: u64, v: Box<dyn Any + Send>) -> Option<Box<dyn Any + Send>> {
        self.extra()
            .locals
            .get_or_insert_with(Default::default)
            .insert(id, v)
    }

    pub(crate) fn set_native_id(&self, id: u64) {
        self.native_id.store(id, Release);
    }

    pub(crate) fn native_id_known(&self) -> bool {
        self.native_id.load(Acquire) != 0
    }
}

/// A thread of execution: a tokio task by default, a dedicated OS thread
/// for blocking work, the same handle either way.
///
/// Python: `threading.Thread`. Clones are the same thread (as Python
/// references are). [`Thread::spawn`] and [`Thread::spawn_blocking`] start
/// one and return a [`JoinHandle`] that also yields the target's return
/// value (Python discards it); [`Thread::builder`] sets the name, the daemon
/// flag and the stack size, and can build a thread to [`start`](Thread::start)
/// later, as Python's two steps do.
///
/// Task-backed threads run on the current tokio runtime, or, called from
/// outside any runtime, on a multi-thread runtime conex starts once for the
/// process. A panic in the target goes to the [excepthook](super::excepthook)
/// and makes `join` return [`JoinError::Panicked`].
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::threading::{self, Thread};
///
/// let worker = Thread::builder().name("crawler").spawn(async {
///     assert_eq!(threading::current_thread().name(), "crawler");
///     6 * 7
/// });
/// assert_eq!(worker.join().await.unwrap(), 42);
///
/// let blocking = Thread::spawn_blocking(|| std::thread::current().name().map(str::to_owned));
/// assert!(blocking.native_id().is_some());
/// let os_name = blocking.join().await.unwrap().unwrap();
/// assert!(os_name.starts_with("Thread-")); // the default name, also at the OS level
/// # }
/// ```
#[derive(Clone)]
pub struct Thread {
    pub(crate) core: Arc<Core>,
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.core.state.load(Acquire) {
            NEW => "initial",
            ALIVE => "started",
            _ => "stopped",
        };
        f.debug_struct("Thread")
            .field("name", &self.name())
            .field("ident", &self.core.ident)
            .field("state", &state)
            .field("daemon", &self.daemon())
            .field("backing", &self.core.kind)
            .finish()
    }
}

impl PartialEq for Thread {
    fn eq(&self, other: &Thread) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }
}

impl Eq for Thread {}

impl std::hash::Hash for Thread {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.core.ident.hash(state);
    }
}

/// Builds a [`Thread`]: name, daemon flag, stack size (OS threads).
///
/// Python: the `name` and `daemon` arguments of `threading.Thread(...)`.
#[derive(Debug, Default, Clone)]
pub struct ThreadBuilder {
    name: Option<String>,
    daemon: Option<bool>,
    stack_size: Option<usize>,
}

impl ThreadBuilder {
    /// The thread's name (default `Thread-N`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the thread is a daemon. The default is the creating Thread's
    /// flag (the main thread is not a daemon); a Thread created by code conex
    /// did not start (a raw tokio task, a foreign OS thread) is not a daemon,
    /// where Python would make it one. [`join_non_daemon`](super::join_non_daemon)
    /// waits for the non-daemon ones.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// The stack size of an OS-thread-backed thread (default:
    /// [`stack_size`](super::stack_size), else the platform's). Ignored for
    /// task-backed threads.
    pub fn stack_size(mut self, size: usize) -> Self {
        self.stack_size = Some(size);
        self
    }

    fn core(self, kind: Kind) -> Thread {
        Thread {
            core: Arc::new(Core {
                ident: current::next_ident(),
                native_id: AtomicU64::new(0),
                reg_slot: AtomicU32::new(u32::MAX),
                kind,
                daemon: AtomicBool::new(self.daemon.unwrap_or_else(current::current_daemon)),
                state: AtomicU8::new(NEW),
                done: Flag::new(false),
                extra: Mutex::new(Extra {
                    name: self.name.map(String::into_boxed_str),
                    ..Extra::default()
                }),
            }),
        }
    }

    /// A task-backed thread running `future`, not started yet: call
    /// [`start`](Thread::start).
    pub fn build<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let thread = self.core(Kind::Task);
        let slot = Arc::new(Mutex::new(None));
        let s2 = slot.clone();
        thread.core.extra().launcher = Some(Box::new(move |t: Thread| {
            run::launch_task(t, future, Some(s2));
            Ok(())
        }));
        JoinHandle::new(thread, Output::Slot(slot))
    }

    /// Starts a task-backed thread running `future`.
    ///
    /// Python: `threading.Thread(target=...).start()`.
    pub fn spawn<F>(self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let thread = self.core(Kind::Task);
        thread.mark_started();
        let task = run::launch_task(thread.clone(), future, None);
        JoinHandle::new(thread, Output::Task(task))
    }

    /// An OS-thread-backed thread running `f`, not started yet.
    pub fn build_blocking<F, T>(self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let stack = self.stack_size;
        let thread = self.core(Kind::Os);
        let slot = Arc::new(Mutex::new(None));
        let s2 = slot.clone();
        thread.core.extra().launcher =
            Some(Box::new(move |t: Thread| run::launch_os(t, stack, f, s2)));
        JoinHandle::new(thread, Output::Slot(slot))
    }

    /// Starts an OS-thread-backed thread running `f`: a dedicated thread
    /// (not tokio's blocking pool), for work that blocks.
    ///
    /// # Errors
    /// [`StartError::Spawn`] if the operating system refuses a thread.
    pub fn spawn_blocking<F, T>(self, f: F) -> Result<JoinHandle<T>, StartError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let handle = self.build_blocking(f);
        handle.start()?;
        Ok(handle)
    }
}

impl Thread {
    /// A builder: name, daemon flag, stack size, and start now or later.
    pub fn builder() -> ThreadBuilder {
        ThreadBuilder::default()
    }

    /// Starts a task-backed thread running `future`.
    ///
    /// Python: `threading.Thread(target=...).start()`.
    pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        ThreadBuilder::default().spawn(future)
    }

    /// Starts an OS-thread-backed thread running `f`.
    ///
    /// # Panics
    /// If the operating system refuses a thread, as `std::thread::spawn`
    /// does (use [`ThreadBuilder::spawn_blocking`] for the error).
    #[track_caller]
    pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match ThreadBuilder::default().spawn_blocking(f) {
            Ok(h) => h,
            Err(e) => panic!("conex: failed to spawn an OS thread: {e}"),
        }
    }

    /// A Thread object for an OS thread that is already running (the main
    /// thread, a dummy); `native_id` 0 when unknown.
    pub(crate) fn new_running(kind: Kind, name: String, daemon: bool, native_id: u64) -> Thread {
        let thread = ThreadBuilder {
            name: Some(name),
            daemon: Some(daemon),
            stack_size: None,
        }
        .core(kind);
        thread.core.state.store(ALIVE, Release);
        thread.core.set_native_id(native_id);
        thread
    }

    fn mark_started(&self) {
        self.core.state.store(ALIVE, Release);
        current::register(self);
    }

    /// Starts a thread built with [`ThreadBuilder::build`] or
    /// [`ThreadBuilder::build_blocking`].
    ///
    /// Python: `Thread.start()`.
    ///
    /// # Errors
    /// [`StartError::AlreadyStarted`] the second time;
    /// [`StartError::Spawn`] if the operating system refuses a thread (the
    /// thread then counts as finished, with [`JoinError::Cancelled`]).
    pub fn start(&self) -> Result<(), StartError> {
        let launcher = self
            .core
            .extra()
            .launcher
            .take()
            .ok_or(StartError::AlreadyStarted)?;
        self.mark_started();
        launcher(self.clone()).map_err(|e| {
            self.finish(Outcome::Cancelled);
            StartError::Spawn(e)
        })
    }

    /// Records how the target ended and releases the joiners.
    pub(crate) fn finish(&self, outcome: Outcome) {
        let (state, message) = match outcome {
            Outcome::Returned => (RETURNED, None),
            Outcome::Panicked(msg) => (PANICKED, Some(msg.into_boxed_str())),
            Outcome::Cancelled => (CANCELLED, None),
        };
        // Python deletes a thread's local data when it ends: drop the values
        // outside the lock (their destructors are user code).
        let locals = {
            let mut extra = self.core.extra();
            extra.panic_message = message;
            extra.locals.take()
        };
        drop(locals);
        self.core.state.store(state, Release);
        current::unregister(self);
        self.core.done.set();
    }

    /// The thread's name: not unique, changeable at any time.
    ///
    /// Python: `Thread.name`.
    pub fn name(&self) -> String {
        match &self.core.extra().name {
            Some(n) => n.to_string(),
            None => format!("Thread-{}", self.core.ident),
        }
    }

    /// Renames the thread (an OS thread keeps the name it started with at
    /// the OS level).
    ///
    /// Python: assigning `Thread.name`.
    pub fn set_name(&self, name: impl Into<String>) {
        self.core.extra().name = Some(name.into().into_boxed_str());
    }

    /// The thread's identifier once started (`None` before): a non-zero
    /// number, unique for the life of the process (never reused).
    ///
    /// Python: `Thread.ident`.
    pub fn ident(&self) -> Option<u64> {
        (self.core.state.load(Acquire) != NEW).then_some(self.core.ident)
    }

    /// The OS thread id (TID) of an OS-thread-backed thread, once it runs.
    /// `None` for a task-backed thread: a task moves between OS threads.
    ///
    /// Python: `Thread.native_id`.
    pub fn native_id(&self) -> Option<u64> {
        match self.core.native_id.load(Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    /// Whether this is a daemon thread.
    ///
    /// Python: `Thread.daemon`.
    pub fn daemon(&self) -> bool {
        self.core.daemon.load(Relaxed)
    }

    /// Sets the daemon flag.
    ///
    /// Python: assigning `Thread.daemon`.
    ///
    /// # Errors
    /// [`AlreadyStarted`] once the thread has started.
    pub fn set_daemon(&self, daemon: bool) -> Result<(), AlreadyStarted> {
        if self.core.state.load(Acquire) != NEW {
            return Err(AlreadyStarted);
        }
        self.core.daemon.store(daemon, Relaxed);
        Ok(())
    }

    /// Whether the thread has started and its target has not finished.
    ///
    /// Python: `Thread.is_alive()`.
    pub fn is_alive(&self) -> bool {
        self.core.state.load(Acquire) == ALIVE
    }

    /// Whether the thread is backed by a tokio task (rather than an OS
    /// thread).
    pub fn is_task(&self) -> bool {
        self.core.kind == Kind::Task
    }

    pub(crate) fn check_join(&self) -> Result<(), JoinError> {
        if self.core.state.load(Acquire) == NEW {
            return Err(JoinError::NotStarted);
        }
        if self.core.kind == Kind::Dummy {
            return Err(JoinError::DummyThread);
        }
        if self.is_alive() && current::is_current(self.core.ident) {
            return Err(JoinError::CurrentThread);
        }
        Ok(())
    }

    /// How a finished thread ended.
    pub(crate) fn outcome(&self) -> Result<(), JoinError> {
        match self.core.state.load(Acquire) {
            RETURNED => Ok(()),
            PANICKED => Err(JoinError::Panicked(
                self.core
                    .extra()
                    .panic_message
                    .as_deref()
                    .unwrap_or_default()
                    .to_owned(),
            )),
            CANCELLED => Err(JoinError::Cancelled),
            _ => unreachable!("a finished thread has an outcome"),
        }
    }

    /// Waits until the thread ends.
    ///
    /// Python: `Thread.join()`.
    ///
    /// # Errors
    /// [`JoinError::NotStarted`], [`JoinError::CurrentThread`],
    /// [`JoinError::DummyThread`] (checked at once), [`JoinError::Panicked`]
    /// and [`JoinError::Cancelled`] for how the target ended.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: the thread runs on.
    pub fn join(&self) -> impl Future<Output = Result<(), JoinError>> + Send + '_ {
        let checked = self.check_join();
        async move {
            checked?;
            self.wait_done().await;
            self.outcome()
        }
    }

    /// Waits for the end of the thread (no checks).
    pub(crate) fn wait_done(&self) -> impl Future<Output = bool> + Send + '_ {
        WaitFuture::new(self.core.done.wait())
    }

    /// Waits at most `timeout` (tokio's clock) for the thread to end:
    /// `Ok(true)` if it ended, `Ok(false)` if it is still alive. Python:
    /// `Thread.join(timeout)` (which returns `None` and leaves the caller to
    /// ask `is_alive()`; the flag is that answer, as every conex
    /// `join_timeout` gives it).
    ///
    /// # Errors
    /// As [`join`](Thread::join), for a thread that ended.
    ///
    /// # Cancel safety
    /// As [`join`](Thread::join).
    pub fn join_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<bool, JoinError>> + Send + '_ {
        let checked = self.check_join();
        async move {
            checked?;
            if WaitFuture::timeout(self.core.done.wait(), timeout).await {
                self.outcome().map(|()| true)
            } else {
                Ok(false)
            }
        }
    }

    /// The blocking facade: join from an OS thread.
    pub fn blocking(&self) -> BlockingThread<'_> {
        BlockingThread { thread: self }
    }
}

/// The blocking facade of a [`Thread`]; see
/// [`BlockingLock`](super::BlockingLock) for where it may block.
#[derive(Clone, Copy)]
pub struct BlockingThread<'a> {
    thread: &'a Thread,
}

impl fmt::Debug for BlockingThread<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingThread").field(self.thread).finish()
    }
}

impl BlockingThread<'_> {
    /// Blocks until the thread ends.
    ///
    /// # Errors
    /// As [`Thread::join`].
    #[track_caller]
    pub fn join(&self) -> Result<(), JoinError> {
        self.thread.check_join()?;
        block_on(self.thread.core.done.wait(), None);
        self.thread.outcome()
    }

    /// Blocks at most `timeout` for the thread to end: whether it ended.
    ///
    /// # Errors
    /// As [`Thread::join_timeout`].
    #[track_caller]
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, JoinError> {
        self.thread.check_join()?;
        if block_on(self.thread.core.done.wait(), std_deadline(timeout)) {
            self.thread.outcome().map(|()| true)
        } else {
            Ok(false)
        }
    }

    /// Starts the thread.
    ///
    /// # Errors
    /// As [`Thread::start`].
    pub fn start(&self) -> Result<(), StartError> {
        self.thread.start()
    }

    /// Whether the thread is alive.
    pub fn is_alive(&self) -> bool {
        self.thread.is_alive()
    }
}
