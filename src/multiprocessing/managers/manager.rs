//! `BaseManager`, `SyncManager` and `Manager()`.

use std::fmt;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::callable::{Call, Outcome};
use super::super::connection::{Connection, pipe};
use super::super::context::{Context, StartMethod, current_authkey, get_start_method};
use super::super::listener::Address;
use super::super::process::Process;
use super::builtins::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy, LockProxy,
    NamespaceProxy, PoolProxy, QueueProxy, SemaphoreProxy, ValueProxy,
};
use super::client::{BaseProxy, Proxy, Token, arg, block, request};
use super::protocol::{ManagerError, Reply, Request, enc};
use super::server::{Registry, Server, Shared};

enum State {
    New,
    Started {
        process: Process<()>,
        address: Address,
    },
    Connected {
        address: Address,
    },
    Shut,
}

/// What the server process needs: where to listen, the key, the user
/// types, the initializer, and where to report its address.
#[derive(serde::Serialize, serde::Deserialize)]
struct ServerConfig {
    address: Address,
    authkey: Vec<u8>,
    registry: Registry,
    init: Option<(Call, Vec<u8>)>,
    report: Connection,
}

/// The manager's server process.
fn server_main(cfg: ServerConfig) {
    let report = cfg.report.blocking();
    if let Some((call, args)) = cfg.init {
        // Made by `Call::of` in the parent, which proved at the handshake
        // that this child is the same binary.
        if let Outcome::Panicked(e) = call.run(&args, Vec::new()) {
            let _ = report.send(&Err::<Address, String>(format!(
                "the initializer failed: {e}"
            )));
            return;
        }
    }
    match Server::bind(cfg.address, &cfg.authkey, cfg.registry) {
        Ok(server) => {
            if report
                .send(&Ok::<Address, String>(server.address().clone()))
                .is_ok()
            {
                server.serve_forever();
            }
        }
        Err(e) => {
            let _ = report.send(&Err::<Address, String>(e.to_string()));
        }
    }
}

/// A manager: a server process that owns shared objects, and proxies that
/// reach them from any process, on this machine or another.
///
/// Python: `multiprocessing.managers.BaseManager(address, authkey)`:
/// [`register`](BaseManager::register) user types (see
/// [`expose!`](crate::expose)), then [`start`](BaseManager::start) a server
/// process, [`connect`](BaseManager::connect) to a running one, or
/// [`get_server`](BaseManager::get_server) and serve from this process.
/// [`create`](BaseManager::create) makes an object and gives its proxy.
///
/// The server serves each client connection on its own thread; each
/// client thread has its own connection. A lock held by a client that
/// disconnects (it died) is released by the server. If the server dies,
/// every proxy call fails with [`ManagerError::Connection`] (never a hang).
/// Objects live until the server ends: proxies travel as plain data inside
/// messages and other objects the server never reads, so it does not
/// count them (Python counts references and deletes unreferenced objects).
///
/// Dropping a manager that [`start`](BaseManager::start)ed its server
/// shuts it down (Python's `with manager:`).
pub struct BaseManager {
    address: Option<Address>,
    authkey: Vec<u8>,
    registry: Registry,
    method: Option<StartMethod>,
    state: Mutex<State>,
}

impl fmt::Debug for BaseManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = match &*self.state.lock() {
            State::New => "new",
            State::Started { .. } => "started",
            State::Connected { .. } => "connected",
            State::Shut => "shut down",
        };
        f.debug_struct("BaseManager")
            .field("address", &self.address())
            .field("state", &st)
            .finish()
    }
}

impl BaseManager {
    /// A manager for `address` (default: a fresh Unix socket path) and
    /// `authkey` (default: this process's, [`current_authkey`]).
    ///
    /// Python: `BaseManager(address=None, authkey=None)`.
    pub fn new(address: Option<Address>, authkey: Option<&[u8]>) -> BaseManager {
        BaseManager {
            address,
            authkey: authkey.map_or_else(current_authkey, <[u8]>::to_vec),
            registry: Registry::default(),
            method: None,
            state: Mutex::new(State::New),
        }
    }

    /// How [`start`](BaseManager::start) starts the server (Python's
    /// `ctx`).
    pub fn context(mut self, ctx: Context) -> Self {
        self.method = Some(ctx.start_method());
        self
    }

