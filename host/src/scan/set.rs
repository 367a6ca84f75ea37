//! The [`Scanner`] trait and the set of scanners a run enabled.

use std::collections::HashMap;
use std::path::PathBuf;

use tcpflow_core::{CloseReason, Dir, FlowInfo, FlowKey};

use super::{digest, http, Selection};
use crate::report::{Group, Objects};
use crate::template::{NameParams, Template};

/// What the scanners need from the run.
#[derive(Clone, Debug)]
pub struct ScanConfig {
    pub selection: Selection,
    pub template: Template,
    /// Where files go (as opened) and how names are shown in the report.
    pub outdir: PathBuf,
    pub display_dir: Option<PathBuf>,
    pub file_mode: u32,
    /// `-b`: a direction's file holds at most this much (digests are of the file).
    pub max_bytes: Option<u64>,
    pub http: http::HttpConfig,
}

/// Counters of the scanners, in the report's totals (group `scan`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// HTTP message heads parsed (requests and responses).
    pub http_messages: u64,
    /// Bodies carved into files, and the bytes written to them.
    pub http_bodies: u64,
    pub http_body_bytes: u64,
    /// Of those, bodies not complete (gaps, cut, framing, decoding, bound, write).
    pub http_bodies_incomplete: u64,
    /// Bodies whose decoding failed (kept as received, or what decoded).
    pub http_decode_errors: u64,
    /// Bodies that reached `--http-max-body`, and the decoded bytes not written.
    pub http_bodies_capped: u64,
    pub http_capped_bytes: u64,
    /// Bytes missing from bodies (gaps).
    pub http_missing_bytes: u64,
    /// Directions where HTTP parsing stopped: not HTTP, a bad head, a head over 64 KiB, lost
    /// framing, a gap outside a body.
    pub http_not_http: u64,
    pub http_bad_heads: u64,
    pub http_heads_too_large: u64,
    pub http_framing_errors: u64,
    pub http_gaps_lost_sync: u64,
    /// Bytes of directions after HTTP parsing stopped there (left to the flow file).
    pub http_unparsed_bytes: u64,
    /// Connections switched to another protocol (101 Upgrade) or a tunnel (CONNECT).
    pub http_upgrades: u64,
    pub http_tunnels: u64,
    /// Responses with no request seen for them (its direction missing or late).
    pub http_unpaired_responses: u64,
    /// Requests forgotten because too many waited for responses.
    pub http_requests_dropped: u64,
    /// Body file write errors.
    pub http_write_errors: u64,
    /// Late bytes given to the scanners (they filled a gap of a flow file after the scanners
    /// had passed it): not parsed again, but ...
    pub scan_late_bytes: u64,
    /// ... those for a hole of an uncoded HTTP body still open are written into it (its
    /// record then says what is still missing, and its digest is of the filled file).
    pub http_late_body_bytes: u64,
}

impl Counters {
    pub fn group(&self) -> Group {
        (
            "scan",
            vec![
                ("http_messages", self.http_messages),
                ("http_bodies", self.http_bodies),
                ("http_body_bytes", self.http_body_bytes),
                ("http_bodies_incomplete", self.http_bodies_incomplete),
                ("http_decode_errors", self.http_decode_errors),
                ("http_bodies_capped", self.http_bodies_capped),
                ("http_capped_bytes", self.http_capped_bytes),
                ("http_missing_bytes", self.http_missing_bytes),
                ("http_not_http", self.http_not_http),
                ("http_bad_heads", self.http_bad_heads),
                ("http_heads_too_large", self.http_heads_too_large),
                ("http_framing_errors", self.http_framing_errors),
                ("http_gaps_lost_sync", self.http_gaps_lost_sync),
                ("http_unparsed_bytes", self.http_unparsed_bytes),
                ("http_upgrades", self.http_upgrades),
                ("http_tunnels", self.http_tunnels),
                ("http_unpaired_responses", self.http_unpaired_responses),
                ("http_requests_dropped", self.http_requests_dropped),
                ("http_write_errors", self.http_write_errors),
                ("scan_late_bytes", self.scan_late_bytes),
                ("http_late_body_bytes", self.http_late_body_bytes),
            ],
        )
    }
}

/// Text a scanner adds to a direction's report record: XML elements inside its
/// `<fileobject>`, JSON fields of its line.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub xml: String,
    pub json: String,
}

/// A direction of one connection, for [`Extra`]s waiting for its record (flow slots are
/// reused by the time the record is written).
pub type DirId = (FlowKey, u32, u8);

pub fn dir_id(flow: &FlowInfo, dir: Dir) -> DirId {
    (flow.key, flow.conn_index, dir.index() as u8)
}

/// What a scanner may touch besides its own state.
pub struct Ctx<'a> {
    pub cfg: &'a ScanConfig,
    pub report: &'a mut Objects,
    pub counters: &'a mut Counters,
    pub extras: &'a mut HashMap<DirId, Extra>,
}

