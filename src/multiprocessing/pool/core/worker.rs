//! A worker process: this process's handle to it, and the loop it runs.

use std::os::fd::OwnedFd;

use super::broken::WorkerId;
use super::{Msg, Reply};
use crate::io::driver::block_on_io;
use crate::multiprocessing::callable::{Call, Outcome};
use crate::multiprocessing::connection::Connection;
use crate::multiprocessing::errors::{ConnectionError, RemoteError};
use crate::multiprocessing::process::ProcessHandle;

/// A worker process and this process's end of its connection.
pub(super) struct Worker {
    pub(super) process: ProcessHandle,
    pub(super) conn: Connection,
    pub(super) tasks: u64,
}

impl Worker {
    /// Whether it died (its end of the connection closed) while idle.
    pub(super) fn gone(&self) -> bool {
        !matches!(self.conn.try_poll(), Ok(false))
    }

    pub(super) fn exchange(&self, msg: Msg) -> Result<Reply, ConnectionError> {
        block_on_io(self.conn.send_with_fds(&(msg.call, msg.args), msg.fds))?;
        let frame = block_on_io(self.conn.recv_frame())?;
        let reply: Result<Vec<u8>, RemoteError> = postcard::from_bytes(&frame.bytes)
            .map_err(|e| ConnectionError::Decode(e.to_string()))?;
        Ok(reply.map(|b| (b, frame.fds)))
    }

    /// How the messages name it.
    pub(super) fn id(&self) -> WorkerId {
        WorkerId {
            name: self.process.name(),
            pid: self.process.pid().unwrap_or(0),
        }
    }

    /// Closes its connection (it exits on its own) and waits for it.
    pub(super) fn retire(self) {
        self.conn.close();
        let _ = self.process.blocking().join();
    }

    /// Kills what is left of it and waits; its exit code.
    pub(super) fn reap(self) -> Option<i32> {
        self.conn.close();
        if self
            .process
            .blocking()
            .join_timeout(std::time::Duration::from_secs(1))
            .ok()
            != Some(true)
        {
            let _ = self.process.kill();
            let _ = self.process.blocking().join();
        }
        self.process.exitcode()
    }
}
/// A pool worker's loop, in the worker process: receive a call, run it,
/// reply; return (and exit) when the pool closes the connection.
pub(super) fn pool_worker(conn: Connection) {
    while let Ok(frame) = block_on_io(conn.recv_frame()) {
        let reply: (Result<Vec<u8>, RemoteError>, Vec<OwnedFd>) =
            match postcard::from_bytes::<(Call, Vec<u8>)>(&frame.bytes) {
                Ok((call, args)) => {
                    // The pool sends calls made by `Call::batch` to a worker
                    // whose handshake proved it is this same binary.
                    match call.run(&args, frame.fds) {
                        Outcome::Returned(b, fds) => (Ok(b), fds),
                        Outcome::Panicked(e) => (Err(e), Vec::new()),
                    }
                }
                Err(e) => (
                    Err(RemoteError {
                        type_name: "DecodeError".into(),
                        message: format!("a malformed call: {e}"),
                        backtrace: None,
                    }),
                    Vec::new(),
                ),
            };
        if block_on_io(conn.send_with_fds(&reply.0, reply.1)).is_err() {
            return;
        }
    }
}
