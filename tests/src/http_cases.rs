//! HTTP cases for `-e http`: captures written to testdata/ like the others (their flow files
//! are expected as usual), plus the bodies a correct carver writes for each and what its
//! report record says (checked by tests/tests/http_testdata.rs).

use std::net::SocketAddr;

use crate::cases::{binary, close, text, Case};
use crate::conn::{Conn, LinkOpts, Pkt};
use crate::link::Dir;

const C2S: Dir = Dir::C2S;
const S2C: Dir = Dir::S2C;

/// One body file a correct carver writes.
#[derive(Debug, Clone)]
pub struct Body {
    /// File name in the output folder.
    pub name: String,
    pub data: Vec<u8>,
    /// `None`: complete; else a piece of the record's `reason`.
    pub incomplete: Option<&'static str>,
}

/// A case with its expected bodies; `args` are extra flags for the run.
#[derive(Debug, Clone)]
pub struct HttpCase {
    pub case: Case,
    pub bodies: Vec<Body>,
    pub args: Vec<&'static str>,
    /// Counters of the report's `scan` group and the least value each must have.
    pub counters: Vec<(&'static str, u64)>,
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// tcpflow's flow file name for a direction.
pub fn flow_name(c: &Conn, dir: Dir) -> String {
    let (a, b) = c.endpoints(dir);
    let part = |s: SocketAddr| match s.ip() {
        std::net::IpAddr::V4(v) => {
            let o = v.octets();
            format!(
                "{:03}.{:03}.{:03}.{:03}.{:05}",
                o[0],
                o[1],
                o[2],
                o[3],
                s.port()
            )
        }
        std::net::IpAddr::V6(v) => format!("{v}.{:05}", s.port()),
    };
    format!("{}-{}", part(a), part(b))
}

fn body(c: &Conn, dir: Dir, n: u32, ext: &str, data: Vec<u8>) -> Body {
    Body {
        name: format!("{}-HTTPBODY-{n:03}{ext}", flow_name(c, dir)),
        data,
        incomplete: None,
    }
}

fn conn(port: u16, isn: u32) -> Conn {
    Conn::new(
        sa(&format!("10.0.18.1:{port}")),
        sa("10.0.18.2:80"),
        isn,
        isn ^ 0x3c3c_0000,
        LinkOpts::default(),
    )
}

fn resp(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\n{headers}\r\n").into_bytes();
    r.extend_from_slice(body);
    r
}

/// Deflate level 6, flate2's `Compression::default()`. The three wrappers are what flate2's
/// encoders write on miniz_oxide, made here so that the testdata's bytes do not depend on
/// flate2's backend, which cargo unifies across the workspace.
const LEVEL: u8 = 6;

fn gzip(b: &[u8]) -> Vec<u8> {
    gzip_at(b, LEVEL)
}

/// A gzip member as flate2's `GzEncoder` writes it at `level`: no name, time 0, OS 255.
pub(crate) fn gzip_at(b: &[u8], level: u8) -> Vec<u8> {
    let xfl = match level {
        9.. => 2,
        0 | 1 => 4,
        _ => 0,
    };
    let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255];
    g.extend(miniz_oxide::deflate::compress_to_vec(b, level));
    g.extend(crc32fast::hash(b).to_le_bytes());
    g.extend((b.len() as u32).to_le_bytes());
    g
}

fn zlib(b: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(b, LEVEL)
}

fn raw_deflate(b: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(b, LEVEL)
}

/// A brotli stream of uncompressed meta-blocks (RFC 7932 section 9.2), which any brotli
/// decoder reads: a window-size bit, then per block ISLAST=0, MNIBBLES=4, MLEN-1, ISUNCOMPRESSED,
/// padding, the bytes; then an empty last block.
fn brotli_stored(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut first = true;
    for chunk in b.chunks(65536) {
        let l = (chunk.len() - 1) as u32;
        // Bits (LSB first): [WBITS=0] ISLAST=0, MNIBBLES=00, MLEN-1 (16), ISUNCOMPRESSED=1.
        let (bits, n) = if first {
            ((l << 4) | (1 << 20), 21)
        } else {
            ((l << 3) | (1 << 19), 20)
        };
        first = false;
        let bytes = (n as usize).div_ceil(8);
        for i in 0..bytes {
            out.push((bits >> (8 * i)) as u8);
        }
        out.extend_from_slice(chunk);
    }
    // ISLAST=1, ISLASTEMPTY=1.
    out.push(0b11);
    out
}

fn zstd(b: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(b, ruzstd::encoding::CompressionLevel::Fastest)
}

fn chunked(b: &[u8], size: usize) -> Vec<u8> {
    let mut o = Vec::new();
    for (i, c) in b.chunks(size).enumerate() {
        if i % 2 == 0 {
            o.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        } else {
            o.extend_from_slice(format!("{:X};ext=\"v\"\r\n", c.len()).as_bytes());
        }
        o.extend_from_slice(c);
        o.extend_from_slice(b"\r\n");
    }
    o.extend_from_slice(b"0\r\nX-Trailer: done\r\n\r\n");
    o
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n").into_bytes()
}

/// Handshake, the client's bytes, the server's bytes, close.
fn talk(c: &mut Conn, req: &[u8], rsp: &[u8], mss: usize) -> Vec<Pkt> {
    let mut v = c.handshake();
    v.extend(c.send(C2S, req, mss));
    v.push(c.ack(S2C));
    v.extend(c.send(S2C, rsp, mss));
    v.push(c.ack(C2S));
    v.extend(close(c));
    v
}

fn framing() -> HttpCase {
    let mut c = conn(41000, 0x1000);
    let (a, b, d) = (text(180, 3000), text(181, 5000), binary(182, 2000));
    let mut rsp = resp(
        "200 OK",
        &format!("Content-Type: text/html\r\nContent-Length: {}\r\n", a.len()),
        &a,
    );
    rsp.extend(resp(
        "200 OK",
        "Content-Type: text/css\r\nTransfer-Encoding: chunked\r\n",
        &chunked(&b, 700),
    ));
    rsp.extend(resp(
        "200 OK",
        "Content-Type: image/png\r\nConnection: close\r\n",
        &d,
    ));
    let req = [get("/a"), get("/b"), get("/c")].concat();
    let v = talk(&mut c, &req, &rsp, 536);
    let bodies = vec![
        body(&c, S2C, 1, ".html", a),
        body(&c, S2C, 2, ".css", b),
        body(&c, S2C, 3, ".png", d),
    ];
    HttpCase {
        case: Case::new("http-framing", "-e http: Content-Length, chunked (extensions, trailer) and close-delimited bodies, three pipelined requests", vec![c], v),
        bodies,
        args: vec![],
        counters: vec![("http_bodies", 3)],
    }
}

fn nobody() -> HttpCase {
    let mut c = conn(41001, 0x2000);
    let up = binary(183, 1500);
    let a = text(184, 800);
    let mut req = format!("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\nGET /m HTTP/1.1\r\nHost: x\r\n\r\nPOST /up HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n", up.len()).into_bytes();
    req.extend_from_slice(&up);
    req.extend(get("/after"));
    let mut rsp = resp(
        "200 OK",
        "Content-Type: text/html\r\nContent-Length: 1000\r\n",
        b"",
    );
    rsp.extend(resp("204 No Content", "", b""));
    rsp.extend(resp("304 Not Modified", "Content-Length: 77\r\n", b""));
    rsp.extend(resp("201 Created", "Content-Length: 0\r\n", b""));
    rsp.extend(resp(
        "200 OK",
        &format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\n",
            a.len()
        ),
        &a,
    ));
    let v = talk(&mut c, &req, &rsp, 1000);
    let bodies = vec![body(&c, C2S, 1, ".bin", up), body(&c, S2C, 1, ".txt", a)];
    HttpCase {
        case: Case::new("http-nobody", "-e http: no body after HEAD, 204, 304 and Content-Length 0; a POST upload; the GET after it, pipelined", vec![c], v),
        bodies,
        args: vec![],
        counters: vec![("http_bodies", 2), ("http_messages", 10)],
    }
}

