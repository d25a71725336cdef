//! `Value` and `Array`: plain numbers in shared memory. Python:
//! `multiprocessing.Value`, `Array`, `RawValue`, `RawArray`
//! (`multiprocessing.sharedctypes`).
//!
//! Each element is read and written whole (an atomic load or store of its
//! width), so no reader ever sees a torn number. `Value` and `Array` also
//! carry a cross-process [`RLock`]: every `get` / `set` takes it, as
//! Python's synchronized wrappers do, and [`get_lock`](Value::get_lock)
//! hands it out for compound updates (`with v.get_lock(): v.value += 1`).
//! The raw variants have no lock.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::synchronize::{Block, RLock};

/// How an element is stored: public items of a private module (the cells
/// use them, a user cannot name or implement them).
mod sealed {
    pub trait Sealed {
        fn to_bits(self) -> u64;
        fn from_bits(bits: u64) -> Self;
    }
}

/// A plain number that can live in shared memory: the integers, `f32`,
/// `f64` and `bool`. Python: the typecodes `'b' 'B' 'h' 'H' 'i' 'I' 'l'
/// 'L' 'q' 'Q' 'f' 'd'` and `c_bool`.
pub trait Element: Copy + Send + Sync + fmt::Debug + 'static + sealed::Sealed {
    /// Its size in bytes (1, 2, 4 or 8).
    const SIZE: usize;
    /// A tag checked when a handle arrives in another process.
    const TAG: u32;
}

macro_rules! int_element {
    ($($t:ty = $tag:expr),*) => {$(
        impl sealed::Sealed for $t {
            fn to_bits(self) -> u64 {
                self as u64
            }
            fn from_bits(bits: u64) -> Self {
                bits as $t
            }
        }
        impl Element for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            const TAG: u32 = $tag;
        }
    )*};
}

int_element!(
    i8 = 1,
    u8 = 2,
    i16 = 3,
    u16 = 4,
    i32 = 5,
    u32 = 6,
    i64 = 7,
    u64 = 8,
    isize = 9,
    usize = 10
);

impl sealed::Sealed for f32 {
    fn to_bits(self) -> u64 {
        u64::from(f32::to_bits(self))
    }
    fn from_bits(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
}
impl Element for f32 {
    const SIZE: usize = 4;
    const TAG: u32 = 11;
}

impl sealed::Sealed for f64 {
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
}
impl Element for f64 {
    const SIZE: usize = 8;
    const TAG: u32 = 12;
}

impl sealed::Sealed for bool {
    fn to_bits(self) -> u64 {
        u64::from(self)
    }
    fn from_bits(bits: u64) -> Self {
        bits != 0
    }
}
impl Element for bool {
    const SIZE: usize = 1;
    const TAG: u32 = 13;
}

// Layout: the element count (u64) at 0, the element tag (u32) at 8, the
// elements from 16.
const DATA: usize = 16;

/// An index (or the end of a byte range) past the end of a shared array,
/// list or memory block. Python: `IndexError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexError {
    /// The index asked for.
    pub index: usize,
    /// The length.
    pub len: usize,
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "index {} out of range (length {})", self.index, self.len)
    }
}

impl std::error::Error for IndexError {}

