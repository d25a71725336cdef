//! # conex
//!
//! Python's "Concurrent Execution" chapter rebuilt as one async-first
//! toolkit on tokio. Tasks replace threads, async locks and queues replace
//! blocking ones, and every primitive also has a blocking facade
//! (`.blocking()`), so plain OS threads use the very same object.
//!
//! Python's documented semantics are the specification wherever they are
//! sound in Rust; where one cannot carry over (a dropped future cannot
//! re-acquire a lock), the API makes the unsound state impossible and the
//! docs say so.
//!
//! ## Where the Python names live
//!
//! | Python | conex |
//! |---|---|
//! | `threading` (and asyncio's `Lock`, `Event`, `Condition`, `Semaphore`, `BoundedSemaphore`, `Barrier`) | [`threading`] |
//! | `_thread` | [`_thread`] |
//! | `queue` (and asyncio's `Queue`, `LifoQueue`, `PriorityQueue`) | [`queue`] |
//! | `contextvars` | [`contextvars`] |
//! | `sched` | [`sched`] |
//! | `concurrent.futures` | [`futures`] |
//! | `subprocess` | [`subprocess`] |
//! | `multiprocessing`, `multiprocessing.shared_memory` | [`multiprocessing`] |
//! | asyncio's task tools (`create_task`, `TaskGroup`, `timeout`, `gather`, `wait`, `to_thread`, `Runner`, ...) | [`tasks`] |
//!
//! ## Conventions
//!
//! - Every primitive is a cheap `Clone` handle (clones are the same object,
//!   as Python references are), `Send + Sync + Debug`, and its futures are
//!   `Send`.
//! - Python's names in Rust case; `blocking=False` is `try_*`, `timeout=` is
//!   a `*_timeout(Duration)` twin that returns what Python returns: `bool`
//!   for acquires and flag waits, `Result<bool, JoinError>` for joins
//!   (`Ok(false)`: still alive), an `Err` named after the exception where
//!   Python raises (`GetError::Empty`, `FutureError::Timeout`).
//! - Every queue's get is `Result<T, GetError>`, every put
//!   `Result<(), PutError<T>>` (the item comes back).
//! - One blocking facade name, `.blocking()`; each executor has its own
//!   `shutdown(wait, cancel_futures)` and a scoped `with`.
//! - Starting work returns `Result` (the `std::thread::spawn`-shaped
//!   shorthand `Thread::spawn_blocking` panics as std's does); a documented
//!   misuse panics under `# Panics` and names the caller's line.
//! - Addresses are text (`"127.0.0.1:0"`, a socket path) or an `Address`;
//!   sizes with a Python default are `Option<NonZeroUsize>`.
//! - Errors are small types named after Python's exceptions
//!   ([`threading::ReleaseError`], [`threading::BrokenBarrier`], ...).
//!
//! The README's "Conventions" table lists each rule with where it applies.
//! - Dropping a future is cancellation, and loses nothing: every async
//!   method documents it under `# Cancel safety`.
//!
//! ```
//! # #[tokio::main] async fn main() {
//! use conex::threading::{Event, Semaphore, Thread};
//!
//! let limit = Semaphore::new(2);
//! let stop = Event::new();
//! let workers: Vec<_> = (0..4)
//!     .map(|i| {
//!         let (limit, stop) = (limit.clone(), stop.clone());
//!         Thread::spawn(async move {
//!             let _slot = limit.permit().await; // at most 2 at a time
//!             stop.wait().await;
//!             i
//!         })
//!     })
//!     .collect();
//! stop.set();
//! let mut sum = 0;
//! for w in workers {
//!     sum += w.join().await.unwrap();
//! }
//! assert_eq!(sum, 6);
//! # }
//! ```

#![warn(missing_debug_implementations)]
// Unsafe code lives in the platform layer (`sys`) and in the two modules
// whose unsafety is not the OS's, each of which says why.
#![deny(unsafe_code)]

#[cfg(all(unix, any(feature = "subprocess", feature = "multiprocessing")))]
mod io;
pub mod runtime;
mod shim;
#[cfg(unix)]
mod sys;
mod wait;

// The loom models sit beside the code they check, not inside the wait
// core: they reach every primitive above it (as tokio keeps
// `sync/tests/loom_*`).
#[cfg(all(test, conex_loom))]
mod loom_models;

/// A diagnostic the library cannot return to anyone (a callback's panic, a
/// worker's death, a broken start-up): a `tracing` event (target `conex`)
/// when the calling thread has a subscriber (its own or the global one), else a line on stderr (what Python's
/// `logging` does with no handler configured). Without the `tracing`
/// feature, always stderr.
#[allow(unused_macros)] // a build without futures and multiprocessing has no use
#[cfg(feature = "tracing")]
macro_rules! diag {
    ($level:ident, $($arg:tt)+) => {
        if tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>()) {
            tracing::$level!(target: "conex", $($arg)+);
        } else {
            // Python prints here: `logging` with no handler writes
            // WARNING and above to stderr (`logging.lastResort`).
            eprintln!("conex: {}", format_args!($($arg)+));
        }
    };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! diag {
    // Python prints here (see above); without the feature, nothing else.
    ($level:ident, $($arg:tt)+) => {
        eprintln!("conex: {}", format_args!($($arg)+))
    };
}
#[allow(unused_imports)]
pub(crate) use diag;

