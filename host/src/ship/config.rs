//! Where the store is and who we are to it, found as the AWS command-line tools find them, so
//! a tap set up for `aws s3` works as it is (MinIO, Garage, Ceph, AWS S3):
//! - credentials: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), else
//!   the profile's keys in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
//!   `~/.aws/credentials`), else in the config file (`AWS_CONFIG_FILE`, `~/.aws/config`);
//! - profile: `AWS_PROFILE`, else `default` (`[profile NAME]` in the config file);
//! - region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, else `us-east-1`;
//! - endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url`, else
//!   AWS (`https://s3.REGION.amazonaws.com`, the bucket in the host name). A custom endpoint is
//!   addressed path-style (`ENDPOINT/BUCKET/KEY`), as self-hosted stores expect;
//! - https trust: `AWS_CA_BUNDLE`, else the profile's `ca_bundle`: a PEM file of the CAs to
//!   trust instead of the system's, as the AWS CLI takes it (a store behind a private CA);
//!   without one, the system's roots (on Linux `SSL_CERT_FILE` and `SSL_CERT_DIR` replace
//!   them, as OpenSSL's tools do).

use std::collections::HashMap;
use std::path::PathBuf;

/// `s3://bucket/prefix`: where objects go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl S3Url {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(s: &str) -> Result<S3Url, String> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{s}: not an s3:// URL (s3://BUCKET/PREFIX)"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        if bucket.len() < 3 || bucket.len() > 63 || !bucket.chars().all(ok) {
            return Err(format!(
                "{s}: bucket name {bucket:?} is not valid (3 to 63 lowercase letters, digits, '-', '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(format!("{s}: '.' and '..' are not allowed in the prefix"));
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// `prefix/` + `rest`, without a leading `/` when the prefix is empty.
    pub fn key(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{rest}", self.prefix)
        }
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Everything needed to sign and send requests.
#[derive(Clone)]
pub struct StoreConfig {
    /// `http://host:port` or `https://host` (no trailing `/`).
    pub endpoint: String,
    /// Path-style addressing (custom endpoints) or the bucket in the host name (AWS).
    pub path_style: bool,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
    /// Where the credentials came from, for messages.
    pub credentials_from: String,
    /// The CAs an https endpoint is checked against instead of the system's.
    pub ca_bundle: Option<CaBundle>,
}

/// A PEM file of CA certificates (`AWS_CA_BUNDLE` or the profile's `ca_bundle`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaBundle {
    pub path: PathBuf,
    /// Where the setting came from, for messages.
    pub from: String,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("StoreConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("credentials_from", &self.credentials_from)
            .field("ca_bundle", &self.ca_bundle)
            .finish()
    }
}

/// An INI file as the AWS tools write it: section -> key -> value.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut cur: Option<String> = None;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            cur = Some(name.trim().to_string());
            continue;
        }
        if let (Some(sec), Some((k, v))) = (&cur, l.split_once('=')) {
            out.entry(sec.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

/// Reads the environment through `env` (a test hands in its own).
pub fn resolve(env: &dyn Fn(&str) -> Option<String>) -> Result<StoreConfig, String> {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    let home = get("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| -> Option<PathBuf> {
        get(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let profile = get("AWS_PROFILE")
        .or_else(|| get("AWS_DEFAULT_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let read = |p: &Option<PathBuf>| -> Result<HashMap<String, HashMap<String, String>>, String> {
        match p {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(t) => Ok(parse_ini(&t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
                Err(e) => Err(format!("cannot read {}: {e}", p.display())),
            },
            None => Ok(HashMap::new()),
        }
    };
    let cred_path = file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let conf_path = file("AWS_CONFIG_FILE", "config");
    let creds = read(&cred_path)?;
    let conf = read(&conf_path)?;
    let conf_section = if profile == "default" {
        conf.get("default")
    } else {
        conf.get(&format!("profile {profile}"))
    };
    let conf_get = |k: &str| conf_section.and_then(|s| s.get(k)).cloned();

    let region = get("AWS_REGION")
        .or_else(|| get("AWS_DEFAULT_REGION"))
        .or_else(|| conf_get("region"))
        .unwrap_or_else(|| "us-east-1".into());
    let custom = get("AWS_ENDPOINT_URL_S3")
        .or_else(|| get("AWS_ENDPOINT_URL"))
        .or_else(|| conf_get("endpoint_url"));
    let (endpoint, path_style) = match custom {
        Some(e) => {
            let e = e.trim_end_matches('/').to_string();
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(format!(
                    "endpoint {e:?}: give a URL starting with http:// or https://"
                ));
            }
            (e, true)
        }
        None => (format!("https://s3.{region}.amazonaws.com"), false),
    };
    if endpoint.starts_with("https://") && !cfg!(feature = "ship-tls") {
        return Err(format!(
            "endpoint {endpoint}: this build has no TLS (cargo feature ship-tls); give an http:// endpoint (AWS_ENDPOINT_URL), e.g. the store on the LAN or a local TLS proxy"
        ));
    }

    let (access_key, secret_key, session_token, from) = match (
        get("AWS_ACCESS_KEY_ID"),
        get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(a), Some(s)) => (
            a,
            s,
            get("AWS_SESSION_TOKEN"),
            "the environment".to_string(),
        ),
        (Some(_), None) | (None, Some(_)) => {
            return Err("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither".into())
        }
        (None, None) => {
            let from_file = |sec: Option<&HashMap<String, String>>, path: &Option<PathBuf>| {
                let sec = sec?;
                Some((
                    sec.get("aws_access_key_id")?.clone(),
                    sec.get("aws_secret_access_key")?.clone(),
                    sec.get("aws_session_token").cloned(),
                    format!(
                        "profile {profile} in {}",
                        path.as_ref()
                            .map_or(String::new(), |p| p.display().to_string())
                    ),
                ))
            };
            from_file(creds.get(&profile), &cred_path)
                    .or_else(|| from_file(conf_section, &conf_path))
                    .ok_or_else(|| {
                        format!(
                            "no credentials for the store: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile {profile} keys in {}",
                            cred_path
                                .as_ref()
                                .map_or("~/.aws/credentials".into(), |p| p.display().to_string())
                        )
                    })?
        }
    };
    let ca_bundle = match get("AWS_CA_BUNDLE") {
        Some(p) => Some(CaBundle {
            path: PathBuf::from(p),
            from: "AWS_CA_BUNDLE".into(),
        }),
        None => conf_get("ca_bundle").map(|p| CaBundle {
            path: PathBuf::from(p),
            from: format!(
                "ca_bundle of profile {profile} in {}",
                conf_path
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string())
            ),
        }),
    };
    Ok(StoreConfig {
        endpoint,
        path_style,
        region,
        access_key,
        secret_key,
        session_token,
        credentials_from: from,
        ca_bundle,
    })
}

/// [`resolve`] over the process environment.
pub fn from_env() -> Result<StoreConfig, String> {
    resolve(&|k| std::env::var(k).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = S3Url::parse("s3://taps/site-a/").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("taps", "site-a"));
        assert_eq!(u.key("x/1"), "site-a/x/1");
        assert_eq!(S3Url::parse("s3://taps").unwrap().key("x"), "x");
        assert!(S3Url::parse("http://x/y").is_err());
        assert!(S3Url::parse("s3://A_B/y").is_err());
        assert!(S3Url::parse("s3://abc/../y").is_err());
    }

    #[test]
    fn environment_wins_then_profile_files() {
        let dir = std::env::temp_dir().join(format!("tcpflow-ship-cfg-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".aws")).unwrap();
        std::fs::write(
            dir.join(".aws/credentials"),
            "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n[lab]\naws_access_key_id=L\naws_secret_access_key=LS\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(".aws/config"),
            "[profile lab]\nregion = garage\nendpoint_url = http://127.0.0.1:3900/\nca_bundle = /etc/lab-ca.pem\n",
        )
        .unwrap();
        let home = dir.to_string_lossy().to_string();
        let env = |pairs: Vec<(&'static str, String)>| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        };
        let c = resolve(&env(vec![("HOME", home.clone())])).unwrap();
        assert_eq!(
            (c.access_key.as_str(), c.region.as_str()),
            ("D", "us-east-1")
        );
        assert_eq!(c.endpoint, "https://s3.us-east-1.amazonaws.com");
        assert!(!c.path_style);
        let c = resolve(&env(vec![
            ("HOME", home.clone()),
            ("AWS_PROFILE", "lab".into()),
        ]))
        .unwrap();
        assert_eq!((c.access_key.as_str(), c.secret_key.as_str()), ("L", "LS"));
        assert_eq!(
            (c.endpoint.as_str(), c.region.as_str()),
            ("http://127.0.0.1:3900", "garage")
        );
        assert!(c.path_style);
        let ca = c.ca_bundle.unwrap();
        assert_eq!(ca.path, PathBuf::from("/etc/lab-ca.pem"));
        assert!(
            ca.from.starts_with("ca_bundle of profile lab in "),
            "{}",
            ca.from
        );
        // The environment's bundle wins over the profile's.
        let c = resolve(&env(vec![
            ("HOME", home.clone()),
            ("AWS_PROFILE", "lab".into()),
            ("AWS_CA_BUNDLE", "/tmp/ca.pem".into()),
        ]))
        .unwrap();
        let ca = c.ca_bundle.unwrap();
        assert_eq!(
            (ca.path, ca.from.as_str()),
            (PathBuf::from("/tmp/ca.pem"), "AWS_CA_BUNDLE")
        );
        let c = resolve(&env(vec![
            ("HOME", home.clone()),
            ("AWS_ACCESS_KEY_ID", "E".into()),
            ("AWS_SECRET_ACCESS_KEY", "ES".into()),
            ("AWS_REGION", "r1".into()),
            ("AWS_ENDPOINT_URL", "http://store.example".into()),
        ]))
        .unwrap();
        assert_eq!((c.access_key.as_str(), c.region.as_str()), ("E", "r1"));
        assert_eq!(c.endpoint, "http://store.example");
        assert_eq!(c.ca_bundle, None);
        let e = resolve(&env(vec![("HOME", "/nonexistent".into())])).unwrap_err();
        assert!(e.contains("no credentials"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
