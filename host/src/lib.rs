//! # tcpflow: the command line over `tcpflow-core`
//!
//! `tcpflow` reads packets (capture files, or a live interface through libpcap), lets the
//! core reassemble each TCP connection, and writes each direction to its own file, as tcpflow
//! 1.6 does. The core knows nothing of files; this crate is everything around it:
//!
//! - [`cli`] - the flags (clap), validated into [`cli::Options`];
//! - [`input`] - capture files (read by [`tcpflow_core::capfile`]), standard input,
//!   gzip/xz/bzip2 decompression, link types; [`filter`] - the filter expression on files;
//!   [`savefile`] - the `-w` file;
//! - [`template`] - output file names (`-T`), kept inside the output folder;
//! - [`output`] - the engine's [`tcpflow_core::Sink`]: buffered files through a bounded
//!   open-file cache ([`filecache`]), or the console;
//! - [`report`] - `report.xml` (DFXML) and `--report-json`, streamed as flows close;
//! - [`privs`] - dropping root for `-U` and `-z`; [`safefs`] - opening output files and
//!   sub-folders without following links planted in the output folder;
//! - [`spool`] - `--spool`: the core's flash spool over a file or block device, and the sink
//!   that spools the engine's events; [`spoolcmd`] - `--spool-export` and `--spool-summary`;
//! - [`crc`] - the CPU's CRC-32C for the spool writer;
//! - [`budget`] - sizing from defaults or from one RAM budget (`--memory`);
//! - [`viz`] - report.html and `-e netviz`'s report.pdf: charts over bounded time bins and
//!   top-N tables;
//! - [`run`] - one run from start to exit status.
//!
//! Data flows one way: capture file or libpcap -> engine -> [`output::Output`] -> files and report.

pub mod budget;
pub mod capture;
pub mod cli;
pub mod counter;
pub mod crc;
pub mod filecache;
pub mod filter;
pub mod finisher;
pub mod input;
pub mod output;
pub mod privs;
pub mod report;
pub mod run;
pub mod safefs;
pub mod savefile;
pub mod spool;
pub mod spoolcmd;
pub mod template;
pub mod timefmt;
pub mod viz;
pub mod watchdog;
pub mod zeroed;

pub use run::main_entry;
