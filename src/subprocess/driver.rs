//! The two ways every subprocess future is driven.
//!
//! Each operation (`run`, `communicate`, `wait`, a stream read) is written
//! once, as a future whose every wait goes through three points: a pipe or
//! pidfd becoming ready ([`Readiness`]), a deadline ([`within`]), or an
//! immediate re-poll (a waker woken during the poll).
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
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

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
fn want_fd(fd: RawFd, events: libc::c_short) {
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

/// The blocking facade of every subprocess call: runs `f` on this thread,
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
                "conex bug: a blocking subprocess call had nothing to wait for"
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

/// Registers `fd` with a tokio reactor: the caller's runtime, or conex's
/// own when the caller has none. On failure the descriptor is handed back.
///
/// # Panics
/// Inside a runtime built without I/O, as tokio's own I/O types do.
pub(crate) fn register(
    fd: OwnedFd,
    interest: Interest,
) -> Result<AsyncFd<OwnedFd>, (OwnedFd, io::Error)> {
    in_runtime(|| {
        // SAFETY: the `OwnedFd` keeps the descriptor open, unchanged, for as
        // long as the `AsyncFd` owns it.
        unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts())
    })
}

fn lost() -> io::Error {
    io::Error::other("conex: the descriptor was lost when registering it with tokio panicked")
}

/// A descriptor waited on either way: plain (never registered, as under
/// the blocking facade) or registered with a tokio reactor on first async
/// wait.
pub(crate) enum Readiness {
    Plain(OwnedFd),
    Registered(AsyncFd<OwnedFd>),
    /// Registration panicked (a runtime without I/O) and took the
    /// descriptor with it: every later use is an error.
    Lost,
}

impl Readiness {
    /// The descriptor, or -1 once [`Readiness::Lost`].
    pub(crate) fn raw(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Readiness::Plain(fd) => fd.as_raw_fd(),
            Readiness::Registered(a) => a.as_raw_fd(),
            Readiness::Lost => -1,
        }
    }

    fn registered(&mut self, interest: Interest) -> io::Result<&AsyncFd<OwnedFd>> {
        if let Readiness::Plain(_) = self {
            let Readiness::Plain(fd) = std::mem::replace(self, Readiness::Lost) else {
                unreachable!()
            };
            match register(fd, interest) {
                Ok(a) => *self = Readiness::Registered(a),
                Err((fd, e)) => {
                    *self = Readiness::Plain(fd);
                    return Err(e);
                }
            }
        }
        match self {
            Readiness::Registered(a) => Ok(a),
            _ => Err(lost()),
        }
    }

    /// Runs the non-blocking `op` until it does not return `WouldBlock`,
    /// waiting for `interest` (readable or writable) in between, the way
    /// the current driver waits.
    pub(crate) fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        interest: Interest,
        mut op: impl FnMut(RawFd) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        if self.raw() < 0 {
            return Poll::Ready(Err(lost()));
        }
        match op(self.raw()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return Poll::Ready(r),
        }
        if blocking_mode() {
            let events = if interest.is_readable() {
                libc::POLLIN
            } else {
                libc::POLLOUT
            };
            want_fd(self.raw(), events);
            return Poll::Pending;
        }
        let afd = match self.registered(interest) {
            Ok(a) => a,
            Err(e) => return Poll::Ready(Err(e)),
        };
        loop {
            let ready = if interest.is_readable() {
                afd.poll_read_ready(cx)
            } else {
                afd.poll_write_ready(cx)
            };
            let mut guard = match ready {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            match guard.try_io(|a| op(std::os::fd::AsRawFd::as_raw_fd(a))) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    /// Waits until the descriptor is readable, without reading (a pidfd).
    pub(crate) fn poll_readable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.raw() < 0 {
            return Poll::Ready(Err(lost()));
        }
        if blocking_mode() {
            want_fd(self.raw(), libc::POLLIN);
            return Poll::Pending;
        }
        let afd = match self.registered(Interest::READABLE) {
            Ok(a) => a,
            Err(e) => return Poll::Ready(Err(e)),
        };
        match afd.poll_read_ready(cx) {
            Poll::Ready(Ok(mut g)) => {
                // Level-checked by the caller (it asks the kernel whether
                // the child exited), so clear and let the next poll wait.
                g.clear_ready();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The descriptor back, deregistered.
    pub(crate) fn into_fd(self) -> io::Result<OwnedFd> {
        match self {
            Readiness::Plain(fd) => Ok(fd),
            Readiness::Registered(a) => Ok(a.into_inner()),
            Readiness::Lost => Err(lost()),
        }
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
