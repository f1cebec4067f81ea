//! Unpacking a layer tar into its own directory, ready to be an overlayfs lower dir.
//!
//! Every entry is created relative to directory file descriptors opened one component at a
//! time with `O_NOFOLLOW`, so no entry can write outside the layer: `..` components and
//! absolute paths are refused outright, and a path that goes through a symlink (which could
//! point anywhere, e.g. `etc -> /etc`) is refused when its parent is opened. Symlinks
//! themselves are created as given — they are resolved inside the container's root at run
//! time, never here. Hard links must point to an earlier entry of the same layer.
//!
//! OCI whiteouts become what overlayfs understands: `.wh.<name>` a 0/0 character device named
//! `<name>`, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory. Ownership,
//! modes (set-id bits included), device nodes, xattrs (`SCHILY.xattr.*`; `trusted.overlay.*`
//! from the tar is dropped so a layer cannot forge overlay metadata) and mtimes are restored,
//! which needs root.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use super::digest::{Digest, HashingReader};
use super::oci::Compression;

/// Why a layer could not be unpacked. The partial directory is left for the caller to remove
/// (it lives in the operation's scratch dir).
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The bytes are not a valid (compressed) tar stream, or they end early.
    #[error("corrupt or truncated layer")]
    Corrupt(#[source] io::Error),
    /// An entry's path climbs out of the layer with `..`.
    #[error("entry {0:?} escapes the layer with '..'")]
    Traversal(String),
    /// An entry's path is absolute.
    #[error("entry {0:?} has an absolute path")]
    AbsolutePath(String),
    /// An entry would be written through a symlink, which could point anywhere.
    #[error("entry {path:?} goes through symlink {symlink:?}")]
    ThroughSymlink { path: String, symlink: String },
    /// A parent of an entry is a file, not a directory.
    #[error("entry {path:?}: {parent:?} is not a directory")]
    NotADirectory { path: String, parent: String },
    /// A hard link points outside the layer, to a directory, or to nothing.
    #[error("hard link {path:?} points to {target:?}, which is not a file of this layer")]
    BadHardLink { path: String, target: String },
    /// An entry type the store does not unpack.
    #[error("entry {path:?} has unsupported type {kind}")]
    UnsupportedEntry { path: String, kind: String },
    /// A header field is malformed or out of range.
    #[error("entry {path:?} has an invalid header: {reason}")]
    InvalidHeader { path: String, reason: String },
    /// The uncompressed layer does not hash to the diffid the image config names.
    #[error("the layer's content hashes to {actual}, the image config says {expected}")]
    DiffIdMismatch { expected: String, actual: String },
    /// A file-system call failed (`EPERM` here usually means not running as root).
    #[error("{op} {path:?}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = UnpackError> = std::result::Result<T, E>;

/// What unpacking produced.
#[derive(Debug)]
pub(crate) struct Unpacked {
    /// The digest of the uncompressed tar stream.
    pub diff_id: Digest,
    /// Bytes of regular files written.
    pub size: u64,
}

/// Unpack the layer blob at `blob` into `dest` (created; must not exist). With `expected`,
/// the uncompressed stream must hash to it. `verified_blob` is the digest the blob's bytes
/// were verified against when stored: for an uncompressed layer that is already the diffid,
/// so it is not hashed a second time.
pub(crate) fn unpack_layer(
    blob: &Path,
    compression: Compression,
    dest: &Path,
    expected: Option<&Digest>,
    verified_blob: Option<&Digest>,
) -> Result<Unpacked> {
    let file = File::open(blob).map_err(io_err("opening blob", blob))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    if compression == Compression::None
        && let Some(diff_id) = expected.filter(|e| Some(*e) == verified_blob)
    {
        let size = extract(reader, dest)?;
        return Ok(Unpacked { diff_id: diff_id.clone(), size });
    }
    match compression {
        Compression::None => unpack_stream(reader, dest, expected),
        Compression::Gzip => unpack_stream(flate2::read::MultiGzDecoder::new(reader), dest, expected),
    }
}

/// Unpack an uncompressed tar stream into `dest` (created; must not exist).
pub(crate) fn unpack_stream<R: Read>(reader: R, dest: &Path, expected: Option<&Digest>) -> Result<Unpacked> {
    let mut hashing = HashingReader::new(reader);
    let size = extract(&mut hashing, dest)?;
    // The diffid covers the whole stream, padding after the end-of-archive blocks included.
    io::copy(&mut hashing, &mut io::sink()).map_err(UnpackError::Corrupt)?;
    let (diff_id, _) = hashing.finish();
    if let Some(expected) = expected
        && &diff_id != expected
    {
        return Err(UnpackError::DiffIdMismatch { expected: expected.to_string(), actual: diff_id.to_string() });
    }
    Ok(Unpacked { diff_id, size })
}

/// Extract every entry; returns the bytes of regular files written.
fn extract<R: Read>(reader: R, dest: &Path) -> Result<u64> {
    let mut ex = Extractor::new(dest)?;
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(UnpackError::Corrupt)? {
        let mut entry = entry.map_err(UnpackError::Corrupt)?;
        ex.entry(&mut entry)?;
    }
    ex.finish();
    Ok(ex.size)
}

fn io_err(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(io::Error) -> UnpackError {
    let path = path.as_ref().display().to_string();
    move |source| UnpackError::Io { op, path, source }
}

fn errno<'a>(op: &'static str, path: &'a str) -> impl FnOnce(Errno) -> UnpackError + 'a {
    move |e| UnpackError::Io { op, path: path.to_string(), source: e.into() }
}

/// The layer-relative components of an archive path; `..` and absolute paths are errors.
fn split_path(raw: &Path) -> Result<Vec<OsString>> {
    let shown = || raw.display().to_string();
    let mut out = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err(UnpackError::Traversal(shown())),
            Component::RootDir | Component::Prefix(_) => return Err(UnpackError::AbsolutePath(shown())),
        }
    }
    Ok(out)
}

