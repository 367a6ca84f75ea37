//! The command line: tcpflow 1.6's everyday flags, documented where they are defined (this is
//! the manual `--help` prints).

use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

use crate::budget::{self, Sizing};
use crate::output::{ConsoleFormat, ConsoleOpts};
use crate::template::{self, Template};

const ABOUT: &str = "Reconstruct the TCP connections of a capture file or a live interface: \
each direction of each connection is written to its own file.";

const LONG_ABOUT: &str = "\
Reconstruct the TCP connections of a capture file or a live interface: each direction of each
connection is written to its own file, its bytes at their stream offsets, so that protocols
can be read, checked and carved.

Files are named as tcpflow 1.6 names them (see -T): 010.000.000.001.40000-010.000.000.002.00080
is what 10.0.0.1 port 40000 sent to 10.0.0.2 port 80. IPv6 addresses are written compressed,
a VLAN-tagged flow gets --ID appended, and a reused 4-tuple (a new connection on the same
addresses and ports) gets c1, c2, ... A file from an earlier run with the same name is
overwritten. Bytes that were never captured stay a hole in the file (zeros when read) and are
listed in the report, so lost data can be told apart from real zeros. Each file's
modification time is its connection's first packet.

Packets are reassembled: retransmissions and overlaps never duplicate bytes (the first copy
wins unless --overlap last), out-of-order segments are put in place, IPv4 and IPv6 fragments
are reassembled, Ethernet padding is never taken as data.

A report (report.xml in the output folder, DFXML as tcpflow 1.6 writes it, see -X and
--report-json) lists every direction with its times, addresses, packets, gaps and
conflicting retransmissions, then every counter of the run.

Input: pcap (microsecond, nanosecond and modified) and pcapng files, read whole (a pcapng
may mix link types; a record longer than its snap length is read whole and reported as an
error); .gz, .xz and .bz2 files (recognised by their content) are decompressed on the fly.
Link types: Ethernet (with 802.1Q/802.1ad VLAN tags), Linux cooked (SLL, SLL2), raw IP, BSD
loopback/null.

EXPRESSION is a tcpdump (BPF) filter compiled by libpcap, applied to files (compiled for each
link type they hold) and interfaces alike, e.g. `tcpflow -r x.pcap port 80`.

Exit status: 0 when everything was read and written (also after SIGINT/SIGTERM, which stop
reading, write out every flow and the report; a second signal, or no progress for 5 s after
the first, ends the run at once with 130); 1 when an input could not be read completely
or an output could not be written (what could be reconstructed is still written); 2 for a
usage error. A flow file that cannot be written (a file size limit such as `ulimit -f` or
FAT32's 4 GiB, a FIFO or device under its name) costs that file only: a warning names it,
the report counts its bytes as write_lost_bytes, and the run goes on; a full disk stops it.";

/// How overlapping copies of the same stream bytes are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Overlap {
    /// Keep the first copy seen (tshark, Zeek and Suricata's default).
    First,
    /// Keep the last copy seen (tcpflow 1.6's behaviour).
    Last,
}

/// Every tcpflow 1.6.1 flag and what it does here (`--help`, after the options; the README
/// has the same table).
#[cfg_attr(not(feature = "outputs"), allow(dead_code))]
const TCPFLOW_FLAGS: &str = "\
tcpflow 1.6.1's flags here:
  -r -R -l -i -p -o -c -C -s -D -B -0 -b -f -T -X -w -U -z -q -v -V -h, filter:
        as in tcpflow 1.6.1 (see each above)
  -K    <flow file>.pcap per direction, with the capture's link type (--pcap-per-connection
        for both directions in one file)
  -I    <flow file>.findx: offset|sec.usec|len per segment, with its real stream offset
  -J    JSON lines on standard output (schema in the README)
  -g    colours with -c/-C on a terminal (not with NO_COLOR)
  -S    enable_report, tcp_timeout, tcp_cmd, tcp_alert_fd; with -e http, http_cmd and
        http_alert_fd (per finished HTTP body file)
  -a -e -E -x -H  post-processing scanners: http, md5, sha256, netviz (report.pdf)
  -Z    -e http: bodies left coded
Refused, each with its reason:
  -A    deprecated in tcpflow 1.6 too
  -d    debug levels: -v is verbose
  -F    file name prefixes: -T does the same (e.g. -T '%K/%A.%a-%B.%b')
  -L    semaphore lock: files are never shared between processes here
  -m    skip size that starts a new file: offsets are 64-bit and holes stay holes";

/// The parsed command line, before validation.
#[derive(Debug, Parser)]
#[command(
    name = "tcpflow",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    max_term_width = 100,
    disable_version_flag = true
)]
// The table of tcpflow 1.6's flags closes --help where the per-flow outputs are built (the
// field builds leave both out for their size budget; the README has the table).
#[cfg_attr(feature = "outputs", command(after_long_help = TCPFLOW_FLAGS))]
pub struct Args {
    /// Read packets from a capture file (pcap or pcapng; .gz/.xz/.bz2 decompressed). May be
    /// given several times: files are read in order, connections continuing from one file to
    /// the next. `-` reads standard input.
    #[arg(short = 'r', value_name = "FILE", action = ArgAction::Append)]
    pub read: Vec<String>,

    /// Read a capture file after all -r files, only to finish connections already open:
    /// connections that start in these files are not written.
    #[arg(short = 'R', value_name = "FILE", action = ArgAction::Append)]
    pub read_finish: Vec<String>,

    /// The remaining arguments are input files (as -r), not a filter expression.
    #[arg(short = 'l')]
    pub list: bool,

    /// Capture live from this network interface. Without -r, -R or -i, the first interface
    /// libpcap finds is used.
    #[arg(short = 'i', value_name = "INTERFACE")]
    pub interface: Option<String>,

    /// Do not put the interface into promiscuous mode.
    #[arg(short = 'p')]
    pub no_promisc: bool,

    /// Output folder, created if missing.
    #[arg(short = 'o', value_name = "DIR", default_value = ".")]
    pub outdir: PathBuf,

    /// Print each reconstructed chunk to standard output, after a `SRC.PORT-DST.PORT: ` header,
    /// instead of writing files. Chunks come in stream order (tcpflow 1.6 printed packets as
    /// they arrived). Bytes that could drive a terminal are escaped unless -B: a backslash is
    /// shown as `\\`, a carriage return as `\r`, and every byte other than printable ASCII,
    /// newline and tab as `\xHH` (tcpflow 1.6 showed them as `.` but passed `\r` through,
    /// so a stream could overwrite a shown line); -s shows them as `.`.
    #[arg(short = 'c')]
    pub console: bool,

    /// As -c, without the header.
    #[arg(short = 'C')]
    pub console_no_header: bool,

    /// Show non-printable bytes (carriage returns too) as `.` on the console, as tcpflow 1.6
    /// does, instead of the default `\xHH` escapes; newlines stay.
    #[arg(short = 's')]
    pub strip: bool,

    /// Binary console output: print bytes as they are, non-printable ones too.
    #[arg(short = 'B')]
    pub binary: bool,

    /// Hex dump on the console: offset, 32 bytes in hex, the same as text.
    #[arg(short = 'D')]
    pub hex: bool,

    /// No newline after each chunk on the console.
    #[arg(short = '0')]
    pub no_newline: bool,

    /// Keep at most N bytes of each direction (the rest is counted, not written).
    #[arg(short = 'b', value_name = "N")]
    pub max_bytes: Option<u64>,

    /// Create output files (flows and reports) readable by their owner only (mode 0600
    /// instead of 0644): captured traffic often holds secrets.
    #[arg(long)]
    pub private: bool,

