//! The runtime conex starts once, for work that has no runtime of its own
//! to run on (task-backed Threads started outside a runtime, subprocess
//! I/O polled outside one, children reaped in the background). A leaf:
//! every floor that needs it (threading, io, multiprocessing) imports it,
//! and it imports none of them.

use std::sync::OnceLock;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// conex's own multi-thread runtime, started on first use.
pub(crate) fn own_runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("conex-worker")
            .enable_all()
            .build()
            .expect("conex: cannot start its runtime")
    })
}

/// Runs `f` once `token` is cancelled (at once if it is), from a task on
/// the caller's runtime (or conex's own). The task lives until then: the
/// bridges that use it hold only weak references to what `f` acts on.
#[cfg(feature = "tokio-util")]
pub(crate) fn on_cancel(
    token: &tokio_util::sync::CancellationToken,
    f: impl FnOnce() + Send + 'static,
) {
    if token.is_cancelled() {
        f();
        return;
    }
    let cancelled = token.clone().cancelled_owned();
    handle().spawn(async move {
        cancelled.await;
        f();
    });
}

/// The caller's runtime, or conex's own for a caller outside any.
pub(crate) fn handle() -> tokio::runtime::Handle {
    tokio::runtime::Handle::try_current().unwrap_or_else(|_| own_runtime().handle().clone())
}
