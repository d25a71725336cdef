//! `SyncManager`'s shared types: the objects in the server and their typed
//! proxies. Containers keep values as the bytes they came as (keys compare
//! by their encoding), so the server needs no type of the user's.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::callable::{Call, Plain};
use super::super::errors::RemoteError;
use super::client::{BaseProxy, Proxy, arg};
use super::protocol::{ManagerError, dec, option, seq};
use super::server::{Caller, Served, decode_arg as a, encode_result as ok};
use crate::threading::{self, ReleaseError};

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

/// A blocking acquire with Python's `(blocking, timeout)`.
fn acquire_with(
    args: &[Vec<u8>],
    try_: impl FnOnce() -> bool,
    block: impl FnOnce(),
    timed: impl FnOnce(Duration) -> bool,
) -> Result<bool, RemoteError> {
    let blocking: bool = a(args, 0)?;
    let timeout: Option<Duration> = a(args, 1)?;
    Ok(match (blocking, timeout) {
        (false, _) => try_(),
        (true, None) => {
            block();
            true
        }
        (true, Some(t)) => timed(t),
    })
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
            "Lock" => Arc::new(LockObj {
                lock: threading::Lock::new(),
                holder: Mutex::new(None),
            }),
            "RLock" => Arc::new(RLockObj(threading::RLock::new())),
            "Semaphore" => Arc::new(SemaphoreObj(threading::Semaphore::new(dec(args)?))),
            "BoundedSemaphore" => {
                Arc::new(BoundedObj(threading::BoundedSemaphore::new(dec(args)?)))
            }
            "Condition" => Arc::new(ConditionObj(threading::Condition::new())),
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
                let pool = super::super::Pool::new(processes)
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

// ---------------------------------------------------------------- dict

/// An insertion-ordered map of encoded keys to encoded values.
#[derive(Default)]
struct OrderedMap {
    slots: Vec<Option<(Vec<u8>, Vec<u8>)>>,
    index: HashMap<Vec<u8>, usize>,
}

impl OrderedMap {
    fn get(&self, k: &[u8]) -> Option<&[u8]> {
        let i = *self.index.get(k)?;
        self.slots[i].as_ref().map(|(_, v)| v.as_slice())
    }

    fn insert(&mut self, k: Vec<u8>, v: Vec<u8>) {
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

struct DictObj(Mutex<OrderedMap>);

impl Served for DictObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
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

proxy_type!(DictProxy<K, V>);

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// `len(d)`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone (as every call).
    pub fn len(&self) -> Result<usize, ManagerError> {
        self.base.call("len", vec![])
    }

    /// `len(d) == 0`.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.len().map(|n| n == 0)
    }

    /// `k in d`.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn contains(&self, k: &K) -> Result<bool, ManagerError> {
        self.base.call("contains", vec![arg(k)])
    }

    /// `d.get(k)`.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn get(&self, k: &K) -> Result<Option<V>, ManagerError> {
        self.base.call("get", vec![arg(k)])
    }

    /// `d[k]`.
    ///
    /// # Errors
    /// A remote `KeyError` if `k` is absent.
    pub fn getitem(&self, k: &K) -> Result<V, ManagerError> {
        self.base.call("getitem", vec![arg(k)])
    }

    /// `d[k] = v`.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn set(&self, k: &K, v: &V) -> Result<(), ManagerError> {
        self.base.call("setitem", vec![arg(k), arg(v)])
    }

    /// `del d[k]`.
    ///
    /// # Errors
    /// A remote `KeyError` if `k` is absent.
    pub fn del(&self, k: &K) -> Result<(), ManagerError> {
        self.base.call("delitem", vec![arg(k)])
    }

    /// `d.pop(k, None)`.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn pop(&self, k: &K) -> Result<Option<V>, ManagerError> {
        self.base.call("pop", vec![arg(k)])
    }

    /// `d.popitem()` (the last inserted), `None` when empty.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn popitem(&self) -> Result<Option<(K, V)>, ManagerError> {
        self.base.call("popitem", vec![])
    }

    /// `d.setdefault(k, v)`: the value now at `k`.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn setdefault(&self, k: &K, v: &V) -> Result<V, ManagerError> {
        self.base.call("setdefault", vec![arg(k), arg(v)])
    }

    /// `d.update(pairs)`, in one call.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn update<'a>(
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
        self.base.call("update", args)
    }

    /// `d.clear()`.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.base.call("clear", vec![])
    }

    /// `list(d.keys())`, in insertion order.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        self.base.call("keys", vec![])
    }

    /// `list(d.values())`.
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        self.base.call("values", vec![])
    }

    /// `list(d.items())` (Python's `copy()` as pairs).
    ///
    /// # Errors
    /// As [`len`](DictProxy::len).
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        self.base.call("items", vec![])
    }
}

