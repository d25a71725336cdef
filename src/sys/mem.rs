//! Shared memory: mappings other processes (or other mappings of the same
//! object in this one) may write at any time, reached only through
//! atomics, so safe code can never race on them; and the objects behind
//! them (memfds, POSIX shared-memory objects).
//!
//! A plain `memcpy` or a `&[u8]` over such memory is a data race, which
//! Rust defines as undefined behaviour whatever the bytes. Every byte
//! copied in or out here moves through a relaxed atomic access instead (8
//! bytes at a time where the shared side is aligned): a racing writer can
//! only make the bytes read a mix of old and new. Relaxed word accesses
//! compile to plain moves, so a copy runs near `memcpy` speed on large
//! blocks (memory-bound either way).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering::Relaxed};

/// A shared, read-write mapping of a whole object, unmapped on drop.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping belongs to this value; every safe access to it is
// atomic (or through the `unsafe` slice views, whose callers promise no
// writer), which any thread may make.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("len", &self.len).finish()
    }
}

impl Mapping {
    /// Maps the first `len` bytes (at least 1) of the object behind `fd`,
    /// shared and read-write.
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty mapping",
            ));
        }
        // SAFETY: a fresh shared mapping of a descriptor the caller holds;
        // the kernel picks the (page-aligned) address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(Mapping { ptr, len })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The address of byte `offset`, checked to leave room for `size`
    /// bytes and to be aligned to `size` (a power of two).
    #[track_caller]
    fn at(&self, offset: usize, size: usize) -> *mut u8 {
        assert!(
            offset.is_multiple_of(size) && offset.checked_add(size).is_some_and(|e| e <= self.len),
            "shared offset {offset} (size {size}) outside a mapping of {}",
            self.len
        );
        // SAFETY: in bounds (checked just above).
        unsafe { self.ptr.as_ptr().add(offset) }
    }

    /// The byte at `offset`, as an atomic.
    #[track_caller]
    pub(crate) fn u8(&self, offset: usize) -> &AtomicU8 {
        // SAFETY: in bounds and aligned (`at` checks; the mapping is
        // page-aligned), live as long as `self`, and only ever accessed
        // atomically by safe code.
        unsafe { AtomicU8::from_ptr(self.at(offset, 1)) }
    }

    /// The 16-bit word at `offset` (2-aligned), as an atomic.
    #[track_caller]
    pub(crate) fn u16(&self, offset: usize) -> &AtomicU16 {
        // SAFETY: as `u8`.
        unsafe { AtomicU16::from_ptr(self.at(offset, 2).cast()) }
    }

    /// The 32-bit word at `offset` (4-aligned), as an atomic.
    #[track_caller]
    pub(crate) fn u32(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: as `u8`.
        unsafe { AtomicU32::from_ptr(self.at(offset, 4).cast()) }
    }

    /// The 64-bit word at `offset` (8-aligned), as an atomic.
    #[track_caller]
    pub(crate) fn u64(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: as `u8`.
        unsafe { AtomicU64::from_ptr(self.at(offset, 8).cast()) }
    }

    /// Whether `len` bytes at `offset` lie inside.
    pub(crate) fn contains(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|e| e <= self.len)
    }

    /// Copies `dst.len()` bytes starting at `offset` out, atomically byte
    /// by byte or word by word.
    ///
    /// # Panics
    /// If the range runs past the end (check with [`contains`] first).
    ///
    /// [`contains`]: Mapping::contains
    #[track_caller]
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) {
        assert!(self.contains(offset, dst.len()), "read past a mapping");
        // SAFETY: in bounds (checked), in a mapping that lives as long as
        // `self`, which safe code only ever reaches atomically.
        unsafe { copy_out(self.ptr.as_ptr().add(offset), dst) }
    }

    /// Copies `src` in starting at `offset`, atomically.
    ///
    /// # Panics
    /// If the range runs past the end.
    #[track_caller]
    pub(crate) fn write(&self, offset: usize, src: &[u8]) {
        assert!(self.contains(offset, src.len()), "write past a mapping");
        // SAFETY: as in `read`.
        unsafe { copy_in(src, self.ptr.as_ptr().add(offset)) }
    }

    /// The whole mapping as a plain slice.
    ///
    /// # Safety
    /// For as long as the slice lives nothing may write the memory: no
    /// other process, no other mapping of the object in this one.
    pub(crate) unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: a live mapping of `len` bytes; the caller promises no
        // writer while the borrow lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The whole mapping as a plain mutable slice.
    ///
    /// # Safety
    /// For as long as the slice lives nothing else may read or write the
    /// memory: no other process, no other mapping of it in this one.
    pub(crate) unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as `as_slice`; `&mut self` keeps this mapping's own
        // atomic views out while the borrow lives.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping, once; every view borrowed
        // from it has ended (they borrow `self`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Copies `dst.len()` bytes out of shared memory starting at `src`.
