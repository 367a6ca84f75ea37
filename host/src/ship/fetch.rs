//! The analysis side: `--spool-export s3://bucket/prefix/TAP -o DIR` and `--spool-summary`
//! with a URL.
//!
//! A tap's objects (`TAP/<spool id>/<sequence number>`) are downloaded, in sequence order,
//! into a spool image in a temporary file (segment `i` of the image is the `i`-th object), and
//! the local export reads that image: the same code writes the same files, byte for byte.
//! Sequence numbers missing from the bucket (dropped before shipping, or not shipped yet) are
//! jumps the reader reports as missing segments; they are named here too, and the image's
//! drop counters say how many segments the bucket lacks (the tap's own counters count what
//! its ring overwrote after shipping it, which the bucket still has).
//!
//! A URL whose objects are `TAP/<spool id>/<seq>` below it holds several taps: each is
//! exported to a folder of its own, `DIR/TAP`. A tap with several spools (a spool started
//! again) gets `DIR/<spool id>` for each.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::{Backoff, Client, S3Error};
use super::config::{self, S3Url};
use super::{segment, TempDir};
use crate::cli::Options;
use crate::spoolcmd;

/// One spool of one tap in the bucket: its objects by sequence number.
#[derive(Debug, Default)]
struct SpoolObjects {
    objects: BTreeMap<u64, (String, u64)>,
}

/// The bucket's layout under the URL: tap (`None`: the URL is the tap) -> spool id -> objects.
type Layout = BTreeMap<Option<String>, BTreeMap<String, SpoolObjects>>;

/// Runs `f` until it succeeds, a failure that waiting cannot mend, or `tries` attempts.
fn retry<T>(tries: u32, mut f: impl FnMut() -> Result<T, S3Error>) -> Result<T, S3Error> {
    let mut b = Backoff::new(Duration::from_millis(300), Duration::from_secs(5));
    let mut n = 1;
    loop {
        match f() {
            Err(e) if e.transient() && n < tries => {
                n += 1;
                std::thread::sleep(b.delay());
            }
            r => return r,
        }
    }
}

fn layout(client: &Client, url: &S3Url) -> Result<Layout, String> {
    let prefix = if url.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", url.prefix)
    };
    let objs = retry(5, || client.list(&prefix))
        .map_err(|e| format!("{url}: {}", e.describe(&client.cfg, &client.bucket)))?;
    let mut two: Layout = BTreeMap::new();
    let mut three: Layout = BTreeMap::new();
    for o in objs {
        let Some(rel) = o.key.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = rel.split('/').collect();
        let Some(seq) = parts
            .last()
            .filter(|s| s.len() == 20 && s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let (tap, spool) = match parts.len() {
            2 => (None, parts[0]),
            3 => (Some(parts[0].to_string()), parts[1]),
            _ => continue,
        };
        let into = if tap.is_none() { &mut two } else { &mut three };
        into.entry(tap)
            .or_default()
            .entry(spool.to_string())
            .or_default()
            .objects
            .insert(seq, (o.key.clone(), o.size));
    }
    match (two.is_empty(), three.is_empty()) {
        (true, true) => Err(format!(
            "{url}: no spool segments there (objects TAP/SPOOL-ID/SEQUENCE below the URL, or SPOOL-ID/SEQUENCE below a tap's URL)"
        )),
        (false, _) => Ok(two),
        (true, false) => Ok(three),
    }
}

