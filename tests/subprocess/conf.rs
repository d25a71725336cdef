//! The conformance suite: every test runs over the async face and the
//! blocking facade.

use std::time::{Duration, Instant};

use conex::subprocess::{Command, DEVNULL, PIPE, Pipeline, STDOUT, SubprocessError};

use crate::{Face, eventually, process_gone, temp_dir};

// CPython: RunFuncTestCase.test_returncode
pub fn run_returncode<F: Face>() {
    let done = F::run(Command::new(["sh", "-c", "exit 47"])).unwrap();
    assert_eq!(done.returncode, 47);
    assert_eq!(done.args, ["sh", "-c", "exit 47"]);
    assert!(done.stdout.is_none() && done.stderr.is_none());
    assert_eq!(done.check_returncode().unwrap_err().returncode, 47);
    assert!(F::run(Command::new(["true"])).unwrap().success());
}

// CPython: RunFuncTestCase.test_check, test_check_zero
pub fn run_check<F: Face>() {
    let err = F::run(
        Command::shell("echo partial; echo why >&2; exit 3")
            .capture_output()
            .check(),
    )
    .unwrap_err();
    let called = err.as_called().expect("CalledProcessError");
    assert_eq!(called.returncode, 3);
    assert_eq!(called.cmd[0], "/bin/sh");
    assert_eq!(called.stdout.as_deref(), Some(&b"partial\n"[..]));
    assert_eq!(called.stderr.as_deref(), Some(&b"why\n"[..]));
    assert!(err.to_string().contains("non-zero exit status 3"), "{err}");
    assert_eq!(
        F::run(Command::new(["true"]).check()).unwrap().returncode,
        0
    );
}

// CPython: RunFuncTestCase.test_capture_stdout, test_capture_stderr,
// test_capture_output
pub fn run_capture_stdout_stderr<F: Face>() {
    let done = F::run(Command::shell("printf out; printf err >&2").capture_output()).unwrap();
    assert_eq!(done.stdout.unwrap(), b"out");
    assert_eq!(done.stderr.unwrap(), b"err");
    let only_err = F::run(
        Command::shell("printf out; printf err >&2")
            .stdout(DEVNULL)
            .stderr(PIPE),
    )
    .unwrap();
    assert_eq!(only_err.stdout, None);
    assert_eq!(only_err.stderr.unwrap(), b"err");
}

// CPython: RunFuncTestCase.test_check_output_input_arg, ProcessTestCase.test_stdin_pipe
pub fn run_input<F: Face>() {
    let done = F::run(
        Command::new(["tr", "a-z", "A-Z"])
            .input("pear")
            .stdout(PIPE),
    )
    .unwrap();
    assert_eq!(done.stdout.unwrap(), b"PEAR");
    // Empty input still closes stdin: cat ends.
    let done = F::run(Command::new(["cat"]).input(Vec::new()).stdout(PIPE)).unwrap();
    assert_eq!(done.stdout.unwrap(), b"");
}

// CPython: ProcessTestCase.test_stdout_stderr_pipe, test_check_output_stderr
pub fn run_stderr_to_stdout<F: Face>() {
    let out = F::check_output(Command::shell("echo a; echo b >&2; echo c").stderr(STDOUT)).unwrap();
    assert_eq!(out, b"a\nb\nc\n");
}

// CPython: ProcessTestCase.test_stdout_devnull, test_stderr_devnull, test_stdin_devnull
pub fn run_devnull<F: Face>() {
    let done = F::run(
        Command::shell("cat; echo done; echo noise >&2")
            .stdin(DEVNULL)
            .stdout(PIPE)
            .stderr(DEVNULL),
    )
    .unwrap();
    assert_eq!(done.stdout.unwrap(), b"done\n");
    assert_eq!(done.stderr, None);
}

// CPython: ProcessTestCase.test_stdout_fileobj, test_stdout_filedes
pub fn run_stdout_to_file<F: Face>() {
    let dir = temp_dir("stdout-file");
    let path = dir.join("out.txt");
    let file = std::fs::File::create(&path).unwrap();
    let code = F::call(
        Command::shell("echo to-file; echo also >&2")
            .stdout(file)
            .stderr(STDOUT),
    )
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "to-file\nalso\n");
    std::fs::remove_dir_all(dir).unwrap();
}

