//! A small block of shared memory that travels as an OS handle: the home
//! of a cross-process primitive's state.
//!
//! On Linux it is a `memfd` (no name at all); elsewhere a POSIX shared
//! memory object unlinked as soon as it is mapped. Either way nothing can
//! leak into `/dev/shm`, and the block lives exactly as long as some
//! process maps it. It crosses to another process as a [`Handle`] (over a
//! Unix-socket connection or as a process argument), which is mapped on
//! arrival.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::multiprocessing::handles::Handle;

pub(crate) struct Block {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is only reached through atomics (or, for
// sharedctypes, through accessors documented as racy across processes).
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}

fn anonymous_fd() -> io::Result<OwnedFd> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: a plain system call with a valid C string.
        let fd = unsafe { libc::memfd_create(c"conex-sync".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let mut r = [0u8; 8];
        let _ = crate::multiprocessing::auth::random_bytes(&mut r);
        let name = std::ffi::CString::new(format!("/cnx_sync_{:016x}", u64::from_ne_bytes(r)))
            .expect("no NUL in the name");
        // SAFETY: plain system calls with a valid C string; the name is
        // removed at once, the descriptor keeps the object.
        unsafe {
            let fd = libc::shm_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                0o600,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::shm_unlink(name.as_ptr());
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            Ok(OwnedFd::from_raw_fd(fd))
        }
    }
}

impl Block {
    /// A new zeroed block of at least `len` bytes.
    pub(crate) fn new(len: usize) -> io::Result<Block> {
        let len = len.max(16);
        let fd = anonymous_fd()?;
        // SAFETY: ftruncate on our own descriptor.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Block::map(fd)
    }

    fn map(fd: OwnedFd) -> io::Result<Block> {
        // SAFETY: fstat into a zeroed buffer.
        let len = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd.as_raw_fd(), &mut st) < 0 {
                return Err(io::Error::last_os_error());
            }
            st.st_size as usize
        };
        if len < 16 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a conex shared block",
            ));
        }
        // SAFETY: a fresh shared mapping of our descriptor.
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
        Ok(Block {
            fd,
            ptr: p.cast(),
            len,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The 32-bit atomic at byte `offset` (4-aligned, in bounds).
    pub(crate) fn u32(&self, offset: usize) -> &AtomicU32 {
        assert!(
            offset.is_multiple_of(4) && offset + 4 <= self.len,
            "bad shared offset"
        );
        // SAFETY: in bounds, aligned (the mapping is page-aligned), and
        // only ever accessed atomically.
        unsafe { &*self.ptr.add(offset).cast::<AtomicU32>() }
    }

    /// The 64-bit atomic at byte `offset` (8-aligned, in bounds).
    pub(crate) fn u64(&self, offset: usize) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset + 8 <= self.len,
            "bad shared offset"
        );
        // SAFETY: as `u32`.
        unsafe { &*self.ptr.add(offset).cast::<AtomicU64>() }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping, once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

impl Serialize for Block {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let dup = self.fd.try_clone().map_err(serde::ser::Error::custom)?;
        Handle::new(dup).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Block {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Block, D::Error> {
        let h = Handle::deserialize(d)?;
        Block::map(h.into_inner()).map_err(serde::de::Error::custom)
    }
}
