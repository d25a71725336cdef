//! Python's `contextvars`: context-local state that follows tasks and
//! threads, as asyncio makes it follow tasks.
//!
//! | Python | conex |
//! |---|---|
//! | `ContextVar(name, default=...)` | [`ContextVar::new`], [`ContextVar::with_default`] |
//! | `var.get()`, `var.get(default)` | [`ContextVar::get`] (`Err(LookupError)` without a value), [`ContextVar::get_or`] |
//! | `var.set(v)` → `Token`, `var.reset(token)` | [`ContextVar::set`], [`ContextVar::reset`] |
//! | `Token.var`, `Token.old_value`, `Token.MISSING` | [`Token::var`], [`Token::old_value`] (`None` is `MISSING`) |
//! | `copy_context()` | [`copy_context`] (O(1): a persistent map, as CPython's HAMT) |
//! | a task's own context (`asyncio.create_task`) | conex's spawners; [`FutureContextExt::in_copied_context`] for any future |
//! | `Context()`, `ctx.run(f)`, `ctx.copy()`, `ctx[var]`, `var in ctx`, `len(ctx)`, iteration | [`Context::new`], [`Context::run`], [`Context::copy`], [`Context::get`], [`Context::contains`], [`Context::len`], [`Context::items`] |
//!
//! # Where a context lives
//! Every OS thread has its own current context. A task gets one only from
//! whoever spawns it: every task and Thread started through conex
//! (`Thread::spawn`, `Thread::spawn_blocking`, `tasks::spawn`, a
//! `TaskGroup`, `to_thread`, executor submissions, scheduled actions) runs
//! in a *copy* of its spawner's context, as asyncio's tasks do; what it sets
//! stays inside. A future can also be run in a given context with
//! [`Context::scope`], and any future (a raw `tokio::spawn` task, a hyper
//! or axum request) in a copy of the current one with
//! [`.in_copied_context()`](FutureContextExt::in_copied_context).
//!
//! A raw tokio task given no context of its own would share its worker
//! thread's (tokio knows nothing of contexts), so what one request set the
//! next would see. conex refuses that at once: [`ContextVar::set`] there
//! panics with the fix named; reads see only the thread's own context,
//! which no task can write.

mod context;
mod hamt;

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskCx, Poll};

use hamt::Hamt;

pub use context::{Context, ContextItem, copy_context};

/// The map behind a context: variable id -> (name, value).
pub(crate) type Map = Hamt<Arc<str>>;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Relaxed)
}

/// The context current on this OS thread (or lent to it by a task for the
/// duration of a poll).
struct Active {
    id: u64,
    map: Map,
    /// The public `Context` this is, when entered through `run`/`scope`:
    /// its stored map is kept up to date (write-through).
    entered: Option<Context>,
}

thread_local! {
    /// How many contexts are lent to this thread now (a conex task's, a
    /// `Context::run` / `scope`): zero means the thread's own is current.
    static LENT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    static ACTIVE: RefCell<Active> = RefCell::new(Active {
        id: next_id(),
        map: Map::default(),
        entered: None,
    });
}

fn with_active<R>(f: impl FnOnce(&mut Active) -> R) -> R {
    ACTIVE.with(|a| f(&mut a.borrow_mut()))
}

/// Swaps `slot` with the thread's current context while `f` runs.
fn swap_in<R>(slot: &mut Active, f: impl FnOnce() -> R) -> R {
    struct Back<'a>(&'a mut Active);
    impl Drop for Back<'_> {
        fn drop(&mut self) {
            let _ = ACTIVE.try_with(|a| std::mem::swap(&mut *a.borrow_mut(), self.0));
            let _ = LENT.try_with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    let _ = LENT.try_with(|d| d.set(d.get() + 1));
    let _ = ACTIVE.try_with(|a| std::mem::swap(&mut *a.borrow_mut(), slot));
    let _back = Back(slot);
    f()
}

/// The current context's map (an O(1) snapshot), for spawners.
pub(crate) fn capture() -> Map {
    with_active(|a| a.map.clone())
}

/// How many variables were made with [`ContextVar::not_inherited`] (a spawn
/// filters its copy only when there are any).
static NOT_INHERITED_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The ids of those variables.
static NOT_INHERITED: std::sync::RwLock<Vec<u64>> = std::sync::RwLock::new(Vec::new());

/// [`capture`] less the bindings of variables that are not inherited.
fn capture_inherited() -> Map {
    let mut map = capture();
    if NOT_INHERITED_COUNT.load(Relaxed) == 0 {
        return map;
    }
    let ids = NOT_INHERITED.read().unwrap_or_else(|e| e.into_inner());
    for &id in ids.iter() {
        if map.get(id).is_some() {
            map = map.remove(id);
        }
    }
    map
}

