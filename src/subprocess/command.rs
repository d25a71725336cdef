//! `Command`: the keyword arguments of Python's `run` / `Popen`, and the
//! calls that start a child from them.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::future::IntoFuture;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use super::completed::CompletedProcess;
use super::errors::SubprocessError;
use super::mode::{Bytes, Mode, ModeExt, Text};
use super::pipeline::Pipeline;
use super::popen::Popen;
use super::spawn::spawn;
use super::stdio::Stdio;
use crate::io::driver::block_on_io;

/// Everything but the output mode.
pub(crate) struct Spec {
    pub(crate) argv: Vec<OsString>,
    pub(crate) executable: Option<OsString>,
    /// Made by [`Command::shell`]: `executable` then replaces the shell.
    pub(crate) shell: bool,
    pub(crate) stdin: Stdio,
    pub(crate) stdout: Stdio,
    pub(crate) stderr: Stdio,
    pub(crate) input: Option<Vec<u8>>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) env_clear: bool,
    pub(crate) env: Vec<(OsString, Option<OsString>)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) check: bool,
    pub(crate) new_session: bool,
    pub(crate) process_group: Option<i32>,
    pub(crate) kill_on_drop: bool,
    pub(crate) pipesize: Option<usize>,
    pub(crate) umask: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) pass_fds: Vec<OwnedFd>,
    pub(crate) close_fds: bool,
    /// `setgroups` in the child (Python's `extra_groups`).
    pub(crate) extra_groups: Option<Vec<u32>>,
    /// Python's `restore_signals` (default true).
    pub(crate) restore_signals: bool,
    /// The user's pre-exec hooks (Python's `preexec_fn`), in order.
    pub(crate) hooks: Vec<crate::sys::PreExecHook>,
}

/// A command to run: the program and its arguments, and Python's keyword
/// arguments as builder methods. Consumed by the call that runs it.
///
/// Python: the arguments of `subprocess.run(args, ...)` and
/// `Popen(args, ...)`. [`run`](super::run) is the same as
/// [`Command::new`]; awaiting a `Command` runs it ([`Command::run`]).
///
/// | Python keyword | here |
/// |---|---|
/// | `args` (a list), `shell=True` with a string | [`Command::new`], [`Command::shell`] |
/// | `executable` | [`executable`](Command::executable) |
/// | `stdin`, `stdout`, `stderr` (`PIPE`, `DEVNULL`, `STDOUT`, a file) | [`stdin`](Command::stdin), [`stdout`](Command::stdout), [`stderr`](Command::stderr) |
/// | `capture_output=True` | [`capture_output`](Command::capture_output) |
/// | `input` | [`input`](Command::input) |
/// | `cwd`, `env` | [`cwd`](Command::cwd); [`env`](Command::env), [`env_remove`](Command::env_remove), [`env_clear`](Command::env_clear) (replace = clear + set) |
/// | `timeout`, `check` | [`timeout`](Command::timeout), [`check`](Command::check) |
/// | `text=True`, `errors="replace"` | [`text`](Command::text), [`text_lossy`](Command::text_lossy) |
/// | `start_new_session`, `process_group` | [`start_new_session`](Command::start_new_session), [`process_group`](Command::process_group) |
/// | `pipesize`, `umask`, `user`, `group`, `pass_fds` | same names |
/// | `close_fds` | [`close_fds`](Command::close_fds) (see there for the default) |
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use conex::subprocess::{self, Command};
/// use std::time::Duration;
///
/// let done = subprocess::run(["sh", "-c", "echo out; echo err >&2; exit 3"])
///     .capture_output()
///     .text()
///     .timeout(Duration::from_secs(30))
///     .await?;
/// assert_eq!(done.returncode, 3);
/// assert_eq!(done.stdout.as_deref(), Some("out\n"));
/// assert_eq!(done.stderr.as_deref(), Some("err\n"));
///
/// // check=True turns the exit status into an error carrying the output.
/// let err = Command::new(["false"]).check().run().await.unwrap_err();
/// assert_eq!(err.as_called().unwrap().returncode, 1);
/// # Ok(()) }
/// ```
pub struct Command<M: Mode = Bytes> {
    pub(crate) spec: Spec,
    pub(crate) mode: M,
}

