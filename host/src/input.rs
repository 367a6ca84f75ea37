//! Opening capture inputs: files (pcap, pcapng through libpcap), standard input, and
//! compressed files (gzip, xz, bzip2, recognised by their first bytes) decompressed on the fly
//! by a thread writing into a pipe that libpcap reads.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use pcap::{Capture, Linktype, Offline, Precision};
use tcpflow_core::LinkType;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Bzip2,
}

impl Compression {
    /// Recognises a compressed stream by its first bytes.
    pub fn sniff(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if magic.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "plain",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// How far into its input a capture has been read (for the progress line).
#[derive(Debug)]
enum Position {
    /// A duplicate of libpcap's descriptor: they share the file offset.
    Fd(File),
    /// Compressed bytes consumed by the decompressing thread.
    Counter(Arc<AtomicU64>),
}

/// An open capture input.
pub struct Input {
    pub name: String,
    pub cap: Capture<Offline>,
    pub link: LinkType,
    pub compression: Compression,
    /// Input size in bytes when known (a regular file).
    pub total: Option<u64>,
    pos: Position,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("link", &self.link)
            .finish()
    }
}

impl Input {
    /// Bytes of the input consumed so far (compressed bytes for a compressed file).
    pub fn bytes_read(&mut self) -> u64 {
        match &mut self.pos {
            Position::Fd(f) => f.stream_position().unwrap_or(0),
            Position::Counter(c) => c.load(Ordering::Relaxed),
        }
    }

