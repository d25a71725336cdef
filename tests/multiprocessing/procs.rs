//! Process: start methods, results, exit codes, signals, remote panics,
//! what a child knows, connections passed to children, and orphans.

use std::time::Duration;

use conex::multiprocessing::{
    Connection, Process, ProcessError, StartError, StartMethod, Waitable, active_children,
    current_authkey, current_process, parent_process, pipe, wait_blocking,
};

use crate::{RT, Test};

pub(crate) const TESTS: &[Test] = &[
    (
        "runner::ctrl_c_cancels_the_main_future",
        ctrl_c_cancels_the_main_future,
    ),
    ("process::result_spawn", result_spawn),
    ("process::result_forkserver", result_forkserver),
    (
        "process::fork_refused_while_threads_run",
        fork_refused_while_threads_run,
    ),
    (
        "process::fork_start_when_single_threaded",
        fork_start_single_threaded,
    ),
    ("process::fork_start_inner", fork_start_inner),
    ("process::exit_code_of_exit", exit_code_of_exit),
    (
        "process::panic_comes_back_with_backtrace",
        panic_comes_back_with_backtrace,
    ),
    (
        "process::terminate_and_kill_exit_codes",
        terminate_and_kill_exit_codes,
    ),
    (
        "process::forkserver_child_terminate",
        forkserver_child_terminate,
    ),
    (
        "process::child_knows_itself_and_parent",
        child_knows_itself_and_parent,
    ),
    ("process::misuse_errors", misuse_errors),
    (
        "process::active_children_lists_running",
        active_children_lists_running,
    ),
    (
        "process::connection_passed_to_child",
        connection_passed_to_child,
    ),
    ("process::sentinel_in_wait", sentinel_in_wait),
    ("process::many_at_once", many_at_once),
    (
        "process::killed_mid_send_is_an_error_not_a_hang",
        killed_mid_send,
    ),
    (
        "process::no_orphan_when_parent_killed",
        no_orphan_when_parent_killed,
    ),
    (
        "process::executable_copy_runs_other_build_refused",
        executable_copy_runs_other_build_refused,
    ),
];

