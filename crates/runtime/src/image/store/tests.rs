//! Store tests: lookup, removal, pins, prune, GC, export, the builder, concurrency. Images
//! are imported (unpacking needs root).

use std::collections::HashSet;
use std::fs;
use std::io::Read;

use super::*;
use crate::image::ImportOptions;
use crate::image::testutil::{Layer, TestImage, require_root, simple_layer};

fn new_store() -> (tempfile::TempDir, ImageStore) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    (dir, store)
}

fn add(store: &ImageStore, motd: &str, tags: &[&str]) -> TestImage {
    let img = TestImage::new(&[simple_layer("shared base"), simple_layer(motd)], false);
    let bytes = img.docker_archive(tags);
    store.import_reader(&bytes[..], None, "t", &ImportOptions::default(), None).unwrap();
    img
}

fn count(store: &ImageStore, sub: &str) -> usize {
    fs::read_dir(store.dir().join(sub)).unwrap().count()
}

#[test]
fn layout_is_private_and_metadata_is_json() {
    let (_d, store) = new_store();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777, 0o700);
    add(&store, "a", &["a:1"]);
    let md: serde_json::Value = serde_json::from_slice(&fs::read(store.dir().join("metadata.json")).unwrap()).unwrap();
    assert!(md["names"]["docker.io/library/a:1"]["image"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn resolves_names_ids_prefixes_and_digests() {
    let (_d, store) = new_store();
    let img = add(&store, "a", &["busybox:1.36", "busybox:latest"]);
    let id = img.id();
    for r in [
        "busybox",
        "busybox:1.36",
        "docker.io/library/busybox:latest",
        "library/busybox:1.36",
        id.as_str(),
        &id[7..19],
        &id[..19],
        &img.manifest_digest(),
        &format!("busybox@{}", img.manifest_digest()),
    ] {
        assert_eq!(store.resolve(r).unwrap(), id, "{r}");
    }
    assert!(store.status("busybox:1.35").unwrap().is_none());
    assert!(store.status("nothing").unwrap().is_none());
    assert!(matches!(store.status("Bad Name"), Err(ImageError::InvalidReference { .. })));
    let i = store.status("busybox").unwrap().unwrap();
    assert_eq!(i.repo_tags, ["docker.io/library/busybox:1.36", "docker.io/library/busybox:latest"]);
    assert_eq!(i.repo_digests, [format!("docker.io/library/busybox@{}", img.manifest_digest())]);
    assert_eq!(i.size, img.blobs().iter().map(|(_, b)| b.len() as u64).sum::<u64>());

    let details = store.inspect("busybox").unwrap();
    assert_eq!(details.layers.len(), 2);
    assert_eq!(details.config["config"]["Cmd"][0], "sh");
    assert!(details.unpacked_size > 0);
    assert!(details.layers[0].path.join("etc/motd").exists());
}

#[test]
fn ambiguous_prefixes_are_refused() {
    let (_d, store) = new_store();
    // Enough images that two ids share a first hex digit.
    let ids: Vec<String> = (0..20).map(|i| add(&store, &format!("m{i}"), &[]).id()).collect();
    let first: Vec<char> = ids.iter().map(|id| id.chars().nth(7).unwrap()).collect();
    let dup = first.iter().find(|c| first.iter().filter(|d| d == c).count() > 1).unwrap();
    let err = store.resolve(&format!("sha256:{dup}")).unwrap_err();
    assert!(matches!(err, ImageError::Ambiguous(_)), "{err}");
}

#[test]
fn remove_untags_then_deletes_and_keeps_shared_content() {
    let (_d, store) = new_store();
    let a = add(&store, "a", &["a:1", "a:2"]);
    let b = add(&store, "b", &["b:1"]);
    assert_eq!(count(&store, "layers"), 3, "base shared");
    assert_eq!(store.remove("a:1").unwrap(), Removal::Untagged("docker.io/library/a:1".into()));
    assert_eq!(store.list().unwrap().len(), 2);
    let Removal::Deleted { id, freed } = store.remove("a:2").unwrap() else { panic!("not deleted") };
    assert_eq!(id, a.id());
    assert!(freed > 0);
    assert_eq!(count(&store, "layers"), 2, "a's own layer went, the shared base stayed");
    assert!(store.rootfs_layers("b:1").unwrap().iter().all(|p| p.is_dir()));
    assert!(!store.blob_path(&Digest::parse(&a.id()).unwrap()).exists());
    assert!(matches!(store.remove("a:2"), Err(ImageError::NotFound(_))));
    store.remove(&b.id()).unwrap();
    assert_eq!(count(&store, "layers"), 0);
    assert_eq!(count(&store, "blobs/sha256"), 0);
    assert!(store.load().unwrap().layers.is_empty());
}

#[test]
fn pinned_images_are_never_removed() {
    let (_d, store) = new_store();
    let a = add(&store, "a", &["a:1"]);
    assert_eq!(store.pin("a:1", "container-1").unwrap(), a.id());
    let err = store.remove("a:1").unwrap_err();
    assert!(matches!(err, ImageError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("container-1"));
    // Untagged while pinned: dangling, but prune keeps it.
    store.tag("a:1", "a:other").unwrap();
    store.remove("a:other").unwrap();
    assert!(store.prune().unwrap().images.is_empty());
    let usage = DiskUsage { capacity: 100, available: 0 };
    let gc = store.gc_with_usage(usage, 80, 50, &HashSet::new()).unwrap();
    assert!(gc.removed.is_empty());
    assert_eq!(store.inspect("a:1").unwrap().pinned_by, ["container-1"]);
    assert!(store.unpin("container-1").unwrap());
    assert!(!store.unpin("container-1").unwrap());
    assert!(store.pins().unwrap().is_empty());
    store.remove("a:1").unwrap();
}

#[test]
fn prune_removes_dangling_images_orphans_and_dead_scratch_dirs() {
    let (_d, store) = new_store();
    let a = add(&store, "a", &["a:1"]);
    add(&store, "b", &["b:1"]);
    // `a` loses its only name to another image: dangling.
    store.tag("b:1", "a:1").unwrap();
    // Orphans: a blob and a layer dir nothing references (a crash between rename and save).
    fs::write(store.dir().join("blobs/sha256").join("ab".repeat(32)), b"orphan").unwrap();
    fs::create_dir(store.dir().join("layers").join("cd".repeat(32))).unwrap();
    // A scratch dir of a dead operation, and one of a live one.
    fs::create_dir(store.dir().join("tmp/999-dead")).unwrap();
    fs::create_dir(store.dir().join("tmp/999-just-made")).unwrap();
    let live = store.temp_area().unwrap();
    // Age everything but the fresh one past the one-minute grace.
    let old = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec { tv_sec: 1_000_000_000, tv_nsec: 0 },
        last_modification: rustix::fs::Timespec { tv_sec: 1_000_000_000, tv_nsec: 0 },
    };
    for e in fs::read_dir(store.dir().join("tmp")).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "999-just-made" {
            rustix::fs::utimensat(rustix::fs::CWD, e.path(), &old, rustix::fs::AtFlags::empty()).unwrap();
        }
    }
    let report = store.prune().unwrap();
    assert_eq!(report.images, [a.id()]);
    assert!(report.blobs >= 3, "{report:?}");
    assert_eq!(report.layers, 2, "a's own layer and the orphan");
    assert_eq!(report.temp_dirs, 1);
    assert!(live.dir.is_dir(), "a live operation's scratch dir is kept");
    assert!(store.dir().join("tmp/999-just-made").is_dir(), "too young to judge");
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(store.rootfs_layers("b:1").unwrap().iter().all(|p| p.is_dir()));
    drop(live);
    fs::remove_dir(store.dir().join("tmp/999-just-made")).unwrap();
    assert_eq!(count(&store, "tmp"), 0);
    assert_eq!(store.prune().unwrap(), PruneReport::default());
}

#[test]
fn gc_frees_least_recently_used_images_down_to_the_low_threshold() {
    let (_d, store) = new_store();
    let a = add(&store, "a", &["a:1"]);
    let b = add(&store, "b", &["b:1"]);
    let c = add(&store, "c", &["c:1"]);
    // Use order: b oldest, then a, then c.
    let mut md = store.load().unwrap();
    md.images.get_mut(&b.id()).unwrap().last_used = 1;
    md.images.get_mut(&a.id()).unwrap().last_used = 2;
    md.images.get_mut(&c.id()).unwrap().last_used = 3;
    let lock = store.lock().unwrap();
    store.save(&md, &lock).unwrap();
    drop(lock);

    // Below the high threshold: nothing.
    let r = store.gc_with_usage(DiskUsage { capacity: 1000, available: 300 }, 80, 60, &HashSet::new()).unwrap();
    assert_eq!((r.usage_pct, r.wanted, r.removed.len()), (70, 0, 0));
    // At 90% (high 90%, low 89%): 10 bytes wanted, one image (the least recently used, b) is enough.
    let r = store.gc_with_usage(DiskUsage { capacity: 1000, available: 100 }, 90, 89, &HashSet::new()).unwrap();
    assert_eq!(r.removed, [b.id()]);
    assert!(r.freed > 0);
    // Wanting everything never takes an image in use (by name or id).
    let in_use: HashSet<String> = ["a:1".to_string()].into();
    let r = store.gc_with_usage(DiskUsage { capacity: 1000, available: 0 }, 80, 0, &in_use).unwrap();
    assert_eq!(r.removed, [c.id()]);
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(store.rootfs_layers("a:1").unwrap().iter().all(|p| p.is_dir()));
    assert!(store.gc_with_usage(DiskUsage { capacity: 1, available: 0 }, 50, 80, &HashSet::new()).is_err());
    // The real statvfs path runs.
    store.gc(100, 90, &HashSet::new()).unwrap();
}

#[test]
fn rootfs_layers_are_top_most_first_deduplicated_and_repaired() {
    let (_d, store) = new_store();
    let base = simple_layer("base");
    let top = Layer::new().file("top", b"t").build();
    let img = TestImage::new(&[base.clone(), top.clone(), base.clone()], false);
    store.import_reader(&img.docker_archive(&["dup:1"])[..], None, "t", &ImportOptions::default(), None).unwrap();
    let layers = store.rootfs_layers("dup:1").unwrap();
    assert_eq!(layers.len(), 2);
    assert!(layers[0].ends_with(Digest::of(&base).hex()));
    assert!(layers[1].ends_with(Digest::of(&top).hex()));
    // A layer dir removed behind the store's back is unpacked again from its blob.
    fs::remove_dir_all(&layers[1]).unwrap();
    let again = store.rootfs_layers("dup:1").unwrap();
    assert_eq!(fs::read(again[1].join("top")).unwrap(), b"t");
}

#[test]
fn export_round_trips_through_import() {
    let (_d, store) = new_store();
    let img = add(&store, "x", &["x:1", "x:2"]);
    let mut out = Vec::new();
    store.export(&["x:1"], &mut out).unwrap();

    // The archive: an OCI layout plus docker's manifest.json.
    let mut names = Vec::new();
    let mut index = None;
    let mut ar = tar::Archive::new(&out[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p == "index.json" {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            index = Some(serde_json::from_str::<serde_json::Value>(&s).unwrap());
        }
        names.push(p);
    }
    assert!(names.contains(&"oci-layout".to_string()) && names.contains(&"manifest.json".to_string()));
    assert_eq!(names.iter().filter(|n| n.starts_with("blobs/sha256/")).count(), 4);
    let index = index.unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], img.manifest_digest());
    assert_eq!(index["manifests"][0]["annotations"]["io.containerd.image.name"], "docker.io/library/x:1");
    assert_eq!(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "1");

    // By id: every tag.
    let mut all = Vec::new();
    store.export(&[&img.id()], &mut all).unwrap();

    let (_d2, other) = new_store();
    let imported = other.import_reader(&all[..], None, "export", &ImportOptions::default(), None).unwrap();
    assert_eq!(imported.len(), 2, "one index entry per tag, same image");
    let i = other.status("x:2").unwrap().unwrap();
    assert_eq!(i.id, img.id());
    assert_eq!(i.repo_tags.len(), 2);
    assert_eq!(other.inspect("x:1").unwrap().manifest, img.manifest_digest());
    assert!(matches!(store.export(&["nope"], &mut Vec::new()), Err(ImageError::NotFound(_))));
}

