//! Sleeping on a 32-bit word in shared memory: a futex on Linux (shared,
//! not private: the word lives in a mapping of several processes); a short
//! sleep elsewhere, where callers re-check anyway.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Sleeps while `*word == expected`, at most `timeout`, as a sleeper of
/// the kinds in `bits` (a wake for other bits passes it by); returns on a
/// wake, a change, a signal or the timeout (callers re-check).
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>, bits: u32) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time (the
        // clock of `Instant`).
        let ts = timeout.map(|d| {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime into a valid timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
            let nanos = now.tv_nsec as u64 + u64::from(d.subsec_nanos());
            libc::timespec {
                tv_sec: (now.tv_sec as u64)
                    .saturating_add(d.as_secs())
                    .saturating_add(nanos / 1_000_000_000)
                    .min(i64::MAX as u64 / 2) as libc::time_t,
                tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
            }
        });
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: FUTEX_WAIT_BITSET on a live, aligned u32 (a reference),
        // with a valid (or null) timespec and a non-zero mask.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT_BITSET,
                expected,
                tsp,
                std::ptr::null::<u32>(),
                bits.max(1),
            );
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (word, expected, bits);
        let step = Duration::from_micros(200);
        std::thread::sleep(timeout.map_or(step, |t| t.min(step)));
    }
}

/// Wakes up to `n` sleepers on `word` whose bits meet `bits`.
pub(crate) fn wake(word: &AtomicU32, n: u32, bits: u32) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: FUTEX_WAKE_BITSET on a live, aligned u32 (a reference), with
    // a non-zero mask.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE_BITSET,
            n.min(i32::MAX as u32) as i32,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            bits.max(1),
        );
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (word, n, bits);
}
