//! Python's `multiprocessing`: worker processes that run plain Rust `fn`s
//! on serde data, and authenticated connections between processes.
//!
//! | Python | conex |
//! |---|---|
//! | `if __name__ == "__main__":` guard, `freeze_support()` | [`init`], first thing in `main` |
//! | `Process(target, args, name, daemon)` | [`Process`], [`Process::builder`] |
//! | `set_start_method`, `get_start_method`, `get_all_start_methods`, `get_context` | same names, [`StartMethod`], [`Context`] |
//! | `current_process`, `parent_process`, `active_children`, `cpu_count` | same names ([`current_authkey`] for `authkey`) |
//! | `Pipe(duplex)`, `Connection` | [`pipe`], [`Connection`] (async, and [`Connection::blocking`]) |
//! | `connection.Listener`, `Client`, `wait`, `AuthenticationError` | [`Listener`], [`Client`], [`wait`], [`AuthenticationError`] |
//! | `shared_memory.SharedMemory(name, create, size, track)` | [`SharedMemory::create`], [`SharedMemory::attach`], [`SharedMemory::create_untracked`] |
//! | `shared_memory.ShareableList`, `managers.SharedMemoryManager` | [`ShareableList`], [`SharedMemoryManager`] |
//! | `resource_tracker` | a tracker process unlinks tracked blocks a dead creator left |
//! | `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Event`, `Condition`, `Barrier` | [`Lock`], [`RLock`], [`Semaphore`], [`BoundedSemaphore`], [`Event`], [`Condition`], [`Barrier`] |
//! | `Value`, `Array`, `RawValue`, `RawArray` | [`Value`], [`Array`], [`RawValue`], [`RawArray`] |
//! | `Queue`, `JoinableQueue`, `SimpleQueue` | [`Queue`], [`JoinableQueue`], [`SimpleQueue`] |
//! | `Pool`, `pool.AsyncResult`, `pool.ThreadPool` / `dummy.Pool` | [`Pool`], [`AsyncResult`], [`IMap`], [`dummy::Pool`] |
//! | `concurrent.futures.ProcessPoolExecutor` | [`ProcessPoolExecutor`] (also in [`crate::futures`]) |
//! | `Manager()`, `managers` (`BaseManager`, `SyncManager`, proxies, `register`) | [`manager`], [`managers`] |
//!
//! ## How a child runs your `fn`
//!
//! A child is this same binary, started again (`spawn`), forked by a small
//! fork server (`forkserver`), or forked from this process while it is
//! single-threaded (`fork`). Its `main` calls [`init`] first thing, which
//! diverts it into the worker loop: it proves over its control socket
//! that it is the same build (a different binary is refused before any
//! code address is sent), receives the call (the `fn` as an offset in the
//! executable, the arguments as postcard bytes with any OS handles passed
//! alongside), runs it, and sends back the result or the panic with its
//! backtrace. A child never outlives its parent: it watches its control
//! socket and ends when the parent's end closes, killed or not.
//!
//! ## The wire
//!
//! Every [`Connection`] message is a frame: an 8-byte header (length,
//! number of OS handles) then postcard bytes. A frame above the
//! connection's limit ([`DEFAULT_MAX_FRAME`] unless set) is refused before
//! anything is allocated; malformed or truncated input fails that
//! connection only, with a typed [`ConnectionError`].
//!
//! Unix only.

mod auth;
#[cfg(unix)]
mod callable;
#[cfg(unix)]
mod connection;
#[cfg(windows)]
#[path = "connection_win.rs"]
mod connection;
#[cfg(unix)]
mod context;
mod entry;
mod errors;
#[cfg(unix)]
mod forkserver;
#[cfg(unix)]
mod handles;
#[cfg(unix)]
mod launch;
#[cfg(unix)]
mod listener;
#[cfg(windows)]
#[path = "listener_win.rs"]
mod listener;
#[cfg(all(unix, feature = "tracing"))]
mod log;
#[cfg(unix)]
pub mod managers;
#[cfg(unix)]
mod pool;
#[cfg(unix)]
mod process;
#[cfg(unix)]
mod queues;
#[cfg(unix)]
mod shareable_list;
#[cfg(unix)]
mod shared_memory;
#[cfg(unix)]
mod sharedctypes;
#[cfg(unix)]
mod started;
#[cfg(unix)]
mod synchronize;
#[cfg(unix)]
mod tracker;
#[cfg(unix)]
mod wire;
#[cfg(unix)]
mod worker;

pub use auth::{answer_challenge, deliver_challenge};
#[cfg(unix)]
pub use callable::StarFn;
#[cfg(windows)]
pub use connection::{BlockingConnection, Connection, DEFAULT_MAX_FRAME};
#[cfg(unix)]
pub use connection::{BlockingConnection, Connection, pipe};
#[cfg(unix)]
pub use context::{
    AlreadySet, Context, ProcessInfo, StartMethod, cpu_count, current_authkey, current_process,
    get_all_start_methods, get_context, get_executable, get_start_method, get_start_method_if_set,
    parent_process, set_executable, set_start_method,
};
pub use entry::init;
pub use errors::{AuthenticationError, ConnectionError, ProcessError, RemoteError, StartError};
#[cfg(unix)]
pub use handles::Handle;
#[cfg(unix)]
pub use listener::{
    Address, BlockingListener, Client, DEFAULT_BACKLOG, Listener, MAX_HANDSHAKES, ReadableFd,
    Waitable, wait, wait_blocking,
};
#[cfg(windows)]
pub use listener::{Address, Client, Listener};
#[cfg(all(unix, feature = "tracing"))]
pub use log::{Level, Logger, get_logger, log_to_stderr};
#[cfg(unix)]
pub use managers::{SyncManager, manager};
#[cfg(unix)]
pub use pool::{
    AsyncResult, Backend, IMap, IMapStream, OnDeath, PoolBuilder, PoolOf, ProcessPoolBuilder,
    ProcessPoolExecutor, Processes, Runs, StillRunning, Threads,
};

