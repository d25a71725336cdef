//! The two ways every descriptor-waiting future is driven (subprocess,
//! multiprocessing).
//!
//! Each operation (`run`, `communicate`, `wait`, a connection's `recv`...)
//! is written once, as a future whose every wait goes through three points:
//! a descriptor becoming ready ([`SharedFd`](super::fd::SharedFd)), a
//! deadline ([`within`]), or an immediate re-poll (a waker woken during the
//! poll).
//!
//! - `.await`: the descriptors are registered with tokio's reactor (the
//!   caller's runtime, or conex's own when the caller has none) and
//!   deadlines are tokio timers. Like tokio's own I/O types, this needs a
//!   runtime with I/O and time enabled when there is one.
//! - The blocking facade, [`block_on_io`]: the same future is polled on the
//!   calling thread, and instead of registering, each wait records its
//!   descriptor or deadline in a thread-local poll set; the thread then
//!   sleeps in one `poll(2)` on that set. A child's exit wakes it straight
//!   from the kernel, with no reactor thread in between, which is what lets
//!   the facade keep up with `std::process`.

use std::cell::RefCell;
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::sys;

#[derive(Default)]
struct PollSet {
    fds: Vec<libc::pollfd>,
    deadline: Option<Instant>,
}

thread_local! {
    /// `Some` while [`block_on_io`] polls a future on this thread.
    static POLL_SET: RefCell<Option<PollSet>> = const { RefCell::new(None) };
}

/// Whether the future being polled runs under the blocking facade.
pub(crate) fn blocking_mode() -> bool {
    POLL_SET.with(|p| p.borrow().is_some())
}

/// Under the blocking facade: wake this thread when `fd` is ready for
/// `events` (`POLLIN` / `POLLOUT`).
pub(crate) fn want_fd(fd: RawFd, events: libc::c_short) {
    POLL_SET.with(|p| {
        if let Some(set) = p.borrow_mut().as_mut() {
            set.fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    })
}

/// Under the blocking facade: wake this thread at `deadline` at the latest.
pub(crate) fn want_deadline(deadline: Instant) {
    POLL_SET.with(|p| {
        if let Some(set) = p.borrow_mut().as_mut() {
            set.deadline = Some(set.deadline.map_or(deadline, |d| d.min(deadline)));
        }
    })
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Restores the caller's poll set (for nesting) on the way out, panics
/// included.
struct Restore(Option<PollSet>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        POLL_SET.with(|p| *p.borrow_mut() = prev);
    }
}

/// The blocking facade of every descriptor-waiting call: runs `f` on this thread,
/// sleeping in `poll(2)` on whatever it waits for. Where parking is not
/// allowed (a current-thread runtime) it panics naming the fix, as every
/// conex facade.
pub(crate) fn block_on_io<F: Future>(f: F) -> F::Output {
    crate::wait::driver::may_block(|| {
        let mut f = pin!(f);
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let _restore = Restore(POLL_SET.with(|p| p.borrow_mut().replace(PollSet::default())));
        loop {
            POLL_SET.with(|p| *p.borrow_mut() = Some(PollSet::default()));
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            if flag.0.swap(false, Ordering::AcqRel) {
                continue;
            }
            let mut set = POLL_SET
                .with(|p| p.borrow_mut().take())
                .expect("the poll set is ours");
            assert!(
                !set.fds.is_empty() || set.deadline.is_some(),
                "conex bug: a blocking call had nothing to wait for"
            );
            let timeout = set
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            // An error here (ENOMEM) is retried by polling the future again,
            // which redoes the I/O and surfaces any real error.
            let _ = sys::poll(&mut set.fds, timeout);
        }
    })
}

/// Runs `f` inside a tokio runtime context: the caller's if there is one,
/// else conex's own.
pub(crate) fn in_runtime<R>(f: impl FnOnce() -> R) -> R {
    if tokio::runtime::Handle::try_current().is_ok() {
        f()
    } else {
        let _guard = crate::threading::own_runtime().enter();
        f()
    }
}

/// `fut`, or `None` once `timeout` has passed. Under `.await` the timeout
/// is a tokio timer (the caller's clock); under the blocking facade it is
/// the wall clock of `poll(2)`.
pub(crate) async fn within<F: Future>(timeout: Option<Duration>, fut: F) -> Option<F::Output> {
    let Some(timeout) = timeout else {
        return Some(fut.await);
    };
    let mut fut = pin!(fut);
    let blocking_deadline = blocking_mode().then(|| Instant::now().checked_add(timeout));
    let mut sleep: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        match blocking_deadline {
            Some(None) => Poll::Pending, // too far away to matter
            Some(Some(d)) => {
                if Instant::now() >= d {
                    return Poll::Ready(None);
                }
                want_deadline(d);
                Poll::Pending
            }
            None => {
                let s = sleep
                    .get_or_insert_with(|| in_runtime(|| Box::pin(tokio::time::sleep(timeout))));
                match s.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    })
    .await
}
