//! A pod's volumes on the host, as upstream's volume manager and in-tree plugins lay them out
//! under `<pod_dir>/volumes/<plugin>/<name>`:
//!
//! - `emptyDir` (`kubernetes.io~empty-dir`): a directory (mode 0777); with `medium: Memory` a
//!   tmpfs mounted *on the host* at that directory, so that every container of the pod bind-mounts
//!   the same memory-backed filesystem (a per-container tmpfs from the runtime would not be shared).
//!   `sizeLimit` of disk-backed ones is enforced by eviction upstream; [`PodVolumes::empty_dir_usage`]
//!   reports what eviction needs.
//! - `hostPath`: the host path itself, after upstream's type checks.
//! - `configMap`, `secret`, `downwardAPI`, `projected`: files written with the [atomic writer]
//!   layout, so that [`PodVolumes::refresh`] propagates updates into running containers. Secret and
//!   projected volumes are on a tmpfs, like upstream, when [`VolumeHost::tmpfs`] allows mounting.
//!
//! [`container_mounts`] turns a container's `volumeMounts` into runtime mounts (subPath,
//! subPathExpr, readOnly, mountPropagation) and [`teardown`] removes a pod's directory.
//! Errors of [`prepare`] read like upstream's `FailedMount` events
//! (`MountVolume.SetUp failed for volume "x" : …`); the pod stays `ContainerCreating` meanwhile.
//!
//! [atomic writer]: atomic_writer

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, Service, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use skiff_runtime::cri::{Mount, Propagation};

use crate::env;

mod atomic_writer;
#[cfg(test)]
pub(crate) mod tests;

use atomic_writer::{FileProjection, Payload};

/// Why reading a ConfigMap, Secret or the Services failed (other than "not found").
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The API request failed.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// Another source (a cache) failed; the message says how.
    #[error("{0}")]
    Other(String),
}

/// Where the kubelet reads the objects a pod refers to. The plain implementation on
/// [`kube::Client`] GETs each time; a watch-backed cache can replace it.
#[async_trait::async_trait]
pub trait ObjectSource: Send + Sync {
    /// The ConfigMap, `None` if it does not exist.
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, SourceError>;
    /// The Secret, `None` if it does not exist.
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, SourceError>;
    /// Every Service of `namespace`.
    async fn services(&self, namespace: &str) -> Result<Vec<Service>, SourceError>;
}

#[async_trait::async_trait]
impl ObjectSource for kube::Client {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, SourceError> {
        Ok(kube::Api::<ConfigMap>::namespaced(self.clone(), namespace).get_opt(name).await?)
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, SourceError> {
        Ok(kube::Api::<Secret>::namespaced(self.clone(), namespace).get_opt(name).await?)
    }

    async fn services(&self, namespace: &str) -> Result<Vec<Service>, SourceError> {
        let api = kube::Api::<Service>::namespaced(self.clone(), namespace);
        Ok(api.list(&kube::api::ListParams::default()).await?.items)
    }
}

/// Why a volume could not be set up, in upstream's words.
#[derive(Debug, thiserror::Error)]
pub enum SetUpError {
    /// A referenced ConfigMap or Secret does not exist and is not optional.
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    /// The spec cannot be honoured: a missing key, a failed hostPath type check, a bad path.
    #[error("{0}")]
    Invalid(String),
    /// Reading from the API failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The host refused a file operation.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Several sources of a projected volume failed (upstream's aggregate: `[a, b]`).
    #[error("[{}]", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Several(Vec<SetUpError>),
}

/// Why a pod's volumes could not be prepared, mounted into a container or removed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A volume failed to set up. The text is the `FailedMount` warning event's message.
    #[error("MountVolume.SetUp failed for volume \"{volume}\" : {cause}")]
    SetUp {
        volume: String,
        #[source]
        cause: SetUpError,
    },
    /// A `volumeMount` cannot be satisfied; the text is the `CreateContainerConfigError` message.
    #[error("{0}")]
    Mount(String),
    /// Removing the pod's directory failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

/// Event reason for [`VolumeError::SetUp`].
pub const FAILED_MOUNT_REASON: &str = "FailedMount";

/// Node facts volume setup needs.
#[derive(Clone, Debug, Default)]
pub struct VolumeHost {
    /// The node's allocatable resources, reported by `resourceFieldRef` for unset limits.
    pub node_allocatable: BTreeMap<String, Quantity>,
    /// Whether tmpfs may be mounted on the host (needs CAP_SYS_ADMIN). When false, memory-backed
    /// emptyDirs and secret/projected volumes are plain directories (tests, unprivileged runs).
    pub tmpfs: bool,
}

/// The kind of a prepared volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeKind {
    EmptyDir,
    HostPath,
    ConfigMap,
    Secret,
    DownwardApi,
    Projected,
}

