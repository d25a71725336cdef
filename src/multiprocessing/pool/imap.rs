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
}

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
        }
    }

    /// The index of the next result to give, once it is done; `None` at
    /// the end or when `timeout` passed first (`Some(Err(..))` then).
    fn next_index(&mut self, timeout: Option<Duration>) -> Option<Result<usize, FutureError>> {
        if self.taken == self.futures.len() {
            return None;
        }
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
        if self.taken == self.futures.len() {
            return None;
        }
        let i = match &self.finished {
            None => {
                let f = self.futures[self.taken].clone().expect("not taken");
                f.wait_done().await;
                self.taken
            }
            Some(q) => q.get().await,
        };
        Some(self.take(i))
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
