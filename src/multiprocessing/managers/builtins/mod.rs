//! `SyncManager`'s shared types: the objects in the server and their typed
//! proxies. Containers keep values as the bytes they came as (keys compare
//! by their encoding), so the server needs no type of the user's.
//!
//! One file per family: `dict`, `list`, `value` (`Namespace`, `Value`,
//! `Array`), `queue`, `sync` (the locks, semaphores, condition, event and
//! barrier) and `pool`; here, what they share and `make`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::super::errors::RemoteError;
use super::protocol::{ManagerError, dec};
use super::server::Served;
use crate::threading::{self, ReleaseError};

// The typed-proxy boilerplate is a macro, so it is defined before the
// submodules that use it.
/// The typed-proxy boilerplate: Clone, Debug, serde, [`Proxy`].
macro_rules! proxy_type {
    ($name:ident $(<$($t:ident),+>)?) => {
        impl$(<$($t),+>)? Clone for $name$(<$($t),+>)? {
            fn clone(&self) -> Self {
                Self::from_base(self.base.clone())
            }
        }

        impl$(<$($t),+>)? std::fmt::Debug for $name$(<$($t),+>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.base).finish()
            }
        }

        impl$(<$($t),+>)? Serialize for $name$(<$($t),+>)? {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.base.serialize(s)
            }
        }

        impl<'de $($(, $t)+)?> Deserialize<'de> for $name$(<$($t),+>)? {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                BaseProxy::deserialize(d).map(Self::from_base)
            }
        }

        impl$(<$($t),+>)? $name$(<$($t),+>)? {
            /// The same calls, each waiting on the calling thread (which
            /// owns what they take): for plain threads, not for tasks.
            pub fn blocking(&self) -> super::super::client::Blocking<'_, Self> {
                super::super::client::Blocking(self)
            }
        }

        impl$(<$($t),+>)? Proxy for $name$(<$($t),+>)? {
            fn from_base(base: BaseProxy) -> Self {
                $name {
                    base,
                    $(_t: { let _ = stringify!($($t)+); PhantomData },)?
                }
            }
            fn base(&self) -> &BaseProxy {
                &self.base
            }
        }
    };
}

/// Writes a proxy's async methods and, from the same list, its blocking
/// facade's: each the async one run to its end on the calling thread.
macro_rules! dual {
    (impl[$($g:tt)*] $ty:ty {
        $(
            $(#[$m:meta])*
            pub async fn $name:ident(&$s:ident $(, $a:ident : $t:ty)* $(,)?) -> $ret:ty $body:block
        )*
    }) => {
        impl<$($g)*> $ty {
            $(
                $(#[$m])*
                pub async fn $name(&$s $(, $a: $t)*) -> $ret $body
            )*
        }

        impl<$($g)*> super::super::client::Blocking<'_, $ty> {
            $(
                $(#[$m])*
                #[track_caller]
                pub fn $name(&$s $(, $a: $t)*) -> $ret {
                    super::super::client::block($s.0.$name($($a),*))
                }
            )*
        }
    };
}

mod dict;
mod list;
mod pool;
mod queue;
mod sync;
mod value;

pub use dict::DictProxy;
pub use list::ListProxy;
pub use pool::PoolProxy;
pub use queue::QueueProxy;
pub use sync::{BarrierProxy, ConditionProxy, EventProxy, LockProxy, SemaphoreProxy};
pub use value::{ArrayProxy, NamespaceProxy, ValueProxy};

use dict::{DictObj, OrderedMap};
use list::ListObj;
use pool::PoolObj;
use queue::QueueObj;
use sync::{BarrierObj, BoundedObj, ConditionObj, EventObj, LockObj, Owned, SemaphoreObj};
use value::{ArrayObj, NamespaceObj, ValueObj};

fn err(type_name: &str, message: impl Into<String>) -> RemoteError {
    ManagerError::remote(type_name, message)
}

fn no_method(typeid: &str, method: &str) -> RemoteError {
    err(
        "AttributeError",
        format!("'{typeid}' object has no method {method:?}"),
    )
}

fn release_error(e: ReleaseError) -> RemoteError {
    match e {
        ReleaseError::TooManyReleases | ReleaseError::ZeroCount => err("ValueError", e.to_string()),
        ReleaseError::Overflow => err("OverflowError", e.to_string()),
        _ => err("RuntimeError", e.to_string()),
    }
}

/// Python's index rules: negative from the end; `None` when out of range.
fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

/// Makes a built-in object, or `None` if `typeid` is not one.
pub(crate) fn make(typeid: &str, args: &[u8]) -> Option<Result<Arc<dyn Served>, RemoteError>> {
    let made: Result<Arc<dyn Served>, RemoteError> = (|| {
        Ok(match typeid {
            "dict" => {
                let items: Vec<(Vec<u8>, Vec<u8>)> = dec(args)?;
                let mut m = OrderedMap::default();
                for (k, v) in items {
                    m.insert(k, v);
                }
                Arc::new(DictObj(Mutex::new(m))) as Arc<dyn Served>
            }
            "list" => Arc::new(ListObj(Mutex::new(dec(args)?))),
            "Namespace" => Arc::new(NamespaceObj(Mutex::new(BTreeMap::new()))),
            "Value" => Arc::new(ValueObj(Mutex::new(dec(args)?))),
            "Array" => Arc::new(ArrayObj(Mutex::new(dec(args)?))),
            "Queue" | "JoinableQueue" => Arc::new(QueueObj(crate::queue::Queue::new(dec(args)?))),
            "Lock" => Arc::new(LockObj(Arc::new(Owned::new(false)))),
            "RLock" => Arc::new(LockObj(Arc::new(Owned::new(true)))),
            "Semaphore" => Arc::new(SemaphoreObj(threading::Semaphore::new(dec(args)?))),
            "BoundedSemaphore" => {
                Arc::new(BoundedObj(threading::BoundedSemaphore::new(dec(args)?)))
            }
            "Condition" => Arc::new(ConditionObj {
                lock: Arc::new(Owned::new(true)),
                waiters: Mutex::default(),
            }),
            "Event" => Arc::new(EventObj(threading::Event::new())),
            "Barrier" => {
                let (parties, timeout): (usize, Option<Duration>) = dec(args)?;
                let mut b = threading::Barrier::builder(parties);
                if let Some(t) = timeout {
                    b = b.timeout(t);
                }
                Arc::new(BarrierObj(b.build()))
            }
            "Pool" => {
                let processes: Option<usize> = dec(args)?;
                let pool = crate::multiprocessing::Pool::new(processes)
                    .map_err(|e| err("ValueError", e.to_string()))?;
                Arc::new(PoolObj(pool))
            }
            _ => return Err(err("__not_builtin__", "")),
        })
    })();
    match made {
        Err(e) if e.type_name == "__not_builtin__" => None,
        other => Some(other),
    }
}
