//! Import tests: every archive format, and every bad input leaves the store as it was.
//! Unpacking needs root.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::image::testutil::{Layer, TestImage, archive, gzip, require_root, simple_layer};

fn new_store() -> (tempfile::TempDir, ImageStore) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    (dir, store)
}

fn import(store: &ImageStore, bytes: &[u8]) -> Result<Vec<Image>> {
    store.import_reader(bytes, Some(bytes.len() as u64), "test.tar", &ImportOptions::default(), None)
}

/// Nothing but the (empty) metadata: no blobs, layers or scratch dirs.
fn assert_empty(store: &ImageStore) {
    assert!(store.list().unwrap().is_empty());
    for sub in ["blobs/sha256", "layers", "tmp"] {
        let n = fs::read_dir(store.dir().join(sub)).unwrap().count();
        assert_eq!(n, 0, "{sub} should be empty");
    }
}

#[test]
fn imports_a_docker_save_archive() {
    let (_d, store) = new_store();
    let img = TestImage::new(&[simple_layer("one"), Layer::new().file("etc/.wh.motd", b"").build()], false);
    let progress = Arc::new(Mutex::new(Vec::new()));
    let p2 = progress.clone();
    let cb: ProgressFn = Arc::new(move |p| p2.lock().unwrap().push(p));
    let bytes = img.docker_archive(&["busybox:1.36"]);
    let out =
        store.import_reader(&bytes[..], Some(bytes.len() as u64), "x", &ImportOptions::default(), Some(cb)).unwrap();
    assert_eq!(out.len(), 1);
    let i = &out[0];
    assert_eq!(i.id, img.id());
    assert_eq!(i.repo_tags, ["docker.io/library/busybox:1.36"]);
    assert_eq!(i.cmd, ["sh"]);
    assert_eq!(i.env.len(), 1);
    let layers = store.rootfs_layers("busybox:1.36").unwrap();
    assert_eq!(layers.len(), 2);
    // Top-most first: the whiteout layer, then the base.
    assert!(fs::symlink_metadata(layers[0].join("etc/motd")).unwrap().file_type().is_char_device());
    assert_eq!(fs::read(layers[1].join("etc/motd")).unwrap(), b"one");
    let events = progress.lock().unwrap();
    assert!(events.iter().any(|e| matches!(e, Progress::Reading { .. })));
    assert_eq!(events.iter().filter(|e| matches!(e, Progress::Unpacked { .. })).count(), 2);
    assert!(matches!(events.last(), Some(Progress::Done { .. })));
    assert_eq!(fs::read_dir(store.dir().join("tmp")).unwrap().count(), 0, "scratch dir removed");
}

#[test]
fn imports_oci_archives_layouts_and_gzip() {
    let (d, store) = new_store();
    let img = TestImage::new(&[simple_layer("oci")], true);
    // A full reference in the ref name names the image; a bare tag does not.
    let out = import(&store, &img.oci_archive(Some("example.com/app:v1"))).unwrap();
    assert_eq!(out[0].repo_tags, ["example.com/app:v1"]);
    assert_eq!(out[0].repo_digests, [format!("example.com/app@{}", img.manifest_digest())]);

    let other = TestImage::new(&[simple_layer("layout")], false);
    let layout = d.path().join("layout");
    other.write_layout(&layout, Some("latest"));
    let opts = ImportOptions { tag: Some("local/layout:1".into()) };
    let out = store.import(&layout, &opts, None).unwrap();
    assert_eq!(out[0].repo_tags, ["docker.io/local/layout:1"]);

    // A gzip-compressed docker archive.
    let third = TestImage::new(&[simple_layer("gz")], false);
    let out = import(&store, &gzip(&third.docker_archive(&["gz:latest"]))).unwrap();
    assert_eq!(out[0].id, third.id());
    assert_eq!(store.list().unwrap().len(), 3);
}