    /// At most N output files open at once (default: the descriptor limit minus 32). Files
    /// closed to stay under it are reopened as needed, so any number of connections works.
    #[arg(short = 'f', value_name = "N")]
    pub max_fds: Option<usize>,

    /// File name template. %A/%a source address/port, %B/%b destination address/port,
    /// %E/%e source/destination MAC, %V `--` when VLAN-tagged, %v the (outermost) VLAN id,
    /// %C `c` and %c the connection index when above 0, %# the index always, %T/%t the
    /// connection's first packet time (ISO 8601 UTC / Unix seconds), %S the session number
    /// (connections counted in start order, shared by both directions), %N %K %M %G its
    /// 3-digit bins (units, thousands, millions, billions), %% a `%`. `/` makes sub-folders.
    /// %C%c is appended when the template has neither %c nor %#. Names must stay inside the
    /// output folder.
    #[arg(short = 'T', value_name = "TEMPLATE", default_value = template::DEFAULT)]
    pub template: String,

    /// DFXML report path (default: OUTDIR/report.xml; with -c/-C only when given).
    #[arg(short = 'X', value_name = "FILE")]
    pub report_xml: Option<PathBuf>,

    /// Write no report.xml (tcpflow 1.6: -S enable_report=NO).
    #[arg(long = "no-report")]
    pub no_report: bool,

    /// Also write the report as JSON lines: one object per direction, then one of totals.
    #[arg(long = "report-json", value_name = "FILE")]
    pub report_json: Option<PathBuf>,

    // viz (issue 19).
    /// The HTML report: traffic, connections and the capture's losses over time as charts,
    /// the largest and lossiest directions linked to their files, top talkers, ports and
    /// VLANs, every counter of report.xml (default: OUTDIR/report.html where files are
    /// written, unless --no-report; with -c/-C only when given). One self-contained file
    /// that loads nothing. `-e netviz` (tcpflow 1.6) also writes the charts to
    /// OUTDIR/report.pdf.
    #[arg(long = "report-html", value_name = "FILE")]
    pub report_html: Option<PathBuf>,

    // viz (issue 19).
    /// Live capture: rewrite report.html (and report.pdf with -e netviz) every SECS seconds,
    /// each time whole (a new file renamed over the old), so it can be watched while the
    /// capture runs.
    #[arg(long = "report-interval", value_name = "SECS")]
    pub report_interval: Option<u64>,

    /// Write the packets that were not processed (not TCP, not IP, undecodable) to this pcap
    /// file.
    #[arg(short = 'w', value_name = "FILE")]
    pub unprocessed: Option<PathBuf>,

    /// After opening the inputs, drop root privileges and run as USER. Reports, the spool
    /// and the flow files are then created as USER (never as root, never given away).
    #[arg(short = 'U', long = "relinquish-privileges", value_name = "USER")]
    pub user: Option<String>,

    /// chroot to DIR before dropping privileges (needs -U). The output folder and report
    /// paths are then inside DIR.
    #[arg(short = 'z', long = "chroot", value_name = "DIR")]
    pub chroot: Option<PathBuf>,

    /// Quiet: no summary line, no progress, no warnings.
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Verbose: say what is opened and how the engine is sized.
    #[arg(short = 'v')]
    pub verbose: bool,

    /// Print the version and exit.
    #[arg(short = 'V', long = "version", action = ArgAction::Version)]
    pub version: (),

    /// Most connections tracked at once [default: 262144, or from --memory]. When the table
    /// is full, the least recently active connection (second-chance order) is closed (its
    /// files written) to make room. Each costs about 200 bytes (the engine's record, index and share of full
    /// slots, and the command's state), allocated once at start.
    #[arg(long = "max-flows", value_name = "N")]
    pub max_flows: Option<u32>,

    /// File names held in memory, so that two directions of a run never share a file
    /// [default: twice --max-flows; about 25 bytes each]. Past it they go into a filter (the
    /// names of directions not written yet excepted), and a new name the filter cannot rule
    /// out is looked up in the output folder: taken if a file is there. Such a file left by
    /// an older run is then kept (as tcpflow 1.6 does) rather than overwritten.
    #[arg(long = "max-names", value_name = "N")]
    pub max_names: Option<usize>,

    /// Close a connection after this many seconds without a packet (capture time). 0 never.
    /// Default: 0 when reading files (as tcpflow 1.6's tcp_timeout), 300 on a live interface,
    /// so that connections that end without FIN or RST are written out.
    #[arg(long = "idle-timeout", value_name = "SECS")]
    pub idle_timeout: Option<u64>,

    /// Which copy wins when retransmitted bytes differ from the first copy (both are counted
    /// as conflicting in the report).
    #[arg(long = "overlap", value_name = "POLICY", value_enum, default_value_t = Overlap::First)]
    pub overlap: Overlap,

    /// Out-of-order data held at once, shared by all connections, while they wait for the
    /// bytes before them [default: 16M, or from --memory]. It costs the bytes held, however
    /// small the segments (1 KiB windows of a stream). When it is full, the direction that
    /// needs room stops waiting for the holes of its first window (reported as gaps; bytes
    /// that fill one of its latest gaps later still land). SIZE takes K, M and G suffixes
    /// (powers of 1024).
    #[arg(long = "max-ooo-bytes", value_name = "SIZE", value_parser = parse_size)]
    pub max_ooo_bytes: Option<u64>,

    /// RAM budget: sets --max-flows, --max-ooo-bytes, the fragment slots and the output
    /// buffers from one figure. The split: 60% flow table (flow records and slots, hash index
    /// and the command's own state per flow), 25% out-of-order pool, 5% fragment reassembly (64 KiB
    /// slots, 1 to 64), 10% output buffers (file writes; the spool uses 64 KiB to 1 MiB).
    /// Flags given explicitly override their share. Without --memory: 262144 flows, 16 MiB
    /// of out-of-order data, 64 fragment slots, 16 MiB of buffers (a workstation). On a 64 MB
    /// router use `--memory 16M` (about 88,000 flows and 4 MiB of out-of-order data with
    /// --spool; the process then stays near 16 MiB plus 2-4 MiB for the program itself).
    /// Reading an .xz capture may take as much again (at least 16 MiB; 1 GiB without
    /// --memory): a file whose dictionary needs more is refused.
    #[arg(long = "memory", value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,

    /// Live capture: the kernel's capture buffer (tcpdump's -B; a plain number is KiB, as
    /// there) [default: 8M, or a quarter of --memory up to 8M]. The kernel fills it while
    /// the capturing thread is not scheduled; its drops are `pcap_dropped` in the report.
    #[arg(long = "buffer-size", value_name = "SIZE", value_parser = parse_kib)]
    pub buffer_size: Option<u64>,

    /// Live capture: packets taken from the kernel's buffer and waiting for the packet loop
    /// (which may be held up by file writes: a disk creates files slower than a link brings
    /// short connections) [default: 256M, or half of --memory]. Allocated only as the wait
    /// grows and given back once the loop has caught up; when full, packets are dropped and
    /// counted (`queue_dropped`).
    #[arg(long = "queue-size", value_name = "SIZE", value_parser = parse_size)]
    pub queue_size: Option<u64>,

    /// Out-of-order pool size in blocks of 1 KiB of data (as --max-ooo-bytes).
    #[arg(long = "pool-blocks", value_name = "N", hide = true)]
    pub pool_blocks: Option<u32>,

    /// Memory for output buffers at most, in MiB (data is written when a direction has 32 KiB
    /// or the total reaches the budget, which starts at 2 MiB and grows up to this when
    /// directions go on after their buffer was written early).
    #[arg(long = "buffer-mb", value_name = "MIB", hide = true)]
    pub buffer_mb: Option<usize>,

