//! Python's low-level `_thread` module, where its names mean something in
//! Rust.
//!
//! | Python | conex |
//! |---|---|
//! | `start_new_thread(f, args)` | [`start_new_thread`] (a daemon OS thread; panics go to the excepthook) |
//! | `allocate_lock()`, `LockType` | [`allocate_lock`], [`LockType`] (the [`Lock`]) |
//! | `get_ident`, `get_native_id`, `stack_size`, `TIMEOUT_MAX` | re-exported from [`threading`](crate::threading) |
//! | `interrupt_main(signum)` | [`interrupt_main`], [`interrupt_main_signal`] |
//! | `exit()` | return from the thread's function (Rust has no `SystemExit`) |
//! | `error` | [`ReleaseError`](crate::threading::ReleaseError) and the other typed errors |

use std::fmt;

use crate::threading::{Lock, StartError, Thread};
pub use crate::threading::{TIMEOUT_MAX, get_ident, get_native_id, set_stack_size, stack_size};

/// The type of [`allocate_lock`]'s locks.
///
/// Python: `_thread.LockType`.
pub type LockType = Lock;

/// Starts `function` on a new daemon OS thread and returns its identifier.
/// A panic goes to the [excepthook](crate::threading::excepthook).
///
/// Python: `_thread.start_new_thread(function, args)`.
///
/// # Errors
/// [`StartError::Spawn`] if the operating system refuses a thread.
///
/// # Examples
///
/// ```
/// use conex::_thread;
///
/// let done = _thread::allocate_lock();
/// done.try_acquire();
/// let d2 = done.clone();
/// let ident = _thread::start_new_thread(move || d2.release().unwrap()).unwrap();
/// assert!(ident > 0);
/// done.blocking().acquire(); // released by the new thread
/// ```
pub fn start_new_thread(function: impl FnOnce() + Send + 'static) -> Result<u64, StartError> {
    let handle = Thread::builder().daemon(true).spawn_blocking(function)?;
    Ok(handle.ident().expect("a started thread has an ident"))
}

/// A new, unlocked [`Lock`].
///
/// Python: `_thread.allocate_lock()`.
///
/// # Examples
///
/// ```
/// let lock = conex::_thread::allocate_lock();
/// assert!(lock.try_acquire());
/// assert!(lock.locked());
/// lock.release().unwrap();
/// ```
pub fn allocate_lock() -> Lock {
    Lock::new()
}

/// Why [`interrupt_main_signal`] could not act.
///
/// Python: the `ValueError` of `interrupt_main` for an invalid signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InterruptError {
    /// Not a signal number this platform knows.
    InvalidSignal(i32),
    /// This platform has no signals to simulate.
    Unsupported,
}

impl fmt::Display for InterruptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterruptError::InvalidSignal(n) => write!(f, "signal number {n} out of range"),
            InterruptError::Unsupported => f.write_str("interrupt_main is not supported here"),
        }
    }
}

impl std::error::Error for InterruptError {}

/// [`interrupt_main_signal`] with `SIGINT`.
///
/// Python: `_thread.interrupt_main()`.
///
/// # Errors
/// As [`interrupt_main_signal`].
///
/// # Examples
///
/// ```
/// // Nothing handles SIGINT here: like Python, this does nothing (and the
/// // process is not killed).
/// conex::_thread::interrupt_main().unwrap();
/// ```
pub fn interrupt_main() -> Result<(), InterruptError> {
    #[cfg(unix)]
    {
        interrupt_main_signal(libc::SIGINT)
    }
    #[cfg(not(unix))]
    {
        Err(InterruptError::Unsupported)
    }
}

/// Simulates the arrival of signal `signum`, as Python does: if the program
/// handles the signal (for example `tokio::signal::ctrl_c()` is listening),
/// the signal is raised for the process so that handler runs; if the signal
/// has its default disposition or is ignored, nothing happens (Python: "this
/// function does nothing") instead of killing the process.
///
/// Python: `_thread.interrupt_main(signum)`.
///
/// # Errors
/// [`InterruptError::InvalidSignal`] for an unknown signal number;
/// [`InterruptError::Unsupported`] off Unix.
///
/// # Examples
///
/// ```
/// use conex::_thread::{interrupt_main_signal, InterruptError};
///
/// assert_eq!(interrupt_main_signal(-1), Err(InterruptError::InvalidSignal(-1)));
/// ```
pub fn interrupt_main_signal(signum: i32) -> Result<(), InterruptError> {
    #[cfg(unix)]
    {
        match crate::sys::signal_handled(signum) {
            None => Err(InterruptError::InvalidSignal(signum)),
            Some(false) => Ok(()),
            Some(true) if crate::sys::raise(signum) => Ok(()),
            Some(true) => Err(InterruptError::InvalidSignal(signum)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = signum;
        Err(InterruptError::Unsupported)
    }
}
