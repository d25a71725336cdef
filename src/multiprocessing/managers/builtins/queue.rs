//! `Queue` and `JoinableQueue`: [`QueueProxy`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::client::{BaseProxy, Proxy, Undo, arg};
use super::super::protocol::ManagerError;
use super::super::server::{Caller, Outcome, Served, decode_arg as a, encode_result as ok};
use super::{err, no_method};
use crate::multiprocessing::errors::RemoteError;

// ---------------------------------------------------------------- Queue

pub(super) struct QueueObj(pub(super) crate::queue::Queue<Vec<u8>>);

impl Served for QueueObj {
    fn call(&self, _: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let q = &self.0;
        match method {
            "put" => {
                let item = args.first().cloned().unwrap_or_default();
                q.put_nowait(item)
                    .map_err(|_| err("Full", "the queue is full"))?;
                ok(&())
            }
            "get" => q
                .get_nowait()
                .map_err(|_| err("Empty", "the queue is empty")),
            "qsize" => ok(&q.qsize()),
            "empty" => ok(&q.empty()),
            "full" => ok(&q.full()),
            "task_done" => q
                .task_done()
                .map_err(|e| err("ValueError", e.to_string()))
                .and_then(|()| ok(&())),
            _ => Err(no_method("Queue", method)),
        }
    }

    fn start(self: Arc<Self>, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        let parsed = (|| -> Result<Option<(bool, Option<Duration>)>, RemoteError> {
            Ok(match method {
                "put" => Some((a(args, 1)?, a(args, 2)?)),
                "get" => Some((a(args, 0)?, a(args, 1)?)),
                _ => None,
            })
        })();
        let wait = match parsed {
            Err(e) => return Outcome::Now(Err(e)),
            Ok(w) => w,
        };
        match (method, wait) {
            // A put or get that may wait: try now, else wait as a task.
            ("put" | "get", Some((true, timeout))) => {
                if method == "put" && !self.0.full() || method == "get" && !self.0.empty() {
                    let now = self.call(cx, method, args);
                    if now.is_ok() {
                        return Outcome::Now(now);
                    }
                }
                let item = args.first().cloned().unwrap_or_default();
                let put = method == "put";
                Outcome::Later(
                    async move {
                        let q = &self.0;
                        if put {
                            let r = match timeout {
                                None => q.put(item).await.map_err(|_| ()),
                                Some(t) => q.put_timeout(item, t).await.map_err(|_| ()),
                            };
                            r.map_err(|()| err("Full", "the queue is full"))?;
                            ok(&())
                        } else {
                            let r = match timeout {
                                None => q.get().await.map_err(|_| ()),
                                Some(t) => q.get_timeout(t).await.map_err(|_| ()),
                            };
                            r.map_err(|()| err("Empty", "the queue is empty"))
                        }
                    }
                    .boxed(),
                )
            }
            ("join", _) => Outcome::Later(
                async move {
                    self.0.join().await;
                    ok(&())
                }
                .boxed(),
            ),
            _ => Outcome::Now(self.call(cx, method, args)),
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

dual! {
    impl[T: Serialize + DeserializeOwned] QueueProxy<T> {

        /// `q.put(item)`: waits for room.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone.
        pub async fn put(&self, item: &T) -> Result<(), ManagerError> {
            self.put_with(item, true, None).await
        }

        /// `q.put(item, timeout=t)`.
        ///
        /// # Errors
        /// A remote `Full` if no room came in time.
        pub async fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), ManagerError> {
            self.put_with(item, true, Some(timeout)).await
        }

        /// `q.put_nowait(item)`.
        ///
        /// # Errors
        /// A remote `Full`.
        pub async fn put_nowait(&self, item: &T) -> Result<(), ManagerError> {
            self.put_with(item, false, None).await
        }

        /// `q.get()`: waits for an item.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone.
        pub async fn get(&self) -> Result<T, ManagerError> {
            self.get_with(true, None).await
        }

        /// `q.get(timeout=t)`.
        ///
        /// # Errors
        /// A remote `Empty` if nothing came in time.
        pub async fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerError> {
            self.get_with(true, Some(timeout)).await
        }

        /// `q.get_nowait()`.
        ///
        /// # Errors
        /// A remote `Empty`.
        pub async fn get_nowait(&self) -> Result<T, ManagerError> {
            self.get_with(false, None).await
        }

        /// `q.qsize()`.
        ///
        /// # Errors
        /// As [`put`](QueueProxy::put).
        pub async fn qsize(&self) -> Result<usize, ManagerError> {
            self.base.call("qsize", vec![]).await
        }

        /// `q.empty()`.
        ///
        /// # Errors
        /// As [`put`](QueueProxy::put).
        pub async fn empty(&self) -> Result<bool, ManagerError> {
            self.base.call("empty", vec![]).await
        }

        /// `q.full()`.
        ///
        /// # Errors
        /// As [`put`](QueueProxy::put).
        pub async fn full(&self) -> Result<bool, ManagerError> {
            self.base.call("full", vec![]).await
        }

        /// `q.task_done()`.
        ///
        /// # Errors
        /// A remote `ValueError` when called more times than items were put.
        pub async fn task_done(&self) -> Result<(), ManagerError> {
            self.base.call("task_done", vec![]).await
        }

        /// `q.join()`: waits until every item put was marked done.
        ///
        /// # Errors
        /// As [`put`](QueueProxy::put).
        pub async fn join(&self) -> Result<(), ManagerError> {
            self.base.call("join", vec![]).await
        }
    }
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    async fn put_with(
        &self,
        item: &T,
        block: bool,
        timeout: Option<Duration>,
    ) -> Result<(), ManagerError> {
        self.base
            .call("put", vec![arg(item), arg(&block), arg(&timeout)])
            .await
    }

    async fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<T, ManagerError> {
        // A get dropped after the server took the item puts it back.
        self.base
            .call_undo("get", vec![arg(&block), arg(&timeout)], Undo::PutBack)
            .await
    }
}
