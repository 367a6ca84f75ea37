//! `-K` and `--pcap-per-connection`: the frames of each connection as captured, in pcap
//! files next to the flow files.
//!
//! - `-K`: `<flow file>.pcap` per direction, the frames whose segment went that way
//!   (retransmissions too, with their capture time and wire length);
//! - `--pcap-per-connection`: `<A→B flow file>.conn.pcap`, both directions in one file;
//! - `-I`: `<flow file>.findx`, a line `offset|sec.usec|len` per segment with payload: its
//!   stream offset (from its sequence number, relative to the SYN's, or to the first
//!   segment's when the SYN was not seen), capture time and payload length (tcpflow 1.6.1
//!   writes 0 for every offset). A fragmented segment gets no line (counted).
//!
//! Frames come from [`Output::frame`] (the engine's `Outcome::Tcp`, which names the flow
//! slot, connection index and direction). Names are the flow files' (the template with the
//! connection's session and index); a file is created at its first frame. A file is a
//! classic pcap with the link type of its first frame (the capture's own, so tshark decodes
//! it as captured). When a frame of another link type comes (a connection seen on two
//! interfaces of a pcapng that mixes link types), the file, which is ours, is rewritten as
//! pcapng (an interface per link type, its frames so far on the first) and goes on as
//! pcapng, a new interface for each new link type; its name stays. A file that cannot be
//! rewritten is not written to from then on: the frame is counted in
//! `pcap_frames_other_link`, the later ones in `pcap_frames_lost`. Descriptors are bounded by
//! an LRU cache ([`LruCache`]): a file closed to make room is reopened and appended to, so
//! any number of flows works under a small descriptor limit.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tcpflow_core::capfile::MAX_CAPLEN;
use tcpflow_core::{CloseReason, Dir, FlowInfo, LinkType, Sink};

use super::filecache::LruCache;
use super::{End, Frame, Output};
use crate::input::io_message;
use crate::report::{Group, HostStats};
use crate::template::{NameParams, Template};

/// Buffer of each open pcap file.
const BUF_BYTES: usize = 16 * 1024;
/// Fragment frames held until the frame that completes their datagram names its flow (as
/// the engine's fragment slots hold them); past either bound, the oldest is dropped
/// (counted in `pcap_frames_lost`).
const MAX_HELD: usize = 1024;
const MAX_HELD_BYTES: usize = 4 << 20;

/// A held fragment's datagram: addresses, protocol and identification.
type FragKey = (tcpflow_core::Addr, tcpflow_core::Addr, u8, u32);

/// The datagram of a fragment frame (None: not a fragment, or not decoded).
fn frag_key(link: LinkType, data: &[u8]) -> Option<FragKey> {
    let mut st = tcpflow_core::stats::DecodeStats::default();
    let p = tcpflow_core::decode::decode_frame(link, data, &mut st).ok()?;
    let f = p.fragment?;
    Some((p.src, p.dst, p.protocol, f.ident))
}

/// A fragment frame held, owned.
#[derive(Debug)]
struct Held {
    key: FragKey,
    link: LinkType,
    ts: tcpflow_core::Timestamp,
    origlen: u32,
    data: Vec<u8>,
}

/// Which pcap files to write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcapOpts {
    /// `-K`: one per direction.
    pub per_dir: bool,
    /// `--pcap-per-connection`: one per connection.
    pub per_conn: bool,
    /// `-I`: `<flow file>.findx` per direction.
    pub findx: bool,
}

impl PcapOpts {
    pub fn any(&self) -> bool {
        self.per_dir || self.per_conn || self.findx
    }
}

/// Index of the findx file of direction 0 in a connection's files.
const FINDX: usize = 3;

