use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use serde_json::json;

use super::*;

/// An in-memory [`ObjectSource`] for tests.
#[derive(Default)]
pub(crate) struct FakeSource {
    config_maps: Mutex<BTreeMap<(String, String), ConfigMap>>,
    secrets: Mutex<BTreeMap<(String, String), Secret>>,
    services: Mutex<Vec<Service>>,
    fail: Mutex<Option<String>>,
}

impl FakeSource {
    pub(crate) fn add_config_map(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        let cm = ConfigMap {
            data: Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        };
        self.config_maps.lock().unwrap().insert((ns.into(), name.into()), cm);
    }

    pub(crate) fn set_config_map(&self, ns: &str, name: &str, cm: ConfigMap) {
        self.config_maps.lock().unwrap().insert((ns.into(), name.into()), cm);
    }

    pub(crate) fn add_secret(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        let s = Secret {
            data: Some(data.iter().map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec()))).collect()),
            ..Default::default()
        };
        self.secrets.lock().unwrap().insert((ns.into(), name.into()), s);
    }

    pub(crate) fn add_service(&self, svc: Service) {
        self.services.lock().unwrap().push(svc);
    }

    /// Every later read fails with `msg`.
    pub(crate) fn fail(&self, msg: &str) {
        *self.fail.lock().unwrap() = Some(msg.to_string());
    }

    fn check(&self) -> Result<(), SourceError> {
        match self.fail.lock().unwrap().clone() {
            Some(m) => Err(SourceError::Other(m)),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl ObjectSource for FakeSource {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, SourceError> {
        self.check()?;
        Ok(self.config_maps.lock().unwrap().get(&(namespace.into(), name.into())).cloned())
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, SourceError> {
        self.check()?;
        Ok(self.secrets.lock().unwrap().get(&(namespace.into(), name.into())).cloned())
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>, SourceError> {
        self.check()?;
        let all = self.services.lock().unwrap();
        Ok(all.iter().filter(|s| s.metadata.namespace.as_deref() == Some(namespace)).cloned().collect())
    }
}

fn pod_with(volumes: serde_json::Value, mounts: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "u-1",
                     "labels": {"b": "2", "a": "1"}, "annotations": {"k": "v"}},
        "spec": {
            "volumes": volumes,
            "containers": [{"name": "c", "volumeMounts": mounts,
                            "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "100m"}}}]
        }
    }))
    .unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

async fn setup_err(pod: &Pod, src: &FakeSource) -> String {
    let dir = tempfile::tempdir().unwrap();
    prepare(pod, dir.path(), src, &VolumeHost::default()).await.unwrap_err().to_string()
}

#[tokio::test]
async fn empty_dir_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let pod = pod_with(
        json!([{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}, {"name": "mem", "emptyDir": {"medium": "Memory"}}]),
        json!([]),
    );
    let vols = prepare(&pod, dir.path(), &FakeSource::default(), &VolumeHost::default()).await.unwrap();
    let scratch = vols.get("scratch").unwrap();
    assert_eq!(scratch.path, dir.path().join("volumes/kubernetes.io~empty-dir/scratch"));
    assert_eq!(mode(&scratch.path), 0o777);
    assert_eq!(scratch.size_limit, Some(1 << 20));
    assert!(!vols.get("mem").unwrap().tmpfs, "no tmpfs unless the host allows mounting");
    fs::write(scratch.path.join("blob"), vec![7u8; 64 * 1024]).unwrap();
    let usage = vols.empty_dir_usage().await;
    let (_, used, limit) = usage.iter().find(|(n, _, _)| n == "scratch").unwrap();
    assert!(*used >= 64 * 1024, "{used}");
    assert_eq!(*limit, Some(1 << 20));
    // Preparing again is harmless and keeps the data.
    prepare(&pod, dir.path(), &FakeSource::default(), &VolumeHost::default()).await.unwrap();
    assert!(scratch.path.join("blob").exists());
}

#[tokio::test]
async fn host_path_type_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    let sock = format!("{t}/sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    fs::write(format!("{t}/file"), "x").unwrap();
    let src = FakeSource::default();
    let ok = [
        (format!("{t}/new/dir"), "DirectoryOrCreate"),
        (t.clone(), "Directory"),
        (format!("{t}/made"), "FileOrCreate"),
        (format!("{t}/file"), "File"),
        (format!("{t}/file"), "FileOrCreate"),
        (sock.clone(), "Socket"),
        ("/dev/null".to_string(), "CharDevice"),
        (format!("{t}/missing"), ""),
    ];
    for (path, ty) in ok {
        let pod = pod_with(json!([{"name": "h", "hostPath": {"path": path, "type": ty}}]), json!([]));
        let d = tempfile::tempdir().unwrap();
        let vols = prepare(&pod, d.path(), &src, &VolumeHost::default()).await.unwrap_or_else(|e| panic!("{ty}: {e}"));
        assert_eq!(vols.get("h").unwrap().path, Path::new(&path));
    }
    assert!(Path::new(&format!("{t}/new/dir")).is_dir());
    assert!(Path::new(&format!("{t}/made")).is_file());
    assert_eq!(mode(Path::new(&format!("{t}/made"))), 0o644);

    let bad = [
        (format!("{t}/missing"), "Directory", format!("hostPath type check failed: {t}/missing is not a directory")),
        (format!("{t}/file"), "DirectoryOrCreate", format!("hostPath type check failed: {t}/file is not a directory")),
        (t.clone(), "File", format!("hostPath type check failed: {t} is not a file")),
        (format!("{t}/file"), "Socket", format!("hostPath type check failed: {t}/file is not a socket file")),
        (t.clone(), "CharDevice", format!("hostPath type check failed: {t} is not a character device")),
        ("/dev/null".into(), "BlockDevice", "hostPath type check failed: /dev/null is not a block device".into()),
        (t.clone(), "Weird", "Weird is an invalid volume type".into()),
        (format!("{t}/../x"), "", format!("invalid HostPath `{t}/../x`: must not contain '..'")),
    ];
    for (path, ty, msg) in bad {
        let pod = pod_with(json!([{"name": "h", "hostPath": {"path": path, "type": ty}}]), json!([]));
        assert_eq!(setup_err(&pod, &src).await, format!("MountVolume.SetUp failed for volume \"h\" : {msg}"));
    }
}

#[tokio::test]
async fn config_map_and_secret_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let src = FakeSource::default();
    let mut cm = ConfigMap {
        data: Some(BTreeMap::from([("game.properties".into(), "lives=3".into()), ("ui".into(), "dark".into())])),
        ..Default::default()
    };
    cm.binary_data = Some(BTreeMap::from([("bin".into(), ByteString(vec![0, 159, 146, 150]))]));
    src.set_config_map("ns", "cfg", cm);
    src.add_secret("ns", "creds", &[("user", "admin"), ("pass", "pw")]);
    let pod = pod_with(
        json!([
            {"name": "all", "configMap": {"name": "cfg"}},
            {"name": "some", "configMap": {"name": "cfg", "defaultMode": 0o600,
                "items": [{"key": "ui", "path": "conf/ui.txt"}, {"key": "bin", "path": "b", "mode": 0o400}]}},
            {"name": "opt", "configMap": {"name": "nope", "optional": true}},
            {"name": "sec", "secret": {"secretName": "creds"}},
            {"name": "sec-items", "secret": {"secretName": "creds", "items": [{"key": "user", "path": "u"}]}}
        ]),
        json!([]),
    );
    let vols = prepare(&pod, dir.path(), &src, &VolumeHost::default()).await.unwrap();
    let all = &vols.get("all").unwrap().path;
    assert_eq!(all, &dir.path().join("volumes/kubernetes.io~configmap/all"));
    assert_eq!(read(&all.join("game.properties")), "lives=3");
    assert_eq!(fs::read(all.join("bin")).unwrap(), vec![0, 159, 146, 150]);
    assert_eq!(fs::read_link(all.join("ui")).unwrap(), Path::new("..data/ui"));
    assert_eq!(mode(&all.join("ui")), 0o644);
    let some = &vols.get("some").unwrap().path;
    assert_eq!(read(&some.join("conf/ui.txt")), "dark");
    assert_eq!(mode(&some.join("conf/ui.txt")), 0o600);
    assert_eq!(mode(&some.join("b")), 0o400);
    assert!(!some.join("game.properties").exists());
    let opt = &vols.get("opt").unwrap().path;
    assert!(opt.join("..data").is_dir());
    let sec = vols.get("sec").unwrap();
    assert_eq!(sec.path, dir.path().join("volumes/kubernetes.io~secret/sec"));
    assert_eq!(read(&sec.path.join("pass")), "pw");
    assert_eq!(mode(&sec.path.join("pass")), 0o644);
    assert!(sec.forced_read_only());
    assert_eq!(read(&vols.get("sec-items").unwrap().path.join("u")), "admin");

    for (vol, msg) in [
        (json!({"name": "v", "configMap": {"name": "x"}}), "configmap \"x\" not found"),
        (json!({"name": "v", "secret": {"secretName": "x"}}), "secret \"x\" not found"),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "k", "path": "p"}]}}),
            "configmap references non-existent config key: k",
        ),
        (
            json!({"name": "v", "secret": {"secretName": "creds", "items": [{"key": "k", "path": "p"}]}}),
            "references non-existent secret key: k",
        ),
        (
            json!({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "ui", "path": "../x"}]}}),
            "invalid path: must not contain '..': ../x",
        ),
        (json!({"name": "v", "persistentVolumeClaim": {"claimName": "c"}}), "no volume plugin matched"),
    ] {
        let pod = pod_with(json!([vol]), json!([]));
        assert_eq!(setup_err(&pod, &src).await, format!("MountVolume.SetUp failed for volume \"v\" : {msg}"));
    }
    // Optional items that are missing are skipped.
    let pod = pod_with(
        json!([{"name": "v", "configMap": {"name": "cfg", "optional": true, "items": [{"key": "k", "path": "p"}]}}]),
        json!([]),
    );
    let d = tempfile::tempdir().unwrap();
    prepare(&pod, d.path(), &src, &VolumeHost::default()).await.unwrap();
}

