//! `-e http`: HTTP/1.0 and 1.1 bodies carved from both directions of each connection.
//!
//! Per direction a small state machine (as hyper's decoder): the head is buffered until its
//! empty line (at most [`framing::MAX_HEAD`]) and parsed once with `httparse`; the body then
//! runs through its framing (Content-Length, chunked, until close), streaming, into
//! [`body::BodyOut`], which decodes the codings and writes `<flow file>-HTTPBODY-NNN<ext>`.
//! Requests seen in one direction wait (at most [`MAX_PENDING`]) for their responses in the
//! other: a response to HEAD has no body, a 2xx to CONNECT or a 101 ends HTTP on the
//! connection (the rest stays in the flow files). Gaps inside a body become holes; a gap
//! anywhere else ends parsing on that direction, counted. Each body gets a report record.

pub mod body;
pub mod decode;
pub mod framing;
pub mod naming;
mod worker;

use std::collections::VecDeque;
use std::path::PathBuf;

use tcpflow_core::{CloseReason, Dir, FlowInfo, FlowKey};

use crate::fxhash::SlotMap;
use crate::report::{json_escape, xml_escape};
use body::BodyOut;
use decode::Coding;
use framing::{chunk_step, classify, head_end, Chunked, Start, MAX_HEAD};
use worker::{Body, Fin, Pool};

use super::set::{Counters, Ctx, Scanner};

/// Requests waiting for their responses, per connection.
pub const MAX_PENDING: usize = 256;
/// Longest URI and Host kept for the report.
const MAX_FIELD: usize = 1024;
/// Headers parsed per message (more: a bad head).
const MAX_HEADERS: usize = 128;

/// `-e http` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// `--http-max-body`: decoded bytes written per body.
    pub max_body: u64,
    /// Decode content and transfer codings (`-Z` turns it off, as in tcpflow 1.6).
    pub decode: bool,
}

/// Default `--http-max-body`.
pub const DEFAULT_MAX_BODY: u64 = 256 << 20;

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body: DEFAULT_MAX_BODY,
            decode: true,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Req {
    method: String,
    host: String,
    uri: String,
}

/// A request waiting for its response, or requests not kept (the queue was full).
#[derive(Debug)]
enum Waiting {
    Req(Req),
    Skipped(u64),
}

/// What the report says of a message with a body.
#[derive(Debug)]
struct Meta {
    index: u32,
    request: Option<Req>,
    status: Option<u16>,
    content_type: String,
    declared: Option<u64>,
    encodings: String,
    disposition: Option<String>,
}

#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(Chunked),
    Close,
}

#[derive(Debug)]
struct Msg {
    framing: Framing,
    out: Body,
    meta: Meta,
    /// Body bytes so far (dechunked, still coded; holes included): the body offset of the
    /// next byte.
    received: u64,
    /// Holes of an uncoded body, as stream range and body offset, for late bytes to fill
    /// while the body is open (at most [`HOLES_KEPT`]; a coded body keeps none).
    holes: Option<Vec<(u64, u64, u64)>>,
}

/// Holes of one body that late bytes can still fill.
const HOLES_KEPT: usize = 32;

#[derive(Debug)]
enum St {
    Head,
    Body(Box<Msg>),
    /// Out of step (a gap outside a body, or bytes that are not a message start): each later
    /// data event is looked at for a message starting at its first byte, where a sender
    /// starts a message after a loss (a segment boundary), and parsing resumes there.
    Resync,
    /// Parsing stopped on this direction (another protocol took the connection over).
    Dead,
}

#[derive(Debug)]
struct Side {
    /// Stream offset of the next byte.
    pos: u64,
    st: St,
    head: Vec<u8>,
    searched: usize,
    /// A message was parsed on this direction.
    was_http: bool,
    /// Bytes still searched for a message start while the connection has shown no HTTP.
    search_left: usize,
}

/// Bytes of a direction searched for a message start before the connection shows HTTP.
const SEARCH_FIRST: usize = 256 * 1024;

#[derive(Debug)]
struct Conn {
    /// The flow files' names: the template's at open, then each as the file writer chose it
    /// (it counts the connection index up when the name is taken).
    names: [String; 2],
    /// A name above is the file writer's, not the template's.
    renamed: [bool; 2],
    sides: [Side; 2],
    requests: VecDeque<Waiting>,
    /// Bodies written per flow file so far.
    bodies: [u32; 2],
    /// Closed by eviction: kept as it was (bodies open, parsing state) in case the engine picks
    /// the connection up again, which it does on the same slot with the same key, connection
    /// index and offsets. Bounded like every entry here: one per flow slot.
    parked: Option<(FlowKey, u32)>,
}