/// A TCP segment's sequence number and payload length (the IP header's claim), when the
/// frame holds a whole one.
fn tcp_seq(link: LinkType, data: &[u8]) -> Option<(u32, u32, bool)> {
    let mut st = tcpflow_core::stats::DecodeStats::default();
    let p = tcpflow_core::decode::decode_frame(link, data, &mut st).ok()?;
    if p.fragment.is_some() || p.protocol != 6 {
        return None;
    }
    let t = p.payload;
    let seq = u32::from_be_bytes(t.get(4..8)?.try_into().ok()?);
    let hlen = u32::from(t.get(12)? >> 4) * 4;
    let syn = t.get(13)? & 0x02 != 0;
    Some((seq, p.payload_len.checked_sub(hlen)?, syn))
}

/// One pcap (or findx) file of a connection.
#[derive(Debug)]
struct PFile {
    /// Relative to the output folder.
    rel: PathBuf,
    /// The link types of its frames, in the order they came: the classic header's, or the
    /// pcapng interfaces'. Empty: not created yet.
    links: Vec<LinkType>,
    /// Rewritten as pcapng (a second link type came).
    ng: bool,
    /// Creating or writing it failed: its frames are counted, not written.
    failed: bool,
}

impl PFile {
    fn new(rel: PathBuf) -> PFile {
        PFile {
            rel,
            links: Vec::new(),
            ng: false,
            failed: false,
        }
    }
}

/// A connection's files: pcaps 0 and 1 by direction, 2 the connection's; 3 and 4 the
/// directions' findx.
#[derive(Debug)]
struct Conn {
    conn_index: u32,
    /// Number of this connection's files in the cache's key space.
    id: u64,
    files: [Option<PFile>; 5],
    /// Per direction (findx): the sequence number at stream offset 0 (after a SYN, or the
    /// first segment's) and the last offset, to carry the 32-bit numbers past a wrap.
    base: [Option<(u32, u64)>; 2],
    /// Closed as evicted: when its packets come again it goes on in the same files.
    evicted: bool,
}

/// The `-K` output.
#[derive(Debug)]
pub struct PcapSink {
    opts: PcapOpts,
    template: Template,
    outdir: PathBuf,
    file_mode: u32,
    /// By flow slot; kept after the close, for frames that come late (or with the close).
    conns: Vec<Option<Conn>>,
    /// As the file writer numbers connections (`%S`): one a connection, skipped ones too.
    next_session: u64,
    next_id: u64,
    cache: LruCache<BufWriter<File>>,
    /// Fragments whose datagram is not complete yet, oldest first.
    held: std::collections::VecDeque<Held>,
    held_bytes: usize,
    frames_written: u64,
    /// Frames not written: their file failed, no name, or an evicted/unknown slot.
    frames_lost: u64,
    frames_other_link: u64,
    /// Files rewritten as pcapng (a second link type came).
    files_made_pcapng: u64,
    /// findx lines written, and segments with no line (fragmented: no whole TCP header).
    index_lines: u64,
    index_skipped: u64,
    files_created: u64,
    files_failed: u64,
    /// The first failure, for the end of the run.
    first_error: Option<String>,
}

impl PcapSink {
    /// `max_open`: descriptors this output may hold open.
    pub fn new(
        opts: PcapOpts,
        template: Template,
        outdir: PathBuf,
        file_mode: u32,
        max_open: usize,
    ) -> PcapSink {
        PcapSink {
            opts,
            template,
            outdir,
            file_mode,
            conns: Vec::new(),
            next_session: 0,
            next_id: 0,
            cache: LruCache::new(max_open),
            held: std::collections::VecDeque::new(),
            held_bytes: 0,
            frames_written: 0,
            frames_lost: 0,
            frames_other_link: 0,
            files_made_pcapng: 0,
            index_lines: 0,
            index_skipped: 0,
            files_created: 0,
            files_failed: 0,
            first_error: None,
        }
    }

    fn name(&self, flow: &FlowInfo, dir: Dir, session: u64, suffix: &str) -> Option<PathBuf> {
        let p = NameParams {
            conn_index: flow.conn_index,
            session,
        };
        let rel = self.template.relative_path(flow, dir, p).ok()?;
        let mut s = rel.into_os_string();
        s.push(suffix);
        Some(PathBuf::from(s))
    }

