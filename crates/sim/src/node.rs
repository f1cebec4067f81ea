//! The node half of a simulated kubelet: registration (create the `Node`, or take over an
//! existing one of that name), the `Lease` in `kube-node-lease` and the condition heartbeats.
//!
//! Upstream's kubelet does this in `kubelet_node_status.go` (register, `setNodeStatus`) and the
//! node lease controller. Renewals of all nodes are spread evenly over the interval — node `i`
//! renews at offset `i · interval / n` — so 5,000 nodes produce a steady trickle of writes rather
//! than one burst, and at most [`crate::MAX_WRITES`] of them are in flight.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::retry::{self, code};
use crate::{SimConfig, SimError, ipam};

/// The namespace of node leases.
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// What the nodes report as their kubelet.
pub(crate) const KUBELET_VERSION: &str = "v1.33.0-skiff-sim";
/// Nodes registered at once.
const REGISTER_CONCURRENCY: usize = 32;
/// The shortest pause between two groups of renewals: finer would only wake the task more often.
const MIN_TICK: Duration = Duration::from_millis(20);

/// A registered simulated node: what the heartbeats and the pods need to know about it.
#[derive(Clone, Debug)]
pub(crate) struct SimNode {
    /// The Node's name (also its lease's name and holder identity).
    pub(crate) name: String,
    /// The Node's uid: the owner of its lease, so deleting the Node collects the lease.
    pub(crate) uid: String,
    /// The node's InternalIP: the pods' `hostIP`.
    pub(crate) address: Ipv4Addr,
    /// The first /24 of the node's `podCIDR`: where its pods' addresses come from.
    pub(crate) pod_range: Ipv4Addr,
    /// When the node became Ready (its conditions' `lastTransitionTime`).
    pub(crate) ready_since: Timestamp,
}

/// Registers every node, a few at a time. `Ok(None)` when `shutdown` came first.
pub(crate) async fn register_all(
    client: &kube::Client,
    config: &SimConfig,
    shutdown: &CancellationToken,
) -> Result<Option<Vec<SimNode>>, SimError> {
    let results: Vec<Result<Option<SimNode>, SimError>> = futures::stream::iter(0..config.nodes)
        .map(|i| register(client, config, i, shutdown))
        .buffered(REGISTER_CONCURRENCY)
        .collect()
        .await;
    let mut nodes = Vec::with_capacity(results.len());
    for r in results {
        match r? {
            Some(n) => nodes.push(n),
            None => return Ok(None),
        }
    }
    Ok(Some(nodes))
}

/// Registers node `index`: the Node, its status, its lease.
async fn register(
    client: &kube::Client,
    config: &SimConfig,
    index: usize,
    shutdown: &CancellationToken,
) -> Result<Option<SimNode>, SimError> {
    let name = format!("{}{index}", config.name_prefix);
    let fail = |source| SimError::Register { node: name.clone(), source };
    let nodes: Api<Node> = Api::all(client.clone());
    let desired = node_object(config, &name, index).map_err(|e| fail(kube::Error::SerdeError(e)))?;
    let what = format!("registering node {name}");
    let Some(registered) =
        retry::transient(shutdown, &what, || create_or_take_over(&nodes, &desired)).await.map_err(fail)?
    else {
        return Ok(None);
    };
    let pod_range = match registered.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) {
        Some(cidr) => ipam::parse_range(cidr).unwrap_or_else(|| {
            tracing::warn!(node = %name, cidr, "existing podCIDR is not an IPv4 /24 or larger; pod IPs use our own range");
            ipam::pod_range(index)
        }),
        None => ipam::pod_range(index),
    };
    let node = SimNode {
        name: name.clone(),
        uid: registered.metadata.uid.clone().unwrap_or_default(),
        address: ipam::node_address(index),
        pod_range,
        ready_since: Timestamp::now(),
    };
    let status = Patch::Strategic(full_status(config, &node, Timestamp::now()));
    let pp = PatchParams::default();
    let what = format!("writing the status of node {name}");
    if retry::transient(shutdown, &what, || nodes.patch_status(&name, &pp, &status)).await.map_err(fail)?.is_none() {
        return Ok(None);
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let what = format!("creating the lease of node {name}");
    if retry::transient(shutdown, &what, || ensure_lease(&leases, &node, config)).await.map_err(fail)?.is_none() {
        return Ok(None);
    }
    Ok(Some(node))
}

