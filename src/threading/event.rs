//! `Event`: Python's `threading.Event` / `asyncio.Event`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::shim::Arc;
use crate::wait::flag::Flag;
use crate::wait::{MapOp, WaitFuture, block_on, std_deadline};

/// A flag that tasks and threads wait for: `set` wakes every waiter,
/// `clear` re-arms it.
///
/// Python: `threading.Event` / `asyncio.Event`.
///
/// A waiter woken by [`set`](Event::set) returns even if
/// [`clear`](Event::clear) follows at once: the wake-up is delivered to the
/// waiter, not re-read from the flag.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::threading::Event;
///
/// let ready = Event::new();
/// let r2 = ready.clone();
/// let waiter = tokio::spawn(async move { r2.wait().await; "go" });
/// ready.set();
/// assert_eq!(waiter.await.unwrap(), "go");
/// assert!(ready.is_set());
/// # }
/// ```
#[derive(Clone)]
pub struct Event {
    flag: Arc<Flag>,
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

/// Bridges to tokio-util's `CancellationToken`. A token is cancelled once
/// and for good, where an event can be cleared: each bridge carries the
/// first `set` (or the cancellation) across, and nothing back. (Not in
/// the loom models' build, whose `Arc` has no weak handles.)
#[cfg(all(feature = "tokio-util", not(conex_loom)))]
impl Event {
    /// An event that is set once `token` is cancelled (at once if it is).
    /// Clearing it later does not undo the cancellation. The task that
    /// waits for the token holds the event weakly.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let token = tokio_util::sync::CancellationToken::new();
    /// let e = conex::threading::Event::from_token(&token);
    /// assert!(!e.is_set());
    /// token.cancel();
    /// e.wait().await;
    /// # }
    /// ```
    pub fn from_token(token: &tokio_util::sync::CancellationToken) -> Event {
        let e = Event::new();
        let weak = Arc::downgrade(&e.flag);
        crate::runtime::on_cancel(token, move || {
            if let Some(flag) = weak.upgrade() {
                Event { flag }.set();
            }
        });
        e
    }

    /// A token that is cancelled once this event is set (at once if it
    /// is). Cancelling the token itself ends the wait for the event and
    /// sets nothing.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// let e = conex::threading::Event::new();
    /// let token = e.to_token();
    /// e.set();
    /// token.cancelled().await;
    /// # }
    /// ```
    pub fn to_token(&self) -> tokio_util::sync::CancellationToken {
        let token = tokio_util::sync::CancellationToken::new();
        if self.is_set() {
            token.cancel();
            return token;
        }
        let (e, t) = (self.clone(), token.clone());
        crate::runtime::handle().spawn(async move {
            let (set, cancelled) = (std::pin::pin!(e.wait()), std::pin::pin!(t.cancelled()));
            if let futures::future::Either::Left(_) = futures::future::select(set, cancelled).await
            {
                t.cancel();
            }
        });
        token
    }
}

impl Event {
    /// A new event, not set.
    ///
    /// Python: `threading.Event()`.
    pub fn new() -> Event {
        Event {
            flag: Arc::new(Flag::new(false)),
        }
    }

    /// Whether the flag is set.
    ///
    /// Python: `Event.is_set()`.
    pub fn is_set(&self) -> bool {
        self.flag.is_set()
    }

    /// Sets the flag and wakes every task and thread waiting for it.
    ///
    /// Python: `Event.set()`.
    pub fn set(&self) {
        self.flag.set();
    }

    /// Clears the flag: later waiters wait again until the next `set`.
    ///
    /// Python: `Event.clear()`.
    pub fn clear(&self) {
        self.flag.clear();
    }

    /// Waits until the flag is set (returns at once if it is).
    ///
    /// Python: `Event.wait()`.
    ///
    /// # Cancel safety
    /// Dropping the future loses nothing: it only leaves the queue.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + '_ {
        WaitFuture::new(MapOp::new(self.flag.wait(), |_| ()))
    }

    /// Waits at most `timeout` (tokio's clock); returns `true` if the flag
    /// was set (or a `set` woke this waiter), `false` on timeout.
    ///
    /// Python: `Event.wait(timeout)`.
    ///
    /// # Cancel safety
    /// As [`wait`](Event::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> impl Future<Output = bool> + Send + '_ {
        WaitFuture::timeout(self.flag.wait(), timeout)
    }

    /// How many tasks and threads wait for the flag right now: a snapshot,
    /// for monitoring and tests (Python has no public equivalent; the name
    /// is `Barrier.n_waiting`'s).
    pub fn n_waiting(&self) -> usize {
        self.flag.waiters()
    }

    /// The blocking facade: the same event, for OS threads.
    pub fn blocking(&self) -> BlockingEvent<'_> {
        BlockingEvent { event: self }
    }
}

/// The blocking facade of an [`Event`]; see
/// [`BlockingLock`](super::BlockingLock) for where it may block.
///
/// # Examples
///
/// ```
/// use conex::threading::Event;
/// use std::time::Duration;
///
/// let ev = Event::new();
/// assert!(!ev.blocking().wait_timeout(Duration::from_millis(5)));
/// let e2 = ev.clone();
/// std::thread::spawn(move || e2.set());
/// ev.blocking().wait();
/// ```
#[derive(Clone, Copy)]
pub struct BlockingEvent<'a> {
    event: &'a Event,
}

impl fmt::Debug for BlockingEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingEvent").field(self.event).finish()
    }
}

impl BlockingEvent<'_> {
    /// Blocks until the flag is set.
    #[track_caller]
    pub fn wait(&self) {
        block_on(self.event.flag.wait(), None);
    }

    /// Blocks at most `timeout`; `false` on timeout.
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        block_on(self.event.flag.wait(), std_deadline(timeout))
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.event.is_set()
    }

    /// Sets the flag.
    pub fn set(&self) {
        self.event.set();
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.event.clear();
    }
}
