//! The console output (`-c`, `-C`): each delivered chunk is printed as tcpflow 1.6 prints a
//! packet: `NAME: ` then the bytes (control and other non-ASCII bytes escaped as `\xHH`, or
//! as `.` with `-s`, unless binary output was asked for, or a hex dump), then a newline
//! unless `-0`. Chunks come reassembled, in stream order per direction; late bytes for a
//! reported gap come after a header that says where they belong.

use std::io::{self, Write};

use tcpflow_core::{CloseReason, Dir, FlowInfo, Sink};

use super::sessions::Sessions;
use super::{take_all, End, Finished, Output};
use crate::fxhash::{id_map, IdMap};
use crate::input::io_message;
use crate::report::HostStats;
use crate::template::{NameParams, Template};

/// Console output is written in pieces of about this size.
const CONSOLE_BUFFER: usize = 64 * 1024;

/// The console output.
#[derive(Debug)]
pub struct ConsoleSink {
    template: Template,
    opts: ConsoleOpts,
    out: io::Stdout,
    /// What is printed, until [`CONSOLE_BUFFER`] or a flush.
    buf: Vec<u8>,
    /// Stream bytes in `buf`: counted as written once they reached standard output.
    buf_data: u64,
    sessions: Sessions,
    /// Bytes cut by `-b`, by direction (slot * 2 + direction), only those with a cut.
    truncated: IdMap<u64>,
    finished: Vec<Finished>,
    host: HostStats,
    fatal: Option<String>,
    broken_pipe: bool,
}

impl ConsoleSink {
    pub fn new(template: Template, opts: ConsoleOpts) -> ConsoleSink {
        ConsoleSink {
            template,
            opts,
            out: io::stdout(),
            buf: Vec::with_capacity(CONSOLE_BUFFER),
            buf_data: 0,
            sessions: Sessions::default(),
            truncated: id_map(),
            finished: Vec::new(),
            host: HostStats::default(),
            fatal: None,
            broken_pipe: false,
        }
    }

    /// Writes what is buffered (live capture calls this when idle).
    pub fn flush_console(&mut self) {
        let res = self
            .out
            .write_all(&self.buf)
            .and_then(|()| self.out.flush());
        let data = std::mem::take(&mut self.buf_data);
        self.buf.clear();
        match res {
            Ok(()) => self.host.bytes_written += data,
            Err(e) => self.console_error(e),
        }
    }

    fn console_error(&mut self, e: io::Error) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.broken_pipe = true;
        } else if self.fatal.is_none() {
            self.fatal = Some(format!("writing to standard output: {}", io_message(&e)));
        }
    }

    fn print(&mut self, flow: &FlowInfo, dir: Dir, data: &[u8]) {
        let session = self.sessions.number(flow.slot);
        let name = self.opts.header.then(|| {
            self.template.expand(
                flow,
                dir,
                NameParams {
                    conn_index: flow.conn_index,
                    session,
                },
            )
        });
        if self.opts.color {
            self.buf.extend_from_slice(match dir {
                Dir::AtoB => b"\x1b[34m",
                Dir::BtoA => b"\x1b[31m",
            });
        }
        // Writing to a Vec cannot fail.
        let _ = print_chunk(&mut self.buf, &self.opts, name.as_deref(), data);
        if self.opts.color {
            self.buf.extend_from_slice(b"\x1b[0m");
        }
        self.buf_data += data.len() as u64;
        if self.buf.len() >= CONSOLE_BUFFER {
            self.flush_console();
        }
    }

    fn stopped(&self) -> bool {
        self.fatal.is_some() || self.broken_pipe
    }
}

impl Sink for ConsoleSink {
    fn open(&mut self, flow: &FlowInfo) {
        self.sessions.open(flow.slot);
    }

    fn data(&mut self, flow: &FlowInfo, dir: Dir, _offset: u64, data: &[u8]) {
        if !self.stopped() {
            self.print(flow, dir, data);
        }
    }

    /// Already printed past them: shown after a header that says where they belong.
    fn late(&mut self, flow: &FlowInfo, dir: Dir, offset: u64, data: &[u8]) -> bool {
        if self.stopped() {
            return true;
        }
        let end = offset + data.len() as u64;
        // In the buffer, after the chunks printed before (writing to a Vec cannot fail).
        let _ = write!(self.buf, "\n[late bytes {offset}..{end}]\n");
        self.print(flow, dir, data);
        true
    }

