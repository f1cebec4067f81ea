//! [`LinuxRuntime`]: the [`Runtime`] trait over the pieces of this module. It keeps no state
//! in memory that matters: sandboxes and containers are directories under the state dir
//! (records written by the runtime, `status.json` written by each container's shim), so a
//! restarted runtime re-adopts running containers simply by reading them and talking to their
//! shims' sockets — no duplicates, nothing to reconcile.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::cgroups::{self, Cgroups};
use super::cni::{self, CniAttachment, CniConfig};
use super::exec::{EXEC_SETUP_FAILED, ExecRequest};
use super::ipam::{Ipam, Subnet};
use super::network::{self, Attachment, NetOps};
use super::sandbox::{self, OwnNamespaces};
use super::shim::{self, SOCKET_FILE, ShimState, ShimStatus, frame};
use super::spec::{
    self, CgroupSpec, ContainerSpec, LogSpec, MountKind, MountPropagation, MountSpec, NamespaceSpec, PidNamespace,
    RootfsSpec,
};
use super::syscall::LinuxSyscall;
use super::{LinuxRuntimeConfig, caps};
use crate::cri::*;

/// `node.json`: what this data dir's runtime created on the host, for `skiff reset`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeRecord {
    pub(crate) bridge: String,
    pub(crate) cgroup_root: String,
    pub(crate) pod_cidr: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum NetworkRecord {
    Builtin(Attachment),
    Cni(CniAttachment),
}

/// `sandbox.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SandboxRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) uid: String,
    pub(crate) attempt: u32,
    pub(crate) hostname: String,
    pub(crate) created_at: i64,
    pub(crate) ready: bool,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) log_directory: PathBuf,
    pub(crate) own: OwnNamespaces,
    pub(crate) host_pid: bool,
    pub(crate) share_pid: bool,
    /// The pod cgroup, relative to the node root.
    pub(crate) cgroup: String,
    pub(crate) network: Option<NetworkRecord>,
    pub(crate) shm_mounted: bool,
}

/// `meta.json`: the CRI view of a container that does not change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContainerRecord {
    pub(crate) id: String,
    pub(crate) sandbox_id: String,
    pub(crate) name: String,
    pub(crate) attempt: u32,
    pub(crate) image: String,
    pub(crate) image_ref: String,
    pub(crate) created_at: i64,
    pub(crate) log_path: PathBuf,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) cgroup: String,
    pub(crate) host_pid: bool,
}

const SANDBOX_FILE: &str = "sandbox.json";
const META_FILE: &str = "meta.json";
pub(crate) const NODE_FILE: &str = "node.json";
/// The routes to other nodes' pod ranges this runtime made (`reset` removes them).
pub(crate) const ROUTES_FILE: &str = "routes.json";

/// How pods reach the pods of other nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodNetwork {
    /// A route to each node's pod range via the node's address (nodes share a link).
    HostGw,
    /// A VXLAN overlay, as flannel's `vxlan` backend lays it out: works wherever the nodes
    /// reach each other over UDP. `local` is this node's address, the tunnel's source.
    Vxlan { local: std::net::Ipv4Addr },
}

/// The overlay's VXLAN network identifier and UDP port (flannel's defaults on Linux).
pub(crate) const VXLAN_VNI: u32 = 1;
pub(crate) const VXLAN_PORT: u16 = 8472;

/// The overlay device's name, derived from the bridge's (which is unique per data dir).
pub(crate) fn vxlan_name(bridge: &str) -> String {
    format!("{}.vx", &bridge[..bridge.len().min(12)])
}

/// The MAC of a node's overlay device, derived from its address so every node knows every
/// other's without publishing it: locally administered, unicast (`0e:73` + the address).
pub(crate) fn vtep_mac(node: std::net::Ipv4Addr) -> [u8; 6] {
    let o = node.octets();
    [0x0e, 0x73, o[0], o[1], o[2], o[3]]
}

fn internal(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Internal(format!("{what}: {e}"))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let b = fs::read(path)?;
    serde_json::from_slice(&b).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(value).map_err(io::Error::other)?)?;
    fs::rename(&tmp, path)
}

/// A random 128-bit hex id.
fn new_id() -> String {
    let v: u128 = rand::random();
    format!("{v:032x}")
}

/// Ids are our own hex strings; anything else cannot name a directory of ours.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Linux runtime. Cheap to clone.
#[derive(Clone)]
pub struct LinuxRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    config: LinuxRuntimeConfig,
    cgroups: Cgroups,
    subnet: Subnet,
    ipam: Ipam,
    images: Arc<dyn ImageSource>,
    image_service: Option<Arc<dyn ImageService>>,
    cni: Option<CniConfig>,
    last_cap: u8,
    /// Serialises lifecycle calls per sandbox/container id.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for LinuxRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxRuntime").field("config", &self.inner.config).finish()
    }
}

