//! The run report: `report.xml` in tcpflow's DFXML shape, and the same content as JSON lines.
//!
//! Both are streamed: the header when the run starts, one record per direction as each flow
//! closes, the totals at the end; nothing is collected in memory.
//!
//! Per direction (`<fileobject>` / a `"type":"flow"` line):
//! - `filename` (absent when the direction carried no data: no file is written for it), `filesize`;
//! - tcpflow 1.6's attributes: `startime`, `endtime` (the connection's first and last packet;
//!   tcpflow 1.6 gives the direction's), `mac_saddr`/`mac_daddr` (when the link layer has
//!   them), `family` (2 = IPv4, 10 = IPv6), `src_ipn`, `dst_ipn`, `srcport`, `dstport`,
//!   `packets`, `out_of_order_count` (segments that arrived ahead of a hole; omitted when 0, as
//!   tcpflow does), `len` (payload bytes seen, retransmissions included; tcpflow 1.6 counts
//!   whole packets);
//! - this project's: `connection` (the `cN` index), `session` (`%S`), `vlan` (ids, outermost
//!   first), `stream_len`, `gaps` and `gap_bytes` (bytes missing for good: holes in the file),
//!   `retransmitted_bytes`, `conflict_bytes` (retransmitted bytes that differed from the kept
//!   copy), `truncated_bytes` (cut by `-b`), `write_lost_bytes` (bytes that did not reach the
//!   file because writing it failed: a file size limit, a FIFO under its name...; then
//!   `filesize` is what the file holds), `close` (`fin`, `rst`, `idle`, `evicted`, `reused`,
//!   `end`).
//!
//! Totals: flow and packet counts, then every counter of the core's [`Stats`] and of the
//! host (files, writes, libpcap drops), then resource usage.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tcpflow_core::{Addr, CloseReason, Dir, FlowInfo, Stats, Timestamp, Vlans};

use crate::input::io_message;
use crate::template::{push_addr_plain, push_mac};
use crate::timefmt::{self, push_num};

/// Counters kept by the command itself (the core keeps [`Stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Packets read from inputs (files or interface).
    pub packets_read: u64,
    /// Packets the engine did not process (decode errors, not IP, not TCP).
    pub unprocessed_packets: u64,
    /// Of those, packets written to the `-w` file.
    pub unprocessed_written: u64,
    /// Inputs that ended with a read error (truncated or corrupt capture).
    pub read_errors: u64,
    /// Records holding more bytes than their file's (or interface's) snap length: an
    /// inconsistent file; each was read whole.
    pub records_over_snaplen: u64,
    /// Output files created and bytes written to them.
    pub files_written: u64,
    pub bytes_written: u64,
    /// Opens of an output file after it had been closed to stay under the descriptor limit.
    pub file_reopens: u64,
    /// Files closed by the open-file cache to make room.
    pub file_evictions: u64,
    /// Write errors (disk full, a file size limit, ...): data lost.
    pub write_errors: u64,
    /// Directions whose file failed (not fatally): the run went on without them.
    pub files_failed: u64,
    /// Stream bytes that did not reach their file because writing it failed.
    pub write_lost_bytes: u64,
    /// Directions not written because their name was refused (`..`, absolute) or no free
    /// name was found; the exit status is 1.
    pub name_errors: u64,
    /// Stream bytes of those directions, not written.
    pub unwritten_bytes: u64,
    /// Times the set of file names used was full and moved into its filter (`--max-names`).
    pub name_set_forgets: u64,
    /// After that: names passed over because a file of that name was in the output folder.
    pub names_found_in_folder: u64,
    /// Stream bytes beyond the `-b` limit, not written.
    pub truncated_bytes: u64,
    /// Connections that started while reading `-R` files: not written.
    pub flows_ignored_late: u64,
    /// Peak bytes buffered in memory for output.
    pub buffer_peak_bytes: u64,
    /// Buffers written early because the memory budget was reached.
    pub buffer_budget_flushes: u64,
    /// libpcap's counters for a live capture.
    pub pcap_received: u64,
    pub pcap_dropped: u64,
    pub pcap_if_dropped: u64,
    /// Live capture: packets taken from the kernel's ring but dropped because the queue to
    /// the packet loop was full (`--queue-size`), and the most bytes that queue held.
    pub queue_dropped: u64,
    pub queue_peak_bytes: u64,
}

