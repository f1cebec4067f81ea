//! The node half of the kubelet: register the `Node` (or take over one of that name), keep its
//! `Lease` in `kube-node-lease` renewed, and write the node status — capacity and allocatable
//! from the machine, addresses, `nodeInfo`, the images present and the Ready / MemoryPressure /
//! DiskPressure / PIDPressure conditions from real signals — on change, and at least every
//! `status_report_interval`.
//!
//! Upstream: `kubelet_node_status.go` (register, `setNodeStatus`), `nodestatus/setters.go`
//! (conditions, reasons and messages), the node lease controller, and the eviction manager's
//! default hard thresholds (`memory.available<100Mi`, `nodefs.available<10%`), which are
//! subtracted from allocatable as upstream does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use skiff_runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::{KUBELET_VERSION, KubeletConfig, KubeletError};

const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Upstream's default hard eviction threshold for memory.
const MEMORY_EVICTION_BYTES: u64 = 100 * 1024 * 1024;
/// Upstream's default hard eviction threshold for the node filesystem (percent available).
const NODEFS_EVICTION_PERCENT: u64 = 10;
/// PIDPressure when fewer than this percent of `pid_max` are free.
const PID_PRESSURE_PERCENT: u64 = 5;
/// Upstream reports at most this many images in the node status.
const MAX_IMAGES: usize = 50;

/// The HTTP status of a kube error, if it came from the API server.
pub(crate) fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// What the machine looks like right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Machine {
    pub(crate) cpus: u64,
    pub(crate) memory_bytes: u64,
    pub(crate) memory_available: u64,
    pub(crate) storage_bytes: u64,
    pub(crate) storage_available: u64,
    pub(crate) pid_max: u64,
    pub(crate) pids_used: u64,
}

impl Machine {
    /// Reads /proc and statvfs of the node's root dir.
    pub(crate) fn read(root: &std::path::Path) -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib = |key: &str| -> u64 {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        let (storage_bytes, storage_available) = nix::sys::statvfs::statvfs(root)
            .map(|s| {
                let f = s.fragment_size();
                (s.blocks() * f, s.blocks_available() * f)
            })
            .unwrap_or((0, 0));
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(32768);
        let pids_used = std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten().filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit())).count()
            })
            .unwrap_or(0) as u64;
        Machine {
            cpus: std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1),
            memory_bytes: kib("MemTotal"),
            memory_available: kib("MemAvailable"),
            storage_bytes,
            storage_available,
            pid_max,
            pids_used,
        }
    }
}

/// Static facts about the host for `nodeInfo`.
#[derive(Clone, Debug)]
struct HostInfo {
    kernel: String,
    os_image: String,
    machine_id: String,
    system_uuid: String,
    boot_id: String,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl HostInfo {
    fn read() -> HostInfo {
        let kernel = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
            })
            .unwrap_or_else(|| "Linux".into());
        let machine_id = read_trim("/etc/machine-id").unwrap_or_default();
        let system_uuid = read_trim("/sys/class/dmi/id/product_uuid").unwrap_or_else(|| machine_id.clone());
        let boot_id = read_trim("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        HostInfo { kernel, os_image, machine_id, system_uuid, boot_id }
    }
}

/// The architecture as Go (and so Kubernetes) names it.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The node's conditions, as upstream's setters compute them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pressure {
    pub(crate) memory: bool,
    pub(crate) disk: bool,
    pub(crate) pid: bool,
    pub(crate) ready: bool,
}

impl Pressure {
    pub(crate) fn of(m: &Machine, runtime_ok: bool) -> Pressure {
        Pressure {
            memory: m.memory_bytes > 0 && m.memory_available < MEMORY_EVICTION_BYTES,
            disk: m.storage_bytes > 0 && m.storage_available * 100 < m.storage_bytes * NODEFS_EVICTION_PERCENT,
            pid: m.pid_max > 0 && (m.pid_max.saturating_sub(m.pids_used)) * 100 < m.pid_max * PID_PRESSURE_PERCENT,
            ready: runtime_ok,
        }
    }
}