fn join(comps: &[OsString]) -> String {
    comps.iter().map(|c| c.to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Ownership, mode, time and xattrs of an entry (PAX records override the ustar fields).
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Meta {
    fn read<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str) -> Result<Meta> {
        let bad = |reason: String| UnpackError::InvalidHeader { path: path.to_string(), reason };
        let h = entry.header();
        let old = h.as_old();
        // An all-NUL or all-space numeric field means 0, as Go's archive/tar (docker,
        // containerd) reads it; tar-rs calls it an error.
        let num = |r: std::io::Result<u64>, raw: &[u8], what: &str| match r {
            Ok(v) => Ok(v),
            Err(_) if raw.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
            Err(e) => Err(bad(format!("{what}: {e}"))),
        };
        let mut uid = num(h.uid(), &old.uid, "uid")?;
        let mut gid = num(h.gid(), &old.gid, "gid")?;
        let mode = num(h.mode().map(u64::from), &old.mode, "mode")? as u32 & 0o7777;
        let mut mtime = num(h.mtime(), &old.mtime, "mtime")? as i64;
        let mut xattrs = Vec::new();
        if let Some(pax) = entry.pax_extensions().map_err(UnpackError::Corrupt)? {
            for ext in pax {
                let ext = ext.map_err(UnpackError::Corrupt)?;
                let key = ext.key_bytes();
                let number = || {
                    std::str::from_utf8(ext.value_bytes()).ok().and_then(|v| v.split('.').next()?.parse::<i64>().ok())
                };
                match key {
                    b"uid" => uid = number().ok_or_else(|| bad("pax uid".into()))? as u64,
                    b"gid" => gid = number().ok_or_else(|| bad("pax gid".into()))? as u64,
                    b"mtime" => mtime = number().unwrap_or(mtime),
                    _ => {
                        if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                            // Overlay metadata comes only from our own whiteout conversion.
                            if !name.starts_with(b"trusted.overlay.") {
                                xattrs.push((OsString::from_vec(name.to_vec()), ext.value_bytes().to_vec()));
                            }
                        }
                    }
                }
            }
        }
        // -1 means "unchanged" to chown(2); a layer cannot ask for it.
        let id = |v: u64, what: &str| {
            u32::try_from(v).ok().filter(|v| *v != u32::MAX).ok_or_else(|| bad(format!("{what} {v} out of range")))
        };
        Ok(Meta { uid: id(uid, "uid")?, gid: id(gid, "gid")?, mode, mtime, xattrs })
    }

    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)))
    }

    fn times(&self) -> Timestamps {
        let t = Timespec { tv_sec: self.mtime, tv_nsec: 0 };
        Timestamps { last_access: t, last_modification: t }
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

struct Extractor {
    root: OwnedFd,
    /// The last parent directory opened, reused by the next entry (tars list siblings
    /// together); dropped whenever something is removed, as it may be inside it.
    cache: Option<(Vec<OsString>, OwnedFd)>,
    /// Directory mtimes, applied at the end: creating children changes them.
    dir_times: Vec<(Vec<OsString>, Timestamps)>,
    size: u64,
    buf: Vec<u8>,
}

impl Extractor {
    fn new(dest: &Path) -> Result<Extractor> {
        std::fs::create_dir(dest).map_err(io_err("creating", dest))?;
        let root = rustix::fs::open(dest, DIR_FLAGS, Mode::empty()).map_err(|e| UnpackError::Io {
            op: "opening",
            path: dest.display().to_string(),
            source: e.into(),
        })?;
        rustix::fs::fchmod(&root, Mode::from_raw_mode(0o755)).map_err(errno("chmod", "/"))?;
        Ok(Extractor { root, cache: None, dir_times: Vec::new(), size: 0, buf: vec![0; 1 << 20] })
    }

    /// Open the directory `comps` (relative to the root), creating missing ones when
    /// `create`, never following a symlink.
    fn open_dir(&mut self, comps: &[OsString], create: bool, entry: &str) -> Result<OwnedFd> {
        if let Some((cached, fd)) = &self.cache
            && cached.as_slice() == comps
        {
            return fd.try_clone().map_err(io_err("dup", entry));
        }
        let mut cur = self.root.try_clone().map_err(io_err("dup", entry))?;
        for (i, c) in comps.iter().enumerate() {
            let next = match rustix::fs::openat(&cur, c.as_os_str(), DIR_FLAGS, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(errno("creating directory", entry)(e)),
                    }
                    rustix::fs::openat(&cur, c.as_os_str(), DIR_FLAGS, Mode::empty())
                        .map_err(errno("opening", entry))?
                }
                Err(Errno::NOENT) => {
                    return Err(UnpackError::Io {
                        op: "opening",
                        path: entry.to_string(),
                        source: Errno::NOENT.into(),
                    });
                }
                Err(Errno::LOOP | Errno::NOTDIR) => {
                    let st = rustix::fs::statat(&cur, c.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(errno("stat", entry))?;
                    let parent = join(&comps[..=i]);
                    return Err(if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                        UnpackError::ThroughSymlink { path: entry.to_string(), symlink: parent }
                    } else {
                        UnpackError::NotADirectory { path: entry.to_string(), parent }
                    });
                }
                Err(e) => return Err(errno("opening", entry)(e)),
            };
            cur = next;
        }
        let out = cur.try_clone().map_err(io_err("dup", entry))?;
        self.cache = Some((comps.to_vec(), cur));
        Ok(out)
    }

    /// Remove `name` in `parent` if present (a later entry replaces an earlier one). Keeps
    /// an existing directory when `keep_dir` (a directory entry merges into it).
    fn clear(&mut self, parent: &OwnedFd, name: &OsStr, keep_dir: bool, entry: &str) -> Result<bool> {
        let st = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(errno("stat", entry)(e)),
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir && keep_dir {
            return Ok(true);
        }
        self.cache = None;
        remove_at(parent.as_fd(), name).map_err(io_err("removing", entry))?;
        Ok(false)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            return Ok(());
        }
        let raw = entry.path().map_err(UnpackError::Corrupt)?.into_owned();
        let comps = split_path(&raw)?;
        let path = raw.display().to_string();
        let meta = Meta::read(entry, &path)?;
        let Some((name, parents)) = comps.split_last() else {
            // The layer root itself (`./`): only its metadata.
            if !kind.is_dir() {
                return Err(UnpackError::UnsupportedEntry { path, kind: format!("{kind:?} at the layer root") });
            }
            let root = self.root.try_clone().map_err(io_err("dup", &path))?;
            self.set_dir_meta(&root, &meta, &path)?;
            self.dir_times.push((Vec::new(), meta.times()));
            return Ok(());
        };

        if let Some(hidden) = name.as_bytes().strip_prefix(b".wh.") {
            return self.whiteout(parents, hidden, &path);
        }
        let parent = self.open_dir(parents, true, &path)?;
        match kind {
            tar::EntryType::Directory => {
                if !self.clear(&parent, name, true, &path)? {
                    rustix::fs::mkdirat(&parent, name.as_os_str(), Mode::from_raw_mode(0o700))
                        .map_err(errno("creating directory", &path))?;
                }
                let dir = rustix::fs::openat(&parent, name.as_os_str(), DIR_FLAGS, Mode::empty())
                    .map_err(errno("opening", &path))?;
                self.set_dir_meta(&dir, &meta, &path)?;
                self.dir_times.push((comps.clone(), meta.times()));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.clear(&parent, name, false, &path)?;
                let fd = rustix::fs::openat(
                    &parent,
                    name.as_os_str(),
                    OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(errno("creating", &path))?;
                let mut file = File::from(fd);
                let want = entry.header().entry_size().map_err(UnpackError::Corrupt)?;
                let mut written = 0u64;
                loop {
                    let n = entry.read(&mut self.buf).map_err(UnpackError::Corrupt)?;
                    if n == 0 {
                        break;
                    }
                    file.write_all(&self.buf[..n]).map_err(io_err("writing", &path))?;
                    written += n as u64;
                }
                if written < want && kind != tar::EntryType::GNUSparse {
                    return Err(UnpackError::Corrupt(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{path}: {written} of {want} bytes"),
                    )));
                }
                self.size += written;
                let (uid, gid) = meta.owner();
                rustix::fs::fchown(&file, uid, gid).map_err(errno("chown", &path))?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(meta.mode)).map_err(errno("chmod", &path))?;
                for (k, v) in &meta.xattrs {
                    set_xattr(rustix::fs::fsetxattr(&file, k.as_os_str(), v, XattrFlags::empty()), k, &path)?;
                }
                rustix::fs::futimens(&file, &meta.times()).map_err(errno("setting times of", &path))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(UnpackError::Corrupt)?
                    .ok_or_else(|| UnpackError::InvalidHeader {
                        path: path.clone(),
                        reason: "symlink without target".into(),
                    })?
                    .into_owned();
                self.clear(&parent, name, false, &path)?;
                rustix::fs::symlinkat(target.as_os_str(), &parent, name.as_os_str())
                    .map_err(errno("creating symlink", &path))?;
                self.set_node_meta(&parent, name, &meta, false, &path)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(UnpackError::Corrupt)?
                    .ok_or_else(|| UnpackError::InvalidHeader {
                        path: path.clone(),
                        reason: "hard link without target".into(),
                    })?
                    .into_owned();
                let shown = target.display().to_string();
                let bad = || UnpackError::BadHardLink { path: path.clone(), target: shown.clone() };
                let tcomps = split_path(&target).map_err(|_| bad())?;
                let Some((tname, tparents)) = tcomps.split_last() else { return Err(bad()) };
                if tcomps == comps {
                    return Ok(());
                }
                let tparent = self.open_dir(tparents, false, &shown).map_err(|_| bad())?;
                match rustix::fs::statat(&tparent, tname.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {}
                    _ => return Err(bad()),
                }
                self.clear(&parent, name, false, &path)?;
                rustix::fs::linkat(&tparent, tname.as_os_str(), &parent, name.as_os_str(), AtFlags::empty())
                    .map_err(errno("creating hard link", &path))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let h = entry.header();
                let dev_bad = |e: io::Error| UnpackError::InvalidHeader {
                    path: path.clone(),
                    reason: format!("device number: {e}"),
                };
                let major = h.device_major().map_err(dev_bad)?.unwrap_or(0);
                let minor = h.device_minor().map_err(dev_bad)?.unwrap_or(0);
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.clear(&parent, name, false, &path)?;
                rustix::fs::mknodat(
                    &parent,
                    name.as_os_str(),
                    ft,
                    Mode::from_raw_mode(meta.mode),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(errno("creating device", &path))?;
                self.set_node_meta(&parent, name, &meta, true, &path)?;
            }
            other => return Err(UnpackError::UnsupportedEntry { path, kind: format!("{other:?}") }),
        }
        Ok(())
    }

    /// `.wh..wh..opq` marks its directory opaque; `.wh.<name>` deletes `<name>` from the
    /// layers below; other `.wh..wh.*` names are AUFS bookkeeping and are skipped.
    fn whiteout(&mut self, parents: &[OsString], hidden: &[u8], path: &str) -> Result<()> {
        if hidden == b".wh..opq" {
            let dir = self.open_dir(parents, true, path)?;
            return rustix::fs::fsetxattr(&dir, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                .map_err(errno("marking opaque", path));
        }
        if hidden.starts_with(b".wh.") {
            return Ok(());
        }
        let name = OsStr::from_bytes(hidden);
        if hidden.is_empty() || hidden.contains(&b'/') || name == "." || name == ".." {
            return Err(UnpackError::InvalidHeader { path: path.to_string(), reason: "invalid whiteout name".into() });
        }
        let parent = self.open_dir(parents, true, path)?;
        self.clear(&parent, name, false, path)?;
        rustix::fs::mknodat(&parent, name, FileType::CharacterDevice, Mode::empty(), rustix::fs::makedev(0, 0))
            .map_err(errno("creating whiteout", path))
    }

    fn set_dir_meta(&self, dir: &OwnedFd, meta: &Meta, path: &str) -> Result<()> {
        let (uid, gid) = meta.owner();
        rustix::fs::fchown(dir, uid, gid).map_err(errno("chown", path))?;
        rustix::fs::fchmod(dir, Mode::from_raw_mode(meta.mode)).map_err(errno("chmod", path))?;
        for (k, v) in &meta.xattrs {
            set_xattr(rustix::fs::fsetxattr(dir, k.as_os_str(), v, XattrFlags::empty()), k, path)?;
        }
        Ok(())
    }

    /// Metadata of a symlink or device, by name: opening either would follow or open it.
    fn set_node_meta(&self, parent: &OwnedFd, name: &OsStr, meta: &Meta, chmod: bool, path: &str) -> Result<()> {
        let (uid, gid) = meta.owner();
        rustix::fs::chownat(parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW).map_err(errno("chown", path))?;
        if chmod {
            rustix::fs::chmodat(parent, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(errno("chmod", path))?;
        }
        if !meta.xattrs.is_empty() {
            // No fd-relative lsetxattr before Linux 6.13: name the node through the parent's
            // fd link, which resolves to the directory we hold, not to any path an entry made.
            let mut through_fd = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd()));
            through_fd.push(name);
            for (k, v) in &meta.xattrs {
                set_xattr(rustix::fs::lsetxattr(&through_fd, k.as_os_str(), v, XattrFlags::empty()), k, path)?;
            }
        }
        rustix::fs::utimensat(parent, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(errno("setting times of", path))
    }

    /// Apply directory mtimes, deepest last-created first; a directory since removed by a
    /// later entry is skipped.
    fn finish(&mut self) {
        let times = std::mem::take(&mut self.dir_times);
        self.cache = None;
        for (comps, t) in times.iter().rev() {
            if let Ok(dir) = self.open_dir(comps, false, "") {
                let _ = rustix::fs::futimens(&dir, t);
            }
        }
    }
}

/// An xattr the file system does not support (e.g. `security.selinux` on a host without it)
/// is skipped, as containerd does; any other failure is an error.
fn set_xattr(r: rustix::io::Result<()>, name: &OsStr, path: &str) -> Result<()> {
    match r {
        Ok(()) => Ok(()),
        Err(Errno::NOTSUP) => {
            tracing::debug!(xattr = %name.to_string_lossy(), path, "xattr not supported here; skipped");
            Ok(())
        }
        Err(e) => Err(UnpackError::Io {
            op: "setting xattr on",
            path: format!("{path} ({})", name.to_string_lossy()),
            source: e.into(),
        }),
    }
}

/// Remove `name` (a file or a whole tree) under `parent` without following symlinks.
pub(crate) fn remove_at(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let dir = rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty())?;
    let mut names = Vec::new();
    for e in Dir::read_from(&dir)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsString::from_vec(n.to_vec()));
        }
    }
    for n in names {
        remove_at(dir.as_fd(), &n)?;
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

#[cfg(test)]
mod tests;
