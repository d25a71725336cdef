//! `Namespace`, `Value` and `Array`: [`NamespaceProxy`], [`ValueProxy`],
//! [`ArrayProxy`].

use std::collections::BTreeMap;
use std::marker::PhantomData;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::client::{BaseProxy, Blocking, Proxy, arg, block};
use super::super::protocol::{ManagerError, seq};
use super::super::server::{Caller, Served, decode_arg as a, encode_result as ok};
use super::{err, index, no_method};
use crate::multiprocessing::errors::RemoteError;

// ----------------------------------------------------------- Namespace

pub(super) struct NamespaceObj(pub(super) Mutex<BTreeMap<String, Vec<u8>>>);

impl Served for NamespaceObj {
    fn call(&self, _: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let mut ns = self.0.lock();
        let missing = |name: &str| {
            err(
                "AttributeError",
                format!("'Namespace' object has no attribute '{name}'"),
            )
        };
        match method {
            "getattr" => {
                let name: String = a(args, 0)?;
                ns.get(&name).cloned().ok_or_else(|| missing(&name))
            }
            "setattr" => {
                let name: String = a(args, 0)?;
                ns.insert(name, args.get(1).cloned().unwrap_or_default());
                ok(&())
            }
            "delattr" => {
                let name: String = a(args, 0)?;
                ns.remove(&name)
                    .map(|_| Vec::new())
                    .ok_or_else(|| missing(&name))
            }
            "names" => ok(&ns.keys().collect::<Vec<_>>()),
            _ => Err(no_method("Namespace", method)),
        }
    }
}

/// A proxy to a namespace: named attributes of any serde types.
///
/// Python: `SyncManager.Namespace()`; `ns.x` is
/// [`get::<T>("x")`](NamespaceProxy::get), `ns.x = v` is
/// [`set`](NamespaceProxy::set).
pub struct NamespaceProxy {
    base: BaseProxy,
}

proxy_type!(NamespaceProxy);

dual! {
    impl[] NamespaceProxy {
        /// `del ns.name`.
        ///
        /// # Errors
        /// A remote `AttributeError` if it was never set.
        pub async fn del(&self, name: &str) -> Result<(), ManagerError> {
            self.base.call("delattr", vec![arg(name)]).await
        }

        /// The names set, sorted (Python's `vars(ns)` keys).
        ///
        /// # Errors
        /// As [`set`](NamespaceProxy::set).
        pub async fn names(&self) -> Result<Vec<String>, ManagerError> {
            self.base.call("names", vec![]).await
        }
    }
}

impl NamespaceProxy {
    /// `ns.name`.
    ///
    /// # Errors
    /// A remote `AttributeError` if it was never set.
    pub async fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, ManagerError> {
        self.base.call("getattr", vec![arg(name)]).await
    }

    /// `ns.name = v`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub async fn set<T: Serialize>(&self, name: &str, v: &T) -> Result<(), ManagerError> {
        self.base.call("setattr", vec![arg(name), arg(v)]).await
    }
}

impl Blocking<'_, NamespaceProxy> {
    /// [`NamespaceProxy::get`], blocking.
    ///
    /// # Errors
    /// A remote `AttributeError` if it was never set.
    #[track_caller]
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, ManagerError> {
        block(self.0.get(name))
    }

    /// [`NamespaceProxy::set`], blocking.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    #[track_caller]
    pub fn set<T: Serialize>(&self, name: &str, v: &T) -> Result<(), ManagerError> {
        block(self.0.set(name, v))
    }
}

// ------------------------------------------------------- Value, Array

pub(super) struct ValueObj(pub(super) Mutex<Vec<u8>>);

impl Served for ValueObj {
    fn call(&self, _: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let mut v = self.0.lock();
        match method {
            "get" => Ok(v.clone()),
            "set" => {
                *v = args.first().cloned().unwrap_or_default();
                ok(&())
            }
            _ => Err(no_method("Value", method)),
        }
    }
}

/// A proxy to one value in a manager.
///
/// Python: `SyncManager.Value(typecode, value)` (its `.value`); any serde
/// type here.
pub struct ValueProxy<T> {
    base: BaseProxy,
    _t: PhantomData<fn() -> T>,
}

proxy_type!(ValueProxy<T>);

dual! {
    impl[T: Serialize + DeserializeOwned] ValueProxy<T> {
        /// `v.value`.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone.
        pub async fn get(&self) -> Result<T, ManagerError> {
            self.base.call("get", vec![]).await
        }

        /// `v.value = x`.
        ///
        /// # Errors
        /// As [`get`](ValueProxy::get).
        pub async fn set(&self, x: &T) -> Result<(), ManagerError> {
            self.base.call("set", vec![arg(x)]).await
        }
    }
}

pub(super) struct ArrayObj(pub(super) Mutex<Vec<Vec<u8>>>);

impl Served for ArrayObj {
    fn call(&self, _: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let mut v = self.0.lock();
        let i = || -> Result<usize, RemoteError> {
            index(a(args, 0)?, v.len()).ok_or_else(|| err("IndexError", "array index out of range"))
        };
        match method {
            "len" => ok(&v.len()),
            "getitem" => Ok(v[i()?].clone()),
            "setitem" => {
                let i = i()?;
                v[i] = args.get(1).cloned().unwrap_or_default();
                ok(&())
            }
            "tolist" => Ok(seq(v.iter().map(Vec::as_slice))),
            _ => Err(no_method("Array", method)),
        }
    }
}

/// A proxy to a fixed-length array in a manager.
///
/// Python: `SyncManager.Array(typecode, sequence)` (an `ArrayProxy`).
pub struct ArrayProxy<T> {
    base: BaseProxy,
    _t: PhantomData<fn() -> T>,
}

proxy_type!(ArrayProxy<T>);

dual! {
    impl[T: Serialize + DeserializeOwned] ArrayProxy<T> {
        /// `len(a)`.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone.
        pub async fn len(&self) -> Result<usize, ManagerError> {
            self.base.call("len", vec![]).await
        }

        /// `len(a) == 0`.
        ///
        /// # Errors
        /// As [`len`](ArrayProxy::len).
        pub async fn is_empty(&self) -> Result<bool, ManagerError> {
            self.len().await.map(|n| n == 0)
        }

        /// `a[i]`.
        ///
        /// # Errors
        /// A remote `IndexError` out of range.
        pub async fn get(&self, i: i64) -> Result<T, ManagerError> {
            self.base.call("getitem", vec![arg(&i)]).await
        }

        /// `a[i] = x`.
        ///
        /// # Errors
        /// A remote `IndexError` out of range.
        pub async fn set(&self, i: i64, x: &T) -> Result<(), ManagerError> {
            self.base.call("setitem", vec![arg(&i), arg(x)]).await
        }

        /// `a[:]`.
        ///
        /// # Errors
        /// As [`len`](ArrayProxy::len).
        pub async fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
            self.base.call("tolist", vec![]).await
        }
    }
}