    /// Spool to PATH instead of writing a file per direction: one bounded, crash-safe,
    /// append-only log (a file, created if missing, or a block device) of --spool-size bytes,
    /// written in large aligned blocks; when it is full the oldest data is dropped, whole
    /// segments at a time (counted). Export it later with --spool-export. A spool already
    /// there is continued, not overwritten; anything else that is not empty needs
    /// --spool-init. For routers: put it on external storage (e.g.
    /// /mnt/usb), never on the router's own flash (the overlay). Without -X or
    /// --report-json no report is written; the summary on stderr has the spool's figures.
    #[arg(
        long = "spool",
        value_name = "PATH",
        help_heading = "Spooling to flash"
    )]
    pub spool: Option<PathBuf>,

    /// Make a spool of --spool PATH even though it holds something else (a file or device
    /// that is neither empty, nor all zeros, nor a spool): its contents are lost. Without
    /// it such a PATH is refused and left as it is.
    #[arg(long = "spool-init", help_heading = "Spooling to flash")]
    pub spool_init: bool,

    /// Size of the spool [default: 256M], checked against the free space and reserved in
    /// full (so a disk that is too small fails at once; the reserving goes on beside the run). Split into segments (the unit the ring drops): 1 MiB for spools
    /// of 16 MiB and more, smaller for smaller spools (at least 16 segments, at least 16 KiB
    /// each); written in 4 KiB blocks. The size is rounded down to whole segments.
    #[arg(
        long = "spool-size",
        value_name = "SIZE",
        value_parser = parse_size,
        help_heading = "Spooling to flash"
    )]
    pub spool_size: Option<u64>,

    /// Make the spool durable (write the partial block and fdatasync) at most every SECS
    /// seconds [default: 5]: capture time when reading files, wall-clock time when capturing
    /// live; always at the end, also after SIGINT or SIGTERM. A power cut loses at most the
    /// last SECS seconds. 0: only at the end.
    #[arg(
        long = "spool-sync",
        value_name = "SECS",
        help_heading = "Spooling to flash"
    )]
    pub spool_sync: Option<u64>,

    /// Read the spool at PATH and write what a direct run on the same capture writes: the
    /// same per-flow files, byte for byte and by the same names, and a report with the same
    /// per-direction records (but for conflicting retransmissions of delivered bytes, which
    /// cannot be told while spooling: the delivered bytes are on storage, not in memory).
    /// Flows whose end the spool lacks (a crash, or a writer still running) are written as
    /// far as they got; flows whose start the ring dropped have a hole there. A damaged
    /// spool is read past the damage; what was lost is reported and the exit status is 1.
    /// Takes -o, -T, -b, -f, -X, --report-json, --no-report, -c/-C, --max-flows (the
    /// largest writer flow table accepted).
    #[arg(
        long = "spool-export",
        value_name = "PATH",
        help_heading = "Spooling to flash"
    )]
    pub spool_export: Option<PathBuf>,

    /// Print what the spool at PATH holds on standard output: flows, bytes, time range, what
    /// the ring dropped, damage (exit status 1 if any), and a torn tail if the writer was
    /// stopped mid-write.
    #[arg(
        long = "spool-summary",
        value_name = "PATH",
        help_heading = "Spooling to flash"
    )]
    pub spool_summary: Option<PathBuf>,

    // --- ship (issue #20): flags of the fleet; the code is in ship/. ---
    /// Ship each sealed spool segment to S3-compatible object storage as one object,
    /// URL/TAP-ID/SPOOL-ID/SEQUENCE (with --spool). Uploads run beside the capture, never
    /// holding it up; a segment the ring must overwrite before it could be shipped is
    /// counted ("dropped before shipping"). Progress is kept in SPOOL.ship, so a restart
    /// ships on from there. Credentials, region and endpoint as the AWS tools take them:
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL (MinIO, Garage,
    /// Ceph), AWS_PROFILE and ~/.aws/credentials; https trusts the system's roots, or the
    /// CAs of AWS_CA_BUNDLE (a PEM file). --spool-export and --spool-summary take
    /// s3://BUCKET/PREFIX/TAP-ID (or s3://BUCKET/PREFIX/ for every tap, a folder each).
    #[cfg(feature = "ship")]
    #[arg(
        long = "ship",
        value_name = "URL",
        help_heading = "Shipping to object storage"
    )]
    pub ship: Option<String>,

    /// This tap's name in the bucket [default: the host name].
    #[cfg(feature = "ship")]
    #[arg(
        long = "tap-id",
        value_name = "ID",
        help_heading = "Shipping to object storage"
    )]
    pub tap_id: Option<String>,

    /// At the end of a capture, keep trying to ship what is left for at most SECS
    /// [default: 30]; what is not shipped stays in the spool for the next run.
    #[cfg(feature = "ship")]
    #[arg(
        long = "ship-wait",
        value_name = "SECS",
        help_heading = "Shipping to object storage"
    )]
    pub ship_wait: Option<u64>,

    /// Ship the spool at PATH, which another tcpflow writes (or wrote), to --ship URL: its
    /// sealed segments while a writer holds the spool, everything once none does, then exit.
    /// SIGINT/SIGTERM stop it (what is sealed is shipped first, within --ship-wait).
    #[cfg(feature = "ship")]
    #[arg(
        long = "spool-ship",
        value_name = "PATH",
        help_heading = "Shipping to object storage"
    )]
    pub spool_ship: Option<PathBuf>,
    // --- end ship ---
    /// Enable a post-processing scanner (repeatable): `http` carves every HTTP/1.x request
    /// and response body into `<flow file>-HTTPBODY-NNN` plus an extension from its
    /// Content-Type (dechunked; gzip, deflate, br and zstd decoded), one report record per
    /// body; `md5` and `sha256` put each direction's digest in its report record. Files
    /// mode (-o) and --spool-export only.
    #[arg(short = 'e', value_name = "SCANNER", action = ArgAction::Append, help_heading = "Scanners")]
    pub scan_enable: Vec<String>,
    /// Disable a scanner (repeatable; after -a).
    #[arg(short = 'x', value_name = "SCANNER", action = ArgAction::Append, help_heading = "Scanners")]
    pub scan_disable: Vec<String>,
    /// Enable only this scanner.
    #[arg(short = 'E', value_name = "SCANNER", action = ArgAction::Append, help_heading = "Scanners")]
    pub scan_only: Vec<String>,
    /// Enable every scanner.
    #[arg(short = 'a', help_heading = "Scanners")]
    pub scan_all: bool,
    /// List the scanners, one line each, and exit.
    #[arg(short = 'H', help_heading = "Scanners")]
    pub scan_help: bool,
    /// -e http: write bodies as received (dechunked), without undoing gzip, deflate, br or
    /// zstd (tcpflow 1.6's -Z).
    #[arg(short = 'Z', help_heading = "Scanners")]
    pub http_no_decode: bool,
    /// -e http: at most this many decoded bytes per body (K, M, G suffixes); the rest is
    /// counted (`http_capped_bytes`) and the body marked incomplete, so that a decompression
    /// bomb cannot fill the disk [default: 256M].
    #[arg(long = "http-max-body", value_name = "SIZE", value_parser = parse_size, help_heading = "Scanners")]
    pub http_max_body: Option<u64>,

    /// A tcpdump filter expression (or, with -l, input files).
    #[arg(value_name = "EXPRESSION")]
    pub expression: Vec<String>,

    /// Also write the frames of each flow file, as captured (retransmissions too, with their
    /// capture times and wire lengths), to `<flow file>.pcap`, with the capture's link type
    /// (pcapng, an interface per link type, when its frames came on interfaces of different
    /// link types). Descriptors are bounded as with -f: any number of flows works. Not with -c/-C,
    /// --spool or --spool-export (the spool does not hold frames).
    #[arg(short = 'K', long = "pcap-per-flow", help_heading = "Per-flow outputs")]
    pub pcap_per_flow: bool,

    /// With -c/-C: the two directions in different colours (A to B blue, B to A red), only
    /// when standard output is a terminal and NO_COLOR is not set.
    #[arg(short = 'g', long = "color", help_heading = "Per-flow outputs")]
    pub color: bool,

    /// Also write `<flow file>.findx`: a line `offset|sec.usec|len` per segment with payload
    /// (its stream offset, capture time and payload length), retransmissions included.
    #[arg(short = 'I', long = "index", help_heading = "Per-flow outputs")]
    pub findx: bool,

    /// Also write both directions' frames of each connection to one pcap,
    /// `<A-to-B flow file>.conn.pcap` (with or without -K).
    #[arg(long = "pcap-per-connection", help_heading = "Per-flow outputs")]
    pub pcap_per_connection: bool,

    /// Print JSON lines on standard output instead of writing files: one object per chunk
    /// of a stream (addresses, ports, VLANs, session and connection index, stream offset,
    /// time, the bytes in base64), per gap and per closed connection. The schema is in the
    /// README (`-J` output).
    #[arg(short = 'J', long = "json", help_heading = "Per-flow outputs")]
    pub json: bool,

    /// A tcpflow 1.6 setting, NAME=VALUE (repeatable): `enable_report=YES|NO` (NO: as
    /// --no-report), `tcp_timeout=SECS` (as --idle-timeout; 0: none), `tcp_cmd=CMD` (run CMD
    /// with each finished flow file's path as its last argument, without a shell: CMD is
    /// split at white space; at most 8 at once, never holding up the capture; failures
    /// counted and said), `tcp_alert_fd=N` (write `close<TAB>PATH` to descriptor N for each
    /// finished flow file); with `-e http`, `http_cmd=CMD` and `http_alert_fd=N` do the same
    /// for each finished HTTP body file (the 8 commands at once are shared with tcp_cmd).
    #[arg(
        short = 'S',
        value_name = "NAME=VALUE",
        help_heading = "Per-flow outputs"
    )]
    pub settings: Vec<String>,

    /// Run `-S tcp_cmd` through `/bin/sh -c CMD tcpflow PATH` (the path is `$1`).
    #[arg(long = "tcp-cmd-shell", help_heading = "Per-flow outputs")]
    pub tcp_cmd_shell: bool,

    /// Run `-S http_cmd` through `/bin/sh -c CMD tcpflow PATH` (the path is `$1`; tcpflow
    /// 1.6 always used a shell for it).
    #[arg(long = "http-cmd-shell", help_heading = "Per-flow outputs")]
    pub http_cmd_shell: bool,

    // tcpflow 1.6 flags that are not supported: refused with a message, never ignored.
    #[arg(short = 'A', hide = true)]
    pub x_ah: Option<String>,
    #[arg(short = 'd', hide = true)]
    pub x_debug: Option<String>,
    #[arg(short = 'F', hide = true)]
    pub x_format: Option<String>,
    #[arg(short = 'L', hide = true)]
    pub x_lock: Option<String>,
    #[arg(short = 'm', hide = true)]
    pub x_min: Option<String>,
}

