//! `excepthook`, `settrace` and `setprofile`: the hooks Python runs around
//! its threads, for conex Threads.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use super::Thread;

/// What the excepthook is called with when a Thread's target panics.
///
/// Python: `threading.ExceptHookArgs` (`exc_type`, `exc_value`,
/// `exc_traceback`, `thread`); a Rust panic has a payload instead.
pub struct ExceptHookArgs<'a> {
    thread: &'a Thread,
    payload: &'a (dyn Any + Send),
}

impl<'a> ExceptHookArgs<'a> {
    pub(crate) fn new(thread: &'a Thread, payload: &'a (dyn Any + Send)) -> Self {
        ExceptHookArgs { thread, payload }
    }

    /// The thread whose target panicked.
    pub fn thread(&self) -> &Thread {
        self.thread
    }

    /// The panic payload (usually a `&str` or a `String`).
    pub fn payload(&self) -> &(dyn Any + Send) {
        self.payload
    }

    /// The panic message, when the payload is a string.
    pub fn message(&self) -> &str {
        crate::panic_str(self.payload)
    }
}

impl fmt::Debug for ExceptHookArgs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExceptHookArgs")
            .field("thread", self.thread)
            .field("message", &self.message())
            .finish()
    }
}

type ExceptHook = Arc<dyn Fn(&ExceptHookArgs<'_>) + Send + Sync>;

/// A hook run in every new conex Thread before its target.
///
/// Python: the functions given to `threading.settrace` / `setprofile`
/// (Rust has no per-line tracing: the hook runs once, at thread start).
pub type StartHook = Arc<dyn Fn(&Thread) + Send + Sync>;

static EXCEPTHOOK: RwLock<Option<ExceptHook>> = RwLock::new(None);
static TRACE: RwLock<Option<StartHook>> = RwLock::new(None);
static PROFILE: RwLock<Option<StartHook>> = RwLock::new(None);
/// Set once any start hook was ever installed: until then a thread start
/// skips the two lock reads.
static ANY_START_HOOK: AtomicBool = AtomicBool::new(false);

fn read<T: Clone>(l: &RwLock<Option<T>>) -> Option<T> {
    l.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(l: &RwLock<Option<T>>, v: Option<T>) -> Option<T> {
    std::mem::replace(&mut *l.write().unwrap_or_else(|e| e.into_inner()), v)
}

/// Handles a panic in a Thread's target: calls the installed hook (see
/// [`set_excepthook`]), or [`default_excepthook`].
///
/// Python: `threading.excepthook(args)`.
///
/// # Examples
///
/// ```
/// use conex::threading::{excepthook, set_excepthook, reset_excepthook, Thread};
///
/// // A hook that forwards to Python's default one (it prints to stderr).
/// set_excepthook(|args| conex::threading::default_excepthook(args));
/// let t = Thread::spawn_blocking(|| -> () { panic!("reported") });
/// assert!(t.thread().blocking().join().is_err());
/// reset_excepthook();
/// # let _ = excepthook;
/// ```
pub fn excepthook(args: &ExceptHookArgs<'_>) {
    match read(&EXCEPTHOOK) {
        Some(hook) => {
            // A hook that panics itself is reported the default way.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(args))).is_err() {
                default_excepthook(args);
            }
        }
        None => default_excepthook(args),
    }
}

/// Prints `Exception in thread NAME: MESSAGE` to stderr.
///
/// Python: `threading.__excepthook__`.
///
/// # Examples
///
/// ```
/// use conex::threading::{default_excepthook, set_excepthook, reset_excepthook};
///
/// set_excepthook(|args| {
///     eprintln!("custom prefix");
///     default_excepthook(args);
/// });
/// reset_excepthook();
/// ```
pub fn default_excepthook(args: &ExceptHookArgs<'_>) {
    // Python prints here: `threading.__excepthook__` writes the traceback
    // to `sys.stderr`; a program that wants it elsewhere sets its own hook.
    eprintln!(
        "Exception in thread {}: {}",
        args.thread().name(),
        args.message()
    );
}

/// Replaces the excepthook for every conex Thread whose target panics.
///
/// Python: assigning `threading.excepthook`.
///
/// # Examples
///
/// ```
/// use conex::threading::{set_excepthook, reset_excepthook, Thread};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s2 = seen.clone();
/// set_excepthook(move |args| s2.lock().unwrap().push(args.message().to_string()));
/// let t = Thread::spawn_blocking(|| -> () { panic!("boom") });
/// assert!(t.blocking().join().is_err());
/// assert_eq!(seen.lock().unwrap().as_slice(), ["boom"]);
/// reset_excepthook();
/// ```
pub fn set_excepthook(hook: impl Fn(&ExceptHookArgs<'_>) + Send + Sync + 'static) {
    write(&EXCEPTHOOK, Some(Arc::new(hook)));
}

/// Puts the default excepthook back.
///
/// # Examples
///
/// ```
/// conex::threading::set_excepthook(|_| ());
/// conex::threading::reset_excepthook(); // back to printing to stderr
/// ```
pub fn reset_excepthook() {
    write(&EXCEPTHOOK, None);
}

/// Installs (or, with `None`, removes) a hook run at the start of every
/// conex Thread started afterwards, in that thread, before its target.
///
/// Python: `threading.settrace(func)`. Python's `settrace_all_threads` has
/// no counterpart: a start hook cannot run in threads that already started.
///
/// # Examples
///
/// ```
/// use conex::threading::{settrace, gettrace, Thread};
/// use std::sync::{Arc, Mutex};
///
/// let started = Arc::new(Mutex::new(Vec::new()));
/// let s2 = started.clone();
/// settrace(Some(Arc::new(move |t: &Thread| s2.lock().unwrap().push(t.name()))));
/// assert!(gettrace().is_some());
/// let t = Thread::builder().name("traced").spawn_blocking(|| ()).unwrap();
/// t.blocking().join().unwrap();
/// settrace(None);
/// assert!(started.lock().unwrap().contains(&"traced".to_string()));
/// ```
pub fn settrace(hook: Option<StartHook>) {
    ANY_START_HOOK.store(true, Ordering::Release);
    write(&TRACE, hook);
}

/// The hook installed by [`settrace`].
///
/// Python: `threading.gettrace()`.
///
/// # Examples
///
/// ```
/// assert!(conex::threading::gettrace().is_none() || true);
/// ```
pub fn gettrace() -> Option<StartHook> {
    read(&TRACE)
}

/// Installs (or removes) a second start hook, run after the trace hook.
///
/// Python: `threading.setprofile(func)`.
///
/// # Examples
///
/// ```
/// use conex::threading::{getprofile, setprofile};
/// use std::sync::Arc;
///
/// setprofile(Some(Arc::new(|t: &conex::threading::Thread| eprintln!("start {}", t.name()))));
/// assert!(getprofile().is_some());
/// setprofile(None);
/// assert!(getprofile().is_none());
/// ```
pub fn setprofile(hook: Option<StartHook>) {
    ANY_START_HOOK.store(true, Ordering::Release);
    write(&PROFILE, hook);
}

/// The hook installed by [`setprofile`].
///
/// Python: `threading.getprofile()`.
pub fn getprofile() -> Option<StartHook> {
    read(&PROFILE)
}

/// Runs the start hooks in a Thread that is starting (and current).
pub(crate) fn run_start_hooks() {
    if !ANY_START_HOOK.load(Ordering::Acquire) {
        return;
    }
    let thread = super::current_thread();
    if let Some(h) = gettrace() {
        h(&thread);
    }
    if let Some(h) = getprofile() {
        h(&thread);
    }
}