impl Conn {
    /// Whether `flow` is this evicted connection picked up where it stopped.
    fn resumes(&self, flow: &FlowInfo, names: &[String; 2]) -> bool {
        self.parked == Some((flow.key, flow.conn_index))
            && (0..2).all(|d| self.renamed[d] || self.names[d] == names[d])
            && (0..2).all(|d| self.sides[d].pos == flow.dirs[d].stream_len)
    }
}

/// The scanner: per flow slot, one connection's state.
#[derive(Debug)]
pub struct Http {
    cfg: HttpConfig,
    conns: SlotMap<Box<Conn>>,
    pool: Pool,
}

impl Http {
    pub fn new(cfg: HttpConfig) -> Http {
        Http {
            cfg,
            conns: SlotMap::default(),
            pool: Pool::default(),
        }
    }
}

/// The scanner's context and the bodies' pool, for the parser's methods.
struct Cx<'a, 'b> {
    cx: &'a mut Ctx<'b>,
    pool: &'a mut Pool,
}

impl<'b> std::ops::Deref for Cx<'_, 'b> {
    type Target = Ctx<'b>;
    fn deref(&self) -> &Ctx<'b> {
        self.cx
    }
}

impl<'b> std::ops::DerefMut for Cx<'_, 'b> {
    fn deref_mut(&mut self) -> &mut Ctx<'b> {
        self.cx
    }
}

fn new_side(pos: u64) -> Side {
    Side {
        pos,
        st: St::Head,
        head: Vec::new(),
        searched: 0,
        was_http: false,
        search_left: SEARCH_FIRST,
    }
}

fn clip(s: &str) -> String {
    let mut n = s.len().min(MAX_FIELD);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s[..n].to_string()
}