/// Where packets come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Files {
        read: Vec<String>,
        finish: Vec<String>,
    },
    /// `None`: the first interface libpcap finds.
    Live {
        interface: Option<String>,
        promisc: bool,
    },
}

/// `--spool` and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolOpts {
    pub path: PathBuf,
    /// Bytes asked for (`--spool-size`).
    pub size: u64,
    /// Sync at most this often (0: only at the end).
    pub sync_secs: u64,
    /// `--spool-init`: PATH may be overwritten even if it holds something else.
    pub init: bool,
}

/// What a run does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read packets (files or live) into files, the console or a spool.
    Capture,
    /// `--spool-export PATH`: a spool into files (or the console).
    Export(PathBuf),
    /// `--spool-summary PATH`: what a spool holds, on standard output.
    Summary(PathBuf),
}

/// Default `--spool-size`.
pub const DEFAULT_SPOOL_SIZE: u64 = 256 << 20;
/// Default `--spool-sync`.
pub const DEFAULT_SPOOL_SYNC: u64 = 5;

/// `--buffer-size`: as [`parse_size`], but a plain number is KiB (tcpdump's `-B`).
fn parse_kib(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = t.parse().map_err(|_| format!("'{s}' is too large"))?;
        return n
            .checked_mul(1024)
            .ok_or_else(|| format!("'{s}' is too large"));
    }
    parse_size(s)
}

/// Default `--buffer-size` and `--queue-size` (live capture).
pub const DEFAULT_CAPTURE_BUFFER: u64 = 8 << 20;
pub const DEFAULT_QUEUE_SIZE: u64 = 256 << 20;

/// Parses a size: a number of bytes with an optional K, M, G or T suffix (powers of 1024;
/// `KiB`, `MB`, ... and lower case are accepted too).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!("'{s}' is not a size (e.g. 4096, 512K, 16M, 1G)"));
    }
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is too large"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use K, M, G or T)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// Validated options.
#[derive(Clone, Debug)]
pub struct Options {
    pub source: Source,
    pub filter: Option<String>,
    pub outdir: PathBuf,
    pub console: Option<ConsoleOpts>,
    pub template: Template,
    pub max_bytes: Option<u64>,
    /// Mode of created output files (0644, or 0600 with --private).
    pub file_mode: u32,
    pub max_fds: Option<usize>,
    /// `--max-names`, when given.
    pub max_names: Option<usize>,
    pub report_xml: Option<PathBuf>,
    pub report_json: Option<PathBuf>,
    pub unprocessed: Option<PathBuf>,
    pub user: Option<String>,
    pub chroot: Option<PathBuf>,
    pub quiet: bool,
    pub verbose: bool,
    pub max_flows: u32,
    pub idle_timeout_secs: u64,
    pub overlap: Overlap,
    pub pool_blocks: u32,
    pub buffer_bytes: usize,
    /// Fragment reassembly slots and the bytes of each.
    pub frag_slots: usize,
    pub frag_slot_bytes: usize,
    /// `--memory`, when given.
    pub memory: Option<u64>,
    /// Live capture: the kernel's buffer and the queue between the threads.
    pub capture_buffer_bytes: usize,
    pub queue_bytes: usize,
    /// `--spool`: write the spool instead of files.
    pub spool: Option<SpoolOpts>,
    /// `--ship` (issue #20): ship the spool's segments.
    #[cfg(feature = "ship")]
    pub ship: Option<crate::ship::ShipOpts>,
    /// `--spool-ship PATH` (issue #20): only ship that spool.
    #[cfg(feature = "ship")]
    pub spool_ship: Option<PathBuf>,
    /// What this run does.
    pub action: Action,
    /// Warnings to print (unless quiet).
    pub warnings: Vec<String>,
    /// The scanners enabled (-e, -x, -E, -a).
    pub scan: crate::scan::Selection,
    /// -e http: `--http-max-body`, and whether codings are undone (not -Z).
    pub http_max_body: u64,
    pub http_decode: bool,
    /// viz (issue 19): report.html and report.pdf.
    pub viz: crate::viz::VizOpts,
    /// `-K`, `--pcap-per-connection`.
    pub pcap: crate::output::pcap::PcapOpts,
    /// `-J`: JSON lines instead of `console`.
    pub json: bool,
    /// `-S tcp_cmd`, `tcp_alert_fd`, `http_cmd`, `http_alert_fd`.
    pub flow_commands: crate::output::commands::FlowCommandOpts,
}

