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
//! - [`output`] - the outputs the engine feeds, behind one trait joined by a tee: files
//!   (buffered, through a bounded open-file cache), the console, the spool, the report, and
//!   the `-b` and `-R` adapters around them;
//! - [`report`] - `report.xml` (DFXML) and `--report-json`, streamed as directions finish;
//! - [`privs`] - dropping root for `-U` and `-z`; [`safefs`] - opening output files and
//!   sub-folders without following links planted in the output folder;
//! - [`spool`] - `--spool`: the core's flash spool over a file or block device (the output
//!   that spools is [`output::spool`]); [`spoolcmd`] - `--spool-export` and `--spool-summary`;
//! - [`crc`] - the CPU's CRC-32C for the spool writer; [`fxhash`] - a cheap hash for maps whose
//!   keys no capture chooses;
//! - [`budget`] - sizing from defaults or from one RAM budget (`--memory`);
//! - [`scan`] - post-processing scanners (`-e http`, `-e md5`, `-e sha256`) fed by the file writer;
//! - [`viz`] - report.html and `-e netviz`'s report.pdf: charts over bounded time bins and
//!   top-N tables;
//! - [`run`] - one run from start to exit status; [`cores`] - whether helper threads have a
//!   processor of their own.
//!
//! Data flows one way: capture file or libpcap -> engine -> [`output::Outputs`] -> files,
//! console or spool, and the report.

pub mod budget;
pub mod capture;
pub mod cli;
pub mod cores;
pub mod counter;
pub mod crc;
pub mod filter;
pub mod fxhash;
pub mod input;
pub mod output;
pub mod privs;
pub mod report;
pub mod run;
pub mod safefs;
pub mod savefile;
pub mod scan;
#[cfg(feature = "ship")]
pub mod ship;
pub mod spool;
pub mod spoolcmd;
pub mod template;
pub mod timefmt;
pub mod viz;
pub mod watchdog;
pub mod zeroed;

pub use run::main_entry;
