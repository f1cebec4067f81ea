//! The syscall seam: every host-mutating call the sandbox and container setup code makes
//! (mounts, pivot_root, namespaces, hostnames, cgroup files, device nodes) goes through
//! [`Syscall`], so the *order and arguments* of a setup can be unit-tested against
//! [`RecordingSyscall`] without root — the way youki tests its rootfs code.
//!
//! [`LinuxSyscall`] is the real implementation (nix). It is also what the container init uses
//! after `fork` in the single-threaded shim, so it must not need a tokio runtime.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
#[cfg(test)]
use std::sync::Mutex;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::stat::{Mode, SFlag};

/// What kind of device node [`Syscall::mknod`] creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Char,
}

/// Host operations used by sandbox and container setup.
pub(crate) trait Syscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()>;
    /// Make `new_root` the root: `pivot_root(new_root, new_root)` and lazily unmount the old
    /// root stacked on top (runc's trick: no temporary put_old directory needed).
    fn pivot_root(&self, new_root: &Path) -> io::Result<()>;
    fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Create an empty regular file (a bind-mount target) unless something exists there.
    fn touch(&self, path: &Path) -> io::Result<()>;
    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    fn mknod(&self, path: &Path, kind: NodeKind, mode: u32, major: u64, minor: u64) -> io::Result<()>;
    fn sethostname(&self, name: &str) -> io::Result<()>;
    /// Join the namespace bound at `path` (a `/proc/<pid>/ns/*` file or a bind mount of one).
    fn setns(&self, path: &Path, nstype: CloneFlags) -> io::Result<()>;
    fn unshare(&self, flags: CloneFlags) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;
    /// The target of a symlink, `None` if `path` is not one.
    fn readlink(&self, path: &Path) -> Option<PathBuf>;
}

/// The real thing.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LinuxSyscall;

fn nix_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data).map_err(|e| {
            io::Error::new(
                nix_err(e).kind(),
                format!(
                    "mount {} on {} ({}): {e}",
                    source.map(|s| s.display().to_string()).unwrap_or_default(),
                    target.display(),
                    fstype.unwrap_or("bind")
                ),
            )
        })
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        nix::mount::umount2(target, flags).map_err(nix_err)
    }

    fn pivot_root(&self, new_root: &Path) -> io::Result<()> {
        nix::unistd::chdir(new_root).map_err(nix_err)?;
        nix::unistd::pivot_root(".", ".")
            .map_err(|e| io::Error::new(nix_err(e).kind(), format!("pivot_root {}: {e}", new_root.display())))?;
        // The old root is now mounted on top of the new one at "/"; detach it.
        nix::mount::umount2(".", MntFlags::MNT_DETACH).map_err(nix_err)?;
        nix::unistd::chdir("/").map_err(nix_err)
    }

    fn mkdir_all(&self, path: &Path, mode: u32) -> io::Result<()> {
        if path.is_dir() {
            return Ok(());
        }
        fs::create_dir_all(path)?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }

    fn touch(&self, path: &Path) -> io::Result<()> {
        if fs::symlink_metadata(path).is_ok() {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map(drop)
    }

    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        fs::write(path, contents).map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        match std::os::unix::fs::symlink(target, link) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            r => r,
        }
    }

    fn mknod(&self, path: &Path, kind: NodeKind, mode: u32, major: u64, minor: u64) -> io::Result<()> {
        let kind = match kind {
            NodeKind::Char => SFlag::S_IFCHR,
        };
        nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(mode), nix::sys::stat::makedev(major, minor))
            .map_err(nix_err)?;
        // mknod honours the umask; devices must have exactly the requested mode.
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(nix_err)
    }

    fn setns(&self, path: &Path, nstype: CloneFlags) -> io::Result<()> {
        let f =
            fs::File::open(path).map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
        nix::sched::setns(f, nstype)
            .map_err(|e| io::Error::new(nix_err(e).kind(), format!("setns {}: {e}", path.display())))
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        nix::sched::unshare(flags).map_err(nix_err)
    }

    fn exists(&self, path: &Path) -> bool {
        fs::symlink_metadata(path).is_ok()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn readlink(&self, path: &Path) -> Option<PathBuf> {
        fs::read_link(path).ok()
    }
}

