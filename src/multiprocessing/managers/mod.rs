//! Python's `multiprocessing.managers`: a server process that owns shared
//! objects, and typed proxies that reach them from other processes, on
//! this machine or another.
//!
//! | Python | conex |
//! |---|---|
//! | `multiprocessing.Manager()`, `SyncManager` | [`manager`](super::manager), [`SyncManager`] |
//! | `BaseManager(address, authkey)`: `start(initializer, initargs)`, `connect`, `shutdown`, `get_server().serve_forever()`, `address`, `with manager:` | [`BaseManager`]: `start`, `start_with`, `connect`, `shutdown`, `get_server` → [`Server`], `address`, drop |
//! | `BaseManager.register(typeid, callable, exposed)` | [`BaseManager::register`] with a type that implements [`Shared`] ([`expose!`](crate::expose) writes it and the proxy) |
//! | `dict`, `list`, `Namespace`, `Value`, `Array` | [`DictProxy`], [`ListProxy`], [`NamespaceProxy`], [`ValueProxy`], [`ArrayProxy`] |
//! | `Queue`, `JoinableQueue` | [`QueueProxy`] |
//! | `Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`, `Condition`, `Event`, `Barrier` | [`LockProxy`], [`SemaphoreProxy`], [`ConditionProxy`], [`EventProxy`], [`BarrierProxy`] |
//! | `Pool` | [`PoolProxy`] (`apply`, `map`; clients of the same binary only) |
//! | `BaseProxy._callmethod` | [`BaseProxy::call`] |
//!
//! ## How it works
//!
//! The server is a [`Listener`](super::Listener) with the manager's auth
//! key (Python's handshake: the wrong key is refused on both sides, and the
//! server goes on serving the others), one thread per client process.
//! A proxy is a token (address, key, object id, type) and serde data, so
//! it can be sent to any process and still reach its object; each process
//! opens its connection on first use. Requests are postcard frames; a
//! malformed one ends that connection only.
//!
//! Containers keep what they hold as encoded bytes: the server needs none
//! of the user's types, keys compare by their encoding, and a proxy stored
//! in a container (a list inside a dict) is stored as its token, so taking
//! it out gives a proxy to the same nested object, as in Python.
//!
//! Every proxy call is async, and every proxy has a `blocking()` facade
//! with the same calls for plain threads. All the tasks and threads of a
//! process share one connection to a server: requests carry a number and
//! the task or thread that asks, replies come back in any order, and a
//! reader (a blocking caller in its turn, or a task while async calls
//! wait) hands each to its caller. So a
//! thousand tasks calling at once cost no thread each, and a call that waits in the server (a lock, a
//! queue `get`, an `Event` wait) holds up none of the others: the server
//! answers calls that cannot wait on the connection's thread and runs
//! waits as tasks of its runtime.
//!
//! A lock (`Lock`, `RLock`, a `Condition`'s lock) taken through a proxy is
//! owned by the tokio task that took it, or the thread for the blocking
//! facade, as Python's by a thread. A call dropped before its reply is
//! cancelled in the server, and what it had taken is given back ([`BaseProxy`]'s
//! `# Cancel safety`).
//!
//! The manager itself (`start`, `connect`, `create`, `dict()`, ...,
//! `shutdown`) is blocking, as starting a process is: call it from a
//! thread, or from a task of a multi-thread runtime (it is moved off the
//! worker with `block_in_place`).
//!
//! ## Faults
//!
//! A lock (`Lock`, `RLock`, a `Condition`'s lock) held by a client whose
//! connection closes (its process died) is released by the server. If the
//! server dies, every call waiting for a reply and every later call fails
//! with [`ManagerError::Connection`], never a hang.

mod builtins;
mod client;
mod manager;
mod protocol;
mod server;

pub use builtins::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy, LockProxy,
    NamespaceProxy, PoolProxy, QueueProxy, SemaphoreProxy, ValueProxy,
};
pub(crate) use client::block;
pub use client::{BaseProxy, Blocking, Proxy, arg};
pub use manager::{BaseManager, SyncManager, manager};
pub use protocol::ManagerError;
pub use server::{Server, Shared, decode_arg, encode_result};

/// The error of a call to a method a [`Shared`] type does not expose (for
/// [`expose!`], through `conex::__private`).
pub(crate) fn no_such_method(typeid: &str, method: &str) -> super::RemoteError {
    ManagerError::remote(
        "AttributeError",
        format!("'{typeid}' object has no exposed method {method:?}"),
    )
}