// ---------------------------------------------------------------- list

struct ListObj(Mutex<Vec<Vec<u8>>>);

impl Served for ListObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
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

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// `len(l)`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone (as every call).
    pub fn len(&self) -> Result<usize, ManagerError> {
        self.base.call("len", vec![])
    }

    /// `len(l) == 0`.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.len().map(|n| n == 0)
    }

    /// `l.append(v)`.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub fn append(&self, v: &T) -> Result<(), ManagerError> {
        self.base.call("append", vec![arg(v)])
    }

    /// `l.extend(vs)`, in one call.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub fn extend<'a>(&self, vs: impl IntoIterator<Item = &'a T>) -> Result<(), ManagerError>
    where
        T: 'a,
    {
        self.base.call("extend", vs.into_iter().map(arg).collect())
    }

    /// `l.insert(i, v)`.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub fn insert(&self, i: i64, v: &T) -> Result<(), ManagerError> {
        self.base.call("insert", vec![arg(&i), arg(v)])
    }

    /// `l[i]`.
    ///
    /// # Errors
    /// A remote `IndexError` out of range.
    pub fn get(&self, i: i64) -> Result<T, ManagerError> {
        self.base.call("getitem", vec![arg(&i)])
    }

    /// `l[i] = v`.
    ///
    /// # Errors
    /// A remote `IndexError` out of range.
    pub fn set(&self, i: i64, v: &T) -> Result<(), ManagerError> {
        self.base.call("setitem", vec![arg(&i), arg(v)])
    }

    /// `del l[i]`.
    ///
    /// # Errors
    /// A remote `IndexError` out of range.
    pub fn del(&self, i: i64) -> Result<(), ManagerError> {
        self.base.call("delitem", vec![arg(&i)])
    }

    /// `l.pop()` (the last) or `l.pop(i)`.
    ///
    /// # Errors
    /// A remote `IndexError` when empty or out of range.
    pub fn pop(&self, i: Option<i64>) -> Result<T, ManagerError> {
        self.base.call("pop", i.iter().map(arg).collect())
    }

    /// `v in l`.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub fn contains(&self, v: &T) -> Result<bool, ManagerError> {
        self.base.call("contains", vec![arg(v)])
    }

    /// `l.count(v)`.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub fn count(&self, v: &T) -> Result<usize, ManagerError> {
        self.base.call("count", vec![arg(v)])
    }

    /// `l.index(v)`.
    ///
    /// # Errors
    /// A remote `ValueError` if absent.
    pub fn index(&self, v: &T) -> Result<usize, ManagerError> {
        self.base.call("index", vec![arg(v)])
    }

    /// `l.remove(v)` (the first equal one).
    ///
    /// # Errors
    /// A remote `ValueError` if absent.
    pub fn remove(&self, v: &T) -> Result<(), ManagerError> {
        self.base.call("remove", vec![arg(v)])
    }

    /// `l.reverse()`.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub fn reverse(&self) -> Result<(), ManagerError> {
        self.base.call("reverse", vec![])
    }

    /// `l.clear()`.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.base.call("clear", vec![])
    }

    /// `list(l)`: a copy of the whole list.
    ///
    /// # Errors
    /// As [`len`](ListProxy::len).
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        self.base.call("tolist", vec![])
    }
}

// ----------------------------------------------------------- Namespace

struct NamespaceObj(Mutex<BTreeMap<String, Vec<u8>>>);

impl Served for NamespaceObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
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

