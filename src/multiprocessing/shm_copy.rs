//! Copies in and out of memory that another process (or another mapping
//! of the same block in this one) may write at the same time.
//!
//! A plain `memcpy` or a `&[u8]` over such memory is a data race, which
//! Rust defines as undefined behaviour whatever the bytes. Every byte here
//! moves through a relaxed atomic access instead (8 bytes at a time where
//! the shared side is aligned): a racing writer can only make the bytes
//! read a mix of old and new, never undefined behaviour. Relaxed word
//! accesses compile to plain moves, so the copy runs near `memcpy` speed on
//! large blocks (memory-bound either way).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

/// Copies `dst.len()` bytes out of shared memory starting at `src`.
///
/// # Safety
/// `src .. src + dst.len()` lies inside one live mapping that stays mapped
/// for the call, and nothing in this process accesses it non-atomically
/// meanwhile (conex hands out no plain reference to such memory from safe
/// code).
pub(crate) unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
    let n = dst.len();
    let head = src.align_offset(8).min(n);
    let mut i = 0;
    while i < head {
        // SAFETY: in the mapping (the caller's contract), any alignment
        // suits a byte.
        dst[i] = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Relaxed);
        i += 1;
    }
    while i + 8 <= n {
        // SAFETY: in the mapping, and 8-aligned (`head` aligned it).
        let w = unsafe { AtomicU64::from_ptr(src.add(i).cast_mut().cast()) }.load(Relaxed);
        dst[i..i + 8].copy_from_slice(&w.to_ne_bytes());
        i += 8;
    }
    while i < n {
        // SAFETY: as the head bytes.
        dst[i] = unsafe { AtomicU8::from_ptr(src.add(i).cast_mut()) }.load(Relaxed);
        i += 1;
    }
}

/// Copies `src` into shared memory starting at `dst`.
///
/// # Safety
/// As [`copy_out`], for `dst .. dst + src.len()`.
pub(crate) unsafe fn copy_in(src: &[u8], dst: *mut u8) {
    let n = src.len();
    let head = dst.align_offset(8).min(n);
    let mut i = 0;
    while i < head {
        // SAFETY: in the mapping (the caller's contract).
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(src[i], Relaxed);
        i += 1;
    }
    while i + 8 <= n {
        let w = u64::from_ne_bytes(src[i..i + 8].try_into().expect("8 bytes"));
        // SAFETY: in the mapping, and 8-aligned.
        unsafe { AtomicU64::from_ptr(dst.add(i).cast()) }.store(w, Relaxed);
        i += 8;
    }
    while i < n {
        // SAFETY: as the head bytes.
        unsafe { AtomicU8::from_ptr(dst.add(i)) }.store(src[i], Relaxed);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_alignment_and_length() {
        let mut shared = vec![0u64; 8]; // 64 aligned bytes
        let base = shared.as_mut_ptr().cast::<u8>();
        for start in 0..9 {
            for len in 0..(64 - start).min(30) {
                let src: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(7) ^ 0x5a).collect();
                // SAFETY: inside `shared`, accessed only here.
                unsafe { copy_in(&src, base.add(start)) };
                let mut back = vec![0u8; len];
                // SAFETY: as above.
                unsafe { copy_out(base.add(start), &mut back) };
                assert_eq!(back, src, "start {start} len {len}");
            }
        }
    }
}
