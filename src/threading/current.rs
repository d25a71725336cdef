//! The registry of live Threads and the module functions that read it:
//! `current_thread`, `main_thread`, `enumerate`, `active_count`,
//! `get_ident`, `get_native_id`, `stack_size`, and the wait for non-daemon
//! threads at exit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::StackSizeError;
use super::thread::{Kind, Thread};

thread_local! {
    /// The conex Thread running here: an OS-thread-backed Thread for its
    /// whole life, a task-backed one during each poll of its target.
    static CURRENT: RefCell<Option<Thread>> = const { RefCell::new(None) };
    /// The dummy Thread of an OS thread conex did not start.
    static DUMMY: DummyHolder = DummyHolder(create_dummy());
    /// The ident of this OS thread's dummy once it exists (0 before).
    static DUMMY_IDENT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

struct DummyHolder(Thread);

impl Drop for DummyHolder {
    fn drop(&mut self) {
        // The main thread stays listed until the process ends.
        if self.0.core.kind == Kind::Dummy {
            unregister(&self.0);
        }
    }
}

/// Idents are unique counters: they hash as themselves.
#[derive(Default)]
pub(crate) struct IdentHasher(u64);

impl std::hash::Hasher for IdentHasher {
    fn finish(&self) -> u64 {
        // Spread the low bits over the high ones that hashbrown's control
        // bytes read.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by idents (Local ids, ...).
pub(crate) type IdentMap<V> = HashMap<u64, V, BuildHasherDefault<IdentHasher>>;

/// The live Threads: a slab (each Thread knows its slot), so registering
/// and leaving cost no hashing and a million threads cost 8 bytes each.
struct Registry {
    slots: Vec<Option<Thread>>,
    free: Vec<u32>,
    len: usize,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    slots: Vec::new(),
    free: Vec::new(),
    len: 0,
});
static NEXT_IDENT: AtomicU64 = AtomicU64::new(1);
static NEXT_DUMMY: AtomicU64 = AtomicU64::new(1);
static MAIN: OnceLock<Thread> = OnceLock::new();
static STACK_SIZE: AtomicUsize = AtomicUsize::new(0);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn next_ident() -> u64 {
    NEXT_IDENT.fetch_add(1, Relaxed)
}

pub(crate) fn register(t: &Thread) {
    let mut r = registry();
    let i = match r.free.pop() {
        Some(i) => i,
        None => {
            r.slots.push(None);
            u32::try_from(r.slots.len() - 1).expect("more than 4 billion live threads")
        }
    };
    r.slots[i as usize] = Some(t.clone());
    r.len += 1;
    t.core.reg_slot.store(i, Relaxed);
}

pub(crate) fn unregister(t: &Thread) {
    let i = t.core.reg_slot.swap(u32::MAX, Relaxed);
    if i == u32::MAX {
        return;
    }
    let removed = {
        let mut r = registry();
        r.free.push(i);
        r.len -= 1;
        r.slots[i as usize].take()
    };
    drop(removed);
}

fn live() -> Vec<Thread> {
    registry().slots.iter().flatten().cloned().collect()
}

/// Makes the Thread in `slot` the current one while `f` runs (moving it
/// into the thread-local and back, no clone), restoring whatever was
/// current before.
pub(crate) fn with_lent<R>(slot: &mut Option<Thread>, f: impl FnOnce() -> R) -> R {
    struct Lend<'a>(&'a mut Option<Thread>);
    impl Drop for Lend<'_> {
        fn drop(&mut self) {
            let _ = CURRENT.try_with(|c| std::mem::swap(&mut *c.borrow_mut(), self.0));
        }
    }
    let _ = CURRENT.try_with(|c| std::mem::swap(&mut *c.borrow_mut(), slot));
    let _lend = Lend(slot);
    f()
}

fn create_dummy() -> Thread {
    let t = if is_main_os_thread() {
        main_thread()
    } else {
        let n = NEXT_DUMMY.fetch_add(1, Relaxed);
        let t = Thread::new_running(Kind::Dummy, format!("Dummy-{n}"), true, get_native_id());
        register(&t);
        t
    };
    let _ = DUMMY_IDENT.try_with(|c| c.set(t.core.ident));
    t
}

/// Runs `f` with the current thread.
pub(crate) fn with_current<R>(f: impl FnOnce(&Thread) -> R) -> R {
    match CURRENT.try_with(|c| c.borrow().clone()).ok().flatten() {
        Some(t) => f(&t),
        None => match DUMMY.try_with(|d| d.0.clone()) {
            Ok(t) => f(&t),
            // The thread is exiting (its locals are being destroyed).
            Err(_) => f(&create_dummy()),
        },
    }
}

