//! The manager's server: the objects, the types it can make, and one
//! thread per client connection.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::super::callable::{CodeRef, Identity, catch};
use super::super::connection::Connection;
use super::super::errors::{ConnectionError, RemoteError};
use super::super::listener::{Address, Listener};
use super::builtins;
use super::protocol::{PROTOCOL, Reply, Request, dec};

/// Who is calling: the connection, for objects that must give back what
/// a client held when it disconnects (locks).
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub(crate) conn: u64,
    /// Whether the client runs this very binary (it may send code).
    pub(crate) same_binary: bool,
}

/// An object living in a manager's server.
pub(crate) trait Served: Send + Sync + 'static {
    /// Runs `method` on its encoded arguments; the encoded result.
    fn call(&self, cx: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError>;

    /// The connection went away (called on its own server thread): give
    /// back what it held.
    fn disconnected(&self, _cx: Caller) {}
}

/// A user type a manager can hold: the methods its proxy may call.
///
/// Python: `BaseManager.register(typeid, callable, exposed=...)`. Write it
/// with [`expose!`](crate::expose), which also writes the typed proxy; by
/// hand, `dispatch` decodes each argument from its own bytes
/// ([`decode_arg`]) and encodes the result ([`encode_result`]).
pub trait Shared: Send + 'static {
    /// Runs `method` on `self` with its encoded arguments; the encoded
    /// result. An unknown method is an `AttributeError`.
    ///
    /// # Errors
    /// What the method raises (decode errors included).
    fn dispatch(&mut self, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError>;
}

/// Decodes argument `i` of a call (for [`Shared::dispatch`]).
///
/// # Errors
/// A `DecodeError`, or a `TypeError` when the argument is missing.
pub fn decode_arg<T: DeserializeOwned>(args: &[Vec<u8>], i: usize) -> Result<T, RemoteError> {
    match args.get(i) {
        Some(b) => dec(b),
        None => Err(RemoteError {
            type_name: "TypeError".into(),
            message: format!("missing argument {i}"),
            backtrace: None,
        }),
    }
}

/// Encodes a method's result (for [`Shared::dispatch`]).
///
/// # Errors
/// An `EncodeError`.
pub fn encode_result<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, RemoteError> {
    postcard::to_allocvec(v).map_err(|e| RemoteError {
        type_name: "EncodeError".into(),
        message: e.to_string(),
        backtrace: None,
    })
}

/// A user object: its methods run one at a time.
struct Exclusive<T>(Mutex<T>);

impl<T: Shared> Served for Exclusive<T> {
    fn call(&self, _cx: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        self.0.lock().dispatch(method, args)
    }
}

/// Makes a registered type's object from its constructor (at `ctor`) and
/// the encoded constructor argument.
type Factory = fn(CodeRef, &[u8]) -> Result<Arc<dyn Served>, RemoteError>;

fn factory<A: DeserializeOwned + 'static, T: Shared>(
    ctor: CodeRef,
    args: &[u8],
) -> Result<Arc<dyn Served>, RemoteError> {
    // `ctor` was registered with this factory as an `fn(A) -> T`
    // (`Registry::register`).
    let f: fn(A) -> T = ctor.resolve();
    let a: A = dec(args)?;
    let obj = catch(move || f(a))?;
    Ok(Arc::new(Exclusive(Mutex::new(obj))))
}

/// The user types a manager's server can make: typeid → (factory,
/// constructor), as code offsets, so the table crosses to the server
/// process (the same binary).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Registry {
    types: Vec<(String, CodeRef, CodeRef)>,
}

impl Registry {
    pub(crate) fn register<A, T>(&mut self, typeid: &str, ctor: fn(A) -> T)
    where
        A: DeserializeOwned + 'static,
        T: Shared,
    {
        let f: Factory = factory::<A, T>;
        self.types.retain(|(t, ..)| t != typeid);
        self.types
            .push((typeid.to_owned(), CodeRef::of(f), CodeRef::of(ctor)));
    }

    fn make(&self, typeid: &str, args: &[u8]) -> Option<Result<Arc<dyn Served>, RemoteError>> {
        let (_, f, ctor) = self.types.iter().find(|(t, ..)| t == typeid)?;
        // `f` is a `Factory` registered in this binary (the server is a
        // child of the same build, or this process).
        let f: Factory = f.resolve();
        Some(f(*ctor, args))
    }
}

struct State {
    registry: Registry,
    objects: Mutex<HashMap<u64, Arc<dyn Served>>>,
    next_id: AtomicU64,
    next_conn: AtomicU64,
    listener: Listener,
}

