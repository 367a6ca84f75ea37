//! Opening output files where another user may plant things: the output folder (or the
//! report's) can be writable by a hostile user, the `-U` user or anyone else. A link there is
//! never followed (neither as the file nor as a sub-folder of a `-T` name), a FIFO never
//! blocks the open, and a file that is not ours to overwrite (not a regular file, or one with
//! other hard links) is refused before it is truncated.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn refused(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// `openat` retried on EINTR; the descriptor is ours.
fn openat(dir: RawFd, name: &CString, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: a NUL-terminated name; the result is a new descriptor or -1.
        let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, mode as libc::c_uint) };
        if fd >= 0 {
            // SAFETY: just opened, owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The folder holding the last `folders + 1` components of `full` (its last component is the
/// file): the first part of `full` is opened as given (the user named it), each of the
/// `folders` sub-folders after it without following a link, created when `create` and
/// missing. Returns the folder's descriptor and the file's name, or (None, `full`) when
/// there is no sub-folder to walk.
fn walk(full: &Path, folders: usize, create: bool) -> io::Result<(Option<OwnedFd>, CString)> {
    if folders == 0 {
        // No sub-folder to walk: the whole path is opened as given (its folders are the
        // user's), the file itself without following a link. One system call, not three:
        // this is every file of a run without a `/` in its template.
        return Ok((None, cstr(full.as_os_str())?));
    }
    let name = full
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let name = cstr(name)?;
    let comps: Vec<Component> = full.components().collect();
    if comps.len() < folders + 1 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let base_end = comps.len() - folders - 1;
    let base: std::path::PathBuf = comps[..base_end].iter().collect();
    let base = if base.as_os_str().is_empty() {
        Path::new(".").to_path_buf()
    } else {
        base
    };
    let mut dir = openat(
        libc::AT_FDCWD,
        &cstr(base.as_os_str())?,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )?;
    for comp in &comps[base_end..comps.len() - 1] {
        let Component::Normal(c) = comp else {
            // Names were checked (no `..`, not absolute): nothing else comes here.
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let cc = cstr(c)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let next = match openat(dir.as_raw_fd(), &cc, flags, 0) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                // SAFETY: a NUL-terminated name relative to a folder we hold open.
                if unsafe { libc::mkdirat(dir.as_raw_fd(), cc.as_ptr(), 0o777) } != 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
                openat(dir.as_raw_fd(), &cc, flags, 0)
            }
            r => r,
        };
        dir = next.map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => refused(format!(
                "sub-folder {} is a symbolic link or not a folder (links are not followed)",
                c.to_string_lossy()
            )),
            _ => e,
        })?;
    }
    Ok((Some(dir), name))
}

/// Opens (read and write) or creates the file at `full`, whose last `folders` folders are
/// sub-folders of a name (walked without following links, created when missing), never
/// following a link at the file itself. The file must be a regular file with no other hard
/// link (a planted hard link to another file is not written); with `truncate` it is
/// emptied.
pub fn open_file(full: &Path, folders: usize, truncate: bool, mode: u32) -> io::Result<File> {
    let (dir, name) = walk(full, folders, true)?;
    let dfd = dir.as_ref().map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // O_NONBLOCK: a FIFO planted there must not block the open (it is refused below);
    // it changes nothing for a regular file.
    let flags = libc::O_RDWR
        | libc::O_CREAT
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_NOCTTY
        | libc::O_CLOEXEC;
    if truncate {
        // Nothing there yet (a fresh output folder): created here, so a regular file with
        // one link and empty, with no check to make (a name that exists, a link included,
        // fails and is opened and checked below). A syscall less per file.
        match openat(dfd, &name, flags | libc::O_EXCL, mode) {
            Ok(fd) => return Ok(File::from(fd)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    let fd = openat(dfd, &name, flags, mode).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            refused("it is a symbolic link (not followed)".into())
        } else {
            e
        }
    })?;
    let f = File::from(fd);
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(refused("it is not a regular file".into()));
    }
    if std::os::unix::fs::MetadataExt::nlink(&md) > 1 {
        return Err(refused("it has other hard links (not written)".into()));
    }
    if truncate && md.len() > 0 {
        f.set_len(0)?;
    }
    Ok(f)
}

/// Sets the modification time of the file at `full` (see [`open_file`] for `folders`)
/// without opening it, following no link.
pub fn set_mtime(full: &Path, folders: usize, mtime: std::time::SystemTime) -> io::Result<()> {
    let (dir, name) = walk(full, folders, false)?;
    let dfd = dir.as_ref().map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let d = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as _,
        },
    ];
    // SAFETY: a NUL-terminated name and two timespecs, alive for the call.
    let rc = unsafe {
        libc::utimensat(
            dfd,
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sub-folders in a name relative to the output folder (`a/b/file`: 2).
pub fn folders_in(rel: &Path) -> usize {
    rel.components().count().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("tcpflow-safefs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn links_fifos_and_hard_links_are_refused() {
        let d = tmp("refuse");
        let victim = d.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let out = d.join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("link")).unwrap();
        std::os::unix::fs::symlink(&d, out.join("dirlink")).unwrap();
        std::fs::hard_link(&victim, out.join("hard")).unwrap();
        let fifo = cstr(out.join("fifo").as_os_str()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(open_file(&out.join("link"), 0, true, 0o644).is_err());
        assert!(open_file(&out.join("hard"), 0, true, 0o644).is_err());
        assert!(open_file(&out.join("fifo"), 0, true, 0o644).is_err());
        assert!(open_file(&out.join("dirlink/victim"), 1, true, 0o644).is_err());
        assert!(open_file(&out.join("dirlink/new"), 1, true, 0o644).is_err());
        assert!(!d.join("new").exists());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        // Sub-folders are created; an existing file is emptied.
        let f = out.join("a/b/c");
        open_file(&f, 2, true, 0o644).unwrap();
        std::fs::write(&f, b"old").unwrap();
        open_file(&f, 2, true, 0o644).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"");
        set_mtime(&f, 2, std::time::UNIX_EPOCH).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