/// Whether the caller runs as the Thread `ident` (no dummy is created for
/// a foreign thread: it cannot be a started conex Thread).
pub(crate) fn is_current(ident: u64) -> bool {
    match CURRENT
        .try_with(|c| c.borrow().as_ref().map(|t| t.core.ident))
        .ok()
        .flatten()
    {
        Some(me) => me == ident,
        None => {
            DUMMY_IDENT.with(|c| c.get()) == ident
                || MAIN
                    .get()
                    .is_some_and(|m| m.core.ident == ident && is_main_os_thread())
        }
    }
}

/// The Thread of the caller: the task-backed Thread being run, the conex
/// OS thread, or, for code conex did not start (a plain OS thread, a raw
/// tokio task), the "dummy" Thread of the OS thread it is running on (the
/// main thread for `main`). Dummy threads are daemons and are listed by
/// [`enumerate`] while their OS thread lives.
///
/// Python: `threading.current_thread()`.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::threading::{current_thread, Thread};
///
/// let t = Thread::builder().name("worker").spawn(async { current_thread().name() });
/// assert_eq!(t.join().await.unwrap(), "worker");
/// # }
/// ```
pub fn current_thread() -> Thread {
    with_current(Thread::clone)
}

/// The Thread of the program's main OS thread.
///
/// Python: `threading.main_thread()`.
///
/// # Examples
///
/// ```
/// use conex::threading::{current_thread, main_thread};
///
/// assert_eq!(main_thread().name(), "MainThread");
/// assert!(!main_thread().daemon());
/// let other = std::thread::spawn(|| current_thread() == main_thread());
/// assert!(!other.join().unwrap());
/// ```
pub fn main_thread() -> Thread {
    MAIN.get_or_init(|| {
        let t = Thread::new_running(Kind::Main, "MainThread".to_owned(), false, main_native_id());
        register(&t);
        t
    })
    .clone()
}

/// The main thread's OS id, whichever thread asks (0 if unknown).
fn main_native_id() -> u64 {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        // The main thread's TID is the process id.
        u64::from(std::process::id())
    } else if is_main_os_thread() {
        get_native_id()
    } else {
        0
    }
}

/// Whether the calling OS thread is the process's main thread.
fn is_main_os_thread() -> bool {
    #[cfg(unix)]
    if let Some(main) = crate::sys::is_main_thread() {
        return main;
    }
    std::thread::current().name() == Some("main")
}

/// The identifier of the current Thread (see [`current_thread`]): non-zero,
/// never reused while the process lives.
///
/// Python: `threading.get_ident()`.
///
/// # Examples
///
/// ```
/// use conex::threading::{get_ident, Thread};
///
/// let t = Thread::spawn_blocking(get_ident);
/// let ident = t.ident();
/// assert_eq!(Some(t.blocking().join().unwrap()), ident);
/// ```
pub fn get_ident() -> u64 {
    with_current(|t| t.core.ident)
}

/// The OS id (TID) of the calling OS thread. Called from a task it is the
/// worker thread running the task right now.
///
/// Python: `threading.get_native_id()`.
///
/// # Examples
///
/// ```
/// use conex::threading::{get_native_id, Thread};
///
/// let t = Thread::spawn_blocking(get_native_id);
/// let native = t.native_id();
/// assert_eq!(Some(t.blocking().join().unwrap()), native);
/// ```
pub fn get_native_id() -> u64 {
    #[cfg(unix)]
    {
        crate::sys::gettid()
    }
    #[cfg(not(unix))]
    {
        // No portable TID here: a per-thread number that is unique.
        crate::wait::owner::current()
    }
}

/// Every live Thread: started and not finished ones, the main thread and
/// the dummy threads of foreign OS threads that asked who they are.
///
/// Python: `threading.enumerate()`.
///
/// # Examples
///
/// ```
/// use conex::threading::{enumerate, main_thread, Event, Thread};
///
/// let stop = Event::new();
/// let s2 = stop.clone();
/// let t = Thread::spawn_blocking(move || s2.blocking().wait());
/// let live = enumerate();
/// assert!(live.contains(&t) && live.contains(&main_thread()));
/// stop.set();
/// t.thread().blocking().join().unwrap();
/// assert!(!enumerate().contains(&t));
/// ```
pub fn enumerate() -> Vec<Thread> {
    main_thread();
    let mut v = live();
    v.sort_by_key(|t| t.core.ident);
    v
}

/// The number of live Threads (`enumerate().len()`).
///
/// Python: `threading.active_count()`.
///
/// # Examples
///
/// ```
/// use conex::threading::{active_count, enumerate};
///
/// assert!(active_count() >= 1); // the main thread, at least
/// # let _ = enumerate();
/// ```
pub fn active_count() -> usize {
    main_thread();
    registry().len
}

