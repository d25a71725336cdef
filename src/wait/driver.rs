//! One operation, two drivers.
//!
//! Every waiting operation of every primitive is written once, as a
//! [`WaitOp`]: a poll state machine that either completes or registers in a
//! [`WaitList`](super::WaitList) and returns `Pending`. Its `Drop` is its
//! cancellation: it leaves the list and passes on any notification it held.
//!
//! Two drivers run the same op:
//! - [`WaitFuture`] for `.await`: the waiter is the task's waker and an
//!   optional deadline is a tokio timer (so `tokio::time::pause()` drives
//!   timeouts in tests);
//! - [`block_on`] for the blocking facades: a short spin (trying without
//!   registering), then the waiter is the current OS thread, parked with
//!   `park`/`park_timeout` against a std deadline. It needs no runtime; inside
//!   one it steps out of the way through `tokio::task::block_in_place`, and
//!   on the thread that drives a current-thread runtime it refuses with a
//!   panic that names the fix (parking there would deadlock the runtime).
//!
//! When the deadline passes, the driver polls the op once more with
//! [`WaitCx::timed_out`] set; the op then finishes (success if it can still
//! complete, its timeout result otherwise) or moves on to a stage that is
//! not bounded by the timeout (a condition re-acquiring its lock).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::list::Waiter;

/// What a driver tells an operation when it polls it.
pub(crate) struct WaitCx<'a> {
    waiter: Waiter<'a>,
    timed_out: bool,
}

impl<'a> WaitCx<'a> {
    pub(crate) fn new(waiter: Waiter<'a>, timed_out: bool) -> WaitCx<'a> {
        WaitCx { waiter, timed_out }
    }

    /// How to wake this caller if it registers.
    pub(crate) fn waiter(&self) -> &Waiter<'a> {
        &self.waiter
    }

    /// The caller's deadline has passed: do not start a new wait bounded by
    /// the timeout.
    pub(crate) fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// False in the spin phase: the op must not register and returns
    /// `Pending` where it would have waited.
    pub(crate) fn can_wait(&self) -> bool {
        !matches!(self.waiter, Waiter::Never)
    }
}

/// A waiting operation written once, run by [`WaitFuture`] and [`block_on`].
///
/// Contract: `poll_op` returns `Ready` or leaves the op registered so that
/// the waiter in `cx` is woken when polling again could make progress. If
/// `cx.can_wait()` is false it must not register. Dropping the op at any
/// point releases whatever it holds and passes on notifications.
pub(crate) trait WaitOp {
    type Output;
    /// Whether the blocking driver should spin (poll without registering)
    /// before parking. Ops that cannot make progress without registering
    /// (arriving at a barrier, waiting on a condition) say no.
    const SPIN: bool = true;
    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<Self::Output>;
}

enum Timer {
    None,
    At(tokio::time::Instant),
    Armed(Pin<Box<tokio::time::Sleep>>),
    Expired,
}

/// The async driver: a future that polls a [`WaitOp`] with the task's waker,
/// racing an optional tokio deadline.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub(crate) struct WaitFuture<O> {
    op: O,
    timer: Timer,
}

impl<O: WaitOp> WaitFuture<O> {
    /// Waits without a deadline.
    pub(crate) fn new(op: O) -> WaitFuture<O> {
        WaitFuture {
            op,
            timer: Timer::None,
        }
    }

    /// Waits at most `timeout` (tokio's clock). A timeout too large to be a
    /// deadline waits without one.
    pub(crate) fn timeout(op: O, timeout: Duration) -> WaitFuture<O> {
        Self::deadline(op, tokio::time::Instant::now().checked_add(timeout))
    }

    /// Waits until `deadline` (tokio's clock), or forever for `None`.
    pub(crate) fn deadline(op: O, deadline: Option<tokio::time::Instant>) -> WaitFuture<O> {
        WaitFuture {
            op,
            timer: match deadline {
                Some(d) => Timer::At(d),
                None => Timer::None,
            },
        }
    }
}