impl Command<Bytes> {
    /// A command from its argument list; the first item is the program
    /// (looked up on `PATH` when it has no `/`). Empty args are an
    /// [`InvalidArgument`](SubprocessError::InvalidArgument) when run.
    ///
    /// Python: `Popen(args)` with a list.
    pub fn new<I, S>(args: I) -> Command<Bytes>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command {
            spec: Spec {
                argv: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
                executable: None,
                shell: false,
                stdin: Stdio::Inherit,
                stdout: Stdio::Inherit,
                stderr: Stdio::Inherit,
                input: None,
                cwd: None,
                env_clear: false,
                env: Vec::new(),
                timeout: None,
                check: false,
                new_session: false,
                process_group: None,
                kill_on_drop: false,
                pipesize: None,
                umask: None,
                uid: None,
                gid: None,
                pass_fds: Vec::new(),
                close_fds: false,
                extra_groups: None,
                restore_signals: true,
                hooks: Vec::new(),
            },
            mode: Bytes,
        }
    }

    /// A shell command line, run as `/bin/sh -c <cmd>`.
    ///
    /// Python: `shell=True` with a string.
    ///
    /// # Security
    /// The shell interprets the whole string: quoting, `;`, `|`, `$(...)`
    /// and globbing. Never build it from untrusted input: that is a shell
    /// injection. Pass an argument list to [`Command::new`] instead, or hand
    /// values over as positional parameters (`sh -c 'echo "$1"' sh value`).
    pub fn shell(cmd: impl AsRef<OsStr>) -> Command<Bytes> {
        let mut c = Command::new([OsStr::new("/bin/sh"), OsStr::new("-c"), cmd.as_ref()]);
        c.spec.shell = true;
        c
    }

    /// Captured output as UTF-8 text with universal newlines; invalid UTF-8
    /// is a [`DecodeError`](super::DecodeError). Python: `text=True`.
    pub fn text(self) -> Command<Text> {
        Command {
            spec: self.spec,
            mode: Text { lossy: false },
        }
    }

    /// Text mode replacing invalid UTF-8 with U+FFFD. Python: `text=True,
    /// errors="replace"`.
    pub fn text_lossy(self) -> Command<Text> {
        Command {
            spec: self.spec,
            mode: Text { lossy: true },
        }
    }

    /// Connects this command's stdout to `next`'s stdin: `self | next`
    /// (see [`Pipeline`]; text mode is set on the pipeline).
    pub fn pipe(self, next: Command<Bytes>) -> Pipeline<Bytes> {
        Pipeline::new(self).pipe(next)
    }
}

impl<M: Mode> Command<M> {
    /// The argument list (for a shell command, `["/bin/sh", "-c", cmd]`).
    pub fn args(&self) -> &[OsString] {
        &self.spec.argv
    }

    /// Runs this program instead of `args[0]`, which becomes the child's
    /// `argv[0]`. Python: `executable=`. With [`Command::shell`] it
    /// replaces the shell (`/bin/sh`), as Python's `shell=True,
    /// executable=...`.
    pub fn executable(mut self, program: impl AsRef<OsStr>) -> Self {
        self.spec.executable = Some(program.as_ref().to_owned());
        self
    }

    /// Where the child's stdin comes from. Python: `stdin=`.
    pub fn stdin(mut self, s: impl Into<Stdio>) -> Self {
        self.spec.stdin = s.into();
        self
    }

    /// Where the child's stdout goes. Python: `stdout=`.
    pub fn stdout(mut self, s: impl Into<Stdio>) -> Self {
        self.spec.stdout = s.into();
        self
    }

    /// Where the child's stderr goes; [`STDOUT`](super::STDOUT) merges it
    /// into stdout. Python: `stderr=`.
    pub fn stderr(mut self, s: impl Into<Stdio>) -> Self {
        self.spec.stderr = s.into();
        self
    }

    /// Captures stdout and stderr (both [`PIPE`](super::PIPE)). Python:
    /// `capture_output=True`.
    pub fn capture_output(self) -> Self {
        self.stdout(Stdio::Pipe).stderr(Stdio::Pipe)
    }

    /// Bytes fed to the child's stdin (which becomes a pipe, closed once
    /// they are written). Python: `input=`; combining it with a `stdin`
    /// other than `PIPE` is an
    /// [`InvalidArgument`](SubprocessError::InvalidArgument).
    pub fn input(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.spec.input = Some(data.into());
        self
    }

