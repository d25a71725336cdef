//! The client side: one connection per thread and server, and the proxy
//! every typed proxy wraps.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::connection::Connection;
use super::super::listener::{Address, Client};
use super::protocol::{ManagerError, Reply, Request};

/// Connections by server address and key.
type Conns = HashMap<(Address, Vec<u8>), Connection>;

thread_local! {
    /// This thread's connections, by server (and the pid they belong to:
    /// a forked child must not share its parent's sockets).
    static CONNS: RefCell<(u32, Conns)> = RefCell::new((0, HashMap::new()));
}

/// This thread's connection to a server, made (and greeted) on first use.
fn connection(address: &Address, authkey: &[u8]) -> Result<Connection, ManagerError> {
    let key = (address.clone(), authkey.to_vec());
    let pid = std::process::id();
    let cached = CONNS.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != pid {
            *c = (pid, HashMap::new());
        }
        c.1.get(&key).cloned()
    });
    if let Some(conn) = cached {
        return Ok(conn);
    }
    let conn = Client::connect_blocking(address, Some(authkey))?;
    conn.blocking().send(&super::protocol::hello())?;
    match conn.blocking().recv::<Reply>()? {
        Reply::Value(_) => {}
        _ => {
            return Err(ManagerError::State(
                "the server does not speak this manager protocol",
            ));
        }
    }
    CONNS.with(|c| c.borrow_mut().1.insert(key, conn.clone()));
    Ok(conn)
}

fn forget(address: &Address, authkey: &[u8]) {
    let key = (address.clone(), authkey.to_vec());
    let _ = CONNS.try_with(|c| c.borrow_mut().1.remove(&key));
}

/// Sends `req` on this thread's connection to the server and waits for
/// the reply. A broken connection is dropped (the next call reconnects,
/// or fails if the server is gone).
pub(crate) fn request(
    address: &Address,
    authkey: &[u8],
    req: &Request,
) -> Result<Reply, ManagerError> {
    let conn = connection(address, authkey)?;
    let out = conn
        .blocking()
        .send(req)
        .and_then(|()| conn.blocking().recv::<Reply>());
    out.map_err(|e| {
        forget(address, authkey);
        ManagerError::Connection(e)
    })
}

/// What identifies a managed object: its server, the key to reach it, its
/// id there and its type.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Token {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    pub(crate) id: u64,
    pub(crate) typeid: String,
}

/// A handle to an object living in a manager's server: every typed proxy
/// wraps one.
///
/// Python: `multiprocessing.managers.BaseProxy`. Methods run in the
/// server, over a connection of the calling thread (made on first use;
/// each thread has its own, so a lock or an `RLock` is held by the thread
/// that acquired it). It is serde data: send it to another process (by
/// pipe, queue or as an argument) and it reaches the same object. It
/// carries its manager's auth key, as Python's proxies do when passed to a
/// child, so send it only over channels you trust.
///
/// Calls block the calling thread; from async code run them with
/// [`tasks::to_thread`](crate::tasks::to_thread) or `spawn_blocking`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BaseProxy {
    token: Token,
}

impl fmt::Debug for BaseProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseProxy")
            .field("typeid", &self.token.typeid)
            .field("id", &self.token.id)
            .field("address", &self.token.address)
            .finish()
    }
}

impl BaseProxy {
    pub(crate) fn new(token: Token) -> BaseProxy {
        BaseProxy { token }
    }

    /// The registered type of the object (Python's `_token.typeid`).
    pub fn typeid(&self) -> &str {
        &self.token.typeid
    }

    /// The object's id in its server.
    pub fn id(&self) -> u64 {
        self.token.id
    }

    /// The address of its manager's server.
    pub fn address(&self) -> &Address {
        &self.token.address
    }

    /// Calls `method` on the object with `args` (each encoded on its own:
    /// [`arg`]) and decodes its result.
    ///
    /// Python: `BaseProxy._callmethod(methodname, args)`.
    ///
    /// # Errors
    /// [`ManagerError::Remote`] with what the method raised;
    /// [`ManagerError::Connection`] if the server is unreachable or died
    /// (never a hang: its connection closes).
    pub fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        args: Vec<Vec<u8>>,
    ) -> Result<R, ManagerError> {
        let bytes = self.call_raw(method, args)?;
        postcard::from_bytes(&bytes).map_err(|e| ManagerError::Codec(e.to_string()))
    }

    /// As [`call`](BaseProxy::call), the result left encoded.
    ///
    /// # Errors
    /// As [`call`](BaseProxy::call).
    pub fn call_raw(&self, method: &str, args: Vec<Vec<u8>>) -> Result<Vec<u8>, ManagerError> {
        let req = Request::Call {
            id: self.token.id,
            method: method.to_owned(),
            args,
        };
        match request(&self.token.address, &self.token.authkey, &req)? {
            Reply::Value(v) => Ok(v),
            Reply::Error(e) => Err(ManagerError::Remote(e)),
            Reply::Created(_) => Err(ManagerError::State("unexpected reply")),
        }
    }
}

/// Encodes one argument of a [`BaseProxy::call`].
///
/// # Panics
/// If serde cannot encode the value (a map with non-string keys is fine
/// in postcard; a type whose `Serialize` fails is not).
#[track_caller]
pub fn arg<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("a proxy argument serde can encode")
}

/// A typed proxy: what [`BaseManager::create`](super::BaseManager::create)
/// gives for a registered type. [`expose!`](crate::expose) implements it.
pub trait Proxy: Sized {
    /// Wraps the untyped proxy.
    fn from_base(base: BaseProxy) -> Self;
    /// The untyped proxy.
    fn base(&self) -> &BaseProxy;
}
