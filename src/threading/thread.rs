//! `Thread`: Python's `threading.Thread`, backed by a tokio task (the
//! default) or by an OS thread (for blocking work), with one handle API.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::FutureExt;

use super::current::{self, CURRENT_TASK, IdentMap};
use super::hooks::{self, ExceptHookArgs};
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

enum Outcome {
    Returned,
    Panicked(String),
    Cancelled,
}

type Launcher = Box<dyn FnOnce(Thread) -> std::io::Result<()> + Send>;

pub(crate) struct Core {
    pub(crate) ident: u64,
    pub(crate) kind: Kind,
    name: Mutex<Option<String>>,
    daemon: AtomicBool,
    state: AtomicU8,
    native_id: AtomicU64,
    done: Flag,
    panic_message: OnceLock<String>,
    launcher: Mutex<Option<Launcher>>,
    locals: Mutex<IdentMap<Box<dyn Any + Send>>>,
}

impl Core {
    /// This thread's `Local` values.
    pub(crate) fn locals(&self) -> std::sync::MutexGuard<'_, IdentMap<Box<dyn Any + Send>>> {
        lock(&self.locals)
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
/// assert_eq!(blocking.join().await.unwrap().as_deref(), Some("Thread-2"));
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

    fn core(&self, kind: Kind) -> Thread {
        let ident = current::next_ident();
        Thread {
            core: Arc::new(Core {
                ident,
                kind,
                name: Mutex::new(self.name.clone()),
                daemon: AtomicBool::new(self.daemon.unwrap_or_else(current::current_daemon)),
                state: AtomicU8::new(NEW),
                native_id: AtomicU64::new(0),
                done: Flag::new(false),
                panic_message: OnceLock::new(),
                launcher: Mutex::new(None),
                locals: Mutex::new(IdentMap::default()),
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
        *lock(&thread.core.launcher) = Some(Box::new(move |t: Thread| {
            launch_task(t, future, Some(s2));
            Ok(())
        }));
        JoinHandle {
            thread,
            out: Output::Slot(slot),
        }
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
        let task = launch_task(thread.clone(), future, None);
        JoinHandle {
            thread,
            out: Output::Task(task),
        }
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
        *lock(&thread.core.launcher) = Some(Box::new(move |t: Thread| launch_os(t, stack, f, s2)));
        JoinHandle {
            thread,
            out: Output::Slot(slot),
        }
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Slot<T> = Arc<Mutex<Option<T>>>;

/// Where a JoinHandle finds the target's value.
enum Output<T> {
    /// A task spawned at once: the value comes back through tokio's handle
    /// (`None` if the target panicked).
    Task(tokio::task::JoinHandle<Option<T>>),
    /// A deferred start or an OS thread: the target stores it here.
    Slot(Slot<T>),
}

/// Spawns the task of a task-backed thread. With a `slot` the value goes
/// there, otherwise it is the task's output.
fn launch_task<F>(
    thread: Thread,
    future: F,
    slot: Option<Slot<F::Output>>,
) -> tokio::task::JoinHandle<Option<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let t2 = thread.clone();
    let body = async move {
        let mut finish = FinishGuard(Some(t2.clone()));
        let result = CURRENT_TASK
            .scope(t2.clone(), async {
                AssertUnwindSafe(async {
                    hooks::run_start_hooks(&t2);
                    future.await
                })
                .catch_unwind()
                .await
            })
            .await;
        let (outcome, value) = match result {
            Ok(v) => match &slot {
                Some(slot) => {
                    *lock(slot) = Some(v);
                    (Outcome::Returned, None)
                }
                None => (Outcome::Returned, Some(v)),
            },
            Err(payload) => (report_panic(&t2, payload), None),
        };
        finish.finish(outcome);
        value
    };
    current::runtime_handle().spawn(body)
}

fn launch_os<F, T>(thread: Thread, stack: Option<usize>, f: F, slot: Slot<T>) -> std::io::Result<()>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let mut b = std::thread::Builder::new().name(thread.name());
    if let Some(size) = stack.or_else(current::default_stack_size) {
        b = b.stack_size(size);
    }
    // Tasks spawned from the thread land on the runtime it was started from.
    let rt = tokio::runtime::Handle::try_current().ok();
    let t2 = thread.clone();
    let starter = std::thread::current();
    b.spawn(move || {
        let _rt = rt.as_ref().map(|h| h.enter());
        t2.core.native_id.store(current::get_native_id(), Release);
        starter.unpark();
        let mut finish = FinishGuard(Some(t2.clone()));
        current::set_current_os(Some(t2.clone()));
        let result = catch_unwind(AssertUnwindSafe(|| {
            hooks::run_start_hooks(&t2);
            f()
        }));
        let outcome = match result {
            Ok(v) => {
                *lock(&slot) = Some(v);
                Outcome::Returned
            }
            Err(payload) => report_panic(&t2, payload),
        };
        finish.finish(outcome);
        current::set_current_os(None);
    })?;
    // As Python's start(), return once the thread runs (its native id is
    // known then).
    while thread.core.native_id.load(Acquire) == 0 {
        std::thread::park();
    }
    Ok(())
}

fn report_panic(thread: &Thread, payload: Box<dyn Any + Send>) -> Outcome {
    hooks::excepthook(&ExceptHookArgs::new(thread, &*payload));
    Outcome::Panicked(hooks::panic_message(&*payload).to_owned())
}

/// Marks the thread finished when its body ends, or when its task is
/// dropped before that (runtime shutdown, abort).
struct FinishGuard(Option<Thread>);

impl FinishGuard {
    fn finish(&mut self, outcome: Outcome) {
        if let Some(t) = self.0.take() {
            t.finish(outcome);
        }
    }
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
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
        thread.core.native_id.store(native_id, Release);
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
        let launcher = lock(&self.core.launcher)
            .take()
            .ok_or(StartError::AlreadyStarted)?;
        self.mark_started();
        launcher(self.clone()).map_err(|e| {
            self.finish(Outcome::Cancelled);
            StartError::Spawn(e)
        })
    }

    fn finish(&self, outcome: Outcome) {
        let state = match outcome {
            Outcome::Returned => RETURNED,
            Outcome::Panicked(msg) => {
                let _ = self.core.panic_message.set(msg);
                PANICKED
            }
            Outcome::Cancelled => CANCELLED,
        };
        self.core.state.store(state, Release);
        current::unregister(self);
        // Python deletes a thread's local data when it ends.
        let locals = std::mem::take(&mut *self.core.locals());
        drop(locals);
        self.core.done.set();
    }

    /// The thread's name: not unique, changeable at any time.
    ///
    /// Python: `Thread.name`.
    pub fn name(&self) -> String {
        match &*lock(&self.core.name) {
            Some(n) => n.clone(),
            None => format!("Thread-{}", self.core.ident),
        }
    }

    /// Renames the thread (an OS thread keeps the name it started with at
    /// the OS level).
    ///
    /// Python: assigning `Thread.name`.
    pub fn set_name(&self, name: impl Into<String>) {
        *lock(&self.core.name) = Some(name.into());
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

    fn check_join(&self) -> Result<(), JoinError> {
        if self.core.state.load(Acquire) == NEW {
            return Err(JoinError::NotStarted);
        }
        if self.is_alive() && current::is_current(self.core.ident) {
            return Err(JoinError::CurrentThread);
        }
        Ok(())
    }

    fn outcome(&self, finished: bool) -> Result<(), JoinError> {
        if !finished {
            return Err(JoinError::Timeout);
        }
        match self.core.state.load(Acquire) {
            RETURNED => Ok(()),
            PANICKED => Err(JoinError::Panicked(
                self.core.panic_message.get().cloned().unwrap_or_default(),
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
    /// [`JoinError::NotStarted`], [`JoinError::CurrentThread`] (checked at
    /// once), [`JoinError::Panicked`] and [`JoinError::Cancelled`] for how
    /// the target ended.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: the thread runs on.
    pub fn join(&self) -> impl Future<Output = Result<(), JoinError>> + Send + '_ {
        let checked = self.check_join();
        async move {
            checked?;
            WaitFuture::new(self.core.done.wait()).await;
            self.outcome(true)
        }
    }

    /// Waits at most `timeout` (tokio's clock) for the thread to end.
    ///
    /// Python: `Thread.join(timeout)`.
    ///
    /// # Errors
    /// As [`join`](Thread::join), plus [`JoinError::Timeout`] if the
    /// thread is still alive.
    ///
    /// # Cancel safety
    /// As [`join`](Thread::join).
    pub fn join_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), JoinError>> + Send + '_ {
        let checked = self.check_join();
        async move {
            checked?;
            let finished = WaitFuture::timeout(self.core.done.wait(), timeout).await;
            self.outcome(finished)
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
    pub fn join(&self) -> Result<(), JoinError> {
        self.thread.check_join()?;
        block_on(self.thread.core.done.wait(), None);
        self.thread.outcome(true)
    }

    /// Blocks at most `timeout` for the thread to end.
    ///
    /// # Errors
    /// As [`Thread::join_timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinError> {
        self.thread.check_join()?;
        let finished = block_on(self.thread.core.done.wait(), std_deadline(timeout));
        self.thread.outcome(finished)
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

/// The owner's handle of a [`Thread`] it spawned: the thread (through
/// `Deref`) plus the target's return value.
///
/// Python has no such object (a `Thread` discards its target's result);
/// this is what a Rust user expects from `spawn`.
pub struct JoinHandle<T> {
    thread: Thread,
    out: Output<T>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JoinHandle").field(&self.thread).finish()
    }
}

impl<T> Deref for JoinHandle<T> {
    type Target = Thread;

    fn deref(&self) -> &Thread {
        &self.thread
    }
}

impl<T: Send + 'static> JoinHandle<T> {
    /// The thread.
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// The value of a thread known to have finished.
    fn take(self) -> Result<T, JoinError> {
        self.thread.outcome(true)?;
        let value = match self.out {
            Output::Slot(slot) => lock(&slot).take(),
            Output::Task(mut task) => loop {
                // The task completes in the very poll that marked the thread
                // finished: this waits for the end of that poll at most.
                match (&mut task).now_or_never() {
                    Some(v) => break v.ok().flatten(),
                    None => std::thread::yield_now(),
                }
            },
        };
        Ok(value.expect("a returned thread stores its value"))
    }

    /// Waits until the thread ends and returns its target's value.
    ///
    /// # Errors
    /// As [`Thread::join`].
    ///
    /// # Cancel safety
    /// Dropping the future drops the handle (the value is then discarded
    /// when the thread ends, as a detached thread's is); the thread runs on.
    pub fn join(self) -> impl Future<Output = Result<T, JoinError>> + Send {
        let checked = self.thread.check_join();
        async move {
            checked?;
            match self.out {
                Output::Task(task) => match task.await {
                    Ok(Some(v)) => Ok(v),
                    // Panicked (the outcome says so) or dropped.
                    _ => self.thread.outcome(true).and(Err(JoinError::Cancelled)),
                },
                Output::Slot(_) => {
                    WaitFuture::new(self.thread.core.done.wait()).await;
                    self.take()
                }
            }
        }
    }

    /// The blocking facade: join from an OS thread and get the value.
    pub fn blocking(self) -> BlockingJoinHandle<T> {
        BlockingJoinHandle { handle: self }
    }
}

/// The blocking facade of a [`JoinHandle`]. To wait with a timeout, use
/// [`thread`](Self::thread)`().blocking().join_timeout(..)` first: the
/// value stays here until [`join`](Self::join).
#[derive(Debug)]
pub struct BlockingJoinHandle<T> {
    handle: JoinHandle<T>,
}

impl<T: Send + 'static> BlockingJoinHandle<T> {
    /// Blocks until the thread ends and returns its target's value.
    ///
    /// # Errors
    /// As [`Thread::join`].
    pub fn join(self) -> Result<T, JoinError> {
        self.handle.thread.blocking().join()?;
        self.handle.take()
    }

    /// The thread.
    pub fn thread(&self) -> &Thread {
        &self.handle.thread
    }
}
