//! The jobs: chunks of calls with their futures, encoded for a worker and
//! completed from its reply.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Job, Msg, Reply};
use crate::futures::{Future, WorkError};
use crate::multiprocessing::callable::{Call, Caller};
use crate::multiprocessing::errors::RemoteError;
use crate::multiprocessing::handles;

/// Calls of `C` over a chunk of arguments, one future each.
pub(crate) struct Chunk<C: Caller> {
    target: usize,
    items: Vec<(Future<C::Out>, C::Arg)>,
    running: Vec<Future<C::Out>>,
}

impl<C: Caller> Chunk<C> {
    /// The job and its futures, in argument order.
    pub(crate) fn new(target: usize, args: Vec<C::Arg>) -> (Chunk<C>, Vec<Future<C::Out>>) {
        let items: Vec<_> = args.into_iter().map(|a| (Future::new(), a)).collect();
        let futures = items.iter().map(|(f, _)| f.clone()).collect();
        (
            Chunk {
                target,
                items,
                running: Vec::new(),
            },
            futures,
        )
    }
}

pub(crate) fn remote_to_work(e: RemoteError) -> WorkError {
    let w = WorkError::new(e.type_name, e.message);
    match e.backtrace {
        Some(bt) => w.with_traceback(bt),
        None => w,
    }
}

impl<C> Job for Chunk<C>
where
    C: Caller,
    C::Arg: Serialize + DeserializeOwned + Send,
    C::Out: Serialize + DeserializeOwned + Send + 'static,
{
    fn start(&mut self) -> Option<Msg> {
        let mut args = Vec::with_capacity(self.items.len());
        for (f, a) in self.items.drain(..) {
            if f.set_running_or_notify_cancel().unwrap_or(false) {
                self.running.push(f);
                args.push(a);
            }
        }
        if args.is_empty() {
            return None;
        }
        match encode_call::<C>(self.target, &args) {
            Ok(msg) => Some(msg),
            Err(err) => {
                for f in self.running.drain(..) {
                    let _ = f.set_exception(err.clone());
                }
                None
            }
        }
    }

    fn install_stopper(&self, stop: &dyn Fn() -> Box<dyn FnOnce() + Send>) {
        for f in &self.running {
            f.set_stopper(stop());
        }
    }

    fn finish(self: Box<Self>, reply: Reply) {
        match decode_outcomes::<C::Out>(reply, self.running.len()) {
            Ok(outs) => {
                for (f, out) in self.running.into_iter().zip(outs) {
                    let _ = match out {
                        Ok(v) => f.set_result(v),
                        Err(e) => f.set_exception(e),
                    };
                }
            }
            Err(e) => self.fail(e),
        }
    }

    fn fail(self: Box<Self>, error: WorkError) {
        for f in self.running.iter().chain(self.items.iter().map(|(f, _)| f)) {
            let _ = f.set_exception(error.clone());
        }
    }

    fn cancel(self: Box<Self>) {
        for (f, _) in &self.items {
            f.cancel();
        }
    }
}

/// The frame of a chunk: the batch call of `target` and the encoded
/// arguments.
fn encode_call<C>(target: usize, args: &Vec<C::Arg>) -> Result<Msg, WorkError>
where
    C: Caller,
    C::Arg: Serialize + DeserializeOwned,
    C::Out: Serialize,
{
    let (bytes, fds) = handles::collect(|| postcard::to_allocvec(args));
    match bytes {
        Ok(args) => Ok(Msg {
            call: Call::batch::<C>(target),
            args,
            fds,
        }),
        Err(e) => Err(WorkError::new(
            "EncodeError",
            format!("cannot encode the arguments: {e}"),
        )),
    }
}