impl NamespaceProxy {
    /// `ns.name`.
    ///
    /// # Errors
    /// A remote `AttributeError` if it was never set.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, ManagerError> {
        self.base.call("getattr", vec![arg(name)])
    }

    /// `ns.name = v`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn set<T: Serialize>(&self, name: &str, v: &T) -> Result<(), ManagerError> {
        self.base.call("setattr", vec![arg(name), arg(v)])
    }

    /// `del ns.name`.
    ///
    /// # Errors
    /// A remote `AttributeError` if it was never set.
    pub fn del(&self, name: &str) -> Result<(), ManagerError> {
        self.base.call("delattr", vec![arg(name)])
    }

    /// The names set, sorted (Python's `vars(ns)` keys).
    ///
    /// # Errors
    /// As [`set`](NamespaceProxy::set).
    pub fn names(&self) -> Result<Vec<String>, ManagerError> {
        self.base.call("names", vec![])
    }
}

// ------------------------------------------------------- Value, Array

struct ValueObj(Mutex<Vec<u8>>);

impl Served for ValueObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
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

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// `v.value`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn get(&self) -> Result<T, ManagerError> {
        self.base.call("get", vec![])
    }

    /// `v.value = x`.
    ///
    /// # Errors
    /// As [`get`](ValueProxy::get).
    pub fn set(&self, x: &T) -> Result<(), ManagerError> {
        self.base.call("set", vec![arg(x)])
    }
}

struct ArrayObj(Mutex<Vec<Vec<u8>>>);

impl Served for ArrayObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
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

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// `len(a)`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn len(&self) -> Result<usize, ManagerError> {
        self.base.call("len", vec![])
    }

    /// `len(a) == 0`.
    ///
    /// # Errors
    /// As [`len`](ArrayProxy::len).
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.len().map(|n| n == 0)
    }

    /// `a[i]`.
    ///
    /// # Errors
    /// A remote `IndexError` out of range.
    pub fn get(&self, i: i64) -> Result<T, ManagerError> {
        self.base.call("getitem", vec![arg(&i)])
    }

    /// `a[i] = x`.
    ///
    /// # Errors
    /// A remote `IndexError` out of range.
    pub fn set(&self, i: i64, x: &T) -> Result<(), ManagerError> {
        self.base.call("setitem", vec![arg(&i), arg(x)])
    }

    /// `a[:]`.
    ///
    /// # Errors
    /// As [`len`](ArrayProxy::len).
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        self.base.call("tolist", vec![])
    }
}

// ---------------------------------------------------------------- Queue

struct QueueObj(crate::queue::Queue<Vec<u8>>);

impl Served for QueueObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let q = self.0.blocking();
        match method {
            "put" => {
                let item = args.first().cloned().unwrap_or_default();
                let block: bool = a(args, 1)?;
                let timeout: Option<Duration> = a(args, 2)?;
                let r = match (block, timeout) {
                    (false, _) => q.put_nowait(item).map_err(|_| ()),
                    (true, None) => q.put(item).map_err(|_| ()),
                    (true, Some(t)) => q.put_timeout(item, t).map_err(|_| ()),
                };
                r.map_err(|()| err("Full", "the queue is full"))?;
                ok(&())
            }
            "get" => {
                let block: bool = a(args, 0)?;
                let timeout: Option<Duration> = a(args, 1)?;
                let r = match (block, timeout) {
                    (false, _) => q.get_nowait().map_err(|_| ()),
                    (true, None) => q.get().map_err(|_| ()),
                    (true, Some(t)) => q.get_timeout(t).map_err(|_| ()),
                };
                r.map_err(|()| err("Empty", "the queue is empty"))
            }
            "qsize" => ok(&q.qsize()),
            "empty" => ok(&q.empty()),
            "full" => ok(&q.full()),
            "task_done" => q
                .task_done()
                .map_err(|e| err("ValueError", e.to_string()))
                .and_then(|()| ok(&())),
            "join" => {
                q.join();
                ok(&())
            }
            _ => Err(no_method("Queue", method)),
        }
    }
}

