//! The system calls under conex's I/O: pipes, non-blocking reads and
//! writes straight into spare capacity, pidfds, child waits, poll(2).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::cvt;

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

/// Appends what one `recvmsg` brings (at most `max` bytes, into `vec`'s
/// spare capacity: reserve first) to `vec`, its OS handles to `fds` (as
/// [`recv_with_fds`]); returns the byte count.
pub(crate) fn recv_append_with_fds(
    fd: RawFd,
    vec: &mut Vec<u8>,
    max: usize,
    fds: &mut std::collections::VecDeque<OwnedFd>,
    fd_room: usize,
) -> io::Result<usize> {
    let len = vec.len();
    let spare = vec.spare_capacity_mut();
    let room = spare.len().min(max);
    let n = recv_with_fds(fd, &mut spare[..room], fds, fd_room)?;
    // SAFETY: recvmsg initialised `n` bytes after `len`.
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

/// Peeks at one byte of socket `fd` without waiting (`MSG_PEEK |
/// MSG_DONTWAIT`): `Ok(0)` at end of file, `Ok(1)` with data waiting.
pub(crate) fn peek_byte(fd: RawFd) -> io::Result<usize> {
    let mut b = [0u8; 1];
    // SAFETY: a receive of at most one byte into our own buffer.
    let n = unsafe {
        libc::recv(
            fd,
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    cvt(n)
}

/// The raw number, for an `AsyncFd` that must not own the descriptor.
pub(crate) struct RawRef(RawFd);

impl AsRawFd for RawRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// A descriptor and its registration with a tokio reactor, made at most
/// once and later than the descriptor, owned together so that the
/// registration never outlives the descriptor (what tokio's
/// `AsyncFd::register_with_interest` asks of a borrowed one).
pub(crate) struct Registrable {
    /// Declared before `fd`: the registration is dropped (deregistered)
    /// before the descriptor closes.
    reg: std::sync::OnceLock<tokio::io::unix::AsyncFd<RawRef>>,
    registering: parking_lot::Mutex<()>,
    fd: OwnedFd,
}

impl Registrable {
    pub(crate) fn new(fd: OwnedFd) -> Registrable {
        Registrable {
            reg: std::sync::OnceLock::new(),
            registering: parking_lot::Mutex::new(()),
            fd,
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.fd)
    }

    /// The registration, if made.
    pub(crate) fn get(&self) -> Option<&tokio::io::unix::AsyncFd<RawRef>> {
        self.reg.get()
    }

    /// The registration, made now (for both directions) if it is not yet,
    /// with the reactor of the current runtime context.
    ///
    /// # Panics
    /// Outside a runtime context, or in one without I/O (as tokio's).
    #[track_caller]
    pub(crate) fn register(&self) -> io::Result<&tokio::io::unix::AsyncFd<RawRef>> {
        if let Some(a) = self.reg.get() {
            return Ok(a);
        }
        let _one_at_a_time = self.registering.lock();
        if let Some(a) = self.reg.get() {
            return Ok(a);
        }
        let raw = RawRef(self.fd.as_raw_fd());
        let interest = tokio::io::Interest::READABLE | tokio::io::Interest::WRITABLE;
        // SAFETY: `fd` stays open and unchanged for as long as the
        // registration lives: both are private fields of `self`, the
        // registration is dropped first, and `into_fd` drops it before it
        // gives the descriptor away.
        let a = unsafe { tokio::io::unix::AsyncFd::register_with_interest(raw, interest) }
            .map_err(|e| e.into_parts().1)?;
        Ok(self.reg.get_or_init(|| a))
    }

    /// The descriptor back, deregistered.
    pub(crate) fn into_fd(mut self) -> OwnedFd {
        drop(self.reg.take());
        self.fd
    }
}

/// One `read(2)` into the unfilled part of a tokio `ReadBuf`, which it
/// then advances by what was read.
pub(crate) fn read_buf(fd: RawFd, buf: &mut tokio::io::ReadBuf<'_>) -> io::Result<usize> {
    // SAFETY: read(2) only writes to the unfilled part it is given, and
    // exactly what it wrote is marked initialised below.
    let unfilled = unsafe { buf.unfilled_mut() };
    let n = read(fd, unfilled)?;
    // SAFETY: the first `n` unfilled bytes were just written.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Ok(n)
}

/// How many bytes a pipe or socket holds now (`FIONREAD`).
pub(crate) fn bytes_available(fd: RawFd) -> io::Result<usize> {
    let mut avail: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the valid pointer.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut avail) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(avail.max(0) as usize)
}

/// Sets a pipe's capacity (Linux's `F_SETPIPE_SZ`; a no-op elsewhere).
pub(crate) fn set_pipe_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let size = libc::c_int::try_from(size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pipesize too large"))?;
        // SAFETY: fcntl with an integer argument on a borrowed descriptor.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (fd, size);
    Ok(())
}

/// A new non-blocking, close-on-exec eventfd (Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What a child does between fork and exec, beyond std's own steps.
#[derive(Default)]
pub(crate) struct ChildSetup {
    /// `setsid()`: a new session (and process group).
    pub(crate) new_session: bool,
    /// `umask(m)`.
    pub(crate) umask: Option<u32>,
    /// Mark every descriptor from 3 up close-on-exec (Python's
    /// `close_fds`), before `inherit` are cleared of it.
    pub(crate) close_fds: bool,
    /// Descriptors to clear close-on-exec on, so the program inherits them.
    pub(crate) inherit: Vec<RawFd>,
    /// `setgroups(groups)`.
    pub(crate) groups: Option<Vec<u32>>,
    /// `setgid`, `setuid` after the groups (when the groups are set here).
    pub(crate) ids: (Option<u32>, Option<u32>),
    /// Keep this process's dispositions of SIGPIPE and SIGXFSZ (std resets
    /// SIGPIPE to its default before the pre-exec step).
    pub(crate) keep_signals: bool,
    /// The user's hooks, last (their safety is their caller's promise:
    /// [`Command::pre_exec`](crate::subprocess::Command::pre_exec)).
    pub(crate) hooks: Vec<PreExecHook>,
}

/// A user's pre-exec hook.
pub(crate) type PreExecHook = Box<dyn FnMut() -> io::Result<()> + Send + Sync>;

/// Whether `sig` is ignored in this process.
fn ignored(sig: libc::c_int) -> bool {
    // SAFETY: sigaction is plain data; a zeroed one is a valid buffer.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current disposition.
    unsafe {
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Installs `setup` as `cmd`'s pre-exec step (nothing if it asks for
/// nothing). It makes only async-signal-safe system calls (setsid, umask,
/// fcntl, close_range), allocates nothing and takes no lock.
pub(crate) fn pre_exec(cmd: &mut std::process::Command, setup: ChildSetup) {
    use std::os::unix::process::CommandExt;
    // Python's restore_signals=True puts SIGPIPE and SIGXFSZ back to their
    // defaults; std does SIGPIPE already, SIGXFSZ is done here if it is
    // ignored. restore_signals=False keeps what this process has.
    let (pipe_ignored, xfsz_ignored) = (ignored(libc::SIGPIPE), ignored(libc::SIGXFSZ));
    let signals = if setup.keep_signals {
        pipe_ignored.then_some((libc::SIGPIPE, libc::SIG_IGN))
    } else {
        xfsz_ignored.then_some((libc::SIGXFSZ, libc::SIG_DFL))
    };
    let keep_xfsz = setup.keep_signals && xfsz_ignored;
    if !setup.new_session
        && setup.umask.is_none()
        && !setup.close_fds
        && setup.inherit.is_empty()
        && setup.groups.is_none()
        && setup.hooks.is_empty()
        && signals.is_none()
    {
        return;
    }
    let ChildSetup {
        new_session,
        umask,
        close_fds,
        inherit,
        groups,
        ids: (uid, gid),
        hooks,
        ..
    } = setup;
    let groups: Option<Vec<libc::gid_t>> =
        groups.map(|g| g.into_iter().map(|g| g as libc::gid_t).collect());
    let mut hooks = hooks;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes the async-signal-safe calls listed above and setgroups,
    // setgid, setuid, signal (`inherit` and `groups` were allocated before
    // the fork and are only read); the user's hooks run last, under the
    // promise of the unsafe `Command::pre_exec` that added them.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((sig, how)) = signals {
                libc::signal(sig, how);
            }
            if keep_xfsz {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
            if new_session && libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if let Some(g) = &groups {
                if libc::setgroups(g.len() as _, g.as_ptr()) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(gid) = gid {
                if libc::setgid(gid as libc::gid_t) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(uid) = uid {
                if libc::setuid(uid as libc::uid_t) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(m) = umask {
                libc::umask(m as libc::mode_t);
            }
            if close_fds {
                // Close-on-exec rather than close: std's own pipe that
                // reports an exec failure must stay open until exec.
                cloexec_from(3);
            }
            for &fd in &inherit {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for hook in &mut hooks {
                hook()?;
            }
            Ok(())
        });
    }
}

/// Marks every descriptor from `first` up close-on-exec, in a forked child.
fn cloexec_from(first: libc::c_int) {
    #[cfg(target_os = "linux")]
    {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: a raw system call with integer arguments.
        let r = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            )
        };
        if r == 0 {
            return;
        }
    }
    // Older kernels and other Unixes: every possible descriptor.
    // SAFETY: sysconf and fcntl are async-signal-safe system calls.
    unsafe {
        let max = libc::sysconf(libc::_SC_OPEN_MAX);
        let max = if max < 0 { 65536 } else { max.min(1 << 20) } as libc::c_int;
        for fd in first..max {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}
