//! Counters for everything the engine saw, and for every kind of loss.
//!
//! Counters are plain `u64` (no atomics: 32-bit MIPS and PowerPC have no 64-bit atomics; the
//! engine is single-threaded and the embedder copies `Stats` out when it reports).

/// Decode counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecodeStats {
    /// Frames handed to the engine.
    pub frames: u64,
    /// Frames that were not IP (ARP, LLDP, ...): ignored by design.
    pub not_ip: u64,
    /// IP packets that were not TCP: ignored by design.
    pub not_tcp: u64,
    /// TCP segments decoded (after reassembly of fragments).
    pub tcp_segments: u64,
    /// Frames refused: one counter per [`crate::DecodeError`] kind.
    pub unsupported_link: u64,
    /// [`crate::DecodeError::TooManyVlans`].
    pub too_many_vlans: u64,
    /// [`crate::DecodeError::TruncatedLink`].
    pub truncated_link: u64,
    /// [`crate::DecodeError::TruncatedIp`].
    pub truncated_ip: u64,
    /// [`crate::DecodeError::BadIpVersion`].
    pub bad_ip_version: u64,
    /// [`crate::DecodeError::BadIpHeader`].
    pub bad_ip_header: u64,
    /// [`crate::DecodeError::BadIpv6ExtHeader`].
    pub bad_ipv6_ext: u64,
    /// [`crate::DecodeError::BadTcpHeader`].
    pub bad_tcp_header: u64,
    /// 802.11 frames with the Protected bit: encrypted, skipped.
    pub wifi_protected: u64,
    /// TCP segments whose payload was cut by the snap length.
    pub snaplen_cut: u64,
    /// 802.11 A-MSDU subframes not decoded: past [`crate::engine::MAX_MSDUS`] in one frame
    /// (the engine decodes each subframe up to it with [`crate::decode::decode_frame_at`]),
    /// or after the first when [`crate::decode::decode_frame`] is called alone.
    pub wifi_amsdu_skipped: u64,
}

/// Fragment reassembly counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FragStats {
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Fragment bytes that repeated bytes already held (duplicates and overlaps).
    pub overlap_bytes: u64,
    /// Of those, bytes that differed from the first copy (the first copy is kept).
    pub conflict_bytes: u64,
    /// Datagrams dropped because they did not complete in time (or by the end of input).
    pub timed_out: u64,
    /// Datagrams dropped because every slot was busy.
    pub no_slot: u64,
    /// Datagrams dropped because they were larger than a slot, or malformed (bad offsets,
    /// too many pieces).
    pub too_big: u64,
    /// Fragment bytes lost with the dropped datagrams above.
    pub dropped_bytes: u64,
}

/// Flow table and reassembly counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlowStats {
    /// Connections opened (new 4-tuples and reused ones).
    pub opened: u64,
    /// Closed by FIN from both sides.
    pub closed_fin: u64,
    /// Closed by a reset.
    pub closed_rst: u64,
    /// Closed after the idle timeout.
    pub closed_idle: u64,
    /// Closed to make room (their data delivered, their holes reported as gaps).
    pub closed_evicted: u64,
    /// Closed because a new connection started on their 4-tuple.
    pub closed_reused: u64,
    /// Closed at the end of the input.
    pub closed_end: u64,
    /// A 4-tuple that started a new connection (c1, c2, ...).
    pub reused: u64,
    /// Connections evicted earlier picked up again where they stopped
    /// (`Config::resume_evicted`).
    pub resumed: u64,
    /// Payload bytes seen in TCP segments.
    pub payload_bytes: u64,
    /// Bytes delivered to the sink.
    pub delivered_bytes: u64,
    /// Segments that arrived ahead of a hole and were held in the pool.
    pub ooo_segments: u64,
    /// Bytes that repeated data already delivered or held.
    pub retransmitted_bytes: u64,
    /// Of those, bytes that differed from the copy that was kept (or, under the `last`
    /// policy, replaced).
    pub conflict_bytes: u64,
    /// Keep-alive probes ignored.
    pub keepalives: u64,
    /// Ranges missing for good and their total length: gap events, less what late bytes
    /// filled.
    pub gaps: u64,
    /// Bytes in those ranges.
    pub gap_bytes: u64,
    /// Times a direction had to give up waiting for a hole because the pool or its block limit
    /// was full (each gives a gap).
    pub pool_full: u64,
    /// Segments not placed (and their payload bytes): more than 2^30 bytes from the stream
    /// position (ambiguous), or out of reach (`Config::max_jump` past the stream position or
    /// what the peer acknowledged, or holes outgrowing the bytes the direction sent by more
    /// than that). FINs out of reach count here too, without bytes.
    pub out_of_window: u64,
    /// Payload bytes of those segments.
    pub out_of_window_bytes: u64,
    /// Payload bytes that arrived for a hole already reported as a gap and could not be
    /// placed (the sink could not take them), or before the start of the stream.
    pub late_bytes: u64,
    /// Bytes that arrived for a hole already reported as a gap and filled it late (the
    /// sink took them: they are in `delivered_bytes`, and no longer in `gap_bytes`).
    pub late_filled_bytes: u64,
    /// Payload bytes that arrived behind the stream position where a direction had
    /// forgotten its gaps (its out-of-order budget full, or across an eviction): late bytes
    /// for a forgotten gap or a retransmission, which cannot be told apart, so they are
    /// neither written nor compared (never counted as conflicting).
    pub unclassified_bytes: u64,
    /// Payload bytes after a FIN, or on a connection already closed.
    pub after_close_bytes: u64,
    /// Payload bytes of segments that found no flow slot (only when the table has no slots).
    pub untracked_bytes: u64,
    /// Directions that ended without a FIN seen while the peer had acknowledged past every
    /// byte seen: the last sequence number acknowledged is taken for the lost FIN (a FIN is
    /// never a byte), so the stream ends just before it. Had it been a data byte instead, that
    /// one byte is missing from the stream and its gaps.
    pub fin_assumed: u64,
    /// RSTs ignored because their sequence number was far from the sender's position (blind
    /// or spoofed resets, RFC 5961).
    pub ignored_rsts: u64,
}

/// Everything the engine counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Frames and their decoding.
    pub decode: DecodeStats,
    /// Fragment reassembly.
    pub frag: FragStats,
    /// Flows and reassembly.
    pub flow: FlowStats,
}
