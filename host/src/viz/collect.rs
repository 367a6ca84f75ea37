//! What the pictures are drawn from, in memory that does not grow with the capture.
//!
//! - [`Timeline`]: fixed-width time bins (at most [`BINS`]; when the capture outgrows them,
//!   neighbouring bins are merged in pairs and the width doubles). Fed once per frame by the
//!   packet loop (packets, captured bytes) and by the engine's data events (payload bytes
//!   per direction and per service port); at each bin boundary it keeps a snapshot of the
//!   run's cumulative counters, so every counter of the report can be drawn over time
//!   without a hook of its own.
//! - [`Tables`]: fed one record per closed direction (the report's own records): the largest
//!   directions and those with the most loss (fixed top-N, exact), top talkers, ports and
//!   VLANs (Space-Saving heavy hitters: a fixed number of counters, exact for keys that stay
//!   in the summary, over-estimating by at most the recorded error otherwise), and the size
//!   distribution of connections (log2 buckets). With `-e http`, each finished body too
//!   ([`Tables::body`]): the largest objects (fixed top-N) and, for each listed direction,
//!   links to its first [`BODY_LINKS`] body files and a count of the rest. A body may finish
//!   before its direction's record (kept meanwhile, for at most [`EARLY_FLOWS`] directions,
//!   the oldest forgotten first) or after it (on the scanner's worker thread: it joins the
//!   listed row, if any).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash};

use tcpflow_core::{Addr, Dir, FlowInfo, Stats, Timestamp};

use crate::fxhash::FxHasher;
use crate::report::{close_reason_name, BodyFile, DirRecord, HostStats};

/// Time bins kept at most.
pub const BINS: usize = 256;
/// Service ports followed over time (Space-Saving slots, each with its own series).
pub const PORT_SLOTS: usize = 16;
/// Width of the first bins: 1 ms, doubled as the capture grows.
const FIRST_WIDTH_NS: u64 = 1_000_000;

/// The cumulative counters drawn over time, taken from the same [`Stats`] and [`HostStats`]
/// that report.xml's totals are written from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snap {
    pub opened: u64,
    pub closed: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub conflict_bytes: u64,
    pub evicted: u64,
    pub pool_full: u64,
    pub out_of_window_bytes: u64,
    pub frag_dropped_bytes: u64,
    pub snaplen_cut: u64,
    pub unprocessed_packets: u64,
    pub queue_dropped: u64,
}

impl Snap {
    pub fn of(s: &Stats, h: &HostStats) -> Snap {
        let f = &s.flow;
        Snap {
            opened: f.opened,
            closed: [
                f.closed_rst,
                f.closed_idle,
                f.closed_evicted,
                f.closed_reused,
                f.closed_end,
            ]
            .iter()
            .fold(f.closed_fin, |a, b| a.saturating_add(*b)),
            gaps: f.gaps,
            gap_bytes: f.gap_bytes,
            conflict_bytes: f.conflict_bytes,
            evicted: f.closed_evicted,
            pool_full: f.pool_full,
            out_of_window_bytes: f.out_of_window_bytes,
            frag_dropped_bytes: s.frag.dropped_bytes,
            snaplen_cut: s.decode.snaplen_cut,
            unprocessed_packets: h.unprocessed_packets,
            queue_dropped: h.queue_dropped,
        }
    }

