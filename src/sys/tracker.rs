//! The resource tracker's process: a fork of its creator that runs only
//! the loop here, in memory allocated before the fork, with system calls
//! only (`read`, `unlink`, `stat`, `write`, `_exit`), which is all a fork
//! of a multi-threaded process may do. Its registry side (what it is told
//! and when it is replaced) is `multiprocessing::tracker`.
//!
//! Each line it reads is `R ino name` (register) or `U ino name`
//! (unregister). End of file means the creator is gone: whatever is still
//! registered is unlinked, with CPython's warning on stderr ("There appear
//! to be N leaked shared_memory objects to clean up at shutdown") and one
//! line per block it unlinks.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Names are at most this long (checked by `SharedMemory`: 250 bytes).
const NAME: usize = 256;
/// One table slot: the name (NUL-ended) and, in the last 8 bytes, the
/// inode the name must still lead to for the tracker to unlink it (0: any).
const SLOT: usize = NAME + 8;
/// How many blocks one creator may have registered at once; more are
/// not tracked (and not lost: unlink still works).
const SLOTS: usize = 4096;

/// Forks the tracker, reading commands from `r` (the read end of a pipe
/// whose write end only the creator holds); its pid.
pub(crate) fn spawn(r: OwnedFd) -> io::Result<u32> {
    // Everything the child needs, allocated before the fork.
    let mut table = vec![0u8; SLOT * SLOTS];
    let mut buf = vec![0u8; 8192];
    let mut path = [0u8; NAME + 16];
    let top = super::max_fd();
    let rfd = r.as_raw_fd();
    // SAFETY: the child only runs `child`, which makes system calls on
    // memory that exists already (no allocation, no locks), then
    // `_exit`s; it never returns into the creator's code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: as above; the child owns copies of these buffers.
        unsafe { child(rfd, top, &mut table, &mut buf, &mut path) }
    }
    drop(r);
    Ok(pid as u32)
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
    // The creator is gone: unlink what it left (a name registered with an
    // inode only while it still leads there), and say how many and which,
    // as CPython's tracker warns.
    for slot in table.chunks_exact_mut(SLOT) {
        let ino = u64::from_ne_bytes(slot[NAME..].try_into().unwrap_or([0; 8]));
        let n = slot[..NAME].iter().position(|&b| b == 0).unwrap_or(NAME);
        // SAFETY: system calls on buffers we own.
        if n > 0 && ino != 0 && unsafe { shm_inode(&slot[..n], path) } != Some(ino) {
            slot[0] = 0;
        }
    }
    let leaked = table.chunks_exact(SLOT).filter(|slot| slot[0] != 0).count();
    if leaked > 0 {
        let n = leak_report(leaked, buf);
        // SAFETY: write(2) to stderr from our own buffer.
        unsafe { libc::write(2, buf.as_ptr().cast(), n) };
    }
    for slot in table.chunks_exact(SLOT) {
        let n = slot[..NAME].iter().position(|&b| b == 0).unwrap_or(NAME);
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

/// One command line: `R ino name` or `U ino name` (`ino` in decimal, 0:
/// any block of that name).
fn apply(line: &[u8], table: &mut [u8]) {
    if line.len() < 5 || line[1] != b' ' {
        return;
    }
    let rest = &line[2..];
    let Some(space) = rest.iter().position(|&b| b == b' ') else {
        return;
    };
    let mut ino = 0u64;
    for &d in &rest[..space] {
        if !d.is_ascii_digit() {
            return;
        }
        ino = ino.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
    }
    let name = &rest[space + 1..];
    if name.is_empty() || name.len() >= NAME {
        return;
    }
    let ino_of = |slot: &[u8]| u64::from_ne_bytes(slot[NAME..].try_into().unwrap_or([0; 8]));
    match line[0] {
        b'R' => {
            if let Some(slot) = table.chunks_exact_mut(SLOT).find(|s| s[0] == 0) {
                slot[..name.len()].copy_from_slice(name);
                slot[name.len()] = 0;
                slot[NAME..].copy_from_slice(&ino.to_ne_bytes());
            }
        }
        b'U' => {
            if let Some(slot) = table.chunks_exact_mut(SLOT).find(|s| {
                s[..name.len()] == *name
                    && s[name.len()] == 0
                    && (ino == 0 || ino_of(s) == 0 || ino_of(s) == ino)
            }) {
                slot[0] = 0;
            }
        }
        _ => {}
    }
}

/// The path of shared memory object `name` in `path`, NUL-ended; its
/// length without the NUL, or None when it does not fit.
fn shm_path(name: &[u8], path: &mut [u8]) -> Option<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const PREFIX: &[u8] = b"/dev/shm/";
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const PREFIX: &[u8] = b"/";
    let total = PREFIX.len() + name.len();
    if total + 1 > path.len() {
        return None;
    }
    path[..PREFIX.len()].copy_from_slice(PREFIX);
    path[PREFIX.len()..total].copy_from_slice(name);
    path[total] = 0;
    Some(total)
}

/// The inode the shared memory object `name` is now (None: no such object,
/// or no way to ask off Linux).
///
/// # Safety
/// System calls only; `path` is scratch space of at least `NAME + 16`.
unsafe fn shm_inode(name: &[u8], path: &mut [u8]) -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        shm_path(name, path)?;
        // SAFETY: stat of a NUL-terminated path in our buffer into a
        // zeroed stat on the stack.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::stat(path.as_ptr().cast(), &mut st) < 0 {
                return None;
            }
            Some(st.st_ino)
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (name, path);
        None
    }
}

/// Unlinks the POSIX shared memory object `name`.
///
/// # Safety
/// System calls only; `path` is scratch space of at least `NAME + 16`.
unsafe fn unlink_shm(name: &[u8], path: &mut [u8]) {
    if shm_path(name, path).is_none() {
        return;
    }
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