fn square(x: u64) -> u64 {
    x * x
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

fn boom(n: u32) -> u32 {
    panic!("boom {n}")
}

fn sleep_secs(s: u64) {
    std::thread::sleep(Duration::from_secs(s))
}

fn whoami(_: ()) -> (String, Option<u32>, bool, Vec<u8>) {
    (
        current_process().name,
        parent_process().map(|p| p.pid),
        current_process().daemon,
        current_authkey(),
    )
}

// _TestProcess.test_process (the target's work comes back), per method
fn result_in(method: StartMethod) {
    let p = Process::builder().start_method(method).build(square, 12);
    assert_eq!(p.start_method(), method);
    assert_eq!(p.exitcode(), None);
    p.start().unwrap();
    assert!(p.pid().is_some());
    assert_eq!(p.blocking().result().unwrap(), 144);
    assert_eq!(p.exitcode(), Some(0));
    assert!(!p.is_alive());
    assert!(matches!(
        p.blocking().result(),
        Err(ProcessError::ResultTaken)
    ));
}

fn result_spawn() {
    result_in(StartMethod::Spawn);
}

fn result_forkserver() {
    result_in(StartMethod::Forkserver);
}

// Not in CPython (which forks regardless, and warns since 3.12): fork is
// refused while other threads run, with an error that says why.
fn fork_refused_while_threads_run() {
    let _ = &*RT; // at least the runtime's threads run here
    let p = Process::builder()
        .start_method(StartMethod::Fork)
        .build(square, 2);
    match p.start() {
        Err(ProcessError::Start(StartError::ForkWithThreads(n))) => {
            assert!(n > 1);
            let msg = ProcessError::Start(StartError::ForkWithThreads(n)).to_string();
            assert!(msg.contains("single-threaded"), "{msg}");
        }
        other => panic!("expected ForkWithThreads, got {other:?}"),
    }
}

/// Set in the environment of the single-threaded run of this suite that
/// `fork_start_when_single_threaded` starts.
const FORK_INNER: &str = "CONEX_TEST_FORK_INNER";

// _TestProcess with the fork start method (test_process with 'fork'): this
// suite runs threads, so the fork start runs in a fresh run of this same
// binary, one test, on its main thread (single-threaded)
fn fork_start_single_threaded() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "process::fork_start_inner", "--test-threads=1"])
        .env(FORK_INNER, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The body of `fork_start_when_single_threaded` (a no-op in the suite).
fn fork_start_inner() {
    if std::env::var_os(FORK_INNER).is_none() {
        return;
    }
    let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
    assert_eq!(threads, 1, "the inner run is single-threaded");
    // The child also takes a robust lock and exits holding it: a fork
    // child is itself, not its parent, to the lock, so it is taken over
    // here (a child that kept the parent's cached pid would pass for this
    // process, and never be taken from).
    let lock = conex::multiprocessing::Lock::new().unwrap();
    assert!(lock.try_acquire());
    lock.release().unwrap();
    let p = Process::builder()
        .start_method(StartMethod::Fork)
        .build(square_holding, (lock.clone(), 12));
    p.start().expect("fork is allowed with one thread");
    assert_eq!(p.start_method(), StartMethod::Fork);
    assert_eq!(p.blocking().result().unwrap(), 144);
    assert_eq!(p.exitcode(), Some(0));
    assert!(lock.locked(), "the child exited holding the lock");
    assert!(
        lock.blocking()
            .acquire_timeout(std::time::Duration::from_secs(10)),
        "a dead fork child's lock was not taken over"
    );
}

fn square_holding((lock, x): (conex::multiprocessing::Lock, u64)) -> u64 {
    lock.blocking().acquire();
    x * x
}

// _TestProcess.test_exitcode / test_sys_exit
fn exit_code_of_exit() {
    RT.block_on(async {
        let p = Process::new(exit_with, 3);
        p.start().unwrap();
        p.join().await.unwrap();
        assert_eq!(p.exitcode(), Some(3));
        assert!(matches!(p.result().await, Err(ProcessError::Exited(3))));
    });
}

// Not in CPython's Process (the traceback only prints): the panic comes
// back with its message and the remote backtrace; exit code 1 as Python's.
fn panic_comes_back_with_backtrace() {
    let p = Process::new(boom, 42);
    p.start().unwrap();
    match p.blocking().result() {
        Err(ProcessError::Panicked(e)) => {
            assert_eq!(e.message, "boom 42");
            assert_eq!(e.type_name, "panic");
            assert!(e.backtrace.as_deref().is_some_and(|b| !b.is_empty()));
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(p.exitcode(), Some(1));
}

// _TestProcess.test_terminate / test_kill (exit code -SIGTERM, -SIGKILL)
fn terminate_and_kill_exit_codes() {
    RT.block_on(async {
        let p = Process::new(sleep_secs, 60);
        p.start().unwrap();
        assert!(p.is_alive());
        assert!(!p.join_timeout(Duration::from_millis(50)).await.unwrap());
        assert_eq!(p.exitcode(), None);
        p.terminate().unwrap();
        assert!(p.join_timeout(Duration::from_secs(30)).await.unwrap());
        assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
        assert!(!p.is_alive());
        // Signalling an ended process is a no-op.
        p.terminate().unwrap();

        let q = Process::new(sleep_secs, 60);
        q.start().unwrap();
        q.kill().unwrap();
        q.join().await.unwrap();
        assert_eq!(q.exitcode(), Some(-libc::SIGKILL));
        assert!(matches!(q.result().await, Err(ProcessError::Exited(c)) if c == -libc::SIGKILL));
    });
}

// _TestProcess.test_terminate under the forkserver: the server reports
// the status of its children.
fn forkserver_child_terminate() {
    let p = Process::builder()
        .start_method(StartMethod::Forkserver)
        .build(sleep_secs, 60);
    p.start().unwrap();
    p.terminate().unwrap();
    p.blocking().join().unwrap();
    assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
}

// _TestProcess.test_current / test_parent_process / authkey inheritance
fn child_knows_itself_and_parent() {
    for method in [StartMethod::Spawn, StartMethod::Forkserver] {
        let p = Process::builder()
            .name("worker-7")
            .start_method(method)
            .build(whoami, ());
        p.set_authkey(b"inherited key");
        p.start().unwrap();
        let (name, parent, daemon, key) = p.blocking().result().unwrap();
        assert_eq!(name, "worker-7");
        assert_eq!(parent, Some(std::process::id()));
        assert!(!daemon);
        assert_eq!(key, b"inherited key");
    }
    assert_eq!(current_process().name, "MainProcess");
    assert!(parent_process().is_none());
}

// _TestProcess.test_many_processes' misuse cousins: start twice, join
// before start, close while running (ValueError), use after close.
fn misuse_errors() {
    let p = Process::new(sleep_secs, 60);
    assert!(matches!(p.blocking().join(), Err(ProcessError::NotStarted)));
    assert!(p.sentinel().is_err());
    p.start().unwrap();
    assert!(matches!(p.start(), Err(ProcessError::AlreadyStarted)));
    assert!(matches!(p.close(), Err(ProcessError::StillRunning)));
    assert!(!p.set_daemon(true), "daemon is fixed once started");
    p.kill().unwrap();
    p.blocking().join().unwrap();
    p.close().unwrap();
    assert!(matches!(p.start(), Err(ProcessError::Closed)));
}

// _TestProcess.test_active_children
fn active_children_lists_running() {
    let p = Process::new(sleep_secs, 60);
    assert!(
        !active_children()
            .iter()
            .any(|c| c.pid().is_some() && c.pid() == p.pid())
    );
    p.start().unwrap();
    assert!(active_children().iter().any(|c| c.pid() == p.pid()));
    p.kill().unwrap();
    p.blocking().join().unwrap();
    assert!(!active_children().iter().any(|c| c.pid() == p.pid()));
}

fn echo_twice(c: Connection) -> u32 {
    let b = c.blocking();
    let mut n = 0;
    while let Ok(x) = b.recv::<u32>() {
        b.send(&(x * 2)).unwrap();
        n += 1;
    }
    n
}

// _TestConnection.test_connection with a child process at the far end
fn connection_passed_to_child() {
    RT.block_on(async {
        let (ours, theirs) = pipe(true).unwrap();
        let p = Process::new(echo_twice, theirs);
        p.start().unwrap();
        for i in 0..50u32 {
            ours.send(&i).await.unwrap();
            assert_eq!(ours.recv::<u32>().await.unwrap(), i * 2);
        }
        ours.close();
        assert_eq!(p.result().await.unwrap(), 50);
    });
}

// _TestWait.test_wait_integer / test_neg_timeout: a sentinel among
// connections.
fn sentinel_in_wait() {
    let p = Process::new(sleep_secs, 0);
    p.start().unwrap();
    let s = p.sentinel().unwrap();
    let (r, _w) = pipe(true).unwrap();
    let objects: [&dyn Waitable; 2] = [&r, &s];
    let ready = wait_blocking(&objects, Some(Duration::from_secs(60)));
    assert_eq!(ready, vec![1]);
    assert_eq!(p.exitcode(), Some(0));
}

// _TestProcess.test_many_processes
fn many_at_once() {
    RT.block_on(async {
        let ps: Vec<_> = (0..8u64)
            .map(|i| {
                let m = if i % 2 == 0 {
                    StartMethod::Spawn
                } else {
                    StartMethod::Forkserver
                };
                let p = Process::builder().start_method(m).build(square, i);
                p.start().unwrap();
                p
            })
            .collect();
        for (i, p) in ps.iter().enumerate() {
            assert_eq!(p.result().await.unwrap(), (i * i) as u64);
        }
    });
}

fn flood(c: Connection) {
    let big = vec![7u8; 4 << 20];
    loop {
        if c.blocking().send_bytes(&big).is_err() {
            return;
        }
    }
}

// Fault test: a child killed in the middle of a send: the receiver gets
// an error (truncated frame or end of file), never a hang.
fn killed_mid_send() {
    RT.block_on(async {
        let (ours, theirs) = pipe(true).unwrap();
        let p = Process::new(flood, theirs);
        p.start().unwrap();
        // One whole message first: the child is mid-stream after it.
        assert_eq!(ours.recv_bytes().await.unwrap().len(), 4 << 20);
        p.kill().unwrap();
        let drained = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match ours.recv_bytes().await {
                    Ok(m) => assert_eq!(m.len(), 4 << 20),
                    Err(e) => return e,
                }
            }
        })
        .await
        .expect("a dead peer must end the read");
        assert!(
            drained.is_eof()
                || matches!(
                    drained,
                    conex::multiprocessing::ConnectionError::Protocol(_)
                ),
            "{drained:?}"
        );
        p.join().await.unwrap();
        assert_eq!(p.exitcode(), Some(-libc::SIGKILL));
    });
}

