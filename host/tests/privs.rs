//! Privileges and the file system: `-U` drops root after the input is open, `-z` chroots,
//! names never leave the output folder, a planted symlink is never followed, files are 0644
//! (0600 with `--private`). The `-U`/`-z` tests need root (CI runs as root): they skip
//! without it, and fail without it when `CI` is set.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn basic() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/basic/input.pcap")
}

/// `tcpflow -q -r <basic> ARGS..`.
fn run_basic(args: &[&str]) -> std::process::Output {
    let input = basic();
    let mut all = vec!["-q", "-r", input.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all)
}

const C2S: &str = "010.000.000.001.40000-010.000.000.002.00080";

fn flow_files(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            !["report.xml", "report.html"].contains(&p.file_name().unwrap().to_str().unwrap())
        })
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
    let o = run_basic(&["-o", out.to_str().unwrap()]);
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
        let o = run_basic(&["-o", out.to_str().unwrap(), "-T", t]);
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
            tcpflow_tests::cannot_run("not root: cannot add a system user");
            return None;
        }
        // One user per test: tests run in parallel threads of one process.
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tcpflowt{}x{n}", std::process::id() % 100_000);
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
        assert!(ok, "useradd {name} failed");
        Some(User(name))
    }

    fn uid(&self) -> u32 {
        self.id("-u")
    }

    fn gid(&self) -> u32 {
        self.id("-g")
    }

    fn id(&self, which: &str) -> u32 {
        let o = Command::new("id").args([which, &self.0]).output().unwrap();
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
    let o = run_basic(&["-z", jail.to_str().unwrap(), "-U", &user.0, "-o", "/out"]);
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

/// A root-owned file beside the output folder that a hostile user would like to get.
struct Victim {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Victim {
    fn new(dir: &Path, name: &str) -> Victim {
        Victim::with(dir, name, b"precious".to_vec())
    }

    fn with(dir: &Path, name: &str, bytes: Vec<u8>) -> Victim {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Victim { path, bytes }
    }

    /// Same bytes, still root's, same mode.
    fn check(&self, what: &str) -> Result<(), String> {
        let md = std::fs::metadata(&self.path).map_err(|e| format!("{what}: {e}"))?;
        if std::fs::read(&self.path).unwrap() != self.bytes {
            return Err(format!("{what}: {} was written", self.path.display()));
        }
        if (md.uid(), md.gid()) != (0, 0) {
            return Err(format!("{what}: victim chowned to {}", md.uid()));
        }
        if md.permissions().mode() & 0o777 != 0o600 {
            return Err(format!("{what}: mode changed"));
        }
        Ok(())
    }

    fn untouched(&self, what: &str) {
        if let Err(e) = self.check(what) {
            panic!("{e}");
        }
    }
}

/// An output folder owned by `user`, who planted things in it.
fn hostile_folder(dir: &Path, user: &User) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::os::unix::fs::chown(dir, Some(user.uid()), Some(user.gid())).unwrap();
    dir.to_path_buf()
}

fn plant_link(target: &Path, at: &Path, user: &User) {
    std::os::unix::fs::symlink(target, at).unwrap();
    std::os::unix::fs::lchown(at, Some(user.uid()), Some(user.gid())).unwrap();
}

#[test]
fn a_hostile_output_folder_gets_no_root_file() {
    let Some(user) = User::new() else { return };
    let d = tmp("hostile");
    let input = basic();
    let input = input.to_str().unwrap();
    // Each case: what is planted, the flags that write there.
    type Plant = fn(&Path, &Victim, &User) -> Vec<String>;
    let cases: Vec<(&str, Plant)> = vec![
        ("report.xml symlink", |out, v, u| {
            plant_link(&v.path, &out.join("report.xml"), u);
            vec![]
        }),
        ("-X symlink", |out, v, u| {
            plant_link(&v.path, &out.join("x.xml"), u);
            vec!["-X".into(), out.join("x.xml").to_str().unwrap().into()]
        }),
        ("--report-json symlink", |out, v, u| {
            plant_link(&v.path, &out.join("r.json"), u);
            vec![
                "--report-json".into(),
                out.join("r.json").to_str().unwrap().into(),
            ]
        }),
        ("--spool symlink", |out, v, u| {
            plant_link(&v.path, &out.join("s.spool"), u);
            vec![
                "--spool".into(),
                out.join("s.spool").to_str().unwrap().into(),
                "--spool-size".into(),
                "1M".into(),
            ]
        }),
        ("-w symlink", |out, v, u| {
            plant_link(&v.path, &out.join("u.pcap"), u);
            vec!["-w".into(), out.join("u.pcap").to_str().unwrap().into()]
        }),
        ("report.xml hard link", |out, v, _| {
            std::fs::hard_link(&v.path, out.join("report.xml")).unwrap();
            vec![]
        }),
        ("dangling report.xml symlink", |out, v, u| {
            std::fs::remove_file(&v.path).unwrap();
            plant_link(&v.path, &out.join("report.xml"), u);
            vec![]
        }),
    ];
    let mut failures = Vec::new();
    // As root with -U (the files are the user's), and as root without it (the user only
    // owns the folder).
    let runs = [true, false];
    for (i, (with_u, (what, plant))) in runs
        .iter()
        .flat_map(|u| cases.iter().map(move |c| (*u, c)))
        .enumerate()
    {
        let what = &format!("{what}{}", if with_u { " with -U" } else { "" });
        let case = d.join(format!("case{i}"));
        std::fs::create_dir_all(&case).unwrap();
        // A blank file is one a spool would take as its own.
        let victim = if what.contains("spool") {
            Victim::with(&case, "victim", vec![0; 64 * 1024])
        } else {
            Victim::new(&case, "victim")
        };
        let out = hostile_folder(&case.join("out"), &user);
        let extra = plant(&out, &victim, &user);
        let mut args = vec!["-q", "-r", input, "-o", out.to_str().unwrap()];
        if with_u {
            args.extend(["-U", &user.0]);
        }
        args.extend(extra.iter().map(String::as_str));
        let o = run(&args);
        assert_ne!(o.status.code(), Some(101), "{what}: panic: {}", stderr(&o));
        if what.starts_with("dangling") {
            if std::fs::symlink_metadata(&victim.path).is_ok() {
                failures.push(format!("{what}: created the link's target"));
            }
        } else if let Err(e) = victim.check(what) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_existing_report_is_not_given_to_the_user() {
    let Some(user) = User::new() else { return };
    let d = tmp("nochown");
    let out = hostile_folder(&d.join("out"), &user);
    // Left by an earlier run as root: the user must not get it.
    std::fs::write(out.join("report.xml"), b"earlier report").unwrap();
    let o = run_basic(&["-o", out.to_str().unwrap(), "-U", &user.0]);
    assert_ne!(o.status.code(), Some(101), "panic: {}", stderr(&o));
    let md = std::fs::metadata(out.join("report.xml")).unwrap();
    assert_eq!(md.uid(), 0, "an existing root file was chowned to the user");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_hostile_folder_in_the_jail_gets_no_root_file_with_z() {
    let Some(user) = User::new() else { return };
    let d = tmp("hostjail");
    let victim = Victim::new(&d, "victim");
    let jail = d.join("jail");
    std::fs::create_dir_all(&jail).unwrap();
    let out = hostile_folder(&jail.join("out"), &user);
    // Absolute: resolved outside the jail by whoever opens it before the chroot.
    plant_link(&victim.path, &out.join("report.xml"), &user);
    plant_link(&victim.path, &out.join("r.json"), &user);
    let o = run_basic(&[
        "-z",
        jail.to_str().unwrap(),
        "-U",
        &user.0,
        "-o",
        "/out",
        "--report-json",
        "/out/r.json",
    ]);
    assert_ne!(o.status.code(), Some(101), "panic: {}", stderr(&o));
    victim.untouched("-z");
    // And a clean jail still works: the report is the user's, inside the jail.
    let out2 = hostile_folder(&jail.join("out2"), &user);
    let o = run_basic(&["-z", jail.to_str().unwrap(), "-U", &user.0, "-o", "/out2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let md = std::fs::metadata(out2.join("report.xml")).unwrap();
    assert_eq!(md.uid(), user.uid());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_symlinked_sub_folder_is_not_followed() {
    let d = tmp("subdir");
    let out = d.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    // The folder the template gives the client's direction, planted as a link.
    std::os::unix::fs::symlink(&elsewhere, out.join("010.000.000.001")).unwrap();
    let o = run_basic(&["-o", out.to_str().unwrap(), "-T", "%A/%a-%B.%b"]);
    assert_ne!(o.status.code(), Some(101), "panic: {}", stderr(&o));
    let leaked: Vec<_> = std::fs::read_dir(&elsewhere).unwrap().collect();
    assert!(leaked.is_empty(), "wrote through the link: {leaked:?}");
    assert_ne!(o.status.code(), Some(0), "the refused file is an error");
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    // The other direction's folder is an ordinary one and is written.
    assert!(out
        .join("010.000.000.002/00080-010.000.000.001.40000")
        .is_file());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_missing_chroot_folder_is_refused_not_created() {
    let Some(user) = User::new() else { return };
    let d = tmp("nojail");
    let jail = d.join("no-such-jail");
    let o = run_basic(&["-z", jail.to_str().unwrap(), "-U", &user.0, "-o", "/out"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("-z"), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(!jail.exists(), "the jail was created");
    std::fs::remove_dir_all(&d).unwrap();
}
