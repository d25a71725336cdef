//! The cross-process `Queue`.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::errors::{GetError, PutError};
use super::ring::{Ring, RingError};
use crate::multiprocessing::handles;
use crate::multiprocessing::synchronize::Block;
use crate::multiprocessing::synchronize::sem::deadline;

/// The byte capacity of a queue made by [`Queue::new`]: 1 MiB of encoded
/// items in flight.
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// A FIFO queue shared by processes. Python: `multiprocessing.Queue(maxsize)`.
///
/// Any number of producer and consumer processes (and tasks and threads
/// in each) share it: pass it to children as an argument. `maxsize` 0 is
/// unbounded (in items; the bytes in flight are bounded by the queue's
/// capacity, [`DEFAULT_CAPACITY`] unless [`Queue::with_capacity`] says
/// otherwise: a put that finds too few free bytes waits for gets, as a
/// put on a full queue does).
///
/// | Python | here |
/// |---|---|
/// | `put(obj)`, `put(obj, timeout=t)`, `put_nowait(obj)` | [`put`](Queue::put), [`put_timeout`](Queue::put_timeout), [`put_nowait`](Queue::put_nowait) |
/// | `get()`, `get(timeout=t)`, `get_nowait()` | [`get`](Queue::get), [`get_timeout`](Queue::get_timeout), [`get_nowait`](Queue::get_nowait) |
/// | `qsize()`, `empty()`, `full()` | same names (exact: the counts are shared) |
/// | `shutdown(immediate)` (3.13's `queue.Queue`) | [`shutdown`](Queue::shutdown) |
/// | `close()`, `join_thread()`, `cancel_join_thread()` | not needed: there is no feeder thread; an item is in shared memory when `put` returns, so a producer that exits right after loses nothing |
///
/// # Cancel safety
/// A dropped `put` or `get` takes nothing and loses nothing: the put or
/// get itself runs in the future's poll, in one step (a put is in the
/// queue, or not at all; an item is taken only by a poll that returns
/// it); the wait before it queues on this process's watch of the ring (one
/// thread sleeps on the futex for every waiting task), takes nothing, and
/// passes on a wake-up it was given.
///
/// # What survives a kill
/// A process killed at any instruction (SIGKILL, mid-`put` or mid-`get`)
/// leaves the queue whole for every other process: the queue's internal
/// lock is taken over from a dead holder, and each change is published
/// by one atomic store, so no item is duplicated, invented or stuck and
/// no slot leaks. What is lost is at most the item in the dying
/// process's hands: the one it was putting (not yet in the queue) or
/// the one it had got. Every timeout still fires. Sleepers that the dead
/// process would have woken wake within 100 ms. CPython's queue, with a
/// consumer killed mid-`get`, can stay locked for good.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// use conex::multiprocessing::Queue;
///
/// let q = Queue::<String>::new(2)?;
/// q.put("a".into()).await.unwrap();
/// q.put_nowait("b".into()).unwrap();
/// assert!(q.put_nowait("c".into()).unwrap_err().is_full());
/// assert_eq!(q.get().await.unwrap(), "a");
/// assert_eq!(q.blocking().get().unwrap(), "b");
/// # Ok(()) }
/// ```
pub struct Queue<T> {
    ring: Ring,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            ring: self.ring.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (*self.ring.block).serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Queue<T>, D::Error> {
        let ring = Ring::from_block(Block::deserialize(d)?).map_err(serde::de::Error::custom)?;
        Ok(Queue {
            ring,
            _t: PhantomData,
        })
    }
}

fn put_err<T>(e: RingError, item: T) -> PutError<T> {
    match e {
        RingError::ShutDown => PutError::ShutDown(item),
        RingError::TooLarge(n, cap) => PutError::Item(
            item,
            format!("{n} bytes encoded, more than the queue's capacity of {cap}"),
        ),
        RingError::Full | RingError::Empty | RingError::Corrupt => PutError::Full(item),
    }
}