fn codings() -> HttpCase {
    let mut c = conn(41002, 0x3000);
    let t: Vec<Vec<u8>> = (0..7)
        .map(|i| text(190 + i, 20_000 + 100 * i as usize))
        .collect();
    let mut rsp = Vec::new();
    let g = gzip(&t[0]);
    rsp.extend(resp(
        "200 OK",
        &format!(
            "Content-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n",
            g.len()
        ),
        &g,
    ));
    rsp.extend(resp(
        "200 OK",
        "Content-Type: text/html\r\nContent-Encoding: x-gzip\r\nTransfer-Encoding: chunked\r\n",
        &chunked(&gzip(&t[1]), 333),
    ));
    let z = zlib(&t[2]);
    rsp.extend(resp(
        "200 OK",
        &format!(
            "Content-Type: text/plain\r\nContent-Encoding: deflate\r\nContent-Length: {}\r\n",
            z.len()
        ),
        &z,
    ));
    let r = raw_deflate(&t[3]);
    rsp.extend(resp(
        "200 OK",
        &format!(
            "Content-Type: text/plain\r\nContent-Encoding: deflate\r\nContent-Length: {}\r\n",
            r.len()
        ),
        &r,
    ));
    let b = brotli_stored(&t[4]);
    rsp.extend(resp(
        "200 OK",
        &format!(
            "Content-Type: text/plain\r\nContent-Encoding: br\r\nContent-Length: {}\r\n",
            b.len()
        ),
        &b,
    ));
    let z = zstd(&t[5]);
    rsp.extend(resp(
        "200 OK",
        &format!(
            "Content-Type: text/plain\r\nContent-Encoding: zstd\r\nContent-Length: {}\r\n",
            z.len()
        ),
        &z,
    ));
    // Stacked: gzip applied twice, the second as a transfer coding before chunked.
    rsp.extend(resp("200 OK", "Content-Type: text/plain\r\nContent-Encoding: gzip\r\nTransfer-Encoding: gzip, chunked\r\n", &chunked(&gzip(&gzip(&t[6])), 1000)));
    let req: Vec<u8> = (0..7).flat_map(|i| get(&format!("/z{i}"))).collect();
    let v = talk(&mut c, &req, &rsp, 1448);
    let exts = [".html", ".html", ".txt", ".txt", ".txt", ".txt", ".txt"];
    let bodies = t
        .iter()
        .enumerate()
        .map(|(i, d)| body(&c, S2C, i as u32 + 1, exts[i], d.clone()))
        .collect();
    HttpCase {
        case: Case::new("http-codings", "-e http: gzip, x-gzip (chunked), deflate as zlib and raw, br, zstd, and gzip stacked as content and transfer coding", vec![c], v),
        bodies,
        args: vec![],
        counters: vec![("http_bodies", 7)],
    }
}

