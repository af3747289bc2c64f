//! A least-recently-used cache bounded in bytes, shared by every clone of a [`Storage`](crate::Storage).
//!
//! It holds verified record bytes, decompressed cold blocks (so reading the records of one run
//! from the cold tier decompresses each block once) and warm dictionaries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;

use benchfleet_model::Digest;

use crate::BlobKey;

/// What a cache entry is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// Canonical bytes of a record (already verified).
    Record(Digest),
    /// A decompressed cold block: segment key and the block's offset in it.
    Block(BlobKey, u64),
    /// A warm dictionary.
    Dict(Digest),
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<CacheKey, (Bytes, u64)>,
    order: BTreeMap<u64, CacheKey>,
    tick: u64,
    bytes: u64,
    hits: u64,
    misses: u64,
}

/// Byte-bounded LRU. A capacity of 0 caches nothing.
#[derive(Debug)]
pub struct ByteLru {
    capacity: u64,
    inner: Mutex<Inner>,
}

/// Counters for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: u64,
    pub capacity: u64,
    pub hits: u64,
    pub misses: u64,
}

impl ByteLru {
    pub fn new(capacity: u64) -> Self {
        ByteLru {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, key: &CacheKey) -> Option<Bytes> {
        let mut g = self.lock();
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        match inner.map.get_mut(key) {
            Some((bytes, used)) => {
                inner.order.remove(used);
                *used = tick;
                inner.order.insert(tick, key.clone());
                inner.hits += 1;
                Some(bytes.clone())
            }
            None => {
                inner.misses += 1;
                None
            }
        }
    }

    /// Insert, evicting least recently used entries until the total fits. Values larger than the
    /// whole capacity are not cached.
    pub fn insert(&self, key: CacheKey, value: Bytes) {
        let size = value.len() as u64;
        if size > self.capacity {
            return;
        }
        let mut g = self.lock();
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((old, used)) = inner.map.insert(key.clone(), (value, tick)) {
            inner.order.remove(&used);
            inner.bytes -= old.len() as u64;
        }
        inner.order.insert(tick, key);
        inner.bytes += size;
        while inner.bytes > self.capacity {
            let Some((_, victim)) = inner.order.pop_first() else {
                break;
            };
            if let Some((b, _)) = inner.map.remove(&victim) {
                inner.bytes -= b.len() as u64;
            }
        }
    }

    pub fn remove(&self, key: &CacheKey) {
        let mut g = self.lock();
        if let Some((b, used)) = g.map.remove(key) {
            g.order.remove(&used);
            g.bytes -= b.len() as u64;
        }
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            entries: g.map.len(),
            bytes: g.bytes,
            capacity: self.capacity,
            hits: g.hits,
            misses: g.misses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CacheKey {
        CacheKey::Record(Digest::of(&[n]))
    }

    fn val(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    #[test]
    fn evicts_least_recently_used_to_stay_within_bytes() {
        let c = ByteLru::new(100);
        c.insert(key(1), val(40));
        c.insert(key(2), val(40));
        assert!(c.get(&key(1)).is_some()); // 1 is now more recent than 2
        c.insert(key(3), val(40)); // 120 > 100: evict 2
        assert!(c.get(&key(2)).is_none());
        assert!(c.get(&key(1)).is_some());
        assert!(c.get(&key(3)).is_some());
        let s = c.stats();
        assert_eq!((s.entries, s.bytes), (2, 80));
        assert!(s.bytes <= s.capacity);
    }

    #[test]
    fn oversized_values_and_zero_capacity_are_not_cached() {
        for (cap, len) in [(0u64, 1usize), (10, 11)] {
            let c = ByteLru::new(cap);
            c.insert(key(1), val(len));
            assert!(c.get(&key(1)).is_none(), "cap {cap} len {len}");
            assert_eq!(c.stats().bytes, 0);
        }
    }

    #[test]
    fn replacing_and_removing_keep_the_byte_count() {
        let c = ByteLru::new(100);
        c.insert(key(1), val(30));
        c.insert(key(1), val(50));
        assert_eq!(c.stats().bytes, 50);
        c.remove(&key(1));
        assert_eq!(
            c.stats(),
            CacheStats {
                capacity: 100,
                ..c.stats()
            }
        );
        assert_eq!(c.stats().bytes, 0);
    }
}