/// One prepared volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedVolume {
    pub kind: VolumeKind,
    /// The host path containers bind-mount.
    pub path: PathBuf,
    /// Whether it is a tmpfs mounted on the host by [`prepare`].
    pub tmpfs: bool,
    /// `emptyDir.sizeLimit` in bytes.
    pub size_limit: Option<u64>,
}

impl PreparedVolume {
    /// API-backed volumes are always mounted read-only, as upstream.
    pub fn forced_read_only(&self) -> bool {
        matches!(
            self.kind,
            VolumeKind::ConfigMap | VolumeKind::Secret | VolumeKind::DownwardApi | VolumeKind::Projected
        )
    }
}

/// A pod's prepared volumes, by volume name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodVolumes {
    pod_dir: PathBuf,
    volumes: BTreeMap<String, PreparedVolume>,
}

impl PodVolumes {
    pub fn get(&self, name: &str) -> Option<&PreparedVolume> {
        self.volumes.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &PreparedVolume)> {
        self.volumes.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Rewrite the API-backed volumes (configMap, secret, downwardAPI, projected) from the
    /// current objects and pod metadata. Changed volumes switch atomically; unchanged ones are not
    /// touched. Every volume is tried; the first error is returned (the old content stays).
    pub async fn refresh(&self, pod: &Pod, source: &dyn ObjectSource, host: &VolumeHost) -> Result<(), VolumeError> {
        let mut first_err = None;
        for vol in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let Some(prepared) = self.volumes.get(&vol.name) else { continue };
            if !prepared.forced_read_only() {
                continue;
            }
            let result = match plan(pod, vol, &self.pod_dir, source, host).await {
                Ok(p) => run_blocking(p).await.map(|_| ()),
                Err(cause) => Err(VolumeError::SetUp { volume: vol.name.clone(), cause }),
            };
            if let Err(e) = result {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Bytes used by each disk- or memory-backed emptyDir, with its `sizeLimit`: what eviction
    /// compares (upstream evicts a pod whose emptyDir exceeds its limit).
    pub async fn empty_dir_usage(&self) -> Vec<(String, u64, Option<u64>)> {
        let dirs: Vec<_> = self
            .volumes
            .iter()
            .filter(|(_, v)| v.kind == VolumeKind::EmptyDir)
            .map(|(n, v)| (n.clone(), v.path.clone(), v.size_limit))
            .collect();
        tokio::task::spawn_blocking(move || {
            dirs.into_iter().map(|(n, p, limit)| (n, disk_usage(&p).unwrap_or(0), limit)).collect()
        })
        .await
        .unwrap_or_default()
    }
}

/// Create (or bring up to date) every volume of `pod` under `pod_dir`. Idempotent: calling it
/// again on every pod sync is how content updates and retries happen. Stops at the first volume
/// that fails.
pub async fn prepare(
    pod: &Pod,
    pod_dir: &Path,
    source: &dyn ObjectSource,
    host: &VolumeHost,
) -> Result<PodVolumes, VolumeError> {
    let mut volumes = BTreeMap::new();
    for vol in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let p = plan(pod, vol, pod_dir, source, host)
            .await
            .map_err(|cause| VolumeError::SetUp { volume: vol.name.clone(), cause })?;
        let (name, prepared) = run_blocking(p).await?;
        volumes.insert(name, prepared);
    }
    Ok(PodVolumes { pod_dir: pod_dir.to_path_buf(), volumes })
}

/// What to do on disk for one volume, computed from the spec and the API objects first so the
/// blocking part needs no I/O against the API.
enum Plan {
    EmptyDir { name: String, dir: PathBuf, size: Option<u64>, tmpfs: bool },
    HostPath { name: String, path: PathBuf, type_: String },
    Files { name: String, kind: VolumeKind, dir: PathBuf, payload: Payload, tmpfs: bool },
}

const DEFAULT_MODE: i32 = 0o644;

async fn plan(
    pod: &Pod,
    vol: &Volume,
    pod_dir: &Path,
    source: &dyn ObjectSource,
    host: &VolumeHost,
) -> Result<Plan, SetUpError> {
    let name = vol.name.clone();
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(SetUpError::Invalid(format!("invalid volume name {name:?}")));
    }
    let dir_for = |plugin: &str| pod_dir.join("volumes").join(format!("kubernetes.io~{plugin}")).join(&name);
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    if let Some(ed) = &vol.empty_dir {
        let memory = ed.medium.as_deref() == Some("Memory");
        let size = ed
            .size_limit
            .as_ref()
            .and_then(|q| skiff_api::quantity::milli_value(&q.0))
            .filter(|m| *m > 0)
            .map(|m| u64::try_from((m + 999) / 1000).unwrap_or(u64::MAX));
        return Ok(Plan::EmptyDir { dir: dir_for("empty-dir"), size, tmpfs: memory && host.tmpfs, name });
    }
    if let Some(hp) = &vol.host_path {
        if Path::new(&hp.path).components().any(|c| c == Component::ParentDir) {
            return Err(SetUpError::Invalid(format!("invalid HostPath `{}`: must not contain '..'", hp.path)));
        }
        return Ok(Plan::HostPath { name, path: PathBuf::from(&hp.path), type_: hp.type_.clone().unwrap_or_default() });
    }
    if let Some(cm) = &vol.config_map {
        let optional = cm.optional.unwrap_or(false);
        let mode = cm.default_mode.unwrap_or(DEFAULT_MODE);
        let data = config_map_files(source, namespace, &cm.name, optional).await?;
        let payload =
            key_payload(data, cm.items.as_deref(), mode, optional, "configmap references non-existent config key")?;
        return Ok(Plan::Files { dir: dir_for("configmap"), kind: VolumeKind::ConfigMap, payload, tmpfs: false, name });
    }
    if let Some(s) = &vol.secret {
        let optional = s.optional.unwrap_or(false);
        let mode = s.default_mode.unwrap_or(DEFAULT_MODE);
        let secret_name = s.secret_name.clone().unwrap_or_default();
        let data = secret_files(source, namespace, &secret_name, optional).await?;
        let payload = key_payload(data, s.items.as_deref(), mode, optional, "references non-existent secret key")?;
        return Ok(Plan::Files { dir: dir_for("secret"), kind: VolumeKind::Secret, payload, tmpfs: host.tmpfs, name });
    }
    if let Some(d) = &vol.downward_api {
        let mode = d.default_mode.unwrap_or(DEFAULT_MODE);
        let payload = downward_payload(pod, d.items.as_deref().unwrap_or(&[]), mode, host)?;
        return Ok(Plan::Files {
            dir: dir_for("downward-api"),
            kind: VolumeKind::DownwardApi,
            payload,
            tmpfs: false,
            name,
        });
    }
    if let Some(p) = &vol.projected {
        let mode = p.default_mode.unwrap_or(DEFAULT_MODE);
        let mut payload = Payload::new();
        let mut errors = Vec::new();
        for src in p.sources.iter().flatten() {
            let part = if let Some(cm) = &src.config_map {
                let optional = cm.optional.unwrap_or(false);
                match config_map_files(source, namespace, &cm.name, optional).await {
                    Ok(data) => key_payload(
                        data,
                        cm.items.as_deref(),
                        mode,
                        optional,
                        "configmap references non-existent config key",
                    ),
                    Err(e) => Err(e),
                }
            } else if let Some(s) = &src.secret {
                let optional = s.optional.unwrap_or(false);
                match secret_files(source, namespace, &s.name, optional).await {
                    Ok(data) => {
                        key_payload(data, s.items.as_deref(), mode, optional, "references non-existent secret key")
                    }
                    Err(e) => Err(e),
                }
            } else if let Some(d) = &src.downward_api {
                downward_payload(pod, d.items.as_deref().unwrap_or(&[]), mode, host)
            } else {
                // serviceAccountToken (no TokenRequest API yet: the token file is simply absent)
                // and clusterTrustBundle sources are skipped.
                if src.service_account_token.is_some() {
                    tracing::debug!(volume = %name, "projected serviceAccountToken source skipped: tokens are not issued yet");
                }
                Ok(Payload::new())
            };
            match part {
                Ok(part) => payload.extend(part),
                Err(e) => errors.push(e),
            }
        }
        if errors.len() == 1 {
            return Err(errors.remove(0));
        }
        if !errors.is_empty() {
            return Err(SetUpError::Several(errors));
        }
        return Ok(Plan::Files {
            dir: dir_for("projected"),
            kind: VolumeKind::Projected,
            payload,
            tmpfs: host.tmpfs,
            name,
        });
    }
    Err(SetUpError::Invalid("no volume plugin matched".to_string()))
}

/// A ConfigMap's `data` and `binaryData`; `None` when it is missing and optional.
async fn config_map_files(
    source: &dyn ObjectSource,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, Vec<u8>>, SetUpError> {
    match source.config_map(namespace, name).await? {
        Some(cm) => {
            let mut files: BTreeMap<String, Vec<u8>> =
                cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
            files.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
            Ok(files)
        }
        None if optional => Ok(BTreeMap::new()),
        None => Err(SetUpError::NotFound { kind: "configmap", name: name.to_string() }),
    }
}

async fn secret_files(
    source: &dyn ObjectSource,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, Vec<u8>>, SetUpError> {
    match source.secret(namespace, name).await? {
        Some(s) => Ok(s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect()),
        None if optional => Ok(BTreeMap::new()),
        None => Err(SetUpError::NotFound { kind: "secret", name: name.to_string() }),
    }
}

/// Upstream's `MakePayload` for configMap and secret: every key, or just the listed items.
fn key_payload(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: i32,
    optional: bool,
    missing_msg: &str,
) -> Result<Payload, SetUpError> {
    let mode = |m: Option<i32>| u32::try_from(m.unwrap_or(default_mode)).unwrap_or(0o644);
    let mut payload = Payload::new();
    match items {
        None | Some([]) => {
            for (k, v) in data {
                payload.insert(k, FileProjection { data: v, mode: mode(None) });
            }
        }
        Some(items) => {
            for item in items {
                match data.get(&item.key) {
                    Some(v) => {
                        payload.insert(item.path.clone(), FileProjection { data: v.clone(), mode: mode(item.mode) });
                    }
                    None if optional => {}
                    None => return Err(SetUpError::Invalid(format!("{missing_msg}: {}", item.key))),
                }
            }
        }
    }
    Ok(payload)
}

/// Upstream's downwardAPI `CollectData`.
fn downward_payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    host: &VolumeHost,
) -> Result<Payload, SetUpError> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let mode = u32::try_from(item.mode.unwrap_or(default_mode)).unwrap_or(0o644);
        let value = if let Some(f) = &item.field_ref {
            env::field_value(pod, f.api_version.as_deref(), &f.field_path, None)
        } else if let Some(r) = &item.resource_field_ref {
            let name = r.container_name.as_deref().unwrap_or("");
            env::find_container(pod, name).and_then(|c| env::resource_value(pod, c, r, &host.node_allocatable))
        } else {
            continue;
        };
        match value {
            Ok(v) => {
                payload.insert(item.path.clone(), FileProjection { data: v.into_bytes(), mode });
            }
            Err(e) => errors.push(SetUpError::Invalid(e)),
        }
    }
    match errors.len() {
        0 => Ok(payload),
        1 => Err(errors.remove(0)),
        _ => Err(SetUpError::Several(errors)),
    }
}

