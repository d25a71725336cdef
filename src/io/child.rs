//! A child process and waiting for its exit, both ways.
//!
//! On Linux a pidfd (readable once the child exits) is the one thing
//! waited on: registered with tokio's reactor under `.await`, put in the
//! `poll(2)` set under the blocking facade. It is opened only when a wait
//! has to wait, and closed (deregistered) before the child is reaped, so
//! reaping does not wake the reactor again. Elsewhere, a blocking thread
//! waits under `.await` and the facade polls with backoff, as CPython's
//! `Popen.wait(timeout)` does.

use std::future::Future;
use std::io;
use std::process::{Child, ExitStatus};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::driver::{blocking_mode, in_runtime, want_deadline};
#[cfg(target_os = "linux")]
use super::fd::SharedFd;
use crate::sys;

/// A child of this process: a `std::process::Child`, or a bare pid (a
/// `fork`ed child).
enum Kid {
    Std(Child),
    Raw {
        pid: u32,
        status: Option<ExitStatus>,
    },
}

impl Kid {
    fn id(&self) -> u32 {
        match self {
            Kid::Std(c) => c.id(),
            Kid::Raw { pid, .. } => *pid,
        }
    }

    fn kill(&mut self) -> io::Result<()> {
        match self {
            Kid::Std(c) => c.kill(),
            Kid::Raw {
                status: Some(_), ..
            } => Ok(()),
            Kid::Raw { pid, status: None } => {
                // Our own unreaped child.
                sys::kill(*pid, libc::SIGKILL)
            }
        }
    }

    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self {
            Kid::Std(c) => c.try_wait(),
            Kid::Raw {
                status: Some(s), ..
            } => Ok(Some(*s)),
            Kid::Raw { pid, status } => {
                use std::os::unix::process::ExitStatusExt;
                // Our own child: waitpid reaps it once it has exited.
                let Some((_, raw)) = sys::waitpid_nohang(*pid as i32)? else {
                    return Ok(None);
                };
                let s = ExitStatus::from_raw(raw);
                *status = Some(s);
                Ok(Some(s))
            }
        }
    }
}

pub(crate) struct Proc {
    child: Kid,
    #[cfg(target_os = "linux")]
    pidfd: Option<SharedFd>,
    /// No pidfds here (not Linux, a kernel before 5.3, a seccomp filter).
    no_pidfd: bool,
    waiter: Option<tokio::task::JoinHandle<io::Result<()>>>,
    backoff: Duration,
}

impl Proc {
    pub(crate) fn new(child: Child) -> Proc {
        Proc::of(Kid::Std(child))
    }

    /// A child known only by its pid (it must be our child, unreaped).
    #[cfg_attr(not(feature = "multiprocessing"), allow(dead_code))]
    pub(crate) fn from_pid(pid: u32) -> Proc {
        Proc::of(Kid::Raw { pid, status: None })
    }

    fn of(child: Kid) -> Proc {
        Proc {
            child,
            #[cfg(target_os = "linux")]
            pidfd: None,
            no_pidfd: cfg!(not(target_os = "linux")),
            waiter: None,
            backoff: Duration::from_micros(500),
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Forgets any reactor registration (the pidfd, the waiting thread), so
    /// the next wait registers wherever it is polled: for a child handed
    /// to the reaper after its caller's runtime may be gone.
    pub(crate) fn reset_registration(&mut self) {
        #[cfg(target_os = "linux")]
        {
            self.pidfd = None;
        }
        self.waiter = None;
    }

    /// SIGKILL (also fine on an exited, unreaped child).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        self.child.kill()
    }

    /// Reaps the child if it has exited.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        #[cfg(target_os = "linux")]
        if self.pidfd.is_some() {
            if !sys::exited_nowait(self.id())? {
                return Ok(None);
            }
            // Deregister before reaping: a reaped child's pidfd hangs up,
            // which would wake the reactor for nothing.
            self.pidfd = None;
        }
        self.child.try_wait()
    }

    /// Waits for the exit (and reaps).
    pub(crate) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        loop {
            match self.try_wait() {
                Ok(Some(status)) => return Poll::Ready(Ok(status)),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            match self.poll_exit(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Ready when the child may have exited.
    fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        #[cfg(target_os = "linux")]
        {
            if self.pidfd.is_none() && !self.no_pidfd {
                match sys::pidfd_open(self.id()) {
                    Ok(fd) => self.pidfd = Some(SharedFd::new(fd)),
                    Err(_) => self.no_pidfd = true,
                }
            }
            if let Some(fd) = &mut self.pidfd {
                match fd.poll_ready(cx, tokio::io::Interest::READABLE) {
                    // Could not register it: wait the portable way instead.
                    Poll::Ready(Err(_)) => {
                        self.pidfd = None;
                        self.no_pidfd = true;
                    }
                    other => return other,
                }
            }
        }
        if blocking_mode() {
            // CPython's Popen.wait(timeout) loop: sleep, doubling, at most 50 ms.
            want_deadline(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(Duration::from_millis(50));
            return Poll::Pending;
        }
        let pid = self.id();
        let waiter = self.waiter.get_or_insert_with(|| {
            in_runtime(|| tokio::task::spawn_blocking(move || sys::wait_exit_nowait(pid)))
        });
        match std::pin::Pin::new(waiter).poll(cx) {
            Poll::Ready(r) => {
                self.waiter = None;
                Poll::Ready(r.unwrap_or_else(|e| Err(io::Error::other(e))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The exit status as Python reports it: the code, or `-N` for signal `N`.
pub(crate) fn returncode(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => -s,
        (None, None) => i32::MIN,
    }
}