///
/// # Safety
/// `src .. src + dst.len()` lies inside one live mapping that stays mapped
/// for the call, and nothing in this process accesses it non-atomically
/// meanwhile.
unsafe fn copy_out(src: *const u8, dst: &mut [u8]) {
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
unsafe fn copy_in(src: &[u8], dst: *mut u8) {
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

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor the system call just gave us, owned by
    // nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A new anonymous shared-memory object, close-on-exec, of size 0: a
/// memfd on Linux; elsewhere a POSIX object unlinked as soon as it is
/// opened. Either way it has no name to leak.
pub(crate) fn anonymous() -> io::Result<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: a plain system call with a valid C string.
        owned(unsafe { libc::memfd_create(c"conex-sync".as_ptr(), libc::MFD_CLOEXEC) })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|e| io::Error::other(e.to_string()))?;
        let name = std::ffi::CString::new(format!("/cnx_sync_{:016x}", u64::from_ne_bytes(r)))
            .expect("no NUL in the name");
        let fd = shm_open(&name, true)?;
        let _ = shm_unlink(&name);
        // SAFETY: fcntl on the descriptor we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        Ok(fd)
    }
}

/// Opens the POSIX shared-memory object `name` ("/..."), read-write and
/// close-on-exec; with `create`, a new one (`O_CREAT | O_EXCL`, mode 0600).
pub(crate) fn shm_open(name: &CStr, create: bool) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR
        | libc::O_CLOEXEC
        | if create {
            libc::O_CREAT | libc::O_EXCL
        } else {
            0
        };
    // SAFETY: a plain system call with a valid C string.
    owned(unsafe { libc::shm_open(name.as_ptr(), flags, 0o600 as libc::mode_t) })
}

/// Removes the POSIX shared-memory object `name`.
pub(crate) fn shm_unlink(name: &CStr) -> io::Result<()> {
    // SAFETY: a plain system call with a valid C string.
    if unsafe { libc::shm_unlink(name.as_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_alignment_and_length() {
        let fd = anonymous().unwrap();
        std::fs::File::from(fd.try_clone().unwrap())
            .set_len(64)
            .unwrap();
        let m = Mapping::new(std::os::fd::AsFd::as_fd(&fd), 64).unwrap();
        for start in 0..9 {
            for len in 0..(64 - start).min(30) {
                let src: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(7) ^ 0x5a).collect();
                m.write(start, &src);
                let mut back = vec![0u8; len];
                m.read(start, &mut back);
                assert_eq!(back, src, "start {start} len {len}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "outside a mapping")]
    fn a_misaligned_word_is_refused() {
        let fd = anonymous().unwrap();
        std::fs::File::from(fd.try_clone().unwrap())
            .set_len(64)
            .unwrap();
        let m = Mapping::new(std::os::fd::AsFd::as_fd(&fd), 64).unwrap();
        let _ = m.u32(2);
    }
}
