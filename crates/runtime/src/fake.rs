//! A recording fake [`Runtime`] for kubelet unit tests: in memory, no root, no processes.
//!
//! Sandboxes and containers follow the CRI state machine (Created → Running → Exited);
//! tests script what a container does once started ([`Outcome`], by container name: exit with
//! a code after a while, get OOM-killed, fail to start), which images are present, which pulls
//! fail, and one-shot errors for any method. Every call is recorded ([`FakeCall`]).
//!
//! Time is tokio's clock, so tests with `start_paused = true` can advance it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cri::*;

/// A call the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeCall {
    Version,
    RunPodSandbox { name: String, namespace: String, attempt: u32 },
    StopPodSandbox(String),
    RemovePodSandbox(String),
    PodSandboxStatus(String),
    ListPodSandboxes,
    CreateContainer { sandbox_id: String, name: String, image: String },
    StartContainer(String),
    StopContainer { id: String, timeout: Duration },
    RemoveContainer(String),
    ContainerStatus(String),
    ListContainers,
    ExecSync { id: String, cmd: Vec<String> },
    Exec { id: String, cmd: Vec<String> },
    Attach(String),
    PortForward { sandbox_id: String, port: u16 },
    ContainerStats(String),
    PullImage(String),
    ImageStatus(String),
    ListImages,
    RemoveImage(String),
}

/// A scripted interactive exec or attach: gets the command (empty for attach) and the
/// streams, returns the exit code.
pub type StreamScript = Arc<dyn Fn(Vec<String>, StreamIo) -> futures::future::BoxFuture<'static, i32> + Send + Sync>;

/// What a started container does (scripted per container name; the default runs forever).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    RunForever,
    /// Exit with this code after this long (0 → `Completed`, else `Error`).
    Exit {
        code: i32,
        after: Duration,
    },
    /// Killed by the OOM killer after this long: `OOMKilled`, exit code 137.
    OomKill {
        after: Duration,
    },
    /// `start_container` fails with this message: `StartError`, exit code 128.
    FailStart(String),
}

struct FakeSandbox {
    status: PodSandboxStatus,
}

struct FakeContainer {
    status: ContainerStatus,
    outcome: Outcome,
    started: Option<Instant>,
}

#[derive(Default)]
struct State {
    calls: Vec<FakeCall>,
    sandboxes: BTreeMap<String, FakeSandbox>,
    containers: BTreeMap<String, FakeContainer>,
    images: BTreeMap<String, Image>,
    outcomes: BTreeMap<String, Outcome>,
    pull_failures: BTreeMap<String, String>,
    exec_results: BTreeMap<String, ExecResult>,
    /// Interactive exec/attach scripts by container name.
    stream_scripts: BTreeMap<String, StreamScript>,
    /// Port-forward targets by port (a loopback listener standing in for the pod's port).
    forwards: BTreeMap<u16, SocketAddr>,
    /// One-shot errors by method name (`"run_pod_sandbox"`, `"start_container"`, …).
    fail_next: BTreeMap<String, RuntimeError>,
    next_id: u64,
    /// Fake wall clock (ns) at the fake's creation, plus tokio time elapsed.
    epoch_ns: i64,
    epoch: Option<Instant>,
}

/// The fake. `Default` gives an empty runtime with no images.
#[derive(Default)]
pub struct FakeRuntime {
    state: Mutex<State>,
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make `image` present (as if pulled), with this config.
    pub fn add_image(&self, image: &str, config: ImageConfig) {
        self.lock().images.insert(image.to_string(), image_of(image, config));
    }

    /// Pulling `image` fails with `reason`.
    pub fn fail_pull(&self, image: &str, reason: &str) {
        self.lock().pull_failures.insert(image.to_string(), reason.to_string());
    }

    /// What containers named `name` do once started.
    pub fn script(&self, name: &str, outcome: Outcome) {
        self.lock().outcomes.insert(name.to_string(), outcome);
    }

    /// `exec_sync` in containers named `name` returns `result`.
    pub fn exec_result(&self, name: &str, result: ExecResult) {
        self.lock().exec_results.insert(name.to_string(), result);
    }

