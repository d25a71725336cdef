//! The one FIFO wait list.
//!
//! A [`WaitList<S>`] is a mutex around a primitive's own state `S` and a
//! doubly linked FIFO of waiters stored in a slab (no allocation per wait
//! once the slab has grown, no `unsafe`). An entry is either an async task
//! (its `Waker`) or a parked OS thread (its `Thread` handle): both kinds live
//! in the same queue and are woken in the same order.
//!
//! Entries are `Waiting` or `Notified(tag)`. Notified entries always form a
//! prefix of the queue (`first_waiting` points just past it), so notifying
//! `n` more waiters is O(n) whatever the queue length. A notification is
//! consumed only by the entry's owner (the operation that registered it):
//! notifiers mark and wake, they never remove. An owner that is dropped while
//! notified can pass its notification on to the next waiter
//! ([`Locked::cancel`] with `pass_on`), which is how no notification is ever
//! lost to cancellation.
//!
//! Wakers are never called with the mutex held: [`Locked`] collects them and
//! wakes them after unlocking, so a waker that re-enters the primitive cannot
//! deadlock.

use std::task::Waker;

use crate::shim::{self, Mutex, MutexGuard, thread::Thread};

/// A small value a notifier hands to the waiters it wakes (a barrier index,
/// a "broken" marker...). Primitives that need nothing pass 0.
pub(crate) type Tag = usize;

const NIL: u32 = u32::MAX;

/// What a waiting operation offers to be woken by.
#[derive(Clone, Copy)]
pub(crate) enum Waiter<'a> {
    /// An async task: wake its waker.
    Task(&'a Waker),
    /// A parked OS thread: unpark it.
    Thread(&'a Thread),
    /// Do not register: the caller is only trying (the spin phase of the
    /// blocking driver). Operations return `Pending` instead of waiting.
    Never,
}

/// A stored way to wake one waiter.
pub(crate) enum Wake {
    Task(Waker),
    Thread(Thread),
}

impl Wake {
    fn from_waiter(w: &Waiter<'_>) -> Option<Wake> {
        match w {
            Waiter::Task(w) => Some(Wake::Task((*w).clone())),
            Waiter::Thread(t) => Some(Wake::Thread((*t).clone())),
            Waiter::Never => None,
        }
    }

    /// Replaces the stored waker when the task's waker changed.
    fn update(slot: &mut Option<Wake>, w: &Waiter<'_>) {
        match (slot.as_ref(), w) {
            (Some(Wake::Task(old)), Waiter::Task(new)) if old.will_wake(new) => {}
            (Some(Wake::Thread(_)), Waiter::Thread(_)) => {}
            (_, Waiter::Never) => {}
            _ => *slot = Wake::from_waiter(w),
        }
    }

    pub(crate) fn wake(self) {
        match self {
            Wake::Task(w) => w.wake(),
            Wake::Thread(t) => t.unpark(),
        }
    }
}

/// Wakers collected under the lock, woken after it is released.
#[derive(Default)]
pub(crate) struct WakeBuf {
    first: Option<Wake>,
    rest: Vec<Wake>,
}

impl WakeBuf {
    fn push(&mut self, w: Wake) {
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.rest.push(w);
        }
    }

    /// Wakes everything collected so far.
    pub(crate) fn wake_all(&mut self) {
        if let Some(w) = self.first.take() {
            w.wake();
        }
        for w in self.rest.drain(..) {
            w.wake();
        }
    }
}

