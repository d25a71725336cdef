//! Waiting on a 32-bit word in shared memory: a futex on Linux (shared,
//! not private: the word lives in a mapping of several processes); a short
//! sleep loop elsewhere.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Every sleeper, whatever its bits (the futex's `FUTEX_BITSET_MATCH_ANY`).
pub(crate) const ALL: u32 = u32::MAX;

/// Sleeps while `*word == expected`, at most `timeout`, as a sleeper of
/// the kinds in `bits` (a wake for other bits passes it by); returns on a
/// wake, a change, a signal or the timeout (callers re-check).
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>, bits: u32) {
    crate::sys::futex::wait(word, expected, timeout, bits)
}

/// Wakes up to `n` sleepers on `word`.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    wake_bits(word, n, ALL)
}

/// Wakes up to `n` sleepers on `word` whose bits meet `bits`.
pub(crate) fn wake_bits(word: &AtomicU32, n: u32, bits: u32) {
    crate::sys::futex::wake(word, n, bits)
}

/// What a [`wait_for`] sleeps on: the futex word, the count of its
/// registered sleepers, the sleeper's kind bits and the longest one sleep
/// may last (a bound on a wake that a killed waker never sent).
#[derive(Clone, Copy)]
pub(crate) struct On<'a> {
    pub(crate) word: &'a AtomicU32,
    pub(crate) sleepers: &'a AtomicU32,
    pub(crate) bits: u32,
    pub(crate) slice: Option<Duration>,
}

impl<'a> On<'a> {
    /// Sleep on `word`, counted in `sleepers`, woken by every wake.
    pub(crate) fn new(word: &'a AtomicU32, sleepers: &'a AtomicU32) -> On<'a> {
        On {
            word,
            sleepers,
            bits: ALL,
            slice: None,
        }
    }

    /// Only woken by wakes that name one of `bits`.
    pub(crate) fn bits(self, bits: u32) -> On<'a> {
        On { bits, ..self }
    }

    /// Never sleep longer than `slice` at once.
    pub(crate) fn slice(self, slice: Duration) -> On<'a> {
        On {
            slice: Some(slice),
            ..self
        }
    }
}

/// How long one sleep lasts at most while an in-process cancel flag is
/// watched (a cancelled async waiter's sleeper also gets a wake, so this
/// only bounds a missed one).
const SLICE: Duration = Duration::from_millis(50);

/// What a [`wait_for`] step found at the value it was shown.
pub(crate) enum Step<R> {
    /// The wait is over, with this answer.
    Done(R),
    /// Nothing to do while the word keeps the value the step was shown:
    /// sleep until it changes.
    Blocked,
    /// The word moved under the step (a lost race for a permit): look
    /// again at once, without sleeping on a value that no longer holds.
    Again,
}

/// The one wait loop of the cross-process primitives. Calls `step` with
/// the current value of `on.word`; [`Step::Done`] ends the wait,
/// [`Step::Blocked`] sleeps until `word` changes and [`Step::Again`]
/// looks again. Returns `None` once `deadline` passes or `cancel` is set.
///
/// The protocol (checked by the models in `models/`): the waiter
/// registers in `sleepers` *before* it reads the value its step judges,
/// and sleeps only on that value. A waker changes the word first and then
/// reads `sleepers` (both sequentially consistent), so either the waker
/// sees the registration and wakes the futex, or the waiter's read sees
/// the change; and a change that lands before the waiter's `FUTEX_WAIT`
/// makes it return at once. Never sleeping on a value read before the
/// registration is what rules out the lost wake-up (a waiter that read a
/// positive count, lost the race for it, and slept on that count after a
/// release had restored it without seeing a sleeper).
pub(crate) fn wait_for<R>(
    on: On<'_>,
    deadline: Option<std::time::Instant>,
    cancel: Option<&std::sync::atomic::AtomicBool>,
    mut step: impl FnMut(u32) -> Step<R>,
) -> Option<R> {
    use std::sync::atomic::Ordering::SeqCst;
    let (word, sleepers) = (on.word, on.sleepers);
    loop {
        // An unregistered look first: the common case ends here with no
        // write to the shared sleepers word, and a waiter woken at its
        // deadline still takes what the wake was for.
        if let Step::Done(r) = step(word.load(SeqCst)) {
            return Some(r);
        }
        if cancel.is_some_and(|c| c.load(SeqCst)) {
            return None;
        }
        let mut slice = match deadline {
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return None,
            },
            None => None,
        };
        let most = match (cancel.is_some(), on.slice) {
            (true, Some(s)) => Some(s.min(SLICE)),
            (true, None) => Some(SLICE),
            (false, s) => s,
        };
        if let Some(m) = most {
            slice = Some(slice.map_or(m, |s| s.min(m)));
        }
        sleepers.fetch_add(1, SeqCst);
        let seen = word.load(SeqCst);
        let found = step(seen);
        if let Step::Blocked = found {
            // A change since `seen` makes the futex return at once.
            wait(word, seen, slice, on.bits);
        }
        sleepers.fetch_sub(1, SeqCst);
        if let Step::Done(r) = found {
            return Some(r);
        }
    }
}
