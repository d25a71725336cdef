//! The queue errors, named after Python's `queue.Empty`, `queue.Full` and
//! `queue.ShutDown`. A value that could not be put comes back inside the
//! error.

use std::fmt;

/// The queue was empty (for the whole timeout, if there was one).
///
/// Python: `queue.Empty` / `asyncio.QueueEmpty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Empty;

impl fmt::Display for Empty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is empty")
    }
}

impl std::error::Error for Empty {}

/// The queue was full (for the whole timeout, if there was one); the item
/// is handed back.
///
/// Python: `queue.Full` / `asyncio.QueueFull`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Full").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is full")
    }
}

impl<T> std::error::Error for Full<T> {}

/// The queue was shut down. From a put it hands the item back; from a get
/// it means the queue is shut down and drained.
///
/// Python: `queue.ShutDown` / `asyncio.QueueShutDown` (3.13).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShutDown<T = ()>(pub T);

impl<T> ShutDown<T> {
    /// The item that was not put (`()` for a get).
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for ShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ShutDown").finish_non_exhaustive()
    }
}

impl<T> fmt::Display for ShutDown<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the queue is shut down")
    }
}

impl<T> std::error::Error for ShutDown<T> {}

/// Why a put that could not wait (or waited out its timeout) failed; the
/// item is handed back either way.
///
/// Python: `queue.Full` or `queue.ShutDown` from `put_nowait` / `put(timeout=)`.
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

impl<T> From<Full<T>> for PutError<T> {
    fn from(e: Full<T>) -> Self {
        PutError::Full(e.0)
    }
}

impl<T> From<ShutDown<T>> for PutError<T> {
    fn from(e: ShutDown<T>) -> Self {
        PutError::ShutDown(e.0)
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

/// Why a get that could not wait (or waited out its timeout) failed.
///
/// Python: `queue.Empty` or `queue.ShutDown` from `get_nowait` / `get(timeout=)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetError {
    /// The queue was empty.
    Empty,
    /// The queue is shut down and drained.
    ShutDown,
}

impl From<Empty> for GetError {
    fn from(_: Empty) -> Self {
        GetError::Empty
    }
}

impl From<ShutDown> for GetError {
    fn from(_: ShutDown) -> Self {
        GetError::ShutDown
    }
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
