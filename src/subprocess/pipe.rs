//! The parent's ends of a child's pipes: `Popen.stdin`, `Popen.stdout` and
//! `Popen.stderr`.
//!
//! Each is a non-blocking pipe end, registered with tokio's reactor the
//! first time an async read or write has to wait. The async face implements
//! both tokio's and futures' `AsyncRead` / `AsyncWrite`; the blocking facade
//! (`.blocking()`) implements `std::io`'s `Read` / `Write` with the same
//! poll, waiting in `poll(2)` (see the driver).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::Interest;

use crate::io::driver::block_on_io;
use crate::io::fd::SharedFd;
use crate::sys;

/// One non-blocking pipe end.
pub(crate) struct Pipe {
    fd: SharedFd,
    interest: Interest,
}

impl Pipe {
    /// The parent's end of a pipe: `reader` for the child's stdout/stderr.
    pub(crate) fn new(fd: OwnedFd, reader: bool) -> io::Result<Pipe> {
        sys::set_nonblocking(fd.as_fd(), true)?;
        Ok(Pipe {
            fd: SharedFd::new(fd),
            interest: if reader {
                Interest::READABLE
            } else {
                Interest::WRITABLE
            },
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.raw()
    }

    /// Runs the non-blocking `op` on the descriptor, waiting for readiness
    /// whenever it would block.
    pub(crate) fn poll_io<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnMut(RawFd) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.fd.poll_io(cx, self.interest, op)
    }

    /// Appends what is in the pipe now, without waiting and without
    /// chasing a writer that keeps writing (the `FIONREAD` count, give or
    /// take one read).
    pub(crate) fn drain_now(&mut self, vec: &mut Vec<u8>) -> io::Result<()> {
        let fd = self.fd();
        let mut left = sys::bytes_available(fd)?;
        while left > 0 {
            match sys::read_into_vec(fd, vec) {
                Ok(0) => break,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Back to a plain blocking descriptor, to hand to another child.
    pub(crate) fn into_blocking_fd(self) -> io::Result<OwnedFd> {
        let fd = self.fd.into_fd();
        sys::set_nonblocking(fd.as_fd(), false)?;
        Ok(fd)
    }
}

macro_rules! reader {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name {
            pub(crate) pipe: Pipe,
        }

        impl $name {
            /// The blocking facade: `std::io::Read` (and `BufRead` through
            /// `std::io::BufReader`) for OS threads.
            pub fn blocking(&mut self) -> BlockingReader<'_> {
                BlockingReader { pipe: &mut self.pipe }
            }

            /// Reads everything up to end of file, appending to `buf`.
            /// Returns how many bytes were read.
            ///
            /// # Cancel safety
            /// What was read before a drop stays in `buf`.
            pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
                let start = buf.len();
                std::future::poll_fn(|cx| loop {
                    if ready!(self.pipe.poll_io(cx, |fd| sys::read_into_vec(fd, buf)))? == 0 {
                        return Poll::Ready(Ok(buf.len() - start));
                    }
                })
                .await
            }

            /// Back to a blocking descriptor, to make it another child's
            /// stdin (or anything else); see also [`Stdio`](super::Stdio)'s
            /// `From` impls.
            pub fn into_owned_fd(self) -> io::Result<OwnedFd> {
                self.pipe.into_blocking_fd()
            }
        }

        impl tokio::io::AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                ready!(self.get_mut().pipe.poll_io(cx, |fd| sys::read_buf(fd, buf)))?;
                Poll::Ready(Ok(()))
            }
        }

        impl futures::io::AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let uninit = sys::as_uninit(buf);
                self.get_mut().pipe.poll_io(cx, |fd| sys::read(fd, uninit))
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.pipe.fd.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe.fd()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("fd", &self.pipe.fd()).finish()
            }
        }
    };
}

reader!(
    /// The read end of the child's standard output.
    ///
    /// Python: `Popen.stdout` (with `stdout=PIPE`). Reads as an async
    /// stream (tokio's and futures' `AsyncRead`) or, through
    /// [`blocking`](ChildStdout::blocking), as a `std::io::Read`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use conex::subprocess::{Command, PIPE};
    /// use tokio::io::{AsyncBufReadExt, BufReader};
    ///
    /// let mut child = Command::new(["printf", "a\\nb\\n"]).stdout(PIPE).popen()?;
    /// let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    /// let mut got = Vec::new();
    /// while let Some(line) = lines.next_line().await? {
    ///     got.push(line);
    /// }
    /// assert_eq!(got, ["a", "b"]);
    /// assert_eq!(child.wait().await?, 0);
    /// # Ok(()) }
    /// ```
    ChildStdout
);

