//! The queue core: Python's `Queue` (one mutex, three conditions) on the
//! wait core: one lock holds the items, the task count and the shutdown
//! flag, with three wait queues (getters, putters, joiners).
//!
//! An item moves only inside the critical section that completes a `get`
//! or a `put`, so a dropped get never loses an item and a dropped put never
//! inserts one. A put notifies one more getter, a get one more putter; a
//! woken waiter that finds its item or slot taken by a newcomer goes back to
//! the head of its queue; a woken waiter that is dropped passes its turn on.

use std::task::Poll;

use super::errors::{GetError, PutError, TaskDoneError};
use crate::wait::list::{Locked, Queue as WaitQueue};
use crate::wait::{Key, WaitCx, WaitList, WaitOp};

/// The order a queue hands its items out in: [`Fifo`], [`Lifo`] or
/// [`Priority`] (sealed: its workings live in a private module).
pub trait Order<T>: sealed::Buffer<T> + Send + Sync + 'static {}

/// First in, first out (Python: `queue.Queue`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fifo;

/// Last in, first out (Python: `queue.LifoQueue`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifo;

/// Lowest first; equal items in insertion order (Python:
/// `queue.PriorityQueue`, made stable).
#[derive(Debug, Clone, Copy, Default)]
pub struct Priority;

impl<T: Send + 'static> Order<T> for Fifo {}
impl<T: Send + 'static> Order<T> for Lifo {}
impl<T: Ord + Send + 'static> Order<T> for Priority {}

/// The buffers behind each order. Public items of a private module: the
/// queue uses them through the `Order` bound, a user cannot name them.
mod sealed {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, VecDeque};

    use super::{Fifo, Lifo, Priority};

    pub trait Buffer<T> {
        type Buf: Send;
        fn buf() -> Self::Buf;
        fn push(buf: &mut Self::Buf, item: T, seq: u64);
        fn pop(buf: &mut Self::Buf) -> Option<T>;
        fn len(buf: &Self::Buf) -> usize;
    }

    impl<T: Send + 'static> Buffer<T> for Fifo {
        type Buf = VecDeque<T>;
        fn buf() -> VecDeque<T> {
            VecDeque::new()
        }
        fn push(buf: &mut VecDeque<T>, item: T, _: u64) {
            buf.push_back(item);
        }
        fn pop(buf: &mut VecDeque<T>) -> Option<T> {
            buf.pop_front()
        }
        fn len(buf: &VecDeque<T>) -> usize {
            buf.len()
        }
    }

    impl<T: Send + 'static> Buffer<T> for Lifo {
        type Buf = Vec<T>;
        fn buf() -> Vec<T> {
            Vec::new()
        }
        fn push(buf: &mut Vec<T>, item: T, _: u64) {
            buf.push(item);
        }
        fn pop(buf: &mut Vec<T>) -> Option<T> {
            buf.pop()
        }
        fn len(buf: &Vec<T>) -> usize {
            buf.len()
        }
    }

    /// A priority entry: the item, then its insertion number (for
    /// stability).
    pub struct Ranked<T>(T, u64);

    impl<T> std::fmt::Debug for Ranked<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_tuple("Ranked")
                .field(&self.1)
                .finish_non_exhaustive()
        }
    }

    impl<T: Ord> PartialEq for Ranked<T> {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other).is_eq()
        }
    }
    impl<T: Ord> Eq for Ranked<T> {}
    impl<T: Ord> PartialOrd for Ranked<T> {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl<T: Ord> Ord for Ranked<T> {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.0.cmp(&other.0).then(self.1.cmp(&other.1))
        }
    }

    impl<T: Ord + Send + 'static> Buffer<T> for Priority {
        type Buf = BinaryHeap<Reverse<Ranked<T>>>;
        fn buf() -> Self::Buf {
            BinaryHeap::new()
        }
        fn push(buf: &mut Self::Buf, item: T, seq: u64) {
            buf.push(Reverse(Ranked(item, seq)));
        }
        fn pop(buf: &mut Self::Buf) -> Option<T> {
            buf.pop().map(|Reverse(Ranked(item, _))| item)
        }
        fn len(buf: &Self::Buf) -> usize {
            buf.len()
        }
    }
}

const GETTERS: usize = 0;
const PUTTERS: usize = 1;
const JOINERS: usize = 2;

pub(crate) struct State<B> {
    buf: B,
    maxsize: usize,
    unfinished: usize,
    shutdown: bool,
    seq: u64,
}

pub(crate) struct Core<T, O: Order<T>> {
    list: WaitList<State<O::Buf>, 3>,
}

type Guard<'a, T, O> = Locked<'a, State<<O as sealed::Buffer<T>>::Buf>, 3>;

