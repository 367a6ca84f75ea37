//! report.html: one self-contained page. Inline SVG charts, inline CSS, no script, no font
//! file, and a Content-Security-Policy that forbids the browser to load anything at all, so
//! opening it reaches no network and it reads the same with scripting off.

use std::fmt::Write as _;
use std::path::{Component, Path};

use tcpflow_core::Addr;

use std::io::Write;

use super::charts;
use super::collect::{BodyLinks, DirRow, Tables, Timeline};
use super::fmt_bytes;
use crate::report::{stats_groups, xml_escape, Totals};
use crate::template::push_addr_plain;
use crate::timefmt;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1600px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
.grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #ddd}
figure svg{display:block;max-width:100%;height:auto}
figcaption{font-size:.85em;padding:2px 6px;color:#555}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{background:#fde2e2}.ok{background:#e3f5e1}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ccc;padding:6px 10px;min-width:9em}
.card b{display:block;font-size:1.3em}
.note{color:#555;font-size:.85em}";

/// Everything the page is made of.
pub struct Page<'a> {
    pub timeline: &'a Timeline,
    pub tables: &'a Tables,
    pub totals: &'a Totals<'a>,
    pub command_line: &'a str,
    /// The folder the page is written to: file links are made relative to it.
    pub page_dir: Option<&'a Path>,
}

pub fn addr_text(a: Addr) -> String {
    let mut s = String::new();
    push_addr_plain(&mut s, a);
    s
}

fn endpoint(a: Addr, port: u16) -> String {
    match a {
        Addr::V4(_) => format!("{}:{port}", addr_text(a)),
        Addr::V6(_) => format!("[{}]:{port}", addr_text(a)),
    }
}

/// A link to a flow's file, relative to the page when it is below the page's folder.
fn href(file: &str, page_dir: Option<&Path>) -> String {
    let p = Path::new(file);
    let rel = match page_dir {
        Some(d) if !d.as_os_str().is_empty() && d != Path::new(".") => p.strip_prefix(d).ok(),
        _ => None,
    };
    let target = match rel {
        Some(r) => r.to_path_buf(),
        None if p.is_absolute() => p.to_path_buf(),
        None if page_dir.map_or(true, |d| d.as_os_str().is_empty() || d == Path::new(".")) => {
            p.to_path_buf()
        }
        // Elsewhere: an absolute file link, from the current folder.
        None => std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf()),
    };
    let mut s = String::new();
    if target.is_absolute() {
        s.push_str("file://");
    }
    for (i, c) in target.components().enumerate() {
        if i > 0 && !(target.is_absolute() && i == 1) {
            s.push('/');
        }
        match c {
            Component::RootDir => s.push('/'),
            Component::Normal(n) => push_url_escaped(&mut s, &n.to_string_lossy()),
            Component::CurDir => s.push('.'),
            Component::ParentDir => s.push_str(".."),
            Component::Prefix(_) => {}
        }
    }
    s
}

fn push_url_escaped(s: &mut String, t: &str) {
    for b in t.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
    }
}

fn num(n: u64) -> String {
    // Digits as report.xml has them (the tests compare them), grouped by thin spaces in CSS
    // would need a script: kept plain.
    n.to_string()
}

/// A link to `file` (as the report shows it) named `text`.
fn link(h: &mut String, file: &str, text: &str, page_dir: Option<&Path>) {
    let _ = write!(
        h,
        "<a href=\"{}\">{}</a>",
        xml_escape(&href(file, page_dir)),
        xml_escape(text)
    );
}

/// A direction's HTTP body files: the first few linked (named by what follows the flow
/// file's name), the rest counted.
fn body_cell(h: &mut String, flow: Option<&str>, b: &BodyLinks, page_dir: Option<&Path>) {
    h.push_str("<td class=bodies>");
    for (i, f) in b.files.iter().enumerate() {
        if i > 0 {
            h.push_str(", ");
        }
        let text = flow
            .and_then(|fl| f.strip_prefix(fl))
            .map(|t| t.trim_start_matches('-'))
            .filter(|t| !t.is_empty())
            .unwrap_or(f);
        link(h, f, text, page_dir);
    }
    if b.more > 0 {
        let _ = write!(h, " <span class=more>+{} more</span>", b.more);
    }
    h.push_str("</td>");
}

