//! The fork server: a small single-threaded process, started by `spawn` on
//! first use, that forks a fresh worker for each request. Python:
//! `multiprocessing.forkserver`.
//!
//! The link is a blocking Unix stream socket pair carrying fixed 16-byte
//! messages `[kind: u32, pid: u32, value: i64]` (native endianness: both
//! ends are this binary on this machine):
//! - parent → server: `FORK` with the child's control socket attached;
//! - server → parent: `STARTED pid`, or `FAILED errno`, in request order;
//!   later `EXITED pid status` (the raw wait status) when it reaps a child.
//!
//! The server never starts a thread, so every `fork` it makes is sound.
//! It ends when the parent's end closes (the parent exited or was killed);
//! its workers watch their own control sockets and end with the parent.
//! A reader thread in the parent hands replies to the requester and exit
//! statuses to each child's [`Status`]. A dead server is restarted on the
//! next request; the children it had are then waited for through their
//! pidfds, and their exit code is reported as `-9` if unknown.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, mpsc};

use super::errors::StartError;
use super::started::{Launched, Status, Waiter};
use crate::sys::{self, Disposition, ForkRefused};

const FORK: u32 = 1;
const STARTED: u32 = 2;
const FAILED: u32 = 3;
const EXITED: u32 = 4;
const MSG: usize = 16;

fn encode(kind: u32, pid: u32, value: i64) -> [u8; MSG] {
    let mut m = [0u8; MSG];
    m[..4].copy_from_slice(&kind.to_ne_bytes());
    m[4..8].copy_from_slice(&pid.to_ne_bytes());
    m[8..].copy_from_slice(&value.to_ne_bytes());
    m
}

fn decode(m: &[u8; MSG]) -> (u32, u32, i64) {
    let [a0, a1, a2, a3, b0, b1, b2, b3, c @ ..] = *m;
    (
        u32::from_ne_bytes([a0, a1, a2, a3]),
        u32::from_ne_bytes([b0, b1, b2, b3]),
        i64::from_ne_bytes(c),
    )
}

/// Reads one whole message (and the descriptors that came with it).
/// `Ok(false)` at end of file.
fn read_msg(
    fd: RawFd,
    out: &mut [u8; MSG],
    fds: &mut std::collections::VecDeque<OwnedFd>,
) -> io::Result<bool> {
    let mut got = 0;
    while got < MSG {
        let n = sys::recv_with_fds(fd, sys::as_uninit(&mut out[got..]), fds, sys::MAX_FDS)?;
        if n == 0 {
            if got == 0 {
                return Ok(false);
            }
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        got += n;
    }
    Ok(true)
}

fn write_msg(fd: RawFd, m: &[u8; MSG], attach: &[RawFd]) -> io::Result<()> {
    let mut sent = 0;
    while sent < MSG {
        let fds = if sent == 0 { attach } else { &[] };
        sent += sys::send_parts(fd, &[m], sent, fds)?;
    }
    Ok(())
}

/// The parent's side of one fork server.
pub(crate) struct Client {
    /// The request side, one request at a time.
    link: Mutex<UnixStream>,
    /// Replies to requests, in order, from the reader thread.
    replies: Mutex<mpsc::Receiver<Result<Arc<Status>, i32>>>,
    alive: Arc<std::sync::atomic::AtomicBool>,
}

static CLIENT: Mutex<Option<Arc<Client>>> = Mutex::new(None);

/// The fork server of this process, started on first use (or again after
/// the last one died).
pub(crate) fn client() -> Result<Arc<Client>, StartError> {
    let mut c = CLIENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = c.as_ref() {
        if c.alive.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(c.clone());
        }
    }
    let fresh = Arc::new(Client::start()?);
    *c = Some(fresh.clone());
    Ok(fresh)
}

impl Client {
    fn start() -> Result<Client, StartError> {
        let (ours, theirs) = UnixStream::pair()?;
        let mut server = super::started::spawn_role(
            "forkserver",
            OwnedFd::from(theirs),
            &super::context::get_executable(),
        )?;
        let reader = ours.try_clone()?;
        let (tx, rx) = mpsc::channel();
        let alive = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let alive2 = alive.clone();
        std::thread::Builder::new()
            .name("conex-forkserver-reader".into())
            .spawn(move || {
                read_loop(&reader, &tx);
                alive2.store(false, std::sync::atomic::Ordering::Release);
                // Reap the server itself.
                let _ = server.wait();
            })?;
        Ok(Client {
            link: Mutex::new(ours),
            replies: Mutex::new(rx),
            alive,
        })
    }

    /// Asks the server to fork a worker on `ctrl`.
    pub(crate) fn start_child(&self, ctrl: OwnedFd) -> Result<Launched, StartError> {
        let link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        let gone = || {
            StartError::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the fork server is gone",
            ))
        };
        if write_msg(link.as_raw_fd(), &encode(FORK, 0, 0), &[ctrl.as_raw_fd()]).is_err() {
            self.alive
                .store(false, std::sync::atomic::Ordering::Release);
            return Err(gone());
        }
        drop(ctrl);
        let reply = self
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recv();
        drop(link);
        match reply {
            Ok(Ok(status)) => {
                let pid = status.pid();
                Ok(Launched {
                    pid,
                    #[cfg(target_os = "linux")]
                    pidfd: sys::pidfd_open(pid).ok(),
                    #[cfg(not(target_os = "linux"))]
                    pidfd: None,
                    waiter: Waiter::Remote(status),
                })
            }
            Ok(Err(errno)) => Err(StartError::Io(io::Error::from_raw_os_error(errno))),
            Err(_) => {
                self.alive
                    .store(false, std::sync::atomic::Ordering::Release);
                Err(gone())
            }
        }
    }
}

