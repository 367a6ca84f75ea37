//! The set of file names used in this run, so that two directions never share a file:
//! hashes in memory up to a bound, then a Bloom filter backed by a look-up in the output
//! folder.

use std::collections::HashSet;

/// Bytes per entry of the set of names used at its worst: just grown, a hash table's 8-byte
/// hash and control byte per bucket, with twice the buckets of 7/8 of its entries.
pub(super) const NAME_ENTRY_BYTES: usize = 21;
/// Hashes of the names used in this run, in 256 sets by their top byte: each grows on its
/// own, so the memory never doubles at once (one set of 400,000 names would hold its old and
/// new tables, 7 MB, while it grows). Past `limit` names the sets are forgotten
/// (`FileSink::forget_names`) into a Bloom filter of [`FILTER_BYTES`] per name of `cap`: a
/// name not in the sets that the filter cannot rule out is looked up in the output folder.
#[derive(Debug)]
pub(super) struct NameSet {
    shards: Vec<HashSet<u64>>,
    pub(super) len: usize,
    pub(super) cap: usize,
    /// Forgotten when `len` reaches this: `cap` more than what was kept at the last time
    /// (buffered directions' names, which `BUF_OVERHEAD` counts), so that it is never
    /// forgotten again at once.
    pub(super) limit: usize,
    /// The filter's bits; empty until the first time names are forgotten.
    filter: Vec<u64>,
}

/// Bytes of the filter per name of `Limits::max_names`: 32 bits, which rule out about 98.5%
/// of new names once 3 x that many were forgotten, 78% at 10 x.
pub(super) const FILTER_BYTES: usize = 4;
/// Bits set per name in the filter.
const FILTER_HASHES: u64 = 3;

impl NameSet {
    pub(super) fn new(cap: usize) -> NameSet {
        NameSet {
            shards: (0..256).map(|_| HashSet::new()).collect(),
            len: 0,
            cap: cap.max(1),
            limit: cap.max(1),
            filter: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(super) fn contains(&self, h: u64) -> bool {
        self.shards[(h >> 56) as usize].contains(&h)
    }

    /// False when `h` was in already.
    pub(super) fn insert(&mut self, h: u64) -> bool {
        let new = self.shards[(h >> 56) as usize].insert(h);
        self.len += usize::from(new);
        new
    }

    pub(super) fn remove(&mut self, h: u64) {
        if self.shards[(h >> 56) as usize].remove(&h) {
            self.len -= 1;
        }
    }

    pub(super) fn full(&self) -> bool {
        self.len >= self.limit
    }

    /// Moves every name into the filter and gives the sets' memory back.
    pub(super) fn forget(&mut self) {
        if self.filter.is_empty() {
            self.filter = vec![0; (self.cap * FILTER_BYTES).div_ceil(8)];
        }
        for i in 0..self.shards.len() {
            let shard = std::mem::take(&mut self.shards[i]);
            for h in shard {
                for bit in filter_bits(h, self.filter.len()) {
                    self.filter[bit / 64] |= 1 << (bit % 64);
                }
            }
        }
        self.len = 0;
    }

    /// Whether `h` may have been forgotten (false: it certainly was not).
    pub(super) fn maybe_forgotten(&self, h: u64) -> bool {
        !self.filter.is_empty()
            && filter_bits(h, self.filter.len())
                .all(|bit| self.filter[bit / 64] & (1 << (bit % 64)) != 0)
    }
}

/// The filter's bits for hash `h` in `words` 64-bit words: double hashing, each index taken
/// to the range by a multiply (no division).
fn filter_bits(h: u64, words: usize) -> impl Iterator<Item = usize> {
    let bits = words as u64 * 64;
    let step = h.rotate_left(32) | 1;
    (0..FILTER_HASHES).map(move |i| {
        ((u128::from(h.wrapping_add(i.wrapping_mul(step))) * u128::from(bits)) >> 64) as usize
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// The filter never rules out a forgotten name, and rules out nearly every new one while
    /// it holds up to 3 x its names (`FILTER_BYTES`).
    #[test]
    fn forgotten_names_stay_known() {
        let cap = 1000;
        let mut set = NameSet::new(cap);
        let hasher =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let h = |i: u64| hasher.hash_one(format!("name {i}"));
        for i in 0..3 * cap as u64 {
            if set.full() {
                set.forget();
                set.limit = set.len + set.cap;
            }
            set.insert(h(i));
        }
        assert!(set.len <= cap);
        for i in 0..3 * cap as u64 {
            assert!(set.contains(h(i)) || set.maybe_forgotten(h(i)), "{i}");
        }
        let new = (1_000_000..1_010_000u64)
            .filter(|&i| set.maybe_forgotten(h(i)))
            .count();
        assert!(new < 10_000 / 50, "{new} of 10,000 new names not ruled out");
    }
}
