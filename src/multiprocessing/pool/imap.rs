//! [`IMap`]: the results of `imap` and `imap_unordered`.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::futures::{Future, FutureError};
use crate::queue::SimpleQueue;

/// The results of [`imap`](super::PoolOf::imap) (input order) or
/// [`imap_unordered`](super::PoolOf::imap_unordered) (completion order): an
/// `Iterator` that blocks the thread, or
/// [`next_async`](IMap::next_async) for tasks.
///
/// Python: `multiprocessing.pool.IMapIterator` (`next(timeout)` is
/// [`next_timeout`](IMap::next_timeout)).
pub struct IMap<R> {
    futures: VecDeque<Option<Future<R>>>,
    /// Unordered: indices of finished futures, in the order they finished.
    finished: Option<SimpleQueue<usize>>,
    taken: usize,
    /// The wait for the next result's index, while polled as a stream.
    pending: Option<Pending>,
}

type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send>>;

impl<R> fmt::Debug for IMap<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IMap")
            .field("left", &(self.futures.len() - self.taken))
            .field("ordered", &self.finished.is_none())
            .finish()
    }
}

impl<R: Send + 'static> IMap<R> {
    pub(super) fn ordered(futures: Vec<Future<R>>) -> IMap<R> {
        IMap {
            futures: futures.into_iter().map(Some).collect(),
            finished: None,
            taken: 0,
            pending: None,
        }
    }

    pub(super) fn unordered(futures: Vec<Future<R>>) -> IMap<R> {
        let q = SimpleQueue::new();
        for (i, f) in futures.iter().enumerate() {
            let q = q.clone();
            f.add_done_callback(move |_| q.put(i));
        }
        IMap {
            futures: futures.into_iter().map(Some).collect(),
            finished: Some(q),
            taken: 0,
            pending: None,
        }
    }

    /// The index of the next result to give, once it is done; `None` at
    /// the end or when `timeout` passed first (`Some(Err(..))` then).
    fn next_index(&mut self, timeout: Option<Duration>) -> Option<Result<usize, FutureError>> {
        if self.taken == self.futures.len() {
            return None;
        }
        // A stream's wait in flight is dropped: it took nothing, and an
        // unordered index it was to get stays in the queue.
        self.pending = None;
        match &self.finished {
            None => {
                let f = self.futures[self.taken].as_ref().expect("not taken");
                if f.blocking().wait(timeout) {
                    Some(Ok(self.taken))
                } else {
                    Some(Err(FutureError::Timeout))
                }
            }
            Some(q) => match timeout {
                None => Some(Ok(q.blocking().get())),
                Some(t) => Some(
                    q.blocking()
                        .get_timeout(t)
                        .map_err(|_| FutureError::Timeout),
                ),
            },
        }
    }

    fn take(&mut self, i: usize) -> Result<R, FutureError> {
        self.taken += 1;
        let f = self.futures[i].take().expect("each result is given once");
        f.blocking().take_result()
    }

    /// The next result, waiting at most `timeout`: `Some(Err(Timeout))` if
    /// it is not ready by then (nothing is consumed), `None` at the end.
    ///
    /// Python: `IMapIterator.next(timeout)`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, FutureError>> {
        match self.next_index(Some(timeout))? {
            Ok(i) => Some(self.take(i)),
            Err(e) => Some(Err(e)),
        }
    }

    /// The next result, for async code (`None` at the end).
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: the result stays for the next
    /// call.
    pub async fn next_async(&mut self) -> Option<Result<R, FutureError>> {
        std::future::poll_fn(|cx| self.poll_result(cx)).await
    }
}

/// [`IMap`] as a [`Stream`](futures::Stream) ([`IMap::into_stream`]): the
/// same results in the same order.
///
/// # Cancel safety
/// Dropping a `next()` future loses no result; the next call gives it.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct IMapStream<R>(IMap<R>);

impl<R: Send + 'static> futures::Stream for IMapStream<R> {
    type Item = Result<R, FutureError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.get_mut().0.poll_result(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.0.futures.len() - self.0.taken;
        (n, Some(n))
    }
}

impl<R: Send + 'static> IMap<R> {
    /// The results as a [`Stream`](futures::Stream) (an `IMap` is an
    /// `Iterator`; a separate type keeps `StreamExt` and `Iterator`
    /// methods apart).
    pub fn into_stream(self) -> IMapStream<R> {
        IMapStream(self)
    }

    fn poll_result(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<R, FutureError>>> {
        let this = self;
        if this.taken == this.futures.len() {
            return std::task::Poll::Ready(None);
        }
        if this.pending.is_none() {
            let wait: Pending = match &this.finished {
                None => {
                    let (f, i) = (
                        this.futures[this.taken].clone().expect("not taken"),
                        this.taken,
                    );
                    Box::pin(async move {
                        f.wait_done().await;
                        i
                    })
                }
                Some(q) => {
                    let q = q.clone();
                    Box::pin(async move { q.get().await })
                }
            };
            this.pending = Some(wait);
        }
        let fut = this.pending.as_mut().expect("just set");
        let i = futures::ready!(fut.as_mut().poll(cx));
        this.pending = None;
        std::task::Poll::Ready(Some(this.take(i)))
    }
}

impl<R: Send + 'static> Iterator for IMap<R> {
    type Item = Result<R, FutureError>;

    /// Blocks the thread for the next result.
    fn next(&mut self) -> Option<Self::Item> {
        let i = self.next_index(None)?.expect("no timeout");
        Some(self.take(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.futures.len() - self.taken;
        (n, Some(n))
    }
}