    /// Lets the server make objects of `T` under `typeid`, from `ctor` and
    /// its argument: register before `start` or `get_server` (the server
    /// takes the table with it); clients that only `connect` need not.
    ///
    /// Python: `BaseManager.register(typeid, callable)`.
    pub fn register<A, T>(&mut self, typeid: &str, ctor: fn(A) -> T)
    where
        A: DeserializeOwned + 'static,
        T: Shared,
    {
        self.registry.register(typeid, ctor);
    }

    fn check_new(&self) -> Result<(), ManagerError> {
        match &*self.state.lock() {
            State::New => Ok(()),
            _ => Err(ManagerError::State(
                "the manager was already started or connected",
            )),
        }
    }

    /// Starts the server in a child process (this binary again: `main`
    /// must call [`init`](super::super::init) first thing).
    ///
    /// Python: `BaseManager.start()`.
    ///
    /// # Errors
    /// [`ManagerError::Start`] if the process cannot start,
    /// [`ManagerError::Remote`] if it could not listen,
    /// [`ManagerError::State`] if already started or connected.
    pub fn start(&self) -> Result<(), ManagerError> {
        self.start_inner(None)
    }

    /// [`start`](BaseManager::start), running `initializer(args)` in the
    /// server process first.
    ///
    /// Python: `BaseManager.start(initializer, initargs)`.
    ///
    /// # Errors
    /// As [`start`](BaseManager::start); a panicking initializer is a
    /// `ManagerError::Remote`.
    pub fn start_with<A>(&self, initializer: fn(A), args: A) -> Result<(), ManagerError>
    where
        A: Serialize + DeserializeOwned + 'static,
    {
        self.start_inner(Some((Call::of(initializer), enc(&args)?)))
    }

    fn start_inner(&self, init: Option<(Call, Vec<u8>)>) -> Result<(), ManagerError> {
        self.check_new()?;
        let (mine, theirs) = pipe(true)?;
        let cfg = ServerConfig {
            address: self.address.clone().unwrap_or_else(Address::unix_temp),
            authkey: self.authkey.clone(),
            registry: self.registry.clone(),
            init,
            report: theirs,
        };
        let process = Process::builder()
            .name("SyncManager")
            .start_method(self.method.unwrap_or_else(get_start_method))
            .build(server_main, cfg);
        process.start().map_err(ManagerError::Start)?;
        let reported = mine.blocking().recv::<Result<Address, String>>();
        let address = match reported {
            Ok(Ok(a)) => a,
            Ok(Err(why)) => {
                let _ = process.blocking().join();
                return Err(ManagerError::Remote(ManagerError::remote("OSError", why)));
            }
            Err(e) => {
                let _ = process.blocking().join();
                return Err(ManagerError::Connection(e));
            }
        };
        *self.state.lock() = State::Started { process, address };
        Ok(())
    }

    /// Connects to a server already running at this manager's address
    /// (started by another process, or on another machine).
    ///
    /// Python: `BaseManager.connect()`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if nothing listens there or the auth
    /// key is refused (`ConnectionError::Authentication`).
    pub fn connect(&self) -> Result<(), ManagerError> {
        self.check_new()?;
        let Some(address) = self.address.clone() else {
            return Err(ManagerError::State("connect needs the server's address"));
        };
        block(request(&address, &self.authkey, super::protocol::hello()))?;
        *self.state.lock() = State::Connected { address };
        Ok(())
    }

    /// A server for this manager's address, in this process: call
    /// [`Server::serve_forever`] to serve (Python's remote-manager recipe:
    /// `manager.get_server().serve_forever()`).
    ///
    /// Python: `BaseManager.get_server()`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the address cannot be bound.
    pub fn get_server(&self) -> Result<Server, ManagerError> {
        self.check_new()?;
        let address = self.address.clone().unwrap_or_else(Address::unix_temp);
        Ok(Server::bind(address, &self.authkey, self.registry.clone())?)
    }

    /// The server's address: the one it listens on once started or
    /// connected (for TCP port 0, the port picked), else the one asked for.
    ///
    /// Python: `BaseManager.address`.
    pub fn address(&self) -> Option<Address> {
        match &*self.state.lock() {
            State::Started { address, .. } | State::Connected { address } => Some(address.clone()),
            _ => self.address.clone(),
        }
    }

    /// The auth key clients must present.
    pub fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    /// The server process, once [`start`](BaseManager::start)ed.
    pub fn process(&self) -> Option<Process<()>> {
        match &*self.state.lock() {
            State::Started { process, .. } => Some(process.clone()),
            _ => None,
        }
    }

