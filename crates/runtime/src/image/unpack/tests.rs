//! Unpacking tests. They create device nodes, chown and set trusted xattrs, so they need
//! root and say so.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use tar::EntryType;

use super::*;
use crate::image::testutil::{Layer, gzip, require_root};

fn unpack(tar: &[u8], dest: &Path) -> Result<Unpacked> {
    unpack_stream(tar, dest, None)
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

#[test]
fn restores_files_modes_owners_links_devices_xattrs() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    let tar = Layer::new()
        .entry("./", EntryType::Directory, 0o755, (0, 0), b"", None)
        .entry("usr/bin/su", EntryType::Regular, 0o4755, (0, 0), b"suid", None)
        .entry("home/u", EntryType::Directory, 0o750, (1000, 1001), b"", None)
        .entry("home/u/notes", EntryType::Regular, 0o600, (1000, 1001), b"mine", None)
        .symlink("bin", "usr/bin")
        .symlink("etc/abs", "/etc/passwd")
        .hardlink("usr/bin/su2", "usr/bin/su")
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/loop0", EntryType::Block, 7, 0)
        .device("run/fifo", EntryType::Fifo, 0, 0)
        .pax(&[
            ("SCHILY.xattr.user.note", b"hi"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            (
                "SCHILY.xattr.security.capability",
                b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
        ])
        .entry("usr/bin/ping", EntryType::Regular, 0o755, (0, 0), b"ping", None)
        .build();
    let out = unpack(&tar, &dest).unwrap();
    assert_eq!(out.diff_id, Digest::of(&tar));
    assert_eq!(out.size, 4 + 4 + 4);

    let su = fs::metadata(dest.join("usr/bin/su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755, "set-uid kept after chown");
    assert_eq!(su.nlink(), 2, "hard link shares the inode");
    assert_eq!(su.mtime(), 1_700_000_000);
    let home = fs::metadata(dest.join("home/u")).unwrap();
    assert_eq!((home.uid(), home.gid(), home.mode() & 0o7777), (1000, 1001, 0o750));
    assert_eq!(home.mtime(), 1_700_000_000, "directory mtimes applied after their children");
    assert_eq!(fs::metadata(dest.join("home/u/notes")).unwrap().uid(), 1000);
    assert_eq!(fs::read_link(dest.join("bin")).unwrap(), Path::new("usr/bin"));
    assert_eq!(fs::read_link(dest.join("etc/abs")).unwrap(), Path::new("/etc/passwd"));
    let null = fs::symlink_metadata(dest.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert!(fs::symlink_metadata(dest.join("dev/loop0")).unwrap().file_type().is_block_device());
    assert!(fs::symlink_metadata(dest.join("run/fifo")).unwrap().file_type().is_fifo());
    let ping = dest.join("usr/bin/ping");
    assert_eq!(xattr(&ping, "user.note").as_deref(), Some(&b"hi"[..]));
    assert!(xattr(&ping, "security.capability").is_some());
    assert_eq!(xattr(&ping, "trusted.overlay.redirect"), None, "overlay xattrs from a tar are dropped");
    // Implicit parents are created 0755.
    assert_eq!(fs::metadata(dest.join("dev")).unwrap().mode() & 0o7777, 0o755);
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    let tar = Layer::new()
        .file("etc/.wh.gone", b"")
        .dir("var/cache", 0o755)
        .file("var/cache/.wh..wh..opq", b"")
        .file(".wh..wh.plnk", b"")
        .build();
    unpack(&tar, &dest).unwrap();
    let wh = fs::symlink_metadata(dest.join("etc/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!dest.join("etc/.wh.gone").exists());
    assert_eq!(xattr(&dest.join("var/cache"), "trusted.overlay.opaque").as_deref(), Some(&b"y"[..]));
    assert!(!dest.join("var/cache/.wh..wh..opq").exists());
    assert!(!dest.join(".wh..wh.plnk").exists());
}

#[test]
fn later_entries_replace_earlier_ones() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("layer");
    let tar = Layer::new()
        .file("a/b/c", b"old")
        .file("a/b/c", b"new")
        .file("x", b"file")
        .dir("x", 0o700)
        .file("x/y", b"in dir")
        .dir("d", 0o755)
        .file("d/f", b"f")
        .symlink("d", "/tmp")
        .build();
    unpack(&tar, &dest).unwrap();
    assert_eq!(fs::read(dest.join("a/b/c")).unwrap(), b"new");
    assert_eq!(fs::read(dest.join("x/y")).unwrap(), b"in dir");
    assert_eq!(fs::read_link(dest.join("d")).unwrap(), Path::new("/tmp"));
}

/// Each malicious layer is refused and nothing lands outside the layer directory.
#[test]
fn path_traversal_is_refused() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", Layer::new().raw("../../escaped", EntryType::Regular, b"x", None).build(), "escapes the layer"),
        ("inner dotdot", Layer::new().raw("a/../../escaped", EntryType::Regular, b"x", None).build(), "escapes"),
        ("absolute", Layer::new().raw("/escaped", EntryType::Regular, b"x", None).build(), "absolute path"),
        (
            "through absolute symlink",
            Layer::new().symlink("evil", tmp.path().to_str().unwrap()).file("evil/escaped", b"x").build(),
            "goes through symlink",
        ),
        (
            "through relative symlink",
            Layer::new().symlink("evil", "../..").raw("evil/escaped", EntryType::Regular, b"x", None).build(),
            "goes through symlink",
        ),
        ("deep symlink", Layer::new().dir("a", 0o755).symlink("a/b", "/").file("a/b/escaped", b"x").build(), "\"a/b\""),
        (
            "whiteout through symlink",
            Layer::new().symlink("evil", "/").file("evil/.wh.escaped", b"").build(),
            "symlink",
        ),
        ("opaque through symlink", Layer::new().symlink("evil", "/").file("evil/.wh..wh..opq", b"").build(), "symlink"),
        ("hard link out", Layer::new().hardlink("h", "../escaped").build(), "hard link"),
        ("hard link absolute", Layer::new().hardlink("h", "/etc/passwd").build(), "hard link"),
        ("hard link missing", Layer::new().hardlink("h", "nothing").build(), "hard link"),
        (
            "hard link through symlink",
            Layer::new().symlink("evil", "/etc").hardlink("h", "evil/passwd").build(),
            "hard link",
        ),
        ("file as parent", Layer::new().file("f", b"x").file("f/g", b"y").build(), "not a directory"),
    ];
    for (i, (name, tar, want)) in cases.into_iter().enumerate() {
        let dest = tmp.path().join(format!("layer{i}"));
        let err = unpack(&tar, &dest).expect_err(name);
        assert!(err.to_string().contains(want), "{name}: {err}");
        assert!(!tmp.path().join("escaped").exists(), "{name} wrote outside the layer");
    }
    assert!(!Path::new("/escaped").exists());
}

#[test]
fn corrupt_truncated_and_mismatched_layers_fail() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let tar = Layer::new().file("big", &vec![7u8; 100_000]).file("after", b"x").build();

    // Garbage is not a tar.
    let err = unpack(&[0x55u8; 2048], &tmp.path().join("garbage")).unwrap_err();
    assert!(matches!(err, UnpackError::Corrupt(_)), "{err}");

    // Cut in the middle of a file's data.
    let err = unpack(&tar[..50_000], &tmp.path().join("cut")).unwrap_err();
    assert!(matches!(err, UnpackError::Corrupt(_)), "{err}");

    // A truncated gzip stream.
    let gz = gzip(&tar);
    let blob = tmp.path().join("blob.gz");
    fs::write(&blob, &gz[..gz.len() / 2]).unwrap();
    let err = unpack_layer(&blob, Compression::Gzip, &tmp.path().join("gz"), None, None).unwrap_err();
    assert!(matches!(err, UnpackError::Corrupt(_)), "{err}");

    // A gzip stream with flipped bytes (CRC or inflate error).
    let mut bad = gz.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    bad[mid + 1] ^= 0xff;
    fs::write(&blob, &bad).unwrap();
    assert!(unpack_layer(&blob, Compression::Gzip, &tmp.path().join("flip"), None, None).is_err());

    // Valid but not what the config says.
    fs::write(&blob, &gz).unwrap();
    let other = Digest::of(b"other");
    let err = unpack_layer(&blob, Compression::Gzip, &tmp.path().join("mismatch"), Some(&other), None).unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err}");
    let ok = unpack_layer(&blob, Compression::Gzip, &tmp.path().join("ok"), Some(&Digest::of(&tar)), None).unwrap();
    assert_eq!(ok.size, 100_001);
}

#[test]
fn empty_layer_is_fine() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let tar = Layer::new().build();
    let out = unpack(&tar, &tmp.path().join("l")).unwrap();
    assert_eq!(out.size, 0);
    assert_eq!(fs::read_dir(tmp.path().join("l")).unwrap().count(), 0);
}

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

/// The converted whiteouts mean to overlayfs what they meant in the image: a file deleted in
/// a later layer is absent, an opaque directory hides the lower one's content.
#[test]
fn overlayfs_honours_converted_whiteouts() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let lower =
        Layer::new().file("a/keep", b"k").file("a/gone", b"g").file("d/old", b"o").file("d/sub/old2", b"o").build();
    let upper =
        Layer::new().file("a/.wh.gone", b"").dir("d", 0o755).file("d/.wh..wh..opq", b"").file("d/new", b"n").build();
    unpack(&lower, &tmp.path().join("lower")).unwrap();
    unpack(&upper, &tmp.path().join("upper")).unwrap();
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let opts = format!("lowerdir={}:{}", tmp.path().join("upper").display(), tmp.path().join("lower").display());
    let st = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&mnt).status().unwrap();
    assert!(st.success(), "mounting overlayfs");
    let guard = Mounted(&mnt);
    assert!(mnt.join("a/keep").exists());
    assert!(!mnt.join("a/gone").exists(), "whiteout hides the lower file");
    assert!(mnt.join("d/new").exists());
    assert!(!mnt.join("d/old").exists() && !mnt.join("d/sub").exists(), "opaque dir hides the lower content");
    drop(guard);
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains(mnt.to_str().unwrap()), "the mount is gone");
}

