//! A driver thread's life: keep a live worker in its slot, feed it jobs,
//! and replace it (or break the pool) when it dies.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::broken::{Broken, broken};
use super::state::{Core, Slot};
use super::worker::{Worker, pool_worker};
use super::{Job, OnDeath};
use crate::multiprocessing::connection::pipe;
use crate::multiprocessing::context::StartMethod;
use crate::multiprocessing::process::Process;

impl Core {
    /// A driver's life: keep a worker, feed it jobs, replace it.
    pub(super) fn drive(self: Arc<Self>, slot: Arc<Slot>) {
        let mut worker: Option<Worker> = None;
        let mut first = true;
        loop {
            if let Err(why) = self.keep_worker(&slot, &mut worker) {
                self.set_broken(why);
                break;
            }
            if std::mem::take(&mut first) {
                self.note_ready();
            }
            let Some(mut job) = self.next_job() else {
                break;
            };
            // A worker that died while idle is replaced before the job
            // (which has not started) goes to it.
            if let Err(why) = self.keep_worker(&slot, &mut worker) {
                job.fail(broken(&why));
                self.set_broken(why);
                break;
            }
            let w = worker.as_mut().expect("a worker");
            let Some(msg) = job.start() else {
                self.idle.release(1).ok();
                continue;
            };
            let seq = self.job_seq.fetch_add(1, Ordering::Relaxed);
            slot.current.lock().1 = seq;
            if self.config.kill_on_cancel {
                job.install_stopper(&|| {
                    let slot = slot.clone();
                    Box::new(move || {
                        let cur = slot.current.lock();
                        if cur.1 == seq {
                            slot.killed_for_cancel.store(true, Ordering::SeqCst);
                            if let Some(p) = &cur.0 {
                                let _ = p.kill();
                            }
                        }
                    })
                });
            }
            let reply = w.exchange(msg);
            slot.current.lock().1 = 0;
            match reply {
                Ok(reply) => {
                    job.finish(reply);
                    w.tasks += 1;
                    if self.config.max_tasks.is_some_and(|m| w.tasks >= m.get()) {
                        // Retired: a fresh worker takes the next job.
                        worker.take().expect("a worker").retire();
                        slot.current.lock().0 = None;
                    }
                }
                Err(_) => {
                    let w = worker.take().expect("a worker");
                    let for_cancel = slot.killed_for_cancel.swap(false, Ordering::SeqCst);
                    let worker = w.id();
                    let exitcode = w.reap();
                    slot.current.lock().0 = None;
                    let why = match self.broken_reason() {
                        Some(why) => why,
                        None if for_cancel => Arc::new(Broken::KilledForCancel(worker)),
                        None => Arc::new(Broken::WorkerDied { worker, exitcode }),
                    };
                    // Python's pools note this at debug level only (the
                    // caller gets the error): an event, never stderr.
                    #[cfg(feature = "tracing")]
                    tracing::warn!(target: "conex", "process pool: {why}");
                    job.fail(broken(&why));
                    if self.config.on_death == OnDeath::Break && !for_cancel {
                        self.set_broken(Broken::Abrupt(why));
                        break;
                    }
                    if self.broken_reason().is_some() {
                        break;
                    }
                }
            }
            self.idle.release(1).ok();
        }
        if let Some(w) = worker {
            w.retire();
        }
        slot.current.lock().0 = None;
    }

    /// The next job, or `None` once the queue is shut down and empty. A
    /// caller that submits one call at a time submits the next right after
    /// its result: a short spin takes it without a sleep and wake-up.
    fn next_job(&self) -> Option<Box<dyn Job>> {
        let mut backoff = crate::wait::Backoff::with_yields(QUEUE_YIELDS);
        while !backoff.is_completed() {
            match self.queue.get_nowait() {
                Ok(job) => return Some(job),
                Err(crate::queue::GetError::ShutDown) => return None,
                Err(_) => backoff.snooze(),
            }
        }
        self.queue.blocking().get().ok()
    }

    /// Makes sure `worker` is a live worker: reaps one that died, starts
    /// one where there is none.
    fn keep_worker(&self, slot: &Slot, worker: &mut Option<Worker>) -> Result<(), Broken> {
        if worker.as_ref().is_some_and(Worker::gone) {
            worker.take().expect("a worker").reap();
        }
        if worker.is_none() {
            let w = self.start_worker(slot)?;
            crate::event!(
                info,
                worker = %w.process.name(),
                pid = w.process.pid(),
                replaced = slot.had_worker.swap(true, Ordering::Relaxed),
                "process pool: worker started"
            );
            *worker = Some(w);
        }
        Ok(())
    }

    /// Starts a worker process and runs the initializer in it.
    fn start_worker(&self, slot: &Slot) -> Result<Worker, Broken> {
        let (mine, theirs) = pipe(true).map_err(Broken::Pipe)?;
        let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let kind = match self.config.method {
            StartMethod::Spawn => "SpawnPoolWorker",
            StartMethod::Forkserver => "ForkServerPoolWorker",
            StartMethod::Fork => "ForkPoolWorker",
        };
        let p: Process<()> = Process::builder()
            .name(format!("{kind}-{n}"))
            .daemon(true)
            .start_method(self.config.method)
            .build(pool_worker, theirs);
        p.start().map_err(Broken::StartFailed)?;
        let w = Worker {
            process: (*p).clone(),
            conn: mine,
            tasks: 0,
        };
        slot.current.lock().0 = Some(w.process.clone());
        if let Some(init) = &self.config.initializer {
            let (mut job, fut) = init();
            let outcome = match job.start() {
                Some(msg) => match w.exchange(msg) {
                    Ok(reply) => {
                        job.finish(reply);
                        fut.blocking()
                            .take_result()
                            .map_err(Broken::InitializerFailed)
                    }
                    Err(e) => Err(Broken::InitializerWorkerDied(e)),
                },
                None => Ok(()),
            };
            if let Err(why) = outcome {
                slot.current.lock().0 = None;
                let _ = w.process.kill();
                w.reap();
                return Err(why);
            }
        }
        Ok(w)
    }
}

/// Yields between polls of the queue before a driver sleeps on it.
const QUEUE_YIELDS: u32 = 48;
