//! The errors of the cross-process queues.

use std::fmt;

/// Why a put failed; the item is handed back.
///
/// Python: `queue.Full`, `ShutDown`, and the pickling error of an item
/// that cannot be sent.
pub enum PutError<T> {
    /// No room before the timeout (or at once, for `put_nowait`).
    Full(T),
    /// The queue is shut down.
    ShutDown(T),
    /// The item cannot go into the queue: it does not encode, carries OS
    /// handles, or is larger than the queue's byte capacity.
    Item(T, String),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(v) | PutError::ShutDown(v) | PutError::Item(v, _) => v,
        }
    }

    /// Whether the queue was full.
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
            PutError::Item(_, m) => f.debug_tuple("Item").field(&"..").field(m).finish(),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Full(_) => f.write_str("the queue is full"),
            PutError::ShutDown(_) => f.write_str("the queue is shut down"),
            PutError::Item(_, m) => write!(f, "the item cannot be queued: {m}"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why a get failed.
///
/// Python: `queue.Empty`, `ShutDown`, and the unpickling error of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    /// Nothing came before the timeout (or at once, for `get_nowait`).
    Empty,
    /// The queue is shut down and drained.
    ShutDown,
    /// The item is not of the type asked for (it is consumed).
    Decode(String),
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::Empty => f.write_str("the queue is empty"),
            GetError::ShutDown => f.write_str("the queue is shut down"),
            GetError::Decode(m) => write!(f, "the item does not decode: {m}"),
        }
    }
}

impl std::error::Error for GetError {}
