//! Upstream's atomic writer layout for API-backed volumes (configMap, secret, downwardAPI,
//! projected): the files live in a hidden timestamped directory, `..data` is a symlink to it,
//! and every user-visible top-level name is a symlink through `..data`. An update writes a new
//! timestamped directory and swaps `..data` with one `rename(2)`, so a container reading the
//! volume sees either the old or the new set of files, never a mix — and applications that
//! watch `..data` (inotify) see exactly one change.
//!
//! ```text
//! <dir>/..data        -> ..2025_01_02_03_04_05.123456789
//! <dir>/key           -> ..data/key
//! <dir>/sub           -> ..data/sub          (for "sub/file")
//! <dir>/..2025_01_02_03_04_05.123456789/{key,sub/file}
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path};

/// The content of one file of a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileProjection {
    pub(crate) data: Vec<u8>,
    /// Permission bits (`defaultMode`/`mode`).
    pub(crate) mode: u32,
}

/// Relative path → content.
pub(crate) type Payload = BTreeMap<String, FileProjection>;

const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";
const MAX_FILE_NAME: usize = 255;
const MAX_PATH: usize = 4096;

/// Project `payload` into `target` (which must exist). Returns whether anything changed; an
/// unchanged payload touches nothing. Paths must be relative, without `..` elements and not
/// start with `..` (reserved for the writer); the error text is upstream's.
pub(crate) fn write(target: &Path, payload: &Payload) -> io::Result<bool> {
    let mut clean = Payload::new();
    for (path, file) in payload {
        clean.insert(validate_path(path)?, file.clone());
    }

    let data_dir = target.join(DATA_DIR);
    let old_ts = match fs::read_link(&data_dir) {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut to_remove = BTreeSet::new();
    if let Some(old) = &old_ts {
        // `..data` is ours, but never follow it anywhere but a sibling timestamped directory.
        let name = old.to_str().filter(|n| n.starts_with("..") && !n.contains('/')).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("unexpected target of {}: {old:?}", data_dir.display()))
        })?;
        let old_dir = target.join(name);
        let mut existing = BTreeSet::new();
        walk(&old_dir, "", &mut existing)?;
        let mut wanted = BTreeSet::new();
        for path in clean.keys() {
            let mut p = path.as_str();
            loop {
                wanted.insert(p.to_string());
                match p.rfind('/') {
                    Some(i) => p = &p[..i],
                    None => break,
                }
            }
        }
        to_remove = existing.difference(&wanted).cloned().collect();
        if to_remove.is_empty() && !payload_differs(&clean, &old_dir)? {
            return Ok(false);
        }
    }

    let ts_dir = new_timestamp_dir(target)?;
    let ts_name = ts_dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let result = (|| {
        for (path, file) in &clean {
            let full = ts_dir.join(path);
            if let Some(parent) = full.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&full, &file.data)?;
            // Set the mode explicitly: the umask applied at creation must not matter.
            fs::set_permissions(&full, fs::Permissions::from_mode(file.mode & 0o7777))?;
        }
        for path in clean.keys() {
            let top = path.split('/').next().unwrap_or(path);
            let visible = target.join(top);
            match fs::symlink_metadata(&visible) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => symlink(Path::new(DATA_DIR).join(top), &visible)?,
                Err(e) => return Err(e),
            }
        }
        let tmp_link = target.join(NEW_DATA_DIR);
        match fs::remove_file(&tmp_link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        symlink(&ts_name, &tmp_link)?;
        fs::rename(&tmp_link, &data_dir)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(target.join(NEW_DATA_DIR));
        let _ = fs::remove_dir_all(&ts_dir);
        return Err(e);
    }

    // The new content is live; now drop what it no longer has. Only top-level names are
    // symlinks in the target; deeper paths vanished with the old timestamped directory.
    for path in to_remove.iter().filter(|p| !p.contains('/')) {
        match fs::remove_file(target.join(path)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    if let Some(old) = old_ts.as_ref().and_then(|p| p.to_str()).filter(|old| *old != ts_name) {
        match fs::remove_dir_all(target.join(old)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(true)
}

/// Upstream's `validatePath`; returns the cleaned path.
fn validate_path(path: &str) -> io::Result<String> {
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
    if path.is_empty() {
        return Err(invalid(format!("invalid path: must not be empty: {path:?}")));
    }
    if path.starts_with('/') {
        return Err(invalid(format!("invalid path: must be relative path: {path}")));
    }
    if path.len() > MAX_PATH {
        return Err(invalid(format!("invalid path: must be less than or equal to {MAX_PATH} characters")));
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(invalid(format!("invalid path: must not contain '..': {path}")));
        }
        if item.len() > MAX_FILE_NAME {
            return Err(invalid(format!(
                "invalid path: filenames must be less than or equal to {MAX_FILE_NAME} characters"
            )));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(invalid(format!("invalid path: must not start with '..': {path}")));
    }
    let clean: Vec<&str> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    if clean.is_empty() {
        return Err(invalid(format!("invalid path: must not be empty: {path:?}")));
    }
    Ok(clean.join("/"))
}

/// All paths under `dir`, relative, without following symlinks.
fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &rel, out)?;
        }
        out.insert(rel);
    }
    Ok(())
}

