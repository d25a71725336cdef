//! The system calls under conex's I/O: pipes, non-blocking reads and
//! writes straight into spare capacity, pidfds, child waits, poll(2).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn cvt(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One `read(2)` into possibly uninitialised memory, retried on EINTR.
pub(crate) fn read(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for `buf.len()` writable bytes; read(2)
        // initialises the prefix it reports.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match cvt(n) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// One `write(2)`, retried on EINTR.
pub(crate) fn write(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `data` is valid for `data.len()` readable bytes.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        match cvt(n) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// How much a read into a `Vec` reserves ahead: a default pipe buffer.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Appends one read's worth to `vec`; returns the count (0 at end of file).
pub(crate) fn read_into_vec(fd: RawFd, vec: &mut Vec<u8>) -> io::Result<usize> {
    vec.reserve(CHUNK);
    let len = vec.len();
    let n = read(fd, vec.spare_capacity_mut())?;
    // SAFETY: read(2) initialised `n` bytes after `len`.
    unsafe { vec.set_len(len + n) };
    Ok(n)
}

/// An initialised buffer seen as an uninitialised one (for `read`).
pub(crate) fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: every initialised byte is a valid MaybeUninit byte, and we
    // never write uninitialised values through it.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl with integer arguments on a descriptor we borrow.
    unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let new = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if new != flags && libc::fcntl(raw, libc::F_SETFL, new) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A new pipe `(read end, write end)`, both close-on-exec.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    // SAFETY: as above; close-on-exec is set right after.
    let r = unsafe {
        let r = libc::pipe(fds.as_mut_ptr());
        if r == 0 {
            libc::fcntl(fds[0], libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(fds[1], libc::F_SETFD, libc::FD_CLOEXEC);
        }
        r
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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

/// poll(2) on `fds` until one is ready or `timeout` passes (`None`:
/// forever). Returns whether any is ready.
pub(crate) fn poll(
    fds: &mut [libc::pollfd],
    timeout: Option<std::time::Duration>,
) -> io::Result<bool> {
    let ms = match timeout {
        None => -1,
        // Round up, so a wait never ends just before its deadline.
        Some(d) => d.as_micros().div_ceil(1000).min(libc::c_int::MAX as u128) as libc::c_int,
    };
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}

/// The most descriptors one `sendmsg` carries (Linux's `SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

/// `sendmsg(2)` of `parts` (gathered, from `skip` bytes in) with `fds`
/// attached, never raising SIGPIPE. Returns the bytes sent.
pub(crate) fn send_parts(
    fd: RawFd,
    parts: &[&[u8]],
    mut skip: usize,
    fds: &[RawFd],
) -> io::Result<usize> {
    let mut iov: [libc::iovec; 2] = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; 2];
    let mut n = 0;
    for part in parts {
        if skip >= part.len() {
            skip -= part.len();
            continue;
        }
        let rest = &part[skip..];
        skip = 0;
        iov[n] = libc::iovec {
            iov_base: rest.as_ptr() as *mut libc::c_void,
            iov_len: rest.len(),
        };
        n += 1;
        if n == iov.len() {
            break;
        }
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    if fds.is_empty() && n == 1 {
        // One contiguous part and nothing to attach: plain send(2), no
        // message header for the kernel to copy in.
        loop {
            // SAFETY: the iovec points into a live slice of `parts`.
            let r = unsafe { libc::send(fd, iov[0].iov_base, iov[0].iov_len, flags) };
            match cvt(r) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
    // Room for MAX_FDS descriptors, aligned for cmsghdr.
    let mut cmsg = [0u64; (MAX_FDS * 4 + 64) / 8];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = n as _;
    if !fds.is_empty() {
        assert!(
            fds.len() <= MAX_FDS,
            "at most {MAX_FDS} handles per message"
        );
        let bytes = std::mem::size_of_val(fds);
        // SAFETY: CMSG_SPACE / CMSG_FIRSTHDR / CMSG_DATA compute offsets
        // inside `cmsg`, which is large enough for MAX_FDS descriptors.
        unsafe {
            let space = libc::CMSG_SPACE(bytes as u32) as usize;
            msg.msg_control = cmsg.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let hdr = libc::CMSG_FIRSTHDR(&msg);
            (*hdr).cmsg_level = libc::SOL_SOCKET;
            (*hdr).cmsg_type = libc::SCM_RIGHTS;
            (*hdr).cmsg_len = libc::CMSG_LEN(bytes as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(hdr), bytes);
        }
    }
    loop {
        // SAFETY: `msg` points at live iovecs and control data.
        let r = unsafe { libc::sendmsg(fd, &msg, flags) };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// `recvmsg(2)` into `buf`, appending any descriptors that came with the
/// bytes to `fds` (close-on-exec), at most `room` of them (capped at
/// [`MAX_FDS`]; 0 takes none: the kernel closes whatever came, before it
/// reaches our descriptor table). Returns the bytes read (0 at end of
/// file). A message whose descriptors did not all fit is an error
/// (`InvalidData`), after the bytes it carried were read.
pub(crate) fn recv_with_fds(
    fd: RawFd,
    buf: &mut [MaybeUninit<u8>],
    fds: &mut std::collections::VecDeque<OwnedFd>,
    room: usize,
) -> io::Result<usize> {
    let room = room.min(MAX_FDS);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg = [0u64; (MAX_FDS * 4 + 64) / 8];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if room > 0 {
        msg.msg_control = cmsg.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is arithmetic; `room` descriptors fit `cmsg`.
        let space = unsafe { libc::CMSG_SPACE((room * std::mem::size_of::<RawFd>()) as u32) };
        msg.msg_controllen = (space as usize).min(std::mem::size_of_val(&cmsg)) as _;
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = libc::MSG_CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = 0;
    let n = loop {
        // SAFETY: `msg` points at `buf` and `cmsg`, both live and writable.
        let r = unsafe { libc::recvmsg(fd, &mut msg, flags) };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    // SAFETY: walking the control messages the kernel wrote into `cmsg`.
    unsafe {
        let mut hdr = libc::CMSG_FIRSTHDR(&msg);
        while !hdr.is_null() {
            if (*hdr).cmsg_level == libc::SOL_SOCKET && (*hdr).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(hdr);
                let len = (*hdr).cmsg_len as usize - (data as usize - hdr as usize);
                let count = len / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    let raw = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                    let owned = OwnedFd::from_raw_fd(raw);
                    #[cfg(not(any(
                        target_os = "linux",
                        target_os = "android",
                        target_os = "freebsd"
                    )))]
                    libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC);
                    fds.push_back(owned);
                }
            }
            hdr = libc::CMSG_NXTHDR(&msg, hdr);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "more OS handles came than a message may carry",
        ));
    }
    Ok(n)
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

/// Sets the accept backlog of a listening socket (std binds with a fixed
/// one; `listen(2)` again on a listening socket only changes it).
pub(crate) fn listen(fd: RawFd, backlog: u32) -> io::Result<()> {
    let backlog = backlog.min(libc::c_int::MAX as u32) as libc::c_int;
    // SAFETY: a plain system call on a descriptor the caller owns.
    cvt(unsafe { libc::listen(fd, backlog) } as isize).map(drop)
}

/// A connected pair of non-blocking, close-on-exec Unix stream sockets.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    // SAFETY: `fds` has room for the two descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
            fds.as_mut_ptr(),
        )
    };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    // SAFETY: as above; the flags are set right after.
    let r = unsafe {
        let r = libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr());
        if r == 0 {
            for fd in fds {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
        r
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