impl HostStats {
    /// Adds another part's counters (each output keeps its own): counts add up, peaks are
    /// the highest.
    pub fn add(&mut self, o: &HostStats) {
        self.packets_read += o.packets_read;
        self.unprocessed_packets += o.unprocessed_packets;
        self.unprocessed_written += o.unprocessed_written;
        self.read_errors += o.read_errors;
        self.records_over_snaplen += o.records_over_snaplen;
        self.files_written += o.files_written;
        self.bytes_written += o.bytes_written;
        self.file_reopens += o.file_reopens;
        self.file_evictions += o.file_evictions;
        self.write_errors += o.write_errors;
        self.files_failed += o.files_failed;
        self.write_lost_bytes += o.write_lost_bytes;
        self.name_errors += o.name_errors;
        self.unwritten_bytes += o.unwritten_bytes;
        self.name_set_forgets += o.name_set_forgets;
        self.names_found_in_folder += o.names_found_in_folder;
        self.truncated_bytes += o.truncated_bytes;
        self.flows_ignored_late += o.flows_ignored_late;
        self.buffer_budget_flushes += o.buffer_budget_flushes;
        self.pcap_received += o.pcap_received;
        self.pcap_dropped += o.pcap_dropped;
        self.pcap_if_dropped += o.pcap_if_dropped;
        self.queue_dropped += o.queue_dropped;
        self.buffer_peak_bytes = self.buffer_peak_bytes.max(o.buffer_peak_bytes);
        self.queue_peak_bytes = self.queue_peak_bytes.max(o.queue_peak_bytes);
    }

    pub fn fields(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("packets_read", self.packets_read),
            ("unprocessed_packets", self.unprocessed_packets),
            ("unprocessed_written", self.unprocessed_written),
            ("read_errors", self.read_errors),
            ("records_over_snaplen", self.records_over_snaplen),
            ("files_written", self.files_written),
            ("bytes_written", self.bytes_written),
            ("file_reopens", self.file_reopens),
            ("file_evictions", self.file_evictions),
            ("write_errors", self.write_errors),
            ("files_failed", self.files_failed),
            ("write_lost_bytes", self.write_lost_bytes),
            ("name_errors", self.name_errors),
            ("unwritten_bytes", self.unwritten_bytes),
            ("name_set_forgets", self.name_set_forgets),
            ("names_found_in_folder", self.names_found_in_folder),
            ("truncated_bytes", self.truncated_bytes),
            ("flows_ignored_late", self.flows_ignored_late),
            ("buffer_peak_bytes", self.buffer_peak_bytes),
            ("buffer_budget_flushes", self.buffer_budget_flushes),
            ("pcap_received", self.pcap_received),
            ("pcap_dropped", self.pcap_dropped),
            ("pcap_if_dropped", self.pcap_if_dropped),
            ("queue_dropped", self.queue_dropped),
            ("queue_peak_bytes", self.queue_peak_bytes),
        ]
    }
}

/// Every counter of the core's [`Stats`], by group.
pub fn stats_groups(s: &Stats) -> [(&'static str, Vec<(&'static str, u64)>); 3] {
    let d = &s.decode;
    let fr = &s.frag;
    let f = &s.flow;
    [
        (
            "decode",
            vec![
                ("frames", d.frames),
                ("not_ip", d.not_ip),
                ("not_tcp", d.not_tcp),
                ("tcp_segments", d.tcp_segments),
                ("unsupported_link", d.unsupported_link),
                ("too_many_vlans", d.too_many_vlans),
                ("truncated_link", d.truncated_link),
                ("truncated_ip", d.truncated_ip),
                ("bad_ip_version", d.bad_ip_version),
                ("bad_ip_header", d.bad_ip_header),
                ("bad_ipv6_ext", d.bad_ipv6_ext),
                ("bad_tcp_header", d.bad_tcp_header),
                ("wifi_protected", d.wifi_protected),
                ("snaplen_cut", d.snaplen_cut),
                ("wifi_amsdu_skipped", d.wifi_amsdu_skipped),
            ],
        ),
        (
            "frag",
            vec![
                ("fragments", fr.fragments),
                ("reassembled", fr.reassembled),
                ("overlap_bytes", fr.overlap_bytes),
                ("conflict_bytes", fr.conflict_bytes),
                ("timed_out", fr.timed_out),
                ("no_slot", fr.no_slot),
                ("too_big", fr.too_big),
                ("dropped_bytes", fr.dropped_bytes),
            ],
        ),
        (
            "flow",
            vec![
                ("opened", f.opened),
                ("closed_fin", f.closed_fin),
                ("closed_rst", f.closed_rst),
                ("closed_idle", f.closed_idle),
                ("closed_evicted", f.closed_evicted),
                ("closed_reused", f.closed_reused),
                ("closed_end", f.closed_end),
                ("reused", f.reused),
                ("resumed", f.resumed),
                ("payload_bytes", f.payload_bytes),
                ("delivered_bytes", f.delivered_bytes),
                ("ooo_segments", f.ooo_segments),
                ("retransmitted_bytes", f.retransmitted_bytes),
                ("conflict_bytes", f.conflict_bytes),
                ("keepalives", f.keepalives),
                ("gaps", f.gaps),
                ("gap_bytes", f.gap_bytes),
                ("pool_full", f.pool_full),
                ("out_of_window", f.out_of_window),
                ("out_of_window_bytes", f.out_of_window_bytes),
                ("late_bytes", f.late_bytes),
                ("late_filled_bytes", f.late_filled_bytes),
                ("unclassified_bytes", f.unclassified_bytes),
                ("after_close_bytes", f.after_close_bytes),
                ("untracked_bytes", f.untracked_bytes),
                ("fin_assumed", f.fin_assumed),
                ("ignored_rsts", f.ignored_rsts),
            ],
        ),
    ]
}

