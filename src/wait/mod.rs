//! The private wait core that every waiting primitive of conex goes through.
//!
//! - [`list`]: the one FIFO wait list. Async wakers and parked threads share
//!   it; notifications carry a tag; a cancelled waiter leaves the list and can
//!   pass its notification on, so none is lost.
//! - [`driver`]: each operation is one poll state machine ([`WaitOp`]) run
//!   two ways, `.await` ([`WaitFuture`]) and a parking driver for the blocking
//!   facades ([`block_on`]), with deadlines on tokio's clock and on std's.
//! - [`permits`]: the counting core under Lock, RLock and the semaphores.
//! - `mutex`: a data-guarding async mutex on the permit core (connections).
//! - [`flag`]: the set/clear flag under Event and Thread completion.
//! - [`owner`]: the identity of the calling task or thread (RLock owners).
//!
//! No primitive writes its own wait loop: a new primitive is a state in a
//! [`WaitList`] plus [`WaitOp`]s over it.

pub(crate) mod driver;
pub(crate) mod flag;
pub(crate) mod list;
#[cfg(feature = "multiprocessing")]
pub(crate) mod mutex;
pub(crate) mod owner;
pub(crate) mod permits;

#[cfg(all(unix, any(feature = "subprocess", feature = "multiprocessing")))]
pub(crate) use driver::Backoff;
pub(crate) use driver::{MapOp, WaitCx, WaitFuture, WaitOp, block_on, std_deadline};
pub(crate) use list::{Key, Locked, Tag, WaitList};
