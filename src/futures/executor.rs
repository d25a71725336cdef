//! The `Executor` trait and its `map`.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use super::errors::{FutureError, SubmitError, WorkError};
use super::future::Future;

/// Gives an executor type its inherent `shutdown` and `with`: one
/// definition for every executor, so `pool.shutdown(true, false)` needs no
/// type annotations (the trait's method is generic over the work's types,
/// which a call with no work in it cannot name).
macro_rules! inherent_shutdown {
    ($t:ty) => {
        impl $t {
            #[cfg(feature = "tokio-util")]
            fn from_handle(handle: std::sync::Arc<Handle>) -> $t {
                Self { handle }
            }

            /// Stops taking work. With `cancel_futures`, work not started
            /// yet is cancelled (running work completes either way); with
            /// `wait`, blocks until every started work has finished and the
            /// workers are gone.
            ///
            /// Python: `Executor.shutdown(wait=True, *,
            /// cancel_futures=False)`.
            pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
                <Self as $crate::futures::Executor<(), ()>>::shutdown(self, wait, cancel_futures)
            }

            /// Ties the executor to `token`: once it is cancelled, the
            /// executor shuts down as `shutdown(false, true)` does (no new
            /// work, work not started cancelled, running work finishes).
            /// Holds only a weak handle: the executor still stops when its
            /// last handle goes.
            ///
            /// ```
            /// use conex::futures::{Executor, ThreadPoolExecutor};
            /// use tokio_util::sync::CancellationToken;
            ///
            /// fn double(x: u32) -> u32 {
            ///     x * 2
            /// }
            ///
            /// let pool = ThreadPoolExecutor::new(1).unwrap();
            /// let token = CancellationToken::new();
            /// pool.shutdown_on(&token);
            /// assert_eq!(pool.submit(double, 2).unwrap().blocking().result(), Ok(4));
            /// token.cancel();
            /// # let t0 = std::time::Instant::now();
            /// # while pool.submit(double, 1).is_ok() && t0.elapsed().as_secs() < 10 {
            /// #     std::thread::sleep(std::time::Duration::from_millis(5));
            /// # }
            /// assert!(pool.submit(double, 3).is_err()); // shut down
            /// ```
            #[cfg(feature = "tokio-util")]
            pub fn shutdown_on(&self, token: &tokio_util::sync::CancellationToken) {
                let weak = std::sync::Arc::downgrade(&self.handle);
                crate::runtime::on_cancel(token, move || {
                    if let Some(handle) = weak.upgrade() {
                        <$t>::from_handle(handle).shutdown(false, true);
                    }
                });
            }

            /// Runs `f` with the executor, then shuts it down and waits
            /// for its work, also when `f` panics. Python: `with executor:`
            /// (whose exit is `shutdown(wait=True)`).
            pub fn with<T>(self, f: impl FnOnce(&Self) -> T) -> T {
                struct ShutOnExit<'a>(&'a $t);
                impl Drop for ShutOnExit<'_> {
                    fn drop(&mut self) {
                        self.0.shutdown(true, false);
                    }
                }
                let scope = ShutOnExit(&self);
                f(scope.0)
            }
        }
    };
}
pub(crate) use inherent_shutdown;

