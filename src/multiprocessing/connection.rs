//! `Connection` and `Pipe`: messages between processes (or tasks).

use std::fmt;
use std::future::poll_fn;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::Interest;

use super::errors::ConnectionError;
use super::handles::{self, Handle};
use super::wire::{
    Body, DEFAULT_MAX_FRAME, Direct, Frame, HEADER, ReadState, Sending, WriteState, header,
};
use crate::io::driver::{block_on_io, within};
use crate::io::fd::SharedFd;
use crate::sys;
use crate::wait::mutex::Mutex;

/// Payloads up to this size are copied next to their header and sent
/// with one plain `send(2)`; larger ones go out gathered (`sendmsg`).
const SMALL_SEND: usize = 2048;

/// A message whose encoding fits this is encoded on the stack.
const SMALL_ENCODE: usize = 256;

struct Inner {
    sock: SharedFd,
    read: Mutex<ReadState>,
    write: Mutex<WriteState>,
    readable: bool,
    writable: bool,
    /// Unix sockets carry OS handles; TCP does not.
    unix: bool,
    closed: AtomicBool,
    max_frame: AtomicUsize,
}

/// One end of a message channel: send any serde value (or raw bytes), and
/// receive whole messages, in order.
///
/// Python: `multiprocessing.connection.Connection`. Made by [`pipe`] (a
/// socket pair, to pass to a child), by [`Listener::accept`](super::Listener::accept) and by
/// [`Client`](super::Client) (Unix socket paths or TCP). A cheap `Clone` handle: clones
/// are the same end; concurrent sends go out whole, one after the other,
/// and so do concurrent receives. Values holding OS handles (another
/// `Connection`, a shared lock...) can cross a Unix-socket connection:
/// the receiver gets its own descriptors.
///
/// | Python | here |
/// |---|---|
/// | `send(obj)`, `recv()` | [`send`](Connection::send), [`recv`](Connection::recv) (any `Serialize` / `DeserializeOwned` type) |
/// | `send_bytes(buf)`, `recv_bytes()`, `recv_bytes_into(buf)` | same names; `BufferTooShort` is [`ConnectionError::BufferTooShort`] |
/// | `poll(timeout)` | [`poll`](Connection::poll), [`poll_timeout`](Connection::poll_timeout), [`try_poll`](Connection::try_poll) |
/// | `close()`, `closed`, `readable`, `writable` | same names |
/// | `fileno()` | `AsRawFd` |
/// | blocking calls | [`blocking`](Connection::blocking) |
///
/// A message sent with `send` arrives through `recv_bytes` as its
/// postcard encoding, and raw bytes sent with `send_bytes` can be decoded
/// by `recv` if they are one.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), conex::multiprocessing::ConnectionError> {
/// use conex::multiprocessing::pipe;
///
/// let (a, b) = pipe(true)?;
/// a.send(&("hello", 42u32)).await?;
/// let (word, n): (String, u32) = b.recv().await?;
/// assert_eq!((word.as_str(), n), ("hello", 42));
/// b.send_bytes(b"raw").await?;
/// assert_eq!(a.recv_bytes().await?, b"raw");
/// drop(b);
/// assert!(a.recv::<u8>().await.unwrap_err().is_eof());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

/// A connected pair of connections. Python: `multiprocessing.Pipe(duplex)`:
/// both ends send and receive when `duplex`, else the first only
/// receives and the second only sends. Both are Unix sockets, so they can
/// be handed to a child process (as an argument or inside a message).
///
/// # Errors
/// The OS refused a socket pair (out of descriptors).
pub fn pipe(duplex: bool) -> Result<(Connection, Connection), ConnectionError> {
    let (a, b) = sys::socketpair()?;
    if duplex {
        Ok((
            Connection::from_socket(a, true, true, true),
            Connection::from_socket(b, true, true, true),
        ))
    } else {
        sys::net::shutdown(a.as_fd(), libc::SHUT_WR);
        sys::net::shutdown(b.as_fd(), libc::SHUT_RD);
        Ok((
            Connection::from_socket(a, true, false, true),
            Connection::from_socket(b, false, true, true),
        ))
    }
}

