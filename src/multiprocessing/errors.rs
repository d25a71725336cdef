//! The errors of multiprocessing, named after Python's.

use std::fmt;
use std::io;

/// A connection failed, or a message could not cross it.
///
/// Python: `EOFError` (the peer closed), `OSError` (a closed or read-only
/// connection, a socket error), `BufferTooShort`, and the `ValueError` /
/// `UnpicklingError` of a bad message, one variant each. After a framing
/// error (an oversized or malformed frame) the connection is unusable: the
/// stream has lost its place.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer closed its end: nothing more will come (Python:
    /// `EOFError`).
    Eof,
    /// This end was closed with [`close`](super::Connection::close).
    Closed,
    /// A send on the read end of a one-way pipe, or a receive on its write
    /// end.
    WrongDirection(&'static str),
    /// A frame announced more bytes than this connection accepts
    /// ([`Connection::set_max_frame`](super::Connection::set_max_frame));
    /// rejected before anything was allocated.
    FrameTooLarge {
        /// The size the frame announced.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The bytes on the wire are not a conex frame (garbage, a truncated
    /// frame, a handshake from something else).
    Protocol(String),
    /// The message arrived but is not the type asked for.
    Decode(String),
    /// The value could not be encoded (a serde error, or an OS handle sent
    /// over a connection that cannot carry one).
    Encode(String),
    /// [`recv_bytes_into`](super::Connection::recv_bytes_into): the buffer
    /// is too small. The whole message is handed back (Python:
    /// `BufferTooShort`, whose argument is the message).
    BufferTooShort(Vec<u8>),
    /// The auth-key handshake failed.
    Authentication(AuthenticationError),
    /// A socket error.
    Io(io::Error),
}

impl ConnectionError {
    /// Whether the peer closed the connection (Python's `EOFError`).
    pub fn is_eof(&self) -> bool {
        matches!(self, ConnectionError::Eof)
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Eof => write!(f, "the peer closed the connection"),
            ConnectionError::Closed => write!(f, "the connection is closed"),
            ConnectionError::WrongDirection(m) => write!(f, "{m}"),
            ConnectionError::FrameTooLarge { len, max } => write!(
                f,
                "a frame of {len} bytes is over this connection's limit of {max} bytes"
            ),
            ConnectionError::Protocol(m) => write!(f, "not a conex frame: {m}"),
            ConnectionError::Decode(m) => write!(f, "cannot decode the message: {m}"),
            ConnectionError::Encode(m) => write!(f, "cannot encode the message: {m}"),
            ConnectionError::BufferTooShort(m) => {
                write!(
                    f,
                    "the buffer is too short for a message of {} bytes",
                    m.len()
                )
            }
            ConnectionError::Authentication(e) => e.fmt(f),
            ConnectionError::Io(e) => write!(f, "connection I/O failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectionError::Io(e) => Some(e),
            ConnectionError::Authentication(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ConnectionError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ConnectionError::Eof,
            _ => ConnectionError::Io(e),
        }
    }
}

impl From<AuthenticationError> for ConnectionError {
    fn from(e: AuthenticationError) -> Self {
        ConnectionError::Authentication(e)
    }
}

/// The auth-key handshake failed: the peer does not hold the same key (or
/// does not speak the handshake). Raised on both sides.
///
/// Python: `multiprocessing.AuthenticationError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationError {
    pub(crate) reason: &'static str,
}

impl fmt::Display for AuthenticationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "authentication failed: {}", self.reason)
    }
}

impl std::error::Error for AuthenticationError {}

/// An error raised in another process: its type name, message and (when
/// there was one) the remote backtrace.
///
/// Python: the exception (and traceback text) a worker sends back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RemoteError {
    /// The error's type (`"panic"` for a panic).
    pub type_name: String,
    /// Its message.
    pub message: String,
    /// The backtrace in the remote process, if one was captured (set
    /// `RUST_BACKTRACE=1` for line numbers).
    pub backtrace: Option<String>,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl std::error::Error for RemoteError {}

