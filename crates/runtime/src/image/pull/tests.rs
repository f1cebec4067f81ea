//! Pull tests against Debian's `docker-registry` on 127.0.0.1 (filled with skopeo), with and
//! without auth. They need root (unpacking), `docker-registry`, `skopeo` and `htpasswd`.

use std::fs;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;
use crate::image::testutil::{Registry, TestImage, TokenProxy, require_root, simple_layer};
use crate::image::{ImportOptions, Progress};

fn new_store() -> (tempfile::TempDir, ImageStore) {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    (dir, store)
}

/// Push `img` to `reg` as `dest` through an OCI archive.
fn push(reg: &Registry, img: &TestImage, dest: &str, creds: Option<(&str, &str)>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.tar");
    fs::write(&path, img.oci_archive(None)).unwrap();
    reg.push(&format!("oci-archive:{}", path.display()), dest, creds, false);
}

fn recorder() -> (ProgressFn, Arc<Mutex<Vec<Progress>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = events.clone();
    (Arc::new(move |p| e2.lock().unwrap().push(p)), events)
}

fn assert_empty(store: &ImageStore) {
    assert!(store.list().unwrap().is_empty());
    for sub in ["blobs/sha256", "layers", "tmp"] {
        assert_eq!(fs::read_dir(store.dir().join(sub)).unwrap().count(), 0, "{sub} should be empty");
    }
}

#[tokio::test]
async fn pulls_by_tag_and_digest_and_skips_what_it_has() {
    let (_d, store) = new_store();
    let reg = Registry::start(None);
    let img = TestImage::new(&[simple_layer("one"), simple_layer("two")], true);
    push(&reg, &img, "library/busybox:1.36", None);

    let (cb, events) = recorder();
    let reference = format!("{}/library/busybox:1.36", reg.addr);
    let pulled = store.pull(&reference, &PullOptions::default(), Some(cb)).await.unwrap();
    assert_eq!(pulled.id, img.id());
    assert_eq!(pulled.repo_tags, std::slice::from_ref(&reference));
    assert_eq!(pulled.repo_digests.len(), 1);
    assert_eq!(pulled.cmd, ["sh"]);
    let layers = store.rootfs_layers(&reference).unwrap();
    assert_eq!(fs::read(layers[0].join("etc/motd")).unwrap(), b"two");
    {
        let ev = events.lock().unwrap();
        assert!(matches!(ev.first(), Some(Progress::Resolved { layers: 2, .. })));
        let done: Vec<_> =
            ev.iter().filter(|e| matches!(e, Progress::Downloading { done, total, .. } if done == total)).collect();
        assert_eq!(done.len(), 2, "each layer downloaded to the end");
        assert_eq!(ev.iter().filter(|e| matches!(e, Progress::Unpacked { .. })).count(), 2);
        assert!(matches!(ev.last(), Some(Progress::Done { .. })));
    }

    // Again: the registry is asked (pull always pulls) but no layer is fetched.
    let (cb, events) = recorder();
    store.pull(&reference, &PullOptions::default(), Some(cb)).await.unwrap();
    {
        let ev = events.lock().unwrap();
        assert_eq!(ev.iter().filter(|e| matches!(e, Progress::LayerExists { .. })).count(), 2);
        assert!(!ev.iter().any(|e| matches!(e, Progress::Downloading { .. })));
    }

    // By digest, into a fresh store.
    let digest = pulled.repo_digests[0].split('@').nth(1).unwrap().to_string();
    let (_d2, other) = new_store();
    let by_digest = format!("{}/library/busybox@{digest}", reg.addr);
    let i = other.pull(&by_digest, &PullOptions::default(), None).await.unwrap();
    assert_eq!(i.id, img.id());
    assert!(i.repo_tags.is_empty());
    assert_eq!(i.repo_digests, std::slice::from_ref(&by_digest));
    assert_eq!(other.resolve(&by_digest).unwrap(), img.id());
}

