//! `Process`: a plain `fn` run in a child process.

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::callable::Call;
use super::connection::{Connection, pipe};
use super::context::{
    StartMethod, check_not_uninitialised_child, get_executable, get_start_method, me,
};
use super::errors::{ProcessError, StartError};
use super::handles;
use super::launch;
use super::listener::Waitable;
use super::started::{Launched, Waiter};
use super::worker::{Done, Hello, PROTOCOL, Start};
use crate::threading::Event;

/// A result on the wire: the encoded value and its OS handles.
type Encoded = (Vec<u8>, Vec<OwnedFd>);

type Encoder = Box<dyn FnOnce() -> Result<(Vec<u8>, Vec<OwnedFd>), String> + Send>;

enum State {
    New { call: Call, encode: Encoder },
    Running,
    Closed,
}

/// How the process ended, once known.
#[derive(Default)]
struct Ending {
    exitcode: Option<i32>,
    outcome: Option<Result<Encoded, ProcessError>>,
}

pub(crate) struct Core {
    name: Mutex<String>,
    daemon: AtomicBool,
    authkey: Mutex<Vec<u8>>,
    method: StartMethod,
    /// The file `spawn` runs (default: [`get_executable`] at start).
    executable: Option<std::path::PathBuf>,
    state: Mutex<State>,
    pid: AtomicU32,
    pidfd: Mutex<Option<OwnedFd>>,
    /// Set once the exit status (and any result) is known.
    done: Event,
    ending: Mutex<Ending>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Started, not yet reaped: what `active_children` lists.
static CHILDREN: Mutex<Vec<Weak<Core>>> = Mutex::new(Vec::new());

/// A child process running a plain `fn` on serde arguments.
///
/// Python: `multiprocessing.Process(target, args, name, daemon)`. The
/// target is a `fn` item (no captures) taking one argument (a tuple for
/// several) that is `Serialize + DeserializeOwned`; the child is this same
/// binary, diverted by [`init`](super::init) into running it. The value it
/// returns comes back through [`result`](Process::result) (Python discards
/// it); a panic comes back as a [`RemoteError`](super::RemoteError) with the child's
/// backtrace. A cheap `Clone` handle; everything but `result` is on
/// [`ProcessHandle`], which it derefs to.
///
/// | Python | here |
/// |---|---|
/// | `Process(target=f, args=(a, b), name=..., daemon=...)` | [`Process::new`]`(f, (a, b))`, [`Process::builder`] |
/// | `start()`, `join(timeout)`, `is_alive()` | [`start`](ProcessHandle::start), [`join`](ProcessHandle::join), [`join_timeout`](ProcessHandle::join_timeout), [`is_alive`](ProcessHandle::is_alive) |
/// | `name`, `daemon`, `pid`, `exitcode`, `authkey`, `sentinel` | same names |
/// | `terminate()`, `kill()`, `close()` | same names |
///
/// ```no_run
/// use conex::multiprocessing::Process;
///
/// fn add((a, b): (i64, i64)) -> i64 {
///     a + b
/// }
///
/// // `init()` runs before the runtime's threads start: a child diverts to
/// // `add` there.
/// #[conex::main]
/// async fn main() {
///     let p = Process::new(add, (2, 40));
///     p.start().unwrap();
///     p.join().await.unwrap();
///     assert_eq!(p.exitcode(), Some(0));
///     assert_eq!(p.result().await.unwrap(), 42);
/// }
/// ```
pub struct Process<R = ()> {
    handle: ProcessHandle,
    _result: PhantomData<fn() -> R>,
}

impl<R> Clone for Process<R> {
    fn clone(&self) -> Self {
        Process {
            handle: self.handle.clone(),
            _result: PhantomData,
        }
    }
}

impl<R> std::ops::Deref for Process<R> {
    type Target = ProcessHandle;

    fn deref(&self) -> &ProcessHandle {
        &self.handle
    }
}

impl<R> fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}

/// Options for a [`Process`]: name, daemon flag, start method, executable.
#[derive(Debug, Default, Clone)]
pub struct ProcessBuilder {
    name: Option<String>,
    daemon: Option<bool>,
    method: Option<StartMethod>,
    executable: Option<std::path::PathBuf>,
}

