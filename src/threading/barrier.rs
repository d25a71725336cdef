//! `Barrier`: Python's `threading.Barrier` / `asyncio.Barrier`, the full
//! version (action, timeouts, reset, abort, introspection).

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::task::Poll;
use std::time::Duration;

use super::BrokenBarrier;
use crate::shim::Arc;
use crate::wait::{Key, Locked, Tag, WaitCx, WaitFuture, WaitList, WaitOp, block_on, std_deadline};

/// The tag of a waiter released because the barrier broke.
const BROKEN: Tag = usize::MAX;

type Action = Box<dyn Fn() + Send + Sync>;

/// Breaks the round under the lock: the barrier stays broken until `reset`,
/// the filling round empties, and every waiter of it gets [`BrokenBarrier`].
/// The one place abort, a failed action and a timeout break a barrier.
fn break_round(l: &mut Locked<'_, State>) {
    let st = l.state();
    st.broken = true;
    st.count = 0;
    l.notify(usize::MAX, BROKEN);
}

/// A meeting point for a fixed number of parties: each `wait` blocks until
/// `parties` callers are waiting, then all are released together and the
/// barrier is ready for the next round.
///
/// Python: `threading.Barrier(parties, action, timeout)` / `asyncio.Barrier`.
///
/// - `wait` returns a distinct index in `0..parties` (the order of arrival);
///   the last arrival runs the optional action first.
/// - The barrier *breaks* (every current waiter gets [`BrokenBarrier`]) when
///   [`abort`](Barrier::abort) is called, when a waiter's timeout passes, or
///   when the action panics; it stays broken (further waits fail at once)
///   until [`reset`](Barrier::reset).
/// - `reset` breaks the current round's waiters and makes the barrier
///   usable again at once.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::threading::Barrier;
///
/// let barrier = Barrier::new(3);
/// let mut tasks = Vec::new();
/// for _ in 0..3 {
///     let b = barrier.clone();
///     tasks.push(tokio::spawn(async move { b.wait().await.unwrap() }));
/// }
/// let mut indices = Vec::new();
/// for t in tasks {
///     indices.push(t.await.unwrap());
/// }
/// indices.sort();
/// assert_eq!(indices, vec![0, 1, 2]);
/// # }
/// ```
#[derive(Clone)]
pub struct Barrier {
    inner: Arc<BarrierInner>,
}

struct BarrierInner {
    parties: usize,
    timeout: Option<Duration>,
    action: Option<Action>,
    list: WaitList<State>,
}

#[derive(Debug)]
struct State {
    /// Waiters in the round that is filling up.
    count: usize,
    /// Rounds that have closed (all parties arrived) or been reset.
    generation: u64,
    /// Entries registered before this sequence number belong to the round
    /// that closed last.
    closed_before: u64,
    broken: bool,
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.broken())
            .finish()
    }
}

/// Builds a [`Barrier`] with an action or a default timeout.
///
/// # Examples
///
/// ```
/// use conex::threading::Barrier;
/// use std::time::Duration;
///
/// let barrier = Barrier::builder(2)
///     .action(|| println!("phase done"))
///     .timeout(Duration::from_secs(5))
///     .build();
/// assert_eq!(barrier.parties(), 2);
/// ```
pub struct BarrierBuilder {
    parties: usize,
    timeout: Option<Duration>,
    action: Option<Action>,
}

impl fmt::Debug for BarrierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierBuilder")
            .field("parties", &self.parties)
            .field("timeout", &self.timeout)
            .field("action", &self.action.is_some())
            .finish()
    }
}

impl BarrierBuilder {
    /// Runs `action` once per round, in the last arriving caller, before
    /// anyone is released. If it panics the barrier breaks, the other
    /// waiters get [`BrokenBarrier`] and the panic goes on in that caller.
    ///
    /// Python: the `action` argument.
    pub fn action(mut self, action: impl Fn() + Send + Sync + 'static) -> Self {
        self.action = Some(Box::new(action));
        self
    }

    /// The timeout of every `wait` that does not give its own.
    ///
    /// Python: the `timeout` argument.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The barrier.
    pub fn build(self) -> Barrier {
        Barrier {
            inner: Arc::new(BarrierInner {
                parties: self.parties,
                timeout: self.timeout,
                action: self.action,
                list: WaitList::new(State {
                    count: 0,
                    generation: 0,
                    closed_before: 0,
                    broken: false,
                }),
            }),
        }
    }
}