impl Drop for WakeBuf {
    fn drop(&mut self) {
        self.wake_all();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum EntryState {
    Waiting,
    Notified(Tag),
}

struct Entry {
    state: EntryState,
    wake: Option<Wake>,
    /// Insertion sequence number; entries re-inserted at the front get 0.
    seq: u64,
    prev: u32,
    next: u32,
}

enum Slot {
    Used(Entry),
    Free { next_free: u32 },
}

/// The registration of one waiting operation. Deliberately neither `Clone`
/// nor `Copy`: only its owner can look at or remove its entry, which is what
/// makes slot reuse safe.
#[derive(Debug)]
pub(crate) struct Key(u32);

/// The queue itself (always used under the [`WaitList`] mutex).
pub(crate) struct List {
    slots: Vec<Slot>,
    free: u32,
    head: u32,
    tail: u32,
    first_waiting: u32,
    waiting: usize,
    notified: usize,
    next_seq: u64,
}

impl List {
    const fn new() -> List {
        List {
            slots: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            first_waiting: NIL,
            waiting: 0,
            notified: 0,
            next_seq: 1,
        }
    }

    fn entry(&self, i: u32) -> &Entry {
        match &self.slots[i as usize] {
            Slot::Used(e) => e,
            Slot::Free { .. } => unreachable!("wait list: key points to a free slot"),
        }
    }

    fn entry_mut(&mut self, i: u32) -> &mut Entry {
        match &mut self.slots[i as usize] {
            Slot::Used(e) => e,
            Slot::Free { .. } => unreachable!("wait list: key points to a free slot"),
        }
    }

    fn alloc(&mut self, e: Entry) -> u32 {
        if self.free != NIL {
            let i = self.free;
            match self.slots[i as usize] {
                Slot::Free { next_free } => self.free = next_free,
                Slot::Used(_) => unreachable!("wait list: corrupt free list"),
            }
            self.slots[i as usize] = Slot::Used(e);
            i
        } else {
            let i = u32::try_from(self.slots.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("wait list: more than u32::MAX - 1 waiters");
            self.slots.push(Slot::Used(e));
            i
        }
    }

    /// Links `i` before `at` (or at the back when `at` is NIL).
    fn link_before(&mut self, i: u32, at: u32) {
        let prev = if at == NIL {
            self.tail
        } else {
            self.entry(at).prev
        };
        {
            let e = self.entry_mut(i);
            e.prev = prev;
            e.next = at;
        }
        if prev == NIL {
            self.head = i;
        } else {
            self.entry_mut(prev).next = i;
        }
        if at == NIL {
            self.tail = i;
        } else {
            self.entry_mut(at).prev = i;
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let e = self.entry(i);
            (e.prev, e.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.entry_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.entry_mut(next).prev = prev;
        }
        if self.first_waiting == i {
            self.first_waiting = next;
        }
    }

    fn insert(&mut self, w: &Waiter<'_>, front: bool) -> Key {
        let seq = if front {
            0
        } else {
            let s = self.next_seq;
            self.next_seq += 1;
            s
        };
        let i = self.alloc(Entry {
            state: EntryState::Waiting,
            wake: Wake::from_waiter(w),
            seq,
            prev: NIL,
            next: NIL,
        });
        if front {
            self.link_before(i, self.first_waiting);
            self.first_waiting = i;
        } else {
            self.link_before(i, NIL);
            if self.first_waiting == NIL {
                self.first_waiting = i;
            }
        }
        self.waiting += 1;
        Key(i)
    }

    fn remove(&mut self, key: Key) -> EntryState {
        let i = key.0;
        self.unlink(i);
        let e = std::mem::replace(
            &mut self.slots[i as usize],
            Slot::Free {
                next_free: self.free,
            },
        );
        self.free = i;
        let Slot::Used(e) = e else {
            unreachable!("wait list: removing a free slot")
        };
        match e.state {
            EntryState::Waiting => self.waiting -= 1,
            EntryState::Notified(_) => self.notified -= 1,
        }
        // Release the slab's memory once a burst of waiters is gone.
        if self.head == NIL && self.slots.len() > 1024 {
            self.slots = Vec::new();
            self.free = NIL;
        }
        e.state
    }

    /// Marks up to `n` waiting entries (oldest first) notified, stopping at
    /// the first one whose sequence number is `>= limit`.
    fn notify(
        &mut self,
        n: usize,
        limit: u64,
        tag: &mut dyn FnMut() -> Tag,
        wakes: &mut WakeBuf,
    ) -> usize {
        let mut done = 0;
        while done < n && self.first_waiting != NIL {
            let i = self.first_waiting;
            let e = self.entry_mut(i);
            if e.seq >= limit {
                break;
            }
            e.state = EntryState::Notified(tag());
            let w = e.wake.take();
            let next = e.next;
            if let Some(w) = w {
                wakes.push(w);
            }
            self.first_waiting = next;
            self.waiting -= 1;
            self.notified += 1;
            done += 1;
        }
        done
    }
}

/// A primitive's state `S` and its `N` wait queues (one for most
/// primitives; a queue has getters, putters and joiners), behind one mutex.
pub(crate) struct WaitList<S = (), const N: usize = 1> {
    inner: Mutex<Inner<S, N>>,
}

struct Inner<S, const N: usize> {
    state: S,
    lists: [List; N],
}

impl<S, const N: usize> WaitList<S, N> {
    pub(crate) fn new(state: S) -> WaitList<S, N> {
        WaitList {
            inner: Mutex::new(Inner {
                state,
                lists: std::array::from_fn(|_| List::new()),
            }),
        }
    }

    /// Locks the state and the queues. Wakers of entries notified through
    /// the returned guard are woken when it is dropped, after the unlock.
    pub(crate) fn lock(&self) -> Locked<'_, S, N> {
        Locked {
            guard: shim::lock(&self.inner),
            wakes: WakeBuf::default(),
        }
    }

    /// How many entries of queue `i` are registered (waiting or notified
    /// but not yet consumed).
    pub(crate) fn len_of(&self, i: usize) -> usize {
        let mut l = self.lock();
        let q = l.queue(i);
        q.waiting() + q.notified()
    }

    /// Notifies every entry of queue `i` registered before this call, in
    /// batches, so that a million waiters are woken without holding the lock
    /// for all of them and without a million-entry buffer. Entries
    /// registered while this runs are left waiting. Returns how many were
    /// notified.
    pub(crate) fn notify_all_of(&self, i: usize, tag: Tag) -> usize {
        const BATCH: usize = 64;
        let mut total = 0;
        let mut limit = None;
        loop {
            let mut l = self.lock();
            let mut q = l.queue(i);
            let lim = *limit.get_or_insert(q.next_seq());
            let n = q.notify_before(BATCH, lim, tag);
            total += n;
            if n < BATCH {
                return total;
            }
            // `l` drops here: unlock, then wake this batch.
        }
    }
}

impl<S> WaitList<S, 1> {
    /// [`WaitList::len_of`] the only queue.
    pub(crate) fn len(&self) -> usize {
        self.len_of(0)
    }

    /// [`WaitList::notify_all_of`] the only queue.
    pub(crate) fn notify_all(&self, tag: Tag) -> usize {
        self.notify_all_of(0, tag)
    }
}

/// The locked state and queues of a [`WaitList`].
pub(crate) struct Locked<'a, S, const N: usize = 1> {
    // Field order matters: the mutex guard drops (unlocks) before the wakers
    // in `wakes` are woken.
    guard: MutexGuard<'a, Inner<S, N>>,
    wakes: WakeBuf,
}

impl<S, const N: usize> Locked<'_, S, N> {
    /// The primitive's own state.
    pub(crate) fn state(&mut self) -> &mut S {
        &mut self.guard.state
    }

    /// Queue `i`, to register in or notify.
    pub(crate) fn queue(&mut self, i: usize) -> Queue<'_> {
        let Locked { guard, wakes } = self;
        Queue {
            list: &mut guard.lists[i],
            wakes,
        }
    }

