//! `Popen`: a running child, its pipes, waiting, communicate and signals.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::task::{Context, Poll};
use std::time::Duration;

use super::errors::{SubprocessError, TimeoutExpired};
use super::mode::{Bytes, Mode, ModeExt};
use super::pipe::{ChildStderr, ChildStdin, ChildStdout, Pipe};
use crate::io::child::Proc;
use crate::io::driver::{block_on_io, within};
use crate::sys;

/// The parent's pipe ends of a new child.
pub(crate) struct Streams {
    pub(crate) stdin: Option<Pipe>,
    pub(crate) stdout: Option<Pipe>,
    pub(crate) stderr: Option<Pipe>,
}

/// Captured stdout and stderr, as bytes.
pub(crate) type RawOut = (Option<Vec<u8>>, Option<Vec<u8>>);

/// How many reads (or writes) one stream gets per poll before the others
/// and the timer get a turn: a child that writes as fast as we read (`yes`)
/// must not starve a timeout.
const BUDGET: usize = 16;

/// The state of `communicate`, kept in the `Popen` so that a timeout or a
/// dropped future loses nothing: the next call carries on.
#[derive(Default)]
struct Comm {
    started: bool,
    /// Input owned by the `Popen`: given to the `Command`, or the unwritten
    /// rest of a call's input when that call ended early. Otherwise the
    /// caller's input is written straight from its borrow (no copy).
    stored: Vec<u8>,
    /// How much of the current input source has been written.
    written: usize,
    stdin: Option<Pipe>,
    stdout: Option<Pipe>,
    stderr: Option<Pipe>,
    out: Option<Vec<u8>>,
    err: Option<Vec<u8>>,
}

impl Comm {
    fn done(&self) -> bool {
        self.stdin.is_none() && self.stdout.is_none() && self.stderr.is_none()
    }

