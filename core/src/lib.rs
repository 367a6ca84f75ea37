//! # tcpflow-core: TCP flow reassembly without an allocator
//!
//! This crate turns captured frames into the byte streams of the TCP connections they carry.
//! It is `#![no_std]`, never allocates and holds no clock: the embedder hands in all storage
//! (see [`engine::Storage`]) and a timestamp with every frame, so the same code runs in the
//! `tcpflow` command (storage sized at run time), on routers, and in firmware (static arrays).
//!
//! ## Layers, one way
//! ```text
//! frame -> decode -> defrag -> table -> stream -> Sink events
//! ```
//! - [`decode`]: link layer (Ethernet with up to 3 VLAN tags, SLL, SLL2, raw IP, null/loop, PPP,
//!   Cisco HDLC, NFLOG, 802.11 bare or behind radiotap, PPI, Prism, AVS; one table,
//!   [`decode::LINK_TYPES`]), MPLS, PPPoE and tunnels (IP-in-IP, GRE, VXLAN, Geneve, GTP-U, AYIYA),
//!   IPv4 with options, IPv6 with extension headers, TCP. Untrusted bytes are checked here,
//!   once; every refusal is a typed [`decode::DecodeError`]. Payload lengths come from the IP
//!   header, never from the captured length, so Ethernet padding is never data.
//! - [`defrag`]: IPv4/IPv6 fragment reassembly in a fixed set of slots, first copy wins,
//!   timed out on capture time.
//! - [`table`]: the flow table: fixed capacity, keyed hash index (crafted ports cannot make
//!   lookups slow), least-recently-active list for idle timeout and eviction; connections
//!   not active now wait packed in about 100 bytes each.
//! - [`stream`]: one direction of a connection: sequence numbers to `u64` stream offsets,
//!   in-order data straight to the sink, out-of-order data in the shared [`pool`].
//! - [`engine`]: ties them together and defines the [`engine::Sink`] trait.
//!
//! Beside the layers, [`capfile`] reads capture files (classic pcap and pcapng) from bytes the
//! embedder holds: each packet comes out as a slice of its buffer with its timestamp and link
//! type, ready for [`Engine::process`].
//!
//! ## Guarantees
//! - No panics on any input (fuzzed and property-tested); no allocation; no `unsafe`.
//! - Every byte that cannot be delivered is accounted for: as a gap event to the sink, and in
//!   a [`stats::Stats`] counter.
//! - Memory is exactly what the embedder hands in; every table has a documented policy for
//!   when it is full.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]

#[cfg(any(test, feature = "testkit"))]
extern crate std;

pub mod capfile;
pub mod decode;
pub mod defrag;
pub mod engine;
mod hash;
mod pack;
pub mod pool;
pub mod seq;
pub mod sizing;
pub mod spool;
pub mod stats;
pub mod stream;
pub mod table;

pub use decode::{Addr, DecodeError, LinkType, Vlans};
pub use engine::{
    CloseReason, Config, Dir, DirInfo, Engine, FlowInfo, FlowKey, GapReason, OverlapPolicy, Sink,
    Storage,
};

/// Capture time: nanoseconds since the Unix epoch (u64 lasts until 2554). The core has no
/// clock; every timeout runs on these, so a file gives the same output every run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const fn from_secs(secs: u64) -> Self {
        Timestamp(secs * 1_000_000_000)
    }
    pub const fn from_micros(secs: u64, micros: u32) -> Self {
        Timestamp(secs * 1_000_000_000 + micros as u64 * 1000)
    }
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }
    pub const fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }
}
pub use sizing::Capacities;
pub use stats::Stats;

#[cfg(test)]
mod proptests;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
