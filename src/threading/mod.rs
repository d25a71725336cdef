//! Python's `threading` module (and asyncio's synchronization primitives):
//! threads and the primitives they synchronise with, async first, every one
//! with a blocking facade.
//!
//! | Python | conex | blocking facade |
//! |---|---|---|
//! | `Thread(target=f).start()`, `join()` | [`Thread::spawn`] (a tokio task), [`Thread::spawn_blocking`] (an OS thread), [`Thread::join`] | [`Thread::blocking`] |
//! | `Lock`, `asyncio.Lock`, `with lock:` | [`Lock`], [`Lock::lock`] (guard) | [`Lock::blocking`] |
//! | `RLock` | [`RLock`] (owned by a task or a thread) | [`RLock::blocking`] |
//! | `Condition`, `asyncio.Condition` | [`Condition`] (over [`RLock`] or [`Lock`]) | [`Condition::blocking`] |
//! | `Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`] | [`Semaphore::blocking`] |
//! | `Event`, `asyncio.Event` | [`Event`] | [`Event::blocking`] |
//! | `Timer` | [`Timer`] | via [`Thread::blocking`] |
//! | `Barrier`, `asyncio.Barrier` | [`Barrier`] | [`Barrier::blocking`] |
//! | `local` | [`Local`] | (not needed) |
//! | `current_thread`, `main_thread`, `enumerate`, `active_count`, `get_ident`, `get_native_id` | same names | |
//! | `excepthook`, `settrace`, `setprofile`, `stack_size`, `TIMEOUT_MAX` | [`set_excepthook`], [`settrace`], [`setprofile`], [`set_stack_size`], [`TIMEOUT_MAX`] | |
//! | the interpreter waiting for non-daemon threads at exit | [`join_non_daemon`] | [`join_non_daemon_blocking`] |
//!
//! # How to choose
//! - Work that awaits: [`Thread::spawn`] (a task: cheap, a million are
//!   fine). Work that blocks (CPU loops, blocking I/O): [`Thread::spawn_blocking`].
//! - Mutual exclusion: [`Lock`]; the same task re-entering: [`RLock`].
//!   Waiting for a state change under a lock: [`Condition`]. Limiting
//!   concurrency: [`Semaphore`]. A one-shot or re-armable signal: [`Event`].
//!   Phases of a fixed group: [`Barrier`].
//!
//! # Conventions
//! - Handles: every primitive is a cheap `Clone` (clones are the same
//!   object), `Send + Sync + Debug`; their futures are `Send`.
//! - Python's `blocking=False` is `try_*`; `timeout=` is a `*_timeout`
//!   twin returning what Python returns (`bool` for acquires and waits).
//!   Async timeouts run on tokio's clock (`tokio::time::pause` drives them in
//!   tests), blocking ones on the std clock.
//! - `with x:` is a guard: [`Lock::lock`], [`RLock::lock`],
//!   [`Semaphore::permit`], [`Condition::lock`].
//! - `.blocking()` is the same object for OS threads. It needs no runtime;
//!   on a multi-thread runtime worker it waits through
//!   `tokio::task::block_in_place`; on the thread driving a current-thread
//!   runtime it panics with the fix rather than deadlock.
//! - Cancellation: dropping a future loses nothing (each async method says
//!   so in `# Cancel safety`); [`Condition::wait`] takes the guard so a
//!   dropped wait cannot leave anyone believing it holds the lock.

mod barrier;
mod condition;
mod current;
mod errors;
mod event;
mod hooks;
mod join_handle;
mod local;
mod lock;
mod rlock;
mod run;
mod semaphore;
mod thread;
mod timer;

pub use barrier::{Barrier, BarrierBuilder, BlockingBarrier};
pub use condition::{BlockingCondition, Condition, ConditionLock};
#[cfg_attr(
    not(any(feature = "sched", feature = "tasks", feature = "futures")),
    allow(unused_imports)
)]
pub(crate) use current::runtime_handle;
pub use current::{
    TIMEOUT_MAX, active_count, current_thread, enumerate, get_ident, get_native_id,
    join_non_daemon, join_non_daemon_blocking, main_thread, set_stack_size, stack_size,
};
pub use errors::{
    AlreadyStarted, BrokenBarrier, JoinError, NotOwned, ReleaseError, StackSizeError, StartError,
};
pub use event::{BlockingEvent, Event};
pub use hooks::{
    ExceptHookArgs, StartHook, default_excepthook, excepthook, getprofile, gettrace,
    reset_excepthook, set_excepthook, setprofile, settrace,
};
pub use join_handle::{BlockingJoinHandle, JoinHandle};
pub use local::Local;
pub use lock::{BlockingLock, Lock, LockGuard};
pub use rlock::{BlockingRLock, RLock, RLockGuard};
pub use semaphore::{BlockingSemaphore, BoundedSemaphore, Semaphore, SemaphorePermit};
pub use thread::{BlockingThread, Thread, ThreadBuilder};
pub use timer::Timer;