/// The parent's reader: replies to the requester, exit statuses to their
/// children. When the server goes away, every child still listed is
/// waited for through its pidfd (or given up on).
fn read_loop(link: &UnixStream, tx: &mpsc::Sender<Result<Arc<Status>, i32>>) {
    let mut children: HashMap<u32, Arc<Status>> = HashMap::new();
    let mut fds = std::collections::VecDeque::new();
    let mut m = [0u8; MSG];
    while let Ok(true) = read_msg(link.as_raw_fd(), &mut m, &mut fds) {
        fds.clear();
        match decode(&m) {
            (STARTED, pid, _) => {
                let s = Arc::new(Status::new(pid));
                children.insert(pid, s.clone());
                let _ = tx.send(Ok(s));
            }
            (FAILED, _, errno) => {
                let _ = tx.send(Err(errno as i32));
            }
            (EXITED, pid, raw) => {
                if let Some(s) = children.remove(&pid) {
                    s.finish(raw as i32);
                }
            }
            _ => break,
        }
    }
    // The server is gone: its orphans are no longer anyone's to report.
    for (pid, s) in children {
        std::thread::spawn(move || {
            #[cfg(target_os = "linux")]
            if let Ok(fd) = sys::pidfd_open(pid) {
                let mut p = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let _ = sys::poll(std::slice::from_mut(&mut p), None);
            }
            let _ = pid;
            s.finish(libc::SIGKILL);
        });
    }
}

/// The write end of the server's SIGCHLD self-pipe.
static SIGCHLD_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    let fd = SIGCHLD_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // write(2) is async-signal-safe (and `sys::write` allocates
        // nothing); a full pipe is fine: a wake-up is already pending.
        let _ = sys::write(fd, &[1]);
    }
}

/// The server process: its link to the parent came as stdin.
pub(crate) fn main() -> ! {
    let Some(link) = super::worker::take_stdin() else {
        sys::exit_now(2)
    };
    let Ok((sig_r, sig_w)) = sys::pipe() else {
        sys::exit_now(2)
    };
    SIGCHLD_PIPE.store(sig_w.as_raw_fd(), std::sync::atomic::Ordering::Relaxed);
    // Python's forkserver ignores SIGINT too: Ctrl-C is for the parent.
    sys::set_signal(libc::SIGINT, Disposition::Ignore);
    sys::set_signal(libc::SIGCHLD, Disposition::Handler(on_sigchld));
    let lfd = link.as_raw_fd();
    let _ = sys::set_nonblocking(std::os::fd::AsFd::as_fd(&link), false);
    let mut fds = std::collections::VecDeque::new();
    let mut m = [0u8; MSG];
    loop {
        let mut polls = [
            libc::pollfd {
                fd: lfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sig_r.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let _ = sys::poll(&mut polls, None);
        if polls[1].revents != 0 {
            let mut buf = [MaybeUninit::<u8>::uninit(); 64];
            let _ = sys::read(sig_r.as_raw_fd(), &mut buf);
            reap(lfd);
        }
        if polls[0].revents == 0 {
            continue;
        }
        match read_msg(lfd, &mut m, &mut fds) {
            Ok(true) => {}
            // The parent is gone (or talks nonsense): so are we (the fork
            // server has no buffers or destructors to run).
            _ => sys::exit_now(0),
        }
        let (kind, _, _) = decode(&m);
        let ctrl = fds.pop_front();
        fds.clear();
        let (FORK, Some(ctrl)) = (kind, ctrl) else {
            // A broken protocol.
            sys::exit_now(2)
        };
        // The worker drops the server's descriptors and handlers. (The
        // server never starts a thread; fork_alone checks anyway.)
        let child = move || -> std::convert::Infallible {
            sys::set_signal(libc::SIGCHLD, Disposition::Default);
            sys::set_signal(libc::SIGINT, Disposition::Default);
            SIGCHLD_PIPE.store(-1, std::sync::atomic::Ordering::Relaxed);
            super::worker::run(ctrl)
        };
        let forked = sys::fork_alone(&[link.as_fd(), sig_r.as_fd(), sig_w.as_fd()], child);
        let reply = match forked {
            Ok(pid) => encode(STARTED, pid, 0),
            Err(ForkRefused::Os(e)) => encode(FAILED, 0, e.raw_os_error().unwrap_or(0) as i64),
            // Threads in the server: a `main` that started some before
            // `init` (a fork would copy their locks).
            Err(_) => encode(FAILED, 0, libc::EDEADLK as i64),
        };
        if write_msg(lfd, &reply, &[]).is_err() {
            // The parent is gone.
            sys::exit_now(0)
        }
    }
}

/// Reaps every child that has ended and reports it.
fn reap(lfd: RawFd) {
    loop {
        let Ok(Some((pid, status))) = sys::waitpid_nohang(-1) else {
            return;
        };
        if write_msg(lfd, &encode(EXITED, pid, i64::from(status)), &[]).is_err() {
            // The parent is gone.
            sys::exit_now(0)
        }
    }
}