impl ProcessBuilder {
    /// The process's name (default `Process-N`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether it is a daemon (default: the current process's flag).
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// How it is started (default: [`get_start_method`]).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// The executable `spawn` runs for it (default: [`get_executable`]);
    /// see [`set_executable`](super::set_executable) for what it may be.
    /// The other start methods do not run an executable and ignore it.
    pub fn executable(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.executable = Some(path.into());
        self
    }

    /// The process, not yet started.
    pub fn build<A, R>(self, target: fn(A) -> R, args: A) -> Process<R>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
        let encode: Encoder = Box::new(move || {
            let (bytes, fds) = handles::collect(|| postcard::to_allocvec(&args));
            bytes.map(|b| (b, fds)).map_err(|e| e.to_string())
        });
        let core = Core {
            name: Mutex::new(self.name.unwrap_or_else(|| format!("Process-{n}"))),
            daemon: AtomicBool::new(self.daemon.unwrap_or_else(|| me().info.daemon)),
            authkey: Mutex::new(me().authkey.clone()),
            method: self.method.unwrap_or_else(get_start_method),
            executable: self.executable,
            state: Mutex::new(State::New {
                call: Call::of(target),
                encode,
            }),
            pid: AtomicU32::new(0),
            pidfd: Mutex::new(None),
            done: Event::new(),
            ending: Mutex::new(Ending::default()),
        };
        Process {
            handle: ProcessHandle {
                core: Arc::new(core),
            },
            _result: PhantomData,
        }
    }
}

impl Process<()> {
    /// Options before building: `Process::builder().name("w").build(f, args)`.
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder::default()
    }
}

impl<R: DeserializeOwned> Process<R> {
    /// A process that will run `target(args)`. Python:
    /// `Process(target=target, args=args)`.
    pub fn new<A>(target: fn(A) -> R, args: A) -> Process<R>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
    {
        ProcessBuilder::default().build(target, args)
    }

    /// Waits for the process to end and takes what its target returned.
    /// Not in Python (whose `Process` discards the value).
    ///
    /// # Errors
    /// [`ProcessError::Panicked`] with the remote message and backtrace,
    /// [`ProcessError::Exited`] if it ended without returning (exit code,
    /// or `-N` for a signal), `ResultTaken` the second time, `NotStarted`,
    /// `Start` if it never started.
    ///
    /// # Cancel safety
    /// Nothing is lost: a dropped wait leaves the result in place.
    pub async fn result(&self) -> Result<R, ProcessError> {
        self.join().await?;
        self.take_result()
    }

    fn take_result(&self) -> Result<R, ProcessError> {
        let mut e = lock(&self.core.ending);
        match e.outcome.take() {
            None => Err(ProcessError::ResultTaken),
            Some(Err(err)) => {
                // Keep reporting how it ended.
                let again = match &err {
                    ProcessError::Exited(c) => Some(ProcessError::Exited(*c)),
                    ProcessError::Panicked(r) => Some(ProcessError::Panicked(r.clone())),
                    _ => None,
                };
                e.outcome = again.map(Err);
                Err(err)
            }
            Some(Ok((bytes, fds))) => {
                drop(e);
                handles::provide(fds, || postcard::from_bytes(&bytes))
                    .map_err(|err| ProcessError::Decode(err.to_string()))
            }
        }
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingProcess<'_, R> {
        BlockingProcess { p: self }
    }
}

/// Everything about a [`Process`] but its result type: what
/// [`active_children`] lists.
#[derive(Clone)]
pub struct ProcessHandle {
    core: Arc<Core>,
}

impl ProcessHandle {
    /// Its name. Python: `Process.name`.
    pub fn name(&self) -> String {
        lock(&self.core.name).clone()
    }

    /// Renames it. Python: `Process.name = ...`.
    pub fn set_name(&self, name: impl Into<String>) {
        *lock(&self.core.name) = name.into();
    }

    /// Whether it is a daemon. Python: `Process.daemon`.
    pub fn daemon(&self) -> bool {
        self.core.daemon.load(Ordering::Relaxed)
    }

    /// Sets the daemon flag; only before `start` (Python asserts the
    /// same). Returns whether it was set.
    pub fn set_daemon(&self, daemon: bool) -> bool {
        if !matches!(*lock(&self.core.state), State::New { .. }) {
            return false;
        }
        self.core.daemon.store(daemon, Ordering::Relaxed);
        true
    }

