//! A persistent hash array mapped trie (CPython's `hamt.c` idea): an
//! immutable map whose clone is O(1) (one `Arc`), and whose updates copy
//! only the path to the changed leaf (O(log32 n) nodes). This is what makes
//! `copy_context()` cost the same for 1 variable and for 10,000.
//!
//! Keys are variable ids (`u64`), spread by a bijective mixer: two keys never
//! share a full 64-bit hash, so the trie needs no collision nodes (at worst
//! 13 levels of 5 bits, the last one 4).

use std::any::Any;
use std::sync::Arc;

/// What a leaf holds: the variable's identity (for iteration) and its value.
pub(crate) type Value = Arc<dyn Any + Send + Sync>;

/// One binding, shared by every version of the map that holds it (cloning a
/// leaf while copying a path is one reference count).
struct Leaf<M> {
    key: u64,
    meta: M,
    value: Value,
}

enum Node<M> {
    Leaf(Arc<Leaf<M>>),
    Branch {
        bitmap: u32,
        children: Arc<[Node<M>]>,
    },
}

impl<M> Clone for Node<M> {
    fn clone(&self) -> Self {
        match self {
            Node::Leaf(l) => Node::Leaf(l.clone()),
            Node::Branch { bitmap, children } => Node::Branch {
                bitmap: *bitmap,
                children: children.clone(),
            },
        }
    }
}

/// The map. `M` is per-key metadata kept beside the value (the variable's
/// name for iteration).
pub(crate) struct Hamt<M> {
    root: Option<Node<M>>,
    len: usize,
}

impl<M> Clone for Hamt<M> {
    fn clone(&self) -> Self {
        Hamt {
            root: self.root.clone(),
            len: self.len,
        }
    }
}

impl<M> Default for Hamt<M> {
    fn default() -> Self {
        Hamt { root: None, len: 0 }
    }
}

/// splitmix64's finalizer: a bijection, so distinct keys have distinct
/// hashes.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn slot(hash: u64, shift: u32) -> u32 {
    ((hash >> shift) & 31) as u32
}

fn index(bitmap: u32, bit: u32) -> usize {
    (bitmap & (bit - 1)).count_ones() as usize
}

impl<M> Hamt<M> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, key: u64) -> Option<(&M, &Value)> {
        let hash = mix(key);
        let mut node = self.root.as_ref()?;
        let mut shift = 0;
        loop {
            match node {
                Node::Leaf(leaf) => {
                    return (leaf.key == key).then_some((&leaf.meta, &leaf.value));
                }
                Node::Branch { bitmap, children } => {
                    let bit = 1 << slot(hash, shift);
                    if bitmap & bit == 0 {
                        return None;
                    }
                    node = &children[index(*bitmap, bit)];
                    shift += 5;
                }
            }
        }
    }

    /// A new map with `key` bound to `value` (this one is unchanged).
    pub(crate) fn insert(&self, key: u64, meta: M, value: Value) -> Hamt<M> {
        let leaf = Node::Leaf(Arc::new(Leaf { key, meta, value }));
        match &self.root {
            None => Hamt {
                root: Some(leaf),
                len: 1,
            },
            Some(root) => {
                let (root, added) = insert(root, mix(key), 0, key, leaf);
                Hamt {
                    root: Some(root),
                    len: self.len + usize::from(added),
                }
            }
        }
    }

    /// A new map without `key` (this one is unchanged).
    pub(crate) fn remove(&self, key: u64) -> Hamt<M> {
        let Some(root) = &self.root else {
            return self.clone();
        };
        match remove(root, mix(key), 0, key) {
            Removed::NotFound => self.clone(),
            Removed::Empty => Hamt::default(),
            Removed::Node(n) => Hamt {
                root: Some(n),
                len: self.len - 1,
            },
        }
    }

    /// Every binding, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &M, &Value)> {
        let mut stack: Vec<&Node<M>> = self.root.iter().collect();
        std::iter::from_fn(move || {
            while let Some(node) = stack.pop() {
                match node {
                    Node::Leaf(l) => return Some((l.key, &l.meta, &l.value)),
                    Node::Branch { children, .. } => stack.extend(children.iter()),
                }
            }
            None
        })
    }
}

fn hash_of<M>(n: &Node<M>) -> u64 {
    match n {
        Node::Leaf(l) => mix(l.key),
        Node::Branch { .. } => unreachable!("only leaves are rehashed"),
    }
}

