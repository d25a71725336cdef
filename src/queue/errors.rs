//! The queue errors. One rule for every queue of the crate (in-process
//! and cross-process): each get-family method (`get`, `get_nowait`,
//! `get_timeout`) fails with a [`GetError`], each put-family method with a
//! [`PutError`] that hands the item back. Their variants are Python's
//! exceptions: `queue.Empty`, `queue.Full`, `queue.ShutDown`. A variant
//! that cannot happen for a call is documented so (an untimed `get` waits
//! instead of reporting `Empty`).

use std::fmt;

/// Why a put failed; the item is handed back either way.
///
/// Python: `queue.Full` (from `put_nowait` / `put(timeout=)`) or
/// `queue.ShutDown` (from any put), and asyncio's `QueueFull` /
/// `QueueShutDown`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum PutError<T> {
    /// The queue was full.
    Full(T),
    /// The queue is shut down.
    ShutDown(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(v) | PutError::ShutDown(v) => v,
        }
    }

    /// Whether the queue was full (rather than shut down).
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.debug_tuple("Full").finish_non_exhaustive(),
            PutError::ShutDown(_) => f.debug_tuple("ShutDown").finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full"),
            PutError::ShutDown(_) => f.write_str("the queue is shut down"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why a get failed.
///
/// Python: `queue.Empty` (from `get_nowait` / `get(timeout=)`) or
/// `queue.ShutDown` (from any get, once shut down and drained), and
/// asyncio's `QueueEmpty` / `QueueShutDown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetError {
    /// The queue was empty.
    Empty,
    /// The queue is shut down and drained.
    ShutDown,
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty"),
            GetError::ShutDown => f.write_str("the queue is shut down"),
        }
    }
}

impl std::error::Error for GetError {}

/// `task_done` was called more times than items were put.
///
/// Python: `ValueError: task_done() called too many times`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called too many times")
    }
}

impl std::error::Error for TaskDoneError {}