    /// The auth key the child inherits (this process's by default).
    /// Python: `Process.authkey`.
    pub fn authkey(&self) -> Vec<u8> {
        lock(&self.core.authkey).clone()
    }

    /// Sets the auth key the child inherits, before `start`.
    pub fn set_authkey(&self, key: &[u8]) {
        *lock(&self.core.authkey) = key.to_vec();
    }

    /// Its start method.
    pub fn start_method(&self) -> StartMethod {
        self.core.method
    }

    /// Its process id once started. Python: `Process.pid`.
    pub fn pid(&self) -> Option<u32> {
        match self.core.pid.load(Ordering::Acquire) {
            0 => None,
            p => Some(p),
        }
    }

    /// Its exit code once it has ended: 0, the code it exited with, 1
    /// after a panic, `-N` if signal `N` ended it. Python:
    /// `Process.exitcode`.
    pub fn exitcode(&self) -> Option<i32> {
        lock(&self.core.ending).exitcode
    }

    /// Whether it was started and has not ended. Python:
    /// `Process.is_alive()`.
    pub fn is_alive(&self) -> bool {
        matches!(*lock(&self.core.state), State::Running) && !self.core.done.is_set()
    }

    /// Starts the child. Python: `Process.start()`.
    ///
    /// # Errors
    /// `AlreadyStarted`, `Closed`; `Start` when the OS refuses, the start
    /// method is not possible (fork with threads running; spawn or
    /// forkserver in a program whose `main` skipped [`init`](super::init)),
    /// the arguments do not encode, or this is a daemon. A child that
    /// starts but fails its handshake (a different binary) is reported by
    /// `join` / `result`.
    pub fn start(&self) -> Result<(), ProcessError> {
        check_not_uninitialised_child();
        let (call, encode) = {
            let mut st = lock(&self.core.state);
            match std::mem::replace(&mut *st, State::Running) {
                State::New { call, encode } => (call, encode),
                State::Running => return Err(ProcessError::AlreadyStarted),
                State::Closed => {
                    *st = State::Closed;
                    return Err(ProcessError::Closed);
                }
            }
        };
        let fail = |e: ProcessError| {
            *lock(&self.core.state) = State::Closed;
            Err(e)
        };
        if me().info.daemon {
            return fail(StartError::DaemonChildren.into());
        }
        let (args, fds) = match encode() {
            Ok(v) => v,
            Err(m) => {
                return fail(ProcessError::Start(StartError::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("cannot encode the arguments: {m}"),
                ))));
            }
        };
        let (ours, theirs) = match pipe(true) {
            Ok(p) => p,
            Err(e) => return fail(StartError::Io(std::io::Error::other(e)).into()),
        };
        let exe = self.core.executable.clone().unwrap_or_else(get_executable);
        let Launched { pid, pidfd, waiter } =
            match launch::launch(self.core.method, &exe, theirs, &ours) {
                Ok(l) => l,
                Err(e) => return fail(e.into()),
            };
        self.core.pid.store(pid, Ordering::Release);
        *lock(&self.core.pidfd) = pidfd;
        {
            let mut children = lock(&CHILDREN);
            children.retain(|w| w.upgrade().is_some_and(|c| !c.done.is_set()));
            children.push(Arc::downgrade(&self.core));
        }
        let start = Start {
            call,
            name: self.name(),
            daemon: self.daemon(),
            authkey: self.authkey(),
            parent: me().info.clone(),
            start_method: get_start_method(),
            args,
        };
        let core = self.core.clone();
        let span = crate::span!(
            "process",
            name = %start.name,
            pid,
            start_method = ?self.core.method
        );
        let monitor = monitor(core, ours, waiter, start, fds, exe);
        crate::runtime::own_runtime().spawn(crate::in_span(monitor, span));
        Ok(())
    }

    /// Waits until the process has ended (and its result, if any, has
    /// arrived). Python: `Process.join()`.
    ///
    /// # Errors
    /// `NotStarted`; `JoinSelf`; `Closed`.
    ///
    /// # Cancel safety
    /// Nothing is lost.
    pub async fn join(&self) -> Result<(), ProcessError> {
        self.check_joinable()?;
        self.core.done.wait().await;
        Ok(())
    }

    /// [`join`](ProcessHandle::join) for at most `timeout`; returns whether
    /// the process has ended. Python: `Process.join(timeout)` (then
    /// `exitcode` is `None` if it has not).
    ///
    /// # Cancel safety
    /// Nothing is lost.
    pub async fn join_timeout(&self, timeout: Duration) -> Result<bool, ProcessError> {
        self.check_joinable()?;
        Ok(self.core.done.wait_timeout(timeout).await)
    }

    fn check_joinable(&self) -> Result<(), ProcessError> {
        match *lock(&self.core.state) {
            State::New { .. } => Err(ProcessError::NotStarted),
            State::Closed if !self.core.done.is_set() => Err(ProcessError::Closed),
            _ if self.pid() == Some(std::process::id()) => Err(ProcessError::JoinSelf),
            _ => Ok(()),
        }
    }

    /// Sends `sig` to the child if it is still running (never to a
    /// recycled pid: a pidfd is used where the OS has them).
    pub fn send_signal(&self, sig: i32) -> std::io::Result<()> {
        if self.core.done.is_set() || !matches!(*lock(&self.core.state), State::Running) {
            return Ok(());
        }
        if let Some(fd) = lock(&self.core.pidfd).as_ref() {
            return launch::pidfd_signal(fd, sig);
        }
        match self.pid() {
            Some(pid) => {
                // The child is not reaped yet (`done` is set after
                // reaping), so its pid is still its own.
                if let Err(e) = crate::sys::kill(pid, sig) {
                    if e.raw_os_error() != Some(libc::ESRCH) {
                        return Err(e);
                    }
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// SIGTERM; the exit code becomes `-15`. Python: `Process.terminate()`.
    pub fn terminate(&self) -> std::io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// SIGKILL; the exit code becomes `-9`. Python: `Process.kill()`.
    pub fn kill(&self) -> std::io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }

    /// Releases what the object holds. Python: `Process.close()`.
    ///
    /// # Errors
    /// [`ProcessError::StillRunning`] while it runs (Python's `ValueError`).
    pub fn close(&self) -> Result<(), ProcessError> {
        let mut st = lock(&self.core.state);
        if matches!(*st, State::Running) && !self.core.done.is_set() {
            return Err(ProcessError::StillRunning);
        }
        *st = State::Closed;
        *lock(&self.core.pidfd) = None;
        Ok(())
    }

    /// Something to [`wait`](super::wait) on with connections: ready when
    /// the process has ended. Python: `Process.sentinel`.
    ///
    /// # Errors
    /// `NotStarted`.
    pub fn sentinel(&self) -> Result<Sentinel, ProcessError> {
        self.check_joinable()?;
        Ok(Sentinel {
            core: self.core.clone(),
        })
    }

    /// The blocking facade of the waiting calls (a [`Process`] has its
    /// own [`blocking`](Process::blocking), which also gives the result).
    pub fn blocking(&self) -> BlockingProcessHandle<'_> {
        BlockingProcessHandle { h: self }
    }
}

impl fmt::Debug for ProcessHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name())
            .field("pid", &self.pid())
            .field("daemon", &self.daemon())
            .field("exitcode", &self.exitcode())
            .finish()
    }
}