fn continue_upgrade() -> HttpCase {
    let mut c = conn(41003, 0x4000);
    let up = text(200, 3000);
    let mut v = c.handshake();
    v.extend(c.send(C2S, format!("PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", up.len()).as_bytes(), 1448));
    v.extend(c.send(S2C, b"HTTP/1.1 100 Continue\r\n\r\n", 1448));
    v.extend(c.send(C2S, &up, 1000));
    let ok = text(201, 100);
    v.extend(c.send(
        S2C,
        &resp(
            "200 OK",
            &format!(
                "Content-Type: text/plain\r\nContent-Length: {}\r\n",
                ok.len()
            ),
            &ok,
        ),
        1448,
    ));
    v.extend(c.send(
        C2S,
        b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        1448,
    ));
    v.extend(c.send(
        S2C,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        1448,
    ));
    // WebSocket frames, then bytes that look like HTTP: not parsed any more.
    v.extend(c.send(S2C, &[0x81, 0x05, b'h', b'e', b'l', b'l', b'o'], 100));
    v.extend(c.send(S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 100));
    v.extend(c.send(
        C2S,
        b"GET /not-http HTTP/1.1\r\nContent-Length: 2\r\n\r\nzz",
        100,
    ));
    v.push(c.ack(S2C));
    v.extend(close(&mut c));
    let bodies = vec![body(&c, C2S, 1, ".txt", up), body(&c, S2C, 1, ".txt", ok)];
    HttpCase {
        case: Case::new("http-continue-upgrade", "-e http: a PUT with Expect: 100-continue, then an Upgrade to websocket: HTTP parsing ends, the rest is left to the flow files", vec![c], v),
        bodies,
        args: vec![],
        counters: vec![("http_upgrades", 1), ("http_bodies", 2)],
    }
}