/// Who made the report.
#[derive(Clone, Debug)]
pub struct Creator {
    pub command_line: String,
    pub start_unix_ns: u64,
}

/// One direction of a closed flow.
#[derive(Clone, Copy, Debug)]
pub struct DirRecord<'a> {
    /// As shown to the user: the output folder joined with the name (tcpflow's form).
    pub filename: Option<&'a Path>,
    pub filesize: u64,
    pub flow: &'a FlowInfo,
    pub dir: Dir,
    pub reason: CloseReason,
    pub session: u64,
    pub truncated_bytes: u64,
    /// Bytes that did not reach the file (writing it failed).
    pub write_lost_bytes: u64,
}

/// Totals for the end of the report.
#[derive(Clone, Copy, Debug)]
pub struct Totals<'a> {
    pub stats: &'a Stats,
    pub host: &'a HostStats,
    pub max_open_flows: u64,
    /// More counter groups after the host's (`capacities`, `spool`).
    pub extra: &'a [Group],
}

/// A named group of counters.
pub type Group = (&'static str, Vec<(&'static str, u64)>);

pub fn close_reason_name(r: CloseReason) -> &'static str {
    match r {
        CloseReason::Fin => "fin",
        CloseReason::Rst => "rst",
        CloseReason::Idle => "idle",
        CloseReason::Evicted => "evicted",
        CloseReason::Reused => "reused",
        CloseReason::EndOfInput => "end",
    }
}

/// Escapes text for XML content and attributes (either quote). Characters XML 1.0 cannot
/// carry at all (most C0 controls) become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    push_xml_escaped(&mut o, s);
    o
}

/// Bytes that stand for themselves in XML text: printable ASCII but the five specials.
const XML_PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = !matches!(b as u8, b'&' | b'<' | b'>' | b'\'' | b'"');
        b += 1;
    }
    t
};

