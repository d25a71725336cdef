//! `Listener` and `Client`: connections by address, with the auth-key
//! handshake; `wait` over several connections.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::io::Interest;

use super::auth;
use super::connection::Connection;
use super::errors::ConnectionError;
use crate::io::driver::{block_on_io, within};
use crate::io::fd::SharedFd;
use crate::sys::net;

/// Where a [`Listener`] listens and a [`Client`] connects.
///
/// Python: an `AF_UNIX` path string, or an `AF_INET` `(host, port)` tuple.
///
/// It is serde data: send it to a child so that it can connect back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Address {
    /// A Unix socket path. Connections over it can carry OS handles.
    Unix(PathBuf),
    /// A TCP address (loopback or the network).
    Tcp(SocketAddr),
}

impl Address {
    /// A fresh Unix socket path in the temporary directory (Python's
    /// `arbitrary_address('AF_UNIX')`).
    pub fn unix_temp() -> Address {
        let mut r = [0u8; 8];
        let _ = crate::multiprocessing::auth::random_bytes(&mut r);
        Address::Unix(std::env::temp_dir().join(format!(
            "conex-{}-{:016x}.sock",
            std::process::id(),
            u64::from_ne_bytes(r)
        )))
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Tcp(a)
    }
}

impl From<PathBuf> for Address {
    fn from(p: PathBuf) -> Address {
        Address::Unix(p)
    }
}

impl From<&Path> for Address {
    fn from(p: &Path) -> Address {
        Address::Unix(p.to_owned())
    }
}

impl From<&Address> for Address {
    fn from(a: &Address) -> Address {
        a.clone()
    }
}

/// The one rule for an address written as text: what parses as a socket
/// address (`"127.0.0.1:0"`, `"[::1]:6000"`, and `"localhost:6000"` for
/// the IPv4 loopback) is TCP; anything else is a Unix socket path.
/// Python: an `AF_INET` `(host, port)` or an `AF_UNIX` path string.
///
/// ```
/// use conex::multiprocessing::Address;
///
/// assert!(matches!(Address::from("127.0.0.1:0"), Address::Tcp(_)));
/// assert!(matches!(Address::from("localhost:6000"), Address::Tcp(a) if a.port() == 6000));
/// assert!(matches!(Address::from("/tmp/app.sock"), Address::Unix(_)));
/// ```
impl From<&str> for Address {
    fn from(s: &str) -> Address {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Address::Tcp(a);
        }
        if let Some(port) = s
            .strip_prefix("localhost:")
            .and_then(|p| p.parse::<u16>().ok())
        {
            return Address::Tcp(SocketAddr::from(([127, 0, 0, 1], port)));
        }
        Address::Unix(PathBuf::from(s))
    }
}

impl From<String> for Address {
    fn from(s: String) -> Address {
        Address::from(s.as_str())
    }
}

impl std::str::FromStr for Address {
    type Err = std::convert::Infallible;

