//! The platform layer: every system call conex makes and every raw
//! pointer into shared memory, behind safe functions and types. It is the
//! only module where `unsafe` code is allowed (lib.rs denies it
//! elsewhere), as mio keeps its `sys/`.
//!
//! Two kinds of `unsafe` stay outside it, each in one module that says
//! why: the wait core's one `UnsafeCell` mutex (`wait::mutex`), and
//! calling a function by its address in another process of the same
//! binary (`multiprocessing::callable`). `SharedMemory::as_slice` and
//! `as_mut_slice` are public `unsafe fn`s (their caller promises no
//! writer) that only forward here.
//!
//! - [`io`]: reads and writes into spare capacity, pipes, socket pairs,
//!   descriptor passing, poll(2), pidfds and child waits.
//! - [`process`]: signals, pids, thread ids, fork and `_exit`, the
//!   environment before threads exist.
//! - [`mem`]: shared mappings, typed atomic views and race-free copies in
//!   and out; memfd and POSIX shared-memory objects.
//! - [`futex`]: sleeping and waking on a shared 32-bit word.
//! - [`tracker`]: the resource tracker's process, a fork that may only
//!   make system calls.
//! - [`net`]: the socket calls std lacks (a non-blocking connect, a
//!   waking shutdown, peer addresses).
//!
//! Each chapter module uses part of it: a build with only some of them
//! leaves the rest unused.
#![allow(unsafe_code)]
#![cfg_attr(
    not(all(feature = "subprocess", feature = "multiprocessing")),
    allow(dead_code, unused_imports)
)]

#[cfg(feature = "multiprocessing")]
pub(crate) mod futex;
#[cfg(any(feature = "subprocess", feature = "multiprocessing"))]
pub(crate) mod io;
#[cfg(feature = "multiprocessing")]
pub(crate) mod mem;
#[cfg(feature = "multiprocessing")]
pub(crate) mod net;
pub(crate) mod process;
#[cfg(feature = "multiprocessing")]
pub(crate) mod tracker;

#[cfg(any(feature = "subprocess", feature = "multiprocessing"))]
pub(crate) use io::*;
pub(crate) use process::*;

/// `n` as a count, or the OS error a negative `n` stands for.
pub(crate) fn cvt(n: isize) -> std::io::Result<usize> {
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
