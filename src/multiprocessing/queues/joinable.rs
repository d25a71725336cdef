//! The cross-process `JoinableQueue`.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::queue::Queue;
use crate::queue::TaskDoneError;

/// A [`Queue`] that counts unfinished tasks. Python:
/// `multiprocessing.JoinableQueue(maxsize)`.
///
/// Every put adds a task; [`task_done`](JoinableQueue::task_done), called
/// by a consumer in any process, finishes one; [`join`](JoinableQueue::join)
/// waits until none is left. Everything else is the [`Queue`]'s (it
/// derefs to it, `blocking()` included).
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let q = conex::multiprocessing::JoinableQueue::<u32>::new(0)?;
/// q.put(1).await.unwrap();
/// assert_eq!(q.unfinished_tasks(), 1);
/// q.get().await.unwrap();
/// q.task_done().unwrap();
/// q.join().await; // returns at once: nothing unfinished
/// assert!(q.task_done().is_err());
/// # Ok(()) }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct JoinableQueue<T> {
    q: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { q: self.q.clone() }
    }
}

impl<T> std::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.q
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// A joinable queue of at most `maxsize` items (0: unbounded).
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new(maxsize: usize) -> std::io::Result<JoinableQueue<T>> {
        Ok(JoinableQueue {
            q: Queue::new(maxsize)?,
        })
    }

    /// Finishes one task. Python: `task_done()`.
    ///
    /// # Errors
    /// [`TaskDoneError`] if no task is unfinished.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.q.ring().task_done() {
            Ok(())
        } else {
            Err(TaskDoneError)
        }
    }

    /// Tasks put and not yet done.
    pub fn unfinished_tasks(&self) -> usize {
        self.q.ring().unfinished()
    }

    /// Waits until every task put is done. Python: `join()`.
    ///
    /// # Cancel safety
    /// Waiting takes nothing.
    pub async fn join(&self) {
        if self.unfinished_tasks() == 0 {
            return;
        }
        self.q.ring().join_async().await;
    }

    /// [`join`](JoinableQueue::join), blocking.
    pub fn join_blocking(&self) {
        self.q.ring().join_blocking(None)
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("multiprocessing::JoinableQueue")
            .field("queue", &self.q)
            .field("unfinished", &self.q.ring().unfinished())
            .finish()
    }
}
