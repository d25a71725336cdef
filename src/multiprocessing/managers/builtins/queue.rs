//! `Queue` and `JoinableQueue`: [`QueueProxy`].

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::client::{BaseProxy, Proxy, arg};
use super::super::protocol::ManagerError;
use super::super::server::{Caller, Served, decode_arg as a, encode_result as ok};
use super::{err, no_method};
use crate::multiprocessing::errors::RemoteError;

// ---------------------------------------------------------------- Queue

pub(super) struct QueueObj(pub(super) crate::queue::Queue<Vec<u8>>);

impl Served for QueueObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let q = self.0.blocking();
        match method {
            "put" => {
                let item = args.first().cloned().unwrap_or_default();
                let block: bool = a(args, 1)?;
                let timeout: Option<Duration> = a(args, 2)?;
                let r = match (block, timeout) {
                    (false, _) => q.put_nowait(item).map_err(|_| ()),
                    (true, None) => q.put(item).map_err(|_| ()),
                    (true, Some(t)) => q.put_timeout(item, t).map_err(|_| ()),
                };
                r.map_err(|()| err("Full", "the queue is full"))?;
                ok(&())
            }
            "get" => {
                let block: bool = a(args, 0)?;
                let timeout: Option<Duration> = a(args, 1)?;
                let r = match (block, timeout) {
                    (false, _) => q.get_nowait().map_err(|_| ()),
                    (true, None) => q.get().map_err(|_| ()),
                    (true, Some(t)) => q.get_timeout(t).map_err(|_| ()),
                };
                r.map_err(|()| err("Empty", "the queue is empty"))
            }
            "qsize" => ok(&q.qsize()),
            "empty" => ok(&q.empty()),
            "full" => ok(&q.full()),
            "task_done" => q
                .task_done()
                .map_err(|e| err("ValueError", e.to_string()))
                .and_then(|()| ok(&())),
            "join" => {
                q.join();
                ok(&())
            }
            _ => Err(no_method("Queue", method)),
        }
    }
}

/// A proxy to a queue in a manager (also its `JoinableQueue`).
///
/// Python: `SyncManager.Queue(maxsize)` / `JoinableQueue(maxsize)` (a
/// `queue.Queue` in the server); `Empty` and `Full` come back as remote
/// errors of those names ([`ManagerError::is`]).
pub struct QueueProxy<T> {
    base: BaseProxy,
    _t: PhantomData<fn() -> T>,
}

proxy_type!(QueueProxy<T>);

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    fn put_with(
        &self,
        item: &T,
        block: bool,
        timeout: Option<Duration>,
    ) -> Result<(), ManagerError> {
        self.base
            .call("put", vec![arg(item), arg(&block), arg(&timeout)])
    }

    fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<T, ManagerError> {
        self.base.call("get", vec![arg(&block), arg(&timeout)])
    }

    /// `q.put(item)`: waits for room.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn put(&self, item: &T) -> Result<(), ManagerError> {
        self.put_with(item, true, None)
    }

    /// `q.put(item, timeout=t)`.
    ///
    /// # Errors
    /// A remote `Full` if no room came in time.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), ManagerError> {
        self.put_with(item, true, Some(timeout))
    }

    /// `q.put_nowait(item)`.
    ///
    /// # Errors
    /// A remote `Full`.
    pub fn put_nowait(&self, item: &T) -> Result<(), ManagerError> {
        self.put_with(item, false, None)
    }

    /// `q.get()`: waits for an item.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn get(&self) -> Result<T, ManagerError> {
        self.get_with(true, None)
    }

    /// `q.get(timeout=t)`.
    ///
    /// # Errors
    /// A remote `Empty` if nothing came in time.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerError> {
        self.get_with(true, Some(timeout))
    }

    /// `q.get_nowait()`.
    ///
    /// # Errors
    /// A remote `Empty`.
    pub fn get_nowait(&self) -> Result<T, ManagerError> {
        self.get_with(false, None)
    }

    /// `q.qsize()`.
    ///
    /// # Errors
    /// As [`put`](QueueProxy::put).
    pub fn qsize(&self) -> Result<usize, ManagerError> {
        self.base.call("qsize", vec![])
    }

    /// `q.empty()`.
    ///
    /// # Errors
    /// As [`put`](QueueProxy::put).
    pub fn empty(&self) -> Result<bool, ManagerError> {
        self.base.call("empty", vec![])
    }

    /// `q.full()`.
    ///
    /// # Errors
    /// As [`put`](QueueProxy::put).
    pub fn full(&self) -> Result<bool, ManagerError> {
        self.base.call("full", vec![])
    }

    /// `q.task_done()`.
    ///
    /// # Errors
    /// A remote `ValueError` when called more times than items were put.
    pub fn task_done(&self) -> Result<(), ManagerError> {
        self.base.call("task_done", vec![])
    }

    /// `q.join()`: waits until every item put was marked done.
    ///
    /// # Errors
    /// As [`put`](QueueProxy::put).
    pub fn join(&self) -> Result<(), ManagerError> {
        self.base.call("join", vec![])
    }
}