    /// As [`From<&str>`](Address#impl-From<%26str>-for-Address).
    fn from_str(s: &str) -> Result<Address, Self::Err> {
        Ok(Address::from(s))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// The listening socket as std made it (bind, listen and accept are std's;
/// conex keeps only what std lacks: the non-blocking connect, descriptor
/// passing, the shutdown that wakes a pending accept).
enum StdListener {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

impl StdListener {
    /// Accepts one connection as a non-blocking descriptor, with the
    /// peer's address when it has one (`WouldBlock` when none is waiting:
    /// the listener is non-blocking).
    fn accept(&self) -> io::Result<(OwnedFd, Option<Address>)> {
        match self {
            StdListener::Unix(l) => {
                let (s, peer) = l.accept()?;
                s.set_nonblocking(true)?;
                let peer = peer.as_pathname().map(|p| Address::Unix(p.to_path_buf()));
                Ok((s.into(), peer))
            }
            StdListener::Tcp(l) => {
                let (s, peer) = l.accept()?;
                s.set_nonblocking(true)?;
                s.set_nodelay(true)?;
                Ok((s.into(), Some(Address::Tcp(peer))))
            }
        }
    }
}

struct ListenerInner {
    /// Accepts; `sock` is a second descriptor of the same socket, the one
    /// the readiness waits are registered on.
    listener: StdListener,
    sock: SharedFd,
    address: Address,
    authkey: Option<Vec<u8>>,
    closed: AtomicBool,
    /// Set by `close`: wakes pending accepts (a shut-down listening socket
    /// does not report readiness everywhere).
    close_event: crate::threading::Event,
    handshake_timeout: Duration,
    /// Handshakes finished (passed or failed), in the order they finished,
    /// for the next `accept`, with the peer's address.
    done: crate::queue::Queue<(Result<Connection, ConnectionError>, Option<Address>)>,
    /// The peer of the connection `accept` returned last.
    last_accepted: std::sync::Mutex<Option<Address>>,
    /// Handshakes running now (at most [`MAX_HANDSHAKES`]).
    running: Arc<std::sync::atomic::AtomicUsize>,
}

/// How many handshakes a listener runs at once. Each runs as a task of its
/// own, so a slow or silent peer delays nobody; past this many, new
/// connections wait in the backlog until one finishes or times out.
pub const MAX_HANDSHAKES: usize = 64;

/// The accept backlog [`Listener::bind`] asks for (the kernel caps it at
/// its own limit, `net.core.somaxconn` on Linux).
pub const DEFAULT_BACKLOG: u32 = 4096;

impl Drop for ListenerInner {
    fn drop(&mut self) {
        if let Address::Unix(p) = &self.address {
            if !self.closed.swap(true, Ordering::AcqRel) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// A bound, listening socket that hands out authenticated connections.
///
/// Python: `multiprocessing.connection.Listener(address, authkey=...)`. A
/// cheap `Clone` handle. With an auth key every accepted connection must
/// prove it holds the same key (mutual HMAC-SHA256 challenge-response, as
/// Python's); a client that fails gets an
/// [`AuthenticationError`](super::AuthenticationError), so does
/// [`accept`](Listener::accept), and the listener goes on serving others.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), conex::multiprocessing::ConnectionError> {
/// use conex::multiprocessing::{Address, Client, Listener};
///
/// let listener = Listener::bind(Address::unix_temp(), Some(b"secret"))?;
/// let address = listener.address().clone();
/// let client = tokio::spawn(async move {
///     let c = Client::connect(&address, Some(b"secret")).await?;
///     c.send(&"hi").await
/// });
/// let conn = listener.accept().await?;
/// assert_eq!(conn.recv::<String>().await?, "hi");
/// client.await.unwrap()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Listener {
    inner: Arc<ListenerInner>,
}

impl Listener {
    /// Binds and listens on `address` (a Unix path that already exists is
    /// an error: Python's `OSError: Address already in use`). `address` is
    /// anything that converts into an [`Address`]: a `SocketAddr`, a path,
    /// or text under [`Address`]'s one rule (`"127.0.0.1:0"` is TCP on a
    /// free port, `"/tmp/app.sock"` a Unix path).
    ///
    /// The backlog is [`DEFAULT_BACKLOG`]; see
    /// [`bind_with_backlog`](Listener::bind_with_backlog).
    ///
    /// # Errors
    /// The OS refused the address.
    pub fn bind(
        address: impl Into<Address>,
        authkey: Option<&[u8]>,
    ) -> Result<Listener, ConnectionError> {
        Listener::bind_with_backlog(address, authkey, DEFAULT_BACKLOG)
    }

    /// [`bind`](Listener::bind) with the length of the queue of connections
    /// not yet accepted (Python's `Listener(backlog=...)`; the kernel caps
    /// it at its own limit).
    ///
    /// # Errors
    /// The OS refused the address or the backlog.
    pub fn bind_with_backlog(
        address: impl Into<Address>,
        authkey: Option<&[u8]>,
        backlog: u32,
    ) -> Result<Listener, ConnectionError> {
        let address = address.into();
        if let Address::Unix(path) = &address {
            remove_stale_sockets(path);
        }
        let (listener, address) = match &address {
            Address::Unix(path) => {
                let l = std::os::unix::net::UnixListener::bind(path)?;
                l.set_nonblocking(true)?;
                (StdListener::Unix(l), address)
            }
            Address::Tcp(a) => {
                let l = std::net::TcpListener::bind(a)?;
                l.set_nonblocking(true)?;
                let bound = l.local_addr()?;
                (StdListener::Tcp(l), Address::Tcp(bound))
            }
        };
        let sock = match &listener {
            StdListener::Unix(l) => OwnedFd::from(l.try_clone()?),
            StdListener::Tcp(l) => OwnedFd::from(l.try_clone()?),
        };
        crate::sys::listen(sock.as_raw_fd(), backlog.max(1))?;
        Ok(Listener {
            inner: Arc::new(ListenerInner {
                listener,
                sock: SharedFd::new(sock),
                address,
                authkey: authkey.map(<[u8]>::to_vec),
                closed: AtomicBool::new(false),
                close_event: crate::threading::Event::new(),
                handshake_timeout: Duration::from_secs(20),
                done: crate::queue::Queue::new(0),
                last_accepted: std::sync::Mutex::new(None),
                running: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            }),
        })
    }

    /// The peer of the connection [`accept`](Listener::accept) returned
    /// last: a TCP client's address, a Unix client's socket path if it
    /// bound one (`None` for an unnamed one, where Python gives `''`, and
    /// before the first accept). Python: `Listener.last_accepted`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), conex::multiprocessing::ConnectionError> {
    /// use conex::multiprocessing::{Address, Client, Listener};
    ///
    /// let l = Listener::bind("127.0.0.1:0", None)?;
    /// assert_eq!(l.last_accepted(), None);
    /// let c = Client::connect(l.address().clone(), None);
    /// let (c, a) = futures::join!(c, l.accept());
    /// let (_c, _a) = (c?, a?);
    /// assert!(matches!(l.last_accepted(), Some(Address::Tcp(peer)) if peer.ip().is_loopback()));
    /// # Ok(()) }
    /// ```
    pub fn last_accepted(&self) -> Option<Address> {
        self.inner
            .last_accepted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The address it listens on (for TCP port 0, the port picked).
    /// Python: `Listener.address`.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// Accepts the next connection and runs the handshake on it. Python:
    /// `Listener.accept()`.
    ///
    /// # Errors
    /// [`ConnectionError::Authentication`] (or `Protocol`, `Eof`) when the
    /// newcomer fails the handshake or does not finish it within 20
    /// seconds; that connection is dropped and the next `accept` serves
    /// the next client. `Closed` after [`close`](Listener::close).
    ///
    /// # Cancel safety
    /// A connection accepted but not yet through its handshake is dropped
    /// (its client sees end of file); none waiting in the backlog is lost.
    pub async fn accept(&self) -> Result<Connection, ConnectionError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ConnectionError::Closed);
        }
        let inner = &*self.inner;
        let mut closing = std::pin::pin!(inner.close_event.wait());
        let mut finished = std::pin::pin!(inner.done.get());
        std::future::poll_fn(|cx| {
            if closing.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(ConnectionError::Closed));
            }
            if let Poll::Ready(r) = finished.as_mut().poll(cx) {
                return Poll::Ready(match r {
                    Ok((Ok(conn), peer)) => {
                        *inner
                            .last_accepted
                            .lock()
                            .unwrap_or_else(|e| e.into_inner()) = peer;
                        Ok(conn)
                    }
                    Ok((Err(e), _)) => Err(e),
                    Err(_) => Err(ConnectionError::Closed),
                });
            }
            // Start handshakes for every connection waiting, up to the
            // bound; each finishes on its own and lands in `done`.
            while inner.running.load(Ordering::Acquire) < MAX_HANDSHAKES {
                match inner
                    .sock
                    .poll_io(cx, Interest::READABLE, |_| inner.listener.accept())
                {
                    Poll::Ready(Ok((fd, peer))) => self.start_handshake(fd, peer),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => break,
                }
            }
            Poll::Pending
        })
        .await
    }

    /// Runs the handshake of a newly accepted connection as a task of its
    /// own (on the caller's runtime, or conex's own under the blocking
    /// facade); its outcome goes to the next `accept`.
    fn start_handshake(&self, fd: OwnedFd, peer: Option<Address>) {
        let inner = &*self.inner;
        inner.running.fetch_add(1, Ordering::AcqRel);
        let unix = matches!(inner.address, Address::Unix(_));
        let conn = Connection::from_socket_unauthenticated(fd, unix);
        let key = inner.authkey.clone();
        let limit = inner.handshake_timeout;
        let (done, running) = (inner.done.clone(), inner.running.clone());
        crate::runtime::handle().spawn(async move {
            let outcome = match within(Some(limit), auth::server(&conn, key.as_deref())).await {
                Some(Ok(())) => {
                    conn.accept_fds().await;
                    Ok(conn)
                }
                Some(Err(e)) => Err(e),
                None => Err(ConnectionError::Protocol(
                    "the client did not finish the handshake in time".into(),
                )),
            };
            running.fetch_sub(1, Ordering::AcqRel);
            // An unbounded queue: the put cannot fail before shutdown.
            let _ = done.put_nowait((outcome, peer));
        });
    }

    /// Stops listening (and removes a Unix socket's path). Later accepts
    /// fail with `Closed`. Python: `Listener.close()`.
    pub fn close(&self) {
        if !self.inner.closed.swap(true, Ordering::AcqRel) {
            // Wakes a pending accept.
            net::shutdown(self.inner.sock.as_fd(), libc::SHUT_RDWR);
            self.inner.close_event.set();
            if let Address::Unix(p) = &self.inner.address {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// Whether [`close`](Listener::close) was called.
    pub(crate) fn closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingListener<'_> {
        BlockingListener { listener: self }
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.inner.address)
            .field("authenticated", &self.inner.authkey.is_some())
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

/// The blocking facade of a [`Listener`].
#[derive(Debug)]
pub struct BlockingListener<'a> {
    listener: &'a Listener,
}

impl BlockingListener<'_> {
    /// [`Listener::accept`], blocking.
    #[track_caller]
    pub fn accept(&self) -> Result<Connection, ConnectionError> {
        block_on_io(self.listener.accept())
    }
}

/// Turns Nagle off on a connecting TCP socket (through std: the socket is
/// a `TcpStream` for the call).
fn set_nodelay(fd: OwnedFd) -> io::Result<OwnedFd> {
    let s = std::net::TcpStream::from(fd);
    s.set_nodelay(true)?;
    Ok(s.into())
}

/// Removes the socket files that conex processes which no longer exist
/// left in `path`'s directory (`conex-<pid>-<random>.sock`, made by
/// [`Address::unix_temp`]; a process killed before it could unlink its
/// socket leaves one). Only names of that form whose pid is gone.
fn remove_stale_sockets(path: &Path) {
    let Some(dir) = path.parent() else { return };
    if dir != std::env::temp_dir() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("conex-"))
            .and_then(|n| n.strip_suffix(".sock"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !crate::sys::pid_alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Connecting to a [`Listener`]. Python:
/// `multiprocessing.connection.Client(address, authkey=...)`.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Connects to `address` (an [`Address`], a `SocketAddr`, a path, or
    /// text such as `"127.0.0.1:6000"`) and runs the handshake (with
    /// `authkey` if given; it must match the listener's).
    ///
    /// # Errors
    /// [`ConnectionError::Authentication`] on a wrong or missing key,
    /// `Io` if nothing listens there.
    ///
    /// # Cancel safety
    /// A dropped connect closes its socket; nothing else is affected.
    pub async fn connect(
        address: impl Into<Address>,
        authkey: Option<&[u8]>,
    ) -> Result<Connection, ConnectionError> {
        let address = address.into();
        let conn = match &address {
            Address::Unix(path) => {
                let addr = net::UnixAddr::new(path)?;
                let mut backoff = Duration::from_micros(100);
                loop {
                    let sock = net::stream_socket(libc::AF_UNIX)?;
                    let Err(e) = net::connect_unix(sock.as_fd(), &addr) else {
                        break Connection::from_socket_unauthenticated(sock, true);
                    };
                    // A full backlog: try again shortly (poll cannot tell).
                    if e.raw_os_error() == Some(libc::EAGAIN) {
                        crate::io::driver::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_millis(50));
                        continue;
                    }
                    return Err(e.into());
                }
            }
            Address::Tcp(a) => {
                let family = if a.is_ipv4() {
                    libc::AF_INET
                } else {
                    libc::AF_INET6
                };
                let sock = net::stream_socket(family)?;
                net::connect_tcp_start(sock.as_fd(), a)?;
                let sock = set_nodelay(sock)?;
                let conn = Connection::from_socket_unauthenticated(sock, false);
                conn.wait_connected().await?;
                conn
            }
        };
        auth::client(&conn, authkey).await?;
        conn.accept_fds().await;
        Ok(conn)
    }

    /// [`Client::connect`], blocking.
    #[track_caller]
    pub fn connect_blocking(
        address: impl Into<Address>,
        authkey: Option<&[u8]>,
    ) -> Result<Connection, ConnectionError> {
        block_on_io(Client::connect(address, authkey))
    }
}

/// Something [`wait`] can wait on: a [`Connection`] (ready when there is
/// something to receive, or end of file), a process [`Sentinel`](super::Sentinel),
/// a descriptor ([`ReadableFd`]), or a type of yours.
///
/// Python: the objects `multiprocessing.connection.wait` takes (a
/// connection, a sentinel, a socket, or anything with `fileno()`).
///
/// ```
/// # #[tokio::main] async fn main() {
/// use std::future::Future;
/// use std::pin::Pin;
/// use conex::multiprocessing::{Waitable, wait};
///
/// /// Ready once its event is set.
/// struct Flag(conex::threading::Event);
///
/// impl Waitable for Flag {
///     fn ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
///         Box::pin(self.0.wait())
///     }
/// }
///
/// let (a, b) = (Flag(conex::threading::Event::new()), Flag(conex::threading::Event::new()));
/// b.0.set();
/// assert_eq!(wait(&[&a, &b], None).await, [1]);
/// # }
/// ```
pub trait Waitable: Send + Sync {
    /// A future that completes once the object is ready. [`wait`] makes
    /// one per object and drops them all when it returns, so it must hold
    /// nothing (a wait that receives or takes something would lose it).
    fn ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl Waitable for Connection {
    fn ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.wait_readable())
    }
}

/// A descriptor for [`wait`]: ready when it is readable (data, end of
/// file, or an error: a socket, a pipe, an eventfd). Python: `wait` on a
/// socket or a raw file descriptor. It watches a duplicate of the
/// descriptor, so the original stays the caller's, registered wherever it
/// is.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// use std::time::Duration;
/// use conex::multiprocessing::{ReadableFd, wait};
///
/// let (r, mut w) = std::io::pipe()?;
/// let fd = ReadableFd::new(r.as_fd())?;
/// assert!(wait(&[&fd], Some(Duration::from_millis(10))).await.is_empty());
/// w.write_all(b"x")?;
/// assert_eq!(wait(&[&fd], None).await, [0]);
/// # Ok(()) }
/// ```
pub struct ReadableFd {
    fd: SharedFd,
}

impl ReadableFd {
    /// Watches (a duplicate of) `fd`.
    ///
    /// # Errors
    /// The duplicate could not be made (out of descriptors).
    pub fn new(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<ReadableFd> {
        Ok(ReadableFd {
            fd: SharedFd::new(fd.try_clone_to_owned()?),
        })
    }
}

impl std::fmt::Debug for ReadableFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ReadableFd").field(&self.fd.raw()).finish()
    }
}

