//! `-J`: JSON lines on standard output, one object per event, for `jq` and log shippers.
//!
//! Schema (every line one object; `type` first):
//!
//! - `{"type":"data","session":S,"conn_index":C,"dir":"AtoB","src":"10.0.0.1","sport":40000,
//!   "dst":"10.0.0.2","dport":80,"vlans":[7],"offset":O,"len":L,"ts":"1700000000.000123",
//!   "late":false,"data":"BASE64"}`: `L` bytes of the direction's stream at offset `O`
//!   (reassembled, in stream order; `late` true for bytes of a hole reported earlier, which
//!   arrive after it); `ts` the capture time (seconds.microseconds, as a string: exact) of the
//!   connection's latest packet; `src`/`sport` the sender of these bytes;
//! - `{"type":"gap",...,"offset":O,"len":L,"reason":"lost"}`: `L` bytes missing at `O`
//!   (`reason`: the core's [`GapReason`], in lower case), no `data`;
//! - `{"type":"close",...,"reason":"fin","bytes":[A,B]}`: the connection ended (`reason`:
//!   the core's [`CloseReason`] in lower case; `bytes`: each direction's stream length),
//!   with `dir` `"AtoB"`.
//!
//! `session` numbers connections in the order they start in this run (`%S`); `conn_index` is
//! `%c` (0 for the first connection on a 4-tuple).

use std::io::{self, Write};

use tcpflow_core::{CloseReason, Dir, FlowInfo, GapReason, Sink};

use super::sessions::Sessions;
use super::{End, Output};
use crate::input::io_message;
use crate::report::HostStats;
use crate::template::push_addr_plain;

/// Output is written in pieces of about this size.
const BUFFER: usize = 64 * 1024;

/// The `-J` output.
#[derive(Debug)]
pub struct JsonSink {
    out: io::Stdout,
    buf: Vec<u8>,
    buf_data: u64,
    sessions: Sessions,
    host: HostStats,
    fatal: Option<String>,
    broken_pipe: bool,
}

impl Default for JsonSink {
    fn default() -> Self {
        JsonSink::new()
    }
}

impl JsonSink {
    pub fn new() -> JsonSink {
        JsonSink {
            out: io::stdout(),
            buf: Vec::with_capacity(BUFFER),
            buf_data: 0,
            sessions: Sessions::default(),
            host: HostStats::default(),
            fatal: None,
            broken_pipe: false,
        }
    }

    fn flush_out(&mut self) {
        let res = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        let data = std::mem::take(&mut self.buf_data);
        self.buf.clear();
        match res {
            Ok(()) => self.host.bytes_written += data,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.broken_pipe = true,
            Err(e) => {
                if self.fatal.is_none() {
                    self.fatal = Some(format!("writing to standard output: {}", io_message(&e)));
                }
            }
        }
    }

    fn stopped(&self) -> bool {
        self.fatal.is_some() || self.broken_pipe
    }

    /// `{"type":T,` and the fields every object has, without the closing brace.
    fn head(&mut self, kind: &str, flow: &FlowInfo, dir: Dir) {
        let session = self.sessions.number(flow.slot);
        let mut s = String::with_capacity(192);
        let (sa, sp) = flow.key.src(dir);
        let (da, dp) = flow.key.dst(dir);
        s.push_str("{\"type\":\"");
        s.push_str(kind);
        s.push_str("\",\"session\":");
        s.push_str(&session.to_string());
        s.push_str(",\"conn_index\":");
        s.push_str(&flow.conn_index.to_string());
        s.push_str(match dir {
            Dir::AtoB => ",\"dir\":\"AtoB\",\"src\":\"",
            Dir::BtoA => ",\"dir\":\"BtoA\",\"src\":\"",
        });
        push_addr_plain(&mut s, sa);
        s.push_str(&format!("\",\"sport\":{sp},\"dst\":\""));
        push_addr_plain(&mut s, da);
        s.push_str(&format!("\",\"dport\":{dp},\"vlans\":["));
        for (i, v) in flow.key.vlans.as_slice().iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&v.to_string());
        }
        let ts = flow.last_ts;
        s.push_str(&format!(
            "],\"ts\":\"{}.{:06}\"",
            ts.secs(),
            ts.subsec_nanos() / 1000
        ));
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn end_line(&mut self) {
        self.buf.extend_from_slice(b"}\n");
        if self.buf.len() >= BUFFER {
            self.flush_out();
        }
    }

    fn chunk(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8], late: bool) {
        self.head("data", flow, dir);
        let _ = write!(
            self.buf,
            ",\"offset\":{offset},\"len\":{},\"late\":{late},\"data\":\"",
            data.len()
        );
        base64(&mut self.buf, data);
        self.buf.push(b'"');
        self.buf_data += data.len() as u64;
        self.end_line();
    }
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(out: &mut Vec<u8>, data: &[u8]) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63]);
        out.push(T[(n >> 12) as usize & 63]);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63]
        } else {
            b'='
        });
    }
}

fn lower<T: std::fmt::Debug>(v: T) -> String {
    format!("{v:?}").to_ascii_lowercase()
}

impl Sink for JsonSink {
    fn open(&mut self, flow: &FlowInfo) {
        self.sessions.open(flow.slot);
    }

    fn data(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) {
        if !self.stopped() {
            self.chunk(flow, dir, offset, data, false);
        }
    }

    fn gap(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, len: u64, reason: GapReason) {
        if self.stopped() {
            return;
        }
        self.head("gap", flow, dir);
        let _ = write!(
            self.buf,
            ",\"offset\":{offset},\"len\":{len},\"reason\":\"{}\"",
            lower(reason)
        );
        self.end_line();
    }

    /// Bytes of a hole reported earlier: their own object, marked late.
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        if !self.stopped() {
            self.chunk(flow, dir, offset, data, true);
        }
        true
    }

    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        if !self.stopped() {
            self.head("close", flow, Dir::AtoB);
            let _ = write!(
                self.buf,
                ",\"reason\":\"{}\",\"bytes\":[{},{}]",
                lower(reason),
                flow.dirs[0].stream_len,
                flow.dirs[1].stream_len
            );
            self.end_line();
        }
        self.sessions.forget(flow.slot);
    }
}

impl Output for JsonSink {
    fn skipped(&mut self, _flow: &FlowInfo) {
        self.sessions.skip();
    }
    fn idle(&mut self, _now: u64) {
        self.flush_out();
    }
    fn should_stop(&self) -> bool {
        self.stopped()
    }
    fn flush(&mut self) {
        self.flush_out();
    }
    fn counters(&self, host: &mut HostStats) {
        host.add(&self.host);
    }
    fn finish(&mut self, end: &mut End) {
        self.flush_out();
        end.errors.extend(self.fatal.take());
        end.broken_pipe |= self.broken_pipe;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_rfc_4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut v = Vec::new();
            base64(&mut v, i.as_bytes());
            assert_eq!(String::from_utf8(v).unwrap(), o);
        }
    }
}