#[test]
fn imports_through_a_multi_platform_index() {
    let (_d, store) = new_store();
    let mine = TestImage::new(&[simple_layer("mine")], true);
    let foreign = TestImage::with_arch(&[simple_layer("s390x")], true, "s390x");
    let (_, arch) = oci::host_platform();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_INDEX,
        "manifests": [
            {"mediaType": oci::OCI_MANIFEST, "digest": foreign.manifest_digest(), "size": foreign.manifest.len(),
             "platform": {"os": "linux", "architecture": "s390x"}},
            {"mediaType": oci::OCI_MANIFEST, "digest": mine.manifest_digest(), "size": mine.manifest.len(),
             "platform": {"os": "linux", "architecture": arch}},
        ],
    }))
    .unwrap();
    let index_digest = Digest::of(&index);
    let top = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
        {"mediaType": oci::OCI_INDEX, "digest": index_digest.to_string(), "size": index.len(),
         "annotations": {"io.containerd.image.name": "docker.io/library/multi:1"}},
    ]}))
    .unwrap();
    // Only this platform's blobs need to be present (skopeo copies one platform by default).
    let mut files = vec![("oci-layout".to_string(), b"{}".to_vec()), ("index.json".into(), top)];
    files.push((format!("blobs/sha256/{}", index_digest.hex()), index.clone()));
    for (d, b) in mine.blobs() {
        files.push((format!("blobs/sha256/{}", d.hex()), b));
    }
    let out = import(&store, &archive(&files)).unwrap();
    assert_eq!(out[0].id, mine.id());
    assert_eq!(out[0].repo_digests, [format!("docker.io/library/multi@{index_digest}")]);
    assert_eq!(store.resolve(&format!("multi@{index_digest}")).unwrap(), mine.id());
}

#[test]
fn other_platforms_only_is_an_error() {
    let (_d, store) = new_store();
    let foreign = TestImage::with_arch(&[simple_layer("x")], false, "s390x");
    let err = import(&store, &foreign.docker_archive(&["foreign:1"])).unwrap_err();
    assert!(matches!(err, ImageError::WrongPlatform { .. }), "{err}");
    let err = import(&store, &foreign.oci_archive(None)).unwrap_err();
    assert!(matches!(err, ImageError::WrongPlatform { .. }), "{err}");
    assert_empty(&store);
}

#[test]
fn bad_archives_fail_cleanly() {
    let (_d, store) = new_store();
    let good = TestImage::new(&[simple_layer("good")], true);

    // A blob whose content does not match its name.
    let mut files = vec![("index.json".to_string(), good.index_json(None))];
    for (d, mut b) in good.blobs() {
        if b == good.layers[0] {
            b[20] ^= 0xff;
        }
        files.push((format!("blobs/sha256/{}", d.hex()), b));
    }
    let err = import(&store, &archive(&files)).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert_empty(&store);

    // A corrupt layer whose digest matches the manifest (the manifest was made for it): the
    // gzip stream breaks, or the content does not match the config's diffid.
    let mut corrupt = TestImage::new(&[simple_layer("c")], true);
    let n = corrupt.layers[0].len();
    corrupt.layers[0].truncate(n / 2);
    corrupt.rebuild_manifest();
    let err = import(&store, &corrupt.oci_archive(None)).unwrap_err();
    assert!(matches!(err, ImageError::Unpack { .. }), "{err}");
    assert_empty(&store);

    let mut swapped = TestImage::new(&[simple_layer("s")], false);
    swapped.layers[0] = simple_layer("not what the config says");
    swapped.rebuild_manifest();
    let err = import(&store, &swapped.oci_archive(None)).unwrap_err();
    assert!(err.full_message().contains("the image config says"), "{}", err.full_message());
    assert_empty(&store);

    // A path-traversal layer.
    let evil =
        TestImage::new(&[Layer::new().raw("../../etc/passwd", tar::EntryType::Regular, b"x", None).build()], false);
    let err = import(&store, &evil.docker_archive(&["evil:1"])).unwrap_err();
    assert!(err.full_message().contains("escapes the layer"), "{}", err.full_message());
    assert_empty(&store);

    // An unknown layer media type.
    let mut zstd = TestImage::new(&[simple_layer("z")], false);
    zstd.layer_types[0] = "application/vnd.oci.image.layer.v1.tar+zstd".into();
    zstd.rebuild_manifest();
    let err = import(&store, &zstd.oci_archive(None)).unwrap_err();
    assert!(matches!(err, ImageError::UnknownMediaType { .. }), "{err}");

    // A descriptor size that lies.
    let mut liar = TestImage::new(&[simple_layer("l")], false);
    liar.rebuild_manifest();
    let m: serde_json::Value = serde_json::from_slice(&liar.manifest).unwrap();
    let mut m2 = m.clone();
    m2["layers"][0]["size"] = json!(1);
    liar.manifest = serde_json::to_vec(&m2).unwrap();
    let err = import(&store, &liar.oci_archive(None)).unwrap_err();
    assert!(matches!(err, ImageError::SizeMismatch { .. }), "{err}");

    // Not an archive at all, a truncated archive, an archive missing a layer.
    assert!(matches!(import(&store, b"hello"), Err(ImageError::NotAnArchive(..))));
    let full = good.oci_archive(None);
    assert!(import(&store, &full[..full.len() / 3]).is_err());
    let missing: Vec<(String, Vec<u8>)> = vec![("index.json".into(), good.index_json(None))];
    let err = import(&store, &archive(&missing)).unwrap_err();
    assert!(err.to_string().contains("missing from the archive"), "{err}");
    assert_empty(&store);

    // After all that, a good import still works.
    import(&store, &good.oci_archive(None)).unwrap();
}

