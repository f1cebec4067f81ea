//! `skiff-kubelet`: the node agent. One per node, in `skiff server` and in `skiff agent`.
//!
//! Like every component it is only an API client (`docs/architecture.md`): it registers its
//! `Node`, keeps a `Lease` in `kube-node-lease` renewed, watches the pods bound to it and runs
//! them through the CRI-shaped [`skiff_runtime::Runtime`], and reports what it sees as pod status.
//!
//! - [`node`]: registration, lease, node status with real capacity and pressure signals.
//! - `pods`: the pod manager — one watch on the pods bound to this node, one worker per pod,
//!   housekeeping of sandboxes whose pod is gone.
//! - `admission`: whether a pod that never ran here fits the node beside the pods already
//!   admitted (resources, node affinity, host ports, `NoExecute` taints); a rejected pod fails.
//! - `worker`: a pod's life on the node: sandbox → init containers (sidecars) → containers,
//!   restarts with back-off, probes, hooks, graceful termination.
//! - `status`: the pod status upstream's kubelet reports, computed from runtime observations.
//! - `convert`: pod spec → CRI sandbox and container configs (DNS, cgroups, security).
//! - [`server`]: the kubelet API (HTTPS on 10250): container logs, exec, attach,
//!   port-forward, `/pods`, `/healthz`, stats — what the API server proxies `pods/log`,
//!   `pods/exec`, `pods/attach` and `pods/portforward` to.
//! - [`volumes`] and [`env`]: a pod's volumes on the host and its containers' environment.
//! - [`probe`]: liveness, readiness and startup probes and lifecycle hooks.

mod admission;
mod backoff;
mod convert;
pub mod env;
pub mod node;
mod pods;
pub mod probe;
mod prober;
pub mod server;
mod status;
pub mod volumes;
mod worker;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skiff_runtime::Runtime;
use tokio_util::sync::CancellationToken;

pub use pods::PodManager;

/// The kubelet's version, reported in `nodeInfo.kubeletVersion`.
pub const KUBELET_VERSION: &str = concat!("v1.33.0-skiff.", env!("CARGO_PKG_VERSION"));

/// Everything a kubelet needs to know that it cannot find out itself.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    /// The Node's name (the host name by default).
    pub node_name: String,
    /// The node's addresses: the first is its InternalIP (pods' `hostIP`).
    pub node_ips: Vec<IpAddr>,
    /// Where pods' volumes and per-pod files live (`<data-dir>/pods`).
    pub pods_dir: PathBuf,
    /// Where container logs live (`<data-dir>/logs/pods`, like `/var/log/pods`).
    pub logs_dir: PathBuf,
    /// The filesystem whose size is the node's `ephemeral-storage` (the data dir).
    pub root_dir: PathBuf,
    /// The podCIDR this node runs its pods in (set on the Node at registration).
    pub pod_cidr: Option<String>,
    /// Extra labels on the Node (`node-role.kubernetes.io/control-plane` on a server).
    pub labels: BTreeMap<String, String>,
    /// Taints to register the Node with.
    pub register_taints: Vec<k8s_openapi::api::core::v1::Taint>,
    /// Pod capacity (110 like upstream).
    pub max_pods: u32,
    /// Resources held back for system daemons and Kubernetes' own (upstream's
    /// `--system-reserved` + `--kube-reserved`): quantities by resource name.
    pub reserved: BTreeMap<String, String>,
    /// The kubelet API port, advertised in `status.daemonEndpoints`.
    pub kubelet_port: u16,
    /// The cluster DNS servers (`--cluster-dns`); empty: pods with `ClusterFirst` get the
    /// host's resolvers, as upstream does when no cluster DNS is configured.
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: String,
    /// The host's resolv.conf (`Default` DNS policy).
    pub resolv_conf: PathBuf,
    /// How often the lease is renewed (10 s).
    pub lease_renew_interval: Duration,
    /// How long the lease lasts (40 s).
    pub lease_duration_seconds: i32,
    /// How often the node status is written when nothing changed (1 min).
    pub status_report_interval: Duration,
    /// How often each pod worker looks at its containers (upstream's PLEG relist, 1 s).
    pub relist_interval: Duration,
}

impl KubeletConfig {
    /// Defaults for a node called `node_name` keeping its state under `data_dir`.
    pub fn new(node_name: &str, data_dir: &std::path::Path) -> KubeletConfig {
        KubeletConfig {
            node_name: node_name.to_string(),
            node_ips: Vec::new(),
            pods_dir: data_dir.join("pods"),
            logs_dir: data_dir.join("logs").join("pods"),
            root_dir: data_dir.to_path_buf(),
            pod_cidr: None,
            labels: BTreeMap::new(),
            register_taints: Vec::new(),
            max_pods: 110,
            reserved: BTreeMap::new(),
            kubelet_port: 10250,
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
            lease_renew_interval: Duration::from_secs(10),
            lease_duration_seconds: 40,
            status_report_interval: Duration::from_secs(60),
            relist_interval: Duration::from_secs(1),
        }
    }
}

/// Why the kubelet stopped.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("registering node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
}

/// The kubelet: node registration and heartbeats, and the pod manager.
pub struct Kubelet {
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    config: KubeletConfig,
    pods: Arc<PodManager>,
}

impl Kubelet {
    pub fn new(client: kube::Client, runtime: Arc<dyn Runtime>, config: KubeletConfig) -> Kubelet {
        let pods = Arc::new(PodManager::new(client.clone(), runtime.clone(), config.clone()));
        Kubelet { client, runtime, config, pods }
    }

    /// The pod manager: what the kubelet API server looks pods and containers up in.
    pub fn pods(&self) -> Arc<PodManager> {
        self.pods.clone()
    }

    /// Register the node, then run heartbeats and pods until `shutdown`. Containers keep
    /// running when it returns (fail-static): the next run adopts them.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), KubeletError> {
        let node = node::NodeAgent::new(self.client.clone(), self.runtime.clone(), self.config.clone());
        let Some(registered) = node.register(&shutdown).await? else { return Ok(()) };
        let heartbeat = tokio::spawn(node.run(registered, shutdown.clone()));
        self.pods.clone().run(shutdown.clone()).await;
        let _ = heartbeat.await;
        Ok(())
    }
}