/// The private context of a task or thread spawned through conex: a copy of
/// its spawner's, lent to the thread that runs it.
pub(crate) struct TaskContext(Active);

impl TaskContext {
    /// A context holding `map` (usually [`capture`]d from the spawner).
    pub(crate) fn new(map: Map) -> TaskContext {
        TaskContext(Active {
            id: next_id(),
            map,
            entered: None,
        })
    }

    /// A copy of the caller's current context for a task, thread or job
    /// it starts: every binding but those of variables made with
    /// [`ContextVar::not_inherited`].
    pub(crate) fn copy_current() -> TaskContext {
        TaskContext::new(capture_inherited())
    }

    /// Runs `f` with this context current.
    pub(crate) fn enter<R>(&mut self, f: impl FnOnce() -> R) -> R {
        swap_in(&mut self.0, f)
    }
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("vars", &self.0.map.len())
            .finish()
    }
}

/// Runs any future in a context of its own, across all its polls: what
/// conex's spawners do for the tasks they start, for a task conex did not
/// start (a raw `tokio::spawn`, a hyper or axum request).
///
/// Python: a task's own context (`asyncio.create_task` copies the
/// current one).
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::contextvars::{ContextVar, FutureContextExt};
///
/// let request_id = ContextVar::<u32>::new("request_id");
/// let tasks: Vec<_> = (0..10)
///     .map(|i| {
///         let request_id = request_id.clone();
///         tokio::spawn(
///             async move {
///                 request_id.set(i);
///                 tokio::task::yield_now().await;
///                 request_id.get().unwrap()
///             }
///             .in_copied_context(),
///         )
///     })
///     .collect();
/// for (i, t) in tasks.into_iter().enumerate() {
///     assert_eq!(t.await.unwrap(), i as u32);
/// }
/// # }
/// ```
pub trait FutureContextExt: Future + Sized {
    /// Runs in a copy of the current context (taken now): what it sets
    /// stays inside it.
    fn in_copied_context(self) -> InContext<Self> {
        InContext::copy_current(self)
    }
}

impl<F: Future> FutureContextExt for F {}

pin_project_lite::pin_project! {
    /// A future that runs in its own context (a copy of its creator's):
    /// what [`FutureContextExt::in_copied_context`] and every conex
    /// spawner make.
    pub struct InContext<F> {
        ctx: TaskContext,
        #[pin]
        fut: F,
    }
}

impl<F: Future> InContext<F> {
    /// `fut`, to run in a copy of the caller's current context.
    pub(crate) fn copy_current(fut: F) -> InContext<F> {
        Self::new(TaskContext::copy_current(), fut)
    }

    /// `fut`, to run in `ctx`.
    #[cfg_attr(
        not(any(feature = "sched", feature = "tasks", feature = "futures")),
        allow(dead_code)
    )]
    pub(crate) fn new(ctx: TaskContext, fut: F) -> InContext<F> {
        InContext { ctx, fut }
    }
}

impl<F: Future> Future for InContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<F::Output> {
        let this = self.project();
        let fut = this.fut;
        this.ctx.enter(|| fut.poll(cx))
    }
}

// ------------------------------------------------------------------ errors

/// A variable has no value in the current context and no default.
///
/// Python: `LookupError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupError {
    name: Arc<str>,
}

impl LookupError {
    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<ContextVar name={:?}> has no value", &*self.name)
    }
}

impl std::error::Error for LookupError {}

/// Why a [`Token`] could not reset its variable.
///
/// Python: the `RuntimeError` and `ValueError`s of `ContextVar.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResetError {
    /// The token was already used (Python: `RuntimeError: <Token> has
    /// already been used once`).
    AlreadyUsed,
    /// The token was created by another variable (Python: `ValueError`).
    DifferentVar,
    /// The token was created in another context (Python: `ValueError`).
    DifferentContext,
}

impl fmt::Display for ResetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResetError::AlreadyUsed => "<Token> has already been used once",
            ResetError::DifferentVar => "<Token> was created by a different ContextVar",
            ResetError::DifferentContext => "<Token> was created in a different Context",
        })
    }
}

impl std::error::Error for ResetError {}

/// The context is already entered (by `run` or `scope`, here or on another
/// thread).
///
/// Python: `RuntimeError: cannot enter context: ... is already entered`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlreadyEntered;

impl fmt::Display for AlreadyEntered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot enter context: it is already entered")
    }
}

impl std::error::Error for AlreadyEntered {}

// -------------------------------------------------------------- ContextVar