    /// The fields by name, in the order of the report (names as in report.xml).
    pub fn fields(&self) -> [(&'static str, u64); 12] {
        [
            ("opened", self.opened),
            ("closed", self.closed),
            ("gaps", self.gaps),
            ("gap_bytes", self.gap_bytes),
            ("conflict_bytes", self.conflict_bytes),
            ("closed_evicted", self.evicted),
            ("pool_full", self.pool_full),
            ("out_of_window_bytes", self.out_of_window_bytes),
            ("frag_dropped_bytes", self.frag_dropped_bytes),
            ("snaplen_cut", self.snaplen_cut),
            ("unprocessed_packets", self.unprocessed_packets),
            ("queue_dropped", self.queue_dropped),
        ]
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Bin {
    pub packets: u64,
    pub captured_bytes: u64,
    /// Payload bytes delivered per direction (A->B, B->A).
    pub dir_bytes: [u64; 2],
    /// Payload bytes per port slot (see [`Timeline::port_slots`]).
    pub port_bytes: [u64; PORT_SLOTS],
    /// The counters as they stood at the end of this bin.
    pub snap: Snap,
}

impl Bin {
    fn merge(a: &Bin, b: &Bin, b_later: bool) -> Bin {
        let mut m = *a;
        m.packets = m.packets.saturating_add(b.packets);
        m.captured_bytes = m.captured_bytes.saturating_add(b.captured_bytes);
        for d in 0..2 {
            m.dir_bytes[d] = m.dir_bytes[d].saturating_add(b.dir_bytes[d]);
        }
        for i in 0..PORT_SLOTS {
            m.port_bytes[i] = m.port_bytes[i].saturating_add(b.port_bytes[i]);
        }
        if b_later {
            m.snap = b.snap;
        }
        m
    }
}

/// A Space-Saving slot of the port series.
#[derive(Clone, Copy, Debug, Default)]
pub struct PortSlot {
    pub port: u16,
    pub bytes: u64,
    /// Bytes the slot may have inherited from the port it replaced (Space-Saving's error).
    pub error: u64,
    pub used: bool,
}

/// The time bins. See the module's description.
#[derive(Clone, Debug)]
pub struct Timeline {
    bins: Box<[Bin; BINS]>,
    /// Capture time of the first frame (the start of bin 0); `None` before it.
    start: Option<u64>,
    width_ns: u64,
    /// The bin the latest frame went to, and where it ends (ns, capture time).
    cur: usize,
    cur_end: u64,
    /// Bins merged into pairs so far (the width is `FIRST_WIDTH_NS << merges`).
    merges: u32,
    ports: [PortSlot; PORT_SLOTS],
    /// Bytes of ports pushed out of a slot, per bin (their series went to "other").
    other_port_bytes: Box<[u64; BINS]>,
    /// Payload bytes delivered (all directions): the port series and "other" add up to it.
    delivered: u64,
    /// Frames counted: equals report.xml's `packets_read`.
    frames: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline {
            bins: Box::new([Bin::default(); BINS]),
            start: None,
            width_ns: FIRST_WIDTH_NS,
            cur: 0,
            cur_end: 0,
            merges: 0,
            ports: [PortSlot::default(); PORT_SLOTS],
            other_port_bytes: Box::new([0; BINS]),
            delivered: 0,
            frames: 0,
        }
    }

    /// One frame read, before the engine sees it: `counters` are read only when the frame
    /// starts a new bin (they then close the bins before it), so the common frame costs a
    /// compare and two additions.
    #[inline]
    pub fn frame(&mut self, ts: Timestamp, captured: usize, counters: impl FnOnce() -> Snap) {
        self.frames += 1;
        let t = ts.0;
        if self.start.is_some() && t < self.cur_end && t >= self.cur_start() {
            let b = &mut self.bins[self.cur];
            b.packets += 1;
            b.captured_bytes = b.captured_bytes.saturating_add(captured as u64);
            return;
        }
        self.frame_slow(t, captured, counters);
    }

    fn cur_start(&self) -> u64 {
        self.cur_end.saturating_sub(self.width_ns)
    }

    #[cold]
    fn frame_slow(&mut self, t: u64, captured: usize, counters: impl FnOnce() -> Snap) {
        let idx = self.place(t, counters);
        let b = &mut self.bins[idx];
        b.packets += 1;
        b.captured_bytes = b.captured_bytes.saturating_add(captured as u64);
    }

    /// Moves the timeline to `ts` without a frame: `--spool-export`, whose spool keeps each
    /// connection's times but not each packet's, places it at each connection's start.
    pub fn at(&mut self, ts: Timestamp, counters: impl FnOnce() -> Snap) {
        self.place(ts.0, counters);
    }

    /// The bin of time `t`: bins are merged until it fits, and the bins the timeline moves
    /// past are closed with `counters`.
    fn place(&mut self, t: u64, counters: impl FnOnce() -> Snap) -> usize {
        let start = *self.start.get_or_insert(t);
        // A frame from before the first (a later file starting earlier, a clock step back)
        // counts in the first bin.
        // In u64: a wild timestamp must not wrap on a 32-bit target.
        let mut idx64 = t.saturating_sub(start) / self.width_ns;
        while idx64 >= BINS as u64 {
            self.merge_pairs();
            idx64 = t.saturating_sub(start) / self.width_ns;
        }
        let idx = idx64 as usize;
        if idx > self.cur || self.cur_end == 0 {
            // The bins up to this one are closed with the counters as they stand now.
            let snap = counters();
            for b in &mut self.bins[self.cur..idx] {
                b.snap = snap;
            }
            self.cur = idx;
        }
        // Bins before the latest keep their snapshot; a frame there only adds to its figures.
        self.cur_end = start.saturating_add((self.cur as u64 + 1).saturating_mul(self.width_ns));
        idx
    }

    fn merge_pairs(&mut self) {
        let cur = self.cur;
        for i in 0..BINS / 2 {
            let (a, b) = (self.bins[2 * i], self.bins[2 * i + 1]);
            self.bins[i] = Bin::merge(&a, &b, 2 * i < cur);
            self.other_port_bytes[i] =
                self.other_port_bytes[2 * i].saturating_add(self.other_port_bytes[2 * i + 1]);
        }
        for i in BINS / 2..BINS {
            self.bins[i] = Bin::default();
            self.other_port_bytes[i] = 0;
        }
        self.cur = cur / 2;
        self.merges += 1;
        self.width_ns = self.width_ns.saturating_mul(2);
    }

    /// Payload bytes delivered for `dir` of `flow` (the engine's data event), counted in the
    /// bin of the frame being processed.
    #[inline]
    pub fn data(&mut self, flow: &FlowInfo, dir: Dir, len: usize) {
        let len = len as u64;
        self.delivered = self.delivered.saturating_add(len);
        let cur = self.cur;
        let b = &mut self.bins[cur].dir_bytes[dir.index()];
        *b = b.saturating_add(len);
        // The service port: the lower of the two, as a well-known port usually is.
        let port = flow.key.port[0].min(flow.key.port[1]);
        let slot = match self.ports.iter().position(|s| s.used && s.port == port) {
            Some(i) => i,
            None => self.port_slot_for(port),
        };
        self.ports[slot].bytes = self.ports[slot].bytes.saturating_add(len);
        let b = &mut self.bins[cur].port_bytes[slot];
        *b = b.saturating_add(len);
    }

    /// Space-Saving: a free slot, or the one with the fewest bytes, whose series moves to
    /// "other" while the new port inherits its count as error.
    #[cold]
    fn port_slot_for(&mut self, port: u16) -> usize {
        if let Some(i) = self.ports.iter().position(|s| !s.used) {
            self.ports[i] = PortSlot {
                port,
                bytes: 0,
                error: 0,
                used: true,
            };
            return i;
        }
        let (i, min) = self
            .ports
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.bytes)
            .map(|(i, s)| (i, s.bytes))
            .unwrap_or((0, 0));
        for (b, other) in self.bins.iter_mut().zip(self.other_port_bytes.iter_mut()) {
            *other = other.saturating_add(b.port_bytes[i]);
            b.port_bytes[i] = 0;
        }
        self.ports[i] = PortSlot {
            port,
            bytes: min,
            error: min,
            used: true,
        };
        i
    }

    /// The run is over: the bins up to the last close with the final counters (the same
    /// values report.xml's totals are written from).
    pub fn finish(&mut self, last: Snap) {
        let end = if self.start.is_some() {
            self.cur + 1
        } else {
            0
        };
        for b in &mut self.bins[self.cur..end.max(self.cur)] {
            b.snap = last;
        }
    }

    /// The bins in use (none when no frame came).
    pub fn bins(&self) -> &[Bin] {
        if self.start.is_none() {
            &[]
        } else {
            &self.bins[..=self.cur]
        }
    }

    pub fn other_port_bytes(&self) -> &[u64] {
        &self.other_port_bytes[..self.bins().len()]
    }

    pub fn port_slots(&self) -> &[PortSlot; PORT_SLOTS] {
        &self.ports
    }

    pub fn start(&self) -> Option<Timestamp> {
        self.start.map(Timestamp)
    }

    pub fn width_ns(&self) -> u64 {
        self.width_ns
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn delivered(&self) -> u64 {
        self.delivered
    }
}

/// Space-Saving heavy hitters over `K` with `N` counters: memory fixed whatever the number of
/// distinct keys. A key's count is exact while it never left the summary; otherwise it is
/// over-estimated by at most its `error`. A hash index finds a key and a min-heap over the
/// counts finds the one to replace, so an update costs a hash and log2(N) steps however many
/// distinct keys pass (a capture of many clients replaces a counter per record).
#[derive(Clone, Debug)]
pub struct HeavyHitters<K, const N: usize> {
    /// (key, count, error) per counter.
    slots: Vec<(K, u64, u64)>,
    index: HashMap<K, usize, BuildHasherDefault<FxHasher>>,
    /// Counter numbers as a binary min-heap by count; `pos[i]` is counter i's place in it.
    heap: Vec<usize>,
    pos: Vec<usize>,
}

impl<K: Copy + Eq + Hash, const N: usize> Default for HeavyHitters<K, N> {
    fn default() -> Self {
        HeavyHitters {
            slots: Vec::with_capacity(N),
            index: HashMap::with_capacity_and_hasher(N, Default::default()),
            heap: Vec::with_capacity(N),
            pos: Vec::with_capacity(N),
        }
    }
}

impl<K: Copy + Eq + Hash, const N: usize> HeavyHitters<K, N> {
    pub fn add(&mut self, key: K, weight: u64) {
        let i = match self.index.get(&key) {
            Some(&i) => {
                self.slots[i].1 = self.slots[i].1.saturating_add(weight);
                i
            }
            None if self.slots.len() < N => {
                let i = self.slots.len();
                self.slots.push((key, weight, 0));
                self.index.insert(key, i);
                self.heap.push(i);
                self.pos.push(i);
                self.sift_up(i);
                i
            }
            None => {
                // The counter with the least count takes the key, keeping its count as error.
                let i = self.heap[0];
                let (old, min, _) = self.slots[i];
                self.index.remove(&old);
                self.index.insert(key, i);
                self.slots[i] = (key, min.saturating_add(weight), min);
                i
            }
        };
        // A count only grows: the counter moves down the heap.
        self.sift_down(self.pos[i]);
    }

    fn count_at(&self, h: usize) -> u64 {
        self.slots[self.heap[h]].1
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a]] = a;
        self.pos[self.heap[b]] = b;
    }

