//! Fuzz harnesses for `tcpflow-core`, as plain functions so that the cargo-fuzz targets
//! (`fuzz_targets/`), the seed generator (`examples/seeds.rs`) and the regression replay
//! (`tests/regressions.rs`, which runs on stable) share them.
//!
//! Each harness panics when the core breaks a documented contract; the core itself must
//! never panic on any input.
//!
//! | target | what |
//! |---|---|
//! | [`decode`] | `decode_ip` over every supported link type (first byte), then `decode_tcp` |
//! | [`defrag`] | fragments built from the input into a 2-slot `Defragmenter`, checked against a model |
//! | [`engine`] | the whole `Engine` on tiny storage, its events checked by a contract sink |
//! | [`spool_reader`] | the spool reader over arbitrary bytes, or over a spool written and then damaged |
//! | [`capfile`] | the capture file parser over arbitrary bytes, whole and in chunks: the same records |
//! | [`http`] | the `-e http` scanner and the digests over input-driven stream events of one connection |
//! | [`spool_export`] | `--spool-export` in process over a spool file of arbitrary bytes, or written and then damaged or cut |

pub mod capfile;
pub mod decode;
pub mod defrag;
pub mod engine;
pub mod http;
pub mod seeds;
pub mod spool_export;
pub mod spool_reader;

/// Reads fields off the front of the fuzz input; every read past the end gives `None` (or a
/// shorter slice), never a panic.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from(self.u16()?) | u32::from(self.u16()?) << 16)
    }
    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// Whether `inner` lies inside `outer` (the same memory), compared by address.
pub fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    inner.is_empty() || (o.start <= i.start && i.end <= o.end)
}
