//! `wait` and `as_completed` over futures from any mix of executors.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::Stream;

use super::future::Future;
use crate::queue::SimpleQueue;

pub use crate::tasks::ReturnWhen;

/// The timeout of [`as_completed`] passed with futures unfinished.
///
/// Python: `TimeoutError: 3 (of 10) futures unfinished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Unfinished {
    /// How many had not finished.
    pub unfinished: usize,
    /// How many there were.
    pub total: usize,
}

impl fmt::Display for Unfinished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (of {}) futures unfinished",
            self.unfinished, self.total
        )
    }
}

impl std::error::Error for Unfinished {}

/// Where done-callbacks drop the index of a future that finished. The
/// callbacks hold it weakly: once the wait is over they do nothing.
struct Collector {
    done: SimpleQueue<usize>,
}

/// The futures without duplicates (by identity), in their first order.
fn unique<'a, T: 'a>(fs: impl IntoIterator<Item = &'a Future<T>>) -> Vec<Future<T>> {
    let mut seen = HashSet::new();
    fs.into_iter()
        .filter(|f| seen.insert(f.identity()))
        .cloned()
        .collect()
}

/// Registers a callback on every future but those in `skip`.
fn watch<T: Send + 'static>(fs: &[Future<T>], skip: &HashSet<usize>) -> Arc<Collector> {
    let c = Arc::new(Collector {
        done: SimpleQueue::new(),
    });
    for (i, f) in fs.iter().enumerate() {
        if skip.contains(&i) {
            continue;
        }
        let weak: Weak<Collector> = Arc::downgrade(&c);
        f.add_done_callback(move |_| {
            if let Some(c) = weak.upgrade() {
                c.done.put(i);
            }
        });
    }
    c
}

fn satisfied<T: Send + 'static>(fs: &[Future<T>], when: ReturnWhen) -> bool {
    match when {
        ReturnWhen::AllCompleted => fs.iter().all(Future::done),
        ReturnWhen::FirstCompleted => fs.iter().any(Future::done),
        ReturnWhen::FirstException => fs.iter().all(Future::done) || fs.iter().any(Future::failed),
    }
}

fn split<T: Send + 'static>(fs: Vec<Future<T>>) -> (Vec<Future<T>>, Vec<Future<T>>) {
    fs.into_iter().partition(Future::done)
}

/// Waits until `return_when` holds for the futures (or the timeout
/// passes) and returns `(done, not_done)`. Duplicates count once; the
/// futures may come from any executors.
///
/// Python: `concurrent.futures.wait(fs, timeout=None,
/// return_when=ALL_COMPLETED)`. `FirstException` returns when a future
/// finishes with an error (a cancelled one does not count), or when all are
/// done.
///
/// # Cancel safety
/// Dropping the future only stops waiting.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::futures::{wait, Future, ReturnWhen};
///
/// let (a, b) = (Future::new(), Future::<u8>::new());
/// a.set_result(1).unwrap();
/// let (done, not_done) = wait([&a, &b], None, ReturnWhen::FirstCompleted).await;
/// assert_eq!((done, not_done), (vec![a], vec![b]));
/// # }
/// ```
pub async fn wait<'a, T: Send + 'static>(
    fs: impl IntoIterator<Item = &'a Future<T>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> (Vec<Future<T>>, Vec<Future<T>>) {
    let fs = unique(fs);
    if !satisfied(&fs, return_when) {
        let c = watch(&fs, &HashSet::new());
        let deadline = timeout.and_then(|t| tokio::time::Instant::now().checked_add(t));
        while !satisfied(&fs, return_when) {
            let got = match deadline {
                None => Some(c.done.get().await),
                Some(d) => c
                    .done
                    .get_timeout(d.saturating_duration_since(tokio::time::Instant::now()))
                    .await
                    .ok(),
            };
            if got.is_none() {
                break;
            }
        }
    }
    split(fs)
}

/// [`wait`] for synchronous code: blocks the thread.
///
/// # Examples
///
/// ```
/// use conex::futures::{wait_blocking, Future, ReturnWhen};
/// use std::time::Duration;
///
/// let f = Future::<u8>::new();
/// let (done, not_done) = wait_blocking([&f], Some(Duration::from_millis(10)), ReturnWhen::AllCompleted);
/// assert!(done.is_empty() && not_done.len() == 1);
/// ```
pub fn wait_blocking<'a, T: Send + 'static>(
    fs: impl IntoIterator<Item = &'a Future<T>>,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> (Vec<Future<T>>, Vec<Future<T>>) {
    let fs = unique(fs);
    if !satisfied(&fs, return_when) {
        let c = watch(&fs, &HashSet::new());
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        while !satisfied(&fs, return_when) {
            let got = match deadline {
                None => Some(c.done.blocking().get()),
                Some(d) => c
                    .done
                    .blocking()
                    .get_timeout(d.saturating_duration_since(Instant::now()))
                    .ok(),
            };
            if got.is_none() {
                break;
            }
        }
    }
    split(fs)
}