impl LinuxRuntime {
    /// Reach the other nodes' pod ranges: `desired` maps each range (`a.b.c.d/len`) to its
    /// node's address. With [`PodNetwork::HostGw`] a route `podCIDR via nodeIP`; with
    /// [`PodNetwork::Vxlan`] an overlay device and, per node, a route via its VTEP on that
    /// device plus the neighbour and forwarding entries that send it to the node. Made exactly
    /// `desired`: new routes added, moved ones replaced, ones no longer wanted removed. The
    /// routes are recorded in the state dir so `reset` removes exactly these.
    pub async fn sync_node_routes(
        &self,
        desired: std::collections::BTreeMap<String, std::net::Ipv4Addr>,
        network: PodNetwork,
    ) -> Result<()> {
        use std::net::Ipv4Addr;
        let file = self.inner.config.state_dir.join(ROUTES_FILE);
        let before: std::collections::BTreeMap<String, Ipv4Addr> =
            fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        let parse = |cidr: &str| -> Result<(Ipv4Addr, u8)> {
            let bad = || RuntimeError::InvalidArgument(format!("route {cidr:?}"));
            let (ip, len) = cidr.split_once('/').ok_or_else(bad)?;
            let len: u8 = len.parse().map_err(|_| bad())?;
            let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
            if len > 32 {
                return Err(bad());
            }
            Ok((Ipv4Addr::from(u32::from(ip) & (u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0))), len))
        };
        // Each route: (range, prefix, gateway, node address).
        let mut wanted = Vec::new();
        let mut routes = std::collections::BTreeMap::new();
        for (cidr, node) in &desired {
            let (ip, len) = parse(cidr)?;
            // Over VXLAN the gateway is the node's VTEP: its range's network address.
            let gw = match network {
                PodNetwork::HostGw => *node,
                PodNetwork::Vxlan { .. } => ip,
            };
            wanted.push((ip, len, gw, *node));
            routes.insert(cidr.clone(), gw);
        }
        let mut gone = Vec::new();
        for (cidr, gw) in &before {
            if routes.get(cidr) != Some(gw) {
                let (ip, len) = parse(cidr)?;
                gone.push((ip, len, *gw));
            }
        }
        let vxlan = vxlan_name(&self.inner.config.bridge);
        let own_vtep = self.inner.subnet.network;
        network::with_netlink(move |ops| {
            for (ip, len, gw) in gone {
                ops.delete_route(ip, len, gw)?;
            }
            match network {
                PodNetwork::HostGw => {
                    if ops.link_exists(&vxlan)? {
                        ops.delete_link(&vxlan)?;
                    }
                    for (ip, len, gw, _) in wanted {
                        ops.replace_route(ip, len, gw)
                            .map_err(|e| std::io::Error::new(e.kind(), format!("route {ip}/{len} via {gw}: {e}")))?;
                    }
                }
                PodNetwork::Vxlan { local } => {
                    let index = ops
                        .ensure_vxlan(&vxlan, VXLAN_VNI, VXLAN_PORT, local, vtep_mac(local), own_vtep)
                        .map_err(|e| std::io::Error::new(e.kind(), format!("VXLAN device {vxlan}: {e}")))?;
                    for (ip, len, gw, node) in wanted {
                        ops.replace_vxlan_peer(index, gw, vtep_mac(node), node)
                            .map_err(|e| std::io::Error::new(e.kind(), format!("VXLAN peer {node}: {e}")))?;
                        ops.replace_route_onlink(ip, len, gw, index).map_err(|e| {
                            std::io::Error::new(e.kind(), format!("route {ip}/{len} via {gw} dev {vxlan}: {e}"))
                        })?;
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| internal("node routes", e))?;
        write_json(&file, &routes).map_err(|e| internal("writing routes.json", e))?;
        Ok(())
    }

    /// The address pods reach the node at on the built-in bridge (the pod CIDR's first host),
    /// created now if it does not exist yet — node services (the cluster DNS) listen there.
    /// `None` when pods are networked by a CNI plugin (no bridge of ours).
    pub async fn pod_gateway(&self) -> Result<Option<std::net::Ipv4Addr>> {
        if self.inner.cni.is_some() {
            return Ok(None);
        }
        let (subnet, bridge) = (self.inner.subnet, self.inner.config.bridge.clone());
        network::with_netlink(move |ops| ops.ensure_bridge(&bridge, subnet.gateway(), subnet.prefix))
            .await
            .map_err(|e| internal("creating the pod bridge", e))?;
        Ok(Some(subnet.gateway()))
    }

    /// Prepare the host (state dirs, the node cgroups) and re-adopt whatever the state dir
    /// holds from an earlier run. `images` provides container rootfs layers and configs;
    /// `image_service` answers the CRI image calls (pull, list, remove).
    pub fn new(
        mut config: LinuxRuntimeConfig,
        images: Arc<dyn ImageSource>,
        image_service: Option<Arc<dyn ImageService>>,
    ) -> Result<Self> {
        let subnet = Subnet::parse(&config.pod_cidr).map_err(RuntimeError::InvalidArgument)?;
        // Shims run from "/": every path they get must be absolute.
        for p in [&mut config.data_dir, &mut config.state_dir] {
            *p = std::path::absolute(&*p).map_err(|e| internal("data dir", e))?;
        }
        if config.bridge.is_empty() || config.bridge.len() > 15 {
            return Err(RuntimeError::InvalidArgument(format!(
                "bridge name {:?} must be 1 to 15 characters",
                config.bridge
            )));
        }
        for d in ["sandboxes", "containers"] {
            fs::create_dir_all(config.state_dir.join(d))
                .map_err(|e| internal(&format!("creating {}", config.state_dir.display()), e))?;
        }
        let node = NodeRecord {
            bridge: config.bridge.clone(),
            cgroup_root: config.cgroup_root.clone(),
            pod_cidr: config.pod_cidr.clone(),
        };
        write_json(&config.state_dir.join(NODE_FILE), &node).map_err(|e| internal("writing node.json", e))?;
        let cgroups = Cgroups::detect(&config.cgroup_root).map_err(|e| internal("cgroups", e))?;
        cgroups.ensure_node(&LinuxSyscall).map_err(|e| internal("creating the node cgroups", e))?;
        let cni = match (&config.cni_bin_dir, &config.cni_conf_dir) {
            (Some(bin), Some(conf)) => {
                Some(CniConfig::load(bin, conf).map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?)
            }
            _ => None,
        };
        let ipam = Ipam::new(config.state_dir.join("ipam").join(&config.bridge), subnet);
        let rt = LinuxRuntime {
            inner: Arc::new(Inner {
                config,
                cgroups,
                subnet,
                ipam,
                images,
                image_service,
                cni,
                last_cap: caps::last_cap(),
                locks: Mutex::new(HashMap::new()),
            }),
        };
        let ids = rt.container_ids();
        if let Err(e) = rt.inner.images.retain_pins(&ids.iter().cloned().collect()) {
            tracing::warn!(error = %e, "releasing image pins of removed containers");
        }
        let live = ids.iter().filter(|id| rt.shim_alive(id)).count();
        if live > 0 {
            tracing::info!(containers = live, "re-adopted running containers");
        }
        Ok(rt)
    }

    pub fn config(&self) -> &LinuxRuntimeConfig {
        &self.inner.config
    }

    /// Wait until a container has exited (its shim tells the moment it reaps it) and return
    /// its final status; `Timeout` after `timeout`. Not part of the CRI (the kubelet polls);
    /// for tools and benchmarks.
    pub async fn wait_container(&self, id: &str, timeout: Duration) -> Result<ContainerStatus> {
        let rec = self.container(id)?;
        if !self.wait_exit(id, timeout).await {
            return Err(RuntimeError::Timeout(format!("waiting for container {id}")));
        }
        Ok(self.status_of(&rec))
    }

    fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.inner.config.state_dir.join("sandboxes").join(id)
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.inner.config.state_dir.join("containers").join(id)
    }

    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    fn forget_lock(&self, id: &str) {
        let mut locks = self.inner.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.remove(id);
    }

    fn sandbox(&self, id: &str) -> Result<SandboxRecord> {
        let not_found = || RuntimeError::NotFound { kind: "sandbox", id: id.to_string() };
        if !valid_id(id) {
            return Err(not_found());
        }
        match read_json(&self.sandbox_dir(id).join(SANDBOX_FILE)) {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found()),
            Err(e) => Err(internal("reading sandbox record", e)),
        }
    }

    fn save_sandbox(&self, rec: &SandboxRecord) -> Result<()> {
        write_json(&self.sandbox_dir(&rec.id).join(SANDBOX_FILE), rec)
            .map_err(|e| internal("writing sandbox record", e))
    }

    fn container(&self, id: &str) -> Result<ContainerRecord> {
        let not_found = || RuntimeError::NotFound { kind: "container", id: id.to_string() };
        if !valid_id(id) {
            return Err(not_found());
        }
        match read_json(&self.container_dir(id).join(META_FILE)) {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(not_found()),
            Err(e) => Err(internal("reading container record", e)),
        }
    }

    fn ids(&self, kind: &str) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(self.inner.config.state_dir.join(kind))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_id(n))
            .collect();
        ids.sort();
        ids
    }

    fn container_ids(&self) -> Vec<String> {
        self.ids("containers")
    }

    fn shim_status(&self, id: &str) -> Option<ShimStatus> {
        shim::read_status(&self.container_dir(id)).ok()
    }

    fn shim_alive(&self, id: &str) -> bool {
        self.shim_status(id).is_some_and(|s| s.state != ShimState::Exited && shim::alive(s.shim_pid, s.shim_start))
    }

    fn status_of(&self, rec: &ContainerRecord) -> ContainerStatus {
        let st = self.shim_status(&rec.id);
        let mut status = ContainerStatus {
            id: rec.id.clone(),
            sandbox_id: rec.sandbox_id.clone(),
            name: rec.name.clone(),
            attempt: rec.attempt,
            state: ContainerState::Unknown,
            created_at: rec.created_at,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            image: rec.image.clone(),
            image_ref: rec.image_ref.clone(),
            log_path: rec.log_path.clone(),
            labels: rec.labels.clone(),
            annotations: rec.annotations.clone(),
        };
        let Some(st) = st else { return status };
        status.started_at = st.started_at;
        status.finished_at = st.finished_at;
        status.exit_code = st.exit_code;
        status.reason = st.reason.clone();
        status.message = st.message.clone();
        status.state = match st.state {
            ShimState::Exited => ContainerState::Exited,
            _ if !shim::alive(st.shim_pid, st.shim_start) => {
                // The supervisor died (killed by hand?): its container is no longer watched.
                status.exit_code = 255;
                status.reason = "Unknown".into();
                status.message = "the container's supervisor exited unexpectedly".into();
                if status.finished_at == 0 {
                    status.finished_at = super::cri_log::now_ns();
                }
                ContainerState::Exited
            }
            ShimState::Created => ContainerState::Created,
            ShimState::Running => ContainerState::Running,
        };
        status
    }

    /// Spawn the shim for a prepared container dir; returns once the container is created.
    async fn spawn_shim(&self, dir: &Path) -> std::result::Result<(), String> {
        let shim = &self.inner.config.shim;
        let mut cmd = tokio::process::Command::new(&shim.program);
        cmd.args(&shim.args)
            .arg("run")
            .arg(dir)
            .envs(shim.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().map_err(|e| format!("starting the shim {}: {e}", shim.program.display()))?;
        let out = child.stdout.take().ok_or("shim stdout")?;
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(60), BufReader::new(out).read_line(&mut line)).await;
        let _ = child.wait().await;
        match read {
            Err(_) => Err("timed out waiting for the container to be created".into()),
            Ok(Err(e)) => Err(format!("reading the shim's report: {e}")),
            Ok(Ok(_)) => {
                let line = line.trim();
                if line.starts_with("ok") {
                    Ok(())
                } else if let Some(msg) = line.strip_prefix("error ") {
                    Err(msg.to_string())
                } else {
                    let log = fs::read_to_string(dir.join(shim::SHIM_LOG)).unwrap_or_default();
                    Err(format!("the shim failed: {line}{}", log.trim()))
                }
            }
        }
    }

    /// Start the init of the pod's shared PID namespace (see `shim::pod_init`), move it into
    /// the pod's cgroup (so removing the group ends it, and the namespace with it) and bind
    /// its namespace to `ns/pid`, which containers join.
    async fn start_pod_init(&self, rec: &SandboxRecord) -> io::Result<()> {
        let shim = &self.inner.config.shim;
        let out = tokio::process::Command::new(&shim.program)
            .args(&shim.args)
            .arg("pod-init")
            .envs(shim.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output();
        let out = tokio::time::timeout(Duration::from_secs(30), out)
            .await
            .map_err(|_| io::Error::other("timed out starting the pod's PID namespace init"))??;
        let line = String::from_utf8_lossy(&out.stdout);
        let pid: i32 = match line.lines().next().and_then(|l| l.strip_prefix("ok ")) {
            Some(p) => p.trim().parse().map_err(|_| io::Error::other(format!("pod init replied {line:?}")))?,
            None => return Err(io::Error::other(format!("starting the pod's PID namespace init: {}", line.trim()))),
        };
        let kill = || {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        };
        for procs in self.inner.cgroups.procs_files(&rec.cgroup) {
            if let Err(e) = fs::write(&procs, pid.to_string()) {
                kill();
                return Err(io::Error::new(e.kind(), format!("moving the pod init into {}: {e}", procs.display())));
            }
        }
        let ns_dir = sandbox::ns_dir(&self.sandbox_dir(&rec.id));
        let target = ns_dir.join("pid");
        let bound = fs::create_dir_all(&ns_dir).and_then(|()| fs::File::create(&target)).and_then(|_| {
            nix::mount::mount(
                Some(&PathBuf::from(format!("/proc/{pid}/ns/pid"))),
                &target,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(io::Error::from)
        });
        if let Err(e) = bound {
            kill();
            return Err(io::Error::new(e.kind(), format!("binding the pod's PID namespace: {e}")));
        }
        Ok(())
    }

    /// Send one command line to a container's shim and read the one-line reply.
    async fn shim_request(&self, id: &str, line: &str) -> io::Result<String> {
        let mut s = UnixStream::connect(self.container_dir(id).join(SOCKET_FILE)).await?;
        s.write_all(format!("{line}\n").as_bytes()).await?;
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).await?;
        Ok(reply.trim().to_string())
    }

    async fn signal(&self, id: &str, sig: i32) -> io::Result<()> {
        let reply = self.shim_request(id, &format!("kill {sig}")).await?;
        if reply == "ok" { Ok(()) } else { Err(io::Error::other(reply)) }
    }

    /// Wait until the container has exited (or its shim is gone), up to `timeout`. True if it
    /// has.
    async fn wait_exit(&self, id: &str, timeout: Duration) -> bool {
        let fut = async {
            if let Ok(mut s) = UnixStream::connect(self.container_dir(id).join(SOCKET_FILE)).await
                && s.write_all(b"wait\n").await.is_ok()
            {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf).await;
            }
            // The socket is gone: the shim is exiting (or dead); wait for it to finish.
            loop {
                match self.shim_status(id) {
                    Some(st) if st.state != ShimState::Exited && shim::alive(st.shim_pid, st.shim_start) => {}
                    _ => return,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(timeout, fut).await.is_ok()
    }

    /// Kill whatever is left in a container's cgroup (host-PID containers can leave orphans;
    /// a dead shim leaves the whole container).
    fn kill_leftovers(&self, rec: &ContainerRecord) {
        for d in self.inner.cgroups.dirs(&rec.cgroup) {
            cgroups::kill_all(&d);
        }
    }

    async fn stop_locked(&self, rec: &ContainerRecord, timeout: Duration) -> Result<()> {
        let id = &rec.id;
        let Some(st) = self.shim_status(id) else {
            self.kill_leftovers(rec);
            return Ok(());
        };
        if st.state == ShimState::Exited {
            self.kill_leftovers(rec);
            return Ok(());
        }
        if !shim::alive(st.shim_pid, st.shim_start) {
            if shim::alive(st.pid, st.pid_start) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(st.pid), nix::sys::signal::Signal::SIGKILL);
            }
            self.kill_leftovers(rec);
            return Ok(());
        }
        if st.state == ShimState::Running
            && !timeout.is_zero()
            && self.signal(id, libc::SIGTERM).await.is_ok()
            && self.wait_exit(id, timeout).await
        {
            self.kill_leftovers(rec);
            return Ok(());
        }
        let _ = self.signal(id, libc::SIGKILL).await;
        if !self.wait_exit(id, Duration::from_secs(30)).await {
            return Err(RuntimeError::Timeout(format!("stopping container {id}")));
        }
        self.kill_leftovers(rec);
        Ok(())
    }

    async fn remove_container_locked(&self, rec: &ContainerRecord) -> Result<()> {
        self.stop_locked(rec, Duration::ZERO).await?;
        self.remove_cgroup_and_dir(&rec.cgroup, self.container_dir(&rec.id), "removing container").await?;
        self.unpin_image(&rec.id).await;
        self.forget_lock(&rec.id);
        Ok(())
    }

    /// Release a container's image pin. A failure only delays the image's removal (the pin
    /// names a container that no longer exists), so it is logged, not returned.
    async fn unpin_image(&self, container: &str) {
        let images = self.inner.images.clone();
        let owner = container.to_string();
        match tokio::task::spawn_blocking(move || images.unpin(&owner)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(container, error = %e, "releasing the image pin"),
            Err(e) => tracing::warn!(container, error = %e, "releasing the image pin"),
        }
    }

    /// The files of the image (passwd, group) as the container will see them: the top-most
    /// layer that has the file wins.
    fn image_file(layers: &[PathBuf], path: &str) -> Option<String> {
        layers.iter().find_map(|l| fs::read_to_string(l.join(path)).ok())
    }

    fn build_spec(
        &self,
        id: &str,
        sb: &SandboxRecord,
        config: &ContainerConfig,
        layers: Vec<PathBuf>,
        image: &ImageConfig,
        cgroup: &str,
    ) -> Result<ContainerSpec> {
        let dir = &self.container_dir(id);
        let passwd = Self::image_file(&layers, "etc/passwd");
        let group = Self::image_file(&layers, "etc/group");
        let hostname = if sb.own.uts {
            sb.hostname.clone()
        } else {
            nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
        };
        let process =
            spec::process_spec(config, image, &hostname, passwd.as_deref(), group.as_deref(), self.inner.last_cap)
                .map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
        let sdir = self.sandbox_dir(&sb.id);
        let user_paths: Vec<String> =
            config.mounts.iter().map(|m| m.container_path.to_string_lossy().into_owned()).collect();
        let mut mounts = Vec::new();
        for name in ["hosts", "hostname", "resolv.conf"] {
            let dest = format!("/etc/{name}");
            if user_paths.contains(&dest) {
                continue;
            }
            mounts.push(MountSpec {
                destination: dest,
                source: Some(sdir.join(name)),
                kind: MountKind::Bind,
                readonly: config.security.readonly_rootfs,
                propagation: MountPropagation::Private,
            });
        }
        let mut extra: Vec<MountSpec> = config
            .mounts
            .iter()
            .map(|m| MountSpec {
                destination: m.container_path.to_string_lossy().into_owned(),
                source: m.host_path.clone(),
                kind: match m.tmpfs {
                    Some(size) => MountKind::Tmpfs(size),
                    None => MountKind::Bind,
                },
                readonly: m.readonly,
                propagation: match m.propagation {
                    Propagation::Private => MountPropagation::Private,
                    Propagation::HostToContainer => MountPropagation::Slave,
                    Propagation::Bidirectional => MountPropagation::Shared,
                },
            })
            .collect();
        // Parents before children.
        extra.sort_by_key(|m| m.destination.split('/').filter(|c| !c.is_empty()).count());
        mounts.extend(extra);
        let ns_dir = sandbox::ns_dir(&sdir);
        let pid = if sb.host_pid {
            PidNamespace::Host
        } else if sb.share_pid {
            PidNamespace::Join(ns_dir.join("pid"))
        } else {
            PidNamespace::New
        };
        let log_path = if config.log_path.as_os_str().is_empty() {
            None
        } else {
            let p = sb.log_directory.join(&config.log_path);
            if !p.is_absolute() {
                return Err(RuntimeError::InvalidArgument(format!(
                    "log path {} is relative: the sandbox needs an absolute log directory",
                    p.display()
                )));
            }
            Some(p)
        };
        Ok(ContainerSpec {
            id: id.to_string(),
            rootfs: RootfsSpec {
                lower: layers,
                upper: dir.join("upper"),
                work: dir.join("work"),
                target: dir.join("rootfs"),
                readonly: config.security.readonly_rootfs,
            },
            mounts,
            namespaces: NamespaceSpec {
                net: sb.own.net.then(|| ns_dir.join("net")),
                ipc: sb.own.ipc.then(|| ns_dir.join("ipc")),
                uts: sb.own.uts.then(|| ns_dir.join("uts")),
                pid,
            },
            process,
            cgroup: CgroupSpec {
                procs: self.inner.cgroups.procs_files(cgroup),
                oom_events: self.inner.cgroups.oom_events(cgroup),
            },
            masked_paths: config.security.masked_paths.clone(),
            readonly_paths: config.security.readonly_paths.clone(),
            privileged: config.security.privileged,
            shm: if sb.shm_mounted { Some(sdir.join("shm")) } else { None },
            log: LogSpec {
                path: log_path,
                max_size: self.inner.config.log_max_size,
                max_files: self.inner.config.log_max_files,
            },
        })
    }

    /// Tear down a sandbox's network (idempotent: the record forgets it once done).
    async fn teardown_network(&self, rec: &mut SandboxRecord) -> Result<()> {
        let Some(net) = rec.network.take() else { return Ok(()) };
        let netns = network::netns_path(&self.sandbox_dir(&rec.id));
        let r = match &net {
            NetworkRecord::Builtin(att) => {
                let ipam = Ipam::new(self.inner.ipam.dir().to_path_buf(), self.inner.subnet);
                let (id, att) = (rec.id.clone(), att.clone());
                network::with_netlink(move |ops| network::teardown(ops, &ipam, &id, &att)).await
            }
            NetworkRecord::Cni(att) => cni::del(&rec.id, &netns, att).await,
        };
        if let Err(e) = r {
            rec.network = Some(net);
            return Err(internal("tearing down the pod network", e));
        }
        Ok(())
    }

    /// Undo everything a sandbox holds on the host except its containers.
    async fn destroy_sandbox(&self, rec: &mut SandboxRecord) -> Result<()> {
        let dir = self.sandbox_dir(&rec.id);
        self.teardown_network(rec).await?;
        let _ = self.save_sandbox(rec);
        for m in ["ns/net", "ns/ipc", "ns/uts", "ns/pid", "shm"] {
            let p = dir.join(m);
            // EINVAL: not a mount point (never bound, or already unmounted).
            match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => return Err(internal(&format!("unmounting {}", p.display()), e)),
            }
        }
        self.remove_cgroup_and_dir(&rec.cgroup, dir, "removing sandbox").await
    }

    /// Remove a cgroup (killing what is left in it) and then a state dir, off the async
    /// threads; a dir already gone is fine.
    async fn remove_cgroup_and_dir(&self, cgroup: &str, dir: PathBuf, what: &str) -> Result<()> {
        let cg = self.inner.cgroups.clone();
        let cgroup = cgroup.to_string();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            cg.remove(&cgroup)?;
            match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
        .await
        .map_err(|e| internal(what, e))?
        .map_err(|e| internal(what, e))
    }

    async fn setup_sandbox(&self, rec: &mut SandboxRecord, config: &PodSandboxConfig) -> io::Result<()> {
        let dir = self.sandbox_dir(&rec.id);
        self.inner.cgroups.create(&LinuxSyscall, &rec.cgroup, config.resources.as_ref())?;
        sandbox::create_namespaces_on_thread(dir.clone(), rec.own, rec.hostname.clone(), config.sysctls.clone())
            .await?;
        if rec.share_pid {
            self.start_pod_init(rec).await?;
        }
        let shm = dir.join("shm");
        if rec.own.ipc {
            fs::create_dir_all(&shm)?;
            nix::mount::mount(
                Some("shm"),
                &shm,
                Some("tmpfs"),
                nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV | nix::mount::MsFlags::MS_NOEXEC,
                Some("mode=1777,size=65536k"),
            )?;
            rec.shm_mounted = true;
            self.save_sandbox_io(rec)?;
        }
        if rec.own.net {
            let netns = network::netns_path(&dir);
            match &self.inner.cni {
                Some(cni) => {
                    let ns = netns.clone();
                    network::with_netlink(move |ops| ops.loopback_up(&ns)).await?;
                    let att = cni.add(&rec.id, &netns).await?;
                    rec.ips = att.ips.clone();
                    rec.network = Some(NetworkRecord::Cni(att));
                }
                None => {
                    let ipam = Ipam::new(self.inner.ipam.dir().to_path_buf(), self.inner.subnet);
                    let (subnet, bridge, id) = (self.inner.subnet, self.inner.config.bridge.clone(), rec.id.clone());
                    let att = network::with_netlink(move |ops| {
                        network::setup(ops as &mut dyn NetOps, &ipam, subnet, &bridge, &id, &netns)
                    })
                    .await?;
                    rec.ips = vec![IpAddr::V4(att.ip)];
                    rec.network = Some(NetworkRecord::Builtin(att));
                }
            }
            self.save_sandbox_io(rec)?;
        }
        let hostname = if rec.own.uts {
            rec.hostname.clone()
        } else {
            nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
        };
        fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
        let hosts = if rec.own.net {
            sandbox::hosts_file(&hostname, &rec.ips, &config.host_aliases)
        } else {
            let mut h = fs::read_to_string("/etc/hosts").unwrap_or_default();
            h.push_str(
                &sandbox::hosts_file(&hostname, &[], &config.host_aliases)
                    .split_once("\n# Entries added by HostAliases.\n")
                    .map(|(_, a)| format!("\n# Entries added by HostAliases.\n{a}"))
                    .unwrap_or_default(),
            );
            h
        };
        fs::write(dir.join("hosts"), hosts)?;
        let resolv = match sandbox::resolv_conf(&config.dns) {
            Some(r) => r,
            None => fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        };
        fs::write(dir.join("resolv.conf"), resolv)?;
        Ok(())
    }

    fn save_sandbox_io(&self, rec: &SandboxRecord) -> io::Result<()> {
        write_json(&self.sandbox_dir(&rec.id).join(SANDBOX_FILE), rec)
    }

    fn sandbox_status(rec: &SandboxRecord) -> PodSandboxStatus {
        PodSandboxStatus {
            id: rec.id.clone(),
            name: rec.name.clone(),
            namespace: rec.namespace.clone(),
            uid: rec.uid.clone(),
            attempt: rec.attempt,
            state: if rec.ready { SandboxState::Ready } else { SandboxState::NotReady },
            created_at: rec.created_at,
            ips: rec.ips.clone(),
            labels: rec.labels.clone(),
            annotations: rec.annotations.clone(),
        }
    }

    fn running(&self, id: &str) -> Result<ContainerRecord> {
        let rec = self.container(id)?;
        if self.status_of(&rec).state != ContainerState::Running {
            return Err(RuntimeError::InvalidArgument(format!("container {id} is not running")));
        }
        Ok(rec)
    }

    fn exec_command(&self, id: &str, cmd: &[String], tty: bool) -> Result<tokio::process::Command> {
        if cmd.is_empty() {
            return Err(RuntimeError::InvalidArgument("exec: empty command".into()));
        }
        let req =
            serde_json::to_string(&ExecRequest { args: cmd.to_vec(), tty }).map_err(|e| internal("exec request", e))?;
        let shim = &self.inner.config.shim;
        let mut c = tokio::process::Command::new(&shim.program);
        c.args(&shim.args)
            .arg("exec")
            .arg(self.container_dir(id))
            .arg(req)
            .envs(shim.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        Ok(c)
    }

    /// Run an exec with the caller's streams (pipes, or a pty for `tty`).
    async fn exec_streams(&self, id: &str, cmd: &[String], io: StreamIo) -> Result<i32> {
        self.running(id)?;
        let mut c = self.exec_command(id, cmd, io.tty)?;
        let StreamIo { stdin, stdout, stderr, tty, resize } = io;
        let mut tasks = Vec::new();
        let mut child;
        if tty {
            // The helper opens the terminal inside the container and sends its master back
            // over this socket (its stdin).
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(|e| internal("console socket", e))?;
            c.stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(theirs)))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            child = c.spawn().map_err(|e| internal("starting exec", e))?;
            let _ = ours.set_read_timeout(Some(Duration::from_secs(30)));
            let master = match tokio::task::spawn_blocking(move || super::console::recv_fd(&ours)).await {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => {
                    let _ = child.kill().await;
                    return Err(internal("exec: receiving the terminal", e));
                }
                Err(e) => return Err(internal("exec", e)),
            };
            let reader = tokio::fs::File::from_std(fs::File::from(master.try_clone().map_err(|e| internal("pty", e))?));
            let writer = tokio::fs::File::from_std(fs::File::from(master.try_clone().map_err(|e| internal("pty", e))?));
            if let Some(mut out) = stdout {
                tasks.push(tokio::spawn(async move {
                    let mut reader = reader;
                    // EIO once the last slave fd is closed: the session ended.
                    let _ = tokio::io::copy(&mut reader, &mut out).await;
                    let _ = out.flush().await;
                }));
            }
            if let Some(mut input) = stdin {
                tokio::spawn(async move {
                    let mut writer = writer;
                    let _ = tokio::io::copy(&mut input, &mut writer).await;
                });
            }
            if let Some(mut rx) = resize {
                tokio::spawn(async move {
                    while let Some(size) = rx.recv().await {
                        set_winsize(&master, size);
                    }
                });
            }
        } else {
            c.stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
                .stdout(if stdout.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() })
                .stderr(if stderr.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() });
            child = c.spawn().map_err(|e| internal("starting exec", e))?;
            if let (Some(mut input), Some(mut pipe)) = (stdin, child.stdin.take()) {
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut input, &mut pipe).await;
                    let _ = pipe.shutdown().await;
                });
            }
            if let (Some(mut out), Some(mut pipe)) = (stdout, child.stdout.take()) {
                tasks.push(tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut pipe, &mut out).await;
                    let _ = out.flush().await;
                }));
            }
            if let (Some(mut out), Some(mut pipe)) = (stderr, child.stderr.take()) {
                tasks.push(tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut pipe, &mut out).await;
                    let _ = out.flush().await;
                }));
            }
        }
        let status = child.wait().await.map_err(|e| internal("waiting for exec", e))?;
        // Output still buffered in pipes; a daemonised grandchild holding them open must not
        // keep the session alive forever.
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), t).await.is_err() {
                abort.abort();
            }
        }
        Ok(exit_code(status))
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn set_winsize(fd: &std::os::fd::OwnedFd, size: TerminalSize) {
    use std::os::fd::AsRawFd;
    let ws = libc::winsize { ws_row: size.height, ws_col: size.width, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one `winsize` living across the call; `fd` is an open pty.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const libc::winsize) };
}

