//! A one-node Garage (S3-compatible object store) for the tests: its own temporary folder and
//! free ports on 127.0.0.1, layout applied, a key and buckets made with its own CLI; stopped
//! (SIGKILL) and started again on the same data to play an outage. No mock of the S3 API.
//!
//! The binary: `GARAGE_BIN`, else `garage` on the PATH, else `~/.cargo/bin/garage` (`./x deps`
//! installs it). Without one a test is skipped with a message, except under CI (`CI` set),
//! where it fails (`tcpflow_tests::cannot_run`): a fleet test that cannot run must not pass.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test key (Garage's format: "GK" and 24 hex digits, a 64-hex-digit secret).
pub const KEY_ID: &str = "GK0123456789abcdef01234567";
pub const SECRET: &str = "7a3c9e1f5b2d4086a8c6e4f20b1d3f5e7a9c1e3f5b7d9f1a3c5e7f9b1d3f5a7c";
pub const REGION: &str = "garage";

pub struct Garage {
    bin: PathBuf,
    pub dir: PathBuf,
    pub s3_port: u16,
    child: Option<Child>,
}

fn find_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GARAGE_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        let p = d.join("garage");
        if p.is_file() {
            return Some(p);
        }
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let p = home.join(".cargo/bin/garage");
    p.is_file().then_some(p)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Garage {
    /// A fresh one-node store with the test key, or `None` (outside CI) when there is no
    /// Garage binary.
    pub fn start(tag: &str) -> Option<Garage> {
        let Some(bin) = find_bin() else {
            tcpflow_tests::cannot_run(
                "no garage binary (GARAGE_BIN, PATH, ~/.cargo/bin): ./x deps installs it",
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("tcpflow-garage-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (s3, rpc, admin) = (free_port(), free_port(), free_port());
        let config = format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "c3ea8cb80333d04e208d136698b1a01ae370d463f0d435ab2177510b3478bf44"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "tcpflow-test-admin-token"
"#,
            d = dir.display()
        );
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let mut g = Garage {
            bin,
            dir,
            s3_port: s3,
            child: None,
        };
        g.run_server();
        let id = g.wait_for_id();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        g.cli(&["layout", "apply", "--version", "1"]);
        g.cli(&[
            "key",
            "import",
            KEY_ID,
            SECRET,
            "-n",
            "tcpflow-test",
            "--yes",
        ]);
        g.wait_for_s3();
        Some(g)
    }

    fn run_server(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .unwrap();
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.join("config.toml"))
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting garage");
        self.child = Some(child);
    }

    /// Runs `garage -c CONFIG ARGS`; panics with its output when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let o = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.join("config.toml"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "garage {args:?}: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        text
    }

    fn wait_for_id(&self) -> String {
        let end = Instant::now() + Duration::from_secs(60);
        // `node id` reads the key from disk; `status` needs the running node.
        loop {
            let st = Command::new(&self.bin)
                .arg("-c")
                .arg(self.dir.join("config.toml"))
                .arg("status")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if st.success() {
                break;
            }
            assert!(Instant::now() < end, "garage did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
        loop {
            let o = Command::new(&self.bin)
                .arg("-c")
                .arg(self.dir.join("config.toml"))
                .args(["node", "id", "-q"])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&o.stdout);
            if o.status.success() && out.len() >= 64 {
                return out[..64].to_string();
            }
            assert!(Instant::now() < end, "garage did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the S3 port accepts connections and answers.
    fn wait_for_s3(&self) {
        let end = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_err() {
            assert!(
                Instant::now() < end,
                "garage S3 port not open: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Makes bucket `name`, readable and writable by the test key.
    pub fn bucket(&self, name: &str) {
        self.cli(&["bucket", "create", name]);
        self.cli(&[
            "bucket", "allow", "--read", "--write", "--owner", name, "--key", KEY_ID,
        ]);
    }

    /// The S3 endpoint (AWS_ENDPOINT_URL).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The environment a tap or the analysis side needs to reach this store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", KEY_ID.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            // Nothing from the machine's own AWS setup.
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".to_string()),
            ("AWS_CONFIG_FILE", "/nonexistent".to_string()),
        ]
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.run_server();
        self.wait_for_s3();
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
