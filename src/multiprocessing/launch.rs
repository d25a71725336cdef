//! Starting a child by each start method, and waiting for it.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::ExitStatus;
use std::sync::Arc;

use super::connection::Connection;
use super::context::{ROLE_ENV, StartMethod};
use super::errors::StartError;
use super::forkserver;
use crate::io::child::Proc;
use crate::sys::{self, ForkRefused};

/// What waits for a started child's exit status.
pub(crate) enum Waiter {
    /// Our own child (spawned or forked).
    Local(Proc),
    /// A child of the fork server, which reports its status.
    Remote(Arc<forkserver::Status>),
}

impl Waiter {
    /// Kills the child (a failed handshake).
    pub(crate) fn kill(&mut self) {
        match self {
            Waiter::Local(p) => {
                let _ = p.kill();
            }
            Waiter::Remote(s) => s.kill(),
        }
    }

    pub(crate) async fn wait(self) -> std::io::Result<ExitStatus> {
        match self {
            Waiter::Local(mut p) => std::future::poll_fn(|cx| p.poll_wait(cx)).await,
            Waiter::Remote(s) => Ok(s.wait().await),
        }
    }
}

/// A started child.
pub(crate) struct Launched {
    pub(crate) pid: u32,
    /// For race-free signals (Linux).
    pub(crate) pidfd: Option<OwnedFd>,
    pub(crate) waiter: Waiter,
}

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

fn pidfd(pid: u32) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        sys::pidfd_open(pid).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// The name a child shows in `ps`: the program's own.
fn argv0() -> std::ffi::OsString {
    std::env::args_os()
        .next()
        .unwrap_or_else(|| "conex-worker".into())
}

/// Re-executes this binary (the file `exe`) with `ctrl` as its stdin.
pub(crate) fn spawn_role(
    role: &str,
    ctrl: OwnedFd,
    exe: &std::path::Path,
) -> Result<std::process::Child, StartError> {
    // Without init first thing in main, the child would run the program
    // itself: refuse here, in the parent, before anything starts.
    if !super::context::initialised() {
        return Err(StartError::NoInit);
    }
    let mut cmd = std::process::Command::new(exe);
    cmd.arg0(argv0())
        .env(ROLE_ENV, role)
        .stdin(std::process::Stdio::from(ctrl));
    Ok(cmd.spawn()?)
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