/// A proxy to a queue in a manager (also its `JoinableQueue`).
///
/// Python: `SyncManager.Queue(maxsize)` / `JoinableQueue(maxsize)` (a
/// `queue.Queue` in the server); `Empty` and `Full` come back as remote
/// errors of those names ([`ManagerError::is`]).
pub struct QueueProxy<T> {
    base: BaseProxy,
    _t: PhantomData<fn() -> T>,
}

proxy_type!(QueueProxy<T>);

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    fn put_with(
        &self,
        item: &T,
        block: bool,
        timeout: Option<Duration>,
    ) -> Result<(), ManagerError> {
        self.base
            .call("put", vec![arg(item), arg(&block), arg(&timeout)])
    }

    fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<T, ManagerError> {
        self.base.call("get", vec![arg(&block), arg(&timeout)])
    }

    /// `q.put(item)`: waits for room.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn put(&self, item: &T) -> Result<(), ManagerError> {
        self.put_with(item, true, None)
    }

    /// `q.put(item, timeout=t)`.
    ///
    /// # Errors
    /// A remote `Full` if no room came in time.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), ManagerError> {
        self.put_with(item, true, Some(timeout))
    }

    /// `q.put_nowait(item)`.
    ///
    /// # Errors
    /// A remote `Full`.
    pub fn put_nowait(&self, item: &T) -> Result<(), ManagerError> {
        self.put_with(item, false, None)
    }

    /// `q.get()`: waits for an item.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn get(&self) -> Result<T, ManagerError> {
        self.get_with(true, None)
    }

    /// `q.get(timeout=t)`.
    ///
    /// # Errors
    /// A remote `Empty` if nothing came in time.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerError> {
        self.get_with(true, Some(timeout))
    }

    /// `q.get_nowait()`.
    ///
    /// # Errors
    /// A remote `Empty`.
    pub fn get_nowait(&self) -> Result<T, ManagerError> {
        self.get_with(false, None)
    }

    /// `q.qsize()`.
    ///
    /// # Errors
    /// As [`put`](QueueProxy::put).
    pub fn qsize(&self) -> Result<usize, ManagerError> {
        self.base.call("qsize", vec![])
    }

    /// `q.empty()`.
    ///
    /// # Errors
    /// As [`put`](QueueProxy::put).
    pub fn empty(&self) -> Result<bool, ManagerError> {
        self.base.call("empty", vec![])
    }

    /// `q.full()`.
    ///
    /// # Errors
    /// As [`put`](QueueProxy::put).
    pub fn full(&self) -> Result<bool, ManagerError> {
        self.base.call("full", vec![])
    }

    /// `q.task_done()`.
    ///
    /// # Errors
    /// A remote `ValueError` when called more times than items were put.
    pub fn task_done(&self) -> Result<(), ManagerError> {
        self.base.call("task_done", vec![])
    }

    /// `q.join()`: waits until every item put was marked done.
    ///
    /// # Errors
    /// As [`put`](QueueProxy::put).
    pub fn join(&self) -> Result<(), ManagerError> {
        self.base.call("join", vec![])
    }
}

// ------------------------------------------------------ Lock and RLock

struct LockObj {
    lock: threading::Lock,
    /// The connection that holds it (to release it if that client dies).
    holder: Mutex<Option<u64>>,
}

impl Served for LockObj {
    fn call(&self, cx: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let l = self.lock.blocking();
        match method {
            "acquire" => {
                let got = acquire_with(
                    args,
                    || l.try_acquire(),
                    || l.acquire(),
                    |t| l.acquire_timeout(t),
                )?;
                if got {
                    *self.holder.lock() = Some(cx.conn);
                }
                ok(&got)
            }
            "release" => {
                let mut h = self.holder.lock();
                l.release().map_err(release_error)?;
                *h = None;
                ok(&())
            }
            "locked" => ok(&l.locked()),
            _ => Err(no_method("Lock", method)),
        }
    }

    fn disconnected(&self, cx: Caller) {
        let mut h = self.holder.lock();
        if *h == Some(cx.conn) {
            *h = None;
            let _ = self.lock.release();
        }
    }
}

/// Releases every level the calling (server) thread holds of `r`.
fn release_all(r: &threading::RLock) {
    while r.is_owned() {
        if r.release().is_err() {
            break;
        }
    }
}

struct RLockObj(threading::RLock);