impl Connection {
    /// Wraps a connected, non-blocking stream socket.
    pub(crate) fn from_socket(
        fd: OwnedFd,
        readable: bool,
        writable: bool,
        unix: bool,
    ) -> Connection {
        Connection {
            inner: Arc::new(Inner {
                sock: SharedFd::new(fd),
                read: Mutex::new(ReadState::default()),
                write: Mutex::new(WriteState::default()),
                readable,
                writable,
                unix,
                closed: AtomicBool::new(false),
                max_frame: AtomicUsize::new(DEFAULT_MAX_FRAME),
            }),
        }
    }

    /// Wraps a connected socket that has yet to pass the auth handshake:
    /// it takes no OS handles until [`accept_fds`](Connection::accept_fds).
    pub(crate) fn from_socket_unauthenticated(fd: OwnedFd, unix: bool) -> Connection {
        let conn = Connection::from_socket(fd, true, true, unix);
        conn.inner
            .read
            .try_lock()
            .expect("a fresh connection's read half is free")
            .set_refuse_fds(true);
        conn
    }

    /// The handshake passed: OS handles may come from now on (bounded).
    pub(crate) async fn accept_fds(&self) {
        self.inner.read.lock().await.set_refuse_fds(false);
    }

    fn check_open(&self) -> Result<(), ConnectionError> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(ConnectionError::Closed)
        } else {
            Ok(())
        }
    }

    fn check_writable(&self) -> Result<(), ConnectionError> {
        self.check_open()?;
        if self.inner.writable {
            Ok(())
        } else {
            Err(ConnectionError::WrongDirection(
                "this end of the pipe only receives",
            ))
        }
    }

    fn check_readable(&self) -> Result<(), ConnectionError> {
        self.check_open()?;
        if self.inner.readable {
            Ok(())
        } else {
            Err(ConnectionError::WrongDirection(
                "this end of the pipe only sends",
            ))
        }
    }

    /// The largest frame this end accepts (default [`DEFAULT_MAX_FRAME`],
    /// 256 MiB). A larger one is refused from its header and breaks the
    /// connection.
    pub fn max_frame(&self) -> usize {
        self.inner.max_frame.load(Ordering::Relaxed)
    }

    /// Sets [`max_frame`](Connection::max_frame).
    pub fn set_max_frame(&self, bytes: usize) {
        self.inner.max_frame.store(bytes, Ordering::Relaxed);
    }

    /// Whether this end can receive. Python: `Connection.readable`.
    pub fn readable(&self) -> bool {
        self.inner.readable
    }

    /// Whether this end can send. Python: `Connection.writable`.
    pub fn writable(&self) -> bool {
        self.inner.writable
    }

    /// Whether [`close`](Connection::close) was called. Python:
    /// `Connection.closed`.
    pub fn closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Closes this end for every clone: the peer sees end of file, and
    /// later calls here fail with [`ConnectionError::Closed`]. The
    /// descriptor itself is released when the last clone is dropped.
    /// Python: `Connection.close()`.
    pub fn close(&self) {
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            sys::net::shutdown(self.inner.sock.as_fd(), libc::SHUT_RDWR);
        }
    }

    /// Sends one message: `obj` encoded with postcard, with the OS handles
    /// it holds. Python: `Connection.send(obj)`.
    ///
    /// # Errors
    /// [`ConnectionError::Eof`] if the peer is gone, `Encode` for a value
    /// serde cannot encode (or an OS handle over TCP), `Closed`,
    /// `WrongDirection`.
    ///
    /// # Cancel safety
    /// A send dropped before its first byte went out sends nothing; one
    /// dropped half-way leaves the rest of its frame to go out first at
    /// the next send on this connection, so the stream stays whole.
    pub async fn send<T: Serialize + ?Sized>(&self, obj: &T) -> Result<(), ConnectionError> {
        self.check_writable()?;
        // Small messages are encoded on the stack: no allocation per send.
        let mut stack = [0u8; HEADER + SMALL_ENCODE];
        let (small, fds) = handles::collect(|| {
            postcard::to_slice(obj, &mut stack[HEADER..]).map(|body| body.len())
        });
        match small {
            Ok(len) => {
                self.check_fds(&fds)?;
                stack[..HEADER].copy_from_slice(&header(len, fds.len()));
                return self.write_frame(&stack[..HEADER + len], &[], &fds).await;
            }
            // Too big for the stack: encode again into a heap buffer (the
            // handles collected so far are duplicates, closed here).
            Err(postcard::Error::SerializeBufferFull) => drop(fds),
            Err(e) => return Err(ConnectionError::Encode(e.to_string())),
        }
        let (encoded, fds) = handles::collect(|| postcard::to_extend(obj, vec![0u8; HEADER]));
        let mut buf = encoded.map_err(|e| ConnectionError::Encode(e.to_string()))?;
        self.check_fds(&fds)?;
        let len = buf.len() - HEADER;
        if len > u32::MAX as usize {
            return Err(ConnectionError::Encode("a message over 4 GiB".into()));
        }
        buf[..HEADER].copy_from_slice(&header(len, fds.len()));
        // Header and payload are one buffer: one part, one plain send.
        self.write_frame(&buf, &[], &fds).await
    }

    /// Whether `fds` may go with a message on this connection.
    fn check_fds(&self, fds: &[OwnedFd]) -> Result<(), ConnectionError> {
        if !fds.is_empty() && !self.inner.unix {
            return Err(ConnectionError::Encode(
                "OS handles cannot cross a TCP connection".into(),
            ));
        }
        if fds.len() > sys::MAX_FDS {
            return Err(ConnectionError::Encode(format!(
                "{} OS handles in one message (at most {})",
                fds.len(),
                sys::MAX_FDS
            )));
        }
        Ok(())
    }

    /// Sends `buf` as one message, as is. Python: `Connection.send_bytes`
    /// (slice the buffer for its `offset` and `size`).
    ///
    /// # Errors
    /// As [`send`](Connection::send).
    ///
    /// # Cancel safety
    /// As [`send`](Connection::send).
    pub async fn send_bytes(&self, buf: &[u8]) -> Result<(), ConnectionError> {
        self.check_writable()?;
        if buf.len() > u32::MAX as usize {
            return Err(ConnectionError::Encode("a message over 4 GiB".into()));
        }
        let h = header(buf.len(), 0);
        if buf.len() <= SMALL_SEND {
            // Small: header and payload in one buffer, one plain send.
            let mut one = [0u8; HEADER + SMALL_SEND];
            one[..HEADER].copy_from_slice(&h);
            one[HEADER..HEADER + buf.len()].copy_from_slice(buf);
            return self.write_frame(&one[..HEADER + buf.len()], &[], &[]).await;
        }
        self.write_frame(&h, buf, &[]).await
    }

    async fn write_frame(
        &self,
        h: &[u8],
        payload: &[u8],
        fds: &[OwnedFd],
    ) -> Result<(), ConnectionError> {
        let sock = &self.inner.sock;
        let mut w = self.inner.write.lock().await;
        if w.owes() {
            poll_fn(|cx| w.poll_flush(sock, cx)).await?;
        }
        let mut sending = Sending::new(&mut w, h, payload, fds);
        poll_fn(|cx| sending.poll_send(sock, cx)).await?;
        Ok(())
    }

    /// Sends `obj` with `extra` OS handles after its own: for a message
    /// whose inner bytes were encoded earlier with those handles.
    pub(crate) async fn send_with_fds<T: Serialize>(
        &self,
        obj: &T,
        extra: Vec<OwnedFd>,
    ) -> Result<(), ConnectionError> {
        self.check_writable()?;
        let (encoded, mut fds) = handles::collect(|| postcard::to_extend(obj, vec![0u8; HEADER]));
        let mut buf = encoded.map_err(|e| ConnectionError::Encode(e.to_string()))?;
        fds.extend(extra);
        self.check_fds(&fds)?;
        let len = buf.len() - HEADER;
        buf[..HEADER].copy_from_slice(&header(len, fds.len()));
        self.write_frame(&buf[..HEADER], &buf[HEADER..], &fds).await
    }

    /// Receives the next frame, its bytes and OS handles undecoded.
    pub(crate) async fn recv_frame(&self) -> Result<Frame, ConnectionError> {
        self.read_frame().await
    }

    async fn read_frame(&self) -> Result<Frame, ConnectionError> {
        self.check_readable()?;
        let max = self.max_frame();
        let mut r = self.inner.read.lock().await;
        let sock = &self.inner.sock;
        poll_fn(|cx| r.poll_frame(sock, cx, max)).await
    }

    /// The messages to come, each received as a `T`, as a
    /// [`Stream`](futures::Stream): `Ok(value)`, or `Err` for a message that
    /// is not a `T` (`Decode`; the stream goes on); it ends at the peer's
    /// end of file, and after an error that breaks the connection (a bad
    /// frame, `Closed`, the wrong direction), which it yields first.
    ///
    /// # Cancel safety
    /// As [`recv`](Connection::recv): a stream dropped between items (or
    /// mid-message) loses nothing; the next receive goes on from there.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// use futures::{SinkExt, StreamExt};
    ///
    /// let (a, b) = conex::multiprocessing::pipe(true).unwrap();
    /// let mut out = a.sink::<u32>();
    /// out.send_all(&mut futures::stream::iter((0..3).map(Ok))).await.unwrap();
    /// a.close();
    /// let got: Vec<u32> = b.stream::<u32>().map(Result::unwrap).collect().await;
    /// assert_eq!(got, [0, 1, 2]);
    /// # }
    /// ```
    pub fn stream<T: DeserializeOwned + Send + 'static>(
        &self,
    ) -> crate::queue::GetStream<Result<T, ConnectionError>> {
        let conn = self.clone();
        let broken = std::sync::Arc::new(AtomicBool::new(false));
        crate::queue::Gets::new(move || {
            let (conn, broken) = (conn.clone(), broken.clone());
            Box::pin(async move {
                if broken.load(Ordering::Acquire) {
                    return None;
                }
                match conn.recv::<T>().await {
                    Err(ConnectionError::Eof) => None,
                    Ok(v) => Some(Ok(v)),
                    Err(e @ ConnectionError::Decode(_)) => Some(Err(e)),
                    Err(e) => {
                        broken.store(true, Ordering::Release);
                        Some(Err(e))
                    }
                }
            })
        })
    }

    /// The connection as a [`Sink`](futures::Sink) of `T`s, each one
    /// [`send`](Connection::send); errs as `send` does (`Eof` once the
    /// peer is gone, `Encode` for a value that cannot be encoded). Holds
    /// at most the one message it is sending.
    pub fn sink<T: Serialize + Send + Sync + 'static>(
        &self,
    ) -> crate::queue::PutSink<T, ConnectionError> {
        let conn = self.clone();
        crate::queue::Puts::new(move |item: T| {
            let conn = conn.clone();
            Box::pin(async move { conn.send(&item).await })
        })
    }

    /// Receives the next message as a `T`. Python: `Connection.recv()`.
    ///
    /// # Errors
    /// [`ConnectionError::Eof`] once the peer has closed and everything it
    /// sent was received; `Decode` if the message is not a `T` (the
    /// connection stays usable); `FrameTooLarge` / `Protocol` for a bad
    /// frame (the connection is then broken); `Closed`, `WrongDirection`.
    ///
    /// # Cancel safety
    /// Nothing is lost: bytes received before a drop stay in the
    /// connection, and the next receive goes on from them.
    pub async fn recv<T: DeserializeOwned>(&self) -> Result<T, ConnectionError> {
        // Decoded where it lies in the receive buffer: no copy.
        self.read_with(|body, fds| {
            handles::provide(fds, || postcard::from_bytes(body.as_slice()))
                .map_err(|e| ConnectionError::Decode(e.to_string()))
        })
        .await?
    }

    /// Receives the next frame and hands it to `f` where it lies.
    async fn read_with<R>(
        &self,
        f: impl FnOnce(Body<'_>, Vec<OwnedFd>) -> R,
    ) -> Result<R, ConnectionError> {
        self.check_readable()?;
        let max = self.max_frame();
        let mut r = self.inner.read.lock().await;
        let sock = &self.inner.sock;
        let mut f = Some(f);
        poll_fn(|cx| r.poll_with(sock, cx, max, &mut f)).await
    }

    /// Receives the next message's bytes. Python: `Connection.recv_bytes()`.
    ///
    /// # Errors
    /// As [`recv`](Connection::recv), less `Decode`.
    ///
    /// # Cancel safety
    /// As [`recv`](Connection::recv).
    pub async fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        Ok(self.read_frame().await?.bytes)
    }

    /// Receives the next message into `buf`; returns its length. Python:
    /// `Connection.recv_bytes_into(buf)`.
    ///
    /// # Errors
    /// [`ConnectionError::BufferTooShort`] carrying the whole message when
    /// it does not fit (as Python's `BufferTooShort`); otherwise as
    /// [`recv_bytes`](Connection::recv_bytes).
    ///
    /// # Cancel safety
    /// As [`recv`](Connection::recv).
    pub async fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        self.check_readable()?;
        let max = self.max_frame();
        {
            // A large message that fits is read straight into `buf` (no
            // copy through a frame buffer).
            let mut r = self.inner.read.lock().await;
            let sock = &self.inner.sock;
            let start = poll_fn(|cx| r.poll_start_direct(sock, cx, max, buf)).await?;
            if let Some(d) = start {
                let mut direct = DirectRead {
                    r: &mut r,
                    dst: buf,
                    d,
                    done: false,
                };
                let fds = poll_fn(|cx| {
                    let DirectRead { r, dst, d, .. } = &mut direct;
                    r.poll_direct(sock, cx, dst, d)
                })
                .await;
                direct.done = true;
                drop(fds?);
                return Ok(d.len());
            }
        }
        let spare = self
            .read_with(|body, _fds| {
                let n = body.as_slice().len();
                if n > buf.len() {
                    return Err(ConnectionError::BufferTooShort(body.into_vec()));
                }
                buf[..n].copy_from_slice(body.as_slice());
                Ok((
                    n,
                    match body {
                        Body::Own(v) => Some(v),
                        Body::In(_) => None,
                    },
                ))
            })
            .await??;
        let (n, big) = spare;
        if let (Some(v), Some(mut r)) = (big, self.inner.read.try_lock()) {
            r.recycle(v);
        }
        Ok(n)
    }

    /// Waits until there is something to receive (a message, or end of
    /// file). Python: `Connection.poll(None)`.
    ///
    /// # Cancel safety
    /// Nothing is lost.
    pub async fn poll(&self) -> Result<bool, ConnectionError> {
        self.check_readable()?;
        let mut r = self.inner.read.lock().await;
        let sock = &self.inner.sock;
        Ok(poll_fn(|cx| r.poll_readable(sock, cx)).await?)
    }

    /// Whether there is something to receive within `timeout`. Python:
    /// `Connection.poll(timeout)`.
    ///
    /// # Cancel safety
    /// Nothing is lost.
    pub async fn poll_timeout(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        match within(Some(timeout), self.poll()).await {
            Some(r) => r,
            None => Ok(false),
        }
    }

    /// Whether there is something to receive right now. Python:
    /// `Connection.poll()` (timeout 0).
    pub fn try_poll(&self) -> Result<bool, ConnectionError> {
        self.check_readable()?;
        let Some(r) = self.inner.read.try_lock() else {
            // Another receive is in progress: nothing for us right now.
            return Ok(false);
        };
        if r.has_data() || r.at_eof() {
            return Ok(true);
        }
        let mut fds = pollfd(self.inner.sock.raw());
        Ok(sys::poll(
            std::slice::from_mut(&mut fds),
            Some(Duration::ZERO),
        )?)
    }

    /// Waits for a non-blocking TCP connect to finish; its error, if any.
    pub(crate) async fn wait_connected(&self) -> Result<(), ConnectionError> {
        poll_fn(|cx| self.inner.sock.poll_ready(cx, Interest::WRITABLE)).await?;
        match sys::net::take_error(self.inner.sock.as_fd())? {
            Some(e) => Err(ConnectionError::Io(e)),
            None => Ok(()),
        }
    }

    /// Ready when there is something to receive, or end of file (for
    /// `wait` over several connections). Holds the receiving side while
    /// it waits, so a receive started meanwhile queues behind it instead
    /// of taking the reactor's wake-up away from it (tokio keeps one
    /// reader per descriptor); what arrives stays in the buffer for the
    /// next receive.
    pub(crate) async fn wait_readable(&self) {
        if self.check_readable().is_err() {
            return;
        }
        let mut r = self.inner.read.lock().await;
        let sock = &self.inner.sock;
        let _ = poll_fn(|cx| r.poll_readable(sock, cx)).await;
    }

    /// The blocking facade: the same calls for OS threads and worker
    /// processes, no runtime needed.
    ///
    /// ```
    /// use conex::multiprocessing::pipe;
    ///
    /// let (a, b) = pipe(true)?;
    /// let t = std::thread::spawn(move || {
    ///     let n: u64 = b.blocking().recv().unwrap();
    ///     b.blocking().send(&(n * 2)).unwrap();
    /// });
    /// a.blocking().send(&21u64)?;
    /// assert_eq!(a.blocking().recv::<u64>()?, 42);
    /// t.join().unwrap();
    /// # Ok::<(), conex::multiprocessing::ConnectionError>(())
    /// ```
    pub fn blocking(&self) -> BlockingConnection<'_> {
        BlockingConnection { conn: self }
    }
}