fn gap() -> HttpCase {
    let mut c = conn(41004, 0x5000);
    let a = binary(210, 6000);
    let g = text(211, 30_000);
    let gz = gzip(&g);
    let mut rsp = resp(
        "200 OK",
        &format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
            a.len()
        ),
        &a,
    );
    let head_len = rsp.len() - a.len();
    rsp.extend(resp(
        "200 OK",
        &format!(
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n",
            gz.len()
        ),
        &gz,
    ));
    let mut v = c.handshake();
    v.extend(c.send(C2S, &[get("/a"), get("/b")].concat(), 1448));
    v.push(c.ack(S2C));
    // Segments of 1000 bytes: the third (stream bytes 2000..3000) never arrives.
    let s = c.send(S2C, &rsp, 1000);
    v.extend(
        s.iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, p)| p.clone()),
    );
    v.push(c.ack(C2S));
    v.extend(close(&mut c));
    let mut holed = a.clone();
    for b in &mut holed[2000 - head_len..3000 - head_len] {
        *b = 0;
    }
    let mut b1 = body(&c, S2C, 1, ".bin", holed);
    b1.incomplete = Some("gaps");
    let b2 = body(&c, S2C, 2, ".txt", g);
    HttpCase {
        case: Case::new("http-gap", "-e http: a body with a lost segment is written with a hole at its offset and marked incomplete; the next (gzip) body is whole", vec![c], v),
        bodies: vec![b1, b2],
        args: vec![],
        counters: vec![("http_missing_bytes", 1000), ("http_bodies_incomplete", 1)],
    }
}

fn bomb() -> HttpCase {
    let mut c = conn(41005, 0x6000);
    let gz = gzip(&vec![0u8; 8 << 20]);
    let rsp = resp(
        "200 OK",
        &format!(
            "Content-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n",
            gz.len()
        ),
        &gz,
    );
    let v = talk(&mut c, &get("/bomb"), &rsp, 1448);
    let mut b = body(&c, S2C, 1, ".txt", vec![0u8; 1 << 20]);
    b.incomplete = Some("http-max-body");
    HttpCase {
        case: Case::new("http-bomb", "-e http --http-max-body 1M: 8 MiB of zeros in an 8 KiB gzip body; 1 MiB is written, the rest counted", vec![c], v),
        bodies: vec![b],
        args: vec!["--http-max-body", "1M"],
        counters: vec![("http_bodies_capped", 1), ("http_capped_bytes", 6000)],
    }
}

fn hostile() -> HttpCase {
    // A head of 70,000 bytes (no end of line for most of it).
    let mut a = conn(41006, 0x7000);
    let mut huge = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    huge.extend(vec![b'a'; 70_000]);
    huge.extend_from_slice(b"\r\nContent-Length: 5\r\n\r\nhello");
    let mut v = talk(&mut a, &get("/huge"), &huge, 1448);
    // A bad chunk size after a good chunk: the good bytes are kept, the body marked.
    let mut b = conn(41007, 0x8000);
    let good = text(220, 500);
    let mut bad = resp(
        "200 OK",
        "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n",
        format!("{:x}\r\n", good.len()).as_bytes(),
    );
    bad.extend_from_slice(&good);
    bad.extend_from_slice(b"\r\nzz\r\nmore\r\n0\r\n\r\n");
    v.extend(talk(&mut b, &get("/bad"), &bad, 1448));
    // Heads with bare LF line ends, and a Content-Length that does not parse.
    let mut d = conn(41008, 0x9000);
    let lf = text(221, 300);
    let mut r = format!(
        "HTTP/1.0 200 OK\nContent-Type: text/plain\nContent-Length: {}\n\n",
        lf.len()
    )
    .into_bytes();
    r.extend_from_slice(&lf);
    r.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\nignored");
    v.extend(talk(&mut d, &[get("/lf"), get("/cl")].concat(), &r, 1448));
    let mut bb = body(&b, S2C, 1, ".txt", good);
    bb.incomplete = Some("framing");
    let bodies = vec![bb, body(&d, S2C, 1, ".txt", lf)];
    HttpCase {
        case: Case::new("http-hostile", "-e http: a 70,000-byte head, a bad chunk size, bare LF line ends and a bad Content-Length: no panic, good bytes kept, each counted", vec![a, b, d], v),
        bodies,
        args: vec![],
        counters: vec![("http_heads_too_large", 1), ("http_framing_errors", 1), ("http_bad_heads", 1)],
    }
}

/// Every HTTP case.
pub fn all() -> Vec<HttpCase> {
    vec![
        framing(),
        nobody(),
        codings(),
        continue_upgrade(),
        gap(),
        bomb(),
        hostile(),
    ]
}

/// The cases' captures, for [`crate::cases::all`].
pub fn cases() -> Vec<Case> {
    all().into_iter().map(|h| h.case).collect()
}
