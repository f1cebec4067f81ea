//! The `Runtime` seam: what the kubelet asks of a container runtime, shaped like the CRI
//! (`k8s.io/cri-api` RuntimeService + ImageService) so a CRI gRPC client (containerd, CRI-O)
//! can implement it later next to the built-in Linux runtime.
//!
//! Everything is plain data; no method blocks a tokio worker. Identifiers are opaque strings
//! chosen by the runtime. Times are Unix nanoseconds, as in the CRI.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// Why a runtime call failed. The kubelet maps these to pod status reasons (ErrImagePull,
/// CreateContainerError, …), so the variants say what kind of failure it was.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No such sandbox, container or image.
    #[error("{kind} {id:?} not found")]
    NotFound { kind: &'static str, id: String },
    /// The image could not be pulled (network, auth, manifest, platform, digest mismatch).
    #[error("pulling image {image:?}: {reason}")]
    ImagePull { image: String, reason: String },
    /// The image is not present and the pull policy forbids pulling.
    #[error("image {0:?} is not present")]
    ImageNotPresent(String),
    /// The request is malformed or contradicts the container's state (e.g. start twice).
    #[error("{0}")]
    InvalidArgument(String),
    /// Creating the sandbox or container failed (mounts, namespaces, cgroups, network).
    #[error("{0}")]
    Create(String),
    /// Starting a created container failed (its program could not be executed); the
    /// container is then `Exited` with reason `StartError` and exit code 128.
    #[error("{0}")]
    Start(String),
    /// A timeout expired (exec, stop).
    #[error("{0} timed out")]
    Timeout(String),
    /// Anything else from the host; the message says what.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// `Version`: reported as the node's container runtime version (`skiff://0.1.0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    pub runtime_name: String,
    pub runtime_version: String,
    pub runtime_api_version: String,
}

/// DNS settings of a pod (the kubelet computes them from `dnsPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// A host port mapping of a pod (`hostPort`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapping {
    pub protocol: Protocol,
    pub container_port: u16,
    pub host_port: u16,
    pub host_ip: Option<IpAddr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// How the pod shares the host's namespaces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NamespaceOptions {
    pub host_network: bool,
    pub host_pid: bool,
    pub host_ipc: bool,
    /// `shareProcessNamespace`: containers share one PID namespace.
    pub share_process_namespace: bool,
}

/// `RunPodSandbox` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodSandboxConfig {
    /// Pod name, namespace, uid and restart attempt identify the sandbox.
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
    pub hostname: String,
    /// Where container logs of this pod go (`<dir>/<container>/<restart>.log`).
    pub log_directory: PathBuf,
    pub dns: DnsConfig,
    pub port_mappings: Vec<PortMapping>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub namespaces: NamespaceOptions,
    /// The pod-level cgroup (under the node's `kubepods` hierarchy, per QoS class).
    pub cgroup_parent: String,
    pub sysctls: BTreeMap<String, String>,
    /// `/etc/hosts` extra entries (hostAliases).
    pub host_aliases: Vec<(IpAddr, Vec<String>)>,
    /// Pod-level resources (overhead + limits) for the pod cgroup, if any.
    pub resources: Option<Resources>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxState {
    Ready,
    NotReady,
}

/// `PodSandboxStatus` response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSandboxStatus {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
    pub state: SandboxState,
    pub created_at: i64,
    /// The pod IPs (empty for host-network pods: the kubelet uses the node IPs).
    pub ips: Vec<IpAddr>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// A file or directory to mount into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub container_path: PathBuf,
    /// Host path (bind mounts); `None` with `tmpfs` set for a tmpfs.
    pub host_path: Option<PathBuf>,
    pub readonly: bool,
    /// Mount a tmpfs of this many bytes (0 = no size limit) instead of a bind mount.
    pub tmpfs: Option<u64>,
    /// `mountPropagation`: None, HostToContainer, Bidirectional.
    pub propagation: Propagation,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    #[default]
    Private,
    HostToContainer,
    Bidirectional,
}