fn dir_table(h: &mut String, id: &str, rows: &[DirRow], http: bool, page_dir: Option<&Path>) {
    let _ = write!(
        h,
        "<table id=\"{id}\"><tr><th>file</th><th>from</th><th>to</th><th>vlan</th><th class=n>bytes</th><th class=n>packets</th><th class=n>gaps</th><th class=n>gap bytes</th><th class=n>conflicting bytes</th><th class=n>not written</th><th>close</th>{}</tr>",
        if http { "<th>HTTP objects</th>" } else { "" }
    );
    for r in rows {
        h.push_str("<tr><td>");
        match &r.filename {
            Some(f) => link(h, f, f, page_dir),
            None => h.push_str("(no file)"),
        }
        let lossy = r.gap_bytes > 0 || r.write_lost_bytes > 0 || r.conflict_bytes > 0;
        let _ = write!(
            h,
            "</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=\"n{}\">{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td>",
            xml_escape(&endpoint(r.src.0, r.src.1)),
            xml_escape(&endpoint(r.dst.0, r.dst.1)),
            r.vlan.map(|v| v.to_string()).unwrap_or_default(),
            num(r.bytes),
            num(r.packets),
            num(r.gaps),
            if lossy { " bad" } else { "" },
            num(r.gap_bytes),
            num(r.conflict_bytes),
            num(r.write_lost_bytes),
            r.close
        );
        if http {
            body_cell(h, r.filename.as_deref(), &r.bodies, page_dir);
        }
        h.push_str("</tr>");
    }
    if rows.is_empty() {
        let _ = write!(
            h,
            "<tr><td colspan={}>none</td></tr>",
            11 + usize::from(http)
        );
    }
    h.push_str("</table>\n");
}

/// The largest HTTP objects (`-e http`): linked, with their status, type, size and whether
/// they are complete.
fn objects_table(h: &mut String, t: &Tables, page_dir: Option<&Path>) {
    let _ = write!(
        h,
        "<h2>Largest HTTP objects</h2>\n<p class=note>{} bodies carved (-e http); the {} largest. Incomplete ones have holes where bytes were missing (report.xml lists the ranges).</p>\n",
        num(t.http_bodies),
        t.objects.len()
    );
    h.push_str("<table id=\"http_objects\"><tr><th>object</th><th class=n>status</th><th>content type</th><th class=n>bytes</th><th>complete</th><th>flow</th></tr>");
    for o in &t.objects {
        h.push_str("<tr><td>");
        let shown = o.shown.to_string_lossy();
        if o.exists {
            link(h, &shown, &shown, page_dir);
        } else {
            let _ = write!(h, "{} (no file)", xml_escape(&shown));
        }
        let _ = write!(
            h,
            "</td><td class=n>{}</td><td>{}</td><td class=n title=\"{}\">{}</td>",
            o.status.map(|s| s.to_string()).unwrap_or_default(),
            xml_escape(&o.content_type),
            xml_escape(&fmt_bytes(o.size)),
            num(o.size)
        );
        match &o.incomplete {
            None => h.push_str("<td class=ok>yes</td>"),
            Some(why) => {
                let _ = write!(h, "<td class=bad>no: {}</td>", xml_escape(why));
            }
        }
        h.push_str("<td>");
        let flow = o.flow.to_string_lossy();
        link(h, &flow, &flow, page_dir);
        h.push_str("</td></tr>");
    }
    if t.objects.is_empty() {
        h.push_str("<tr><td colspan=6>none</td></tr>");
    }
    h.push_str("</table>\n");
}

