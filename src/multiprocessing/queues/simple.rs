//! The cross-process `SimpleQueue`.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::queue::Queue;

/// An unbounded queue with the few calls of Python's
/// `multiprocessing.SimpleQueue`: `put`, `get`, `empty` (and the blocking
/// facade). It derefs to the [`Queue`] it is.
///
/// ```
/// let q = conex::multiprocessing::SimpleQueue::<(u8, String)>::new()?;
/// q.blocking().put((1, "one".into())).unwrap();
/// assert!(!q.empty());
/// assert_eq!(q.blocking().get().unwrap().1, "one");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SimpleQueue<T> {
    q: Queue<T>,
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue { q: self.q.clone() }
    }
}

impl<T> std::ops::Deref for SimpleQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.q
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// A new, empty queue.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new() -> std::io::Result<SimpleQueue<T>> {
        Ok(SimpleQueue {
            q: Queue::unbounded()?,
        })
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("multiprocessing::SimpleQueue")
            .field(&self.q)
            .finish()
    }
}
