//! Calling a plain `fn` in another process of the same binary.
//!
//! What crosses is two code addresses, each as an offset from a fixed
//! function of conex (the whole executable moves together under ASLR, so
//! offsets are the same in every process running it): the user's `fn`
//! item, and a monomorphised trampoline that knows its argument and
//! result types, decodes the arguments (postcard, with their OS handles),
//! calls the `fn`, catches a panic, and encodes the result. No closure, no
//! code and no type information travel.
//!
//! That is sound only within one binary: the handshake compares the
//! executable's identity (device, inode, size, modification time) and the
//! offset of a known function before any address is sent, and refuses a
//! child that differs. The trust model is Python's: a worker runs what its
//! parent (authenticated: it holds the socket or the auth key) asks for.
//!
//! # The one unchecked assumption
//! Every address resolved here is either made by this module from a typed
//! `fn` in this process ([`Call::of`], [`Call::batch`], [`CodeRef::of`]),
//! or decoded from a message of a peer proven to run this binary, in the
//! message type that carried it (the type fixes what it is resolved as).
//! `Call`, `CodeRef` and `Caller` are crate-private (no user can decode or
//! implement one), and the three places that decode them (a worker's
//! start, a pool worker's loop, a manager's server) do so only after the
//! identity check. So the functions of this module are safe to call from
//! the rest of the crate; the transmutes that rest on the assumption are
//! all here, which is why this is one of the two modules outside
//! `crate::sys` where `unsafe` code is allowed.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::os::fd::OwnedFd;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::errors::RemoteError;
use super::handles;

/// The fixed point offsets are taken from.
#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x636f_6e65_785f_6d70)
}

fn offset(addr: usize) -> i64 {
    addr as i64 - anchor as *const () as usize as i64
}

fn address(offset: i64) -> usize {
    (anchor as *const () as usize as i64 + offset) as usize
}

/// A code address that can cross to another process of this binary (as an
/// offset from a fixed function), for tables of functions a child needs
/// (a manager server's type factories).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CodeRef(i64);

impl CodeRef {
    /// The reference to `f`, a `fn` pointer.
    pub(crate) fn of<F: Copy>(f: F) -> CodeRef {
        assert_eq!(size_of::<F>(), size_of::<usize>(), "not a fn pointer");
        // SAFETY: F is pointer-sized (checked), and callers pass fn
        // pointers only; reading its bits as an address is what `as usize`
        // does.
        CodeRef(offset(unsafe { std::mem::transmute_copy::<F, usize>(&f) }))
    }

    /// The function in this process, as `F`: the `fn` type it was made
    /// from (see the module's assumption).
    pub(crate) fn resolve<F: Copy>(self) -> F {
        assert_eq!(size_of::<F>(), size_of::<usize>(), "not a fn pointer");
        let addr = address(self.0);
        // SAFETY: `addr` is a function of this binary of type F (the
        // module's one assumption); F is pointer-sized (checked).
        unsafe { std::mem::transmute_copy::<usize, F>(&addr) }
    }
}

/// What a trampoline returns: the encoded result (and its OS handles), or
/// the panic.
pub(crate) enum Outcome {
    Returned(Vec<u8>, Vec<OwnedFd>),
    Panicked(RemoteError),
}

type Trampoline = fn(usize, &[u8], Vec<OwnedFd>) -> Outcome;

/// A call to send: both offsets.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Call {
    trampoline: i64,
    target: i64,
}

impl Call {
    /// The call of `f`, whose arguments are an `A` and result an `R`.
    pub(crate) fn of<A, R>(f: fn(A) -> R) -> Call
    where
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        let t: Trampoline = trampoline::<A, R>;
        Call {
            trampoline: offset(t as usize),
            target: offset(f as usize),
        }
    }

    /// The call of a chunk: `target` (a `fn` of `C`'s type) over a `Vec` of
    /// arguments, giving a `Vec<Result<C::Out, RemoteError>>`.
    pub(crate) fn batch<C>(target: usize) -> Call
    where
        C: Caller,
        C::Arg: DeserializeOwned,
        C::Out: Serialize,
    {
        let t: Trampoline = batch::<C>;
        Call {
            trampoline: offset(t as usize),
            target: offset(target),
        }
    }

    /// Runs the call on `args` (the encoded arguments and their handles).
    pub(crate) fn run(self, args: &[u8], fds: Vec<OwnedFd>) -> Outcome {
        let t = address(self.trampoline);
        // SAFETY: `t` is the address of a trampoline instance of this
        // binary (the module's one assumption).
        let t: Trampoline = unsafe { std::mem::transmute::<usize, Trampoline>(t) };
        t(address(self.target), args, fds)
    }
}

