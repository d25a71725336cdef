//! The errors of `subprocess`, named after Python's.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a child could not be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnErrorKind {
    /// The program does not exist (Python: `FileNotFoundError`).
    NotFound,
    /// The program (or a directory on its path) may not be executed
    /// (Python: `PermissionError`).
    PermissionDenied,
    /// The working directory does not exist or is not a directory (Python:
    /// `FileNotFoundError` / `NotADirectoryError` naming the cwd).
    BadCwd,
    /// Anything else the OS refused (too many processes, an exec format
    /// error, ...); the source says what.
    Other,
}

/// A child could not be started. Names the program (and the working
/// directory when that was the problem).
///
/// Python: the `OSError` (`FileNotFoundError`, `PermissionError`, ...) that
/// `Popen()` raises.
#[derive(Debug)]
pub struct SpawnError {
    pub(crate) program: OsString,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) kind: SpawnErrorKind,
    pub(crate) source: io::Error,
}

impl SpawnError {
    /// The program that was to run.
    pub fn program(&self) -> &std::ffi::OsStr {
        &self.program
    }

    /// The working directory, when one was given.
    pub fn cwd(&self) -> Option<&std::path::Path> {
        self.cwd.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> SpawnErrorKind {
        self.kind
    }

    /// The OS error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot run {:?}: ", self.program)?;
        match (self.kind, &self.cwd) {
            (SpawnErrorKind::NotFound, _) => write!(f, "no such program"),
            (SpawnErrorKind::PermissionDenied, _) => write!(f, "permission denied"),
            (SpawnErrorKind::BadCwd, Some(cwd)) => {
                write!(
                    f,
                    "working directory {cwd:?} is not a directory ({})",
                    self.source
                )
            }
            _ => write!(f, "{}", self.source),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Formats an argument vector the way it would be typed.
pub(crate) struct ArgsDisplay<'a>(pub(crate) &'a [OsString]);

impl fmt::Display for ArgsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let s = a.to_string_lossy();
            let plain = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
            if plain {
                f.write_str(&s)?;
            } else {
                write!(f, "'{}'", s.replace('\'', r"'\''"))?;
            }
        }
        Ok(())
    }
}

/// The name of a signal number, for messages.
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGBUS => "SIGBUS",
        _ => "signal",
    }
}

/// The child exited with a non-zero status and the caller asked for a
/// check. Carries everything that was captured.
///
/// Python: `subprocess.CalledProcessError(returncode, cmd, output, stderr)`.
/// As in Python, `returncode` is `-N` for a child killed by signal `N`.
/// Output is kept as bytes even in text mode ([`stdout_lossy`] decodes it).
///
/// [`stdout_lossy`]: CalledProcessError::stdout_lossy
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledProcessError {
    /// The exit status (`-N` for a signal).
    pub returncode: i32,
    /// The command's arguments (for a shell command, `/bin/sh -c <cmd>`).
    pub cmd: Vec<OsString>,
    /// Captured standard output, if it was a pipe.
    pub stdout: Option<Vec<u8>>,
    /// Captured standard error, if it was a pipe.
    pub stderr: Option<Vec<u8>>,
}

impl CalledProcessError {
    /// The captured stdout decoded as UTF-8 (invalid bytes replaced).
    pub fn stdout_lossy(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.stdout.as_deref().map(String::from_utf8_lossy)
    }

    /// The captured stderr decoded as UTF-8 (invalid bytes replaced).
    pub fn stderr_lossy(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.stderr.as_deref().map(String::from_utf8_lossy)
    }
}

impl fmt::Display for CalledProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command `{}` ", ArgsDisplay(&self.cmd))?;
        if self.returncode < 0 {
            let sig = -self.returncode;
            write!(f, "died with signal {sig} ({})", signal_name(sig))
        } else {
            write!(f, "returned non-zero exit status {}", self.returncode)
        }
    }
}

impl std::error::Error for CalledProcessError {}

/// A timeout expired before the child finished. Carries the output read so
/// far, so nothing captured is lost.
///
/// Python: `subprocess.TimeoutExpired(cmd, timeout, output, stderr)`.
/// After [`Popen::communicate_timeout`] the child is still running and a
/// retry returns all of its output (this included); after a `run` with a
/// timeout the child has been killed and reaped.
///
/// [`Popen::communicate_timeout`]: super::Popen::communicate_timeout
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutExpired {
    /// The command's arguments.
    pub cmd: Vec<OsString>,
    /// The timeout that expired.
    pub timeout: Duration,
    /// Standard output read so far, if it was a pipe.
    pub stdout: Option<Vec<u8>>,
    /// Standard error read so far, if it was a pipe.
    pub stderr: Option<Vec<u8>>,
}

