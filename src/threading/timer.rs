//! `Timer`: Python's `threading.Timer`, a Thread that runs a function after
//! an interval unless cancelled first.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use super::{Event, Thread};

/// A task-backed [`Thread`] that waits `interval` (tokio's clock), then runs
/// `function`, unless [`cancel`](Timer::cancel) was called while it waited.
///
/// Python: `threading.Timer(interval, function)`. Like Python's, it is a
/// Thread (through `Deref`): [`start`](Thread::start) it, `join` it, ask
/// [`is_alive`](Thread::is_alive). `function` runs on the runtime's worker;
/// for blocking work, start an OS-thread-backed Thread from it.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::threading::Timer;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let fired = Arc::new(AtomicBool::new(false));
/// let f2 = fired.clone();
/// let timer = Timer::new(Duration::from_millis(10), move || f2.store(true, Ordering::SeqCst));
/// timer.start().unwrap();
/// timer.join().await.unwrap();
/// assert!(fired.load(Ordering::SeqCst));
///
/// let never = Timer::new(Duration::from_secs(3600), || unreachable!());
/// never.start().unwrap();
/// never.cancel();
/// never.join().await.unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct Timer {
    thread: Thread,
    finished: Event,
    interval: Duration,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("thread", &self.thread)
            .field("interval", &self.interval)
            .field("finished", &self.finished.is_set())
            .finish()
    }
}

impl Timer {
    /// A timer, not started yet.
    ///
    /// Python: `threading.Timer(interval, function)`.
    pub fn new(interval: Duration, function: impl FnOnce() + Send + 'static) -> Timer {
        let finished = Event::new();
        let f2 = finished.clone();
        let handle = Thread::builder().build(async move {
            f2.wait_timeout(interval).await;
            if !f2.is_set() {
                function();
            }
            f2.set();
        });
        Timer {
            thread: handle.thread().clone(),
            finished,
            interval,
        }
    }

    /// Stops the timer if it is still waiting: `function` will not run.
    /// Does nothing once `function` has started.
    ///
    /// Python: `Timer.cancel()`.
    pub fn cancel(&self) {
        self.finished.set();
    }

    /// The event set when the timer is done (fired or cancelled).
    ///
    /// Python: `Timer.finished`.
    pub fn finished(&self) -> &Event {
        &self.finished
    }

    /// The interval before `function` runs.
    ///
    /// Python: `Timer.interval`.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

impl Deref for Timer {
    type Target = Thread;

    fn deref(&self) -> &Thread {
        &self.thread
    }
}
