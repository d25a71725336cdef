//! The resource tracker: a small process that unlinks the shared memory
//! blocks its creator registered and never unlinked, once the creator has
//! exited (normally, by a panic, or killed). Python:
//! `multiprocessing.resource_tracker`.
//!
//! It is a *fork* of the creator that never executes anything: it works
//! in memory allocated before the fork, with system calls only (`read`,
//! `unlink`, `write`, `_exit`), which is what a fork of a multi-threaded
//! process may do. So it needs no [`init`](super::init) in `main` (a
//! re-executed tracker would run a `main` without it as the program
//! itself, and that program would start a tracker of its own...), and any
//! program, doc tests included, can create tracked blocks.
//!
//! Its only open descriptor is the read end of a pipe whose write end only
//! the creator holds; each line is `R name` (register) or `U name`
//! (unregister). End of file means the creator is gone: whatever is still
//! registered is unlinked, with CPython's warning on stderr ("There appear
//! to be N leaked shared_memory objects to clean up at shutdown") and one
//! line per block it unlinks, so a user sees what a killed creator left.

use std::io::Write;
use std::sync::Mutex;

use crate::sys;

/// This process's tracker and everything registered with it, so that a
/// tracker found dead is replaced and told it all again.
struct Tracker {
    /// The process this state is of (a forked child inherits a copy of
    /// its parent's: it must neither write to nor replay the parent's).
    owner: u32,
    pipe: Option<std::fs::File>,
    pid: libc::pid_t,
    entries: Vec<(String, u64)>,
}

static TRACKER: Mutex<Tracker> = Mutex::new(Tracker {
    owner: 0,
    pipe: None,
    pid: 0,
    entries: Vec::new(),
});

impl Tracker {
    /// Whether the tracker process is gone (it is our child: a dead one is
    /// reaped here).
    fn dead(&self) -> bool {
        if self.pipe.is_none() {
            return true;
        }
        // Reaped now, or not our child any more (an error): gone.
        !matches!(sys::waitpid_nohang(self.pid), Ok(None))
    }

    /// Writes `line`; replaces a dead tracker (telling the new one every
    /// entry, `line`'s change included) first or when the write fails.
    fn deliver(&mut self, line: &str) {
        if !self.dead() {
            if let Some(p) = self.pipe.as_mut() {
                if p.write_all(line.as_bytes()).is_ok() {
                    return;
                }
            }
        }
        self.pipe = None;
        if self.entries.is_empty() {
            return;
        }
        let Some((pipe, pid)) = start() else {
            return;
        };
        self.pipe = Some(pipe);
        self.pid = pid;
        let all: String = self
            .entries
            .iter()
            .map(|(n, ino)| format!("R {ino} {n}\n"))
            .collect();
        if let Some(p) = self.pipe.as_mut() {
            if p.write_all(all.as_bytes()).is_err() {
                self.pipe = None;
            }
        }
    }
}

fn tracker() -> std::sync::MutexGuard<'static, Tracker> {
    let mut t = TRACKER.lock().unwrap_or_else(|e| e.into_inner());
    let me = std::process::id();
    if t.owner != me {
        // A fork's copy of its parent's tracker: not ours.
        *t = Tracker {
            owner: me,
            pipe: None,
            pid: 0,
            entries: Vec::new(),
        };
    }
    t
}

/// Tracks `name`: unlinked when this process has gone, unless
/// unregistered. With `ino` non-zero, only while the name still leads to
/// that inode (a name this process may not have created: the tracker
/// must never unlink someone else's block).
pub(crate) fn register(name: &str, ino: u64) {
    let mut t = tracker();
    t.entries.push((name.to_owned(), ino));
    t.deliver(&format!("R {ino} {name}\n"));
}

/// Stops tracking `name` (the block of inode `ino`; 0: whichever): a
/// no-op for a name this process never registered.
pub(crate) fn unregister(name: &str, ino: u64) {
    let mut t = tracker();
    let Some(i) = t
        .entries
        .iter()
        .position(|(n, e)| n == name && (*e == 0 || ino == 0 || *e == ino))
    else {
        return;
    };
    t.entries.remove(i);
    t.deliver(&format!("U {ino} {name}\n"));
}

fn start() -> Option<(std::fs::File, libc::pid_t)> {
    let (r, w) = sys::pipe().ok()?;
    sys::set_nonblocking(std::os::fd::AsFd::as_fd(&w), false).ok()?;
    sys::set_nonblocking(std::os::fd::AsFd::as_fd(&r), false).ok()?;
    let pid = sys::tracker::spawn(r).ok()?;
    Some((std::fs::File::from(w), pid as libc::pid_t))
}
