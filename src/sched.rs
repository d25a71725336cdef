//! Python's `sched`: an event scheduler.
//!
//! | Python | conex |
//! |---|---|
//! | `sched.scheduler(timefunc, delayfunc)` | [`Scheduler::new`] (tokio's clock), [`Scheduler::with_clock`] (any [`Clock`]) |
//! | `enterabs(time, priority, action)`, `enter(delay, priority, action)` → `Event` | [`Scheduler::enterabs`], [`Scheduler::enter`] (sync closures), [`Scheduler::enterabs_async`], [`Scheduler::enter_async`] (futures) |
//! | `cancel(event)`, `empty()`, `queue` | [`Scheduler::cancel`], [`Scheduler::empty`], [`Scheduler::queue`] |
//! | `run()`, `run(blocking=False)` | [`Scheduler::run`], [`Scheduler::run_pending`] (and [`Scheduler::blocking`]) |
//!
//! Events run in order of time, then priority (lower first), then entry.
//! Unlike Python's, a waiting `run` wakes up when another task or thread
//! enters an earlier event or cancels the next one. Each action runs in a
//! copy of the context (contextvars) it was entered from.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::contextvars::{InContext, TaskContext};
use crate::wait::driver::may_block;
use crate::wait::{Key, WaitCx, WaitFuture, WaitList, WaitOp, block_on};

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The time source of a [`Scheduler`].
///
/// Python: the `timefunc` and `delayfunc` arguments of `sched.scheduler`.
/// [`TokioClock`] is the default; a simulated clock (whose delays advance
/// its own time) is the classic other one.
pub trait Clock: Send + Sync + 'static {
    /// A point in this clock's time.
    type Instant: Copy + Ord + Send + Sync + fmt::Debug + 'static;

    /// The current time (Python's `timefunc()`).
    fn now(&self) -> Self::Instant;

    /// The time `delay` after `from`.
    fn add(&self, from: Self::Instant, delay: Duration) -> Self::Instant;

    /// Waits until `deadline` (Python's `delayfunc`), for async callers.
    fn delay_until(&self, deadline: Self::Instant) -> Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Waits until `deadline`, blocking the thread.
    fn delay_until_blocking(&self, deadline: Self::Instant);

    /// The std instant of `deadline`, when this clock is wall time: then a
    /// blocking `run` can wake up early when the queue changes. `None` (the
    /// default) makes it call [`delay_until_blocking`](Clock::delay_until_blocking)
    /// and look again after, as Python does.
    fn std_deadline(&self, deadline: Self::Instant) -> Option<std::time::Instant> {
        let _ = deadline;
        None
    }
}

/// tokio's clock: `tokio::time::Instant`, so that `tokio::time::pause()`
/// drives a scheduler in tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = tokio::time::Instant;

    fn now(&self) -> tokio::time::Instant {
        tokio::time::Instant::now()
    }

    fn add(&self, from: tokio::time::Instant, delay: Duration) -> tokio::time::Instant {
        from.checked_add(delay)
            .unwrap_or_else(|| from + crate::threading::TIMEOUT_MAX)
    }

    fn delay_until(&self, deadline: tokio::time::Instant) -> BoxFuture {
        Box::pin(tokio::time::sleep_until(deadline))
    }

    fn delay_until_blocking(&self, deadline: tokio::time::Instant) {
        let now = tokio::time::Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
    }

    fn std_deadline(&self, deadline: tokio::time::Instant) -> Option<std::time::Instant> {
        Some(deadline.into_std())
    }
}

/// A scheduled event: when it runs, with what priority, in what order of
/// entry.
///
/// Python: `sched.Event` (its `time`, `priority`, `sequence`; the action
/// stays in the scheduler).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Event<I> {
    time: I,
    priority: i64,
    sequence: u64,
}

impl<I: Copy> Event<I> {
    /// When the event is due.
    pub fn time(&self) -> I {
        self.time
    }