impl<T, O: Order<T>> Core<T, O> {
    pub(crate) fn new(maxsize: usize) -> Self {
        Core {
            list: WaitList::new(State {
                buf: O::buf(),
                maxsize,
                unfinished: 0,
                shutdown: false,
                seq: 0,
            }),
        }
    }

    fn lock(&self) -> Guard<'_, T, O> {
        self.list.lock()
    }

    pub(crate) fn maxsize(&self) -> usize {
        self.lock().state().maxsize
    }

    pub(crate) fn qsize(&self) -> usize {
        O::len(&self.lock().state().buf)
    }

    pub(crate) fn full(&self) -> bool {
        let mut l = self.lock();
        let st = l.state();
        st.maxsize > 0 && O::len(&st.buf) >= st.maxsize
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.lock().state().unfinished
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.lock().state().shutdown
    }

    pub(crate) fn waiters(&self) -> [usize; 3] {
        [
            self.list.len_of(GETTERS),
            self.list.len_of(PUTTERS),
            self.list.len_of(JOINERS),
        ]
    }

    /// Takes an item if there is one, freeing a slot for a putter.
    fn take(l: &mut Guard<'_, T, O>) -> Option<T> {
        let item = O::pop(&mut l.state().buf)?;
        l.queue(PUTTERS).notify(1, 0);
        Some(item)
    }

    /// Puts `item` if there is room, for a getter to take.
    fn give(l: &mut Guard<'_, T, O>, item: T) -> Result<(), T> {
        let st = l.state();
        if st.maxsize > 0 && O::len(&st.buf) >= st.maxsize {
            return Err(item);
        }
        st.seq += 1;
        let seq = st.seq;
        O::push(&mut st.buf, item, seq);
        st.unfinished += 1;
        l.queue(GETTERS).notify(1, 0);
        Ok(())
    }

    pub(crate) fn try_get(&self) -> Poll<Result<T, GetError>> {
        let mut l = self.lock();
        match Self::take(&mut l) {
            Some(item) => Poll::Ready(Ok(item)),
            None if l.state().shutdown => Poll::Ready(Err(GetError::ShutDown)),
            None => Poll::Pending,
        }
    }

    pub(crate) fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        let mut l = self.lock();
        if l.state().shutdown {
            return Err(PutError::ShutDown(item));
        }
        Self::give(&mut l, item).map_err(PutError::Full)
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut l = self.lock();
        let st = l.state();
        if st.unfinished == 0 {
            return Err(TaskDoneError);
        }
        st.unfinished -= 1;
        if st.unfinished == 0 {
            l.queue(JOINERS).notify(usize::MAX, 0);
        }
        Ok(())
    }

    /// Python's `Queue.shutdown(immediate)`: later puts fail; getters drain
    /// what is left, then fail; `immediate` discards the items (counting
    /// each as done) and releases joiners. Every blocked caller is woken.
    pub(crate) fn shutdown(&self, immediate: bool) {
        let discarded = {
            let mut l = self.lock();
            let st = l.state();
            st.shutdown = true;
            let mut discarded = Vec::new();
            if immediate {
                while let Some(item) = O::pop(&mut st.buf) {
                    discarded.push(item);
                    st.unfinished = st.unfinished.saturating_sub(1);
                }
                l.queue(JOINERS).notify(usize::MAX, 0);
            }
            l.queue(GETTERS).notify(usize::MAX, 0);
            l.queue(PUTTERS).notify(usize::MAX, 0);
            discarded
        };
        // The items' destructors are user code: run them unlocked.
        drop(discarded);
    }

    pub(crate) fn get(&self) -> GetOp<'_, T, O> {
        GetOp {
            core: self,
            key: None,
        }
    }

    pub(crate) fn put(&self, item: T) -> PutOp<'_, T, O> {
        PutOp {
            core: self,
            key: None,
            item: Some(item),
        }
    }

    pub(crate) fn join(&self) -> JoinOp<'_, T, O> {
        JoinOp {
            core: self,
            key: None,
        }
    }
}

/// Cancels a registration, passing a notification on.
fn give_up(q: &mut WaitQueue<'_>, key: &mut Option<Key>) {
    q.cancel(key, true);
}

/// A get. Dropping it leaves no item behind: items only move in the
/// critical section that completes it.
pub(crate) struct GetOp<'a, T, O: Order<T>> {
    core: &'a Core<T, O>,
    key: Option<Key>,
}

/// The outcome of a get: an item, the queue shut down, or (after a
/// deadline) still empty.
pub(crate) enum Got<T> {
    Item(T),
    ShutDown,
    Empty,
}

