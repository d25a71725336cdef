//! A process pool's shared state: the queue of jobs, the drivers and their
//! slots, start-up, and the broken / shut-down / terminated bookkeeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::broken::{Broken, broken};
use super::{Config, Job};
use crate::futures::SubmitError;
use crate::multiprocessing::process::ProcessHandle;
use crate::queue::Queue;
use crate::threading::{Event, Semaphore};

#[derive(Default)]
struct State {
    shutdown: bool,
    broken: Option<Arc<Broken>>,
    terminated: bool,
    drivers: Vec<std::thread::JoinHandle<()>>,
    slots: Vec<Arc<Slot>>,
}

/// One driver's worker, as others see it (to kill it).
#[derive(Default)]
pub(super) struct Slot {
    /// The worker process now, and the number of the job it runs (0: none).
    pub(super) current: Mutex<(Option<ProcessHandle>, u64)>,
    /// Set when a cancellation killed the worker on purpose.
    pub(super) killed_for_cancel: AtomicBool,
    /// Whether a worker ran in this slot before (the next one replaces it).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(super) had_worker: AtomicBool,
}

impl Slot {
    fn kill(&self) {
        if let Some(p) = &self.current.lock().0 {
            let _ = p.kill();
        }
    }
}

/// The shared state of a process pool.
pub(crate) struct Core {
    pub(super) config: Config,
    pub(super) queue: Queue<Box<dyn Job>>,
    state: Mutex<State>,
    /// Drivers waiting for work (Python's `_idle_worker_semaphore`).
    pub(super) idle: Semaphore,
    /// Workers started so far (for names), and that finished starting.
    pub(super) started: AtomicUsize,
    ready: AtomicUsize,
    all_ready: Event,
    pub(super) job_seq: AtomicU64,
}

impl Core {
    pub(crate) fn new(config: Config) -> Arc<Core> {
        let core = Arc::new(Core {
            queue: Queue::unbounded(),
            state: Mutex::new(State::default()),
            idle: Semaphore::new(0),
            started: AtomicUsize::new(0),
            ready: AtomicUsize::new(0),
            all_ready: Event::new(),
            job_seq: AtomicU64::new(1),
            config,
        });
        if core.config.eager {
            for _ in 0..core.config.workers {
                core.add_driver();
            }
        }
        core
    }

    pub(crate) fn workers(&self) -> usize {
        self.config.workers
    }

    /// How many worker processes run now.
    pub(crate) fn live_workers(&self) -> usize {
        let st = self.state.lock();
        st.slots
            .iter()
            .filter(|s| s.current.lock().0.is_some())
            .count()
    }

    /// The pids of the workers running now.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let st = self.state.lock();
        st.slots
            .iter()
            .filter_map(|s| s.current.lock().0.as_ref().and_then(|p| p.pid()))
            .collect()
    }

    /// Queues a job; starts a driver if none is idle and there is room.
    pub(crate) fn submit(self: &Arc<Self>, job: Box<dyn Job>) -> Result<(), SubmitError> {
        {
            let st = self.state.lock();
            if let Some(why) = &st.broken {
                return Err(SubmitError::Broken(why.to_string()));
            }
            if st.shutdown {
                return Err(SubmitError::Shutdown);
            }
        }
        if self.queue.put_nowait(job).is_err() {
            return Err(SubmitError::Shutdown);
        }
        if !self.config.eager && !self.idle.try_acquire() {
            self.add_driver();
        }
        Ok(())
    }

    fn add_driver(self: &Arc<Self>) {
        let mut st = self.state.lock();
        if st.slots.len() >= self.config.workers || st.shutdown {
            return;
        }
        let slot = Arc::new(Slot::default());
        st.slots.push(slot.clone());
        let core = self.clone();
        let n = st.slots.len();
        match std::thread::Builder::new()
            .name(format!("conex-pool-driver-{n}"))
            .spawn(move || core.drive(slot))
        {
            Ok(h) => st.drivers.push(h),
            Err(e) => {
                st.slots.pop();
                if st.slots.is_empty() {
                    drop(st);
                    self.set_broken(Broken::ThreadSpawn(e));
                }
            }
        }
    }

    /// Blocks until every worker has started (and run the initializer),
    /// or the pool broke.
    pub(crate) fn wait_ready(&self) {
        self.all_ready.blocking().wait();
    }

    pub(super) fn note_ready(&self) {
        if self.ready.fetch_add(1, Ordering::AcqRel) + 1 >= self.config.workers {
            self.all_ready.set();
        }
    }

    pub(super) fn broken_reason(&self) -> Option<Arc<Broken>> {
        let st = self.state.lock();
        if st.terminated {
            Some(Arc::new(Broken::Terminated))
        } else {
            st.broken.clone()
        }
    }

    /// Python's broken pool: pending work fails, running work is stopped
    /// (its worker killed), later submissions are refused.
    pub(super) fn set_broken(&self, why: Broken) {
        let why = Arc::new(why);
        self.stop_now(&why, |st| {
            st.broken.get_or_insert(why.clone());
        });
    }

    /// Python's `Pool.terminate()`: stop now, killing the workers; work
    /// not finished fails with "the pool was terminated".
    pub(crate) fn terminate(&self) {
        self.stop_now(&Broken::Terminated, |st| {
            st.shutdown = true;
            st.terminated = true;
        });
    }

    /// Marks the state (`mark`), fails the queued work with `why` and kills
    /// every worker (their drivers fail what they held and end).
    fn stop_now(&self, why: &Broken, mark: impl FnOnce(&mut State)) {
        let slots = {
            let mut st = self.state.lock();
            mark(&mut st);
            st.slots.clone()
        };
        self.all_ready.set();
        self.queue.shutdown(false);
        while let Ok(job) = self.queue.get_nowait() {
            job.fail(broken(why));
        }
        for s in slots {
            s.kill();
        }
    }

    /// No new work; with `cancel_futures`, queued work is cancelled. The
    /// drivers finish what is queued, then close their workers.
    pub(crate) fn shutdown(&self, cancel_futures: bool) {
        self.state.lock().shutdown = true;
        if cancel_futures {
            while let Ok(job) = self.queue.get_nowait() {
                job.cancel();
            }
        }
        self.queue.shutdown(false);
    }

    /// Waits for every driver (and so every worker) to end.
    pub(crate) fn join(&self) {
        loop {
            let drivers = std::mem::take(&mut self.state.lock().drivers);
            if drivers.is_empty() {
                return;
            }
            for d in drivers {
                let _ = d.join();
            }
        }
    }
}