fn get_err(e: RingError) -> GetError {
    match e {
        RingError::ShutDown => GetError::ShutDown,
        RingError::Corrupt => {
            GetError::Decode("the queue's shared block was overwritten by another program".into())
        }
        _ => GetError::Empty,
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A queue of at most `maxsize` items (0: unbounded).
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new(maxsize: usize) -> std::io::Result<Queue<T>> {
        Self::with_capacity(maxsize, DEFAULT_CAPACITY)
    }

    /// An unbounded queue.
    ///
    /// # Errors
    /// As [`new`](Queue::new).
    pub fn unbounded() -> std::io::Result<Queue<T>> {
        Self::new(0)
    }

    /// A queue of at most `maxsize` items and `bytes` bytes of encoded
    /// items in flight (each item also takes 4 bytes of framing).
    ///
    /// # Errors
    /// As [`new`](Queue::new).
    pub fn with_capacity(maxsize: usize, bytes: usize) -> std::io::Result<Queue<T>> {
        Ok(Queue {
            ring: Ring::new(maxsize, bytes)?,
            _t: PhantomData,
        })
    }

    fn encode(item: &T) -> Result<Vec<u8>, String> {
        let (bytes, fds) = handles::collect(|| postcard::to_allocvec(item));
        if !fds.is_empty() {
            return Err("a queue cannot carry OS handles (send them over a Connection)".into());
        }
        bytes.map_err(|e| e.to_string())
    }

    fn decode(bytes: &[u8]) -> Result<T, GetError> {
        postcard::from_bytes(bytes).map_err(|e| GetError::Decode(e.to_string()))
    }

    fn decoded(got: Result<Vec<u8>, RingError>) -> Result<T, GetError> {
        Self::decode(&got.map_err(get_err)?)
    }

    async fn put_until(
        &self,
        item: T,
        deadline: Option<std::time::Instant>,
    ) -> Result<(), PutError<T>> {
        let bytes = match Self::encode(&item) {
            Ok(b) => b,
            Err(m) => return Err(PutError::Item(item, m)),
        };
        self.ring
            .put_async(&bytes, deadline)
            .await
            .map_err(|e| put_err(e, item))
    }

    /// Puts `item`, waiting for room. Python: `put(obj)`.
    ///
    /// # Errors
    /// `ShutDown`; `Item` when the item cannot be queued.
    pub async fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None).await
    }

    /// Puts `item` if that needs no wait. Python: `put_nowait(obj)`.
    ///
    /// # Errors
    /// `Full`, `ShutDown`, `Item`.
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        let bytes = match Self::encode(&item) {
            Ok(b) => b,
            Err(m) => return Err(PutError::Item(item, m)),
        };
        self.ring
            .put(&bytes, false, None, None)
            .map_err(|e| put_err(e, item))
    }

    /// Puts `item`, waiting at most `timeout`. Python: `put(obj, timeout=t)`.
    ///
    /// # Errors
    /// `Full`, `ShutDown`, `Item`.
    pub async fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, deadline(timeout)).await
    }

    /// Takes the next item, waiting for one. Python: `get()`.
    ///
    /// # Errors
    /// `ShutDown` once shut down and drained; `Decode`.
    pub async fn get(&self) -> Result<T, GetError> {
        Self::decoded(self.ring.get_async(None).await)
    }

    /// The queue's items as a [`Stream`](futures::Stream), one `get`
    /// each: `Ok(item)`, or `Err` for an item that could not be decoded
    /// (the stream goes on); it ends once the queue is shut down and
    /// drained. A dropped stream took nothing (see
    /// [`GetStream`](crate::queue::GetStream)). Holds a clone of the
    /// handle: streams and getters, of every process, share the items.
    pub fn stream(&self) -> crate::queue::GetStream<Result<T, GetError>>
    where
        T: Send + 'static,
    {
        let q = self.clone();
        crate::queue::Gets::new(move || {
            let q = q.clone();
            Box::pin(async move {
                match q.get().await {
                    Err(GetError::ShutDown) => None,
                    r => Some(r),
                }
            })
        })
    }

    /// The queue as a [`Sink`](futures::Sink), one `put` each, waiting for
    /// room; errs with the put's error (the item back): `ShutDown` after
    /// shutdown, `Item` for one that cannot be encoded. See
    /// [`PutSink`](crate::queue::PutSink).
    pub fn sink(&self) -> crate::queue::PutSink<T, PutError<T>>
    where
        T: Send + 'static,
    {
        let q = self.clone();
        crate::queue::Puts::new(move |item| {
            let q = q.clone();
            Box::pin(async move { q.put(item).await })
        })
    }

    /// Takes the next item if there is one. Python: `get_nowait()`.
    ///
    /// # Errors
    /// `Empty`, `ShutDown`, `Decode`.
    pub fn get_nowait(&self) -> Result<T, GetError> {
        Self::decoded(self.ring.get(false, None, None))
    }

    /// Takes the next item, waiting at most `timeout`. Python:
    /// `get(timeout=t)`.
    ///
    /// # Errors
    /// `Empty`, `ShutDown`, `Decode`.
    pub async fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        Self::decoded(self.ring.get_async(deadline(timeout)).await)
    }

    /// Items queued now. Python: `qsize()`.
    pub fn qsize(&self) -> usize {
        self.ring.qsize()
    }

    /// Whether no item is queued. Python: `empty()`.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether `maxsize` items are queued. Python: `full()`.
    pub fn full(&self) -> bool {
        let m = self.ring.maxsize();
        m > 0 && self.qsize() >= m
    }

    /// Its maxsize (0: unbounded).
    pub fn maxsize(&self) -> usize {
        self.ring.maxsize()
    }

    /// Shuts it down, for every process: puts fail with `ShutDown`; gets
    /// drain what is queued, then fail with `ShutDown`; with `immediate`
    /// the queued items are dropped at once (and counted done). Every
    /// waiter wakes. Python 3.13: `queue.Queue.shutdown(immediate)`.
    pub fn shutdown(&self, immediate: bool) {
        self.ring.shutdown(immediate)
    }

    /// Whether it was shut down.
    pub fn is_shutdown(&self) -> bool {
        self.ring.is_shutdown()
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingQueue<'_, T> {
        BlockingQueue { q: self }
    }
}