    /// Interactive `exec` and `attach` in containers named `name` run `script` on their
    /// streams. Without a script, `exec` writes the [`FakeRuntime::exec_result`] output to the
    /// streams and returns its exit code.
    pub fn script_streams(&self, name: &str, script: StreamScript) {
        self.lock().stream_scripts.insert(name.to_string(), script);
    }

    /// `port_forward` to `port` connects to `addr` (e.g. a test's loopback listener) instead
    /// of the built-in echo.
    pub fn forward_port(&self, port: u16, addr: SocketAddr) {
        self.lock().forwards.insert(port, addr);
    }

    /// The next call of `method` (the trait method's name) fails with `error`.
    pub fn fail_next(&self, method: &str, error: RuntimeError) {
        self.lock().fail_next.insert(method.to_string(), error);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<FakeCall> {
        self.lock().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }
}

fn image_of(name: &str, c: ImageConfig) -> Image {
    Image {
        id: format!("sha256:{:064x}", name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))),
        repo_tags: vec![name.to_string()],
        repo_digests: vec![],
        size: 1 << 20,
        entrypoint: c.entrypoint,
        cmd: c.cmd,
        env: c.env,
        working_dir: c.working_dir,
        user: c.user,
    }
}

impl State {
    fn record(&mut self, method: &str, call: FakeCall) -> Result<()> {
        self.calls.push(call);
        match self.fail_next.remove(method) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn now_ns(&mut self) -> i64 {
        let epoch = *self.epoch.get_or_insert_with(Instant::now);
        if self.epoch_ns == 0 {
            self.epoch_ns = 1_700_000_000_000_000_000;
        }
        self.epoch_ns + epoch.elapsed().as_nanos() as i64
    }

    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:030x}", self.next_id)
    }

    /// Apply scripted exits whose time has come.
    fn advance(&mut self) {
        let now = Instant::now();
        let base = self.now_ns();
        for c in self.containers.values_mut() {
            if c.status.state != ContainerState::Running {
                continue;
            }
            let Some(started) = c.started else { continue };
            let (code, reason, after) = match &c.outcome {
                Outcome::Exit { code, after } => (*code, if *code == 0 { "Completed" } else { "Error" }, *after),
                Outcome::OomKill { after } => (137, "OOMKilled", *after),
                _ => continue,
            };
            if now.duration_since(started) >= after {
                c.status.state = ContainerState::Exited;
                c.status.exit_code = code;
                c.status.reason = reason.to_string();
                c.status.finished_at = base - (now.duration_since(started) - after).as_nanos() as i64;
            }
        }
    }

    fn container(&mut self, id: &str) -> Result<&mut FakeContainer> {
        self.advance();
        self.containers.get_mut(id).ok_or_else(|| RuntimeError::NotFound { kind: "container", id: id.to_string() })
    }

    fn stop(&mut self, id: &str) {
        let now = self.now_ns();
        if let Some(c) = self.containers.get_mut(id)
            && c.status.state != ContainerState::Exited
        {
            c.status.state = ContainerState::Exited;
            c.status.exit_code = 137;
            c.status.reason = "Error".into();
            c.status.finished_at = now;
        }
    }
}

