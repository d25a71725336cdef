//! asyncio's task tools: tasks, task groups, timeouts, waiting for several
//! tasks, running blocking code on a thread, and entry points for
//! synchronous code.
//!
//! | Python (asyncio) | conex |
//! |---|---|
//! | `create_task(coro)`, `Task` | [`spawn`], [`Task`] (`.await` it; [`Task::cancel`], [`Task::done`]) |
//! | `create_task(coro, name=)`, `Task.get_name` / `set_name` | [`spawn_named`], [`Task::name`], [`Task::set_name`] |
//! | `current_task()`, `all_tasks()` | [`current_task`], [`all_tasks`] → [`TaskInfo`] (name, done, cancel) for the tasks conex started |
//! | eager task factory (3.12) | [`spawn_eager`] |
//! | `TaskGroup` | [`task_group`] + [`TaskGroup::spawn`]; every failure in [`TaskGroupError`] |
//! | `timeout(d)`, `timeout_at(t)`, `Timeout.reschedule` / `when` / `expired`, `wait_for` | [`timeout`], [`timeout_at`], [`TimeoutScope`] |
//! | `shield(aw)` | [`shield`] |
//! | `gather(*aws)`, `gather(..., return_exceptions=True)` | [`gather`], [`gather_settled`] |
//! | `wait(aws, timeout, return_when)` | [`wait`] with [`ReturnWhen`] |
//! | `as_completed(aws, timeout)` | [`as_completed`] (a `Stream`) |
//! | `sleep(d)` | [`sleep`] |
//! | `to_thread(f)` | [`to_thread`] (carries the context) |
//! | `run_coroutine_threadsafe(coro, loop)` | [`futures::run_coroutine_threadsafe`](crate::futures::run_coroutine_threadsafe) (it answers with a `concurrent.futures` future, so it lives beside that future) |
//! | `Runner`, `run(coro)` | [`Runner`], [`run`] |
//!
//! asyncio's synchronization primitives and queues are not written twice:
//! they are the async faces of the threading and queue ones.
//!
//! | asyncio | conex |
//! |---|---|
//! | `asyncio.Lock` | [`threading::Lock`](crate::threading::Lock) |
//! | `asyncio.Event` | [`threading::Event`](crate::threading::Event) |
//! | `asyncio.Condition` | [`threading::Condition`](crate::threading::Condition) (over a `Lock` for asyncio's default) |
//! | `asyncio.Semaphore`, `BoundedSemaphore` | [`threading::Semaphore`](crate::threading::Semaphore), [`threading::BoundedSemaphore`](crate::threading::BoundedSemaphore) |
//! | `asyncio.Barrier` | [`threading::Barrier`](crate::threading::Barrier) |
//! | `asyncio.Queue`, `LifoQueue`, `PriorityQueue` | [`queue::Queue`](crate::queue::Queue), [`queue::LifoQueue`](crate::queue::LifoQueue), [`queue::PriorityQueue`](crate::queue::PriorityQueue) |
//!
//! # Cancellation
//! Python's cancellation is an exception a task can catch; in Rust it is a
//! drop at the next `.await`, which cannot be caught. [`TaskGroup`] cancels
//! by dropping, [`timeout`] by dropping the bounded future, [`shield`] by
//! running the future as its own task, which the awaiting side's drop does
//! not reach. Every task started here runs in a copy of its spawner's
//! context (contextvars), as asyncio's tasks do.

mod group;
mod introspect;
mod runner;
mod task;
mod timeout;
mod waiting;

pub use group::{Failure, GroupClosed, TaskGroup, TaskGroupError, task_group};
pub use introspect::{TaskInfo, all_tasks, current_task, spawn_named};
pub use runner::{RunError, Runner, run};
pub use task::{Task, TaskError, shield, sleep, spawn, spawn_eager, spawn_in, to_thread};
pub use timeout::{Timeout, TimeoutScope, timeout, timeout_at};
pub use waiting::{Outcome, ReturnWhen, as_completed, gather, gather_settled, wait};
