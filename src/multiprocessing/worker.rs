//! The child's side: the handshake, running the target, reporting back.
//!
//! Over the control socket (a socket pair shared with the parent):
//! 1. child → parent: [`Hello`], the binary's identity;
//! 2. parent → child: [`Start`], who the child is and the call, with the
//!    arguments' OS handles (sent only if the identity matched);
//! 3. child → parent: [`Done`], the result or the panic, with the
//!    result's handles; then the child exits (0, or 1 after a panic).
//!
//! While the target runs, a watcher thread waits for the parent to go
//! away (its end of the socket closes, killed or not) and ends the child
//! then: a child never outlives its parent.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

use super::callable::{Call, Identity, Outcome, install_panic_capture};
use super::connection::Connection;
use super::context::{Me, ProcessInfo, StartMethod, set_me};
use super::errors::RemoteError;
use crate::sys;

/// Bumped whenever these messages change.
pub(crate) const PROTOCOL: u16 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) protocol: u16,
    pub(crate) identity: Identity,
    pub(crate) pid: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Start {
    pub(crate) call: Call,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) authkey: Vec<u8>,
    pub(crate) parent: ProcessInfo,
    pub(crate) start_method: StartMethod,
    /// The encoded arguments; their OS handles are the frame's.
    pub(crate) args: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Done {
    /// The encoded result; its OS handles are the frame's.
    Returned(Vec<u8>),
    Panicked(RemoteError),
}

/// A spawned child: its control socket came as stdin.
pub(crate) fn spawned_main() -> ! {
    match take_stdin() {
        Some(ctrl) => run(ctrl),
        None => fail("no control socket on stdin"),
    }
}

/// A re-executed conex process's link to its parent, which came as stdin:
/// moved to a close-on-exec descriptor, stdin becoming `/dev/null`.
/// `None` if there is no stdin. Call it before any thread starts.
pub(crate) fn take_stdin() -> Option<OwnedFd> {
    sys::take_stdin()
}

fn fail(msg: &str) -> ! {
    crate::diag!(error, "worker {}: {msg}", std::process::id());
    let _ = std::io::stderr().flush();
    sys::exit_now(2)
}

/// The worker's life, on its control socket.
pub(crate) fn run(ctrl: OwnedFd) -> ! {
    // This binary diverted here through init (spawn) or is a fork of one
    // that did: its own children can be this binary again.
    super::context::mark_initialised();
    install_panic_capture();
    if sys::set_nonblocking(std::os::fd::AsFd::as_fd(&ctrl), true).is_err() {
        fail("bad control socket");
    }
    let conn = Connection::from_socket(ctrl, true, true, true);
    let hello = Hello {
        protocol: PROTOCOL,
        identity: Identity::current().clone(),
        pid: std::process::id(),
    };
    if conn.blocking().send(&hello).is_err() {
        // The parent is gone already.
        sys::exit_now(1)
    }
    let frame = match crate::io::driver::block_on_io(conn.recv_frame()) {
        Ok(f) => f,
        // Refused (a different binary) or the parent died: nothing to do,
        // and nothing of the parent's may run in this child.
        Err(_) => sys::exit_now(1),
    };
    let start: Start = match postcard::from_bytes(&frame.bytes) {
        Ok(s) => s,
        Err(e) => fail(&format!("bad start message: {e}")),
    };
    set_me(Me {
        info: ProcessInfo {
            name: start.name.clone(),
            pid: std::process::id(),
            daemon: start.daemon,
        },
        authkey: start.authkey.clone(),
        parent: Some(start.parent.clone()),
    });
    let _ = super::context::set_start_method(start.start_method, true);
    watch_parent(conn.as_raw_fd());
    // The parent sent this call after checking that we are the same binary
    // (the Hello above).
    // For a fork child, whose parent's subscriber it keeps (a spawned one
    // starts with none).
    let span = crate::span!(
        "process",
        name = %start.name,
        pid = std::process::id(),
        start_method = ?start.start_method
    );
    let outcome = {
        let _span = span.enter();
        start.call.run(&start.args, frame.fds)
    };
    // From here the parent may close its end as soon as it has the
    // result: the watcher must not turn that into exit code 1.
    FINISHING.store(true, std::sync::atomic::Ordering::SeqCst);
    let (done, fds, code) = match outcome {
        Outcome::Returned(bytes, fds) => (Done::Returned(bytes), fds, 0),
        Outcome::Panicked(e) => (Done::Panicked(e), Vec::new(), 1),
    };
    let _ = crate::io::driver::block_on_io(conn.send_with_fds(&done, fds));
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// Set once the target has returned: the watcher stands down.
static FINISHING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Ends this process when the parent's end of `ctrl` closes.
fn watch_parent(ctrl: std::os::fd::RawFd) {
    let spawned = std::thread::Builder::new()
        .name("conex-parent-watch".into())
        .spawn(move || {
            loop {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                let events = libc::POLLRDHUP;
                #[cfg(not(any(target_os = "linux", target_os = "android")))]
                let events = libc::POLLIN;
                let mut p = libc::pollfd {
                    fd: ctrl,
                    events,
                    revents: 0,
                };
                let _ = sys::poll(std::slice::from_mut(&mut p), None);
                if p.revents & (libc::POLLHUP | libc::POLLERR | events) != 0 {
                    let n = sys::peek_byte(ctrl).unwrap_or(1);
                    if FINISHING.load(std::sync::atomic::Ordering::SeqCst) {
                        // The main thread is reporting and exiting.
                        return;
                    }
                    if n == 0 || p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                        // The parent is gone: so are we.
                        sys::exit_now(1);
                    }
                    // Data the parent sent (not expected): wait again later.
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        });
    if spawned.is_err() {
        fail("cannot start the parent watcher");
    }
}
