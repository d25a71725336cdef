//! `Context`: a mapping of context variables to values that code can run
//! in, and `copy_context`.

use super::*;

/// A mapping of context variables to values, which code can run in.
///
/// Python: `contextvars.Context`. A handle: clones are the same context (as
/// Python references are); [`copy`](Context::copy) makes an independent one
/// in O(1).
///
/// # Examples
///
/// ```
/// use conex::contextvars::{copy_context, ContextVar};
///
/// let var = ContextVar::new("var");
/// var.set("outer");
/// let ctx = copy_context();
/// ctx.run(|| {
///     assert_eq!(var.get().unwrap(), "outer");
///     var.set("inner");
/// })
/// .unwrap();
/// assert_eq!(var.get().unwrap(), "outer");    // unchanged here
/// assert_eq!(ctx.get(&var), Some("inner"));   // kept in the context
/// ```
#[derive(Clone)]
pub struct Context {
    pub(super) inner: Arc<CtxInner>,
}

pub(super) struct CtxInner {
    id: u64,
    entered: AtomicBool,
    map: Mutex<Map>,
}

impl CtxInner {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.inner.id)
            .field("vars", &self.len())
            .field("entered", &self.inner.entered.load(Relaxed))
            .finish()
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

/// A copy of the current context (O(1)).
///
/// Python: `contextvars.copy_context()`.
///
/// # Examples
///
/// ```
/// use conex::contextvars::{copy_context, ContextVar};
///
/// let v = ContextVar::new("v");
/// v.set(1);
/// let snapshot = copy_context();
/// v.set(2);
/// assert_eq!(snapshot.get(&v), Some(1));
/// ```
pub fn copy_context() -> Context {
    Context::from_map(capture())
}

/// One binding of a [`Context`], as its iteration yields it.
#[derive(Clone)]
pub struct ContextItem {
    id: u64,
    name: Arc<str>,
    value: Arc<dyn Any + Send + Sync>,
}

impl ContextItem {
    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this binding is of `var`.
    pub fn is<T>(&self, var: &ContextVar<T>) -> bool {
        self.id == var.inner.id
    }

    /// The value, if it is a `T`.
    pub fn value<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref()
    }
}

impl fmt::Debug for ContextItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextItem")
            .field("name", &&*self.name)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// An empty context.
    ///
    /// Python: `contextvars.Context()`.
    pub fn new() -> Context {
        Context::from_map(Map::default())
    }

    fn from_map(map: Map) -> Context {
        Context {
            inner: Arc::new(CtxInner {
                id: next_id(),
                entered: AtomicBool::new(false),
                map: Mutex::new(map),
            }),
        }
    }

    fn snapshot(&self) -> Map {
        self.inner.lock().clone()
    }

    /// An independent copy (O(1)).
    ///
    /// Python: `Context.copy()`.
    pub fn copy(&self) -> Context {
        Context::from_map(self.snapshot())
    }

    /// The value of `var` in this context (no default applies).
    ///
    /// Python: `ctx.get(var)` / `ctx[var]`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self, var: &ContextVar<T>) -> Option<T> {
        var.lookup(&self.snapshot())
    }

    /// Whether `var` has a value in this context.
    ///
    /// Python: `var in ctx`.
    pub fn contains<T>(&self, var: &ContextVar<T>) -> bool {
        self.inner.lock().get(var.inner.id).is_some()
    }

    /// The number of variables with a value.
    ///
    /// Python: `len(ctx)`.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether no variable has a value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every binding (in no particular order).
    ///
    /// Python: `ctx.items()` (and `keys()`, `values()`, iteration).
    pub fn items(&self) -> Vec<ContextItem> {
        self.snapshot()
            .iter()
            .map(|(id, name, value)| ContextItem {
                id,
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    }

    fn enter(&self) -> Result<Active, AlreadyEntered> {
        if self.inner.entered.swap(true, AcqRel) {
            return Err(AlreadyEntered);
        }
        Ok(Active {
            id: self.inner.id,
            map: self.snapshot(),
            entered: Some(self.clone()),
        })
    }

    /// Runs `f` with this context current; what `f` sets stays in this
    /// context.
    ///
    /// Python: `Context.run(callable)`.
    ///
    /// # Errors
    /// [`AlreadyEntered`] if the context is being run (here or on another
    /// thread).
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> Result<R, AlreadyEntered> {
        let mut active = self.enter()?;
        let _exit = Exit(&self.inner);
        Ok(swap_in(&mut active, f))
    }

    /// Runs `fut` with this context current during each of its polls (the
    /// context counts as entered from the first poll until `fut` ends or is
    /// dropped).
    ///
    /// Python: `asyncio.create_task(coro, context=ctx)`'s effect on one
    /// future.
    ///
    /// # Errors
    /// The future yields `Err(AlreadyEntered)` at its first poll if the
    /// context is already entered.
    ///
    /// # Cancel safety
    /// Dropping the future drops `fut` and leaves the context (what `fut`
    /// had set stays in it).
    pub fn scope<F: Future>(
        &self,
        fut: F,
    ) -> impl Future<Output = Result<F::Output, AlreadyEntered>> + use<F> {
        Scope {
            ctx: self.clone(),
            active: None,
            fut: Box::pin(fut),
        }
    }
}

/// Leaves a context entered by `run`/`scope`, also on unwinding.
struct Exit<'a>(&'a CtxInner);

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        self.0.entered.store(false, Release);
    }
}

struct Scope<F> {
    ctx: Context,
    active: Option<Active>,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Scope<F> {
    type Output = Result<F::Output, AlreadyEntered>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.active.is_none() {
            match this.ctx.enter() {
                Ok(a) => this.active = Some(a),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let active = this.active.as_mut().expect("entered above");
        let fut = this.fut.as_mut();
        match swap_in(active, || fut.poll(cx)) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(v) => {
                this.active = None;
                this.ctx.inner.entered.store(false, Release);
                Poll::Ready(Ok(v))
            }
        }
    }
}

impl<F> Drop for Scope<F> {
    fn drop(&mut self) {
        if self.active.take().is_some() {
            self.ctx.inner.entered.store(false, Release);
        }
    }
}