    /// Its priority (lower runs first among events due at the same time).
    pub fn priority(&self) -> i64 {
        self.priority
    }

    /// Its entry number (ties between equal time and priority).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// The event is not (or no longer) in the scheduler's queue.
///
/// Python: the `ValueError` of `scheduler.cancel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotScheduled;

impl fmt::Display for NotScheduled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event is not scheduled")
    }
}

impl std::error::Error for NotScheduled {}

enum Action {
    Sync(Box<dyn FnOnce() + Send>),
    Async(BoxFuture),
}

struct Entry {
    action: Action,
    ctx: TaskContext,
}

struct State<I> {
    events: BTreeMap<Event<I>, Entry>,
    sequence: u64,
    /// Bumped by every enter and cancel: a waiting `run` looks again.
    version: u64,
}

struct Inner<C: Clock> {
    clock: C,
    list: WaitList<State<C::Instant>>,
}

/// An event scheduler.
///
/// Python: `sched.scheduler`. A cheap handle: clones are the same
/// scheduler, so events can be entered and cancelled from other tasks and
/// threads while it runs.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// use conex::sched::Scheduler;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let s = Scheduler::new();
/// let log = Arc::new(Mutex::new(Vec::new()));
/// for (delay, prio, name) in [(2, 0, "late"), (1, 1, "b"), (1, 0, "a")] {
///     let log = log.clone();
///     s.enter(Duration::from_secs(delay), prio, move || log.lock().unwrap().push(name));
/// }
/// s.run().await;
/// assert_eq!(*log.lock().unwrap(), ["a", "b", "late"]);
/// # }
/// ```
pub struct Scheduler<C: Clock = TokioClock> {
    inner: Arc<Inner<C>>,
}

impl<C: Clock> Clone for Scheduler<C> {
    fn clone(&self) -> Self {
        Scheduler {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Clock> fmt::Debug for Scheduler<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("queue", &self.queue())
            .finish()
    }
}

impl Default for Scheduler<TokioClock> {
    fn default() -> Self {
        Scheduler::new()
    }
}

impl Scheduler<TokioClock> {
    /// A scheduler on tokio's clock.
    ///
    /// Python: `sched.scheduler()`.
    pub fn new() -> Scheduler<TokioClock> {
        Scheduler::with_clock(TokioClock)
    }
}

/// What the front of the queue says.
enum Next<I> {
    Due(Entry),
    Empty,
    Wait(I, u64),
}

impl<C: Clock> Scheduler<C> {
    /// A scheduler on `clock`.
    ///
    /// Python: `sched.scheduler(timefunc, delayfunc)`.
    pub fn with_clock(clock: C) -> Scheduler<C> {
        Scheduler {
            inner: Arc::new(Inner {
                clock,
                list: WaitList::new(State {
                    events: BTreeMap::new(),
                    sequence: 0,
                    version: 0,
                }),
            }),
        }
    }

    /// The scheduler's clock.
    pub fn clock(&self) -> &C {
        &self.inner.clock
    }

    fn insert(&self, time: C::Instant, priority: i64, action: Action) -> Event<C::Instant> {
        let entry = Entry {
            action,
            ctx: TaskContext::copy_current(),
        };
        let mut l = self.inner.list.lock();
        let st = l.state();
        st.sequence += 1;
        let ev = Event {
            time,
            priority,
            sequence: st.sequence,
        };
        st.events.insert(ev, entry);
        Self::changed(&mut l);
        ev
    }

    fn changed(l: &mut crate::wait::list::Locked<'_, State<C::Instant>>) {
        l.state().version += 1;
        l.notify(usize::MAX, 0);
    }

    /// Schedules `action` at `time`.
    ///
    /// Python: `scheduler.enterabs(time, priority, action)`.
    pub fn enterabs(
        &self,
        time: C::Instant,
        priority: i64,
        action: impl FnOnce() + Send + 'static,
    ) -> Event<C::Instant> {
        self.insert(time, priority, Action::Sync(Box::new(action)))
    }

