//! Waiting on a 32-bit word in shared memory: a futex on Linux (shared,
//! not private: the word lives in a mapping of several processes); a short
//! sleep loop elsewhere.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, at most `timeout`; returns on a wake,
/// a change, a signal or the timeout (callers re-check).
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: FUTEX_WAIT on a live, aligned u32 of a shared mapping.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                tsp,
            );
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = expected;
        let step = Duration::from_micros(200);
        std::thread::sleep(timeout.map_or(step, |t| t.min(step)));
        let _ = word;
    }
}

/// Wakes up to `n` sleepers on `word`.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: FUTEX_WAKE on a live, aligned u32 of a shared mapping.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n.min(i32::MAX as u32) as i32,
        );
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (word, n);
}
