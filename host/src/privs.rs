//! `-U USER` and `-z DIR`: give up root once the inputs are open.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A user's ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Looks a user up by name (or numeric uid).
pub fn lookup(name: &str) -> Result<User, String> {
    let c = CString::new(name).map_err(|_| format!("-U: bad user name '{name}'"))?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwnam_r/getpwuid_r write into `pw` and `buf`; the result points into them.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut res);
        if rc == 0 && !res.is_null() {
            return Ok(User {
                name: CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned(),
                uid: pw.pw_uid,
                gid: pw.pw_gid,
            });
        }
        if let Ok(uid) = name.parse::<libc::uid_t>() {
            let rc = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res);
            if rc == 0 && !res.is_null() {
                return Ok(User {
                    name: CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned(),
                    uid: pw.pw_uid,
                    gid: pw.pw_gid,
                });
            }
        }
    }
    Err(format!("-U: no such user '{name}'"))
}

fn os_err(what: &str) -> String {
    format!(
        "{what}: {}",
        crate::input::io_message(&io::Error::last_os_error())
    )
}

/// chroot to `dir` (when given), then become `user` for good (groups, gid, uid).
pub fn drop_to(user: &User, chroot: Option<&Path>) -> Result<(), String> {
    // SAFETY: plain system calls on values we own.
    unsafe {
        let euid = libc::geteuid();
        if euid != 0 {
            if euid == user.uid && chroot.is_none() {
                return Ok(());
            }
            return Err(format!(
                "-U {} needs to run as root (running as uid {euid})",
                user.name
            ));
        }
        if let Some(dir) = chroot {
            let c =
                CString::new(dir.as_os_str().as_bytes()).map_err(|_| "-z: bad path".to_string())?;
            if libc::chroot(c.as_ptr()) != 0 {
                return Err(os_err(&format!("-z: cannot chroot to {}", dir.display())));
            }
            if libc::chdir(c"/".as_ptr()) != 0 {
                return Err(os_err("-z: cannot chdir to / after chroot"));
            }
        }
        let name = CString::new(user.name.as_str()).map_err(|_| "-U: bad user name".to_string())?;
        if libc::initgroups(name.as_ptr(), user.gid) != 0 {
            return Err(os_err(&format!(
                "-U: cannot set the groups of {}",
                user.name
            )));
        }
        if libc::setgid(user.gid) != 0 {
            return Err(os_err(&format!("-U: cannot set group id {}", user.gid)));
        }
        if libc::setuid(user.uid) != 0 {
            return Err(os_err(&format!("-U: cannot set user id {}", user.uid)));
        }
        if user.uid != 0 && libc::setuid(0) == 0 {
            return Err("-U: root privileges could be regained; refusing to continue".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_root() {
        let u = lookup("root").unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        assert_eq!(lookup("0").unwrap().name, "root");
        assert!(lookup("no-such-user-here").is_err());
    }
}
