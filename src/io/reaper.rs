//! Children whose `Popen` was dropped while they still ran: waited for by
//! a task on conex's own runtime, so none is left a zombie.

use super::child::Proc;

/// Waits for `child` in the background and then lets it go.
pub(crate) fn adopt(mut child: Proc) {
    // Registered with the caller's reactor, it would depend on a runtime
    // that may be dropped or idle: start over on conex's own.
    child.reset_registration();
    crate::runtime::own_runtime().spawn(async move {
        let _ = std::future::poll_fn(|cx| child.poll_wait(cx)).await;
    });
}
