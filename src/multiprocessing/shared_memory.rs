//! `SharedMemory`: a named block of memory any process can attach to.
//! Python: `multiprocessing.shared_memory.SharedMemory`.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::tracker;
use crate::io::sys;

/// Why a shared memory block could not be created or attached.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShmError {
    /// `create` with a name that exists (Python: `FileExistsError`).
    Exists(String),
    /// `attach` to a name that does not exist (Python: `FileNotFoundError`).
    NotFound(String),
    /// Size 0 on create, or a name that is empty, too long, or holds a
    /// `/` or NUL (Python: `ValueError`).
    Invalid(String),
    /// Another OS error.
    Io(io::Error),
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmError::Exists(n) => write!(f, "shared memory {n:?} already exists"),
            ShmError::NotFound(n) => write!(f, "no shared memory named {n:?}"),
            ShmError::Invalid(m) => f.write_str(m),
            ShmError::Io(e) => write!(f, "shared memory: {e}"),
        }
    }
}

impl std::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShmError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A named block of shared memory, mapped into this process.
///
/// Python: `SharedMemory(name=None, create=False, size=0, *, track=True)`.
/// [`create`](SharedMemory::create) makes a new block (a random name if
/// none is given), [`attach`](SharedMemory::attach) maps an existing one
/// by name. Dropping (or [`close`](SharedMemory::close)) unmaps it in this
/// process; the block itself lives until [`unlink`](SharedMemory::unlink),
/// as in Python.
///
/// `track` (Python 3.13): a tracked block that was created but never
/// unlinked is unlinked by the tracker process once its creator has
/// exited, killed or not, so nothing is left in `/dev/shm`. Untracked
/// blocks (`create_untracked`) outlive their creator until someone
/// unlinks them.
///
/// It serializes as its name: sent to a child (as a [`Process`] argument
/// or over a [`Connection`]), it arrives attached to the same block.
///
/// Access is unsynchronized across processes, as in Python: writers and
/// readers in different processes agree on their own protocol (a lock, a
/// message saying the data is ready). Within one process, [`buf`] and
/// [`buf_mut`] borrow it as any slice.
///
/// [`Process`]: super::Process
/// [`Connection`]: super::Connection
/// [`buf`]: SharedMemory::buf
/// [`buf_mut`]: SharedMemory::buf_mut
///
/// ```
/// use conex::multiprocessing::SharedMemory;
///
/// let mut a = SharedMemory::create(None, 4096)?;
/// a.buf_mut()[..5].copy_from_slice(b"hello");
/// let b = SharedMemory::attach(a.name())?;
/// assert_eq!(&b.buf()[..5], b"hello");
/// assert!(b.size() >= 4096);
/// a.unlink()?;
/// # Ok::<(), conex::multiprocessing::ShmError>(())
/// ```
pub struct SharedMemory {
    name: String,
    ptr: *mut u8,
    size: usize,
    unlinked: bool,
}

// SAFETY: the mapping belongs to this object; `&self` gives only shared
// slices, `&mut self` an exclusive one (other processes are outside Rust's
// model, as for any memory-mapped file).
unsafe impl Send for SharedMemory {}
// SAFETY: as above.
unsafe impl Sync for SharedMemory {}

fn c_name(name: &str) -> Result<CString, ShmError> {
    if name.is_empty() || name.len() > 250 || name.contains('/') || name.contains('\0') {
        return Err(ShmError::Invalid(format!(
            "bad shared memory name {name:?} (1-250 characters, no '/' or NUL)"
        )));
    }
    CString::new(format!("/{name}")).map_err(|e| ShmError::Invalid(e.to_string()))
}

fn random_name() -> String {
    let mut r = [0u8; 8];
    let _ = sys::random_bytes(&mut r);
    format!("cnx_{}_{:016x}", std::process::id(), u64::from_ne_bytes(r))
}

impl SharedMemory {
    /// Creates a block of `size` bytes (zeroed), tracked. `name` `None`
    /// picks a fresh random one. Python: `SharedMemory(name, create=True,
    /// size=size)`.
    ///
    /// # Errors
    /// [`ShmError::Exists`] if `name` is taken, [`ShmError::Invalid`] for
    /// size 0 or a bad name.
    pub fn create(name: Option<&str>, size: usize) -> Result<SharedMemory, ShmError> {
        Self::create_with(name, size, true)
    }

    /// [`create`](SharedMemory::create) with `track=False`: nothing
    /// unlinks it but an explicit [`unlink`](SharedMemory::unlink).
    ///
    /// # Errors
    /// As `create`.
    pub fn create_untracked(name: Option<&str>, size: usize) -> Result<SharedMemory, ShmError> {
        Self::create_with(name, size, false)
    }

