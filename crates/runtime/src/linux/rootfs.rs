//! The container's root filesystem, set up by the container init inside its fresh mount
//! namespace: the overlayfs of the image layers plus the container's upper dir, the standard
//! /proc, /sys, /dev (tmpfs with the standard device nodes), /dev/pts, /dev/shm, /dev/mqueue,
//! the caller's mounts (the sandbox's /etc/hosts, /etc/hostname, /etc/resolv.conf among
//! them), `pivot_root`, then masked and read-only paths like upstream runtimes.
//!
//! Because every mount here happens in the container's own mount namespace, none of them is
//! visible on the host and all of them vanish with the container: nothing to leak.

use std::io;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;

use super::spec::{ContainerSpec, MountKind, MountPropagation, MountSpec};
use super::syscall::{NodeKind, Syscall};

/// Device nodes every container gets: (name, major, minor).
const DEVICES: &[(&str, u64, u64)] =
    &[("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

/// The kernel's limit on mount option data is one page.
const MAX_MOUNT_DATA: usize = 4000;

fn err(what: impl std::fmt::Display, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Join `unsafe_path` onto `root` the way the container will see it: symlinks met on the way
/// are resolved *inside* `root` (an absolute link target is relative to `root`, `..` never
/// climbs above it). Before pivot_root a plain join would follow an image's symlink to the
/// host's files.
pub(crate) fn secure_join(sys: &dyn Syscall, root: &Path, unsafe_path: &str) -> PathBuf {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<String> = unsafe_path.split('/').filter(|c| !c.is_empty()).rev().map(str::to_string).collect();
    let mut links = 0;
    while let Some(comp) = pending.pop() {
        match comp.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved.join(&comp);
        if links < 40
            && let Some(target) = sys.readlink(&root.join(&candidate))
        {
            links += 1;
            if target.is_absolute() {
                resolved = PathBuf::new();
            }
            for c in target.components().rev() {
                if let Component::Normal(n) = c {
                    pending.push(n.to_string_lossy().into_owned());
                } else if c == Component::ParentDir {
                    pending.push("..".into());
                }
            }
            continue;
        }
        resolved = candidate;
    }
    root.join(resolved)
}

/// The overlayfs mount option string.
pub(crate) fn overlay_options(lower: &[PathBuf], upper: &Path, work: &Path) -> io::Result<String> {
    if lower.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "image has no layers"));
    }
    let lowers: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    for l in &lowers {
        if l.contains(':') || l.contains(',') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("layer path {l:?} contains ':' or ','")));
        }
    }
    let data = format!("lowerdir={},upperdir={},workdir={}", lowers.join(":"), upper.display(), work.display());
    if data.len() > MAX_MOUNT_DATA {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} layers: overlay mount options exceed a page", lower.len()),
        ));
    }
    Ok(data)
}