    /// Each direction that carried packets gets its (file-less) record at once.
    fn close(&mut self, flow: &FlowInfo, reason: CloseReason) {
        let session = self.sessions.number(flow.slot);
        for dir in Dir::BOTH {
            let k = u64::from(flow.slot) * 2 + dir.index() as u64;
            let truncated = self.truncated.remove(&k).unwrap_or(0);
            if flow.dirs[dir.index()].packets == 0 {
                continue;
            }
            self.finished.push(Finished {
                flow: *flow,
                dir,
                reason,
                session,
                file: None,
                truncated_bytes: truncated,
                write_lost_bytes: 0,
                report_extra: None,
                report_objects: Default::default(),
            });
        }
        self.sessions.forget(flow.slot);
    }
}

impl Output for ConsoleSink {
    fn skipped(&mut self, _flow: &FlowInfo) {
        self.sessions.skip();
    }
    fn cut(&mut self, flow: &FlowInfo, dir: Dir, bytes: u64) {
        let k = u64::from(flow.slot) * 2 + dir.index() as u64;
        *self.truncated.entry(k).or_insert(0) += bytes;
    }
    fn take_finished(&mut self, out: &mut Vec<Finished>) {
        take_all(&mut self.finished, out);
    }
    fn idle(&mut self, _now: u64) {
        self.flush_console();
    }
    #[inline]
    fn should_stop(&self) -> bool {
        self.stopped()
    }
    fn flush(&mut self) {
        self.flush_console();
    }
    fn counters(&self, host: &mut HostStats) {
        host.add(&self.host);
    }
    fn finish(&mut self, end: &mut End) {
        self.flush_console();
        end.errors.extend(self.fatal.take());
        end.broken_pipe |= self.broken_pipe;
    }
}

/// How the console shows bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleFormat {
    /// Printable ASCII, `\n` and `\t` as they are; a backslash as `\\`, a carriage return as
    /// `\r`, any other byte as `\xHH`: a captured stream cannot move the cursor or recolour a
    /// terminal (tcpflow 1.6 passed `\r` through, so a stream could overwrite a shown line),
    /// and what is shown reads back to the bytes.
    Printable,
    /// `-s`: printable ASCII and `\n` as they are, anything else as `.` (tcpflow 1.6's
    /// format, without its `\r` passed through).
    Dots,
    /// The bytes as they are (`-B`).
    Binary,
    /// Offset, hex and ASCII columns, 32 bytes a line (`-D`).
    Hex,
}

/// Console output settings.
#[derive(Clone, Copy, Debug)]
pub struct ConsoleOpts {
    /// Print `NAME: ` before each chunk (`-c`; `-C` leaves it out).
    pub header: bool,
    pub format: ConsoleFormat,
    /// Newline after each chunk (`-0` turns it off).
    pub newline: bool,
    /// `-g` on a terminal: each chunk in its direction's colour.
    pub color: bool,
}