    /// The child's working directory. Python: `cwd=`. A missing directory
    /// is a [`SpawnError`](super::SpawnError) of kind
    /// [`BadCwd`](super::SpawnErrorKind::BadCwd).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spec.cwd = Some(dir.into());
        self
    }

    /// Sets one environment variable for the child (on top of the inherited
    /// environment, unless [`env_clear`](Command::env_clear) was called).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.spec
            .env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Removes one variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.spec.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Starts the child from an empty environment: with
    /// [`envs`](Command::envs) after it, Python's `env=` (a replacement).
    pub fn env_clear(mut self) -> Self {
        self.spec.env_clear = true;
        self.spec.env.clear();
        self
    }

    /// A timeout for [`run`](Command::run) and the calls built on it: when
    /// it expires the child (and its process group, if it leads one) is
    /// killed and reaped, and the call fails with
    /// [`TimeoutExpired`](super::TimeoutExpired) carrying the output read
    /// so far. Python: `timeout=`. Under `.await` it is a tokio timer, as
    /// every conex timeout (a test on paused time must advance the clock,
    /// or the timeout fires while the child runs); the blocking facade
    /// measures the wall clock.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spec.timeout = Some(timeout);
        self
    }

    /// A non-zero exit status becomes a
    /// [`CalledProcessError`](super::CalledProcessError). Python:
    /// `check=True`.
    pub fn check(mut self) -> Self {
        self.spec.check = true;
        self
    }

    /// The child runs `setsid()`: a new session and process group that it
    /// leads, detached from the terminal. Python: `start_new_session=True`.
    pub fn start_new_session(mut self) -> Self {
        self.spec.new_session = true;
        self
    }

    /// The child joins process group `pgid`, or with `0` leads a new one
    /// (then a timeout, [`Popen::send_signal_group`] and kill-on-drop reach
    /// its whole group, grandchildren included). Python: `process_group=`.
    pub fn process_group(mut self, pgid: i32) -> Self {
        self.spec.process_group = Some(pgid);
        self
    }

    /// Whether dropping the [`Popen`] of a still-running child kills it
    /// (its whole group if it leads one). Default `false`: as in Python the
    /// child keeps running, and it is reaped in the background when it
    /// exits, so no zombie is left. A cancelled [`run`](Command::run)
    /// always kills its child.
    pub fn kill_on_drop(mut self, kill: bool) -> Self {
        self.spec.kill_on_drop = kill;
        self
    }

    /// The buffer size of the pipes made for this child (Linux). Python:
    /// `pipesize=`.
    pub fn pipesize(mut self, bytes: usize) -> Self {
        self.spec.pipesize = Some(bytes);
        self
    }

    /// The child's umask. Python: `umask=`.
    pub fn umask(mut self, mask: u32) -> Self {
        self.spec.umask = Some(mask);
        self
    }

    /// Runs the child as this user id. Python: `user=`.
    pub fn user(mut self, uid: u32) -> Self {
        self.spec.uid = Some(uid);
        self
    }

    /// Runs the child with this group id. Python: `group=`.
    pub fn group(mut self, gid: u32) -> Self {
        self.spec.gid = Some(gid);
        self
    }

    /// The child's supplementary groups (`setgroups`, before the group and
    /// user ids are set). Python: `extra_groups=`.
    pub fn extra_groups(mut self, gids: impl IntoIterator<Item = u32>) -> Self {
        self.spec.extra_groups = Some(gids.into_iter().collect());
        self
    }

    /// Whether the child gets `SIGPIPE` and `SIGXFSZ` back at their default
    /// disposition (true, Python's default and std's for `SIGPIPE`), or
    /// keeps this process's (false: an ignored `SIGPIPE` stays ignored in
    /// the child). Python: `restore_signals=`.
    pub fn restore_signals(mut self, restore: bool) -> Self {
        self.spec.restore_signals = restore;
        self
    }

    /// Runs `hook` in the child after the fork and before the exec (after
    /// the session, group, user ids, umask and descriptors are set up).
    /// An error from it fails the start with that error. Hooks run in the
    /// order they were added. Python: `preexec_fn=`.
    ///
    /// # Safety
    /// As `std::os::unix::process::CommandExt::pre_exec`: the hook runs in
    /// a copy of this process with one thread, where any lock another
    /// thread held is held for good. It may only make async-signal-safe
    /// calls: no allocation, no locks, no `println!` (Python's docs warn
    /// the same of `preexec_fn`: it is not safe in the presence of
    /// threads).
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), conex::subprocess::SubprocessError> {
    /// use conex::subprocess::run;
    ///
    /// // SAFETY: nice(2) is async-signal-safe, and the hook allocates nothing.
    /// let done = unsafe {
    ///     run(["sh", "-c", "exit 3"]).pre_exec(|| {
    ///         libc::nice(1);
    ///         Ok(())
    ///     })
    /// }
    /// .await?;
    /// assert_eq!(done.returncode, 3);
    /// # Ok(()) }
    /// ```
    #[allow(unsafe_code)] // a public unsafe hook; the work is in crate::sys
    pub unsafe fn pre_exec<F>(mut self, hook: F) -> Self
    where
        F: FnMut() -> std::io::Result<()> + Send + Sync + 'static,
    {
        self.spec.hooks.push(Box::new(hook));
        self
    }

    /// Keeps `fd` open in the child under the same number (every other
    /// descriptor is closed on exec). The command owns it and closes it in
    /// the parent once the child is started. Python: `pass_fds=`.
    pub fn pass_fd(mut self, fd: OwnedFd) -> Self {
        self.spec.pass_fds.push(fd);
        self
    }

    /// Closes every descriptor but 0, 1, 2 and the [`pass_fd`](Command::pass_fd)s
    /// in the child, including those this process inherited without
    /// close-on-exec. Python: `close_fds=True`.
    ///
    /// Not the default, unlike Python: every descriptor Rust opens is
    /// already close-on-exec, so only descriptors handed down to this
    /// process on purpose (a jobserver, say) reach the child, as with
    /// `std::process::Command`; and closing them needs a pre-exec step that
    /// rules out `posix_spawn`, which measured about 20% slower per spawn.
    pub fn close_fds(mut self) -> Self {
        self.spec.close_fds = true;
        self
    }

    /// Starts the child and returns it without waiting. An
    /// [`input`](Command::input) given here is what the first
    /// [`Popen::communicate`] sends. The `timeout` and `check` options
    /// belong to `run` and are ignored.
    ///
    /// Python: `Popen(args, ...)`.
    pub fn popen(self) -> Result<Popen<M>, SubprocessError> {
        let mode = self.mode;
        let (popen, _) = spawn(self.spec, mode)?;
        Ok(popen)
    }

    /// Runs the child to completion: feeds [`input`](Command::input),
    /// captures what was asked, enforces the timeout and the check.
    ///
    /// Python: `subprocess.run(args, ...)` returning `CompletedProcess`.
    ///
    /// # Cancel safety
    /// Dropping the future kills the child (its group if it leads one) and
    /// reaps it in the background, as Python's `run` kills its child on
    /// any exception; its output is lost with it.
    pub async fn run(self) -> Result<CompletedProcess<M::Output>, SubprocessError> {
        let mode = self.mode;
        let (check, timeout) = (self.spec.check, self.spec.timeout);
        let mut spec = self.spec;
        spec.kill_on_drop = true;
        let (mut p, _) = spawn(spec, mode)?;
        let (out, err) = match p.communicate_raw(&[], timeout).await {
            Ok(v) => v,
            Err(SubprocessError::Timeout(mut t)) => {
                // Python's run: kill, reap, raise with what was read. The
                // TimeoutExpired is the error to report; a child left
                // unreaped by a failed wait is reaped on drop.
                p.kill_tree();
                let _ = p.wait().await;
                if let Ok((out, err)) = p.drain_after_exit() {
                    t.stdout = out;
                    t.stderr = err;
                }
                return Err(t.into());
            }
            Err(e) => return Err(e),
        };
        let returncode = p.returncode().expect("communicate reaped the child");
        finish(p.take_args(), returncode, out, err, check, mode)
    }

    /// Runs the child and returns its exit status (`-N` for signal `N`).
    /// Python: `subprocess.call`.
    ///
    /// # Cancel safety
    /// As [`run`](Command::run): the child is killed.
    pub async fn call(self) -> Result<i32, SubprocessError> {
        Ok(self.run().await?.returncode)
    }

    /// Runs the child; a non-zero exit status is a
    /// [`CalledProcessError`](super::CalledProcessError). Python:
    /// `subprocess.check_call`.
    ///
    /// # Cancel safety
    /// As [`run`](Command::run): the child is killed.
    pub async fn check_call(self) -> Result<(), SubprocessError> {
        self.check().run().await.map(drop)
    }

    /// Runs the child with stdout captured and checked; returns stdout.
    /// Python: `subprocess.check_output`.
    ///
    /// # Cancel safety
    /// As [`run`](Command::run): the child is killed.
    pub async fn check_output(self) -> Result<M::Output, SubprocessError> {
        let done = self.stdout(Stdio::Pipe).check().run().await?;
        Ok(done.stdout.expect("stdout was a pipe"))
    }

    /// The blocking facade: the same calls for OS threads, with no runtime
    /// needed.
    pub fn blocking(self) -> BlockingCommand<M> {
        BlockingCommand(self)
    }
}

