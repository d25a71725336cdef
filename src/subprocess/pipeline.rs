//! Pipelines: `cmd1 | cmd2 | cmd3`, each child's stdout connected straight
//! to the next one's stdin by an OS pipe (the data never passes through
//! the parent).

use std::ffi::OsString;
use std::fmt;
use std::future::IntoFuture;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use super::command::Command;
use super::errors::{CalledProcessError, SubprocessError, TimeoutExpired};
use super::mode::{Bytes, Mode, ModeExt, Text};
use super::popen::Popen;
use super::spawn::spawn;
use super::stdio::Stdio;
use crate::io::driver::{block_on_io, within};
use crate::sys::pipe;

/// Commands connected stdout to stdin, like a shell's `a | b | c`.
///
/// Python: the "replacing shell pipeline" recipe (`p2 = Popen(..,
/// stdin=p1.stdout)` then closing `p1.stdout` in the parent), done for
/// you: the children are joined by OS pipes the parent does not hold, so
/// data flows between them without a copy through the parent, and an early
/// exit downstream gives upstream SIGPIPE as in a shell.
///
/// The first command's `stdin` / `input` feed the pipeline, the last one's
/// `stdout` is its output, each command's `stderr` is its own; the
/// pipeline-level [`input`](Pipeline::input), [`stdout`](Pipeline::stdout)
/// and [`capture_output`](Pipeline::capture_output) set the same ends.
/// Timeout, check and text mode belong to the pipeline (set on a stage,
/// they are an [`InvalidArgument`](SubprocessError::InvalidArgument)).
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), conex::subprocess::SubprocessError> {
/// use conex::subprocess::Command;
///
/// let done = (Command::new(["printf", "b\\na\\nb\\n"])
///     | Command::new(["sort"])
///     | Command::new(["uniq", "-c"]))
///     .capture_output()
///     .text()
///     .await?;
/// assert_eq!(done.returncodes, [0, 0, 0]);
/// let counts: Vec<_> = done.stdout.unwrap().lines().map(|l| l.trim().to_owned()).collect();
/// assert_eq!(counts, ["1 a", "2 b"]);
/// # Ok(()) }
/// ```
pub struct Pipeline<M: Mode = Bytes> {
    stages: Vec<Command<Bytes>>,
    input: Option<Vec<u8>>,
    stdout: Option<Stdio>,
    capture_stderr: bool,
    timeout: Option<Duration>,
    check: bool,
    group: bool,
    kill_on_drop: bool,
    mode: M,
}

impl Pipeline<Bytes> {
    /// A pipeline of one command; add stages with [`pipe`](Pipeline::pipe)
    /// (or `|`).
    pub fn new(first: Command<Bytes>) -> Pipeline<Bytes> {
        Pipeline {
            stages: vec![first],
            input: None,
            stdout: None,
            capture_stderr: false,
            timeout: None,
            check: false,
            group: false,
            kill_on_drop: false,
            mode: Bytes,
        }
    }

    /// Output decoded as UTF-8 text (see [`Command::text`]).
    pub fn text(self) -> Pipeline<Text> {
        self.with_mode(Text { lossy: false })
    }

    /// Output decoded as UTF-8, invalid bytes replaced.
    pub fn text_lossy(self) -> Pipeline<Text> {
        self.with_mode(Text { lossy: true })
    }
}

impl<M: Mode> Pipeline<M> {
    fn with_mode<N: Mode>(self, mode: N) -> Pipeline<N> {
        Pipeline {
            stages: self.stages,
            input: self.input,
            stdout: self.stdout,
            capture_stderr: self.capture_stderr,
            timeout: self.timeout,
            check: self.check,
            group: self.group,
            kill_on_drop: self.kill_on_drop,
            mode,
        }
    }

    /// Appends a stage fed by the current last one.
    pub fn pipe(mut self, next: Command<Bytes>) -> Self {
        self.stages.push(next);
        self
    }

    /// Bytes fed to the first stage's stdin.
    pub fn input(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.input = Some(data.into());
        self
    }

    /// Where the last stage's stdout goes.
    pub fn stdout(mut self, s: impl Into<Stdio>) -> Self {
        self.stdout = Some(s.into());
        self
    }

    /// Captures the last stage's stdout and every stage's stderr (those
    /// left at their default).
    pub fn capture_output(mut self) -> Self {
        self.stdout = Some(Stdio::Pipe);
        self.capture_stderr = true;
        self
    }

    /// A timeout for the whole pipeline: when it expires every stage (the
    /// whole group, with [`process_group`](Pipeline::process_group)) is
    /// killed and reaped, and the run fails with [`TimeoutExpired`]
    /// carrying the last stage's output so far.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Fails with a [`CalledProcessError`] for the first stage that exited
    /// non-zero (bash's `pipefail`; note that an upstream stage killed by
    /// SIGPIPE, as `yes` in `yes | head`, counts).
    pub fn check(mut self) -> Self {
        self.check = true;
        self
    }

    /// Runs the whole pipeline in one new process group led by the first
    /// stage, as a shell does: a timeout or
    /// [`PipelinePopen::kill`] then reaches every process, grandchildren
    /// included.
    pub fn process_group(mut self) -> Self {
        self.group = true;
        self
    }

    /// Whether dropping the [`PipelinePopen`] kills the stages still
    /// running (default `false`, as for [`Command::kill_on_drop`]).
    pub fn kill_on_drop(mut self, kill: bool) -> Self {
        self.kill_on_drop = kill;
        self
    }

    /// The stages' argument lists.
    pub fn args(&self) -> Vec<&[OsString]> {
        self.stages.iter().map(|c| c.args()).collect()
    }

    /// Starts every stage and returns them running.
    pub fn popen(self) -> Result<PipelinePopen<M>, SubprocessError> {
        let Pipeline {
            stages,
            input,
            stdout,
            capture_stderr,
            timeout: _,
            check: _,
            group,
            kill_on_drop,
            mode,
        } = self;
        let n = stages.len();
        let mut running: Vec<Popen<Bytes>> = Vec::with_capacity(n);
        let mut next_stdin: Option<Stdio> = None;
        let mut pgid = 0;
        let kill_started = |running: &mut Vec<Popen<Bytes>>| {
            for p in running.iter_mut() {
                p.kill_tree();
            }
        };
        for (i, stage) in stages.into_iter().enumerate() {
            let mut spec = stage.spec;
            let fail = |m| Err(SubprocessError::InvalidArgument(m));
            if spec.timeout.is_some() || spec.check {
                kill_started(&mut running);
                return fail("set timeout and check on the Pipeline, not on a stage");
            }
            if i > 0 && (!spec.stdin.is_inherit() || spec.input.is_some()) {
                kill_started(&mut running);
                return fail("only the first stage of a pipeline may set stdin or input");
            }
            if i + 1 < n && !spec.stdout.is_inherit() {
                kill_started(&mut running);
                return fail("only the last stage of a pipeline may set stdout");
            }
            if group && spec.process_group.is_some() {
                kill_started(&mut running);
                return fail("a stage of a grouped pipeline may not set its own process group");
            }
            if let Some(s) = next_stdin.take() {
                spec.stdin = s;
            }
            if i == 0 {
                if let Some(data) = &input {
                    if spec.input.is_some() {
                        kill_started(&mut running);
                        return fail("input given to both the Pipeline and its first stage");
                    }
                    spec.input = Some(data.clone());
                }
            }
            if i + 1 < n {
                let (r, w) = match pipe() {
                    Ok(p) => p,
                    Err(e) => {
                        kill_started(&mut running);
                        return Err(e.into());
                    }
                };
                spec.stdout = Stdio::Fd(w);
                next_stdin = Some(Stdio::Fd(r));
            } else if let Some(s) = &stdout {
                spec.stdout = match s {
                    Stdio::Pipe => Stdio::Pipe,
                    Stdio::DevNull => Stdio::DevNull,
                    Stdio::Inherit => Stdio::Inherit,
                    _ => {
                        kill_started(&mut running);
                        return fail("a Pipeline's stdout is PIPE, DEVNULL or inherited");
                    }
                };
            }
            if capture_stderr && spec.stderr.is_inherit() {
                spec.stderr = Stdio::Pipe;
            }
            if group {
                spec.process_group = Some(pgid);
            }
            spec.kill_on_drop = kill_on_drop;
            match spawn(spec, Bytes) {
                Ok((p, pid)) => {
                    if group && i == 0 {
                        pgid = pid as i32;
                    }
                    running.push(p);
                }
                Err(e) => {
                    kill_started(&mut running);
                    return Err(e);
                }
            }
        }
        Ok(PipelinePopen {
            stages: running,
            group,
            mode,
        })
    }

    /// Runs the pipeline to completion.
    ///
    /// # Cancel safety
    /// Dropping the future kills every stage (the group, if there is one).
    pub async fn run(mut self) -> Result<CompletedPipeline<M::Output>, SubprocessError> {
        let (check, timeout) = (self.check, self.timeout);
        self.kill_on_drop = true;
        let mut p = self.popen()?;
        let result = p.communicate_raw(&[], timeout).await;
        let (out, errs) = match result {
            Ok(v) => v,
            Err(SubprocessError::Timeout(mut t)) => {
                p.kill();
                // The TimeoutExpired is the error to report, with what can
                // still be read; a stage left unreaped is reaped on drop.
                let _ = p.wait().await;
                if let Ok((out, errs)) = p.drain_after_exit() {
                    t.stdout = out;
                    t.stderr = join_stderr(errs);
                }
                return Err(t.into());
            }
            Err(e) => return Err(e),
        };
        let returncodes: Vec<i32> = p.stages.iter().map(|s| s.returncode().unwrap()).collect();
        let args: Vec<Vec<OsString>> = p.stages.iter_mut().map(|s| s.take_args()).collect();
        if check {
            if let Some(i) = returncodes.iter().position(|&c| c != 0) {
                return Err(CalledProcessError {
                    returncode: returncodes[i],
                    cmd: args[i].clone(),
                    stdout: out,
                    stderr: errs[i].clone(),
                }
                .into());
            }
        }
        let mode = p.mode;
        Ok(CompletedPipeline {
            args,
            returncodes,
            stdout: out.map(|o| mode.decode("stdout", o)).transpose()?,
            stderr: errs
                .into_iter()
                .map(|e| e.map(|e| mode.decode("stderr", e)).transpose())
                .collect::<Result<_, _>>()?,
        })
    }

    /// The blocking facade: [`run`](Pipeline::run) for OS threads.
    pub fn blocking(self) -> BlockingPipeline<M> {
        BlockingPipeline(self)
    }
}

/// A pipeline's captured output: the last stdout, each stage's stderr.
type RawPipelineOut = (Option<Vec<u8>>, Vec<Option<Vec<u8>>>);

fn join_stderr(errs: Vec<Option<Vec<u8>>>) -> Option<Vec<u8>> {
    let mut all: Option<Vec<u8>> = None;
    for e in errs.into_iter().flatten() {
        all.get_or_insert_with(Vec::new).extend_from_slice(&e);
    }
    all
}

impl<M: Mode> IntoFuture for Pipeline<M> {
    type Output = Result<CompletedPipeline<M::Output>, SubprocessError>;
    type IntoFuture = Pin<Box<dyn std::future::Future<Output = Self::Output> + Send>>;

    /// Awaiting a pipeline runs it ([`Pipeline::run`]).
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<M: Mode> std::ops::BitOr<Command<Bytes>> for Pipeline<M> {
    type Output = Pipeline<M>;

    /// `pipeline | next`.
    fn bitor(self, next: Command<Bytes>) -> Pipeline<M> {
        self.pipe(next)
    }
}

impl<M: Mode> fmt::Debug for Pipeline<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.stages)
            .field("timeout", &self.timeout)
            .field("check", &self.check)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// A pipeline that ran to completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPipeline<T = Vec<u8>> {
    /// Each stage's arguments.
    pub args: Vec<Vec<OsString>>,
    /// Each stage's exit status (`-N` for signal `N`).
    pub returncodes: Vec<i32>,
    /// The last stage's captured stdout.
    pub stdout: Option<T>,
    /// Each stage's captured stderr.
    pub stderr: Vec<Option<T>>,
}