    fn sift_up(&mut self, i: usize) {
        let mut h = self.pos[i];
        while h > 0 {
            let parent = (h - 1) / 2;
            if self.count_at(parent) <= self.count_at(h) {
                break;
            }
            self.swap(parent, h);
            h = parent;
        }
    }

    fn sift_down(&mut self, mut h: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * h + 1, 2 * h + 2);
            let mut least = h;
            if l < n && self.count_at(l) < self.count_at(least) {
                least = l;
            }
            if r < n && self.count_at(r) < self.count_at(least) {
                least = r;
            }
            if least == h {
                return;
            }
            self.swap(h, least);
            h = least;
        }
    }

    /// The keys by count, largest first: (key, count, error).
    pub fn top(&self, n: usize) -> Vec<(K, u64, u64)> {
        let mut v = self.slots.clone();
        v.sort_by_key(|s| std::cmp::Reverse(s.1));
        v.truncate(n);
        v
    }
}

/// One direction in a top-N table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirRow {
    pub filename: Option<String>,
    pub src: (Addr, u16),
    pub dst: (Addr, u16),
    pub vlan: Option<u16>,
    pub connection: u32,
    pub bytes: u64,
    pub packets: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub conflict_bytes: u64,
    pub write_lost_bytes: u64,
    pub close: &'static str,
    /// Its HTTP body files (`-e http`).
    pub bodies: BodyLinks,
}

