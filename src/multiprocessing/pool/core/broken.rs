//! Why work failed with `BrokenProcessPool`, or why the pool broke: a
//! typed reason whose text is the error's message.

use std::fmt;
use std::sync::Arc;

use crate::futures::{FutureError, WorkError};
use crate::multiprocessing::errors::{ConnectionError, ProcessError};

/// A worker, as the messages name it: `name (pid N)`.
pub(super) struct WorkerId {
    pub(super) name: String,
    /// 0 if it never had one.
    pub(super) pid: u32,
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (pid {})", self.name, self.pid)
    }
}

/// Why a pool is broken (or terminated), or why a worker's job failed.
pub(super) enum Broken {
    /// A driver thread could not be spawned (and none runs).
    ThreadSpawn(std::io::Error),
    /// The pipe to a new worker could not be made.
    Pipe(ConnectionError),
    /// A new worker process could not be started.
    StartFailed(ProcessError),
    /// The initializer failed in a new worker (its call's error).
    InitializerFailed(FutureError),
    /// A new worker's connection broke while it ran the initializer.
    InitializerWorkerDied(ConnectionError),
    /// `terminate()` stopped the pool.
    Terminated,
    /// The worker was killed on purpose, to cancel a call of its chunk.
    KilledForCancel(WorkerId),
    /// The worker died while running a job; its exit code (negative: the
    /// signal that killed it), if known.
    WorkerDied {
        worker: WorkerId,
        exitcode: Option<i32>,
    },
    /// With [`OnDeath::Break`](super::OnDeath::Break): a job's failure
    /// broke the pool.
    Abrupt(Arc<Broken>),
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const INIT_FAILED: &str = "A process in the process pool failed its initializer, the \
                                   pool is not usable anymore";
        match self {
            Broken::ThreadSpawn(e) => write!(f, "cannot start a pool thread: {e}"),
            Broken::Pipe(e) => write!(f, "cannot make a pipe: {e}"),
            Broken::StartFailed(e) => write!(f, "cannot start a worker process: {e}"),
            Broken::InitializerFailed(e) => write!(f, "{INIT_FAILED} ({e})"),
            Broken::InitializerWorkerDied(e) => {
                write!(f, "{INIT_FAILED} (the worker died: {e})")
            }
            Broken::Terminated => f.write_str("the pool was terminated"),
            Broken::KilledForCancel(w) => {
                write!(
                    f,
                    "worker {w} was killed to cancel another call of its chunk"
                )
            }
            Broken::WorkerDied { worker, exitcode } => {
                write!(f, "worker {worker} ")?;
                match *exitcode {
                    Some(c) if c < 0 => {
                        let name = match -c {
                            libc::SIGKILL => " (SIGKILL)",
                            libc::SIGTERM => " (SIGTERM)",
                            libc::SIGSEGV => " (SIGSEGV)",
                            libc::SIGABRT => " (SIGABRT)",
                            libc::SIGBUS => " (SIGBUS)",
                            libc::SIGINT => " (SIGINT)",
                            _ => "",
                        };
                        write!(
                            f,
                            "was killed by signal {}{name} while running this call",
                            -c
                        )
                    }
                    Some(c) => write!(f, "exited with code {c} while running this call"),
                    None => f.write_str("ended while running this call"),
                }
            }
            Broken::Abrupt(why) => write!(
                f,
                "A process in the process pool was terminated abruptly: {why}"
            ),
        }
    }
}

/// The error of work that fails because of `why`.
pub(super) fn broken(why: &Broken) -> WorkError {
    WorkError::new("BrokenProcessPool", why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> WorkerId {
        WorkerId {
            name: "ForkPoolWorker-2".into(),
            pid: 42,
        }
    }

    #[test]
    fn messages_are_the_old_strings() {
        let died = |exitcode| Broken::WorkerDied {
            worker: w(),
            exitcode,
        };
        assert_eq!(
            died(Some(-9)).to_string(),
            "worker ForkPoolWorker-2 (pid 42) was killed by signal 9 (SIGKILL) while running \
             this call"
        );
        assert_eq!(
            died(Some(-64)).to_string(),
            "worker ForkPoolWorker-2 (pid 42) was killed by signal 64 while running this call"
        );
        assert_eq!(
            died(Some(3)).to_string(),
            "worker ForkPoolWorker-2 (pid 42) exited with code 3 while running this call"
        );
        assert_eq!(
            died(None).to_string(),
            "worker ForkPoolWorker-2 (pid 42) ended while running this call"
        );
        assert_eq!(
            Broken::KilledForCancel(w()).to_string(),
            "worker ForkPoolWorker-2 (pid 42) was killed to cancel another call of its chunk"
        );
        assert_eq!(
            Broken::Abrupt(Arc::new(Broken::Terminated)).to_string(),
            "A process in the process pool was terminated abruptly: the pool was terminated"
        );
        assert_eq!(
            Broken::InitializerFailed(FutureError::Timeout).to_string(),
            format!(
                "A process in the process pool failed its initializer, the pool is not usable \
                 anymore ({})",
                FutureError::Timeout
            )
        );
        assert_eq!(
            broken(&Broken::Terminated).to_string(),
            WorkError::new("BrokenProcessPool", "the pool was terminated").to_string()
        );
    }
}