/// [`xml_escape`] into an existing buffer (no allocation per value on the per-flow path).
pub(crate) fn push_xml_escaped(o: &mut String, s: &str) {
    // Names are nearly always plain (a table lookup per byte: one per file name and record).
    if s.bytes().all(|b| XML_PLAIN[usize::from(b)]) {
        o.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\'' => o.push_str("&apos;"),
            '"' => o.push_str("&quot;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
}

/// Escapes text for a JSON string (without the quotes).
pub fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    push_json_escaped(&mut o, s);
    o
}

/// [`json_escape`] into an existing buffer.
fn push_json_escaped(o: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        o.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
}

/// A value in a record: both formats render from the same list. Every value renders as
/// plain ASCII that neither XML nor JSON needs to escape (digits, hex, dots, colons, commas,
/// dashes and the close-reason words), so it goes straight into the line.
#[derive(Clone, Copy, Debug)]
enum Val {
    Num(u64),
    Time(Timestamp),
    Mac([u8; 6]),
    Addr(Addr),
    Vlans(Vlans),
    Word(&'static str),
}

impl Val {
    fn push(self, s: &mut String, times: &mut timefmt::IsoMicros) {
        match self {
            Val::Num(n) => push_num(s, n, 0),
            Val::Time(t) => times.push(s, t),
            Val::Mac(m) => push_mac(s, &m),
            Val::Addr(a) => push_addr_plain(s, a),
            Val::Vlans(v) => {
                for (i, id) in v.as_slice().iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    push_num(s, (*id).into(), 0);
                }
            }
            Val::Word(w) => s.push_str(w),
        }
    }
}

fn family(a: Addr) -> u64 {
    match a {
        Addr::V4(_) => 2,
        Addr::V6(_) => 10,
    }
}

/// An attribute's name as each format writes it around the value, made at compile time:
/// one push per attribute instead of four on the per-flow path.
#[derive(Clone, Copy, Debug)]
struct Key {
    /// `' name='`: its quote closes the value before (the XML writer skips it for the first).
    xml: &'static str,
    /// `,"name":`, for a number.
    json: &'static str,
    /// `,"name":"`, for text.
    json_text: &'static str,
}

macro_rules! key {
    ($name:literal) => {
        Key {
            xml: concat!("' ", $name, "='"),
            json: concat!(",\"", $name, "\":"),
            json_text: concat!(",\"", $name, "\":\""),
        }
    };
}

/// The `<tcpflow>` attributes of a direction, in order, handed to `attr`.
fn dir_attrs(r: &DirRecord<'_>, mut attr: impl FnMut(Key, Val)) {
    let f = r.flow;
    let d = &f.dirs[r.dir.index()];
    let (sa, sp) = f.key.src(r.dir);
    let (da, dp) = f.key.dst(r.dir);
    attr(key!("startime"), Val::Time(f.first_ts));
    attr(key!("endtime"), Val::Time(f.last_ts));
    if let Some(m) = f.macs {
        attr(key!("mac_daddr"), Val::Mac(m[r.dir.reverse().index()]));
        attr(key!("mac_saddr"), Val::Mac(m[r.dir.index()]));
    }
    attr(key!("family"), Val::Num(family(sa)));
    attr(key!("src_ipn"), Val::Addr(sa));
    attr(key!("dst_ipn"), Val::Addr(da));
    attr(key!("srcport"), Val::Num(sp.into()));
    attr(key!("dstport"), Val::Num(dp.into()));
    attr(key!("packets"), Val::Num(d.packets));
    if d.ooo_segments > 0 {
        attr(key!("out_of_order_count"), Val::Num(d.ooo_segments));
    }
    attr(key!("len"), Val::Num(d.payload_bytes));
    attr(key!("connection"), Val::Num(f.conn_index.into()));
    attr(key!("session"), Val::Num(r.session));
    if !f.key.vlans.is_empty() {
        attr(key!("vlan"), Val::Vlans(f.key.vlans));
    }
    attr(key!("stream_len"), Val::Num(d.stream_len));
    attr(key!("gaps"), Val::Num(d.gaps));
    attr(key!("gap_bytes"), Val::Num(d.gap_bytes));
    attr(key!("retransmitted_bytes"), Val::Num(d.retransmitted_bytes));
    attr(key!("conflict_bytes"), Val::Num(d.conflict_bytes));
    if r.truncated_bytes > 0 {
        attr(key!("truncated_bytes"), Val::Num(r.truncated_bytes));
    }
    if r.write_lost_bytes > 0 {
        attr(key!("write_lost_bytes"), Val::Num(r.write_lost_bytes));
    }
    attr(key!("close"), Val::Word(close_reason_name(r.reason)));
}

/// Resource usage of this process.
fn rusage(start: Instant) -> Vec<(&'static str, String)> {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| format!("{}.{:06}", t.tv_sec, t.tv_usec);
    vec![
        ("utime", tv(ru.ru_utime)),
        ("stime", tv(ru.ru_stime)),
        ("maxrss", ru.ru_maxrss.to_string()),
        ("minflt", ru.ru_minflt.to_string()),
        ("majflt", ru.ru_majflt.to_string()),
        ("inblock", ru.ru_inblock.to_string()),
        ("oublock", ru.ru_oublock.to_string()),
        ("clocktime", {
            let t = start.elapsed();
            format!("{}.{:06}", t.as_secs(), t.subsec_micros())
        }),
    ]
}

fn uname() -> Vec<(&'static str, String)> {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated C strings.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return Vec::new();
        }
        let s = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        vec![
            ("os_sysname", s(&u.sysname)),
            ("os_release", s(&u.release)),
            ("os_version", s(&u.version)),
            ("host", s(&u.nodename)),
            ("arch", s(&u.machine)),
        ]
    }
}

fn username(uid: u32) -> Option<String> {
    // SAFETY: getpwuid_r writes into our buffer; the result points into it.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res) != 0
            || res.is_null()
        {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// A path as text; bytes that are not UTF-8 become U+FFFD. `to_str` first: its validation
/// is several times faster than the lossy conversion's on the (usual) valid names.
fn path_text(p: &Path) -> std::borrow::Cow<'_, str> {
    match p.to_str() {
        Some(t) => std::borrow::Cow::Borrowed(t),
        None => p.to_string_lossy(),
    }
}

/// The streaming report writer.
#[derive(Debug)]
pub struct Report {
    xml: Option<(PathBuf, BufWriter<File>)>,
    json: Option<(PathBuf, BufWriter<File>)>,
    error: Option<String>,
    start: Instant,
    /// The record being formatted (kept between records).
    line: String,
    times: timefmt::IsoMicros,
    // scan: what the scanners add to the next direction record (XML inside its
    // `<fileobject>`, JSON fields of its line); see `Report::set_extra`.
    extra: Option<(String, String)>,
    /// viz (issue 19): the pictures' tables, fed every record, when report.html or
    /// report.pdf is wanted.
    viz: Option<Box<crate::viz::Tables>>,
}

/// Report records a scanner made (an HTTP object each: whole XML elements, a whole JSON
/// line), on their way to the report, and the body files among them, on their way to the
/// outputs that act on finished bodies (`-S http_cmd`, `http_alert_fd`) and the pictures.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub records: Vec<(String, String)>,
    pub bodies: Vec<BodyFile>,
}