/// Creates the Node or, when one of that name exists (a previous run, a kubelet that left),
/// takes it over: our labels and annotations on top of its own, our podCIDR unless it has one
/// (it cannot change once set). A write that lost a race re-reads and re-applies.
async fn create_or_take_over(nodes: &Api<Node>, desired: &Node) -> Result<Node, kube::Error> {
    let name = desired.metadata.name.as_deref().unwrap_or_default();
    loop {
        match nodes.create(&PostParams::default(), desired).await {
            Ok(n) => return Ok(n),
            Err(e) if code(&e) == Some(409) => {}
            Err(e) => return Err(e),
        }
        let Some(mut existing) = nodes.get_opt(name).await? else { continue };
        merge_into(&mut existing, desired);
        match nodes.replace(name, &PostParams::default(), &existing).await {
            Ok(n) => return Ok(n),
            Err(e) if matches!(code(&e), Some(404 | 409)) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What taking over an existing Node changes in it.
fn merge_into(existing: &mut Node, desired: &Node) {
    let (m, d) = (&mut existing.metadata, &desired.metadata);
    m.labels.get_or_insert_with(BTreeMap::new).extend(d.labels.clone().unwrap_or_default());
    m.annotations.get_or_insert_with(BTreeMap::new).extend(d.annotations.clone().unwrap_or_default());
    let spec = existing.spec.get_or_insert_with(Default::default);
    if spec.pod_cidr.as_deref().unwrap_or_default().is_empty()
        && let Some(ds) = &desired.spec
    {
        spec.pod_cidr = ds.pod_cidr.clone();
        spec.pod_cidrs = ds.pod_cidrs.clone();
    }
}

/// The Node we register: labels and annotations as a kubelet sets them, one pod range.
fn node_object(config: &SimConfig, name: &str, index: usize) -> Result<Node, serde_json::Error> {
    let mut labels: BTreeMap<String, String> = [
        ("beta.kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        crate::SIMULATED_NODE_LABEL,
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(config.labels.clone());
    let cidr = format!("{}/24", ipam::pod_range(index));
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
    }))
}

/// Identifiers a real machine has: stable for a node name (like `/etc/machine-id` across
/// reboots), distinct between nodes.
fn machine_ids(name: &str) -> (String, String) {
    let digest = Sha256::digest(format!("skiff-sim/{name}").as_bytes());
    let h = hex::encode(digest);
    let machine_id = h[..32].to_string();
    let system_uuid = format!("{}-{}-{}-{}-{}", &h[32..40], &h[40..44], &h[44..48], &h[48..52], &h[52..64]);
    (machine_id, system_uuid)
}

/// The whole status a kubelet posts when it registers.
pub(crate) fn full_status(config: &SimConfig, node: &SimNode, now: Timestamp) -> Value {
    let resources = json!({
        "cpu": config.cpu,
        "ephemeral-storage": "100Gi",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": config.memory,
        "pods": config.pods.to_string(),
    });
    let (machine_id, system_uuid) = machine_ids(&node.name);
    json!({
        "status": {
            // Allocatable equals capacity: nothing runs, so nothing needs reserving.
            "capacity": resources,
            "allocatable": resources,
            "conditions": conditions(node.ready_since, now),
            "addresses": [
                {"type": "InternalIP", "address": node.address.to_string()},
                {"type": "Hostname", "address": node.name},
            ],
            // Port 0: there is no kubelet server, so logs/exec fail at once instead of timing
            // out against an address nothing answers.
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": machine_id,
                "systemUUID": system_uuid,
                "bootID": uuid::Uuid::new_v4().to_string(),
                "kernelVersion": "6.1.0-skiff-sim",
                "osImage": "Skiff simulated node",
                "containerRuntimeVersion": format!("skiff-sim://{}", env!("CARGO_PKG_VERSION")),
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
    })
}

/// The node conditions, in the kubelet's order, with its reasons and messages.
fn conditions(since: Timestamp, now: Timestamp) -> Value {
    let t = |ts: Timestamp| serde_json::to_value(Time(ts)).unwrap_or(Value::Null);
    let (since, now) = (t(since), t(now));
    let c = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": type_,
            "status": status,
            "lastHeartbeatTime": now,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        })
    };
    json!([
        c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        c("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ])
}

/// The lease of `node`, as the node lease controller makes it.
fn lease_object(node: &SimNode, config: &SimConfig, now: Timestamp) -> Result<Lease, serde_json::Error> {
    serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node.name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node.uid}],
        },
        "spec": lease_spec(node, config, now),
    }))
}