/// The child processes of this one that are still running. Python:
/// `multiprocessing.active_children()`.
pub fn active_children() -> Vec<ProcessHandle> {
    let mut children = lock(&CHILDREN);
    children.retain(|w| w.upgrade().is_some_and(|c| !c.done.is_set()));
    children
        .iter()
        .filter_map(Weak::upgrade)
        .map(|core| ProcessHandle { core })
        .collect()
}

/// Ready when its process has ended: see [`ProcessHandle::sentinel`].
pub struct Sentinel {
    core: Arc<Core>,
}

impl Waitable for Sentinel {
    fn ready(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(self.core.done.wait())
    }
}

impl fmt::Debug for Sentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sentinel")
            .field("pid", &self.core.pid)
            .finish()
    }
}

/// The life of a started child, on conex's runtime: the handshake, the
/// start message, the result, the exit status.
async fn monitor(
    core: Arc<Core>,
    conn: Connection,
    mut waiter: Waiter,
    start: Start,
    fds: Vec<OwnedFd>,
    exe: std::path::PathBuf,
) {
    crate::event!(debug, "process started");
    let outcome = talk(&conn, start, fds, &exe).await;
    let outcome = match outcome {
        Ok(o) => Some(o),
        Err(e) => {
            // A failed handshake: the child must not go on.
            if matches!(e, ProcessError::Start(_)) {
                waiter.kill();
            }
            Some(Err(e))
        }
    };
    drop(conn);
    let status = waiter.wait().await;
    let code = match status {
        Ok(s) => crate::io::child::returncode(s),
        Err(_) => -1,
    };
    let outcome = match outcome {
        Some(Err(ProcessError::Exited(_))) | None => Some(Err(ProcessError::Exited(code))),
        // Killed before it could say hello (a kill right after start):
        // the signal is the story, not the handshake.
        Some(Err(ProcessError::Start(StartError::NoHandshake(m))))
            if code < 0 && m == EXITED_FIRST =>
        {
            Some(Err(ProcessError::Exited(code)))
        }
        o => o,
    };
    crate::event!(
        info,
        name = %lock(&core.name),
        pid = core.pid.load(Ordering::Acquire),
        exitcode = code,
        "process exited"
    );
    {
        let mut e = lock(&core.ending);
        e.exitcode = Some(code);
        e.outcome = outcome;
    }
    core.done.set();
}

