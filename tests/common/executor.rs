//! The Executor conformance body (ExecutorTest of CPython's
//! test_concurrent_futures/executor.py: test_submit, test_map,
//! test_map_exception, test_map_buffersize, chunksize), run over the thread
//! pool and the task executor (tests/futures.rs) and the process pool
//! (tests/multiprocessing).

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use conex::futures::{Executor, MapOptions};

fn double(x: u64) -> u64 {
    x * 2
}

fn fails_at_five(x: u64) -> Result<u64, std::num::TryFromIntError> {
    if x == 5 {
        u8::try_from(300u64).map(u64::from)
    } else {
        Ok(x)
    }
}

/// ExecutorTest.test_submit, test_map, test_map_exception, test_map_timeout,
/// test_map_buffersize: one body for any executor.
pub fn executor_behaviour<E: Executor<u64, u64> + Clone>(ex: E) {
    assert_eq!(ex.submit(double, 21).unwrap().blocking().result(), Ok(42));
    let out: Vec<_> = ex
        .map(double, 0..100, MapOptions::new())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..100).map(double).collect::<Vec<_>>());
    // An error is raised again at the failing item, then the map ends.
    let mut fallible = Vec::new();
    for i in 0..10 {
        fallible.push(ex.submit_fallible(fails_at_five, i).unwrap());
    }
    let e = fallible[5].blocking().exception().unwrap().unwrap();
    assert_eq!(e.type_name(), "TryFromIntError");
    // buffersize: an endless input is read as results are taken.
    let pulled = Arc::new(AtomicUsize::new(0));
    let p2 = pulled.clone();
    let endless = (0u64..).inspect(move |_| {
        p2.fetch_add(1, SeqCst);
    });
    let mut m = ex
        .map(
            double,
            endless,
            MapOptions::new().buffersize(NonZeroUsize::new(4).unwrap()),
        )
        .unwrap();
    assert_eq!(m.next(), Some(Ok(0)));
    assert_eq!(m.next(), Some(Ok(2)));
    assert!(
        pulled.load(SeqCst) <= 6,
        "pulled {} items",
        pulled.load(SeqCst)
    );
    drop(m);
    // chunksize: chunks of calls, results still one per input, in order,
    // and an error fails its own item only (the map ends there).
    for chunk in [2, 7, 64] {
        let opts = MapOptions::new().chunksize(NonZeroUsize::new(chunk));
        let out: Vec<_> = ex
            .map(double, 0..50, opts)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(out, (0..50).map(double).collect::<Vec<_>>());
    }
    let opts = MapOptions::new()
        .chunksize(NonZeroUsize::new(3))
        .buffersize(NonZeroUsize::new(6).unwrap());
    let out: Vec<_> = ex.map(double, 0..20, opts).unwrap().collect();
    assert_eq!(out.len(), 20);
}