/// A context variable: each context sees its own value.
///
/// Python: `contextvars.ContextVar`. A cheap handle: clones are the same
/// variable. Values are cloned out on [`get`](ContextVar::get) (use an
/// `Arc` for large ones).
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::contextvars::ContextVar;
/// use conex::threading::Thread;
///
/// let request_id = ContextVar::new("request_id");
/// request_id.set(7u32);
/// let rid = request_id.clone();
/// let seen = Thread::spawn(async move {
///     let inherited = rid.get().unwrap(); // a copy of the spawner's context
///     rid.set(99);                        // stays inside this task
///     inherited
/// });
/// assert_eq!(seen.join().await.unwrap(), 7);
/// assert_eq!(request_id.get().unwrap(), 7);
/// # }
/// ```
pub struct ContextVar<T> {
    inner: Arc<VarInner<T>>,
}

struct VarInner<T> {
    id: u64,
    name: Arc<str>,
    default: Option<T>,
    /// Made with [`ContextVar::not_inherited`]: listed in
    /// `NOT_INHERITED` until its last handle drops.
    not_inherited: bool,
}

impl<T> Drop for VarInner<T> {
    fn drop(&mut self) {
        if self.not_inherited {
            let mut ids = NOT_INHERITED.write().unwrap_or_else(|e| e.into_inner());
            ids.retain(|&id| id != self.id);
            NOT_INHERITED_COUNT.fetch_sub(1, Relaxed);
        }
    }
}

impl<T> Clone for ContextVar<T> {
    fn clone(&self) -> Self {
        ContextVar {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for ContextVar<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextVar")
            .field("name", &&*self.inner.name)
            .field("id", &self.inner.id)
            .finish()
    }
}

impl<T> PartialEq for ContextVar<T> {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id
    }
}

impl<T> Eq for ContextVar<T> {}