fn hitters_table(h: &mut String, id: &str, what: &str, rows: &[(String, u64, u64)]) {
    let _ = write!(
        h,
        "<table id=\"{id}\"><tr><th>{what}</th><th class=n>bytes</th><th class=n>at most over by</th></tr>"
    );
    for (k, n, e) in rows {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            xml_escape(k),
            num(*n),
            num(*e)
        );
    }
    if rows.is_empty() {
        h.push_str("<tr><td colspan=3>none</td></tr>");
    }
    h.push_str("</table>\n");
}

/// Writes the page to `w`, a part at a time (each chart is drawn, written and dropped before
/// the next), so building it holds one chart in memory, not the page.
pub fn render(p: &Page<'_>, w: &mut impl Write) -> Result<(), String> {
    let t = p.totals;
    let f = &t.stats.flow;
    let mut h = String::with_capacity(64 * 1024);
    let mut out = |h: &mut String| -> Result<(), String> {
        w.write_all(h.as_bytes())
            .map_err(|e| crate::input::io_message(&e))?;
        h.clear();
        Ok(())
    };
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    // Nothing may be fetched: no script, no font, no image from anywhere.
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width\">\n<title>tcpflow report</title>\n<style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body>\n<h1>tcpflow: capture report</h1>\n");
    let _ = write!(
        h,
        "<p class=note>Command: <code>{}</code>",
        xml_escape(p.command_line)
    );
    if let Some(start) = p.timeline.start() {
        let span = (p.timeline.bins().len() as u64).saturating_mul(p.timeline.width_ns());
        let _ = write!(
            h,
            "<br>First packet {}; {} bins of {} ms (about {} s).",
            timefmt::iso_micros(start),
            p.timeline.bins().len(),
            p.timeline.width_ns() as f64 / 1e6,
            span / 1_000_000_000
        );
    }
    h.push_str("</p>\n");

    // The figures a reader looks for first: how much, and what was lost.
    h.push_str("<div class=cards id=summary>");
    // Saturating: an exported spool's figures may claim anything.
    let not_written = t
        .host
        .write_lost_bytes
        .saturating_add(t.host.unwritten_bytes);
    let drops = t
        .host
        .pcap_dropped
        .saturating_add(t.host.pcap_if_dropped)
        .saturating_add(t.host.queue_dropped);
    for (label, v, bad) in [
        ("packets", t.host.packets_read, false),
        ("connections", f.opened, false),
        ("payload bytes delivered", f.delivered_bytes, false),
        ("bytes missing (gaps)", f.gap_bytes, f.gap_bytes > 0),
        ("bytes not written", not_written, not_written > 0),
        (
            "conflicting retransmitted bytes",
            f.conflict_bytes,
            f.conflict_bytes > 0,
        ),
        ("capture drops", drops, drops > 0),
        (
            "evicted connections",
            f.closed_evicted,
            f.closed_evicted > 0,
        ),
        ("pool full events", f.pool_full, f.pool_full > 0),
    ] {
        let _ = write!(
            h,
            "<div class=\"card {}\">{label}<b>{}</b></div>",
            if bad { "bad" } else { "ok" },
            num(v)
        );
    }
    h.push_str("</div>\n<h2>Over time</h2>\n<div class=grid>\n");
    charts::each(p.timeline, p.tables, addr_text, |c| {
        let _ = writeln!(
            h,
            "<figure id=\"{}\">{}<figcaption>{}</figcaption></figure>",
            c.id,
            c.svg,
            xml_escape(&c.title)
        );
        out(&mut h)
    })?;
    h.push_str("</div>\n");

    h.push_str("<h2>Largest directions</h2>\n");
    dir_table(
        &mut h,
        "largest",
        p.tables.largest.rows(),
        p.tables.http,
        p.page_dir,
    );
    h.push_str("<h2>Directions with the most loss</h2>\n<p class=note>By bytes missing from the file (gaps, and bytes that could not be written), then by bytes of retransmissions that differed from the copy kept.</p>\n");
    dir_table(
        &mut h,
        "lossiest",
        p.tables.lossiest.rows(),
        p.tables.http,
        p.page_dir,
    );
    if p.tables.http {
        objects_table(&mut h, p.tables, p.page_dir);
    }

    h.push_str("<h2>Top talkers, ports and VLANs</h2>\n<p class=note>Counted in a fixed number of counters (Space-Saving): a count is exact when its \"over by\" is 0, otherwise at most that much too high.</p>\n<div class=grid>");
    let talkers: Vec<_> = p
        .tables
        .talkers
        .top(20)
        .into_iter()
        .map(|(a, n, e)| (addr_text(a), n, e))
        .collect();
    hitters_table(&mut h, "talkers", "address (bytes sent)", &talkers);
    let ports: Vec<_> = p
        .tables
        .ports
        .top(20)
        .into_iter()
        .map(|(k, n, e)| (k.to_string(), n, e))
        .collect();
    hitters_table(&mut h, "ports", "service port", &ports);
    let vlans: Vec<_> = p
        .tables
        .vlans
        .top(20)
        .into_iter()
        .map(|(k, n, e)| (k.to_string(), n, e))
        .collect();
    hitters_table(&mut h, "vlans", "VLAN (outermost)", &vlans);
    h.push_str("</div>\n");

    // Every counter of the run, the same values report.xml's totals hold.
    h.push_str("<h2>Every counter of the run</h2>\n<table id=counters><tr><th>group</th><th>counter</th><th class=n>value</th></tr>\n");
    let mut row = |g: &str, k: &str, v: u64| {
        let bad = v > 0 && is_loss_counter(g, k);
        let _ = writeln!(
            h,
            "<tr data-group=\"{g}\" data-name=\"{k}\"{}><td>{g}</td><td>{k}</td><td class=n>{v}</td></tr>",
            if bad { " class=bad" } else { "" }
        );
    };
    row("totals", "max_open_flows", t.max_open_flows);
    row("totals", "total_flows", t.stats.flow.opened);
    row("totals", "total_packets", t.host.packets_read);
    for (g, fields) in stats_groups(t.stats) {
        for (k, v) in fields {
            row(g, k, v);
        }
    }
    for (k, v) in t.host.fields() {
        row("host", k, v);
    }
    for (g, fields) in t.extra {
        for (k, v) in fields {
            row(g, k, *v);
        }
    }
    h.push_str("</table>\n</body></html>\n");
    out(&mut h)
}