/// An HTTP body the scanner finished: its file complete and closed (when it has one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyFile {
    /// As the report shows it (the output folder joined with the name).
    pub shown: PathBuf,
    /// Where it is, as opened by this process.
    pub path: PathBuf,
    /// Whether the file exists (a body with nothing written has none).
    pub exists: bool,
    /// The flow file it was carved from, as the report shows it.
    pub flow: PathBuf,
    pub size: u64,
    pub status: Option<u16>,
    pub content_type: String,
    /// Why it is not complete; `None`: complete.
    pub incomplete: Option<String>,
}

impl Objects {
    /// One record.
    pub fn object(&mut self, xml: &str, json: &str) {
        self.records.push((xml.to_string(), json.to_string()));
    }

    /// A finished body (its record is given with [`Objects::object`]).
    pub fn body(&mut self, b: BodyFile) {
        self.bodies.push(b);
    }

    /// Moves `other`'s records after these.
    pub fn append(&mut self, other: &mut Objects) {
        self.records.append(&mut other.records);
        self.bodies.append(&mut other.bodies);
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.bodies.is_empty()
    }
}

impl Report {
    /// A report that writes nothing.
    pub fn none() -> Report {
        Report {
            xml: None,
            json: None,
            error: None,
            start: Instant::now(),
            line: String::new(),
            times: Default::default(),
            extra: None,
            viz: None,
        }
    }

    /// Creates the report files and writes their headers. `xml` and `json` are opened already
    /// (so that privileges can be dropped after).
    pub fn start(
        xml: Option<(PathBuf, File)>,
        json: Option<(PathBuf, File)>,
        creator: &Creator,
    ) -> Result<Report, String> {
        let mut r = Report {
            xml: xml.map(|(p, f)| (p, BufWriter::with_capacity(64 * 1024, f))),
            json: json.map(|(p, f)| (p, BufWriter::with_capacity(64 * 1024, f))),
            error: None,
            start: Instant::now(),
            line: String::new(),
            times: Default::default(),
            extra: None,
            viz: None,
        };
        if let Some((path, w)) = &mut r.xml {
            write_xml_header(w, creator)
                .map_err(|e| format!("writing {}: {}", path.display(), io_message(&e)))?;
        }
        if let Some((path, w)) = &mut r.json {
            write_json_header(w, creator)
                .map_err(|e| format!("writing {}: {}", path.display(), io_message(&e)))?;
        }
        Ok(r)
    }

    /// viz (issue 19): feed every record to the pictures' tables from now on (`http`: the
    /// HTTP scanner runs, its objects get a table).
    pub fn collect_viz(&mut self, http: bool) {
        let mut t = Box::<crate::viz::Tables>::default();
        t.http = http;
        self.viz = Some(t);
    }

    /// viz (issue 19): the pictures' tables so far (`--report-interval`).
    pub fn viz_tables(&self) -> Option<&crate::viz::Tables> {
        self.viz.as_deref()
    }

    /// viz (issue 19): the pictures' tables, before [`Report::finish`].
    pub fn take_viz(&mut self) -> Option<Box<crate::viz::Tables>> {
        self.viz.take()
    }

    pub fn is_active(&self) -> bool {
        self.xml.is_some() || self.json.is_some()
    }

    fn fail(&mut self, path: &Path, e: io::Error) {
        if self.error.is_none() {
            self.error = Some(format!("writing {}: {}", path.display(), io_message(&e)));
        }
    }