/// Why a child process could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The OS refused to create the process.
    Io(io::Error),
    /// `fork` was asked for while other threads run (they would be lost in
    /// the child, with whatever locks they hold).
    ForkWithThreads(usize),
    /// This start method does not exist on this platform.
    Unsupported(&'static str),
    /// A daemon process may not have children (as in Python).
    DaemonChildren,
    /// The child is not the same binary as the parent (it was rebuilt in
    /// between, or something else answered): refused at the handshake.
    DifferentBinary,
    /// The child did not answer the handshake: it exited first or never
    /// spoke. The usual cause: its `main` does not call
    /// [`init`](super::init) first thing.
    NoHandshake(String),
    /// This program's `main` did not call [`init`](super::init) first
    /// thing, so a child of this binary would run the program itself:
    /// nothing was started.
    NoInit,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Io(e) => write!(f, "cannot start the process: {e}"),
            StartError::ForkWithThreads(n) => write!(
                f,
                "the fork start method needs a single-threaded parent, and {n} threads run here \
                 (they would vanish in the child with the locks they hold); use spawn or forkserver"
            ),
            StartError::Unsupported(m) => write!(f, "the {m} start method is not available here"),
            StartError::DaemonChildren => {
                write!(f, "daemonic processes are not allowed to have children")
            }
            StartError::DifferentBinary => write!(
                f,
                "the child is not the same binary as the parent (rebuilt while running?): refused"
            ),
            StartError::NoHandshake(m) => write!(
                f,
                "the child never completed the handshake ({m}); does its main call \
                 conex::multiprocessing::init() first thing?"
            ),
            StartError::NoInit => write!(
                f,
                "cannot start a child of this binary: its main must call \
                 conex::multiprocessing::init() first thing (else the child would run the \
                 program itself)"
            ),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for StartError {
    fn from(e: io::Error) -> Self {
        StartError::Io(e)
    }
}

/// What a [`Process`](super::Process) call can fail with.
///
/// Python: the `ValueError` / `AssertionError` / `RuntimeError` of misuse,
/// and (for [`Process::result`](super::Process::result), which Python
/// lacks) how the target ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessError {
    /// `start` was not called yet.
    NotStarted,
    /// `start` was called twice (Python: "cannot start a process twice").
    AlreadyStarted,
    /// A process cannot join itself.
    JoinSelf,
    /// The process object was [`close`](super::ProcessHandle::close)d.
    Closed,
    /// `close` while the process still runs (Python's `ValueError`).
    StillRunning,
    /// The child could not be started.
    Start(StartError),
    /// The target panicked; its message and backtrace.
    Panicked(RemoteError),
    /// The process ended without returning a value: exit code `N`
    /// (`std::process::exit(N)` in the target) or `-N` for signal `N`
    /// (terminated, killed, crashed).
    Exited(i32),
    /// The result was already taken.
    ResultTaken,
    /// The value came back but could not be decoded as the expected type.
    Decode(String),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::NotStarted => write!(f, "can only join a started process"),
            ProcessError::AlreadyStarted => write!(f, "cannot start a process twice"),
            ProcessError::JoinSelf => write!(f, "can only join a child process"),
            ProcessError::Closed => write!(f, "process object is closed"),
            ProcessError::StillRunning => {
                write!(f, "cannot close a process while it is still running")
            }
            ProcessError::Start(e) => e.fmt(f),
            ProcessError::Panicked(e) => write!(f, "the target panicked: {}", e.message),
            ProcessError::Exited(c) if *c < 0 => {
                write!(f, "the process was killed by signal {}", -c)
            }
            ProcessError::Exited(c) => write!(f, "the process exited with code {c} and no result"),
            ProcessError::ResultTaken => write!(f, "the result was already taken"),
            ProcessError::Decode(m) => write!(f, "cannot decode the result: {m}"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Start(e) => Some(e),
            ProcessError::Panicked(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StartError> for ProcessError {
    fn from(e: StartError) -> Self {
        ProcessError::Start(e)
    }
}