/// How one item of a batch is called: the `fn` type behind an address,
/// how its argument arrives and how its result (or error) leaves. The
/// batch trampoline of a pool runs a whole chunk through it; the thread
/// pool of `multiprocessing.dummy` calls it directly. (Public items of
/// this private module appear in the pools' bounds; no user can name them.)
pub trait Caller: 'static {
    /// What one call takes.
    type Arg;
    /// What one call gives.
    type Out;
    /// Calls the `fn` at `addr`, a `fn` of this caller's type in this
    /// binary (taken typed by the pools' methods and erased only on the
    /// way here, or the module's one assumption).
    fn call(addr: usize, arg: Self::Arg) -> Result<Self::Out, RemoteError>;
}

/// `fn(A) -> R`.
#[derive(Debug)]
pub struct Plain<A, R>(std::marker::PhantomData<fn(A) -> R>);

impl<A: 'static, R: 'static> Caller for Plain<A, R> {
    type Arg = A;
    type Out = R;
    fn call(addr: usize, arg: A) -> Result<R, RemoteError> {
        // SAFETY: `addr` is a `fn(A) -> R` (the trait's contract).
        let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(addr) };
        Ok(f(arg))
    }
}

/// `fn(A) -> Result<R, E>`: an `Err` becomes a [`RemoteError`] with `E`'s
/// short type name, message, and (as its backtrace) full type and source
/// chain.
#[derive(Debug)]
pub struct Fallible<A, R, E>(std::marker::PhantomData<fn(A) -> Result<R, E>>);

impl<A: 'static, R: 'static, E: std::error::Error + 'static> Caller for Fallible<A, R, E> {
    type Arg = A;
    type Out = R;
    fn call(addr: usize, arg: A) -> Result<R, RemoteError> {
        // SAFETY: `addr` is a `fn(A) -> Result<R, E>` (the trait's contract).
        let f = unsafe { std::mem::transmute::<usize, fn(A) -> Result<R, E>>(addr) };
        f(arg).map_err(|e| {
            // The same description an in-process executor gives.
            let (type_name, message, context) = crate::futures::describe_error(&e);
            RemoteError {
                type_name,
                message,
                backtrace: Some(context),
            }
        })
    }
}

/// A `fn` of several arguments, called on a tuple of them: what
/// `Pool::starmap` takes. Implemented for `fn(A, B) -> R`,
/// `fn(A, B, C) -> R` and `fn(A, B, C, D) -> R`.
pub trait StarFn<Args, R>: Copy + Send + Sync + 'static + sealed::Sealed<Args, R> {}

/// How a [`StarFn`] is called: public items of a private module.
mod sealed {
    pub trait Sealed<Args, R> {
        /// How it is called.
        type Caller: super::Caller<Arg = Args, Out = R>;
        /// Its address.
        fn addr(self) -> usize;
    }
}