    /// The first write error, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Records one direction of a closed flow.
    pub fn direction(&mut self, r: &DirRecord<'_>) {
        // cfg!: without the feature no table is made; the field builds drop the code.
        if let Some(t) = self.viz.as_mut().filter(|_| cfg!(feature = "viz")) {
            t.direction(r); // viz (issue 19)
        }
        if self.error.is_some() || !self.is_active() {
            return;
        }
        // One line buffer, reused: no allocation per record.
        let mut s = std::mem::take(&mut self.line);
        if let Some((path, w)) = &mut self.xml {
            s.clear();
            s.push_str("    <fileobject>\n");
            if let Some(name) = r.filename {
                s.push_str("      <filename>");
                push_xml_escaped(&mut s, &path_text(name));
                s.push_str("</filename>\n");
            }
            s.push_str("      <filesize>");
            push_num(&mut s, r.filesize, 0);
            s.push_str("</filesize>\n      <tcpflow");
            let times = &mut self.times;
            let mut first = true;
            dir_attrs(r, |k, v| {
                // The first attribute has no value before it to close.
                s.push_str(if first { &k.xml[1..] } else { k.xml });
                first = false;
                v.push(&mut s, times);
            });
            s.push_str("' />\n");
            if let Some((x, _)) = &self.extra {
                s.push_str(x);
            }
            s.push_str("    </fileobject>\n");
            if let Err(e) = w.write_all(s.as_bytes()) {
                let p = path.clone();
                self.fail(&p, e);
                return;
            }
        }
        if let Some((path, w)) = &mut self.json {
            s.clear();
            s.push_str("{\"type\":\"flow\"");
            if let Some(name) = r.filename {
                s.push_str(",\"filename\":\"");
                push_json_escaped(&mut s, &path_text(name));
                s.push('"');
            }
            s.push_str(",\"filesize\":");
            push_num(&mut s, r.filesize, 0);
            let times = &mut self.times;
            dir_attrs(r, |k, v| {
                if let Val::Num(n) = v {
                    s.push_str(k.json);
                    push_num(&mut s, n, 0);
                } else {
                    s.push_str(k.json_text);
                    v.push(&mut s, times);
                    s.push('"');
                }
            });
            if let Some((_, j)) = &self.extra {
                s.push_str(j);
            }
            s.push_str("}\n");
            if let Err(e) = w.write_all(s.as_bytes()) {
                let p = path.clone();
                self.fail(&p, e);
                return;
            }
        }
        self.line = s;
        self.extra = None;
    }

    /// What the scanners add to the next direction record: `xml` inside its `<fileobject>`
    /// (tcpflow 1.6's `<hashdigest>`), `json` fields (each starting with a comma).
    pub fn set_extra(&mut self, xml: String, json: String) {
        self.extra = Some((xml, json));
    }

    /// Writes the records in `o`; its bodies go to the pictures' tables.
    pub fn objects(&mut self, o: &Objects) {
        for (xml, json) in &o.records {
            self.object(xml, json);
        }
        if let Some(t) = self.viz.as_mut().filter(|_| cfg!(feature = "viz")) {
            for b in &o.bodies {
                t.body(b); // viz (issue 19)
            }
        }
    }

    /// A scanner's record of its own (an HTTP object): whole XML elements inside the
    /// report's `<configuration>`, a whole JSON line.
    pub fn object(&mut self, xml: &str, json: &str) {
        if self.error.is_some() {
            return;
        }
        if let Some((path, w)) = &mut self.xml {
            if let Err(e) = w.write_all(xml.as_bytes()) {
                let p = path.clone();
                self.fail(&p, e);
                return;
            }
        }
        if let Some((path, w)) = &mut self.json {
            if let Err(e) = w.write_all(json.as_bytes()) {
                let p = path.clone();
                self.fail(&p, e);
            }
        }
    }

    /// Writes the totals and closes the files.
    pub fn finish(mut self, t: &Totals<'_>) -> Result<(), String> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let groups = stats_groups(t.stats);
        let host = t.host.fields();
        let ru = rusage(self.start);
        if let Some((path, mut w)) = self.xml.take() {
            let mut s = String::new();
            s.push_str("  </configuration>\n");
            s.push_str(&format!(
                "  <max_open_flows>{}</max_open_flows>\n",
                t.max_open_flows
            ));
            s.push_str(&format!(
                "  <total_flows>{}</total_flows>\n",
                t.stats.flow.opened
            ));
            s.push_str(&format!(
                "  <total_packets>{}</total_packets>\n",
                t.host.packets_read
            ));
            s.push_str("  <stats>\n");
            for (g, fields) in &groups {
                s.push_str(&format!("    <{g}"));
                for (k, v) in fields {
                    s.push_str(&format!(" {k}='{v}'"));
                }
                s.push_str(" />\n");
            }
            s.push_str("    <host");
            for (k, v) in &host {
                s.push_str(&format!(" {k}='{v}'"));
            }
            s.push_str(" />\n");
            for (g, fields) in t.extra {
                s.push_str(&format!("    <{g}"));
                for (k, v) in fields {
                    s.push_str(&format!(" {k}='{v}'"));
                }
                s.push_str(" />\n");
            }
            s.push_str("  </stats>\n  <rusage>\n");
            for (k, v) in &ru {
                s.push_str(&format!("    <{k}>{v}</{k}>\n"));
            }
            s.push_str("  </rusage>\n</dfxml>\n");
            w.write_all(s.as_bytes())
                .and_then(|()| w.flush())
                .and_then(|()| {
                    // May outlast the stop watchdog's bound on a slow card (watchdog.rs).
                    let _busy = crate::watchdog::busy();
                    w.get_ref().sync_data().or(Ok(()))
                })
                .map_err(|e| format!("writing {}: {}", path.display(), io_message(&e)))?;
        }
        if let Some((path, mut w)) = self.json.take() {
            let mut s = String::from("{\"type\":\"totals\"");
            s.push_str(&format!(",\"max_open_flows\":{}", t.max_open_flows));
            s.push_str(&format!(",\"total_flows\":{}", t.stats.flow.opened));
            s.push_str(&format!(",\"total_packets\":{}", t.host.packets_read));
            let host_group = ("host", host.clone());
            for (g, fields) in groups
                .iter()
                .chain(std::iter::once(&host_group))
                .chain(t.extra.iter())
            {
                s.push_str(&format!(",\"{g}\":{{"));
                for (i, (k, v)) in fields.iter().enumerate() {
                    s.push_str(&format!("{}\"{k}\":{v}", if i > 0 { "," } else { "" }));
                }
                s.push('}');
            }
            s.push_str(",\"rusage\":{");
            for (i, (k, v)) in ru.iter().enumerate() {
                s.push_str(&format!("{}\"{k}\":{v}", if i > 0 { "," } else { "" }));
            }
            s.push_str("}}\n");
            w.write_all(s.as_bytes())
                .and_then(|()| w.flush())
                .map_err(|e| format!("writing {}: {}", path.display(), io_message(&e)))?;
        }
        Ok(())
    }
}

