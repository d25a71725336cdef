//! `JoinHandle`: the owner's handle of a Thread it spawned, with the
//! target's return value.

use std::fmt;
use std::future::Future;
use std::ops::Deref;

use futures::FutureExt;

use super::JoinError;
use super::run::Slot;
use super::thread::Thread;

/// Where a JoinHandle finds the target's value.
pub(crate) enum Output<T> {
    /// A task spawned at once: the value comes back through tokio's handle
    /// (`None` if the target panicked).
    Task(tokio::task::JoinHandle<Option<T>>),
    /// A deferred start or an OS thread: the target stores it here.
    Slot(Slot<T>),
}

/// The owner's handle of a [`Thread`] it spawned: the thread (through
/// `Deref`) plus the target's return value.
///
/// Python has no such object (a `Thread` discards its target's result);
/// this is what a Rust user expects from `spawn`. Dropping it detaches the
/// thread (it runs on; its value is dropped when it ends).
pub struct JoinHandle<T> {
    thread: Thread,
    out: Output<T>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JoinHandle").field(&self.thread).finish()
    }
}

impl<T> Deref for JoinHandle<T> {
    type Target = Thread;

    fn deref(&self) -> &Thread {
        &self.thread
    }
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(crate) fn new(thread: Thread, out: Output<T>) -> Self {
        JoinHandle { thread, out }
    }

    /// The thread.
    pub fn thread(&self) -> &Thread {
        &self.thread
    }

    /// The value of a thread known to have finished.
    fn take(self) -> Result<T, JoinError> {
        self.thread.outcome()?;
        let value = match self.out {
            Output::Slot(slot) => slot.lock().unwrap_or_else(|e| e.into_inner()).take(),
            Output::Task(mut task) => loop {
                // The task completes in the very poll that marked the thread
                // finished: this waits for the end of that poll at most.
                match (&mut task).now_or_never() {
                    Some(v) => break v.ok().flatten(),
                    None => std::thread::yield_now(),
                }
            },
        };
        Ok(value.expect("a returned thread stores its value"))
    }

    /// Waits until the thread ends and returns its target's value.
    ///
    /// # Errors
    /// As [`Thread::join`].
    ///
    /// # Cancel safety
    /// Dropping the future drops the handle (the value is then discarded
    /// when the thread ends, as a detached thread's is); the thread runs on.
    pub fn join(self) -> impl Future<Output = Result<T, JoinError>> + Send {
        let checked = self.thread.check_join();
        async move {
            checked?;
            match self.out {
                Output::Task(task) => match task.await {
                    Ok(Some(v)) => Ok(v),
                    // Panicked (the outcome says so) or dropped.
                    _ => self.thread.outcome().and(Err(JoinError::Cancelled)),
                },
                Output::Slot(_) => {
                    self.thread.wait_done().await;
                    self.take()
                }
            }
        }
    }

    /// The blocking facade: join from an OS thread and get the value.
    pub fn blocking(self) -> BlockingJoinHandle<T> {
        BlockingJoinHandle { handle: self }
    }
}

/// The blocking facade of a [`JoinHandle`]. To wait with a timeout, use
/// [`thread`](Self::thread)`().blocking().join_timeout(..)` first: the
/// value stays here until [`join`](Self::join).
#[derive(Debug)]
pub struct BlockingJoinHandle<T> {
    handle: JoinHandle<T>,
}

impl<T: Send + 'static> BlockingJoinHandle<T> {
    /// Blocks until the thread ends and returns its target's value.
    ///
    /// # Errors
    /// As [`Thread::join`].
    pub fn join(self) -> Result<T, JoinError> {
        self.handle.thread.blocking().join()?;
        self.handle.take()
    }

    /// The thread.
    pub fn thread(&self) -> &Thread {
        &self.handle.thread
    }
}