// CPython: ProcessTestCase.test_stdin_fileobj, test_stdin_filedes
pub fn run_stdin_from_file<F: Face>() {
    let dir = temp_dir("stdin-file");
    let path = dir.join("in.txt");
    std::fs::write(&path, "from a file\n").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let out = F::check_output(Command::new(["cat"]).stdin(file)).unwrap();
    assert_eq!(out, b"from a file\n");
    std::fs::remove_dir_all(dir).unwrap();
}

// CPython: ProcessTestCase.test_universal_newlines_communicate,
// test_universal_newlines_and_text
pub fn run_text_universal_newlines<F: Face>() {
    let done = F::run(
        Command::new(["printf", "line1\\r\\nline2\\rline3\\n"])
            .stdout(PIPE)
            .text(),
    )
    .unwrap();
    assert_eq!(done.stdout.as_deref(), Some("line1\nline2\nline3\n"));
}

// CPython: ProcessTestCase.test_communicate_errors (errors="ignore"/strict)
pub fn run_text_strict_and_lossy<F: Face>() {
    let err = F::run(Command::new(["printf", "ok\\377"]).stdout(PIPE).text()).unwrap_err();
    let SubprocessError::Decode(d) = err else {
        panic!("expected a DecodeError, got {err:?}")
    };
    assert_eq!(d.stream, "stdout");
    assert_eq!(d.bytes, b"ok\xff");
    let done = F::run(
        Command::new(["printf", "ok\\377"])
            .stdout(PIPE)
            .text_lossy(),
    )
    .unwrap();
    assert_eq!(done.stdout.as_deref(), Some("ok\u{fffd}"));
}