/// The daemon flag a new Thread inherits: its creator's, as in Python,
/// except that code conex did not start (a raw tokio task, a foreign OS
/// thread) creates non-daemon Threads. Python would make them daemons (its
/// "dummy" threads are), which in a tokio program would make every Thread
/// a daemon and `join_non_daemon` wait for nothing.
pub(crate) fn current_daemon() -> bool {
    with_current(|t| t.core.kind != Kind::Dummy && t.daemon())
}

/// The stack size used for OS-thread-backed Threads started afterwards
/// (0: the platform's default).
///
/// Python: `threading.stack_size()`.
///
/// # Examples
///
/// ```
/// use conex::threading::{set_stack_size, stack_size, StackSizeError};
///
/// let old = set_stack_size(1 << 20).unwrap();
/// assert_eq!(stack_size(), 1 << 20);
/// assert_eq!(set_stack_size(1000), Err(StackSizeError(1000)));
/// set_stack_size(old).unwrap();
/// ```
pub fn stack_size() -> usize {
    STACK_SIZE.load(Relaxed)
}

/// Sets the stack size for OS-thread-backed Threads started afterwards and
/// returns the previous one. 0 means the platform's default.
///
/// Python: `threading.stack_size(size)`.
///
/// # Errors
/// [`StackSizeError`] for a size from 1 to 32 KiB - 1.
pub fn set_stack_size(size: usize) -> Result<usize, StackSizeError> {
    if size != 0 && size < 32 * 1024 {
        return Err(StackSizeError(size));
    }
    Ok(STACK_SIZE.swap(size, Relaxed))
}

pub(crate) fn default_stack_size() -> Option<usize> {
    match stack_size() {
        0 => None,
        n => Some(n),
    }
}

/// The largest timeout that is honoured as such: longer timeouts (as
/// `Duration::MAX`) wait without a deadline.
///
/// Python: `threading.TIMEOUT_MAX` (the same value as CPython on Linux).
///
/// # Examples
///
/// ```
/// use conex::threading::{Lock, TIMEOUT_MAX};
///
/// let lock = Lock::new();
/// assert!(lock.blocking().acquire_timeout(TIMEOUT_MAX)); // free: at once
/// ```
pub const TIMEOUT_MAX: Duration = Duration::from_secs(9_223_372_036);

/// The runtime task-backed Threads start on: the caller's, or one conex
/// starts once for a process that has none.
pub(crate) fn runtime_handle() -> tokio::runtime::Handle {
    crate::runtime::handle()
}

fn non_daemon_others() -> Vec<Thread> {
    let me = get_ident();
    live()
        .into_iter()
        .filter(|t| {
            !t.daemon()
                && t.core.ident != me
                && matches!(t.core.kind, Kind::Task | Kind::Os)
                && t.is_alive()
        })
        .collect()
}

/// Waits until every non-daemon Thread (other than the caller) has ended,
/// including the ones they start meanwhile: what Python's interpreter does
/// before it exits. Call it at the end of `main`; daemon threads are simply
/// abandoned when `main` returns, as Python abandons them.
///
/// Python: the interpreter's `threading._shutdown()` at exit.
///
/// # Cancel safety
/// Dropping the future loses nothing: the threads run on.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::threading::{self, Thread};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let done = Arc::new(AtomicBool::new(false));
/// let d2 = done.clone();
/// Thread::spawn(async move { d2.store(true, Ordering::SeqCst) });
/// threading::join_non_daemon().await;
/// assert!(done.load(Ordering::SeqCst));
/// # }
/// ```
pub async fn join_non_daemon() {
    loop {
        let pending = non_daemon_others();
        if pending.is_empty() {
            return;
        }
        for t in pending {
            let _ = t.join().await;
        }
    }
}

/// [`join_non_daemon`] for synchronous code: blocks the calling OS thread.
///
/// # Examples
///
/// ```
/// use conex::threading::{join_non_daemon_blocking, Thread};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let done = Arc::new(AtomicBool::new(false));
/// let d2 = done.clone();
/// Thread::builder().daemon(false).spawn_blocking(move || d2.store(true, Ordering::SeqCst)).unwrap();
/// join_non_daemon_blocking(); // as Python's interpreter does at exit
/// assert!(done.load(Ordering::SeqCst));
/// ```
pub fn join_non_daemon_blocking() {
    loop {
        let pending = non_daemon_others();
        if pending.is_empty() {
            return;
        }
        for t in pending {
            let _ = t.blocking().join();
        }
    }
}

/// Calls `f` on every live Thread (the registry is not locked while `f`
/// runs).
pub(crate) fn for_each_live(mut f: impl FnMut(&Thread)) {
    for t in &live() {
        f(t);
    }
}