/// Colours on standard output: a terminal, and no `NO_COLOR` (set and not empty).
fn color_allowed() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && !std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// The `-S` settings this command knows.
pub const SETTINGS: &[&str] = &[
    "enable_report",
    "tcp_timeout",
    "tcp_cmd",
    "tcp_alert_fd",
    "http_cmd",
    "http_alert_fd",
];

/// What `-S` settings set.
#[derive(Debug, Default)]
struct Settings {
    enable_report: Option<bool>,
    tcp_timeout: Option<u64>,
    tcp_cmd: Option<String>,
    tcp_alert_fd: Option<i32>,
    http_cmd: Option<String>,
    http_alert_fd: Option<i32>,
}

fn parse_settings(given: &[String]) -> Result<Settings, String> {
    let mut s = Settings::default();
    for g in given {
        let Some((name, value)) = g.split_once('=') else {
            return Err(format!(
                "-S {g}: give NAME=VALUE (known names: {})",
                SETTINGS.join(", ")
            ));
        };
        match name {
            "enable_report" => {
                s.enable_report = Some(match value.to_ascii_lowercase().as_str() {
                    "yes" | "1" | "true" => true,
                    "no" | "0" | "false" => false,
                    _ => return Err(format!("-S enable_report={value}: give YES or NO")),
                })
            }
            "tcp_timeout" => {
                s.tcp_timeout = Some(
                    value
                        .parse()
                        .map_err(|_| format!("-S tcp_timeout={value}: give a number of seconds"))?,
                )
            }
            "tcp_cmd" | "http_cmd" => {
                if value.trim().is_empty() {
                    return Err(format!("-S {name}= needs a command"));
                }
                let v = Some(value.to_string());
                if name == "tcp_cmd" {
                    s.tcp_cmd = v;
                } else {
                    s.http_cmd = v;
                }
            }
            "tcp_alert_fd" | "http_alert_fd" => {
                let fd: i32 = value
                    .parse()
                    .map_err(|_| format!("-S {name}={value}: give a descriptor number"))?;
                // -1 is tcpflow 1.6's "none".
                let fd = (fd >= 0).then_some(fd);
                if name == "tcp_alert_fd" {
                    s.tcp_alert_fd = fd;
                } else {
                    s.http_alert_fd = fd;
                }
            }
            _ => {
                return Err(format!(
                    "-S {name}: unknown setting; known: {}",
                    SETTINGS.join(", ")
                ))
            }
        }
    }
    Ok(s)
}