// CPython: RunFuncTestCase.test_timeout, ProcessTestCase.test_check_output_timeout
pub fn run_timeout_kills_and_keeps_output<F: Face>() {
    let start = Instant::now();
    let err = F::run(
        Command::new([
            "sh",
            "-c",
            "echo before; echo err-before >&2; exec sleep 30",
        ])
        .capture_output()
        .timeout(Duration::from_secs(1)),
    )
    .unwrap_err();
    let elapsed = start.elapsed();
    let t = err.as_timeout().expect("TimeoutExpired");
    assert_eq!(t.timeout, Duration::from_secs(1));
    assert_eq!(t.stdout.as_deref(), Some(&b"before\n"[..]));
    assert_eq!(t.stderr.as_deref(), Some(&b"err-before\n"[..]));
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

// CPython: RunFuncTestCase.test_run_with_shell_timeout_and_capture_output
// (a grandchild keeps the pipes open after the shell is killed: the run
// must not wait for it)
pub fn run_timeout_with_grandchild_holding_pipe<F: Face>() {
    let start = Instant::now();
    let err = F::run(
        Command::shell("sleep 30 & echo $!; wait")
            .capture_output()
            .timeout(Duration::from_secs(1)),
    )
    .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let t = err.as_timeout().unwrap();
    let out = String::from_utf8(t.stdout.clone().unwrap()).unwrap();
    let grandchild: i32 = out.trim().parse().expect("the grandchild's pid");
    // Not in a group of its own: the grandchild outlived the kill. Clean up.
    // SAFETY: plain system call.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
}

// CPython: POSIXProcessTestCase.test_process_group_0 / test_start_new_session,
// with the timeout reaching a grandchild through the group.
pub fn run_timeout_kills_process_group<F: Face>() {
    let err = F::run(
        Command::shell("sleep 30 & echo $!; wait")
            .stdout(PIPE)
            .process_group(0)
            .timeout(Duration::from_secs(1)),
    )
    .unwrap_err();
    let t = err.as_timeout().unwrap();
    let out = String::from_utf8(t.stdout.clone().unwrap()).unwrap();
    let grandchild: u32 = out.trim().parse().expect("the grandchild's pid");
    assert!(
        eventually(Duration::from_secs(5), || process_gone(grandchild)),
        "grandchild {grandchild} survived the group kill"
    );
}

// CPython: ProcessTestCase.test_env, test_empty_env, test_cwd
pub fn run_env_and_cwd<F: Face>() {
    // Replace: only what we set.
    let out = F::check_output(
        Command::new(["/usr/bin/env"])
            .env_clear()
            .env("ONLY", "this"),
    )
    .unwrap();
    assert_eq!(out, b"ONLY=this\n");
    // Extend: the inherited PATH is still there.
    let out = F::check_output(
        Command::shell("echo $CONEX_T:${PATH:+has-path}").env("CONEX_T", "extended"),
    )
    .unwrap();
    assert_eq!(out, b"extended:has-path\n");
    // Remove one.
    let out = F::check_output(
        Command::shell("echo ${HOME:-no-home}")
            .env("HOME", "/x")
            .env_remove("HOME"),
    )
    .unwrap();
    assert_eq!(out, b"no-home\n");
    // cwd.
    let dir = temp_dir("cwd");
    let out = F::check_output(Command::new(["pwd", "-P"]).cwd(&dir)).unwrap();
    let want = std::fs::canonicalize(&dir).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().trim_end(),
        want.to_str().unwrap()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

// CPython: ProcessTestCase.test_call_seq, test_check_call_zero,
// test_check_call_nonzero, test_check_output, test_check_output_nonzero
pub fn call_and_check_output<F: Face>() {
    assert_eq!(F::call(Command::new(["sh", "-c", "exit 5"])).unwrap(), 5);
    assert_eq!(
        F::check_output(Command::new(["echo", "hi"]).text()).unwrap(),
        "hi\n"
    );
    let err = F::check_output(Command::shell("echo some; exit 9")).unwrap_err();
    let c = err.as_called().unwrap();
    assert_eq!(
        (c.returncode, c.stdout.as_deref()),
        (9, Some(&b"some\n"[..]))
    );
}

// CPython: ProcessTestCase.test_getoutput
pub fn getstatusoutput_merges_and_strips<F: Face>() {
    assert_eq!(
        F::getstatusoutput("echo xyzzy").unwrap(),
        (0, "xyzzy".to_owned())
    );
    let (code, out) = F::getstatusoutput("echo one; echo two >&2; exit 3").unwrap();
    assert_eq!((code, out.as_str()), (3, "one\ntwo"));
    // Only one trailing newline goes.
    assert_eq!(F::getstatusoutput("printf 'a\\n\\n'").unwrap().1, "a\n");
    let (code, _) = F::getstatusoutput("no-such-command-conex-xyz 2>/dev/null").unwrap();
    assert_eq!(code, 127);
}

// CPython: ProcessTestCase.test_communicate_pipe_buf (the deadlock case:
// several MiB on stdout and stderr at once, written interleaved)
pub fn communicate_large_both_pipes<F: Face>() {
    const N: usize = 4 << 20;
    let script = format!(
        "head -c {N} /dev/zero | tr '\\0' o & head -c {N} /dev/zero | tr '\\0' e >&2 & wait"
    );
    let mut p = Command::shell(script).capture_output().popen().unwrap();
    let (out, err) = F::communicate(&mut p, b"").unwrap();
    let (out, err) = (out.unwrap(), err.unwrap());
    assert_eq!(out.len(), N);
    assert_eq!(err.len(), N);
    assert!(out.iter().all(|&b| b == b'o'));
    assert!(err.iter().all(|&b| b == b'e'));
    assert_eq!(p.returncode(), Some(0));
}

// CPython: ProcessTestCase.test_communicate (large input, echoed back:
// neither side may block the other)
pub fn communicate_large_input_and_output<F: Face>() {
    let data: Vec<u8> = (0..(3 << 20)).map(|i| (i % 251) as u8).collect();
    let mut p = Command::shell("cat; cat /dev/null >&2")
        .stdin(PIPE)
        .capture_output()
        .popen()
        .unwrap();
    let (out, err) = F::communicate(&mut p, &data).unwrap();
    assert!(out.unwrap() == data, "echoed data differs");
    assert_eq!(err.unwrap(), b"");
    assert_eq!(p.returncode(), Some(0));
}

// CPython: ProcessTestCase.test_communicate_timeout,
// test_communicate_timeout_large_output
pub fn communicate_timeout_retry_loses_nothing<F: Face>() {
    use std::io::Write;
    use std::os::fd::{AsRawFd, OwnedFd};
    // The child writes, then waits at a gate (a pipe we hold) before its
    // last words: every communicate_timeout before we open it times out.
    let (gate_r, mut gate_w) = std::io::pipe().unwrap();
    let gate_r: OwnedFd = gate_r.into();
    let n = gate_r.as_raw_fd();
    let script = format!(
        "printf first; printf e1 >&2; head -c 300000 /dev/zero | tr '\\0' x; \
         head -c 1 /dev/fd/{n} >/dev/null; printf last; printf e2 >&2"
    );
    let mut p = Command::shell(script)
        .capture_output()
        .pass_fd(gate_r)
        .popen()
        .unwrap();
    let mut partial = Vec::new();
    for _ in 0..400 {
        let err = F::communicate_timeout(&mut p, b"", Duration::from_millis(50)).unwrap_err();
        let t = err.as_timeout().expect("TimeoutExpired");
        let so_far = t.stdout.clone().unwrap();
        assert!(so_far.starts_with(&partial), "the output so far only grows");
        partial = so_far;
        if partial.len() == 5 + 300_000 {
            break;
        }
    }
    assert_eq!(
        partial.len(),
        5 + 300_000,
        "everything before the gate was read"
    );
    assert!(partial.starts_with(b"first"));
    assert_eq!(
        p.returncode(),
        None,
        "communicate's timeout leaves the child running"
    );
    // Input after the start is refused, as Python's ValueError.
    assert!(matches!(
        F::communicate(&mut p, b"late"),
        Err(SubprocessError::InvalidArgument(_))
    ));
    gate_w.write_all(b"!").unwrap();
    drop(gate_w);
    let (out, err) = F::communicate(&mut p, b"").unwrap();
    let (out, err) = (out.unwrap(), err.unwrap());
    assert_eq!(out.len(), 5 + 300_000 + 4);
    assert!(out.starts_with(&partial), "the retry returns everything");
    assert!(out.ends_with(b"last"));
    assert_eq!(err, b"e1e2");
    assert_eq!(p.returncode(), Some(0));
}

// CPython: ProcessTestCase.test_communicate_epipe
pub fn communicate_epipe<F: Face>() {
    let data = vec![b'z'; 2 << 20];
    let mut p = Command::new(["true"])
        .stdin(PIPE)
        .stdout(PIPE)
        .popen()
        .unwrap();
    let (out, _) = F::communicate(&mut p, &data).unwrap();
    assert_eq!(out.unwrap(), b"");
    assert_eq!(p.returncode(), Some(0));
}

// CPython: RunFuncTestCase.test_check_output_stdin_with_input_arg,
// test_stdout_with_capture_output_arg (ValueErrors)
pub fn communicate_input_rules<F: Face>() {
    // input with no stdin pipe.
    let mut p = Command::new(["true"]).popen().unwrap();
    assert!(matches!(
        F::communicate(&mut p, b"x"),
        Err(SubprocessError::InvalidArgument(_))
    ));
    F::wait(&mut p).unwrap();
    // stdin and input both.
    assert!(matches!(
        F::run(Command::new(["cat"]).stdin(DEVNULL).input("x")),
        Err(SubprocessError::InvalidArgument(_))
    ));
    // STDOUT is for stderr only.
    assert!(matches!(
        F::run(Command::new(["true"]).stdout(STDOUT)),
        Err(SubprocessError::InvalidArgument(_))
    ));
    // Empty args.
    assert!(matches!(
        F::run(Command::new(Vec::<String>::new())),
        Err(SubprocessError::InvalidArgument(_))
    ));
    // Input given to the Command is what the first communicate sends.
    let mut p = Command::new(["cat"])
        .input("preset")
        .stdout(PIPE)
        .popen()
        .unwrap();
    assert_eq!(F::communicate(&mut p, b"").unwrap().0.unwrap(), b"preset");
}

// CPython: ProcessTestCase.test_poll, test_wait
pub fn wait_and_poll<F: Face>() {
    let mut p = Command::new(["sh", "-c", "read x; exit 7"])
        .stdin(PIPE)
        .popen()
        .unwrap();
    assert_eq!(p.poll(), None);
    assert_eq!(p.returncode(), None);
    p.stdin.take(); // end of file: read returns, the shell exits
    assert_eq!(F::wait(&mut p).unwrap(), 7);
    assert_eq!(p.poll(), Some(7));
    assert_eq!(p.returncode(), Some(7));
    assert_eq!(F::wait(&mut p).unwrap(), 7, "wait again returns the same");
}

// CPython: ProcessTestCase.test_wait_timeout
pub fn wait_timeout_leaves_child_running<F: Face>() {
    let mut p = Command::new(["sleep", "30"]).popen().unwrap();
    let start = Instant::now();
    let err = F::wait_timeout(&mut p, Duration::from_millis(200)).unwrap_err();
    let elapsed = start.elapsed();
    assert!(err.as_timeout().is_some());
    assert!(
        elapsed >= Duration::from_millis(120) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(p.poll(), None, "still running");
    p.kill().unwrap();
    assert_eq!(
        F::wait_timeout(&mut p, Duration::from_secs(10)).unwrap(),
        -9
    );
}

// CPython: POSIXProcessTestCase.test_terminate, test_kill, test_send_signal,
// test_kill_dead, test_send_signal_dead
pub fn negative_returncode_for_signal<F: Face>() {
    let done = F::run(Command::new(["sh", "-c", "kill -TERM $$"])).unwrap();
    assert_eq!(done.returncode, -15);
    let mut p = Command::new(["sleep", "30"]).popen().unwrap();
    p.terminate().unwrap();
    assert_eq!(F::wait(&mut p).unwrap(), -15);
    // Signalling a reaped child does nothing (and hits no reused pid).
    p.kill().unwrap();
    p.send_signal(libc::SIGUSR1).unwrap();
    assert_eq!(p.returncode(), Some(-15));
    let err = F::run(Command::new(["sh", "-c", "kill -KILL $$"]).check()).unwrap_err();
    assert!(err.to_string().contains("SIGKILL"), "{err}");
}

// The shell-pipeline recipe, done by Pipeline.
pub fn pipeline_sort_uniq<F: Face>() {
    let done = F::pipeline(
        (Command::new(["printf", "pear\\napple\\npear\\nfig\\npear\\n"])
            | Command::new(["sort"])
            | Command::new(["uniq", "-c"]))
        .capture_output()
        .text(),
    )
    .unwrap();
    assert_eq!(done.returncodes, [0, 0, 0]);
    assert_eq!(done.returncode(), 0);
    let lines: Vec<String> = done
        .stdout
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, ["1 apple", "1 fig", "3 pear"]);
    assert_eq!(
        done.stderr,
        [
            Some(String::new()),
            Some(String::new()),
            Some(String::new())
        ]
    );
    // Input fed to the first stage.
    let done = F::pipeline(
        Pipeline::new(Command::new(["sort", "-r"]))
            .pipe(Command::new(["head", "-n", "1"]))
            .input("b\nc\na\n")
            .stdout(PIPE),
    )
    .unwrap();
    assert_eq!(done.stdout.unwrap(), b"c\n");
}

// The parent holds no pipe end between stages: when `head` exits, `yes`
// gets SIGPIPE (it would block forever if the parent kept a read end).
pub fn pipeline_sigpipe_upstream<F: Face>() {
    let done =
        F::pipeline((Command::new(["yes"]) | Command::new(["head", "-n", "3"])).stdout(PIPE))
            .unwrap();
    assert_eq!(done.stdout.unwrap(), b"y\ny\ny\n");
    assert_eq!(done.returncodes, [-libc::SIGPIPE, 0]);
}

pub fn pipeline_check_is_pipefail<F: Face>() {
    let err = F::pipeline(
        (Command::shell("echo oops >&2; exit 4") | Command::new(["cat"]))
            .capture_output()
            .check(),
    )
    .unwrap_err();
    let c = err.as_called().unwrap();
    assert_eq!(c.returncode, 4);
    assert_eq!(c.stderr.as_deref(), Some(&b"oops\n"[..]));
    let ok = F::pipeline((Command::new(["true"]) | Command::new(["cat"])).check()).unwrap();
    assert_eq!(ok.returncodes, [0, 0]);
}

pub fn pipeline_timeout_kills_all<F: Face>() {
    let start = Instant::now();
    let err = F::pipeline(
        (Command::shell("echo head; exec sleep 30") | Command::new(["cat"]))
            .stdout(PIPE)
            .process_group()
            .timeout(Duration::from_secs(1)),
    )
    .unwrap_err();
    let t = err.as_timeout().unwrap();
    assert_eq!(t.stdout.as_deref(), Some(&b"head\n"[..]));
    assert!(t.cmd.iter().any(|a| a == "|"));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}
