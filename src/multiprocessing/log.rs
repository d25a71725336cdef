//! Python's `multiprocessing.log_to_stderr()` and `get_logger()` over
//! `tracing` (feature `tracing`).
//!
//! Python's multiprocessing logger (`"multiprocessing"`) is silent until
//! a handler is set up; conex's diagnostics, spans and events are of
//! tracing target `conex`, silent until a subscriber is set. These two
//! functions are the shortcut for a program that has no subscriber of its
//! own: [`log_to_stderr`] installs a small process-wide one that prints
//! conex's events to stderr in Python's format,
//! `[LEVEL/ProcessName] message field=value`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

pub use tracing::Level;

/// The logger of conex's events: the tracing target `conex` and the
/// level [`log_to_stderr`]'s printer lets through. Python:
/// `multiprocessing.get_logger()`'s `Logger`.
#[derive(Debug, Clone, Copy)]
pub struct Logger {
    _private: (),
}

/// The printer's level (a `tracing::Level` as 1 = ERROR .. 5 = TRACE).
static LEVEL: AtomicUsize = AtomicUsize::new(2);

fn to_num(l: Level) -> usize {
    match l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn from_num(n: usize) -> Level {
    match n {
        1 => Level::ERROR,
        2 => Level::WARN,
        3 => Level::INFO,
        4 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

impl Logger {
    /// The tracing target of every conex span and event.
    pub const TARGET: &'static str = "conex";

    /// The most verbose level [`log_to_stderr`]'s printer shows. Python:
    /// `logger.setLevel(level)`.
    pub fn set_level(&self, level: Level) {
        LEVEL.store(to_num(level), Relaxed);
    }

    /// The printer's level (WARN until set). Python: `logger.level`.
    pub fn level(&self) -> Level {
        from_num(LEVEL.load(Relaxed))
    }
}

/// conex's logger. Python: `multiprocessing.get_logger()`.
///
/// ```
/// let log = conex::multiprocessing::get_logger();
/// assert_eq!(conex::multiprocessing::Logger::TARGET, "conex");
/// log.set_level(conex::multiprocessing::Level::INFO);
/// assert_eq!(log.level(), conex::multiprocessing::Level::INFO);
/// ```
pub fn get_logger() -> Logger {
    Logger { _private: () }
}

/// Prints conex's events at `level` and above to stderr, as
/// `[LEVEL/ProcessName] message field=value`, by installing a
/// process-wide `tracing` subscriber for target `conex` (Python:
/// `multiprocessing.log_to_stderr(level)`). Returns the logger; calling it
/// again only sets the level. A process that already has a global
/// subscriber keeps it (the level is set all the same: use that
/// subscriber's filter for conex's target instead).
///
/// Started children do not inherit it (a spawned child starts a fresh
/// program, as Python's does unless the child calls it too).
///
/// ```
/// use conex::multiprocessing::{Level, log_to_stderr};
///
/// let log = log_to_stderr(Level::INFO);
/// assert_eq!(log.level(), Level::INFO);
/// ```
pub fn log_to_stderr(level: Level) -> Logger {
    let log = get_logger();
    log.set_level(level);
    let _ = tracing::subscriber::set_global_default(Printer::default());
    log
}

/// The subscriber [`log_to_stderr`] installs.
#[derive(Default)]
struct Printer {
    next: AtomicU64,
}

/// `message` first, then ` field=value` for the others.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.fields.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl tracing::Subscriber for Printer {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        m.target().starts_with(Logger::TARGET) && to_num(*m.level()) <= LEVEL.load(Relaxed)
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(self.next.fetch_add(1, Relaxed) + 1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, e: &tracing::Event<'_>) {
        let mut line = Line::default();
        e.record(&mut line);
        let who = super::current_process().name;
        // Python prints here: log_to_stderr's handler writes to
        // sys.stderr; this subscriber exists to do just that.
        eprintln!(
            "[{}/{who}] {}{}",
            e.metadata().level(),
            line.message,
            line.fields
        );
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}
