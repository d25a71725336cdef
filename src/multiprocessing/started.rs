//! A started child: how one of this binary is started in a role, its pid
//! and pidfd, and what waits for its exit (our own child, or one the fork
//! server forked and reports on). A leaf of the start-up path: `launch`
//! and `forkserver` build on it, and it imports neither.

use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};

use super::context::ROLE_ENV;
use super::errors::StartError;
use crate::io::child::Proc;
use crate::sys;
use crate::threading::Event;

/// What waits for a started child's exit status.
pub(crate) enum Waiter {
    /// Our own child (spawned or forked).
    Local(Proc),
    /// A child of the fork server, which reports its status.
    Remote(Arc<Status>),
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

/// How a child of the fork server ended, once it is known.
pub(crate) struct Status {
    pid: u32,
    raw: Mutex<Option<i32>>,
    done: Event,
}

impl Status {
    /// A child of the fork server with pid `pid`, not yet reaped.
    pub(crate) fn new(pid: u32) -> Status {
        Status {
            pid,
            raw: Mutex::new(None),
            done: Event::new(),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Records how it ended (the first report counts).
    pub(crate) fn finish(&self, raw: i32) {
        let mut r = self.raw.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(raw);
            drop(r);
            self.done.set();
        }
    }

    /// Waits for the exit status.
    pub(crate) async fn wait(&self) -> ExitStatus {
        self.done.wait().await;
        let raw = self
            .raw
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(libc::SIGKILL);
        ExitStatus::from_raw(raw)
    }

    /// SIGKILL, unless it has been reaped already.
    pub(crate) fn kill(&self) {
        if !self.done.is_set() {
            // Not yet reported reaped, so the pid is still the worker's.
            let _ = sys::kill(self.pid, libc::SIGKILL);
        }
    }
}

pub(crate) fn pidfd(pid: u32) -> Option<OwnedFd> {
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