/// The elements in a block: the unsynchronized core of all four types.
struct Cells<T> {
    block: Arc<Block>,
    len: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Cells<T> {
    fn clone(&self) -> Self {
        Cells {
            block: self.block.clone(),
            len: self.len,
            _t: PhantomData,
        }
    }
}

impl<T: Element> Cells<T> {
    fn new(len: usize) -> std::io::Result<Cells<T>> {
        let bytes = len
            .checked_mul(T::SIZE)
            .and_then(|b| b.checked_add(DATA))
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "array too large")
            })?;
        let block = Arc::new(Block::new(bytes)?);
        block.u64(0).store(len as u64, SeqCst);
        block.u32(8).store(T::TAG, SeqCst);
        Ok(Cells {
            block,
            len,
            _t: PhantomData,
        })
    }

    fn from_block(block: Block) -> Result<Cells<T>, String> {
        let len = block.u64(0).load(SeqCst) as usize;
        let tag = block.u32(8).load(SeqCst);
        if tag != T::TAG {
            return Err(format!(
                "a shared value of another element type (tag {tag}) arrived"
            ));
        }
        if len.saturating_mul(T::SIZE).saturating_add(DATA) > block.len() {
            return Err("a shared array larger than its memory arrived".into());
        }
        Ok(Cells {
            block: Arc::new(block),
            len,
            _t: PhantomData,
        })
    }

    fn load(&self, i: usize) -> T {
        assert!(i < self.len);
        // In bounds (checked, and the block holds `len` elements) and
        // aligned (DATA is 16, each element at a multiple of its size).
        let (m, at) = (self.block.mem(), DATA + i * T::SIZE);
        let bits = match T::SIZE {
            1 => u64::from(m.u8(at).load(SeqCst)),
            2 => u64::from(m.u16(at).load(SeqCst)),
            4 => u64::from(m.u32(at).load(SeqCst)),
            _ => m.u64(at).load(SeqCst),
        };
        T::from_bits(bits)
    }

    fn store(&self, i: usize, v: T) {
        assert!(i < self.len);
        let bits = v.to_bits();
        let (m, at) = (self.block.mem(), DATA + i * T::SIZE);
        match T::SIZE {
            1 => m.u8(at).store(bits as u8, SeqCst),
            2 => m.u16(at).store(bits as u16, SeqCst),
            4 => m.u32(at).store(bits as u32, SeqCst),
            _ => m.u64(at).store(bits, SeqCst),
        }
    }

    fn check(&self, i: usize) -> Result<(), IndexError> {
        if i < self.len {
            Ok(())
        } else {
            Err(IndexError {
                index: i,
                len: self.len,
            })
        }
    }
}

impl<T> Serialize for Cells<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (*self.block).serialize(s)
    }
}

impl<'de, T: Element> Deserialize<'de> for Cells<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cells<T>, D::Error> {
        Cells::from_block(Block::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// One number in shared memory, without a lock. Python:
/// `multiprocessing.RawValue(typecode, value)`.
///
/// ```
/// let v = conex::multiprocessing::RawValue::new(1.5f64)?;
/// v.set(v.get() * 2.0);
/// assert_eq!(v.get(), 3.0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Element"))]
pub struct RawValue<T: Element> {
    cells: Cells<T>,
}

impl<T: Element> RawValue<T> {
    /// A shared number holding `v`.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new(v: T) -> std::io::Result<RawValue<T>> {
        let cells = Cells::new(1)?;
        cells.store(0, v);
        Ok(RawValue { cells })
    }

    /// Its value. Python: `.value`.
    pub fn get(&self) -> T {
        self.cells.load(0)
    }

    /// Sets it. Python: `.value = v`.
    pub fn set(&self, v: T) {
        self.cells.store(0, v)
    }

    /// A new shared number holding this one's value (its own memory).
    /// Python: `multiprocessing.sharedctypes.copy(obj)`.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn copy(&self) -> std::io::Result<RawValue<T>> {
        RawValue::new(self.get())
    }

    /// This number with a lock: `lock`, or a new [`RLock`]. Python:
    /// `multiprocessing.sharedctypes.synchronized(obj, lock=None)`.
    ///
    /// ```
    /// use conex::multiprocessing::{RLock, RawValue};
    ///
    /// let raw = RawValue::new(1i32)?;
    /// let lock = RLock::new()?;
    /// let v = raw.clone().synchronized(Some(lock.clone()))?;
    /// v.set(2);
    /// assert_eq!(raw.get(), 2); // the same memory
    /// let copy = raw.copy()?;
    /// copy.set(3);
    /// assert_eq!(v.get(), 2); // a copy is its own
    /// lock.blocking().acquire(); // the lock given is the value's
    /// assert!(v.get_lock().is_owned());
    /// lock.release().unwrap();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// The OS refused the new lock's shared memory.
    pub fn synchronized(self, lock: Option<RLock>) -> std::io::Result<Value<T>> {
        Ok(Value {
            raw: self,
            lock: match lock {
                Some(l) => l,
                None => RLock::new()?,
            },
        })
    }
}

