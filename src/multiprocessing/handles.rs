//! OS handles inside messages: a value that owns a descriptor (a
//! [`Connection`](super::Connection), a shared lock, a queue...) serializes
//! it as an index into the message's handle list, and the handles travel
//! beside the bytes (`SCM_RIGHTS` over a Unix socket). Python: the
//! `multiprocessing.reduction` machinery (`DupFd`, `send_handle`).
//!
//! Serialization collects duplicates of the descriptors into a thread-local
//! list while a send encodes a message; deserialization takes them from the
//! list a receive installed. Outside those two (postcard to a file, say),
//! a handle does not serialize: the error says where it can go.

use std::cell::RefCell;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

thread_local! {
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Runs `f` (an encoding) collecting the handles it serializes.
pub(crate) fn collect<R>(f: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let prev = OUTGOING.with(|o| o.borrow_mut().replace(Vec::new()));
    let r = f();
    let fds = OUTGOING.with(|o| std::mem::replace(&mut *o.borrow_mut(), prev));
    (r, fds.unwrap_or_default())
}

/// Runs `f` (a decoding) with `fds` available to the handles it
/// deserializes; the ones it does not claim are closed.
pub(crate) fn provide<R>(fds: Vec<OwnedFd>, f: impl FnOnce() -> R) -> R {
    let table = fds.into_iter().map(Some).collect();
    let prev = INCOMING.with(|i| i.borrow_mut().replace(table));
    let r = f();
    INCOMING.with(|i| *i.borrow_mut() = prev);
    r
}

/// An OS handle (a file descriptor) that can travel inside a message over
/// a Unix-socket [`Connection`](super::Connection) or as a process
/// argument; the receiver gets its own descriptor for the same open file.
///
/// Python: `multiprocessing.reduction.DupFd` / `send_handle`.
pub struct Handle(pub(crate) OwnedFd);

impl Handle {
    /// Wraps a descriptor.
    pub fn new(fd: OwnedFd) -> Handle {
        Handle(fd)
    }

    /// The descriptor.
    pub fn into_inner(self) -> OwnedFd {
        self.0
    }
}

impl AsFd for Handle {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Handle").field(&self.0.as_raw_fd()).finish()
    }
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let index = OUTGOING.with(|o| {
            let mut o = o.borrow_mut();
            let list = o.as_mut()?;
            let dup = self.0.try_clone().ok()?;
            list.push(dup);
            Some(list.len() - 1)
        });
        match index {
            Some(i) => s.serialize_u32(i as u32),
            None => Err(serde::ser::Error::custom(
                "an OS handle (a Connection, a shared lock or queue...) can only be sent over a \
                 Unix-socket Connection or passed as a process argument",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Handle, D::Error> {
        let i = u32::deserialize(d)? as usize;
        INCOMING
            .with(|t| t.borrow_mut().as_mut()?.get_mut(i)?.take())
            .map(Handle)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("no OS handle #{i} came with the message"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_only_through_the_tables() {
        let (r, _w) = std::io::pipe().unwrap();
        let h = Handle::new(r.into());
        assert!(postcard::to_allocvec(&h).is_err(), "no table, no handle");
        let (bytes, fds) = collect(|| postcard::to_allocvec(&(7u8, &h)).unwrap());
        assert_eq!(fds.len(), 1);
        let (n, back): (u8, Handle) = provide(fds, || postcard::from_bytes(&bytes).unwrap());
        assert_eq!(n, 7);
        assert_ne!(back.0.as_raw_fd(), h.0.as_raw_fd(), "a duplicate");
        // A second claim of the same index fails.
        let err = provide(Vec::new(), || postcard::from_bytes::<(u8, Handle)>(&bytes));
        assert!(err.is_err());
    }
}
