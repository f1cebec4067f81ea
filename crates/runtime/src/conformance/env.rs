//! Test environment: a fresh data dir with a busybox image, a runtime, and cleanup.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::cri::*;
use crate::linux::{LinuxRuntime, LinuxRuntimeConfig, StaticImages, reset, test_shim};

pub(crate) const BUSYBOX: &str = "busybox";
const BUSYBOX_BIN: &str = "/bin/busybox";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Fail loudly (not skip) without what the suite needs.
fn require_host() {
    assert!(nix::unistd::Uid::effective().is_root(), "the runtime conformance suite needs root");
    assert!(
        Path::new(BUSYBOX_BIN).exists(),
        "the runtime conformance suite needs Debian's busybox-static ({BUSYBOX_BIN})"
    );
}

/// A busybox root filesystem in `dir`: the static binary, its applets as symlinks, and
/// /etc/passwd and /etc/group with root, an `app` user (1000) and nobody.
pub(crate) fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX_BIN, bin.join("busybox")).unwrap();
    let list = std::process::Command::new(BUSYBOX_BIN).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.contains('/') {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\napp:x:1000:\nwheel:x:10:app\nnogroup:x:65534:\n").unwrap();
    for d in ["tmp", "root", "home/app", "usr/bin"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::set_permissions(dir.join("tmp"), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
}

pub(crate) struct Env {
    pub(crate) dir: PathBuf,
    pub(crate) rt: LinuxRuntime,
    pub(crate) images: Arc<StaticImages>,
    pub(crate) config: LinuxRuntimeConfig,
}

impl Env {
    pub(crate) fn new() -> Env {
        Self::with(|_| {})
    }

    /// A unique data dir and pod subnet, then `tweak` the config.
    pub(crate) fn with(tweak: impl FnOnce(&mut LinuxRuntimeConfig)) -> Env {
        Self::build(tweak, false)
    }

    /// Images come from the real image store under the data dir (empty at first) instead of
    /// hand-registered directories.
    pub(crate) fn with_store() -> Env {
        Self::build(|_| {}, true)
    }

    fn build(tweak: impl FnOnce(&mut LinuxRuntimeConfig), store: bool) -> Env {
        require_host();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!("/tmp/skiff-conf-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rootfs = dir.join("images/busybox");
        busybox_rootfs(&rootfs);
        let images = Arc::new(StaticImages::new());
        images.insert(
            BUSYBOX,
            vec![rootfs],
            ImageConfig { cmd: vec!["sh".into()], env: vec!["PATH=/bin:/usr/bin".into()], ..Default::default() },
        );
        let mut config = LinuxRuntimeConfig::new(&dir);
        config.shim = test_shim::command();
        // A subnet of our own: tests run in parallel, each with its own bridge.
        config.pod_cidr = format!("10.{}.{}.0/24", 200 + (std::process::id() % 50), n % 256);
        tweak(&mut config);
        let rt = if store {
            let store = crate::ImageStore::open(&dir).unwrap();
            let service = crate::image::ImageService::new(store.clone(), Vec::new());
            LinuxRuntime::new(config.clone(), Arc::new(store), Some(Arc::new(service))).unwrap()
        } else {
            LinuxRuntime::new(config.clone(), images.clone(), Some(images.clone())).unwrap()
        };
        Env { dir, rt, images, config }
    }

    /// Add an image made of `layers` (top-most first).
    pub(crate) fn image(&self, name: &str, layers: Vec<PathBuf>, config: ImageConfig) {
        self.images.insert(name, layers, config);
    }

    pub(crate) fn pod(&self, name: &str) -> PodSandboxConfig {
        PodSandboxConfig {
            name: name.into(),
            namespace: "default".into(),
            uid: format!("uid-{name}"),
            hostname: name.into(),
            log_directory: self.dir.join("logs").join(name),
            ..Default::default()
        }
    }

    pub(crate) fn container(&self, name: &str, script: &str) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            image: BUSYBOX.into(),
            command: vec!["sh".into(), "-c".into(), script.into()],
            log_path: PathBuf::from(format!("{name}/0.log")),
            security: SecurityContext {
                masked_paths: crate::cri::DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
                readonly_paths: crate::cri::DEFAULT_READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Create and start a container running `script` in a new pod; returns (pod, container).
    pub(crate) async fn run(&self, name: &str, script: &str) -> (String, String) {
        let pod = self.pod(name);
        let sb = self.rt.run_pod_sandbox(&pod).await.unwrap();
        let c = self.rt.create_container(&sb, &self.container(name, script), &pod).await.unwrap();
        self.rt.start_container(&c).await.unwrap();
        (sb, c)
    }

    /// Wait until the container has exited; its status.
    pub(crate) async fn wait_exit(&self, id: &str, timeout: Duration) -> ContainerStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.rt.container_status(id).await.unwrap();
            if s.state == ContainerState::Exited {
                return s;
            }
            assert!(Instant::now() < deadline, "container {id} still {:?} after {timeout:?}", s.state);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The container's log, as `kubectl logs` would show it.
    pub(crate) async fn logs(&self, id: &str) -> String {
        let s = self.rt.container_status(id).await.unwrap();
        let mut out = Vec::new();
        crate::linux::read_logs(&s.log_path, &Default::default(), &mut out, async {}).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Run a script to completion in a new pod; (exit code, log).
    pub(crate) async fn run_to_end(&self, name: &str, c: ContainerConfig) -> (ContainerStatus, String) {
        let pod = self.pod(name);
        let sb = self.rt.run_pod_sandbox(&pod).await.unwrap();
        let id = self.rt.create_container(&sb, &c, &pod).await.unwrap();
        self.rt.start_container(&id).await.unwrap();
        let st = self.wait_exit(&id, Duration::from_secs(30)).await;
        let logs = self.logs(&id).await;
        self.rt.remove_pod_sandbox(&sb).await.unwrap();
        (st, logs)
    }
}

/// What is left on the host of a data dir after reset.
pub(crate) fn leaks(dir: &Path, config: &LinuxRuntimeConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for l in mountinfo.lines() {
        if l.contains(&*dir.to_string_lossy()) {
            out.push(format!("mount: {l}"));
        }
    }
    if Path::new("/sys/class/net").join(&config.bridge).exists() {
        out.push(format!("link {}", config.bridge));
    }
    for ctl in ["memory", "pids", "cpu", "cpuacct", "unified", ""] {
        let p = Path::new("/sys/fs/cgroup").join(ctl).join(&config.cgroup_root);
        if p.exists() {
            out.push(format!("cgroup {}", p.display()));
        }
    }
    out
}

impl Drop for Env {
    fn drop(&mut self) {
        let report = reset(&self.dir);
        let left = leaks(&self.dir, &self.config);
        let _ = std::fs::remove_dir_all(&self.dir);
        if !std::thread::panicking() {
            assert!(report.errors.is_empty(), "reset errors: {:?}", report.errors);
            assert!(left.is_empty(), "left behind: {left:?}");
        } else if !left.is_empty() {
            eprintln!("left behind after a failed test: {left:?}");
        }
    }
}
