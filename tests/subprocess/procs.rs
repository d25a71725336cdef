//! Popen's streams, signals, process groups, drop and cancellation, the
//! Popen keywords, and the blocking facade in each runtime context.

use std::io::{Read, Write as _};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use conex::subprocess::{Command, PIPE, Popen, STDOUT, signal};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::{eventually, process_gone, temp_dir};

// CPython: ProcessTestCase.test_writes_before_communicate, test_stdout_pipe
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_async_reads_and_writes() {
    let mut p = Command::new(["sh", "-c", "while read l; do echo \"<$l>\"; done"])
        .stdin(PIPE)
        .stdout(PIPE)
        .popen()
        .unwrap();
    let mut stdin = p.stdin.take().unwrap();
    let mut lines = BufReader::new(p.stdout.take().unwrap()).lines();
    for word in ["one", "two", "three"] {
        stdin
            .write_all(format!("{word}\n").as_bytes())
            .await
            .unwrap();
        let echoed = lines.next_line().await.unwrap().unwrap();
        assert_eq!(echoed, format!("<{word}>"));
    }
    stdin.shutdown().await.unwrap(); // closes the pipe: end of file
    assert_eq!(lines.next_line().await.unwrap(), None);
    assert_eq!(p.wait().await.unwrap(), 0);
}

// futures' AsyncRead / AsyncWrite, the same streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_implement_futures_io() {
    let mut p = Command::new(["cat"])
        .stdin(PIPE)
        .stdout(PIPE)
        .popen()
        .unwrap();
    let mut stdin = p.stdin.take().unwrap();
    let mut stdout = p.stdout.take().unwrap();
    let data = vec![7u8; 200_000];
    let writer = async {
        futures::io::AsyncWriteExt::write_all(&mut stdin, &data)
            .await
            .unwrap();
        futures::io::AsyncWriteExt::close(&mut stdin).await.unwrap();
    };
    let mut got = Vec::new();
    let reader = futures::io::AsyncReadExt::read_to_end(&mut stdout, &mut got);
    let ((), n) = futures::join!(writer, reader);
    assert_eq!(n.unwrap(), data.len());
    assert_eq!(got, data);
    assert_eq!(p.wait().await.unwrap(), 0);
}

// The streams' blocking facades, from a plain OS thread with no runtime.
#[test]
fn stream_blocking_facades_on_a_plain_thread() {
    std::thread::spawn(|| {
        let mut p = Command::new(["tr", "a-z", "A-Z"])
            .stdin(PIPE)
            .stdout(PIPE)
            .popen()
            .unwrap();
        let mut stdin = p.stdin.take().unwrap();
        let mut stdout = p.stdout.take().unwrap();
        let big = "abc".repeat(100_000);
        let writer = std::thread::spawn(move || {
            stdin.blocking().write_all(big.as_bytes()).unwrap();
        });
        let mut out = String::new();
        stdout.blocking().read_to_string(&mut out).unwrap();
        writer.join().unwrap();
        assert_eq!(out, "ABC".repeat(100_000));
        assert_eq!(p.blocking().wait().unwrap(), 0);
        // Small reads through std's BufRead.
        let mut p = Command::new(["printf", "x\\ny\\n"])
            .stdout(PIPE)
            .popen()
            .unwrap();
        let mut stdout = p.stdout.take().unwrap();
        let mut lines = Vec::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout.blocking())) {
            lines.push(line.unwrap());
        }
        assert_eq!(lines, ["x", "y"]);
        p.blocking().wait().unwrap();
    })
    .join()
    .unwrap();
}

// The hand-made pipeline of Python's docs: p2's stdin is p1's stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_pipeline_through_owned_fd() {
    let mut p1 = Command::new(["printf", "3\\n1\\n2\\n"])
        .stdout(PIPE)
        .popen()
        .unwrap();
    let fd = p1.stdout.take().unwrap().into_owned_fd().unwrap();
    let mut p2 = Command::new(["sort"])
        .stdin(fd)
        .stdout(PIPE)
        .popen()
        .unwrap();
    let (out, _) = p2.communicate(b"").await.unwrap();
    assert_eq!(out.unwrap(), b"1\n2\n3\n");
    assert_eq!(p1.wait().await.unwrap(), 0);
}

