//! Start methods and what a process knows about itself: its name, key
//! and parent, whether its `main` ran [`init`](super::init), and the role
//! it was started in. A leaf: the entry ([`super::entry`]) and the start
//! path (`launch`, `started`, `forkserver`, `worker`) build on it.

use std::fmt;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

/// The environment variable that tells a re-executed binary what to be.
pub(crate) const ROLE_ENV: &str = "__CONEX_MP_ROLE";

/// How a child process is started.
///
/// Python: the start methods of `multiprocessing` (`set_start_method`,
/// `get_context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StartMethod {
    /// Re-execute this binary (the default everywhere): a fresh process
    /// that runs `main` up to [`init`](super::init), which diverts it into the worker.
    Spawn,
    /// Ask a fork server, itself started by `Spawn` on first use (while it
    /// is still single-threaded), to fork a fresh worker: no exec per
    /// child. Unix.
    Forkserver,
    /// Fork this process: the fastest start, and the only one where the
    /// child begins with the parent's memory. Offered only while the
    /// calling process is single-threaded (a fork of a threaded process
    /// keeps one thread and every lock the others held); refused with
    /// [`StartError::ForkWithThreads`](super::StartError::ForkWithThreads)
    /// otherwise. Unix.
    Fork,
}

impl StartMethod {
    /// Python's name for it.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Spawn => "spawn",
            StartMethod::Forkserver => "forkserver",
            StartMethod::Fork => "fork",
        }
    }
}

impl fmt::Display for StartMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static START_METHOD: Mutex<Option<StartMethod>> = Mutex::new(None);

/// `set_start_method` was called before (Python's `RuntimeError: context
/// has already been set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadySet(pub StartMethod);

impl fmt::Display for AlreadySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the start method has already been set (to {})", self.0)
    }
}

impl std::error::Error for AlreadySet {}

/// Sets the start method of processes started without an explicit one.
/// Python: `multiprocessing.set_start_method(method, force)`.
///
/// # Errors
/// [`AlreadySet`] if one was set (or used) before and `force` is false.
pub fn set_start_method(method: StartMethod, force: bool) -> Result<(), AlreadySet> {
    let mut m = START_METHOD.lock().unwrap_or_else(|e| e.into_inner());
    match *m {
        Some(old) if !force => Err(AlreadySet(old)),
        _ => {
            *m = Some(method);
            Ok(())
        }
    }
}

/// The start method in use ([`StartMethod::Spawn`] unless set), fixing it
/// from now on. Python: `multiprocessing.get_start_method()`.
pub fn get_start_method() -> StartMethod {
    *START_METHOD
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert(StartMethod::Spawn)
}

/// The start method if one was set or used, else `None`. Python:
/// `get_start_method(allow_none=True)`.
pub fn get_start_method_if_set() -> Option<StartMethod> {
    *START_METHOD.lock().unwrap_or_else(|e| e.into_inner())
}

static EXECUTABLE: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);

/// Sets the executable that `spawn` runs for a child (and that starts the
/// forkserver); `None` goes back to the default, this very program.
/// Python: `multiprocessing.set_executable(path)`.
///
/// The child must still be this build: its identity is checked at the
/// handshake. The same file under another name (a link) passes as it is;
/// a copy at another path passes once its bytes are found equal to this
/// program's (read once per file); a different build is refused with
/// [`StartError::DifferentBinary`](super::StartError::DifferentBinary).
/// [`ProcessBuilder::executable`](super::ProcessBuilder::executable) sets
/// it for one process.
pub fn set_executable(path: Option<std::path::PathBuf>) {
    *EXECUTABLE.lock().unwrap_or_else(|e| e.into_inner()) = path;
}

/// The executable `spawn` runs: the one given to [`set_executable`], else
/// this program. Python: `multiprocessing.spawn.get_executable()`.
pub fn get_executable() -> std::path::PathBuf {
    EXECUTABLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(super::callable::exe_path)
}

/// The start methods this platform offers, the default first. Python:
/// `multiprocessing.get_all_start_methods()`.
pub fn get_all_start_methods() -> Vec<StartMethod> {
    vec![
        StartMethod::Spawn,
        StartMethod::Forkserver,
        StartMethod::Fork,
    ]
}