/// Prints one chunk as tcpflow 1.6's `print_packet` does.
pub fn print_chunk(
    out: &mut impl Write,
    o: &ConsoleOpts,
    name: Option<&str>,
    data: &[u8],
) -> io::Result<()> {
    if let Some(n) = name {
        write!(out, "{n}: ")?;
        if o.format == ConsoleFormat::Hex {
            out.write_all(b"\n")?;
        }
    }
    match o.format {
        ConsoleFormat::Binary => out.write_all(data)?,
        ConsoleFormat::Printable => {
            let mut line = Vec::with_capacity(data.len() + data.len() / 8);
            for &b in data {
                match b {
                    b'\\' => line.extend_from_slice(b"\\\\"),
                    b'\r' => line.extend_from_slice(b"\\r"),
                    0x20..=0x7e | b'\n' | b'\t' => line.push(b),
                    _ => {
                        const HEX: &[u8; 16] = b"0123456789abcdef";
                        line.extend_from_slice(&[
                            b'\\',
                            b'x',
                            HEX[usize::from(b >> 4)],
                            HEX[usize::from(b & 15)],
                        ]);
                    }
                }
            }
            out.write_all(&line)?;
        }
        ConsoleFormat::Dots => {
            let line: Vec<u8> = data
                .iter()
                .map(|&b| {
                    if (0x20..0x7f).contains(&b) || b == b'\n' {
                        b
                    } else {
                        b'.'
                    }
                })
                .collect();
            out.write_all(&line)?;
        }
        ConsoleFormat::Hex => {
            let mut max_spaces = 0;
            for (i, chunk) in data.chunks(32).enumerate() {
                let mut line = format!("{:04x}: ", i * 32);
                for (j, b) in chunk.iter().enumerate() {
                    line.push_str(&format!("{b:02x}"));
                    if j % 2 == 1 {
                        line.push(' ');
                    }
                }
                max_spaces = max_spaces.max(line.len());
                while line.len() < max_spaces {
                    line.push(' ');
                }
                line.push(' ');
                line.extend(chunk.iter().map(|&b| {
                    if (0x20..0x7f).contains(&b) {
                        b as char
                    } else {
                        '.'
                    }
                }));
                line.push('\n');
                out.write_all(line.as_bytes())?;
            }
        }
    }
    if o.newline {
        out.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::flow4;
    use crate::template::DEFAULT;

    /// Connections take numbers in the order they start, skipped ones too; a direction that
    /// carried packets is finished at its close, without a file, with what `-b` cut.
    #[test]
    fn sessions_and_finished_directions() {
        let o = ConsoleOpts {
            header: true,
            format: ConsoleFormat::Printable,
            newline: true,
            color: false,
        };
        let mut c = ConsoleSink::new(Template::parse(DEFAULT).unwrap(), o);
        let mut a = flow4();
        let mut b = flow4();
        b.slot = 1;
        c.open(&a);
        c.skipped(&b);
        b.slot = 2;
        c.open(&b);
        c.data(&b, Dir::AtoB, 0, b"hi");
        c.cut(&b, Dir::AtoB, 5);
        assert!(
            c.buf.ends_with(b": hi\n"),
            "{:?}",
            String::from_utf8_lossy(&c.buf)
        );
        b.dirs[0].packets = 2;
        c.close(&b, CloseReason::Fin);
        a.dirs[1].packets = 1;
        c.close(&a, CloseReason::Rst);
        let mut done = Vec::new();
        c.take_finished(&mut done);
        let got: Vec<_> = done
            .iter()
            .map(|f| (f.session, f.dir, f.truncated_bytes, f.file.is_none()))
            .collect();
        assert_eq!(got, vec![(2, Dir::AtoB, 5, true), (0, Dir::BtoA, 0, true)]);
        // Not printed: the test's standard output stays clean.
        c.buf.clear();
    }

    /// `-g`: each direction's chunks in its colour, reset after each.
    #[test]
    fn colours_by_direction() {
        let o = ConsoleOpts {
            header: false,
            format: ConsoleFormat::Printable,
            newline: false,
            color: true,
        };
        let mut c = ConsoleSink::new(Template::parse(DEFAULT).unwrap(), o);
        let f = flow4();
        c.open(&f);
        c.data(&f, Dir::AtoB, 0, b"ask");
        c.data(&f, Dir::BtoA, 0, b"tell\x1b");
        assert_eq!(c.buf, b"\x1b[34mask\x1b[0m\x1b[31mtell\\x1b\x1b[0m");
        c.buf.clear();
    }

    #[test]
    fn console_formats() {
        let o = ConsoleOpts {
            header: true,
            format: ConsoleFormat::Printable,
            newline: true,
            color: false,
        };
        let mut v = Vec::new();
        print_chunk(&mut v, &o, Some("A-B"), b"\x00!\nok\x7f").unwrap();
        assert_eq!(v, b"A-B: \\x00!\nok\\x7f\n");
        // A crafted stream: a carriage return that would overwrite the line, an escape
        // sequence that would clear the screen, a C1 CSI in UTF-8, a backslash that would
        // make `\x1b` ambiguous. Only printable ASCII, tabs and newlines reach the terminal.
        let crafted = b"rm -rf ~\rls -l   \x1b[2J\tok\\x1b\xc2\x9b\x80\n";
        let mut v = Vec::new();
        print_chunk(&mut v, &o, None, crafted).unwrap();
        assert_eq!(
            String::from_utf8(v.clone()).unwrap(),
            "rm -rf ~\\rls -l   \\x1b[2J\tok\\\\x1b\\xc2\\x9b\\x80\n\n"
        );
        assert!(v
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\t'));
        let dots = ConsoleOpts {
            format: ConsoleFormat::Dots,
            ..o
        };
        let mut v = Vec::new();
        print_chunk(&mut v, &dots, None, crafted).unwrap();
        assert_eq!(v, b"rm -rf ~.ls -l   .[2J.ok\\x1b...\n\n");
        let o = ConsoleOpts {
            header: false,
            format: ConsoleFormat::Binary,
            newline: false,
            color: false,
        };
        let mut v = Vec::new();
        print_chunk(&mut v, &o, None, b"\x00\x01").unwrap();
        assert_eq!(v, b"\x00\x01");
        let o = ConsoleOpts {
            header: true,
            format: ConsoleFormat::Hex,
            newline: true,
            color: false,
        };
        let mut v = Vec::new();
        print_chunk(&mut v, &o, Some("N"), b"ABC").unwrap();
        assert_eq!(String::from_utf8(v).unwrap(), "N: \n0000: 4142 43 ABC\n\n");
    }
}