impl<T: Clone + Send + Sync + 'static> ContextVar<T> {
    /// A new variable with no default.
    ///
    /// Python: `ContextVar(name)`.
    pub fn new(name: &str) -> ContextVar<T> {
        Self::build(name, None)
    }

    /// A new variable whose [`get`](ContextVar::get) falls back to `default`.
    ///
    /// Python: `ContextVar(name, default=default)`.
    pub fn with_default(name: &str, default: T) -> ContextVar<T> {
        Self::build(name, Some(default))
    }

    /// A variable whose values stay where they are set: the Threads,
    /// tasks (`tasks::spawn`, `in_copied_context`), executor jobs and
    /// scheduler events started from a context see its default (or
    /// nothing) instead of the value set there. An explicit copy
    /// ([`copy_context`], [`Context::copy`]) still holds it.
    ///
    /// Not in Python (where every variable flows into tasks and threads
    /// started through `copy_context`): for state that belongs to one
    /// task alone, a buffer, a connection, a span of its own, which a
    /// blanket copy into every child would share or leak.
    ///
    /// ```
    /// # #[tokio::main] async fn main() {
    /// use conex::contextvars::{ContextVar, copy_context};
    ///
    /// let mine = ContextVar::not_inherited("mine");
    /// let shared = ContextVar::new("shared");
    /// mine.set(1u32);
    /// shared.set(2u32);
    /// let (m, s) = (mine.clone(), shared.clone());
    /// let seen = conex::tasks::spawn(async move { (m.get().ok(), s.get().ok()) });
    /// assert_eq!(seen.await.unwrap(), (None, Some(2)));
    /// assert_eq!(copy_context().get(&mine), Some(1)); // an explicit copy keeps it
    /// # }
    /// ```
    ///
    /// Make such variables once (a `static` or a field created at start-up,
    /// as Python's docs ask of every ContextVar): each spawn looks at every
    /// live one.
    pub fn not_inherited(name: &str) -> ContextVar<T> {
        Self::make(name, None, true)
    }

    /// [`not_inherited`](ContextVar::not_inherited) with a default.
    pub fn not_inherited_with_default(name: &str, default: T) -> ContextVar<T> {
        Self::make(name, Some(default), true)
    }

    /// Whether values set for it flow into the tasks, threads and jobs
    /// started from their context (true unless made with
    /// [`not_inherited`](ContextVar::not_inherited)).
    pub fn is_inherited(&self) -> bool {
        !self.inner.not_inherited
    }

    fn build(name: &str, default: Option<T>) -> ContextVar<T> {
        Self::make(name, default, false)
    }

    fn make(name: &str, default: Option<T>, not_inherited: bool) -> ContextVar<T> {
        let id = next_id();
        if not_inherited {
            NOT_INHERITED
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .push(id);
            NOT_INHERITED_COUNT.fetch_add(1, Relaxed);
        }
        ContextVar {
            inner: Arc::new(VarInner {
                id,
                name: name.into(),
                default,
                not_inherited,
            }),
        }
    }

    /// The variable's name.
    ///
    /// Python: `ContextVar.name`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn lookup(&self, map: &Map) -> Option<T> {
        map.get(self.inner.id)
            .and_then(|(_, v)| v.downcast_ref::<T>().cloned())
    }

    /// The value in the current context, else the variable's default.
    ///
    /// Python: `ContextVar.get()`.
    ///
    /// # Errors
    /// [`LookupError`] if there is neither.
    pub fn get(&self) -> Result<T, LookupError> {
        with_active(|a| self.lookup(&a.map))
            .or_else(|| self.inner.default.clone())
            .ok_or_else(|| LookupError {
                name: self.inner.name.clone(),
            })
    }

    /// The value in the current context, else `default` (even if the
    /// variable has its own default).
    ///
    /// Python: `ContextVar.get(default)`.
    pub fn get_or(&self, default: T) -> T {
        with_active(|a| self.lookup(&a.map)).unwrap_or(default)
    }

    /// Sets the value in the current context; the token can undo it.
    ///
    /// Python: `ContextVar.set(value)`.
    ///
    /// # Panics
    /// In a tokio task that conex did not start (a raw `tokio::spawn`, as
    /// every hyper or axum request is) and that runs in no context of its
    /// own: the current context there is the worker thread's, shared by
    /// every such task on it, so the value would leak into the next,
    /// unrelated task. Give the task a context first:
    /// [`fut.in_copied_context()`](FutureContextExt::in_copied_context),
    /// [`Context::scope`], or spawn it with `conex::tasks::spawn`. (Outside
    /// tasks, in `block_on` and on plain threads, `set` always works.)
    #[track_caller]
    pub fn set(&self, value: T) -> Token<T> {
        if LENT.with(|d| d.get()) == 0 && tokio::task::try_id().is_some() {
            panic!(
                "conex: ContextVar {:?} set in a tokio task that conex did not start, outside \
                 any context of its own: every such task on this worker thread would see it. \
                 Run the task's future with `.in_copied_context()` \
                 (conex::contextvars::FutureContextExt) or `Context::scope`, or spawn it with \
                 conex::tasks::spawn",
                &*self.inner.name
            );
        }
        with_active(|a| {
            let old = self.lookup(&a.map);
            let value: hamt::Value = Arc::new(value);
            a.map = a.map.insert(self.inner.id, self.inner.name.clone(), value);
            write_through(a);
            Token {
                var: self.clone(),
                old,
                ctx_id: a.id,
                used: AtomicBool::new(false),
            }
        })
    }

    /// Puts the variable back to what it was before the `set` that made
    /// `token` (unset, if it had no value).
    ///
    /// Python: `ContextVar.reset(token)`.
    ///
    /// # Errors
    /// [`ResetError`]: the token was used already, made by another variable,
    /// or made in another context. Nothing changes then.
    pub fn reset(&self, token: &Token<T>) -> Result<(), ResetError> {
        if token.var.inner.id != self.inner.id {
            return Err(ResetError::DifferentVar);
        }
        with_active(|a| {
            if token.ctx_id != a.id {
                return Err(ResetError::DifferentContext);
            }
            if token.used.swap(true, AcqRel) {
                return Err(ResetError::AlreadyUsed);
            }
            a.map = match &token.old {
                Some(v) => {
                    let value: hamt::Value = Arc::new(v.clone());
                    a.map.insert(self.inner.id, self.inner.name.clone(), value)
                }
                None => a.map.remove(self.inner.id),
            };
            write_through(a);
            Ok(())
        })
    }
}

fn write_through(a: &Active) {
    if let Some(ctx) = &a.entered {
        *ctx.inner.lock() = a.map.clone();
    }
}

/// What [`ContextVar::set`] returns: the way back to the previous value.
///
/// Python: `contextvars.Token`.
pub struct Token<T> {
    var: ContextVar<T>,
    old: Option<T>,
    ctx_id: u64,
    used: AtomicBool,
}

impl<T> fmt::Debug for Token<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("var", &self.var)
            .field("old_value_missing", &self.old.is_none())
            .field("used", &self.used.load(Relaxed))
            .finish()
    }
}

impl<T> Token<T> {
    /// The variable that made this token.
    ///
    /// Python: `Token.var`.
    pub fn var(&self) -> &ContextVar<T> {
        &self.var
    }

    /// The value before the `set`; `None` is Python's `Token.MISSING` (the
    /// variable had no value).
    ///
    /// Python: `Token.old_value`.
    pub fn old_value(&self) -> Option<&T> {
        self.old.as_ref()
    }
}