/// A direction's HTTP body files: the first few named, the rest counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyLinks {
    /// As the report shows them.
    pub files: Vec<String>,
    pub more: u64,
}

impl BodyLinks {
    fn add(&mut self, file: &str) {
        if self.files.len() < BODY_LINKS {
            self.files.push(file.to_string());
        } else {
            self.more += 1;
        }
    }
}

impl DirRow {
    fn of(r: &DirRecord<'_>) -> DirRow {
        let d = &r.flow.dirs[r.dir.index()];
        DirRow {
            filename: r.filename.map(|p| p.to_string_lossy().into_owned()),
            src: r.flow.key.src(r.dir),
            dst: r.flow.key.dst(r.dir),
            vlan: r.flow.key.vlans.outer(),
            connection: r.flow.conn_index,
            bytes: d.stream_len,
            packets: d.packets,
            gaps: d.gaps,
            gap_bytes: d.gap_bytes,
            conflict_bytes: d.conflict_bytes,
            write_lost_bytes: r.write_lost_bytes,
            close: close_reason_name(r.reason),
            bodies: BodyLinks::default(),
        }
    }

    /// What the lossiest table ranks by: bytes missing from the file, then differing copies.
    pub fn loss(&self) -> (u64, u64) {
        (
            self.gap_bytes.saturating_add(self.write_lost_bytes),
            self.conflict_bytes,
        )
    }
}