/// The state of an `as_completed` walk.
struct Walk<T> {
    fs: Vec<Future<T>>,
    /// Done before the walk started: yielded first (popped from the end).
    ready: Vec<usize>,
    /// The same, kept: they are not watched.
    done_at_start: HashSet<usize>,
    collector: Option<Arc<Collector>>,
    yielded: usize,
    ended: bool,
}

impl<T: Send + 'static> Walk<T> {
    fn new<'a>(fs: impl IntoIterator<Item = &'a Future<T>>) -> Walk<T>
    where
        T: 'a,
    {
        let fs = unique(fs);
        let mut ready: Vec<usize> = (0..fs.len()).filter(|i| fs[*i].done()).collect();
        let done_at_start = ready.iter().copied().collect();
        ready.reverse();
        Walk {
            done_at_start,
            collector: None,
            fs,
            ready,
            yielded: 0,
            ended: false,
        }
    }

    /// Starts watching the futures that were not done at first.
    fn collector(&mut self) -> Arc<Collector> {
        if self.collector.is_none() {
            self.collector = Some(watch(&self.fs, &self.done_at_start));
        }
        self.collector.clone().expect("set above")
    }

    fn unfinished(&mut self) -> Unfinished {
        self.ended = true;
        Unfinished {
            unfinished: self.fs.len() - self.yielded,
            total: self.fs.len(),
        }
    }
}

/// Yields each future once (duplicates collapsed) as it finishes, those
/// already done first; with a timeout, a last `Err(Unfinished)` if some
/// have not finished by then.
///
/// Python: `concurrent.futures.as_completed(fs, timeout=None)`.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::futures::{as_completed, Future};
/// use futures::StreamExt;
///
/// let (a, b) = (Future::new(), Future::new());
/// b.set_result("b").unwrap();
/// let b2 = b.clone();
/// let mut done = std::pin::pin!(as_completed([&a, &b, &b2], None));
/// // `b` is already done, so it comes first (once, though listed twice).
/// let first = done.next().await.unwrap().unwrap();
/// assert_eq!(first.blocking().result().unwrap(), "b");
/// // `a` finishes later, from another task.
/// let a2 = a.clone();
/// tokio::spawn(async move { a2.set_result("a").unwrap() });
/// let second = done.next().await.unwrap().unwrap();
/// assert_eq!(second.blocking().result().unwrap(), "a");
/// assert!(done.next().await.is_none());
/// # }
/// ```
pub fn as_completed<'a, T: Send + 'static>(
    fs: impl IntoIterator<Item = &'a Future<T>>,
    timeout: Option<Duration>,
) -> impl Stream<Item = Result<Future<T>, Unfinished>> + Send {
    let deadline = timeout.and_then(|t| tokio::time::Instant::now().checked_add(t));
    futures::stream::unfold(Walk::new(fs), move |mut w| async move {
        if w.ended || w.yielded == w.fs.len() {
            return None;
        }
        if let Some(i) = w.ready.pop() {
            w.yielded += 1;
            let f = w.fs[i].clone();
            return Some((Ok(f), w));
        }
        let c = w.collector();
        let got = match deadline {
            None => Some(c.done.get().await),
            Some(d) => c
                .done
                .get_timeout(d.saturating_duration_since(tokio::time::Instant::now()))
                .await
                .ok(),
        };
        match got {
            Some(i) => {
                w.yielded += 1;
                let f = w.fs[i].clone();
                Some((Ok(f), w))
            }
            None => {
                let e = w.unfinished();
                Some((Err(e), w))
            }
        }
    })
}

/// [`as_completed`] for synchronous code: an iterator that blocks.
pub fn as_completed_blocking<'a, T: Send + 'static>(
    fs: impl IntoIterator<Item = &'a Future<T>>,
    timeout: Option<Duration>,
) -> impl Iterator<Item = Result<Future<T>, Unfinished>> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut w = Walk::new(fs);
    std::iter::from_fn(move || {
        if w.ended || w.yielded == w.fs.len() {
            return None;
        }
        if let Some(i) = w.ready.pop() {
            w.yielded += 1;
            return Some(Ok(w.fs[i].clone()));
        }
        let c = w.collector();
        let got = match deadline {
            None => Some(c.done.blocking().get()),
            Some(d) => c
                .done
                .blocking()
                .get_timeout(d.saturating_duration_since(Instant::now()))
                .ok(),
        };
        match got {
            Some(i) => {
                w.yielded += 1;
                Some(Ok(w.fs[i].clone()))
            }
            None => Some(Err(w.unfinished())),
        }
    })
}
