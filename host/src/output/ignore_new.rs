//! `-R`: connections that start while those files are read are not written (they are
//! finished from the `-r` files read before). Wraps any output: such a connection reaches it
//! only as [`Output::skipped`] (it still takes a session number), and its events not at all.

use tcpflow_core::{CloseReason, Dir, FlowInfo, GapReason, Sink};

use super::{Output, Wrapper};
use crate::report::HostStats;

/// The `-R` adapter.
#[derive(Debug)]
pub struct IgnoreNew<S> {
    inner: S,
    accept_new: bool,
    /// Per engine slot: the connection there is ignored.
    ignored: Vec<bool>,
    /// How many slots are: with none, events pass without a look-up.
    ignoring: usize,
    /// Connections ignored, in all.
    flows_ignored: u64,
}

impl<S: Output> IgnoreNew<S> {
    pub fn new(inner: S) -> IgnoreNew<S> {
        IgnoreNew {
            inner,
            accept_new: true,
            ignored: Vec::new(),
            ignoring: 0,
            flows_ignored: 0,
        }
    }

    pub fn set_accept_new(&mut self, yes: bool) {
        self.accept_new = yes;
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    #[inline]
    fn ignores(&self, slot: u32) -> bool {
        self.ignoring > 0 && self.ignored.get(slot as usize).copied().unwrap_or(false)
    }
}

impl<S: Output> Sink for IgnoreNew<S> {
    fn open(&mut self, flow: &FlowInfo) {
        let i = flow.slot as usize;
        if self.ignores(flow.slot) {
            // A close for this slot was missed (the engine never does this).
            self.ignored[i] = false;
            self.ignoring -= 1;
        }
        if self.accept_new {
            self.inner.open(flow);
            return;
        }
        if i >= self.ignored.len() {
            self.ignored.resize(i + 1, false);
        }
        self.ignored[i] = true;
        self.ignoring += 1;
        self.inner.skipped(flow);
    }
    #[inline]
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        if !self.ignores(flow.slot) {
            self.inner.data(flow, dir, offset, data);
        }
    }
    #[inline]
    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        if !self.ignores(flow.slot) {
            self.inner.gap(flow, dir, offset, len, reason);
        }
    }
    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        !self.ignores(flow.slot) && self.inner.redelivered(flow, dir, offset, data)
    }
    /// An ignored connection's late bytes are taken, as its other bytes are.
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        self.ignores(flow.slot) || self.inner.late(flow, dir, offset, data)
    }
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        if self.ignores(flow.slot) {
            self.ignored[flow.slot as usize] = false;
            self.ignoring -= 1;
            self.flows_ignored += 1;
            return;
        }
        self.inner.close(flow, reason);
    }
}

impl<S: Output> Wrapper for IgnoreNew<S> {
    type Inner = S;
    fn inner(&self) -> &S {
        &self.inner
    }
    fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    fn own_counters(&self, host: &mut HostStats) {
        host.flows_ignored_late += self.flows_ignored;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::flow4;

    #[derive(Default)]
    struct Seen {
        opened: u32,
        skipped: u32,
        bytes: usize,
        closed: u32,
    }

    impl Sink for Seen {
        fn open(&mut self, _: &FlowInfo) {
            self.opened += 1;
        }
        fn data(&mut self, _: &FlowInfo, _: Dir, _: u64, data: &[u8]) {
            self.bytes += data.len();
        }
        fn close(&mut self, _: &FlowInfo, _: CloseReason) {
            self.closed += 1;
        }
    }

    impl Output for Seen {
        fn skipped(&mut self, _: &FlowInfo) {
            self.skipped += 1;
        }
    }

    /// A connection open before `-R` goes on being written; one that starts during it is
    /// not, to its close, even once new ones are accepted again; its slot then is free.
    #[test]
    fn connections_started_during_r_files_are_left_out() {
        let a = flow4();
        let mut b = flow4();
        b.slot = 3;
        let mut g = IgnoreNew::new(Seen::default());
        g.open(&a);
        g.set_accept_new(false);
        g.open(&b);
        g.data(&a, Dir::AtoB, 0, b"kept");
        g.data(&b, Dir::AtoB, 0, b"left out");
        assert!(g.late(&b, Dir::AtoB, 0, b"x"));
        assert!(!g.redelivered(&b, Dir::AtoB, 0, b"x"));
        g.set_accept_new(true);
        g.data(&b, Dir::BtoA, 0, b"still out");
        g.close(&b, CloseReason::Fin);
        g.close(&a, CloseReason::Fin);
        g.open(&b);
        g.data(&b, Dir::AtoB, 0, b"in");
        let s = &g.inner;
        assert_eq!((s.opened, s.skipped, s.bytes, s.closed), (2, 1, 6, 1));
        let mut host = HostStats::default();
        g.counters(&mut host);
        assert_eq!(host.flows_ignored_late, 1);
    }
}
