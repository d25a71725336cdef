//! Python's module-level functions: `run`, `call`, `check_call`,
//! `check_output`, `getstatusoutput`, `getoutput`, and their blocking twins.

use std::ffi::OsStr;

use super::command::Command;
use super::errors::SubprocessError;
use super::mode::{Bytes, Text};
use super::stdio::Stdio;
use crate::io::driver::block_on_io;

/// Python's `subprocess.run(args, ...)`: a [`Command`] to configure, which
/// runs when awaited.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), conex::subprocess::SubprocessError> {
/// let done = conex::subprocess::run(["echo", "hello"]).capture_output().await?;
/// assert_eq!(done.stdout.unwrap(), b"hello\n");
/// # Ok(()) }
/// ```
pub fn run<I, S>(args: I) -> Command<Bytes>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(args)
}

/// Python's `subprocess.call(args)`: runs and returns the exit status.
///
/// # Cancel safety
/// Dropping the future kills the child.
pub async fn call<I, S>(args: I) -> Result<i32, SubprocessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(args).call().await
}

/// Python's `subprocess.check_call(args)`.
///
/// # Cancel safety
/// Dropping the future kills the child.
pub async fn check_call<I, S>(args: I) -> Result<(), SubprocessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(args).check_call().await
}

/// Python's `subprocess.check_output(args)`: stdout as bytes.
///
/// # Cancel safety
/// Dropping the future kills the child.
pub async fn check_output<I, S>(args: I) -> Result<Vec<u8>, SubprocessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(args).check_output().await
}

fn statusoutput_command(cmd: &OsStr) -> Command<Text> {
    Command::shell(cmd)
        .stdout(Stdio::Pipe)
        .stderr(Stdio::Stdout)
        .text()
}

fn strip_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
    }
    s
}

/// Python's `subprocess.getstatusoutput(cmd)`: runs `cmd` in the shell and
/// returns `(exitcode, output)`, stderr merged into the output and one
/// trailing newline stripped. The output is decoded as strict UTF-8.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), conex::subprocess::SubprocessError> {
/// let (code, out) = conex::subprocess::getstatusoutput("echo hi; echo oops >&2; exit 2").await?;
/// assert_eq!((code, out.as_str()), (2, "hi\noops"));
/// # Ok(()) }
/// ```
///
/// # Cancel safety
/// Dropping the future kills the shell.
pub async fn getstatusoutput(cmd: impl AsRef<OsStr>) -> Result<(i32, String), SubprocessError> {
    let done = statusoutput_command(cmd.as_ref()).run().await?;
    Ok((
        done.returncode,
        strip_newline(done.stdout.unwrap_or_default()),
    ))
}

/// Python's `subprocess.getoutput(cmd)`: the output of
/// [`getstatusoutput`] alone.
///
/// # Cancel safety
/// Dropping the future kills the shell.
pub async fn getoutput(cmd: impl AsRef<OsStr>) -> Result<String, SubprocessError> {
    Ok(getstatusoutput(cmd).await?.1)
}

/// [`call`], blocking.
pub fn call_blocking<I, S>(args: I) -> Result<i32, SubprocessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(args).blocking().call()
}

/// [`check_call`], blocking.
pub fn check_call_blocking<I, S>(args: I) -> Result<(), SubprocessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(args).blocking().check_call()
}

/// [`check_output`], blocking.
pub fn check_output_blocking<I, S>(args: I) -> Result<Vec<u8>, SubprocessError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(args).blocking().check_output()
}

/// [`getstatusoutput`], blocking.
#[track_caller]
pub fn getstatusoutput_blocking(cmd: impl AsRef<OsStr>) -> Result<(i32, String), SubprocessError> {
    block_on_io(getstatusoutput(cmd))
}

/// [`getoutput`], blocking.
#[track_caller]
pub fn getoutput_blocking(cmd: impl AsRef<OsStr>) -> Result<String, SubprocessError> {
    block_on_io(getoutput(cmd))
}