    /// Moves every stream as far as it will go without waiting; `Ready`
    /// once stdin is fully written (or closed by the child) and stdout and
    /// stderr are at end of file.
    fn poll_io(&mut self, cx: &mut Context<'_>, borrowed: &[u8]) -> Poll<io::Result<()>> {
        let mut more = false;
        if let Some(p) = &mut self.stdin {
            let source: &[u8] = if self.stored.is_empty() {
                borrowed
            } else {
                &self.stored
            };
            let mut turns = 0;
            loop {
                if self.written >= source.len() {
                    self.stdin = None;
                    self.stored = Vec::new();
                    break;
                }
                if turns == BUDGET {
                    more = true;
                    break;
                }
                turns += 1;
                let rest = &source[self.written..];
                match p.poll_io(cx, |fd| sys::write(fd, rest)) {
                    Poll::Ready(Ok(n)) => self.written += n,
                    // The child closed its stdin: as Python, the rest of the
                    // input is dropped and reading goes on.
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                        self.stdin = None;
                        self.stored = Vec::new();
                        break;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
        }
        for (pipe, buf) in [
            (&mut self.stdout, &mut self.out),
            (&mut self.stderr, &mut self.err),
        ] {
            let Some(p) = pipe else { continue };
            let buf = buf.get_or_insert_with(Vec::new);
            let mut turns = 0;
            loop {
                if turns == BUDGET {
                    more = true;
                    break;
                }
                turns += 1;
                match p.poll_io(cx, |fd| sys::read_into_vec(fd, buf)) {
                    Poll::Ready(Ok(0)) => {
                        *pipe = None;
                        break;
                    }
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => break,
                }
            }
        }
        if self.done() {
            Poll::Ready(Ok(()))
        } else {
            if more {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    /// Reads what is already in the pipes, without waiting (after the
    /// child was killed: a grandchild may hold a pipe open forever).
    fn drain_now(&mut self) -> io::Result<()> {
        for (pipe, buf) in [
            (&mut self.stdout, &mut self.out),
            (&mut self.stderr, &mut self.err),
        ] {
            if let Some(p) = pipe {
                p.drain_now(buf.get_or_insert_with(Vec::new))?;
            }
            *pipe = None;
        }
        self.stdin = None;
        Ok(())
    }
}

/// Keeps the unwritten rest of a borrowed input in the `Popen` when a
/// communicate ends early (timeout or cancellation).
struct Feeding<'a, M: Mode> {
    p: &'a mut Popen<M>,
    input: &'a [u8],
}

impl<M: Mode> Drop for Feeding<'_, M> {
    fn drop(&mut self) {
        self.p.keep_input(self.input);
    }
}

/// A running (or finished) child process.
///
/// Python: `subprocess.Popen`. Start one with [`Command::popen`](super::Command::popen) (or
/// [`Popen::new`] for all-default streams). Its streams are the public
/// fields `stdin`, `stdout` and `stderr` (present when that stream is a
/// [`PIPE`](super::PIPE)), as in Python and `std::process::Child`; take
/// them to use them as async streams, or leave them to
/// [`communicate`](Popen::communicate).
///
/// | Python | here |
/// |---|---|
/// | `args`, `pid`, `returncode` | [`args`](Popen::args), [`pid`](Popen::pid), [`returncode`](Popen::returncode) |
/// | `poll()` | [`poll`](Popen::poll) |
/// | `wait(timeout)` | [`wait`](Popen::wait), [`wait_timeout`](Popen::wait_timeout) |
/// | `communicate(input, timeout)` | [`communicate`](Popen::communicate), [`communicate_timeout`](Popen::communicate_timeout) |
/// | `send_signal`, `terminate`, `kill` | same names; [`send_signal_group`](Popen::send_signal_group) is `os.killpg` |
/// | the blocking calls | [`blocking`](Popen::blocking) |
///
/// # Dropping a `Popen`
/// By default a running child keeps running, as in Python; it is reaped
/// in the background when it exits (no zombie is left).
/// [`Command::kill_on_drop`](super::Command::kill_on_drop) kills it (its group, if it leads one) instead.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), conex::subprocess::SubprocessError> {
/// use conex::subprocess::{Command, PIPE};
///
/// let mut p = Command::new(["sh", "-c", "read x; echo got $x; echo note >&2"])
///     .stdin(PIPE).stdout(PIPE).stderr(PIPE)
///     .popen()?;
/// let (out, err) = p.communicate(b"42\n").await?;
/// assert_eq!(out.unwrap(), b"got 42\n");
/// assert_eq!(err.unwrap(), b"note\n");
/// assert_eq!(p.returncode(), Some(0));
/// # Ok(()) }
/// ```
pub struct Popen<M: Mode = Bytes> {
    /// The child's stdin, when it is a pipe. Python: `Popen.stdin`.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, when it is a pipe. Python: `Popen.stdout`.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, when it is a pipe. Python: `Popen.stderr`.
    pub stderr: Option<ChildStderr>,
    args: Vec<OsString>,
    pid: u32,
    returncode: Option<i32>,
    /// `None` only while being dropped.
    child: Option<Proc>,
    comm: Comm,
    mode: M,
    leader: bool,
    kill_on_drop: bool,
    /// The child's span (target `conex`, "subprocess": program and pid).
    span: crate::Span,
}

pub(crate) use crate::io::child::returncode as returncode_of;

impl Popen<Bytes> {
    /// Starts `args` with every stream inherited. Python: `Popen(args)`.
    /// For anything else use [`Command`](super::Command).
    pub fn new<I, S>(args: I) -> Result<Popen<Bytes>, SubprocessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        super::Command::new(args).popen()
    }
}

impl<M: Mode> Popen<M> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        args: Vec<OsString>,
        child: Proc,
        streams: Streams,
        input: Option<Vec<u8>>,
        mode: M,
        leader: bool,
        kill_on_drop: bool,
    ) -> Popen<M> {
        let pid = child.id();
        let span = crate::span!(
            "subprocess",
            program = ?args.first().map(|a| a.to_string_lossy()),
            pid
        );
        {
            let _e = span.enter();
            crate::event!(debug, "subprocess started");
        }
        Popen {
            stdin: streams.stdin.map(|p| ChildStdin { pipe: Some(p) }),
            stdout: streams.stdout.map(|pipe| ChildStdout { pipe }),
            stderr: streams.stderr.map(|pipe| ChildStderr { pipe }),
            args,
            pid,
            returncode: None,
            child: Some(child),
            comm: Comm {
                stored: input.unwrap_or_default(),
                ..Comm::default()
            },
            mode,
            leader,
            kill_on_drop,
            span,
        }
    }

    /// Records the exit status (once), with an event in the child's span.
    fn reaped(&mut self, code: i32) {
        if self.returncode.is_none() {
            let _e = self.span.enter();
            crate::event!(debug, returncode = code, "subprocess exited");
        }
        self.returncode = Some(code);
    }

    fn child_mut(&mut self) -> &mut Proc {
        self.child
            .as_mut()
            .expect("the child is only taken on drop")
    }

    /// The argument list the child was started with. Python: `Popen.args`.
    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    pub(crate) fn take_args(&mut self) -> Vec<OsString> {
        std::mem::take(&mut self.args)
    }

