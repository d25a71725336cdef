//! `Pool`: a process pool in the server, and [`PoolProxy`].

use std::sync::Arc;

use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::client::{BaseProxy, Blocking, Proxy, arg, block};
use super::super::protocol::ManagerError;
use super::super::server::{Caller, Outcome, Served, decode_arg as a, encode_result as ok};
use super::{err, no_method};
use crate::multiprocessing::callable::{Call, Plain};
use crate::multiprocessing::errors::RemoteError;

// ----------------------------------------------------------------- Pool

pub(super) struct PoolObj(pub(super) crate::multiprocessing::Pool);

impl Served for PoolObj {
    fn call(&self, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        match method {
            "run" => {
                if !cx.same_binary {
                    return Err(err(
                        "TypeError",
                        "only a client running this same binary may send calls to a managed Pool",
                    ));
                }
                let call: Call = a(args, 0)?;
                let futures = args[1..]
                    .iter()
                    .map(|chunk| self.0.submit_raw(call, chunk.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err("ValueError", e.to_string()))?;
                let mut replies = Vec::with_capacity(futures.len());
                for f in futures {
                    match f.blocking().take_result() {
                        Ok(r) => replies.push(r),
                        Err(crate::futures::FutureError::Failed(w)) => {
                            let mut e = err(w.type_name(), w.message());
                            e.backtrace = w.traceback().map(str::to_owned);
                            return Err(e);
                        }
                        Err(e) => return Err(err("RuntimeError", e.to_string())),
                    }
                }
                ok(&replies)
            }
            "processes" => ok(&self.0.processes()),
            "close" => {
                self.0.close();
                ok(&())
            }
            "terminate" => {
                self.0.terminate();
                ok(&())
            }
            "join" => self
                .0
                .join()
                .map_err(|e| err("ValueError", e.to_string()))
                .and_then(|()| ok(&())),
            _ => Err(no_method("Pool", method)),
        }
    }

    fn start(self: Arc<Self>, cx: &Caller, method: &str, args: &[Vec<u8>]) -> Outcome {
        if method != "run" && method != "join" {
            return Outcome::Now(self.call(cx, method, args));
        }
        // The pool's own waits are blocking: on a thread of the server's
        // blocking pool, not on this connection's.
        let (cx, method, args) = (cx.clone(), method.to_owned(), args.to_vec());
        Outcome::Finish(
            async move {
                tokio::task::spawn_blocking(move || self.call(&cx, &method, &args))
                    .await
                    .unwrap_or_else(|_| Err(err("RuntimeError", "the pool call panicked")))
            }
            .boxed(),
        )
    }
}

/// A proxy to a process pool living in a manager's server.
///
/// Python: `SyncManager.Pool(processes)`. The work is a plain `fn` on
/// serde arguments, as [`Pool`](crate::multiprocessing::Pool)'s; it crosses as a
/// code offset, so only a client running the same binary as the server
/// (the same file, or a copy of it on the server's machine, as a
/// [`Process`](crate::multiprocessing::Process) child) may send it; a client of
/// another build gets a remote `TypeError` (code addresses mean nothing
/// there). Calls block until the results are back.
pub struct PoolProxy {
    base: BaseProxy,
}

proxy_type!(PoolProxy);

dual! {
    impl[] PoolProxy {

        /// The number of workers.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone.
        pub async fn processes(&self) -> Result<usize, ManagerError> {
            self.base.call("processes", vec![]).await
        }

        /// `close()`.
        ///
        /// # Errors
        /// As [`processes`](PoolProxy::processes).
        pub async fn close(&self) -> Result<(), ManagerError> {
            self.base.call("close", vec![]).await
        }

        /// `terminate()`.
        ///
        /// # Errors
        /// As [`processes`](PoolProxy::processes).
        pub async fn terminate(&self) -> Result<(), ManagerError> {
            self.base.call("terminate", vec![]).await
        }

        /// `join()` (after `close` or `terminate`).
        ///
        /// # Errors
        /// A remote `ValueError` if the pool is still running.
        pub async fn join(&self) -> Result<(), ManagerError> {
            self.base.call("join", vec![]).await
        }
    }
}

impl PoolProxy {
    /// `f` over `args` on the pool's workers, results in order;
    /// `chunksize` calls per message (0: about four chunks per worker).
    ///
    /// Python: `pool_proxy.map(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// The first failed call's error as [`ManagerError::Remote`] (a panic
    /// with its remote backtrace, or `BrokenProcessPool` for a worker that
    /// died), [`ManagerError::Codec`] for arguments holding OS handles.
    pub async fn map<A, R>(
        &self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, ManagerError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let args: Vec<A> = args.into_iter().collect();
        let chunksize = match chunksize {
            0 => {
                let workers: usize = self.base.call("processes", vec![]).await?;
                args.len().div_ceil(workers.max(1) * 4).max(1)
            }
            n => n,
        };
        let call = Call::batch::<Plain<A, R>>(f as usize);
        let mut request = vec![arg(&call)];
        let n = args.len();
        let mut it = args.into_iter().peekable();
        while it.peek().is_some() {
            let chunk: Vec<A> = it.by_ref().take(chunksize).collect();
            let (bytes, fds) =
                crate::multiprocessing::handles::collect(|| postcard::to_allocvec(&chunk));
            if !fds.is_empty() {
                return Err(ManagerError::Codec(
                    "OS handles cannot be sent to a managed Pool".into(),
                ));
            }
            request.push(bytes.map_err(|e| ManagerError::Codec(e.to_string()))?);
        }
        let replies: Vec<Vec<u8>> = self.base.call("run", request).await?;
        let mut out = Vec::with_capacity(n);
        for r in replies {
            let outs: Vec<Result<R, RemoteError>> =
                postcard::from_bytes(&r).map_err(|e| ManagerError::Codec(e.to_string()))?;
            for o in outs {
                out.push(o.map_err(ManagerError::Remote)?);
            }
        }
        Ok(out)
    }

    /// `f(arg)` on one of the pool's workers.
    ///
    /// Python: `pool_proxy.apply(func, args)`.
    ///
    /// # Errors
    /// As [`map`](PoolProxy::map).
    pub async fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, ManagerError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let mut v = self.map(f, [arg], 1).await?;
        Ok(v.remove(0))
    }
}

impl Blocking<'_, PoolProxy> {
    /// [`PoolProxy::map`], blocking.
    ///
    /// # Errors
    /// As [`PoolProxy::map`].
    #[track_caller]
    pub fn map<A, R>(
        &self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, ManagerError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        block(self.0.map(f, args, chunksize))
    }

    /// [`PoolProxy::apply`], blocking.
    ///
    /// # Errors
    /// As [`PoolProxy::map`].
    #[track_caller]
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, ManagerError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        block(self.0.apply(f, arg))
    }
}