#[cfg(test)]
/// One recorded call of [`RecordingSyscall`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Mount { source: Option<PathBuf>, target: PathBuf, fstype: Option<String>, flags: MsFlags, data: Option<String> },
    Umount(PathBuf),
    PivotRoot(PathBuf),
    Mkdir(PathBuf),
    Touch(PathBuf),
    Write(PathBuf, String),
    Symlink { target: PathBuf, link: PathBuf },
    Mknod { path: PathBuf, major: u64, minor: u64, mode: u32 },
    Sethostname(String),
    Setns(PathBuf, CloneFlags),
    Unshare(CloneFlags),
}

#[cfg(test)]
/// A fake [`Syscall`] that records every call and succeeds, except for calls matching a
/// scripted failure. `existing` paths answer `exists`/`is_dir`.
#[derive(Debug, Default)]
pub(crate) struct RecordingSyscall {
    pub(crate) calls: Mutex<Vec<Call>>,
    /// Paths that `exists()` reports; directories end with '/'.
    pub(crate) existing: Mutex<Vec<String>>,
    /// A substring of the Debug form of a call that makes it fail with EPERM.
    pub(crate) fail_on: Mutex<Option<String>>,
}

#[cfg(test)]
impl RecordingSyscall {
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: Call) -> io::Result<()> {
        let fail = self.fail_on.lock().ok().and_then(|f| f.clone()).is_some_and(|f| format!("{call:?}").contains(&f));
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
        if fail { Err(io::Error::from_raw_os_error(libc::EPERM)) } else { Ok(()) }
    }

    pub(crate) fn add_existing(&self, path: &str) {
        if let Ok(mut e) = self.existing.lock() {
            e.push(path.to_string());
        }
    }
}

#[cfg(test)]
impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        self.record(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        })
    }
    fn umount(&self, target: &Path, _flags: MntFlags) -> io::Result<()> {
        self.record(Call::Umount(target.to_path_buf()))
    }
    fn pivot_root(&self, new_root: &Path) -> io::Result<()> {
        self.record(Call::PivotRoot(new_root.to_path_buf()))
    }
    fn mkdir_all(&self, path: &Path, _mode: u32) -> io::Result<()> {
        self.record(Call::Mkdir(path.to_path_buf()))
    }
    fn touch(&self, path: &Path) -> io::Result<()> {
        self.record(Call::Touch(path.to_path_buf()))
    }
    fn write_file(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        self.record(Call::Write(path.to_path_buf(), String::from_utf8_lossy(contents).into_owned()))
    }
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        self.record(Call::Symlink { target: target.to_path_buf(), link: link.to_path_buf() })
    }
    fn mknod(&self, path: &Path, _kind: NodeKind, mode: u32, major: u64, minor: u64) -> io::Result<()> {
        self.record(Call::Mknod { path: path.to_path_buf(), major, minor, mode })
    }
    fn sethostname(&self, name: &str) -> io::Result<()> {
        self.record(Call::Sethostname(name.to_string()))
    }
    fn setns(&self, path: &Path, nstype: CloneFlags) -> io::Result<()> {
        self.record(Call::Setns(path.to_path_buf(), nstype))
    }
    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        self.record(Call::Unshare(flags))
    }
    fn exists(&self, path: &Path) -> bool {
        let p = path.to_string_lossy();
        self.existing.lock().map(|e| e.iter().any(|x| x.trim_end_matches('/') == p)).unwrap_or(false)
    }
    fn is_dir(&self, path: &Path) -> bool {
        let p = format!("{}/", path.to_string_lossy());
        self.existing.lock().map(|e| e.contains(&p)).unwrap_or(false)
    }
    fn readlink(&self, _path: &Path) -> Option<PathBuf> {
        None
    }
}