    /// The child's process id. Python: `Popen.pid`.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status once the child has been reaped (by
    /// [`poll`](Popen::poll), [`wait`](Popen::wait) or
    /// [`communicate`](Popen::communicate)), `-N` if signal `N` killed it;
    /// `None` before. Python: `Popen.returncode`.
    pub fn returncode(&self) -> Option<i32> {
        self.returncode
    }

    /// Whether the child leads its own process group (it was started with
    /// `process_group(0)` or `start_new_session()`).
    pub fn leads_group(&self) -> bool {
        self.leader
    }

    /// Checks, without waiting, whether the child has exited; sets and
    /// returns [`returncode`](Popen::returncode). Python: `Popen.poll()`
    /// (and, as Python, a child that someone else already reaped, which
    /// the OS reports as `ECHILD`, counts as exited with 0).
    pub fn poll(&mut self) -> Option<i32> {
        if self.returncode.is_none() {
            match self.child_mut().try_wait() {
                Ok(Some(status)) => self.reaped(returncode_of(status)),
                Ok(None) => {}
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => self.reaped(0),
                Err(_) => {}
            }
        }
        self.returncode
    }

    /// Waits for the child to exit and returns its
    /// [`returncode`](Popen::returncode). Python: `Popen.wait()`.
    ///
    /// Like Python's, this can deadlock when the child fills a pipe nobody
    /// reads: use [`communicate`](Popen::communicate) with pipes.
    ///
    /// # Cancel safety
    /// Nothing is lost; the child keeps running.
    pub async fn wait(&mut self) -> Result<i32, SubprocessError> {
        if let Some(code) = self.returncode {
            return Ok(code);
        }
        let child = self.child_mut();
        let code = match std::future::poll_fn(|cx| child.poll_wait(cx)).await {
            Ok(status) => returncode_of(status),
            // Reaped by someone else (SIGCHLD ignored, a stray waitpid(-1)):
            // Python counts that as an exit with 0.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => 0,
            Err(e) => return Err(e.into()),
        };
        self.reaped(code);
        Ok(code)
    }

    /// [`wait`](Popen::wait), giving up after `timeout` with
    /// [`TimeoutExpired`] (the child keeps running). Python:
    /// `Popen.wait(timeout)`.
    ///
    /// # Cancel safety
    /// Nothing is lost; the child keeps running.
    pub async fn wait_timeout(&mut self, timeout: Duration) -> Result<i32, SubprocessError> {
        match within(Some(timeout), self.wait()).await {
            Some(r) => r,
            None => Err(TimeoutExpired {
                cmd: self.args.clone(),
                timeout,
                stdout: None,
                stderr: None,
            }
            .into()),
        }
    }

    /// Sends `input` to stdin (then closes it), reads stdout and stderr to
    /// end of file, and waits for the child; returns `(stdout, stderr)`,
    /// each `Some` when that stream is a pipe. All streams move together,
    /// so full pipes can never deadlock it. An empty `input` sends nothing.
    ///
    /// Python: `Popen.communicate(input)`. Input may only be given on the
    /// first call (an [`InvalidArgument`](SubprocessError::InvalidArgument)
    /// after that, as Python's `ValueError`); input with no stdin pipe is
    /// an `InvalidArgument` too (Python silently drops it).
    ///
    /// # Cancel safety
    /// Nothing is lost: input written so far and output read so far are
    /// kept in the `Popen`, and the next call carries on from there.
    pub async fn communicate(
        &mut self,
        input: &[u8],
    ) -> Result<(Option<M::Output>, Option<M::Output>), SubprocessError> {
        let (out, err) = self.communicate_raw(input, None).await?;
        self.decode(out, err)
    }

    /// [`communicate`](Popen::communicate), giving up after `timeout` with
    /// [`TimeoutExpired`] carrying the output read so far. The child keeps
    /// running and nothing is lost: call again (with empty input) to go on,
    /// and the result holds all of the output, what the error showed
    /// included. Python: `Popen.communicate(input, timeout)`.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), conex::subprocess::SubprocessError> {
    /// use conex::subprocess::{Command, PIPE};
    /// use std::time::Duration;
    ///
    /// let mut p = Command::new(["sh", "-c", "echo early; sleep 2; echo late"])
    ///     .stdout(PIPE)
    ///     .popen()?;
    /// let err = p.communicate_timeout(b"", Duration::from_secs(1)).await.unwrap_err();
    /// assert_eq!(err.as_timeout().unwrap().stdout.as_deref(), Some(&b"early\n"[..]));
    /// let (out, _) = p.communicate(b"").await?; // carries on, loses nothing
    /// assert_eq!(out.unwrap(), b"early\nlate\n");
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// As [`communicate`](Popen::communicate).
    pub async fn communicate_timeout(
        &mut self,
        input: &[u8],
        timeout: Duration,
    ) -> Result<(Option<M::Output>, Option<M::Output>), SubprocessError> {
        let (out, err) = self.communicate_raw(input, Some(timeout)).await?;
        self.decode(out, err)
    }