reader!(
    /// The read end of the child's standard error.
    ///
    /// Python: `Popen.stderr` (with `stderr=PIPE`). The same faces as
    /// [`ChildStdout`].
    ChildStderr
);

/// The write end of the child's standard input.
///
/// Python: `Popen.stdin` (with `stdin=PIPE`). Writes as an async sink
/// (tokio's and futures' `AsyncWrite`; shutting it down closes the pipe, so
/// the child sees end of file) or, through [`blocking`](ChildStdin::blocking),
/// as a `std::io::Write`. Dropping it closes the pipe.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use conex::subprocess::{Command, PIPE};
/// use tokio::io::AsyncWriteExt;
///
/// let mut child = Command::new(["cat"]).stdin(PIPE).stdout(PIPE).popen()?;
/// let mut stdin = child.stdin.take().unwrap();
/// stdin.write_all(b"hello").await?;
/// drop(stdin); // end of file for cat
/// let (out, _) = child.communicate(&[]).await?;
/// assert_eq!(out.unwrap(), b"hello");
/// # Ok(()) }
/// ```
pub struct ChildStdin {
    pub(crate) pipe: Option<Pipe>,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the child's stdin was closed")
}

impl ChildStdin {
    /// The blocking facade: `std::io::Write` for OS threads.
    pub fn blocking(&mut self) -> BlockingWriter<'_> {
        BlockingWriter {
            pipe: self.pipe.as_mut(),
        }
    }

    /// Closes the pipe (the child reads end of file). Python:
    /// `Popen.stdin.close()`.
    pub fn close(&mut self) {
        self.pipe = None;
    }

    /// Back to a blocking descriptor; see [`ChildStdout::into_owned_fd`].
    pub fn into_owned_fd(mut self) -> io::Result<OwnedFd> {
        self.pipe.take().ok_or_else(closed)?.into_blocking_fd()
    }

    fn poll_write_inner(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.pipe {
            Some(p) => p.poll_io(cx, |fd| sys::write(fd, data)),
            None => Poll::Ready(Err(closed())),
        }
    }
}

impl AsRawFd for ChildStdin {
    /// The pipe's descriptor; `-1` once it was closed.
    fn as_raw_fd(&self) -> RawFd {
        self.pipe.as_ref().map_or(-1, Pipe::fd)
    }
}

impl tokio::io::AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_inner(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pipe = None;
        Poll::Ready(Ok(()))
    }
}

impl futures::io::AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_inner(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.pipe = None;
        Poll::Ready(Ok(()))
    }
}

impl fmt::Debug for ChildStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildStdin")
            .field("fd", &self.pipe.as_ref().map(Pipe::fd))
            .finish()
    }
}

/// The blocking facade of [`ChildStdout`] and [`ChildStderr`]: a
/// `std::io::Read` that parks the calling thread until data arrives.
pub struct BlockingReader<'a> {
    pipe: &'a mut Pipe,
}

impl io::Read for BlockingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let uninit = sys::as_uninit(buf);
        match sys::read(self.pipe.fd(), uninit) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                block_on_io(std::future::poll_fn(|cx| {
                    self.pipe.poll_io(cx, |fd| sys::read(fd, uninit))
                }))
            }
            r => r,
        }
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = buf.len();
        block_on_io(std::future::poll_fn(|cx| {
            loop {
                if ready!(self.pipe.poll_io(cx, |fd| sys::read_into_vec(fd, buf)))? == 0 {
                    return Poll::Ready(Ok(buf.len() - start));
                }
            }
        }))
    }
}

impl fmt::Debug for BlockingReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingReader")
            .field("fd", &self.pipe.fd())
            .finish()
    }
}

/// The blocking facade of [`ChildStdin`]: a `std::io::Write` that parks
/// the calling thread while the pipe is full.
pub struct BlockingWriter<'a> {
    pipe: Option<&'a mut Pipe>,
}

impl io::Write for BlockingWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let pipe = self.pipe.as_deref_mut().ok_or_else(closed)?;
        match sys::write(pipe.fd(), data) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                block_on_io(std::future::poll_fn(|cx| {
                    pipe.poll_io(cx, |fd| sys::write(fd, data))
                }))
            }
            r => r,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for BlockingWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingWriter")
            .field("fd", &self.pipe.as_ref().map(|p| p.fd()))
            .finish()
    }
}
