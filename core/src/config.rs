//! The engine's tunables.

/// Which copy wins when two segments carry different bytes for the same stream offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OverlapPolicy {
    /// The first copy seen (tshark, Zeek, Suricata's default).
    #[default]
    First,
    /// The last copy seen.
    Last,
}

/// Tunables. Timeouts are capture time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// Close a flow after this long without a packet; 0 never.
    pub idle_timeout_ns: u64,
    /// Drop an incomplete fragmented datagram after this long.
    pub frag_timeout_ns: u64,
    /// Which copy wins when retransmissions carry different bytes.
    pub overlap: OverlapPolicy,
    /// Out-of-order pool blocks one direction may hold (its bound on holes and held data).
    pub max_blocks_per_dir: u32,
    /// A flow picked up midstream holds its first segments this long (in segments) so that
    /// earlier data arriving late still lands in front of them.
    pub midstream_hold_segments: u32,
    /// Key of the flow table's hash (SipHash-1-3). The default is a fixed key, for tests and
    /// reproducible runs: output never depends on it, but an embedder facing traffic that may
    /// be crafted should draw one per run (the `tcpflow` command takes it from
    /// `/dev/urandom`), so that no one can choose ports that collide in the index.
    pub hash_key: [u64; 2],
    /// A segment (or FIN) more than this many bytes beyond the stream position, or beyond what
    /// the receiver acknowledged when that is further, is not placed (counted as out of
    /// window): no real window is that large, and placing it would leave a hole of that size
    /// in the output. A direction's holes may also outgrow the bytes it sent by this much at
    /// most, so that jumps repeated through holes given up stay bounded.
    pub max_jump: u64,
    /// Remember connections evicted after delivering data (up to a quarter of the flow
    /// records; see `table.rs`), so that a later packet of one picks it up where it stopped
    /// (the sink gets `open` again, see [`Sink::open`](crate::Sink::open)) instead of
    /// starting a new connection with a new stream. Off by default: the sink must expect it.
    pub resume_evicted: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_timeout_ns: 0,
            frag_timeout_ns: 30_000_000_000,
            overlap: OverlapPolicy::First,
            max_blocks_per_dir: 512,
            midstream_hold_segments: 16,
            hash_key: [0x736f_6d65_7073_6575, 0x646f_7261_6e64_6f6d],
            max_jump: 64 << 20,
            resume_evicted: false,
        }
    }
}
