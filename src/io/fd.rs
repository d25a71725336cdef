//! A non-blocking descriptor that can be waited on both ways.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::driver::{blocking_mode, in_runtime, want_fd};
use crate::sys::{RawRef, Registrable};

/// A descriptor owned here and registered with a tokio reactor only the
/// first time an async wait needs it (a blocking-only user never starts a
/// runtime). Shared by reference: reads and writes may wait at once.
pub(crate) struct SharedFd {
    fd: Registrable,
}

impl SharedFd {
    /// Takes a descriptor the caller has made non-blocking.
    pub(crate) fn new(fd: OwnedFd) -> SharedFd {
        SharedFd {
            fd: Registrable::new(fd),
        }
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.fd().as_raw_fd()
    }

    /// The registration: made on first use with the caller's runtime (or
    /// conex's own outside one).
    ///
    /// # Panics
    /// Inside a tokio runtime built without I/O, as tokio's own I/O types
    /// do; the descriptor stays ours and usable by the blocking facade.
    #[track_caller]
    fn registered(&self) -> io::Result<&AsyncFd<RawRef>> {
        in_runtime(|| self.fd.register())
    }

    /// Runs the non-blocking `op` until it does not return `WouldBlock`,
    /// waiting for `interest` (readable or writable) in between, the way
    /// the current driver waits: tokio's reactor under `.await`, `poll(2)`
    /// under the blocking facade.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        mut op: impl FnMut(RawFd) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        match op(self.raw()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return Poll::Ready(r),
        }
        if blocking_mode() {
            want_fd(self.raw(), poll_events(interest));
            return Poll::Pending;
        }
        match self.registered() {
            Ok(afd) => Self::poll_registered(afd, cx, interest, |fd| op(fd).map(|r| (r, false))),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// The reactor's wait loop: readiness first, then `op`; readiness is
    /// cleared through the guard when `op` would block, or when it says
    /// it drained the descriptor.
    fn poll_registered<R>(
        afd: &AsyncFd<RawRef>,
        cx: &mut Context<'_>,
        interest: Interest,
        mut op: impl FnMut(RawFd) -> io::Result<(R, bool)>,
    ) -> Poll<io::Result<R>> {
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
            match op(afd.get_ref().as_raw_fd()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Ok((r, drained)) => {
                    if drained {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(r));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Reads or writes (`interest`) with the non-blocking `op`, which also
    /// says whether it drained the descriptor: a short read, or a short
    /// write, on a stream socket. Once the descriptor is registered with a
    /// reactor, this asks the reactor's readiness first and clears it after
    /// a drained op, as tokio's own streams do: a receiver that has caught
    /// up waits for the next wake-up instead of trying a read that fails
    /// first (and gives the sender time to queue more, so one read takes
    /// several messages); a sender that filled the socket waits for room
    /// instead of trying a send that fails. Before registration, and under
    /// the blocking facade, it is [`poll_io`](SharedFd::poll_io).
    /// Readiness is only ever cleared through a guard taken before the op,
    /// so an event that comes after it wakes the next wait.
    pub(crate) fn poll_stream(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
        mut op: impl FnMut(RawFd) -> io::Result<(usize, bool)>,
    ) -> Poll<io::Result<usize>> {
        match self.fd.get() {
            Some(afd) if !blocking_mode() => Self::poll_registered(afd, cx, interest, op),
            _ => self.poll_io(cx, interest, |fd| op(fd).map(|(n, _)| n)),
        }
    }

    /// Waits until the descriptor is ready for `interest`, without doing
    /// I/O (a pidfd, a sentinel). The caller checks the real condition
    /// afterwards and polls again if it does not hold yet. It clears the
    /// readiness it reports: never use it for reading a descriptor that
    /// [`poll_stream`](SharedFd::poll_stream) reads (that read would then
    /// miss data already there).
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        interest: Interest,
    ) -> Poll<io::Result<()>> {
        if blocking_mode() {
            // Ready already? (No reactor keeps readiness here: ask.)
            let mut p = libc::pollfd {
                fd: self.raw(),
                events: poll_events(interest),
                revents: 0,
            };
            match crate::sys::poll(
                std::slice::from_mut(&mut p),
                Some(std::time::Duration::ZERO),
            ) {
                Ok(true) => return Poll::Ready(Ok(())),
                Ok(false) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            want_fd(self.raw(), poll_events(interest));
            return Poll::Pending;
        }
        let afd = match self.registered() {
            Ok(a) => a,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let ready = if interest.is_readable() {
            afd.poll_read_ready(cx)
        } else {
            afd.poll_write_ready(cx)
        };
        match ready {
            Poll::Ready(Ok(mut g)) => {
                g.clear_ready();
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The descriptor back, deregistered.
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd.into_fd()
    }
}

fn poll_events(interest: Interest) -> libc::c_short {
    if interest.is_readable() {
        libc::POLLIN
    } else {
        libc::POLLOUT
    }
}

impl AsFd for SharedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.fd()
    }
}

impl fmt::Debug for SharedFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFd")
            .field("fd", &self.raw())
            .field("registered", &self.fd.get().is_some())
            .finish()
    }
}
