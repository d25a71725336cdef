//! `Queue`, `LifoQueue`, `PriorityQueue`: Python's `queue` classes (and
//! asyncio's), one object for tasks and threads.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use super::core::{Core, Fifo, Got, Lifo, Order, Priority};
use super::errors::{GetError, PutError, TaskDoneError};
use crate::wait::{MapOp, WaitFuture, block_on, std_deadline};

/// Who waits on a queue: [`BaseQueue::n_waiting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Waiting {
    /// Tasks and threads waiting in `get`.
    pub getters: usize,
    /// Tasks and threads waiting in `put` (a bounded queue that is full).
    pub putters: usize,
    /// Tasks and threads waiting in `join` for unfinished work.
    pub joiners: usize,
}

/// The methods every queue kind shares (reached through `Deref` from
/// [`Queue`], [`LifoQueue`] and [`PriorityQueue`]); `O` is the order items
/// come out in.
///
/// Python: the methods of `queue.Queue` (and `asyncio.Queue`).
pub struct BaseQueue<T, O: Order<T>> {
    core: Arc<Core<T, O>>,
}

impl<T, O: Order<T>> Clone for BaseQueue<T, O> {
    fn clone(&self) -> Self {
        BaseQueue {
            core: self.core.clone(),
        }
    }
}

impl<T: Send + 'static, O: Order<T>> fmt::Debug for BaseQueue<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.qsize())
            .field("maxsize", &self.maxsize())
            .field("unfinished_tasks", &self.unfinished_tasks())
            .field("shutdown", &self.core.is_shutdown())
            .finish()
    }
}

fn got<T>(g: Got<T>) -> Result<T, GetError> {
    match g {
        Got::Item(v) => Ok(v),
        Got::ShutDown => Err(GetError::ShutDown),
        Got::Empty => Err(GetError::Empty),
    }
}