#[test]
fn identical_layers_are_unpacked_once() {
    let (_d, store) = new_store();
    let base = simple_layer("base");
    let a = TestImage::new(&[base.clone(), Layer::new().file("a", b"a").build()], false);
    let b = TestImage::new(&[base.clone(), Layer::new().file("b", b"b").build()], true);
    import(&store, &a.docker_archive(&["a:1"])).unwrap();
    let before = fs::metadata(store.rootfs_layers("a:1").unwrap()[1].join("etc/motd")).unwrap();
    let events = Arc::new(Mutex::new(0));
    let e2 = events.clone();
    let cb: ProgressFn = Arc::new(move |p| {
        if matches!(p, Progress::Unpacked { .. }) {
            *e2.lock().unwrap() += 1;
        }
    });
    store.import_reader(&b.oci_archive(Some("b:1"))[..], None, "b", &ImportOptions::default(), Some(cb)).unwrap();
    assert_eq!(*events.lock().unwrap(), 1, "only b's own layer is unpacked");
    let la = store.rootfs_layers("a:1").unwrap();
    let lb = store.rootfs_layers("b:1").unwrap();
    assert_eq!(la[1], lb[1], "the base layer dir is shared");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(lb[1].join("etc/motd")).unwrap().ino(), before.ino());
    assert_eq!(fs::read_dir(store.dir().join("layers")).unwrap().count(), 3);
}

#[test]
fn tag_option_needs_exactly_one_image() {
    let (_d, store) = new_store();
    let a = TestImage::new(&[simple_layer("a")], false);
    let b = TestImage::new(&[simple_layer("b")], false);
    let mut files = Vec::new();
    let index = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": oci::OCI_MANIFEST, "digest": a.manifest_digest(), "size": a.manifest.len()},
        {"mediaType": oci::OCI_MANIFEST, "digest": b.manifest_digest(), "size": b.manifest.len()},
    ]});
    files.push(("index.json".to_string(), serde_json::to_vec(&index).unwrap()));
    for (d, bytes) in a.blobs().into_iter().chain(b.blobs()) {
        files.push((format!("blobs/sha256/{}", d.hex()), bytes));
    }
    let bytes = archive(&files);
    let opts = ImportOptions { tag: Some("x:1".into()) };
    assert!(store.import_reader(&bytes[..], None, "t", &opts, None).is_err());
    let out = import(&store, &bytes).unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|i| i.repo_tags.is_empty()));
}