    #[allow(clippy::type_complexity)]
    fn decode(
        &self,
        out: Option<Vec<u8>>,
        err: Option<Vec<u8>>,
    ) -> Result<(Option<M::Output>, Option<M::Output>), SubprocessError> {
        Ok((
            out.map(|o| self.mode.decode("stdout", o)).transpose()?,
            err.map(|e| self.mode.decode("stderr", e)).transpose()?,
        ))
    }

    /// Hands the public streams to the communicate state, once.
    pub(crate) fn begin(&mut self, input: &[u8]) -> Result<(), SubprocessError> {
        if self.comm.started {
            if !input.is_empty() {
                return Err(SubprocessError::InvalidArgument(
                    "cannot send input after starting communication",
                ));
            }
            return Ok(());
        }
        if !input.is_empty() {
            if !self.comm.stored.is_empty() {
                return Err(SubprocessError::InvalidArgument(
                    "input was already given to the Command",
                ));
            }
            if self.stdin.as_ref().is_none_or(|s| s.pipe.is_none()) {
                return Err(SubprocessError::InvalidArgument(
                    "input given, but stdin is not a pipe",
                ));
            }
        }
        self.comm.started = true;
        self.comm.stdin = self.stdin.take().and_then(|s| s.pipe);
        if let Some(s) = self.stdout.take() {
            self.comm.stdout = Some(s.pipe);
            self.comm.out = Some(Vec::new());
        }
        if let Some(s) = self.stderr.take() {
            self.comm.stderr = Some(s.pipe);
            self.comm.err = Some(Vec::new());
        }
        Ok(())
    }

    /// Polls this child's share of a communicate, writing from `input`
    /// unless the `Popen` holds input of its own.
    pub(crate) fn poll_io(&mut self, cx: &mut Context<'_>, input: &[u8]) -> Poll<io::Result<()>> {
        self.comm.poll_io(cx, input)
    }

    /// A communicate ended before its input was all written: keep the rest
    /// (the caller's borrow ends here) for the next call.
    pub(crate) fn keep_input(&mut self, input: &[u8]) {
        let c = &mut self.comm;
        if c.stdin.is_some() && c.stored.is_empty() && c.written < input.len() {
            c.stored = input[c.written..].to_vec();
            c.written = 0;
        }
    }

    /// The output captured so far (for a `TimeoutExpired`).
    pub(crate) fn snapshot(&self) -> RawOut {
        (self.comm.out.clone(), self.comm.err.clone())
    }

    /// Takes the finished output.
    pub(crate) fn take_output(&mut self) -> RawOut {
        (self.comm.out.take(), self.comm.err.take())
    }

    /// The whole of communicate, on bytes, with an optional timeout.
    pub(crate) async fn communicate_raw(
        &mut self,
        input: &[u8],
        timeout: Option<Duration>,
    ) -> Result<RawOut, SubprocessError> {
        self.begin(input)?;
        let mut feeding = Feeding { p: self, input };
        let result = {
            let f = &mut feeding;
            within(timeout, async move {
                std::future::poll_fn(|cx| f.p.comm.poll_io(cx, f.input)).await?;
                f.p.wait().await
            })
            .await
        };
        let p = &mut *feeding.p;
        match result {
            Some(r) => {
                r?;
            }
            None => {
                let (stdout, stderr) = p.snapshot();
                return Err(TimeoutExpired {
                    cmd: p.args.clone(),
                    timeout: timeout.expect("only a timeout expires"),
                    stdout,
                    stderr,
                }
                .into());
            }
        }
        Ok(p.take_output())
    }

    /// After the child was killed and reaped: what is left in the pipes,
    /// without waiting for a grandchild that may hold them open.
    pub(crate) fn drain_after_exit(&mut self) -> Result<RawOut, SubprocessError> {
        self.comm.drain_now()?;
        Ok(self.take_output())
    }

    /// Kills the child, and its group first if it leads one (while the
    /// unreaped leader still pins the group id).
    pub(crate) fn kill_tree(&mut self) {
        if self.returncode.is_some() {
            return;
        }
        if self.leader {
            // The group id is pinned by our unreaped child.
            let _ = sys::killpg(self.pid, libc::SIGKILL);
        }
        let _ = self.child_mut().kill();
    }