#[tokio::test]
async fn downward_api_and_projected() {
    let dir = tempfile::tempdir().unwrap();
    let src = FakeSource::default();
    src.add_config_map("ns", "cfg", &[("a", "from-cm")]);
    src.add_secret("ns", "sec", &[("b", "from-secret")]);
    let host =
        VolumeHost { node_allocatable: BTreeMap::from([("cpu".into(), Quantity("2".into()))]), ..Default::default() };
    let pod = pod_with(
        json!([
            {"name": "info", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o600},
                {"path": "anno", "fieldRef": {"fieldPath": "metadata.annotations['k']"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}}
            ]}},
            {"name": "all", "projected": {"defaultMode": 0o640, "sources": [
                {"configMap": {"name": "cfg"}},
                {"secret": {"name": "sec", "items": [{"key": "b", "path": "nested/b"}]}},
                {"downwardAPI": {"items": [{"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}}]}},
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
            ]}}
        ]),
        json!([]),
    );
    let vols = prepare(&pod, dir.path(), &src, &host).await.unwrap();
    let info = &vols.get("info").unwrap().path;
    assert_eq!(read(&info.join("labels")), "a=\"1\"\nb=\"2\"");
    assert_eq!(read(&info.join("name")), "web");
    assert_eq!(mode(&info.join("name")), 0o600);
    assert_eq!(read(&info.join("anno")), "v");
    assert_eq!(read(&info.join("mem")), "64");
    assert_eq!(read(&info.join("cpu")), "2000", "unset limit reports allocatable");
    let all = &vols.get("all").unwrap().path;
    assert_eq!(all, &dir.path().join("volumes/kubernetes.io~projected/all"));
    assert_eq!(read(&all.join("a")), "from-cm");
    assert_eq!(read(&all.join("nested/b")), "from-secret");
    assert_eq!(mode(&all.join("nested/b")), 0o640);
    assert_eq!(read(&all.join("uid")), "u-1");
    assert!(!all.join("token").exists(), "tokens are not issued yet");

    // Several failing sources are reported together, as upstream's aggregate error.
    let pod = pod_with(
        json!([{"name": "p", "projected": {"sources": [
            {"configMap": {"name": "x"}}, {"secret": {"name": "y"}}, {"secret": {"name": "z", "optional": true}}
        ]}}]),
        json!([]),
    );
    assert_eq!(
        setup_err(&pod, &src).await,
        "MountVolume.SetUp failed for volume \"p\" : [configmap \"x\" not found, secret \"y\" not found]"
    );
    let pod = pod_with(
        json!([{"name": "d", "downwardAPI": {"items": [{"path": "x", "fieldRef": {"fieldPath": "spec.nodeName"}}]}}]),
        json!([]),
    );
    assert_eq!(
        setup_err(&pod, &src).await,
        "MountVolume.SetUp failed for volume \"d\" : unsupported fieldPath: spec.nodeName"
    );
}

#[tokio::test]
async fn refresh_propagates_updates_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let src = FakeSource::default();
    src.add_config_map("ns", "cfg", &[("k", "v1"), ("old", "x")]);
    let mut pod = pod_with(
        json!([
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "scratch", "emptyDir": {}}
        ]),
        json!([]),
    );
    let host = VolumeHost::default();
    let vols = prepare(&pod, dir.path(), &src, &host).await.unwrap();
    let cfg = vols.get("cfg").unwrap().path.clone();
    let before = fs::read_link(cfg.join("..data")).unwrap();
    // What a container holding the volume open sees: the user-visible path.
    assert_eq!(read(&cfg.join("k")), "v1");

    // Nothing changed: nothing is rewritten.
    vols.refresh(&pod, &src, &host).await.unwrap();
    assert_eq!(fs::read_link(cfg.join("..data")).unwrap(), before);

    src.add_config_map("ns", "cfg", &[("k", "v2"), ("new", "y")]);
    pod.metadata.labels = Some(BTreeMap::from([("a".into(), "changed".into())]));
    vols.refresh(&pod, &src, &host).await.unwrap();
    assert_ne!(fs::read_link(cfg.join("..data")).unwrap(), before);
    assert_eq!(read(&cfg.join("k")), "v2");
    assert_eq!(read(&cfg.join("new")), "y");
    assert!(fs::symlink_metadata(cfg.join("old")).is_err());
    assert_eq!(read(&vols.get("info").unwrap().path.join("labels")), "a=\"changed\"");

    // The object disappears: refresh fails and the last content stays.
    src.config_maps.lock().unwrap().clear();
    let err = vols.refresh(&pod, &src, &host).await.unwrap_err();
    assert_eq!(err.to_string(), "MountVolume.SetUp failed for volume \"cfg\" : configmap \"cfg\" not found");
    assert_eq!(read(&cfg.join("k")), "v2");
}