fn header<'h>(hs: &'h [httparse::Header<'_>], name: &str) -> Option<&'h [u8]> {
    hs.iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// All values of a list header (`A: x, y` and repeated lines), lower-cased, in order.
fn list(hs: &[httparse::Header<'_>], name: &str) -> Vec<String> {
    hs.iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| {
            String::from_utf8_lossy(h.value)
                .split(',')
                .map(|v| v.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// The framing and codings the headers give a message that has a body.
struct Parsed {
    framing: Option<Framing>,
    declared: Option<u64>,
    codings: Result<Vec<Coding>, String>,
    encodings: String,
    content_type: String,
    disposition: Option<String>,
}

fn body_framing(
    hs: &[httparse::Header<'_>],
    is_response: bool,
    decode: bool,
) -> Result<Parsed, String> {
    let te = list(hs, "transfer-encoding");
    let ce = list(hs, "content-encoding");
    let chunked = te.last().is_some_and(|t| t == "chunked");
    let declared = match header(hs, "content-length") {
        Some(v) => {
            let s = String::from_utf8_lossy(v);
            // Repeated values (`5, 5`) must agree.
            let mut vals = s.split(',').map(|x| x.trim().parse::<u64>());
            let first = vals
                .next()
                .and_then(|r| r.ok())
                .ok_or("bad Content-Length")?;
            if vals.any(|r| r != Ok(first)) {
                return Err("conflicting Content-Length".into());
            }
            Some(first)
        }
        None => None,
    };
    let framing = if chunked {
        Some(Framing::Chunked(Chunked::START))
    } else if !te.is_empty() && is_response {
        // A transfer coding without chunked last: the body runs to the close (RFC 9112).
        Some(Framing::Close)
    } else if !te.is_empty() {
        return Err("request with a transfer coding other than chunked last".into());
    } else {
        match declared {
            Some(0) => None,
            Some(n) => Some(Framing::Length(n)),
            None if is_response => Some(Framing::Close),
            None => None,
        }
    };
    // Decoding undoes the last coding applied first: the transfer codings (but chunked),
    // then the content codings.
    let mut names: Vec<&str> = te
        .iter()
        .filter(|t| *t != "chunked" && *t != "identity")
        .map(|s| s.as_str())
        .collect();
    names.reverse();
    let mut c: Vec<&str> = ce
        .iter()
        .filter(|t| *t != "identity")
        .map(|s| s.as_str())
        .collect();
    c.reverse();
    names.extend(c);
    let codings = if !decode {
        Ok(Vec::new())
    } else {
        names
            .iter()
            .map(|n| Coding::parse(n).ok_or_else(|| format!("unsupported coding {n}")))
            .collect()
    };
    let mut encodings: Vec<String> = ce.clone();
    encodings.extend(te.iter().cloned());
    Ok(Parsed {
        framing,
        declared,
        codings,
        encodings: encodings.join(","),
        content_type: header(hs, "content-type")
            .map(|v| clip(&String::from_utf8_lossy(v)))
            .unwrap_or_default(),
        disposition: header(hs, "content-disposition")
            .and_then(|v| naming::disposition_filename(&String::from_utf8_lossy(v))),
    })
}

impl Conn {
    /// Late bytes at stream offset `off` (they filled a gap of the flow file): those for a
    /// hole of the body still open on this direction go into it.
    fn late(&mut self, cx: &mut Cx<'_, '_>, d: usize, off: u64, data: &[u8]) {
        let St::Body(m) = &mut self.sides[d].st else {
            return;
        };
        let Some(holes) = &mut m.holes else {
            return;
        };
        let end = off + data.len() as u64;
        let mut left = Vec::with_capacity(holes.len() + 1);
        for &(lo, hi, body) in holes.iter() {
            let (a, b) = (off.max(lo), end.min(hi));
            if a >= b {
                left.push((lo, hi, body));
                continue;
            }
            let piece = &data[(a - off) as usize..(b - off) as usize];
            cx.pool.fill(&mut m.out, body + (a - lo), piece);
            cx.counters.http_late_body_bytes += b - a;
            cx.counters.http_missing_bytes = cx.counters.http_missing_bytes.saturating_sub(b - a);
            if lo < a {
                left.push((lo, a, body));
            }
            if b < hi {
                left.push((b, hi, body + (b - lo)));
            }
        }
        left.truncate(HOLES_KEPT);
        *holes = left;
    }

    /// Stops parsing on a direction (its later bytes counted as unparsed).
    fn kill(&mut self, cx: &mut Cx<'_, '_>, d: usize, complete: bool) {
        if let St::Body(m) = std::mem::replace(&mut self.sides[d].st, St::Dead) {
            finish(cx, &self.names[d], *m, complete);
        }
        // Where the search for the head's end stopped goes with the head: kept, it would
        // skip the start of the next head (and see that head's end only in a later event,
        // before the bytes that event added).
        self.sides[d].head = Vec::new();
        self.sides[d].searched = 0;
    }

    fn feed(&mut self, cx: &mut Cx<'_, '_>, cfg: &HttpConfig, d: usize, mut b: &[u8]) {
        while !b.is_empty() {
            let conn_http = self.sides[0].was_http || self.sides[1].was_http;
            let side = &mut self.sides[d];
            match &mut side.st {
                St::Dead => {
                    cx.counters.http_unparsed_bytes += b.len() as u64;
                    return;
                }
                St::Resync => {
                    // A connection that carried HTTP is searched for the next message start
                    // anywhere (the pool may deliver what followed a loss as one piece);
                    // one that did not yet only in its first SEARCH_FIRST bytes (a pickup
                    // in mid-body) and at event starts: cheap for connections that are not
                    // HTTP at all.
                    let at = if starts_message(b) {
                        Some(0)
                    } else if conn_http {
                        find_message(b)
                    } else if side.search_left > 0 {
                        let n = b.len().min(side.search_left);
                        side.search_left -= n;
                        find_message(&b[..n])
                    } else {
                        None
                    };
                    let Some(at) = at else {
                        cx.counters.http_unparsed_bytes += b.len() as u64;
                        return;
                    };
                    cx.counters.http_unparsed_bytes += at as u64;
                    b = &b[at..];
                    side.st = St::Head;
                }
                St::Head => {
                    if side.head.is_empty() {
                        let k = b
                            .iter()
                            .take_while(|c| **c == b'\r' || **c == b'\n')
                            .count();
                        b = &b[k..];
                        if b.is_empty() {
                            return;
                        }
                    }
                    let before = side.head.len();
                    let take = b.len().min(MAX_HEAD - before);
                    side.head.extend_from_slice(&b[..take]);
                    if classify(&side.head) == Start::NotHttp {
                        cx.counters.http_not_http += 1;
                        // The bytes of earlier events held as a head are not parsed
                        // (counted); this event's are searched again for a message start.
                        cx.counters.http_unparsed_bytes += before as u64;
                        self.lose_step(cx, d);
                        if !b.is_empty() {
                            // Not a start here: skip one byte so the search moves on.
                            cx.counters.http_unparsed_bytes += 1;
                            b = &b[1..];
                        }
                        continue;
                    }
                    if let Some(end) = head_end(&side.head, side.searched) {
                        let used = end - before;
                        b = &b[used..];
                        let head = std::mem::take(&mut side.head);
                        side.searched = 0;
                        side.was_http = true;
                        self.on_head(cx, cfg, d, &head[..end]);
                        continue;
                    }
                    side.searched = side.head.len();
                    b = &b[take..];
                    if side.head.len() >= MAX_HEAD {
                        cx.counters.http_heads_too_large += 1;
                        cx.counters.http_unparsed_bytes += side.head.len() as u64;
                        self.lose_step(cx, d);
                    }
                }
                St::Body(m) => {
                    let (used, done) = match &mut m.framing {
                        Framing::Length(left) => {
                            let n = (*left).min(b.len() as u64) as usize;
                            cx.pool.push(&mut m.out, &b[..n]);
                            m.received += n as u64;
                            *left -= n as u64;
                            (n, *left == 0)
                        }
                        Framing::Close => {
                            cx.pool.push(&mut m.out, b);
                            m.received += b.len() as u64;
                            (b.len(), false)
                        }
                        Framing::Chunked(c) => match chunk_step(c, b) {
                            Ok((n, data)) => {
                                if let Some((s, e)) = data {
                                    cx.pool.push(&mut m.out, &b[s..e]);
                                    m.received += (e - s) as u64;
                                }
                                (n, *c == Chunked::Done)
                            }
                            Err(e) => {
                                cx.counters.http_framing_errors += 1;
                                cx.pool.note(&mut m.out, body::Incomplete::Framing(e));
                                cx.counters.http_unparsed_bytes += b.len() as u64;
                                self.lose_step(cx, d);
                                return;
                            }
                        },
                    };
                    b = &b[used..];
                    if done {
                        if let St::Body(m) = std::mem::replace(&mut side.st, St::Head) {
                            finish(cx, &self.names[d], *m, true);
                        }
                    }
                }
            }
        }
    }

    fn on_head(&mut self, cx: &mut Cx<'_, '_>, cfg: &HttpConfig, d: usize, head: &[u8]) {
        let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let is_response = head.starts_with(b"HTTP/");
        let req_info;
        let (status, parsed) = if is_response {
            let mut r = httparse::Response::new(&mut hs);
            match r.parse(head) {
                Ok(httparse::Status::Complete(_)) => {}
                _ => return self.bad_head(cx, d),
            }
            let code = r.code.unwrap_or(0);
            cx.counters.http_messages += 1;
            if (100..200).contains(&code) && code != 101 {
                // Interim (100 Continue, 103): the final response follows.
                return;
            }
            let req = match self.requests.pop_front() {
                Some(Waiting::Req(r)) => Some(r),
                Some(Waiting::Skipped(n)) => {
                    if n > 1 {
                        self.requests.push_front(Waiting::Skipped(n - 1));
                    }
                    None
                }
                None => None,
            };
            if req.is_none() {
                cx.counters.http_unpaired_responses += 1;
            }
            let method = req.as_ref().map(|r| r.method.as_str()).unwrap_or("");
            if code == 101 || (method == "CONNECT" && (200..300).contains(&code)) {
                if code == 101 {
                    cx.counters.http_upgrades += 1;
                } else {
                    cx.counters.http_tunnels += 1;
                }
                let proto = header(r.headers, "upgrade")
                    .map(|v| clip(&String::from_utf8_lossy(v)))
                    .unwrap_or_default();
                event(
                    cx,
                    &self.names[d],
                    if code == 101 { "upgrade" } else { "connect" },
                    &proto,
                    self.sides[d].pos,
                );
                self.kill(cx, 0, true);
                self.kill(cx, 1, true);
                return;
            }
            if method == "HEAD" || code == 204 || code == 304 || (100..200).contains(&code) {
                return;
            }
            req_info = req;
            (Some(code), body_framing(r.headers, true, cfg.decode))
        } else {
            let mut r = httparse::Request::new(&mut hs);
            match r.parse(head) {
                Ok(httparse::Status::Complete(_)) => {}
                _ => return self.bad_head(cx, d),
            }
            cx.counters.http_messages += 1;
            let req = Req {
                method: clip(r.method.unwrap_or("")),
                host: header(r.headers, "host")
                    .map(|v| clip(&String::from_utf8_lossy(v)))
                    .unwrap_or_default(),
                uri: clip(r.path.unwrap_or("")),
            };
            // At most MAX_PENDING + 1 entries: a full queue ends with one `Skipped`.
            if self.requests.len() >= MAX_PENDING {
                // Not kept, but its place is: every later response still pairs with its
                // own request; the response to this one is unpaired (counted).
                cx.counters.http_requests_dropped += 1;
                match self.requests.back_mut() {
                    Some(Waiting::Skipped(n)) => *n += 1,
                    _ => self.requests.push_back(Waiting::Skipped(1)),
                }
            } else {
                self.requests.push_back(Waiting::Req(req.clone()));
            }
            let upgrade = req.method == "CONNECT" || header(r.headers, "upgrade").is_some();
            let parsed = body_framing(r.headers, false, cfg.decode);
            if upgrade {
                // What the client sends next may be another protocol already; the response
                // says whether it is (and ends parsing on both sides then).
                if parsed.as_ref().map_or(true, |p| p.framing.is_none()) {
                    self.kill(cx, d, true);
                    return;
                }
            }
            req_info = Some(req);
            (None, parsed)
        };
        let p = match parsed {
            Ok(p) => p,
            Err(_) => return self.bad_head(cx, d),
        };
        let Some(framing) = p.framing else {
            return;
        };
        self.bodies[d] += 1;
        let index = self.bodies[d];
        let rel = naming::body_name(&self.names[d], index, &p.content_type);
        let (codings, why) = match p.codings {
            Ok(c) => (c, None),
            Err(e) => (Vec::new(), Some(body::Incomplete::Decode(e))),
        };
        let mut out = BodyOut::new(
            cx.cfg.outdir.join(&rel),
            PathBuf::from(&rel),
            cx.cfg.file_mode,
            &codings,
            cfg.max_body,
        );
        out.why = why;
        let out = cx.pool.open(out);
        let meta = Meta {
            index,
            request: req_info,
            status,
            content_type: p.content_type,
            declared: p.declared,
            encodings: p.encodings,
            disposition: p.disposition,
        };
        let holes = codings.is_empty().then(Vec::new);
        self.sides[d].st = St::Body(Box::new(Msg {
            framing,
            out,
            meta,
            received: 0,
            holes,
        }));
    }

    fn bad_head(&mut self, cx: &mut Cx<'_, '_>, d: usize) {
        cx.counters.http_bad_heads += 1;
        self.lose_step(cx, d);
    }

    /// The direction is out of step: its body (if any) ends incomplete, and parsing waits
    /// for a message start ([`St::Resync`]).
    fn lose_step(&mut self, cx: &mut Cx<'_, '_>, d: usize) {
        self.kill(cx, d, false);
        self.sides[d].st = St::Resync;
    }

    fn gap(&mut self, cx: &mut Cx<'_, '_>, d: usize, mut len: u64) {
        let side = &mut self.sides[d];
        let at = side.pos;
        side.pos += len;
        if let St::Body(m) = &mut side.st {
            let fits = match &mut m.framing {
                Framing::Length(left) => {
                    let n = (*left).min(len);
                    *left -= n;
                    Some(n)
                }
                Framing::Chunked(Chunked::Data { left }) => {
                    let n = (*left).min(len);
                    *left -= n;
                    if *left == 0 {
                        m.framing = Framing::Chunked(Chunked::DataEnd { cr: false });
                    }
                    Some(n)
                }
                Framing::Close => Some(len),
                Framing::Chunked(_) => None,
            };
            if let Some(n) = fits {
                cx.pool.hole(&mut m.out, n);
                cx.counters.http_missing_bytes += n;
                if let Some(h) = &mut m.holes {
                    if h.len() < HOLES_KEPT {
                        h.push((at, at + n, m.received));
                    }
                }
                m.received += n;
                len -= n;
                if len == 0 {
                    if matches!(m.framing, Framing::Length(0)) {
                        if let St::Body(m) = std::mem::replace(&mut side.st, St::Head) {
                            finish(cx, &self.names[d], *m, true);
                        }
                    }
                    return;
                }
            }
        }
        if matches!(self.sides[d].st, St::Dead | St::Resync) {
            return;
        }
        // Where the next message starts is lost with these bytes.
        cx.counters.http_gaps_lost_sync += 1;
        self.lose_step(cx, d);
    }
}

/// Whether `b` starts with a message: a status line, or a request line (a method, a target
/// and `HTTP/1.` on its first line).
fn starts_message(b: &[u8]) -> bool {
    match classify(b) {
        Start::Response => b.get(5..7) == Some(b"1."),
        Start::Request => {
            let line = &b[..b
                .iter()
                .position(|c| *c == b'\n')
                .unwrap_or(b.len())
                .min(8192)];
            line.windows(8).any(|w| w == b" HTTP/1.")
        }
        _ => false,
    }
}

/// Where a message starts in `b`, if anywhere: a request after a line end, or a status line
/// (`HTTP/1.x NNN `) anywhere, since a body read from midstream need not end with a line end.
fn find_message(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'H' if is_status_line(&b[i..]) => return Some(i),
            b'\n' if starts_message(&b[i + 1..]) => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_status_line(b: &[u8]) -> bool {
    b.len() >= 13
        && b.starts_with(b"HTTP/1.")
        && matches!(b[7], b'0' | b'1')
        && b[8] == b' '
        && b[9..12].iter().all(u8::is_ascii_digit)
        && b[12] == b' '
}

/// The body is done: its file finished and its report record written (now, or when the
/// body worker is done with it).
fn finish(cx: &mut Cx<'_, '_>, flow_file: &str, m: Msg, complete: bool) {
    let fin = Fin {
        flow_file: flow_file.to_string(),
        meta: m.meta,
    };
    cx.pool.finish(cx.cx, m.out, complete, fin, finished);
}

/// A finished body's counters and report record.
fn finished(cx: &mut Ctx<'_>, out: &BodyOut, sha: &str, fin: Fin) {
    let c: &mut Counters = cx.counters;
    c.http_write_errors += out.write_errors;
    c.http_capped_bytes += out.capped_bytes;
    if out.capped_bytes > 0 {
        c.http_bodies_capped += 1;
    }
    if matches!(out.why, Some(body::Incomplete::Decode(_))) {
        c.http_decode_errors += 1;
    }
    if out.size == 0 && out.why.is_none() {
        // Nothing carved (an empty body): no file, as tcpflow 1.6.
        return;
    }
    c.http_bodies += 1;
    c.http_body_bytes += out.size;
    if out.why.is_some() {
        c.http_bodies_incomplete += 1;
    }
    record(cx, &fin.flow_file, &fin.meta, out, sha);
    // The file is complete and closed (BodyOut::finish ran): what acts on finished bodies
    // (-S http_cmd, http_alert_fd) and the pictures take it from here.
    let body = crate::report::BodyFile {
        shown: PathBuf::from(cx.display(&out.rel.to_string_lossy())),
        path: out.path().to_path_buf(),
        exists: out.has_file(),
        flow: PathBuf::from(cx.display(&fin.flow_file)),
        size: out.size,
        status: fin.meta.status,
        content_type: fin.meta.content_type,
        incomplete: out.why.as_ref().map(body::Incomplete::text),
    };
    cx.report.body(body);
}

/// The object's record: a `<fileobject>` for the body file with its SHA-256 and an `<http>`
/// element; a `"type":"http"` JSON line.
fn record(cx: &mut Ctx<'_>, flow_file: &str, meta: &Meta, out: &BodyOut, sha: &str) {
    let file = cx.display(&out.rel.to_string_lossy());
    let flow = cx.display(flow_file);
    let mut attrs: Vec<(&str, String, bool)> = vec![
        ("flow", flow, false),
        ("index", meta.index.to_string(), true),
    ];
    if let Some(r) = &meta.request {
        attrs.push(("method", r.method.clone(), false));
        attrs.push(("host", r.host.clone(), false));
        attrs.push(("uri", r.uri.clone(), false));
    }
    if let Some(s) = meta.status {
        attrs.push(("status", s.to_string(), true));
    }
    if !meta.content_type.is_empty() {
        attrs.push(("content_type", meta.content_type.clone(), false));
    }
    if let Some(n) = meta.declared {
        attrs.push(("declared_length", n.to_string(), true));
    }
    attrs.push(("received_length", out.received.to_string(), true));
    attrs.push(("written_length", out.size.to_string(), true));
    if !meta.encodings.is_empty() {
        attrs.push(("encodings", meta.encodings.clone(), false));
    }
    attrs.push((
        "complete",
        if out.why.is_none() { "yes" } else { "no" }.into(),
        false,
    ));
    if let Some(w) = &out.why {
        attrs.push(("reason", w.text(), false));
    }
    if out.missing_bytes > 0 {
        let r: Vec<String> = out
            .missing
            .iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect();
        attrs.push(("missing", r.join(","), false));
        attrs.push(("missing_bytes", out.missing_bytes.to_string(), true));
    }
    if out.capped_bytes > 0 {
        attrs.push(("capped_bytes", out.capped_bytes.to_string(), true));
    }
    if let Some(f) = &meta.disposition {
        attrs.push(("disposition_filename", f.clone(), false));
    }
    let mut x = format!(
        "    <fileobject>\n      <filename>{}</filename>\n      <filesize>{}</filesize>\n      <hashdigest type='SHA256'>{sha}</hashdigest>\n      <http",
        xml_escape(&file),
        out.size
    );
    let mut j = format!(
        "{{\"type\":\"http\",\"filename\":\"{}\",\"filesize\":{},\"sha256\":\"{sha}\"",
        json_escape(&file),
        out.size
    );
    for (k, v, num) in &attrs {
        x.push_str(&format!(" {k}='{}'", xml_escape(v)));
        if *num {
            j.push_str(&format!(",\"{k}\":{v}"));
        } else {
            j.push_str(&format!(",\"{k}\":\"{}\"", json_escape(v)));
        }
    }
    x.push_str(" />\n    </fileobject>\n");
    j.push_str("}\n");
    cx.report.object(&x, &j);
}

/// A connection leaving HTTP (upgrade, CONNECT): a record, so the user knows why the rest of
/// the flow file was not carved.
fn event(cx: &mut Cx<'_, '_>, flow_file: &str, what: &str, proto: &str, at: u64) {
    let flow = cx.display(flow_file);
    let x = format!(
        "    <http_event flow='{}' event='{what}' protocol='{}' offset='{at}' />\n",
        xml_escape(&flow),
        xml_escape(proto)
    );
    let j = format!(
        "{{\"type\":\"http_event\",\"flow\":\"{}\",\"event\":\"{what}\",\"protocol\":\"{}\",\"offset\":{at}}}\n",
        json_escape(&flow),
        json_escape(proto)
    );
    cx.pool.record(cx.cx, x, j);
}

impl Scanner for Http {
    fn open(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, names: &[String; 2]) {
        self.pool.poll(cx, finished);
        let cx = &mut Cx {
            cx,
            pool: &mut self.pool,
        };
        if let Some(mut old) = self.conns.remove(&flow.slot) {
            if old.resumes(flow, names) {
                // Evicted and picked up again: parsing goes on, bodies included.
                old.parked = None;
                self.conns.insert(flow.slot, old);
                return;
            }
            // Evicted and not picked up (the slot went to another connection), or never
            // closed: its bodies end here.
            old.kill(cx, 0, false);
            old.kill(cx, 1, false);
        }
        // A connection the engine resumes with no state kept here carries on mid-stream: it
        // starts at its offsets and is parsed only if a message starts there.
        self.conns.insert(
            flow.slot,
            Box::new(Conn {
                names: names.clone(),
                renamed: [false; 2],
                sides: [
                    new_side(flow.dirs[0].stream_len),
                    new_side(flow.dirs[1].stream_len),
                ],
                requests: VecDeque::new(),
                bodies: [0; 2],
                parked: None,
            }),
        );
    }

    fn named(&mut self, _cx: &mut Ctx<'_>, flow: &FlowInfo, dir: Dir, name: &str) {
        if let Some(c) = self.conns.get_mut(&flow.slot) {
            let d = dir.index();
            if c.names[d] != name {
                c.names[d] = name.to_string();
                c.renamed[d] = true;
            }
        }
    }

    fn data(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        self.pool.poll(cx, finished);
        let Some(c) = self.conns.get_mut(&flow.slot) else {
            return;
        };
        let cx = &mut Cx {
            cx,
            pool: &mut self.pool,
        };
        let d = dir.index();
        let pos = c.sides[d].pos;
        let end = offset + data.len() as u64;
        if end <= pos {
            // Delivered again (overlap policy `last`): already parsed.
            return;
        }
        if offset > pos {
            c.gap(cx, d, offset - pos);
        }
        let skip = (c.sides[d].pos.saturating_sub(offset)) as usize;
        c.sides[d].pos = end;
        c.feed(cx, &self.cfg, d, &data[skip..]);
    }

    fn gap(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, dir: Dir, offset: u64, len: u64) {
        let Some(c) = self.conns.get_mut(&flow.slot) else {
            return;
        };
        let cx = &mut Cx {
            cx,
            pool: &mut self.pool,
        };
        let d = dir.index();
        let end = offset.saturating_add(len);
        if end <= c.sides[d].pos {
            return;
        }
        let len = end - c.sides[d].pos.max(offset);
        c.gap(cx, d, len);
    }

    fn late(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        let Some(c) = self.conns.get_mut(&flow.slot) else {
            return;
        };
        let cx = &mut Cx {
            cx,
            pool: &mut self.pool,
        };
        c.late(cx, dir.index(), offset, data);
    }

    fn close(&mut self, cx: &mut Ctx<'_>, flow: &FlowInfo, reason: CloseReason) {
        if reason == CloseReason::Evicted {
            // Kept until the slot opens again: the same connection resumed, or another one
            // (then its bodies end there), or the run's end.
            if let Some(c) = self.conns.get_mut(&flow.slot) {
                c.parked = Some((flow.key, flow.conn_index));
            }
            return;
        }
        let Some(mut c) = self.conns.remove(&flow.slot) else {
            return;
        };
        let cx = &mut Cx {
            cx,
            pool: &mut self.pool,
        };
        for d in 0..2 {
            let done = match &c.sides[d].st {
                // A body delimited by the close ends with it (FIN, or RST after the bytes).
                St::Body(m) => {
                    matches!(m.framing, Framing::Close)
                        && matches!(reason, CloseReason::Fin | CloseReason::Rst)
                }
                _ => false,
            };
            if let St::Head = c.sides[d].st {
                if !c.sides[d].head.is_empty() {
                    cx.counters.http_unparsed_bytes += c.sides[d].head.len() as u64;
                }
            }
            c.kill(cx, d, done);
        }
    }

    fn finish(&mut self, cx: &mut Ctx<'_>) {
        let cx = &mut Cx {
            cx,
            pool: &mut self.pool,
        };
        // Connections still open (the engine closes them all first): their bodies end here.
        for (_, mut c) in std::mem::take(&mut self.conns) {
            c.kill(cx, 0, false);
            c.kill(cx, 1, false);
        }
        cx.pool.finish_all(cx.cx, finished);
        cx.cx.counters.http_write_errors += std::mem::take(&mut cx.pool.lost);
    }
}

#[cfg(test)]
mod tests {
    use super::HttpConfig;
    use crate::report::Objects;
    use crate::scan::{ScanConfig, ScanSet, Selection};
    use crate::template::Template;
    use tcpflow_core::{CloseReason, Dir};

    /// A head cut short by a gap, then a shorter complete message: its head ends where the
    /// search of the cut head had got to (found 2026-12-07 by the `http` fuzz target: the
    /// end was seen one event late, before the bytes that event added, and the subtraction
    /// overflowed; in a release build the body was lost).
    #[test]
    fn a_head_after_a_cut_one_is_searched_from_its_start() {
        let dir =
            std::env::temp_dir().join(format!("tcpflow-http-cut-head-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut set = ScanSet::new(ScanConfig {
            selection: Selection {
                http: true,
                ..Selection::default()
            },
            template: Template::parse(crate::template::DEFAULT).unwrap(),
            outdir: dir.clone(),
            display_dir: None,
            file_mode: 0o600,
            max_bytes: None,
            http: HttpConfig {
                max_body: 1 << 20,
                decode: true,
            },
        })
        .unwrap();
        let f = crate::template::tests::flow4();
        let mut report = Objects::default();
        set.open(&f, 0, &mut report);
        let d = Dir::BtoA;
        let mut off = 0u64;
        let data = |set: &mut ScanSet, report: &mut Objects, off: &mut u64, b: &[u8]| {
            set.data(&f, d, *off, b, report);
            *off += b.len() as u64;
        };
        // A head of 120 bytes with no end yet, then a gap: the direction resynchronises.
        let mut cut = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        cut.resize(120, b'a');
        data(&mut set, &mut report, &mut off, &cut);
        set.gap(&f, d, off, 10, &mut report);
        off += 10;
        // A whole response of 38 bytes (its head ends at 35), then the next one.
        data(
            &mut set,
            &mut report,
            &mut off,
            b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc",
        );
        data(
            &mut set,
            &mut report,
            &mut off,
            b"HTTP/1.1 204 No Content\n\n",
        );
        set.close(&f, CloseReason::Fin, &mut report);
        let body = dir.join("192.168.100.002.00080-010.000.000.001.40000-HTTPBODY-001");
        assert_eq!(std::fs::read(&body).unwrap(), b"abc");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
