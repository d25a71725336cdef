//! Queues as `futures::Stream`s and `futures::Sink`s: [`GetStream`] gets
//! items until the queue is shut down and drained; [`PutSink`] puts them,
//! waiting for room (backpressure). Both hold a clone of the queue, so
//! many streams and sinks on one queue share its items as many getters and
//! putters do. The same two types serve the cross-process queues.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};

type Next<I> = Pin<Box<dyn Future<Output = Option<I>> + Send>>;
type Put<E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send>>;

/// The items of a queue as a [`Stream`]: each is one `get`; the stream
/// ends once the queue is shut down and drained (Python's `for item in
/// iter(q.get, sentinel)`, with shutdown as the sentinel).
///
/// # Cancel safety
/// Dropping the stream (or a `next()` future) between items takes no
/// item: the pending `get` is dropped, and a `get` that is dropped takes
/// nothing and passes its wake-up on.
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::queue::Queue;
/// use futures::StreamExt;
///
/// let q = Queue::unbounded();
/// for i in 0..3 {
///     q.put_nowait(i).unwrap();
/// }
/// q.shutdown(false);
/// let items: Vec<i32> = q.stream().collect().await;
/// assert_eq!(items, [0, 1, 2]);
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct GetStream<I> {
    next: Box<dyn FnMut() -> Next<I> + Send>,
    pending: Option<Next<I>>,
    done: bool,
}

impl<I> GetStream<I> {
    /// A stream whose items come from the futures `next` makes (`None`:
    /// the end).
    pub(crate) fn new(next: impl FnMut() -> Next<I> + Send + 'static) -> GetStream<I> {
        GetStream {
            next: Box::new(next),
            pending: None,
            done: false,
        }
    }
}

impl<I> Stream for GetStream<I> {
    type Item = I;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<I>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let next = &mut this.next;
        let fut = this.pending.get_or_insert_with(|| next());
        let got = futures::ready!(fut.as_mut().poll(cx));
        this.pending = None;
        if got.is_none() {
            this.done = true;
        }
        Poll::Ready(got)
    }
}

impl<I> futures::stream::FusedStream for GetStream<I> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<I> fmt::Debug for GetStream<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetStream")
            .field("pending", &self.pending.is_some())
            .field("done", &self.done)
            .finish()
    }
}

/// A queue as a [`Sink`]: each item is one `put`, which waits while the
/// queue is full (backpressure: `poll_ready` is pending until the item
/// before is in). After shutdown a send fails with the queue's `ShutDown`
/// error, which hands the item back.
///
/// # Cancel safety
/// An item is in the queue once the `send` (or `feed` and `flush`) that
/// took it returns. The sink holds at most one item while it waits for
/// room; dropping the sink then drops that item, as every `Sink` drops
/// what it has not flushed. Between sends it holds nothing.
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::queue::Queue;
/// use futures::{SinkExt, StreamExt};
///
/// let q = Queue::new(2);
/// let mut sink = q.sink();
/// let producer = tokio::spawn(async move {
///     sink.send_all(&mut futures::stream::iter((0..10).map(Ok))).await.unwrap();
///     sink.close().await.unwrap();
/// });
/// let got: Vec<i32> = q.stream().take(10).collect().await;
/// producer.await.unwrap();
/// assert_eq!(got, (0..10).collect::<Vec<_>>());
/// # }
/// ```
#[must_use = "sinks do nothing unless polled"]
pub struct PutSink<T, E> {
    put: Box<dyn FnMut(T) -> Put<E> + Send>,
    pending: Option<Put<E>>,
}

impl<T, E> PutSink<T, E> {
    /// A sink whose sends are the futures `put` makes.
    pub(crate) fn new(put: impl FnMut(T) -> Put<E> + Send + 'static) -> PutSink<T, E> {
        PutSink {
            put: Box::new(put),
            pending: None,
        }
    }

    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        if let Some(fut) = self.pending.as_mut() {
            let r = futures::ready!(fut.as_mut().poll(cx));
            self.pending = None;
            r?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T, E> Sink<T> for PutSink<T, E> {
    type Error = E;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.get_mut().poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), E> {
        let this = self.get_mut();
        debug_assert!(this.pending.is_none(), "start_send without poll_ready");
        this.pending = Some((this.put)(item));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.get_mut().poll_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.get_mut().poll_pending(cx)
    }
}

impl<T, E> fmt::Debug for PutSink<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutSink")
            .field("pending", &self.pending.is_some())
            .finish()
    }
}