#[tokio::test]
async fn container_mounts_like_make_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let src = FakeSource::default();
    src.add_config_map("ns", "cfg", &[("app.conf", "x=1")]);
    let pod = pod_with(
        json!([{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}},
               {"name": "host", "hostPath": {"path": outside.path()}}]),
        json!([
            {"name": "data", "mountPath": "/data"},
            {"name": "data", "mountPath": "/logs", "subPath": "logs/app", "readOnly": true},
            {"name": "data", "mountPath": "/per-pod", "subPathExpr": "pods/$(POD_NAME)"},
            {"name": "cfg", "mountPath": "/etc/app"},
            {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
            {"name": "host", "mountPath": "/host", "mountPropagation": "HostToContainer"},
            {"name": "data", "mountPath": "/shared", "mountPropagation": "Bidirectional"}
        ]),
    );
    let vols = prepare(&pod, dir.path(), &src, &VolumeHost::default()).await.unwrap();
    let c = &pod.spec.as_ref().unwrap().containers[0];
    let env = vec![("POD_NAME".to_string(), "web".to_string())];
    let mounts = container_mounts(&pod, c, &vols, &env).unwrap();
    let data = vols.get("data").unwrap().path.clone();
    let real = |p: &Path| fs::canonicalize(p).unwrap();
    let by_path = |p: &str| mounts.iter().find(|m| m.container_path == Path::new(p)).unwrap();
    assert_eq!(by_path("/data").host_path.as_deref(), Some(data.as_path()));
    assert!(!by_path("/data").readonly);
    let logs = by_path("/logs");
    assert_eq!(logs.host_path.as_deref(), Some(real(&data.join("logs/app")).as_path()));
    assert!(logs.readonly);
    assert_eq!(mode(&data.join("logs/app")), 0o777, "created with the volume's mode");
    assert_eq!(by_path("/per-pod").host_path.as_deref(), Some(real(&data.join("pods/web")).as_path()));
    assert!(by_path("/etc/app").readonly, "configMap volumes are read-only");
    let conf = by_path("/etc/app.conf").host_path.clone().unwrap();
    assert!(conf.to_str().unwrap().contains("/..20"), "resolved into the timestamped dir: {conf:?}");
    assert_eq!(read(&conf), "x=1");
    assert_eq!(by_path("/host").propagation, Propagation::HostToContainer);
    assert_eq!(by_path("/shared").propagation, Propagation::Bidirectional);
    assert_eq!(by_path("/data").propagation, Propagation::Private);
    assert!(mounts.iter().all(|m| m.tmpfs.is_none()));

    // A symlink a container planted in the emptyDir cannot lead a subPath outside the volume.
    std::os::unix::fs::symlink(outside.path(), data.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../../..", data.join("up")).unwrap();
    std::os::unix::fs::symlink("logs", data.join("inside")).unwrap();
    let mut c2 = c.clone();
    let errors = [
        (json!({"name": "nope", "mountPath": "/x"}), "cannot find volume \"nope\" to mount into container \"c\""),
        (
            json!({"name": "data", "mountPath": "/x", "subPath": "/abs"}),
            "error SubPath `/abs` must not be an absolute path",
        ),
        (
            json!({"name": "data", "mountPath": "/x", "subPath": "a/../../b"}),
            "unable to provision SubPath `a/../../b`: must not contain '..'",
        ),
        (json!({"name": "data", "mountPath": "/x", "subPathExpr": "$(NOPE)/$(ALSO)"}), "missing value for ALSO, NOPE"),
        (
            json!({"name": "data", "mountPath": "/x", "subPath": "escape/etc"}),
            "failed to prepare subPath for volumeMount \"data\" of container \"c\"",
        ),
        (
            json!({"name": "data", "mountPath": "/x", "subPath": "up"}),
            "failed to prepare subPath for volumeMount \"data\" of container \"c\"",
        ),
        (
            json!({"name": "data", "mountPath": "/x", "mountPropagation": "Sideways"}),
            "invalid MountPropagation mode: \"Sideways\"",
        ),
    ];
    for (vm, msg) in errors {
        c2.volume_mounts = Some(vec![serde_json::from_value(vm).unwrap()]);
        assert_eq!(container_mounts(&pod, &c2, &vols, &env).unwrap_err().to_string(), msg);
    }
    assert!(!outside.path().join("etc").exists(), "nothing was created outside the volume");
    c2.volume_mounts = Some(vec![
        serde_json::from_value(json!({"name": "data", "mountPath": "/x", "subPath": "inside/app"})).unwrap(),
    ]);
    let m = container_mounts(&pod, &c2, &vols, &env).unwrap();
    assert_eq!(
        m[0].host_path.as_deref(),
        Some(real(&data.join("logs/app")).as_path()),
        "links within the volume are fine"
    );
}

