//! `dict`: an insertion-ordered map of encoded keys, and [`DictProxy`].

use std::collections::HashMap;
use std::marker::PhantomData;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::client::{BaseProxy, Blocking, Proxy, arg, block};
use super::super::protocol::{ManagerError, option, seq};
use super::super::server::{Caller, Served, encode_result as ok};
use super::{err, no_method};
use crate::multiprocessing::errors::RemoteError;

// ---------------------------------------------------------------- dict

/// An insertion-ordered map of encoded keys to encoded values.
#[derive(Default)]
pub(super) struct OrderedMap {
    slots: Vec<Option<(Vec<u8>, Vec<u8>)>>,
    index: HashMap<Vec<u8>, usize>,
}

impl OrderedMap {
    fn get(&self, k: &[u8]) -> Option<&[u8]> {
        let i = *self.index.get(k)?;
        self.slots[i].as_ref().map(|(_, v)| v.as_slice())
    }

    pub(super) fn insert(&mut self, k: Vec<u8>, v: Vec<u8>) {
        match self.index.get(&k) {
            Some(&i) => {
                if let Some(slot) = &mut self.slots[i] {
                    slot.1 = v;
                }
            }
            None => {
                self.index.insert(k.clone(), self.slots.len());
                self.slots.push(Some((k, v)));
            }
        }
    }

    fn remove(&mut self, k: &[u8]) -> Option<Vec<u8>> {
        let i = self.index.remove(k)?;
        let (_, v) = self.slots[i].take()?;
        if self.slots.len() > 32 && self.index.len() * 2 < self.slots.len() {
            self.slots.retain(Option::is_some);
            for (i, (k, _)) in self.slots.iter().flatten().enumerate() {
                self.index.insert(k.clone(), i);
            }
        }
        Some(v)
    }

    fn iter(&self) -> impl ExactSizeIterator<Item = &(Vec<u8>, Vec<u8>)> {
        let live: Vec<_> = self.slots.iter().flatten().collect();
        live.into_iter()
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
    }
}

pub(super) struct DictObj(pub(super) Mutex<OrderedMap>);

impl Served for DictObj {
    fn call(&self, _: &Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let mut m = self.0.lock();
        let key = || args.first().map(Vec::as_slice).unwrap_or_default();
        match method {
            "len" => ok(&m.len()),
            "contains" => ok(&m.get(key()).is_some()),
            "get" => Ok(option(m.get(key()))),
            "getitem" => match m.get(key()) {
                Some(v) => Ok(v.to_vec()),
                None => Err(err("KeyError", "no such key")),
            },
            "setitem" => {
                let v = args.get(1).cloned().unwrap_or_default();
                m.insert(key().to_vec(), v);
                ok(&())
            }
            "delitem" => match m.remove(key()) {
                Some(_) => ok(&()),
                None => Err(err("KeyError", "no such key")),
            },
            "pop" => Ok(option(m.remove(key()).as_deref())),
            "popitem" => {
                let last = m.iter().last().map(|(k, _)| k.clone());
                match last {
                    Some(k) => {
                        let v = m.remove(&k).unwrap_or_default();
                        Ok(option(Some(&[k, v].concat())))
                    }
                    None => Ok(option(None)),
                }
            }
            "setdefault" => {
                if m.get(key()).is_none() {
                    let v = args.get(1).cloned().unwrap_or_default();
                    m.insert(key().to_vec(), v);
                }
                Ok(m.get(key()).unwrap_or_default().to_vec())
            }
            "update" => {
                for kv in args.chunks(2) {
                    if let [k, v] = kv {
                        m.insert(k.clone(), v.clone());
                    }
                }
                ok(&())
            }
            "clear" => {
                m.clear();
                ok(&())
            }
            "keys" => Ok(seq(m
                .iter()
                .map(|(k, _)| k.as_slice())
                .collect::<Vec<_>>()
                .into_iter())),
            "values" => Ok(seq(m
                .iter()
                .map(|(_, v)| v.as_slice())
                .collect::<Vec<_>>()
                .into_iter())),
            "items" => {
                let pairs: Vec<Vec<u8>> =
                    m.iter().map(|(k, v)| [k.as_slice(), v].concat()).collect();
                Ok(seq(pairs.iter().map(Vec::as_slice)))
            }
            _ => Err(no_method("dict", method)),
        }
    }
}