/// What runs submitted work and hands back [`Future`]s.
///
/// Python: `concurrent.futures.Executor`. The unit of work is Python's
/// `submit(fn, arg)`: a plain function and its argument. That is the one
/// shape every executor can run, worker processes included (a plain `fn`
/// is found again in a re-executed binary; a closure cannot be), so code
/// written against this trait runs on threads, tasks or processes
/// unchanged. Executors also have inherent methods for closures and
/// futures where they can run them.
///
/// Dropping an executor's last handle shuts it down and waits for the work
/// it holds; every executor also has an inherent `shutdown(wait,
/// cancel_futures)` (callable with no type annotations) and `with(f)`,
/// Python's `with executor:` as a scope.
pub trait Executor<A, R>: Send + Sync {
    /// Schedules `f(arg)` and returns its future.
    ///
    /// Python: `Executor.submit(fn, *args)`.
    ///
    /// # Errors
    /// [`SubmitError::Shutdown`] after [`shutdown`](Executor::shutdown);
    /// [`SubmitError::Broken`] once the executor is broken.
    fn submit(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, SubmitError>;

    /// Schedules `f(arg)` where `f` can fail: an `Err` becomes the future's
    /// error ([`FutureError::Failed`]), keeping its type name and message,
    /// as a Python exception raised by the callable does.
    ///
    /// # Errors
    /// As [`submit`](Executor::submit).
    fn submit_fallible<E>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<Future<R>, SubmitError>
    where
        E: std::error::Error + Send + Sync + 'static;

    /// Schedules `f` over each of `args` as one unit where the executor can
    /// (a process pool sends them to one worker in one message: Python's
    /// `chunksize`): one future for the chunk, holding each call's outcome
    /// in order. The default submits the calls one by one and joins them.
    ///
    /// # Errors
    /// As [`submit`](Executor::submit).
    fn submit_chunk(
        &self,
        f: fn(A) -> R,
        args: Vec<A>,
    ) -> Result<Future<Vec<Result<R, WorkError>>>, SubmitError>
    where
        R: Send + 'static,
    {
        let futures = args
            .into_iter()
            .map(|a| self.submit(f, a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Future::join_outcomes(futures))
    }

    /// Stops taking work. With `cancel_futures`, the work not started yet is
    /// cancelled (running work completes either way); with `wait`, blocks
    /// until every started work has finished and the workers are gone.
    ///
    /// Python: `Executor.shutdown(wait=True, *, cancel_futures=False)`.
    fn shutdown(&self, wait: bool, cancel_futures: bool);

    /// `f` over `args`, results in input order.
    ///
    /// Python: `Executor.map(fn, *iterables, timeout=None, chunksize=1,
    /// buffersize=None)` (3.14's `buffersize` included: with it, only that
    /// many calls are in flight and `args` is read as results are taken, so
    /// an endless input is fine).
    ///
    /// # Errors
    /// As [`submit`](Executor::submit), for the first submissions.
    fn map<I>(
        &self,
        f: fn(A) -> R,
        args: I,
        options: MapOptions,
    ) -> Result<MapResults<A, R, I::IntoIter, Self>, SubmitError>
    where
        Self: Sized + Clone,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        MapResults::start(self.clone(), f, args.into_iter(), options)
    }
}

/// Options of [`Executor::map`].
#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    timeout: Option<Duration>,
    buffersize: Option<NonZeroUsize>,
    chunksize: Option<NonZeroUsize>,
}

impl MapOptions {
    /// No timeout, every call submitted at once (Python's defaults).
    pub fn new() -> MapOptions {
        MapOptions::default()
    }

    /// A timeout on the whole map, counted from the call: the result that
    /// is not ready by then is an error (Python's `timeout`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// At most `n` calls in flight; `args` is read as results are taken
    /// (Python 3.14's `buffersize`).
    pub fn buffersize(mut self, n: NonZeroUsize) -> Self {
        self.buffersize = Some(n);
        self
    }

    /// Items sent to a worker process at a time (Python's `chunksize`;
    /// process pools send each chunk as one message, the other executors
    /// submit its items one by one). `None` is Python's default, 1; as
    /// everywhere in conex, write a size as `NonZeroUsize::new(n)`.
    pub fn chunksize(mut self, n: Option<NonZeroUsize>) -> Self {
        self.chunksize = n;
        self
    }

    /// The chunk size (1 unless set).
    pub fn get_chunksize(&self) -> usize {
        self.chunksize.map_or(1, NonZeroUsize::get)
    }
}

/// The results of [`Executor::map`], in input order: an `Iterator` that
/// blocks the thread, or [`next_result`](MapResults::next_result) for async
/// code. The first error ends it; dropping it cancels the calls not started.
pub struct MapResults<A, R, I, E> {
    executor: E,
    f: fn(A) -> R,
    args: Option<I>,
    buffersize: Option<usize>,
    chunksize: usize,
    deadline: Option<Instant>,
    in_flight: VecDeque<InFlight<R>>,
    /// The outcomes of the chunk at the head, not yet given out.
    unpacked: VecDeque<Result<R, WorkError>>,
    /// Calls submitted and not yet given out (the look-ahead).
    calls: usize,
    failed: bool,
    /// The wait for the head, while polled as a stream: whether it
    /// finished in time.
    pending: Option<std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>>,
}

