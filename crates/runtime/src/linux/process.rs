//! The last steps before a container process runs its program, shared by the container init
//! and `exec` sessions: working directory, controlling terminal, the capability bounding set,
//! groups and user, capabilities, no_new_privs, seccomp, then `execve` with the program found
//! on the container's `PATH`.
//!
//! Runs in a freshly forked single-threaded process, never in the runtime.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use super::spec::{ProcessSpec, SeccompMode};
use super::{caps, seccomp};

fn ctx(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Find `program` on the `PATH` of `env` (the container's, not ours), relative to the current
/// root. A name containing '/' is used as is.
pub(crate) fn find_program(program: &str, env: &[String]) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join(program)).find(|p| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
            .unwrap_or(false)
    })
}

/// Become the container process described by `spec` and exec it. Only returns on failure;
/// the error says which step failed. `exec_failed` tells the caller that everything but the
/// final execve worked (the kubelet reports that as a failed start, exit code 128/127).
pub(crate) fn exec(spec: &ProcessSpec) -> (io::Error, bool) {
    match prepare(spec) {
        Ok((program, argv, envp)) => {
            let e = match nix::unistd::execve(&program, &argv, &envp) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            (ctx(&format!("exec {:?}", spec.args.first().map(String::as_str).unwrap_or("")), e), true)
        }
        Err(e) => (e, false),
    }
}

type Prepared = (CString, Vec<CString>, Vec<CString>);

fn prepare(spec: &ProcessSpec) -> io::Result<Prepared> {
    let arg0 = spec.args.first().ok_or_else(|| ctx("exec", "empty command"))?;
    let cstr = |s: &str| CString::new(s).map_err(|_| ctx("exec", format!("{s:?} contains NUL")));
    let argv: Vec<CString> = spec.args.iter().map(|a| cstr(a)).collect::<io::Result<_>>()?;
    let envp: Vec<CString> = spec.env.iter().map(|a| cstr(a)).collect::<io::Result<_>>()?;

    if spec.tty {
        // A new session whose controlling terminal is our stdin (the pty slave).
        nix::unistd::setsid().map_err(|e| ctx("setsid", e))?;
        // SAFETY: TIOCSCTTY takes an integer argument; fd 0 is open.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
            return Err(ctx("TIOCSCTTY", io::Error::last_os_error()));
        }
    }
    if let Some(adj) = spec.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| ctx("oom_score_adj", e))?;
    }
    let cwd = if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() };
    if std::fs::metadata(cwd).is_err() {
        // Docker creates a missing working directory; so do we (best effort: the rootfs may
        // be read-only, and then chdir reports the error).
        let _ = std::fs::create_dir_all(cwd);
    }
    nix::unistd::chdir(cwd).map_err(|e| ctx(&format!("chdir {cwd}"), e))?;

    let last = caps::last_cap();
    // Dropping from the bounding set needs CAP_SETPCAP: before the user switch.
    caps::drop_bounding(&spec.caps, last).map_err(|e| ctx("capability bounding set", e))?;
    let filters = match spec.seccomp {
        SeccompMode::RuntimeDefault => Some(seccomp::runtime_default(&spec.caps).map_err(|e| ctx("seccomp", e))?),
        SeccompMode::Unconfined => None,
    };
    // Without no_new_privs the kernel only lets CAP_SYS_ADMIN install a filter: load it while
    // we are still fully privileged (the deny-list lets the remaining steps through).
    if !spec.no_new_privs
        && let Some(f) = &filters
    {
        seccomp::load(f).map_err(|e| ctx("loading seccomp filter", e))?;
    }
    let groups: Vec<Gid> = spec.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(|e| ctx("setgroups", e))?;
    let gid = Gid::from_raw(spec.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| ctx("setgid", e))?;
    // Keep the permitted set across the uid change, then set it explicitly.
    // SAFETY: integer-only prctl.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let uid = Uid::from_raw(spec.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| ctx("setuid", e))?;
    // SAFETY: integer-only prctl.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    caps::set(&spec.caps).map_err(|e| ctx("capset", e))?;
    if spec.no_new_privs {
        // SAFETY: integer-only prctl.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(ctx("no_new_privs", io::Error::last_os_error()));
        }
        if let Some(f) = &filters {
            seccomp::load(f).map_err(|e| ctx("loading seccomp filter", e))?;
        }
    }
    let program = find_program(arg0, &spec.env).ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("exec: {arg0:?}: executable file not found in $PATH"))
    })?;
    Ok((cstr(&String::from_utf8_lossy(program.as_os_str().as_bytes()))?, argv, envp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_lookup_uses_the_container_path() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(bin.join("data"), "").unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", bin.display())];
        assert_eq!(find_program("tool", &env), Some(tool));
        // Not executable, not found.
        assert_eq!(find_program("data", &env), None);
        assert_eq!(find_program("missing", &env), None);
        assert_eq!(find_program("./x", &env), Some(PathBuf::from("./x")));
    }
}
