//! The errors of the threading module, one small type per operation, named
//! after the Python exception each one stands for.

use std::fmt;

/// Why a `release` was refused.
///
/// Python: the `RuntimeError` of `Lock.release()` / `RLock.release()` and
/// the `ValueError` of `Semaphore.release(n)` / `BoundedSemaphore.release()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The lock was not locked (Python: `RuntimeError: release unlocked lock`).
    Unlocked,
    /// The caller does not own the reentrant lock (Python: `RuntimeError:
    /// cannot release un-acquired lock`).
    NotOwner,
    /// A bounded semaphore would go above its initial value (Python:
    /// `ValueError: Semaphore released too many times`).
    TooManyReleases,
    /// `release(0)` (Python: `ValueError: n must be one or more`).
    ZeroCount,
    /// The count would exceed [`Semaphore::MAX_VALUE`](super::Semaphore::MAX_VALUE).
    Overflow,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReleaseError::Unlocked => "release unlocked lock",
            ReleaseError::NotOwner => "cannot release un-acquired lock",
            ReleaseError::TooManyReleases => "Semaphore released too many times",
            ReleaseError::ZeroCount => "n must be one or more",
            ReleaseError::Overflow => "Semaphore count would exceed Semaphore::MAX_VALUE",
        })
    }
}

impl std::error::Error for ReleaseError {}

/// A condition was waited on or notified by a caller that does not hold
/// its lock (an `RLock` owned by someone else, or a lock released
/// Python-style while its guard was still around). The lock is left
/// exactly as it was.
///
/// Python: `RuntimeError: cannot wait on un-acquired lock` /
/// `cannot notify on un-acquired lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotOwned;

impl fmt::Display for NotOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot wait on or notify an un-acquired lock")
    }
}

impl std::error::Error for NotOwned {}

/// The barrier was broken (aborted, reset, timed out, or its action
/// panicked) while or before the caller waited.
///
/// Python: `threading.BrokenBarrierError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrokenBarrier;

impl fmt::Display for BrokenBarrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the barrier is broken")
    }
}

impl std::error::Error for BrokenBarrier {}

/// Why a join did not produce the thread's outcome.
///
/// Python: `Thread.join()` raises `RuntimeError` for a thread that was not
/// started or for the current thread, and returns with the thread still
/// alive on timeout; conex also reports how the target ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The thread has not been started (Python: `RuntimeError: cannot join
    /// thread before it is started`).
    NotStarted,
    /// A thread tried to join itself, which would wait forever (Python:
    /// `RuntimeError: cannot join current thread`).
    CurrentThread,
    /// The target panicked; the message of the panic (the excepthook has
    /// already been called with it).
    Panicked(String),
    /// The target never finished: its task was dropped (its runtime shut
    /// down, or it was aborted).
    Cancelled,
    /// A dummy Thread (an OS thread conex did not start) cannot be joined
    /// (Python: `AssertionError: cannot join a dummy thread`).
    DummyThread,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::NotStarted => f.write_str("cannot join thread before it is started"),
            JoinError::CurrentThread => f.write_str("cannot join current thread"),
            JoinError::Panicked(msg) => write!(f, "the thread panicked: {msg}"),
            JoinError::Cancelled => {
                f.write_str("the thread's task was cancelled before it finished")
            }
            JoinError::DummyThread => f.write_str("cannot join a dummy thread"),
        }
    }
}

impl std::error::Error for JoinError {}

/// Why a thread could not be started.
///
/// Python: `RuntimeError: threads can only be started once`, and the
/// `RuntimeError: can't start new thread` of an exhausted system.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// `start` was called a second time.
    AlreadyStarted,
    /// The operating system refused a new thread.
    Spawn(std::io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::AlreadyStarted => f.write_str("threads can only be started once"),
            StartError::Spawn(e) => write!(f, "can't start new thread: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Spawn(e) => Some(e),
            StartError::AlreadyStarted => None,
        }
    }
}

/// A thread property that can only change before `start` was changed after.
///
/// Python: `RuntimeError: cannot set daemon status of active thread`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlreadyStarted;

impl fmt::Display for AlreadyStarted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot set daemon status of active thread")
    }
}

impl std::error::Error for AlreadyStarted {}

/// An invalid thread stack size.
///
/// Python: `ValueError: size not valid: N bytes` from `threading.stack_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StackSizeError(pub usize);

impl fmt::Display for StackSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "size not valid: {} bytes (0, or at least 32 KiB)",
            self.0
        )
    }
}

impl std::error::Error for StackSizeError {}