/// A call in flight, or a chunk of them.
enum InFlight<R> {
    One(Future<R>),
    Chunk(Future<Vec<Result<R, WorkError>>>),
}

impl<R: Send + 'static> InFlight<R> {
    fn wait_blocking(&self, timeout: Option<Duration>) -> bool {
        match self {
            InFlight::One(f) => f.blocking().wait(timeout),
            InFlight::Chunk(f) => f.blocking().wait(timeout),
        }
    }

    async fn wait(&self) {
        match self {
            InFlight::One(f) => f.wait_done().await,
            InFlight::Chunk(f) => f.wait_done().await,
        };
    }

    /// A wait on it that owns a handle (for a stream's poll): whether it
    /// finished within `timeout`.
    fn waiter(
        &self,
        timeout: Option<Duration>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> {
        let head = match self {
            InFlight::One(f) => InFlight::One(f.clone()),
            InFlight::Chunk(f) => InFlight::Chunk(f.clone()),
        };
        Box::pin(async move {
            match timeout {
                None => {
                    head.wait().await;
                    true
                }
                Some(left) => tokio::time::timeout(left, head.wait()).await.is_ok(),
            }
        })
    }
}

impl<R> InFlight<R> {
    fn cancel(&self) {
        match self {
            InFlight::One(f) => f.cancel(),
            InFlight::Chunk(f) => f.cancel(),
        };
    }
}

/// What taking the head of the look-ahead gave.
enum Head<R> {
    Item(Result<R, FutureError>),
    Unpacked,
}

impl<A, R, I, E> fmt::Debug for MapResults<A, R, I, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapResults")
            .field("in_flight", &self.in_flight.len())
            .field("input_left", &self.args.is_some())
            .finish()
    }
}

impl<A, R, I, E> MapResults<A, R, I, E>
where
    R: Send + 'static,
    I: Iterator<Item = A>,
    E: Executor<A, R>,
{
    fn start(
        executor: E,
        f: fn(A) -> R,
        args: I,
        options: MapOptions,
    ) -> Result<Self, SubmitError> {
        let mut m = MapResults {
            executor,
            f,
            args: Some(args),
            buffersize: options.buffersize.map(NonZeroUsize::get),
            chunksize: options.get_chunksize(),
            deadline: options.timeout.and_then(|t| Instant::now().checked_add(t)),
            in_flight: VecDeque::new(),
            unpacked: VecDeque::new(),
            calls: 0,
            failed: false,
            pending: None,
        };
        m.fill()?;
        Ok(m)
    }

    /// Submits calls, a chunk at a time, until the look-ahead is full or
    /// the input ends.
    fn fill(&mut self) -> Result<(), SubmitError> {
        loop {
            let room = match self.buffersize {
                Some(b) => b.saturating_sub(self.calls),
                None => usize::MAX,
            };
            let Some(args) = &mut self.args else { break };
            if room == 0 {
                break;
            }
            let want = self.chunksize.min(room);
            let chunk: Vec<A> = args.by_ref().take(want).collect();
            if chunk.len() < want {
                self.args = None;
            }
            if chunk.is_empty() {
                break;
            }
            self.calls += chunk.len();
            let next = if chunk.len() == 1 {
                let a = chunk.into_iter().next().expect("one argument");
                InFlight::One(self.executor.submit(self.f, a)?)
            } else {
                InFlight::Chunk(self.executor.submit_chunk(self.f, chunk)?)
            };
            self.in_flight.push_back(next);
        }
        Ok(())
    }

    fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Takes the head of the look-ahead, now that it was waited for.
    fn take_head(&mut self, finished: bool) -> Head<R> {
        let head = self.in_flight.pop_front().expect("a call in flight");
        if !finished {
            return Head::Item(Err(FutureError::Timeout));
        }
        match head {
            InFlight::One(f) => Head::Item(f.blocking().take_result()),
            InFlight::Chunk(f) => match f.blocking().take_result() {
                Ok(outs) => {
                    self.unpacked = outs.into();
                    Head::Unpacked
                }
                Err(e) => Head::Item(Err(e)),
            },
        }
    }

    /// Gives out one result: an error ends the map, a value makes room
    /// for more calls.
    fn deliver(&mut self, out: Result<R, FutureError>) -> Result<R, FutureError> {
        self.calls = self.calls.saturating_sub(1);
        if out.is_err() {
            self.failed = true;
            self.cancel_rest();
        } else if let Err(e) = self.fill() {
            self.failed = true;
            self.cancel_rest();
            return Err(FutureError::Failed(WorkError::new(
                "RuntimeError",
                e.to_string(),
            )));
        }
        out
    }

    fn cancel_rest(&mut self) {
        for f in self.in_flight.drain(..) {
            f.cancel();
        }
        self.unpacked.clear();
        self.args = None;
    }

    /// The next result, for async code (`None` at the end).
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: the result stays for the next
    /// call.
    pub async fn next_result(&mut self) -> Option<Result<R, FutureError>> {
        std::future::poll_fn(|cx| self.poll_result(cx)).await
    }
}