const EXITED_FIRST: &str = "it exited first";

async fn talk(
    conn: &Connection,
    start: Start,
    fds: Vec<OwnedFd>,
    exe: &std::path::Path,
) -> Result<Result<Encoded, ProcessError>, ProcessError> {
    let no_handshake = |m: String| ProcessError::Start(StartError::NoHandshake(m));
    let hello =
        crate::io::driver::within(Some(Duration::from_secs(60)), conn.recv::<Hello>()).await;
    let hello = match hello {
        None => return Err(no_handshake("no answer in 60 s".into())),
        Some(Err(e)) if e.is_eof() => return Err(no_handshake(EXITED_FIRST.into())),
        Some(Err(e)) => return Err(no_handshake(e.to_string())),
        Some(Ok(h)) => h,
    };
    if hello.protocol != PROTOCOL
        || !super::callable::Identity::current().accepts(&hello.identity, exe)
    {
        return Err(ProcessError::Start(StartError::DifferentBinary));
    }
    if conn.send_with_fds(&start, fds).await.is_err() {
        return Ok(Err(ProcessError::Exited(0)));
    }
    let frame = match conn.recv_frame().await {
        Ok(f) => f,
        // Ended without a word: the exit status tells how.
        Err(_) => return Ok(Err(ProcessError::Exited(0))),
    };
    let done: Done = match postcard::from_bytes(&frame.bytes) {
        Ok(d) => d,
        Err(e) => return Ok(Err(ProcessError::Decode(e.to_string()))),
    };
    Ok(match done {
        Done::Returned(bytes) => Ok((bytes, frame.fds)),
        Done::Panicked(e) => Err(ProcessError::Panicked(e)),
    })
}

/// The blocking facade of a [`Process`].
pub struct BlockingProcess<'a, R> {
    p: &'a Process<R>,
}

impl<R: DeserializeOwned> BlockingProcess<'_, R> {
    /// [`ProcessHandle::join`], blocking.
    pub fn join(&self) -> Result<(), ProcessError> {
        self.p.handle.blocking().join()
    }

    /// [`ProcessHandle::join_timeout`], blocking.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, ProcessError> {
        self.p.handle.blocking().join_timeout(timeout)
    }

    /// [`Process::result`], blocking.
    pub fn result(&self) -> Result<R, ProcessError> {
        self.join()?;
        self.p.take_result()
    }
}

impl<R> fmt::Debug for BlockingProcess<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingProcess")
            .field(&self.p.handle)
            .finish()
    }
}

/// The blocking facade of a [`ProcessHandle`].
#[derive(Debug)]
pub struct BlockingProcessHandle<'a> {
    h: &'a ProcessHandle,
}

impl BlockingProcessHandle<'_> {
    /// [`ProcessHandle::join`], blocking.
    pub fn join(&self) -> Result<(), ProcessError> {
        self.h.check_joinable()?;
        self.h.core.done.blocking().wait();
        Ok(())
    }

    /// [`ProcessHandle::join_timeout`], blocking.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, ProcessError> {
        self.h.check_joinable()?;
        Ok(self.h.core.done.blocking().wait_timeout(timeout))
    }
}