    /// Schedules `action` after `delay`.
    ///
    /// Python: `scheduler.enter(delay, priority, action)`.
    pub fn enter(
        &self,
        delay: Duration,
        priority: i64,
        action: impl FnOnce() + Send + 'static,
    ) -> Event<C::Instant> {
        let time = self.inner.clock.add(self.inner.clock.now(), delay);
        self.enterabs(time, priority, action)
    }

    /// Schedules a future to be awaited at `time` (`run` awaits it before
    /// the next event).
    pub fn enterabs_async(
        &self,
        time: C::Instant,
        priority: i64,
        action: impl Future<Output = ()> + Send + 'static,
    ) -> Event<C::Instant> {
        self.insert(time, priority, Action::Async(Box::pin(action)))
    }

    /// Schedules a future to be awaited after `delay`.
    pub fn enter_async(
        &self,
        delay: Duration,
        priority: i64,
        action: impl Future<Output = ()> + Send + 'static,
    ) -> Event<C::Instant> {
        let time = self.inner.clock.add(self.inner.clock.now(), delay);
        self.enterabs_async(time, priority, action)
    }

    /// Removes exactly `event` from the queue.
    ///
    /// Python: `scheduler.cancel(event)`.
    ///
    /// # Errors
    /// [`NotScheduled`] if it already ran or was cancelled.
    pub fn cancel(&self, event: &Event<C::Instant>) -> Result<(), NotScheduled> {
        let removed = {
            let mut l = self.inner.list.lock();
            let removed = l.state().events.remove(event).ok_or(NotScheduled)?;
            Self::changed(&mut l);
            removed
        };
        // The action's destructor is user code: run it unlocked.
        drop(removed);
        Ok(())
    }

    /// Whether no event is scheduled.
    ///
    /// Python: `scheduler.empty()`.
    pub fn empty(&self) -> bool {
        self.inner.list.lock().state().events.is_empty()
    }

    /// The scheduled events, in the order they will run.
    ///
    /// Python: `scheduler.queue`.
    pub fn queue(&self) -> Vec<Event<C::Instant>> {
        self.inner
            .list
            .lock()
            .state()
            .events
            .keys()
            .copied()
            .collect()
    }

    fn next(&self) -> Next<C::Instant> {
        let now = self.inner.clock.now();
        let mut l = self.inner.list.lock();
        let st = l.state();
        let Some(first) = st.events.keys().next().copied() else {
            return Next::Empty;
        };
        if first.time <= now {
            let entry = st.events.remove(&first).expect("the first key is there");
            Next::Due(entry)
        } else {
            Next::Wait(first.time, st.version)
        }
    }

    async fn run_async(&self, blocking: bool) -> Option<C::Instant> {
        loop {
            match self.next() {
                Next::Due(entry) => {
                    let Entry { action, mut ctx } = entry;
                    match action {
                        Action::Sync(f) => ctx.enter(f),
                        Action::Async(fut) => InContext::new(ctx, fut).await,
                    }
                    // Python's delayfunc(0): let other tasks run.
                    tokio::task::yield_now().await;
                }
                Next::Empty => return None,
                Next::Wait(time, _) if !blocking => return Some(time),
                Next::Wait(time, version) => {
                    let changed = WaitFuture::new(Changed {
                        list: &self.inner.list,
                        seen: version,
                        key: None,
                    });
                    let delay = self.inner.clock.delay_until(time);
                    futures::future::select(std::pin::pin!(changed), delay).await;
                }
            }
        }
    }

    /// Runs every event as it becomes due, until none is left; a future
    /// action is awaited before the next event.
    ///
    /// Python: `scheduler.run()`.
    ///
    /// # Cancel safety
    /// Dropping the future stops the run: an event whose action had not
    /// started stays scheduled; one that had started (a future action being
    /// awaited) is dropped with it.
    pub async fn run(&self) {
        self.run_async(true).await;
    }