#[async_trait::async_trait]
impl Runtime for FakeRuntime {
    async fn version(&self) -> Result<VersionInfo> {
        self.lock().record("version", FakeCall::Version)?;
        Ok(VersionInfo {
            runtime_name: "fake".into(),
            runtime_version: "0.1.0".into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        let mut s = self.lock();
        s.record(
            "run_pod_sandbox",
            FakeCall::RunPodSandbox {
                name: config.name.clone(),
                namespace: config.namespace.clone(),
                attempt: config.attempt,
            },
        )?;
        let id = s.id("s");
        let n = s.sandboxes.len() as u8;
        let ips = if config.namespaces.host_network {
            vec![]
        } else {
            vec![std::net::IpAddr::from([10, 42, 0, n.wrapping_add(2)])]
        };
        let status = PodSandboxStatus {
            id: id.clone(),
            name: config.name.clone(),
            namespace: config.namespace.clone(),
            uid: config.uid.clone(),
            attempt: config.attempt,
            state: SandboxState::Ready,
            created_at: s.now_ns(),
            ips,
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
        };
        s.sandboxes.insert(id.clone(), FakeSandbox { status });
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.record("stop_pod_sandbox", FakeCall::StopPodSandbox(id.into()))?;
        let ids: Vec<String> =
            s.containers.values().filter(|c| c.status.sandbox_id == id).map(|c| c.status.id.clone()).collect();
        for c in ids {
            s.stop(&c);
        }
        if let Some(sb) = s.sandboxes.get_mut(id) {
            sb.status.state = SandboxState::NotReady;
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.record("remove_pod_sandbox", FakeCall::RemovePodSandbox(id.into()))?;
        s.containers.retain(|_, c| c.status.sandbox_id != id);
        s.sandboxes.remove(id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        let mut s = self.lock();
        s.record("pod_sandbox_status", FakeCall::PodSandboxStatus(id.into()))?;
        s.sandboxes
            .get(id)
            .map(|sb| sb.status.clone())
            .ok_or_else(|| RuntimeError::NotFound { kind: "sandbox", id: id.into() })
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<PodSandboxStatus>> {
        let mut s = self.lock();
        s.record("list_pod_sandboxes", FakeCall::ListPodSandboxes)?;
        Ok(s.sandboxes.values().map(|sb| sb.status.clone()).collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &PodSandboxConfig,
    ) -> Result<String> {
        let mut s = self.lock();
        s.record(
            "create_container",
            FakeCall::CreateContainer {
                sandbox_id: sandbox_id.into(),
                name: config.name.clone(),
                image: config.image.clone(),
            },
        )?;
        match s.sandboxes.get(sandbox_id) {
            None => return Err(RuntimeError::NotFound { kind: "sandbox", id: sandbox_id.into() }),
            Some(sb) if sb.status.state != SandboxState::Ready => {
                return Err(RuntimeError::InvalidArgument(format!("sandbox {sandbox_id} is not ready")));
            }
            Some(_) => {}
        }
        // By reference or by ID, as the real runtime takes either.
        let found = s.images.get(&config.image).or_else(|| s.images.values().find(|i| i.id == config.image));
        let Some(image) = found.cloned() else {
            return Err(RuntimeError::ImageNotPresent(config.image.clone()));
        };
        let id = s.id("c");
        let outcome = s.outcomes.get(&config.name).cloned().unwrap_or(Outcome::RunForever);
        let status = ContainerStatus {
            id: id.clone(),
            sandbox_id: sandbox_id.into(),
            name: config.name.clone(),
            attempt: config.attempt,
            state: ContainerState::Created,
            created_at: s.now_ns(),
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            image: config.image.clone(),
            image_ref: image.id,
            log_path: sandbox.log_directory.join(&config.log_path),
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
        };
        s.containers.insert(id.clone(), FakeContainer { status, outcome, started: None });
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.record("start_container", FakeCall::StartContainer(id.into()))?;
        let now = s.now_ns();
        let c = s.container(id)?;
        if c.status.state != ContainerState::Created {
            return Err(RuntimeError::InvalidArgument(format!("container {id} is not created")));
        }
        c.status.started_at = now;
        if let Outcome::FailStart(msg) = &c.outcome {
            c.status.state = ContainerState::Exited;
            c.status.exit_code = 128;
            c.status.reason = "StartError".into();
            c.status.message = msg.clone();
            c.status.finished_at = now;
            return Err(RuntimeError::Start(msg.clone()));
        }
        c.status.state = ContainerState::Running;
        c.started = Some(Instant::now());
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        let mut s = self.lock();
        s.record("stop_container", FakeCall::StopContainer { id: id.into(), timeout })?;
        s.container(id)?;
        s.stop(id);
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let mut s = self.lock();
        s.record("remove_container", FakeCall::RemoveContainer(id.into()))?;
        s.containers.remove(id);
        Ok(())
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        let mut s = self.lock();
        s.record("container_status", FakeCall::ContainerStatus(id.into()))?;
        Ok(s.container(id)?.status.clone())
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>> {
        let mut s = self.lock();
        s.record("list_containers", FakeCall::ListContainers)?;
        s.advance();
        Ok(s.containers
            .values()
            .map(|c| &c.status)
            .filter(|c| filter.sandbox_id.as_ref().is_none_or(|id| *id == c.sandbox_id))
            .filter(|c| filter.state.is_none_or(|st| st == c.state))
            .filter(|c| filter.labels.iter().all(|(k, v)| c.labels.get(k) == Some(v)))
            .cloned()
            .collect())
    }

    async fn exec_sync(&self, id: &str, cmd: &[String], _timeout: Duration) -> Result<ExecResult> {
        let mut s = self.lock();
        s.record("exec_sync", FakeCall::ExecSync { id: id.into(), cmd: cmd.to_vec() })?;
        let c = s.container(id)?;
        if c.status.state != ContainerState::Running {
            return Err(RuntimeError::InvalidArgument(format!("container {id} is not running")));
        }
        let name = c.status.name.clone();
        Ok(s.exec_results.get(&name).cloned().unwrap_or(ExecResult { stdout: vec![], stderr: vec![], exit_code: 0 }))
    }

    async fn exec(&self, id: &str, cmd: &[String], mut io: StreamIo) -> Result<i32> {
        let (script, result) = {
            let mut s = self.lock();
            s.record("exec", FakeCall::Exec { id: id.into(), cmd: cmd.to_vec() })?;
            let c = s.container(id)?;
            if c.status.state != ContainerState::Running {
                return Err(RuntimeError::InvalidArgument(format!("container {id} is not running")));
            }
            let name = c.status.name.clone();
            (s.stream_scripts.get(&name).cloned(), s.exec_results.get(&name).cloned())
        };
        if let Some(script) = script {
            return Ok(script(cmd.to_vec(), io).await);
        }
        use tokio::io::AsyncWriteExt;
        let r = result.unwrap_or(ExecResult { stdout: vec![], stderr: vec![], exit_code: 0 });
        if let Some(w) = &mut io.stdout {
            let _ = w.write_all(&r.stdout).await;
        }
        if let Some(w) = &mut io.stderr {
            let _ = w.write_all(&r.stderr).await;
        }
        Ok(r.exit_code)
    }

    async fn attach(&self, id: &str, io: StreamIo) -> Result<()> {
        let script = {
            let mut s = self.lock();
            s.record("attach", FakeCall::Attach(id.into()))?;
            let name = s.container(id)?.status.name.clone();
            s.stream_scripts.get(&name).cloned()
        };
        if let Some(script) = script {
            script(Vec::new(), io).await;
        }
        Ok(())
    }

    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<Box<dyn DuplexStream>> {
        let target = {
            let mut s = self.lock();
            s.record("port_forward", FakeCall::PortForward { sandbox_id: sandbox_id.into(), port })?;
            if !s.sandboxes.contains_key(sandbox_id) {
                return Err(RuntimeError::NotFound { kind: "sandbox", id: sandbox_id.into() });
            }
            s.forwards.get(&port).copied()
        };
        if let Some(addr) = target {
            let conn = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| RuntimeError::Internal(format!("dial tcp {addr}: {e}")))?;
            return Ok(Box::new(conn));
        }
        // An echo server stands in for the pod.
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(theirs);
            let _ = tokio::io::copy(&mut r, &mut w).await;
        });
        Ok(Box::new(ours))
    }

    async fn container_stats(&self, id: &str) -> Result<ContainerStats> {
        let mut s = self.lock();
        s.record("container_stats", FakeCall::ContainerStats(id.into()))?;
        let now = s.now_ns();
        s.container(id)?;
        Ok(ContainerStats { timestamp: now, ..Default::default() })
    }

    async fn pull_image(&self, image: &str, _auth: Option<&AuthConfig>) -> Result<String> {
        let mut s = self.lock();
        s.record("pull_image", FakeCall::PullImage(image.into()))?;
        if let Some(reason) = s.pull_failures.get(image) {
            return Err(RuntimeError::ImagePull { image: image.into(), reason: reason.clone() });
        }
        let img = s.images.entry(image.to_string()).or_insert_with(|| image_of(image, ImageConfig::default()));
        Ok(img.id.clone())
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>> {
        let mut s = self.lock();
        s.record("image_status", FakeCall::ImageStatus(image.into()))?;
        Ok(s.images.get(image).cloned())
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        let mut s = self.lock();
        s.record("list_images", FakeCall::ListImages)?;
        Ok(s.images.values().cloned().collect())
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        let mut s = self.lock();
        s.record("remove_image", FakeCall::RemoveImage(image.into()))?;
        if s.containers.values().any(|c| c.status.image == image) {
            return Err(RuntimeError::InvalidArgument(format!("image {image:?} is in use by a container")));
        }
        s.images.remove(image).map(drop).ok_or_else(|| RuntimeError::NotFound { kind: "image", id: image.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodSandboxConfig {
        PodSandboxConfig { name: "web".into(), namespace: "default".into(), uid: "u".into(), ..Default::default() }
    }

    fn container(name: &str) -> ContainerConfig {
        ContainerConfig { name: name.into(), image: "busybox".into(), ..Default::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn scripted_exit_after_a_while() {
        let rt = FakeRuntime::new();
        rt.add_image("busybox", ImageConfig::default());
        rt.script("job", Outcome::Exit { code: 3, after: Duration::from_secs(5) });
        let sb = rt.run_pod_sandbox(&pod()).await.unwrap();
        let c = rt.create_container(&sb, &container("job"), &pod()).await.unwrap();
        assert_eq!(rt.container_status(&c).await.unwrap().state, ContainerState::Created);
        rt.start_container(&c).await.unwrap();
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(rt.container_status(&c).await.unwrap().state, ContainerState::Running);
        tokio::time::advance(Duration::from_secs(2)).await;
        let s = rt.container_status(&c).await.unwrap();
        assert_eq!((s.state, s.exit_code, s.reason.as_str()), (ContainerState::Exited, 3, "Error"));
        assert_eq!(s.finished_at - s.started_at, 5_000_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn oom_and_start_failures() {
        let rt = FakeRuntime::new();
        rt.add_image("busybox", ImageConfig::default());
        rt.script("hog", Outcome::OomKill { after: Duration::from_millis(10) });
        rt.script("bad", Outcome::FailStart("exec: \"x\": not found".into()));
        let sb = rt.run_pod_sandbox(&pod()).await.unwrap();
        let hog = rt.create_container(&sb, &container("hog"), &pod()).await.unwrap();
        rt.start_container(&hog).await.unwrap();
        tokio::time::advance(Duration::from_millis(10)).await;
        let s = rt.container_status(&hog).await.unwrap();
        assert_eq!((s.exit_code, s.reason.as_str()), (137, "OOMKilled"));
        let bad = rt.create_container(&sb, &container("bad"), &pod()).await.unwrap();
        assert!(matches!(rt.start_container(&bad).await, Err(RuntimeError::Start(_))));
        let s = rt.container_status(&bad).await.unwrap();
        assert_eq!((s.state, s.exit_code, s.reason.as_str()), (ContainerState::Exited, 128, "StartError"));
    }

    #[tokio::test]
    async fn image_pulls_and_missing_images() {
        let rt = FakeRuntime::new();
        rt.fail_pull("private/app", "unauthorized");
        let e = rt.pull_image("private/app", None).await.unwrap_err();
        assert!(matches!(e, RuntimeError::ImagePull { .. }));
        let sb = rt.run_pod_sandbox(&pod()).await.unwrap();
        let e = rt.create_container(&sb, &container("c"), &pod()).await.unwrap_err();
        assert!(matches!(e, RuntimeError::ImageNotPresent(_)));
        let id = rt.pull_image("busybox", None).await.unwrap();
        assert!(id.starts_with("sha256:"));
        let c = rt.create_container(&sb, &container("c"), &pod()).await.unwrap();
        assert!(rt.remove_image("busybox").await.is_err(), "in use");
        rt.remove_container(&c).await.unwrap();
        rt.remove_image("busybox").await.unwrap();
        assert!(rt.list_images().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn records_calls_and_injects_errors() {
        let rt = FakeRuntime::new();
        rt.add_image("busybox", ImageConfig::default());
        rt.fail_next("run_pod_sandbox", RuntimeError::Create("no IPs left".into()));
        assert!(rt.run_pod_sandbox(&pod()).await.is_err());
        let sb = rt.run_pod_sandbox(&pod()).await.unwrap();
        let c = rt.create_container(&sb, &container("web"), &pod()).await.unwrap();
        rt.start_container(&c).await.unwrap();
        rt.exec_result("web", ExecResult { stdout: b"ok".to_vec(), stderr: vec![], exit_code: 1 });
        let r = rt.exec_sync(&c, &["probe".into()], Duration::from_secs(1)).await.unwrap();
        assert_eq!(r.exit_code, 1);
        rt.stop_pod_sandbox(&sb).await.unwrap();
        let s = rt.container_status(&c).await.unwrap();
        assert_eq!((s.state, s.exit_code), (ContainerState::Exited, 137));
        assert!(rt.create_container(&sb, &container("late"), &pod()).await.is_err(), "sandbox not ready");
        rt.remove_pod_sandbox(&sb).await.unwrap();
        assert!(rt.list_containers(&ContainerFilter::default()).await.unwrap().is_empty());
        let calls = rt.calls();
        assert_eq!(calls.iter().filter(|c| matches!(c, FakeCall::RunPodSandbox { .. })).count(), 2);
        assert!(calls.contains(&FakeCall::StartContainer(c.clone())));
        assert!(calls.contains(&FakeCall::ExecSync { id: c, cmd: vec!["probe".into()] }));
        rt.clear_calls();
        assert!(rt.calls().is_empty());
    }

    #[tokio::test]
    async fn port_forward_echoes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = FakeRuntime::new();
        let sb = rt.run_pod_sandbox(&pod()).await.unwrap();
        let mut s = rt.port_forward(&sb, 80).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert!(rt.port_forward("nope", 80).await.is_err());
    }

    #[tokio::test]
    async fn scripted_streams_and_forwarded_ports() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = FakeRuntime::new();
        rt.add_image("busybox", ImageConfig::default());
        let sb = rt.run_pod_sandbox(&pod()).await.unwrap();
        let c = rt.create_container(&sb, &container("sh"), &pod()).await.unwrap();
        let io = || StreamIo { stdin: None, stdout: None, stderr: None, tty: false, resize: None };
        assert!(rt.exec(&c, &["true".into()], io()).await.is_err(), "not running");
        rt.start_container(&c).await.unwrap();
        // Default: the exec_result output goes to the streams.
        rt.exec_result("sh", ExecResult { stdout: b"out".to_vec(), stderr: vec![], exit_code: 2 });
        let (mut ours, theirs) = tokio::io::duplex(64);
        let mut with_out = io();
        with_out.stdout = Some(Box::new(theirs));
        assert_eq!(rt.exec(&c, &["x".into()], with_out).await.unwrap(), 2);
        let mut got = Vec::new();
        ours.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"out");
        // A script sees the command and the streams.
        rt.script_streams(
            "sh",
            Arc::new(|cmd, mut io| {
                Box::pin(async move {
                    if let Some(w) = &mut io.stdout {
                        let _ = w.write_all(cmd.join(" ").as_bytes()).await;
                    }
                    7
                })
            }),
        );
        let (mut ours, theirs) = tokio::io::duplex(64);
        let mut with_out = io();
        with_out.stdout = Some(Box::new(theirs));
        assert_eq!(rt.exec(&c, &["echo".into(), "hi".into()], with_out).await.unwrap(), 7);
        let mut got = Vec::new();
        ours.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"echo hi");
        rt.attach(&c, io()).await.unwrap();
        // A forwarded port dials the given address.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        rt.forward_port(8080, l.local_addr().unwrap());
        let mut conn = rt.port_forward(&sb, 8080).await.unwrap();
        let (mut server, _) = l.accept().await.unwrap();
        conn.write_all(b"hey").await.unwrap();
        let mut buf = [0u8; 3];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hey");
    }
}