/// Resource settings, already converted from Kubernetes units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// cpu.shares (v1) / cpu.weight (v2) derived from the CPU request.
    pub cpu_shares: Option<u64>,
    /// CFS quota and period (µs) from the CPU limit.
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
    pub hugepages: BTreeMap<String, i64>,
    /// OOM score adjustment per QoS class.
    pub oom_score_adj: Option<i32>,
}

/// The paths containerd masks in every unprivileged container unless `procMount: Unmasked`
/// (what upstream's pods get; the kubelet puts them in [`SecurityContext::masked_paths`]).
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths containerd makes read-only likewise ([`SecurityContext::readonly_paths`]).
pub const DEFAULT_READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Linux capabilities and the like from the container's securityContext.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityContext {
    pub privileged: bool,
    pub capabilities_add: Vec<String>,
    pub capabilities_drop: Vec<String>,
    pub run_as_user: Option<u32>,
    pub run_as_group: Option<u32>,
    /// Resolve this user in the image's /etc/passwd when `run_as_user` is unset.
    pub run_as_username: Option<String>,
    pub supplemental_groups: Vec<u32>,
    pub readonly_rootfs: bool,
    pub no_new_privileges: bool,
    /// `RuntimeDefault`, `Unconfined` or `Localhost/<path>`.
    pub seccomp: SeccompProfile,
    /// Paths masked (bind /dev/null or empty tmpfs) and made read-only, like upstream's
    /// defaults unless `procMount: Unmasked`.
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SeccompProfile {
    #[default]
    RuntimeDefault,
    Unconfined,
    Localhost(PathBuf),
}

/// `CreateContainer` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerConfig {
    pub name: String,
    /// Restart count: logs go to `<log_directory>/<name>/<attempt>.log`.
    pub attempt: u32,
    /// The image reference as resolved by `pull_image`/`image_status` (digest form).
    pub image: String,
    /// Kubernetes `command` (replaces ENTRYPOINT when non-empty).
    pub command: Vec<String>,
    /// Kubernetes `args` (replaces CMD when non-empty).
    pub args: Vec<String>,
    pub working_dir: Option<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub log_path: PathBuf,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    pub resources: Resources,
    pub security: SecurityContext,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// `ContainerStatus` response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub attempt: u32,
    pub state: ContainerState,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    /// `OOMKilled`, `Error`, `Completed`, `ContainerCannotRun`…
    pub reason: String,
    pub message: String,
    pub image: String,
    /// The image digest (`imageID` in pod status).
    pub image_ref: String,
    pub log_path: PathBuf,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// Which containers `list_containers` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerFilter {
    pub sandbox_id: Option<String>,
    pub state: Option<ContainerState>,
    pub labels: BTreeMap<String, String>,
}

/// Output of a synchronous exec (exec probes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecResult {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// A terminal size change (kubectl's resize channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// The streams of an interactive exec or attach. With `tty`, stderr is merged into stdout.
pub struct StreamIo {
    pub stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub stdout: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub stderr: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub tty: bool,
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// A byte stream into the pod's network namespace (port-forward).
pub trait DuplexStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> DuplexStream for T {}

/// Resource usage of a container, from its cgroups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerStats {
    pub timestamp: i64,
    /// Cumulative CPU time in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Memory working set (usage minus inactive file), bytes.
    pub memory_working_set: u64,
    pub memory_rss: u64,
    /// Bytes used by the container's writable layer.
    pub writable_layer_bytes: u64,
}

/// Registry credentials for a pull (from `imagePullSecrets`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    /// A bearer/identity token instead of a password.
    pub identity_token: Option<String>,
}

/// An image in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The image's config digest (`sha256:…`): what `imageID` reports.
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
    /// From the image config: ENTRYPOINT, CMD, ENV, WORKDIR, USER.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// What a container needs from its image: the OCI image config's `config` object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`.
    pub user: Option<String>,
}

