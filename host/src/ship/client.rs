//! A small synchronous S3 client: put, get and list objects of one bucket, signed with
//! SigV4 ([`super::sigv4`]), over ureq (with feature `ship-tls`: https through rustls and
//! the system's root certificates, or the CAs of `AWS_CA_BUNDLE`; without it, http only).
//!
//! Every failure is an [`S3Error`] that says in one line what is wrong and what to do (bad
//! credentials, a missing bucket, a refused endpoint); [`S3Error::transient`] says whether
//! trying again later can help. Retrying is the caller's: [`Backoff`] is the schedule.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::config::StoreConfig;
use super::sigv4::{amz_date, sha256_hex, uri_encode, Request, Signer, EMPTY_SHA256};

/// Largest object read back (a segment is at most 1 MiB; a listing page about 300 KiB).
const MAX_BODY: u64 = 64 << 20;
/// A 1 MiB segment over a slow uplink still fits; a stalled store does not hold the shipper
/// for ever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum S3Error {
    /// The store answered with an error status; `code` from its XML body when there is one.
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer: connection refused, DNS, TLS, timeout.
    Transport(String),
    /// The https endpoint's certificate is not trusted here: waiting does not mend it.
    Certificate(String),
}

impl S3Error {
    /// Whether the same request may succeed later without anyone changing anything.
    pub fn transient(&self) -> bool {
        match self {
            S3Error::Transport(_) => true,
            S3Error::Certificate(_) => false,
            S3Error::Status { status, code, .. } => {
                *status >= 500
                    || *status == 408
                    || *status == 429
                    || code == "SlowDown"
                    || code == "RequestTimeout"
            }
        }
    }

    /// One line for the user, naming the store and what to check.
    pub fn describe(&self, cfg: &StoreConfig, bucket: &str) -> String {
        match self {
            S3Error::Transport(e) => format!("cannot reach the store at {}: {e}", cfg.endpoint),
            S3Error::Certificate(e) => match &cfg.ca_bundle {
                Some(ca) => format!(
                    "the store at {} has a certificate the CAs in {} ({}) do not vouch for ({e}); give its CA there",
                    cfg.endpoint,
                    ca.path.display(),
                    ca.from
                ),
                None => format!(
                    "the store at {} has a certificate the system's roots do not vouch for ({e}); give its CA in AWS_CA_BUNDLE (a PEM file)",
                    cfg.endpoint
                ),
            },
            S3Error::Status {
                status,
                code,
                message,
            } => {
                let detail = if message.is_empty() {
                    format!("{code} (HTTP {status})")
                } else {
                    format!("{code}: {message} (HTTP {status})")
                };
                match code.as_str() {
                    "NoSuchBucket" => format!(
                        "bucket {bucket} does not exist at {} ({detail}); create it or fix the URL",
                        cfg.endpoint
                    ),
                    "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied"
                    | "InvalidToken" | "ExpiredToken" => format!(
                        "the store at {} refused the credentials for bucket {bucket} ({detail}); check the access key {} from {} and its rights on the bucket",
                        cfg.endpoint, cfg.access_key, cfg.credentials_from
                    ),
                    _ if *status == 403 => format!(
                        "the store at {} refused access to bucket {bucket} ({detail}); check the credentials from {}",
                        cfg.endpoint, cfg.credentials_from
                    ),
                    _ => format!("the store at {} answered {detail}", cfg.endpoint),
                }
            }
        }
    }
}

/// Retry delays: from `first`, doubling, never more than `max` (with jitter so that many taps
/// coming back together do not hit the store in step).
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos() as u64 | 1)
            ^ u64::from(std::process::id());
        Backoff {
            next: first,
            max,
            seed,
        }
    }

    /// The next delay: between 3/4 and 5/4 of the schedule's step.
    pub fn delay(&mut self) -> Duration {
        // xorshift: jitter only, no need for a real generator.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let ms = base.as_millis() as u64;
        Duration::from_millis(ms * 3 / 4 + self.seed % (ms / 2 + 1))
    }
}

/// A listed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// The client of one bucket.
pub struct Client {
    pub cfg: StoreConfig,
    pub bucket: String,
    /// https (plain http goes through [`super::http`]).
    #[cfg(feature = "ship-tls")]
    agent: ureq::Agent,
}

