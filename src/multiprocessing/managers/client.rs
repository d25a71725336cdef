//! The client side: one connection per process and server, shared by all
//! the process's tasks and threads (requests tagged, replies matched), and
//! the proxy every typed proxy wraps.
//!
//! Who reads the replies: a blocking caller reads for everyone while it is
//! its turn (it is polled to its end: one wake-up per round trip, as a
//! plain pipe); async callers only wait, and a reader task (on the
//! caller's runtime) reads while any call waits. An async caller never
//! reads itself: a future polled once and then kept unpolled (a `select!`
//! branch) would hold the turn and stall every other call of the process
//! (tried, and seen to hang). No thread per link, none per call.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Poll, Waker};

use futures::future::{Either, select};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::connection::Connection;
use super::super::errors::ConnectionError;
use super::super::listener::{Address, Client};
use super::protocol::{CANCELLED, Frame, ManagerError, Reply, Request};

// ------------------------------------------------------------ the owner

thread_local! {
    /// Set while a blocking facade runs a call on this thread: the thread,
    /// not the task it may be inside, owns what the call takes.
    static AS_THREAD: Cell<bool> = const { Cell::new(false) };
    /// This thread's owner id (0: not yet given).
    static THREAD_OWNER: Cell<u64> = const { Cell::new(0) };
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

/// Thread owners have the top bit set; task owners are tokio task ids.
const THREAD_BIT: u64 = 1 << 63;

fn thread_owner() -> u64 {
    THREAD_OWNER.with(|t| {
        if t.get() == 0 {
            t.set(THREAD_BIT | NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

/// Who is calling: the tokio task polling this call, or the OS thread (a
/// blocking facade, or a future polled outside any task). What a proxy's
/// `Lock` or `RLock` belongs to, as Python's belong to a thread.
fn owner() -> u64 {
    if AS_THREAD.with(Cell::get) {
        return thread_owner();
    }
    match tokio::task::try_id() {
        // A task id prints as its number.
        Some(id) => id.to_string().parse::<u64>().unwrap_or(1) & !THREAD_BIT,
        None => thread_owner(),
    }
}

/// Runs a proxy call to the end on this thread, the thread its owner.
/// What every blocking facade method is.
#[track_caller]
pub(crate) fn block<F: Future>(f: F) -> F::Output {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            AS_THREAD.with(|a| a.set(self.0));
        }
    }
    let _reset = Reset(AS_THREAD.with(|a| a.replace(true)));
    crate::io::driver::block_on_io(f)
}

// ------------------------------------------------------------- the link

/// What a call does if its caller is gone when its result comes: give
/// back what the result took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Undo {
    /// Nothing to give back.
    None,
    /// An acquire that returned `true`: release it (for the same owner).
    Release,
    /// A queue get: put the item back (at the tail).
    PutBack,
}

#[derive(Default)]
struct Slot {
    reply: Option<Result<Reply, ManagerError>>,
    waker: Option<Waker>,
}

#[derive(Default)]
struct Slots {
    map: HashMap<u64, Slot>,
    /// Why the connection broke, once it has: every call fails with it.
    broken: Option<String>,
}

/// One process's connection to one server.
struct Link {
    conn: Connection,
    next: AtomicU64,
    slots: Mutex<Slots>,
    /// The reader's turn: a blocking caller or the reader task.
    turn: crate::wait::mutex::Mutex<()>,
    /// Whether a reader task runs.
    reading: AtomicBool,
}

fn broken_error(why: &str) -> ManagerError {
    ManagerError::Connection(ConnectionError::Protocol(format!(
        "the connection to the manager broke: {why}"
    )))
}

impl Link {
    /// Opens a slot for a new request.
    fn open(&self) -> Result<u64, ManagerError> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let mut s = self.slots.lock();
        if let Some(why) = &s.broken {
            return Err(broken_error(why));
        }
        s.map.insert(seq, Slot::default());
        Ok(seq)
    }

    fn deliver(&self, seq: u64, reply: Reply) {
        let waker = {
            let mut s = self.slots.lock();
            // A reply nobody waits for (a duplicate answer to a cancel) is
            // dropped.
            let Some(slot) = s.map.get_mut(&seq) else {
                return;
            };
            if slot.reply.is_some() {
                return;
            }
            slot.reply = Some(Ok(reply));
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The connection broke: every waiting call fails, and so will every
    /// later one on this link (the next call makes a new one).
    fn break_all(&self, why: String) {
        let wakers: Vec<Waker> = {
            let mut s = self.slots.lock();
            for slot in s.map.values_mut() {
                if slot.reply.is_none() {
                    slot.reply = Some(Err(broken_error(&why)));
                }
            }
            s.broken = Some(why);
            s.map.values_mut().filter_map(|s| s.waker.take()).collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Takes the reply of `seq` if it came (and closes its slot), or
    /// registers `waker` for it.
    fn take(&self, seq: u64, waker: Option<&Waker>) -> Option<Result<Reply, ManagerError>> {
        let mut s = self.slots.lock();
        let slot = s.map.get_mut(&seq)?;
        if slot.reply.is_some() {
            return s.map.remove(&seq).and_then(|slot| slot.reply);
        }
        if let Some(w) = waker {
            slot.waker = Some(w.clone());
        }
        None
    }

    /// Whether a call still waits for its reply.
    fn pending(&self) -> bool {
        self.slots.lock().map.values().any(|s| s.reply.is_none())
    }

    /// Reads one reply and hands it to its caller (or breaks the link).
    async fn read_one(&self) {
        match self.conn.recv::<(u64, Reply)>().await {
            Ok((s, reply)) => self.deliver(s, reply),
            Err(e) => self.break_all(e.to_string()),
        }
    }

    /// Waits for the reply of `seq`.
    ///
    /// A blocking caller reads the connection itself when it is its turn
    /// (it is polled to its end, so it cannot keep the turn unpolled); an
    /// async caller only waits, and makes sure a reader task runs: a future
    /// polled once and then kept unpolled (a `select!` branch) must not
    /// hold the turn and stall the process's other calls.
    ///
    /// Cancel safety: the slot stays open, its reply kept for whoever
    /// waits for it next (the cleanup of a dropped call).
    async fn wait(self: &Arc<Self>, seq: u64) -> Result<Reply, ManagerError> {
        if let Some(r) = self.take(seq, None) {
            return r;
        }
        let filled = || {
            std::future::poll_fn(move |cx| match self.take(seq, Some(cx.waker())) {
                Some(r) => Poll::Ready(r),
                None => Poll::Pending,
            })
        };
        if !AS_THREAD.with(Cell::get) {
            self.ensure_reader();
            return filled().await;
        }
        let turn = self.turn.lock();
        match select(std::pin::pin!(filled()), std::pin::pin!(turn)).await {
            Either::Left((r, _)) => r,
            Either::Right((_turn, _)) => loop {
                if let Some(r) = self.take(seq, None) {
                    return r;
                }
                self.read_one().await;
            },
        }
    }

    /// Starts the reader task unless one runs.
    fn ensure_reader(self: &Arc<Self>) {
        if !self.reading.swap(true, Ordering::SeqCst) {
            let link = self.clone();
            crate::runtime::handle().spawn(link.read_for_tasks());
        }
    }

    /// The reader task: reads replies while any call waits for one, then
    /// ends (the next async call starts another).
    async fn read_for_tasks(self: Arc<Self>) {
        /// A reader dropped with its runtime lets the next call start one.
        struct Stop<'a>(&'a Link, bool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.reading.store(false, Ordering::SeqCst);
                }
            }
        }
        let mut stop = Stop(&self, false);
        loop {
            {
                let _turn = self.turn.lock().await;
                while self.pending() {
                    self.read_one().await;
                }
            }
            self.reading.store(false, Ordering::SeqCst);
            // A call that came while this reader was leaving saw it still
            // running: read on for it, unless another reader took over.
            if !self.pending() || self.reading.swap(true, Ordering::SeqCst) {
                stop.1 = true;
                return;
            }
        }
    }
}

/// Connections by server address and key, for this process.
type Links = HashMap<(Address, Vec<u8>), Arc<Link>>;

/// This process's links (and the pid they belong to: a forked child must
/// not share its parent's sockets).
static LINKS: Mutex<(u32, Option<Links>)> = Mutex::new((0, None));

/// One connect at a time per process, so a thousand first calls at once
/// make one connection.
static CONNECTING: std::sync::LazyLock<crate::wait::mutex::Mutex<()>> =
    std::sync::LazyLock::new(|| crate::wait::mutex::Mutex::new(()));

fn cached(key: &(Address, Vec<u8>)) -> Option<Arc<Link>> {
    let mut l = LINKS.lock();
    let pid = crate::sys::pid();
    if l.0 != pid {
        *l = (pid, Some(HashMap::new()));
    }
    let links = l.1.get_or_insert_with(HashMap::new);
    match links.get(key) {
        Some(link) if link.slots.lock().broken.is_none() => Some(link.clone()),
        Some(_) => {
            links.remove(key);
            None
        }
        None => None,
    }
}

/// This process's connection to a server, made (and greeted) on first use.
async fn link(address: &Address, authkey: &[u8]) -> Result<Arc<Link>, ManagerError> {
    let key = (address.clone(), authkey.to_vec());
    if let Some(l) = cached(&key) {
        return Ok(l);
    }
    let _one = CONNECTING.lock().await;
    if let Some(l) = cached(&key) {
        return Ok(l);
    }
    let conn = Client::connect(address.clone(), Some(authkey)).await?;
    conn.send(&Frame {
        seq: 0,
        owner: 0,
        req: super::protocol::hello(),
    })
    .await?;
    match conn.recv::<(u64, Reply)>().await? {
        (0, Reply::Value(_)) => {}
        _ => {
            return Err(ManagerError::State(
                "the server does not speak this manager protocol",
            ));
        }
    }
    let link = Arc::new(Link {
        conn,
        next: AtomicU64::new(1),
        slots: Mutex::new(Slots::default()),
        turn: crate::wait::mutex::Mutex::new(()),
        reading: AtomicBool::new(false),
    });

    LINKS
        .lock()
        .1
        .get_or_insert_with(HashMap::new)
        .insert(key, link.clone());
    Ok(link)
}

/// A request in flight; if its caller drops it before the reply, a task
/// cancels it in the server and gives back what its result took.
struct InFlight {
    link: Arc<Link>,
    seq: u64,
    owner: u64,
    token: Option<Token>,
    undo: Undo,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (link, seq, owner, undo) = (self.link.clone(), self.seq, self.owner, self.undo);
        let token = self.token.take();
        crate::runtime::handle().spawn(async move {
            let cancel = Frame {
                seq: link.next.fetch_add(1, Ordering::Relaxed),
                owner,
                req: Request::Cancel(seq),
            };
            if link.conn.send(&cancel).await.is_err() {
                link.break_all("a send failed".into());
            }
            let reply = link.wait(seq).await;
            let (Some(token), Ok(Reply::Value(v))) = (token, reply) else {
                return;
            };
            let back = match undo {
                Undo::None => return,
                Undo::Release if postcard::from_bytes::<bool>(&v) == Ok(true) => Request::Call {
                    id: token.id,
                    method: "release".into(),
                    args: vec![],
                },
                Undo::Release => return,
                Undo::PutBack => Request::Call {
                    id: token.id,
                    method: "put".into(),
                    args: vec![v, arg(&false), arg(&None::<std::time::Duration>)],
                },
            };
            let _ = request_as(
                &token.address,
                &token.authkey,
                owner,
                back,
                None,
                Undo::None,
            )
            .await;
        });
    }
}

/// Sends `req` to the server on this process's connection and waits for
/// its reply. A broken connection fails every call waiting on it; the next
/// call connects again (or fails if the server is gone).
async fn request_as(
    address: &Address,
    authkey: &[u8],
    owner: u64,
    req: Request,
    token: Option<&Token>,
    undo: Undo,
) -> Result<Reply, ManagerError> {
    let link = link(address, authkey).await?;
    let seq = link.open()?;
    let mut flight = InFlight {
        link: link.clone(),
        seq,
        owner,
        token: token.cloned(),
        undo,
        done: false,
    };
    if let Err(e) = link.conn.send(&Frame { seq, owner, req }).await {
        link.break_all(e.to_string());
        flight.done = true;
        let _ = link.take(seq, None);
        return Err(ManagerError::Connection(e));
    }
    let r = link.wait(seq).await;
    flight.done = true;
    r
}

/// [`request_as`] for the calling task or thread.
pub(crate) async fn request(
    address: &Address,
    authkey: &[u8],
    req: Request,
) -> Result<Reply, ManagerError> {
    request_as(address, authkey, owner(), req, None, Undo::None).await
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
/// server. Calls are async; [`blocking`](BaseProxy::blocking) (and every
/// typed proxy's) gives the same calls for plain threads. All the tasks
/// and threads of a process share one connection to a server, their
/// calls in flight side by side, so a thousand tasks calling at once need
/// no thread each. A lock or an `RLock` taken through a proxy is owned by
/// the tokio task that took it (or the thread, through the blocking
/// facade), as Python's by a thread.
///
/// It is serde data: send it to another process (by pipe, queue or as an
/// argument) and it reaches the same object. It carries its manager's auth
/// key, as Python's proxies do when passed to a child, so send it only
/// over channels you trust.
///
/// # Cancel safety
/// A call dropped before its reply is cancelled in the server (a wait
/// there stops); if it had already taken something, that is given back: an
/// acquired lock or semaphore is released, an item taken from a queue is
/// put back (at its tail). A dropped `Condition` wait leaves its owner
/// holding the lock, as before the wait (asyncio's `Condition.wait` does
/// the same). The rest of a dropped call (a `set`, a `put`) may or may not
/// have happened, as with any message already sent.
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

    /// The calls, each waiting on the calling thread (the thread owns what
    /// they take).
    pub fn blocking(&self) -> Blocking<'_, BaseProxy> {
        Blocking(self)
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
    ///
    /// # Cancel safety
    /// Dropped before its reply, the call is cancelled in the server
    /// (see [`BaseProxy`]).
    pub async fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        args: Vec<Vec<u8>>,
    ) -> Result<R, ManagerError> {
        self.call_undo(method, args, Undo::None).await
    }

    /// As [`call`](BaseProxy::call), with what to give back if the caller
    /// is gone when the result comes.
    pub(crate) async fn call_undo<R: DeserializeOwned>(
        &self,
        method: &str,
        args: Vec<Vec<u8>>,
        undo: Undo,
    ) -> Result<R, ManagerError> {
        let bytes = self.raw(method, args, undo).await?;
        postcard::from_bytes(&bytes).map_err(|e| ManagerError::Codec(e.to_string()))
    }

    /// As [`call`](BaseProxy::call), the result left encoded.
    ///
    /// # Errors
    /// As [`call`](BaseProxy::call).
    pub async fn call_raw(
        &self,
        method: &str,
        args: Vec<Vec<u8>>,
    ) -> Result<Vec<u8>, ManagerError> {
        self.raw(method, args, Undo::None).await
    }

    pub(crate) async fn raw(
        &self,
        method: &str,
        args: Vec<Vec<u8>>,
        undo: Undo,
    ) -> Result<Vec<u8>, ManagerError> {
        let req = Request::Call {
            id: self.token.id,
            method: method.to_owned(),
            args,
        };
        let t = &self.token;
        match request_as(&t.address, &t.authkey, owner(), req, Some(t), undo).await? {
            Reply::Value(v) => Ok(v),
            Reply::Error(e) if e.type_name == CANCELLED => {
                Err(ManagerError::State("the call was cancelled in the server"))
            }
            Reply::Error(e) => Err(ManagerError::Remote(e)),
            Reply::Created(_) => Err(ManagerError::State("unexpected reply")),
        }
    }
}

/// The blocking face of a proxy: the same methods, each waiting on the
/// calling thread, which owns what they take (a lock, an `RLock` level).
/// What `blocking()` of every proxy gives.
///
/// Called on a runtime's worker thread it panics, as every blocking facade
/// of conex does (it would stall the tasks of that worker): use the async
/// methods there.
pub struct Blocking<'a, P>(pub(crate) &'a P);

impl<P: fmt::Debug> fmt::Debug for Blocking<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Blocking").field(self.0).finish()
    }
}

impl Blocking<'_, BaseProxy> {
    /// [`BaseProxy::call`], blocking.
    ///
    /// # Errors
    /// As [`BaseProxy::call`].
    #[track_caller]
    pub fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        args: Vec<Vec<u8>>,
    ) -> Result<R, ManagerError> {
        block(self.0.call(method, args))
    }

    /// [`BaseProxy::call_raw`], blocking.
    ///
    /// # Errors
    /// As [`BaseProxy::call`].
    #[track_caller]
    pub fn call_raw(&self, method: &str, args: Vec<Vec<u8>>) -> Result<Vec<u8>, ManagerError> {
        block(self.0.call_raw(method, args))
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
