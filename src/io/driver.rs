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
use std::os::fd::{OwnedFd, RawFd};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::sys;

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

/// The waker of [`block_on_io`]: a flag, and an eventfd (a pipe off
/// Linux) that wakes the thread out of `poll(2)` when a waker fires while
/// it sleeps there (a conex lock released by another thread, say).
struct Notifier {
    woken: AtomicBool,
    sleeping: AtomicBool,
    /// Read end (polled); the write end, where there is one, is `wake_fd`.
    poll_fd: OwnedFd,
    wake_fd: Option<OwnedFd>,
}

impl Notifier {
    fn new() -> std::io::Result<Notifier> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let fd = sys::eventfd()?;
            Ok(Notifier {
                woken: AtomicBool::new(false),
                sleeping: AtomicBool::new(false),
                poll_fd: fd,
                wake_fd: None,
            })
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            use std::os::fd::AsFd;
            let (r, w) = sys::pipe()?;
            sys::set_nonblocking(r.as_fd(), true)?;
            sys::set_nonblocking(w.as_fd(), true)?;
            Ok(Notifier {
                woken: AtomicBool::new(false),
                sleeping: AtomicBool::new(false),
                poll_fd: r,
                wake_fd: Some(w),
            })
        }
    }

    fn kick(&self) {
        use std::os::fd::AsRawFd;
        let fd = self.wake_fd.as_ref().unwrap_or(&self.poll_fd).as_raw_fd();
        let one = 1u64.to_ne_bytes();
        // A full eventfd or pipe already holds a wake-up: nothing to do.
        let _ = sys::write(fd, &one);
    }

    fn drain(&self) {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 64];
        while matches!(sys::read(self.poll_fd.as_raw_fd(), sys::as_uninit(&mut buf)), Ok(n) if n > 0)
        {
        }
    }
}

impl Wake for Notifier {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Dekker with the sleeper: it sets `sleeping` then reads `woken`;
        // we set `woken` then read `sleeping`. One of us sees the other.
        self.woken.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            self.kick();
        }
    }
}

thread_local! {
    /// One notifier per thread, reused by every `block_on_io` there (a
    /// waker that outlives the call keeps its own reference).
    static NOTIFIER: RefCell<Option<Arc<Notifier>>> = const { RefCell::new(None) };
}

fn notifier() -> Arc<Notifier> {
    NOTIFIER.with(|n| {
        let mut n = n.borrow_mut();
        if let Some(n) = n.as_ref() {
            return n.clone();
        }
        let fresh = Arc::new(Notifier::new().expect("conex: cannot create an eventfd"));
        *n = Some(fresh.clone());
        fresh
    })
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

/// Yields between retries of a blocked operation before the facade
/// sleeps in `poll(2)`.
const IO_YIELDS: u32 = 16;

/// The blocking facade of every descriptor-waiting call: runs `f` on this
/// thread, sleeping in `poll(2)` on whatever it waits for (descriptors,
/// a deadline, or a waker fired from elsewhere). Where parking is not
/// allowed (a current-thread runtime) it panics naming the fix, as every
/// conex facade.
#[track_caller]
pub(crate) fn block_on_io<F: Future>(f: F) -> F::Output {
    crate::wait::driver::may_block(|| {
        let mut f = pin!(f);
        let note = notifier();
        note.woken.store(false, Ordering::SeqCst);
        let waker = Waker::from(note.clone());
        let mut cx = Context::from_waker(&waker);
        let _restore = Restore(POLL_SET.with(|p| p.borrow_mut().replace(PollSet::default())));
        let mut backoff = crate::wait::Backoff::with_yields(IO_YIELDS);
        loop {
            POLL_SET.with(|p| *p.borrow_mut() = Some(PollSet::default()));
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            if note.woken.swap(false, Ordering::SeqCst) {
                continue;
            }
            // A reply is often microseconds away (a round trip with a
            // process on another core): back off and try again before
            // sleeping in poll(2) and paying a wake-up, as the wait core's
            // facade does before it parks.
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            let mut set = POLL_SET
                .with(|p| p.borrow_mut().take())
                .expect("the poll set is ours");
            {
                use std::os::fd::AsRawFd;
                set.fds.push(libc::pollfd {
                    fd: note.poll_fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            note.sleeping.store(true, Ordering::SeqCst);
            if !note.woken.load(Ordering::SeqCst) {
                let timeout = set
                    .deadline
                    .map(|d| d.saturating_duration_since(Instant::now()));
                // An error here (ENOMEM) is retried by polling the future
                // again, which redoes the I/O and surfaces any real error.
                let _ = sys::poll(&mut set.fds, timeout);
            }
            note.sleeping.store(false, Ordering::SeqCst);
            if set.fds.last().is_some_and(|p| p.revents != 0) {
                note.drain();
            }
            note.woken.store(false, Ordering::SeqCst);
        }
    })
}

/// Runs `f` inside a tokio runtime context: the caller's if there is one,
/// else conex's own.
pub(crate) fn in_runtime<R>(f: impl FnOnce() -> R) -> R {
    if tokio::runtime::Handle::try_current().is_ok() {
        f()
    } else {
        let _guard = crate::runtime::own_runtime().enter();
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

/// Sleeps for `d`, either way: a tokio timer under `.await`, the poll set's
/// deadline under the blocking facade.
pub(crate) async fn sleep(d: Duration) {
    let _ = within(Some(d), std::future::pending::<()>()).await;
}
