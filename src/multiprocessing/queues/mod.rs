//! Cross-process queues: Python's `multiprocessing.Queue`,
//! `JoinableQueue` and `SimpleQueue`, with the semantics of the
//! in-process [`crate::queue::Queue`] (maxsize, `Full` / `Empty`,
//! timeouts, shutdown, task tracking) and async and blocking faces.
//!
//! Items are postcard-encoded into a byte ring in shared memory
//! ([`ring`]); a queue is serde data (its block crosses as a
//! descriptor), so it is passed to children as an argument. Items cannot
//! carry OS handles (send a `Connection` over a `Connection` instead).

mod errors;
mod joinable;
mod queue;
pub(crate) mod ring;
mod simple;

pub use errors::{GetError, PutError};
pub use joinable::JoinableQueue;
pub use queue::{BlockingQueue, DEFAULT_CAPACITY, Queue};
pub use simple::SimpleQueue;