impl Client {
    /// Fails only on an unusable CA bundle (unreadable, no certificate in it).
    pub fn new(cfg: StoreConfig, bucket: &str) -> Result<Client, String> {
        #[cfg(feature = "ship-tls")]
        let agent = {
            // The bundle replaces the system's roots, as in the AWS CLI; only https reads it.
            let roots = match &cfg.ca_bundle {
                Some(ca) if cfg.endpoint.starts_with("https://") => load_bundle(ca)?,
                _ => ureq::tls::RootCerts::PlatformVerifier,
            };
            let builder = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(10)))
                .timeout_global(Some(REQUEST_TIMEOUT))
                .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
            builder.build().into()
        };
        Ok(Client {
            cfg,
            bucket: bucket.to_string(),
            #[cfg(feature = "ship-tls")]
            agent,
        })
    }

    /// The URL, the `host` value and the canonical path of `key` (empty: the bucket).
    fn target(&self, key: &str) -> (String, String, String) {
        let (scheme, authority) = self
            .cfg
            .endpoint
            .split_once("://")
            .unwrap_or(("https", self.cfg.endpoint.as_str()));
        let enc = uri_encode(key, true);
        if self.cfg.path_style {
            let path = if key.is_empty() {
                format!("/{}", self.bucket)
            } else {
                format!("/{}/{enc}", self.bucket)
            };
            (
                format!("{scheme}://{authority}{path}"),
                authority.to_string(),
                path,
            )
        } else {
            let host = format!("{}.{authority}", self.bucket);
            let path = format!("/{enc}");
            (format!("{scheme}://{host}{path}"), host, path)
        }
    }

    /// Sends one signed request; returns the status and the body.
    fn request(
        &self,
        method: &str,
        key: &str,
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Vec<u8>, S3Error> {
        let (url, host, path) = self.target(key);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let date = amz_date(now);
        let payload = if body.is_empty() {
            EMPTY_SHA256.to_string()
        } else {
            sha256_hex(body)
        };
        let mut headers = vec![
            ("host".to_string(), host),
            ("x-amz-content-sha256".to_string(), payload.clone()),
            ("x-amz-date".to_string(), date.clone()),
        ];
        if let Some(t) = &self.cfg.session_token {
            headers.push(("x-amz-security-token".to_string(), t.clone()));
        }
        let auth = Signer {
            access_key: &self.cfg.access_key,
            secret_key: &self.cfg.secret_key,
            region: &self.cfg.region,
        }
        .authorization(&Request {
            method,
            path: &path,
            query,
            headers: &headers,
            payload_sha256: &payload,
            amz_date: &date,
        });
        let mut q = String::new();
        if !query.is_empty() {
            let pairs: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", uri_encode(k, false), uri_encode(v, false)))
                .collect();
            q = format!("?{}", pairs.join("&"));
        }
        headers.push(("authorization".to_string(), auth));
        // headers[0] is host: each transport writes its own.
        let (status, bytes) = if url.starts_with("http://") {
            let authority = headers[0].1.clone();
            let r = super::http::request(
                method,
                &authority,
                &format!("{path}{q}"),
                &headers[1..],
                body,
                REQUEST_TIMEOUT,
                MAX_BODY,
            )
            .map_err(|e| S3Error::Transport(io_text(&e)))?;
            (r.status, r.body)
        } else {
            self.https(method, &format!("{url}{q}"), &headers[1..], body)?
        };
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let text = String::from_utf8_lossy(&bytes);
        let code = tag(&text, "Code").unwrap_or_else(|| match status {
            404 if key.is_empty() => "NoSuchBucket".into(),
            404 => "NoSuchKey".into(),
            403 => "AccessDenied".into(),
            _ => "Error".into(),
        });
        Err(S3Error::Status {
            status,
            code,
            message: tag(&text, "Message").unwrap_or_default(),
        })
    }

    /// One https request through ureq.
    #[cfg(feature = "ship-tls")]
    fn https(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), S3Error> {
        let transport = |e: ureq::Error| match certificate_error(&e) {
            Some(c) => S3Error::Certificate(c),
            None => S3Error::Transport(transport_text(&e)),
        };
        let result = if method == "PUT" {
            let mut r = self.agent.put(url);
            for (k, v) in headers {
                r = r.header(k.as_str(), v.as_str());
            }
            r.send(body)
        } else {
            let mut r = self.agent.get(url);
            for (k, v) in headers {
                r = r.header(k.as_str(), v.as_str());
            }
            r.call()
        };
        let mut resp = result.map_err(transport)?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(transport)?;
        Ok((status, bytes))
    }

    #[cfg(not(feature = "ship-tls"))]
    fn https(
        &self,
        _method: &str,
        url: &str,
        _headers: &[(String, String)],
        _body: &[u8],
    ) -> Result<(u16, Vec<u8>), S3Error> {
        Err(S3Error::Transport(format!(
            "{url}: this build has no TLS (cargo feature ship-tls)"
        )))
    }

    /// Stores `body` at `key` (the whole object; same key and bytes again is a no-op).
    pub fn put(&self, key: &str, body: &[u8]) -> Result<(), S3Error> {
        self.request("PUT", key, &[], body).map(|_| ())
    }

    pub fn get(&self, key: &str) -> Result<Vec<u8>, S3Error> {
        self.request("GET", key, &[], &[])
    }

    /// Every object whose key starts with `prefix` (ListObjectsV2, page by page).
    pub fn list(&self, prefix: &str) -> Result<Vec<Listed>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), prefix.to_string()),
            ];
            if let Some(t) = &token {
                q.push(("continuation-token".to_string(), t.clone()));
            }
            let body = self.request("GET", "", &q, &[])?;
            let text = String::from_utf8_lossy(&body);
            for c in blocks(&text, "Contents") {
                if let Some(key) = tag(c, "Key") {
                    let size = tag(c, "Size").and_then(|s| s.parse().ok()).unwrap_or(0);
                    out.push(Listed { key, size });
                }
            }
            let truncated = tag(&text, "IsTruncated").is_some_and(|t| t == "true");
            token = tag(&text, "NextContinuationToken");
            if !truncated || token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// A cheap request that fails the way uploads would: bad credentials, no bucket, no store.
    pub fn check(&self, prefix: &str) -> Result<(), S3Error> {
        let q = [
            ("list-type".to_string(), "2".to_string()),
            ("max-keys".to_string(), "1".to_string()),
            ("prefix".to_string(), prefix.to_string()),
        ];
        self.request("GET", "", &q, &[]).map(|_| ())
    }
}