/// The N largest entries by a key, kept sorted (N is small: an insertion is a shift).
#[derive(Clone, Debug)]
pub struct TopN<const N: usize> {
    rows: Vec<DirRow>,
}

impl<const N: usize> Default for TopN<N> {
    fn default() -> Self {
        TopN {
            rows: Vec::with_capacity(N + 1),
        }
    }
}

impl<const N: usize> TopN<N> {
    /// Offers `row` (built only when it would enter: `make` runs then).
    fn offer<O: Ord + Copy>(
        &mut self,
        score: O,
        by: impl Fn(&DirRow) -> O,
        make: impl FnOnce() -> DirRow,
    ) {
        if self.rows.len() == N && self.rows.last().is_some_and(|l| by(l) >= score) {
            return;
        }
        let row = make();
        let at = self.rows.partition_point(|r| by(r) >= score);
        self.rows.insert(at, row);
        self.rows.truncate(N);
    }

    pub fn rows(&self) -> &[DirRow] {
        &self.rows
    }

    fn rows_mut(&mut self) -> &mut [DirRow] {
        &mut self.rows
    }
}

/// Rows in the largest and lossiest tables.
pub const TOP_ROWS: usize = 20;
/// Body files linked per listed direction (the rest counted).
pub const BODY_LINKS: usize = 4;
/// Rows of the largest HTTP objects table.
pub const TOP_OBJECTS: usize = 20;
/// Directions whose bodies are kept until their record comes, at most.
pub const EARLY_FLOWS: usize = 1024;
/// Counters of the talker summary; the ports' and VLANs' have fewer keys to tell apart.
pub const TALKER_COUNTERS: usize = 128;
pub const PORT_COUNTERS: usize = 64;
pub const VLAN_COUNTERS: usize = 32;
/// Connection sizes in log2 buckets: bucket 0 is 0 bytes, bucket i (1..=64) is
/// [2^(i-1), 2^i).
pub const SIZE_BUCKETS: usize = 65;

/// The top-N tables and distributions, fed the report's records.
#[derive(Debug)]
pub struct Tables {
    pub largest: TopN<TOP_ROWS>,
    pub lossiest: TopN<TOP_ROWS>,
    pub talkers: HeavyHitters<Addr, TALKER_COUNTERS>,
    pub ports: HeavyHitters<u16, PORT_COUNTERS>,
    pub vlans: HeavyHitters<u16, VLAN_COUNTERS>,
    pub conn_sizes: [u64; SIZE_BUCKETS],
    pub directions: u64,
    pub connections: u64,
    /// The HTTP scanner ran (`-e http`): the page has its objects.
    pub http: bool,
    /// HTTP bodies finished, and the largest, largest first.
    pub http_bodies: u64,
    pub objects: Vec<BodyFile>,
    /// Bodies of directions whose record has not come (by flow file), oldest first.
    early: HashMap<String, BodyLinks>,
    early_order: VecDeque<String>,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            largest: TopN::default(),
            lossiest: TopN::default(),
            talkers: HeavyHitters::default(),
            ports: HeavyHitters::default(),
            vlans: HeavyHitters::default(),
            conn_sizes: [0; SIZE_BUCKETS],
            directions: 0,
            connections: 0,
            http: false,
            http_bodies: 0,
            objects: Vec::with_capacity(TOP_OBJECTS + 1),
            early: HashMap::new(),
            early_order: VecDeque::new(),
        }
    }
}

pub fn size_bucket(n: u64) -> usize {
    (64 - n.leading_zeros()) as usize
}

