//! Capture inputs: files (classic pcap and pcapng, read by [`tcpflow_core::capfile`]),
//! standard input, and compressed files (gzip, xz, bzip2, recognised by their first bytes)
//! decompressed on the fly by a thread writing into a pipe.
//!
//! The input is read in large blocks (1 MiB) into one buffer, and each packet is handed out
//! as a slice of it: no copy and no allocation per packet. The buffer never grows: the
//! largest record or block a capture may hold ([`capfile::MAX_HELD`]) fits in it.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

use pcap::Linktype;
use tcpflow_core::capfile::{self, CapFile, Format, Opened, Record, Step};
use tcpflow_core::LinkType;

use crate::counter::Counter64;

/// Bytes read from the input at a time (and the buffer's size).
pub const READ_SIZE: usize = 1 << 20;
/// Bytes read at a time until the header is read (opening a file only to check it reads
/// little).
const HEADER_READ_SIZE: usize = 64 * 1024;
const _: () = assert!(capfile::MAX_HELD <= READ_SIZE);
/// Read-ahead of a plain capture file: a thread reads it in chunks of this size, each after
/// [`AHEAD_ROOM`] bytes of room where the end of the previous chunk (part of a record) is
/// put, so that reading (a copy out of the page cache) overlaps the work on the packets.
/// 256 KiB rather than 1 MiB: 3 MB less peak RSS, and bulk within 2% (`bench --tmpfs`).
const AHEAD_CHUNK: usize = 256 << 10;
const AHEAD_ROOM: usize = 128 * 1024;
/// Buffers in use at most: the one being read from, one queued, one being filled, one spare.
const AHEAD_BUFFERS: usize = 4;
/// Files shorter than this are read directly: the thread would cost more than it saves (so
/// are all with one processor: [`crate::cores`]).
const AHEAD_MIN_FILE: u64 = 4 << 20;
/// Pipe size asked for between the decompressing thread and the reader.
const PIPE_SIZE: libc::c_int = 1 << 20;
/// How long a read from a pipe or FIFO waits before it looks at the stop flag again.
const POLL_MS: libc::c_int = 250;
/// The xz decoder's memory limit without `--memory`: every xz preset needs far less
/// (`-9e`: 65 MiB), a crafted header may ask for 4 GiB.
pub const XZ_MEMLIMIT_DEFAULT: u64 = 1 << 30;
/// The least limit `--memory` gives the xz decoder: xz's default preset (`-6`) needs 9 MiB.
pub const XZ_MEMLIMIT_MIN: u64 = 16 << 20;

/// How inputs are opened.
#[derive(Clone, Debug)]
pub struct Opts {
    /// Most memory the xz decoder may take (its dictionary is set by the file).
    pub xz_memlimit: u64,
    /// Set by SIGINT/SIGTERM: a read from a pipe or a FIFO waiting for data stops.
    pub stop: Arc<AtomicBool>,
    /// Read plain capture files ahead on a thread (about 3 MiB more of buffers; off when a
    /// memory budget is given).
    pub read_ahead: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            xz_memlimit: XZ_MEMLIMIT_DEFAULT,
            stop: Arc::new(AtomicBool::new(false)),
            read_ahead: true,
        }
    }
}

/// What a read returns once the stop flag is set.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Stopped {}

fn stopped() -> io::Error {
    io::Error::other(Stopped)
}

fn is_stopped(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<Stopped>())
}

/// A pipe, FIFO or terminal read so that the stop flag is seen while no data comes: each
/// read waits in poll() for a bounded time (a signal does not interrupt a blocked read:
/// the handlers restart it).
struct Waiting<R> {
    inner: R,
    fd: libc::c_int,
    stop: Arc<AtomicBool>,
}

