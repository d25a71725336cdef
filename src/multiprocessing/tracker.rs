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
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;

use crate::io::sys;

/// Names are at most this long (checked by `SharedMemory`: 250 bytes).
const NAME: usize = 256;
/// How many blocks one creator may have registered at once; more are
/// not tracked (and not lost: unlink still works).
const SLOTS: usize = 4096;

static WRITER: Mutex<Option<std::fs::File>> = Mutex::new(None);

fn send(line: &str, start_if_needed: bool) {
    let mut w = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    if w.is_none() && start_if_needed {
        *w = start();
    }
    if let Some(f) = w.as_mut() {
        if f.write_all(line.as_bytes()).is_err() {
            // The tracker is gone: start another next time.
            *w = None;
        }
    }
}

/// Tracks `name`: unlinked when this process has gone, unless unregistered.
pub(crate) fn register(name: &str) {
    send(&format!("R {name}\n"), true);
}

/// Stops tracking `name` (it was unlinked, by whichever handle): a no-op
/// for a name this process never registered.
pub(crate) fn unregister(name: &str) {
    send(&format!("U {name}\n"), false);
}

/// The highest descriptor number to close in the child.
fn max_fd() -> RawFd {
    // SAFETY: plain system call.
    let n = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    if n <= 0 {
        1024
    } else {
        n.min(1 << 20) as RawFd
    }
}

fn start() -> Option<std::fs::File> {
    let (r, w) = sys::pipe().ok()?;
    sys::set_nonblocking(std::os::fd::AsFd::as_fd(&w), false).ok()?;
    sys::set_nonblocking(std::os::fd::AsFd::as_fd(&r), false).ok()?;
    // Everything the child needs, allocated before the fork.
    let mut table = vec![0u8; NAME * SLOTS];
    let mut buf = vec![0u8; 8192];
    let mut path = [0u8; NAME + 16];
    let top = max_fd();
    let rfd = r.as_raw_fd();
    // SAFETY: the child only makes system calls on memory that exists
    // already (no allocation, no locks), then `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        // SAFETY: as above; the child owns copies of these buffers.
        unsafe { child(rfd, top, &mut table, &mut buf, &mut path) }
    }
    drop(r);
    Some(std::fs::File::from(w))
}

/// The tracker's life. Only async-signal-safe calls from here on.
///
/// # Safety
/// Called in the child of a `fork`, once.
unsafe fn child(rfd: RawFd, top: RawFd, table: &mut [u8], buf: &mut [u8], path: &mut [u8]) -> ! {
    // SAFETY: system calls on this process's own descriptors and signal
    // dispositions.
    unsafe {
        // Python's tracker ignores both: it must outlive a Ctrl-C'd creator.
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        // Keep nothing of the creator's open but the pipe (and stderr):
        // a socket held here would hide its peer's end of file.
        let mut fd = 3;
        while fd < top {
            if fd != rfd {
                libc::close(fd);
            }
            fd += 1;
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    let mut line = [0u8; NAME + 4];
    let mut len = 0usize;
    loop {
        // SAFETY: reading into our own buffer.
        let n = unsafe { libc::read(rfd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            // Reading errno allocates nothing.
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break;
        }
        if n == 0 {
            break;
        }
        for &b in buf.iter().take(n as usize) {
            if b == b'\n' {
                apply(&line[..len], table);
                len = 0;
            } else if len < line.len() {
                line[len] = b;
                len += 1;
            }
        }
    }
    // The creator is gone: unlink what it left, and say how many and
    // which, as CPython's tracker warns.
    let leaked = table.chunks_exact(NAME).filter(|slot| slot[0] != 0).count();
    if leaked > 0 {
        let n = leak_report(leaked, buf);
        // SAFETY: write(2) to stderr from our own buffer.
        unsafe { libc::write(2, buf.as_ptr().cast(), n) };
    }
    for slot in table.chunks_exact(NAME) {
        let n = slot.iter().position(|&b| b == 0).unwrap_or(NAME);
        if n == 0 {
            continue;
        }
        // SAFETY: system calls on buffers we own.
        unsafe { unlink_shm(&slot[..n], path) };
        let mut line = [0u8; NAME + 48];
        let mut at = put(&mut line, 0, b"conex resource tracker: unlinking ");
        at = put(&mut line, at, &slot[..n]);
        at = put(&mut line, at, b"\n");
        // SAFETY: write(2) to stderr from our own buffer.
        unsafe { libc::write(2, line.as_ptr().cast(), at) };
    }
    // SAFETY: ends the process without running anything of the creator's.
    unsafe { libc::_exit(0) }
}

/// Copies `bytes` into `out` at `at` (cut at its end); the new end.
fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    let n = bytes.len().min(out.len().saturating_sub(at));
    out[at..at + n].copy_from_slice(&bytes[..n]);
    at + n
}

/// CPython's warning line for `leaked` blocks, built in `out` with no
/// allocation (the tracker is a fork that may not allocate); its length.
fn leak_report(leaked: usize, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = leaked;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let at = put(out, 0, b"conex resource tracker: There appear to be ");
    let at = put(out, at, &digits[i..]);
    put(
        out,
        at,
        b" leaked shared_memory objects to clean up at shutdown\n",
    )
}

/// One command line: `R name` or `U name`.
fn apply(line: &[u8], table: &mut [u8]) {
    if line.len() < 3 || line[1] != b' ' || line.len() - 2 >= NAME {
        return;
    }
    let name = &line[2..];
    match line[0] {
        b'R' => {
            if let Some(slot) = table.chunks_exact_mut(NAME).find(|s| s[0] == 0) {
                slot[..name.len()].copy_from_slice(name);
                slot[name.len()] = 0;
            }
        }
        b'U' => {
            if let Some(slot) = table
                .chunks_exact_mut(NAME)
                .find(|s| s[..name.len()] == *name && s[name.len()] == 0)
            {
                slot[0] = 0;
            }
        }
        _ => {}
    }
}

/// Unlinks the POSIX shared memory object `name`.
///
/// # Safety
/// System calls only; `path` is scratch space of at least `NAME + 16`.
unsafe fn unlink_shm(name: &[u8], path: &mut [u8]) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const PREFIX: &[u8] = b"/dev/shm/";
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const PREFIX: &[u8] = b"/";
    let total = PREFIX.len() + name.len();
    if total + 1 > path.len() {
        return;
    }
    path[..PREFIX.len()].copy_from_slice(PREFIX);
    path[PREFIX.len()..total].copy_from_slice(name);
    path[total] = 0;
    // SAFETY: a NUL-terminated path in our buffer.
    unsafe {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        libc::unlink(path.as_ptr().cast());
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        libc::shm_unlink(path.as_ptr().cast());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leak_report_counts_as_cpython_words_it() {
        let mut out = [0u8; 256];
        for (n, text) in [
            (1, "There appear to be 1 leaked"),
            (42, "There appear to be 42 leaked"),
            (4096, "There appear to be 4096 leaked"),
        ] {
            let len = leak_report(n, &mut out);
            let line = std::str::from_utf8(&out[..len]).unwrap();
            assert!(line.contains(text), "{line}");
            assert!(line.ends_with("shared_memory objects to clean up at shutdown\n"));
        }
        // A short buffer is cut, never overrun.
        let mut tiny = [0u8; 8];
        assert_eq!(leak_report(7, &mut tiny), 8);
    }
}
