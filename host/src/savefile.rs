//! The `-w` file: packets the engine did not process, written as a classic pcap with
//! nanosecond timestamps (magic `a1b23c4d`, this machine's byte order) and a snap length of
//! 262,144 bytes, so that any record read can be written whole.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use tcpflow_core::capfile::MAX_CAPLEN;
use tcpflow_core::{LinkType, Timestamp};

use crate::input::io_message;

/// A pcap file being written.
#[derive(Debug)]
pub struct Savefile {
    out: BufWriter<File>,
    link: LinkType,
    /// The first write error (later writes are skipped; reported by [`Savefile::flush`]).
    error: Option<io::Error>,
}

/// A libpcap DLT value as the LINKTYPE written in files (they differ for raw IP, as
/// libpcap's `dlt_to_linktype`).
fn linktype_in_file(link: LinkType) -> u32 {
    match link.0 {
        12 | 14 => 101,
        l => l,
    }
}

impl Savefile {
    /// Creates `path` (mode `mode` before the umask) and writes the file header.
    pub fn create(path: &Path, link: LinkType, mode: u32) -> Result<Savefile, String> {
        // Not through a link or hard link planted where it goes (see safefs).
        let f = crate::safefs::open_file(path, 0, true, mode)
            .map_err(|e| format!("cannot create {}: {}", path.display(), io_message(&e)))?;
        let mut out = BufWriter::with_capacity(64 * 1024, f);
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_3c4du32.to_ne_bytes());
        h.extend_from_slice(&2u16.to_ne_bytes());
        h.extend_from_slice(&4u16.to_ne_bytes());
        h.extend_from_slice(&0u32.to_ne_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        h.extend_from_slice(&MAX_CAPLEN.to_ne_bytes());
        h.extend_from_slice(&linktype_in_file(link).to_ne_bytes());
        out.write_all(&h)
            .map_err(|e| format!("cannot write {}: {}", path.display(), io_message(&e)))?;
        Ok(Savefile {
            out,
            link,
            error: None,
        })
    }

    /// The link type of the file's packets.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Appends a packet (at most [`MAX_CAPLEN`] bytes of it).
    pub fn write(&mut self, ts: Timestamp, origlen: u32, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let data = &data[..data.len().min(MAX_CAPLEN as usize)];
        let mut h = [0u8; 16];
        // Seconds past 2106 do not fit the format: they wrap, as in any pcap writer.
        h[..4].copy_from_slice(&(ts.secs() as u32).to_ne_bytes());
        h[4..8].copy_from_slice(&ts.subsec_nanos().to_ne_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        h[12..].copy_from_slice(&origlen.to_ne_bytes());
        if let Err(e) = self
            .out
            .write_all(&h)
            .and_then(|()| self.out.write_all(data))
        {
            self.error = Some(e);
        }
    }

    /// Writes out what is buffered; the first error of any write, if there was one.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcpflow_core::capfile::{CapFile, Opened, Step};

    #[test]
    fn written_packets_read_back() {
        let d = std::env::temp_dir().join(format!("tcpflow-savefile-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        let p = d.join("w.pcap");
        let mut s = Savefile::create(&p, LinkType(12), 0o600).unwrap();
        s.write(Timestamp(1_700_000_000_123_456_789), 1500, &[1, 2, 3]);
        s.write(Timestamp(5), 4, &[4, 5, 6, 7]);
        s.flush().unwrap();
        let b = std::fs::read(&p).unwrap();
        let Ok(Opened::Ready { mut file, consumed }) = CapFile::open(&b, true) else {
            panic!("not a capture");
        };
        assert_eq!(file.link(), Some(LinkType::RAW));
        let mut rest = &b[consumed..];
        let mut got = Vec::new();
        while let Ok(Step::Record { consumed, record }) = file.next(rest, true) {
            got.push((record.ts.0, record.origlen, record.data.to_vec()));
            assert!(!record.exceeds_snaplen());
            rest = &rest[consumed..];
        }
        assert_eq!(
            got,
            [
                (1_700_000_000_123_456_789, 1500, vec![1, 2, 3]),
                (5, 4, vec![4, 5, 6, 7])
            ]
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