impl<R: Read> Read for Waiting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(stopped());
            }
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
            if rc > 0 {
                match self.inner.read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => return r,
                }
            }
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// How the decompressing thread ended badly.
#[derive(Debug)]
enum FeedError {
    /// The compressed data is corrupt (or could not be read).
    Corrupt(String),
    /// Refused: the xz data needs more memory than allowed.
    Memory(String),
    /// The stop flag was set while it waited for input.
    Stopped,
}

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

    /// Whether this build can decompress it (the decompressors are cargo features).
    fn built_in(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Xz => cfg!(feature = "xz"),
            Compression::Bzip2 => cfg!(feature = "bzip2"),
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

/// The bytes of an input: a buffer over a file, standard input or the decompressor's pipe.
struct Reader {
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes read from `src`.
    read: u64,
    /// Reads fill the buffer up to here.
    limit: usize,
    /// The thread reading ahead, once started.
    ahead: Option<Ahead>,
}

/// The read-ahead thread's ends: filled chunks (bytes after [`AHEAD_ROOM`]) come, emptied
/// buffers go back. Dropped (the input closed early), the thread ends at its next chunk.
struct Ahead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    back: SyncSender<Vec<u8>>,
}

fn read_ahead(mut src: File, chunks: SyncSender<io::Result<Vec<u8>>>, back: Receiver<Vec<u8>>) {
    // Buffers made so far: at most AHEAD_BUFFERS, then the thread waits for one to come
    // back (zeroing a new one per chunk would cost more than the reading).
    let mut made = 0;
    loop {
        let mut c = match back.try_recv() {
            Ok(c) => c,
            Err(TryRecvError::Empty) if made < AHEAD_BUFFERS => {
                made += 1;
                // Zeroed by the allocator (fresh pages), not written here.
                vec![0u8; AHEAD_ROOM + AHEAD_CHUNK]
            }
            Err(TryRecvError::Empty) => match back.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
            Err(TryRecvError::Disconnected) => return,
        };
        c.resize(AHEAD_ROOM + AHEAD_CHUNK, 0);
        let mut n = AHEAD_ROOM;
        while n < c.len() {
            match src.read(&mut c[n..]) {
                Ok(0) => break,
                Ok(r) => n += r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = chunks.send(Err(e));
                    return;
                }
            }
        }
        let end = n < c.len();
        c.truncate(n);
        if n > AHEAD_ROOM && chunks.send(Ok(c)).is_err() {
            return;
        }
        if end {
            return;
        }
    }
}

impl Reader {
    fn new(src: Box<dyn Read + Send>, prefix: &[u8]) -> Reader {
        let mut buf = vec![0u8; READ_SIZE.max(prefix.len())];
        buf[..prefix.len()].copy_from_slice(prefix);
        Reader {
            src,
            buf,
            start: 0,
            end: prefix.len(),
            eof: false,
            read: 0,
            limit: HEADER_READ_SIZE.max(prefix.len()),
            ahead: None,
        }
    }