impl Waitable for ReadableFd {
    fn ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let readable = |raw| {
                let mut p = libc::pollfd {
                    fd: raw,
                    events: libc::POLLIN,
                    revents: 0,
                };
                match crate::sys::poll(std::slice::from_mut(&mut p), Some(Duration::ZERO)) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(io::ErrorKind::WouldBlock.into()),
                    Err(e) => Err(e),
                }
            };
            // An error (a descriptor poll refuses) counts as ready, as
            // Python's wait reports a broken object ready.
            let _ =
                std::future::poll_fn(|cx| self.fd.poll_io(cx, Interest::READABLE, readable)).await;
        })
    }
}

/// Waits until at least one of `objects` is ready, or `timeout` passes;
/// returns the indices of the ready ones (empty on timeout). Python:
/// `multiprocessing.connection.wait(object_list, timeout)`.
///
/// # Cancel safety
/// Nothing is lost: waiting receives nothing.
pub async fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Vec<usize> {
    let mut waits: Vec<_> = objects.iter().map(|o| o.ready()).collect();
    let all = std::future::poll_fn(|cx| {
        let mut ready = Vec::new();
        for (i, w) in waits.iter_mut().enumerate() {
            if w.as_mut().poll(cx).is_ready() {
                ready.push(i);
            }
        }
        if ready.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(ready)
        }
    });
    within(timeout, all).await.unwrap_or_default()
}

/// [`wait`], blocking.
#[track_caller]
pub fn wait_blocking(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Vec<usize> {
    block_on_io(wait(objects, timeout))
}
