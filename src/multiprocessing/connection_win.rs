//! `Connection` on Windows: the same frames (an 8-byte header, then
//! postcard) over a named pipe (tokio's), without OS handles.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::windows::named_pipe::{NamedPipeClient, NamedPipeServer};

use super::errors::ConnectionError;
use crate::wait::mutex::Mutex;

/// The largest frame a connection accepts unless told otherwise (256 MiB).
pub const DEFAULT_MAX_FRAME: usize = 256 << 20;

const HEADER: usize = 8;

/// Either end of a named pipe.
pub(crate) enum Pipe {
    Server(NamedPipeServer),
    Client(NamedPipeClient),
}

impl AsyncRead for Pipe {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Pipe::Server(p) => std::pin::Pin::new(p).poll_read(cx, buf),
            Pipe::Client(p) => std::pin::Pin::new(p).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Pipe::Server(p) => std::pin::Pin::new(p).poll_write(cx, buf),
            Pipe::Client(p) => std::pin::Pin::new(p).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Pipe::Server(p) => std::pin::Pin::new(p).poll_flush(cx),
            Pipe::Client(p) => std::pin::Pin::new(p).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Pipe::Server(p) => std::pin::Pin::new(p).poll_shutdown(cx),
            Pipe::Client(p) => std::pin::Pin::new(p).poll_shutdown(cx),
        }
    }
}

/// What came and was not handed out yet: bytes leave it only as whole
/// frames, so a receive dropped half-way loses nothing.
struct Reader {
    io: ReadHalf<Pipe>,
    buf: Vec<u8>,
    eof: bool,
    broken: Option<String>,
}

/// Frames owed to the pipe: bytes leave it only as they are written, so a
/// send dropped half-way leaves the rest to go out first next time.
struct Writer {
    io: WriteHalf<Pipe>,
    owed: Vec<u8>,
}

struct Inner {
    read: Mutex<Reader>,
    write: Mutex<Writer>,
    closed: AtomicBool,
    max_frame: AtomicUsize,
}

/// One end of a connection between processes. Python:
/// `multiprocessing.connection.Connection`. On Windows: a named pipe from
/// [`Listener`](super::Listener) / [`Client`](super::Client); the same
/// frames as on Unix, without OS handles.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("closed", &self.closed())
            .finish()
    }
}

impl Connection {
    pub(crate) fn from_pipe(pipe: Pipe) -> Connection {
        let (r, w) = tokio::io::split(pipe);
        Connection {
            inner: Arc::new(Inner {
                read: Mutex::new(Reader {
                    io: r,
                    buf: Vec::new(),
                    eof: false,
                    broken: None,
                }),
                write: Mutex::new(Writer {
                    io: w,
                    owed: Vec::new(),
                }),
                closed: AtomicBool::new(false),
                max_frame: AtomicUsize::new(DEFAULT_MAX_FRAME),
            }),
        }
    }

    /// The largest frame this end accepts.
    pub fn max_frame(&self) -> usize {
        self.inner.max_frame.load(Ordering::Relaxed)
    }

    /// Sets the largest frame this end accepts.
    pub fn set_max_frame(&self, bytes: usize) {
        self.inner.max_frame.store(bytes, Ordering::Relaxed);
    }

    /// Whether [`close`](Connection::close) was called.
    pub fn closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Closes this end (for every clone). Python: `Connection.close()`.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    fn check_open(&self) -> Result<(), ConnectionError> {
        if self.closed() {
            Err(ConnectionError::Closed)
        } else {
            Ok(())
        }
    }

    async fn write_frame(&self, payload: &[u8]) -> Result<(), ConnectionError> {
        self.check_open()?;
        if payload.len() > u32::MAX as usize {
            return Err(ConnectionError::Encode("a message over 4 GiB".into()));
        }
        let mut w = self.inner.write.lock().await;
        let mut frame = Vec::with_capacity(HEADER + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&0u32.to_le_bytes());
        frame.extend_from_slice(payload);
        w.owed.extend_from_slice(&frame);
        while !w.owed.is_empty() {
            let Writer { io, owed } = &mut *w;
            let n = io.write(owed).await?;
            if n == 0 {
                return Err(ConnectionError::Eof);
            }
            owed.drain(..n);
        }
        Ok(())
    }

    async fn read_frame(&self) -> Result<Vec<u8>, ConnectionError> {
        self.check_open()?;
        let max = self.max_frame();
        let mut r = self.inner.read.lock().await;
        loop {
            if let Some(m) = &r.broken {
                return Err(ConnectionError::Protocol(format!(
                    "the connection broke earlier: {m}"
                )));
            }
            if r.buf.len() >= HEADER {
                let len = u32::from_le_bytes(r.buf[..4].try_into().expect("4 bytes")) as usize;
                let nfds = u32::from_le_bytes(r.buf[4..8].try_into().expect("4 bytes"));
                if len > max {
                    let e = ConnectionError::FrameTooLarge {
                        len: len as u64,
                        max,
                    };
                    r.broken = Some(e.to_string());
                    return Err(e);
                }
                if nfds != 0 {
                    let e =
                        ConnectionError::Protocol("a frame with OS handles on a named pipe".into());
                    r.broken = Some(e.to_string());
                    return Err(e);
                }
                if r.buf.len() >= HEADER + len {
                    let body = r.buf[HEADER..HEADER + len].to_vec();
                    r.buf.drain(..HEADER + len);
                    return Ok(body);
                }
            }
            if r.eof {
                return Err(if r.buf.is_empty() {
                    ConnectionError::Eof
                } else {
                    ConnectionError::Protocol(
                        "the peer closed the connection in the middle of a frame".into(),
                    )
                });
            }
            let Reader { io, buf, .. } = &mut *r;
            buf.reserve(64 * 1024);
            if io.read_buf(buf).await? == 0 {
                r.eof = true;
            }
        }
    }