impl Ctx<'_> {
    /// A name relative to the output folder as the report shows it.
    pub fn display(&self, rel: &str) -> String {
        match &self.cfg.display_dir {
            Some(d) => d.join(rel).to_string_lossy().into_owned(),
            None => rel.to_string(),
        }
    }
}

/// A scanner: the stream events of every flow, both directions. `names` are the flow files'
/// names (relative to the output folder) of side A to B and B to A.
pub trait Scanner: std::fmt::Debug {
    fn open(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, names: &[String; 2]);
    /// The file writer named a direction's file `name` at its first byte, before the
    /// scanners see that byte: the template's name of `open`, or that name with the
    /// connection index counted up because it was taken (or rebuilt without the MAC
    /// addresses the flow did not have yet): what the direction's file is really called.
    fn named(&mut self, _cx: &mut Ctx<'_>, _flow: &FlowInfo, _dir: Dir, _name: &str) {}
    fn data(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]);
    fn gap(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, dir: Dir, offset: u64, len: u64);
    /// Bytes inside a range already given as a gap (the set counts them as not scanned; a
    /// scanner that can still use them does).
    fn late(&mut self, _cx: &mut Ctx<'_>, _flow: &FlowInfo, _dir: Dir, _offset: u64, _data: &[u8]) {
    }
    fn close(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, reason: CloseReason);
    /// The run's end: work still under way (on another thread) done, its records given.
    fn finish(&mut self, _cx: &mut Ctx<'_>) {}
}

/// The scanners of a run, fed by the file writer.
#[derive(Debug)]
pub struct ScanSet {
    cfg: ScanConfig,
    scanners: Vec<Box<dyn Scanner + Send>>,
    counters: Counters,
    extras: HashMap<DirId, Extra>,
}

impl ScanSet {
    /// `None` when nothing is selected.
    pub fn new(cfg: ScanConfig) -> Option<ScanSet> {
        let s = cfg.selection;
        let mut scanners: Vec<Box<dyn Scanner + Send>> = Vec::new();
        if s.md5 || s.sha256 {
            scanners.push(Box::new(digest::Digests::new(
                s.md5,
                s.sha256,
                cfg.max_bytes,
            )));
        }
        if s.http {
            scanners.push(Box::new(http::Http::new(cfg.http)));
        }
        if scanners.is_empty() {
            return None;
        }
        Some(ScanSet {
            cfg,
            scanners,
            counters: Counters::default(),
            extras: HashMap::new(),
        })
    }

    fn each(&mut self, report: &mut Objects, mut f: impl FnMut(&mut dyn Scanner, &mut Ctx<'_>)) {
        let mut cx = Ctx {
            cfg: &self.cfg,
            report,
            counters: &mut self.counters,
            extras: &mut self.extras,
        };
        for s in &mut self.scanners {
            f(s.as_mut(), &mut cx);
        }
    }

    /// A flow opened; `session` is its `%S` number (for names that use it).
    pub fn open(&mut self, flow: &FlowInfo, session: u64, report: &mut Objects) {
        let p = NameParams {
            conn_index: flow.conn_index,
            session,
        };
        let names = [
            self.cfg.template.expand(flow, Dir::AtoB, p),
            self.cfg.template.expand(flow, Dir::BtoA, p),
        ];
        self.each(report, |s, cx| s.open(cx, flow, &names));
    }

    /// The file writer chose `name` for the file of `dir` (see [`Scanner::named`]).
    pub fn named(&mut self, flow: &FlowInfo, dir: Dir, name: &str, report: &mut Objects) {
        self.each(report, |s, cx| s.named(cx, flow, dir, name));
    }

    pub fn data(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        offset: u64,
        data: &[u8],
        report: &mut Objects,
    ) {
        self.each(report, |s, cx| s.data(cx, flow, dir, offset, data));
    }

    pub fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, report: &mut Objects) {
        self.each(report, |s, cx| s.gap(cx, flow, dir, offset, len));
    }

    pub fn late(
        &mut self,
        flow: &FlowInfo,
        dir: Dir,
        offset: u64,
        data: &[u8],
        report: &mut Objects,
    ) {
        // Counted once, whatever the number of scanners.
        self.counters.scan_late_bytes += data.len() as u64;
        self.each(report, |s, cx| s.late(cx, flow, dir, offset, data));
    }

    pub fn close(&mut self, flow: &FlowInfo, reason: CloseReason, report: &mut Objects) {
        self.each(report, |s, cx| s.close(cx, flow, reason));
    }

    /// The run's end: every record and counter in (before [`ScanSet::group`]).
    pub fn finish(&mut self, report: &mut Objects) {
        self.each(report, |s, cx| s.finish(cx));
    }

    /// What the scanners add to this direction's record (asked for just before it is written).
    pub fn take_extra(&mut self, flow: &FlowInfo, dir: Dir) -> Option<Extra> {
        self.extras.remove(&dir_id(flow, dir))
    }

    /// The totals group.
    pub fn group(&self) -> Group {
        self.counters.group()
    }
}
