//! Privileges and the file system: `-U` drops root after the input is open, `-z` chroots,
//! names never leave the output folder, a planted symlink is never followed, files are 0644
//! (0600 with `--private`). The `-U`/`-z` tests need root (CI runs as root) and skip without.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn basic() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/basic/input.pcap")
}

const C2S: &str = "010.000.000.001.40000-010.000.000.002.00080";

fn flow_files(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "report.xml")
        .collect()
}

#[test]
fn files_are_0644_and_0600_with_private() {
    let d = tmp("modes");
    let input = basic();
    for (flag, want) in [(None, 0o644), (Some("--private"), 0o600)] {
        let out = d.join(format!("out{want:o}"));
        let mut args = vec![
            "-q",
            "-r",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(flag);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let files = flow_files(&out);
        assert_eq!(files.len(), 2);
        for f in files.iter().chain([&out.join("report.xml")]) {
            let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode & !want,
                0,
                "{} is {mode:o}, want at most {want:o}",
                f.display()
            );
        }
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_symlink_planted_in_the_output_folder_is_not_followed() {
    let d = tmp("symlink");
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let victim = d.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, out.join(C2S)).unwrap();
    let o = run(&[
        "-q",
        "-r",
        basic().to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(101), "panic: {}", stderr(&o));
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious",
        "followed the planted link"
    );
    assert!(std::fs::symlink_metadata(out.join(C2S))
        .unwrap()
        .file_type()
        .is_symlink());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn templates_cannot_leave_the_output_folder() {
    let d = tmp("escape");
    let out = d.join("out");
    for t in [
        "../%A.%a-%B.%b",
        "/tmp/%A.%a",
        "x/../../%A",
        "%A/../../../y",
    ] {
        let o = run(&[
            "-q",
            "-r",
            basic().to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-T",
            t,
        ]);
        assert_ne!(o.status.code(), Some(0), "template {t} accepted");
        assert_ne!(o.status.code(), Some(101), "panic: {}", stderr(&o));
    }
    // Nothing was written beside the output folder.
    let beside: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(beside.iter().all(|n| n == "out"), "{beside:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A throwaway system user, removed on drop.
struct User(String);

impl User {
    fn new() -> Option<User> {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("not root: skipped");
            return None;
        }
        let name = format!("tcpflowt{}", std::process::id() % 100_000);
        let ok = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("useradd failed: skipped");
            return None;
        }
        Some(User(name))
    }

    fn uid(&self) -> u32 {
        let o = Command::new("id").args(["-u", &self.0]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

#[test]
fn root_is_dropped_to_the_user_after_the_input_is_open() {
    let Some(user) = User::new() else { return };
    let d = tmp("drop");
    // The input is readable by root only: it must be opened before the drop.
    let input = d.join("input.pcap");
    std::fs::copy(basic(), &input).unwrap();
    std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = d.join("out");
    let o = run(&[
        "-q",
        "-r",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-U",
        &user.0,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let files = flow_files(&out);
    assert_eq!(files.len(), 2);
    for f in &files {
        assert_eq!(
            std::fs::metadata(f).unwrap().uid(),
            user.uid(),
            "{} not written as the user",
            f.display()
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn chroot_then_drop_writes_inside_the_jail() {
    let Some(user) = User::new() else { return };
    let d = tmp("jail");
    let jail = d.join("jail");
    std::fs::create_dir_all(&jail).unwrap();
    let o = run(&[
        "-q",
        "-r",
        basic().to_str().unwrap(),
        "-z",
        jail.to_str().unwrap(),
        "-U",
        &user.0,
        "-o",
        "/out",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let files = flow_files(&jail.join("out"));
    assert_eq!(files.len(), 2, "flows inside the jail");
    for f in &files {
        assert_eq!(std::fs::metadata(f).unwrap().uid(), user.uid());
    }
    assert!(
        !Path::new("/out").join(C2S).exists(),
        "wrote outside the jail"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