impl<M: Mode> IntoFuture for Command<M> {
    type Output = Result<CompletedProcess<M::Output>, SubprocessError>;
    type IntoFuture = Pin<Box<dyn std::future::Future<Output = Self::Output> + Send>>;

    /// Awaiting a command runs it ([`Command::run`]).
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl std::ops::BitOr<Command<Bytes>> for Command<Bytes> {
    type Output = Pipeline<Bytes>;

    /// `a | b`: a two-stage [`Pipeline`].
    fn bitor(self, next: Command<Bytes>) -> Pipeline<Bytes> {
        self.pipe(next)
    }
}

impl<M: Mode> fmt::Debug for Command<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.spec;
        f.debug_struct("Command")
            .field("args", &s.argv)
            .field("stdin", &s.stdin)
            .field("stdout", &s.stdout)
            .field("stderr", &s.stderr)
            .field("cwd", &s.cwd)
            .field("timeout", &s.timeout)
            .field("check", &s.check)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Builds the result of a run: the check, then decoding.
pub(crate) fn finish<M: Mode>(
    args: Vec<OsString>,
    returncode: i32,
    out: Option<Vec<u8>>,
    err: Option<Vec<u8>>,
    check: bool,
    mode: M,
) -> Result<CompletedProcess<M::Output>, SubprocessError> {
    if check && returncode != 0 {
        return Err(super::CalledProcessError {
            returncode,
            cmd: args,
            stdout: out,
            stderr: err,
        }
        .into());
    }
    Ok(CompletedProcess {
        args,
        returncode,
        stdout: out.map(|o| mode.decode("stdout", o)).transpose()?,
        stderr: err.map(|e| mode.decode("stderr", e)).transpose()?,
    })
}

/// The blocking facade of a [`Command`]: the same calls, parking the
/// calling thread; no tokio runtime is needed.
///
/// ```
/// use conex::subprocess::Command;
///
/// let out = Command::new(["printf", "%s", "hi"]).text().blocking().check_output()?;
/// assert_eq!(out, "hi");
/// # Ok::<(), conex::subprocess::SubprocessError>(())
/// ```
pub struct BlockingCommand<M: Mode = Bytes>(Command<M>);

impl<M: Mode> BlockingCommand<M> {
    /// [`Command::run`], blocking.
    #[track_caller]
    pub fn run(self) -> Result<CompletedProcess<M::Output>, SubprocessError> {
        block_on_io(self.0.run())
    }

    /// [`Command::call`], blocking.
    #[track_caller]
    pub fn call(self) -> Result<i32, SubprocessError> {
        block_on_io(self.0.call())
    }

    /// [`Command::check_call`], blocking.
    #[track_caller]
    pub fn check_call(self) -> Result<(), SubprocessError> {
        block_on_io(self.0.check_call())
    }

    /// [`Command::check_output`], blocking.
    #[track_caller]
    pub fn check_output(self) -> Result<M::Output, SubprocessError> {
        block_on_io(self.0.check_output())
    }
}

impl<M: Mode> fmt::Debug for BlockingCommand<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingCommand").field(&self.0).finish()
    }
}
