//! The private I/O core under subprocess and multiprocessing: descriptors
//! waited on two ways (tokio's reactor under `.await`, `poll(2)` under the
//! blocking facade), child processes waited on through pidfds, and the
//! reaper for children nobody waits for.
//!
//! - [`driver`]: the blocking executor ([`driver::block_on_io`]), timeouts
//!   ([`driver::within`]) and the runtime a registration lands on.
//! - [`fd`]: [`fd::SharedFd`], a descriptor registered lazily, shared by
//!   reference.
//! - [`child`]: a `std::process::Child` and waiting for its exit.
//! - [`reaper`]: children whose owner was dropped while they ran.
//!
//! Each of the two modules uses part of it: a build with only one of them
//! leaves the other's part unused.
#![cfg_attr(
    not(all(feature = "subprocess", feature = "multiprocessing")),
    allow(dead_code)
)]

pub(crate) mod child;
pub(crate) mod driver;
pub(crate) mod fd;
pub(crate) mod reaper;