/// RLock-like calls on the server thread of the calling connection (each
/// client thread has its own connection, so ownership is per client
/// thread, as Python's).
fn rlock_call(
    r: &threading::RLock,
    typeid: &str,
    method: &str,
    args: &[Vec<u8>],
) -> Option<Result<Vec<u8>, RemoteError>> {
    let b = r.blocking();
    Some(match method {
        "acquire" => acquire_with(
            args,
            || b.try_acquire(),
            || b.acquire(),
            |t| b.acquire_timeout(t),
        )
        .and_then(|got| ok(&got)),
        "release" => b.release().map_err(release_error).and_then(|()| ok(&())),
        "locked" => ok(&b.locked()),
        _ => {
            let _ = typeid;
            return None;
        }
    })
}

impl Served for RLockObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        rlock_call(&self.0, "RLock", method, args)
            .unwrap_or_else(|| Err(no_method("RLock", method)))
    }

    fn disconnected(&self, _: Caller) {
        release_all(&self.0);
    }
}

/// A proxy to a lock (`Lock` or `RLock`) in a manager.
///
/// Python: `SyncManager.Lock()` / `RLock()` (an `AcquirerProxy`). A lock
/// whose holder disconnects (its process died, or dropped the connection)
/// is released by the server: a dead client never leaves it taken.
pub struct LockProxy {
    base: BaseProxy,
}

proxy_type!(LockProxy);

/// `acquire` / `release` of the lock-like proxies.
macro_rules! acquirer {
    ($name:ident) => {
        impl $name {
            /// `acquire()`: waits for it.
            ///
            /// # Errors
            /// [`ManagerError::Connection`] if the server is gone.
            pub fn acquire(&self) -> Result<(), ManagerError> {
                self.base
                    .call::<bool>("acquire", vec![arg(&true), arg(&None::<Duration>)])
                    .map(|_| ())
            }

            /// `acquire(blocking=False)`: whether it was taken.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn try_acquire(&self) -> Result<bool, ManagerError> {
                self.base
                    .call("acquire", vec![arg(&false), arg(&None::<Duration>)])
            }

            /// `acquire(timeout=t)`: whether it was taken in time.
            ///
            /// # Errors
            /// As [`acquire`](Self::acquire).
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
                self.base
                    .call("acquire", vec![arg(&true), arg(&Some(timeout))])
            }

            /// `release()`.
            ///
            /// # Errors
            /// A remote `RuntimeError` if not held (`ValueError` for a
            /// bounded semaphore released too often).
            pub fn release(&self) -> Result<(), ManagerError> {
                self.base.call("release", vec![])
            }
        }
    };
}

acquirer!(LockProxy);

impl LockProxy {
    /// `locked()`.
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub fn locked(&self) -> Result<bool, ManagerError> {
        self.base.call("locked", vec![])
    }
}

// ------------------------------------------------------------ Semaphore

struct SemaphoreObj(threading::Semaphore);
struct BoundedObj(threading::BoundedSemaphore);

fn semaphore_call(
    s: &threading::Semaphore,
    typeid: &str,
    method: &str,
    args: &[Vec<u8>],
) -> Result<Vec<u8>, RemoteError> {
    let b = s.blocking();
    match method {
        "acquire" => acquire_with(
            args,
            || b.try_acquire(),
            || b.acquire(),
            |t| b.acquire_timeout(t),
        )
        .and_then(|got| ok(&got)),
        "release" => {
            let n: usize = if args.is_empty() { 1 } else { a(args, 0)? };
            b.release(n).map_err(release_error).and_then(|()| ok(&()))
        }
        "value" => ok(&b.value()),
        _ => Err(no_method(typeid, method)),
    }
}

impl Served for SemaphoreObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        semaphore_call(&self.0, "Semaphore", method, args)
    }
}

impl Served for BoundedObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        semaphore_call(&self.0, "BoundedSemaphore", method, args)
    }
}

/// A proxy to a semaphore (or bounded semaphore) in a manager.
///
/// Python: `SyncManager.Semaphore(value)` / `BoundedSemaphore(value)`.
/// Permits are not tied to who took them: a client that dies holding some
/// does not give them back (semaphores are often released by another
/// party).
pub struct SemaphoreProxy {
    base: BaseProxy,
}