#[test]
fn builder_adds_layers_on_top_of_an_image() {
    let (_d, store) = new_store();
    let base = add(&store, "base", &["base:1"]);
    let mut b = store.builder().unwrap();
    b.from_image("base:1").unwrap();
    let diff = b.add_layer(&Layer::new().file("etc/motd", b"built").file(".wh.bin", b"").build()[..]).unwrap();
    let img = b
        .commit(NewImageConfig {
            names: vec!["built:1".into()],
            env: vec!["PATH=/bin".into(), "X=1".into()],
            ..NewImageConfig::default()
        })
        .unwrap();
    assert_eq!(img.repo_tags, ["docker.io/library/built:1"]);
    assert_eq!(img.cmd, ["sh"], "inherited");
    assert_eq!(img.env, ["PATH=/bin", "X=1"], "PATH replaced");
    let layers = store.rootfs_layers("built:1").unwrap();
    assert_eq!(layers.len(), 3);
    assert!(layers[0].ends_with(&diff[7..]));
    assert_eq!(fs::read(layers[0].join("etc/motd")).unwrap(), b"built");
    assert_eq!(store.rootfs_layers("base:1").unwrap()[..], layers[1..]);
    // The built image exports and re-imports like any other.
    let mut out = Vec::new();
    store.export(&["built:1"], &mut out).unwrap();
    let (_d2, other) = new_store();
    other.import_reader(&out[..], None, "b", &ImportOptions::default(), None).unwrap();
    assert_eq!(other.resolve("built:1").unwrap(), img.id);
    assert_ne!(img.id, base.id());
}