impl<T> CompletedPipeline<T> {
    /// The last stage's status, what a shell reports as `$?`.
    pub fn returncode(&self) -> i32 {
        *self.returncodes.last().expect("a pipeline has a stage")
    }
}

/// Keeps the unwritten rest of the first stage's borrowed input when a
/// communicate ends early.
struct FeedingFirst<'a, M: Mode> {
    p: &'a mut PipelinePopen<M>,
    input: &'a [u8],
}

impl<M: Mode> Drop for FeedingFirst<'_, M> {
    fn drop(&mut self) {
        self.p.stages[0].keep_input(self.input);
    }
}

/// A running pipeline: its stages as [`Popen`]s.
///
/// The first stage's `stdin` and the last one's `stdout` are the
/// pipeline's ends (when they are pipes): stream through them, or
/// [`communicate`](PipelinePopen::communicate).
pub struct PipelinePopen<M: Mode = Bytes> {
    /// The stages, first to last.
    pub stages: Vec<Popen<Bytes>>,
    group: bool,
    mode: M,
}

impl<M: Mode> PipelinePopen<M> {
    /// Every stage's exit status, waiting for all of them.
    ///
    /// # Cancel safety
    /// Nothing is lost.
    pub async fn wait(&mut self) -> Result<Vec<i32>, SubprocessError> {
        let mut codes = Vec::with_capacity(self.stages.len());
        for s in &mut self.stages {
            codes.push(s.wait().await?);
        }
        Ok(codes)
    }

