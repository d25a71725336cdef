//! How a Thread runs: a task-backed one as a small future that makes the
//! Thread current around each poll of its target, an OS-thread-backed one
//! as a std thread that is current for its whole life. Both catch the
//! target's panic for the excepthook and record the outcome.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::current;
use super::hooks::{self, ExceptHookArgs};
use super::thread::Thread;
use crate::contextvars::TaskContext;

pub(crate) enum Outcome {
    Returned,
    Panicked(String),
    Cancelled,
}

/// Where a deferred or OS-thread target leaves its value.
pub(crate) type Slot<T> = Arc<Mutex<Option<T>>>;

fn store<T>(slot: &Slot<T>, v: T) {
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
}

/// Marks the thread finished when its body ends, or when its task is
/// dropped before that (runtime shutdown, abort). Between polls it holds
/// the Thread; during a poll the Thread is lent to the thread-local
/// "current" slot.
struct Finish(Option<Thread>);

impl Finish {
    fn finish(&mut self, outcome: Outcome) {
        if let Some(t) = self.0.take() {
            t.finish(outcome);
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

pin_project! {
    /// The tokio task of a task-backed Thread: around each poll of the
    /// target, the Thread is current and so is its context (a copy of the
    /// one it was started from).
    struct ThreadTask<F: Future> {
        #[pin]
        target: F,
        ctx: TaskContext,
        finish: Finish,
        slot: Option<Slot<F::Output>>,
        started: bool,
        // Entered around each poll (target `conex`, "thread").
        span: crate::Span,
    }
}

impl<F: Future> Future for ThreadTask<F> {
    /// The target's value, unless it panicked or went to the slot.
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        let this = self.project();
        let _span = this.span.enter();
        let target = this.target;
        let started = this.started;
        let lent = &mut this.finish.0;
        let result = this.ctx.enter(|| {
            current::with_lent(lent, || {
                catch_unwind(AssertUnwindSafe(|| {
                    if !*started {
                        *started = true;
                        hooks::run_start_hooks();
                    }
                    target.poll(cx)
                }))
            })
        });
        let thread = this
            .finish
            .0
            .as_ref()
            .expect("the thread is back after the poll");
        let (outcome, value) = match result {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(v)) => match this.slot {
                Some(slot) => {
                    store(slot, v);
                    (Outcome::Returned, None)
                }
                None => (Outcome::Returned, Some(v)),
            },
            Err(payload) => (report_panic(thread, payload), None),
        };
        this.finish.finish(outcome);
        Poll::Ready(value)
    }
}

/// A Thread's span: its name and ident (a child of the span it was started
/// in).
fn thread_span(t: &Thread) -> crate::Span {
    #[cfg(not(feature = "tracing"))]
    let _ = t;
    crate::span!("thread", name = %t.name(), ident = t.core.ident)
}

/// Spawns the task of a task-backed thread. With a `slot` the value goes
/// there, otherwise it is the task's output.
pub(crate) fn launch_task<F>(
    thread: Thread,
    target: F,
    slot: Option<Slot<F::Output>>,
) -> tokio::task::JoinHandle<Option<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let span = thread_span(&thread);
    let task = ThreadTask {
        target,
        ctx: TaskContext::copy_current(),
        finish: Finish(Some(thread)),
        slot,
        started: false,
        span,
    };
    current::runtime_handle().spawn(task)
}

/// Starts the OS thread of an OS-thread-backed Thread and returns once it
/// runs (Python's `start()` waits for the thread to start; its native id
/// is known then).
pub(crate) fn launch_os<F, T>(
    thread: Thread,
    stack: Option<usize>,
    f: F,
    slot: Slot<T>,
) -> std::io::Result<()>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let mut b = std::thread::Builder::new().name(thread.name());
    if let Some(size) = stack.or_else(current::default_stack_size) {
        b = b.stack_size(size);
    }
    // Tasks spawned from the thread land on the runtime it was started from.
    let rt = tokio::runtime::Handle::try_current().ok();
    let starter = std::thread::current();
    let t2 = thread.clone();
    let mut ctx = TaskContext::copy_current();
    let span = thread_span(&thread);
    b.spawn(move || {
        let _span = span.entered();
        let _rt = rt.as_ref().map(|h| h.enter());
        t2.core.set_native_id(current::get_native_id());
        starter.unpark();
        let mut finish = Finish(Some(t2));
        let lent = &mut finish.0;
        let result = ctx.enter(|| {
            current::with_lent(lent, || {
                catch_unwind(AssertUnwindSafe(|| {
                    hooks::run_start_hooks();
                    f()
                }))
            })
        });
        let thread = finish.0.as_ref().expect("the thread is back after the run");
        let outcome = match result {
            Ok(v) => {
                store(&slot, v);
                Outcome::Returned
            }
            Err(payload) => report_panic(thread, payload),
        };
        finish.finish(outcome);
    })?;
    while !thread.core.native_id_known() {
        std::thread::park();
    }
    Ok(())
}

fn report_panic(thread: &Thread, payload: Box<dyn Any + Send>) -> Outcome {
    hooks::excepthook(&ExceptHookArgs::new(thread, &*payload));
    Outcome::Panicked(crate::panic_str(&*payload).to_owned())
}