/// Bytes used by a directory tree (the writable layer).
fn du(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(rd) = fs::read_dir(&p) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += std::os::unix::fs::MetadataExt::blocks(&m) * 512;
            }
        }
    }
    total
}

#[async_trait::async_trait]
impl Runtime for LinuxRuntime {
    async fn version(&self) -> Result<VersionInfo> {
        Ok(VersionInfo {
            runtime_name: "skiff".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn run_pod_sandbox(&self, config: &PodSandboxConfig) -> Result<String> {
        let own = OwnNamespaces::of(config);
        sandbox::validate_sysctls(&config.sysctls, own).map_err(RuntimeError::InvalidArgument)?;
        if config.namespaces.share_process_namespace && config.namespaces.host_pid {
            return Err(RuntimeError::InvalidArgument("shareProcessNamespace and hostPID cannot both be set".into()));
        }
        let id = new_id();
        let dir = self.sandbox_dir(&id);
        fs::create_dir_all(&dir).map_err(|e| internal("creating sandbox dir", e))?;
        let cgroup = match config.cgroup_parent.trim_matches('/') {
            "" => format!("pod{}", if config.uid.is_empty() { &id } else { &config.uid }),
            p if p.split('/').any(|c| c == ".." || c == ".") => {
                return Err(RuntimeError::InvalidArgument(format!("bad cgroup parent {p:?}")));
            }
            p => p.to_string(),
        };
        let mut rec = SandboxRecord {
            id: id.clone(),
            name: config.name.clone(),
            namespace: config.namespace.clone(),
            uid: config.uid.clone(),
            attempt: config.attempt,
            hostname: if config.hostname.is_empty() { config.name.clone() } else { config.hostname.clone() },
            created_at: super::cri_log::now_ns(),
            ready: false,
            ips: vec![],
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            log_directory: config.log_directory.clone(),
            own,
            host_pid: config.namespaces.host_pid,
            share_pid: config.namespaces.share_process_namespace,
            cgroup,
            network: None,
            shm_mounted: false,
        };
        self.save_sandbox(&rec)?;
        let lock = self.lock(&id);
        let _guard = lock.lock().await;
        if let Err(e) = self.setup_sandbox(&mut rec, config).await {
            if let Err(cleanup) = self.destroy_sandbox(&mut rec).await {
                tracing::warn!(sandbox = %id, error = %cleanup, "cleaning up a failed sandbox");
            }
            return Err(RuntimeError::Create(format!("creating pod sandbox: {e}")));
        }
        rec.ready = true;
        self.save_sandbox(&rec)?;
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut rec = match self.sandbox(id) {
            Ok(r) => r,
            Err(RuntimeError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        for c in
            self.list_containers(&ContainerFilter { sandbox_id: Some(id.to_string()), ..Default::default() }).await?
        {
            self.stop_container(&c.id, Duration::ZERO).await?;
        }
        self.teardown_network(&mut rec).await?;
        rec.ready = false;
        self.save_sandbox(&rec)
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut rec = match self.sandbox(id) {
            Ok(r) => r,
            Err(RuntimeError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        for c in
            self.list_containers(&ContainerFilter { sandbox_id: Some(id.to_string()), ..Default::default() }).await?
        {
            self.remove_container(&c.id).await?;
        }
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.destroy_sandbox(&mut rec).await?;
        self.forget_lock(id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus> {
        Ok(Self::sandbox_status(&self.sandbox(id)?))
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<PodSandboxStatus>> {
        Ok(self
            .ids("sandboxes")
            .iter()
            .filter_map(|id| self.sandbox(id).ok())
            .map(|r| Self::sandbox_status(&r))
            .collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
        _sandbox: &PodSandboxConfig,
    ) -> Result<String> {
        let sb = self.sandbox(sandbox_id)?;
        if !sb.ready {
            return Err(RuntimeError::InvalidArgument(format!("sandbox {sandbox_id} is not ready")));
        }
        let id = new_id();
        let images = self.inner.images.clone();
        let (image, owner) = (config.image.clone(), id.clone());
        // Pinned first, so neither `skiff image rm` nor image GC can take the layers between
        // here and the container's removal.
        let (layers, image_config, image_ref) = tokio::task::spawn_blocking(move || -> Result<_> {
            let image_ref = images.pin(&image, &owner)?;
            let resolved = images.rootfs_layers(&image).and_then(|l| Ok((l, images.config(&image)?)));
            match resolved {
                Ok((layers, config)) => Ok((layers, config, image_ref)),
                Err(e) => {
                    let _ = images.unpin(&owner);
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| internal("resolving image", e))??;
        let dir = self.container_dir(&id);
        let cgroup = format!("{}/{id}", sb.cgroup);
        let spec = match self.build_spec(&id, &sb, config, layers, &image_config, &cgroup) {
            Ok(spec) => spec,
            Err(e) => {
                self.unpin_image(&id).await;
                return Err(e);
            }
        };
        let rec = ContainerRecord {
            id: id.clone(),
            sandbox_id: sandbox_id.to_string(),
            name: config.name.clone(),
            attempt: config.attempt,
            image: config.image.clone(),
            image_ref,
            created_at: super::cri_log::now_ns(),
            log_path: spec.log.path.clone().unwrap_or_default(),
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            cgroup: cgroup.clone(),
            host_pid: sb.host_pid,
        };
        let lock = self.lock(&id);
        let _guard = lock.lock().await;
        let prepared = (|| -> io::Result<()> {
            for d in ["upper", "work", "rootfs"] {
                fs::create_dir_all(dir.join(d))?;
            }
            write_json(&dir.join(shim::SPEC_FILE), &spec)?;
            write_json(&dir.join(META_FILE), &rec)?;
            self.inner.cgroups.create(&LinuxSyscall, &cgroup, Some(&config.resources))
        })();
        let result = match prepared {
            Ok(()) => self.spawn_shim(&dir).await,
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            let _ = self.inner.cgroups.remove(&cgroup);
            let _ = fs::remove_dir_all(&dir);
            self.unpin_image(&id).await;
            self.forget_lock(&id);
            return Err(RuntimeError::Create(format!("creating container {}: {e}", config.name)));
        }
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let rec = self.container(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        match self.status_of(&rec).state {
            ContainerState::Created => {}
            s => return Err(RuntimeError::InvalidArgument(format!("container {id} is {s:?}, not created"))),
        }
        let reply = self.shim_request(id, "start").await.map_err(|e| internal("starting container", e))?;
        match reply.strip_prefix("error ") {
            None if reply == "ok" => Ok(()),
            Some(msg) => {
                // The shim records the failure (StartError, exit code 128) once it reaps the init.
                self.wait_exit(id, Duration::from_secs(5)).await;
                Err(RuntimeError::Start(msg.to_string()))
            }
            None => Err(internal("starting container", reply)),
        }
    }

    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        let rec = self.container(id)?;
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.stop_locked(&rec, timeout).await
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let rec = match self.container(id) {
            Ok(r) => r,
            Err(RuntimeError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let lock = self.lock(id);
        let _guard = lock.lock().await;
        self.remove_container_locked(&rec).await
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus> {
        Ok(self.status_of(&self.container(id)?))
    }

    async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerStatus>> {
        Ok(self
            .container_ids()
            .iter()
            .filter_map(|id| self.container(id).ok())
            .filter(|r| filter.sandbox_id.as_ref().is_none_or(|s| *s == r.sandbox_id))
            .filter(|r| filter.labels.iter().all(|(k, v)| r.labels.get(k) == Some(v)))
            .map(|r| self.status_of(&r))
            .filter(|s| filter.state.is_none_or(|st| st == s.state))
            .collect())
    }

    async fn exec_sync(&self, id: &str, cmd: &[String], timeout: Duration) -> Result<ExecResult> {
        self.running(id)?;
        let mut c = self.exec_command(id, cmd, false)?;
        c.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let child = c.spawn().map_err(|e| internal("starting exec", e))?;
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            // Dropping the future kills the helper (kill_on_drop); its child dies with it.
            Err(_) => Err(RuntimeError::Timeout(format!("exec {:?} in container {id}", cmd.join(" ")))),
            Ok(Err(e)) => Err(internal("exec", e)),
            Ok(Ok(out)) => {
                let code = exit_code(out.status);
                if code == EXEC_SETUP_FAILED && String::from_utf8_lossy(&out.stderr).starts_with("exec failed:") {
                    return Err(RuntimeError::Internal(String::from_utf8_lossy(&out.stderr).trim().to_string()));
                }
                Ok(ExecResult { stdout: out.stdout, stderr: out.stderr, exit_code: code })
            }
        }
    }

    async fn exec(&self, id: &str, cmd: &[String], io: StreamIo) -> Result<i32> {
        self.exec_streams(id, cmd, io).await
    }

    async fn attach(&self, id: &str, io: StreamIo) -> Result<()> {
        self.running(id)?;
        let sock = self.container_dir(id).join(SOCKET_FILE);
        let stream = UnixStream::connect(&sock).await.map_err(|e| internal("attaching", e))?;
        let StreamIo { stdin, stdout, stderr, tty, resize } = io;
        let flag = |b: bool| if b { "1" } else { "0" };
        let (r, mut w) = stream.into_split();
        w.write_all(
            format!("attach {} {} {}\n", flag(stdin.is_some()), flag(stdout.is_some()), flag(stderr.is_some() && !tty))
                .as_bytes(),
        )
        .await
        .map_err(|e| internal("attaching", e))?;
        let mut r = BufReader::new(r);
        let mut reply = String::new();
        r.read_line(&mut reply).await.map_err(|e| internal("attaching", e))?;
        if reply.trim() != "ok" {
            return Err(RuntimeError::InvalidArgument(reply.trim().trim_start_matches("error ").to_string()));
        }
        let w = Arc::new(tokio::sync::Mutex::new(w));
        let mut side = Vec::new();
        if let Some(mut input) = stdin {
            let w = w.clone();
            side.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match input.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if w.lock().await.write_all(&frame::encode(frame::STDIN, &buf[..n])).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = w.lock().await.write_all(&frame::encode(frame::CLOSE_STDIN, &[])).await;
            }));
        }
        if let Some(mut rx) = resize {
            let w = w.clone();
            side.push(tokio::spawn(async move {
                while let Some(s) = rx.recv().await {
                    let mut p = s.width.to_be_bytes().to_vec();
                    p.extend_from_slice(&s.height.to_be_bytes());
                    if w.lock().await.write_all(&frame::encode(frame::RESIZE, &p)).await.is_err() {
                        return;
                    }
                }
            }));
        }
        let (mut stdout, mut stderr) = (stdout, stderr);
        loop {
            let mut head = [0u8; 5];
            if r.read_exact(&mut head).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut payload = vec![0u8; len];
            if r.read_exact(&mut payload).await.is_err() {
                break;
            }
            let out = match head[0] {
                frame::STDOUT => stdout.as_mut(),
                frame::STDERR => stderr.as_mut(),
                frame::EXIT => break,
                _ => None,
            };
            if let Some(o) = out {
                let _ = o.write_all(&payload).await;
                let _ = o.flush().await;
            }
        }
        for t in side {
            t.abort();
        }
        Ok(())
    }

    async fn port_forward(&self, sandbox_id: &str, port: u16) -> Result<Box<dyn DuplexStream>> {
        let sb = self.sandbox(sandbox_id)?;
        let netns = sb.own.net.then(|| network::netns_path(&self.sandbox_dir(sandbox_id)));
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A socket belongs to the namespace it was created in: create it on a thread that
        // joined the pod's network namespace, then hand it to tokio.
        std::thread::spawn(move || {
            let r = (|| -> io::Result<std::net::TcpStream> {
                if let Some(ns) = &netns {
                    network::enter_netns(ns)?;
                }
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            })();
            let _ = tx.send(r);
        });
        let std_stream = rx
            .await
            .map_err(|_| internal("port-forward", "thread died"))?
            .map_err(|e| RuntimeError::Internal(format!("port-forward to port {port} in sandbox {sandbox_id}: {e}")))?;
        std_stream.set_nonblocking(true).map_err(|e| internal("port-forward", e))?;
        let s = tokio::net::TcpStream::from_std(std_stream).map_err(|e| internal("port-forward", e))?;
        Ok(Box::new(s))
    }

    async fn container_stats(&self, id: &str) -> Result<ContainerStats> {
        let rec = self.container(id)?;
        let cg = self.inner.cgroups.clone();
        let upper = self.container_dir(id).join("upper");
        let (cpu, ws, rss, disk) = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let (cpu, ws, rss) = cg.stats(&rec.cgroup)?;
            Ok((cpu, ws, rss, du(&upper)))
        })
        .await
        .map_err(|e| internal("stats", e))?
        .map_err(|e| internal("reading container stats", e))?;
        Ok(ContainerStats {
            timestamp: super::cri_log::now_ns(),
            cpu_usage_ns: cpu,
            memory_working_set: ws,
            memory_rss: rss,
            writable_layer_bytes: disk,
        })
    }

    async fn pull_image(&self, image: &str, auth: Option<&AuthConfig>) -> Result<String> {
        match &self.inner.image_service {
            Some(s) => s.pull_image(image, auth).await,
            None => Err(RuntimeError::ImagePull { image: image.into(), reason: "no image service configured".into() }),
        }
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>> {
        match &self.inner.image_service {
            Some(s) => s.image_status(image).await,
            None => Ok(None),
        }
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        match &self.inner.image_service {
            Some(s) => s.list_images().await,
            None => Ok(vec![]),
        }
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        let Some(service) = &self.inner.image_service else {
            return Err(RuntimeError::NotFound { kind: "image", id: image.into() });
        };
        let id = service.image_status(image).await?.map(|i| i.id);
        let in_use = self
            .container_ids()
            .iter()
            .filter_map(|c| self.container(c).ok())
            .any(|c| c.image == image || id.as_ref().is_some_and(|id| c.image_ref == *id || c.image == *id));
        if in_use {
            return Err(RuntimeError::InvalidArgument(format!("image {image:?} is in use by a container")));
        }
        service.remove_image(image).await
    }
}

/// An [`ImageSource`] and [`ImageService`] over directories registered by hand: test and
/// benchmark images (e.g. a busybox rootfs), and a stand-in until the image store is wired.
#[derive(Default)]
pub struct StaticImages {
    images: Mutex<BTreeMap<String, (Vec<PathBuf>, ImageConfig)>>,
}

impl StaticImages {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `name` with its layers (top-most first) and config.
    pub fn insert(&self, name: &str, layers: Vec<PathBuf>, config: ImageConfig) {
        self.images.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), (layers, config));
    }

    fn get(&self, name: &str) -> Result<(Vec<PathBuf>, ImageConfig)> {
        self.images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| RuntimeError::NotFound { kind: "image", id: name.to_string() })
    }
}

impl ImageSource for StaticImages {
    fn rootfs_layers(&self, image: &str) -> Result<Vec<PathBuf>> {
        Ok(self.get(image)?.0)
    }
    fn config(&self, image: &str) -> Result<ImageConfig> {
        Ok(self.get(image)?.1)
    }
}

#[async_trait::async_trait]
impl ImageService for StaticImages {
    async fn pull_image(&self, image: &str, _auth: Option<&AuthConfig>) -> Result<String> {
        self.get(image)
            .map(|_| image.to_string())
            .map_err(|_| RuntimeError::ImagePull { image: image.into(), reason: "not a registered image".into() })
    }
    async fn image_status(&self, image: &str) -> Result<Option<Image>> {
        Ok(self.get(image).ok().map(|(_, c)| Image {
            id: image.to_string(),
            repo_tags: vec![image.to_string()],
            repo_digests: vec![],
            size: 0,
            entrypoint: c.entrypoint,
            cmd: c.cmd,
            env: c.env,
            working_dir: c.working_dir,
            user: c.user,
        }))
    }
    async fn list_images(&self) -> Result<Vec<Image>> {
        let names: Vec<String> = self.images.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        let mut out = Vec::new();
        for n in names {
            if let Some(i) = self.image_status(&n).await? {
                out.push(i);
            }
        }
        Ok(out)
    }
    async fn remove_image(&self, image: &str) -> Result<()> {
        self.images
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(image)
            .map(drop)
            .ok_or_else(|| RuntimeError::NotFound { kind: "image", id: image.into() })
    }
}

#[cfg(test)]
mod overlay_tests {
    use super::*;

    #[test]
    fn overlay_names_fit_and_macs_are_local_unicast() {
        for bridge in ["skiff0", "sk0123456789abc"] {
            let name = vxlan_name(bridge);
            assert!(name.len() <= 15 && name != bridge && name.ends_with(".vx"), "{name}");
        }
        let mac = vtep_mac(std::net::Ipv4Addr::new(192, 168, 1, 7));
        assert_eq!(mac, [0x0e, 0x73, 192, 168, 1, 7]);
        assert_eq!(mac[0] & 0b11, 0b10, "locally administered, unicast");
    }
}
