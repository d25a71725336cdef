//! The wire: length-prefixed frames carrying postcard messages (or raw
//! bytes) and, over Unix sockets, OS handles.
//!
//! A frame is an 8-byte header, the payload's length and the number of OS
//! handles as two little-endian `u32`s, then the payload. The handles
//! travel as `SCM_RIGHTS` with the frame's first bytes. A frame longer than
//! the receiver's limit is refused from its header, before anything is
//! allocated; a large frame's buffer then grows as its bytes arrive, so a
//! header that lies costs nothing.
//!
//! Reading and writing keep their progress in [`ReadState`] and
//! [`WriteState`] (inside the connection): a receive dropped half-way
//! loses nothing (the next one goes on), and a send dropped half-way
//! either sent nothing or leaves the rest of its frame to be flushed by the
//! next send, so the stream never tears.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll, ready};

use tokio::io::Interest;

use super::errors::ConnectionError;
use crate::io::fd::SharedFd;
use crate::sys;

/// Header bytes before each payload.
pub(crate) const HEADER: usize = 8;

/// The largest frame a connection accepts unless told otherwise: 256 MiB.
pub const DEFAULT_MAX_FRAME: usize = 256 << 20;

/// Frames up to this size are read through the shared buffer; larger ones
/// get a buffer of their own that they are read straight into.
const SMALL: usize = 64 * 1024;

/// What a large frame's buffer starts at, at most; it grows as bytes come.
const FIRST_RESERVE: usize = 16 << 20;

pub(crate) fn header(len: usize, nfds: usize) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&(len as u32).to_le_bytes());
    h[4..].copy_from_slice(&(nfds as u32).to_le_bytes());
    h
}

/// One received frame.
pub(crate) struct Frame {
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

/// A frame too large to go through the shared buffer, being read.
struct Big {
    bytes: Vec<u8>,
    len: usize,
    nfds: usize,
}

/// A received frame's bytes: where they lie in the shared buffer, or a
/// large frame's own buffer.
pub(crate) enum Body<'a> {
    In(&'a [u8]),
    Own(Vec<u8>),
}

impl Body<'_> {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Body::In(b) => b,
            Body::Own(v) => v,
        }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Body::In(b) => b.to_vec(),
            Body::Own(v) => v,
        }
    }
}

/// What `parse_in_place` found.
enum Parsed {
    Nothing,
    /// A whole frame in the shared buffer, at `body..body + len`.
    Small {
        body: usize,
        len: usize,
        nfds: usize,
    },
    /// A large frame, complete in its own buffer.
    Big(Frame),
}

/// A large frame being read straight into a caller's buffer
/// (`recv_bytes_into`): its length, handle count, and bytes so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Direct {
    len: usize,
    nfds: usize,
    got: usize,
}

impl Direct {
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// The receiving half's progress.
#[derive(Default)]
pub(crate) struct ReadState {
    buf: Vec<u8>,
    start: usize,
    big: Option<Big>,
    fds: VecDeque<OwnedFd>,
    eof: bool,
    /// After a framing error the stream has lost its place.
    broken: Option<String>,
    /// A large frame's buffer handed back after use (`recv_bytes_into`
    /// copies out of it): the next large frame reuses it instead of
    /// faulting in fresh pages.
    spare: Option<Vec<u8>>,
    /// Before authentication no descriptor is taken: the kernel closes
    /// any a peer sends, and the read fails.
    refuse_fds: bool,
}

/// Descriptors received and not yet claimed by a frame, at most: a frame
/// announces at most `MAX_FDS`, so more than two frames' worth waiting is a
/// peer pushing handles it never announces.
const PENDING_FDS: usize = 2 * sys::MAX_FDS;

impl ReadState {
    /// Bytes received and not yet handed out (for `poll`).
    pub(crate) fn has_data(&self) -> bool {
        self.buf.len() > self.start || self.big.is_some()
    }

    pub(crate) fn at_eof(&self) -> bool {
        self.eof
    }

    /// Refuses (or, after authentication, accepts) descriptors.
    pub(crate) fn set_refuse_fds(&mut self, refuse: bool) {
        self.refuse_fds = refuse;
    }

    /// How many more descriptors the next read may take.
    fn fd_room(&self) -> usize {
        if self.refuse_fds {
            0
        } else {
            PENDING_FDS.saturating_sub(self.fds.len())
        }
    }

    fn fail(&mut self, e: ConnectionError) -> ConnectionError {
        self.broken = Some(e.to_string());
        e
    }

    fn take_fds(&mut self, n: usize) -> Result<Vec<OwnedFd>, ConnectionError> {
        if self.fds.len() < n {
            return Err(self.fail(ConnectionError::Protocol(format!(
                "a frame announced {n} OS handles, {} came",
                self.fds.len()
            ))));
        }
        Ok(self.fds.drain(..n).collect())
    }