/// Capacity and allocatable, as quantity strings.
pub(crate) fn resources(m: &Machine, config: &KubeletConfig) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut capacity = BTreeMap::new();
    capacity.insert("cpu".to_string(), m.cpus.to_string());
    capacity.insert("memory".to_string(), format!("{}Ki", m.memory_bytes / 1024));
    capacity.insert("ephemeral-storage".to_string(), format!("{}Ki", m.storage_bytes / 1024));
    capacity.insert("pods".to_string(), config.max_pods.to_string());
    capacity.insert("hugepages-1Gi".to_string(), "0".into());
    capacity.insert("hugepages-2Mi".to_string(), "0".into());
    let reserved = |name: &str| -> i128 {
        config.reserved.get(name).and_then(|q| skiff_api::quantity::milli_value(q)).unwrap_or(0)
    };
    let mut allocatable = capacity.clone();
    let cpu = (i128::from(m.cpus) * 1000 - reserved("cpu")).max(0);
    allocatable.insert("cpu".into(), skiff_api::quantity::format_milli(cpu));
    let mem = (i128::from(m.memory_bytes) - i128::from(MEMORY_EVICTION_BYTES) - reserved("memory") / 1000).max(0);
    allocatable.insert("memory".into(), format!("{}Ki", mem / 1024));
    let storage = (i128::from(m.storage_bytes) * i128::from(100 - NODEFS_EVICTION_PERCENT) / 100
        - reserved("ephemeral-storage") / 1000)
        .max(0);
    allocatable.insert("ephemeral-storage".into(), storage.to_string());
    (capacity, allocatable)
}