#[tokio::test]
async fn picks_this_platform_from_an_index() {
    let (_d, store) = new_store();
    let reg = Registry::start(None);
    let mine = TestImage::new(&[simple_layer("mine")], true);
    let foreign = TestImage::with_arch(&[simple_layer("foreign")], true, "s390x");
    let (_, arch) = oci::host_platform();
    let entry = |img: &TestImage, arch: &str| {
        json!({"mediaType": oci::OCI_MANIFEST, "digest": img.manifest_digest(), "size": img.manifest.len(),
               "platform": {"os": "linux", "architecture": arch}})
    };
    let layout = |entries: Vec<serde_json::Value>, imgs: &[&TestImage]| {
        let dir = tempfile::tempdir().unwrap();
        let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": oci::OCI_INDEX, "manifests": entries}))
            .unwrap();
        let d = Digest::of(&index);
        fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        fs::write(dir.path().join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        fs::write(dir.path().join("blobs/sha256").join(d.hex()), &index).unwrap();
        for img in imgs {
            for (bd, b) in img.blobs() {
                fs::write(dir.path().join("blobs/sha256").join(bd.hex()), b).unwrap();
            }
        }
        let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": oci::OCI_INDEX, "digest": d.to_string(), "size": index.len()}]});
        fs::write(dir.path().join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
        (dir, d)
    };
    let (multi, index_digest) = layout(vec![entry(&foreign, "s390x"), entry(&mine, arch)], &[&foreign, &mine]);
    reg.push(&format!("oci:{}", multi.path().display()), "multi:1", None, true);
    let i = store.pull(&format!("{}/multi:1", reg.addr), &PullOptions::default(), None).await.unwrap();
    assert_eq!(i.id, mine.id());
    assert_eq!(i.repo_digests, [format!("{}/multi@{index_digest}", reg.addr)]);

    let (only_foreign, _) = layout(vec![entry(&foreign, "s390x")], &[&foreign]);
    reg.push(&format!("oci:{}", only_foreign.path().display()), "foreign:1", None, true);
    let (_d2, other) = new_store();
    let err = other.pull(&format!("{}/foreign:1", reg.addr), &PullOptions::default(), None).await.unwrap_err();
    assert!(matches!(err, ImageError::PlatformNotFound { .. }), "{err}");
    assert_empty(&other);
}

#[tokio::test]
async fn tampered_registry_content_is_refused() {
    let (_d, store) = new_store();
    let reg = Registry::start(None);
    let img = TestImage::new(&[simple_layer("good")], true);
    push(&reg, &img, "tampered:1", None);
    // Same length, different bytes: only the digest check can tell.
    let data = reg.blob_data(&Digest::of(&img.layers[0]));
    let mut bytes = fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&data, &bytes).unwrap();
    let err = store.pull(&format!("{}/tampered:1", reg.addr), &PullOptions::default(), None).await.unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{}", err.full_message());
    assert_empty(&store);

    let err = store.pull(&format!("{}/missing:1", reg.addr), &PullOptions::default(), None).await.unwrap_err();
    assert!(matches!(err, ImageError::Registry { .. }), "{err}");
    assert_empty(&store);
}

#[tokio::test]
async fn basic_auth() {
    let (_d, store) = new_store();
    let reg = Registry::start(Some(("alice", "s3cret")));
    let img = TestImage::new(&[simple_layer("private")], true);
    push(&reg, &img, "private/app:1", Some(("alice", "s3cret")));
    let reference = format!("{}/private/app:1", reg.addr);

    let err = store.pull(&reference, &PullOptions::default(), None).await.unwrap_err();
    assert!(matches!(err, ImageError::Registry { .. }), "{err}");
    let wrong = PullOptions {
        auth: Some(AuthConfig { username: "alice".into(), password: "nope".into(), identity_token: None }),
        ..PullOptions::default()
    };
    assert!(store.pull(&reference, &wrong, None).await.is_err());
    assert_empty(&store);
    let right = PullOptions {
        auth: Some(AuthConfig { username: "alice".into(), password: "s3cret".into(), identity_token: None }),
        ..PullOptions::default()
    };
    assert_eq!(store.pull(&reference, &right, None).await.unwrap().id, img.id());
}

#[tokio::test]
async fn bearer_token_auth() {
    let (_d, store) = new_store();
    let reg = Registry::start(None);
    let img = TestImage::new(&[simple_layer("token")], true);
    push(&reg, &img, "tok/app:1", None);
    let proxy = TokenProxy::start(&reg.addr, "bob", "pw", "the-token");
    let reference = format!("{}/tok/app:1", proxy.addr);

    assert!(store.pull(&reference, &PullOptions::default(), None).await.is_err(), "anonymous is refused");
    // Credentials traded for a token through the Bearer challenge.
    let creds = PullOptions {
        auth: Some(AuthConfig { username: "bob".into(), password: "pw".into(), identity_token: None }),
        ..PullOptions::default()
    };
    assert_eq!(store.pull(&reference, &creds, None).await.unwrap().id, img.id());
    // A token given directly.
    let (_d2, other) = new_store();
    let token = PullOptions {
        auth: Some(AuthConfig { identity_token: Some("the-token".into()), ..AuthConfig::default() }),
        ..PullOptions::default()
    };
    assert_eq!(other.pull(&reference, &token, None).await.unwrap().id, img.id());
}

/// Our own export is what the registry gets (skopeo accepts it) and pulls back identically.
#[tokio::test]
async fn export_push_pull_round_trip() {
    let (_d, store) = new_store();
    let reg = Registry::start(None);
    let img = TestImage::new(&[simple_layer("round")], false);
    store.import_reader(&img.docker_archive(&["round:1"])[..], None, "t", &ImportOptions::default(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.tar");
    store.export(&["round:1"], fs::File::create(&path).unwrap()).unwrap();
    reg.push(&format!("oci-archive:{}:1", path.display()), "round:1", None, false);
    let (_d2, other) = new_store();
    let i = other.pull(&format!("{}/round:1", reg.addr), &PullOptions::default(), None).await.unwrap();
    assert_eq!(i.id, img.id());
    // skopeo compresses uncompressed layers for the registry: same diffids, other blobs.
    let diff_ids =
        |s: &ImageStore, r: &str| s.inspect(r).unwrap().layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>();
    assert_eq!(diff_ids(&store, "round:1"), diff_ids(&other, &i.id));
    assert_eq!(other.inspect(&i.id).unwrap().layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
}

/// Docker schema 2 manifests and media types pull, and export to an archive skopeo reads.
#[tokio::test]
async fn docker_schema2_images_pull_and_export() {
    let (_d, store) = new_store();
    let reg = Registry::start(None);
    let img = TestImage::new(&[simple_layer("v2s2")], true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.tar");
    fs::write(&path, img.oci_archive(None)).unwrap();
    reg.push_with(&format!("oci-archive:{}", path.display()), "docker:1", None, &["--format", "v2s2"]);
    let i = store.pull(&format!("{}/docker:1", reg.addr), &PullOptions::default(), None).await.unwrap();
    let details = store.inspect(&i.id).unwrap();
    assert_eq!(details.manifest_media_type, oci::DOCKER_MANIFEST);
    assert_eq!(details.layers[0].media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip");
    let cfg: serde_json::Value = serde_json::from_slice(&img.config).unwrap();
    assert_eq!(details.layers[0].diff_id, cfg["rootfs"]["diff_ids"][0].as_str().unwrap());
    let out = dir.path().join("export.tar");
    store.export(&[&i.id], fs::File::create(&out).unwrap()).unwrap();
    let insp = std::process::Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci-archive:{}", out.display()))
        .output()
        .unwrap();
    assert!(insp.status.success(), "skopeo inspect: {}", String::from_utf8_lossy(&insp.stderr));
    let (_d2, other) = new_store();
    let back = other.import_reader(fs::File::open(&out).unwrap(), None, "e", &ImportOptions::default(), None).unwrap();
    assert_eq!(back[0].id, i.id);
}

/// A layer listed twice in a manifest is downloaded and unpacked once.
#[tokio::test]
async fn duplicate_layers_are_fetched_once() {
    let (_d, store) = new_store();
    let reg = Registry::start(None);
    let base = simple_layer("dup");
    let img = TestImage::new(&[base.clone(), simple_layer("mid"), base], true);
    push(&reg, &img, "dup:1", None);
    let (cb, events) = recorder();
    let i = store.pull(&format!("{}/dup:1", reg.addr), &PullOptions::default(), Some(cb)).await.unwrap();
    assert_eq!(i.id, img.id());
    assert_eq!(store.rootfs_layers(&i.id).unwrap().len(), 2);
    let ev = events.lock().unwrap();
    assert_eq!(ev.iter().filter(|e| matches!(e, Progress::Unpacked { .. })).count(), 2);
    assert_eq!(ev.iter().filter(|e| matches!(e, Progress::Downloading { done: 0, .. })).count(), 2);
}
