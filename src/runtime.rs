//! The runtime conex starts, once and only when needed, for work that has
//! no runtime of its own to run on.
//!
//! Inside a tokio runtime, conex uses the caller's: a task it spawns, a
//! reader of a manager connection, a bridge to a `CancellationToken` run
//! there. Outside any (a task-backed `Thread` started from a plain thread,
//! subprocess I/O or a `tasks::spawn` called outside a runtime, a
//! manager's server), conex starts a multi-thread runtime of its own on
//! first use, its threads named `conex-worker`, one per core unless
//! [`set_worker_threads`] said otherwise before it started. Nothing starts
//! it in a program that always calls from inside its own runtime.
//!
//! A leaf: every floor that needs it (threading, io, multiprocessing)
//! imports it, and it imports none of them.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The worker count asked for (0: tokio's default, one per core).
static WORKERS: AtomicUsize = AtomicUsize::new(0);

/// conex's own runtime has started already: its size is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyStarted;

impl std::fmt::Display for AlreadyStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("conex's own runtime has started: set its size before its first use")
    }
}

impl std::error::Error for AlreadyStarted {}

/// Sets the number of worker threads of conex's own runtime (see the
/// module), before it starts.
///
/// # Errors
/// [`AlreadyStarted`] once it runs (call this first thing in `main`).
///
/// # Panics
/// If `n` is 0.
///
/// ```
/// // First thing, before anything conex does outside a runtime:
/// conex::runtime::set_worker_threads(3).unwrap();
/// assert!(!conex::runtime::started());
/// // Outside any runtime, a task runs on conex's own: three workers.
/// let t = conex::tasks::spawn(async {
///     tokio::runtime::Handle::current().metrics().num_workers()
/// });
/// assert_eq!(futures::executor::block_on(t), Ok(3));
/// assert!(conex::runtime::started());
/// assert_eq!(
///     conex::runtime::set_worker_threads(8),
///     Err(conex::runtime::AlreadyStarted)
/// );
/// ```
pub fn set_worker_threads(n: usize) -> Result<(), AlreadyStarted> {
    assert!(n > 0, "a runtime needs at least one worker thread");
    if RUNTIME.get().is_some() {
        return Err(AlreadyStarted);
    }
    WORKERS.store(n, Ordering::SeqCst);
    // Started meanwhile by another thread: it may not have seen `n`.
    if RUNTIME.get().is_some() {
        return Err(AlreadyStarted);
    }
    Ok(())
}

/// Whether conex's own runtime has started (it starts only when work
/// outside any runtime needs it).
pub fn started() -> bool {
    RUNTIME.get().is_some()
}

/// conex's own multi-thread runtime, started on first use.
pub(crate) fn own_runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        match WORKERS.load(Ordering::SeqCst) {
            0 => {}
            n => {
                b.worker_threads(n);
            }
        }
        b.thread_name("conex-worker")
            .enable_all()
            .build()
            .expect("conex: cannot start its runtime")
    })
}

/// Runs `f` once `token` is cancelled (at once if it is), from a task on
/// the caller's runtime (or conex's own). The task lives until then: the
/// bridges that use it hold only weak references to what `f` acts on.
#[cfg(feature = "tokio-util")]
pub(crate) fn on_cancel(
    token: &tokio_util::sync::CancellationToken,
    f: impl FnOnce() + Send + 'static,
) {
    if token.is_cancelled() {
        f();
        return;
    }
    let cancelled = token.clone().cancelled_owned();
    handle().spawn(async move {
        cancelled.await;
        f();
    });
}

/// The caller's runtime, or conex's own for a caller outside any.
pub(crate) fn handle() -> tokio::runtime::Handle {
    tokio::runtime::Handle::try_current().unwrap_or_else(|_| own_runtime().handle().clone())
}