macro_rules! star {
    ($name:ident; $($t:ident),+) => {
        #[derive(Debug)]
        pub struct $name<$($t,)+ R>(std::marker::PhantomData<fn($($t),+) -> R>);

        impl<$($t: 'static,)+ R: 'static> Caller for $name<$($t,)+ R> {
            type Arg = ($($t,)+);
            type Out = R;
            #[allow(non_snake_case)]
            fn call(addr: usize, ($($t,)+): ($($t,)+)) -> Result<R, RemoteError> {
                // SAFETY: `addr` is this `fn` type (the trait's contract).
                let f = unsafe { std::mem::transmute::<usize, fn($($t),+) -> R>(addr) };
                Ok(f($($t),+))
            }
        }

        impl<$($t: 'static,)+ R: 'static> sealed::Sealed<($($t,)+), R> for fn($($t),+) -> R {
            type Caller = $name<$($t,)+ R>;
            fn addr(self) -> usize {
                self as usize
            }
        }

        impl<$($t: 'static,)+ R: 'static> StarFn<($($t,)+), R> for fn($($t),+) -> R {}
    };
}

star!(Star2; A, B);
star!(Star3; A, B, C);
star!(Star4; A, B, C, D);

/// The trampoline of a pool's chunk: decodes a `Vec` of arguments, calls
/// the target on each (a panic or an `Err` fails that item only), and
/// encodes a `Vec` of per-item outcomes.
fn batch<C>(target: usize, args: &[u8], fds: Vec<OwnedFd>) -> Outcome
where
    C: Caller,
    C::Arg: DeserializeOwned,
    C::Out: Serialize,
{
    let items: Vec<C::Arg> = match handles::provide(fds, || postcard::from_bytes(args)) {
        Ok(a) => a,
        Err(e) => return Outcome::Panicked(decode_error(e)),
    };
    let results: Vec<Result<C::Out, RemoteError>> = items
        .into_iter()
        // `target` came with this trampoline from one `Call::batch::<C>`.
        .map(|a| catch(move || C::call(target, a)).and_then(|r| r))
        .collect();
    encode(&results)
}

fn decode_error(e: postcard::Error) -> RemoteError {
    RemoteError {
        type_name: "DecodeError".into(),
        message: format!("cannot decode the arguments: {e}"),
        backtrace: None,
    }
}

fn encode<T: Serialize>(value: &T) -> Outcome {
    let (bytes, fds) = handles::collect(|| postcard::to_allocvec(value));
    match bytes {
        Ok(b) => Outcome::Returned(b, fds),
        Err(e) => Outcome::Panicked(RemoteError {
            type_name: "EncodeError".into(),
            message: format!("cannot encode the result: {e}"),
            backtrace: None,
        }),
    }
}

fn trampoline<A, R>(target: usize, args: &[u8], fds: Vec<OwnedFd>) -> Outcome
where
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    // SAFETY: `target` is the address of the `fn(A) -> R` this trampoline
    // was instantiated for (both came from one `Call::of` in this binary).
    let f: fn(A) -> R = unsafe { std::mem::transmute::<usize, fn(A) -> R>(target) };
    let a: A = match handles::provide(fds, || postcard::from_bytes(args)) {
        Ok(a) => a,
        Err(e) => return Outcome::Panicked(decode_error(e)),
    };
    match catch(move || f(a)) {
        Ok(r) => encode(&r),
        Err(e) => Outcome::Panicked(e),
    }
}

thread_local! {
    /// The backtrace of the panic in flight, taken by the panic hook.
    static PANIC_TRACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that keeps the backtrace for [`catch`],
/// then does what the previous hook did (print to stderr, as Python prints
/// a worker's traceback).
pub(crate) fn install_panic_capture() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let bt = std::backtrace::Backtrace::force_capture().to_string();
            PANIC_TRACE.with(|t| *t.borrow_mut() = Some(bt));
            prev(info);
        }));
    });
}

/// Runs `f`, turning a panic into a [`RemoteError`] with its backtrace.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, RemoteError> {
    install_panic_capture();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| RemoteError {
        type_name: "panic".into(),
        message: crate::panic_str(&*payload).to_owned(),
        backtrace: PANIC_TRACE.with(|t| t.borrow_mut().take()),
    })
}

/// What identifies this executable: a child must present the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    /// The offset of a known function: differs between builds even where
    /// the file's identity cannot tell.
    probe: i64,
}

