//! `skiff-sim`: simulated nodes — kubelets that run nothing (KWOK built into skiff).
//!
//! A simulated node sits where a kubelet sits in the request path (`docs/data-path.md`: "kubelet
//! sees its pod → … → kubelet PATCHes `pods/status`"), and like every component it is only an API
//! client. It registers a `Node`, keeps a `Lease` in `kube-node-lease` renewed and the node's
//! conditions heartbeating, and for every pod bound to it writes the status a kubelet would write
//! once the containers run — without running anything. That lets one process hold thousands of
//! nodes and hundreds of thousands of pods, to exercise the API server, scheduler and controllers
//! at scale.
//!
//! Pods can be told to exit through annotations (a kubelet would see the process exit):
//!
//! - `skiff.dev/sim-exit-after: "<Go duration, e.g. 5s, 1m30s, 250ms>"` — the containers exit this
//!   long after they started;
//! - `skiff.dev/sim-exit-code: "<n>"` — their exit code (default 0).
//!
//! The pod then becomes `Succeeded` (code 0) or `Failed`, unless its `restartPolicy` restarts the
//! containers (`Always`, or `OnFailure` with a non-zero code): then `restartCount` grows, the exit
//! shows in `lastState.terminated`, and the containers exit again after the same delay. Invalid
//! values are logged and ignored.
//!
//! - `skiff.dev/sim-pending: "true"` — the containers never start: the node writes no status and
//!   the pod stays `Pending` as the scheduler bound it (a node whose kubelet never gets to it, and
//!   the nodes of upstream's `scheduler_perf`, which run no kubelet). It takes no pod address and
//!   no pod slot; deleting it still completes at once, as nothing runs.
//!
//! Otherwise a simulated node behaves like a kubelet whose containers start instantly:
//!
//! - node `i` is `<prefix><i>`, InternalIP `100.64.0.0 + i + 1`, podCIDR the /24 number `i` of
//!   `10.128.0.0/9` (an existing Node of that name is taken over and keeps its podCIDR); nothing
//!   routes these addresses, and there is no kubelet endpoint (port 0: `logs`/`exec` fail);
//! - a pod bound to it (`spec.nodeName`, or a binding) becomes `Running` and Ready with an address
//!   from the podCIDR (`hostNetwork` pods: the node's address); past the node's pod capacity it is
//!   rejected (`Failed`, reason `OutOfpods`) as kubelet admission does;
//! - a deleted pod's containers stop at once (exit 0), its final status is written and it is
//!   deleted with `gracePeriodSeconds: 0`;
//! - when the simulation stops, Nodes and pods stay; the leases expire and the node lifecycle
//!   controller (when there is one) takes it from there. A new run adopts running pods as they
//!   are (same address, start time and restart count).
//!
//! Layout: `node` registers nodes and heartbeats them (leases, node status); `pod` watches
//! all pods once and drives the ones bound to our nodes; `ipam` hands out addresses; `retry`
//! decides what to repeat.