fn lease_spec(node: &SimNode, config: &SimConfig, now: Timestamp) -> Value {
    json!({
        "holderIdentity": node.name,
        "leaseDurationSeconds": config.lease_duration_seconds,
        "renewTime": serde_json::to_value(MicroTime(now)).unwrap_or(Value::Null),
    })
}

/// Renews the lease, creating it when it is missing (first run, or someone deleted it).
async fn ensure_lease(leases: &Api<Lease>, node: &SimNode, config: &SimConfig) -> Result<(), kube::Error> {
    let now = Timestamp::now();
    let patch = Patch::Merge(json!({"spec": lease_spec(node, config, now)}));
    let ns = Some(LEASE_NAMESPACE);
    match crate::retry::patch_unread::<Lease, _>(&leases.clone().into_client(), ns, &node.name, None, &patch).await {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some(404) => {
            let lease = lease_object(node, config, now).map_err(kube::Error::SerdeError)?;
            match leases.create(&PostParams::default(), &lease).await {
                // Created by someone else in between: renew it next round.
                Err(e) if code(&e) == Some(409) => Ok(()),
                r => r.map(|_| ()),
            }
        }
        Err(e) => Err(e),
    }
}

/// Renews every node's lease each `renew_interval` until `shutdown`.
pub(crate) async fn renew_leases(
    client: kube::Client,
    nodes: Arc<[SimNode]>,
    config: SimConfig,
    writes: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let config = Arc::new(config);
    let interval = config.renew_interval;
    spread(nodes.len(), interval, writes, shutdown, move |i| {
        let (leases, nodes, config) = (leases.clone(), nodes.clone(), config.clone());
        async move {
            let Some(node) = nodes.get(i) else { return };
            if let Err(e) = ensure_lease(&leases, node, &config).await {
                // The next round tries again, well within the lease duration.
                tracing::warn!(node = %node.name, error = %e, "renewing the node lease failed");
            }
        }
    })
    .await;
}

/// Refreshes every node's condition heartbeats each `status_interval` until `shutdown`.
pub(crate) async fn heartbeat_status(
    client: kube::Client,
    nodes: Arc<[SimNode]>,
    config: SimConfig,
    writes: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let api: Api<Node> = Api::all(client);
    spread(nodes.len(), config.status_interval, writes, shutdown, move |i| {
        let (api, nodes) = (api.clone(), nodes.clone());
        async move {
            let Some(node) = nodes.get(i) else { return };
            let patch =
                Patch::Strategic(json!({"status": {"conditions": conditions(node.ready_since, Timestamp::now())}}));
            match api.patch_status(&node.name, &PatchParams::default(), &patch).await {
                Ok(_) => {}
                // Deleted by someone: a kubelet does not register again until it restarts.
                Err(e) if code(&e) == Some(404) => tracing::debug!(node = %node.name, "node is gone"),
                Err(e) => tracing::warn!(node = %node.name, error = %e, "updating the node status failed"),
            }
        }
    })
    .await;
}