/// A proxy to a dict in a manager: keys and values are serde types (keys
/// compare by their encoding).
///
/// Python: `SyncManager.dict()` (a `DictProxy`). `d[k]` is
/// [`getitem`](DictProxy::getitem) (a `KeyError` if absent) or
/// [`get`](DictProxy::get); `d[k] = v` is [`set`](DictProxy::set);
/// `del d[k]` is [`del`](DictProxy::del). Insertion order is kept, as
/// Python's.
pub struct DictProxy<K, V> {
    base: BaseProxy,
    _t: PhantomData<fn() -> (K, V)>,
}

proxy_type!(DictProxy<K, V>);

dual! {
    impl[K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned] DictProxy<K, V> {
        /// `len(d)`.
        ///
        /// # Errors
        /// [`ManagerError::Connection`] if the server is gone (as every call).
        pub async fn len(&self) -> Result<usize, ManagerError> {
            self.base.call("len", vec![]).await
        }

        /// `len(d) == 0`.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn is_empty(&self) -> Result<bool, ManagerError> {
            self.len().await.map(|n| n == 0)
        }

        /// `k in d`.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn contains(&self, k: &K) -> Result<bool, ManagerError> {
            self.base.call("contains", vec![arg(k)]).await
        }

        /// `d.get(k)`.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn get(&self, k: &K) -> Result<Option<V>, ManagerError> {
            self.base.call("get", vec![arg(k)]).await
        }

        /// `d[k]`.
        ///
        /// # Errors
        /// A remote `KeyError` if `k` is absent.
        pub async fn getitem(&self, k: &K) -> Result<V, ManagerError> {
            self.base.call("getitem", vec![arg(k)]).await
        }

        /// `d[k] = v`.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn set(&self, k: &K, v: &V) -> Result<(), ManagerError> {
            self.base.call("setitem", vec![arg(k), arg(v)]).await
        }

        /// `del d[k]`.
        ///
        /// # Errors
        /// A remote `KeyError` if `k` is absent.
        pub async fn del(&self, k: &K) -> Result<(), ManagerError> {
            self.base.call("delitem", vec![arg(k)]).await
        }

        /// `d.pop(k, None)`.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn pop(&self, k: &K) -> Result<Option<V>, ManagerError> {
            self.base.call("pop", vec![arg(k)]).await
        }

        /// `d.popitem()` (the last inserted), `None` when empty.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn popitem(&self) -> Result<Option<(K, V)>, ManagerError> {
            self.base.call("popitem", vec![]).await
        }

        /// `d.setdefault(k, v)`: the value now at `k`.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn setdefault(&self, k: &K, v: &V) -> Result<V, ManagerError> {
            self.base.call("setdefault", vec![arg(k), arg(v)]).await
        }

        /// `d.clear()`.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn clear(&self) -> Result<(), ManagerError> {
            self.base.call("clear", vec![]).await
        }

        /// `list(d.keys())`, in insertion order.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn keys(&self) -> Result<Vec<K>, ManagerError> {
            self.base.call("keys", vec![]).await
        }

        /// `list(d.values())`.
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn values(&self) -> Result<Vec<V>, ManagerError> {
            self.base.call("values", vec![]).await
        }

        /// `list(d.items())` (Python's `copy()` as pairs).
        ///
        /// # Errors
        /// As [`len`](DictProxy::len).
        pub async fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
            self.base.call("items", vec![]).await
        }
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// `d.update(pairs)`, in one call.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub async fn update<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    ) -> Result<(), ManagerError>
    where
        K: 'a,
        V: 'a,
    {
        let args = pairs
            .into_iter()
            .flat_map(|(k, v)| [arg(k), arg(v)])
            .collect();
        self.base.call("update", args).await
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned>
    Blocking<'_, DictProxy<K, V>>
{
    /// [`DictProxy::update`], blocking.
    ///
    /// # Errors
    /// As [`DictProxy::len`].
    #[track_caller]
    pub fn update<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    ) -> Result<(), ManagerError>
    where
        K: 'a,
        V: 'a,
    {
        block(self.0.update(pairs))
    }
}