    /// Every stage's status if all have exited.
    pub fn poll(&mut self) -> Option<Vec<i32>> {
        self.stages.iter_mut().map(|s| s.poll()).collect()
    }

    /// Kills every stage still running (the whole group, if the pipeline
    /// has one).
    pub fn kill(&mut self) {
        if self.group {
            // Refused (and skipped) once the leader is reaped.
            let _ = self.stages[0].send_signal_group(libc::SIGKILL);
        }
        for s in &mut self.stages {
            s.kill_tree();
        }
    }

    /// Feeds `input` to the first stage and reads the last stage's stdout
    /// and every stage's stderr to the end, then waits for all; returns
    /// `(stdout, stderrs)`. The same guarantees as
    /// [`Popen::communicate`]: no deadlock, nothing lost on cancellation.
    ///
    /// # Cancel safety
    /// Nothing is lost; the next call carries on.
    #[allow(clippy::type_complexity)]
    pub async fn communicate(
        &mut self,
        input: &[u8],
    ) -> Result<(Option<M::Output>, Vec<Option<M::Output>>), SubprocessError> {
        let (out, errs) = self.communicate_raw(input, None).await?;
        let mode = self.mode;
        Ok((
            out.map(|o| mode.decode("stdout", o)).transpose()?,
            errs.into_iter()
                .map(|e| e.map(|e| mode.decode("stderr", e)).transpose())
                .collect::<Result<_, _>>()?,
        ))
    }