impl Tables {
    /// One closed direction, as the report records it.
    pub fn direction(&mut self, r: &DirRecord<'_>) {
        self.directions += 1;
        let flow = r.flow;
        let d = &flow.dirs[r.dir.index()];
        let bytes = d.stream_len;
        // Once per connection: at A->B's record, or B->A's when A sent nothing (the writer
        // records no direction without packets or file).
        if r.dir == Dir::AtoB || (flow.dirs[0].packets == 0 && flow.dirs[0].stream_len == 0) {
            self.connections += 1;
            // Saturating: a spool's records may claim anything.
            let total = flow.dirs[0]
                .stream_len
                .saturating_add(flow.dirs[1].stream_len);
            self.conn_sizes[size_bucket(total)] += 1;
        }
        // Bodies that finished before this record (none without -e http: no lookup then).
        let early = match r.filename {
            Some(f) if !self.early.is_empty() => self.early.remove(f.to_string_lossy().as_ref()),
            _ => None,
        };
        let row = || {
            let mut row = DirRow::of(r);
            row.bodies = early.clone().unwrap_or_default();
            row
        };
        if bytes > 0 {
            self.talkers.add(flow.key.src(r.dir).0, bytes);
            self.ports
                .add(flow.key.port[0].min(flow.key.port[1]), bytes);
            if let Some(v) = flow.key.vlans.outer() {
                self.vlans.add(v, bytes);
            }
            self.largest.offer(bytes, |row| row.bytes, row);
        }
        let loss = (
            d.gap_bytes.saturating_add(r.write_lost_bytes),
            d.conflict_bytes,
        );
        if loss != (0, 0) {
            self.lossiest.offer(loss, DirRow::loss, row);
        }
    }

    /// A finished HTTP body (its file complete).
    pub fn body(&mut self, b: &BodyFile) {
        self.http_bodies += 1;
        if self.objects.len() < TOP_OBJECTS || self.objects.last().is_some_and(|l| l.size < b.size)
        {
            let at = self.objects.partition_point(|o| o.size >= b.size);
            self.objects.insert(at, b.clone());
            self.objects.truncate(TOP_OBJECTS);
        }
        if !b.exists {
            return;
        }
        let flow = b.flow.to_string_lossy();
        let file = b.shown.to_string_lossy();
        let mut listed = false;
        for t in [&mut self.largest, &mut self.lossiest] {
            for row in t.rows_mut() {
                if row.filename.as_deref() == Some(flow.as_ref()) {
                    row.bodies.add(&file);
                    listed = true;
                }
            }
        }
        if listed {
            return;
        }
        // Its direction's record may not have come yet: kept for it, in a bounded map.
        if let Some(l) = self.early.get_mut(flow.as_ref()) {
            l.add(&file);
            return;
        }
        while self.early.len() >= EARLY_FLOWS {
            match self.early_order.pop_front() {
                Some(k) => {
                    self.early.remove(&k);
                }
                None => break,
            }
        }
        if self.early_order.len() >= 2 * EARLY_FLOWS {
            // Names whose record came (removed from the map) go from the order too.
            let early = &self.early;
            self.early_order.retain(|k| early.contains_key(k));
        }
        let mut l = BodyLinks::default();
        l.add(&file);
        self.early.insert(flow.to_string(), l);
        self.early_order.push_back(flow.into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn snap(n: u64) -> Snap {
        Snap {
            opened: n,
            ..Snap::default()
        }
    }

    #[test]
    fn bins_merge_in_pairs_and_keep_every_frame() {
        let mut t = Timeline::new();
        let mut n = 0;
        // 10 s of frames every 3 ms: needs several doublings of the 1 ms width.
        for i in 0..3334u64 {
            t.frame(Timestamp(1_000_000_000 + i * 3_000_000), 100, || {
                n += 1;
                snap(i)
            });
        }
        t.finish(snap(9999));
        let bins = t.bins();
        assert!(bins.len() <= BINS);
        assert!(t.width_ns() >= 10_000_000_000 / BINS as u64);
        assert_eq!(bins.iter().map(|b| b.packets).sum::<u64>(), 3334);
        assert_eq!(bins.iter().map(|b| b.captured_bytes).sum::<u64>(), 333_400);
        // Snapshots never go backwards and the last is the final one.
        for w in bins.windows(2) {
            assert!(w[0].snap.opened <= w[1].snap.opened);
        }
        assert_eq!(bins.last().unwrap().snap.opened, 9999);
        // Counters are read once per bin started, not per frame.
        assert!(n < 3334);
    }

    #[test]
    fn wild_timestamps_stay_bounded() {
        let mut t = Timeline::new();
        for ts in [5u64, u64::MAX, 0, 1 << 40, u64::MAX - 1, 7] {
            t.frame(Timestamp(ts), 1, Snap::default);
        }
        t.finish(Snap::default());
        assert!(t.bins().len() <= BINS);
        assert_eq!(t.bins().iter().map(|b| b.packets).sum::<u64>(), 6);
    }

    #[test]
    fn heavy_hitters_find_the_heavy_key_among_many() {
        let mut h: HeavyHitters<u32, 8> = HeavyHitters::default();
        for i in 0..10_000u32 {
            h.add(i, 1);
            if i % 10 == 0 {
                h.add(1_000_000, 5);
            }
        }
        let top = h.top(1);
        assert_eq!(top[0].0, 1_000_000);
        // The count is at least the truth and over by at most the error.
        assert!(top[0].1 >= 5000 && top[0].1 - top[0].2 <= 5000);
    }

    #[test]
    fn heavy_hitters_replace_the_least_counter() {
        // Against the plain Space-Saving: replace the first least counter found.
        let mut h: HeavyHitters<u32, 4> = HeavyHitters::default();
        let mut model: Vec<(u32, u64)> = Vec::new();
        let mut x = 7u64;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = (x >> 60) as u32;
            let w = (x >> 40) % 5 + 1;
            h.add(key, w);
            match model.iter().position(|s| s.0 == key) {
                Some(i) => model[i].1 += w,
                None if model.len() < 4 => model.push((key, w)),
                None => {
                    let m = model.iter_mut().min_by_key(|s| s.1).unwrap();
                    *m = (key, m.1 + w);
                }
            }
            // The multiset of counts is the same whichever least counter was replaced.
            let mut a: Vec<u64> = h.top(4).iter().map(|s| s.1).collect();
            let mut b: Vec<u64> = model.iter().map(|s| s.1).collect();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b);
        }
    }