    fn live_address(&self) -> Result<Address, ManagerError> {
        match &*self.state.lock() {
            State::Started { address, .. } | State::Connected { address } => Ok(address.clone()),
            _ => Err(ManagerError::State(
                "the manager is not started or connected",
            )),
        }
    }

    /// Makes an object of a registered (or built-in) type in the server
    /// from `args`, and gives its typed proxy.
    ///
    /// Python: calling the method that `register(typeid, ...)` adds.
    ///
    /// # Errors
    /// A remote `KeyError` for an unknown `typeid`, what the constructor
    /// raised, or [`ManagerError::Connection`].
    pub fn create<P: Proxy, A: Serialize>(
        &self,
        typeid: &str,
        args: &A,
    ) -> Result<P, ManagerError> {
        let address = self.live_address()?;
        let req = Request::Create {
            typeid: typeid.to_owned(),
            args: enc(args)?,
        };
        match block(request(&address, &self.authkey, req))? {
            Reply::Created(id) => Ok(P::from_base(BaseProxy::new(Token {
                address,
                authkey: self.authkey.clone(),
                id,
                typeid: typeid.to_owned(),
            }))),
            Reply::Error(e) => Err(ManagerError::Remote(e)),
            Reply::Value(_) => Err(ManagerError::State("unexpected reply")),
        }
    }

    /// Stops the server this manager started and waits for its process.
    /// (A manager that only connected leaves the server running.)
    ///
    /// Python: `BaseManager.shutdown()`.
    ///
    /// # Errors
    /// [`ManagerError::State`] if this manager did not start the server.
    pub fn shutdown(&self) -> Result<(), ManagerError> {
        let st = std::mem::replace(&mut *self.state.lock(), State::Shut);
        match st {
            State::Started { process, address } => {
                let _ = block(request(&address, &self.authkey, Request::Shutdown));
                if process.blocking().join_timeout(Duration::from_secs(5)).ok() != Some(true) {
                    let _ = process.terminate();
                    let _ = process.blocking().join();
                }
                // A server that was killed could not remove its socket.
                if let Address::Unix(path) = &address {
                    let _ = std::fs::remove_file(path);
                }
                Ok(())
            }
            other => {
                *self.state.lock() = other;
                Err(ManagerError::State(
                    "only the manager that started the server shuts it down",
                ))
            }
        }
    }
}

impl Drop for BaseManager {
    fn drop(&mut self) {
        if matches!(&*self.state.lock(), State::Started { .. }) {
            let _ = self.shutdown();
        }
    }
}

/// A manager with Python's shared types: dict, list, Namespace, Value,
/// Array, Queue, JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore,
/// Condition, Event, Barrier, Pool. Everything of [`BaseManager`] too (it
/// derefs to it).
///
/// Python: `multiprocessing.managers.SyncManager`; [`manager`] is
/// `multiprocessing.Manager()`.
///
/// ```no_run
/// use conex::multiprocessing::{Process, manager};
/// use conex::multiprocessing::managers::DictProxy;
///
/// fn worker((d, n): (DictProxy<String, u64>, u64)) {
///     // A plain process function: the blocking facade.
///     d.blocking().set(&format!("worker-{n}"), &(n * n)).unwrap();
/// }
///
/// fn main() {
///     conex::multiprocessing::init(); // first thing: children divert here
///     let m = manager().unwrap();
///     let d = m.dict::<String, u64>().unwrap();
///     let ps: Vec<_> = (0..3).map(|n| Process::new(worker, (d.clone(), n))).collect();
///     ps.iter().for_each(|p| p.start().unwrap());
///     ps.iter().for_each(|p| p.blocking().join().unwrap());
///     // From async code, the proxy's own methods.
///     let rt = tokio::runtime::Runtime::new().unwrap();
///     rt.block_on(async {
///         assert_eq!(d.len().await.unwrap(), 3);
///         assert_eq!(d.get(&"worker-2".to_owned()).await.unwrap(), Some(4));
///     });
/// }
/// ```
#[derive(Debug)]
pub struct SyncManager {
    base: BaseManager,
}

impl std::ops::Deref for SyncManager {
    type Target = BaseManager;
    fn deref(&self) -> &BaseManager {
        &self.base
    }
}

impl std::ops::DerefMut for SyncManager {
    fn deref_mut(&mut self) -> &mut BaseManager {
        &mut self.base
    }
}

/// Starts a [`SyncManager`] (Python's `multiprocessing.Manager()`).
///
/// # Errors
/// As [`BaseManager::start`].
pub fn manager() -> Result<SyncManager, ManagerError> {
    let m = SyncManager::new(None, None);
    m.start()?;
    Ok(m)
}

