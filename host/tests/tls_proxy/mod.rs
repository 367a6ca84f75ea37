//! https in front of the real store: a throwaway CA (rcgen), a server certificate it signs for
//! 127.0.0.1 and localhost, and a TLS-terminating proxy (rustls) on 127.0.0.1 that passes each
//! connection's plain bytes to and from a backend port (Garage's S3 API). The command under
//! test sees an https store whose certificate only the test CA vouches for.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

/// A CA: its certificate (PEM) and what signs with it.
pub struct TestCa {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = p.self_signed(&key).unwrap().pem();
        TestCa {
            pem,
            issuer: Issuer::new(p, key),
        }
    }

    /// Writes the CA's certificate as a PEM bundle at `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.pem).unwrap();
    }
}

/// The proxy; stops accepting when dropped (connections open then end with their peers).
pub struct TlsProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl TlsProxy {
    /// Listens on 127.0.0.1 with a certificate from `ca`, forwarding to 127.0.0.1:`backend`.
    pub fn start(ca: &TestCa, backend: u16) -> TlsProxy {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "tcpflow test store");
        let cert = p.signed_by(&key, &ca.issuer).unwrap();
        // ring, as the command's ureq uses (rustls 0.23.48 deprecates it for lacking
        // post-quantum key exchange, which a test proxy does not need).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let config = config.clone();
                        std::thread::spawn(move || {
                            // A refused backend (the store down) closes the client's
                            // connection, as a proxy whose upstream is gone does.
                            if let Ok(back) = TcpStream::connect(("127.0.0.1", backend)) {
                                let _ = client.set_nonblocking(false);
                                let conn = ServerConnection::new(config).unwrap();
                                pump(client, conn, back);
                            }
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
        });
        TlsProxy { port, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Moves bytes both ways until either side closes: TLS records from `client` are decrypted
/// to `back`, `back`'s bytes are encrypted to `client`. poll(2) says which side has
/// something; the sockets stay blocking (a request or answer is written whole).
fn pump(mut client: TcpStream, mut conn: ServerConnection, mut back: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while conn.wants_write() {
            if conn.write_tls(&mut client).is_err() {
                return;
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: client.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: back.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two pollfds we own, for the length given.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 60_000) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[0].revents != 0 {
            match conn.read_tls(&mut client) {
                Ok(0) | Err(_) => {
                    let _ = back.shutdown(Shutdown::Write);
                    return;
                }
                Ok(_) => {}
            }
            if conn.process_new_packets().is_err() {
                // A failed handshake (the client does not trust us): send the alert, end.
                let _ = conn.write_tls(&mut client);
                return;
            }
            loop {
                match conn.reader().read(&mut buf) {
                    Ok(0) => {
                        let _ = back.shutdown(Shutdown::Write);
                        return;
                    }
                    Ok(k) => {
                        if back.write_all(&buf[..k]).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return,
                }
            }
        }
        if fds[1].revents != 0 {
            match back.read(&mut buf) {
                Ok(0) | Err(_) => {
                    conn.send_close_notify();
                    while conn.wants_write() {
                        if conn.write_tls(&mut client).is_err() {
                            break;
                        }
                    }
                    return;
                }
                Ok(k) => {
                    // rustls takes what its buffer limit allows: flush as it fills.
                    let mut off = 0;
                    while off < k {
                        match conn.writer().write(&buf[off..k]) {
                            Ok(w) => off += w,
                            Err(_) => return,
                        }
                        while conn.wants_write() {
                            if conn.write_tls(&mut client).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}