// CPython: POSIXProcessTestCase.test_send_signal (a handler in the child)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signal_reaches_a_trap() {
    let mut p = Command::new([
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 0' USR1; echo ready; while :; do sleep 0.05; done",
    ])
    .stdout(PIPE)
    .popen()
    .unwrap();
    let mut stdout = p.stdout.take().unwrap();
    let mut ready = [0u8; 6];
    stdout.read_exact(&mut ready).await.unwrap();
    assert_eq!(&ready, b"ready\n");
    p.send_signal(signal::SIGUSR1).unwrap();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"got-usr1\n");
    assert_eq!(p.wait().await.unwrap(), 0);
}

// CPython: POSIXProcessTestCase.test_start_new_session, test_process_group_0
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_groups() {
    // SAFETY: getpgrp takes nothing and cannot fail.
    let ours = unsafe { libc::getpgrp() };
    // The child's pgid is its own pid, not ours.
    let mut p = Command::new(["sleep", "30"])
        .process_group(0)
        .popen()
        .unwrap();
    // SAFETY: a plain query by pid; the child is not reaped yet.
    let pgid = unsafe { libc::getpgid(p.pid() as i32) };
    assert_eq!(pgid, p.pid() as i32);
    assert_ne!(pgid, ours);
    assert!(p.leads_group());
    p.send_signal_group(signal::SIGTERM).unwrap();
    assert_eq!(p.wait().await.unwrap(), -15);
    // Once the leader is reaped its id is no longer ours: refused.
    let e = p.send_signal_group(signal::SIGTERM).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    // A child in our own group may not be group-signalled.
    let mut q = Command::new(["true"]).popen().unwrap();
    assert!(!q.leads_group());
    assert!(q.send_signal_group(signal::SIGTERM).is_err());
    q.wait().await.unwrap();
    let mut s = Command::new(["sleep", "30"])
        .start_new_session()
        .popen()
        .unwrap();
    // SAFETY: a plain query by pid; the child is not reaped yet.
    let sid = unsafe { libc::getsid(s.pid() as i32) };
    assert_eq!(sid, s.pid() as i32);
    s.kill().unwrap();
    assert_eq!(s.wait().await.unwrap(), -9);
}

// A dropped Popen leaves its child running (Python's default) and reaps it
// later; kill_on_drop kills it, and its whole group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_keeps_running_or_kills() {
    // The child answers after its Popen is gone: it was not killed.
    let mut p = Command::new(["sh", "-c", "read x; echo still-$x"])
        .stdin(PIPE)
        .stdout(PIPE)
        .popen()
        .unwrap();
    let (mut stdin, stdout) = (p.stdin.take().unwrap(), p.stdout.take().unwrap());
    let pid = p.pid();
    drop(p);
    stdin.write_all(b"here\n").await.unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.unwrap();
    assert_eq!(line, "still-here\n", "default drop must not kill");
    drop(stdin);
    assert!(
        eventually(Duration::from_secs(5), || {
            std::fs::metadata(format!("/proc/{pid}")).is_err()
        }),
        "a dropped child is reaped in the background"
    );

    let mut p = Command::shell("sleep 30 & echo $!; wait")
        .stdout(PIPE)
        .process_group(0)
        .kill_on_drop(true)
        .popen()
        .unwrap();
    let mut line = String::new();
    BufReader::new(p.stdout.take().unwrap())
        .read_line(&mut line)
        .await
        .unwrap();
    let grandchild: u32 = line.trim().parse().unwrap();
    let pid = p.pid();
    drop(p);
    assert!(eventually(Duration::from_secs(5), || process_gone(pid)));
    assert!(eventually(Duration::from_secs(5), || process_gone(
        grandchild
    )));
}