impl<O: WaitOp + Unpin> Future for WaitFuture<O> {
    type Output = O::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O::Output> {
        let this = self.get_mut();
        loop {
            let timed_out = matches!(this.timer, Timer::Expired);
            let mut wcx = WaitCx::new(Waiter::Task(cx.waker()), timed_out);
            if let Poll::Ready(v) = this.op.poll_op(&mut wcx) {
                return Poll::Ready(v);
            }
            match &mut this.timer {
                Timer::None | Timer::Expired => return Poll::Pending,
                Timer::At(d) => {
                    if tokio::time::Instant::now() >= *d {
                        this.timer = Timer::Expired;
                        continue;
                    }
                    this.timer = Timer::Armed(Box::pin(tokio::time::sleep_until(*d)));
                }
                Timer::Armed(_) => {}
            }
            if let Timer::Armed(sleep) = &mut this.timer {
                if sleep.as_mut().poll(cx).is_ready() {
                    this.timer = Timer::Expired;
                    continue;
                }
            }
            return Poll::Pending;
        }
    }
}

/// A std deadline `timeout` from now; `None` when it does not fit.
pub(crate) fn std_deadline(timeout: Duration) -> Option<std::time::Instant> {
    std::time::Instant::now().checked_add(timeout)
}

/// Exponential spinning, then yielding, before a blocking caller parks:
/// waking a parked thread costs tens of microseconds, a short spin often
/// sees the resource come free first. The one backoff of every blocking
/// facade (the wait core's, the I/O driver's, a pool driver's queue).
///
/// Yielding pays only while the cores are free: on an idle core a yield
/// returns at once and the other side (on another core) answers within
/// microseconds. On a busy machine a yield hands the core to another
/// process for the rest of its time slice (milliseconds), and a few of
/// them per wait turned a round trip into tens of milliseconds. So a yield
/// that takes longer than [`SLOW_YIELD`] ends the backoff at once (the
/// caller sleeps in the kernel, as a plain socket read does) and makes
/// every backoff of the process skip yields for [`BUSY_FOR`], after which
/// one yield looks again.
pub(crate) struct Backoff {
    step: u32,
    yields: u32,
}

/// A yield longer than this means another thread or process had the core.
const SLOW_YIELD: Duration = Duration::from_micros(1000);

/// How long backoffs skip yields once one was slow.
const BUSY_FOR: Duration = Duration::from_millis(100);

/// Until when (nanoseconds since [`clock_base`]) backoffs skip yields.
static BUSY_UNTIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn clock_base() -> std::time::Instant {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(std::time::Instant::now)
}

fn nanos_now() -> u64 {
    clock_base().elapsed().as_nanos() as u64
}

/// Whether a recent yield found the cores busy.
fn cores_busy() -> bool {
    let until = BUSY_UNTIL.load(std::sync::atomic::Ordering::Relaxed);
    until != 0 && nanos_now() < until
}

impl Backoff {
    const SPIN_LIMIT: u32 = 6;

    /// The wait core's: a short spin, then four yields.
    pub(crate) fn new() -> Backoff {
        Backoff::with_yields(4)
    }

    /// A short spin, then `yields` yields of the CPU (none while the cores
    /// are busy): for waits whose answer comes from another process (a
    /// reply over a socket), which takes longer than a thread's release.
    pub(crate) fn with_yields(yields: u32) -> Backoff {
        let yields = if cfg!(conex_loom) || !cores_busy() {
            yields
        } else {
            0
        };
        Backoff { step: 0, yields }
    }