    #[allow(clippy::type_complexity)]
    async fn communicate_raw(
        &mut self,
        input: &[u8],
        timeout: Option<Duration>,
    ) -> Result<RawPipelineOut, SubprocessError> {
        let (first, rest) = self.stages.split_first_mut().expect("a stage");
        first.begin(input)?;
        for s in rest {
            s.begin(&[])?;
        }
        let mut feeding = FeedingFirst { p: self, input };
        let result = {
            let f = &mut feeding;
            within(timeout, async move {
                std::future::poll_fn(|cx| {
                    let mut all = true;
                    for (i, s) in f.p.stages.iter_mut().enumerate() {
                        let input = if i == 0 { f.input } else { &[] };
                        match s.poll_io(cx, input) {
                            Poll::Ready(Ok(())) => {}
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => all = false,
                        }
                    }
                    if all {
                        Poll::Ready(Ok(()))
                    } else {
                        Poll::Pending
                    }
                })
                .await?;
                for s in f.p.stages.iter_mut() {
                    s.wait().await?;
                }
                Ok::<(), SubprocessError>(())
            })
            .await
        };
        let this = &mut *feeding.p;
        match result {
            Some(r) => r?,
            None => {
                let last = this.stages.last().expect("a stage");
                let cmd = this.joined_args();
                let stdout = last.snapshot().0;
                let stderr = join_stderr(this.stages.iter().map(|s| s.snapshot().1).collect());
                return Err(TimeoutExpired {
                    cmd,
                    timeout: timeout.expect("only a timeout expires"),
                    stdout,
                    stderr,
                }
                .into());
            }
        }
        Ok(this.take_output())
    }