    fn fail(&mut self, rel: &Path, e: &io::Error) {
        self.files_failed += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!(
                "cannot write {}: {}",
                self.outdir.join(rel).display(),
                io_message(e)
            ));
        }
    }

    /// Writes the frame to file `k` of the connection in `slot` (`line`: what a findx file
    /// gets).
    fn write(&mut self, slot: usize, k: usize, f: &Frame<'_>, line: Option<String>) {
        let Some(conn) = self.conns[slot].as_mut() else {
            return;
        };
        let key = conn.id * 5 + k as u64;
        let Some(pf) = conn.files[k].as_mut() else {
            self.frames_lost += 1;
            return;
        };
        if pf.failed {
            self.frames_lost += 1;
            return;
        }
        let create = pf.links.is_empty();
        let rel = pf.rel.clone();
        // The pcapng interface of this frame; a link type new to a pcap file makes it pcapng
        // (rewritten once) with a new interface (a findx line has no link type).
        let mut iface = 0;
        let mut new_iface = false;
        if k < FINDX && !create {
            match pf.links.iter().position(|l| *l == f.link) {
                Some(i) => iface = i,
                None => {
                    iface = pf.links.len();
                    new_iface = true;
                    if !pf.ng {
                        let first = pf.links[0];
                        if let Some(mut w) = self.cache.remove(key) {
                            if let Err(e) = w.flush() {
                                self.fail(&rel, &e);
                                self.mark_failed(slot, k);
                                self.frames_other_link += 1;
                                return;
                            }
                        }
                        if let Err(e) =
                            to_pcapng(&self.outdir.join(&rel), &rel, first, self.file_mode)
                        {
                            self.fail(&rel, &e);
                            self.mark_failed(slot, k);
                            self.frames_other_link += 1;
                            return;
                        }
                        self.files_made_pcapng += 1;
                    }
                }
            }
        }
        if let Some(pf) = self.conns[slot].as_mut().and_then(|c| c.files[k].as_mut()) {
            if new_iface {
                pf.ng = true;
                pf.links.push(f.link);
            }
        }
        let ng = self.conns[slot]
            .as_ref()
            .and_then(|c| c.files[k].as_ref())
            .is_some_and(|pf| pf.ng);
        if !self.cache.contains(key) {
            let full = self.outdir.join(&rel);
            let folders = crate::safefs::folders_in(&rel);
            let opened = crate::safefs::open_file(&full, folders, create, self.file_mode).and_then(
                |mut file| {
                    if create && k < FINDX {
                        file.write_all(&header(f.link))?;
                    } else if !create {
                        file.seek(SeekFrom::End(0))?;
                    }
                    Ok(file)
                },
            );
            match opened {
                Ok(file) => {
                    if create {
                        self.files_created += 1;
                    }
                    // The file closed to make room was flushed when dropped; a failure
                    // there is found when it is written again (its size is checked by
                    // the tests, which read every pcap back).
                    self.cache
                        .insert(key, BufWriter::with_capacity(BUF_BYTES, file));
                }
                Err(e) => {
                    self.fail(&rel, &e);
                    self.mark_failed(slot, k);
                    self.frames_lost += 1;
                    return;
                }
            }
            if let Some(pf) = self.conns[slot].as_mut().and_then(|c| c.files[k].as_mut()) {
                if pf.links.is_empty() {
                    pf.links.push(f.link);
                }
            }
        }
        let w = self.cache.get(key).expect("inserted above");
        if k >= FINDX {
            let line = line.unwrap_or_default();
            match w.write_all(line.as_bytes()) {
                Ok(()) => self.index_lines += 1,
                Err(e) => {
                    self.cache.remove(key);
                    self.fail(&rel, &e);
                    self.mark_failed(slot, k);
                }
            }
            return;
        }
        let data = &f.data[..f.data.len().min(MAX_CAPLEN as usize)];
        let written = if ng {
            let idb = if new_iface { idb(f.link) } else { Vec::new() };
            w.write_all(&idb)
                .and_then(|()| write_epb(w, iface as u32, f.ts, f.origlen, data))
        } else {
            let mut h = [0u8; 16];
            // Seconds past 2106 do not fit the format: they wrap, as in any pcap writer.
            h[..4].copy_from_slice(&(f.ts.secs() as u32).to_ne_bytes());
            h[4..8].copy_from_slice(&f.ts.subsec_nanos().to_ne_bytes());
            h[8..12].copy_from_slice(&(data.len() as u32).to_ne_bytes());
            h[12..].copy_from_slice(&f.origlen.to_ne_bytes());
            w.write_all(&h).and_then(|()| w.write_all(data))
        };
        match written {
            Ok(()) => self.frames_written += 1,
            Err(e) => {
                self.cache.remove(key);
                self.fail(&rel, &e);
                self.mark_failed(slot, k);
                self.frames_lost += 1;
            }
        }
    }

    fn mark_failed(&mut self, slot: usize, k: usize) {
        if let Some(pf) = self.conns[slot].as_mut().and_then(|c| c.files[k].as_mut()) {
            pf.failed = true;
        }
    }

    /// Flushes and closes the files of the connection in `slot`.
    fn close_files(&mut self, slot: usize) {
        let Some(conn) = self.conns[slot].as_ref() else {
            return;
        };
        let id = conn.id;
        for k in 0..5 {
            if let Some(mut w) = self.cache.remove(id * 5 + k as u64) {
                if let Err(e) = w.flush() {
                    let rel = self.conns[slot].as_ref().and_then(|c| c.files[k].as_ref());
                    let rel = rel.map(|p| p.rel.clone()).unwrap_or_default();
                    self.fail(&rel, &e);
                    self.mark_failed(slot, k);
                }
            }
        }
    }
}