mod ipam;
mod node;
mod pod;
mod retry;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The label every simulated node carries (as KWOK's carry `type: kwok`): components that must
/// treat simulated nodes differently (cluster DNS gives them no endpoint) select on it.
pub const SIMULATED_NODE_LABEL: (&str, &str) = ("type", "skiff-sim");

/// Annotation: how long the containers of a pod on a simulated node run before exiting.
pub const EXIT_AFTER_ANNOTATION: &str = "skiff.dev/sim-exit-after";
/// Annotation: the exit code of those containers (default 0).
pub const EXIT_CODE_ANNOTATION: &str = "skiff.dev/sim-exit-code";
/// Annotation: `"true"` keeps a pod `Pending` on its simulated node (its containers never start).
pub const PENDING_ANNOTATION: &str = "skiff.dev/sim-pending";

/// How many API writes (node, lease and pod) may be in flight at once: enough to keep the API
/// server busy, few enough that 5,000 nodes cannot flood it.
const MAX_WRITES: usize = 64;

/// What the simulated nodes look like.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// How many nodes to simulate.
    pub nodes: usize,
    /// Node names are this prefix followed by the index: `sim-0`, `sim-1`, …
    pub name_prefix: String,
    /// CPU capacity of each node (a Kubernetes quantity).
    pub cpu: String,
    /// Memory capacity of each node (a Kubernetes quantity).
    pub memory: String,
    /// Pod capacity of each node (at most 253: one /24 of pod addresses per node).
    pub pods: u32,
    /// `spec.leaseDurationSeconds` of each node's Lease.
    pub lease_duration_seconds: i32,
    /// How often each Lease is renewed (upstream kubelet: a quarter of the lease duration).
    pub renew_interval: Duration,
    /// How often each Node's condition heartbeats are refreshed (upstream: 5 minutes when leases
    /// are used; 1 minute here so staleness shows quickly).
    pub status_interval: Duration,
    /// Extra labels for every node.
    pub labels: BTreeMap<String, String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 1,
            name_prefix: "sim-".to_string(),
            cpu: "8".to_string(),
            memory: "32Gi".to_string(),
            pods: 110,
            lease_duration_seconds: 40,
            renew_interval: Duration::from_secs(10),
            status_interval: Duration::from_secs(60),
            labels: BTreeMap::new(),
        }
    }
}

/// Why the simulated nodes stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot be simulated (checked before anything is written).
    #[error("invalid simulated-node configuration: {0}")]
    InvalidConfig(String),
    /// A node could not be registered and retrying would not help (e.g. forbidden, invalid).
    #[error("registering simulated node {node}")]
    Register {
        /// The node's name.
        node: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
}

/// A set of simulated nodes.
pub struct SimNodes {
    /// The API client all nodes share (one connection pool, like one kubelet's).
    client: kube::Client,
    /// What to simulate.
    config: SimConfig,
}

impl SimNodes {
    pub fn new(client: kube::Client, config: SimConfig) -> SimNodes {
        SimNodes { client, config }
    }

    /// Registers the nodes, then keeps them alive until `shutdown`. On shutdown the Nodes stay
    /// (like a kubelet that stopped): their leases simply expire.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), SimError> {
        validate(&self.config)?;
        let writes = Arc::new(Semaphore::new(MAX_WRITES));
        let Some(nodes) = node::register_all(&self.client, &self.config, &shutdown).await? else {
            return Ok(());
        };
        let nodes: Arc<[node::SimNode]> = nodes.into();
        tracing::info!(nodes = nodes.len(), "simulated nodes registered");
        let leases = node::renew_leases(
            self.client.clone(),
            nodes.clone(),
            self.config.clone(),
            writes.clone(),
            shutdown.clone(),
        );
        let status = node::heartbeat_status(
            self.client.clone(),
            nodes.clone(),
            self.config.clone(),
            writes.clone(),
            shutdown.clone(),
        );
        let pods = pod::Engine::new(self.client.clone(), nodes, self.config.pods).run(shutdown.clone());
        tokio::join!(leases, status, pods);
        Ok(())
    }
}

/// Rejects configurations the simulation cannot honour, before anything is written.
fn validate(c: &SimConfig) -> Result<(), SimError> {
    if c.nodes > ipam::MAX_NODES {
        return Err(SimError::InvalidConfig(format!(
            "at most {} nodes can be simulated (one /24 pod range each), got {}",
            ipam::MAX_NODES,
            c.nodes
        )));
    }
    if c.pods > ipam::POD_ADDRESSES {
        return Err(SimError::InvalidConfig(format!(
            "pods per node must be at most {} (one /24 of pod addresses), got {}",
            ipam::POD_ADDRESSES,
            c.pods
        )));
    }
    if c.renew_interval.is_zero() || c.status_interval.is_zero() {
        return Err(SimError::InvalidConfig("renew and status intervals must be positive".to_string()));
    }
    if c.lease_duration_seconds <= 0 {
        return Err(SimError::InvalidConfig(format!(
            "leaseDurationSeconds must be positive, got {}",
            c.lease_duration_seconds
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