/// Starts a grandchild that sleeps, reports its pid, then sleeps too.
fn parent_of_sleeper(report: Connection) {
    let g = Process::new(sleep_secs, 300);
    g.start().unwrap();
    report.blocking().send(&g.pid().unwrap()).unwrap();
    std::thread::sleep(Duration::from_secs(300));
}

/// Whether `pid` is gone (or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

// _TestProcess (test_parent_process's orphan check) / fault test: kill
// the parent with SIGKILL and see no orphan left.
fn no_orphan_when_parent_killed() {
    let (ours, theirs) = pipe(true).unwrap();
    let p = Process::new(parent_of_sleeper, theirs);
    p.start().unwrap();
    let grandchild: u32 = ours.blocking().recv().unwrap();
    assert!(!gone(grandchild));
    p.kill().unwrap();
    p.blocking().join().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !gone(grandchild) {
        assert!(
            std::time::Instant::now() < deadline,
            "grandchild {grandchild} outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// set_executable (CPython tests it only through its spawn machinery): a
// copy of this binary at another path runs (its bytes are this build's);
// a different build -- the same file with bytes appended, so a different
// size and file -- is refused at the handshake, and the parent goes on.
fn executable_copy_runs_other_build_refused() {
    let builds = crate::OtherBuilds::new("exe-test");
    let p = Process::builder().executable(&builds.copy).build(square, 9);
    p.start().unwrap();
    assert_eq!(p.blocking().result().unwrap(), 81);
    let p = Process::builder()
        .executable(&builds.other)
        .build(square, 9);
    p.start().unwrap();
    let r = p.blocking().result();
    assert!(
        matches!(r, Err(ProcessError::Start(StartError::DifferentBinary))),
        "{r:?}"
    );
    p.blocking().join().unwrap();
    // Refused, then gone: the refused child does not linger.
    assert!(!p.is_alive());
    // And the default executable still works.
    assert_eq!(
        {
            let p = Process::new(square, 3);
            p.start().unwrap();
            p.blocking().result().unwrap()
        },
        9
    );
}

/// Set when this suite's binary runs as [`runner_role`].
pub(crate) const RUNNER_ROLE_ENV: &str = "CONEX_TEST_RUNNER_ROLE";

/// On the main thread: a Runner runs a future that never ends until a
/// Ctrl-C; then, with SIGINT's default back, raises SIGINT at itself.
pub(crate) fn runner_role() -> ! {
    use std::io::Write;
    struct Dropped;
    impl Drop for Dropped {
        fn drop(&mut self) {
            println!("future dropped");
        }
    }
    let runner = conex::tasks::Runner::new().unwrap();
    let r = runner.run(async {
        let _d = Dropped;
        println!("ready");
        std::io::stdout().flush().unwrap();
        std::future::pending::<()>().await
    });
    assert_eq!(r, Err(conex::tasks::RunError::Interrupted));
    // The runner still runs futures after an interrupt.
    assert_eq!(runner.run(async { 7 }), Ok(7));
    println!("interrupted");
    std::io::stdout().flush().unwrap();
    // SAFETY: raise(3) with a signal number.
    unsafe { libc::raise(libc::SIGINT) };
    std::thread::sleep(Duration::from_secs(5));
    std::process::exit(0)
}

// asyncio.Runner (test_runners.py, test_signal_handler_...): Ctrl-C while
// `run` runs cancels the main task and raises KeyboardInterrupt; the
// SIGINT handler is the default again afterwards. Here: a run of this
// suite's binary gets SIGINT while its Runner waits; the future is
// dropped, `run` is `Interrupted`, and a later SIGINT ends the process.
fn ctrl_c_cancels_the_main_future() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(RUNNER_ROLE_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // SAFETY: kill(2) of our own child by its pid.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        rest.lines().collect::<Vec<_>>(),
        ["future dropped", "interrupted"],
        "{rest}"
    );
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}