impl<T: Element> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawValue").field(&self.get()).finish()
    }
}

/// One number in shared memory, with a cross-process [`RLock`]. Python:
/// `multiprocessing.Value(typecode, value)` (lock=True).
///
/// `get` and `set` each take the lock (briefly, through the blocking
/// facade); hold [`get_lock`](Value::get_lock) around a read-modify-write.
///
/// ```
/// let v = conex::multiprocessing::Value::new(0u64)?;
/// {
///     let lock = v.get_lock();
///     let _g = lock.blocking().lock(); // with v.get_lock():
///     v.set(v.get() + 1); //               v.value += 1
/// }
/// assert_eq!(v.get(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Element"))]
pub struct Value<T: Element> {
    raw: RawValue<T>,
    lock: RLock,
}

impl<T: Element> Value<T> {
    /// A shared number holding `v`, with a new lock.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new(v: T) -> std::io::Result<Value<T>> {
        Ok(Value {
            raw: RawValue::new(v)?,
            lock: RLock::new()?,
        })
    }

    /// Its value, read under the lock. Python: `.value`.
    pub fn get(&self) -> T {
        let _g = self.lock.blocking().lock();
        self.raw.get()
    }

    /// Sets it under the lock. Python: `.value = v`.
    pub fn set(&self, v: T) {
        let _g = self.lock.blocking().lock();
        self.raw.set(v)
    }

    /// Its lock. Python: `get_lock()`.
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }

    /// The value without its lock. Python: `get_obj()`.
    pub fn get_obj(&self) -> &RawValue<T> {
        &self.raw
    }
}

impl<T: Element> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Value").field(&self.raw.get()).finish()
    }
}

/// A fixed-length array of numbers in shared memory, without a lock.
/// Python: `multiprocessing.RawArray(typecode, size_or_initializer)`.
///
/// ```
/// let a = conex::multiprocessing::RawArray::from_slice(&[1i32, 2, 3])?;
/// a.set(1, 20).unwrap();
/// assert_eq!(a.to_vec(), [1, 20, 3]);
/// assert!(a.get(3).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Element"))]
pub struct RawArray<T: Element> {
    cells: Cells<T>,
}

impl<T: Element> RawArray<T> {
    /// `len` zeroes. Python: `RawArray(typecode, size)`.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new(len: usize) -> std::io::Result<RawArray<T>> {
        Ok(RawArray {
            cells: Cells::new(len)?,
        })
    }

    /// A copy of `items`. Python: `RawArray(typecode, initializer)`.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn from_slice(items: &[T]) -> std::io::Result<RawArray<T>> {
        let a = RawArray::new(items.len())?;
        for (i, &v) in items.iter().enumerate() {
            a.cells.store(i, v);
        }
        Ok(a)
    }

    /// Its length. Python: `len(a)`.
    pub fn len(&self) -> usize {
        self.cells.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.cells.len == 0
    }

    /// Element `i`. Python: `a[i]`.
    ///
    /// # Errors
    /// [`IndexError`] past the end.
    pub fn get(&self, i: usize) -> Result<T, IndexError> {
        self.cells.check(i)?;
        Ok(self.cells.load(i))
    }

    /// Sets element `i`. Python: `a[i] = v`.
    ///
    /// # Errors
    /// [`IndexError`] past the end.
    pub fn set(&self, i: usize, v: T) -> Result<(), IndexError> {
        self.cells.check(i)?;
        self.cells.store(i, v);
        Ok(())
    }

    /// All elements, copied out. Python: `a[:]`.
    pub fn to_vec(&self) -> Vec<T> {
        (0..self.cells.len).map(|i| self.cells.load(i)).collect()
    }

    /// A new shared array holding these elements (its own memory).
    /// Python: `multiprocessing.sharedctypes.copy(obj)`.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn copy(&self) -> std::io::Result<RawArray<T>> {
        RawArray::from_slice(&self.to_vec())
    }

    /// This array with a lock: `lock`, or a new [`RLock`]. Python:
    /// `multiprocessing.sharedctypes.synchronized(obj, lock=None)`.
    ///
    /// ```
    /// use conex::multiprocessing::RawArray;
    ///
    /// let raw = RawArray::from_slice(&[1u8, 2, 3])?;
    /// let a = raw.clone().synchronized(None)?;
    /// a.set(0, 9).unwrap();
    /// assert_eq!(raw.to_vec(), [9, 2, 3]);
    /// assert_eq!(raw.copy()?.to_vec(), [9, 2, 3]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// The OS refused the new lock's shared memory.
    pub fn synchronized(self, lock: Option<RLock>) -> std::io::Result<Array<T>> {
        Ok(Array {
            raw: self,
            lock: match lock {
                Some(l) => l,
                None => RLock::new()?,
            },
        })
    }

    /// Overwrites from `items` (the same length). Python: `a[:] = items`.
    ///
    /// # Errors
    /// [`IndexError`] if the lengths differ.
    pub fn copy_from_slice(&self, items: &[T]) -> Result<(), IndexError> {
        if items.len() != self.cells.len {
            return Err(IndexError {
                index: items.len(),
                len: self.cells.len,
            });
        }
        for (i, &v) in items.iter().enumerate() {
            self.cells.store(i, v);
        }
        Ok(())
    }
}