    /// Takes back a large frame's buffer for the next one.
    pub(crate) fn recycle(&mut self, bytes: Vec<u8>) {
        if bytes.capacity() > SMALL && bytes.capacity() <= FIRST_RESERVE {
            self.spare = Some(bytes);
        }
    }

    /// Receives the next frame and hands it to `f`: a frame in the shared
    /// buffer as a borrowed slice (no copy), a large one as its own `Vec`.
    pub(crate) fn poll_with<R>(
        &mut self,
        sock: &SharedFd,
        cx: &mut Context<'_>,
        max: usize,
        f: &mut Option<impl FnOnce(Body<'_>, Vec<OwnedFd>) -> R>,
    ) -> Poll<Result<R, ConnectionError>> {
        if let Some(m) = &self.broken {
            return Poll::Ready(Err(ConnectionError::Protocol(format!(
                "the connection broke earlier: {m}"
            ))));
        }
        loop {
            match self.parse_in_place(max) {
                Ok(Parsed::Nothing) => {}
                Ok(Parsed::Big(frame)) => {
                    let f = f.take().expect("polled after completion");
                    return Poll::Ready(Ok(f(Body::Own(frame.bytes), frame.fds)));
                }
                Ok(Parsed::Small { body, len, nfds }) => {
                    let fds = match self.take_fds(nfds) {
                        Ok(fds) => fds,
                        Err(e) => return Poll::Ready(Err(e)),
                    };
                    let f = f.take().expect("polled after completion");
                    let r = f(Body::In(&self.buf[body..body + len]), fds);
                    self.start = body + len;
                    if self.start == self.buf.len() {
                        self.buf.clear();
                        self.start = 0;
                    }
                    return Poll::Ready(Ok(r));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
            if self.eof {
                return Poll::Ready(Err(if self.has_data() {
                    self.fail(ConnectionError::Protocol(
                        "the peer closed the connection in the middle of a frame".into(),
                    ))
                } else {
                    ConnectionError::Eof
                }));
            }
            let n = match ready!(self.poll_fill(sock, cx)) {
                Ok(n) => n,
                Err(e) => return Poll::Ready(Err(e.into())),
            };
            if n == 0 {
                self.eof = true;
            }
        }
    }

    fn parse_in_place(&mut self, max: usize) -> Result<Parsed, ConnectionError> {
        if let Some(big) = &self.big {
            if big.bytes.len() < big.len {
                return Ok(Parsed::Nothing);
            }
            let big = self.big.take().expect("checked");
            let fds = self.take_fds(big.nfds)?;
            return Ok(Parsed::Big(Frame {
                bytes: big.bytes,
                fds,
            }));
        }
        let avail = self.buf.len() - self.start;
        if avail < HEADER {
            return Ok(Parsed::Nothing);
        }
        let h = &self.buf[self.start..self.start + HEADER];
        let len = u32::from_le_bytes(h[..4].try_into().expect("4 bytes")) as usize;
        let nfds = u32::from_le_bytes(h[4..].try_into().expect("4 bytes")) as usize;
        if len > max {
            return Err(self.fail(ConnectionError::FrameTooLarge {
                len: len as u64,
                max,
            }));
        }
        if nfds > sys::MAX_FDS {
            return Err(self.fail(ConnectionError::Protocol(format!(
                "a frame announced {nfds} OS handles (at most {})",
                sys::MAX_FDS
            ))));
        }
        let body = self.start + HEADER;
        if avail >= HEADER + len {
            return Ok(Parsed::Small { body, len, nfds });
        }
        if len > SMALL {
            // Its own buffer from here: what has come so far moves over.
            let mut bytes = match self.spare.take() {
                Some(mut v) if v.capacity() >= len.min(FIRST_RESERVE) => {
                    v.clear();
                    v
                }
                _ => Vec::with_capacity(len.min(FIRST_RESERVE)),
            };
            bytes.extend_from_slice(&self.buf[body..]);
            self.buf.clear();
            self.start = 0;
            self.big = Some(Big { bytes, len, nfds });
        }
        Ok(Parsed::Nothing)
    }

    /// If the next frame is a large one that fits `dst` (and nothing else
    /// is half-read), starts reading it straight into `dst`: the bytes of
    /// it already received move there, the rest will come by
    /// [`poll_direct`](ReadState::poll_direct). Waits for the frame's
    /// header first. `Ready(None)`: take the usual path.
    pub(crate) fn poll_start_direct(
        &mut self,
        sock: &SharedFd,
        cx: &mut Context<'_>,
        max: usize,
        dst: &mut [u8],
    ) -> Poll<Result<Option<Direct>, ConnectionError>> {
        loop {
            if self.broken.is_some() || self.big.is_some() || self.eof {
                return Poll::Ready(Ok(None));
            }
            let avail = self.buf.len() - self.start;
            if avail >= HEADER {
                break;
            }
            match ready!(self.poll_fill(sock, cx)) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        let h = &self.buf[self.start..self.start + HEADER];
        let len = u32::from_le_bytes(h[..4].try_into().expect("4 bytes")) as usize;
        let nfds = u32::from_le_bytes(h[4..].try_into().expect("4 bytes")) as usize;
        let avail = self.buf.len() - self.start;
        if len <= SMALL || len > dst.len() || len > max || avail >= HEADER + len {
            // Small, too big for `dst` (BufferTooShort), refused, or
            // already here whole: the usual path handles it.
            return Poll::Ready(Ok(None));
        }
        let body = self.start + HEADER;
        let have = self.buf.len() - body;
        dst[..have].copy_from_slice(&self.buf[body..]);
        self.buf.clear();
        self.start = 0;
        Poll::Ready(Ok(Some(Direct {
            len,
            nfds,
            got: have,
        })))
    }

    /// Reads the rest of a direct frame into `dst`; its OS handles.
    pub(crate) fn poll_direct(
        &mut self,
        sock: &SharedFd,
        cx: &mut Context<'_>,
        dst: &mut [u8],
        d: &mut Direct,
    ) -> Poll<Result<Vec<OwnedFd>, ConnectionError>> {
        while d.got < d.len {
            let fd_room = self.fd_room();
            let fds = &mut self.fds;
            let room = sys::as_uninit(&mut dst[d.got..d.len]);
            let n = match ready!(sock.poll_stream(cx, Interest::READABLE, |fd| recv_stream(
                fd, room, fds, fd_room
            ))) {
                Ok(n) => n,
                Err(e) => return Poll::Ready(Err(self.fail(e.into()))),
            };
            if n == 0 {
                self.eof = true;
                return Poll::Ready(Err(self.fail(ConnectionError::Protocol(
                    "the peer closed the connection in the middle of a frame".into(),
                ))));
            }
            d.got += n;
        }
        Poll::Ready(self.take_fds(d.nfds))
    }

    /// A direct read dropped half-way: what it read moves to a frame
    /// buffer of our own, so the next receive goes on from there.
    pub(crate) fn abandon_direct(&mut self, dst: &[u8], d: &Direct) {
        let mut bytes = Vec::with_capacity(d.len.min(FIRST_RESERVE));
        bytes.extend_from_slice(&dst[..d.got]);
        self.big = Some(Big {
            bytes,
            len: d.len,
            nfds: d.nfds,
        });
    }

    /// Receives the next frame.
    pub(crate) fn poll_frame(
        &mut self,
        sock: &SharedFd,
        cx: &mut Context<'_>,
        max: usize,
    ) -> Poll<Result<Frame, ConnectionError>> {
        let mut f = Some(|body: Body<'_>, fds| Frame {
            bytes: body.into_vec(),
            fds,
        });
        self.poll_with(sock, cx, max, &mut f)
    }

    /// Reads once: into the large frame's own buffer (never past its end),
    /// or into the shared buffer.
    fn poll_fill(&mut self, sock: &SharedFd, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let fd_room = self.fd_room();
        let fds = &mut self.fds;
        if let Some(big) = &mut self.big {
            let want = big.len - big.bytes.len();
            big.bytes
                .reserve(want.min(FIRST_RESERVE.max(big.bytes.len())));
            let bytes = &mut big.bytes;
            let n = ready!(sock.poll_stream(cx, Interest::READABLE, |fd| recv_append(
                fd, bytes, want, fds, fd_room
            )))?;
            return Poll::Ready(Ok(n));
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > SMALL {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(SMALL);
        let buf = &mut self.buf;
        let n = ready!(sock.poll_stream(cx, Interest::READABLE, |fd| recv_append(
            fd,
            buf,
            usize::MAX,
            fds,
            fd_room
        )))?;
        Poll::Ready(Ok(n))
    }

    /// Reads whatever is there without waiting; `Ready(true)` when there is
    /// data or end of file to report.
    pub(crate) fn poll_readable(
        &mut self,
        sock: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<bool>> {
        if self.has_data() || self.eof || self.broken.is_some() {
            return Poll::Ready(Ok(true));
        }
        match ready!(self.poll_fill(sock, cx)) {
            Ok(0) => {
                self.eof = true;
                Poll::Ready(Ok(true))
            }
            Ok(_) => Poll::Ready(Ok(true)),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// One read from the stream socket `fd` into `buf`, and whether it drained
/// the socket: fewer bytes than asked for and no handles. (The kernel ends
/// a read early after a message that carried handles, with more data
/// possibly behind it: such a read does not count as drained.)
fn recv_stream(
    fd: RawFd,
    buf: &mut [std::mem::MaybeUninit<u8>],
    fds: &mut VecDeque<OwnedFd>,
    fd_room: usize,
) -> io::Result<(usize, bool)> {
    let (asked, before) = (buf.len(), fds.len());
    let n =
        sys::recv_with_fds(fd, buf, fds, fd_room).map_err(|e| handle_error(e, fd_room, before))?;
    Ok((n, n > 0 && n < asked && fds.len() == before))
}

/// [`recv_stream`] appending to `vec`'s reserved spare capacity (at most
/// `max` bytes).
fn recv_append(
    fd: RawFd,
    vec: &mut Vec<u8>,
    max: usize,
    fds: &mut VecDeque<OwnedFd>,
    fd_room: usize,
) -> io::Result<(usize, bool)> {
    let (asked, before) = (vec.spare_capacity_mut().len().min(max), fds.len());
    let n = sys::recv_append_with_fds(fd, vec, max, fds, fd_room)
        .map_err(|e| handle_error(e, fd_room, before))?;
    Ok((n, n > 0 && n < asked && fds.len() == before))
}

/// A receive's error, named for the handle rule the peer broke.
fn handle_error(e: io::Error, fd_room: usize, before: usize) -> io::Error {
    if e.kind() == io::ErrorKind::InvalidData && fd_room == 0 && before == 0 {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the peer sent OS handles before authentication (refused and closed)",
        )
    } else if e.kind() == io::ErrorKind::InvalidData && fd_room < sys::MAX_FDS {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the peer sent more OS handles than its frames announce",
        )
    } else {
        e
    }
}

/// The sending half's progress: the rest of a frame whose send was dropped
/// half-way, owed to the stream before anything else.
#[derive(Default)]
pub(crate) struct WriteState {
    owed: Vec<u8>,
}

impl WriteState {
    /// Whether a dropped send left bytes to go out first.
    pub(crate) fn owes(&self) -> bool {
        !self.owed.is_empty()
    }

    /// Writes what an earlier, dropped send left behind.
    pub(crate) fn poll_flush(
        &mut self,
        sock: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.owed.is_empty() {
            let owed = &self.owed;
            let n = ready!(sock.poll_stream(cx, Interest::WRITABLE, |fd| {
                sys::send_parts(fd, &[owed], 0, &[]).map(|n| (n, n < owed.len()))
            }))?;
            self.owed.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

/// One frame being written: `parts` gathered, the handles with the first
/// bytes. Dropped half-way, it leaves the rest in the write state.
pub(crate) struct Sending<'a> {
    state: &'a mut WriteState,
    parts: [&'a [u8]; 2],
    fds: Vec<RawFd>,
    sent: usize,
    total: usize,
    /// Whether the first, direct send was made.
    tried: bool,
}

impl<'a> Sending<'a> {
    pub(crate) fn new(
        state: &'a mut WriteState,
        header: &'a [u8],
        payload: &'a [u8],
        fds: &[OwnedFd],
    ) -> Sending<'a> {
        Sending {
            state,
            parts: [header, payload],
            fds: fds.iter().map(|f| f.as_raw_fd()).collect(),
            sent: 0,
            total: header.len() + payload.len(),
            tried: false,
        }
    }

    pub(crate) fn poll_send(
        &mut self,
        sock: &SharedFd,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.tried {
            // The first send goes straight out: a socket with room (the
            // common case) takes the whole frame with no reactor round
            // trip. Under `.await` it still spends the task's tokio
            // budget, as a tokio stream's write does, so a sender that
            // never blocks yields.
            let coop = if crate::io::driver::blocking_mode() {
                None
            } else {
                Some(ready!(tokio::task::coop::poll_proceed(cx)))
            };
            self.tried = true;
            match sys::send_parts(sock.raw(), &self.parts, 0, &self.fds) {
                Ok(n) => {
                    if let Some(coop) = coop {
                        coop.made_progress();
                    }
                    self.sent = n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        while self.sent < self.total {
            let (parts, sent) = (&self.parts, self.sent);
            let fds: &[RawFd] = if sent == 0 { &self.fds } else { &[] };
            let rest = self.total - sent;
            // A short send means the socket is full: wait for room
            // rather than try again at once.
            let n = ready!(sock.poll_stream(cx, Interest::WRITABLE, |fd| {
                sys::send_parts(fd, parts, sent, fds).map(|n| (n, n < rest))
            }))?;
            self.sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if self.sent > 0 && self.sent < self.total {
            let mut skip = self.sent;
            for part in self.parts {
                if skip >= part.len() {
                    skip -= part.len();
                } else {
                    self.state.owed.extend_from_slice(&part[skip..]);
                    skip = 0;
                }
            }
        }
    }
}