async fn run_blocking(plan: Plan) -> Result<(String, PreparedVolume), VolumeError> {
    tokio::task::spawn_blocking(move || apply(plan))
        .await
        .map_err(|e| VolumeError::Io { context: "volume setup task".into(), source: io::Error::other(e) })?
}

fn apply(plan: Plan) -> Result<(String, PreparedVolume), VolumeError> {
    let io_err = |name: &str, context: String| {
        let name = name.to_string();
        move |source: io::Error| VolumeError::SetUp { volume: name, cause: SetUpError::Io { context, source } }
    };
    match plan {
        Plan::EmptyDir { name, dir, size, tmpfs } => {
            fs::create_dir_all(&dir).map_err(io_err(&name, format!("mkdir {}", dir.display())))?;
            if tmpfs {
                mount_tmpfs(&dir, size).map_err(io_err(&name, format!("mount tmpfs on {}", dir.display())))?;
            }
            // Any user of any container may write an emptyDir.
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))
                .map_err(io_err(&name, format!("chmod {}", dir.display())))?;
            Ok((name, PreparedVolume { kind: VolumeKind::EmptyDir, path: dir, tmpfs, size_limit: size }))
        }
        Plan::HostPath { name, path, type_ } => {
            check_host_path(&path, &type_).map_err(|cause| VolumeError::SetUp { volume: name.clone(), cause })?;
            Ok((name, PreparedVolume { kind: VolumeKind::HostPath, path, tmpfs: false, size_limit: None }))
        }
        Plan::Files { name, kind, dir, payload, tmpfs } => {
            fs::create_dir_all(&dir).map_err(io_err(&name, format!("mkdir {}", dir.display())))?;
            if tmpfs {
                mount_tmpfs(&dir, None).map_err(io_err(&name, format!("mount tmpfs on {}", dir.display())))?;
            }
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                .map_err(io_err(&name, format!("chmod {}", dir.display())))?;
            atomic_writer::write(&dir, &payload).map_err(|e| {
                // Payload path errors are upstream's messages; anything else names the directory.
                let cause = if e.kind() == io::ErrorKind::InvalidInput {
                    SetUpError::Invalid(e.to_string())
                } else {
                    SetUpError::Io { context: format!("writing {}", dir.display()), source: e }
                };
                VolumeError::SetUp { volume: name.clone(), cause }
            })?;
            Ok((name, PreparedVolume { kind, path: dir, tmpfs, size_limit: None }))
        }
    }
}

