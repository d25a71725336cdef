//! The errors of `concurrent.futures`, named after Python's.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

pub use crate::tasks::Timeout;

/// An error raised by the work behind a future: its type name, message and
/// (when there was one) traceback are kept, so that an error crossing an
/// executor, a thread or a process still says what it was.
///
/// Python: the exception a `Future` holds (`Future.exception()`).
#[derive(Clone)]
pub struct WorkError {
    type_name: String,
    message: String,
    traceback: Option<String>,
    panicked: bool,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl WorkError {
    /// An error with a type name and a message (a remote error, an error of
    /// the executor itself such as `BrokenThreadPool`).
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> WorkError {
        WorkError {
            type_name: type_name.into(),
            message: message.into(),
            traceback: None,
            panicked: false,
            source: None,
        }
    }

    /// The same, with a traceback (a remote backtrace).
    pub fn with_traceback(mut self, traceback: impl Into<String>) -> WorkError {
        self.traceback = Some(traceback.into());
        self
    }

    /// Wraps an error the work returned, keeping it as the source. Its
    /// type name is the short one (Python's `type(e).__name__`); the
    /// traceback holds its full type path and its `source()` chain (one
    /// `caused by:` line per cause), as a panic's holds its backtrace.
    pub fn from_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> WorkError {
        let (type_name, message, context) = describe_error(&e);
        WorkError {
            type_name,
            message,
            traceback: Some(context),
            panicked: false,
            source: Some(Arc::new(e)),
        }
    }

    /// A panic of the work (its payload's message).
    pub fn from_panic(payload: &(dyn Any + Send)) -> WorkError {
        WorkError {
            type_name: "panic".to_owned(),
            message: crate::panic_str(payload).to_owned(),
            traceback: None,
            panicked: true,
            source: None,
        }
    }

    /// The error's type name (`std::any::type_name` of a Rust error,
    /// `"panic"` for a panic, the remote type for a remote error).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The error's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The traceback, when the error carries one.
    pub fn traceback(&self) -> Option<&str> {
        self.traceback.as_deref()
    }

    /// Whether the work panicked.
    pub fn is_panic(&self) -> bool {
        self.panicked
    }

    /// The original error, if it was a Rust error of type `E` in this process.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.as_deref()?.downcast_ref()
    }
}

/// Python's `type(obj).__name__` for a Rust type: every path cut to its
/// last segment, generic arguments included (`std::io::Error` is `Error`,
/// `my::Wrapper<std::num::ParseIntError>` is `Wrapper<ParseIntError>`).
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            segment.clear();
        } else if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else {
            out.push_str(&segment);
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(&segment);
    out
}

/// The one description of an error that work returned (in a thread, a
/// task or a worker process): its short type name, its message, and a
/// context text (the full type path and each `source()` below it), which
/// travels as the error's traceback.
pub(crate) fn describe_error<E: std::error::Error + ?Sized + 'static>(
    e: &E,
) -> (String, String, String) {
    use std::fmt::Write;
    let mut context = format!("{}: {e}", std::any::type_name::<E>());
    let mut cause = e.source();
    while let Some(c) = cause {
        let _ = write!(context, "\ncaused by: {c}");
        cause = c.source();
    }
    (short_type_name::<E>(), e.to_string(), context)
}

impl fmt::Debug for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkError")
            .field("type_name", &self.type_name)
            .field("message", &self.message)
            .field("panicked", &self.panicked)
            .finish()
    }
}

impl PartialEq for WorkError {
    fn eq(&self, other: &Self) -> bool {
        self.type_name == other.type_name
            && self.message == other.message
            && self.panicked == other.panicked
    }
}

impl fmt::Display for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl std::error::Error for WorkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Why a future gave no value.
///
/// Python: `CancelledError`, `TimeoutError`, or the work's exception raised
/// again by `Future.result()`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FutureError {
    /// The future was cancelled (Python: `CancelledError`).
    Cancelled,
    /// The timeout passed first (Python: `TimeoutError`).
    Timeout,
    /// The work failed (Python: the exception itself).
    Failed(WorkError),
    /// The value was moved out by [`Future::take_result`](super::Future::take_result).
    Taken,
}

impl fmt::Display for FutureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled => f.write_str("the future was cancelled"),
            FutureError::Timeout => f.write_str("the future did not finish in time"),
            FutureError::Failed(e) => write!(f, "the work failed: {e}"),
            FutureError::Taken => f.write_str("the future's value was already taken"),
        }
    }
}

impl std::error::Error for FutureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FutureError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// An operation that the future's state does not allow: a second
/// `set_result`/`set_exception`, or `set_running_or_notify_cancel` on a
/// future that is not pending.
///
/// Python: `concurrent.futures.InvalidStateError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvalidState {
    pub(crate) state: &'static str,
}

impl fmt::Display for InvalidState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid state: the future is {}", self.state)
    }
}

impl std::error::Error for InvalidState {}

/// Why an executor refused new work.
///
/// Python: `RuntimeError: cannot schedule new futures after shutdown`,
/// `BrokenThreadPool` / `BrokenProcessPool`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The executor was shut down.
    Shutdown,
    /// The executor is broken (an initializer failed, a worker process died
    /// in break-everything mode); why.
    Broken(String),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Shutdown => f.write_str("cannot schedule new futures after shutdown"),
            SubmitError::Broken(why) => write!(f, "the executor is broken: {why}"),
        }
    }
}

impl std::error::Error for SubmitError {}

/// A value an executor cannot be built with.
///
/// Python: `ValueError: max_workers must be greater than 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZeroWorkers;

impl fmt::Display for ZeroWorkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("max_workers must be greater than 0")
    }
}

impl std::error::Error for ZeroWorkers {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::num::ParseIntError);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bad config")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn returned_errors_get_short_names_and_their_chain() {
        assert_eq!(short_type_name::<std::io::Error>(), "Error");
        assert_eq!(
            short_type_name::<Option<std::num::ParseIntError>>(),
            "Option<ParseIntError>"
        );
        assert_eq!(short_type_name::<(u8, std::fmt::Error)>(), "(u8, Error)");
        let inner = "x".parse::<u8>().unwrap_err();
        let e = WorkError::from_error(Outer(inner.clone()));
        assert_eq!(e.type_name(), "Outer");
        assert_eq!(e.message(), "bad config");
        let tb = e.traceback().unwrap();
        assert!(
            tb.starts_with("conex::futures::errors::tests::Outer: bad config"),
            "{tb}"
        );
        assert!(tb.contains(&format!("caused by: {inner}")), "{tb}");
    }
}
