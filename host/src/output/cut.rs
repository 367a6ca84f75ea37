//! `-b`: keep at most N bytes of each direction. Wraps any output: bytes past the limit never
//! reach it (gaps past it neither), and it is told how many were cut per direction, for its
//! [`super::Finished`] events.

use tcpflow_core::{CloseReason, Dir, FlowInfo, GapReason, Sink};

use super::{Output, Wrapper};
use crate::report::HostStats;

/// The `-b` adapter; without a limit every event passes as it is.
#[derive(Debug)]
pub struct Cut<S> {
    inner: S,
    max: Option<u64>,
    /// Bytes cut, in all.
    cut_bytes: u64,
}

/// Clips `[offset, offset + data.len())` to the limit: the kept part and how much was cut.
fn clip(max: u64, offset: u64, data: &[u8]) -> (&[u8], u64) {
    if offset >= max {
        return (&[], data.len() as u64);
    }
    let keep = (max - offset).min(data.len() as u64) as usize;
    (&data[..keep], (data.len() - keep) as u64)
}

impl<S: Output> Cut<S> {
    pub fn new(inner: S, max: Option<u64>) -> Cut<S> {
        Cut {
            inner,
            max,
            cut_bytes: 0,
        }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    /// What of `data` at `offset` passes; the cut is counted and told.
    #[inline]
    fn keep<'d>(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &'d [u8]) -> &'d [u8] {
        let Some(max) = self.max else {
            return data;
        };
        let (kept, cut) = clip(max, offset, data);
        if cut > 0 {
            self.cut_bytes += cut;
            self.inner.cut(flow, dir, cut);
        }
        kept
    }
}

impl<S: Output> Sink for Cut<S> {
    #[inline]
    fn open(&mut self, flow: &FlowInfo) {
        self.inner.open(flow);
    }
    #[inline]
    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        let kept = self.keep(flow, dir, offset, data);
        if !kept.is_empty() {
            self.inner.data(flow, dir, offset, kept);
        }
    }
    #[inline]
    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        let len = match self.max {
            None => len,
            Some(m) if offset >= m => 0,
            Some(m) => len.min(m - offset),
        };
        if len > 0 {
            self.inner.gap(flow, dir, offset, len, reason);
        }
    }
    /// Only the bytes within the limit are compared: what lies past it was never kept.
    fn redelivered(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let kept = match self.max {
            None => data,
            Some(m) => clip(m, offset, data).0,
        };
        !kept.is_empty() && self.inner.redelivered(flow, dir, offset, kept)
    }
    /// Late bytes past the limit are taken (cut, as any byte there).
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        let kept = self.keep(flow, dir, offset, data);
        kept.is_empty() || self.inner.late(flow, dir, offset, kept)
    }
    #[inline]
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        self.inner.close(flow, reason);
    }
}

impl<S: Output> Wrapper for Cut<S> {
    type Inner = S;
    fn inner(&self) -> &S {
        &self.inner
    }
    fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    fn own_counters(&self, host: &mut HostStats) {
        host.truncated_bytes += self.cut_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::flow4;

    /// Records what passes.
    #[derive(Default)]
    struct Seen {
        data: Vec<(u64, Vec<u8>)>,
        gaps: Vec<(u64, u64)>,
        cut: u64,
    }

    impl Sink for Seen {
        fn data(&mut self, _: &FlowInfo, _: Dir, offset: u64, data: &[u8]) {
            self.data.push((offset, data.to_vec()));
        }
        fn gap(&mut self, _: &FlowInfo, _: Dir, offset: u64, len: u64, _: GapReason) {
            self.gaps.push((offset, len));
        }
        fn redelivered(&mut self, _: &FlowInfo, _: Dir, _: u64, data: &[u8]) -> bool {
            data.contains(&b'X')
        }
        fn late(&mut self, _: &FlowInfo, _: Dir, offset: u64, data: &[u8]) -> bool {
            self.data.push((offset, data.to_vec()));
            true
        }
    }

    impl Output for Seen {
        fn cut(&mut self, _: &FlowInfo, _: Dir, bytes: u64) {
            self.cut += bytes;
        }
    }

    #[test]
    fn bytes_and_gaps_past_the_limit_never_pass() {
        let f = flow4();
        let mut c = Cut::new(Seen::default(), Some(10));
        c.data(&f, Dir::AtoB, 0, b"0123456");
        c.gap(&f, Dir::AtoB, 7, 2, GapReason::Lost);
        c.data(&f, Dir::AtoB, 9, b"9abc");
        c.gap(&f, Dir::AtoB, 13, 5, GapReason::Lost);
        c.data(&f, Dir::AtoB, 18, b"zz");
        assert!(c.late(&f, Dir::AtoB, 20, b"late"), "cut bytes are taken");
        assert!(
            !c.redelivered(&f, Dir::AtoB, 9, b"9X"),
            "X is past the limit"
        );
        assert!(c.redelivered(&f, Dir::AtoB, 8, b"X9"));
        let seen = &c.inner;
        assert_eq!(
            seen.data,
            vec![(0, b"0123456".to_vec()), (9, b"9".to_vec())]
        );
        assert_eq!(seen.gaps, vec![(7, 2)]);
        assert_eq!(seen.cut, 3 + 2 + 4);
        let mut host = HostStats::default();
        c.counters(&mut host);
        assert_eq!(host.truncated_bytes, 9);
    }

    #[test]
    fn without_a_limit_everything_passes() {
        let f = flow4();
        let mut c = Cut::new(Seen::default(), None);
        c.data(&f, Dir::BtoA, 1 << 40, b"far");
        c.gap(&f, Dir::BtoA, 1 << 41, 7, GapReason::Lost);
        assert_eq!(c.inner.data, vec![(1 << 40, b"far".to_vec())]);
        assert_eq!(c.inner.gaps, vec![(1 << 41, 7)]);
        assert_eq!(c.inner.cut, 0);
    }
}