proxy_type!(SemaphoreProxy);
acquirer!(SemaphoreProxy);

impl SemaphoreProxy {
    /// `release(n)`.
    ///
    /// # Errors
    /// A remote `ValueError` if a bounded semaphore would go above its
    /// initial value.
    pub fn release_n(&self, n: usize) -> Result<(), ManagerError> {
        self.base.call("release", vec![arg(&n)])
    }

    /// The number of permits now.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn value(&self) -> Result<usize, ManagerError> {
        self.base.call("value", vec![])
    }
}

// ------------------------------------------------------------ Condition

struct ConditionObj(threading::Condition<threading::RLock>);

impl Served for ConditionObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let lock = self.0.underlying_lock();
        if let Some(r) = rlock_call(lock, "Condition", method, args) {
            return r;
        }
        let not_owned = |e: threading::NotOwned| err("RuntimeError", e.to_string());
        match method {
            "wait" => {
                let timeout: Option<Duration> = a(args, 0)?;
                // The level this thread holds, as a guard for the wait,
                // kept (not released) afterwards: the client releases it.
                // Not held: the wait's own check refuses, lock untouched.
                let guard = threading::RLockGuard { rlock: lock };
                let (guard, notified) = match timeout {
                    None => (self.0.blocking().wait(guard).map_err(not_owned)?, true),
                    Some(t) => self
                        .0
                        .blocking()
                        .wait_timeout(guard, t)
                        .map_err(not_owned)?,
                };
                std::mem::forget(guard);
                ok(&notified)
            }
            "notify" => {
                let n: usize = a(args, 0)?;
                self.0.notify(n).map_err(not_owned).and_then(|()| ok(&()))
            }
            "notify_all" => self
                .0
                .notify_all()
                .map_err(not_owned)
                .and_then(|()| ok(&())),
            _ => Err(no_method("Condition", method)),
        }
    }

    fn disconnected(&self, _: Caller) {
        release_all(self.0.underlying_lock());
    }
}

/// A proxy to a condition variable (over an `RLock`) in a manager.
///
/// Python: `SyncManager.Condition()`. `wait` needs the lock held by the
/// calling thread ([`acquire`](ConditionProxy::acquire) first), as
/// Python's; its predicate form cannot cross (a closure), so loop on
/// [`wait`](ConditionProxy::wait) instead.
pub struct ConditionProxy {
    base: BaseProxy,
}

proxy_type!(ConditionProxy);
acquirer!(ConditionProxy);

impl ConditionProxy {
    /// `wait(timeout)`: releases the lock, waits for a notification (or
    /// the timeout), takes the lock again; whether it was notified.
    ///
    /// # Errors
    /// A remote `RuntimeError` if the lock is not held.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        self.base.call("wait", vec![arg(&timeout)])
    }

    /// `notify(n)`.
    ///
    /// # Errors
    /// A remote `RuntimeError` if the lock is not held.
    pub fn notify(&self, n: usize) -> Result<(), ManagerError> {
        self.base.call("notify", vec![arg(&n)])
    }

    /// `notify_all()`.
    ///
    /// # Errors
    /// As [`notify`](ConditionProxy::notify).
    pub fn notify_all(&self) -> Result<(), ManagerError> {
        self.base.call("notify_all", vec![])
    }
}

// ---------------------------------------------------------------- Event

struct EventObj(threading::Event);

impl Served for EventObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let e = self.0.blocking();
        match method {
            "set" => {
                e.set();
                ok(&())
            }
            "clear" => {
                e.clear();
                ok(&())
            }
            "is_set" => ok(&e.is_set()),
            "wait" => {
                let timeout: Option<Duration> = a(args, 0)?;
                ok(&match timeout {
                    None => {
                        e.wait();
                        true
                    }
                    Some(t) => e.wait_timeout(t),
                })
            }
            _ => Err(no_method("Event", method)),
        }
    }
}

/// A proxy to an event in a manager.
///
/// Python: `SyncManager.Event()` (an `EventProxy`).
pub struct EventProxy {
    base: BaseProxy,
}