impl Args {
    /// The first unsupported tcpflow flag given, as a message.
    fn refused(&self) -> Option<&'static str> {
        let r = [
            (self.x_ah.is_some(), "-A is not supported (deprecated in tcpflow 1.6 too)"),
            (self.x_debug.is_some(), "-d (debug level) is not supported; -v is verbose"),
            (self.x_format.is_some(), "-F (file name prefixes) is not supported; use -T (e.g. -T '%K/%A.%a-%B.%b')"),
            (self.x_lock.is_some(), "-L (semaphore lock) is not supported"),
            (self.x_min.is_some(), "-m (skip size that starts a new file) is not supported: stream offsets are 64-bit and gaps are holes"),
        ];
        r.iter().find(|(on, _)| *on).map(|(_, m)| *m)
    }

    /// Checks the combination of flags.
    pub fn into_options(self) -> Result<Options, String> {
        if let Some(m) = self.refused() {
            return Err(m.to_string());
        }
        let template = Template::parse(&self.template).map_err(|e| format!("-T: {e}"))?;
        template.check_static().map_err(|e| format!("-T: {e}"))?;
        let mut read = self.read.clone();
        let mut filter_words = self.expression.clone();
        if self.list {
            read.append(&mut filter_words);
        }
        let filter = if filter_words.is_empty() {
            None
        } else {
            Some(filter_words.join(" "))
        };
        let files = !read.is_empty() || !self.read_finish.is_empty();
        if files && self.interface.is_some() {
            return Err("-i cannot be combined with -r or -R: read files or an interface".into());
        }
        let source = if files {
            Source::Files {
                read,
                finish: self.read_finish.clone(),
            }
        } else {
            Source::Live {
                interface: self.interface.clone(),
                promisc: !self.no_promisc,
            }
        };
        if self.chroot.is_some() && self.user.is_none() {
            return Err("-z (chroot) requires -U USER".into());
        }
        if self
            .max_flows
            .is_some_and(|n| n == 0 || n > budget::MAX_FLOWS)
        {
            return Err(format!(
                "--max-flows must be between 1 and {}",
                budget::MAX_FLOWS
            ));
        }
        if self.max_fds == Some(0) {
            return Err("-f must be at least 1".into());
        }
        if self.max_names == Some(0) {
            return Err("--max-names must be at least 1".into());
        }
        if self.pool_blocks == Some(0) {
            return Err("--pool-blocks must be at least 1".into());
        }
        if self.max_ooo_bytes == Some(0) {
            return Err("--max-ooo-bytes must be at least 1K".into());
        }
        if self.memory.is_some_and(|m| m < MIN_MEMORY) {
            return Err("--memory must be at least 1M".into());
        }
        let settings = parse_settings(&self.settings)?;
        if self.json && (self.console || self.console_no_header) {
            return Err("-J prints JSON, -c/-C print text: give one".into());
        }
        // -J is a console output of its own.
        let console_mode = self.console || self.console_no_header || self.json;
        let action = self.action()?;
        let spool = self.spool_opts(console_mode)?;
        let spool_mode = spool.is_some();
        let sizing = self.sizing(spool_mode);
        let mut warnings = Vec::new();
        let console = if console_mode {
            let format = if self.hex {
                ConsoleFormat::Hex
            } else if self.binary {
                ConsoleFormat::Binary
            } else if self.strip {
                ConsoleFormat::Dots
            } else {
                ConsoleFormat::Printable
            };
            Some(ConsoleOpts {
                header: self.console && !self.console_no_header,
                format,
                newline: !self.no_newline,
                color: self.color && color_allowed(),
            })
        } else {
            for (on, flag) in [
                (self.strip, "-s"),
                (self.binary, "-B"),
                (self.hex, "-D"),
                (self.no_newline, "-0"),
                (self.color, "-g"),
            ] {
                if on {
                    warnings.push(format!("{flag} only changes console output (-c or -C); files are written as captured"));
                }
            }
            None
        };
        let report_xml = if self.no_report || settings.enable_report == Some(false) {
            None
        } else if let Some(x) = self.report_xml.clone() {
            Some(x)
        } else if console_mode || spool_mode || matches!(action, Action::Summary(_)) {
            None
        } else {
            Some(self.outdir.join("report.xml"))
        };
        let files_mode = !(console_mode || spool_mode || matches!(action, Action::Summary(_)));
        let live_input = matches!(source, Source::Live { .. });
        // Bounds so that a typo cannot ask libpcap or the queue for terabytes.
        let capture_buffer = self
            .buffer_size
            .unwrap_or(match self.memory {
                Some(m) => (m / 4).min(DEFAULT_CAPTURE_BUFFER),
                None => DEFAULT_CAPTURE_BUFFER,
            })
            .clamp(64 << 10, 1 << 30);
        let queue_bytes = self
            .queue_size
            .unwrap_or(match self.memory {
                Some(m) => m / 2,
                None => DEFAULT_QUEUE_SIZE,
            })
            .clamp(crate::capture::BATCH_BYTES as u64 * 2, 16 << 30);
        if !live_input {
            for (on, flag) in [
                (self.buffer_size.is_some(), "--buffer-size"),
                (self.queue_size.is_some(), "--queue-size"),
            ] {
                if on {
                    warnings.push(format!(
                        "{flag} only applies to a live capture (-i); it does nothing here"
                    ));
                }
            }
        }
        if self.max_names.is_some() && !files_mode {
            warnings.push(
                "--max-names only applies where files are written (-o, --spool-export); it does nothing here"
                    .into(),
            );
        }
        if let Some(m) = self.memory {
            // Names past the two per flow slot that the budget counts.
            let extra_names = match self.max_names {
                Some(n) if files_mode => n.saturating_sub(2 * sizing.max_flows as usize),
                _ => 0,
            };
            let used = sizing.memory_bytes(spool_mode, self.max_bytes.is_some())
                + (extra_names * crate::output::NAME_BYTES) as u64;
            if used > m {
                warnings.push(format!(
                    "the flags given explicitly take about {} MiB, more than --memory {} MiB",
                    used >> 20,
                    m >> 20
                ));
            }
        }
        let pcap = crate::output::pcap::PcapOpts {
            per_dir: self.pcap_per_flow,
            per_conn: self.pcap_per_connection,
            findx: self.findx,
        };
        if pcap.any() {
            let flag = if pcap.per_dir {
                "-K"
            } else {
                "--pcap-per-connection"
            };
            if matches!(action, Action::Export(_)) {
                return Err(format!("{flag}: a spool holds the flows' bytes, not their frames: no pcap can be written from it; run {flag} on the capture"));
            }
            if !files_mode {
                return Err(format!("{flag} writes pcap files next to the flow files: not with -c/-C, --spool or --spool-summary"));
            }
        }
        let flow_commands = crate::output::commands::FlowCommandOpts {
            cmd: settings.tcp_cmd.clone(),
            shell: self.tcp_cmd_shell,
            alert_fd: settings.tcp_alert_fd,
            http_cmd: settings.http_cmd.clone(),
            http_shell: self.http_cmd_shell,
            http_alert_fd: settings.http_alert_fd,
        };
        if flow_commands.any() && !files_mode {
            return Err("-S tcp_cmd / tcp_alert_fd / http_cmd / http_alert_fd act on files: not with -c/-C/-J, --spool or --spool-summary".into());
        }
        if !cfg!(feature = "outputs") && (pcap.any() || self.json || flow_commands.any()) {
            return Err("-K, --pcap-per-connection, -I, -J and -S tcp_cmd/tcp_alert_fd/http_cmd/http_alert_fd: this build has none of them (built without the cargo feature `outputs`)".into());
        }
        if self.tcp_cmd_shell && flow_commands.cmd.is_none() {
            return Err("--tcp-cmd-shell needs -S tcp_cmd=CMD".into());
        }
        if self.http_cmd_shell && flow_commands.http_cmd.is_none() {
            return Err("--http-cmd-shell needs -S http_cmd=CMD".into());
        }
        let live = matches!(source, Source::Live { .. });
        let scan = crate::scan::select(
            self.scan_all,
            &self.scan_enable,
            &self.scan_disable,
            &self.scan_only,
        )?;
        if scan.any() && (console_mode || spool_mode || matches!(action, Action::Summary(_))) {
            return Err(format!(
                "-e {}: scanners write files beside the flow files: use -o (or carve a spool later with --spool-export -e ...), not {}",
                scan.names().join(","),
                if console_mode { "-c/-C" } else if spool_mode { "--spool" } else { "--spool-summary" }
            ));
        }
        if !scan.http && (flow_commands.http_cmd.is_some() || flow_commands.http_alert_fd.is_some())
        {
            return Err("-S http_cmd / http_alert_fd act on the HTTP bodies the http scanner writes: add -e http".into());
        }
        if !scan.http && (self.http_no_decode || self.http_max_body.is_some()) {
            warnings
                .push("-Z and --http-max-body only apply to -e http; they do nothing here".into());
        }
        let viz = self.viz_opts(
            files_mode,
            matches!(action, Action::Summary(_)),
            scan.netviz,
        )?;
        Ok(Options {
            source,
            filter,
            outdir: self.outdir.clone(),
            console,
            template,
            max_bytes: self.max_bytes,
            file_mode: if self.private { 0o600 } else { 0o644 },
            max_fds: self.max_fds,
            max_names: self.max_names,
            report_xml,
            report_json: self.report_json.clone(),
            unprocessed: self.unprocessed.clone(),
            user: self.user.clone(),
            chroot: self.chroot.clone(),
            quiet: self.quiet,
            verbose: self.verbose,
            max_flows: sizing.max_flows,
            idle_timeout_secs: self
                .idle_timeout
                .or(settings.tcp_timeout)
                .unwrap_or(if live { 300 } else { 0 }),
            overlap: self.overlap,
            pool_blocks: sizing.pool_blocks,
            buffer_bytes: sizing.buffer_bytes,
            frag_slots: sizing.frag_slots,
            frag_slot_bytes: sizing.frag_slot_bytes,
            memory: self.memory,
            capture_buffer_bytes: capture_buffer as usize,
            queue_bytes: queue_bytes as usize,
            #[cfg(feature = "ship")]
            ship: self.ship_opts(spool.is_some() || self.spool_ship.is_some())?,
            #[cfg(feature = "ship")]
            spool_ship: self.spool_ship_opt()?,
            spool,
            action,
            warnings,
            scan,
            http_max_body: self.http_max_body.unwrap_or(256 << 20),
            http_decode: !self.http_no_decode,
            viz,
            pcap,
            json: self.json,
            flow_commands,
        })
    }

    /// viz (issue 19): where report.html and report.pdf go.
    fn viz_opts(
        &self,
        files_mode: bool,
        summary: bool,
        netviz: bool,
    ) -> Result<crate::viz::VizOpts, String> {
        if summary && (netviz || self.report_html.is_some()) {
            return Err("--spool-summary writes no report: --report-html and -e netviz need a capture or --spool-export".into());
        }
        if netviz && !cfg!(feature = "netviz") {
            return Err("this tcpflow was built without report.pdf (cargo feature netviz): -e netviz is not available; report.html has the same charts".into());
        }
        if !cfg!(feature = "viz") {
            if netviz || self.report_html.is_some() || self.report_interval.is_some() {
                return Err("this tcpflow was built without the pictures (cargo feature viz): --report-html, --report-interval and -e netviz are not available".into());
            }
            return Ok(crate::viz::VizOpts::default());
        }
        if self.report_interval.is_some() && self.interface.is_none() {
            return Err("--report-interval applies to a live capture (-i)".into());
        }
        let html = match &self.report_html {
            Some(p) => Some(p.clone()),
            None if files_mode && !self.no_report => Some(self.outdir.join("report.html")),
            None => None,
        };
        if self.report_interval.is_some() && html.is_none() && !netviz {
            return Err("--report-interval: no report.html to refresh (give --report-html, or drop --no-report)".into());
        }
        Ok(crate::viz::VizOpts {
            html,
            // tcpflow 1.6 writes report.pdf in the output folder.
            pdf: netviz.then(|| self.outdir.join("report.pdf")),
            interval_secs: self.report_interval,
        })
    }

    /// `--ship` and its settings (issue #20): they need --spool.
    #[cfg(feature = "ship")]
    fn ship_opts(&self, spooling: bool) -> Result<Option<crate::ship::ShipOpts>, String> {
        let Some(url) = &self.ship else {
            if self.tap_id.is_some() || self.ship_wait.is_some() {
                return Err("--tap-id and --ship-wait need --ship URL".into());
            }
            return Ok(None);
        };
        if !spooling {
            return Err("--ship ships the spool's segments: it needs --spool PATH".into());
        }
        crate::ship::ShipOpts::new(url, self.tap_id.as_deref(), self.ship_wait).map(Some)
    }

    /// `--spool-ship PATH` and what it cannot be combined with.
    #[cfg(feature = "ship")]
    fn spool_ship_opt(&self) -> Result<Option<PathBuf>, String> {
        let Some(p) = &self.spool_ship else {
            return Ok(None);
        };
        if self.ship.is_none() {
            return Err("--spool-ship PATH needs --ship URL (where to ship it)".into());
        }
        if self.spool.is_some() || self.spool_export.is_some() || self.spool_summary.is_some() {
            return Err(
                "--spool-ship only ships: it cannot be combined with --spool, --spool-export or --spool-summary"
                    .into(),
            );
        }
        if !self.read.is_empty() || !self.read_finish.is_empty() || self.interface.is_some() {
            return Err(
                "--spool-ship reads a spool: it takes no capture input (-r, -R, -i)".into(),
            );
        }
        Ok(Some(p.clone()))
    }

    /// `--spool-export` / `--spool-summary`, and what they cannot be combined with.
    fn action(&self) -> Result<Action, String> {
        let action = match (&self.spool_export, &self.spool_summary) {
            (Some(_), Some(_)) => {
                return Err("--spool-export and --spool-summary: give one of them".into())
            }
            (Some(p), None) => Action::Export(p.clone()),
            (None, Some(p)) => Action::Summary(p.clone()),
            (None, None) => return Ok(Action::Capture),
        };
        let flag = match action {
            Action::Export(_) => "--spool-export",
            _ => "--spool-summary",
        };
        let inputs = !self.read.is_empty()
            || !self.read_finish.is_empty()
            || self.interface.is_some()
            || (self.list && !self.expression.is_empty());
        if inputs {
            return Err(format!(
                "{flag} reads a spool: it takes no capture input (-r, -R, -i)"
            ));
        }
        if !self.list && !self.expression.is_empty() {
            return Err(format!(
                "{flag} takes no filter expression (filter when capturing)"
            ));
        }
        if self.spool.is_some() {
            return Err(format!("{flag} cannot be combined with --spool"));
        }
        Ok(action)
    }

    /// `--spool` and its settings; errors for flags that need it or exclude it.
    fn spool_opts(&self, console_mode: bool) -> Result<Option<SpoolOpts>, String> {
        let Some(path) = self.spool.clone() else {
            if self.spool_size.is_some() {
                return Err("--spool-size needs --spool PATH".into());
            }
            if self.spool_sync.is_some() {
                return Err("--spool-sync needs --spool PATH".into());
            }
            if self.spool_init {
                return Err("--spool-init needs --spool PATH".into());
            }
            return Ok(None);
        };
        if console_mode {
            return Err("--spool writes the spool; -c/-C print to the console: give one".into());
        }
        if self.overlap == Overlap::Last {
            return Err("--overlap last cannot be used with --spool: telling a differing retransmission needs the bytes already delivered, which the spool keeps on storage, not in memory".into());
        }
        Ok(Some(SpoolOpts {
            path,
            size: self.spool_size.unwrap_or(DEFAULT_SPOOL_SIZE),
            sync_secs: self.spool_sync.unwrap_or(DEFAULT_SPOOL_SYNC),
            init: self.spool_init,
        }))
    }

    /// Flow slots, pool, fragment slots and buffers: explicit flags, else the `--memory`
    /// split, else the defaults.
    fn sizing(&self, spool: bool) -> Sizing {
        let base = match self.memory {
            Some(m) => Sizing::from_budget(
                m,
                budget::host_bytes_per_flow(spool, self.max_bytes.is_some()),
            ),
            None => Sizing::DEFAULT,
        };
        Sizing {
            max_flows: self.max_flows.unwrap_or(base.max_flows),
            pool_blocks: self
                .pool_blocks
                .or(self.max_ooo_bytes.map(budget::blocks_for))
                .unwrap_or(base.pool_blocks),
            frag_slots: base.frag_slots,
            frag_slot_bytes: base.frag_slot_bytes,
            buffer_bytes: self
                .buffer_mb
                .map(|m| m.max(1).saturating_mul(1 << 20))
                .unwrap_or(base.buffer_bytes),
        }
    }
}