// Dropping a run future (cancellation) kills its child, as Python's run
// kills its child on any exception.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_run_kills_the_child() {
    let dir = temp_dir("cancel-run");
    let pidfile = dir.join("pid");
    let script = format!(
        "echo $$ > {}.tmp; mv {0}.tmp {0}; exec sleep 30",
        pidfile.display()
    );
    let run = Command::shell(script).run();
    // Cut the run short once the child is surely running.
    let seen = async {
        while !pidfile.exists() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        r = run => panic!("the run ended on its own: {r:?}"),
        () = seen => {}
    }
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || process_gone(pid)),
        "child {pid} survived"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

// Cancellation at every await point of communicate loses nothing: cut it
// short again and again, then let it finish; all the output is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn communicate_cancelled_anywhere_loses_nothing() {
    let data: Vec<u8> = (0..(2 << 20)).map(|i| (i * 7 % 256) as u8).collect();
    let mut p = Command::shell("cat; echo tail >&2")
        .stdin(PIPE)
        .capture_output()
        .popen()
        .unwrap();
    let mut first = true;
    let mut cuts = 0;
    let (out, err) = loop {
        let input: &[u8] = if first { &data } else { b"" };
        first = false;
        let fut = p.communicate(input);
        match tokio::time::timeout(Duration::from_micros(300), fut).await {
            Ok(r) => break r.unwrap(),
            Err(_) => cuts += 1,
        }
    };
    assert!(cuts > 0, "the communicate was never cut");
    assert!(
        out.unwrap() == data,
        "output lost or reordered across {cuts} cancellations"
    );
    assert_eq!(err.unwrap(), b"tail\n");
}

// CPython: ProcessTestCase.test_executable_takes_precedence
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executable_replaces_argv0() {
    let out = Command::new(["pretend-name", "-c", "echo $0"])
        .executable("/bin/sh")
        .check_output()
        .await
        .unwrap();
    assert_eq!(out, b"pretend-name\n");
}

// CPython: POSIXProcessTestCase.test_umask
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn umask_applies_in_the_child() {
    let out = Command::new(["sh", "-c", "umask"])
        .umask(0o027)
        .text()
        .check_output()
        .await
        .unwrap();
    assert_eq!(out.trim(), "0027");
}

// CPython: POSIXProcessTestCase.test_pass_fds, test_close_fds, test_close_fds_after_preexec
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_fds_and_nothing_else_leaks() {
    let (r, w) = std::io::pipe().unwrap();
    let w: OwnedFd = w.into();
    let n = w.as_raw_fd();
    let code = Command::new(["sh", "-c", &format!("echo through-fd > /dev/fd/{n}")])
        .pass_fd(w)
        .call()
        .await
        .unwrap();
    assert_eq!(code, 0);
    let mut got = String::new();
    let mut r = r;
    r.read_to_string(&mut got).unwrap(); // the parent's copy of w was closed
    assert_eq!(got, "through-fd\n");
    // The child sees 0, 1, 2, ls's own directory fd, and only what this
    // process inherited without close-on-exec: nothing conex opened leaks.
    let (_keep_r, keep_w) = std::io::pipe().unwrap();
    let inheritable: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| {
            // SAFETY: F_GETFD only reads flags; a closed fd gives -1.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            flags >= 0 && flags & libc::FD_CLOEXEC == 0
        })
        .collect();
    let child_fds = |cmd: Command| async {
        let out = cmd.stderr(PIPE).text().check_output().await.unwrap();
        out.split_whitespace()
            .map(|f| f.parse::<i32>().unwrap())
            .collect::<Vec<_>>()
    };
    let fds = child_fds(Command::new(["ls", "/proc/self/fd"])).await;
    let extra: Vec<_> = fds
        .iter()
        .filter(|&&f| f > 2 && !inheritable.contains(&f))
        .collect();
    assert!(
        extra.len() <= 1,
        "leaked fds: {fds:?} (inheritable: {inheritable:?})"
    );
    // close_fds (Python's default) closes the inherited ones too.
    let fds = child_fds(Command::new(["ls", "/proc/self/fd"]).close_fds()).await;
    assert!(
        fds.iter().filter(|&&f| f > 2).count() <= 1,
        "close_fds left {fds:?}"
    );
    // ... but keeps the passed ones.
    let (_r2, w2) = std::io::pipe().unwrap();
    let w2: OwnedFd = w2.into();
    let n2 = w2.as_raw_fd();
    let fds = child_fds(
        Command::new(["ls", "/proc/self/fd"])
            .close_fds()
            .pass_fd(w2),
    )
    .await;
    assert!(fds.contains(&n2), "{fds:?} lacks the passed {n2}");
    drop(keep_w);
    // A spawn failure still reports under close_fds.
    let err = Command::new(["conex-no-such-program"])
        .close_fds()
        .popen()
        .unwrap_err();
    assert!(err.as_spawn().is_some());
}