    fn take_output(&mut self) -> RawPipelineOut {
        let n = self.stages.len();
        let mut out = None;
        let mut errs = Vec::with_capacity(n);
        for (i, s) in self.stages.iter_mut().enumerate() {
            let (o, e) = s.take_output();
            if i + 1 == n {
                out = o;
            }
            errs.push(e);
        }
        (out, errs)
    }

    fn drain_after_exit(&mut self) -> Result<RawPipelineOut, SubprocessError> {
        let n = self.stages.len();
        let mut out = None;
        let mut errs = Vec::with_capacity(n);
        for (i, s) in self.stages.iter_mut().enumerate() {
            let (o, e) = s.drain_after_exit()?;
            if i + 1 == n {
                out = o;
            }
            errs.push(e);
        }
        Ok((out, errs))
    }

    /// All stages' arguments joined with `|` (for a `TimeoutExpired`).
    fn joined_args(&self) -> Vec<OsString> {
        let mut v = Vec::new();
        for (i, s) in self.stages.iter().enumerate() {
            if i > 0 {
                v.push(OsString::from("|"));
            }
            v.extend(s.args().iter().cloned());
        }
        v
    }

    /// The blocking facade: `wait` and `communicate` for OS threads.
    pub fn blocking(&mut self) -> BlockingPipelinePopen<'_, M> {
        BlockingPipelinePopen(self)
    }
}

/// The blocking facade of a [`Pipeline`].
///
/// ```
/// use conex::subprocess::Command;
///
/// let done = (Command::new(["echo", "hi"]) | Command::new(["tr", "a-z", "A-Z"]))
///     .capture_output()
///     .blocking()
///     .run()?;
/// assert_eq!(done.stdout.unwrap(), b"HI\n");
/// # Ok::<(), conex::subprocess::SubprocessError>(())
/// ```
pub struct BlockingPipeline<M: Mode = Bytes>(Pipeline<M>);

impl<M: Mode> BlockingPipeline<M> {
    /// [`Pipeline::run`], blocking.
    #[track_caller]
    pub fn run(self) -> Result<CompletedPipeline<M::Output>, SubprocessError> {
        block_on_io(self.0.run())
    }
}

impl<M: Mode> fmt::Debug for BlockingPipeline<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingPipeline").field(&self.0).finish()
    }
}

/// The blocking facade of a [`PipelinePopen`].
pub struct BlockingPipelinePopen<'a, M: Mode = Bytes>(&'a mut PipelinePopen<M>);

impl<M: Mode> BlockingPipelinePopen<'_, M> {
    /// [`PipelinePopen::wait`], blocking.
    #[track_caller]
    pub fn wait(&mut self) -> Result<Vec<i32>, SubprocessError> {
        block_on_io(self.0.wait())
    }

    /// [`PipelinePopen::communicate`], blocking.
    #[allow(clippy::type_complexity)]
    #[track_caller]
    pub fn communicate(
        &mut self,
        input: &[u8],
    ) -> Result<(Option<M::Output>, Vec<Option<M::Output>>), SubprocessError> {
        block_on_io(self.0.communicate(input))
    }
}

impl<M: Mode> fmt::Debug for BlockingPipelinePopen<'_, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BlockingPipelinePopen")
            .field(&self.0)
            .finish()
    }
}

impl<M: Mode> fmt::Debug for PipelinePopen<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelinePopen")
            .field("stages", &self.stages)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}