/// The smallest `--memory`.
const MIN_MEMORY: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        let a = Args::try_parse_from(std::iter::once("tcpflow").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        a.into_options()
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn files_filter_and_list() {
        let o = parse(&["-r", "a.pcap", "-r", "-", "port", "80"]).unwrap();
        assert_eq!(
            o.source,
            Source::Files {
                read: vec!["a.pcap".into(), "-".into()],
                finish: vec![]
            }
        );
        assert_eq!(o.filter.as_deref(), Some("port 80"));
        let o = parse(&["-l", "a.pcap", "b.pcap"]).unwrap();
        assert_eq!(
            o.source,
            Source::Files {
                read: vec!["a.pcap".into(), "b.pcap".into()],
                finish: vec![]
            }
        );
        assert_eq!(o.filter, None);
        assert_eq!(o.report_xml, Some(PathBuf::from("./report.xml")));
        assert_eq!(o.idle_timeout_secs, 0);
    }

    #[test]
    fn live_defaults() {
        let o = parse(&["-i", "lo", "-p"]).unwrap();
        assert_eq!(
            o.source,
            Source::Live {
                interface: Some("lo".into()),
                promisc: false
            }
        );
        assert_eq!(o.idle_timeout_secs, 300);
    }

    #[cfg(feature = "scan")]
    #[test]
    fn scanner_flags() {
        let o = parse(&["-e", "http", "-e", "md5", "-r", "x"]).unwrap();
        assert!(o.scan.http && o.scan.md5 && !o.scan.sha256);
        assert!(o.http_decode);
        assert_eq!(o.http_max_body, 256 << 20);
        let o = parse(&["-a", "-x", "http", "-Z", "--http-max-body", "1M", "-r", "x"]).unwrap();
        assert!(!o.scan.http && o.scan.md5 && o.scan.sha256 && !o.http_decode);
        assert!(!o.warnings.is_empty());
        let e = parse(&["-e", "http", "-c", "-r", "x"]).unwrap_err();
        assert!(e.contains("not -c/-C"), "{e}");
        let e = parse(&["-e", "md5", "--spool", "s", "-i", "lo"]).unwrap_err();
        assert!(e.contains("--spool"), "{e}");
    }

    #[test]
    fn settings() {
        let o = parse(&[
            "-S",
            "tcp_timeout=7",
            "-S",
            "enable_report=NO",
            "-S",
            "tcp_cmd=echo x",
            "-S",
            "tcp_alert_fd=-1",
            "-r",
            "x",
        ])
        .unwrap();
        assert_eq!(o.idle_timeout_secs, 7);
        assert!(o.report_xml.is_none());
        assert_eq!(o.flow_commands.cmd.as_deref(), Some("echo x"));
        assert_eq!(o.flow_commands.alert_fd, None);
        let e = parse(&["-S", "nope=1", "-r", "x"]).unwrap_err();
        assert!(e.contains("unknown") && e.contains("tcp_alert_fd"), "{e}");
        let e = parse(&["-S", "http_cmd=x", "-r", "x"]).unwrap_err();
        assert!(e.contains("-e http"), "{e}");
        assert!(parse(&["-S", "http_alert_fd=3", "-r", "x"])
            .unwrap_err()
            .contains("-e http"));
        assert!(parse(&["--http-cmd-shell", "-e", "http", "-r", "x"])
            .unwrap_err()
            .contains("http_cmd"));
        if cfg!(feature = "scan") {
            let o = parse(&[
                "-e",
                "http",
                "-S",
                "http_cmd=echo y",
                "--http-cmd-shell",
                "-S",
                "http_alert_fd=5",
                "-r",
                "x",
            ])
            .unwrap();
            assert_eq!(o.flow_commands.http_cmd.as_deref(), Some("echo y"));
            assert!(o.flow_commands.http_shell && !o.flow_commands.shell);
            assert_eq!(o.flow_commands.http_alert_fd, Some(5));
        }
        assert!(parse(&["-S", "tcp_cmd=x", "-c", "-r", "x"]).is_err());
        assert!(parse(&["-S", "tcp_timeout", "-r", "x"]).is_err());
    }

    #[test]
    fn pcap_outputs_need_flow_files() {
        let o = parse(&["-K", "--pcap-per-connection", "-r", "x"]).unwrap();
        assert!(o.pcap.per_dir && o.pcap.per_conn);
        assert!(!parse(&["-r", "x"]).unwrap().pcap.any());
        assert!(parse(&["-K", "-c", "-r", "x"]).unwrap_err().contains("-K"));
        let e = parse(&["--pcap-per-connection", "--spool-export", "s"]).unwrap_err();
        assert!(e.contains("not their frames"), "{e}");
    }

    #[test]
    fn refused_flags_say_so() {
        let e = parse(&["-L", "x", "-r", "x"]).unwrap_err();
        assert_eq!(e, "-L (semaphore lock) is not supported");
        assert!(parse(&["-e", "pictures", "-r", "x"])
            .unwrap_err()
            .contains("-e pictures: unknown scanner"));
    }

    #[test]
    fn console_modes() {
        let o = parse(&["-c", "-r", "x"]).unwrap();
        let c = o.console.unwrap();
        assert!(c.header && c.newline && c.format == ConsoleFormat::Printable);
        assert_eq!(o.report_xml, None);
        let c = parse(&["-C", "-D", "-0", "-r", "x"])
            .unwrap()
            .console
            .unwrap();
        assert!(!c.header && !c.newline && c.format == ConsoleFormat::Hex);
        let c = parse(&["-c", "-B", "-r", "x"]).unwrap().console.unwrap();
        assert_eq!(c.format, ConsoleFormat::Binary);
        let c = parse(&["-c", "-s", "-r", "x"]).unwrap().console.unwrap();
        assert_eq!(c.format, ConsoleFormat::Dots);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("16m"), Ok(16 << 20));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1TB"), Ok(1 << 40));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("1.5G").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn spool_options() {
        let o = parse(&["-i", "eth0", "--spool", "/mnt/usb/s", "--memory", "16M"]).unwrap();
        let sp = o.spool.unwrap();
        assert_eq!(sp.size, DEFAULT_SPOOL_SIZE);
        assert_eq!(sp.sync_secs, DEFAULT_SPOOL_SYNC);
        assert_eq!(o.report_xml, None, "no report by default when spooling");
        assert_eq!(o.action, Action::Capture);
        let want = Sizing::from_budget(16 << 20, budget::host_bytes_per_flow(true, false));
        assert_eq!(o.max_flows, want.max_flows);
        assert_eq!(o.pool_blocks, want.pool_blocks);
        assert_eq!(o.frag_slots, want.frag_slots);
        let o = parse(&[
            "-r",
            "x",
            "--spool",
            "s",
            "--spool-size",
            "1G",
            "--spool-sync",
            "0",
            "-X",
            "r.xml",
        ])
        .unwrap();
        assert_eq!(o.spool.as_ref().unwrap().size, 1 << 30);
        assert_eq!(o.spool.as_ref().unwrap().sync_secs, 0);
        assert_eq!(o.report_xml, Some(PathBuf::from("r.xml")));
        assert_eq!(o.max_flows, budget::DEFAULT_FLOWS);
        let o = parse(&["--spool-export", "s", "-o", "out"]).unwrap();
        assert_eq!(o.action, Action::Export(PathBuf::from("s")));
        assert_eq!(o.report_xml, Some(PathBuf::from("out/report.xml")));
        let o = parse(&["--spool-summary", "s"]).unwrap();
        assert_eq!(o.action, Action::Summary(PathBuf::from("s")));
        for bad in [
            &["--spool-size", "1M", "-r", "x"][..],
            &["--spool-sync", "1", "-r", "x"],
            &["--spool", "s", "-c", "-r", "x"],
            &["--spool", "s", "--overlap", "last", "-r", "x"],
            &["--spool-export", "s", "-r", "x"],
            &["--spool-export", "s", "port", "80"],
            &["--spool-export", "s", "--spool", "t"],
            &["--spool-summary", "s", "--spool-export", "s"],
            &["--memory", "100K", "-r", "x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn explicit_flags_override_the_budget() {
        let o = parse(&[
            "-r",
            "x",
            "--memory",
            "16M",
            "--max-flows",
            "1000",
            "--max-ooo-bytes",
            "1M",
        ])
        .unwrap();
        assert_eq!(o.max_flows, 1000);
        assert_eq!(o.pool_blocks, 1024);
        let files = Sizing::from_budget(16 << 20, budget::host_bytes_per_flow(false, false));
        assert_eq!(o.buffer_bytes, files.buffer_bytes);
        let o = parse(&["-r", "x", "--memory", "16M", "--pool-blocks", "7"]).unwrap();
        assert_eq!(o.pool_blocks, 7);
        // Over the budget: said, not refused.
        let o = parse(&["-r", "x", "--memory", "16M", "--max-flows", "1000000"]).unwrap();
        assert!(o.warnings.iter().any(|w| w.contains("more than --memory")));
        let o = parse(&["-r", "x", "--memory", "16M", "--max-names", "10000000"]).unwrap();
        assert!(o.warnings.iter().any(|w| w.contains("more than --memory")));
        let o = parse(&["-r", "x", "--memory", "16M", "--max-names", "1000"]).unwrap();
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }

    #[test]
    fn max_names_without_files_is_said() {
        for args in [
            &["-r", "x", "-c", "--max-names", "10"][..],
            &["-r", "x", "--spool", "s", "--max-names", "10"][..],
        ] {
            let o = parse(args).unwrap();
            assert!(
                o.warnings
                    .iter()
                    .any(|w| w.contains("--max-names only applies")),
                "{args:?}: {:?}",
                o.warnings
            );
        }
        let o = parse(&["--spool-export", "s", "-o", "d", "--max-names", "10"]).unwrap();
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
        assert_eq!(o.max_names, Some(10));
    }

    #[test]
    fn cuts_by_b_count_in_the_budget() {
        let plain = parse(&["-r", "x", "--memory", "16M"]).unwrap();
        let cut = parse(&["-r", "x", "--memory", "16M", "-b", "100"]).unwrap();
        // `-b` keeps a count per direction with a cut: fewer flows fit the same budget.
        assert!(
            cut.max_flows < plain.max_flows,
            "{} {}",
            cut.max_flows,
            plain.max_flows
        );
        let want = Sizing::from_budget(16 << 20, budget::host_bytes_per_flow(false, true));
        assert_eq!(cut.max_flows, want.max_flows);
    }

    #[test]
    fn chroot_needs_user() {
        assert!(parse(&["-z", "/tmp", "-r", "x"]).is_err());
    }
}