/// Counters that say data was lost or is in doubt (highlighted when not 0).
fn is_loss_counter(g: &str, k: &str) -> bool {
    matches!(
        (g, k),
        (
            "flow",
            "gaps" | "gap_bytes" | "conflict_bytes" | "closed_evicted" | "pool_full"
        ) | (
            "flow",
            "out_of_window_bytes" | "untracked_bytes" | "after_close_bytes" | "unclassified_bytes"
        ) | (
            "frag",
            "dropped_bytes" | "conflict_bytes" | "no_slot" | "too_big" | "timed_out"
        ) | ("decode", "snaplen_cut")
            | (
                "host",
                "write_errors" | "write_lost_bytes" | "files_failed" | "name_errors"
            )
            | (
                "host",
                "unwritten_bytes" | "pcap_dropped" | "pcap_if_dropped" | "queue_dropped"
            )
            | ("host", "truncated_bytes" | "read_errors")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_to_the_page_and_escaped() {
        let d = Path::new("out");
        assert_eq!(href("out/a b/x#1", Some(d)), "a%20b/x%231");
        assert_eq!(href("/abs/f", Some(d)), "file:///abs/f");
        assert_eq!(href("f", Some(Path::new("."))), "f");
    }

    #[test]
    fn bytes_are_readable() {
        assert_eq!(fmt_bytes(1024), "1 KiB");
    }
}
