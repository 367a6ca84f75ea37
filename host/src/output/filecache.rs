//! A bounded cache of open files, least recently used closed first.
//!
//! The writer keeps at most `capacity` output files open, so that any number of concurrent
//! flows works under a small descriptor limit (`ulimit -n 1024`). The cache only holds
//! descriptors; whether a file may be truncated when it is opened again is the writer's
//! business (it never is, once created in this run).

use std::fs::File;

use crate::fxhash::{id_map, IdMap};

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Entry<V> {
    key: u64,
    val: Option<V>,
    prev: usize,
    next: usize,
}

/// LRU map from a key (the writer uses `slot * 2 + direction`) to an open file.
#[derive(Debug)]
pub struct LruCache<V> {
    cap: usize,
    entries: Vec<Entry<V>>,
    free: Vec<usize>,
    map: IdMap<usize>,
    /// Most recently used.
    head: usize,
    /// Least recently used.
    tail: usize,
    /// Values closed to make room.
    pub evictions: u64,
}

/// The cache of open output files.
pub type FileCache = LruCache<File>;

impl<V> LruCache<V> {
    /// A cache holding at most `cap` values (at least 1).
    pub fn new(cap: usize) -> Self {
        LruCache {
            cap: cap.max(1),
            entries: Vec::new(),
            free: Vec::new(),
            map: id_map(),
            head: NIL,
            tail: NIL,
            evictions: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.entries[i].prev, self.entries[i].next);
        if p == NIL {
            self.head = n;
        } else {
            self.entries[p].next = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.entries[n].prev = p;
        }
    }

    fn push_front(&mut self, i: usize) {
        self.entries[i].prev = NIL;
        self.entries[i].next = self.head;
        if self.head != NIL {
            self.entries[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// The value for `key`, marked most recently used.
    pub fn get(&mut self, key: u64) -> Option<&mut V> {
        let i = *self.map.get(&key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        self.entries[i].val.as_mut()
    }

    /// Whether `key` is held (does not change the order).
    pub fn contains(&self, key: u64) -> bool {
        self.map.contains_key(&key)
    }

    /// Inserts (or replaces) `key`; when full, the least recently used value is dropped
    /// (a file is closed) first. Returns the evicted key, if any.
    pub fn insert(&mut self, key: u64, val: V) -> Option<u64> {
        if let Some(&i) = self.map.get(&key) {
            self.entries[i].val = Some(val);
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return None;
        }
        let mut evicted = None;
        if self.map.len() >= self.cap {
            let t = self.tail;
            self.unlink(t);
            let old = self.entries[t].key;
            self.entries[t].val = None;
            self.map.remove(&old);
            self.free.push(t);
            self.evictions += 1;
            evicted = Some(old);
        }
        let e = Entry {
            key,
            val: Some(val),
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.entries[i] = e;
                i
            }
            None => {
                self.entries.push(e);
                self.entries.len() - 1
            }
        };
        self.map.insert(key, i);
        self.push_front(i);
        evicted
    }

    /// Takes `key` out of the cache.
    pub fn remove(&mut self, key: u64) -> Option<V> {
        let i = self.map.remove(&key)?;
        self.unlink(i);
        self.free.push(i);
        self.entries[i].val.take()
    }

    /// Drops every value.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.free.clear();
        self.map.clear();
        self.head = NIL;
        self.tail = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut c: LruCache<u32> = LruCache::new(2);
        assert_eq!(c.insert(1, 10), None);
        assert_eq!(c.insert(2, 20), None);
        assert_eq!(c.get(1), Some(&mut 10)); // 2 is now the oldest
        assert_eq!(c.insert(3, 30), Some(2));
        assert!(c.contains(1) && c.contains(3) && !c.contains(2));
        assert_eq!(c.remove(1), Some(10));
        assert_eq!(c.len(), 1);
        assert_eq!(c.insert(4, 40), None);
        assert_eq!(c.insert(5, 50), Some(3));
        assert_eq!(c.evictions, 2);
    }

    #[test]
    fn many_keys_small_cache_stays_consistent() {
        let mut c: LruCache<u64> = LruCache::new(7);
        for k in 0..1000u64 {
            c.insert(k, k * 3);
            if k % 3 == 0 {
                c.remove(k / 2);
            }
            if k % 5 == 0 {
                let _ = c.get(k.saturating_sub(4));
            }
            assert!(c.len() <= 7);
        }
        for k in 990..1000u64 {
            if let Some(v) = c.get(k) {
                assert_eq!(*v, k * 3);
            }
        }
    }
}
