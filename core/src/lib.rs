//! # tcpflow-core: TCP flow reassembly without an allocator
//!
//! This crate turns captured frames into the byte streams of the TCP connections they carry.
//! It is `no_std`, never allocates and holds no clock: the embedder hands in all storage
//! (a [`Storage`], sized by [`Capacities`]) and a timestamp with every frame, so the same code
//! runs in the `tcpflow` command (storage sized at run time), on routers, and in firmware
//! (static arrays).
//!
//! ## Using it
//! Build a [`Storage`] from [`Capacities`] (its element types, [`FlowRecord`], [`HotSlot`],
//! [`Block`] and [`FragSlot`], are here at the root), create an [`Engine`] with a [`Config`]
//! (a storage it could not use whole is refused with a [`StorageError`]), feed it frames with
//! [`Engine::process`], which says where each went ([`engine::Outcome`], with a [`FlowRef`]
//! for a TCP segment), and receive the streams through your [`Sink`]. [`Engine::finish`]
//! closes what is still open.
//!
//! ## Layers, one way
//! ```text
//! frame -> decode -> defrag -> tracker (table, pack) -> stream (pool) -> Sink events
//! ```
//! - [`decode`]: link layer (Ethernet with up to 3 VLAN tags, SLL, SLL2, raw IP, null/loop, PPP,
//!   Cisco HDLC, NFLOG, 802.11 bare or behind radiotap, PPI, Prism, AVS; one table,
//!   [`decode::LINK_TYPES`]), MPLS, PPPoE and tunnels (IP-in-IP, GRE, VXLAN, Geneve, GTP-U, AYIYA),
//!   IPv4 with options, IPv6 with extension headers, TCP. Untrusted bytes are checked here,
//!   once; every refusal is a typed [`DecodeError`]. Payload lengths come from the IP
//!   header, never from the captured length, so Ethernet padding is never data.
//! - `defrag`: IPv4/IPv6 fragment reassembly in a fixed set of slots, first copy wins,
//!   timed out on capture time (public with the feature `fuzzing` only).
//! - `tracker`: a segment to its connection, and the connection's life: the rule for when a
//!   segment starts a new connection on a known 4-tuple, and the eviction policy, each in one
//!   place.
//! - `table`: the flow table: a record ([`FlowRecord`]) per tracked connection, keyed hash
//!   index (crafted ports cannot make lookups slow), recency lists for idle timeout and
//!   eviction; connections active now are unpacked in a hot slot ([`HotSlot`]), the others
//!   wait packed in their record (`pack`).
//! - `stream`: one direction of a connection: sequence numbers to `u64` stream offsets,
//!   in-order data straight to the sink, out-of-order data in the shared pool (`pool`).
//! - [`engine`]: the [`Engine`]: frames in, through the layers above.
//!
//! The vocabulary they share has modules of its own, so that the layers depend on it and not
//! on each other: [`flow`] (a connection: [`Dir`], [`FlowKey`], [`FlowInfo`], [`DirInfo`],
//! [`FlowRef`]), [`sink`] (events out: [`Sink`], [`CloseReason`], [`GapReason`]), [`config`]
//! ([`Config`], [`OverlapPolicy`]), [`storage`] ([`Storage`], [`StorageError`]), [`sizing`]
//! ([`Capacities`]), [`stats`] ([`Stats`]) and the [`Timestamp`]. A test
//! (`core/tests/import_graph.rs`) holds the modules free of import circles.
//!
//! Beside the layers, [`capfile`] reads capture files (classic pcap and pcapng) from bytes the
//! embedder holds: each packet comes out as a slice of its buffer with its timestamp and link
//! type, ready for [`Engine::process`]; and [`spool`] keeps sink events in a crash-safe ring on
//! flash and replays them into any sink.
//!
//! ## Guarantees
//! - No panics on any input (fuzzed and property-tested); no allocation; no `unsafe`.
//! - Every byte that cannot be delivered is accounted for: as a gap event to the sink, and in
//!   a [`Stats`] counter.
//! - Memory is exactly what the embedder hands in; every table has a documented policy for
//!   when it is full.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "testkit"))]
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
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
