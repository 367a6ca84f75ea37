//! An HTTP-heavy capture for `httpbench`: many connections, each with pipelined GETs and
//! responses framed every way (Content-Length, chunked, gzip-coded, until close), staggered
//! in time so that connections overlap as on a busy link.

use std::net::SocketAddr;

use crate::cases::{binary, close, text, Rng};
use crate::conn::{merge_by_time, Conn, LinkOpts, Pkt};
use crate::link::Dir;
use crate::pcap::PcapWriter;

/// What was generated: the capture and the number of bodies in it.
pub struct HttpCapture {
    pub pcap: Vec<u8>,
    pub bodies: usize,
    pub body_bytes: u64,
    /// SHA-256 (hex) of each decoded body, sorted: what the carved files must hash to.
    pub body_sha256: Vec<String>,
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn response(i: u64, k: u64, rng: &mut Rng, last: bool) -> (Vec<u8>, u64, String) {
    let len = 2_000 + (rng.next_u64() % 40_000) as usize;
    let kind = (i + k) % 4;
    let (ctype, body) = if kind == 1 {
        ("image/png", binary(i * 7 + k, len))
    } else {
        ("text/html", text(i * 7 + k, len))
    };
    let mut r = Vec::new();
    match kind {
        0 | 1 => {
            r.extend(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\n\r\n"
                )
                .bytes(),
            );
            r.extend_from_slice(&body);
        }
        2 => {
            let gz = crate::http_cases::gzip_at(&body, 1);
            r.extend(format!("HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", gz.len()).bytes());
            r.extend_from_slice(&gz);
        }
        _ if last => {
            r.extend(
                format!("HTTP/1.0 200 OK\r\nContent-Type: {ctype}\r\nConnection: close\r\n\r\n")
                    .bytes(),
            );
            r.extend_from_slice(&body);
        }
        _ => {
            r.extend(format!("HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n").bytes());
            for c in body.chunks(4096) {
                r.extend(format!("{:x}\r\n", c.len()).bytes());
                r.extend_from_slice(c);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\n\r\n");
        }
    }
    (r, len as u64, hex_sha256(&body))
}

/// `conns` connections of `per_conn` exchanges each.
pub fn capture(conns: usize, per_conn: usize) -> HttpCapture {
    let mut rng = Rng::new(18);
    let mut lists: Vec<Vec<Pkt>> = Vec::with_capacity(conns);
    let (mut bodies, mut body_bytes) = (0, 0);
    let mut body_sha256 = Vec::new();
    for i in 0..conns as u64 {
        let client: SocketAddr = format!(
            "10.{}.{}.{}:{}",
            20 + i / 60000,
            (i / 250) % 240,
            1 + i % 250,
            10_000 + i % 50_000
        )
        .parse()
        .expect("address");
        let server: SocketAddr = format!("10.200.{}.{}:80", (i % 16) / 250, 1 + i % 16)
            .parse()
            .expect("address");
        let opts = LinkOpts::default().start(crate::conn::DEFAULT_START_US + i * 2_000);
        let mut c = Conn::new(
            client,
            server,
            (i as u32).wrapping_mul(7919),
            (i as u32).wrapping_mul(104_729),
            opts,
        );
        let mut v = c.handshake();
        let mut req = Vec::new();
        for k in 0..per_conn {
            req.extend(
                format!(
                    "GET /o/{i}/{k} HTTP/1.1\r\nHost: bench.test\r\nAccept-Encoding: gzip\r\n\r\n"
                )
                .bytes(),
            );
        }
        v.extend(c.send(Dir::C2S, &req, 1448));
        v.push(c.ack(Dir::S2C));
        for k in 0..per_conn as u64 {
            let (r, n, sha) = response(i, k, &mut rng, k + 1 == per_conn as u64);
            body_sha256.push(sha);
            for (j, p) in c.send(Dir::S2C, &r, 1448).into_iter().enumerate() {
                v.push(p);
                if j % 2 == 1 {
                    v.push(c.ack(Dir::C2S));
                }
            }
            bodies += 1;
            body_bytes += n;
        }
        v.push(c.ack(Dir::C2S));
        v.extend(close(&mut c));
        lists.push(v);
    }
    let pkts = merge_by_time(lists);
    let mut w = PcapWriter::new(1, 262_144);
    let mut last = 0;
    for p in &pkts {
        // Strictly increasing, as a capture is.
        last = p.ts_us.max(last + 1);
        w.write(last, &p.frame());
    }
    body_sha256.sort();
    HttpCapture {
        pcap: w.into_bytes(),
        bodies,
        body_bytes,
        body_sha256,
    }
}
