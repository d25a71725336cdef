//! What a manager's clients and server say to each other, and its errors.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::super::callable::Identity;
use super::super::errors::{ConnectionError, ProcessError, RemoteError};

/// Bumped whenever these messages change.
pub(crate) const PROTOCOL: u16 = 4;

/// A client's request. Arguments are encoded one by one, so that the
/// built-in containers can keep values as the bytes they came as (their
/// server never needs the types).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// First on every connection: the protocol version, and the client's
    /// executable, its identity and path (only a client of the same
    /// binary, or of a copy of it, may send code: a managed `Pool`'s
    /// calls).
    /// (The path as raw bytes: serde cannot carry a non-UTF-8 `PathBuf`.)
    Hello(u16, Identity, Vec<u8>),
    /// Make an object of a registered type from its constructor's argument.
    Create { typeid: String, args: Vec<u8> },
    /// Call a method of an object.
    Call {
        id: u64,
        method: String,
        args: Vec<Vec<u8>>,
    },
    /// Stop the server.
    Shutdown,
    /// The caller of request `seq` is gone: stop waiting for it (a lock
    /// wait, a queue get...). The server answers `seq` once in any case:
    /// with the request's result if it had finished, else `Cancelled`.
    Cancel(u64),
}

/// A request on a connection shared by every task and thread of a client
/// process: the replies come back tagged with `seq`, in any order.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Frame {
    /// The request's number on this connection (0 is the greeting).
    pub(crate) seq: u64,
    /// Who asks, inside the client process: a tokio task or an OS thread
    /// (what owns an `RLock` taken through a proxy).
    pub(crate) owner: u64,
    pub(crate) req: Request,
}

/// The type name of the error a cancelled request ends with.
pub(crate) const CANCELLED: &str = "CancelledError";

/// The server's answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The encoded result.
    Value(Vec<u8>),
    /// The id of a new object.
    Created(u64),
    /// The call failed (Python: the exception the server sends back).
    Error(RemoteError),
}

/// What a manager or a proxy call can fail with.
///
/// Python: the exceptions a proxy method re-raises (`KeyError`,
/// `IndexError`, ...: [`ManagerError::Remote`] with that type name), and
/// the `EOFError` / `ConnectionRefusedError` / `AuthenticationError` of an
/// unreachable server.
#[derive(Debug)]
#[non_exhaustive]
pub enum ManagerError {
    /// The method raised in the server: its type name (`"KeyError"`,
    /// `"IndexError"`, `"ValueError"`, `"Empty"`, `"Full"`,
    /// `"BrokenBarrierError"`, `"panic"`, ...), message and backtrace.
    Remote(RemoteError),
    /// The server cannot be reached or went away (connection refused, end
    /// of file: it died or was shut down), or the handshake failed
    /// (`ConnectionError::Authentication` for a wrong key).
    Connection(ConnectionError),
    /// A value could not be encoded or decoded (both sides must agree on
    /// the types of a proxy).
    Codec(String),
    /// The manager's server process could not be started.
    Start(ProcessError),
    /// `start`, `connect` or `get_server` on a manager already started or
    /// connected, or a proxy asked of a manager that is not.
    State(&'static str),
}

impl ManagerError {
    /// Whether the server raised an error of this type name.
    pub fn is(&self, type_name: &str) -> bool {
        matches!(self, ManagerError::Remote(e) if e.type_name == type_name)
    }

    pub(crate) fn remote(type_name: &str, message: impl Into<String>) -> RemoteError {
        RemoteError {
            type_name: type_name.into(),
            message: message.into(),
            backtrace: None,
        }
    }
}

impl fmt::Display for ManagerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManagerError::Remote(e) => write!(f, "the manager raised {e}"),
            ManagerError::Connection(e) => write!(f, "the manager is unreachable: {e}"),
            ManagerError::Codec(m) => write!(f, "cannot encode or decode a value: {m}"),
            ManagerError::Start(e) => write!(f, "cannot start the manager: {e}"),
            ManagerError::State(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ManagerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ManagerError::Remote(e) => Some(e),
            ManagerError::Connection(e) => Some(e),
            ManagerError::Start(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConnectionError> for ManagerError {
    fn from(e: ConnectionError) -> Self {
        ManagerError::Connection(e)
    }
}

/// Encodes one argument or result.
pub(crate) fn enc<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, ManagerError> {
    postcard::to_allocvec(v).map_err(|e| ManagerError::Codec(e.to_string()))
}

/// Decodes one argument or result.
pub(crate) fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, RemoteError> {
    postcard::from_bytes(b).map_err(|e| RemoteError {
        type_name: "DecodeError".into(),
        message: format!("cannot decode a value: {e}"),
        backtrace: None,
    })
}

/// Postcard's length prefix (LEB128), to build replies from stored bytes.
pub(crate) fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The encoding of a `Vec` whose items are already encoded.
pub(crate) fn seq<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    varint(items.len(), &mut out);
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

/// The encoding of `Some(v)` for an encoded `v`, or of `None`.
pub(crate) fn option(v: Option<&[u8]>) -> Vec<u8> {
    match v {
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(1);
            out.extend_from_slice(v);
            out
        }
        None => vec![0],
    }
}

/// This client's `Hello`.
pub(crate) fn hello() -> Request {
    Request::Hello(PROTOCOL, Identity::current().clone(), {
        use std::os::unix::ffi::OsStrExt;
        let exe = std::env::current_exe().unwrap_or_default();
        exe.as_os_str().as_bytes().to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_replies_decode_as_typed_values() {
        let items: Vec<Vec<u8>> = ["a", "bb", "ccc"].iter().map(|s| enc(s).unwrap()).collect();
        let v: Vec<String> = postcard::from_bytes(&seq(items.iter().map(Vec::as_slice))).unwrap();
        assert_eq!(v, ["a", "bb", "ccc"]);
        let big: Vec<Vec<u8>> = (0..300u32).map(|i| enc(&i).unwrap()).collect();
        let v: Vec<u32> = postcard::from_bytes(&seq(big.iter().map(Vec::as_slice))).unwrap();
        assert_eq!(v.len(), 300);
        let s: Option<u64> = postcard::from_bytes(&option(Some(&enc(&7u64).unwrap()))).unwrap();
        assert_eq!(s, Some(7));
        let n: Option<u64> = postcard::from_bytes(&option(None)).unwrap();
        assert_eq!(n, None);
    }
}