/// Numeric header fields left empty (all NUL) read as 0, as Go's archive/tar reads them.
#[test]
fn empty_numeric_fields_are_zero() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_path("f").unwrap();
    h.set_size(1);
    h.as_old_mut().uid.fill(0);
    h.as_old_mut().mode.fill(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    unpack(&b.into_inner().unwrap(), &tmp.path().join("l")).unwrap();
    let m = fs::metadata(tmp.path().join("l/f")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0));
    // A field with garbage is still an error.
    h.as_old_mut().gid.copy_from_slice(b"zzzzzzz\0");
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    let err = unpack(&b.into_inner().unwrap(), &tmp.path().join("l2")).unwrap_err();
    assert!(matches!(err, UnpackError::InvalidHeader { .. }), "{err}");
}

/// An uncompressed blob already verified against the diffid is not hashed again; one not
/// verified (or verified against something else) is.
#[test]
fn verified_uncompressed_blobs_skip_the_second_hash() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let tar = Layer::new().file("f", b"x").build();
    let blob = tmp.path().join("blob");
    fs::write(&blob, &tar).unwrap();
    let d = Digest::of(&tar);
    let other = Digest::of(b"other");
    let u = unpack_layer(&blob, Compression::None, &tmp.path().join("a"), Some(&d), Some(&d)).unwrap();
    assert_eq!(u.diff_id, d);
    let err = unpack_layer(&blob, Compression::None, &tmp.path().join("b"), Some(&other), Some(&d)).unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err}");
}