/// A pool of worker processes running plain `fn`s on serde arguments.
///
/// Python: `multiprocessing.Pool(processes, initializer, initargs,
/// maxtasksperchild, context)`. Every worker starts at once (this binary
/// again: `main` must call [`init`] first thing).
///
/// | Python | here |
/// |---|---|
/// | `apply`, `apply_async` | [`apply`](PoolOf::apply), [`apply_async`](PoolOf::apply_async) → [`AsyncResult`] |
/// | `map`, `map_async`, `starmap`, `starmap_async` (`chunksize`) | same names; `chunksize: Option<NonZeroUsize>`, `None` is Python's default (`NonZeroUsize::new(n)` writes a size) |
/// | `imap`, `imap_unordered` | same names → [`IMap`] (an `Iterator`, `next_async`, and `into_stream()` for a `Stream`) |
/// | `AsyncResult.get(timeout)`, `wait`, `ready`, `successful`, `callback`, `error_callback` | [`AsyncResult`] |
/// | `close`, `terminate`, `join`, `with Pool() as p:` | same names; dropping the pool terminates it, as the `with` block does |
///
/// A worker that dies mid-call fails only the calls it held (with an error
/// naming it and the signal) and is replaced; [`OnDeath::Break`] gives
/// Python's broken pool instead.
///
/// ```no_run
/// use conex::multiprocessing::Pool;
///
/// fn square(x: u64) -> u64 { x * x }
/// fn add(a: u64, b: u64) -> u64 { a + b }
///
/// fn main() {
///     conex::multiprocessing::init(); // first thing: workers divert here
///     let pool = Pool::new(Some(2)).unwrap();
///     assert_eq!(pool.apply(square, 7).unwrap(), 49);
///     assert_eq!(pool.map(square, 0..10, None).unwrap(), vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
///     let sums = pool.starmap(add as fn(u64, u64) -> u64, [(1, 2), (3, 4)], None).unwrap();
///     assert_eq!(sums, vec![3, 7]);
///     let mut unordered: Vec<u64> = pool.imap_unordered(square, 0..4, None).unwrap().map(Result::unwrap).collect();
///     unordered.sort();
///     assert_eq!(unordered, vec![0, 1, 4, 9]);
///     pool.close();
///     pool.join().unwrap();
/// }
/// ```
#[cfg(unix)]
pub type Pool = PoolOf<Processes>;

/// Python's `multiprocessing.dummy`: the [`Pool`] API on threads of this
/// process, so code switches between processes and threads by changing one
/// import.
///
/// The same methods and semantics, minus what threads cannot do: a
/// running call cannot be killed (`terminate` cancels the queued work and
/// lets running calls finish), `maxtasksperchild` and `context` are
/// ignored. Arguments and results need only be `Send` (no serde); no
/// `init` is needed.
///
/// ```
/// use conex::multiprocessing::dummy::Pool;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = Pool::new(Some(4)).unwrap();
/// assert_eq!(pool.map(square, 0..5, None).unwrap(), vec![0, 1, 4, 9, 16]);
/// let r = pool.apply_async(square, 9).unwrap();
/// assert_eq!(r.get().unwrap(), 81);
/// assert_eq!(r.successful(), Some(true));
/// ```
#[cfg(unix)]
pub mod dummy {
    /// [`Pool`](super::Pool) on threads. Python: `multiprocessing.dummy.Pool`
    /// (and `multiprocessing.pool.ThreadPool`).
    pub type Pool = super::PoolOf<super::Threads>;
}
#[cfg(unix)]
pub use process::{
    BlockingProcess, BlockingProcessHandle, Process, ProcessBuilder, ProcessHandle, Sentinel,
    active_children,
};
#[cfg(unix)]
pub use queues::{
    BlockingQueue, DEFAULT_CAPACITY, GetError, JoinableQueue, PutError, Queue, SimpleQueue,
};
#[cfg(unix)]
pub use shareable_list::{Item, ListError, ShareableList, SharedMemoryManager};
#[cfg(unix)]
pub use shared_memory::{SharedMemory, ShmError};
#[cfg(unix)]
pub use sharedctypes::{Array, Element, IndexError, RawArray, RawValue, Value};
#[cfg(unix)]
pub use synchronize::{
    Barrier, BlockingBarrier, BlockingCondition, BlockingEvent, BlockingLock, BlockingRLock,
    BlockingSemaphore, BoundedSemaphore, Condition, Event, Lock, LockGuard, RLock, RLockGuard,
    Semaphore,
};
#[cfg(unix)]
pub use wire::DEFAULT_MAX_FRAME;