proxy_type!(EventProxy);

impl EventProxy {
    /// `set()`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn set(&self) -> Result<(), ManagerError> {
        self.base.call("set", vec![])
    }

    /// `clear()`.
    ///
    /// # Errors
    /// As [`set`](EventProxy::set).
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.base.call("clear", vec![])
    }

    /// `is_set()`.
    ///
    /// # Errors
    /// As [`set`](EventProxy::set).
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        self.base.call("is_set", vec![])
    }

    /// `wait(timeout)`: whether it is set.
    ///
    /// # Errors
    /// As [`set`](EventProxy::set).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        self.base.call("wait", vec![arg(&timeout)])
    }
}

// -------------------------------------------------------------- Barrier

struct BarrierObj(threading::Barrier);

impl Served for BarrierObj {
    fn call(&self, _: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        let b = self.0.blocking();
        let broken = |_| err("BrokenBarrierError", "the barrier is broken");
        match method {
            "wait" => {
                let timeout: Option<Duration> = a(args, 0)?;
                let r = match timeout {
                    None => b.wait(),
                    Some(t) => b.wait_timeout(t),
                };
                r.map_err(broken).and_then(|i| ok(&i))
            }
            "reset" => {
                self.0.reset();
                ok(&())
            }
            "abort" => {
                self.0.abort();
                ok(&())
            }
            "parties" => ok(&self.0.parties()),
            "n_waiting" => ok(&self.0.n_waiting()),
            "broken" => ok(&self.0.broken()),
            _ => Err(no_method("Barrier", method)),
        }
    }
}

/// A proxy to a barrier in a manager.
///
/// Python: `SyncManager.Barrier(parties, timeout)` (without `action`: a
/// closure cannot cross).
pub struct BarrierProxy {
    base: BaseProxy,
}

proxy_type!(BarrierProxy);

impl BarrierProxy {
    /// `wait(timeout)`: this party's index.
    ///
    /// # Errors
    /// A remote `BrokenBarrierError` if the barrier breaks (a timeout, an
    /// abort, a reset).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<usize, ManagerError> {
        self.base.call("wait", vec![arg(&timeout)])
    }

    /// `reset()`.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.base.call("reset", vec![])
    }

    /// `abort()`.
    ///
    /// # Errors
    /// As [`reset`](BarrierProxy::reset).
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.base.call("abort", vec![])
    }

    /// `parties`.
    ///
    /// # Errors
    /// As [`reset`](BarrierProxy::reset).
    pub fn parties(&self) -> Result<usize, ManagerError> {
        self.base.call("parties", vec![])
    }

    /// `n_waiting`.
    ///
    /// # Errors
    /// As [`reset`](BarrierProxy::reset).
    pub fn n_waiting(&self) -> Result<usize, ManagerError> {
        self.base.call("n_waiting", vec![])
    }

    /// `broken`.
    ///
    /// # Errors
    /// As [`reset`](BarrierProxy::reset).
    pub fn broken(&self) -> Result<bool, ManagerError> {
        self.base.call("broken", vec![])
    }
}

// ----------------------------------------------------------------- Pool

struct PoolObj(super::super::Pool);

