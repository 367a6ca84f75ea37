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

#[cfg(test)]
extern crate std;

pub mod capfile;
pub mod config;
pub mod decode;
// Public only for the fuzz targets (feature `fuzzing`), which drive the defragmenter alone;
// embedders reach it through the engine.
#[cfg(feature = "fuzzing")]
pub mod defrag;
#[cfg(not(feature = "fuzzing"))]
mod defrag;
pub mod engine;
pub mod flow;
mod hash;
mod pack;
mod pool;
pub mod seq;
pub mod sink;
pub mod sizing;
pub mod spool;
pub mod stats;
pub mod storage;
mod stream;
mod table;
mod time;
mod tracker;

pub use config::{Config, OverlapPolicy};
pub use decode::{Addr, DecodeError, LinkType, Vlans};
// The element types of [`Storage`], so that an embedder can allocate it.
pub use defrag::FragSlot;
pub use engine::Engine;
pub use flow::{Dir, DirInfo, FlowInfo, FlowKey, FlowRef};
pub use pool::{Block, BLOCK_DATA};
pub use sink::{CloseReason, GapReason, Sink};
pub use storage::{Storage, StorageError};
pub use table::{FlowRecord, HotSlot};
pub use time::Timestamp;

pub use sizing::Capacities;
pub use stats::Stats;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