fn pollfd(fd: std::os::fd::RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

impl AsRawFd for Connection {
    /// The socket. Python: `Connection.fileno()`.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.inner.sock.raw()
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.sock.as_fd()
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.inner.sock.raw())
            .field("readable", &self.inner.readable)
            .field("writable", &self.inner.writable)
            .field("closed", &self.closed())
            .finish()
    }
}

/// What crosses the wire for a `Connection`: its socket and direction.
#[derive(Serialize, Deserialize)]
struct Wire {
    sock: Handle,
    readable: bool,
    writable: bool,
}

impl Serialize for Connection {
    /// A duplicate of the socket travels as an OS handle: only over a
    /// Unix-socket connection or as a process argument.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.inner.unix {
            return Err(serde::ser::Error::custom(
                "a TCP connection cannot be sent to another process",
            ));
        }
        let dup = self
            .inner
            .sock
            .as_fd()
            .try_clone_to_owned()
            .map_err(serde::ser::Error::custom)?;
        Wire {
            sock: Handle::new(dup),
            readable: self.inner.readable,
            writable: self.inner.writable,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Connection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Connection, D::Error> {
        let w = Wire::deserialize(d)?;
        let fd = w.sock.into_inner();
        sys::set_nonblocking(fd.as_fd(), true).map_err(serde::de::Error::custom)?;
        Ok(Connection::from_socket(fd, w.readable, w.writable, true))
    }
}

