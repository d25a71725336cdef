//! The multiprocessing suite (one binary, `harness = false`): its `main`
//! calls `conex::multiprocessing::init()` first thing, so the children
//! the tests start (this same binary, re-executed or forked) divert into
//! the worker loop instead of running the suite again. Real processes
//! throughout. Behaviours are derived from CPython's
//! Lib/test/_test_multiprocessing.py; each test names the one it follows.

#[path = "../common/executor.rs"]
mod common_executor;
mod conn;
#[cfg(feature = "tracing")]
#[path = "../common/events.rs"]
mod events;
mod kills;
mod managers;
mod pools;
mod procs;
mod queues;
mod shm;
mod sync;

use std::sync::LazyLock;
use std::time::Duration;

use libtest_mimic::{Arguments, Trial};

pub(crate) static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(two_workers);

/// A multi-thread runtime of two workers, with time and I/O (the suite's
/// shared one, and a child's own where it counts its threads).
pub(crate) fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Two other executables made from this suite's binary, in a temporary
/// folder removed on drop: `copy`, the same bytes at another path, and
/// `other`, the same with bytes appended (another build, as far as a
/// handshake can tell).
pub(crate) struct OtherBuilds {
    dir: std::path::PathBuf,
    pub(crate) copy: std::path::PathBuf,
    pub(crate) other: std::path::PathBuf,
}

impl OtherBuilds {
    pub(crate) fn new(tag: &str) -> OtherBuilds {
        use std::io::Write;
        let me = std::env::current_exe().unwrap();
        let dir = std::env::temp_dir().join(format!("conex-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (copy, other) = (dir.join("copy"), dir.join("other-build"));
        std::fs::copy(&me, &copy).unwrap();
        std::fs::copy(&me, &other).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&other)
            .unwrap()
            .write_all(b"another build")
            .unwrap();
        OtherBuilds { dir, copy, other }
    }
}

impl Drop for OtherBuilds {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test: a name and a body that panics on failure.
pub(crate) type Test = (&'static str, fn());

/// A small xorshift for kill moments, seeded from the clock (the seed is
/// in every failure message, to replay a trial).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn new() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        Rng(u64::from(t.subsec_nanos()) | 1 | (t.as_secs() << 32))
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Aborts the suite, naming `what`, unless dropped within `limit`: a
/// wedged call would otherwise hang it rather than fail it.
pub(crate) struct Watchdog(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

pub(crate) fn watchdog(what: String, limit: Duration) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("watchdog: {what} wedged for {limit:?}");
            std::process::abort();
        }
    });
    Watchdog(tx)
}

fn main() {
    conex::multiprocessing::init();
    if let Some(path) = std::env::var_os(managers::POOL_CLIENT_ENV) {
        managers::pool_client_role(path);
    }
    if std::env::var_os(procs::RUNNER_ROLE_ENV).is_some() {
        procs::runner_role();
    }
    #[cfg(feature = "tracing")]
    if std::env::var_os(pools::LOG_ROLE_ENV).is_some() {
        pools::log_role();
    }
    let args = Arguments::from_args();
    let trials = conn::TESTS
        .iter()
        .chain(procs::TESTS)
        .chain(shm::TESTS)
        .chain(sync::TESTS)
        .chain(kills::TESTS)
        .chain(queues::TESTS)
        .chain(pools::TESTS)
        .chain(managers::TESTS)
        .map(|&(name, f)| {
            Trial::test(name, move || {
                std::panic::catch_unwind(f).map_err(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                        .into()
                })
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
