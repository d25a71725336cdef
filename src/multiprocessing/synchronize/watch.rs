//! Async waits across processes on the one wait core.
//!
//! A futex cannot be polled, so some OS thread must sleep in the kernel
//! for an async waiter. Here it is one thread per process per watched word
//! (a semaphore's count, an event's flag word, a queue ring's selector for
//! its getters or its putters), however many tasks wait on it: the tasks
//! queue on a [`WaitList`] of the wait core, and the watch's thread sleeps
//! on the word for all of them (each task counts in the word's shared
//! sleeper count, as a blocking sleeper does, so wakers wake the futex and
//! `n_waiting` counts tasks). When the word changes (or a waker in another process wakes the futex) the thread asks
//! the word's [`Policy`] how many waiters the change may let through and
//! notifies that many, oldest first; each woken task takes what it came
//! for in its own poll (a permit by one CAS, an item under the ring's
//! lock) or queues again at the front. The thread ends once no task waits,
//! and the next waiter starts a new one.
//!
//! A watch may also *grant* ([`wait_granted`]): its thread takes what a
//! waiter waits for on the waiter's behalf (a condition's notification,
//! acknowledged to the notifier at once) and notifies it as granted, so a
//! notifier that waits for its sleepers to wake never waits for a task to
//! be polled (it may be blocking the very thread that would poll it). A
//! granted waiter dropped before it saw its grant passes the grant to the
//! next waiter here, or gives it back.
//!
//! Cancellation is the wait core's: a dropped waiter that was not notified
//! leaves the list and wakes nobody; one that was notified passes the
//! notification to the next waiter (what it was woken for is still in the
//! shared word, since it took nothing). Timeouts are tokio timers on the
//! waiting task ([`WaitFuture`]), so the thread never needs a deadline.
//!
//! No wake-up is lost between a task and the thread: a task registers,
//! then looks at the word again before it sleeps; the thread loads the
//! word, notifies by that value, and sleeps on exactly that value, so a
//! change after the load makes its futex wait return at once. A wake that
//! a killed process never sent costs at most [`SLICE`], after which the
//! thread looks again.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use super::block::Block;
use super::futex::{self, Step};
use crate::wait::{Key, WaitCx, WaitFuture, WaitList, WaitOp};

/// The longest one sleep of a watch's thread lasts.
const SLICE: Duration = Duration::from_millis(100);

/// How many waiters a change of a watched word may let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    None,
    /// Up to this many (a semaphore's count).
    Some(u32),
    All,
}

/// A word's rule: given the value the thread saw last and the value now.
pub(crate) type Policy = fn(prev: u32, now: u32) -> Wake;

/// A counting semaphore's word: as many as there are permits.
pub(crate) fn by_count(_prev: u32, now: u32) -> Wake {
    if now == 0 {
        Wake::None
    } else {
        Wake::Some(now)
    }
}

/// Any change may concern every waiter (a queue ring's selector).
pub(crate) fn on_change(prev: u32, now: u32) -> Wake {
    if now != prev { Wake::All } else { Wake::None }
}

/// What a granting watch does for its waiters (see [`wait_granted`]).
#[derive(Clone, Copy)]
pub(crate) struct Grant {
    /// Takes one waiter's due from the block (false: nothing to take).
    pub(crate) take: fn(&Block) -> bool,
    /// Gives back a due taken for a waiter that left before it saw it.
    pub(crate) give_back: fn(&Block),
    /// What a waiter that leaves without a grant owes (a sleeper's
    /// acknowledgement).
    pub(crate) leave: fn(&Block),
}

/// The tag of a granted notification.
const GRANTED: crate::wait::list::Tag = 1;
/// What a granting wait's step is shown for its grant (never a word's
/// value there: its step sees nothing else).
const GRANTED_WORD: u32 = u32::MAX;

/// One process's watch over one word of a block.
pub(crate) struct Watch {
    word: usize,
    sleepers: usize,
    bits: u32,
    policy: Policy,
    grant: Option<Grant>,
    /// The waiting tasks, and the thread's state.
    list: WaitList<State>,
}