/// A start method to make processes with, as Python's context objects.
/// Python: `multiprocessing.get_context(method)`.
///
/// ```no_run
/// use conex::multiprocessing::{StartMethod, get_context};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// fn main() {
///     conex::multiprocessing::init();
///     let ctx = get_context(Some(StartMethod::Forkserver));
///     let p = ctx.process(square, 7);
///     p.start().unwrap();
///     assert_eq!(p.blocking().result().unwrap(), 49);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

/// The context of `method`, or of the default start method.
pub fn get_context(method: Option<StartMethod>) -> Context {
    Context {
        method: method.unwrap_or_else(get_start_method),
    }
}

impl Context {
    /// Its start method. Python: `ctx.get_start_method()`.
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A process of this context. Python: `ctx.Process(target, args)`.
    pub fn process<A, R>(&self, target: fn(A) -> R, args: A) -> super::Process<R>
    where
        A: Serialize + serde::de::DeserializeOwned + Send + 'static,
        R: Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
        super::Process::builder()
            .start_method(self.method)
            .build(target, args)
    }
}

/// What a process knows about itself. Python: the attributes of
/// `current_process()` (and `parent_process()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its name (`"MainProcess"` for the program itself).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// Whether it was started as a daemon.
    pub daemon: bool,
}

pub(crate) struct Me {
    pub(crate) info: ProcessInfo,
    pub(crate) authkey: Vec<u8>,
    pub(crate) parent: Option<ProcessInfo>,
}

static ME: OnceLock<Me> = OnceLock::new();

pub(crate) fn me() -> &'static Me {
    ME.get_or_init(|| {
        let mut key = vec![0u8; 32];
        let _ = crate::multiprocessing::auth::random_bytes(&mut key);
        Me {
            info: ProcessInfo {
                name: "MainProcess".into(),
                pid: std::process::id(),
                daemon: false,
            },
            authkey: key,
            parent: None,
        }
    })
}

/// Records who this worker is (before anything asks).
pub(crate) fn set_me(me: Me) {
    let _ = ME.set(me);
}

/// This process. Python: `multiprocessing.current_process()` (its `name`,
/// `pid`, `daemon`; see [`current_authkey`] for `authkey`).
pub fn current_process() -> ProcessInfo {
    me().info.clone()
}

/// This process's auth key: random in the main process, inherited by
/// every child. Python: `current_process().authkey`.
pub fn current_authkey() -> Vec<u8> {
    me().authkey.clone()
}

/// The process that started this one, or `None` in the main process.
/// Python: `multiprocessing.parent_process()`.
pub fn parent_process() -> Option<ProcessInfo> {
    me().parent.clone()
}

/// How many CPUs this process may use. Python: `multiprocessing.cpu_count()`
/// (3.13's `process_cpu_count`: the affinity mask counts).
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Set by [`init`](super::init) in the program itself (a worker, whose
/// `init` diverts, sets it in `worker::run`).
static INITIALISED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set by [`init`](super::init) when it diverted on the role but could
/// not remove it from the environment (other threads existed).
static ROLE_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that [`init`](super::init) took this process's role although
/// the variable stays in the environment.
pub(crate) fn mark_role_taken() {
    ROLE_TAKEN.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether this process was started with a role it has not taken yet.
fn role_pending() -> bool {
    std::env::var_os(ROLE_ENV).is_some() && !ROLE_TAKEN.load(std::sync::atomic::Ordering::SeqCst)
}

/// Records that this process's children can be this binary again.
pub(crate) fn mark_initialised() {
    INITIALISED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether re-executing this binary is safe: [`init`](super::init) ran first thing in
/// its `main`, so a re-executed child diverts instead of running the
/// program (and starting children of its own, and so on).
pub(crate) fn initialised() -> bool {
    INITIALISED.load(std::sync::atomic::Ordering::SeqCst) && !role_pending()
}

/// Panics if this is a conex child whose `main` skipped [`init`](super::init) (it
/// would otherwise run the program again, and start children of its own).
pub(crate) fn check_not_uninitialised_child() {
    if role_pending() {
        panic!(
            "conex: this process was started as a worker, but its main did not call \
             conex::multiprocessing::init() first thing"
        );
    }
}
