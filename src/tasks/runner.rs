//! `Runner` and `run`: asyncio's entry points for synchronous callers.

use std::fmt;
use std::future::Future;

use crate::contextvars::{AlreadyEntered, Context, copy_context};

/// Why a [`Runner`] could not run a future.
///
/// Python: the `RuntimeError`s of `asyncio.run` / `Runner.run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunError {
    /// Called from inside a tokio runtime (Python: "cannot be called from a
    /// running event loop"): `.await` the future instead.
    InsideRuntime,
    /// The runner's context is entered elsewhere (a nested `run`).
    ContextEntered,
    /// Ctrl-C (SIGINT) came while `run` ran on the main thread: the future
    /// was dropped (cancelled). Python: `KeyboardInterrupt`.
    Interrupted,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunError::InsideRuntime => {
                "Runner.run() cannot be called from inside a tokio runtime: await the future instead"
            }
            RunError::ContextEntered => "the runner's context is already entered",
            RunError::Interrupted => "interrupted by Ctrl-C (SIGINT): the future was cancelled",
        })
    }
}

impl std::error::Error for RunError {}

impl From<AlreadyEntered> for RunError {
    fn from(_: AlreadyEntered) -> Self {
        RunError::ContextEntered
    }
}

/// Runs futures to completion for synchronous code, on a runtime it owns,
/// each run in the same context (so context variables set by one run are
/// seen by the next, as with Python's `Runner`).
///
/// Python: `asyncio.Runner`. Dropping it closes it (its runtime shuts down,
/// cancelling tasks still running).
///
/// # Examples
///
/// ```
/// use conex::contextvars::ContextVar;
/// use conex::tasks::Runner;
///
/// let runner = Runner::new().unwrap();
/// let var = ContextVar::new("var");
/// let v2 = var.clone();
/// runner.run(async move { v2.set(5); }).unwrap();
/// let v3 = var.clone();
/// assert_eq!(runner.run(async move { v3.get().unwrap() }).unwrap(), 5);
/// assert!(var.get().is_err()); // the caller's context is untouched
/// ```
pub struct Runner {
    rt: tokio::runtime::Runtime,
    ctx: Context,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("context", &self.ctx)
            .finish()
    }
}

impl Runner {
    /// A runner on a new current-thread runtime (one thread, as asyncio's
    /// event loop), in a copy of the caller's context.
    ///
    /// Python: `asyncio.Runner()`.
    ///
    /// # Errors
    /// The runtime could not be built.
    pub fn new() -> std::io::Result<Runner> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Runner::with_runtime(rt, copy_context()))
    }

    /// A runner on a given runtime and context.
    ///
    /// Python: `asyncio.Runner(loop_factory=...)` with a context for `run`.
    pub fn with_runtime(rt: tokio::runtime::Runtime, context: Context) -> Runner {
        Runner { rt, ctx: context }
    }

    /// Runs `fut` to completion in the runner's context.
    ///
    /// Python: `Runner.run(coro)`. As Python's, on the main thread, with
    /// SIGINT at its default disposition (Ctrl-C ends the program), a
    /// Ctrl-C during the run cancels the future (drops it) and `run`
    /// returns [`RunError::Interrupted`] (Python raises
    /// `KeyboardInterrupt`); the default disposition is back when `run`
    /// returns. Elsewhere SIGINT is left alone.
    ///
    /// # Errors
    /// [`RunError::InsideRuntime`] when called from inside a tokio runtime;
    /// [`RunError::ContextEntered`] when the runner's context is entered
    /// elsewhere; [`RunError::Interrupted`] after a Ctrl-C.
    #[track_caller]
    pub fn run<F: Future>(&self, fut: F) -> Result<F::Output, RunError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(RunError::InsideRuntime);
        }
        #[cfg(unix)]
        if let Some(catch) = crate::sys::SigintCatch::new() {
            return std::thread::scope(|s| {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                let catch = &catch;
                s.spawn(move || {
                    if catch.wait() {
                        let _ = tx.send(());
                    }
                });
                let run = Box::pin(super::introspect::track(None, self.ctx.scope(fut)).1);
                let out = self.rt.block_on(futures::future::select(run, rx));
                catch.stop();
                match out {
                    futures::future::Either::Left((r, _)) => Ok(r?),
                    futures::future::Either::Right((Ok(()), run)) => {
                        // Cancelled: dropped inside its runtime.
                        let _rt = self.rt.enter();
                        drop(run);
                        Err(RunError::Interrupted)
                    }
                    futures::future::Either::Right((Err(_), run)) => Ok(self.rt.block_on(run)?),
                }
            });
        }
        // The main future is the current task while it runs, as asyncio's
        // Runner wraps it in one.
        Ok(self
            .rt
            .block_on(super::introspect::track(None, self.ctx.scope(fut)).1)?)
    }

    /// The runner's runtime (Python: `Runner.get_loop()`).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.rt.handle()
    }

    /// The context every `run` runs in.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Closes the runner: its runtime shuts down, cancelling the tasks still
    /// running (the same as dropping it).
    ///
    /// Python: `Runner.close()`.
    pub fn close(self) {
        drop(self);
    }
}

/// Runs `fut` on a new runner and closes it.
///
/// Python: `asyncio.run(coro)`.
///
/// # Errors
/// As [`Runner::run`]; the runtime could not be built
/// ([`RunError::InsideRuntime`] is also what a failed build reports, as
/// the only cause conex can act on).
///
/// # Examples
///
/// ```
/// assert_eq!(conex::tasks::run(async { 1 + 1 }), Ok(2));
/// ```
pub fn run<F: Future>(fut: F) -> Result<F::Output, RunError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(RunError::InsideRuntime);
    }
    let runner = Runner::new().map_err(|_| RunError::InsideRuntime)?;
    runner.run(fut)
}