    pub(crate) fn snooze(&mut self) {
        if self.step <= Self::SPIN_LIMIT {
            for _ in 0..1u32 << self.step {
                std::hint::spin_loop();
            }
        } else {
            let t0 = std::time::Instant::now();
            crate::shim::thread::yield_now();
            if !cfg!(conex_loom) && t0.elapsed() > SLOW_YIELD {
                // The core was someone else's: stop backing off, and tell
                // the other backoffs.
                BUSY_UNTIL.store(
                    nanos_now() + BUSY_FOR.as_nanos() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                self.yields = 0;
                self.step = Self::SPIN_LIMIT;
            }
        }
        self.step += 1;
    }

    pub(crate) fn is_completed(&self) -> bool {
        cfg!(conex_loom) || self.step > Self::SPIN_LIMIT + self.yields
    }
}

/// The blocking driver: runs `op` on the calling OS thread until it
/// completes, treating `deadline` (std clock) as its timeout.
#[track_caller]
pub(crate) fn block_on<O: WaitOp>(mut op: O, deadline: Option<std::time::Instant>) -> O::Output {
    if O::SPIN {
        let mut backoff = Backoff::new();
        loop {
            if let Poll::Ready(v) = op.poll_op(&mut WaitCx::new(Waiter::Never, false)) {
                return v;
            }
            if backoff.is_completed() {
                break;
            }
            if let Some(d) = deadline {
                if std::time::Instant::now() >= d {
                    break;
                }
            }
            backoff.snooze();
        }
    }
    may_block(move || park_loop(op, deadline))
}

fn park_loop<O: WaitOp>(mut op: O, deadline: Option<std::time::Instant>) -> O::Output {
    let me = crate::shim::thread::current();
    let mut timed_out = false;
    loop {
        if let Poll::Ready(v) = op.poll_op(&mut WaitCx::new(Waiter::Thread(&me), timed_out)) {
            return v;
        }
        match deadline {
            Some(d) if !timed_out => {
                let now = std::time::Instant::now();
                if now >= d {
                    timed_out = true;
                    continue;
                }
                crate::shim::thread::park_timeout(d - now);
            }
            _ => crate::shim::thread::park(),
        }
    }
}

/// What a blocking facade says when it is called on the thread that drives
/// a current-thread tokio runtime and would have to park.
#[cfg_attr(conex_loom, allow(dead_code))] // loom builds have no runtime to refuse
pub(crate) const BLOCKING_IN_RUNTIME: &str = "conex: a blocking facade had to wait on the thread \
     that drives a current_thread tokio runtime, which would deadlock it. Use the async method \
     with .await, run the blocking call in tokio::task::spawn_blocking or a conex OS-thread \
     Thread, or use a multi_thread runtime";

/// Runs `f` (which parks) where parking is safe: directly outside any
/// runtime; through `block_in_place` on a multi-thread runtime (the worker's
/// other tasks move to another thread); refused with [`BLOCKING_IN_RUNTIME`]
/// where tokio cannot step aside.
#[track_caller]
pub(crate) fn may_block<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(conex_loom)]
    {
        f()
    }
    #[cfg(not(conex_loom))]
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return f();
        }
        let started = std::cell::Cell::new(false);
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::task::block_in_place(|| {
                started.set(true);
                f()
            })
        }));
        match res {
            Ok(v) => v,
            Err(_) if !started.get() => panic!("{}", BLOCKING_IN_RUNTIME),
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }
}

/// An op whose output is mapped once it is ready (a guard built from an
/// acquired permit, `()` from `true`...).
pub(crate) struct MapOp<O, F> {
    op: O,
    f: Option<F>,
}

impl<O, F> MapOp<O, F> {
    pub(crate) fn new(op: O, f: F) -> MapOp<O, F> {
        MapOp { op, f: Some(f) }
    }
}

impl<O: WaitOp, F: FnOnce(O::Output) -> T, T> WaitOp for MapOp<O, F> {
    type Output = T;
    const SPIN: bool = O::SPIN;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<T> {
        match self.op.poll_op(cx) {
            Poll::Ready(v) => {
                let f = self.f.take().expect("MapOp polled after completion");
                Poll::Ready(f(v))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
