//! The resource tracker: a small process that unlinks the shared memory
//! blocks its creator registered and never unlinked, once the creator has
//! exited (normally, by a panic, or killed). Python:
//! `multiprocessing.resource_tracker`.
//!
//! Started (by `spawn`) on the first tracked [`SharedMemory`] a process
//! creates. Its stdin is the read end of a pipe whose write end only the
//! creator holds; each line is `R name` (register) or `U name`
//! (unregister). End of file means the creator is gone: whatever is still
//! registered is unlinked, with a warning on stderr as Python prints.
//!
//! [`SharedMemory`]: super::SharedMemory

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;

use crate::io::sys;

static WRITER: Mutex<Option<std::fs::File>> = Mutex::new(None);

fn send(line: &str) {
    let mut w = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    if w.is_none() {
        *w = start();
    }
    if let Some(f) = w.as_mut() {
        if f.write_all(line.as_bytes()).is_err() {
            // The tracker is gone: start another next time.
            *w = None;
        }
    }
}

fn start() -> Option<std::fs::File> {
    let (r, w) = sys::pipe().ok()?;
    sys::set_nonblocking(std::os::fd::AsFd::as_fd(&w), false).ok()?;
    let child = super::launch::spawn_role("tracker", r).ok()?;
    // Never waited for: it outlives us by design, and is reparented.
    std::mem::forget(child);
    Some(std::fs::File::from(w))
}

/// Tracks `name`: unlinked when this process has gone, unless unregistered.
pub(crate) fn register(name: &str) {
    send(&format!("R {name}\n"));
}

/// Stops tracking `name` (it was unlinked).
pub(crate) fn unregister(name: &str) {
    send(&format!("U {name}\n"));
}

/// The tracker process: its pipe came as stdin.
pub(crate) fn main() -> ! {
    // Python's tracker ignores both: it must outlive a Ctrl-C'd creator.
    // SAFETY: setting dispositions before any thread exists.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
    // SAFETY: taking our own stdin.
    let input = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(libc::dup(0)) });
    let mut live = BTreeSet::new();
    for line in std::io::BufReader::new(input).lines() {
        let Ok(line) = line else { break };
        match line.split_once(' ') {
            Some(("R", n)) => {
                live.insert(n.to_owned());
            }
            Some(("U", n)) => {
                live.remove(n);
            }
            _ => {}
        }
    }
    if !live.is_empty() {
        eprintln!(
            "conex resource tracker: {} leaked shared memory block(s) to clean up: {:?}",
            live.len(),
            live
        );
    }
    for n in live {
        if let Ok(c) = std::ffi::CString::new(format!("/{n}")) {
            // SAFETY: a plain system call with a valid C string.
            unsafe { libc::shm_unlink(c.as_ptr()) };
        }
    }
    std::process::exit(0)
}