    fn create_with(name: Option<&str>, size: usize, track: bool) -> Result<SharedMemory, ShmError> {
        if size == 0 {
            return Err(ShmError::Invalid(
                "'size' must be a positive number different from zero".into(),
            ));
        }
        let name = name.map_or_else(random_name, str::to_owned);
        let c = c_name(&name)?;
        // SAFETY: a plain system call with a valid C string.
        let fd = unsafe {
            libc::shm_open(
                c.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
                0o600 as libc::mode_t,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                ShmError::Exists(name)
            } else {
                ShmError::Io(e)
            });
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let fail = |e: io::Error| {
            // SAFETY: removing the name we just created.
            unsafe { libc::shm_unlink(c.as_ptr()) };
            ShmError::Io(e)
        };
        // SAFETY: ftruncate on our own descriptor.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } < 0 {
            return Err(fail(io::Error::last_os_error()));
        }
        let ptr = map(&fd, size).map_err(fail)?;
        if track {
            tracker::register(&name);
        }
        Ok(SharedMemory {
            name,
            ptr,
            size,
            unlinked: false,
        })
    }

    /// Maps the existing block `name`. Python: `SharedMemory(name)`.
    ///
    /// # Errors
    /// [`ShmError::NotFound`] if there is none.
    pub fn attach(name: &str) -> Result<SharedMemory, ShmError> {
        let c = c_name(name)?;
        // SAFETY: a plain system call with a valid C string.
        let fd = unsafe { libc::shm_open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::NotFound {
                ShmError::NotFound(name.to_owned())
            } else {
                ShmError::Io(e)
            });
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fstat into a zeroed stat buffer.
        let size = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd.as_raw_fd(), &mut st) < 0 {
                return Err(ShmError::Io(io::Error::last_os_error()));
            }
            st.st_size as usize
        };
        if size == 0 {
            return Err(ShmError::Invalid(format!(
                "shared memory {name:?} is empty"
            )));
        }
        let ptr = map(&fd, size).map_err(ShmError::Io)?;
        Ok(SharedMemory {
            name: name.to_owned(),
            ptr,
            size,
            unlinked: false,
        })
    }

    /// Its name, to attach from elsewhere. Python: `SharedMemory.name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its size in bytes. Python: `SharedMemory.size`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The 64-bit word `i` of the block, for atomic access (a
    /// [`ShareableList`](super::ShareableList)'s storage).
    ///
    /// # Panics
    /// Past the end, or after `close`.
    pub(crate) fn word(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(
            !self.ptr.is_null() && (i + 1) * 8 <= self.size,
            "word {i} outside the block"
        );
        // SAFETY: in bounds, 8-aligned (the mapping is page-aligned), and
        // only ever accessed atomically by ShareableList.
        unsafe { &*self.ptr.add(i * 8).cast::<std::sync::atomic::AtomicU64>() }
    }

    /// The memory, to read. Python: `SharedMemory.buf`.
    pub fn buf(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: a live mapping of `size` bytes, unmapped only by `close`
        // / drop, which need `&mut self` / ownership.
        unsafe { std::slice::from_raw_parts(self.ptr, self.size) }
    }

    /// The memory, to write. Python: `SharedMemory.buf`.
    pub fn buf_mut(&mut self) -> &mut [u8] {
        if self.ptr.is_null() {
            return &mut [];
        }
        // SAFETY: as `buf`, and `&mut self` makes the borrow exclusive in
        // this process.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.size) }
    }

    /// Unmaps it from this process (what drop does); `buf` is empty after.
    /// Python: `SharedMemory.close()`.
    pub fn close(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: unmapping our own mapping, once.
            unsafe { libc::munmap(self.ptr.cast(), self.size) };
            self.ptr = std::ptr::null_mut();
        }
    }

    /// Removes the name: no one can attach any more, and the memory is
    /// freed once every process has closed it. Call it once, from one
    /// process. Python: `SharedMemory.unlink()`.
    ///
    /// # Errors
    /// [`ShmError::NotFound`] if it was unlinked already.
    pub fn unlink(&mut self) -> Result<(), ShmError> {
        let c = c_name(&self.name)?;
        // SAFETY: a plain system call with a valid C string.
        if unsafe { libc::shm_unlink(c.as_ptr()) } < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::NotFound {
                ShmError::NotFound(self.name.clone())
            } else {
                ShmError::Io(e)
            });
        }
        self.unlinked = true;
        // Whichever handle unlinks it (the creator's, or one attached by
        // name in the creating process), the tracker forgets it.
        tracker::unregister(&self.name);
        Ok(())
    }
}

fn map(fd: &OwnedFd, size: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh shared mapping of our descriptor.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p.cast())
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        self.close();
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("open", &!self.ptr.is_null())
            .field("unlinked", &self.unlinked)
            .finish()
    }
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.name.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SharedMemory, D::Error> {
        let name = String::deserialize(d)?;
        SharedMemory::attach(&name).map_err(serde::de::Error::custom)
    }
}
