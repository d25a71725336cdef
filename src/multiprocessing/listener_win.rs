//! `Listener` and `Client` on Windows: named pipes (tokio's), with the
//! same auth-key handshake as on Unix.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeServer, ServerOptions};

use super::auth;
use super::connection::{Connection, Pipe};
use super::errors::ConnectionError;
use crate::wait::mutex::Mutex;

/// Where a listener listens. Python: a `\\.\pipe\name` string
/// (`AF_PIPE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Address {
    /// A named pipe, `\\.\pipe\name`.
    Pipe(String),
}

impl Address {
    /// A fresh pipe name (Python's `arbitrary_address('AF_PIPE')`).
    pub fn pipe_temp() -> Address {
        let mut r = [0u8; 8];
        let _ = auth::random_bytes(&mut r);
        Address::Pipe(format!(
            r"\\.\pipe\conex-{}-{:016x}",
            std::process::id(),
            u64::from_ne_bytes(r)
        ))
    }

    fn name(&self) -> &str {
        match self {
            Address::Pipe(p) => p,
        }
    }
}

/// Accepts authenticated connections on a named pipe. Python:
/// `multiprocessing.connection.Listener(address, family='AF_PIPE',
/// authkey=...)`.
pub struct Listener {
    address: Address,
    authkey: Option<Vec<u8>>,
    next: Mutex<Option<NamedPipeServer>>,
    closed: AtomicBool,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .finish()
    }
}

impl Listener {
    /// Creates the pipe (its first instance: a name already in use is an
    /// error, Python's `Address already in use`). Must be called inside a
    /// tokio runtime or from a thread that conex's runtime serves.
    ///
    /// # Errors
    /// The OS refused the name.
    pub fn bind(address: Address, authkey: Option<&[u8]>) -> Result<Listener, ConnectionError> {
        let first = crate::runtime::own_runtime().block_on(async {
            ServerOptions::new()
                .first_pipe_instance(true)
                .create(address.name())
        })?;
        Ok(Listener {
            address,
            authkey: authkey.map(<[u8]>::to_vec),
            next: Mutex::new(Some(first)),
            closed: AtomicBool::new(false),
        })
    }

    /// Its address. Python: `Listener.address`.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Accepts the next client and runs the handshake. Python:
    /// `Listener.accept()`.
    ///
    /// # Errors
    /// [`ConnectionError::Authentication`] when the client fails the
    /// handshake (the next accept serves the next client); `Closed` after
    /// [`close`](Listener::close).
    ///
    /// # Cancel safety
    /// A client accepted but not through its handshake is dropped.
    pub async fn accept(&self) -> Result<Connection, ConnectionError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(ConnectionError::Closed);
        }
        let mut next = self.next.lock().await;
        let server = match next.take() {
            Some(s) => s,
            None => ServerOptions::new().create(self.address.name())?,
        };
        server.connect().await?;
        // The next instance exists before this one is handed out, so a
        // client never finds the name missing.
        *next = Some(ServerOptions::new().create(self.address.name())?);
        drop(next);
        let conn = Connection::from_pipe(Pipe::Server(server));
        auth::server(&conn, self.authkey.as_deref()).await?;
        Ok(conn)
    }

    /// Stops accepting. Python: `Listener.close()`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// Connects to a [`Listener`]. Python: `multiprocessing.connection.Client`.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Connects to `address` and runs the handshake.
    ///
    /// # Errors
    /// [`ConnectionError::Authentication`] on a wrong or missing key, `Io`
    /// if nothing listens there.
    pub async fn connect(
        address: &Address,
        authkey: Option<&[u8]>,
    ) -> Result<Connection, ConnectionError> {
        // ERROR_PIPE_BUSY: every instance is taken; wait for the next.
        const PIPE_BUSY: i32 = 231;
        let pipe = loop {
            match ClientOptions::new().open(address.name()) {
                Ok(p) => break p,
                Err(e) if e.raw_os_error() == Some(PIPE_BUSY) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let conn = Connection::from_pipe(Pipe::Client(pipe));
        auth::client(&conn, authkey).await?;
        Ok(conn)
    }

    /// [`connect`](Client::connect), blocking.
    ///
    /// # Errors
    /// As [`connect`](Client::connect).
    pub fn connect_blocking(
        address: &Address,
        authkey: Option<&[u8]>,
    ) -> Result<Connection, ConnectionError> {
        crate::runtime::own_runtime().block_on(Client::connect(address, authkey))
    }
}