/// The LINKTYPE a file carries for `link`: libpcap's DLT values for raw IP differ from the
/// LINKTYPE written in files.
fn file_linktype(link: LinkType) -> u32 {
    match link.0 {
        12 | 14 => 101,
        l => l,
    }
}

/// A pcapng block of `kind` around `body` (padded to 4 bytes), this machine's byte order.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&total.to_ne_bytes());
    b.extend_from_slice(body);
    b.resize(8 + padded, 0);
    b.extend_from_slice(&total.to_ne_bytes());
    b
}

/// A section header block (no options, length unknown).
fn shb() -> Vec<u8> {
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&0x1a2b_3c4du32.to_ne_bytes());
    b.extend_from_slice(&1u16.to_ne_bytes());
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&(-1i64).to_ne_bytes());
    block(0x0a0d_0d0a, &b)
}

/// An interface description block: `link`, the snap length of the classic files, and
/// `if_tsresol` 9 (nanoseconds, as the classic files).
fn idb(link: LinkType) -> Vec<u8> {
    let mut b = Vec::with_capacity(20);
    b.extend_from_slice(&(file_linktype(link) as u16).to_ne_bytes());
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&MAX_CAPLEN.to_ne_bytes());
    b.extend_from_slice(&9u16.to_ne_bytes());
    b.extend_from_slice(&1u16.to_ne_bytes());
    b.extend_from_slice(&[9, 0, 0, 0]);
    // opt_endofopt
    b.extend_from_slice(&[0, 0, 0, 0]);
    block(1, &b)
}

/// An enhanced packet block on interface `iface` (nanosecond time).
fn write_epb(
    w: &mut impl Write,
    iface: u32,
    ts: tcpflow_core::Timestamp,
    origlen: u32,
    data: &[u8],
) -> io::Result<()> {
    let padded = data.len().div_ceil(4) * 4;
    let total = (32 + padded) as u32;
    let ns = ts.0;
    let mut h = [0u8; 28];
    h[..4].copy_from_slice(&6u32.to_ne_bytes());
    h[4..8].copy_from_slice(&total.to_ne_bytes());
    h[8..12].copy_from_slice(&iface.to_ne_bytes());
    h[12..16].copy_from_slice(&((ns >> 32) as u32).to_ne_bytes());
    h[16..20].copy_from_slice(&(ns as u32).to_ne_bytes());
    h[20..24].copy_from_slice(&(data.len() as u32).to_ne_bytes());
    h[24..28].copy_from_slice(&origlen.to_ne_bytes());
    w.write_all(&h)?;
    w.write_all(data)?;
    w.write_all(&[0u8; 3][..padded - data.len()])?;
    w.write_all(&total.to_ne_bytes())
}