/// Upstream's hostPath type check, creating what `…OrCreate` asks for.
fn check_host_path(path: &Path, type_: &str) -> Result<(), SetUpError> {
    let p = path.display();
    let fail = |what: &str| SetUpError::Invalid(format!("hostPath type check failed: {p} is not a {what}"));
    let meta = fs::metadata(path).ok();
    let ft = meta.as_ref().map(fs::Metadata::file_type);
    match type_ {
        "" => Ok(()),
        "DirectoryOrCreate" if meta.is_none() => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(|source| SetUpError::Io { context: format!("mkdir {p}"), source }),
        "FileOrCreate" if meta.is_none() => fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(path)
            .map(drop)
            .map_err(|source| SetUpError::Io { context: format!("open {p}"), source }),
        "Directory" | "DirectoryOrCreate" => ft.filter(|t| t.is_dir()).map(drop).ok_or_else(|| fail("directory")),
        "File" | "FileOrCreate" => ft.filter(|t| t.is_file()).map(drop).ok_or_else(|| fail("file")),
        "Socket" => ft.filter(|t| t.is_socket()).map(drop).ok_or_else(|| fail("socket file")),
        "CharDevice" => ft.filter(|t| t.is_char_device()).map(drop).ok_or_else(|| fail("character device")),
        "BlockDevice" => ft.filter(|t| t.is_block_device()).map(drop).ok_or_else(|| fail("block device")),
        other => Err(SetUpError::Invalid(format!("{other} is an invalid volume type"))),
    }
}

