//! `run_coroutine_threadsafe`: asyncio's bridge from a plain thread into a
//! runtime, answered with a `concurrent.futures` [`Future`]. It lives here,
//! beside the future it returns, so `tasks` imports nothing from `futures`.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use super::{Future, WorkError};
use crate::contextvars::InContext;

/// Runs `fut` on the runtime of `rt` from any thread (typically one that is
/// not in that runtime), in a copy of the caller's context, and answers
/// with a [`Future`] the caller can block on or
/// await. Cancelling that future (while it is not done) aborts the task.
///
/// Python: `asyncio.run_coroutine_threadsafe(coro, loop)`.
///
/// # Examples
///
/// ```
/// use conex::futures::run_coroutine_threadsafe;
/// use std::time::Duration;
///
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let fut = run_coroutine_threadsafe(
///     async { tokio::time::sleep(Duration::from_millis(5)).await; "done" },
///     rt.handle(),
/// );
/// assert_eq!(fut.blocking().result(), Ok("done")); // from this plain thread
/// ```
pub fn run_coroutine_threadsafe<F>(fut: F, rt: &tokio::runtime::Handle) -> Future<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let answer = Future::new();
    let a2 = answer.clone();
    let task = rt.spawn(InContext::copy_current(async move {
        // A cancelled answer refuses the value: nothing else to do.
        let _ = match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(v) => a2.set_result(v),
            Err(p) => a2.set_exception(WorkError::from_panic(&*p)),
        };
    }));
    let abort = task.abort_handle();
    answer.add_done_callback(move |f| {
        if f.cancelled() {
            abort.abort();
        }
    });
    answer
}