    /// The state and queue `i` at once.
    #[cfg_attr(not(feature = "queue"), allow(dead_code))]
    pub(crate) fn split(&mut self, i: usize) -> (&mut S, Queue<'_>) {
        let Locked { guard, wakes } = self;
        let inner = &mut **guard;
        (
            &mut inner.state,
            Queue {
                list: &mut inner.lists[i],
                wakes,
            },
        )
    }
}

/// The single-queue shorthand most primitives use.
impl<S> Locked<'_, S, 1> {
    /// How many entries are waiting (not yet notified).
    pub(crate) fn waiting(&self) -> usize {
        self.guard.lists[0].waiting
    }

    /// How many entries were notified and have not been consumed yet.
    pub(crate) fn notified(&self) -> usize {
        self.guard.lists[0].notified
    }

    /// [`Queue::insert`] on the only queue.
    pub(crate) fn insert(&mut self, key: &mut Option<Key>, w: &Waiter<'_>, front: bool) {
        self.queue(0).insert(key, w, front)
    }

    /// [`Queue::poll`] on the only queue.
    pub(crate) fn poll(&mut self, key: &Option<Key>, w: &Waiter<'_>) -> Option<Tag> {
        self.queue(0).poll(key, w)
    }

    /// [`Queue::remove`] on the only queue.
    pub(crate) fn remove(&mut self, key: &mut Option<Key>) -> Option<EntryState> {
        self.queue(0).remove(key)
    }

    /// [`Queue::cancel`] on the only queue.
    pub(crate) fn cancel(&mut self, key: &mut Option<Key>, pass_on: bool) -> Option<Tag> {
        self.queue(0).cancel(key, pass_on)
    }

    /// [`Queue::rearm`] on the only queue.
    pub(crate) fn rearm(&mut self, key: &Option<Key>, w: &Waiter<'_>) {
        self.queue(0).rearm(key, w)
    }

    /// [`Queue::notify`] on the only queue.
    pub(crate) fn notify(&mut self, n: usize, tag: Tag) -> usize {
        self.queue(0).notify(n, tag)
    }

    /// [`Queue::notify_with`] on the only queue.
    pub(crate) fn notify_with(
        &mut self,
        n: usize,
        limit: u64,
        tag: &mut dyn FnMut() -> Tag,
    ) -> usize {
        self.queue(0).notify_with(n, limit, tag)
    }

    /// [`Queue::next_seq`] of the only queue.
    pub(crate) fn next_seq(&self) -> u64 {
        self.guard.lists[0].next_seq
    }
}