/// The image store as the runtime sees it when it creates a container: the unpacked layers
/// and the config of an image that is present. Synchronous: answers come from local disk.
pub trait ImageSource: Send + Sync {
    /// The unpacked layer directories of `image` (a reference or id), top-most first:
    /// overlayfs `lowerdir` order. Whiteouts are already in overlayfs form.
    fn rootfs_layers(&self, image: &str) -> Result<Vec<PathBuf>>;
    /// The image's config.
    fn config(&self, image: &str) -> Result<ImageConfig>;
    /// The image id (config digest) `image` resolves to, reported as `imageRef`.
    fn image_id(&self, image: &str) -> Result<String> {
        Ok(image.to_string())
    }
    /// Keep `image` from removal and garbage collection while the container `owner` exists;
    /// returns the image id (what [`ImageSource::image_id`] returns).
    fn pin(&self, image: &str, owner: &str) -> Result<String> {
        let _ = owner;
        self.image_id(image)
    }
    /// Release `owner`'s pin; releasing one that does not exist is not an error.
    fn unpin(&self, owner: &str) -> Result<()> {
        let _ = owner;
        Ok(())
    }
    /// Release every pin whose owner is not one of `containers` (after a restart, for
    /// containers removed while the pin could not be released).
    fn retain_pins(&self, containers: &std::collections::HashSet<String>) -> Result<()> {
        let _ = containers;
        Ok(())
    }
}

/// The image half of the CRI, which a runtime can delegate to (the image store).
#[async_trait::async_trait]
pub trait ImageService: Send + Sync {
    async fn pull_image(&self, image: &str, auth: Option<&AuthConfig>) -> Result<String>;
    async fn image_status(&self, image: &str) -> Result<Option<Image>>;
    async fn list_images(&self) -> Result<Vec<Image>>;
    async fn remove_image(&self, image: &str) -> Result<()>;
}

/// The runtime: sandboxes, containers, streaming, stats, images.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    async fn version(&self) -> Result<VersionInfo>;

    /// Create and start a sandbox: namespaces, pod cgroup, network (unless host network),
    /// /etc/hosts, /etc/hostname, /etc/resolv.conf. Returns its id.
    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String>;
    /// Stop every container of the sandbox and tear down its network; idempotent.
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()>;
    /// Remove the sandbox and everything in it (containers, mounts, cgroups, IP); idempotent.
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()>;
    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus>;
    async fn list_pod_sandboxes(&self) -> Result<Vec<PodSandboxStatus>>;

    /// Create a container in a sandbox (not started). Returns its id.
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        sandbox: &PodSandboxConfig,
    ) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    /// SIGTERM, wait `timeout`, then SIGKILL; idempotent for exited containers.
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()>;
    async fn remove_container(&self, id: &str) -> Result<()>;
    async fn container_status(&self, id: &str) -> Result<ContainerStatus>;
    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>>;

    /// Run a command in a running container and collect its output (exec probes).
    async fn exec_sync(&self, id: &str, cmd: &[String], timeout: Duration) -> Result<ExecResult>;
    /// Run a command with streams (kubectl exec); returns its exit code.
    async fn exec(&self, id: &str, cmd: &[String], io: StreamIo) -> Result<i32>;
    /// Connect to the container's main process streams (kubectl attach).
    async fn attach(&self, id: &str, io: StreamIo) -> Result<()>;
    /// Open a TCP connection to `port` inside the sandbox's network namespace.
    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<Box<dyn DuplexStream>>;
    async fn container_stats(&self, id: &str) -> Result<ContainerStats>;

    /// Pull `image` (honouring loopback-only plain HTTP); returns the image id.
    async fn pull_image(&self, image: &str, auth: Option<&AuthConfig>) -> Result<String>;
    /// The image if present.
    async fn image_status(&self, image: &str) -> Result<Option<Image>>;
    async fn list_images(&self) -> Result<Vec<Image>>;
    /// Remove an image; fails if a container uses it.
    async fn remove_image(&self, image: &str) -> Result<()>;
}