    /// Sends a serde value. Python: `Connection.send(obj)`.
    ///
    /// # Errors
    /// [`ConnectionError::Eof`] if the peer is gone, `Encode`, `Closed`.
    ///
    /// # Cancel safety
    /// A send dropped half-way leaves the rest of its frame to go out first
    /// at the next send.
    pub async fn send<T: Serialize + ?Sized>(&self, obj: &T) -> Result<(), ConnectionError> {
        let bytes =
            postcard::to_allocvec(obj).map_err(|e| ConnectionError::Encode(e.to_string()))?;
        self.write_frame(&bytes).await
    }

    /// Sends bytes as one message. Python: `Connection.send_bytes`.
    ///
    /// # Errors
    /// As [`send`](Connection::send).
    ///
    /// # Cancel safety
    /// As [`send`](Connection::send).
    pub async fn send_bytes(&self, buf: &[u8]) -> Result<(), ConnectionError> {
        self.write_frame(buf).await
    }

    /// Receives a serde value. Python: `Connection.recv()`.
    ///
    /// # Errors
    /// `Eof`, `FrameTooLarge`, `Protocol`, `Decode`, `Closed`.
    ///
    /// # Cancel safety
    /// Nothing is lost: bytes leave the buffer only as whole frames.
    pub async fn recv<T: DeserializeOwned>(&self) -> Result<T, ConnectionError> {
        let b = self.read_frame().await?;
        postcard::from_bytes(&b).map_err(|e| ConnectionError::Decode(e.to_string()))
    }

    /// Receives the next message's bytes. Python: `Connection.recv_bytes()`.
    ///
    /// # Errors
    /// As [`recv`](Connection::recv), less `Decode`.
    ///
    /// # Cancel safety
    /// As [`recv`](Connection::recv).
    pub async fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        self.read_frame().await
    }

    /// Receives the next message into `buf`; its length. Python:
    /// `Connection.recv_bytes_into(buf)`.
    ///
    /// # Errors
    /// [`ConnectionError::BufferTooShort`] with the message when it does
    /// not fit; otherwise as [`recv_bytes`](Connection::recv_bytes).
    ///
    /// # Cancel safety
    /// As [`recv`](Connection::recv).
    pub async fn recv_bytes_into(&self, buf: &mut [u8]) -> Result<usize, ConnectionError> {
        let b = self.read_frame().await?;
        if b.len() > buf.len() {
            return Err(ConnectionError::BufferTooShort(b));
        }
        buf[..b.len()].copy_from_slice(&b);
        Ok(b.len())
    }

    /// Whether a message (or end of file) is there within `timeout`.
    /// Python: `Connection.poll(timeout)`.
    ///
    /// # Errors
    /// `Closed`, or an I/O error.
    ///
    /// # Cancel safety
    /// Nothing is lost.
    pub async fn poll_timeout(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        self.check_open()?;
        let mut r = self.inner.read.lock().await;
        if !r.buf.is_empty() || r.eof {
            return Ok(true);
        }
        let Reader { io, buf, .. } = &mut *r;
        buf.reserve(64 * 1024);
        match tokio::time::timeout(timeout, io.read_buf(buf)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) => {
                r.eof = true;
                Ok(true)
            }
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// The blocking facade (on conex's own runtime; not from inside a
    /// runtime's thread).
    pub fn blocking(&self) -> BlockingConnection<'_> {
        BlockingConnection { conn: self }
    }
}

/// The blocking facade of a [`Connection`].
#[derive(Debug)]
pub struct BlockingConnection<'a> {
    conn: &'a Connection,
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    crate::runtime::own_runtime().block_on(f)
}

impl BlockingConnection<'_> {
    /// [`Connection::send`], blocking.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send<T: Serialize + ?Sized>(&self, obj: &T) -> Result<(), ConnectionError> {
        block(self.conn.send(obj))
    }

    /// [`Connection::recv`], blocking.
    ///
    /// # Errors
    /// As [`Connection::recv`].
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, ConnectionError> {
        block(self.conn.recv())
    }

    /// [`Connection::send_bytes`], blocking.
    ///
    /// # Errors
    /// As [`Connection::send_bytes`].
    pub fn send_bytes(&self, buf: &[u8]) -> Result<(), ConnectionError> {
        block(self.conn.send_bytes(buf))
    }

    /// [`Connection::recv_bytes`], blocking.
    ///
    /// # Errors
    /// As [`Connection::recv_bytes`].
    pub fn recv_bytes(&self) -> Result<Vec<u8>, ConnectionError> {
        block(self.conn.recv_bytes())
    }

    /// [`Connection::poll_timeout`], blocking.
    ///
    /// # Errors
    /// As [`Connection::poll_timeout`].
    pub fn poll_timeout(&self, timeout: Duration) -> Result<bool, ConnectionError> {
        block(self.conn.poll_timeout(timeout))
    }
}