impl Served for PoolObj {
    fn call(&self, cx: Caller, method: &str, args: &[Vec<u8>]) -> Result<Vec<u8>, RemoteError> {
        match method {
            "run" => {
                if !cx.same_binary {
                    return Err(err(
                        "TypeError",
                        "only a client running this same binary may send calls to a managed Pool",
                    ));
                }
                let call: Call = a(args, 0)?;
                let futures = args[1..]
                    .iter()
                    .map(|chunk| self.0.submit_raw(call, chunk.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err("ValueError", e.to_string()))?;
                let mut replies = Vec::with_capacity(futures.len());
                for f in futures {
                    match f.blocking().take_result() {
                        Ok(r) => replies.push(r),
                        Err(crate::futures::FutureError::Failed(w)) => {
                            let mut e = err(w.type_name(), w.message());
                            e.backtrace = w.traceback().map(str::to_owned);
                            return Err(e);
                        }
                        Err(e) => return Err(err("RuntimeError", e.to_string())),
                    }
                }
                ok(&replies)
            }
            "processes" => ok(&self.0.processes()),
            "close" => {
                self.0.close();
                ok(&())
            }
            "terminate" => {
                self.0.terminate();
                ok(&())
            }
            "join" => self
                .0
                .join()
                .map_err(|e| err("ValueError", e.to_string()))
                .and_then(|()| ok(&())),
            _ => Err(no_method("Pool", method)),
        }
    }
}

/// A proxy to a process pool living in a manager's server.
///
/// Python: `SyncManager.Pool(processes)`. The work is a plain `fn` on
/// serde arguments, as [`Pool`](super::super::Pool)'s; it crosses as a
/// code offset, so only a client running the same binary as the server
/// (the same file, or a copy of it on the server's machine, as a
/// [`Process`](super::super::Process) child) may send it; a client of
/// another build gets a remote `TypeError` (code addresses mean nothing
/// there). Calls block until the results are back.
pub struct PoolProxy {
    base: BaseProxy,
}

proxy_type!(PoolProxy);

impl PoolProxy {
    /// `f` over `args` on the pool's workers, results in order;
    /// `chunksize` calls per message (0: about four chunks per worker).
    ///
    /// Python: `pool_proxy.map(func, iterable, chunksize)`.
    ///
    /// # Errors
    /// The first failed call's error as [`ManagerError::Remote`] (a panic
    /// with its remote backtrace, or `BrokenProcessPool` for a worker that
    /// died), [`ManagerError::Codec`] for arguments holding OS handles.
    pub fn map<A, R>(
        &self,
        f: fn(A) -> R,
        args: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>, ManagerError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let args: Vec<A> = args.into_iter().collect();
        let chunksize = match chunksize {
            0 => {
                let workers: usize = self.base.call("processes", vec![])?;
                args.len().div_ceil(workers.max(1) * 4).max(1)
            }
            n => n,
        };
        let call = Call::batch::<Plain<A, R>>(f as usize);
        let mut request = vec![arg(&call)];
        let n = args.len();
        let mut it = args.into_iter().peekable();
        while it.peek().is_some() {
            let chunk: Vec<A> = it.by_ref().take(chunksize).collect();
            let (bytes, fds) = super::super::handles::collect(|| postcard::to_allocvec(&chunk));
            if !fds.is_empty() {
                return Err(ManagerError::Codec(
                    "OS handles cannot be sent to a managed Pool".into(),
                ));
            }
            request.push(bytes.map_err(|e| ManagerError::Codec(e.to_string()))?);
        }
        let replies: Vec<Vec<u8>> = self.base.call("run", request)?;
        let mut out = Vec::with_capacity(n);
        for r in replies {
            let outs: Vec<Result<R, RemoteError>> =
                postcard::from_bytes(&r).map_err(|e| ManagerError::Codec(e.to_string()))?;
            for o in outs {
                out.push(o.map_err(ManagerError::Remote)?);
            }
        }
        Ok(out)
    }

    /// `f(arg)` on one of the pool's workers.
    ///
    /// Python: `pool_proxy.apply(func, args)`.
    ///
    /// # Errors
    /// As [`map`](PoolProxy::map).
    pub fn apply<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<R, ManagerError>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let mut v = self.map(f, [arg], 1)?;
        Ok(v.remove(0))
    }

    /// The number of workers.
    ///
    /// # Errors
    /// [`ManagerError::Connection`] if the server is gone.
    pub fn processes(&self) -> Result<usize, ManagerError> {
        self.base.call("processes", vec![])
    }

    /// `close()`.
    ///
    /// # Errors
    /// As [`processes`](PoolProxy::processes).
    pub fn close(&self) -> Result<(), ManagerError> {
        self.base.call("close", vec![])
    }

    /// `terminate()`.
    ///
    /// # Errors
    /// As [`processes`](PoolProxy::processes).
    pub fn terminate(&self) -> Result<(), ManagerError> {
        self.base.call("terminate", vec![])
    }

    /// `join()` (after `close` or `terminate`).
    ///
    /// # Errors
    /// A remote `ValueError` if the pool is still running.
    pub fn join(&self) -> Result<(), ManagerError> {
        self.base.call("join", vec![])
    }
}