/// Inserts `leaf` (whose key hashes to `hash`) below `node` at `shift`.
/// Returns the new node and whether a key was added (not replaced).
fn insert<M>(node: &Node<M>, hash: u64, shift: u32, key: u64, leaf: Node<M>) -> (Node<M>, bool) {
    match node {
        Node::Leaf(l) if l.key == key => (leaf, false),
        Node::Leaf(_) => (merge(node.clone(), hash_of(node), leaf, hash, shift), true),
        Node::Branch { bitmap, children } => {
            let bit = 1 << slot(hash, shift);
            let i = index(*bitmap, bit);
            if bitmap & bit != 0 {
                let (child, added) = insert(&children[i], hash, shift + 5, key, leaf);
                (
                    Node::Branch {
                        bitmap: *bitmap,
                        children: replaced(children, i, child),
                    },
                    added,
                )
            } else {
                let children = children[..i]
                    .iter()
                    .cloned()
                    .chain(std::iter::once(leaf))
                    .chain(children[i..].iter().cloned())
                    .collect();
                (
                    Node::Branch {
                        bitmap: bitmap | bit,
                        children,
                    },
                    true,
                )
            }
        }
    }
}

/// `children` with the one at `i` replaced (one allocation, exact size).
fn replaced<M>(children: &[Node<M>], i: usize, child: Node<M>) -> Arc<[Node<M>]> {
    let mut child = Some(child);
    children
        .iter()
        .enumerate()
        .map(|(j, c)| {
            if j == i {
                child.take().expect("once")
            } else {
                c.clone()
            }
        })
        .collect()
}

/// A branch holding two leaves whose hashes agree below `shift`.
fn merge<M>(a: Node<M>, ha: u64, b: Node<M>, hb: u64, shift: u32) -> Node<M> {
    let (sa, sb) = (slot(ha, shift), slot(hb, shift));
    if sa == sb {
        Node::Branch {
            bitmap: 1 << sa,
            children: vec![merge(a, ha, b, hb, shift + 5)].into(),
        }
    } else {
        let children = if sa < sb { vec![a, b] } else { vec![b, a] };
        Node::Branch {
            bitmap: (1 << sa) | (1 << sb),
            children: children.into(),
        }
    }
}

enum Removed<M> {
    NotFound,
    Empty,
    Node(Node<M>),
}

fn remove<M>(node: &Node<M>, hash: u64, shift: u32, key: u64) -> Removed<M> {
    match node {
        Node::Leaf(l) => {
            if l.key == key {
                Removed::Empty
            } else {
                Removed::NotFound
            }
        }
        Node::Branch { bitmap, children } => {
            let bit = 1 << slot(hash, shift);
            if bitmap & bit == 0 {
                return Removed::NotFound;
            }
            let i = index(*bitmap, bit);
            match remove(&children[i], hash, shift + 5, key) {
                Removed::NotFound => Removed::NotFound,
                Removed::Empty => {
                    let rest: Vec<Node<M>> = children
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, c)| c.clone())
                        .collect();
                    match rest.as_slice() {
                        [] => Removed::Empty,
                        // A branch left with a single leaf collapses into it.
                        [only @ Node::Leaf(_)] => Removed::Node(only.clone()),
                        _ => Removed::Node(Node::Branch {
                            bitmap: bitmap & !bit,
                            children: rest.into(),
                        }),
                    }
                }
                Removed::Node(child) => {
                    let single_leaf = children.len() == 1 && matches!(child, Node::Leaf(_));
                    if single_leaf {
                        return Removed::Node(child);
                    }
                    Removed::Node(Node::Branch {
                        bitmap: *bitmap,
                        children: replaced(children, i, child),
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn val(n: u64) -> Value {
        Arc::new(n)
    }

    fn read(h: &Hamt<()>, k: u64) -> Option<u64> {
        h.get(k).map(|(_, v)| *v.downcast_ref::<u64>().unwrap())
    }

    #[test]
    fn matches_a_hashmap_through_inserts_and_removes() {
        let mut h: Hamt<()> = Hamt::default();
        let mut m = HashMap::new();
        let mut x = 7u64;
        for step in 0..20_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let key = x % 3000;
            if x.is_multiple_of(5) {
                h = h.remove(key);
                m.remove(&key);
            } else {
                h = h.insert(key, (), val(step));
                m.insert(key, step);
            }
            assert_eq!(h.len(), m.len());
        }
        for k in 0..3000 {
            assert_eq!(read(&h, k), m.get(&k).copied());
        }
        let mut seen: Vec<u64> = h.iter().map(|(k, _, _)| k).collect();
        seen.sort();
        let mut keys: Vec<u64> = m.keys().copied().collect();
        keys.sort();
        assert_eq!(seen, keys);
        for k in keys {
            h = h.remove(k);
        }
        assert_eq!(h.len(), 0);
        assert!(h.iter().next().is_none());
    }

    #[test]
    fn old_versions_are_untouched() {
        let a: Hamt<()> = Hamt::default().insert(1, (), val(10));
        let b = a.insert(2, (), val(20)).insert(1, (), val(11));
        let c = b.remove(2);
        assert_eq!((read(&a, 1), read(&a, 2)), (Some(10), None));
        assert_eq!((read(&b, 1), read(&b, 2)), (Some(11), Some(20)));
        assert_eq!((read(&c, 1), read(&c, 2)), (Some(11), None));
        assert_eq!((a.len(), b.len(), c.len()), (1, 2, 1));
    }
}
