//! asyncio's introspection: the running task, the live tasks, their names.
//!
//! Every task conex starts ([`spawn`](super::spawn), [`spawn_named`],
//! [`spawn_in`](super::spawn_in), [`spawn_eager`](super::spawn_eager),
//! [`TaskGroup::spawn`](super::TaskGroup::spawn)) is in a registry from its
//! spawn until it ends (or is dropped); a plain `tokio::spawn` task is not
//! (tokio keeps no names, and conex sees no such spawn).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;

struct Info {
    id: u64,
    /// `None`: the default, `Task-<id>`, written when asked for.
    name: Mutex<Option<String>>,
    done: AtomicBool,
    abort: OnceLock<tokio::task::AbortHandle>,
}

/// A task conex started, as seen from anywhere: its name, whether it is
/// done, and a way to cancel it.
///
/// Python: the `asyncio.Task` that `current_task()` and `all_tasks()`
/// give (`get_name`, `set_name`, `done`, `cancel`).
#[derive(Clone)]
pub struct TaskInfo(Arc<Info>);

impl TaskInfo {
    /// Its name: the one it was given, else `Task-<n>` (`n` counts the
    /// tasks of the process, from 1), as asyncio names them.
    ///
    /// Python: `Task.get_name()`.
    pub fn name(&self) -> String {
        self.0
            .name
            .lock()
            .clone()
            .unwrap_or_else(|| format!("Task-{}", self.0.id))
    }

    /// Renames it. Python: `Task.set_name(value)`.
    pub fn set_name(&self, name: impl Into<String>) {
        *self.0.name.lock() = Some(name.into());
    }

    /// Its number in this process (what its default name carries).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Whether it ended (returned, panicked, or was cancelled or dropped).
    ///
    /// Python: `Task.done()`.
    pub fn done(&self) -> bool {
        self.0.done.load(Ordering::Acquire)
    }

    /// Cancels it: it is dropped at its next `.await` (see the module's
    /// `# Cancellation`). Whether it was still running.
    ///
    /// Python: `Task.cancel()`.
    pub fn cancel(&self) -> bool {
        if self.done() {
            return false;
        }
        match self.0.abort.get() {
            Some(a) => {
                a.abort();
                true
            }
            // Not yet a task: an eager task still in its first poll.
            None => false,
        }
    }

    pub(crate) fn set_abort(&self, a: tokio::task::AbortHandle) {
        let _ = self.0.abort.set(a);
    }
}

impl fmt::Debug for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskInfo")
            .field("name", &self.name())
            .field("done", &self.done())
            .finish()
    }
}

impl PartialEq for TaskInfo {
    fn eq(&self, other: &TaskInfo) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TaskInfo {}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// The tasks, as weak references in shards: a spawn pushes onto its
/// thread's shard (an uncontended lock), an ending task only marks itself
/// done (no lock: it often ends on another thread), and the shard drops
/// what ended when it has doubled since it last did (and when listed).
const SHARDS: usize = 16;
struct Shard {
    tasks: Vec<Weak<Info>>,
    /// The length after the last sweep.
    swept: usize,
}
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Mutex<Shard> = Mutex::new(Shard {
    tasks: Vec::new(),
    swept: 0,
});
static LIVE: [Mutex<Shard>; SHARDS] = [EMPTY; SHARDS];

fn live(w: &Weak<Info>) -> Option<Arc<Info>> {
    w.upgrade().filter(|i| !i.done.load(Ordering::Acquire))
}

impl Shard {
    fn sweep(&mut self) {
        self.tasks.retain(|w| live(w).is_some());
        self.swept = self.tasks.len();
    }
}

/// This thread's shard.
fn my_shard() -> &'static Mutex<Shard> {
    static NEXT_SHARD: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static MINE: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) as usize % SHARDS;
    }
    &LIVE[MINE.with(|m| *m)]
}

tokio::task_local! {
    static CURRENT: TaskInfo;
}

/// Marks the task done when it ends or is dropped (polled or not).
struct Registered(TaskInfo);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.0.done.store(true, Ordering::Release);
    }
}

/// Registers a new task named `name` (or by default) running `fut`: its
/// info, and the future to spawn (which is the current task while it runs).
pub(crate) fn track<F: Future>(
    name: Option<String>,
    fut: F,
) -> (TaskInfo, impl Future<Output = F::Output>) {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let info = TaskInfo(Arc::new(Info {
        id,
        name: Mutex::new(name),
        done: AtomicBool::new(false),
        abort: OnceLock::new(),
    }));
    {
        let mut shard = my_shard().lock();
        if shard.tasks.len() >= (2 * shard.swept).max(64) {
            shard.sweep();
        }
        shard.tasks.push(Arc::downgrade(&info.0));
    }
    let registered = Registered(info.clone());
    let fut = CURRENT.scope(info.clone(), async move {
        let _registered = registered;
        fut.await
    });
    (info, fut)
}

/// The task conex started that is running now, if any.
///
/// Python: `asyncio.current_task()`. `None` outside such a task (in a
/// plain `tokio::spawn` task, on a thread, in `block_on`).
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks;
///
/// let t = tasks::spawn_named("fetcher", async {
///     tasks::current_task().map(|t| t.name())
/// });
/// assert_eq!(t.await.unwrap().as_deref(), Some("fetcher"));
/// assert!(tasks::current_task().is_none()); // the test's main is not one
/// # }
/// ```
pub fn current_task() -> Option<TaskInfo> {
    CURRENT.try_with(TaskInfo::clone).ok()
}

/// The tasks conex started that have not ended, oldest first.
///
/// Python: `asyncio.all_tasks()` (of every loop: a process has one list
/// here, whatever runtime the tasks run on).
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::tasks;
///
/// let (tx, rx) = tokio::sync::oneshot::channel::<()>();
/// let t = tasks::spawn_named("idle", async move { rx.await.ok(); });
/// assert!(tasks::all_tasks().iter().any(|t| t.name() == "idle"));
/// tx.send(()).unwrap();
/// t.await.unwrap();
/// assert!(!tasks::all_tasks().iter().any(|t| t.name() == "idle"));
/// # }
/// ```
pub fn all_tasks() -> Vec<TaskInfo> {
    let mut all: Vec<TaskInfo> = Vec::new();
    for s in &LIVE {
        let mut s = s.lock();
        s.sweep();
        all.extend(s.tasks.iter().filter_map(live).map(TaskInfo));
    }
    all.sort_by_key(TaskInfo::id);
    all
}

/// Starts `fut` as a task named `name`, as [`spawn`](super::spawn) does.
///
/// Python: `asyncio.create_task(coro, name=name)`.
///
/// ```
/// # #[tokio::main] async fn main() {
/// let t = conex::tasks::spawn_named("worker-1", async { 1 });
/// assert_eq!(t.info().name(), "worker-1");
/// assert_eq!(t.await, Ok(1));
/// # }
/// ```
pub fn spawn_named<F>(name: impl Into<String>, fut: F) -> super::Task<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    super::task::spawn_tracked(Some(name.into()), fut)
}