impl<T> Queue<T> {
    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("multiprocessing::Queue")
            .field("qsize", &self.ring.qsize())
            .field("maxsize", &self.ring.maxsize())
            .field("shutdown", &self.ring.is_shutdown())
            .finish()
    }
}

/// The blocking facade of a [`Queue`].
pub struct BlockingQueue<'a, T> {
    q: &'a Queue<T>,
}

impl<T> fmt::Debug for BlockingQueue<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingQueue").field(self.q).finish()
    }
}

impl<T: Serialize + DeserializeOwned> BlockingQueue<'_, T> {
    fn put_until(&self, item: T, deadline: Option<std::time::Instant>) -> Result<(), PutError<T>> {
        let bytes = match Queue::<T>::encode(&item) {
            Ok(b) => b,
            Err(m) => return Err(PutError::Item(item, m)),
        };
        self.q
            .ring
            .put(&bytes, true, deadline, None)
            .map_err(|e| put_err(e, item))
    }

    /// [`Queue::put`], blocking.
    ///
    /// # Errors
    /// As `put`.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_until(item, None)
    }

    /// [`Queue::put_nowait`].
    ///
    /// # Errors
    /// As `put_nowait`.
    pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        self.q.put_nowait(item)
    }

    /// [`Queue::put_timeout`], blocking.
    ///
    /// # Errors
    /// As `put_timeout`.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_until(item, deadline(timeout))
    }

    /// [`Queue::get`], blocking.
    ///
    /// # Errors
    /// As `get`.
    pub fn get(&self) -> Result<T, GetError> {
        Queue::<T>::decoded(self.q.ring.get(true, None, None))
    }

    /// [`Queue::get_nowait`].
    ///
    /// # Errors
    /// As `get_nowait`.
    pub fn get_nowait(&self) -> Result<T, GetError> {
        self.q.get_nowait()
    }

    /// [`Queue::get_timeout`], blocking.
    ///
    /// # Errors
    /// As `get_timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        Queue::<T>::decoded(self.q.ring.get(true, deadline(timeout), None))
    }
}
