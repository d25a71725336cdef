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
mod callable;
mod connection;
mod context;
mod errors;
mod forkserver;
mod handles;
mod launch;
mod listener;
mod process;
mod queues;
mod shareable_list;
mod shared_memory;
mod sharedctypes;
mod synchronize;
mod tracker;
mod wire;
mod worker;

pub use connection::{BlockingConnection, Connection, pipe};
pub use context::{
    AlreadySet, Context, ProcessInfo, StartMethod, cpu_count, current_authkey, current_process,
    get_all_start_methods, get_context, get_start_method, get_start_method_if_set, init,
    parent_process, set_start_method,
};
pub use errors::{AuthenticationError, ConnectionError, ProcessError, RemoteError, StartError};
pub use handles::Handle;
pub use listener::{Address, BlockingListener, Client, Listener, Waitable, wait, wait_blocking};
pub use process::{
    BlockingProcess, BlockingProcessHandle, Process, ProcessBuilder, ProcessHandle, Sentinel,
    active_children,
};
pub use queues::{
    BlockingQueue, DEFAULT_CAPACITY, GetError, JoinableQueue, PutError, Queue, SimpleQueue,
};
pub use shareable_list::{Item, ListError, ShareableList, SharedMemoryManager};
pub use shared_memory::{SharedMemory, ShmError};
pub use sharedctypes::{Array, Element, IndexError, RawArray, RawValue, Value};
pub use synchronize::{
    Barrier, BlockingBarrier, BlockingCondition, BlockingEvent, BlockingLock, BlockingRLock,
    BlockingSemaphore, BoundedSemaphore, Condition, Event, Lock, LockGuard, RLock, RLockGuard,
    Semaphore,
};
pub use wire::DEFAULT_MAX_FRAME;