impl<T: Send + 'static, O: Order<T>> BaseQueue<T, O> {
    fn new(maxsize: usize) -> Self {
        BaseQueue {
            core: Arc::new(Core::new(maxsize)),
        }
    }

    /// Puts `item`, waiting while the queue is full.
    ///
    /// Python: `Queue.put(item)`.
    ///
    /// # Errors
    /// [`PutError::ShutDown`] (with the item) if the queue is or gets shut
    /// down. (An untimed put never reports `Full`: it waits.)
    ///
    /// # Cancel safety
    /// Dropping the future before it completes puts nothing (the item is
    /// dropped with it) and gives up its place among waiting putters; a
    /// free slot it had been woken for is passed to the next putter.
    pub fn put(&self, item: T) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
        WaitFuture::new(self.core.put(item))
    }

    /// The queue's items as a [`Stream`](futures::Stream), one `get` each,
    /// ending once it is shut down and drained; see [`GetStream`](super::GetStream)
    /// (cancel safety: a dropped stream took nothing). Holds a clone of the
    /// queue: streams and getters share the items.
    pub fn stream(&self) -> super::GetStream<T>
    where
        O: Send + Sync + 'static,
    {
        let q = self.clone();
        super::Gets::new(move || {
            let q = q.clone();
            Box::pin(async move { q.get().await.ok() })
        })
    }

    /// The queue as a [`Sink`](futures::Sink), one `put` each, waiting for
    /// room (backpressure); fails with [`PutError::ShutDown`] (the item
    /// back) after shutdown. See [`PutSink`](super::PutSink).
    pub fn sink(&self) -> super::PutSink<T, PutError<T>>
    where
        O: Send + Sync + 'static,
    {
        let q = self.clone();
        super::Puts::new(move |item| {
            let q = q.clone();
            Box::pin(async move { q.put(item).await })
        })
    }

    /// Puts `item` only if there is room now.
    ///
    /// Python: `Queue.put_nowait(item)` / `put(item, block=False)`.
    ///
    /// # Errors
    /// [`PutError::Full`] or [`PutError::ShutDown`], with the item.
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        self.core.try_put(item)
    }

    /// Puts `item`, waiting at most `timeout` (tokio's clock) for room.
    ///
    /// Python: `Queue.put(item, timeout=...)`.
    ///
    /// # Errors
    /// [`PutError::Full`] after the timeout, [`PutError::ShutDown`]; the item
    /// comes back either way.
    ///
    /// # Cancel safety
    /// As [`put`](BaseQueue::put).
    pub fn put_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), PutError<T>>> + Send + '_ {
        WaitFuture::timeout(self.core.put(item), timeout)
    }

    /// Takes an item, waiting while the queue is empty.
    ///
    /// Python: `Queue.get()`.
    ///
    /// # Errors
    /// [`GetError::ShutDown`] once the queue is shut down and drained. (An
    /// untimed get never reports `Empty`: it waits.)
    ///
    /// # Cancel safety
    /// Dropping the future before it completes takes no item; an item it
    /// had been woken for stays in the queue and the next getter is woken.
    pub fn get(&self) -> impl Future<Output = Result<T, GetError>> + Send + '_ {
        WaitFuture::new(MapOp::new(self.core.get(), got))
    }

    /// Takes an item only if one is there now.
    ///
    /// Python: `Queue.get_nowait()` / `get(block=False)`.
    ///
    /// # Errors
    /// [`GetError::Empty`], or [`GetError::ShutDown`] once shut down and
    /// drained.
    pub fn get_nowait(&self) -> Result<T, GetError> {
        match self.core.try_get() {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => Err(GetError::Empty),
        }
    }

    /// Takes an item, waiting at most `timeout` (tokio's clock).
    ///
    /// Python: `Queue.get(timeout=...)`.
    ///
    /// # Errors
    /// [`GetError::Empty`] after the timeout, [`GetError::ShutDown`].
    ///
    /// # Cancel safety
    /// As [`get`](BaseQueue::get).
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<T, GetError>> + Send + '_ {
        WaitFuture::timeout(MapOp::new(self.core.get(), got), timeout)
    }

    /// Marks one item taken earlier as processed.
    ///
    /// Python: `Queue.task_done()`.
    ///
    /// # Errors
    /// [`TaskDoneError`] if called more times than items were put.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.core.task_done()
    }

    /// Waits until every item put has been marked done with
    /// [`task_done`](BaseQueue::task_done).
    ///
    /// Python: `Queue.join()`.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing.
    pub fn join(&self) -> impl Future<Output = ()> + Send + '_ {
        WaitFuture::new(MapOp::new(self.core.join(), |_| ()))
    }

    /// Shuts the queue down: later puts fail with [`PutError::ShutDown`]; gets take
    /// what is left, then fail with [`GetError::ShutDown`]. With `immediate`, the items left are
    /// discarded (each counted as done) and joiners are released. Every
    /// blocked getter, putter (and, with `immediate`, joiner) wakes up.
    ///
    /// Python: `Queue.shutdown(immediate=False)` (3.13).
    pub fn shutdown(&self, immediate: bool) {
        self.core.shutdown(immediate);
    }

    /// The number of items in the queue.
    ///
    /// Python: `Queue.qsize()`.
    pub fn qsize(&self) -> usize {
        self.core.qsize()
    }

    /// Whether the queue is empty.
    ///
    /// Python: `Queue.empty()`.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items (never, for an unbounded one).
    ///
    /// Python: `Queue.full()`.
    pub fn full(&self) -> bool {
        self.core.full()
    }

    /// The bound given at creation (0: unbounded).
    ///
    /// Python: `Queue.maxsize`.
    pub fn maxsize(&self) -> usize {
        self.core.maxsize()
    }

    /// Items put and not yet marked done.
    ///
    /// Python: `Queue.unfinished_tasks`.
    pub fn unfinished_tasks(&self) -> usize {
        self.core.unfinished()
    }

    /// Whether [`shutdown`](BaseQueue::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.core.is_shutdown()
    }

    /// How many getters, putters and joiners wait right now: a snapshot,
    /// for monitoring and tests (Python has no public equivalent; the name
    /// is `Barrier.n_waiting`'s).
    pub fn n_waiting(&self) -> Waiting {
        let [getters, putters, joiners] = self.core.waiters();
        Waiting {
            getters,
            putters,
            joiners,
        }
    }

    /// The blocking facade: the same queue, for OS threads.
    pub fn blocking(&self) -> BlockingQueue<'_, T, O> {
        BlockingQueue { queue: self }
    }
}

macro_rules! queue_kind {
    ($(#[$doc:meta])* $name:ident, $order:ty, $python:literal, [$($bound:tt)*]) => {
        $(#[$doc])*
        pub struct $name<T: Send + 'static $($bound)*> {
            base: BaseQueue<T, $order>,
        }

        impl<T: Send + 'static $($bound)*> $name<T> {
            /// A queue holding at most `maxsize` items (0: unbounded).
            #[doc = concat!("\n\nPython: `", $python, "(maxsize)`.")]
            pub fn new(maxsize: usize) -> Self {
                $name {
                    base: BaseQueue::new(maxsize),
                }
            }

            /// An unbounded queue.
            pub fn unbounded() -> Self {
                Self::new(0)
            }
        }

        impl<T: Send + 'static $($bound)*> Default for $name<T> {
            fn default() -> Self {
                Self::unbounded()
            }
        }

        impl<T: Send + 'static $($bound)*> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name {
                    base: self.base.clone(),
                }
            }
        }

        impl<T: Send + 'static $($bound)*> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.base).finish()
            }
        }

        impl<T: Send + 'static $($bound)*> Deref for $name<T> {
            type Target = BaseQueue<T, $order>;

            fn deref(&self) -> &Self::Target {
                &self.base
            }
        }
    };
}

