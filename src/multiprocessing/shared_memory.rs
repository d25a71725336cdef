//! `SharedMemory`: a named block of memory any process can attach to.
//! Python: `multiprocessing.shared_memory.SharedMemory`.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::IndexError;
use super::tracker;
use crate::sys::mem::{self, Mapping};

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
/// # Access: copies, or an `unsafe` view
/// Another process, or another handle to the same block in this process,
/// may write it at any moment, so a plain `&[u8]` over it would be a data
/// race (undefined behaviour in Rust, whatever the bytes). The safe face
/// copies in and out: [`read`] and [`write`] (and [`to_vec`]) move every
/// byte with relaxed atomic accesses, so a racing writer can only give a
/// mix of old and new bytes. Writers and readers still agree on their own
/// protocol for *when* data is ready (a lock, a message), as in Python.
/// Where a zero-copy view is worth a promise, [`as_slice`] and
/// [`as_mut_slice`] are `unsafe`, with the promise spelled out (as
/// memmap2's maps are).
///
/// [`Process`]: super::Process
/// [`Connection`]: super::Connection
/// [`read`]: SharedMemory::read
/// [`write`]: SharedMemory::write
/// [`to_vec`]: SharedMemory::to_vec
/// [`as_slice`]: SharedMemory::as_slice
/// [`as_mut_slice`]: SharedMemory::as_mut_slice
///
/// ```
/// use conex::multiprocessing::SharedMemory;
///
/// let mut a = SharedMemory::create(None, 4096)?;
/// a.write(0, b"hello").unwrap();
/// let b = SharedMemory::attach(a.name())?;
/// let mut five = [0u8; 5];
/// b.read(0, &mut five).unwrap();
/// assert_eq!(&five, b"hello");
/// assert!(b.size() >= 4096);
/// assert!(b.write(4096, b"past the end").is_err());
/// a.unlink()?;
/// # Ok::<(), conex::multiprocessing::ShmError>(())
/// ```
pub struct SharedMemory {
    name: String,
    /// The inode of the object (0 where unknown): which block of this name
    /// the tracker entries are about.
    ino: u64,
    /// The mapping; `None` once closed.
    map: Option<Mapping>,
    size: usize,
    unlinked: bool,
}

fn c_name(name: &str) -> Result<CString, ShmError> {
    if name.is_empty()
        || name.len() > 250
        || name.contains('/')
        || name.contains('\0')
        || name.contains('\n')
    {
        return Err(ShmError::Invalid(format!(
            "bad shared memory name {name:?} (1-250 characters, no '/', newline or NUL)"
        )));
    }
    CString::new(format!("/{name}")).map_err(|e| ShmError::Invalid(e.to_string()))
}

