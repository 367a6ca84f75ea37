//! A multiply-rotate hash (rustc's FxHash) for tables whose keys no capture can choose or
//! whose size is small: a few instructions a word where the standard library's SipHash, a
//! defence against keys an attacker picks, takes about a hundred.
//!
//! - [`IdMap`]: the file writer's maps keyed by its own numbers, a flow's slot and direction
//!   (`slot * 2 + dir`) or a session and direction. A slot is an index below `--max-flows`
//!   that the flow table hands out and a session a counter. With SipHash these maps cost
//!   about 4% of `concurrent`'s instructions (several lookups per file).
//! - [`SlotMap`]: the scanners' state per flow slot (HTTP, digests), and the HTTP body
//!   writer's bodies by its own counter (an [`IdMap`]).
//! - The pictures' heavy hitters (`viz::collect`): keys from the capture, but at most a few
//!   hundred entries, so crafted collisions cost a scan of those.
//!
//! Names, which a capture does choose and which are many, keep SipHash (`output::names`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from one of the writer's own numbers.
pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<FxHasher>>;

/// A map from a flow's slot (an index the flow table hands out).
pub type SlotMap<V> = HashMap<u32, V, BuildHasherDefault<FxHasher>>;

/// An empty [`IdMap`].
pub fn id_map<V>() -> IdMap<V> {
    IdMap::default()
}

/// One multiplication by an odd constant per word: distinct keys give distinct low bits (the
/// bucket) and well-mixed high bits (hashbrown's tag).
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_keys_spread_over_buckets_and_tags() {
        let b = BuildHasherDefault::<FxHasher>::default();
        let hashes: Vec<u64> = (0..4096u64).map(|k| b.hash_one(k)).collect();
        // Low 12 bits (a table of 4,096 buckets): every key a bucket of its own.
        let mut low: Vec<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        low.sort_unstable();
        low.dedup();
        assert_eq!(low.len(), 4096);
        // Top 7 bits (hashbrown's tag): all 128 values used.
        let mut top: Vec<u64> = hashes.iter().map(|h| h >> 57).collect();
        top.sort_unstable();
        top.dedup();
        assert_eq!(top.len(), 128);
    }

    #[test]
    fn an_id_map_holds_what_it_is_given() {
        let mut m = id_map::<u64>();
        for k in 0..10_000u64 {
            m.insert(k * 2 + (k & 1), k);
        }
        assert_eq!(m.len(), 10_000);
        assert!((0..10_000u64).all(|k| m.get(&(k * 2 + (k & 1))) == Some(&k)));
        assert_eq!(m.remove(&4), Some(2));
        assert_eq!(m.get(&4), None);
    }
}