// CPython: ProcessTestCase.test_pipesizes
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipesize_sets_the_buffer() {
    let mut p = Command::new(["cat"])
        .stdin(PIPE)
        .stdout(PIPE)
        .pipesize(256 * 1024)
        .popen()
        .unwrap();
    for fd in [
        p.stdin.as_ref().unwrap().as_raw_fd(),
        p.stdout.as_ref().unwrap().as_raw_fd(),
    ] {
        // SAFETY: F_GETPIPE_SZ only reads; the pipe is open (p owns it).
        let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
        assert_eq!(size, 256 * 1024);
    }
    p.communicate(b"").await.unwrap();
}

// The blocking facade from a plain thread, and inside each runtime.
#[test]
fn blocking_facade_on_a_plain_thread() {
    let h = std::thread::spawn(|| {
        let out = Command::new(["echo", "plain"])
            .text()
            .blocking()
            .check_output()
            .unwrap();
        let code = conex::subprocess::call_blocking(["sh", "-c", "exit 2"]).unwrap();
        (out, code)
    });
    assert_eq!(h.join().unwrap(), ("plain\n".to_owned(), 2));
    assert_eq!(
        conex::subprocess::check_output_blocking(["printf", "x"]).unwrap(),
        b"x"
    );
    assert!(conex::subprocess::check_call_blocking(["false"]).is_err());
    assert_eq!(
        conex::subprocess::getoutput_blocking("echo g").unwrap(),
        "g"
    );
}

// On the only worker of a multi-thread runtime the facade steps aside with
// block_in_place: the task that feeds the child still runs. Without it the
// child would never get its byte and the call would time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn blocking_facade_inside_a_multi_thread_runtime() {
    let (r, mut w) = std::io::pipe().unwrap();
    let blocking = tokio::spawn(async move {
        let feeder = tokio::spawn(async move {
            tokio::task::yield_now().await;
            w.write_all(b"!").unwrap();
        });
        let out = Command::new(["head", "-c", "1"])
            .stdin(std::os::fd::OwnedFd::from(r))
            .timeout(Duration::from_secs(20))
            .blocking()
            .check_output();
        feeder.await.unwrap();
        out
    });
    assert_eq!(blocking.await.unwrap().unwrap(), b"!");
}

#[tokio::test]
#[should_panic(expected = "current_thread")]
async fn blocking_facade_on_a_current_thread_runtime_panics_naming_the_fix() {
    let _ = Command::new(["true"]).blocking().call();
}

// Python's free functions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_functions() {
    use conex::subprocess as sp;
    assert_eq!(sp::call(["sh", "-c", "exit 3"]).await.unwrap(), 3);
    sp::check_call(["true"]).await.unwrap();
    assert_eq!(
        sp::check_call(["false"])
            .await
            .unwrap_err()
            .as_called()
            .unwrap()
            .returncode,
        1
    );
    assert_eq!(sp::check_output(["echo", "o"]).await.unwrap(), b"o\n");
    assert_eq!(sp::getoutput("echo a; echo b >&2").await.unwrap(), "a\nb");
    let p = Popen::new(["true"]).unwrap();
    assert!(format!("{p:?}").contains("Popen"));
    // stderr=STDOUT with stdout inherited goes to our stdout, not a pipe.
    let done = Command::new(["true"]).stderr(STDOUT).run().await.unwrap();
    assert_eq!(done.stderr, None);
}