impl<T, O: Order<T>> WaitOp for GetOp<'_, T, O> {
    type Output = Got<T>;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<Got<T>> {
        let mut l = self.core.lock();
        let notified = l.queue(GETTERS).poll(&self.key, cx.waiter()).is_some();
        if self.key.is_none() || notified {
            if let Some(item) = Core::<T, O>::take(&mut l) {
                l.queue(GETTERS).remove(&mut self.key);
                return Poll::Ready(Got::Item(item));
            }
        }
        if l.state().shutdown {
            l.queue(GETTERS).remove(&mut self.key);
            return Poll::Ready(Got::ShutDown);
        }
        if cx.timed_out() {
            give_up(&mut l.queue(GETTERS), &mut self.key);
            return Poll::Ready(Got::Empty);
        }
        if !cx.can_wait() {
            return Poll::Pending;
        }
        let mut q = l.queue(GETTERS);
        if notified {
            // A newcomer took the item first: keep our turn.
            q.rearm(&self.key, cx.waiter());
        } else if self.key.is_none() {
            q.insert(&mut self.key, cx.waiter(), false);
        }
        Poll::Pending
    }
}

impl<T, O: Order<T>> Drop for GetOp<'_, T, O> {
    fn drop(&mut self) {
        if self.key.is_some() {
            give_up(&mut self.core.lock().queue(GETTERS), &mut self.key);
        }
    }
}

/// A put: `Ok(())`, or the item back with why it was not put.
pub(crate) struct PutOp<'a, T, O: Order<T>> {
    core: &'a Core<T, O>,
    key: Option<Key>,
    item: Option<T>,
}

// The item is moved in and out by value, never pinned: the op is Unpin
// whatever `T` is.
impl<T, O: Order<T>> Unpin for PutOp<'_, T, O> {}

impl<T, O: Order<T>> WaitOp for PutOp<'_, T, O> {
    type Output = Result<(), PutError<T>>;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<Self::Output> {
        let mut l = self.core.lock();
        let notified = l.queue(PUTTERS).poll(&self.key, cx.waiter()).is_some();
        let item = self.item.take().expect("PutOp polled after completion");
        if l.state().shutdown {
            l.queue(PUTTERS).remove(&mut self.key);
            return Poll::Ready(Err(PutError::ShutDown(item)));
        }
        let item = if self.key.is_none() || notified {
            match Core::<T, O>::give(&mut l, item) {
                Ok(()) => {
                    l.queue(PUTTERS).remove(&mut self.key);
                    return Poll::Ready(Ok(()));
                }
                Err(item) => item,
            }
        } else {
            item
        };
        if cx.timed_out() {
            give_up(&mut l.queue(PUTTERS), &mut self.key);
            return Poll::Ready(Err(PutError::Full(item)));
        }
        self.item = Some(item);
        if !cx.can_wait() {
            return Poll::Pending;
        }
        let mut q = l.queue(PUTTERS);
        if notified {
            q.rearm(&self.key, cx.waiter());
        } else if self.key.is_none() {
            q.insert(&mut self.key, cx.waiter(), false);
        }
        Poll::Pending
    }
}

impl<T, O: Order<T>> Drop for PutOp<'_, T, O> {
    fn drop(&mut self) {
        if self.key.is_some() {
            give_up(&mut self.core.lock().queue(PUTTERS), &mut self.key);
        }
    }
}

/// A join: ready once every item put has been marked done.
pub(crate) struct JoinOp<'a, T, O: Order<T>> {
    core: &'a Core<T, O>,
    key: Option<Key>,
}

impl<T, O: Order<T>> WaitOp for JoinOp<'_, T, O> {
    /// `false` if the deadline passed first.
    type Output = bool;

    fn poll_op(&mut self, cx: &mut WaitCx<'_>) -> Poll<bool> {
        let mut l = self.core.lock();
        let (st, mut q) = l.split(JOINERS);
        if st.unfinished == 0 {
            q.remove(&mut self.key);
            return Poll::Ready(true);
        }
        if cx.timed_out() {
            q.cancel(&mut self.key, false);
            return Poll::Ready(false);
        }
        if !cx.can_wait() {
            return Poll::Pending;
        }
        if self.key.is_none() {
            q.insert(&mut self.key, cx.waiter(), false);
        } else if q.poll(&self.key, cx.waiter()).is_some() {
            // Woken at zero, but more items came since: wait again.
            q.rearm(&self.key, cx.waiter());
        }
        Poll::Pending
    }
}

impl<T, O: Order<T>> Drop for JoinOp<'_, T, O> {
    fn drop(&mut self) {
        if self.key.is_some() {
            self.core.lock().queue(JOINERS).cancel(&mut self.key, false);
        }
    }
}