impl<T: Element> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawArray").field(&self.to_vec()).finish()
    }
}

/// A fixed-length array of numbers in shared memory with a cross-process
/// [`RLock`]. Python: `multiprocessing.Array(typecode, size_or_initializer)`
/// (lock=True).
///
/// Each `get` / `set` takes the lock; `to_vec` and `copy_from_slice` take
/// it once for the whole copy. Hold [`get_lock`](Array::get_lock) around
/// compound updates.
///
/// ```
/// let a = conex::multiprocessing::Array::<u64>::new(4)?;
/// a.set(2, 7).unwrap();
/// assert_eq!(a.to_vec(), [0, 0, 7, 0]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Element"))]
pub struct Array<T: Element> {
    raw: RawArray<T>,
    lock: RLock,
}

impl<T: Element> Array<T> {
    /// `len` zeroes, with a new lock.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn new(len: usize) -> std::io::Result<Array<T>> {
        Ok(Array {
            raw: RawArray::new(len)?,
            lock: RLock::new()?,
        })
    }

    /// A copy of `items`, with a new lock.
    ///
    /// # Errors
    /// The OS refused the shared memory.
    pub fn from_slice(items: &[T]) -> std::io::Result<Array<T>> {
        Ok(Array {
            raw: RawArray::from_slice(items)?,
            lock: RLock::new()?,
        })
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Element `i`, under the lock.
    ///
    /// # Errors
    /// [`IndexError`] past the end.
    pub fn get(&self, i: usize) -> Result<T, IndexError> {
        let _g = self.lock.blocking().lock();
        self.raw.get(i)
    }

    /// Sets element `i` under the lock.
    ///
    /// # Errors
    /// [`IndexError`] past the end.
    pub fn set(&self, i: usize, v: T) -> Result<(), IndexError> {
        let _g = self.lock.blocking().lock();
        self.raw.set(i, v)
    }

    /// All elements, copied out under the lock.
    pub fn to_vec(&self) -> Vec<T> {
        let _g = self.lock.blocking().lock();
        self.raw.to_vec()
    }

    /// Overwrites from `items` under the lock.
    ///
    /// # Errors
    /// [`IndexError`] if the lengths differ.
    pub fn copy_from_slice(&self, items: &[T]) -> Result<(), IndexError> {
        let _g = self.lock.blocking().lock();
        self.raw.copy_from_slice(items)
    }

    /// Its lock. Python: `get_lock()`.
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }

    /// The array without its lock. Python: `get_obj()`.
    pub fn get_obj(&self) -> &RawArray<T> {
        &self.raw
    }
}

impl<T: Element> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Array").field(&self.raw.to_vec()).finish()
    }
}