    /// Closes the capture; returns the decompressor's error, if it had one.
    pub fn close(self) -> Option<String> {
        let Input {
            cap,
            thread,
            name,
            compression,
            ..
        } = self;
        drop(cap); // closes the pipe's read end: a thread still writing stops
        match thread.map(|t| t.join()) {
            Some(Ok(Err(e))) => Some(format!(
                "{name}: {} data is corrupt: {e}",
                compression.name()
            )),
            Some(Err(_)) => Some(format!("{name}: the decompressing thread failed")),
            _ => None,
        }
    }
}

/// A pcap DLT as the core's link type, or an error naming it.
pub fn link_type(dlt: Linktype, name: &str) -> Result<LinkType, String> {
    let lt = LinkType(dlt.0 as u32);
    if dlt.0 >= 0 && lt.is_supported() {
        return Ok(lt);
    }
    let what = match dlt.get_name() {
        Ok(n) => format!("{} ({n})", dlt.0),
        Err(_) => dlt.0.to_string(),
    };
    Err(format!(
        "{name}: unsupported link type {what}; supported: Ethernet, Linux SLL/SLL2, raw IP, null/loopback, PPP, Cisco HDLC, NFLOG"
    ))
}

struct Counting<R> {
    inner: R,
    n: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf)?;
        self.n.fetch_add(r as u64, Ordering::Relaxed);
        Ok(r)
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two descriptors that we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are not owned elsewhere.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Feeds `src` (after `prefix`) through the decompressor into a pipe; returns the read end.
fn spawn_feeder(
    prefix: Vec<u8>,
    src: Box<dyn Read + Send>,
    kind: Compression,
    counter: Arc<AtomicU64>,
) -> io::Result<(OwnedFd, JoinHandle<Result<(), String>>)> {
    let (r, w) = pipe()?;
    let t = std::thread::Builder::new()
        .name("decompress".into())
        .spawn(move || {
            let mut out = io::BufWriter::with_capacity(256 * 1024, File::from(w));
            let input = Counting {
                inner: io::Cursor::new(prefix).chain(src),
                n: counter,
            };
            let res = match kind {
                Compression::None => io::copy(&mut { input }, &mut out),
                Compression::Gzip => {
                    io::copy(&mut flate2::read::MultiGzDecoder::new(input), &mut out)
                }
                Compression::Xz => io::copy(
                    &mut xz2::read::XzDecoder::new_multi_decoder(input),
                    &mut out,
                ),
                Compression::Bzip2 => {
                    io::copy(&mut bzip2::read::MultiBzDecoder::new(input), &mut out)
                }
            };
            let res = res.and_then(|_| out.flush());
            match res {
                Ok(()) => Ok(()),
                // libpcap stopped reading (an error, or the run was interrupted).
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        })?;
    Ok((r, t))
}

fn open_pcap_fd(fd: OwnedFd) -> Result<Capture<Offline>, pcap::Error> {
    // SAFETY: the descriptor is ours and handed over to libpcap, which closes it.
    unsafe { Capture::from_raw_fd_with_precision(fd.into_raw_fd(), Precision::Nano) }
}

fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Opens a capture input (`-` is standard input), with nanosecond timestamps.
pub fn open(name: &str) -> Result<Input, String> {
    let (file, regular) = if name == "-" {
        // SAFETY: duplicating standard input gives a descriptor we own.
        let fd = unsafe { libc::dup(0) };
        if fd < 0 {
            return Err(format!(
                "cannot read standard input: {}",
                io::Error::last_os_error()
            ));
        }
        // SAFETY: `fd` was just created by dup.
        (unsafe { File::from_raw_fd(fd) }, false)
    } else {
        let f = File::open(name).map_err(|e| format!("cannot open {name}: {}", io_message(&e)))?;
        let md = f
            .metadata()
            .map_err(|e| format!("cannot open {name}: {}", io_message(&e)))?;
        if md.is_dir() {
            return Err(format!(
                "cannot read {name}: it is a folder, not a capture file"
            ));
        }
        (f, md.is_file())
    };
    let shown = if name == "-" {
        "standard input".to_string()
    } else {
        name.to_string()
    };
    let total = if regular {
        file.metadata().ok().map(|m| m.len())
    } else {
        None
    };

    let mut magic = [0u8; 6];
    let (cap, pos, thread, compression) = if regular {
        let n = read_full_at(&file, &mut magic)
            .map_err(|e| format!("cannot read {shown}: {}", io_message(&e)))?;
        let kind = Compression::sniff(&magic[..n]);
        if kind == Compression::None {
            let dup = file
                .try_clone()
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            let cap = open_pcap_fd(OwnedFd::from(file)).map_err(|e| {
                format!(
                    "{shown}: not a pcap or pcapng capture ({})",
                    pcap_message(&e)
                )
            })?;
            (cap, Position::Fd(dup), None, kind)
        } else {
            let counter = Arc::new(AtomicU64::new(0));
            let (r, t) = spawn_feeder(Vec::new(), Box::new(file), kind, counter.clone())
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            match open_pcap_fd(r) {
                Ok(cap) => (cap, Position::Counter(counter), Some(t), kind),
                Err(e) => {
                    let detail = match t.join() {
                        Ok(Err(d)) => format!("{} data is corrupt: {d}", kind.name()),
                        _ => pcap_message(&e),
                    };
                    return Err(format!("{shown}: not a pcap or pcapng capture ({detail})"));
                }
            }
        }
    } else {
        // A pipe or terminal: read the first bytes, then feed them and the rest through.
        let mut f = file;
        let mut prefix = Vec::with_capacity(6);
        let mut n = 0;
        while n < magic.len() {
            match f.read(&mut magic[n..]) {
                Ok(0) => break,
                Ok(r) => n += r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("cannot read {shown}: {}", io_message(&e))),
            }
        }
        prefix.extend_from_slice(&magic[..n]);
        let kind = Compression::sniff(&prefix);
        let counter = Arc::new(AtomicU64::new(0));
        let (r, t) = spawn_feeder(prefix, Box::new(f), kind, counter.clone())
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        match open_pcap_fd(r) {
            Ok(cap) => (cap, Position::Counter(counter), Some(t), kind),
            Err(e) => {
                let _ = t.join();
                return Err(format!(
                    "{shown}: not a pcap or pcapng capture ({})",
                    pcap_message(&e)
                ));
            }
        }
    };
    let link = link_type(cap.get_datalink(), &shown)?;
    Ok(Input {
        name: shown,
        cap,
        link,
        compression,
        total,
        pos,
        thread,
    })
}

fn read_full_at(f: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(r) => n += r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An I/O error as a short phrase ("No such file or directory").
pub fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_compression() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0]),
            Compression::Xz
        );
        assert_eq!(Compression::sniff(b"BZh91A"), Compression::Bzip2);
        assert_eq!(
            Compression::sniff(&[0xd4, 0xc3, 0xb2, 0xa1]),
            Compression::None
        );
        assert_eq!(
            Compression::sniff(&[0x0a, 0x0d, 0x0d, 0x0a]),
            Compression::None
        );
    }

    #[test]
    fn link_types() {
        assert_eq!(link_type(Linktype(1), "x").unwrap(), LinkType::ETHERNET);
        assert_eq!(link_type(Linktype(276), "x").unwrap(), LinkType::LINUX_SLL2);
        let e = link_type(Linktype(127), "cap.pcap").unwrap_err();
        assert!(e.starts_with("cap.pcap: unsupported link type 127"), "{e}");
    }

    #[test]
    fn missing_file_is_named() {
        let e = open("/nonexistent/x.pcap").unwrap_err();
        assert_eq!(
            e,
            "cannot open /nonexistent/x.pcap: No such file or directory"
        );
    }
}