    /// Sends signal `sig` to the child; does nothing if it has already
    /// exited (so a reused pid is never hit). Python:
    /// `Popen.send_signal(sig)`; the numbers are in
    /// [`signal`](super::signal).
    pub fn send_signal(&mut self, sig: i32) -> io::Result<()> {
        if self.poll().is_some() {
            return Ok(());
        }
        // Our own, unreaped child.
        sys::kill(self.pid, sig)
    }

    /// Sends `sig` to the child's whole process group, grandchildren
    /// included. Python: `os.killpg(p.pid, sig)`.
    ///
    /// # Errors
    /// `InvalidInput` when the child does not lead its group (it must be
    /// started with [`Command::process_group`]`(0)` or
    /// [`Command::start_new_session`]; otherwise the group would be ours),
    /// and once the leader has been reaped: from then on its id may be
    /// reused by a stranger's group (Python's `killpg` after `wait` takes
    /// that risk). To reach what a leader leaves behind, signal the group
    /// before waiting for the leader.
    ///
    /// [`Command::process_group`]: super::Command::process_group
    /// [`Command::start_new_session`]: super::Command::start_new_session
    pub fn send_signal_group(&mut self, sig: i32) -> io::Result<()> {
        if !self.leader {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the child does not lead a process group; start it with \
                 process_group(0) or start_new_session()",
            ));
        }
        if self.returncode.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the group's leader has been reaped, so its id is no longer ours; \
                 signal the group before waiting for the leader",
            ));
        }
        // Our unreaped leader pins the group id.
        sys::killpg(self.pid, sig)
    }

    /// Asks the child to stop: SIGTERM. Python: `Popen.terminate()`.
    pub fn terminate(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGTERM)
    }

    /// Kills the child: SIGKILL. Python: `Popen.kill()`.
    pub fn kill(&mut self) -> io::Result<()> {
        self.send_signal(libc::SIGKILL)
    }

    /// The blocking facade: `wait` and `communicate` for OS threads, with
    /// no runtime needed.
    ///
    /// ```
    /// use conex::subprocess::{Command, PIPE};
    ///
    /// let mut p = Command::new(["cat"]).stdin(PIPE).stdout(PIPE).popen()?;
    /// let (out, _) = p.blocking().communicate(b"abc")?;
    /// assert_eq!(out.unwrap(), b"abc");
    /// # Ok::<(), conex::subprocess::SubprocessError>(())
    /// ```
    pub fn blocking(&mut self) -> BlockingPopen<'_, M> {
        BlockingPopen(self)
    }
}

impl<M: Mode> Drop for Popen<M> {
    fn drop(&mut self) {
        if self.returncode.is_none() {
            if self.kill_on_drop {
                // Before reaping: an exited but unreaped leader still pins
                // its group id, so the group kill cannot hit a stranger.
                self.kill_tree();
            }
            if self.poll().is_none() {
                // Still running: wait for it elsewhere.
                if let Some(child) = self.child.take() {
                    crate::io::reaper::adopt(child);
                }
            }
        }
    }
}

impl<M: Mode> fmt::Debug for Popen<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Popen")
            .field("args", &self.args)
            .field("pid", &self.pid)
            .field("returncode", &self.returncode)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}

/// The blocking facade of a [`Popen`]: the waiting calls, parking the
/// calling thread.
pub struct BlockingPopen<'a, M: Mode = Bytes>(&'a mut Popen<M>);

impl<M: Mode> BlockingPopen<'_, M> {
    /// [`Popen::wait`], blocking.
    #[track_caller]
    pub fn wait(&mut self) -> Result<i32, SubprocessError> {
        block_on_io(self.0.wait())
    }

    /// [`Popen::wait_timeout`], blocking.
    #[track_caller]
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<i32, SubprocessError> {
        block_on_io(self.0.wait_timeout(timeout))
    }

    /// [`Popen::communicate`], blocking.
    #[allow(clippy::type_complexity)]
    #[track_caller]
    pub fn communicate(
        &mut self,
        input: &[u8],
    ) -> Result<(Option<M::Output>, Option<M::Output>), SubprocessError> {
        block_on_io(self.0.communicate(input))
    }

    /// [`Popen::communicate_timeout`], blocking.
    #[allow(clippy::type_complexity)]
    #[track_caller]
    pub fn communicate_timeout(
        &mut self,
        input: &[u8],
        timeout: Duration,
    ) -> Result<(Option<M::Output>, Option<M::Output>), SubprocessError> {
        block_on_io(self.0.communicate_timeout(input, timeout))
    }
}

impl<M: Mode> fmt::Debug for BlockingPopen<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingPopen").field(&self.0).finish()
    }
}