/// Whether any file's content or mode differs from what `old_dir` holds.
fn payload_differs(payload: &Payload, old_dir: &Path) -> io::Result<bool> {
    for (path, file) in payload {
        let full = old_dir.join(path);
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        if !meta.is_file() || meta.permissions().mode() & 0o7777 != file.mode & 0o7777 {
            return Ok(true);
        }
        if fs::read(&full)? != file.data {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `..YYYY_MM_DD_HH_MM_SS.<random>`, mode 0755 so every user in the container can traverse it.
fn new_timestamp_dir(target: &Path) -> io::Result<std::path::PathBuf> {
    let stamp = jiff::Timestamp::now().strftime("..%Y_%m_%d_%H_%M_%S.").to_string();
    for _ in 0..100 {
        let dir = target.join(format!("{stamp}{}", rand::random_range(0..1_000_000_000u32)));
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, "could not create a unique timestamped directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection { data: data.as_bytes().to_vec(), mode }
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }

    #[test]
    fn layout_update_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        let mut p = Payload::new();
        p.insert("a".into(), file("1", 0o644));
        p.insert("sub/b".into(), file("2", 0o600));
        assert!(write(t, &p).unwrap());
        assert_eq!(fs::read_link(t.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(fs::read_link(t.join("sub")).unwrap(), Path::new("..data/sub"));
        let ts1 = fs::read_link(t.join("..data")).unwrap();
        assert!(ts1.to_str().unwrap().starts_with("..20"), "{ts1:?}");
        assert_eq!(read(&t.join("a")), "1");
        assert_eq!(read(&t.join("sub/b")), "2");
        let mode = fs::metadata(t.join("sub/b")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // Same content: nothing is rewritten.
        assert!(!write(t, &p).unwrap());
        assert_eq!(fs::read_link(t.join("..data")).unwrap(), ts1);

        // Change one file and drop another: a new timestamped dir, the old one is gone.
        let mut p2 = Payload::new();
        p2.insert("a".into(), file("changed", 0o644));
        assert!(write(t, &p2).unwrap());
        let ts2 = fs::read_link(t.join("..data")).unwrap();
        assert_ne!(ts1, ts2);
        assert!(!t.join(&ts1).exists());
        assert_eq!(read(&t.join("a")), "changed");
        assert!(fs::symlink_metadata(t.join("sub")).is_err(), "removed names disappear");
        assert!(!t.join("..data_tmp").exists());

        // A mode change alone is an update too.
        let mut p3 = Payload::new();
        p3.insert("a".into(), file("changed", 0o400));
        assert!(write(t, &p3).unwrap());
        assert_eq!(fs::metadata(t.join("a")).unwrap().permissions().mode() & 0o777, 0o400);
    }

    #[test]
    fn empty_payload_still_creates_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(dir.path(), &Payload::new()).unwrap());
        assert!(dir.path().join("..data").is_dir());
    }

    #[test]
    fn rejects_bad_paths_with_upstream_messages() {
        let dir = tempfile::tempdir().unwrap();
        for (path, msg) in [
            ("", "invalid path: must not be empty: \"\""),
            ("/abs", "invalid path: must be relative path: /abs"),
            ("a/../b", "invalid path: must not contain '..': a/../b"),
            ("..hidden", "invalid path: must not start with '..': ..hidden"),
        ] {
            let mut p = Payload::new();
            p.insert(path.into(), file("x", 0o644));
            let err = write(dir.path(), &p).unwrap_err();
            assert_eq!(err.to_string(), msg);
        }
        // Nothing was created by the failed writes.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut p = Payload::new();
        p.insert("./x/".into(), file("x", 0o644));
        assert!(write(dir.path(), &p).unwrap());
        assert_eq!(read(&dir.path().join("x")), "x");
    }
}
