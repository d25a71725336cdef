//! Python's `subprocess`: run programs, talk to them through pipes, chain
//! them into pipelines. Async first, on tokio's reactor; every waiting call
//! has a blocking facade that needs no runtime. Unix only for now.
//!
//! | Python | conex |
//! |---|---|
//! | `run(args, input, capture_output, stdin, stdout, stderr, shell, cwd, env, timeout, check, text, ...)` | [`run`] / [`Command`] (awaiting it runs it), [`Command::blocking`] |
//! | `CompletedProcess` (`args`, `returncode`, `stdout`, `stderr`, `check_returncode()`) | [`CompletedProcess`] |
//! | `PIPE`, `DEVNULL`, `STDOUT` | [`PIPE`], [`DEVNULL`], [`STDOUT`] ([`Stdio`]) |
//! | `Popen`: `stdin`/`stdout`/`stderr`, `pid`, `returncode`, `args`, `poll`, `wait`, `communicate`, `send_signal`, `terminate`, `kill` | [`Popen`], [`ChildStdin`], [`ChildStdout`], [`ChildStderr`], [`Popen::blocking`] |
//! | `call`, `check_call`, `check_output`, `getstatusoutput`, `getoutput` | same names (async), and `*_blocking` twins |
//! | `SubprocessError`, `TimeoutExpired`, `CalledProcessError`, `OSError` from `Popen()` | [`SubprocessError`], [`TimeoutExpired`], [`CalledProcessError`], [`SpawnError`] |
//! | the shell-pipeline recipe (`p2 = Popen(..., stdin=p1.stdout)`) | [`Pipeline`] (`cmd1 \| cmd2 \| cmd3`), [`PipelinePopen`] |
//! | `signal.SIGTERM`, ... | [`signal`] |
//!
//! ```
//! # #[tokio::main] async fn main() -> Result<(), conex::subprocess::SubprocessError> {
//! use conex::subprocess::{self, Command};
//! use std::time::Duration;
//!
//! // run: input in, output captured, status checked.
//! let done = subprocess::run(["tr", "a-z", "A-Z"]).input("shout").capture_output().check().await?;
//! assert_eq!(done.stdout.unwrap(), b"SHOUT");
//!
//! // A timeout kills the child and keeps what it printed.
//! let err = Command::shell("echo started; sleep 10")
//!     .stdout(subprocess::PIPE)
//!     .timeout(Duration::from_secs(1))
//!     .run()
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.as_timeout().unwrap().stdout.as_deref(), Some(&b"started\n"[..]));
//! # Ok(()) }
//! ```
//!
//! # Design notes
//! - Each operation is written once, as a future, and driven two ways
//!   (conex's private I/O core, shared with multiprocessing): under `.await` its pipes and the child's pidfd are
//!   registered with tokio's reactor (the caller's runtime, or conex's own
//!   if there is none); under the blocking facade the same future is polled
//!   on the calling thread, which sleeps in one `poll(2)` on what it waits
//!   for. No helper thread sits between the kernel and the waiter.
//! - Pipes are made by conex (close-on-exec, optional `pipesize`) and read
//!   with raw `read(2)` into spare capacity; `stderr=STDOUT` shares one
//!   pipe; a pipeline's inner pipes never reach the parent.
//! - [`Popen::communicate`] moves stdin, stdout and stderr together in one
//!   poll, so full pipes cannot deadlock it, and keeps its progress in the
//!   `Popen`: a timeout or a dropped future loses no output.
//! - Timeouts: under `.await` they are tokio timers (so a test on paused
//!   time must advance the clock); under the blocking facade the wall clock.
//! - The blocking facades step aside with `block_in_place` inside a
//!   multi-thread runtime and panic naming the fix on a current-thread one,
//!   rather than stall it.
//! - Children are started with `std::process` (posix_spawn where it
//!   applies) and reaped by their `Popen`; one dropped while running is
//!   reaped by a background task, so no zombie is left.
//! - SIGPIPE: Rust programs ignore it, so writing to a child that has
//!   exited is an `EPIPE` that `communicate` treats as Python does (the
//!   rest of the input is dropped).

mod command;
mod completed;
mod errors;
mod functions;
mod mode;
mod pipe;
mod pipeline;
mod popen;
mod spawn;
mod stdio;

pub use command::{BlockingCommand, Command};
pub use completed::CompletedProcess;
pub use errors::{
    CalledProcessError, DecodeError, SpawnError, SpawnErrorKind, SubprocessError, TimeoutExpired,
};
pub use functions::{
    call, call_blocking, check_call, check_call_blocking, check_output, check_output_blocking,
    getoutput, getoutput_blocking, getstatusoutput, getstatusoutput_blocking, run,
};
pub use mode::{Bytes, Mode, Text};
pub use pipe::{BlockingReader, BlockingWriter, ChildStderr, ChildStdin, ChildStdout};
pub use pipeline::{
    BlockingPipeline, BlockingPipelinePopen, CompletedPipeline, Pipeline, PipelinePopen,
};
pub use popen::{BlockingPopen, Popen};
pub use stdio::{DEVNULL, PIPE, STDOUT, Stdio};

/// Signal numbers for [`Popen::send_signal`] (Python's `signal` module
/// constants).
pub mod signal {
    /// Hangup.
    pub const SIGHUP: i32 = libc::SIGHUP;
    /// Interrupt (Ctrl-C).
    pub const SIGINT: i32 = libc::SIGINT;
    /// Quit.
    pub const SIGQUIT: i32 = libc::SIGQUIT;
    /// Kill (cannot be caught).
    pub const SIGKILL: i32 = libc::SIGKILL;
    /// User signal 1.
    pub const SIGUSR1: i32 = libc::SIGUSR1;
    /// User signal 2.
    pub const SIGUSR2: i32 = libc::SIGUSR2;
    /// Broken pipe.
    pub const SIGPIPE: i32 = libc::SIGPIPE;
    /// Alarm.
    pub const SIGALRM: i32 = libc::SIGALRM;
    /// Termination request ([`Popen::terminate`](super::Popen::terminate)).
    pub const SIGTERM: i32 = libc::SIGTERM;
    /// Continue a stopped process.
    pub const SIGCONT: i32 = libc::SIGCONT;
    /// Stop (cannot be caught).
    pub const SIGSTOP: i32 = libc::SIGSTOP;
}
