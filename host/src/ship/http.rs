//! Plain-http requests, one connection each (`Connection: close`), over `std::net`.
//!
//! Written here for the field builds: an S3 store on the LAN (or TLS from a local proxy)
//! needs no TLS stack, and an HTTP library is about 300 KB of the Pi's 1 MiB budget; this is
//! a few KB. It speaks what S3 answers: a status line, headers, and a body framed by
//! `Content-Length`, chunked, or the end of the connection. https goes through ureq (feature
//! `ship-tls`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest response head accepted.
const MAX_HEAD: usize = 64 << 10;

/// A response: status and body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends `method` to `http://authority/path_query` with `headers` (Host and Content-Length
/// are added) and `body`; reads at most `max_body` bytes of answer.
pub fn request(
    method: &str,
    authority: &str,
    path_query: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
    max_body: u64,
) -> io::Result<Response> {
    let addr_text = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    let mut stream = None;
    for a in addr_text.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut s = stream.ok_or(last)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let _ = s.set_nodelay(true);
    let mut head = format!("{method} {path_query} HTTP/1.1\r\nHost: {authority}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()?;
    read_response(BufReader::new(s), method == "HEAD", max_body)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad HTTP answer: {msg}"),
    )
}

fn read_line<R: BufRead>(r: &mut R, budget: &mut usize) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64)
        .read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the store closed the connection",
        ));
    }
    *budget = budget.saturating_sub(n);
    if !line.ends_with(b"\n") {
        return Err(bad("header too long"));
    }
    while line.last().is_some_and(|&c| c == b'\n' || c == b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Parses a response from `r`.
pub fn read_response<R: BufRead>(mut r: R, head_only: bool, max_body: u64) -> io::Result<Response> {
    let mut budget = MAX_HEAD;
    let mut status_line = read_line(&mut r, &mut budget)?;
    let mut status = parse_status(&status_line)?;
    // 100 Continue (never asked for, but allowed): the real answer follows.
    while status == 100 {
        while !read_line(&mut r, &mut budget)?.is_empty() {}
        status_line = read_line(&mut r, &mut budget)?;
        status = parse_status(&status_line)?;
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    loop {
        let l = read_line(&mut r, &mut budget)?;
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(bad("header without ':'"));
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            length = Some(v.parse().map_err(|_| bad("Content-Length"))?);
        } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if head_only || status == 204 || status == 304 {
        return Ok(Response { status, body });
    }
    if chunked {
        loop {
            let size_line = read_line(&mut r, &mut budget)?;
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let n = u64::from_str_radix(hex, 16).map_err(|_| bad("chunk size"))?;
            if n == 0 {
                break;
            }
            if body.len() as u64 + n > max_body {
                return Err(bad("answer too long"));
            }
            let at = body.len();
            body.resize(at + n as usize, 0);
            r.read_exact(&mut body[at..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = length {
        if n > max_body {
            return Err(bad("answer too long"));
        }
        body.resize(n as usize, 0);
        r.read_exact(&mut body)?;
    } else {
        r.take(max_body + 1).read_to_end(&mut body)?;
        if body.len() as u64 > max_body {
            return Err(bad("answer too long"));
        }
    }
    Ok(Response { status, body })
}

fn parse_status(line: &str) -> io::Result<u16> {
    let mut it = line.split_whitespace();
    match (it.next(), it.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => {
            code.parse().map_err(|_| bad("status code"))
        }
        _ => Err(bad("status line")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framings() {
        let r = read_response(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloXX"[..],
            false,
            100,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = read_response(
            &b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"[..],
            false,
            100,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abcde"[..]));
        let r = read_response(&b"HTTP/1.0 200 OK\r\n\r\nuntil the end"[..], false, 100).unwrap();
        assert_eq!(r.body, b"until the end");
        let r = read_response(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"[..],
            false,
            100,
        )
        .unwrap();
        assert_eq!(r.status, 204);
    }

    #[test]
    fn bad_answers_are_errors() {
        for bad in [
            &b""[..],
            b"garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        ] {
            assert!(read_response(bad, false, 100).is_err());
        }
    }
}
