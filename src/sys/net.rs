//! The socket calls std lacks: a non-blocking socket and connect (std's
//! connect blocks), a shutdown and error query on a borrowed socket.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A Unix socket address, checked and encoded once for repeated connects.
pub(crate) struct UnixAddr {
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
}

impl UnixAddr {
    /// The address of socket file `path` (refused if too long).
    pub(crate) fn new(path: &Path) -> io::Result<UnixAddr> {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: sockaddr_un is plain data; zeroed is valid.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() >= addr.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket path too long",
            ));
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
        Ok(UnixAddr {
            addr,
            len: len as libc::socklen_t,
        })
    }
}

/// A new non-blocking, close-on-exec stream socket of `family`
/// (`AF_UNIX`, `AF_INET`, `AF_INET6`).
pub(crate) fn stream_socket(family: libc::c_int) -> io::Result<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    // SAFETY: plain system call.
    let fd = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    // SAFETY: plain system calls on the fresh socket.
    let fd = unsafe {
        let fd = cvt(libc::socket(family, libc::SOCK_STREAM, 0))?;
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::fcntl(
            fd,
            libc::F_SETFL,
            libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
        );
        fd
    };
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `connect(2)` of a non-blocking Unix socket: done, or the OS's error
/// (`EAGAIN` when the listener's backlog is full).
pub(crate) fn connect_unix(sock: BorrowedFd<'_>, to: &UnixAddr) -> io::Result<()> {
    // SAFETY: `to.addr` is a valid sockaddr_un of `to.len` bytes.
    cvt(unsafe {
        libc::connect(
            sock.as_raw_fd(),
            (&to.addr as *const libc::sockaddr_un).cast(),
            to.len,
        )
    })
    .map(drop)
}

/// Starts a non-blocking TCP connect: `Ok` when it is done or under way
/// (`EINPROGRESS`: wait for writability, then [`take_error`]).
pub(crate) fn connect_tcp_start(sock: BorrowedFd<'_>, to: &SocketAddr) -> io::Result<()> {
    let (storage, len) = raw_sockaddr(to);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes.
    let r = unsafe {
        libc::connect(
            sock.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(())
}

/// A `sockaddr_in` / `sockaddr_in6` for `a`.
fn raw_sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid, and it is
    // large and aligned enough for either family.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            // SAFETY: as above.
            let sin = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let sin6 = unsafe {
                &mut *(&mut storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// `shutdown(2)` of a socket: `SHUT_RD`, `SHUT_WR` or `SHUT_RDWR` (it also
/// wakes a thread blocked in accept or receive on it). Errors (a socket
/// not connected) are ignored: the point is the other end's view.
pub(crate) fn shutdown(sock: BorrowedFd<'_>, how: libc::c_int) {
    // SAFETY: a plain system call on a socket the caller holds.
    unsafe { libc::shutdown(sock.as_raw_fd(), how) };
}

/// The socket's pending error (`SO_ERROR`), cleared: how a non-blocking
/// connect ended.
pub(crate) fn take_error(sock: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int through valid pointers.
    cvt(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}
