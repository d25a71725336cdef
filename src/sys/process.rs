//! Processes, threads and signals: pids and pidfds, signals sent and
//! handlers set, child waits, thread ids, `fork` where it is sound and
//! `_exit`, and the environment of a process that has one thread.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Sends `sig` to process `pid` (`kill(2)`). A pid that does not fit a
/// `pid_t`, or is not positive (a group or every process), is refused
/// with `InvalidInput`: conex only signals one process by its pid.
pub(crate) fn kill(pid: u32, sig: i32) -> io::Result<()> {
    let pid = one_pid(pid)?;
    // SAFETY: a plain system call with integer arguments.
    if unsafe { libc::kill(pid, sig) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `sig` to the process group `pgid` (`killpg(3)`).
pub(crate) fn killpg(pgid: u32, sig: i32) -> io::Result<()> {
    let pgid = one_pid(pgid)?;
    // SAFETY: a plain system call with integer arguments.
    if unsafe { libc::killpg(pgid, sig) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn one_pid(pid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{pid} is not a process id"),
        )),
    }
}

/// A signal through a pidfd (no recycled pid can be hit); a process
/// already gone is no error.
pub(crate) fn pidfd_signal(fd: &OwnedFd, sig: i32) -> io::Result<()> {
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
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, sig);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "pidfds are Linux-only",
        ))
    }
}

/// Reaps a child that has ended, without blocking (`waitpid(pid,
/// WNOHANG)`, retried on EINTR; `pid` -1: any child): its pid and raw
/// status, or `None` while it (or every child) still runs.
pub(crate) fn waitpid_nohang(pid: i32) -> io::Result<Option<(u32, i32)>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: waitpid with a valid out pointer; only our own children
        // can be reaped.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r > 0 {
            return Ok(Some((r as u32, status)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Ends the process at once (`_exit(2)`): no destructors, no atexit
/// handlers, no buffered output flushed. For a fork child or a worker
/// whose parent is gone, where nothing of the parent's may run.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` touches no memory of ours and never returns.
    unsafe { libc::_exit(code) }
}

/// This process's pid, cached: the robust locks compare it on every take
/// and release, and `getpid` is a system call (glibc stopped caching it).
/// A `fork` child forgets the parent's (a `pthread_atfork` child handler,
/// registered with the first call), so a child never passes for its
/// parent.
pub(crate) fn pid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    static PID: AtomicU32 = AtomicU32::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    extern "C" fn forget() {
        // In the child of a fork, before `fork` returns there: one store.
        PID.store(0, Relaxed);
    }
    let p = PID.load(Relaxed);
    if p != 0 {
        return p;
    }
    HOOK.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic (sound
        // in a fork child); nothing is unregistered, the handler lives in
        // the binary for good.
        unsafe { libc::pthread_atfork(None, None, Some(forget)) };
    });
    let p = std::process::id();
    PID.store(p, Relaxed);
    p
}

/// The OS id of the calling thread (`gettid` on Linux).
pub(crate) fn gettid() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: gettid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_gettid) as u64 }
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        let mut id = 0u64;
        // SAFETY: a null thread means the calling thread; `id` is valid.
        unsafe { libc::pthread_threadid_np(0, &mut id) };
        id
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios"
    )))]
    {
        // SAFETY: pthread_self cannot fail.
        unsafe { libc::pthread_self() as u64 }
    }
}

/// Whether the calling OS thread is the process's main thread (`None`
/// where the platform cannot say).
pub(crate) fn is_main_thread() -> Option<bool> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: getpid takes no arguments and cannot fail.
        Some(gettid() as i64 == i64::from(unsafe { libc::getpid() }))
    }
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    {
        // SAFETY: no arguments, no failure mode.
        Some(unsafe { libc::pthread_main_np() } == 1)
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd"
    )))]
    {
        None
    }
}

/// Whether this process handles signal `signum` itself (a handler, not
/// the default action nor ignored); `None` for a number that is no signal.
pub(crate) fn signal_handled(signum: i32) -> Option<bool> {
    // SAFETY: sigaction is plain data; a zeroed one is a valid out buffer.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current disposition.
    if unsafe { libc::sigaction(signum, std::ptr::null(), &mut old) } != 0 {
        return None;
    }
    Some(old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN)
}

/// Sends `signum` to this process; false if the number is no signal.
pub(crate) fn raise(signum: i32) -> bool {
    // SAFETY: plain system calls with integer arguments.
    unsafe { libc::kill(libc::getpid(), signum) == 0 }
}