impl Barrier {
    /// A barrier for `parties` callers, with no action and no default
    /// timeout.
    ///
    /// Python: `threading.Barrier(parties)`.
    ///
    /// # Panics
    /// If `parties` is 0 (Python: `ValueError`).
    #[track_caller]
    pub fn new(parties: usize) -> Barrier {
        Barrier::builder(parties).build()
    }

    /// A builder, to add an action or a default timeout.
    ///
    /// # Panics
    /// If `parties` is 0 (Python: `ValueError`).
    #[track_caller]
    pub fn builder(parties: usize) -> BarrierBuilder {
        assert!(parties > 0, "Barrier: parties must be at least 1");
        BarrierBuilder {
            parties,
            timeout: None,
            action: None,
        }
    }

    fn op(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: &self.inner,
            stage: WaitStage::Arrive,
        }
    }

    /// Waits for the round to fill up, with the default timeout if the
    /// barrier has one. Returns this caller's index in `0..parties`.
    ///
    /// Python: `Barrier.wait()`.
    ///
    /// # Errors
    /// [`BrokenBarrier`] if the barrier is or becomes broken (abort, reset,
    /// a timeout, a panicking action) before this round is released.
    ///
    /// # Cancel safety
    /// Dropping the future while the round fills up withdraws the caller
    /// (the round then needs one more arrival), as asyncio's does. Dropped
    /// after the round closed, nothing changes for the others.
    pub fn wait(&self) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_ {
        match self.inner.timeout {
            Some(t) => WaitFuture::timeout(self.op(), t),
            None => WaitFuture::new(self.op()),
        }
    }

    /// As [`wait`](Barrier::wait) with its own timeout (tokio's clock). When
    /// it passes the barrier breaks, for everyone.
    ///
    /// Python: `Barrier.wait(timeout)`.
    ///
    /// # Errors
    /// As [`wait`](Barrier::wait).
    ///
    /// # Cancel safety
    /// As [`wait`](Barrier::wait).
    pub fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<usize, BrokenBarrier>> + Send + '_ {
        WaitFuture::timeout(self.op(), timeout)
    }

    /// Returns the barrier to its empty state: current waiters get
    /// [`BrokenBarrier`], and the barrier (even an aborted one) is usable
    /// again at once.
    ///
    /// Python: `Barrier.reset()`.
    pub fn reset(&self) {
        let mut l = self.inner.list.lock();
        l.notify(usize::MAX, BROKEN);
        let st = l.state();
        st.count = 0;
        st.generation += 1;
        st.broken = false;
    }

    /// Breaks the barrier: current and future waits fail with
    /// [`BrokenBarrier`] until [`reset`](Barrier::reset).
    ///
    /// Python: `Barrier.abort()`.
    pub fn abort(&self) {
        break_round(&mut self.inner.list.lock());
    }

    /// The number of parties needed to release a round.
    ///
    /// Python: `Barrier.parties`.
    pub fn parties(&self) -> usize {
        self.inner.parties
    }

    /// The number of callers waiting in the round that is filling up.
    ///
    /// Python: `Barrier.n_waiting`.
    pub fn n_waiting(&self) -> usize {
        self.inner.list.lock().state().count
    }

    /// Whether the barrier is broken.
    ///
    /// Python: `Barrier.broken`.
    pub fn broken(&self) -> bool {
        self.inner.list.lock().state().broken
    }

    /// The blocking facade: the same barrier, for OS threads.
    pub fn blocking(&self) -> BlockingBarrier<'_> {
        BlockingBarrier { barrier: self }
    }
}

enum WaitStage {
    Arrive,
    /// Registered in round `generation`.
    Waiting {
        key: Option<Key>,
        generation: u64,
    },
    Done,
}

/// One `Barrier::wait`.
struct BarrierWait<'a> {
    barrier: &'a BarrierInner,
    stage: WaitStage,
}

impl BarrierWait<'_> {
    /// The last arrival: run the action, then release the round.
    fn release_round(&mut self, generation: u64) -> Result<usize, BrokenBarrier> {
        let b = self.barrier;
        let outcome = match &b.action {
            Some(action) => catch_unwind(AssertUnwindSafe(action)),
            None => Ok(()),
        };
        let mut l = b.list.lock();
        let st = l.state();
        // Broken (abort) or reset while the action ran: this round failed.
        let failed = st.broken || st.generation != generation + 1;
        match outcome {
            Ok(()) if !failed => {
                // The round's waiters are the entries registered before it
                // closed; they get their indices in arrival order.
                let limit = st.closed_before;
                let mut next = 0;
                let mut index = || {
                    let i = next;
                    next += 1;
                    i
                };
                l.notify_with(b.parties - 1, limit, &mut index);
                Ok(b.parties - 1)
            }
            Ok(()) => Err(BrokenBarrier),
            Err(panic) => {
                break_round(&mut l);
                drop(l);
                resume_unwind(panic)
            }
        }
    }
}