// Nothing of a MapResults is pinned in place (its waits are boxed): it may
// move between polls whatever its iterator and executor are.
impl<A, R, I, E> Unpin for MapResults<A, R, I, E> {}

/// [`MapResults`] as a [`Stream`](futures::Stream)
/// ([`MapResults::into_stream`]): the same results in input order (an
/// error ends it; `timeout` counts from the map call).
///
/// # Cancel safety
/// Dropping a `next()` future loses no result; dropping the stream
/// cancels the calls not yet given out, as Python's closed generator does.
#[must_use = "streams do nothing unless polled"]
pub struct MapStream<A, R, I, E>(MapResults<A, R, I, E>);

impl<A, R, I, E> fmt::Debug for MapStream<A, R, I, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MapStream").field(&self.0).finish()
    }
}

impl<A, R, I, E> futures::Stream for MapStream<A, R, I, E>
where
    R: Send + 'static,
    I: Iterator<Item = A>,
    E: Executor<A, R>,
{
    type Item = Result<R, FutureError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.get_mut().0.poll_result(cx)
    }
}

impl<A, R, I, E> MapResults<A, R, I, E>
where
    R: Send + 'static,
    I: Iterator<Item = A>,
    E: Executor<A, R>,
{
    /// The results as a [`Stream`](futures::Stream) (a `MapResults` is an
    /// `Iterator`; a separate type keeps `StreamExt` and `Iterator`
    /// methods apart).
    pub fn into_stream(self) -> MapStream<A, R, I, E> {
        MapStream(self)
    }

    fn poll_result(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<R, FutureError>>> {
        let this = self;
        loop {
            if this.failed {
                return std::task::Poll::Ready(None);
            }
            if let Some(out) = this.unpacked.pop_front() {
                this.pending = None;
                return std::task::Poll::Ready(Some(
                    this.deliver(out.map_err(FutureError::Failed)),
                ));
            }
            let Some(head) = this.in_flight.front() else {
                return std::task::Poll::Ready(None);
            };
            if this.pending.is_none() {
                this.pending = Some(head.waiter(this.remaining()));
            }
            let fut = this.pending.as_mut().expect("just set");
            let finished = futures::ready!(fut.as_mut().poll(cx));
            this.pending = None;
            if let Head::Item(out) = this.take_head(finished) {
                return std::task::Poll::Ready(Some(this.deliver(out)));
            }
        }
    }
}

impl<A, R, I, E> Iterator for MapResults<A, R, I, E>
where
    R: Send + 'static,
    I: Iterator<Item = A>,
    E: Executor<A, R>,
{
    type Item = Result<R, FutureError>;

    /// Blocks the thread for the next result in input order.
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(out) = self.unpacked.pop_front() {
                return Some(self.deliver(out.map_err(FutureError::Failed)));
            }
            self.pending = None;
            let finished = self.in_flight.front()?.wait_blocking(self.remaining());
            if let Head::Item(out) = self.take_head(finished) {
                return Some(self.deliver(out));
            }
        }
    }
}

impl<A, R, I, E> Drop for MapResults<A, R, I, E> {
    fn drop(&mut self) {
        for f in self.in_flight.drain(..) {
            // Python's map generator cancels what is left when it is closed.
            f.cancel();
        }
    }
}