impl Identity {
    /// This process's identity (computed once).
    pub(crate) fn current() -> &'static Identity {
        static ID: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();
        ID.get_or_init(|| Identity::of_file(&exe_path()))
    }

    /// The identity a child running the file `path` presents, if it is
    /// this build.
    fn of_file(path: &std::path::Path) -> Identity {
        Identity::of_meta(std::fs::metadata(path).ok())
    }

    /// The identity of a file with metadata `meta`, running this build.
    fn of_meta(meta: Option<std::fs::Metadata>) -> Identity {
        use std::os::unix::fs::MetadataExt;
        Identity {
            dev: meta.as_ref().map_or(0, |m| m.dev()),
            ino: meta.as_ref().map_or(0, |m| m.ino()),
            size: meta.as_ref().map_or(0, |m| m.size()),
            mtime_ns: meta.as_ref().map_or(0, |m| {
                m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128
            }),
            probe: offset(Identity::current as *const () as usize),
        }
    }

    /// Whether a child that presents `theirs`, started from the file
    /// `exe`, runs this build: the same file, or a file at `exe` with the
    /// same code offset and bytes equal to this program's (a copy; its
    /// bytes are compared once per file identity).
    pub(crate) fn accepts(&self, theirs: &Identity, exe: &std::path::Path) -> bool {
        if theirs == self {
            return true;
        }
        if theirs.probe != self.probe || theirs.size != self.size {
            return false;
        }
        static SAME: std::sync::Mutex<Vec<(Identity, bool)>> = std::sync::Mutex::new(Vec::new());
        let known = |id: &Identity| {
            let k = SAME.lock().unwrap_or_else(|e| e.into_inner());
            k.iter().find(|(i, _)| i == id).map(|(_, same)| *same)
        };
        if let Some(same) = known(theirs) {
            return same;
        }
        // Not under the lock: reading a large file takes a while.
        let same = open_as(exe, theirs)
            .and_then(|f| same_bytes(f, &exe_path()))
            .unwrap_or(false);
        let mut k = SAME.lock().unwrap_or_else(|e| e.into_inner());
        if !k.iter().any(|(i, _)| i == theirs) {
            k.push((theirs.clone(), same));
        }
        same
    }
}

/// Opens `path` if it is a regular file with the identity `id` (checked
/// on the opened file, so what is read is what was checked). Opened
/// without blocking: a FIFO put at the path cannot hang the open, and is
/// refused.
fn open_as(path: &std::path::Path, id: &Identity) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() || Identity::of_meta(Some(meta)) != *id {
        return Err(std::io::Error::other("not the file claimed"));
    }
    Ok(f)
}

/// Whether the open file `a` holds the bytes of the file at `b`.
fn same_bytes(mut a: std::fs::File, b: &std::path::Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut b = std::fs::File::open(b)?;
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = a.read(&mut x)?;
        if n == 0 {
            return Ok(b.read(&mut y[..1])? == 0);
        }
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            return Ok(false);
        }
    }
}

/// The executable to re-run: on Linux `/proc/self/exe`, which names this
/// very binary even if its file was replaced or deleted since.
pub(crate) fn exe_path() -> std::path::PathBuf {
    #[cfg(target_os = "linux")]
    {
        std::path::PathBuf::from("/proc/self/exe")
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::env::current_exe().unwrap_or_else(|_| std::path::PathBuf::from("/proc/self/exe"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u32) -> u64 {
        x as u64 * 2
    }

    fn boom(_: ()) -> u8 {
        panic!("kaboom")
    }

    // A manager client names the file it runs; one that names a FIFO
    // (and claims its identity) is refused without the open hanging.
    #[test]
    fn accepts_refuses_a_fifo_without_hanging() {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::MetadataExt;
        let dir = std::env::temp_dir().join(format!("conex-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a plain system call on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let me = Identity::current();
        let meta = std::fs::metadata(&fifo).unwrap();
        let claim = Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ..me.clone()
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(Identity::current().accepts(&claim, &path)));
        let r = rx.recv_timeout(std::time::Duration::from_secs(20));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r, Ok(false));
    }

    #[test]
    fn calls_round_trip_in_process() {
        let c = Call::of(double);
        let args = postcard::to_allocvec(&21u32).unwrap();
        match c.run(&args, Vec::new()) {
            Outcome::Returned(b, _) => assert_eq!(postcard::from_bytes::<u64>(&b).unwrap(), 42),
            Outcome::Panicked(e) => panic!("{e}"),
        }
        let c = Call::of(boom);
        let args = postcard::to_allocvec(&()).unwrap();
        match c.run(&args, Vec::new()) {
            Outcome::Panicked(e) => {
                assert_eq!(e.message, "kaboom");
                assert!(e.backtrace.is_some());
            }
            Outcome::Returned(..) => panic!("should have panicked"),
        }
        assert_eq!(Identity::current(), Identity::current());
    }
}
