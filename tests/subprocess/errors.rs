//! Bad input gets a clear, typed error naming the program, and nothing
//! leaks.

use std::os::unix::fs::PermissionsExt;

use conex::subprocess::{Command, PIPE, SpawnErrorKind, SubprocessError};

use crate::temp_dir;

fn spawn_kind(e: &SubprocessError) -> SpawnErrorKind {
    e.as_spawn()
        .unwrap_or_else(|| panic!("expected a SpawnError, got {e:?}"))
        .kind()
}

// CPython: ProcessTestCase.test_invalid_cmd / test_nonexisting_with_pipes
#[test]
fn missing_program_is_not_found_and_named() {
    let err = Command::new(["conex-no-such-program", "arg"])
        .capture_output()
        .popen()
        .unwrap_err();
    assert_eq!(spawn_kind(&err), SpawnErrorKind::NotFound);
    let msg = err.to_string();
    assert!(msg.contains("conex-no-such-program"), "{msg}");
    assert_eq!(err.as_spawn().unwrap().program(), "conex-no-such-program");
    // The io::Error conversion keeps the kind.
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

// CPython: ProcessTestCase.test_invalid_cwd / test_cwd_with_bad_dir
#[test]
fn bad_cwd_is_named() {
    let err = Command::new(["true"])
        .cwd("/conex/no/such/dir")
        .popen()
        .unwrap_err();
    assert_eq!(spawn_kind(&err), SpawnErrorKind::BadCwd);
    assert!(err.to_string().contains("/conex/no/such/dir"), "{err}");
    // A file is not a directory either.
    let dir = temp_dir("badcwd");
    let file = dir.join("f");
    std::fs::write(&file, "").unwrap();
    let err = Command::new(["true"]).cwd(&file).popen().unwrap_err();
    assert_eq!(spawn_kind(&err), SpawnErrorKind::BadCwd);
    std::fs::remove_dir_all(dir).unwrap();
}

// CPython: POSIXProcessTestCase.test_exception_bad_executable /
// test_exception_errpipe_normal (EACCES)
#[test]
fn not_executable_is_permission_denied() {
    let dir = temp_dir("noexec");
    let prog = dir.join("script.sh");
    std::fs::write(&prog, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Command::new([&prog]).popen().unwrap_err();
    assert_eq!(spawn_kind(&err), SpawnErrorKind::PermissionDenied);
    assert!(err.to_string().contains("script.sh"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

// CPython: ProcessTestCase.test_failed_child_execute_fd_leak: a failed
// spawn with pipes closes every descriptor it made.
#[test]
fn failed_spawns_leak_no_descriptors() {
    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }
    let before = open_fds();
    for _ in 0..100 {
        let e = Command::new(["conex-no-such-program"])
            .stdin(PIPE)
            .capture_output()
            .popen()
            .unwrap_err();
        assert_eq!(spawn_kind(&e), SpawnErrorKind::NotFound);
    }
    let after = open_fds();
    // 300 would leak if the pipes stayed open; other tests in this binary
    // open a few descriptors of their own meanwhile.
    assert!(after < before + 64, "fds before {before}, after {after}");
}

#[test]
fn errors_are_std_errors_with_sources() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    let err = Command::new(["conex-no-such-program"]).popen().unwrap_err();
    is_error(&err);
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.to_string().contains("conex-no-such-program"));
    let invalid = Command::new(Vec::<&str>::new()).popen().unwrap_err();
    assert!(invalid.to_string().contains("args is empty"), "{invalid}");
}

// A wrong argument combination on a pipeline is a typed error too.
#[test]
fn pipeline_misuse_is_invalid_argument() {
    let r = (Command::new(["true"]).stdout(PIPE) | Command::new(["cat"]))
        .blocking()
        .run();
    assert!(
        matches!(r, Err(SubprocessError::InvalidArgument(_))),
        "{r:?}"
    );
    let r = (Command::new(["true"]) | Command::new(["cat"]).check())
        .blocking()
        .run();
    assert!(
        matches!(r, Err(SubprocessError::InvalidArgument(_))),
        "{r:?}"
    );
    let r = (Command::new(["true"]) | Command::new(["cat"]).input("x"))
        .blocking()
        .run();
    assert!(
        matches!(r, Err(SubprocessError::InvalidArgument(_))),
        "{r:?}"
    );
    // A failing later stage: the earlier ones are killed, the error names it.
    let r = (Command::new(["sleep", "30"]) | Command::new(["conex-no-such-program"]))
        .blocking()
        .run();
    assert_eq!(spawn_kind(&r.unwrap_err()), SpawnErrorKind::NotFound);
}