fn write_xml_header(w: &mut impl Write, c: &Creator) -> io::Result<()> {
    let uid = unsafe { libc::getuid() };
    let mut s = String::new();
    s.push_str("<?xml version='1.0' encoding='UTF-8'?>\n");
    s.push_str("<dfxml xmloutputversion='1.0'>\n");
    s.push_str("  <metadata \n  xmlns='http://afflib.org/tcpflow/' \n");
    s.push_str("  xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' \n");
    s.push_str("  xmlns:dc='http://purl.org/dc/elements/1.1/'>\n");
    s.push_str("    <dc:type>Feature Extraction</dc:type>\n  </metadata>\n");
    s.push_str("  <creator version='1.0'>\n");
    s.push_str("    <program>TCPFLOW</program>\n");
    s.push_str(&format!(
        "    <version>{}</version>\n",
        env!("CARGO_PKG_VERSION")
    ));
    s.push_str("    <implementation>tcpflow (Rust rewrite)</implementation>\n");
    s.push_str("    <execution_environment>\n");
    for (k, v) in uname() {
        s.push_str(&format!("      <{k}>{}</{k}>\n", xml_escape(&v)));
    }
    s.push_str(&format!(
        "      <command_line>{}</command_line>\n",
        xml_escape(&c.command_line)
    ));
    s.push_str(&format!("      <uid>{uid}</uid>\n"));
    if let Some(u) = username(uid) {
        s.push_str(&format!("      <username>{}</username>\n", xml_escape(&u)));
    }
    let start = tcpflow_core::Timestamp(c.start_unix_ns);
    s.push_str(&format!(
        "      <start_time>{}</start_time>\n",
        timefmt::iso_seconds(start)
    ));
    s.push_str("    </execution_environment>\n  </creator>\n  <configuration>\n");
    w.write_all(s.as_bytes())?;
    w.flush()
}

fn write_json_header(w: &mut impl Write, c: &Creator) -> io::Result<()> {
    let start = tcpflow_core::Timestamp(c.start_unix_ns);
    let s = format!(
        "{{\"type\":\"creator\",\"program\":\"tcpflow\",\"version\":\"{}\",\"command_line\":\"{}\",\"start_time\":\"{}\"}}\n",
        env!("CARGO_PKG_VERSION"),
        json_escape(&c.command_line),
        timefmt::iso_seconds(start)
    );
    w.write_all(s.as_bytes())?;
    w.flush()
}

