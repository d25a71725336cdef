//! `ShareableList` and `SharedMemoryManager`. Python:
//! `multiprocessing.shared_memory.ShareableList` and
//! `multiprocessing.managers.SharedMemoryManager`.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::Ordering::SeqCst;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::shared_memory::{SharedMemory, ShmError};

/// One value of a [`ShareableList`]: Python's `int`, `float`, `bool`,
/// `str`, `bytes` and `None`.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int` (64 bits, as Python's `q` format).
    Int(i64),
    /// `float`.
    Float(f64),
    /// `str` (UTF-8).
    Str(String),
    /// `bytes`.
    Bytes(Vec<u8>),
}

impl From<()> for Item {
    fn from((): ()) -> Item {
        Item::None
    }
}
impl From<bool> for Item {
    fn from(v: bool) -> Item {
        Item::Bool(v)
    }
}
impl From<i64> for Item {
    fn from(v: i64) -> Item {
        Item::Int(v)
    }
}
impl From<f64> for Item {
    fn from(v: f64) -> Item {
        Item::Float(v)
    }
}
impl From<&str> for Item {
    fn from(v: &str) -> Item {
        Item::Str(v.to_owned())
    }
}
impl From<String> for Item {
    fn from(v: String) -> Item {
        Item::Str(v)
    }
}
impl From<&[u8]> for Item {
    fn from(v: &[u8]) -> Item {
        Item::Bytes(v.to_vec())
    }
}
impl From<Vec<u8>> for Item {
    fn from(v: Vec<u8>) -> Item {
        Item::Bytes(v)
    }
}

impl Item {
    fn kind(&self) -> u64 {
        match self {
            Item::None => 0,
            Item::Bool(_) => 1,
            Item::Int(_) => 2,
            Item::Float(_) => 3,
            Item::Str(_) => 4,
            Item::Bytes(_) => 5,
        }
    }

    /// The stored bytes (numbers as one little-endian word).
    fn bytes(&self) -> Vec<u8> {
        match self {
            Item::None => Vec::new(),
            Item::Bool(b) => u64::from(*b).to_le_bytes().to_vec(),
            Item::Int(i) => i.to_le_bytes().to_vec(),
            Item::Float(f) => f.to_le_bytes().to_vec(),
            Item::Str(s) => s.as_bytes().to_vec(),
            Item::Bytes(b) => b.clone(),
        }
    }

    fn from_parts(kind: u64, bytes: &[u8]) -> Item {
        let word = || {
            let mut w = [0u8; 8];
            let n = bytes.len().min(8);
            w[..n].copy_from_slice(&bytes[..n]);
            w
        };
        match kind {
            1 => Item::Bool(u64::from_le_bytes(word()) != 0),
            2 => Item::Int(i64::from_le_bytes(word())),
            3 => Item::Float(f64::from_le_bytes(word())),
            4 => Item::Str(String::from_utf8_lossy(bytes).into_owned()),
            5 => Item::Bytes(bytes.to_vec()),
            _ => Item::None,
        }
    }
}

