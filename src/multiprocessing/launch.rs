//! Starting a child by each start method, and waiting for it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::ExitStatus;
use std::sync::Arc;

use super::connection::Connection;
use super::context::{ROLE_ENV, StartMethod};
use super::errors::StartError;
use super::forkserver;
use crate::io::child::Proc;
use crate::io::sys;

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

/// How many threads this process runs (Linux), if it can tell.
fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

fn fork(ctrl: OwnedFd, ours: &Connection) -> Result<Launched, StartError> {
    match thread_count() {
        Some(1) => {}
        Some(n) => return Err(StartError::ForkWithThreads(n)),
        None => {
            return Err(StartError::Unsupported(
                "fork (cannot count this process's threads)",
            ));
        }
    }
    let our_fd = ours.as_raw_fd();
    // SAFETY: the process is single-threaded (checked above), so the child
    // starts with a consistent copy of every lock and allocator.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if pid == 0 {
        // The child: the parent's end must not stay open here, or the
        // parent's death would go unnoticed.
        // SAFETY: closing a descriptor that belongs to the parent's side.
        unsafe { libc::close(our_fd) };
        super::worker::run(ctrl);
    }
    drop(ctrl);
    let pid = pid as u32;
    Ok(Launched {
        pid,
        pidfd: pidfd(pid),
        waiter: Waiter::Local(Proc::from_pid(pid)),
    })
}

/// A signal through a pidfd (no recycled pid can be hit).
pub(crate) fn pidfd_signal(fd: &OwnedFd, sig: i32) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a raw system call with a descriptor we own.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // Already gone.
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, sig);
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "no pidfds here",
        ))
    }
}