/// The command line as a shell would read it back.
pub fn command_line() -> String {
    std::env::args_os()
        .map(|a| {
            let a = a.to_string_lossy().into_owned();
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+%@".contains(&b))
            {
                a
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::flow4;

    #[test]
    fn xml_escaping() {
        assert_eq!(xml_escape("a<b>&'\"c"), "a&lt;b&gt;&amp;&apos;&quot;c");
        assert_eq!(xml_escape("x\u{1}y\tz"), "x\u{fffd}y\tz");
        assert_eq!(xml_escape("2001:db8::1.00080"), "2001:db8::1.00080");
    }

    #[test]
    fn json_escaping() {
        assert_eq!(json_escape("a\"b\\c\nd\u{1}"), "a\\\"b\\\\c\\nd\\u0001");
    }

    /// Every counter of `Stats` appears in the report: compares with the Debug field names.
    #[test]
    fn stats_groups_cover_every_counter() {
        let s = Stats::default();
        let dbg = format!("{s:?}");
        let listed: Vec<&str> = stats_groups(&s)
            .iter()
            .flat_map(|(_, f)| f.iter().map(|(k, _)| *k))
            .collect();
        let mut count = 0;
        for part in dbg.split([',', '{']) {
            if let Some((name, val)) = part.split_once(':') {
                let (name, val) = (name.trim(), val.trim_end_matches(['}', ' ']).trim());
                if val.parse::<u64>().is_ok() {
                    count += 1;
                    assert!(
                        listed.contains(&name),
                        "counter {name} missing from the report"
                    );
                }
            }
        }
        assert_eq!(count, listed.len());
    }

    #[test]
    fn report_streams_records_and_escapes_names() {
        let dir = std::env::temp_dir().join(format!("tcpflow-report-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let xp = dir.join("r.xml");
        let jp = dir.join("r.json");
        let c = Creator {
            command_line: "tcpflow -r 'a b' -T '<x>'".into(),
            start_unix_ns: 0,
        };
        let mut r = Report::start(
            Some((xp.clone(), File::create(&xp).unwrap())),
            Some((jp.clone(), File::create(&jp).unwrap())),
            &c,
        )
        .unwrap();
        let mut f = flow4();
        f.dirs[0].packets = 5;
        f.dirs[0].ooo_segments = 2;
        f.dirs[0].payload_bytes = 35;
        for id in [7, 300] {
            assert!(f.key.vlans.push(id));
        }
        let name = PathBuf::from("out/a&b<c>'d");
        r.direction(&DirRecord {
            filename: Some(&name),
            filesize: 35,
            flow: &f,
            dir: Dir::AtoB,
            reason: CloseReason::Fin,
            session: 0,
            truncated_bytes: 0,
            write_lost_bytes: 0,
        });
        let stats = Stats::default();
        let host = HostStats::default();
        r.finish(&Totals {
            stats: &stats,
            host: &host,
            max_open_flows: 1,
            extra: &[("spool", vec![("records", 7)])],
        })
        .unwrap();
        let x = std::fs::read_to_string(&xp).unwrap();
        assert!(
            x.contains("<filename>out/a&amp;b&lt;c&gt;&apos;d</filename>"),
            "{x}"
        );
        assert!(x.contains(
            "<command_line>tcpflow -r &apos;a b&apos; -T &apos;&lt;x&gt;&apos;</command_line>"
        ));
        // The whole element: each value closed by the next key, the last by ` />`.
        assert!(x.contains("      <tcpflow startime='2010-01-31T22:16:21.260924Z' endtime='2010-01-31T22:16:22.000000Z' mac_daddr='00:0c:29:ce:d1:9e' mac_saddr='00:0c:29:7e:ec:a4' family='2' src_ipn='10.0.0.1' dst_ipn='192.168.100.2' srcport='40000' dstport='80' packets='5' out_of_order_count='2' len='35' connection='0' session='0' vlan='7,300' stream_len='0' gaps='0' gap_bytes='0' retransmitted_bytes='0' conflict_bytes='0' close='fin' />\n"), "{x}");
        assert!(x.trim_end().ends_with("</dfxml>"));
        assert!(x.contains("<flow opened='0'"));
        assert!(x.contains("<spool records='7' />"), "{x}");
        let j = std::fs::read_to_string(&jp).unwrap();
        let lines: Vec<&str> = j.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "{\"type\":\"flow\",\"filename\":\"out/a&b<c>'d\",\"filesize\":35,\"startime\":\"2010-01-31T22:16:21.260924Z\",\"endtime\":\"2010-01-31T22:16:22.000000Z\",\"mac_daddr\":\"00:0c:29:ce:d1:9e\",\"mac_saddr\":\"00:0c:29:7e:ec:a4\",\"family\":2,\"src_ipn\":\"10.0.0.1\",\"dst_ipn\":\"192.168.100.2\",\"srcport\":40000,\"dstport\":80,\"packets\":5,\"out_of_order_count\":2,\"len\":35,\"connection\":0,\"session\":0,\"vlan\":\"7,300\",\"stream_len\":0,\"gaps\":0,\"gap_bytes\":0,\"retransmitted_bytes\":0,\"conflict_bytes\":0,\"close\":\"fin\"}"
        );
        assert!(lines[2].starts_with("{\"type\":\"totals\""));
        assert!(lines[2].contains(",\"spool\":{\"records\":7},\"rusage\""));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