/// Why a [`ShareableList`] call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListError {
    /// An index past the end (Python: `IndexError`).
    Index(usize),
    /// A `str` / `bytes` longer than its slot was made for (Python:
    /// `ValueError: bytes/str item exceeds available storage`).
    TooLarge {
        /// The slot.
        index: usize,
        /// Its room, in bytes.
        room: usize,
    },
    /// The block is not a ShareableList.
    NotAList(String),
    /// Creating or attaching the block failed.
    Shm(ShmError),
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::Index(i) => write!(f, "index {i} out of range"),
            ListError::TooLarge { index, room } => {
                write!(
                    f,
                    "bytes/str item exceeds available storage (slot {index} holds {room} bytes)"
                )
            }
            ListError::NotAList(n) => write!(f, "shared memory {n:?} is not a ShareableList"),
            ListError::Shm(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ListError {}

impl From<ShmError> for ListError {
    fn from(e: ShmError) -> Self {
        ListError::Shm(e)
    }
}

// Layout, in 64-bit words: a magic word, the length n, then per slot
// (kind, used bytes, offset in words into the data), then the data's
// total words, then the data. A slot's room is fixed at creation (8
// bytes for numbers, a str / bytes rounded up to whole words), as in
// Python's fixed-layout list.
const MAGIC: u64 = u64::from_le_bytes(*b"CNXSHLST");
const META: usize = 2;

/// A fixed-length list of ints, floats, bools, strings, bytes and Nones
/// in one shared memory block. Python:
/// `multiprocessing.shared_memory.ShareableList`.
///
/// Each slot's room is fixed when the list is made: a slot may take any
/// item that fits (a number, or a str / bytes no longer than the one it
/// was made with). Each word is read and written atomically; a whole
/// item is not (as in Python: coordinate writers with a lock).
///
/// ```
/// use conex::multiprocessing::{Item, ShareableList};
///
/// let l = ShareableList::new([Item::from(1i64), "hello".into(), ().into()], None)?;
/// assert_eq!(l.get(1)?, Item::Str("hello".into()));
/// l.set(0, 2.5f64)?;
/// assert!(l.set(1, "far too long for it").is_err());
/// let same = ShareableList::attach(l.name())?;
/// assert_eq!(same.to_vec()?, l.to_vec()?);
/// l.unlink()?;
/// # Ok::<(), conex::multiprocessing::ListError>(())
/// ```
pub struct ShareableList {
    shm: Mutex<SharedMemory>,
    name: String,
    len: usize,
}

fn words_for(item: &Item) -> usize {
    match item {
        Item::Str(s) => s.len().div_ceil(8).max(1),
        Item::Bytes(b) => b.len().div_ceil(8).max(1),
        _ => 1,
    }
}

impl ShareableList {
    /// A new list holding `items`, in a new block (named `name`, or a
    /// fresh name). Python: `ShareableList(sequence, name=name)`.
    ///
    /// # Errors
    /// As [`SharedMemory::create`].
    pub fn new<I: Into<Item>>(
        items: impl IntoIterator<Item = I>,
        name: Option<&str>,
    ) -> Result<ShareableList, ListError> {
        let items: Vec<Item> = items.into_iter().map(Into::into).collect();
        let n = items.len();
        let data_words: usize = items.iter().map(words_for).sum();
        let total = META + 3 * n + 1 + data_words;
        let shm = SharedMemory::create(name, total * 8)?;
        shm.word(0).store(MAGIC, SeqCst);
        shm.word(1).store(n as u64, SeqCst);
        let mut offset = 0;
        for (i, item) in items.iter().enumerate() {
            shm.word(META + 3 * i + 2).store(offset as u64, SeqCst);
            offset += words_for(item);
        }
        shm.word(META + 3 * n).store(offset as u64, SeqCst);
        let name = shm.name().to_owned();
        let list = ShareableList {
            shm: Mutex::new(shm),
            name,
            len: n,
        };
        for (i, item) in items.into_iter().enumerate() {
            list.set(i, item)?;
        }
        Ok(list)
    }

    /// Attaches to the list in block `name`. Python: `ShareableList(name=name)`.
    ///
    /// # Errors
    /// [`ListError::Shm`] (no such block), [`ListError::NotAList`].
    pub fn attach(name: &str) -> Result<ShareableList, ListError> {
        let shm = SharedMemory::attach(name)?;
        let not = || ListError::NotAList(name.to_owned());
        if shm.size() < 24 || shm.word(0).load(SeqCst) != MAGIC {
            return Err(not());
        }
        let n = shm.word(1).load(SeqCst) as usize;
        let data_start = n
            .checked_mul(3)
            .and_then(|x| x.checked_add(META + 1))
            .ok_or_else(not)?;
        if data_start > shm.size() / 8 {
            return Err(not());
        }
        let data_words = shm.word(META + 3 * n).load(SeqCst) as usize;
        if data_start.saturating_add(data_words) > shm.size() / 8 {
            return Err(not());
        }
        Ok(ShareableList {
            shm: Mutex::new(shm),
            name: name.to_owned(),
            len: n,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&SharedMemory) -> R) -> R {
        f(&self.shm.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Offset and room (words) of slot `i`, checked against the block.
    fn slot(shm: &SharedMemory, n: usize, i: usize) -> (usize, usize) {
        let off = shm.word(META + 3 * i + 2).load(SeqCst) as usize;
        let next = if i + 1 == n {
            shm.word(META + 3 * n).load(SeqCst) as usize
        } else {
            shm.word(META + 3 * (i + 1) + 2).load(SeqCst) as usize
        };
        let data = META + 3 * n + 1;
        let room = next
            .saturating_sub(off)
            .min((shm.size() / 8).saturating_sub(data + off));
        (data + off, room)
    }

    /// Its length. Python: `len(l)`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no items.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its block's name, to attach from elsewhere.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its block, as a new handle (attached by name). Python: `l.shm`.
    ///
    /// # Errors
    /// [`ShmError`] if the block was unlinked meanwhile.
    pub fn shm(&self) -> Result<SharedMemory, ShmError> {
        SharedMemory::attach(&self.name)
    }

    /// The struct format of the items it holds now, in Python's codes
    /// (`q` an int, `d` a float, `xxxxxxx?` a bool, `Ns` a str or bytes
    /// slot of `N` bytes, `xxxxxx?x` None). Python: `l.format`.
    ///
    /// ```
    /// use conex::multiprocessing::{Item, ShareableList};
    ///
    /// let l = ShareableList::new([Item::from(1i64), "hello".into(), 2.5f64.into(), ().into()], None)?;
    /// assert_eq!(l.format(), "q8sdxxxxxx?x");
    /// assert_eq!(l.shm()?.name(), l.name());
    /// l.unlink()?;
    /// # Ok::<(), conex::multiprocessing::ListError>(())
    /// ```
    pub fn format(&self) -> String {
        self.with(|shm| {
            (0..self.len)
                .map(|i| match shm.word(META + 3 * i).load(SeqCst) {
                    1 => "xxxxxxx?".to_owned(),
                    2 => "q".to_owned(),
                    3 => "d".to_owned(),
                    4 | 5 => format!("{}s", Self::slot(shm, self.len, i).1 * 8),
                    _ => "xxxxxx?x".to_owned(),
                })
                .collect()
        })
    }

    /// Item `i`. Python: `l[i]`.
    ///
    /// # Errors
    /// [`ListError::Index`].
    pub fn get(&self, i: usize) -> Result<Item, ListError> {
        if i >= self.len {
            return Err(ListError::Index(i));
        }
        Ok(self.with(|shm| {
            let kind = shm.word(META + 3 * i).load(SeqCst);
            let (at, room) = Self::slot(shm, self.len, i);
            let used = (shm.word(META + 3 * i + 1).load(SeqCst) as usize).min(room * 8);
            let mut bytes = Vec::with_capacity(room * 8);
            for w in 0..used.div_ceil(8) {
                bytes.extend_from_slice(&shm.word(at + w).load(SeqCst).to_le_bytes());
            }
            bytes.truncate(used);
            Item::from_parts(kind, &bytes)
        }))
    }

    /// Sets item `i` (any type that fits the slot). Python: `l[i] = v`.
    ///
    /// # Errors
    /// [`ListError::Index`], [`ListError::TooLarge`].
    pub fn set(&self, i: usize, item: impl Into<Item>) -> Result<(), ListError> {
        if i >= self.len {
            return Err(ListError::Index(i));
        }
        let item = item.into();
        let bytes = item.bytes();
        self.with(|shm| {
            let (at, room) = Self::slot(shm, self.len, i);
            if bytes.len() > room * 8 {
                return Err(ListError::TooLarge {
                    index: i,
                    room: room * 8,
                });
            }
            for (w, chunk) in bytes.chunks(8).enumerate() {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                shm.word(at + w).store(u64::from_le_bytes(word), SeqCst);
            }
            shm.word(META + 3 * i + 1).store(bytes.len() as u64, SeqCst);
            shm.word(META + 3 * i).store(item.kind(), SeqCst);
            Ok(())
        })
    }

    /// Every item. Python: `list(l)`.
    ///
    /// # Errors
    /// None in practice (each index is in range).
    pub fn to_vec(&self) -> Result<Vec<Item>, ListError> {
        (0..self.len).map(|i| self.get(i)).collect()
    }

    /// How many items equal `item`. Python: `count(value)`.
    pub fn count(&self, item: &Item) -> usize {
        (0..self.len)
            .filter(|&i| self.get(i).ok().as_ref() == Some(item))
            .count()
    }

    /// The first index holding `item`. Python: `index(value)` (its
    /// `ValueError` is `None`).
    pub fn index(&self, item: &Item) -> Option<usize> {
        (0..self.len).find(|&i| self.get(i).ok().as_ref() == Some(item))
    }

    /// Removes the block's name (see [`SharedMemory::unlink`]).
    ///
    /// # Errors
    /// As `SharedMemory::unlink`.
    pub fn unlink(&self) -> Result<(), ListError> {
        Ok(self
            .shm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unlink()?)
    }
}

impl fmt::Debug for ShareableList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareableList")
            .field("name", &self.name)
            .field("items", &self.to_vec().unwrap_or_default())
            .finish()
    }
}

impl Serialize for ShareableList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.name.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ShareableList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ShareableList, D::Error> {
        let name = String::deserialize(d)?;
        ShareableList::attach(&name).map_err(serde::de::Error::custom)
    }
}

/// Creates shared memory blocks and lists and unlinks them all when it
/// shuts down (or drops). Python:
/// `multiprocessing.managers.SharedMemoryManager` (there, a server
/// process; here the blocks are tracked, so a manager killed before its
/// shutdown still has them unlinked by the resource tracker).
///
/// ```
/// use conex::multiprocessing::SharedMemoryManager;
///
/// let smm = SharedMemoryManager::new();
/// let block = smm.shared_memory(1024)?;
/// let list = smm.shareable_list([1i64, 2, 3])?;
/// assert_eq!(list.len(), 3);
/// let name = block.name().to_owned();
/// smm.shutdown(); // both unlinked
/// assert!(conex::multiprocessing::SharedMemory::attach(&name).is_err());
/// # Ok::<(), conex::multiprocessing::ListError>(())
/// ```
#[derive(Debug, Default)]
pub struct SharedMemoryManager {
    names: Mutex<Option<Vec<String>>>,
}

impl SharedMemoryManager {
    /// A started manager. Python: `SharedMemoryManager()` + `start()`.
    pub fn new() -> SharedMemoryManager {
        SharedMemoryManager {
            names: Mutex::new(Some(Vec::new())),
        }
    }

    fn record(&self, name: &str) -> Result<(), ShmError> {
        match self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(v) => {
                v.push(name.to_owned());
                Ok(())
            }
            None => Err(ShmError::Invalid(
                "the SharedMemoryManager was shut down".into(),
            )),
        }
    }

    fn check_open(&self) -> Result<(), ShmError> {
        if self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            Ok(())
        } else {
            Err(ShmError::Invalid(
                "the SharedMemoryManager was shut down".into(),
            ))
        }
    }

    /// A new block of `size` bytes, unlinked at shutdown. Python:
    /// `smm.SharedMemory(size)`.
    ///
    /// # Errors
    /// As [`SharedMemory::create`]; `Invalid` after shutdown.
    pub fn shared_memory(&self, size: usize) -> Result<SharedMemory, ShmError> {
        self.check_open()?;
        let shm = SharedMemory::create(None, size)?;
        self.record(shm.name())?;
        Ok(shm)
    }

    /// A new list, unlinked at shutdown. Python: `smm.ShareableList(seq)`.
    ///
    /// # Errors
    /// As [`ShareableList::new`]; `Invalid` after shutdown.
    pub fn shareable_list<I: Into<Item>>(
        &self,
        items: impl IntoIterator<Item = I>,
    ) -> Result<ShareableList, ListError> {
        self.check_open()?;
        let list = ShareableList::new(items, None)?;
        self.record(list.name())?;
        Ok(list)
    }

    /// Unlinks every block it made (mappings in use stay valid until
    /// closed). Python: `smm.shutdown()`.
    pub fn shutdown(&self) {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner()).take();
        for name in names.unwrap_or_default() {
            if let Ok(mut shm) = SharedMemory::attach(&name) {
                let _ = shm.unlink();
            }
        }
    }
}

impl Drop for SharedMemoryManager {
    fn drop(&mut self) {
        self.shutdown();
    }
}