/// Mount a tmpfs on `dir` unless one is already there (prepare runs on every sync).
fn mount_tmpfs(dir: &Path, size: Option<u64>) -> io::Result<()> {
    if is_mount_point(dir)? {
        return Ok(());
    }
    let mut opts = "mode=0755".to_string();
    if let Some(size) = size {
        opts.push_str(&format!(",size={size}"));
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(opts.as_str()),
    )
    .map_err(io::Error::from)
}

/// A directory on another device than its parent is a mount point (what our tmpfs mounts are).
fn is_mount_point(dir: &Path) -> io::Result<bool> {
    let parent = dir.parent().unwrap_or(dir);
    Ok(fs::symlink_metadata(dir)?.dev() != fs::symlink_metadata(parent)?.dev())
}

/// Disk blocks used under `path`, not following symlinks nor leaving the filesystem.
fn disk_usage(path: &Path) -> io::Result<u64> {
    let meta = fs::symlink_metadata(path)?;
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        let dev = meta.dev();
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let m = entry.metadata()?;
                if m.dev() != dev {
                    continue;
                }
                total += m.blocks() * 512;
                if m.is_dir() {
                    stack.push(entry.path());
                }
            }
        }
    }
    Ok(total)
}

/// The runtime mounts for `container`'s `volumeMounts`, like upstream's `makeMounts`. `env` is
/// the container's environment (from [`crate::env::container_env`]), for `subPathExpr`.
pub fn container_mounts(
    pod: &Pod,
    container: &Container,
    volumes: &PodVolumes,
    env: &[(String, String)],
) -> Result<Vec<Mount>, VolumeError> {
    // `pod` is part of the signature for parity with upstream's makeMounts; the /etc/hosts
    // mount it would add is the runtime's job here (the sandbox writes it).
    let _ = pod;
    let mut mounts = Vec::new();
    for vm in container.volume_mounts.iter().flatten() {
        let Some(vol) = volumes.get(&vm.name) else {
            return Err(VolumeError::Mount(format!(
                "cannot find volume {:?} to mount into container {:?}",
                vm.name, container.name
            )));
        };
        let mut sub_path = vm.sub_path.clone().unwrap_or_default();
        if let Some(expr) = vm.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            sub_path = expand_sub_path(expr, env)?;
        }
        let mut host_path = vol.path.clone();
        if !sub_path.is_empty() {
            if sub_path.starts_with('/') {
                return Err(VolumeError::Mount(format!("error SubPath `{sub_path}` must not be an absolute path")));
            }
            if sub_path.split('/').any(|c| c == "..") {
                return Err(VolumeError::Mount(format!(
                    "unable to provision SubPath `{sub_path}`: must not contain '..'"
                )));
            }
            host_path = safe_sub_path(&vol.path, &sub_path).map_err(|e| {
                tracing::warn!(volume = %vm.name, container = %container.name, error = %e, "subPath refused");
                // Upstream keeps host details out of the user-facing message.
                VolumeError::Mount(format!(
                    "failed to prepare subPath for volumeMount {:?} of container {:?}",
                    vm.name, container.name
                ))
            })?;
        }
        let propagation = match vm.mount_propagation.as_deref() {
            None | Some("None") => Propagation::Private,
            Some("HostToContainer") => Propagation::HostToContainer,
            Some("Bidirectional") => Propagation::Bidirectional,
            Some(other) => return Err(VolumeError::Mount(format!("invalid MountPropagation mode: {other:?}"))),
        };
        mounts.push(Mount {
            container_path: PathBuf::from(&vm.mount_path),
            host_path: Some(host_path),
            readonly: vm.read_only.unwrap_or(false) || vol.forced_read_only(),
            tmpfs: None,
            propagation,
        });
    }
    Ok(mounts)
}

