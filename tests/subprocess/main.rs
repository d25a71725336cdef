//! The subprocess suite (one binary), on real programs only (sh, cat,
//! sleep, yes, head, true, false, printf, ...): the conformance suite over
//! the async face and the blocking facade, then streams, signals, process
//! groups, cancellation, pipelines and errors. Behaviours are derived from
//! CPython's Lib/test/test_subprocess.py; each test names the CPython test
//! it follows.

mod conf;
mod errors;
mod pipelines;
mod procs;

use std::sync::LazyLock;
use std::time::Duration;

use conex::subprocess::{
    Command, CompletedPipeline, CompletedProcess, Mode, Pipeline, Popen, SubprocessError,
};

type Out<M> = (Option<<M as Mode>::Output>, Option<<M as Mode>::Output>);

/// One way of calling the waiting operations: `.await` or the blocking
/// facade.
pub(crate) trait Face {
    fn run<M: Mode>(cmd: Command<M>) -> Result<CompletedProcess<M::Output>, SubprocessError>;
    fn check_output<M: Mode>(cmd: Command<M>) -> Result<M::Output, SubprocessError>;
    fn call<M: Mode>(cmd: Command<M>) -> Result<i32, SubprocessError>;
    fn wait<M: Mode>(p: &mut Popen<M>) -> Result<i32, SubprocessError>;
    fn wait_timeout<M: Mode>(p: &mut Popen<M>, d: Duration) -> Result<i32, SubprocessError>;
    fn communicate<M: Mode>(p: &mut Popen<M>, input: &[u8]) -> Result<Out<M>, SubprocessError>;
    fn communicate_timeout<M: Mode>(
        p: &mut Popen<M>,
        input: &[u8],
        d: Duration,
    ) -> Result<Out<M>, SubprocessError>;
    fn pipeline<M: Mode>(p: Pipeline<M>) -> Result<CompletedPipeline<M::Output>, SubprocessError>;
    fn getstatusoutput(cmd: &str) -> Result<(i32, String), SubprocessError>;
}

/// The async face, driven by a multi-thread tokio runtime.
pub(crate) struct Async;

pub(crate) static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
});

impl Face for Async {
    fn run<M: Mode>(cmd: Command<M>) -> Result<CompletedProcess<M::Output>, SubprocessError> {
        RT.block_on(cmd.run())
    }
    fn check_output<M: Mode>(cmd: Command<M>) -> Result<M::Output, SubprocessError> {
        RT.block_on(cmd.check_output())
    }
    fn call<M: Mode>(cmd: Command<M>) -> Result<i32, SubprocessError> {
        RT.block_on(cmd.call())
    }
    fn wait<M: Mode>(p: &mut Popen<M>) -> Result<i32, SubprocessError> {
        RT.block_on(p.wait())
    }
    fn wait_timeout<M: Mode>(p: &mut Popen<M>, d: Duration) -> Result<i32, SubprocessError> {
        RT.block_on(p.wait_timeout(d))
    }
    fn communicate<M: Mode>(p: &mut Popen<M>, input: &[u8]) -> Result<Out<M>, SubprocessError> {
        RT.block_on(p.communicate(input))
    }
    fn communicate_timeout<M: Mode>(
        p: &mut Popen<M>,
        input: &[u8],
        d: Duration,
    ) -> Result<Out<M>, SubprocessError> {
        RT.block_on(p.communicate_timeout(input, d))
    }
    fn pipeline<M: Mode>(p: Pipeline<M>) -> Result<CompletedPipeline<M::Output>, SubprocessError> {
        RT.block_on(p.run())
    }
    fn getstatusoutput(cmd: &str) -> Result<(i32, String), SubprocessError> {
        RT.block_on(conex::subprocess::getstatusoutput(cmd))
    }
}

/// The blocking facade, on the test's own thread with no runtime.
pub(crate) struct Blocking;

impl Face for Blocking {
    fn run<M: Mode>(cmd: Command<M>) -> Result<CompletedProcess<M::Output>, SubprocessError> {
        cmd.blocking().run()
    }
    fn check_output<M: Mode>(cmd: Command<M>) -> Result<M::Output, SubprocessError> {
        cmd.blocking().check_output()
    }
    fn call<M: Mode>(cmd: Command<M>) -> Result<i32, SubprocessError> {
        cmd.blocking().call()
    }
    fn wait<M: Mode>(p: &mut Popen<M>) -> Result<i32, SubprocessError> {
        p.blocking().wait()
    }
    fn wait_timeout<M: Mode>(p: &mut Popen<M>, d: Duration) -> Result<i32, SubprocessError> {
        p.blocking().wait_timeout(d)
    }
    fn communicate<M: Mode>(p: &mut Popen<M>, input: &[u8]) -> Result<Out<M>, SubprocessError> {
        p.blocking().communicate(input)
    }
    fn communicate_timeout<M: Mode>(
        p: &mut Popen<M>,
        input: &[u8],
        d: Duration,
    ) -> Result<Out<M>, SubprocessError> {
        p.blocking().communicate_timeout(input, d)
    }
    fn pipeline<M: Mode>(p: Pipeline<M>) -> Result<CompletedPipeline<M::Output>, SubprocessError> {
        p.blocking().run()
    }
    fn getstatusoutput(cmd: &str) -> Result<(i32, String), SubprocessError> {
        conex::subprocess::getstatusoutput_blocking(cmd)
    }
}

/// A fresh empty directory under the system temp dir.
pub(crate) fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "conex-sp-{}-{}-{}",
        std::process::id(),
        tag,
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether `pid` is gone (or a zombie nobody reaped yet: it runs no more).
pub(crate) fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            state.starts_with('Z') || state.starts_with('X')
        }
    }
}

/// Polls `cond` until it holds or `limit` passes (for effects of signals
/// delivered by the OS, which no clock can be paused for).
pub(crate) fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Instantiates every generic test for one face.
macro_rules! conformance {
    ($modname:ident, $face:ty) => {
        mod $modname {
            conformance!(@tests $face;
                conf::run_returncode,
                conf::run_check,
                conf::run_capture_stdout_stderr,
                conf::run_input,
                conf::run_stderr_to_stdout,
                conf::run_devnull,
                conf::run_stdout_to_file,
                conf::run_stdin_from_file,
                conf::run_text_universal_newlines,
                conf::run_text_strict_and_lossy,
                conf::run_timeout_kills_and_keeps_output,
                conf::run_timeout_with_grandchild_holding_pipe,
                conf::run_timeout_kills_process_group,
                conf::run_env_and_cwd,
                conf::call_and_check_output,
                conf::getstatusoutput_merges_and_strips,
                conf::communicate_large_both_pipes,
                conf::communicate_large_input_and_output,
                conf::communicate_timeout_retry_loses_nothing,
                conf::communicate_epipe,
                conf::communicate_input_rules,
                conf::wait_and_poll,
                conf::wait_timeout_leaves_child_running,
                conf::negative_returncode_for_signal,
                conf::pipeline_sort_uniq,
                conf::pipeline_sigpipe_upstream,
                conf::pipeline_check_is_pipefail,
                conf::pipeline_timeout_kills_all,
            );
        }
    };
    (@tests $face:ty; $($path:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                crate::$path::$name::<$face>();
            }
        )*
    };
}

conformance!(async_face, crate::Async);
conformance!(blocking_face, crate::Blocking);