/// Everything up to and including pivot_root, then masks. Runs in the container init.
pub(crate) fn setup(sys: &dyn Syscall, spec: &ContainerSpec) -> io::Result<()> {
    let root = &spec.rootfs.target;
    // Our copy of the host's mounts must not propagate back (or receive host changes).
    sys.mount(None, Path::new("/"), None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
        .map_err(|e| err("making / private", e))?;
    let data = overlay_options(&spec.rootfs.lower, &spec.rootfs.upper, &spec.rootfs.work)?;
    sys.mount(Some(Path::new("overlay")), root, Some("overlay"), MsFlags::empty(), Some(&data))
        .map_err(|e| err("mounting the overlay rootfs", e))?;

    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let proc_dir = secure_join(sys, root, "/proc");
    sys.mkdir_all(&proc_dir, 0o555)?;
    sys.mount(Some(Path::new("proc")), &proc_dir, Some("proc"), nosuid_noexec_nodev, None)?;

    let sys_dir = secure_join(sys, root, "/sys");
    sys.mkdir_all(&sys_dir, 0o555)?;
    let ro = if spec.privileged { MsFlags::empty() } else { MsFlags::MS_RDONLY };
    sys.mount(Some(Path::new("sysfs")), &sys_dir, Some("sysfs"), nosuid_noexec_nodev | ro, None)?;

    let dev = secure_join(sys, root, "/dev");
    sys.mkdir_all(&dev, 0o755)?;
    if spec.privileged {
        sys.mount(Some(Path::new("/dev")), &dev, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    } else {
        sys.mount(
            Some(Path::new("tmpfs")),
            &dev,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        )?;
        for (name, major, minor) in DEVICES {
            sys.mknod(&dev.join(name), NodeKind::Char, 0o666, *major, *minor)?;
        }
        for (target, link) in [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
            ("pts/ptmx", "ptmx"),
            ("/proc/kcore", "core"),
        ] {
            sys.symlink(Path::new(target), &dev.join(link))?;
        }
        let pts = dev.join("pts");
        sys.mkdir_all(&pts, 0o755)?;
        sys.mount(
            Some(Path::new("devpts")),
            &pts,
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        )?;
        let shm = dev.join("shm");
        sys.mkdir_all(&shm, 0o1777)?;
        match &spec.shm {
            Some(src) => sys.mount(Some(src), &shm, None, MsFlags::MS_BIND, None)?,
            None => sys.mount(
                Some(Path::new("shm")),
                &shm,
                Some("tmpfs"),
                nosuid_noexec_nodev,
                Some("mode=1777,size=65536k"),
            )?,
        }
        let mqueue = dev.join("mqueue");
        sys.mkdir_all(&mqueue, 0o755)?;
        sys.mount(Some(Path::new("mqueue")), &mqueue, Some("mqueue"), nosuid_noexec_nodev, None)?;
    }

    for m in &spec.mounts {
        extra_mount(sys, root, m).map_err(|e| err(format!("mount {}", m.destination), e))?;
    }

    sys.pivot_root(root).map_err(|e| err("pivot_root", e))?;

    if !spec.privileged {
        for p in &spec.masked_paths {
            mask(sys, Path::new(p))?;
        }
        for p in &spec.readonly_paths {
            readonly(sys, Path::new(p))?;
        }
    }
    if spec.rootfs.readonly {
        sys.mount(None, Path::new("/"), None, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY, None)
            .map_err(|e| err("remounting / read-only", e))?;
    }
    Ok(())
}

fn extra_mount(sys: &dyn Syscall, root: &Path, m: &MountSpec) -> io::Result<()> {
    if !m.destination.starts_with('/') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "destination must be absolute"));
    }
    let dest = secure_join(sys, root, &m.destination);
    let mut flags = MsFlags::empty();
    match &m.kind {
        MountKind::Bind => {
            let src = m
                .source
                .as_deref()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bind mount without a source"))?;
            if !sys.exists(src) {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("source {} does not exist", src.display()),
                ));
            }
            if sys.is_dir(src) {
                sys.mkdir_all(&dest, 0o755)?;
            } else {
                sys.touch(&dest)?;
            }
            sys.mount(Some(src), &dest, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
            if m.readonly {
                sys.mount(None, &dest, None, MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)?;
            }
        }
        MountKind::Tmpfs(size) => {
            sys.mkdir_all(&dest, 0o755)?;
            if m.readonly {
                flags |= MsFlags::MS_RDONLY;
            }
            let data = if *size > 0 { format!("mode=1777,size={size}") } else { "mode=1777".into() };
            sys.mount(
                Some(Path::new("tmpfs")),
                &dest,
                Some("tmpfs"),
                flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(&data),
            )?;
        }
    }
    let propagation = match m.propagation {
        MountPropagation::Private => None,
        MountPropagation::Slave => Some(MsFlags::MS_SLAVE),
        MountPropagation::Shared => Some(MsFlags::MS_SHARED),
    };
    if let Some(p) = propagation {
        sys.mount(None, &dest, None, p | MsFlags::MS_REC, None)?;
    }
    Ok(())
}

/// Hide a path: an empty read-only tmpfs over a directory, /dev/null over a file.
fn mask(sys: &dyn Syscall, path: &Path) -> io::Result<()> {
    if !sys.exists(path) {
        return Ok(());
    }
    if sys.is_dir(path) {
        sys.mount(Some(Path::new("tmpfs")), path, Some("tmpfs"), MsFlags::MS_RDONLY, None)
    } else {
        sys.mount(Some(Path::new("/dev/null")), path, None, MsFlags::MS_BIND, None)
    }
    .map_err(|e| err(format!("masking {}", path.display()), e))
}

/// Make a path read-only: bind it onto itself, then remount read-only.
fn readonly(sys: &dyn Syscall, path: &Path) -> io::Result<()> {
    if !sys.exists(path) {
        return Ok(());
    }
    sys.mount(Some(path), path, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    sys.mount(
        Some(path),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
        None,
    )
    .map_err(|e| err(format!("read-only {}", path.display()), e))
}

#[cfg(test)]
mod tests;