queue_kind!(
    /// A FIFO queue for tasks and threads alike, with task tracking and
    /// shutdown; every method is [`BaseQueue`]'s.
    ///
    /// Python: `queue.Queue` / `asyncio.Queue` (`Full`, `Empty`, `ShutDown`
    /// are `queue.Full`, `queue.Empty`, `queue.ShutDown` and asyncio's
    /// `QueueFull`, `QueueEmpty`, `QueueShutDown`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// use conex::queue::Queue;
    /// use conex::threading::Thread;
    ///
    /// let q = Queue::new(8);
    /// let q2 = q.clone();
    /// let worker = Thread::spawn_blocking(move || {
    ///     let mut sum = 0;
    ///     while let Ok(n) = q2.blocking().get() {
    ///         sum += n;
    ///         q2.task_done().unwrap();
    ///     }
    ///     sum
    /// });
    /// for n in 1..=10 {
    ///     q.put(n).await.unwrap();
    /// }
    /// q.join().await;     // every item processed
    /// q.shutdown(false);  // the worker's get() now fails: it returns
    /// assert_eq!(worker.join().await.unwrap(), 55);
    /// # }
    /// ```
    Queue, Fifo, "queue.Queue", []
);

queue_kind!(
    /// A LIFO queue (a stack); every method is [`BaseQueue`]'s.
    ///
    /// Python: `queue.LifoQueue` / `asyncio.LifoQueue`.
    ///
    /// # Examples
    ///
    /// ```
    /// use conex::queue::LifoQueue;
    ///
    /// let q = LifoQueue::unbounded();
    /// for n in 1..=3 {
    ///     q.put_nowait(n).unwrap();
    /// }
    /// assert_eq!(q.get_nowait(), Ok(3));
    /// ```
    LifoQueue, Lifo, "queue.LifoQueue", []
);

queue_kind!(
    /// A priority queue: the lowest item first, equal items in the order
    /// they were put (stable, unlike Python's heap); every method is
    /// [`BaseQueue`]'s.
    ///
    /// Python: `queue.PriorityQueue` / `asyncio.PriorityQueue`. Put
    /// `(priority, data)` tuples as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// use conex::queue::PriorityQueue;
    ///
    /// let q = PriorityQueue::unbounded();
    /// q.put_nowait((2, "b")).unwrap();
    /// q.put_nowait((1, "z")).unwrap();
    /// q.put_nowait((2, "a")).unwrap();
    /// assert_eq!(q.get_nowait(), Ok((1, "z")));
    /// assert_eq!(q.get_nowait(), Ok((2, "a")));
    /// ```
    PriorityQueue, Priority, "queue.PriorityQueue", [+ Ord]
);

/// The blocking facade of a queue: the same methods, waiting by parking the
/// OS thread; see [`BlockingLock`](crate::threading::BlockingLock) for where
/// it may block.
pub struct BlockingQueue<'a, T, O: Order<T>> {
    queue: &'a BaseQueue<T, O>,
}

impl<T, O: Order<T>> Clone for BlockingQueue<'_, T, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, O: Order<T>> Copy for BlockingQueue<'_, T, O> {}

impl<T: Send + 'static, O: Order<T>> fmt::Debug for BlockingQueue<'_, T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingQueue").field(self.queue).finish()
    }
}

impl<T: Send + 'static, O: Order<T>> BlockingQueue<'_, T, O> {
    /// Puts `item`, blocking while the queue is full.
    ///
    /// # Errors
    /// As [`BaseQueue::put`].
    #[track_caller]
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        block_on(self.queue.core.put(item), None)
    }

    /// Puts `item` only if there is room now.
    ///
    /// # Errors
    /// As [`BaseQueue::put_nowait`].
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        self.queue.put_nowait(item)
    }

    /// Puts `item`, blocking at most `timeout`.
    ///
    /// # Errors
    /// As [`BaseQueue::put_timeout`].
    #[track_caller]
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        block_on(self.queue.core.put(item), std_deadline(timeout))
    }

    /// Takes an item, blocking while the queue is empty.
    ///
    /// # Errors
    /// As [`BaseQueue::get`].
    #[track_caller]
    pub fn get(&self) -> Result<T, GetError> {
        got(block_on(self.queue.core.get(), None))
    }

    /// Takes an item only if one is there now.
    ///
    /// # Errors
    /// As [`BaseQueue::get_nowait`].
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.queue.get_nowait()
    }

    /// Takes an item, blocking at most `timeout`.
    ///
    /// # Errors
    /// As [`BaseQueue::get_timeout`].
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        got(block_on(self.queue.core.get(), std_deadline(timeout)))
    }

    /// Marks one item as processed.
    ///
    /// # Errors
    /// As [`BaseQueue::task_done`].
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        self.queue.task_done()
    }

    /// Blocks until every item put has been marked done.
    #[track_caller]
    pub fn join(&self) {
        block_on(self.queue.core.join(), None);
    }

    /// Shuts the queue down (see [`BaseQueue::shutdown`]).
    pub fn shutdown(&self, immediate: bool) {
        self.queue.shutdown(immediate);
    }

    /// The number of items in the queue.
    pub fn qsize(&self) -> usize {
        self.queue.qsize()
    }

    /// Whether the queue is empty.
    pub fn empty(&self) -> bool {
        self.queue.empty()
    }

    /// Whether the queue is full.
    pub fn full(&self) -> bool {
        self.queue.full()
    }
}
