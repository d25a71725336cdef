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
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::watch::Watches;
use crate::multiprocessing::handles::Handle;
use crate::sys::mem::{self, Mapping};

pub(crate) struct Block {
    fd: OwnedFd,
    map: Mapping,
    /// This process's async waiters on words of the block.
    watches: Watches,
}

impl Block {
    /// A new zeroed block of at least `len` bytes.
    pub(crate) fn new(len: usize) -> io::Result<Block> {
        let len = len.max(16);
        let fd = mem::anonymous()?;
        std::fs::File::from(fd.try_clone()?).set_len(len as u64)?;
        Block::map(fd)
    }

    fn map(fd: OwnedFd) -> io::Result<Block> {
        let len = std::fs::File::from(fd.try_clone()?).metadata()?.len();
        if len < 16 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a conex shared block",
            ));
        }
        let len =
            usize::try_from(len).map_err(|_| io::Error::other("a block past the address space"))?;
        let map = Mapping::new(fd.as_fd(), len)?;
        Ok(Block {
            fd,
            map,
            watches: Watches::default(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The mapping, for typed atomic views and copies in and out.
    pub(crate) fn mem(&self) -> &Mapping {
        &self.map
    }

    /// This process's watches over words of the block (async waits).
    pub(crate) fn watches(&self) -> &Watches {
        &self.watches
    }

    /// The 32-bit atomic at byte `offset` (4-aligned, in bounds).
    #[track_caller]
    pub(crate) fn u32(&self, offset: usize) -> &AtomicU32 {
        self.map.u32(offset)
    }

    /// The 64-bit atomic at byte `offset` (8-aligned, in bounds).
    #[track_caller]
    pub(crate) fn u64(&self, offset: usize) -> &AtomicU64 {
        self.map.u64(offset)
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