fn random_name() -> String {
    let mut r = [0u8; 8];
    let _ = crate::multiprocessing::auth::random_bytes(&mut r);
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
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let (Some(name), true) = (name, track) {
            return Self::create_linked(name, size);
        }
        Self::create_plain(name, size, track)
    }

    /// Creates under `name` (None: a fresh random one) with `shm_open`.
    fn create_plain(
        name: Option<&str>,
        size: usize,
        track: bool,
    ) -> Result<SharedMemory, ShmError> {
        // A fresh random name is this process's alone: registered before
        // it exists, so a creator killed inside `create` leaks nothing
        // (the tracker's unlink of a name never made fails harmlessly).
        // A given name (off Linux) is registered once it is made.
        let early = track && name.is_none();
        let name = name.map_or_else(random_name, str::to_owned);
        let c = c_name(&name)?;
        if early {
            tracker::register(&name, 0);
        }
        let made = Self::make(&c, &name, size);
        match &made {
            Ok(shm) if track && !early => tracker::register(&name, shm.ino),
            Err(_) if early => tracker::unregister(&name, 0),
            _ => {}
        }
        made
    }

    /// `shm_open(O_EXCL)`, size and map the block `c` (named `name`).
    fn make(c: &CString, name: &str, size: usize) -> Result<SharedMemory, ShmError> {
        let fd = mem::shm_open(c, true).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                ShmError::Exists(name.to_owned())
            } else {
                ShmError::Io(e)
            }
        })?;
        let fail = |e: io::Error| {
            let _ = mem::shm_unlink(c);
            ShmError::Io(e)
        };
        std::fs::File::from(fd.try_clone().map_err(fail)?)
            .set_len(size as u64)
            .map_err(fail)?;
        let (_, ino) = stat(&fd).map_err(fail)?;
        let map = Mapping::new(fd.as_fd(), size).map_err(fail)?;
        Ok(SharedMemory {
            name: name.to_owned(),
            ino,
            map: Some(map),
            size,
            unlinked: false,
        })
    }

    /// A tracked block under a name the caller chose, never leaked by a
    /// kill at any point: it is made whole under a fresh random name
    /// (registered before it exists), the chosen name is registered for
    /// that inode only (so the tracker never unlinks someone else's block
    /// of the name), and `link(2)` then gives it the name atomically (an
    /// attacher never sees it unsized, either).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn create_linked(name: &str, size: usize) -> Result<SharedMemory, ShmError> {
        c_name(name)?;
        let tmp_name = random_name();
        let tmp_c = c_name(&tmp_name)?;
        tracker::register(&tmp_name, 0);
        let mut shm = match Self::make(&tmp_c, &tmp_name, size) {
            Ok(shm) => shm,
            Err(e) => {
                tracker::unregister(&tmp_name, 0);
                return Err(e);
            }
        };
        tracker::register(name, shm.ino);
        let linked = std::fs::hard_link(format!("/dev/shm/{tmp_name}"), format!("/dev/shm/{name}"));
        let _ = mem::shm_unlink(&tmp_c);
        tracker::unregister(&tmp_name, 0);
        if let Err(err) = linked {
            tracker::unregister(name, shm.ino);
            shm.unlinked = true;
            if err.kind() == io::ErrorKind::AlreadyExists {
                return Err(ShmError::Exists(name.to_owned()));
            }
            // No hard links where shm_open keeps its objects: the plain
            // way (a kill inside it may leak the block, as CPython's).
            return Self::create_plain(Some(name), size, true);
        }
        shm.name = name.to_owned();
        Ok(shm)
    }

    /// Maps the existing block `name`. Python: `SharedMemory(name)`.
    ///
    /// # Errors
    /// [`ShmError::NotFound`] if there is none.
    pub fn attach(name: &str) -> Result<SharedMemory, ShmError> {
        let c = c_name(name)?;
        let fd = mem::shm_open(&c, false).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ShmError::NotFound(name.to_owned())
            } else {
                ShmError::Io(e)
            }
        })?;
        let (size, ino) = stat(&fd).map_err(ShmError::Io)?;
        if size == 0 {
            return Err(ShmError::Invalid(format!(
                "shared memory {name:?} is empty"
            )));
        }
        let map = Mapping::new(fd.as_fd(), size).map_err(ShmError::Io)?;
        Ok(SharedMemory {
            name: name.to_owned(),
            ino,
            map: Some(map),
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
    #[track_caller]
    pub(crate) fn word(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        self.map
            .as_ref()
            .expect("word of a closed block")
            .u64(i * 8)
    }

    /// Checks that `len` bytes at `offset` lie in the block (a closed one
    /// has none); the mapping to copy them through (none for no bytes).
    fn range(&self, offset: usize, len: usize) -> Result<Option<&Mapping>, IndexError> {
        let size = self.map.as_ref().map_or(0, Mapping::len);
        match offset.checked_add(len) {
            Some(end) if end <= size => Ok(self.map.as_ref().filter(|_| len > 0)),
            _ => Err(IndexError {
                index: offset.saturating_add(len),
                len: size,
            }),
        }
    }

    /// Copies `dst.len()` bytes starting at `offset` out of the block.
    /// Python: `bytes(shm.buf[offset:offset + n])`.
    ///
    /// Safe whoever else writes the block meanwhile (the bytes may then
    /// mix old and new; agree on a protocol, as in Python).
    ///
    /// # Errors
    /// [`IndexError`] if the range runs past the end (or the block is
    /// closed); nothing is copied.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), IndexError> {
        if let Some(m) = self.range(offset, dst.len())? {
            m.read(offset, dst);
        }
        Ok(())
    }

    /// Copies `src` into the block starting at `offset`. Python:
    /// `shm.buf[offset:offset + len(src)] = src`.
    ///
    /// Takes `&self`: every handle may write, as every Python process may.
    ///
    /// # Errors
    /// [`IndexError`] if the range runs past the end (or the block is
    /// closed); nothing is written.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<(), IndexError> {
        if let Some(m) = self.range(offset, src.len())? {
            m.write(offset, src);
        }
        Ok(())
    }

    /// The whole block, copied out. Python: `bytes(shm.buf)`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.map.as_ref().map_or(0, Mapping::len)];
        self.read(0, &mut v).expect("the whole block is in range");
        v
    }

    /// The block as a plain slice, with no copy. Python: `shm.buf`.
    ///
    /// Empty after [`close`](SharedMemory::close).
    ///
    /// # Safety
    /// For as long as the slice lives, nothing may write the block: no
    /// other process, no other handle to it in this process (not even
    /// through [`write`](SharedMemory::write)). The caller's own protocol
    /// (a lock held, a phase all writers have finished) must make that
    /// true; otherwise reading the slice is a data race.
    #[allow(unsafe_code)] // a public unsafe view; the work is in crate::sys
    pub unsafe fn as_slice(&self) -> &[u8] {
        match &self.map {
            // SAFETY: the caller promises no writer while the borrow lives.
            Some(m) => unsafe { m.as_slice() },
            None => &[],
        }
    }

    /// The block as a plain mutable slice, with no copy. Python:
    /// `shm.buf` (written).
    ///
    /// Empty after [`close`](SharedMemory::close).
    ///
    /// # Safety
    /// For as long as the slice lives, nothing else may read or write the
    /// block: no other process, no other handle to it in this process.
    #[allow(unsafe_code)] // a public unsafe view; the work is in crate::sys
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.map {
            // SAFETY: the caller promises no other reader or writer while
            // the borrow lives.
            Some(m) => unsafe { m.as_mut_slice() },
            None => &mut [],
        }
    }

    /// Unmaps it from this process (what drop does); reads and writes
    /// fail with [`IndexError`] after.
    /// Python: `SharedMemory.close()`.
    pub fn close(&mut self) {
        self.map = None;
    }

    /// Removes the name: no one can attach any more, and the memory is
    /// freed once every process has closed it. Call it once, from one
    /// process. Python: `SharedMemory.unlink()`.
    ///
    /// # Errors
    /// [`ShmError::NotFound`] if it was unlinked already.
    pub fn unlink(&mut self) -> Result<(), ShmError> {
        let c = c_name(&self.name)?;
        if let Err(e) = mem::shm_unlink(&c) {
            return Err(if e.kind() == io::ErrorKind::NotFound {
                ShmError::NotFound(self.name.clone())
            } else {
                ShmError::Io(e)
            });
        }
        self.unlinked = true;
        // Whichever handle unlinks it (the creator's, or one attached by
        // name in the creating process), the tracker forgets it.
        tracker::unregister(&self.name, self.ino);
        Ok(())
    }
}

/// The size and inode of the object behind `fd`.
fn stat(fd: &OwnedFd) -> io::Result<(usize, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::File::from(fd.try_clone()?).metadata()?;
    let size =
        usize::try_from(m.len()).map_err(|_| io::Error::other("a block past the address space"))?;
    Ok((size, m.ino()))
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("open", &self.map.is_some())
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
