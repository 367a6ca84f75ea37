//! Events out: the [`Sink`] trait an embedder implements, and the reasons that come with
//! its events.

use crate::flow::{Dir, FlowInfo};

/// Why a flow was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CloseReason {
    /// Both sides sent FIN and every byte before them was delivered or reported as a gap.
    Fin,
    /// A side reset the connection (and the other side's data in flight was taken).
    Rst,
    /// No packet for the idle timeout (capture time).
    Idle,
    /// The table was full and this was the least recently active flow (in second-chance
    /// order: not active since every other was put at the front of the list).
    Evicted,
    /// A new connection started on the same 4-tuple.
    Reused,
    /// The input ended (or the embedder asked to finish).
    EndOfInput,
}

/// Why bytes are missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GapReason {
    /// Never captured (or dropped when the pool was full, or the flow closed first).
    Lost,
    /// The snap length cut the packet that carried them.
    Snaplen,
}

/// Receives what the engine reconstructs. Every method but `data` has a no-op default.
pub trait Sink {
    /// A flow was created (first packet of a connection), or, with
    /// [`Config::resume_evicted`](crate::Config::resume_evicted), a connection evicted
    /// earlier is picked up again: the same slot and `conn_index`, and each direction's
    /// events carry on from its `stream_len` (the other figures start again from zero).
    fn open(&mut self, _flow: &FlowInfo) {}
    /// Stream bytes of `dir` at `offset`. Offsets only grow, except that under
    /// [`OverlapPolicy::Last`](crate::OverlapPolicy::Last) bytes already delivered may be
    /// delivered again with new content.
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]);
    /// Bytes `[offset, offset + len)` of `dir` are missing for good.
    fn gap(&mut self, _flow: &FlowInfo, _dir: Dir, _offset: u64, _len: u64, _reason: GapReason) {}
    /// Bytes already delivered came again. Return true if they differ from what was delivered
    /// (the core does not keep delivered bytes; a sink that does can tell). Under
    /// [`OverlapPolicy::Last`](crate::OverlapPolicy::Last) a differing copy is then
    /// delivered again through `data`.
    fn redelivered(&mut self, _flow: &FlowInfo, _dir: Dir, _offset: u64, _data: &[u8]) -> bool {
        false
    }
    /// Bytes `[offset, offset + data.len())` of `dir`, inside a range already reported as a
    /// gap, arrived after all: never delivered before, so not a retransmission. Return true
    /// if they were taken (written at their offsets, or shown as late): the core then counts
    /// them delivered and the gap shrinks. By default they are not (counted as late bytes).
    fn late(&mut self, _flow: &FlowInfo, _dir: Dir, _offset: u64, _data: &[u8]) -> bool {
        false
    }
    /// The flow is finished; no event for this slot follows until it is reused.
    fn close(&mut self, _flow: &FlowInfo, _reason: CloseReason) {}
}

/// A sink behind a reference is a sink. An embedder short of flash can hand the engine a
/// `&mut dyn Sink`: one copy of the engine's code serves every kind of sink, for a virtual
/// call per event, where a concrete sink type gets a copy of the engine of its own.
impl<T: Sink + ?Sized> Sink for &mut T {
    #[inline]
    fn open(&mut self, flow: &FlowInfo) {
        (**self).open(flow)
    }
    #[inline]
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        (**self).data(flow, dir, offset, data)
    }
    #[inline]
    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        (**self).gap(flow, dir, offset, len, reason)
    }
    #[inline]
    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        (**self).redelivered(flow, dir, offset, data)
    }
    #[inline]
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        (**self).late(flow, dir, offset, data)
    }
    #[inline]
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        (**self).close(flow, reason)
    }
}