/// A span of target `conex` at INFO (a Thread's, a Process's, a pool
/// worker's, a manager connection's, a subprocess child's): a
/// `tracing::Span` with the `tracing` feature, else [`NoSpan`], which
/// ignores its fields. Enter it with `.enter()` around the work it names.
#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! span {
    ($name:literal $(, $($fields:tt)*)?) => {
        tracing::info_span!(target: "conex", $name $(, $($fields)*)?)
    };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! span {
    ($name:literal $(, $($fields:tt)*)?) => {
        $crate::NoSpan
    };
}
#[allow(unused_imports)]
pub(crate) use span;

/// An event of target `conex` for `tracing` (a process started, a child's
/// exit status): nothing without the `tracing` feature, and nothing on
/// stderr (unlike [`diag!`], these are not problems).
#[cfg(feature = "tracing")]
#[allow(unused_macros)]
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {
        tracing::$level!(target: "conex", $($arg)+)
    };
}
#[cfg(not(feature = "tracing"))]
#[allow(unused_macros)]
macro_rules! event {
    ($level:ident, $($arg:tt)+) => {
        ()
    };
}
#[allow(unused_imports)]
pub(crate) use event;

/// Runs `fut` inside `span` (each poll enters it).
#[allow(dead_code)]
pub(crate) fn in_span<F: std::future::Future>(
    fut: F,
    span: Span,
) -> impl std::future::Future<Output = F::Output> {
    #[cfg(feature = "tracing")]
    return tracing::Instrument::instrument(fut, span);
    #[cfg(not(feature = "tracing"))]
    {
        let _ = span;
        fut
    }
}

/// The span type [`span!`] makes.
#[cfg(feature = "tracing")]
pub(crate) type Span = tracing::Span;
/// The span type [`span!`] makes.
#[cfg(not(feature = "tracing"))]
pub(crate) type Span = NoSpan;

/// What [`span!`] makes without the `tracing` feature: nothing.
#[cfg(not(feature = "tracing"))]
#[derive(Clone, Debug, Default)]
pub(crate) struct NoSpan;

/// What entering a [`NoSpan`] gives.
#[cfg(not(feature = "tracing"))]
pub(crate) struct NoGuard;

#[cfg(not(feature = "tracing"))]
#[allow(dead_code)]
impl NoSpan {
    pub(crate) fn enter(&self) -> NoGuard {
        NoGuard
    }
    pub(crate) fn entered(self) -> NoGuard {
        NoGuard
    }
    pub(crate) fn none() -> NoSpan {
        NoSpan
    }
    pub(crate) fn record<V>(&self, _field: &str, _value: V) {}
}

/// The message of a panic payload (a `&str` or a `String`), or a
/// placeholder.
pub(crate) fn panic_str(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

/// The entry point of a program that uses conex: runs `async fn main` on
/// a tokio runtime built after [`multiprocessing::init()`](crate::multiprocessing::init)
/// has run, so a child process started from this binary diverts to its
/// work before any thread exists (the fork server needs a single-threaded
/// process to fork from, and a spawned child must not run the program's
/// `main`). Use it where `#[tokio::main]` would go.
///
/// Options, as `#[tokio::main]`'s: `flavor = "multi_thread"` (the default)
/// or `"current_thread"`, and `worker_threads = N` (multi-thread only;
/// else tokio's default, one per core).
///
/// ```
/// #[conex::main(worker_threads = 2)]
/// async fn main() {
///     let t = conex::tasks::spawn(async { 6 * 7 });
///     assert_eq!(t.await, Ok(42));
/// }
/// ```
pub use conex_macros::main;

/// What `#[conex::main]` expands to (not part of the API).
#[doc(hidden)]
pub mod __main {
    /// `multiprocessing::init()` where there is one.
    pub fn init() {
        #[cfg(all(feature = "multiprocessing", any(unix, windows)))]
        crate::multiprocessing::init();
    }

    /// The program's runtime.
    ///
    /// # Panics
    /// If the OS refuses tokio its threads or its I/O driver.
    pub fn runtime(multi: bool, workers: Option<usize>) -> tokio::runtime::Runtime {
        let mut b = if multi {
            tokio::runtime::Builder::new_multi_thread()
        } else {
            tokio::runtime::Builder::new_current_thread()
        };
        if let Some(n) = workers {
            b.worker_threads(n);
        }
        b.enable_all()
            .build()
            .expect("#[conex::main]: cannot build the tokio runtime")
    }
}

pub mod _thread;
pub mod contextvars;
#[cfg(feature = "futures")]
pub mod futures;
#[cfg(all(feature = "multiprocessing", any(unix, windows)))]
pub mod multiprocessing;
/// What conex's macros expand to (not part of the API; no stability
/// promise): the one home of macro support.
#[cfg(all(feature = "multiprocessing", unix))]
#[doc(hidden)]
pub mod __private {
    pub use serde;

    /// A proxy call run to its end on the calling thread (an `expose!`d
    /// proxy's blocking facade).
    #[track_caller]
    pub fn block<F: Future>(f: F) -> F::Output {
        crate::multiprocessing::managers::block(f)
    }

    /// The error of a call to a method an `expose!`d type does not have.
    pub fn no_such_method(typeid: &str, method: &str) -> crate::multiprocessing::RemoteError {
        crate::multiprocessing::managers::no_such_method(typeid, method)
    }
}
#[cfg(feature = "queue")]
pub mod queue;
#[cfg(feature = "sched")]
pub mod sched;
#[cfg(all(feature = "subprocess", unix))]
pub mod subprocess;
#[cfg(feature = "tasks")]
pub mod tasks;
pub mod threading;
