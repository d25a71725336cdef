//! Python's `queue` module (and asyncio's queues): FIFO, LIFO and priority
//! queues with task tracking and shutdown, and the simple queue. One queue
//! serves tasks (`.await`), OS threads (`.blocking()`) and both at once.
//!
//! | Python | conex |
//! |---|---|
//! | `queue.Queue(maxsize)`, `asyncio.Queue` | [`Queue::new`] |
//! | `queue.LifoQueue`, `asyncio.LifoQueue` | [`LifoQueue`] |
//! | `queue.PriorityQueue`, `asyncio.PriorityQueue` | [`PriorityQueue`] (stable for equal items) |
//! | `queue.SimpleQueue` | [`SimpleQueue`] |
//! | `put`, `put_nowait`, `put(timeout=)` | [`put`](BaseQueue::put), [`put_nowait`](BaseQueue::put_nowait), [`put_timeout`](BaseQueue::put_timeout) |
//! | `get`, `get_nowait`, `get(timeout=)` | [`get`](BaseQueue::get), [`get_nowait`](BaseQueue::get_nowait), [`get_timeout`](BaseQueue::get_timeout) |
//! | `task_done`, `join` | [`task_done`](BaseQueue::task_done), [`join`](BaseQueue::join) |
//! | `shutdown(immediate)` (3.13) | [`shutdown`](BaseQueue::shutdown) |
//! | `qsize`, `empty`, `full`, `maxsize` | same names |
//! | `queue.Empty`, `queue.Full`, `queue.ShutDown`; asyncio's `QueueEmpty`, `QueueFull`, `QueueShutDown` | [`GetError::Empty`], [`PutError::Full`], [`GetError::ShutDown`] / [`PutError::ShutDown`] |
//!
//! A value that could not be put comes back inside the error. Dropping a
//! `get` never loses an item; dropping a `put` never inserts one.
//!
//! # How to choose
//! [`Queue`] for work distribution (with [`task_done`](BaseQueue::task_done)
//! and [`join`](BaseQueue::join) to know when it is all done, and
//! [`shutdown`](BaseQueue::shutdown) to stop the workers);
//! [`PriorityQueue`] when some items go first; [`SimpleQueue`] when a plain
//! unbounded channel is all that is needed.

mod core;
mod errors;
mod kinds;
mod simple;
mod stream;

pub use core::{Fifo, Lifo, Order, Priority};
pub use errors::{GetError, PutError, TaskDoneError};
pub use kinds::{BaseQueue, BlockingQueue, LifoQueue, PriorityQueue, Queue, Waiting};
pub use simple::{BlockingSimpleQueue, SimpleQueue};
pub use stream::{GetStream, PutSink};
pub(crate) use stream::{GetStream as Gets, PutSink as Puts};