#[derive(Default)]
struct State {
    /// Whether the thread runs.
    running: bool,
    /// The thread, parked until every task it notified has polled.
    settling: Option<std::thread::Thread>,
}

impl State {
    /// After a notified task polled (took its due, queued again or left):
    /// the settling thread, to unpark, once none is left to poll.
    fn settled(&mut self, notified: usize) -> Option<std::thread::Thread> {
        if notified == 0 {
            self.settling.take()
        } else {
            None
        }
    }
}

/// A block's watches in this process (one per word and kind of waiter).
#[derive(Default)]
pub(crate) struct Watches(Mutex<Vec<Arc<Watch>>>);

impl Watches {
    fn get(&self, spec: Spec, grant: Option<Grant>) -> Arc<Watch> {
        let Spec {
            word,
            sleepers,
            bits,
            policy,
        } = spec;
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = all.iter().find(|w| w.word == word && w.bits == bits) {
            return w.clone();
        }
        let w = Arc::new(Watch {
            word,
            sleepers,
            bits,
            policy,
            grant,
            list: WaitList::new(State::default()),
        });
        all.push(w.clone());
        w
    }
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |v| v.len());
        f.debug_struct("Watches").field("words", &n).finish()
    }
}

/// What an async wait on a word watches: the word and sleeper count (byte
/// offsets in the block), the futex bits its wakers use and its policy.
#[derive(Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) word: usize,
    pub(crate) sleepers: usize,
    pub(crate) bits: u32,
    pub(crate) policy: Policy,
}

/// Waits, as a task, until `step` (shown the word's value) is done, or
/// `deadline` passes (`None`). `step` may take what it waits for (a CAS);
/// it runs in the task's poll, so a dropped wait has taken nothing.
pub(crate) async fn wait<R>(
    block: &Arc<Block>,
    spec: Spec,
    deadline: Option<Instant>,
    step: impl FnMut(u32) -> Step<R> + Unpin,
) -> Option<R> {
    let watch = block.watches().get(spec, None);
    let op = Waiting {
        block,
        watch,
        key: None,
        step,
        done: false,
    };
    WaitFuture::deadline(op, deadline.map(tokio::time::Instant::from_std)).await
}

/// Waits, as a task, until the watch's thread grants it its due (true) or
/// `deadline` passes (false; `grant.leave` has then run for it, as it runs
/// for a wait dropped without a grant). The task never takes anything
/// itself: the thread takes it with `grant.take` and notifies the oldest
/// waiter.
pub(crate) async fn wait_granted(
    block: &Arc<Block>,
    spec: Spec,
    grant: Grant,
    deadline: Option<Instant>,
) -> bool {
    let watch = block.watches().get(spec, Some(grant));
    let op = Waiting {
        block,
        watch,
        key: None,
        step: |v| {
            if v == GRANTED_WORD {
                Step::Done(())
            } else {
                Step::Blocked
            }
        },
        done: false,
    };
    WaitFuture::deadline(op, deadline.map(tokio::time::Instant::from_std))
        .await
        .is_some()
}

struct Waiting<'a, F> {
    block: &'a Arc<Block>,
    watch: Arc<Watch>,
    key: Option<Key>,
    step: F,
    /// Returned its answer: nothing left to undo.
    done: bool,
}