/// Several writers at once (threads here; the e2e tests use processes) never lose an image
/// or corrupt the metadata.
#[test]
fn concurrent_imports_and_removals_stay_consistent() {
    let (_d, store) = new_store();
    let images: Vec<TestImage> = (0..6)
        .map(|i| TestImage::new(&[simple_layer("shared"), simple_layer(&format!("own {i}"))], i % 2 == 0))
        .collect();
    let archives: Vec<Vec<u8>> =
        images.iter().enumerate().map(|(i, img)| img.docker_archive(&[&format!("img:{i}")])).collect();
    std::thread::scope(|s| {
        for (i, a) in archives.iter().enumerate() {
            let store = store.clone();
            s.spawn(move || {
                // Import twice: the second is a no-op commit racing the others.
                for _ in 0..2 {
                    store.import_reader(&a[..], None, "t", &ImportOptions::default(), None).unwrap();
                }
                if i % 3 == 0 {
                    store.remove(&format!("img:{i}")).unwrap();
                }
                store.prune().unwrap();
            });
        }
    });
    let list = store.list().unwrap();
    assert_eq!(list.len(), 4);
    for i in list {
        assert!(store.rootfs_layers(&i.id).unwrap().iter().all(|p| p.is_dir()));
    }
    assert_eq!(count(&store, "layers"), 5);
    assert_eq!(count(&store, "tmp"), 0);
}