/// The Node this kubelet registers: its name, the well-known labels (arch, os, hostname) under
/// the configured ones, podCIDR and register taints. Admission also falls back on it when the
/// Node cannot be read (upstream's `initialNode`).
pub(crate) fn node_object(c: &KubeletConfig) -> Node {
    let mut labels: BTreeMap<String, String> = [
        ("beta.kubernetes.io/arch", go_arch()),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", go_arch()),
        ("kubernetes.io/hostname", c.node_name.as_str()),
        ("kubernetes.io/os", "linux"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(c.labels.clone());
    let mut node = Node::default();
    node.metadata.name = Some(c.node_name.clone());
    node.metadata.labels = Some(labels);
    node.metadata.annotations = Some(
        [("node.alpha.kubernetes.io/ttl", "0"), ("volumes.kubernetes.io/controller-managed-attach-detach", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let spec = node.spec.get_or_insert_with(Default::default);
    if let Some(cidr) = &c.pod_cidr {
        spec.pod_cidr = Some(cidr.clone());
        spec.pod_cidrs = Some(vec![cidr.clone()]);
    }
    if !c.register_taints.is_empty() {
        spec.taints = Some(c.register_taints.clone());
    }
    node
}

/// What the node status is made of, as last observed.
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    capacity: BTreeMap<String, String>,
    allocatable: BTreeMap<String, String>,
    pressure: Pressure,
    runtime_version: String,
    images: Value,
}

/// Registration, lease and status of this node.
pub struct NodeAgent {
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    config: KubeletConfig,
    host: HostInfo,
}

/// What registration learned.
pub struct Registered {
    uid: String,
}

impl NodeAgent {
    pub fn new(client: kube::Client, runtime: Arc<dyn Runtime>, config: KubeletConfig) -> NodeAgent {
        NodeAgent { client, runtime, config, host: HostInfo::read() }
    }

    /// Create the Node, or take over an existing one (a previous run): our labels on top of
    /// its own, our podCIDR unless it has one. Retries until it works or `shutdown`.
    pub async fn register(&self, shutdown: &CancellationToken) -> Result<Option<Registered>, KubeletError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let desired = node_object(&self.config);
        let name = self.config.node_name.clone();
        let mut delay = Duration::from_millis(100);
        loop {
            match self.try_register(&nodes, &desired).await {
                Ok(node) => {
                    let uid = node.metadata.uid.unwrap_or_default();
                    tracing::info!(node = %name, "node registered");
                    return Ok(Some(Registered { uid }));
                }
                Err(e) if matches!(code(&e), Some(400 | 403 | 422)) => {
                    return Err(KubeletError::Register { node: name, source: e });
                }
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "registering the node failed; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(None),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(7));
        }
    }

    async fn try_register(&self, nodes: &Api<Node>, desired: &Node) -> Result<Node, kube::Error> {
        let name = self.config.node_name.as_str();
        match nodes.create(&PostParams::default(), desired).await {
            Ok(n) => return Ok(n),
            Err(e) if code(&e) == Some(409) => {}
            Err(e) => return Err(e),
        }
        let mut existing = nodes.get(name).await?;
        let m = &mut existing.metadata;
        m.labels.get_or_insert_with(BTreeMap::new).extend(desired.metadata.labels.clone().unwrap_or_default());
        m.annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(desired.metadata.annotations.clone().unwrap_or_default());
        let spec = existing.spec.get_or_insert_with(Default::default);
        if spec.pod_cidr.as_deref().unwrap_or_default().is_empty()
            && let Some(ds) = &desired.spec
        {
            spec.pod_cidr = ds.pod_cidr.clone();
            spec.pod_cidrs = ds.pod_cidrs.clone();
        }
        nodes.replace(name, &PostParams::default(), &existing).await
    }

    /// Heartbeats until `shutdown`: the status once at once, then the lease every
    /// `lease_renew_interval` and the status when it changed or `status_report_interval` passed.
    pub async fn run(self, registered: Registered, shutdown: CancellationToken) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let mut last: Option<(Observed, Timestamp)> = None;
        let mut transitions: BTreeMap<&'static str, (bool, Timestamp)> = BTreeMap::new();
        let mut lease_due = tokio::time::Instant::now();
        let status_check = Duration::from_secs(10).min(self.config.lease_renew_interval);
        loop {
            let now = Timestamp::now();
            let observed = self.observe().await;
            let changed = last.as_ref().is_none_or(|(v, at)| {
                *v != observed || now.duration_since(*at).unsigned_abs() >= self.config.status_report_interval
            });
            if changed {
                let body = self.status_patch(&observed, &mut transitions, now);
                match nodes.patch_status(&self.config.node_name, &PatchParams::default(), &Patch::Strategic(body)).await
                {
                    Ok(_) => last = Some((observed, now)),
                    Err(e) => tracing::warn!(error = %e, "writing the node status failed; retrying"),
                }
            }
            if tokio::time::Instant::now() >= lease_due {
                match self.renew_lease(&leases, &registered).await {
                    Ok(()) => lease_due = tokio::time::Instant::now() + self.config.lease_renew_interval,
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the node lease failed; retrying");
                        lease_due = tokio::time::Instant::now() + Duration::from_secs(1);
                    }
                }
            }
            let wake = lease_due.min(tokio::time::Instant::now() + status_check);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Everything the status is computed from (heartbeat times excluded: equal means
    /// unchanged).
    async fn observe(&self) -> Observed {
        let machine = Machine::read(&self.config.root_dir);
        let (runtime_ok, runtime_version) = match self.runtime.version().await {
            Ok(v) => (true, format!("{}://{}", v.runtime_name, v.runtime_version)),
            Err(e) => {
                tracing::warn!(error = %e, "the container runtime does not answer");
                (false, "skiff://unknown".into())
            }
        };
        let pressure = Pressure::of(&machine, runtime_ok);
        let images = match self.runtime.list_images().await {
            Ok(mut list) => {
                list.sort_by_key(|i| std::cmp::Reverse(i.size));
                list.truncate(MAX_IMAGES);
                Value::Array(
                    list.into_iter()
                        .map(|i| {
                            let mut names = i.repo_digests.clone();
                            names.extend(i.repo_tags.iter().cloned());
                            json!({"names": names, "sizeBytes": i.size})
                        })
                        .collect(),
                )
            }
            Err(_) => Value::Array(vec![]),
        };
        let (capacity, allocatable) = resources(&machine, &self.config);
        Observed { capacity, allocatable, pressure, runtime_version, images }
    }

    fn status_patch(
        &self,
        observed: &Observed,
        transitions: &mut BTreeMap<&'static str, (bool, Timestamp)>,
        now: Timestamp,
    ) -> Value {
        let Observed { capacity, allocatable, pressure: p, runtime_version, images } = observed;
        let t = |ts: Timestamp| serde_json::to_value(Time(ts)).unwrap_or(Value::Null);
        let mut cond = |type_: &'static str, status: bool, reason: &str, message: &str| {
            let since = match transitions.get(type_) {
                Some((s, at)) if *s == status => *at,
                _ => {
                    transitions.insert(type_, (status, now));
                    now
                }
            };
            json!({
                "type": type_,
                "status": if status { "True" } else { "False" },
                "lastHeartbeatTime": t(now),
                "lastTransitionTime": t(since),
                "reason": reason,
                "message": message,
            })
        };
        let conditions = vec![
            if p.memory {
                cond(
                    "MemoryPressure",
                    true,
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                )
            } else {
                cond("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available")
            },
            if p.disk {
                cond("DiskPressure", true, "KubeletHasDiskPressure", "kubelet has disk pressure")
            } else {
                cond("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure")
            },
            if p.pid {
                cond("PIDPressure", true, "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
            } else {
                cond("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available")
            },
            if p.ready {
                cond("Ready", true, "KubeletReady", "kubelet is posting ready status")
            } else {
                cond(
                    "Ready",
                    false,
                    "KubeletNotReady",
                    "container runtime is down: the runtime does not answer its version call",
                )
            },
        ];
        let mut addresses: Vec<Value> =
            self.config.node_ips.iter().map(|ip| json!({"type": "InternalIP", "address": ip.to_string()})).collect();
        addresses.push(json!({"type": "Hostname", "address": self.config.node_name}));
        let h = &self.host;
        json!({
            "status": {
                "capacity": capacity,
                "allocatable": allocatable,
                "conditions": conditions,
                "addresses": addresses,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.kubelet_port}},
                "nodeInfo": {
                    "machineID": h.machine_id,
                    "systemUUID": h.system_uuid,
                    "bootID": h.boot_id,
                    "kernelVersion": h.kernel,
                    "osImage": h.os_image,
                    "containerRuntimeVersion": runtime_version,
                    "kubeletVersion": KUBELET_VERSION,
                    "kubeProxyVersion": "",
                    "operatingSystem": "linux",
                    "architecture": go_arch(),
                },
                "images": images,
            }
        })
    }

    async fn renew_lease(&self, leases: &Api<Lease>, registered: &Registered) -> Result<(), kube::Error> {
        let name = &self.config.node_name;
        let spec = json!({
            "holderIdentity": name,
            "leaseDurationSeconds": self.config.lease_duration_seconds,
            "renewTime": serde_json::to_value(MicroTime(Timestamp::now())).unwrap_or(Value::Null),
        });
        match leases.patch(name, &PatchParams::default(), &Patch::Merge(json!({"spec": spec}))).await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some(404) => {
                let lease: Lease = serde_json::from_value(json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {
                        "name": name,
                        "namespace": LEASE_NAMESPACE,
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": registered.uid}],
                    },
                    "spec": spec,
                }))
                .map_err(kube::Error::SerdeError)?;
                match leases.create(&PostParams::default(), &lease).await {
                    Err(e) if code(&e) == Some(409) => Ok(()),
                    r => r.map(|_| ()),
                }
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            cpus: 2,
            memory_bytes: 4 << 30,
            memory_available: 2 << 30,
            storage_bytes: 100 << 30,
            storage_available: 50 << 30,
            pid_max: 100_000,
            pids_used: 300,
        }
    }

    #[test]
    fn allocatable_subtracts_reservations_and_eviction_thresholds() {
        let mut config = KubeletConfig::new("n", std::path::Path::new("/tmp/x"));
        config.reserved.insert("cpu".into(), "250m".into());
        config.reserved.insert("memory".into(), "256Mi".into());
        let (cap, alloc) = resources(&machine(), &config);
        assert_eq!(cap["cpu"], "2");
        assert_eq!(cap["memory"], "4194304Ki");
        assert_eq!(cap["pods"], "110");
        assert_eq!(alloc["cpu"], "1750m");
        // 4 GiB - 100 MiB (eviction) - 256 MiB (reserved)
        assert_eq!(alloc["memory"], format!("{}Ki", (4u64 << 20) - 100 * 1024 - 256 * 1024));
        assert_eq!(alloc["ephemeral-storage"], ((100u64 << 30) * 9 / 10).to_string());
    }

    #[test]
    fn pressure_signals() {
        let m = machine();
        assert_eq!(Pressure::of(&m, true), Pressure { memory: false, disk: false, pid: false, ready: true });
        let low = Machine { memory_available: 50 << 20, storage_available: 5 << 30, pids_used: 99_000, ..m };
        assert_eq!(Pressure::of(&low, false), Pressure { memory: true, disk: true, pid: true, ready: false });
    }

    #[test]
    fn reads_this_machine() {
        let m = Machine::read(std::path::Path::new("/"));
        assert!(m.cpus >= 1 && m.memory_bytes > 0 && m.storage_bytes > 0 && m.pids_used > 0);
    }
}