impl<F> Waiting<'_, F> {
    /// Leaves the list; a notification it held goes to the next waiter.
    /// With no waiter here to take it, the futex wake the thread consumed
    /// for it goes back to every sleeper of the word (in other processes
    /// too), since what woke it is still in the shared word: a rare case
    /// (woken, then dropped before its next poll), and never a lost one.
    fn leave(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        if let Some(g) = self.watch.grant {
            // A grant goes to the next waiter here, or back; a waiter that
            // ends with none (its grant passed on, or never had one) owes
            // what a leaving waiter owes.
            match self.unregister(true) {
                (true, false, _) => (g.give_back)(self.block),
                _ => (g.leave)(self.block),
            }
            return;
        }
        let (had, _, nobody) = self.unregister(true);
        if had && nobody {
            futex::wake_bits(self.block.u32(self.watch.word), u32::MAX, self.watch.bits);
        }
    }

    /// Takes the entry out of the list (passing a notification on, or
    /// consuming it) and out of the shared sleeper count, and unparks a
    /// settling thread this was the last to keep waiting. Returns whether
    /// it had been notified, whether that notification went on to another
    /// waiter, and whether no one is left in the list.
    fn unregister(&mut self, pass_on: bool) -> (bool, bool, bool) {
        if self.key.is_none() {
            return (false, false, false);
        }
        let mut l = self.watch.list.lock();
        let (had, passed) = match l.remove(&mut self.key) {
            Some(crate::wait::list::EntryState::Notified(tag)) => {
                (true, pass_on && l.notify(1, tag) > 0)
            }
            _ => (false, false),
        };
        let (notified, waiting) = (l.notified(), l.waiting());
        let settled = l.state().settled(notified);
        drop(l);
        self.block.u32(self.watch.sleepers).fetch_sub(1, SeqCst);
        if let Some(t) = settled {
            t.unpark();
        }
        (had, passed, waiting == 0 && notified == 0)
    }
}

impl<F> Drop for Waiting<'_, F> {
    fn drop(&mut self) {
        self.leave();
    }
}

impl<R, F: FnMut(u32) -> Step<R> + Unpin> WaitOp for Waiting<'_, F> {
    type Output = Option<R>;
    const SPIN: bool = false;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<Option<R>> {
        let word = self.block.u32(self.watch.word);
        let mut registered = false;
        loop {
            if self.watch.grant.is_some() && self.key.is_some() {
                let granted = {
                    let mut l = self.watch.list.lock();
                    l.poll(&self.key, cx.waiter()) == Some(GRANTED)
                };
                if granted {
                    // Its due was taken for it: used up, not passed on.
                    self.unregister(false);
                    self.done = true;
                    if let Step::Done(r) = (self.step)(GRANTED_WORD) {
                        return Poll::Ready(Some(r));
                    }
                    unreachable!("a granting wait's step answers a grant");
                }
            }
            // A granting wait never takes for itself: its thread does.
            let found = if self.watch.grant.is_some() {
                Step::Blocked
            } else {
                (self.step)(word.load(SeqCst))
            };
            match found {
                Step::Done(r) => {
                    // Took what it waited for: its notification (if any)
                    // is used up, not passed on.
                    self.unregister(false);
                    self.done = true;
                    return Poll::Ready(Some(r));
                }
                Step::Again => continue,
                Step::Blocked => {}
            }
            if registered {
                // Registered and still blocked after a last look.
                return Poll::Pending;
            }
            if cx.timed_out() {
                self.leave();
                return Poll::Ready(None);
            }
            if !cx.can_wait() {
                return Poll::Pending;
            }
            let (start, settled) = {
                let mut l = self.watch.list.lock();
                if self.key.is_none() {
                    l.insert(&mut self.key, cx.waiter(), false);
                    // Each waiting task counts as a sleeper of the word, as
                    // a blocking sleeper does: wakers then wake the futex
                    // (the thread), and `n_waiting` counts tasks too.
                    self.block.u32(self.watch.sleepers).fetch_add(1, SeqCst);
                } else {
                    // Notified (or not): waiting again, keeping its turn.
                    l.rearm(&self.key, cx.waiter());
                }
                let idle = !l.state().running;
                l.state().running = true;
                let n = l.notified();
                (idle, l.state().settled(n))
            };
            if let Some(t) = settled {
                t.unpark();
            }
            if start && !self.start_thread() {
                // No thread to be had (the OS refused one): look again on
                // the next turn of the runtime rather than hang.
                if let crate::wait::list::Waiter::Task(w) = cx.waiter() {
                    w.wake_by_ref();
                }
            }
            registered = true;
        }
    }
}

impl<F> Waiting<'_, F> {
    /// Starts the watch's thread; false if the OS refused one (then no
    /// thread runs).
    fn start_thread(&self) -> bool {
        let (block, watch) = (self.block.clone(), self.watch.clone());
        let spawned = std::thread::Builder::new()
            .name("conex-xwait".into())
            .spawn(move || run(&block, &watch));
        if spawned.is_err() {
            self.watch.list.lock().state().running = false;
            return false;
        }
        true
    }
}