/// What to do on a signal.
#[derive(Clone, Copy)]
pub(crate) enum Disposition {
    Default,
    Ignore,
    /// A handler that only makes async-signal-safe calls.
    Handler(extern "C" fn(libc::c_int)),
}

/// Sets what this process does on `sig` (`SA_RESTART`, so slow system
/// calls resume after a handler).
pub(crate) fn set_signal(sig: i32, what: Disposition) {
    let handler = match what {
        Disposition::Default => libc::SIG_DFL,
        Disposition::Ignore => libc::SIG_IGN,
        Disposition::Handler(f) => f as libc::sighandler_t,
    };
    // SAFETY: installing a disposition for `sig` from a zeroed sigaction
    // with an empty mask; a handler given here is async-signal-safe (the
    // one caller's writes one byte to a pipe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// The pipe a SIGINT handler writes to while a [`SigintCatch`] lives:
/// made once and never closed, so a handler running late can never write
/// into a descriptor number the process gave to something else.
fn sigint_pipe() -> Option<(RawFd, RawFd)> {
    static PIPE: std::sync::OnceLock<Option<(RawFd, RawFd)>> = std::sync::OnceLock::new();
    *PIPE.get_or_init(|| {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills two descriptors into a valid array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return None;
        }
        Some((fds[0], fds[1]))
    })
}

/// Where [`on_sigint`] writes (-1: nowhere).
static SIGINT_TO: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_sigint(_: libc::c_int) {
    let fd = SIGINT_TO.load(std::sync::atomic::Ordering::SeqCst);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; one byte from the stack
        // to a pipe that is never closed.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// SIGINT turned into a byte on a pipe, while it lives (asyncio's
/// `Runner` turns Ctrl-C into cancelling its main task). Only made on the
/// main thread, when SIGINT has its default disposition and no other
/// catch is live; the default comes back on drop.
pub(crate) struct SigintCatch {
    read: RawFd,
    write: RawFd,
}

impl SigintCatch {
    pub(crate) fn new() -> Option<SigintCatch> {
        if is_main_thread() != Some(true) {
            return None;
        }
        // SAFETY: sigaction is plain data; a zeroed one is a valid buffer.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current disposition.
        if unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old) } != 0
            || old.sa_sigaction != libc::SIG_DFL
        {
            return None;
        }
        let (read, write) = sigint_pipe()?;
        let mut b = [0u8; 64];
        // SAFETY: reads into a stack buffer from our own non-blocking pipe
        // (left-over bytes of an earlier catch).
        while unsafe { libc::read(read, b.as_mut_ptr().cast(), b.len()) } > 0 {}
        SIGINT_TO
            .compare_exchange(
                -1,
                write,
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            )
            .ok()?;
        set_signal(libc::SIGINT, Disposition::Handler(on_sigint));
        Some(SigintCatch { read, write })
    }

    /// Blocks until SIGINT comes (true) or [`stop`](SigintCatch::stop) is
    /// called (false).
    pub(crate) fn wait(&self) -> bool {
        loop {
            let mut p = libc::pollfd {
                fd: self.read,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, no timeout.
            unsafe { libc::poll(&mut p, 1, -1) };
            let mut b = 0u8;
            // SAFETY: one byte into a stack variable from our own pipe.
            if unsafe { libc::read(self.read, (&mut b as *mut u8).cast(), 1) } == 1 {
                return b == 1;
            }
        }
    }

    /// Ends a [`wait`](SigintCatch::wait) with false.
    pub(crate) fn stop(&self) {
        let b = 0u8;
        // SAFETY: one byte from the stack to our own pipe.
        unsafe { libc::write(self.write, (&b as *const u8).cast(), 1) };
    }
}