/// Upstream's `ExpandContainerVolumeMounts`: every referenced variable must have a value.
fn expand_sub_path(expr: &str, env: &[(String, String)]) -> Result<String, VolumeError> {
    let map: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let missing = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let out = env::expand(expr, |name| match map.get(name) {
        Some(v) if !v.is_empty() => Some((*v).to_string()),
        _ => {
            missing.borrow_mut().insert(name.to_string());
            Some(String::new())
        }
    });
    let missing = missing.into_inner();
    if !missing.is_empty() {
        return Err(VolumeError::Mount(format!(
            "missing value for {}",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(out)
}

/// `root/sub` with missing directories created (mode of `root`), refusing any path that resolves
/// outside `root` through a symlink a container planted. Resolves symlinks as the host sees them
/// (a configMap key resolves into its timestamped directory, which is what gets bind-mounted).
/// The runtime mounts the returned path later; a container racing to swap a checked directory
/// for a symlink in between is not prevented (upstream pins it with an O_NOFOLLOW fd).
fn safe_sub_path(root: &Path, sub: &str) -> io::Result<PathBuf> {
    let root = fs::canonicalize(root)?;
    let mode = fs::metadata(&root)?.permissions().mode() & 0o7777;
    let outside =
        || io::Error::new(io::ErrorKind::PermissionDenied, format!("subpath {sub:?} is not within the volume"));
    let mut current = root.clone();
    for comp in sub.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let next = current.join(comp);
        match fs::symlink_metadata(&next) {
            Ok(m) if m.file_type().is_symlink() => {
                let resolved = fs::canonicalize(&next)?;
                if !resolved.starts_with(&root) {
                    return Err(outside());
                }
                current = resolved;
            }
            Ok(_) => current = next,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new().mode(mode).create(&next)?;
                fs::set_permissions(&next, fs::Permissions::from_mode(mode))?;
                current = next;
            }
            Err(e) => return Err(e),
        }
    }
    let resolved = fs::canonicalize(&current)?;
    if !resolved.starts_with(&root) {
        return Err(outside());
    }
    Ok(resolved)
}

/// Remove `pod_dir` and everything in it: unmount the tmpfs mounts under it (deepest first),
/// then delete the tree without following symlinks (a container may have planted links in an
/// emptyDir pointing anywhere on the host). Idempotent. Refuses to delete while a mount remains
/// under the directory, so a failed unmount never turns into deleting another filesystem.
pub async fn teardown(pod_dir: &Path) -> Result<(), VolumeError> {
    let pod_dir = pod_dir.to_path_buf();
    tokio::task::spawn_blocking(move || teardown_blocking(&pod_dir))
        .await
        .map_err(|e| VolumeError::Io { context: "volume teardown task".into(), source: io::Error::other(e) })?
}

fn teardown_blocking(pod_dir: &Path) -> Result<(), VolumeError> {
    let io_err = |context: String| move |source: io::Error| VolumeError::Io { context, source };
    let meta = match fs::symlink_metadata(pod_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("stat {}", pod_dir.display()))(e)),
    };
    if !meta.is_dir() {
        return fs::remove_file(pod_dir).map_err(io_err(format!("remove {}", pod_dir.display())));
    }
    let real = fs::canonicalize(pod_dir).map_err(io_err(format!("resolve {}", pod_dir.display())))?;
    if real.components().count() < 3 {
        // A pod directory is never `/` or a top-level directory: refuse rather than unmount and
        // delete a whole host tree because of a caller's bug.
        return Err(VolumeError::Io {
            context: format!("refusing to tear down {}", real.display()),
            source: io::Error::from(io::ErrorKind::InvalidInput),
        });
    }
    let mut mounts = mounts_under(&real).map_err(io_err("reading /proc/self/mountinfo".into()))?;
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for m in &mounts {
        match nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(io_err(format!("unmount {}", m.display()))(e.into())),
        }
    }
    let left = mounts_under(&real).map_err(io_err("reading /proc/self/mountinfo".into()))?;
    if let Some(m) = left.first() {
        return Err(VolumeError::Io {
            context: format!("{} is still mounted", m.display()),
            source: io::Error::from(io::ErrorKind::ResourceBusy),
        });
    }
    // std's remove_dir_all never follows symlinks (it unlinks them), so links planted by a
    // container cannot redirect the deletion outside the pod directory.
    match fs::remove_dir_all(pod_dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(format!("remove {}", pod_dir.display()))(e)),
        _ => Ok(()),
    }
}

/// Mount points at or below `dir`, from `/proc/self/mountinfo`.
fn mounts_under(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let info = match fs::read_to_string("/proc/self/mountinfo") {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect())
}

/// Mount points in mountinfo escape space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = u32::from(b[i + 1] - b'0') * 64 + u32::from(b[i + 2] - b'0') * 8 + u32::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
