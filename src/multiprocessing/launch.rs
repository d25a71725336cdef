//! Starting a child by each start method, and waiting for it.

use std::os::fd::{AsFd, OwnedFd};

use super::connection::Connection;
use super::context::StartMethod;
use super::errors::StartError;
use super::forkserver;
use super::started::{Launched, Waiter, pidfd, spawn_role};
use crate::io::child::Proc;
use crate::sys::{self, ForkRefused};

/// Starts a child by `method` with `theirs` as its control socket; `ours`
/// is the parent's end (closed in a forked child).
pub(crate) fn launch(
    method: StartMethod,
    exe: &std::path::Path,
    theirs: Connection,
    ours: &Connection,
) -> Result<Launched, StartError> {
    let theirs = dup_of(&theirs)?;
    match method {
        StartMethod::Spawn => spawn(theirs, exe),
        StartMethod::Fork => fork(theirs, ours),
        StartMethod::Forkserver => forkserver::client()?.start_child(theirs),
    }
}

fn dup_of(c: &Connection) -> Result<OwnedFd, StartError> {
    Ok(c.as_fd().try_clone_to_owned()?)
}

fn spawn(ctrl: OwnedFd, exe: &std::path::Path) -> Result<Launched, StartError> {
    let child = spawn_role("worker", ctrl, exe)?;
    let pid = child.id();
    Ok(Launched {
        pid,
        pidfd: pidfd(pid),
        waiter: Waiter::Local(Proc::new(child)),
    })
}

fn fork(ctrl: OwnedFd, ours: &Connection) -> Result<Launched, StartError> {
    // The child must not keep the parent's end open, or the parent's
    // death would go unnoticed.
    let child = move || -> std::convert::Infallible { super::worker::run(ctrl) };
    let pid = match sys::fork_alone(&[ours.as_fd()], child) {
        Ok(pid) => pid,
        Err(ForkRefused::Threads(n)) => return Err(StartError::ForkWithThreads(n)),
        Err(ForkRefused::Uncounted) => {
            return Err(StartError::Unsupported(
                "fork (cannot count this process's threads)",
            ));
        }
        Err(ForkRefused::Os(e)) => return Err(e.into()),
    };
    Ok(Launched {
        pid,
        pidfd: pidfd(pid),
        waiter: Waiter::Local(Proc::from_pid(pid)),
    })
}

/// A signal through a pidfd (no recycled pid can be hit).
pub(crate) fn pidfd_signal(fd: &OwnedFd, sig: i32) -> std::io::Result<()> {
    sys::pidfd_signal(fd, sig)
}
