//! The cross-process `Semaphore` and `BoundedSemaphore`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::block::Block;
use super::sem::{Sem, deadline};
use crate::threading::ReleaseError;

/// A counting semaphore shared by processes. Python:
/// `multiprocessing.Semaphore(value)`; [`BoundedSemaphore`] refuses
/// releases above the initial value.
///
/// # Cancel safety
/// A dropped `acquire` holds nothing: a waiting task takes its permit in
/// its own poll (one CAS), so dropped it has taken nothing, and a wake-up
/// it was given goes to the next waiter. Waiting tasks take no thread
/// each: one thread per process sleeps on the count for all of them.
///
/// ```
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let s = conex::multiprocessing::Semaphore::new(2)?;
/// s.acquire().await;
/// assert!(s.try_acquire());
/// assert!(!s.try_acquire());
/// s.release(2).unwrap();
/// assert_eq!(s.get_value(), 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Semaphore {
    block: Arc<Block>,
    sem: Sem,
}

super::serde_via_block!(Semaphore, |block| Semaphore {
    sem: Sem {
        block: block.clone(),
        base: 0
    },
    block,
});

impl Semaphore {
    /// The largest count.
    pub const MAX_VALUE: u32 = i32::MAX as u32;

    /// A semaphore holding `value` permits.
    ///
    /// # Errors
    /// The OS refused the shared memory; `value` above `MAX_VALUE`.
    pub fn new(value: u32) -> std::io::Result<Semaphore> {
        Self::make(value, false)
    }

    fn make(value: u32, bounded: bool) -> std::io::Result<Semaphore> {
        let max = if bounded { value } else { Self::MAX_VALUE };
        if value > Self::MAX_VALUE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "value above MAX_VALUE",
            ));
        }
        let block = Arc::new(Block::new(16)?);
        // Word 3: whether it is bounded.
        block
            .u32(12)
            .store(u32::from(bounded), std::sync::atomic::Ordering::SeqCst);
        let sem = Sem::init(block.clone(), 0, value, max);
        Ok(Semaphore { block, sem })
    }

    /// Waits for a permit. Python: `acquire()`.
    pub async fn acquire(&self) {
        self.sem.acquire_async(None).await;
    }

    /// Takes a permit if one is free. Python: `acquire(False)`.
    pub fn try_acquire(&self) -> bool {
        self.sem.try_acquire()
    }

    /// Waits at most `timeout`. Python: `acquire(timeout=t)`.
    pub async fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.sem.acquire_async(deadline(timeout)).await
    }

    /// Adds `n` permits, waking as many waiters. Python: `release(n)`.
    ///
    /// # Errors
    /// `ZeroCount` for 0; `TooManyReleases` above a bounded semaphore's
    /// initial value; `Overflow` above `MAX_VALUE`.
    pub fn release(&self, n: u32) -> Result<(), ReleaseError> {
        if n == 0 {
            return Err(ReleaseError::ZeroCount);
        }
        self.sem.release(n).map_err(|_| {
            if self.bounded() {
                ReleaseError::TooManyReleases
            } else {
                ReleaseError::Overflow
            }
        })
    }

    fn bounded(&self) -> bool {
        self.block.u32(12).load(std::sync::atomic::Ordering::SeqCst) != 0
    }

    /// The free permits now. Python: `get_value()`.
    pub fn get_value(&self) -> u32 {
        self.sem.get_value()
    }

    /// The blocking facade.
    pub fn blocking(&self) -> BlockingSemaphore<'_> {
        BlockingSemaphore { sem: self }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("multiprocessing::Semaphore")
            .field("value", &self.get_value())
            .field("bounded", &self.bounded())
            .finish()
    }
}

/// A [`Semaphore`] whose releases may not go above its initial value.
/// Python: `multiprocessing.BoundedSemaphore(value)`.
#[derive(Debug)]
pub struct BoundedSemaphore;

impl BoundedSemaphore {
    /// A bounded semaphore of `value` permits (a [`Semaphore`] whose
    /// `release` above `value` is `TooManyReleases`).
    ///
    /// # Errors
    /// As [`Semaphore::new`].
    #[allow(clippy::new_ret_no_self)]
    pub fn new(value: u32) -> std::io::Result<Semaphore> {
        Semaphore::make(value, true)
    }
}

/// The blocking facade of a [`Semaphore`].
#[derive(Debug)]
pub struct BlockingSemaphore<'a> {
    sem: &'a Semaphore,
}

impl BlockingSemaphore<'_> {
    /// [`Semaphore::acquire`], blocking.
    pub fn acquire(&self) {
        self.sem.sem.acquire_blocking(None, None);
    }

    /// [`Semaphore::acquire_timeout`], blocking.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.sem.sem.acquire_blocking(deadline(timeout), None)
    }
}
