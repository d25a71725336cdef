//! [`AsyncResult`]: the result of a pool's `_async` calls, and the
//! gathering of a `map`'s chunks into one result (Python's `MapResult`).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::backend::relay;
use super::core::Outcomes;
use crate::futures::{Future, FutureError, WorkError};

/// One future for the values of chunks of calls, in order; the first
/// failure to come back fails it at once (Python's `MapResult`).
pub(super) fn gather<R: Send + 'static>(chunks: Vec<Future<Outcomes<R>>>) -> Future<Vec<R>> {
    let out = Future::new();
    let _ = out.set_running_or_notify_cancel();
    if chunks.is_empty() {
        let _ = out.set_result(Vec::new());
        return out;
    }
    let all = Arc::new(chunks);
    let left = Arc::new(AtomicUsize::new(all.len()));
    for f in all.iter() {
        let (out, all, left) = (out.clone(), all.clone(), left.clone());
        f.add_done_callback(move |f| {
            let failed = f.peek(|o| match o {
                None => Some(WorkError::new("CancelledError", "a chunk was cancelled")),
                Some(Err(e)) => Some(e.clone()),
                Some(Ok(outs)) => outs.iter().find_map(|r| r.as_ref().err().cloned()),
            });
            if let Some(e) = failed {
                let _ = out.set_exception(e);
            }
            if left.fetch_sub(1, Ordering::AcqRel) == 1 && !out.done() {
                let mut values = Vec::new();
                for chunk in all.iter() {
                    match chunk.blocking().take_result() {
                        Ok(outs) => values.extend(outs.into_iter().filter_map(Result::ok)),
                        Err(e) => {
                            let _ =
                                out.set_exception(WorkError::new("RuntimeError", e.to_string()));
                            return;
                        }
                    }
                }
                let _ = out.set_result(values);
            }
        });
    }
    out
}

/// The result of an `_async` call, to wait for or await.
///
/// Python: `multiprocessing.pool.AsyncResult` (`get`, `wait`, `ready`,
/// `successful`; `callback` and `error_callback` as methods here). It is a
/// [`Future`] underneath: [`future`](AsyncResult::future) to await it.
pub struct AsyncResult<R> {
    pub(super) future: Future<R>,
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AsyncResult").field(&self.future).finish()
    }
}

impl<R: Send + 'static> AsyncResult<R> {
    /// Blocks for the value (a clone: `get` can be called again).
    ///
    /// Python: `AsyncResult.get()`.
    ///
    /// # Errors
    /// The call's error.
    pub fn get(&self) -> Result<R, FutureError>
    where
        R: Clone,
    {
        self.future.blocking().result()
    }

    /// As [`get`](AsyncResult::get), at most `timeout`.
    ///
    /// Python: `AsyncResult.get(timeout)`.
    ///
    /// # Errors
    /// [`FutureError::Timeout`], or the call's error.
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, FutureError>
    where
        R: Clone,
    {
        self.future.blocking().result_timeout(timeout)
    }

    /// Blocks for the value and moves it out (no `Clone` needed).
    ///
    /// # Errors
    /// As [`get`](AsyncResult::get); [`FutureError::Taken`] the second time.
    pub fn take(&self) -> Result<R, FutureError> {
        self.future.blocking().take_result()
    }

    /// Blocks until the result is ready.
    ///
    /// Python: `AsyncResult.wait()`.
    pub fn wait(&self) {
        self.future.blocking().wait(None);
    }

    /// Blocks at most `timeout`; whether it is ready.
    ///
    /// Python: `AsyncResult.wait(timeout)`.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.future.blocking().wait(Some(timeout))
    }

    /// Whether the call has completed.
    ///
    /// Python: `AsyncResult.ready()`.
    pub fn ready(&self) -> bool {
        self.future.done()
    }

    /// Whether it completed without error; `None` while not ready (Python
    /// raises `ValueError` then).
    ///
    /// Python: `AsyncResult.successful()`.
    pub fn successful(&self) -> Option<bool> {
        self.ready()
            .then(|| !self.future.cancelled() && self.future.peek(|o| !matches!(o, Some(Err(_)))))
    }

    /// Runs `callback` with the value once it is there (at once if it is),
    /// before the result counts as ready; not on failure.
    ///
    /// Python: `apply_async(..., callback=...)`.
    pub fn callback(self, callback: impl FnOnce(&R) + Send + 'static) -> Self {
        self.then(move |o| {
            if let Ok(v) = o {
                callback(v);
            }
        })
    }

    /// Runs `callback` with the error if the call fails, before the result
    /// counts as ready.
    ///
    /// Python: `apply_async(..., error_callback=...)`.
    pub fn error_callback(self, callback: impl FnOnce(&WorkError) + Send + 'static) -> Self {
        self.then(move |o| {
            if let Err(e) = o {
                callback(e);
            }
        })
    }

    /// A result that becomes ready once `hook` has seen this one's outcome
    /// (Python runs callbacks before setting the result's event).
    fn then(self, hook: impl FnOnce(Result<&R, &WorkError>) + Send + 'static) -> Self {
        let future = relay(self.future, move |outcome| {
            let r = outcome.as_ref();
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(r))) {
                // As a future's callbacks: reported, and the result still
                // becomes ready.
                crate::diag!(
                    error,
                    "exception in a pool callback: {}",
                    crate::panic_str(&*p)
                );
            }
            outcome
        });
        AsyncResult { future }
    }

    /// The future underneath: `.await` it from async code.
    pub fn future(&self) -> &Future<R> {
        &self.future
    }
}