#[tokio::test]
async fn teardown_removes_without_following_links() {
    let root = tempfile::tempdir().unwrap();
    let pod_dir = root.path().join("pod");
    let precious = tempfile::tempdir().unwrap();
    fs::write(precious.path().join("keep"), "host data").unwrap();
    let src = FakeSource::default();
    src.add_config_map("ns", "cfg", &[("k", "v")]);
    let pod = pod_with(json!([{"name": "d", "emptyDir": {}}, {"name": "c", "configMap": {"name": "cfg"}}]), json!([]));
    let vols = prepare(&pod, &pod_dir, &src, &VolumeHost::default()).await.unwrap();
    let data = &vols.get("d").unwrap().path;
    std::os::unix::fs::symlink(precious.path(), data.join("evil")).unwrap();
    std::os::unix::fs::symlink(precious.path().join("keep"), data.join("evil-file")).unwrap();
    teardown(&pod_dir).await.unwrap();
    assert!(!pod_dir.exists());
    assert_eq!(read(&precious.path().join("keep")), "host data");
    teardown(&pod_dir).await.unwrap();
    let err = teardown(Path::new("/")).await.unwrap_err();
    assert_eq!(err.to_string(), "refusing to tear down /: invalid input parameter");
}

#[test]
fn mountinfo_unescaping() {
    assert_eq!(unescape_mountinfo("/a\\040b\\011c\\134d"), "/a b\tc\\d");
    assert_eq!(unescape_mountinfo("/plain"), "/plain");
    assert_eq!(unescape_mountinfo("/trail\\04"), "/trail\\04");
}