/// The per-call outcomes of a worker's reply to a chunk of `n` calls.
fn decode_outcomes<T: DeserializeOwned>(
    reply: Reply,
    n: usize,
) -> Result<Vec<Result<T, WorkError>>, WorkError> {
    let (bytes, fds) = reply.map_err(remote_to_work)?;
    let outs = handles::provide(fds, || {
        postcard::from_bytes::<Vec<Result<T, RemoteError>>>(&bytes)
    })
    .map_err(|e| WorkError::new("DecodeError", format!("cannot decode the result: {e}")))?;
    if outs.len() != n {
        return Err(WorkError::new(
            "DecodeError",
            format!("{} results for {n} calls", outs.len()),
        ));
    }
    Ok(outs
        .into_iter()
        .map(|o| o.map_err(remote_to_work))
        .collect())
}

/// The outcomes of a chunk of calls, in order.
pub(crate) type Outcomes<T> = Vec<Result<T, WorkError>>;

/// Calls of `C` over a chunk of arguments with one future for the whole
/// chunk: what `Pool.map` and `Executor::map` send (no future per call).
pub(crate) struct Whole<C: Caller> {
    target: usize,
    args: Vec<C::Arg>,
    future: Future<Outcomes<C::Out>>,
}

impl<C: Caller> Whole<C> {
    pub(crate) fn new(target: usize, args: Vec<C::Arg>) -> (Whole<C>, Future<Outcomes<C::Out>>) {
        let future = Future::new();
        (
            Whole {
                target,
                args,
                future: future.clone(),
            },
            future,
        )
    }
}

impl<C> Job for Whole<C>
where
    C: Caller,
    C::Arg: Serialize + DeserializeOwned + Send,
    C::Out: Serialize + DeserializeOwned + Send + 'static,
{
    fn start(&mut self) -> Option<Msg> {
        if !self.future.set_running_or_notify_cancel().unwrap_or(false) {
            return None;
        }
        match encode_call::<C>(self.target, &self.args) {
            Ok(msg) => Some(msg),
            Err(e) => {
                let _ = self.future.set_exception(e);
                None
            }
        }
    }

    fn install_stopper(&self, stop: &dyn Fn() -> Box<dyn FnOnce() + Send>) {
        self.future.set_stopper(stop());
    }

    fn finish(self: Box<Self>, reply: Reply) {
        let _ = match decode_outcomes::<C::Out>(reply, self.args.len()) {
            Ok(outs) => self.future.set_result(outs),
            Err(e) => self.future.set_exception(e),
        };
    }

    fn fail(self: Box<Self>, error: WorkError) {
        let _ = self.future.set_exception(error);
    }

    fn cancel(self: Box<Self>) {
        self.future.cancel();
    }
}

/// A call that arrives already encoded (from a manager's client, of the
/// same binary): the batch call and its encoded `Vec` of arguments; its
/// future holds the worker's encoded reply.
pub(crate) struct Raw {
    call: Call,
    args: Option<Vec<u8>>,
    future: Future<Vec<u8>>,
}

impl Raw {
    pub(crate) fn new(call: Call, args: Vec<u8>) -> (Raw, Future<Vec<u8>>) {
        let future = Future::new();
        (
            Raw {
                call,
                args: Some(args),
                future: future.clone(),
            },
            future,
        )
    }
}

impl Job for Raw {
    fn start(&mut self) -> Option<Msg> {
        if !self.future.set_running_or_notify_cancel().unwrap_or(false) {
            return None;
        }
        Some(Msg {
            call: self.call,
            args: self.args.take().unwrap_or_default(),
            fds: Vec::new(),
        })
    }

    fn install_stopper(&self, stop: &dyn Fn() -> Box<dyn FnOnce() + Send>) {
        self.future.set_stopper(stop());
    }

    fn finish(self: Box<Self>, reply: Reply) {
        let _ = match reply {
            Ok((bytes, _fds)) => self.future.set_result(bytes),
            Err(e) => self.future.set_exception(remote_to_work(e)),
        };
    }

    fn fail(self: Box<Self>, error: WorkError) {
        let _ = self.future.set_exception(error);
    }

    fn cancel(self: Box<Self>) {
        self.future.cancel();
    }
}