/// Parks the thread until every task it notified has polled (at most
/// [`SLICE`]: a task whose runtime stopped polling it holds no one up).
/// Only then does it look at the word again, so it never sleeps on a
/// value it let tasks act on: a permit taken and given back in between
/// (the same count again) would otherwise be a change it sleeps through.
fn settle(w: &Watch) {
    let end = Instant::now() + SLICE;
    loop {
        {
            let mut l = w.list.lock();
            if l.notified() == 0 {
                l.state().settling = None;
                return;
            }
            l.state().settling = Some(std::thread::current());
        }
        let now = Instant::now();
        if now >= end {
            w.list.lock().state().settling = None;
            return;
        }
        std::thread::park_timeout(end - now);
    }
}

/// The watch's thread: sleeps on the word for every waiting task of this
/// process, and notifies as many as each change allows.
fn run(block: &Block, w: &Watch) {
    let word = block.u32(w.word);
    let mut prev = word.load(SeqCst);
    let mut first = true;
    // The value a surplus wake-up was last passed on for.
    let mut passed = None;
    loop {
        let seen = word.load(SeqCst);
        if seen != prev {
            passed = None;
        }
        // The first look judges the value as it stands (a waiter
        // registered on it); later ones judge the change.
        let judged = if first { seen.wrapping_add(1) } else { prev };
        let wake = (w.policy)(judged, seen);
        let (surplus, pending) = {
            let mut l = w.list.lock();
            if l.waiting() == 0 {
                // Nobody waits (notified tasks that queue again start a
                // new thread). A futex wake this thread took since its
                // last look may have been meant for a sleeper elsewhere:
                // it goes on to one, with what it was for.
                l.state().running = false;
                drop(l);
                let pass = match wake {
                    Wake::None => 0,
                    Wake::Some(k) => k,
                    Wake::All => u32::from(!first),
                };
                if pass > 0 {
                    futex::wake_bits(word, pass, w.bits);
                }
                return;
            }
            if let Some(g) = w.grant {
                // Take each waiter's due for it, oldest first, while there
                // is one to take; what is left over for want of waiters
                // here is surplus, as below.
                let k = match wake {
                    Wake::None => 0,
                    Wake::Some(k) => k as usize,
                    Wake::All => usize::MAX,
                };
                let mut granted = 0;
                while granted < k && l.waiting() > 0 && (g.take)(block) {
                    l.notify(1, GRANTED);
                    granted += 1;
                }
                let surplus = if l.waiting() == 0 && k != usize::MAX {
                    k - granted
                } else {
                    0
                };
                // Nothing to settle: the thread took what it handed out.
                (surplus, false)
            } else {
                let surplus = match wake {
                    Wake::None => 0,
                    Wake::Some(k) => {
                        l.notify((k as usize).saturating_sub(l.notified()), 0);
                        (k as usize).saturating_sub(l.notified())
                    }
                    Wake::All => {
                        l.notify(usize::MAX, 0);
                        0
                    }
                };
                (surplus, l.notified() > 0)
            }
        };
        // More permits than waiters here: the futex wake this thread took
        // may have been the only one for a sleeper elsewhere (another
        // process's), so pass that many on, once per value seen (two
        // processes with surplus do not wake each other in a loop).
        if surplus > 0 && passed != Some(seen) {
            passed = Some(seen);
            futex::wake_bits(word, surplus.min(u32::MAX as usize) as u32, w.bits);
        }
        first = false;
        prev = seen;
        if pending {
            // Tasks of this process act on `seen` now: wait for them, then
            // look again, never sleeping on a value they may change and
            // restore (a permit taken and given back).
            settle(w);
            continue;
        }
        // Not a sleeper of its own: the waiting tasks count (they are
        // registered while it runs, so wakers see them), and it sleeps on
        // `seen`, so a change after that load returns at once.
        futex::wait(word, seen, Some(SLICE), w.bits);
    }
}