impl WaitOp for BarrierWait<'_> {
    type Output = Result<usize, BrokenBarrier>;
    const SPIN: bool = false;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<Self::Output> {
        let b = self.barrier;
        match &mut self.stage {
            WaitStage::Arrive => {
                if !cx.can_wait() {
                    // Arriving is one step; the spin phase has nothing to try.
                    return Poll::Pending;
                }
                let mut l = b.list.lock();
                let st = l.state();
                if st.broken {
                    self.stage = WaitStage::Done;
                    return Poll::Ready(Err(BrokenBarrier));
                }
                st.count += 1;
                let generation = st.generation;
                if st.count == b.parties {
                    // The round closes: later arrivals start the next one.
                    st.count = 0;
                    st.generation += 1;
                    let seq = l.next_seq();
                    l.state().closed_before = seq;
                    drop(l);
                    self.stage = WaitStage::Done;
                    return Poll::Ready(self.release_round(generation));
                }
                if cx.timed_out() {
                    // A zero timeout: arrive, then break at once.
                    break_round(&mut l);
                    self.stage = WaitStage::Done;
                    return Poll::Ready(Err(BrokenBarrier));
                }
                let mut key = None;
                l.insert(&mut key, cx.waiter(), false);
                self.stage = WaitStage::Waiting { key, generation };
                Poll::Pending
            }
            WaitStage::Waiting { key, generation } => {
                let mut l = b.list.lock();
                if let Some(tag) = l.poll(key, cx.waiter()) {
                    l.remove(key);
                    self.stage = WaitStage::Done;
                    return Poll::Ready(if tag == BROKEN {
                        Err(BrokenBarrier)
                    } else {
                        Ok(tag)
                    });
                }
                if cx.timed_out() && l.state().generation == *generation {
                    // Timed out while the round is still filling: break it.
                    break_round(&mut l);
                    l.remove(key);
                    self.stage = WaitStage::Done;
                    return Poll::Ready(Err(BrokenBarrier));
                }
                // Not notified yet (or the round closed and its action is
                // running: the release is on its way, the timeout no
                // longer applies).
                Poll::Pending
            }
            WaitStage::Done => panic!("BarrierWait polled after completion"),
        }
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        if let WaitStage::Waiting { key, generation } = &mut self.stage {
            let mut l = self.barrier.list.lock();
            let notified = l.cancel(key, false).is_some();
            let st = l.state();
            if !notified && st.generation == *generation && !st.broken {
                // Withdraw from the round that is still filling.
                st.count -= 1;
            }
        }
    }
}

/// The blocking facade of a [`Barrier`]; see
/// [`BlockingLock`](super::BlockingLock) for where it may block.
///
/// # Examples
///
/// ```
/// use conex::threading::Barrier;
///
/// let barrier = Barrier::new(2);
/// let b2 = barrier.clone();
/// let t = std::thread::spawn(move || b2.blocking().wait().unwrap());
/// let mine = barrier.blocking().wait().unwrap();
/// let theirs = t.join().unwrap();
/// assert_eq!(mine + theirs, 1);
/// ```
#[derive(Clone, Copy)]
pub struct BlockingBarrier<'a> {
    barrier: &'a Barrier,
}

impl fmt::Debug for BlockingBarrier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingBarrier")
            .field(self.barrier)
            .finish()
    }
}

impl BlockingBarrier<'_> {
    /// Blocks until the round fills up (with the default timeout, if any).
    ///
    /// # Errors
    /// As [`Barrier::wait`].
    #[track_caller]
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        let deadline = self.barrier.inner.timeout.and_then(std_deadline);
        block_on(self.barrier.op(), deadline)
    }

    /// Blocks at most `timeout`; when it passes the barrier breaks.
    ///
    /// # Errors
    /// As [`Barrier::wait`].
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BrokenBarrier> {
        block_on(self.barrier.op(), std_deadline(timeout))
    }

    /// Breaks the barrier.
    pub fn abort(&self) {
        self.barrier.abort();
    }

    /// Resets the barrier.
    pub fn reset(&self) {
        self.barrier.reset();
    }

    /// The number of parties.
    pub fn parties(&self) -> usize {
        self.barrier.parties()
    }

    /// The number of waiters in the filling round.
    pub fn n_waiting(&self) -> usize {
        self.barrier.n_waiting()
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.barrier.broken()
    }
}
