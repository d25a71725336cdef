//! `list`: [`ListProxy`].

use std::marker::PhantomData;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::client::{BaseProxy, Blocking, Proxy, arg, block};
use super::super::protocol::{ManagerError, seq};
use super::super::server::{Caller, Served, decode_arg as a, encode_result as ok};
use super::{err, index, no_method};
use crate::multiprocessing::errors::RemoteError;

// ---------------------------------------------------------------- list

pub(super) struct ListObj(pub(super) Mutex<Vec<Vec<u8>>>);

impl Served for ListObj {
    fn call(&self, _: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let mut l = self.0.lock();
        let out_of_range = || err("IndexError", "list index out of range");
        let at = |l: &Vec<Vec<u8>>| -> Result<usize, RemoteError> {
            index(a(args, 0)?, l.len()).ok_or_else(out_of_range)
        };
        let value = |i: usize| args.get(i).cloned().unwrap_or_default();
        match method {
            "len" => ok(&l.len()),
            "append" => {
                l.push(value(0));
                ok(&())
            }
            "extend" => {
                l.extend(args.iter().cloned());
                ok(&())
            }
            "insert" => {
                let i: i64 = a(args, 0)?;
                let n = l.len() as i64;
                let i = if i < 0 { (i + n).max(0) } else { i.min(n) } as usize;
                l.insert(i, value(1));
                ok(&())
            }
            "getitem" => Ok(l[at(&l)?].clone()),
            "setitem" => {
                let i = at(&l)?;
                l[i] = value(1);
                ok(&())
            }
            "delitem" => {
                let i = at(&l)?;
                l.remove(i);
                ok(&())
            }
            "pop" => {
                if l.is_empty() {
                    return Err(err("IndexError", "pop from empty list"));
                }
                let i = if args.is_empty() {
                    l.len() - 1
                } else {
                    at(&l)?
                };
                Ok(l.remove(i))
            }
            "contains" => ok(&l.contains(&value(0))),
            "count" => ok(&l.iter().filter(|x| **x == value(0)).count()),
            "index" => match l.iter().position(|x| *x == value(0)) {
                Some(i) => ok(&i),
                None => Err(err("ValueError", "value is not in list")),
            },
            "remove" => match l.iter().position(|x| *x == value(0)) {
                Some(i) => {
                    l.remove(i);
                    ok(&())
                }
                None => Err(err("ValueError", "list.remove(x): x not in list")),
            },
            "reverse" => {
                l.reverse();
                ok(&())
            }
            "clear" => {
                l.clear();
                ok(&())
            }
            "tolist" => Ok(seq(l.iter().map(Vec::as_slice))),
            _ => Err(no_method("list", method)),
        }
    }
}

/// A proxy to a list in a manager.
///
/// Python: `SyncManager.list()` (a `ListProxy`); indices follow Python's
/// rules (negative from the end).
pub struct ListProxy<T> {
    base: BaseProxy,
    _t: PhantomData<fn() -> T>,
}

proxy_type!(ListProxy<T>);

dual! {
    impl[T: Serialize + DeserializeOwned] ListProxy<T> {
        /// `len(l)`.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone (as every call).
        pub async fn len(&self) -> Result<usize, ManagerError> {
            self.base.call("len", vec![]).await
        }

        /// `len(l) == 0`.
        ///
        /// # Errors
        /// As [`len`](ListProxy::len).
        pub async fn is_empty(&self) -> Result<bool, ManagerError> {
            self.len().await.map(|n| n == 0)
        }

        /// `l.append(v)`.
        ///
        /// # Errors
        /// As [`len`](ListProxy::len).
        pub async fn append(&self, v: &T) -> Result<(), ManagerError> {
            self.base.call("append", vec![arg(v)]).await
        }

        /// `l.insert(i, v)`.
        ///
        /// # Errors
        /// As [`len`](ListProxy::len).
        pub async fn insert(&self, i: i64, v: &T) -> Result<(), ManagerError> {
            self.base.call("insert", vec![arg(&i), arg(v)]).await
        }

        /// `l[i]`.
        ///
        /// # Errors
        /// A remote `IndexError` out of range.
        pub async fn get(&self, i: i64) -> Result<T, ManagerError> {
            self.base.call("getitem", vec![arg(&i)]).await
        }

        /// `l[i] = v`.
        ///
        /// # Errors
        /// A remote `IndexError` out of range.
        pub async fn set(&self, i: i64, v: &T) -> Result<(), ManagerError> {
            self.base.call("setitem", vec![arg(&i), arg(v)]).await
        }

        /// `del l[i]`.
        ///
        /// # Errors
        /// A remote `IndexError` out of range.
        pub async fn del(&self, i: i64) -> Result<(), ManagerError> {
            self.base.call("delitem", vec![arg(&i)]).await
        }

        /// `l.pop()` (the last) or `l.pop(i)`.
        ///
        /// # Errors
        /// A remote `IndexError` when empty or out of range.
        pub async fn pop(&self, i: Option<i64>) -> Result<T, ManagerError> {
            self.base.call("pop", i.iter().map(arg).collect()).await
        }

        /// `v in l`.
        ///
        /// # Errors
        /// As [`len`](ListProxy::len).
        pub async fn contains(&self, v: &T) -> Result<bool, ManagerError> {
            self.base.call("contains", vec![arg(v)]).await
        }

        /// `l.count(v)`.
        ///
        /// # Errors
        /// As [`len`](ListProxy::len).
        pub async fn count(&self, v: &T) -> Result<usize, ManagerError> {
            self.base.call("count", vec![arg(v)]).await
        }

        /// `l.index(v)`.
        ///
        /// # Errors
        /// A remote `ValueError` if absent.
        pub async fn index(&self, v: &T) -> Result<usize, ManagerError> {
            self.base.call("index", vec![arg(v)]).await
        }

        /// `l.remove(v)` (the first equal one).
        ///
        /// # Errors
        /// A remote `ValueError` if absent.
        pub async fn remove(&self, v: &T) -> Result<(), ManagerError> {
            self.base.call("remove", vec![arg(v)]).await
        }

        /// `l.reverse()`.
        ///
        /// # Errors
        /// As [`len`](ListProxy::len).
        pub async fn reverse(&self) -> Result<(), ManagerError> {
            self.base.call("reverse", vec![]).await
        }

        /// `l.clear()`.
        ///
        /// # Errors
        /// As [`len`](ListProxy::len).
        pub async fn clear(&self) -> Result<(), ManagerError> {
            self.base.call("clear", vec![]).await
        }

        /// `list(l)`: a copy of the whole list.
        ///
        /// # Errors
        /// As [`len`](ListProxy::len).
        pub async fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
            self.base.call("tolist", vec![]).await
        }
    }
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// `l.extend(vs)`, in one call.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub async fn extend<'a>(&self, vs: impl IntoIterator<Item = &'a T>) -> Result<(), ManagerError>
    where
        T: 'a,
    {
        self.base
            .call("extend", vs.into_iter().map(arg).collect())
            .await
    }
}

impl<T: Serialize + DeserializeOwned> Blocking<'_, ListProxy<T>> {
    /// [`ListProxy::extend`], blocking.
    ///
    /// # Errors
    /// As [`ListProxy::len`].
    #[track_caller]
    pub fn extend<'a>(&self, vs: impl IntoIterator<Item = &'a T>) -> Result<(), ManagerError>
    where
        T: 'a,
    {
        block(self.0.extend(vs))
    }
}