/// Rewrites the classic pcap at `full` (one of ours: nanosecond, this machine's byte order,
/// link type `first`) as pcapng: a section, the interface of `first`, its frames. Streamed
/// through a temporary file beside it, renamed over it.
fn to_pcapng(full: &Path, rel: &Path, first: LinkType, mode: u32) -> io::Result<()> {
    let bad = |m: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("turning it into pcapng: {m}"),
        )
    };
    let folders = crate::safefs::folders_in(rel);
    let mut r = io::BufReader::with_capacity(
        BUF_BYTES,
        crate::safefs::open_file(full, folders, false, mode)?,
    );
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(full.file_name().unwrap_or_default());
    tmp_name.push(".ng.tmp");
    let tmp = full.with_file_name(tmp_name);
    let wrote = (|| -> io::Result<()> {
        let mut w = BufWriter::with_capacity(
            BUF_BYTES,
            crate::safefs::open_file(&tmp, folders, true, mode)?,
        );
        let mut hdr = [0u8; 24];
        r.read_exact(&mut hdr)?;
        if hdr[..24] != header(first) {
            return Err(bad("not the header this output wrote"));
        }
        w.write_all(&shb())?;
        w.write_all(&idb(first))?;
        let mut data = vec![0u8; MAX_CAPLEN as usize];
        loop {
            let mut h = [0u8; 16];
            match r.read_exact(&mut h) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
            let word = |i: usize| u32::from_ne_bytes(h[i..i + 4].try_into().expect("4 bytes"));
            let (secs, nanos, caplen, origlen) = (word(0), word(4), word(8) as usize, word(12));
            if caplen > data.len() || nanos >= 1_000_000_000 {
                return Err(bad("a record this output did not write"));
            }
            r.read_exact(&mut data[..caplen])?;
            let ts = tcpflow_core::Timestamp(u64::from(secs) * 1_000_000_000 + u64::from(nanos));
            write_epb(&mut w, 0, ts, origlen, &data[..caplen])?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        std::fs::rename(&tmp, full)
    })();
    if wrote.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    wrote
}

/// A classic pcap header: nanosecond timestamps, this machine's byte order.
fn header(link: LinkType) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[..4].copy_from_slice(&0xa1b2_3c4du32.to_ne_bytes());
    h[4..6].copy_from_slice(&2u16.to_ne_bytes());
    h[6..8].copy_from_slice(&4u16.to_ne_bytes());
    h[16..20].copy_from_slice(&MAX_CAPLEN.to_ne_bytes());
    h[20..].copy_from_slice(&file_linktype(link).to_ne_bytes());
    h
}

impl Sink for PcapSink {
    fn open(&mut self, flow: &FlowInfo) {
        let slot = flow.slot as usize;
        if slot >= self.conns.len() {
            self.conns.resize_with(slot + 1, || None);
        }
        // An evicted connection picked up again keeps its session, names and files (as the
        // file writer does).
        if let Some(c) = self.conns[slot].as_mut() {
            if c.evicted
                && c.conn_index == flow.conn_index
                && flow.dirs.iter().any(|d| d.stream_len > 0)
            {
                c.evicted = false;
                return;
            }
        }
        self.close_files(slot);
        let session = self.next_session;
        self.next_session += 1;
        let mut files = [None, None, None, None, None];
        if self.opts.per_dir {
            for dir in Dir::BOTH {
                files[dir.index()] = self.name(flow, dir, session, ".pcap").map(PFile::new);
            }
        }
        if self.opts.per_conn {
            files[2] = self
                .name(flow, Dir::AtoB, session, ".conn.pcap")
                .map(PFile::new);
        }
        if self.opts.findx {
            for dir in Dir::BOTH {
                files[FINDX + dir.index()] =
                    self.name(flow, dir, session, ".findx").map(PFile::new);
            }
        }
        self.conns[slot] = Some(Conn {
            conn_index: flow.conn_index,
            id: self.next_id,
            files,
            base: [None, None],
            evicted: false,
        });
        self.next_id += 1;
    }