impl SyncManager {
    /// As [`BaseManager::new`].
    pub fn new(address: Option<Address>, authkey: Option<&[u8]>) -> SyncManager {
        SyncManager {
            base: BaseManager::new(address, authkey),
        }
    }

    /// As [`BaseManager::context`].
    pub fn context(self, ctx: Context) -> Self {
        SyncManager {
            base: self.base.context(ctx),
        }
    }

    /// An empty dict. Python: `manager.dict()`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone (as every
    /// constructor here), `State` if the manager is not running.
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>, ManagerError> {
        self.create("dict", &Vec::<(Vec<u8>, Vec<u8>)>::new())
    }

    /// A dict holding `pairs`. Python: `manager.dict(mapping)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn dict_from<'a, K: Serialize + 'a, V: Serialize + 'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    ) -> Result<DictProxy<K, V>, ManagerError> {
        let items: Vec<(Vec<u8>, Vec<u8>)> =
            pairs.into_iter().map(|(k, v)| (arg(k), arg(v))).collect();
        self.create("dict", &items)
    }

    /// An empty list. Python: `manager.list()`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn list<T>(&self) -> Result<ListProxy<T>, ManagerError> {
        self.create("list", &Vec::<Vec<u8>>::new())
    }

    /// A list holding `items`. Python: `manager.list(sequence)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn list_from<'a, T: Serialize + 'a>(
        &self,
        items: impl IntoIterator<Item = &'a T>,
    ) -> Result<ListProxy<T>, ManagerError> {
        let items: Vec<Vec<u8>> = items.into_iter().map(arg).collect();
        self.create("list", &items)
    }

    /// A namespace. Python: `manager.Namespace()`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn namespace(&self) -> Result<NamespaceProxy, ManagerError> {
        self.create("Namespace", &())
    }

    /// A value. Python: `manager.Value(typecode, value)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn value<T: Serialize>(&self, v: &T) -> Result<ValueProxy<T>, ManagerError> {
        self.create("Value", &arg(v))
    }

    /// An array of `items`. Python: `manager.Array(typecode, sequence)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn array<T: Serialize>(&self, items: &[T]) -> Result<ArrayProxy<T>, ManagerError> {
        let items: Vec<Vec<u8>> = items.iter().map(arg).collect();
        self.create("Array", &items)
    }

    /// A queue (0: unbounded). Python: `manager.Queue(maxsize)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn queue<T>(&self, maxsize: usize) -> Result<QueueProxy<T>, ManagerError> {
        self.create("Queue", &maxsize)
    }

    /// A joinable queue. Python: `manager.JoinableQueue(maxsize)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn joinable_queue<T>(&self, maxsize: usize) -> Result<QueueProxy<T>, ManagerError> {
        self.create("JoinableQueue", &maxsize)
    }

    /// A lock. Python: `manager.Lock()`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn lock(&self) -> Result<LockProxy, ManagerError> {
        self.create("Lock", &())
    }

    /// A reentrant lock. Python: `manager.RLock()`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn rlock(&self) -> Result<LockProxy, ManagerError> {
        self.create("RLock", &())
    }

    /// A semaphore. Python: `manager.Semaphore(value)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn semaphore(&self, value: usize) -> Result<SemaphoreProxy, ManagerError> {
        self.create("Semaphore", &value)
    }

    /// A bounded semaphore. Python: `manager.BoundedSemaphore(value)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn bounded_semaphore(&self, value: usize) -> Result<SemaphoreProxy, ManagerError> {
        self.create("BoundedSemaphore", &value)
    }

    /// A condition over an `RLock`. Python: `manager.Condition()`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn condition(&self) -> Result<ConditionProxy, ManagerError> {
        self.create("Condition", &())
    }

    /// An event. Python: `manager.Event()`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn event(&self) -> Result<EventProxy, ManagerError> {
        self.create("Event", &())
    }

    /// A process pool in the server (`None`: one worker per CPU there).
    /// Python: `manager.Pool(processes)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn pool(&self, processes: Option<usize>) -> Result<PoolProxy, ManagerError> {
        self.create("Pool", &processes)
    }

    /// A barrier. Python: `manager.Barrier(parties, timeout=None)`.
    ///
    /// # Errors
    /// As [`dict`](SyncManager::dict).
    pub fn barrier(
        &self,
        parties: usize,
        timeout: Option<Duration>,
    ) -> Result<BarrierProxy, ManagerError> {
        self.create("Barrier", &(parties, timeout))
    }
}