// The handles follow the crate's conventions.
#[test]
fn handles_are_send_sync_and_futures_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Popen>();
    send_sync::<Command>();
    send_sync::<conex::subprocess::ChildStdout>();
    send_sync::<conex::subprocess::ChildStdin>();
    send_sync::<conex::subprocess::SubprocessError>();
    let mut p = Command::new(["true"]).popen().unwrap();
    send(&p.wait());
    send(&p.communicate(b""));
    send(&Command::new(["true"]).run());
    send(&conex::subprocess::getstatusoutput("true"));
    conex::subprocess::call_blocking(["true"]).unwrap();
}

// Dropping wait() loses nothing: the child is still there to wait for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_wait_loses_nothing() {
    let mut p = Command::new(["sh", "-c", "read x; exit 6"])
        .stdin(PIPE)
        .popen()
        .unwrap();
    for _ in 0..3 {
        assert!(
            tokio::time::timeout(Duration::from_millis(20), p.wait())
                .await
                .is_err()
        );
    }
    assert_eq!(p.returncode(), None);
    p.stdin.take(); // end of file: the child exits
    assert_eq!(p.wait().await.unwrap(), 6);
}

// The async face polled by an executor that is not tokio: the pipes, the
// pidfd and the timer live on conex's own runtime.
#[test]
fn async_face_without_a_tokio_runtime() {
    let done = futures::executor::block_on(
        Command::new(["sh", "-c", "sleep 0.05; echo outside"])
            .stdout(PIPE)
            .timeout(Duration::from_secs(30))
            .run(),
    )
    .unwrap();
    assert_eq!(done.stdout.unwrap(), b"outside\n");
    let err = futures::executor::block_on(
        Command::new(["sleep", "30"])
            .timeout(Duration::from_millis(100))
            .run(),
    )
    .unwrap_err();
    assert!(err.as_timeout().is_some());
}

// kill_on_drop reaches the group even when its leader has already exited
// (unreaped, it still pins the group id), e.g. a cancelled run whose shell
// is done while a grandchild holds the pipes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_on_drop_reaches_the_group_of_an_exited_leader() {
    let mut p = Command::shell("sleep 30 & echo $!")
        .stdout(PIPE)
        .process_group(0)
        .kill_on_drop(true)
        .popen()
        .unwrap();
    let mut line = String::new();
    BufReader::new(p.stdout.take().unwrap())
        .read_line(&mut line)
        .await
        .unwrap();
    let grandchild: u32 = line.trim().parse().unwrap();
    let leader = p.pid();
    // The shell exits at once; wait until it is a zombie (exited, unreaped).
    assert!(eventually(Duration::from_secs(10), || process_gone(leader)));
    drop(p);
    assert!(
        eventually(Duration::from_secs(10), || process_gone(grandchild)),
        "the group outlived its dropped leader"
    );
}

// After a timeout, run reads what is in the pipes and returns, even while a
// surviving grandchild keeps writing to them as fast as it can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_drain_does_not_chase_a_writer() {
    let start = std::time::Instant::now();
    let err = Command::shell("yes & echo $! >&2; exec sleep 30")
        .capture_output()
        .timeout(Duration::from_millis(500))
        .run()
        .await
        .unwrap_err();
    let t = err.as_timeout().unwrap();
    let yes: i32 = String::from_utf8_lossy(t.stderr.as_deref().unwrap())
        .trim()
        .parse()
        .expect("the writer's pid");
    // SAFETY: a plain system call on the writer's pid.
    unsafe { libc::kill(yes, libc::SIGKILL) };
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(t.stdout.as_ref().is_some_and(|o| o.starts_with(b"y\ny\n")));
}