    fn data(&mut self, _: &FlowInfo, _: Dir, _: u64, _: &[u8]) {}

    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        // The descriptors go now; the names stay for frames that come with or after the
        // close (the segment that closed it is passed after the close event).
        let slot = flow.slot as usize;
        if reason == CloseReason::Evicted {
            if let Some(Some(c)) = self.conns.get_mut(slot) {
                c.evicted = true;
            }
        } else {
            self.close_files(slot);
        }
    }
}

impl PcapSink {
    fn write_frame(&mut self, slot: usize, dir: Dir, f: &Frame<'_>) {
        if self.opts.per_dir {
            self.write(slot, dir.index(), f, None);
        }
        if self.opts.per_conn {
            self.write(slot, 2, f, None);
        }
        if self.opts.findx {
            match self.index_line(slot, dir, f) {
                // No payload: no line.
                Some(line) if line.is_empty() => {}
                Some(line) => self.write(slot, FINDX + dir.index(), f, Some(line)),
                None => self.index_skipped += 1,
            }
        }
    }

    /// `offset|sec.usec|len` for a segment with payload: its stream offset from its
    /// sequence number (relative to the SYN's, or to the first segment's without one).
    fn index_line(&mut self, slot: usize, dir: Dir, f: &Frame<'_>) -> Option<String> {
        let (seq, len, syn) = tcp_seq(f.link, f.data)?;
        let conn = self.conns[slot].as_mut()?;
        let b = &mut conn.base[dir.index()];
        let data_seq = if syn { seq.wrapping_add(1) } else { seq };
        let (base, last) = *b.get_or_insert((data_seq, 0));
        if len == 0 {
            return Some(String::new());
        }
        // The 32-bit distance from the base, placed within 2 GiB of the last offset (a
        // stream longer than 4 GiB keeps its offsets); before the start (a keep-alive
        // probe's byte): no line.
        let rel = data_seq.wrapping_sub(base);
        let delta = i64::from(rel.wrapping_sub(last as u32) as i32);
        let off = u64::try_from(last as i64 + delta).ok()?;
        *b = Some((base, off));
        Some(format!(
            "{off}|{}.{:06}|{len}\n",
            f.ts.secs(),
            f.ts.subsec_nanos() / 1000
        ))
    }
}

impl Output for PcapSink {
    const FRAMES: bool = true;

    fn frame(&mut self, f: &Frame<'_>) {
        let Some(flow) = f.flow else {
            // A fragment: held until its datagram completes.
            if let Some(key) = frag_key(f.link, f.data) {
                while !self.held.is_empty()
                    && (self.held.len() >= MAX_HELD
                        || self.held_bytes + f.data.len() > MAX_HELD_BYTES)
                {
                    if let Some(h) = self.held.pop_front() {
                        self.held_bytes -= h.data.len();
                    }
                    self.frames_lost += 1;
                }
                self.held_bytes += f.data.len();
                self.held.push_back(Held {
                    key,
                    link: f.link,
                    ts: f.ts,
                    origlen: f.origlen,
                    data: f.data.to_vec(),
                });
            }
            return;
        };
        let slot = flow.slot as usize;
        match self.conns.get(slot) {
            Some(Some(c)) if c.conn_index == flow.conn_index => {}
            // A connection this output did not see open (-R skipped it).
            _ => {
                self.frames_lost += 1;
                return;
            }
        }
        // The frame that completed a datagram: its held fragments first, in their order.
        if !self.held.is_empty() {
            if let Some(key) = frag_key(f.link, f.data) {
                let mut i = 0;
                while i < self.held.len() {
                    if self.held[i].key == key {
                        let h = self.held.remove(i).expect("in range");
                        self.held_bytes -= h.data.len();
                        let hf = Frame {
                            flow: Some(flow),
                            link: h.link,
                            ts: h.ts,
                            origlen: h.origlen,
                            data: &h.data,
                        };
                        self.write_frame(slot, flow.dir, &hf);
                    } else {
                        i += 1;
                    }
                }
            }
        }
        self.write_frame(slot, flow.dir, f);
    }