/// Calls `write(i)` for each of `count` items once per `interval`, item `i` at offset
/// `i · interval / count`, until `shutdown`. An item whose previous write has not finished
/// skips its turn, so a slow server never accumulates more than one write per item.
async fn spread<F, Fut>(count: usize, interval: Duration, writes: Arc<Semaphore>, shutdown: CancellationToken, write: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if count == 0 {
        shutdown.cancelled().await;
        return;
    }
    let tick = interval.checked_div(u32::try_from(count).unwrap_or(u32::MAX)).unwrap_or(interval).max(MIN_TICK);
    let slots = usize::try_from(interval.as_nanos() / tick.as_nanos()).unwrap_or(1).max(1);
    let busy: Arc<[AtomicBool]> = (0..count).map(|_| AtomicBool::new(false)).collect();
    let mut ticker = tokio::time::interval_at(Instant::now() + tick, tick);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tasks = JoinSet::new();
    let mut slot = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        while tasks.try_join_next().is_some() {}
        for i in slot_items(slot, slots, count) {
            if busy[i].swap(true, Ordering::AcqRel) {
                continue;
            }
            let (fut, busy, writes) = (write(i), busy.clone(), writes.clone());
            tasks.spawn(async move {
                let _permit = writes.acquire_owned().await;
                fut.await;
                busy[i].store(false, Ordering::Release);
            });
        }
        slot = (slot + 1) % slots;
    }
}

/// The items whose turn is slot `slot` of `slots`: those with `i · slots / count == slot`.
fn slot_items(slot: usize, slots: usize, count: usize) -> std::ops::Range<usize> {
    (slot * count).div_ceil(slots)..((slot + 1) * count).div_ceil(slots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cover_every_item_once_and_evenly() {
        for (slots, count) in [(200, 5000), (500, 3), (1, 1), (7, 7), (3, 10)] {
            let mut seen = vec![0; count];
            let mut max = 0;
            for s in 0..slots {
                let r = slot_items(s, slots, count);
                max = max.max(r.len());
                for i in r {
                    assert_eq!(i * slots / count, s);
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{slots} {count}");
            assert!(max <= count.div_ceil(slots), "{slots} {count}: {max}");
        }
    }

    #[test]
    fn machine_ids_are_stable_and_distinct() {
        let (m0, u0) = machine_ids("sim-0");
        let (m1, u1) = machine_ids("sim-1");
        assert_eq!(machine_ids("sim-0"), (m0.clone(), u0.clone()));
        assert_ne!(m0, m1);
        assert_ne!(u0, u1);
        assert_eq!(m0.len(), 32);
        assert!(uuid::Uuid::parse_str(&u0).is_ok(), "{u0}");
    }

    #[test]
    fn take_over_keeps_foreign_labels_and_an_existing_pod_cidr() {
        let config = SimConfig::default();
        let desired = node_object(&config, "sim-3", 3).unwrap();
        let mut existing: Node = serde_json::from_value(json!({
            "metadata": {"name": "sim-3", "labels": {"team": "a", "type": "old"}},
            "spec": {"podCIDR": "10.42.7.0/24", "podCIDRs": ["10.42.7.0/24"]},
        }))
        .unwrap();
        merge_into(&mut existing, &desired);
        let labels = existing.metadata.labels.clone().unwrap();
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(labels.get("type").map(String::as_str), Some("skiff-sim"));
        assert_eq!(labels.get("kubernetes.io/hostname").map(String::as_str), Some("sim-3"));
        assert_eq!(existing.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()), Some("10.42.7.0/24"));
        let mut bare: Node = serde_json::from_value(json!({"metadata": {"name": "sim-3"}})).unwrap();
        merge_into(&mut bare, &desired);
        assert_eq!(bare.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()), Some("10.128.3.0/24"));
    }
}