    /// Runs the events that are due now and returns when the next one is
    /// (`None` if none is scheduled).
    ///
    /// Python: `scheduler.run(blocking=False)`.
    ///
    /// # Cancel safety
    /// As [`run`](Scheduler::run).
    pub fn run_pending(&self) -> impl Future<Output = Option<C::Instant>> + Send + '_ {
        self.run_async(false)
    }

    /// The blocking facade: run the scheduler on an OS thread.
    pub fn blocking(&self) -> BlockingScheduler<'_, C> {
        BlockingScheduler { sched: self }
    }
}

/// Waits until the scheduler's queue changes (enter or cancel).
struct Changed<'a, I> {
    list: &'a WaitList<State<I>>,
    seen: u64,
    key: Option<Key>,
}

impl<I> WaitOp for Changed<'_, I> {
    type Output = ();
    const SPIN: bool = false;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<()> {
        let mut l = self.list.lock();
        if l.state().version != self.seen || cx.timed_out() {
            l.cancel(&mut self.key, false);
            return Poll::Ready(());
        }
        if self.key.is_none() {
            l.insert(&mut self.key, cx.waiter(), false);
        } else {
            l.poll(&self.key, cx.waiter());
        }
        Poll::Pending
    }
}

impl<I> Drop for Changed<'_, I> {
    fn drop(&mut self) {
        if self.key.is_some() {
            self.list.lock().cancel(&mut self.key, false);
        }
    }
}

/// The blocking facade of a [`Scheduler`]: runs it on the calling OS
/// thread. Future actions are driven on this thread too (inside the
/// runtime conex uses for task-backed Threads, so tokio timers work).
///
/// # Examples
///
/// ```
/// use conex::sched::Scheduler;
/// use std::time::Duration;
///
/// let s = Scheduler::new();
/// let s2 = s.clone();
/// s.enter(Duration::from_millis(5), 0, move || {
///     s2.enter(Duration::from_millis(5), 0, || println!("second"));
/// });
/// s.blocking().run();
/// assert!(s.empty());
/// ```
pub struct BlockingScheduler<'a, C: Clock> {
    sched: &'a Scheduler<C>,
}

impl<C: Clock> fmt::Debug for BlockingScheduler<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingScheduler")
            .field(self.sched)
            .finish()
    }
}

impl<C: Clock> BlockingScheduler<'_, C> {
    fn run_inner(&self, blocking: bool) -> Option<C::Instant> {
        let s = self.sched;
        loop {
            match s.next() {
                Next::Due(entry) => {
                    let Entry { action, mut ctx } = entry;
                    match action {
                        Action::Sync(f) => ctx.enter(f),
                        Action::Async(fut) => {
                            let rt = crate::threading::runtime_handle();
                            let _enter = rt.enter();
                            let fut = InContext::new(ctx, fut);
                            may_block(move || futures::executor::block_on(fut));
                        }
                    }
                    std::thread::yield_now();
                }
                Next::Empty => return None,
                Next::Wait(time, _) if !blocking => return Some(time),
                Next::Wait(time, version) => {
                    let changed = Changed {
                        list: &s.inner.list,
                        seen: version,
                        key: None,
                    };
                    match s.inner.clock.std_deadline(time) {
                        Some(deadline) => block_on(changed, Some(deadline)),
                        None => s.inner.clock.delay_until_blocking(time),
                    }
                }
            }
        }
    }

    /// Runs every event as it becomes due, until none is left.
    ///
    /// Python: `scheduler.run()`.
    pub fn run(&self) {
        self.run_inner(true);
    }

    /// Runs the events due now; returns when the next one is.
    ///
    /// Python: `scheduler.run(blocking=False)`.
    pub fn run_pending(&self) -> Option<C::Instant> {
        self.run_inner(false)
    }
}