/// A large message being read into the caller's buffer: if the receive is
/// dropped half-way, what came so far moves into the connection's own
/// buffer, so the stream keeps its place (cancel safety).
struct DirectRead<'a, 'b> {
    r: &'a mut ReadState,
    dst: &'b mut [u8],
    d: Direct,
    done: bool,
}

impl Drop for DirectRead<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            self.r.abandon_direct(self.dst, &self.d);
        }
    }
}

/// The blocking facade of a [`Connection`]: the same calls, parking the
/// calling thread (in `poll(2)`); no runtime needed.
pub struct BlockingConnection<'a> {
    conn: &'a Connection,
}

impl BlockingConnection<'_> {
    /// [`Connection::send`], blocking.
    #[track_caller]
    pub fn send<T: Serialize + ?Sized>(&self, obj: &T) -> Result<(), ConnectionError> {
        block_on_io(self.conn.send(obj))
    }

    /// [`Connection::recv`], blocking.
    #[track_caller]
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, ConnectionError> {
        block_on_io(self.conn.recv())
    }

    /// [`Connection::send_bytes`], blocking.
    #[track_caller]
    pub fn send_bytes(&self, buf: &[u8]) -> Result<(), ConnectionError> {
        block_on_io(self.conn.send_bytes(buf))
    }

    /// [`Connection::recv_bytes`], blocking.
    #[track_caller]
    pub fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        block_on_io(self.conn.recv_bytes())
    }

    /// [`Connection::recv_bytes_into`], blocking.
    #[track_caller]
    pub fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        block_on_io(self.conn.recv_bytes_into(buf))
    }

    /// [`Connection::poll`], blocking.
    #[track_caller]
    pub fn poll(&self) -> Result<bool, ConnectionError> {
        block_on_io(self.conn.poll())
    }

    /// [`Connection::poll_timeout`], blocking.
    #[track_caller]
    pub fn poll_timeout(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        block_on_io(self.conn.poll_timeout(timeout))
    }
}

impl fmt::Debug for BlockingConnection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingConnection")
            .field(self.conn)
            .finish()
    }
}
