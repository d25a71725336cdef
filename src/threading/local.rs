//! `Local`: Python's `threading.local`, per-Thread values for task-backed
//! and OS-thread-backed Threads alike.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::current;

static NEXT_LOCAL: AtomicU64 = AtomicU64::new(1);

/// A value that each Thread sees its own copy of, created on first use by
/// the initializer (Python: a `local` subclass's `__init__`, run once per
/// thread) and dropped when the Thread ends.
///
/// Python: `threading.local`.
///
/// "Thread" is conex's notion (see [`current_thread`](super::current_thread)):
/// each task-backed Thread has its own value even though tasks share OS
/// threads; code that conex did not start shares the value of the OS thread
/// it runs on. `Local` is a cheap handle: clones are the same local.
///
/// # Examples
///
/// ```
/// # #[tokio::main] async fn main() {
/// use conex::threading::{Local, Thread};
///
/// let visits = Local::new(|| 0u32);
/// let v2 = visits.clone();
/// let t = Thread::spawn(async move {
///     v2.with(|n| *n += 5);
///     v2.get()
/// });
/// assert_eq!(t.join().await.unwrap(), 5);
/// assert_eq!(visits.get(), 0); // this thread's own value
/// # }
/// ```
pub struct Local<T> {
    inner: Arc<LocalInner<T>>,
}

struct LocalInner<T> {
    id: u64,
    init: Box<dyn Fn() -> T + Send + Sync>,
}

impl<T> Drop for LocalInner<T> {
    fn drop(&mut self) {
        // Python drops a local's per-thread values with the local.
        let id = self.id;
        current::for_each_live(|t| {
            drop(t.core.take_local(id));
        });
    }
}

impl<T> Clone for Local<T> {
    fn clone(&self) -> Self {
        Local {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local").field("id", &self.inner.id).finish()
    }
}

impl<T: Default + Send + 'static> Default for Local<T> {
    fn default() -> Self {
        Local::new(T::default)
    }
}

impl<T: Send + 'static> Local<T> {
    /// A new local whose value, in each Thread, starts as `init()`.
    ///
    /// Python: `threading.local()` (with the subclass's `__init__`).
    pub fn new(init: impl Fn() -> T + Send + Sync + 'static) -> Local<T> {
        Local {
            inner: Arc::new(LocalInner {
                id: NEXT_LOCAL.fetch_add(1, Ordering::Relaxed),
                init: Box::new(init),
            }),
        }
    }

    /// Runs `f` on the current Thread's value (created first if needed).
    ///
    /// Python: reading and assigning attributes of a `local`.
    ///
    /// While `f` runs the value is out of the Thread's storage: a nested
    /// `with` on the same local from inside `f` sees a fresh value, and its
    /// changes are overwritten when `f` returns.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        current::with_current(|t| {
            let id = self.inner.id;
            let stored = t.core.take_local(id);
            let mut value = match stored.map(|b| b.downcast::<T>()) {
                Some(Ok(v)) => v,
                _ => Box::new((self.inner.init)()),
            };
            let r = f(&mut value);
            drop(t.core.put_local(id, value));
            r
        })
    }

    /// A copy of the current Thread's value.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(|v| v.clone())
    }

    /// Replaces the current Thread's value.
    pub fn set(&self, value: T) {
        self.with(|v| *v = value);
    }

    /// Removes the current Thread's value (the next use starts from the
    /// initializer again) and returns it, if there was one.
    ///
    /// Python: `del local.attr`.
    pub fn remove(&self) -> Option<T> {
        current::with_current(|t| {
            let stored = t.core.take_local(self.inner.id);
            stored.and_then(|b| b.downcast::<T>().ok()).map(|b| *b)
        })
    }
}