/// Assembles one spool's objects into an image at `path`; returns a note naming the
/// sequence numbers the bucket lacks, if any.
fn assemble(
    client: &Client,
    name: &str,
    objs: &SpoolObjects,
    path: &Path,
) -> Result<Option<String>, String> {
    let seg = objs.objects.values().next().map_or(0, |(_, size)| *size);
    if let Some((k, (_, s))) = objs.objects.iter().find(|(_, (_, s))| *s != seg) {
        return Err(format!(
            "{name}: segment {k} is {s} bytes, the others {seg}: not one spool's segments"
        ));
    }
    if seg == 0 || seg > 1 << 30 {
        return Err(format!("{name}: segments of {seg} bytes are not a spool's"));
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut missing: Vec<(u64, u64)> = Vec::new();
    // Sequence numbers start at 1: what is below the first object never reached the bucket.
    let mut prev: Option<u64> = Some(0);
    for (i, (&seq, (key, _))) in objs.objects.iter().enumerate() {
        if let Some(p) = prev {
            if seq > p + 1 {
                missing.push((p + 1, seq - 1));
            }
        }
        prev = Some(seq);
        let mut body = retry(5, || client.get(key))
            .map_err(|e| format!("{name}: {key}: {}", e.describe(&client.cfg, &client.bucket)))?;
        if body.len() as u64 != seg {
            return Err(format!(
                "{name}: {key}: {} bytes received, {seg} listed",
                body.len()
            ));
        }
        // What the bucket lacks before this segment (an object that is not this segment is
        // left as it is: the reader counts it as damage).
        if segment::parse(&body).is_some_and(|h| h.seq == seq) {
            let lacking = (seq - 1).saturating_sub(i as u64);
            segment::set_drops(&mut body, 0, 0, lacking);
        }
        file.write_all_at(&body, i as u64 * seg)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    // A spool has at least two segments (the ring needs one to drop and one to keep): a tap
    // that shipped one gets an empty second, which reads as nothing.
    let slots = (objs.objects.len() as u64).max(2);
    file.set_len(slots * seg)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok((!missing.is_empty()).then(|| {
        let list: Vec<String> = missing
            .iter()
            .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}..={b}") })
            .collect();
        format!(
            "{name}: segments {} are not in the bucket (dropped before shipping, or not shipped yet)",
            list.join(", ")
        )
    }))
}

/// Every (folder below `-o`, label, spool) of the URL.
fn plan(lay: &Layout) -> Vec<(PathBuf, String, &SpoolObjects)> {
    let mut out = Vec::new();
    for (tap, spools) in lay {
        for (id, objs) in spools {
            let mut dir = PathBuf::new();
            if let Some(t) = tap {
                dir.push(t);
            }
            if spools.len() > 1 {
                dir.push(id);
            }
            let label = match tap {
                Some(t) => format!("{t}/{id}"),
                None => id.clone(),
            };
            out.push((dir, label, objs));
        }
    }
    out
}

fn open(url_path: &Path) -> Result<(Client, S3Url, Layout), String> {
    let s = url_path.to_string_lossy();
    let url = S3Url::parse(&s)?;
    let cfg = config::from_env()?;
    let client = Client::new(cfg, &url.bucket)?;
    let lay = layout(&client, &url)?;
    Ok((client, url, lay))
}

/// `--spool-export s3://...`.
pub fn export(o: &Options, url_path: &Path) -> Result<i32, String> {
    let (client, url, lay) = open(url_path)?;
    let tmp = TempDir::new("s3")?;
    let mut status = 0;
    for (n, (sub, label, objs)) in plan(&lay).into_iter().enumerate() {
        let name = format!("{url}/{label}");
        let image = tmp.0.join(format!("spool-{n}"));
        let note = assemble(&client, &name, objs, &image)?;
        let mut o2 = o.clone();
        if !sub.as_os_str().is_empty() {
            o2.outdir = o.outdir.join(&sub);
            let relocate = |p: &Option<PathBuf>| {
                p.as_ref()
                    .and_then(|p| p.file_name())
                    .map(|f| o2.outdir.join(f))
            };
            o2.report_xml = relocate(&o.report_xml);
            o2.report_json = relocate(&o.report_json);
            if !o.quiet {
                eprintln!("tcpflow: {name} -> {}", o2.outdir.display());
            }
        }
        if let Some(note) = &note {
            eprintln!("tcpflow: {note}");
        }
        let st = spoolcmd::export(&o2, &image)?;
        status = status.max(st);
        let _ = std::fs::remove_file(&image);
    }
    Ok(status)
}

/// `--spool-summary s3://...`: each spool's summary, under a line naming it.
pub fn summary(o: &Options, url_path: &Path) -> Result<i32, String> {
    let (client, url, lay) = open(url_path)?;
    let tmp = TempDir::new("s3")?;
    let mut status = 0;
    for (n, (_, label, objs)) in plan(&lay).into_iter().enumerate() {
        let name = format!("{url}/{label}");
        let image = tmp.0.join(format!("spool-{n}"));
        let note = assemble(&client, &name, objs, &image)?;
        println!("{name}: {} segments in the bucket", objs.objects.len());
        if let Some(note) = note {
            println!("{note}");
        }
        status = status.max(spoolcmd::summary(o, &image)?);
        let _ = std::fs::remove_file(&image);
    }
    Ok(status)
}
