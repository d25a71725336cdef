//! Who is "the caller", for reentrant locks: the tokio task when there is
//! one (tasks migrate between worker threads, so the thread would be wrong),
//! otherwise the OS thread. Both kinds of id share one `u64` space: task ids
//! have the top bit clear, thread ids have it set, and 0 means "nobody".

/// A non-zero id for the current task or thread.
pub(crate) fn current() -> u64 {
    #[cfg(not(conex_loom))]
    if let Some(id) = tokio::task::try_id() {
        return task_id(id);
    }
    thread_id()
}

const THREAD_BIT: u64 = 1 << 63;

#[cfg(not(conex_loom))]
fn task_id(id: tokio::task::Id) -> u64 {
    use std::hash::{Hash, Hasher};
    // tokio keeps the numeric id private but hashes it with `write_u64`;
    // this hasher captures that value exactly (and folds any other shape
    // of hashing into 64 bits, so it stays an id in every case).
    struct Capture(u64);
    impl Hasher for Capture {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(*b);
            }
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = self.0.rotate_left(13) ^ n;
        }
    }
    let mut h = Capture(0);
    id.hash(&mut h);
    match h.finish() & !THREAD_BIT {
        0 => 1,
        n => n,
    }
}

#[cfg(not(conex_loom))]
fn thread_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ID: u64 = THREAD_BIT | NEXT.fetch_add(1, Ordering::Relaxed);
    }
    ID.with(|id| *id)
}

#[cfg(conex_loom)]
fn thread_id() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    loom::thread::current().id().hash(&mut h);
    THREAD_BIT | (h.finish() >> 1) | 1
}