    /// From here on a thread reads the source ahead through `dup` (the same open file, so
    /// at the same offset; a plain file, whose reads never wait). Without a thread (limits,
    /// qemu-user) the source is read directly, as before.
    fn start_ahead(&mut self, dup: File) {
        if self.eof {
            return;
        }
        let (tx, chunks) = sync_channel(1);
        let (back, rx) = sync_channel(2);
        if std::thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || read_ahead(dup, tx, rx))
            .is_ok()
        {
            self.ahead = Some(Ahead { chunks, back });
        }
    }

    /// [`Reader::fill`] from the read-ahead thread: the unconsumed bytes go into the room
    /// before the next chunk, which becomes the buffer.
    fn fill_ahead(&mut self, at_least: usize) -> io::Result<()> {
        while self.end - self.start < at_least && !self.eof {
            let Some(a) = &self.ahead else { break };
            match a.chunks.recv() {
                Ok(Ok(mut c)) => {
                    let left = self.end - self.start;
                    let got = c.len() - AHEAD_ROOM;
                    if left <= AHEAD_ROOM {
                        c[AHEAD_ROOM - left..AHEAD_ROOM]
                            .copy_from_slice(&self.buf[self.start..self.end]);
                        let old = std::mem::replace(&mut self.buf, c);
                        self.start = AHEAD_ROOM - left;
                        self.end = self.buf.len();
                        let _ = a.back.try_send(old);
                    } else {
                        // A record longer than the room (capfile allows up to MAX_HELD):
                        // joined by copying.
                        self.buf.copy_within(self.start..self.end, 0);
                        self.buf.truncate(left);
                        self.buf.extend_from_slice(&c[AHEAD_ROOM..]);
                        self.start = 0;
                        self.end = self.buf.len();
                        let _ = a.back.try_send(c);
                    }
                    self.read += got as u64;
                }
                Ok(Err(e)) => {
                    self.eof = true;
                    return Err(e);
                }
                Err(_) => self.eof = true,
            }
        }
        Ok(())
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads until at least `at_least` unconsumed bytes are held, or the end of the input.
    /// The unconsumed bytes move to the front of the buffer first (a part of one record),
    /// so that each read fills what is left of it.
    fn fill(&mut self, at_least: usize) -> io::Result<()> {
        if cfg!(feature = "read-ahead") && self.ahead.is_some() {
            return self.fill_ahead(at_least);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if at_least > self.buf.len() {
            // Not with the limits of capfile (MAX_HELD fits), but never read out of bounds.
            self.buf.resize(at_least, 0);
        }
        let limit = self.limit.max(at_least).min(self.buf.len());
        while self.end < at_least && !self.eof {
            match self.src.read(&mut self.buf[self.end..limit]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.read += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// An open capture input.
pub struct Input {
    pub name: String,
    /// The file's link type (pcapng: its first interface's), when it has one.
    pub link: Option<LinkType>,
    pub format: Format,
    pub compression: Compression,
    /// Input size in bytes when known (a regular file).
    pub total: Option<u64>,
    reader: Reader,
    file: Box<CapFile>,
    /// Compressed bytes consumed by the decompressing thread.
    counter: Option<Arc<Counter64>>,
    thread: Option<JoinHandle<Result<(), FeedError>>>,
    /// An error ended the input: nothing more is read.
    done: bool,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("name", &self.name)
            .field("link", &self.link)
            .field("format", &self.format)
            .finish()
    }
}

impl Input {
    /// Bytes of the input consumed so far (compressed bytes for a compressed file).
    pub fn bytes_read(&mut self) -> u64 {
        match &self.counter {
            Some(c) => c.get(),
            None => self.reader.read,
        }
    }

    /// The next packet; `Ok(None)` at the end of the input; an error (what is wrong with
    /// the record or block, or a read error) ends the input.
    // In line where a copy of the record reader is worth its size: its record, returned
    // through memory, was stored in pieces and copied out whole, a stall per packet (the
    // field builds, held to a size budget, keep it out of line: see `inline-outputs`).
    #[cfg_attr(feature = "inline-outputs", inline(always))]
    #[cfg_attr(not(feature = "inline-outputs"), inline)]
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, String> {
        if self.done {
            return Ok(None);
        }
        let (record, at) = loop {
            let buf = self.reader.bytes();
            match self.file.next(buf, self.reader.eof) {
                Ok(Step::Record { consumed, record }) => {
                    // Where the packet's bytes are in the buffer (they are a part of it).
                    let at =
                        self.reader.start + (record.data.as_ptr() as usize - buf.as_ptr() as usize);
                    let r = Record {
                        data: &[],
                        ..record
                    };
                    self.reader.start += consumed;
                    break (r, at);
                }
                Ok(Step::Skip { consumed }) => self.reader.start += consumed,
                Ok(Step::NeedMore { at_least }) => {
                    if let Err(e) = self.reader.fill(at_least) {
                        self.done = true;
                        return Err(format!("read error: {}", io_message(&e)));
                    }
                }
                Ok(Step::End) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => {
                    self.done = true;
                    return Err(e.to_string());
                }
            }
        };
        let data = &self.reader.buf[at..at + record.caplen as usize];
        Ok(Some(Record { data, ..record }))
    }

    /// Closes the input; returns the decompressor's error, if it had one.
    pub fn close(self) -> Option<String> {
        let Input {
            reader,
            thread,
            name,
            compression,
            ..
        } = self;
        drop(reader); // closes the pipe's read end: a thread still writing stops
        match thread.map(|t| t.join()) {
            Some(Ok(Err(FeedError::Corrupt(e)))) => Some(format!(
                "{name}: {} data is corrupt: {e}",
                compression.name()
            )),
            Some(Ok(Err(FeedError::Memory(e)))) => Some(format!("{name}: {e}")),
            Some(Err(_)) => Some(format!("{name}: the decompressing thread failed")),
            _ => None,
        }
    }
}

/// A pcap DLT (from libpcap: a live capture) as the core's link type, or an error naming it.
pub fn link_type(dlt: Linktype, name: &str) -> Result<LinkType, String> {
    let lt = LinkType(dlt.0 as u32);
    if dlt.0 >= 0 && lt.is_supported() {
        return Ok(lt);
    }
    Err(unsupported(i64::from(dlt.0), dlt, name))
}

/// A LINKTYPE read from a capture file, checked: it is returned when the core decodes it.
pub fn file_link_type(link: LinkType, name: &str) -> Result<LinkType, String> {
    if link.is_supported() {
        return Ok(link);
    }
    Err(unsupported(
        i64::from(link.0),
        Linktype(crate::filter::dlt(link)),
        name,
    ))
}

/// The message for an unsupported link type `number` (libpcap names it by its DLT).
fn unsupported(number: i64, dlt: Linktype, name: &str) -> String {
    let what = match dlt.get_name() {
        Ok(n) => format!("{number} ({n})"),
        Err(_) => number.to_string(),
    };
    // The core's table, so a new link type is named here without a change.
    let supported: Vec<String> = tcpflow_core::decode::LINK_TYPES
        .iter()
        .map(|r| format!("{} ({})", r.name, r.link.0))
        .collect();
    format!(
        "{name}: unsupported link type {what}; supported: {}",
        supported.join(", ")
    )
}

struct Counting<R> {
    inner: R,
    n: Arc<Counter64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.inner.read(buf)?;
        self.n.add(r as u64);
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
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A larger pipe: fewer wake-ups and larger reads. Refused above the system's limit
    // (/proc/sys/fs/pipe-max-size) for an unprivileged user: the default size then.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE);
    }
    Ok((r, w))
}

/// Feeds `src` through the decompressor into a pipe; returns the read end.
fn spawn_feeder(
    src: Box<dyn Read + Send>,
    kind: Compression,
    counter: Arc<Counter64>,
    xz_memlimit: u64,
) -> io::Result<(OwnedFd, JoinHandle<Result<(), FeedError>>)> {
    let (r, w) = pipe()?;
    // Made here, so that an impossible limit is an error of the open, not of the thread.
    #[cfg(feature = "xz")]
    let xz = match kind {
        Compression::Xz => Some(
            xz2::stream::Stream::new_stream_decoder(xz_memlimit, xz2::stream::CONCATENATED)
                .map_err(io::Error::other)?,
        ),
        _ => None,
    };
    #[cfg(not(feature = "xz"))]
    let xz: Option<()> = {
        let _ = xz_memlimit;
        None
    };
    let t = std::thread::Builder::new()
        .name("decompress".into())
        .spawn(move || {
            let mut out = File::from(w);
            let input = Counting {
                inner: src,
                n: counter,
            };
            let res = match (kind, xz) {
                #[cfg(feature = "gzip")]
                (Compression::Gzip, _) => {
                    copy_out(flate2::read::MultiGzDecoder::new(input), &mut out)
                }
                #[cfg(feature = "xz")]
                (Compression::Xz, Some(stream)) => {
                    copy_out(xz2::read::XzDecoder::new_stream(input, stream), &mut out)
                }
                #[cfg(feature = "bzip2")]
                (Compression::Bzip2, _) => {
                    copy_out(bzip2::read::MultiBzDecoder::new(input), &mut out)
                }
                (Compression::None, _) => copy_out(input, &mut out),
                // Refused by `open` before a feeder is started.
                #[allow(unreachable_patterns)]
                _ => Err(io::Error::other("decompressor not built in")),
            };
            match res {
                Ok(()) => Ok(()),
                // The reader stopped reading (an error, or the run was interrupted).
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                Err(e) if is_memlimit(&e) => Err(FeedError::Memory(format!(
                    "xz data needs more than {} MiB of memory to decompress (the limit: --memory, at least 16 MiB; 1 GiB without --memory); decompress it first (xz -dc) or give a larger --memory",
                    xz_memlimit >> 20
                ))),
                Err(e) if is_stopped(&e) => Err(FeedError::Stopped),
                Err(e) => Err(FeedError::Corrupt(e.to_string())),
            }
        })?;
    Ok((r, t))
}

/// Copies `r` into the pipe, each read's bytes written at once: what is decompressed is
/// delivered even while the input (a pipe, a FIFO) waits for more, and before a signal
/// stops the wait.
fn copy_out(mut r: impl Read, out: &mut File) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => io::Write::write_all(out, &buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether the xz decoder refused for its memory limit.
#[cfg(feature = "xz")]
fn is_memlimit(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<xz2::stream::Error>())
        .is_some_and(|x| matches!(x, xz2::stream::Error::MemLimit))
}

#[cfg(not(feature = "xz"))]
fn is_memlimit(_: &io::Error) -> bool {
    false
}

/// Opens a capture input (`-` is standard input): its header is read (pcapng: up to its
/// first interface description) and its link type checked.
/// A pipe or FIFO is read so that `opts.stop` ends a wait for data (an `Err` then).
pub fn open(name: &str, opts: &Opts) -> Result<Input, String> {
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
        // O_NONBLOCK: opening a FIFO does not wait for a writer (the reads wait, in poll,
        // where a signal is seen); it is cleared right after.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(name)
            .map_err(|e| format!("cannot open {name}: {}", io_message(&e)))?;
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
            if fl >= 0 {
                libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
            }
        }
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

    // The first bytes say whether the input is compressed.
    let mut magic = [0u8; 6];
    let (n, prefix_read) = if regular {
        (
            read_full_at(&file, &mut magic)
                .map_err(|e| format!("cannot read {shown}: {}", io_message(&e)))?,
            false,
        )
    } else {
        // A pipe or terminal: what is read here is read.
        let mut f = waiting(&file, opts)?;
        let mut n = 0;
        while n < magic.len() {
            match f.read(&mut magic[n..]) {
                Ok(0) => break,
                Ok(r) => n += r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("cannot read {shown}: {}", io_message(&e))),
            }
        }
        (n, true)
    };
    // The same open file for a read-ahead thread, if there is one.
    let dup = if cfg!(feature = "read-ahead")
        && regular
        && opts.read_ahead
        && total.is_some_and(|t| t >= AHEAD_MIN_FILE)
        && crate::cores::spare_core()
    {
        file.try_clone().ok()
    } else {
        None
    };
    // Reads that may wait (not a regular file) see the stop flag.
    let src: Box<dyn Read + Send> = if regular {
        Box::new(file)
    } else {
        Box::new(waiting(&file, opts)?)
    };
    let compression = Compression::sniff(&magic[..n]);
    if !compression.built_in() {
        return Err(format!(
            "{shown}: {} compressed, and this build has no {} decompressor (cargo feature `{}`): decompress it first",
            compression.name(),
            compression.name(),
            compression.name()
        ));
    }
    let (reader, counter, thread) = if compression == Compression::None {
        let prefix: &[u8] = if prefix_read { &magic[..n] } else { &[] };
        let mut reader = Reader::new(src, prefix);
        reader.read = prefix.len() as u64;
        (reader, None, None)
    } else {
        let counter = Arc::new(Counter64::new(0));
        let src: Box<dyn Read + Send> = if prefix_read {
            Box::new(io::Cursor::new(magic[..n].to_vec()).chain(src))
        } else {
            src
        };
        let (r, t) = spawn_feeder(src, compression, counter.clone(), opts.xz_memlimit)
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        let r = File::from(r);
        let fd = r.as_raw_fd();
        let out = Waiting {
            inner: r,
            fd,
            stop: opts.stop.clone(),
        };
        (Reader::new(Box::new(out), &[]), Some(counter), Some(t))
    };
    let mut reader = reader;
    let file = match read_header(&mut reader) {
        Ok(f) => f,
        Err(detail) => {
            drop(reader);
            let detail = match thread.map(|t| t.join()) {
                Some(Ok(Err(FeedError::Corrupt(d)))) => {
                    format!("{} data is corrupt: {d}", compression.name())
                }
                Some(Ok(Err(FeedError::Memory(d)))) => return Err(format!("{shown}: {d}")),
                _ => detail,
            };
            return Err(format!("{shown}: not a pcap or pcapng capture ({detail})"));
        }
    };
    let link = file.link();
    if let Some(l) = link {
        file_link_type(l, &shown)?;
    }
    if let Some(dup) = dup.filter(|_| compression == Compression::None) {
        reader.start_ahead(dup);
    }
    Ok(Input {
        name: shown,
        link,
        format: file.format(),
        compression,
        total,
        reader,
        file: Box::new(file),
        counter,
        thread,
        done: false,
    })
}

/// `file` (a pipe, FIFO or terminal) read through poll() with the stop flag.
fn waiting(file: &File, opts: &Opts) -> Result<Waiting<File>, String> {
    let f = file
        .try_clone()
        .map_err(|e| format!("cannot read input: {}", io_message(&e)))?;
    let fd = f.as_raw_fd();
    Ok(Waiting {
        inner: f,
        fd,
        stop: opts.stop.clone(),
    })
}

/// Reads the file header; for pcapng, the blocks up to the first interface description
/// too (so that the link type is known before the first packet).
fn read_header(reader: &mut Reader) -> Result<CapFile, String> {
    let read_err = |e: io::Error| format!("read error: {}", io_message(&e));
    let mut file = loop {
        match CapFile::open(reader.bytes(), reader.eof) {
            Ok(Opened::Ready { file, consumed }) => {
                reader.start += consumed;
                break file;
            }
            Ok(Opened::NeedMore { at_least }) => reader.fill(at_least).map_err(read_err)?,
            Err(e) => return Err(e.to_string()),
        }
    };
    while file.link().is_none() {
        match file.next(reader.bytes(), reader.eof) {
            Ok(Step::Skip { consumed }) => reader.start += consumed,
            Ok(Step::NeedMore { at_least }) => reader.fill(at_least).map_err(read_err)?,
            // No interface before the end, or a packet (it names an undescribed
            // interface: an error when it is read).
            Ok(Step::End) | Ok(Step::Record { .. }) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    reader.limit = reader.buf.len();
    Ok(file)
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
        assert_eq!(
            link_type(Linktype(127), "x").unwrap(),
            LinkType::IEEE802_11_RADIOTAP
        );
        let e = link_type(Linktype(148), "cap.pcap").unwrap_err();
        assert!(e.starts_with("cap.pcap: unsupported link type 148"), "{e}");
        assert!(e.contains("ETHERNET (1), PPP (9)"), "{e}");
    }

    #[test]
    fn file_link_types_are_named_by_libpcap() {
        assert_eq!(file_link_type(LinkType::RAW, "x"), Ok(LinkType::RAW));
        let e = file_link_type(LinkType(100), "c.pcap").unwrap_err();
        assert!(
            e.starts_with("c.pcap: unsupported link type 100 (ATM_RFC1483); supported: "),
            "{e}"
        );
        let e = file_link_type(LinkType(147), "c.pcap").unwrap_err();
        assert!(e.starts_with("c.pcap: unsupported link type 147; "), "{e}");
    }

    /// A classic pcap of `n` records of varied sizes (up to the largest), every byte
    /// derived from the record number and the offset in it.
    fn big_pcap(n: u32) -> (Vec<u8>, u64) {
        let mut v = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&capfile::MAX_CAPLEN.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        let mut total = 0u64;
        for i in 0..n {
            let len = match i % 50 {
                0 => capfile::MAX_CAPLEN,
                7 => 0,
                k => (k * 97 + i) % 9000,
            };
            v.extend_from_slice(&i.to_le_bytes());
            v.extend_from_slice(&(i * 3).to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&(len + 4).to_le_bytes());
            v.extend((0..len).map(|j| (i as u8) ^ (j as u8)));
            total += u64::from(len);
        }
        (v, total)
    }

    fn read_through(path: &std::path::Path) -> (u32, u64) {
        read_through_with(path, &Opts::default())
    }

    fn read_through_with(path: &std::path::Path, opts: &Opts) -> (u32, u64) {
        let mut inp = open(path.to_str().unwrap(), opts).unwrap();
        let plain = inp.compression == Compression::None;
        assert_eq!(
            inp.reader.ahead.is_some(),
            opts.read_ahead && plain && cfg!(feature = "read-ahead") && crate::cores::spare_core()
        );
        assert_eq!(inp.link, Some(LinkType::ETHERNET));
        let (mut n, mut bytes) = (0u32, 0u64);
        while let Some(r) = inp.next_record().unwrap() {
            assert_eq!(r.ts.0, u64::from(n) * 1_000_000_000 + u64::from(n) * 3000);
            assert_eq!(r.origlen, r.caplen + 4);
            assert!(r
                .data
                .iter()
                .enumerate()
                .all(|(j, &b)| b == (n as u8) ^ (j as u8)));
            n += 1;
            bytes += r.data.len() as u64;
        }
        assert!(inp.bytes_read() > 0);
        assert_eq!(inp.close(), None);
        (n, bytes)
    }

    /// Records across the edges of the 1 MiB reads (the largest ones included, longer than
    /// the read-ahead's room), from a file read ahead or directly and through the
    /// decompressing thread's pipe, all there and intact.
    #[test]
    fn records_across_read_blocks() {
        use std::io::Write;
        let d = std::env::temp_dir().join(format!("tcpflow-input-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let (file, total) = big_pcap(700);
        assert!(file.len() > 4 * READ_SIZE);
        let plain = d.join("big.pcap");
        std::fs::write(&plain, &file).unwrap();
        assert_eq!(read_through(&plain), (700, total));
        let direct = Opts {
            read_ahead: false,
            ..Opts::default()
        };
        assert_eq!(read_through_with(&plain, &direct), (700, total));
        // With one processor the file is read directly: no thread to take turns with.
        let one = plain.clone();
        let on_one = crate::cores::test_support::on_one_core(move || {
            let inp = open(one.to_str().unwrap(), &Opts::default()).unwrap();
            assert!(inp.reader.ahead.is_none());
            read_through(&one)
        });
        assert_eq!(on_one, (700, total));
        let gz = d.join("big.pcap.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&file).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        assert_eq!(read_through(&gz), (700, total));
        // Cut inside the last record: an error after the others.
        let cut = d.join("cut.pcap");
        std::fs::write(&cut, &file[..file.len() - 1]).unwrap();
        let mut inp = open(cut.to_str().unwrap(), &Opts::default()).unwrap();
        let mut n = 0;
        let err = loop {
            match inp.next_record() {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert_eq!(n, 699);
        assert!(err.starts_with("truncated capture: "), "{err}");
        assert_eq!(inp.next_record(), Ok(None));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn missing_file_is_named() {
        let e = open("/nonexistent/x.pcap", &Opts::default()).unwrap_err();
        assert_eq!(
            e,
            "cannot open /nonexistent/x.pcap: No such file or directory"
        );
    }
}