/// An I/O error in a few words ("connection refused").
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => e.to_string(),
    }
}

/// The certificates of a CA bundle, or why it cannot be used.
#[cfg(feature = "ship-tls")]
fn load_bundle(ca: &super::config::CaBundle) -> Result<ureq::tls::RootCerts, String> {
    let what = format!("CA bundle {} ({})", ca.path.display(), ca.from);
    let pem = std::fs::read(&ca.path).map_err(|e| format!("{what}: cannot read it: {e}"))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{what}: not a PEM file of certificates: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "{what}: no certificate in it (a PEM file of CA certificates)"
        ));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// What rustls said when the endpoint's certificate did not check out (it reaches ureq's
/// error directly or inside an I/O error, depending on where the handshake failed).
#[cfg(feature = "ship-tls")]
fn certificate_error(e: &ureq::Error) -> Option<String> {
    let tls = match e {
        ureq::Error::Rustls(t) => Some(t),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    }?;
    matches!(
        tls,
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
    )
    .then(|| tls.to_string())
}

/// ureq's error in a few words.
#[cfg(feature = "ship-tls")]
fn transport_text(e: &ureq::Error) -> String {
    if let ureq::Error::Io(io) = e {
        return io_text(io);
    }
    e.to_string()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text of the first `<name>...</name>` in `xml`.
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(unescape(&xml[start..end]))
}

/// The insides of every `<name>...</name>` in `xml`.
fn blocks<'x>(xml: &'x str, name: &str) -> Vec<&'x str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(s) = rest.find(&open) {
        let inner = &rest[s + open.len()..];
        let Some(e) = inner.find(&close) else { break };
        out.push(&inner[..e]);
        rest = &inner[e + close.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_xml() {
        let x = "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>true</IsTruncated>\
                 <Contents><Key>a/b&amp;c/1</Key><Size>4096</Size></Contents>\
                 <Contents><Key>a/2</Key><Size>7</Size></Contents>\
                 <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>";
        let b = blocks(x, "Contents");
        assert_eq!(b.len(), 2);
        assert_eq!(tag(b[0], "Key").unwrap(), "a/b&c/1");
        assert_eq!(tag(b[1], "Size").unwrap(), "7");
        assert_eq!(tag(x, "NextContinuationToken").unwrap(), "tok");
        assert_eq!(tag("<a>", "Key"), None);
    }

    #[test]
    fn backoff_is_bounded() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = b.delay();
            assert!(last <= Duration::from_millis(2500), "{last:?}");
        }
        assert!(last >= Duration::from_millis(1500), "{last:?}");
    }
}