/// One queue of a locked [`WaitList`].
pub(crate) struct Queue<'a> {
    list: &'a mut List,
    wakes: &'a mut WakeBuf,
}

impl Queue<'_> {
    /// How many entries are waiting (not yet notified).
    pub(crate) fn waiting(&self) -> usize {
        self.list.waiting
    }

    /// How many entries were notified and have not been consumed yet.
    pub(crate) fn notified(&self) -> usize {
        self.list.notified
    }

    /// Registers a new waiting entry. `front` puts it ahead of every waiting
    /// entry (used when a woken waiter lost its race and must keep its turn).
    ///
    /// # Panics
    /// If `key` is already registered or `w` is [`Waiter::Never`] (both are
    /// internal bugs).
    #[track_caller]
    pub(crate) fn insert(&mut self, key: &mut Option<Key>, w: &Waiter<'_>, front: bool) {
        assert!(key.is_none(), "wait list: entry registered twice");
        assert!(
            !matches!(w, Waiter::Never),
            "wait list: registering a non-waiting caller"
        );
        *key = Some(self.list.insert(w, front));
    }

    /// Looks at a registered entry: `Some(tag)` if it was notified (the entry
    /// stays registered: [`Queue::remove`] consumes it), otherwise refreshes
    /// its waker and returns `None`.
    pub(crate) fn poll(&mut self, key: &Option<Key>, w: &Waiter<'_>) -> Option<Tag> {
        let k = key.as_ref()?;
        let e = self.list.entry_mut(k.0);
        match e.state {
            EntryState::Notified(tag) => Some(tag),
            EntryState::Waiting => {
                Wake::update(&mut e.wake, w);
                None
            }
        }
    }

    /// Removes a registered entry (consuming its notification, if any) and
    /// returns the state it was in.
    pub(crate) fn remove(&mut self, key: &mut Option<Key>) -> Option<EntryState> {
        let k = key.take()?;
        Some(self.list.remove(k))
    }

    /// Removes an entry whose owner gives up (dropped, timed out). If it had
    /// been notified and `pass_on` is set, the notification goes to the next
    /// waiting entry with the same tag. Returns the tag if it was notified.
    pub(crate) fn cancel(&mut self, key: &mut Option<Key>, pass_on: bool) -> Option<Tag> {
        match self.remove(key)? {
            EntryState::Waiting => None,
            EntryState::Notified(tag) => {
                if pass_on {
                    self.notify(1, tag);
                }
                Some(tag)
            }
        }
    }

    /// Puts a notified entry back to waiting, ahead of all other waiting
    /// entries, refreshing its waker.
    pub(crate) fn rearm(&mut self, key: &Option<Key>, w: &Waiter<'_>) {
        let k = key
            .as_ref()
            .expect("wait list: rearm of an unregistered entry");
        let i = k.0;
        let list = &mut *self.list;
        if list.entry(i).state == EntryState::Waiting {
            Wake::update(&mut list.entry_mut(i).wake, w);
            return;
        }
        list.unlink(i);
        list.link_before(i, list.first_waiting);
        list.first_waiting = i;
        list.notified -= 1;
        list.waiting += 1;
        let e = list.entry_mut(i);
        e.state = EntryState::Waiting;
        e.seq = 0;
        Wake::update(&mut e.wake, w);
    }

    /// Notifies up to `n` more waiting entries (oldest first) with `tag`.
    /// Returns how many were notified.
    pub(crate) fn notify(&mut self, n: usize, tag: Tag) -> usize {
        self.notify_with(n, u64::MAX, &mut || tag)
    }

    /// Like [`Queue::notify_before`], with a tag computed per entry in FIFO
    /// order.
    pub(crate) fn notify_with(
        &mut self,
        n: usize,
        limit: u64,
        tag: &mut dyn FnMut() -> Tag,
    ) -> usize {
        self.list.notify(n, limit, tag, self.wakes)
    }

    /// Notifies up to `n` waiting entries registered before sequence number
    /// `limit` (see [`Queue::next_seq`]).
    pub(crate) fn notify_before(&mut self, n: usize, limit: u64, tag: Tag) -> usize {
        self.list.notify(n, limit, &mut || tag, self.wakes)
    }

    /// The sequence number the next registered entry will get: entries
    /// registered from now on compare `>=` to it.
    pub(crate) fn next_seq(&self) -> u64 {
        self.list.next_seq
    }
}