impl TimeoutExpired {
    /// The stdout read so far decoded as UTF-8 (invalid bytes replaced).
    pub fn stdout_lossy(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.stdout.as_deref().map(String::from_utf8_lossy)
    }

    /// The stderr read so far decoded as UTF-8 (invalid bytes replaced).
    pub fn stderr_lossy(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.stderr.as_deref().map(String::from_utf8_lossy)
    }
}

impl fmt::Display for TimeoutExpired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command `{}` timed out after {:?}",
            ArgsDisplay(&self.cmd),
            self.timeout
        )
    }
}

impl std::error::Error for TimeoutExpired {}

/// Text mode could not decode an output stream as UTF-8. The bytes are
/// handed back.
///
/// Python: the `UnicodeDecodeError` of `text=True` with `errors="strict"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// `"stdout"` or `"stderr"`.
    pub stream: &'static str,
    /// The undecodable output, whole.
    pub bytes: Vec<u8>,
    /// Where decoding failed.
    pub error: std::str::Utf8Error,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not UTF-8: {}", self.stream, self.error)
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Everything a subprocess call can fail with.
///
/// Python: `SubprocessError` and the `OSError`s and `ValueError`s that
/// `subprocess` raises, one variant each.
#[derive(Debug)]
#[non_exhaustive]
pub enum SubprocessError {
    /// The child could not be started.
    Spawn(SpawnError),
    /// A timeout expired (Python: `TimeoutExpired`).
    Timeout(TimeoutExpired),
    /// A checked child exited non-zero (Python: `CalledProcessError`).
    Called(CalledProcessError),
    /// Text mode met output that is not UTF-8.
    Decode(DecodeError),
    /// The arguments were inconsistent (Python: `ValueError`), e.g. `input`
    /// with a `stdin` that is not a pipe, or empty args.
    InvalidArgument(&'static str),
    /// Reading or writing a pipe, or waiting for the child, failed.
    Io(io::Error),
}

impl SubprocessError {
    /// The timeout, if this is one.
    pub fn as_timeout(&self) -> Option<&TimeoutExpired> {
        match self {
            SubprocessError::Timeout(t) => Some(t),
            _ => None,
        }
    }

    /// The failed check, if this is one.
    pub fn as_called(&self) -> Option<&CalledProcessError> {
        match self {
            SubprocessError::Called(c) => Some(c),
            _ => None,
        }
    }

    /// The spawn failure, if this is one.
    pub fn as_spawn(&self) -> Option<&SpawnError> {
        match self {
            SubprocessError::Spawn(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for SubprocessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubprocessError::Spawn(e) => e.fmt(f),
            SubprocessError::Timeout(e) => e.fmt(f),
            SubprocessError::Called(e) => e.fmt(f),
            SubprocessError::Decode(e) => e.fmt(f),
            SubprocessError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            SubprocessError::Io(e) => write!(f, "subprocess I/O failed: {e}"),
        }
    }
}

impl std::error::Error for SubprocessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SubprocessError::Spawn(e) => Some(e),
            SubprocessError::Timeout(e) => Some(e),
            SubprocessError::Called(e) => Some(e),
            SubprocessError::Decode(e) => Some(e),
            SubprocessError::InvalidArgument(_) => None,
            SubprocessError::Io(e) => Some(e),
        }
    }
}

impl From<SpawnError> for SubprocessError {
    fn from(e: SpawnError) -> Self {
        SubprocessError::Spawn(e)
    }
}

impl From<TimeoutExpired> for SubprocessError {
    fn from(e: TimeoutExpired) -> Self {
        SubprocessError::Timeout(e)
    }
}

impl From<CalledProcessError> for SubprocessError {
    fn from(e: CalledProcessError) -> Self {
        SubprocessError::Called(e)
    }
}

impl From<DecodeError> for SubprocessError {
    fn from(e: DecodeError) -> Self {
        SubprocessError::Decode(e)
    }
}

impl From<io::Error> for SubprocessError {
    fn from(e: io::Error) -> Self {
        SubprocessError::Io(e)
    }
}

impl From<SubprocessError> for io::Error {
    fn from(e: SubprocessError) -> io::Error {
        match e {
            SubprocessError::Io(e) => e,
            SubprocessError::Spawn(s) => {
                let kind = s.source.kind();
                io::Error::new(kind, s)
            }
            SubprocessError::Timeout(t) => io::Error::new(io::ErrorKind::TimedOut, t),
            SubprocessError::InvalidArgument(m) => io::Error::new(io::ErrorKind::InvalidInput, m),
            SubprocessError::Decode(d) => io::Error::new(io::ErrorKind::InvalidData, d),
            other => io::Error::other(other),
        }
    }
}
