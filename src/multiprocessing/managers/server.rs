//! The manager's server: the objects, the types it can make, and one
//! thread per client connection.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::super::callable::{CodeRef, Identity, catch};
use super::super::connection::Connection;
use super::super::errors::{ConnectionError, RemoteError};
use super::super::listener::{Address, Listener};
use super::builtins;
use super::protocol::{CANCELLED, Frame, PROTOCOL, Reply, Request, dec};
use crate::threading;

/// Who is calling: the connection (a client process), the task or thread
/// in it, and the request's cancel signal, for objects that must give back
/// what a client held when it disconnects (locks) or stop a wait when the
/// caller is gone.
#[derive(Debug, Clone)]
pub struct Caller {
    pub(crate) conn: u64,
    /// The task or thread of the client that asks (what owns an `RLock`).
    pub(crate) owner: u64,
    /// Whether the client runs this very binary (it may send code).
    pub(crate) same_binary: bool,
    /// Set when the caller gave up on this request (or disconnected).
    pub(crate) cancel: Arc<threading::Event>,
    /// Set when the caller's connection is gone (its process died, or
    /// dropped it): a wait must not take a lock back then.
    pub(crate) gone: Arc<threading::Event>,
}

/// What a call does: answers now, or goes on as a task of the server.
pub(crate) enum Outcome {
    /// The encoded result (or error), at once.
    Now(Result<Vec<u8>, RemoteError>),
    /// A wait (a lock, a queue get, an event): run as a task, dropped if
    /// the caller cancels.
    Later(BoxFuture<'static, Result<Vec<u8>, RemoteError>>),
    /// As `Later`, but run to its end even when cancelled: the future
    /// watches [`Caller::cancel`] itself (a `Condition` wait, which must
    /// take its lock back), or cannot stop (a user method on a thread).
    Finish(BoxFuture<'static, Result<Vec<u8>, RemoteError>>),
}

/// An object living in a manager's server.
pub(crate) trait Served: Send + Sync + 'static {
    /// Runs a method that answers at once on its encoded arguments; the
    /// encoded result.
    fn call(&self, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError>;

    /// Runs any method: one that may wait returns it as a future. The
    /// default is [`call`](Served::call), now.
    fn start(self: Arc<Self>, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        Outcome::Now(self.call(cx, method, args))
    }

    /// Connection `conn` went away (its waits over): give back what any
    /// of its owners held.
    fn disconnected(&self, _conn: u64) {}
}

/// The error a request ends with when its caller cancelled it.
pub(crate) fn cancelled() -> RemoteError {
    RemoteError {
        type_name: CANCELLED.into(),
        message: "the caller cancelled this call".into(),
        backtrace: None,
    }
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

/// A user object: its methods run one at a time, each on a thread of the
/// server's blocking pool (a user method may block; the connection's
/// other calls go on meanwhile).
struct Exclusive<T>(Mutex<T>);

impl<T: Shared> Served for Exclusive<T> {
    fn call(&self, _: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        self.0.lock().dispatch(method, args)
    }

    fn start(self: Arc<Self>, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        // Free right now: run it here (a short method costs no hop).
        // Taken: wait for it on a blocking thread, not this connection's.
        if let Some(mut obj) = self.0.try_lock() {
            return Outcome::Now(catch(|| obj.dispatch(method, args)).and_then(|r| r));
        }
        let (cx, method, args) = (cx.clone(), method.to_owned(), args.to_vec());
        Outcome::Finish(
            async move {
                let run = tokio::task::spawn_blocking(move || {
                    let _ = cx;
                    catch(|| self.call(&cx, &method, &args)).and_then(|r| r)
                });
                match run.await {
                    Ok(r) => r,
                    Err(_) => Err(cancelled()),
                }
            }
            .boxed(),
        )
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

    fn start(&self, cx: &Caller, id: u64, method: &str, args: &[Vec<u8>]) -> Outcome {
        let obj = self.objects.lock().get(&id).cloned();
        let Some(obj) = obj else {
            return Outcome::Now(Err(RemoteError {
                type_name: "KeyError".into(),
                message: format!("no object {id} in this manager"),
                backtrace: None,
            }));
        };
        catch(|| obj.start(cx, method, args)).unwrap_or_else(|e| Outcome::Now(Err(e)))
    }

    /// One client connection (a client process: all its tasks and threads
    /// share it), on its own thread. Calls that answer at once are
    /// answered here, in order; calls that wait run as tasks of the
    /// server's runtime and answer when they are done.
    fn serve(&self, conn: Connection, peer: Option<Address>) {
        let b = conn.blocking();
        let same_binary = match b.recv::<Frame>() {
            Ok(Frame {
                seq: 0,
                req: Request::Hello(PROTOCOL, identity, exe),
                ..
            }) => {
                use std::os::unix::ffi::OsStringExt;
                let exe = std::path::PathBuf::from(std::ffi::OsString::from_vec(exe));
                Identity::current().accepts(&identity, &exe)
            }
            // Not a conex manager client of this version: drop it.
            _ => return,
        };
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        #[cfg(not(feature = "tracing"))]
        let _ = &peer;
        let span = crate::span!(
            "manager connection",
            conn = conn_id,
            peer = ?peer,
            same_binary
        );
        let _span = span.enter();
        crate::event!(debug, "manager: client authenticated and connected");
        let _ = b.send(&(0u64, Reply::Value(Vec::new())));
        // The calls of this connection that wait, by request number.
        let waiting: Waiting = Arc::default();
        let gone = Arc::new(threading::Event::new());
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let rt = crate::runtime::handle();
        // A malformed request ends this connection only.
        while let Ok(Frame { seq, owner, req }) = b.recv::<Frame>() {
            let (seq, reply) = match req {
                Request::Hello(..) => (seq, Reply::Value(Vec::new())),
                Request::Create { typeid, args } => match self.create(&typeid, &args) {
                    Ok(id) => (seq, Reply::Created(id)),
                    Err(e) => (seq, Reply::Error(e)),
                },
                Request::Call { id, method, args } => {
                    let cancel = Arc::new(threading::Event::new());
                    let cx = Caller {
                        conn: conn_id,
                        owner,
                        same_binary,
                        cancel,
                        gone: gone.clone(),
                    };
                    match self.start(&cx, id, &method, &args) {
                        Outcome::Now(r) => (seq, reply_of(r)),
                        Outcome::Later(f) => {
                            spawn_wait(&rt, &mut tasks, &waiting, &conn, seq, f, true, cx);
                            continue;
                        }
                        Outcome::Finish(f) => {
                            spawn_wait(&rt, &mut tasks, &waiting, &conn, seq, f, false, cx);
                            continue;
                        }
                    }
                }
                Request::Cancel(of) => {
                    // Still waiting: stop it (its task answers). Else it was
                    // answered already, or never came: answer `Cancelled`
                    // (a second answer is dropped by the client).
                    match waiting.lock().get(&of) {
                        Some(c) => {
                            c.set();
                            continue;
                        }
                        None => (of, Reply::Error(cancelled())),
                    }
                }
                Request::Shutdown => {
                    let _ = b.send(&(seq, Reply::Value(Vec::new())));
                    self.listener.close();
                    break;
                }
            };
            if b.send(&(seq, reply)).is_err() {
                break;
            }
        }
        // Stop this client's waits, let them end, then give back what its
        // tasks and threads held (a lock of a client that died must not
        // stay taken).
        crate::event!(debug, "manager: client disconnected");
        gone.set();
        for c in waiting.lock().values() {
            c.set();
        }
        let _ = futures::executor::block_on(futures::future::join_all(tasks));
        let objects: Vec<_> = self.objects.lock().values().cloned().collect();
        for o in objects {
            o.disconnected(conn_id);
        }
    }
}

/// The calls of one connection that wait, by request number: their cancel
/// signals.
type Waiting = Arc<Mutex<HashMap<u64, Arc<threading::Event>>>>;

/// Runs a waiting call as a task that answers `seq` when it is done (or
/// `Cancelled` when stopped first, if `stoppable`).
#[allow(clippy::too_many_arguments)]
fn spawn_wait(
    rt: &tokio::runtime::Handle,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    waiting: &Waiting,
    conn: &Connection,
    seq: u64,
    fut: BoxFuture<'static, Result<Vec<u8>, RemoteError>>,
    stoppable: bool,
    cx: Caller,
) {
    let cancel = cx.cancel;
    waiting.lock().insert(seq, cancel.clone());
    let (conn, waiting) = (conn.clone(), waiting.clone());
    if tasks.len() >= 64 {
        tasks.retain(|t| !t.is_finished());
    }
    tasks.push(rt.spawn(async move {
        let fut = std::panic::AssertUnwindSafe(fut).catch_unwind();
        let r = if stoppable {
            let stop = std::pin::pin!(cancel.wait());
            match futures::future::select(fut, stop).await {
                futures::future::Either::Left((r, _)) => r,
                futures::future::Either::Right(_) => Ok(Err(cancelled())),
            }
        } else {
            fut.await
        };
        let r = r.unwrap_or_else(|p| {
            Err(RemoteError {
                type_name: "panic".into(),
                message: crate::panic_str(&*p).to_owned(),
                backtrace: None,
            })
        });
        // Answered first, forgotten after: a cancel that no longer finds
        // it knows its answer is on the wire.
        let _ = conn.send(&(seq, reply_of(r))).await;
        waiting.lock().remove(&seq);
    }));
}

fn reply_of(r: Result<Vec<u8>, RemoteError>) -> Reply {
    match r {
        Ok(v) => Reply::Value(v),
        Err(e) => Reply::Error(e),
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