    /// HTTP bodies are kept in bounded tables whatever their number: the largest objects,
    /// and the bodies waiting for their direction's record.
    #[test]
    fn body_tables_are_bounded() {
        let mut t = Tables::default();
        let body = |flow: u64, size: u64| BodyFile {
            shown: format!("f{flow}-HTTPBODY-{size}").into(),
            path: PathBuf::new(),
            exists: true,
            flow: format!("f{flow}").into(),
            size,
            status: Some(200),
            content_type: String::new(),
            incomplete: None,
        };
        for i in 0..20_000u64 {
            t.body(&body(i % 5000, (i * 7919) % 100_003));
            assert!(t.early.len() <= EARLY_FLOWS);
            assert!(t.early_order.len() <= 2 * EARLY_FLOWS + 1);
        }
        assert_eq!(t.http_bodies, 20_000);
        assert_eq!(t.objects.len(), TOP_OBJECTS);
        assert!(t.objects.windows(2).all(|w| w[0].size >= w[1].size));
        assert_eq!(
            t.objects[0].size,
            (0..20_000u64).map(|i| (i * 7919) % 100_003).max().unwrap()
        );
        // The oldest are forgotten: f4999's earlier bodies went with 4,999 other flows
        // between them. A flow's bodies: the first BODY_LINKS named, the rest counted.
        assert!(!t.early.contains_key("f0"));
        assert_eq!(t.early["f4999"].files.len(), 1);
        for _ in 0..BODY_LINKS + 2 {
            t.body(&body(4999, 1));
        }
        assert_eq!(t.early["f4999"].files.len(), BODY_LINKS);
        assert_eq!(t.early["f4999"].more, 3);
    }

    #[test]
    fn size_buckets() {
        assert_eq!(size_bucket(0), 0);
        assert_eq!(size_bucket(1), 1);
        assert_eq!(size_bucket(1023), 10);
        assert_eq!(size_bucket(1024), 11);
        assert_eq!(size_bucket(u64::MAX), 64);
    }
}