/// Needs CAP_SYS_ADMIN to mount tmpfs; CI runs as root.
#[tokio::test]
async fn tmpfs_for_memory_and_secrets_when_root() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED tmpfs_for_memory_and_secrets_when_root: needs root to mount tmpfs");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let pod_dir = root.path().join("pod");
    let src = FakeSource::default();
    src.add_secret("ns", "s", &[("k", "v")]);
    let pod = pod_with(
        json!([{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "4Mi"}},
               {"name": "sec", "secret": {"secretName": "s"}}]),
        json!([]),
    );
    let host = VolumeHost { tmpfs: true, ..Default::default() };
    let vols = prepare(&pod, &pod_dir, &src, &host).await.unwrap();
    // Twice: an existing mount is not stacked.
    let vols2 = prepare(&pod, &pod_dir, &src, &host).await.unwrap();
    assert_eq!(vols, vols2);
    let real = fs::canonicalize(&pod_dir).unwrap();
    let mounts = mounts_under(&real).unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    let mem = vols.get("mem").unwrap();
    assert!(mem.tmpfs);
    assert_eq!(mode(&mem.path), 0o777);
    let stat = nix::sys::statfs::statfs(&mem.path).unwrap();
    assert_eq!(stat.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC);
    assert_eq!(stat.blocks() * stat.block_size() as u64, 4 << 20);
    assert_eq!(read(&vols.get("sec").unwrap().path.join("k")), "v");
    teardown(&pod_dir).await.unwrap();
    assert!(mounts_under(&real).unwrap().is_empty());
    assert!(!pod_dir.exists());
}