impl Drop for SigintCatch {
    fn drop(&mut self) {
        set_signal(libc::SIGINT, Disposition::Default);
        SIGINT_TO.store(-1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How many threads this process has (Linux: `/proc/self/status`).
pub(crate) fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Why [`fork_alone`] did not fork.
#[derive(Debug)]
pub(crate) enum ForkRefused {
    /// The process has this many threads: a fork would copy locks that
    /// other threads hold.
    Threads(usize),
    /// The platform cannot count this process's threads.
    Uncounted,
    Os(io::Error),
}

/// `fork(2)`, only when this process has one thread (checked here): the
/// child then starts with a consistent copy of every lock and allocator
/// and may run any code. The child closes `close_in_child` (descriptors
/// the parent's side keeps) and runs `child`, which never returns (a panic
/// in it ends the child with code 101), so nothing in the child ever
/// drops the owners of those descriptors again. Returns the child's pid.
pub(crate) fn fork_alone(
    close_in_child: &[BorrowedFd<'_>],
    child: impl FnOnce() -> std::convert::Infallible,
) -> Result<u32, ForkRefused> {
    match thread_count() {
        Some(1) => {}
        Some(n) => return Err(ForkRefused::Threads(n)),
        None => return Err(ForkRefused::Uncounted),
    }
    // SAFETY: single-threaded (checked just above; nothing in this call
    // starts a thread in between), so the child's copy is consistent.
    match unsafe { libc::fork() } {
        0 => {
            for fd in close_in_child {
                // SAFETY: the owners of these descriptors live on only in
                // frames this child never returns to (below), so none
                // closes or uses them again.
                unsafe { libc::close(fd.as_raw_fd()) };
            }
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child));
            exit_now(101)
        }
        p if p > 0 => Ok(p as u32),
        _ => Err(ForkRefused::Os(io::Error::last_os_error())),
    }
}

/// Removes `key` from the environment if this process has one thread
/// (so nothing can read the environment meanwhile; Linux counts them),
/// or where threads cannot be counted, on the caller's word that it runs
/// first thing in `main` (what `multiprocessing::init` documents).
/// Returns whether it removed it.
pub(crate) fn remove_env_alone(key: &str) -> bool {
    match thread_count() {
        Some(1) => {}
        Some(_) => return false,
        None if cfg!(any(target_os = "linux", target_os = "android")) => return false,
        None => {}
    }
    // SAFETY: no other thread exists to read or write the environment
    // (counted above, or promised by `init`'s contract off Linux).
    unsafe { std::env::remove_var(key) };
    true
}

/// Moves standard input to a fresh close-on-exec descriptor (3 or above)
/// and puts `/dev/null` in its place: a re-executed conex process's link
/// to its parent. `None` if there is no stdin.
pub(crate) fn take_stdin() -> Option<OwnedFd> {
    // SAFETY: fcntl/open/dup2/close on our own standard input and a
    // descriptor we just opened; the new descriptor is owned by the
    // OwnedFd alone.
    unsafe {
        let fd = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return None;
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
        Some(OwnedFd::from_raw_fd(fd))
    }
}

/// The highest descriptor number a process may have (capped at 2^20).
pub(crate) fn max_fd() -> RawFd {
    // SAFETY: plain system call.
    let n = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    if n <= 0 {
        1024
    } else {
        n.min(1 << 20) as RawFd
    }
}

/// A pidfd for `pid` (Linux 5.3+): readable once the process has exited.
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: a raw system call with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether child `pid` has exited, without reaping it.
pub(crate) fn exited_nowait(pid: u32) -> io::Result<bool> {
    waitid_exited(pid, libc::WNOHANG)
}

/// Blocks until `pid` has exited, without reaping it (for a waiting
/// thread where there are no pidfds).
pub(crate) fn wait_exit_nowait(pid: u32) -> io::Result<()> {
    waitid_exited(pid, 0).map(drop)
}

/// `waitid(P_PID, pid, WEXITED | WNOWAIT | extra)`, retried on EINTR:
/// whether `pid` has exited (always true without `WNOHANG`).
fn waitid_exited(pid: u32, extra: libc::c_int) -> io::Result<bool> {
    // SAFETY: siginfo_t is plain data; waitid fills it in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: a system call on our own child with a valid out pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | extra,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: waitid filled `info` in; si_pid is 0 if nothing exited
        // (only possible with WNOHANG).
        return Ok(extra & libc::WNOHANG == 0 || unsafe { info.si_pid() } != 0);
    }
}

/// Whether a process with this pid exists (`kill(pid, 0)`: only EPERM or
/// success mean it does; a pid that does not fit a `pid_t` does not).
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; a plain query by pid.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether process `pid` still runs: alive as [`pid_alive`] sees it and,
/// on Linux, not a zombie (a killed child its parent has not reaped yet
/// holds nothing any more, though `kill(pid, 0)` still finds it).
pub(crate) fn pid_running(pid: u32) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last ')'.
        if let Some(state) = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
        {
            return !matches!(state, "Z" | "X" | "x");
        }
    }
    true
}