    fn skipped(&mut self, flow: &FlowInfo) {
        self.next_session += 1;
        let slot = flow.slot as usize;
        if slot < self.conns.len() {
            self.close_files(slot);
            self.conns[slot] = None;
        }
    }

    fn flush(&mut self) {
        for slot in 0..self.conns.len() {
            self.close_files(slot);
        }
    }

    fn counters(&self, host: &mut HostStats) {
        host.files_failed += self.files_failed;
    }

    fn finish(&mut self, end: &mut End) {
        if let Some(e) = self.first_error.take() {
            end.errors.push(e);
        }
        let g: Group = (
            "pcap",
            vec![
                ("pcap_files", self.files_created),
                ("pcap_frames_written", self.frames_written),
                ("pcap_frames_lost", self.frames_lost),
                ("pcap_frames_other_link", self.frames_other_link),
                ("pcap_files_pcapng", self.files_made_pcapng),
                ("pcap_files_failed", self.files_failed),
                ("pcap_cache_evictions", self.cache.evictions),
                ("findx_lines", self.index_lines),
                ("findx_segments_skipped", self.index_skipped),
            ],
        );
        end.groups.push(g);
        if self.frames_lost > 0 || self.frames_other_link > 0 {
            end.lines.push(format!(
                "tcpflow: -K: {} frames in {} pcap files; {} frames not written ({} of another link type than their file's, which could not be made pcapng)",
                self.frames_written,
                self.files_created,
                self.frames_lost + self.frames_other_link,
                self.frames_other_link
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::flow4;
    use tcpflow_core::{FlowRef, Timestamp};

    fn frame<'a>(flow: &FlowInfo, dir: Dir, data: &'a [u8]) -> Frame<'a> {
        Frame {
            flow: Some(FlowRef {
                slot: flow.slot,
                conn_index: flow.conn_index,
                dir,
            }),
            link: LinkType(1),
            ts: Timestamp::from_micros(1, 0),
            origlen: data.len() as u32,
            data,
        }
    }

    /// A sink writing a pcap per direction with one descriptor, into a new folder `tag-PID`.
    fn per_dir_sink(tag: &str) -> (std::path::PathBuf, PcapSink) {
        let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let opts = PcapOpts {
            per_dir: true,
            per_conn: false,
            findx: false,
        };
        let t = Template::parse(crate::template::DEFAULT).unwrap();
        let p = PcapSink::new(opts, t, dir.clone(), 0o644, 1);
        (dir, p)
    }

    /// Frames go to their connection's files: after a close (a late frame), and not to the
    /// old connection's files when a slot is reused, while an evicted connection picked up
    /// again goes on in its own.
    #[test]
    fn frames_follow_their_connection() {
        let (dir, mut p) = per_dir_sink("tcpflow-pcap-unit");
        let a = flow4();
        p.open(&a);
        p.frame(&frame(&a, Dir::AtoB, b"first"));
        p.close(&a, CloseReason::Fin);
        p.frame(&frame(&a, Dir::AtoB, b"late"));
        // Another connection in the same slot, its first packet carrying data.
        let mut b = flow4();
        b.key.port[0] = 40001;
        b.dirs[0].stream_len = 3;
        p.open(&b);
        p.frame(&frame(&b, Dir::AtoB, b"b's"));
        p.close(&b, CloseReason::Evicted);
        p.open(&b);
        p.frame(&frame(&b, Dir::AtoB, b"again"));
        p.flush();
        let read = |port: u16| {
            let name = format!("010.000.000.001.{port:05}-192.168.100.002.00080.pcap");
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let mut frames = Vec::new();
            let mut at = 24;
            while at < bytes.len() {
                let n = u32::from_ne_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
                frames.push(bytes[at + 16..at + 16 + n].to_vec());
                at += 16 + n;
            }
            frames
        };
        assert_eq!(read(40000), vec![b"first".to_vec(), b"late".to_vec()]);
        assert_eq!(read(40001), vec![b"b's".to_vec(), b"again".to_vec()]);
        assert_eq!(p.frames_lost, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A frame read back: interface, time (ns), bytes.
    type NgFrame = (u32, u64, Vec<u8>);

    /// A pcapng read back: the interfaces' link types, and its frames.
    fn read_ng(bytes: &[u8]) -> (Vec<u16>, Vec<NgFrame>) {
        let w = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(w(0), 0x0a0d_0d0a);
        let (mut links, mut frames) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < bytes.len() {
            let (kind, len) = (w(at), w(at + 4) as usize);
            assert_eq!(w(at + len - 4) as usize, len);
            match kind {
                1 => {
                    links.push(u16::from_ne_bytes(
                        bytes[at + 8..at + 10].try_into().unwrap(),
                    ));
                    // if_tsresol 9: nanoseconds.
                    assert_eq!(&bytes[at + 16..at + 21], &[9, 0, 1, 0, 9]);
                }
                6 => {
                    let ns = (u64::from(w(at + 12)) << 32) | u64::from(w(at + 16));
                    let n = w(at + 20) as usize;
                    frames.push((w(at + 8), ns, bytes[at + 28..at + 28 + n].to_vec()));
                }
                _ => {}
            }
            at += len;
        }
        (links, frames)
    }

    /// A second link type turns a file into pcapng (its frames so far on the first
    /// interface), a third adds an interface; with one descriptor for two connections, each
    /// file is closed and reopened between frames.
    #[test]
    fn a_new_link_type_makes_the_file_pcapng() {
        let (dir, mut p) = per_dir_sink("tcpflow-pcapng-unit");
        let a = flow4();
        let mut b = flow4();
        b.slot = 1;
        b.key.port[0] = 40001;
        p.open(&a);
        p.open(&b);
        let on = |flow: &FlowInfo, link: u32, us: u32, data: &'static [u8]| Frame {
            link: LinkType(link),
            ts: Timestamp::from_micros(7, us),
            ..frame(flow, Dir::AtoB, data)
        };
        p.frame(&on(&a, 1, 1, b"a1"));
        p.frame(&on(&b, 1, 2, b"b1"));
        p.frame(&on(&a, 1, 3, b"a2"));
        p.frame(&on(&a, 113, 4, b"a3 sll"));
        p.frame(&on(&b, 1, 5, b"b2"));
        p.frame(&on(&a, 1, 6, b"a4"));
        p.frame(&on(&a, 12, 7, b"a5 raw"));
        p.frame(&on(&a, 113, 8, b"a6"));
        p.flush();
        let a_file = std::fs::read(dir.join("010.000.000.001.40000-192.168.100.002.00080.pcap"));
        let (links, frames) = read_ng(&a_file.unwrap());
        // Raw IP's DLT 12 is LINKTYPE_RAW (101) in files.
        assert_eq!(links, [1, 113, 101]);
        let ns = |us: u64| 7_000_000_000 + us * 1000;
        assert_eq!(
            frames,
            vec![
                (0, ns(1), b"a1".to_vec()),
                (0, ns(3), b"a2".to_vec()),
                (1, ns(4), b"a3 sll".to_vec()),
                (0, ns(6), b"a4".to_vec()),
                (2, ns(7), b"a5 raw".to_vec()),
                (1, ns(8), b"a6".to_vec()),
            ]
        );
        // The other stays a classic pcap.
        let b_file = std::fs::read(dir.join("010.000.000.001.40001-192.168.100.002.00080.pcap"));
        assert_eq!(&b_file.unwrap()[..24], &header(LinkType(1)));
        assert_eq!(
            (p.frames_written, p.frames_lost, p.frames_other_link),
            (8, 0, 0)
        );
        assert_eq!(p.files_made_pcapng, 1);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
