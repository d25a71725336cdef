//! Where a child's standard streams go: Python's `None` (inherit), `PIPE`,
//! `DEVNULL`, `STDOUT` and a file.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::pipe::Pipe;
use crate::sys::pipe;

/// Where one of a child's standard streams goes.
///
/// Python: the `stdin=`, `stdout=`, `stderr=` arguments: `None`, `PIPE`,
/// `DEVNULL`, `STDOUT` (stderr only) or a file. [`PIPE`], [`DEVNULL`] and
/// [`STDOUT`] are the Python spellings.
///
/// Any file descriptor can be given (`From<File>`, `From<OwnedFd>`); to feed
/// one child's output to another by hand, pass
/// [`ChildStdout::into_owned_fd`](super::ChildStdout::into_owned_fd) (or use
/// a [`Pipeline`](super::Pipeline), which does it for you).
#[derive(Default)]
#[non_exhaustive]
pub enum Stdio {
    /// The child shares the parent's stream (Python: `None`, the default).
    #[default]
    Inherit,
    /// A new pipe; the parent's end appears as `Popen.stdin` / `stdout` /
    /// `stderr` (Python: `PIPE`).
    Pipe,
    /// `/dev/null` (Python: `DEVNULL`).
    DevNull,
    /// For stderr only: wherever stdout goes (Python: `STDOUT`).
    Stdout,
    /// A file or any other descriptor the child gets as this stream.
    Fd(OwnedFd),
}

/// Python's `subprocess.PIPE`.
pub const PIPE: Stdio = Stdio::Pipe;
/// Python's `subprocess.DEVNULL`.
pub const DEVNULL: Stdio = Stdio::DevNull;
/// Python's `subprocess.STDOUT`: stderr goes where stdout goes.
pub const STDOUT: Stdio = Stdio::Stdout;

impl Stdio {
    pub(crate) fn is_inherit(&self) -> bool {
        matches!(self, Stdio::Inherit)
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio::Fd(f.into())
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio::Fd(fd)
    }
}

impl fmt::Debug for Stdio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stdio::Inherit => f.write_str("Inherit"),
            Stdio::Pipe => f.write_str("PIPE"),
            Stdio::DevNull => f.write_str("DEVNULL"),
            Stdio::Stdout => f.write_str("STDOUT"),
            Stdio::Fd(fd) => f.debug_tuple("Fd").field(&fd.as_raw_fd()).finish(),
        }
    }
}

/// The child's side of one stream, and the parent's end if it is a pipe.
pub(crate) struct Resolved {
    pub(crate) child: std::process::Stdio,
    pub(crate) parent: Option<Pipe>,
    /// A duplicate of the child's side, kept until stderr has been resolved
    /// (for `stderr=STDOUT`).
    pub(crate) dup: Option<OwnedFd>,
}

fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// Resolves stdin (`output == false`) or stdout (`output == true`).
pub(crate) fn resolve(
    s: Stdio,
    output: bool,
    pipesize: Option<usize>,
    keep_dup: bool,
) -> io::Result<Resolved> {
    let (child, parent, dup_fd): (std::process::Stdio, Option<Pipe>, Option<OwnedFd>) = match s {
        Stdio::Inherit => {
            let d = if keep_dup {
                Some(if output {
                    dup(io::stdout().as_fd())?
                } else {
                    dup(io::stdin().as_fd())?
                })
            } else {
                None
            };
            (std::process::Stdio::inherit(), None, d)
        }
        Stdio::DevNull => {
            let d = if keep_dup {
                Some(OwnedFd::from(
                    std::fs::OpenOptions::new().write(true).open("/dev/null")?,
                ))
            } else {
                None
            };
            (std::process::Stdio::null(), None, d)
        }
        Stdio::Pipe => {
            let (r, w) = pipe()?;
            if let Some(size) = pipesize {
                set_pipe_size(r.as_fd(), size)?;
            }
            let (child_end, parent_end) = if output { (w, r) } else { (r, w) };
            let d = if keep_dup {
                Some(dup(child_end.as_fd())?)
            } else {
                None
            };
            (child_end.into(), Some(Pipe::new(parent_end, output)?), d)
        }
        Stdio::Fd(fd) => {
            let d = if keep_dup {
                Some(dup(fd.as_fd())?)
            } else {
                None
            };
            (fd.into(), None, d)
        }
        Stdio::Stdout => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "STDOUT is only valid for stderr",
            ));
        }
    };
    Ok(Resolved {
        child,
        parent,
        dup: dup_fd,
    })
}

/// Python's `pipesize` (Linux; a no-op elsewhere).
fn set_pipe_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<()> {
    crate::sys::set_pipe_size(fd, size)
}
