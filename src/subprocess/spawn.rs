//! Starting a child: checking a `Command`'s arguments, making its pipes,
//! the pre-exec steps, and naming what went wrong.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use super::command::Spec;
use super::errors::{SpawnError, SpawnErrorKind, SubprocessError};
use super::mode::Mode;
use super::popen::{Popen, Streams};
use super::stdio::{Resolved, Stdio, resolve};
use crate::io::child::Proc;

/// Checks the arguments, makes the pipes and starts the child. Returns the
/// `Popen` and the pid (for a pipeline's process group).
pub(crate) fn spawn<M: Mode>(mut s: Spec, mode: M) -> Result<(Popen<M>, u32), SubprocessError> {
    if s.argv.is_empty() {
        return Err(SubprocessError::InvalidArgument("args is empty"));
    }
    if matches!(s.stdin, Stdio::Stdout) || matches!(s.stdout, Stdio::Stdout) {
        return Err(SubprocessError::InvalidArgument(
            "STDOUT is only valid for stderr",
        ));
    }
    if s.input.is_some() {
        match s.stdin {
            Stdio::Inherit => s.stdin = Stdio::Pipe,
            Stdio::Pipe => {}
            _ => {
                return Err(SubprocessError::InvalidArgument(
                    "stdin and input arguments may not both be used",
                ));
            }
        }
    }
    if s.new_session && s.process_group.is_some() {
        return Err(SubprocessError::InvalidArgument(
            "start_new_session already makes a new process group; do not also set process_group",
        ));
    }
    if s.shell {
        if let Some(exe) = &s.executable {
            s.argv[0] = exe.clone();
        }
    }
    let program = s.executable.clone().unwrap_or_else(|| s.argv[0].clone());
    let mut cmd = std::process::Command::new(&program);
    if s.executable.is_some() {
        cmd.arg0(&s.argv[0]);
    }
    cmd.args(&s.argv[1..]);
    if let Some(cwd) = &s.cwd {
        cmd.current_dir(cwd);
    }
    if s.env_clear {
        cmd.env_clear();
    }
    for (k, v) in &s.env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    if let Some(pg) = s.process_group {
        cmd.process_group(pg);
    }
    // With extra groups, the child sets groups, then the group id, then
    // the user id itself (std sets the ids before any pre-exec step, and
    // setgroups needs the privileges a changed user id gives up).
    let ids_in_setup = s.extra_groups.is_some();
    if !ids_in_setup {
        if let Some(uid) = s.uid {
            cmd.uid(uid);
        }
        if let Some(gid) = s.gid {
            cmd.gid(gid);
        }
    }
    crate::sys::pre_exec(
        &mut cmd,
        crate::sys::ChildSetup {
            new_session: s.new_session,
            umask: s.umask,
            close_fds: s.close_fds,
            inherit: s.pass_fds.iter().map(|f| f.as_raw_fd()).collect(),
            groups: s.extra_groups.take(),
            ids: if ids_in_setup {
                (s.uid, s.gid)
            } else {
                (None, None)
            },
            keep_signals: !s.restore_signals,
            hooks: std::mem::take(&mut s.hooks),
        },
    );

    let io = |e: std::io::Error| SubprocessError::Io(e);
    let merge = matches!(s.stderr, Stdio::Stdout);
    let stdin = resolve(std::mem::take(&mut s.stdin), false, s.pipesize, false).map_err(io)?;
    let mut stdout = resolve(std::mem::take(&mut s.stdout), true, s.pipesize, merge).map_err(io)?;
    let stderr = if merge {
        Resolved {
            child: stdout.dup.take().expect("kept for STDOUT").into(),
            parent: None,
            dup: None,
        }
    } else {
        resolve(std::mem::take(&mut s.stderr), true, s.pipesize, false).map_err(io)?
    };

    cmd.stdin(stdin.child)
        .stdout(stdout.child)
        .stderr(stderr.child);
    let spawned = cmd.spawn();
    // Close the parent's copies of the child's ends (and passed fds) now,
    // so the child sees end of file and SIGPIPE when it should.
    drop(cmd);
    drop(std::mem::take(&mut s.pass_fds));
    let child = spawned.map_err(|e| {
        let kind = match &s.cwd {
            Some(cwd) if !cwd.is_dir() => SpawnErrorKind::BadCwd,
            _ => match e.kind() {
                std::io::ErrorKind::NotFound => SpawnErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => SpawnErrorKind::PermissionDenied,
                _ => SpawnErrorKind::Other,
            },
        };
        SpawnError {
            program,
            cwd: s.cwd.clone(),
            kind,
            source: e,
        }
    })?;
    let pid = child.id();
    let leader = s.new_session || s.process_group == Some(0);
    let popen = Popen::from_parts(
        s.argv,
        Proc::new(child),
        Streams {
            stdin: stdin.parent,
            stdout: stdout.parent,
            stderr: stderr.parent,
        },
        s.input,
        mode,
        leader,
        s.kill_on_drop,
    );
    Ok((popen, pid))
}