// A child whose Popen waited on one runtime and was dropped while that
// runtime is idle (nothing drives its reactor), or after it is gone, is
// still reaped (on conex's own runtime).
#[test]
fn dropped_child_is_reaped_whatever_became_of_its_runtime() {
    for drop_runtime in [false, true] {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut p = Command::new(["sh", "-c", "read x"])
            .stdin(PIPE)
            .popen()
            .unwrap();
        rt.block_on(async {
            // Registers the pidfd with this runtime's reactor.
            assert!(
                tokio::time::timeout(Duration::from_millis(20), p.wait())
                    .await
                    .is_err()
            );
        });
        let rt = if drop_runtime {
            drop(rt);
            None
        } else {
            Some(rt)
        };
        let pid = p.pid();
        let stdin = p.stdin.take();
        drop(p);
        drop(stdin); // the child exits now, with no Popen and no runtime of ours
        assert!(
            eventually(Duration::from_secs(10), || {
                std::fs::metadata(format!("/proc/{pid}")).is_err()
            }),
            "child {pid} left a zombie (runtime dropped: {drop_runtime})"
        );
        drop(rt);
    }
}

// CPython: ProcessTestCase.test_executable_replaces_shell
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executable_replaces_the_shell() {
    let out = Command::shell("echo $0")
        .executable("/bin/sh")
        .check_output()
        .await
        .unwrap();
    assert_eq!(out, b"/bin/sh\n");
    let err = Command::shell("true")
        .executable("/conex/no/shell")
        .popen()
        .unwrap_err();
    assert_eq!(err.as_spawn().unwrap().program(), "/conex/no/shell");
}

/// The child's ignored-signals mask (`SigIgn` of /proc/self/status, read by
/// `cat` itself).
async fn child_sig_ign(cmd: Command<conex::subprocess::Bytes>) -> u64 {
    let out = cmd.text().check_output().await.unwrap();
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("a SigIgn line");
    u64::from_str_radix(line.trim(), 16).unwrap()
}

// CPython: POSIXProcessTestCase.test_restore_signals. This process ignores
// SIGPIPE (Rust's runtime does, as Python's): by default the child gets it
// back at its default, with restore_signals(false) it keeps it ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_signals_decides_the_childs_sigpipe() {
    let sigpipe = 1u64 << (libc::SIGPIPE - 1);
    let restored = child_sig_ign(Command::new(["cat", "/proc/self/status"])).await;
    assert_eq!(restored & sigpipe, 0, "SIGPIPE back at its default");
    let kept =
        child_sig_ign(Command::new(["cat", "/proc/self/status"]).restore_signals(false)).await;
    assert_ne!(kept & sigpipe, 0, "SIGPIPE still ignored");
}

// CPython: POSIXProcessTestCase.test_extra_groups (and its
// test_extra_groups_invalid_gid_t_values: an OS refusal is an error).
// Root may set any groups; anyone else is refused, as an error of the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_groups_set_the_childs_groups() {
    let r = Command::new(["id", "-G"])
        .extra_groups([54321, 54322])
        .text()
        .check_output()
        .await;
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let out = r.unwrap();
        let groups: Vec<&str> = out.split_whitespace().collect();
        assert!(
            groups.contains(&"54321") && groups.contains(&"54322"),
            "{out}"
        );
    } else {
        assert!(r.is_err(), "setgroups is refused to a user");
    }
}

// CPython: POSIXProcessTestCase.test_preexec and test_preexec_exception:
// the hook runs in the child before the exec, and its error fails the
// start with that error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_exec_runs_in_the_child_and_its_error_fails_the_start() {
    // SAFETY: umask(2) is async-signal-safe; the hook allocates nothing.
    let cmd = unsafe {
        Command::new(["sh", "-c", "umask"]).pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        })
    };
    assert_eq!(cmd.text().check_output().await.unwrap().trim(), "0077");
    // SAFETY: the hook only builds an error from a number.
    let failing = unsafe {
        Command::new(["true"]).pre_exec(|| Err(std::io::Error::from_raw_os_error(libc::EACCES)))
    };
    match failing.call().await {
        Err(conex::subprocess::SubprocessError::Spawn(e)) => {
            assert_eq!(e.io_error().raw_os_error(), Some(libc::EACCES), "{e}");
            assert_eq!(e.program(), "true");
        }
        other => panic!("expected the hook's error as a start error, got {other:?}"),
    }
}