impl State {
    fn create(&self, typeid: &str, args: &[u8]) -> Result<u64, RemoteError> {
        let obj = match builtins::make(typeid, args) {
            Some(r) => r?,
            None => match self.registry.make(typeid, args) {
                Some(r) => r?,
                None => {
                    return Err(RemoteError {
                        type_name: "KeyError".into(),
                        message: format!("no type {typeid:?} is registered with this manager"),
                        backtrace: None,
                    });
                }
            },
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.objects.lock().insert(id, obj);
        Ok(id)
    }

    fn call(
        &self,
        cx: Caller,
        id: u64,
        method: &str,
        args: &[Vec<u8>],
    ) -> Result<Vec<u8>, RemoteError> {
        let obj = self.objects.lock().get(&id).cloned();
        let Some(obj) = obj else {
            return Err(RemoteError {
                type_name: "KeyError".into(),
                message: format!("no object {id} in this manager"),
                backtrace: None,
            });
        };
        catch(|| obj.call(cx, method, args)).and_then(|r| r)
    }

    /// One client connection, on its own thread.
    fn serve(&self, conn: Connection, peer: Option<Address>) {
        let b = conn.blocking();
        let same_binary = match b.recv::<Request>() {
            Ok(Request::Hello(PROTOCOL, identity, exe)) => {
                use std::os::unix::ffi::OsStringExt;
                let exe = std::path::PathBuf::from(std::ffi::OsString::from_vec(exe));
                Identity::current().accepts(&identity, &exe)
            }
            // Not a conex manager client of this version: drop it.
            _ => return,
        };
        let cx = Caller {
            conn: self.next_conn.fetch_add(1, Ordering::Relaxed),
            same_binary,
        };
        #[cfg(not(feature = "tracing"))]
        let _ = &peer;
        let span = crate::span!(
            "manager connection",
            conn = cx.conn,
            peer = ?peer,
            same_binary
        );
        let _span = span.enter();
        crate::event!(debug, "manager: client authenticated and connected");
        let _ = b.send(&Reply::Value(Vec::new()));
        // A malformed request ends this connection only.
        while let Ok(req) = b.recv::<Request>() {
            let reply = match req {
                Request::Hello(..) => Reply::Value(Vec::new()),
                Request::Create { typeid, args } => match self.create(&typeid, &args) {
                    Ok(id) => Reply::Created(id),
                    Err(e) => Reply::Error(e),
                },
                Request::Call { id, method, args } => match self.call(cx, id, &method, &args) {
                    Ok(v) => Reply::Value(v),
                    Err(e) => Reply::Error(e),
                },
                Request::Shutdown => {
                    let _ = b.send(&Reply::Value(Vec::new()));
                    self.listener.close();
                    break;
                }
            };
            if b.send(&reply).is_err() {
                break;
            }
        }
        // Give back what this client held (a lock of a client that died
        // must not stay taken).
        crate::event!(debug, "manager: client disconnected");
        let objects: Vec<_> = self.objects.lock().values().cloned().collect();
        for o in objects {
            o.disconnected(cx);
        }
    }
}

/// A manager's server, ready to serve: what
/// [`BaseManager::get_server`](super::BaseManager::get_server) gives.
///
/// Python: `multiprocessing.managers.Server`.
pub struct Server {
    state: Arc<State>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("address", self.state.listener.address())
            .field("objects", &self.state.objects.lock().len())
            .finish()
    }
}

impl Server {
    pub(crate) fn bind(
        address: Address,
        authkey: &[u8],
        registry: Registry,
    ) -> Result<Server, ConnectionError> {
        let listener = Listener::bind(address, Some(authkey))?;
        Ok(Server {
            state: Arc::new(State {
                registry,
                objects: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                next_conn: AtomicU64::new(1),
                listener,
            }),
        })
    }

    /// The address it listens on (for TCP port 0, the port picked).
    pub fn address(&self) -> &Address {
        self.state.listener.address()
    }

    /// Serves clients, a thread each, until a client asks for shutdown
    /// ([`BaseManager::shutdown`](super::BaseManager::shutdown)) or
    /// [`stop`](Server::stop) is called. A client that fails the
    /// handshake (a wrong auth key) is refused and the others are served.
    ///
    /// Python: `Server.serve_forever()`.
    pub fn serve_forever(&self) {
        loop {
            match self.state.listener.blocking().accept() {
                Ok(conn) => {
                    let state = self.state.clone();
                    // This thread is the only one accepting: the last
                    // accepted peer is this connection's.
                    let peer = self.state.listener.last_accepted();
                    let spawned = std::thread::Builder::new()
                        .name("conex-manager-conn".into())
                        .spawn(move || state.serve(conn, peer));
                    if spawned.is_err() {
                        // Out of threads: this client is dropped (it sees
                        // end of file); the others go on.
                        continue;
                    }
                }
                Err(ConnectionError::Closed) => return,
                // A failed handshake or a client that left: next one.
                Err(_e) => {
                    if self.state.listener.closed() {
                        return;
                    }
                    crate::event!(warn, error = %_e, "manager: a client was refused");
                }
            }
        }
    }

    /// Stops [`serve_forever`](Server::serve_forever) (from another
    /// thread): no new clients; the connected ones are dropped when this
    /// process ends.
    pub fn stop(&self) {
        self.state.listener.close();
    }
}