/// Exposes chosen methods of a type to a manager's proxies: implements
/// [`Shared`] for the type (the server side) and writes a typed proxy
/// whose async methods take the same arguments (by reference) and return
/// `Result<R, ManagerError>`, and its blocking facade (the type named after
/// `blocking`, what the proxy's `blocking()` gives) with the same methods
/// for plain threads.
///
/// Python: `BaseManager.register(typeid, callable, exposed=(...))` and the
/// proxy type it makes. Arguments and results are serde types; methods
/// take `&self` or `&mut self` (calls on one object run one at a time, in
/// the server, on a thread of its blocking pool when they must wait for
/// the object: a user method may block). A call dropped before its reply
/// still runs in the server if it had started (a method cannot be stopped
/// half-way).
///
/// ```no_run
/// use conex::multiprocessing::managers::BaseManager;
///
/// struct Counter { n: u64 }
///
/// impl Counter {
///     fn new(start: u64) -> Counter { Counter { n: start } }
///     fn add(&mut self, by: u64) -> u64 { self.n += by; self.n }
///     fn get(&self) -> u64 { self.n }
/// }
///
/// conex::expose! {
///     /// A proxy to a `Counter` in a manager.
///     pub proxy CounterProxy, blocking BlockingCounter for Counter {
///         fn add(&mut self, by: u64) -> u64;
///         fn get(&self) -> u64;
///     }
/// }
///
/// fn main() {
///     conex::multiprocessing::init();
///     let mut m = BaseManager::new(None, None);
///     m.register("Counter", Counter::new);
///     m.start().unwrap();
///     let c: CounterProxy = m.create("Counter", &40u64).unwrap();
///     // From a thread:
///     assert_eq!(c.blocking().add(&2).unwrap(), 42);
///     // From a task:
///     let rt = tokio::runtime::Runtime::new().unwrap();
///     assert_eq!(rt.block_on(c.get()).unwrap(), 42);
/// }
/// ```
#[macro_export]
macro_rules! expose {
    (
        $(#[$meta:meta])*
        $vis:vis proxy $proxy:ident, blocking $blocking:ident for $ty:ty {
            $(
                $(#[$mmeta:meta])*
                fn $method:ident(&$(mut)? self $(, $arg:ident : $argty:ty)* $(,)?) $(-> $ret:ty)?;
            )*
        }
    ) => {
        impl $crate::multiprocessing::managers::Shared for $ty {
            fn dispatch(
                &mut self,
                method: &str,
                args: &[::std::vec::Vec<u8>],
            ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::multiprocessing::RemoteError> {
                match method {
                    $(
                        ::std::stringify!($method) => {
                            #[allow(unused_mut, unused_variables, unused_assignments)]
                            let mut _i = 0usize;
                            $(
                                let $arg: $argty =
                                    $crate::multiprocessing::managers::decode_arg(args, _i)?;
                                _i += 1;
                            )*
                            let r: $crate::__unit_or!($($ret)?) = <$ty>::$method(self $(, $arg)*);
                            $crate::multiprocessing::managers::encode_result(&r)
                        }
                    )*
                    _ => ::std::result::Result::Err(
                        $crate::__private::no_such_method(
                            ::std::stringify!($ty),
                            method,
                        ),
                    ),
                }
            }
        }

        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        $vis struct $proxy($crate::multiprocessing::managers::BaseProxy);

        impl $crate::__private::serde::Serialize for $proxy {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                $crate::__private::serde::Serialize::serialize(&self.0, s)
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $proxy {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                <$crate::multiprocessing::managers::BaseProxy as $crate::__private::serde::Deserialize>::deserialize(d)
                    .map($proxy)
            }
        }

        impl $crate::multiprocessing::managers::Proxy for $proxy {
            fn from_base(base: $crate::multiprocessing::managers::BaseProxy) -> Self {
                $proxy(base)
            }
            fn base(&self) -> &$crate::multiprocessing::managers::BaseProxy {
                &self.0
            }
        }

        impl $proxy {
            /// The same calls, each waiting on the calling thread.
            $vis fn blocking(&self) -> $blocking<'_> {
                $blocking(self)
            }

            $(
                $(#[$mmeta])*
                #[allow(clippy::ptr_arg)]
                pub async fn $method(
                    &self
                    $(, $arg: &$argty)*
                ) -> ::std::result::Result<$crate::__unit_or!($($ret)?), $crate::multiprocessing::managers::ManagerError> {
                    self.0.call(
                        ::std::stringify!($method),
                        ::std::vec![$($crate::multiprocessing::managers::arg($arg)),*],
                    ).await
                }
            )*
        }

        #[doc = ::std::concat!("The blocking facade of [`", ::std::stringify!($proxy), "`]: the same calls, each waiting on the calling thread.")]
        #[derive(Clone, Copy, Debug)]
        $vis struct $blocking<'a>(&'a $proxy);

        impl $blocking<'_> {
            $(
                $(#[$mmeta])*
                #[allow(clippy::ptr_arg)]
                #[track_caller]
                pub fn $method(
                    &self
                    $(, $arg: &$argty)*
                ) -> ::std::result::Result<$crate::__unit_or!($($ret)?), $crate::multiprocessing::managers::ManagerError> {
                    $crate::__private::block(self.0.$method($($arg),*))
                }
            )*
        }
    };
}

/// `()` when a method declares no return type (for [`expose!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __unit_or {
    () => {
        ()
    };
    ($t:ty) => {
        $t
    };
}
