//! `SimpleQueue`: Python's unbounded FIFO queue without task tracking.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use super::Queue;
use super::errors::GetError;

/// An unbounded FIFO queue with no `task_done`/`join` and no shutdown: put
/// never waits.
///
/// Python: `queue.SimpleQueue`.
///
/// # Reentrancy
/// Python promises that `SimpleQueue.put` is reentrant: it may be called
/// from a `__del__` method or a weakref callback that runs in the middle
/// of another operation on the same queue. The Rust promise is the same
/// for destructors: no item is ever dropped while the queue's lock is
/// held (items leave by `get` only, and are dropped by their taker), so a
/// `Drop` that puts into the same queue, even that of one of its own
/// items, never deadlocks. A signal handler is another matter: `put`
/// allocates and takes a lock, so, as with every Rust collection, it must
/// not be called from one (hand a signal to a queue through a
/// self-pipe, or tokio's `signal`).
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::queue::SimpleQueue;
///
/// let q = SimpleQueue::new();
/// q.put("a");
/// q.put("b");
/// assert_eq!(q.get().await, "a");
/// assert_eq!(q.blocking().get(), "b");
/// assert!(q.empty());
/// # }
/// ```
pub struct SimpleQueue<T: Send + 'static> {
    queue: Queue<T>,
}

impl<T: Send + 'static> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            queue: self.queue.clone(),
        }
    }
}

impl<T: Send + 'static> Default for SimpleQueue<T> {
    fn default() -> Self {
        SimpleQueue::new()
    }
}

impl<T: Send + 'static> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("qsize", &self.qsize())
            .finish()
    }
}

fn never_shut<T>(r: Result<T, GetError>) -> T {
    r.unwrap_or_else(|_| unreachable!("a SimpleQueue is never shut down"))
}

impl<T: Send + 'static> SimpleQueue<T> {
    /// A new, empty queue.
    ///
    /// Python: `queue.SimpleQueue()`.
    pub fn new() -> SimpleQueue<T> {
        SimpleQueue {
            queue: Queue::unbounded(),
        }
    }

    /// Puts `item` (never waits: the queue is unbounded).
    ///
    /// Python: `SimpleQueue.put(item)` / `put_nowait(item)`.
    pub fn put(&self, item: T) {
        if self.queue.put_nowait(item).is_err() {
            unreachable!("an unbounded, never shut down queue takes every item");
        }
    }

    /// Takes an item, waiting while the queue is empty.
    ///
    /// Python: `SimpleQueue.get()`.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes takes no item.
    pub fn get(&self) -> impl Future<Output = T> + Send + '_ {
        let get = self.queue.get();
        async move { never_shut(get.await) }
    }

    /// The queue's items as a [`Stream`](futures::Stream) that never ends
    /// (a `SimpleQueue` is never shut down); see
    /// [`GetStream`](super::GetStream): a dropped stream took nothing.
    pub fn stream(&self) -> super::GetStream<T> {
        let q = self.clone();
        super::Gets::new(move || {
            let q = q.clone();
            Box::pin(async move { Some(q.get().await) })
        })
    }

    /// Takes an item only if one is there now.
    ///
    /// Python: `SimpleQueue.get_nowait()`.
    ///
    /// # Errors
    /// [`GetError::Empty`] (never `ShutDown`: a `SimpleQueue` is never shut
    /// down).
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.queue.get_nowait()
    }

    /// Takes an item, waiting at most `timeout` (tokio's clock).
    ///
    /// Python: `SimpleQueue.get(timeout=...)`.
    ///
    /// # Errors
    /// [`GetError::Empty`] after the timeout (a `SimpleQueue` is never shut
    /// down, so never [`GetError::ShutDown`]).
    ///
    /// # Cancel safety
    /// As [`get`](SimpleQueue::get).
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<T, GetError>> + Send + '_ {
        self.queue.get_timeout(timeout)
    }

    /// The number of items in the queue.
    ///
    /// Python: `SimpleQueue.qsize()`.
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// Whether the queue is empty.
    ///
    /// Python: `SimpleQueue.empty()`.
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }

    /// The blocking facade: the same queue, for OS threads.
    pub fn blocking(&self) -> BlockingSimpleQueue<'_, T> {
        BlockingSimpleQueue { queue: self }
    }
}

/// The blocking facade of a [`SimpleQueue`].
pub struct BlockingSimpleQueue<'a, T: Send + 'static> {
    queue: &'a SimpleQueue<T>,
}

impl<T: Send + 'static> fmt::Debug for BlockingSimpleQueue<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingSimpleQueue")
            .field(self.queue)
            .finish()
    }
}

impl<T: Send + 'static> BlockingSimpleQueue<'_, T> {
    /// Puts `item` (never blocks).
    pub fn put(&self, item: T) {
        self.queue.put(item);
    }

    /// Takes an item, blocking while the queue is empty.
    pub fn get(&self) -> T {
        never_shut(self.queue.queue.blocking().get())
    }

    /// Takes an item only if one is there now.
    ///
    /// # Errors
    /// [`GetError::Empty`] (never `ShutDown`: a `SimpleQueue` is never shut
    /// down).
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.queue.get_nowait()
    }

    /// Takes an item, blocking at most `timeout`.
    ///
    /// # Errors
    /// [`GetError::Empty`] after the timeout (a `SimpleQueue` is never shut
    /// down, so never [`GetError::ShutDown`]).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.queue.queue.blocking().get_timeout(timeout)
    }

    /// The number of items in the queue.
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// Whether the queue is empty.
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }
}
