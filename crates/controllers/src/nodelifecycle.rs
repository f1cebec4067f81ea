//! The node lifecycle controller and its taint manager (upstream's
//! `pkg/controller/nodelifecycle` and `tainteviction`), plus pod garbage collection
//! (`pkg/controller/podgc`).
//!
//! Every `monitor_period` (5 s):
//! - a node whose Lease (in `kube-node-lease`) and Ready heartbeat are both older than
//!   `grace_period` (40 s) gets its conditions set to `Unknown` ("Kubelet stopped posting node
//!   status."), and its pods are marked not Ready;
//! - taints follow the Ready condition (`node.kubernetes.io/not-ready` / `unreachable`, both
//!   `NoSchedule` and `NoExecute`) and `spec.unschedulable`
//!   (`node.kubernetes.io/unschedulable:NoSchedule`, what `kubectl cordon` shows);
//! - pods on a node with `NoExecute` taints are deleted when they do not tolerate one, or when
//!   their `tolerationSeconds` (300 s by default, added at admission) have run out since the
//!   taint was added;
//! - pods bound to a node that no longer exists, and terminating pods that were never bound,
//!   are force-deleted, and finished pods beyond `terminated_pod_threshold` (12,500) are
//!   deleted oldest first (pod GC).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informer::Informer;

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Timing of the node lifecycle controller.
#[derive(Clone, Copy, Debug)]
pub struct NodeLifecycleConfig {
    pub monitor_period: Duration,
    /// How long a node may go without a heartbeat before it is `Unknown` (upstream's
    /// `--node-monitor-grace-period`).
    pub grace_period: Duration,
    /// Finished (Succeeded/Failed) pods kept before the oldest are deleted (upstream's
    /// `--terminated-pod-gc-threshold`).
    pub terminated_pod_threshold: usize,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(40),
            terminated_pod_threshold: 12_500,
        }
    }
}

pub(crate) struct NodeLifecycleController {
    client: kube::Client,
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<Pod>,
    config: NodeLifecycleConfig,
    events: crate::events::Events,
}

fn ready_condition(node: &Node) -> Option<&k8s_openapi::api::core::v1::NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")
}

fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect.as_deref().is_some_and(|e| !e.is_empty() && e != taint.effect) {
        return false;
    }
    match t.operator.as_deref() {
        Some("Exists") => t.key.as_deref().is_none_or(|k| k.is_empty() || k == taint.key),
        _ => {
            t.key.as_deref() == Some(taint.key.as_str())
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

impl NodeLifecycleController {
    pub(crate) fn new(
        client: kube::Client,
        nodes: Informer<Node>,
        pods: Informer<Pod>,
        config: NodeLifecycleConfig,
    ) -> Arc<Self> {
        let leases = Informer::new(Api::<Lease>::namespaced(client.clone(), "kube-node-lease"));
        let events = crate::events::Events::new(client.clone(), "taint-eviction-controller");
        Arc::new(NodeLifecycleController { client, nodes, leases, pods, config, events })
    }

    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.leases.start(shutdown.clone());
        self.nodes.synced().await;
        self.leases.synced().await;
        self.pods.synced().await;
        loop {
            if let Err(e) = self.monitor().await {
                tracing::debug!(error = %e, "node lifecycle pass failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.monitor_period) => {}
            }
        }
    }

    async fn monitor(&self) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let nodes = self.nodes.store().state();
        for node in &nodes {
            let node = self.check_health(node, now).await?;
            let node = node.as_ref();
            self.reconcile_taints(node, now).await?;
            self.evict_untolerating(node, now).await?;
        }
        self.collect_pods(&nodes).await
    }

    /// Heartbeats: the newer of the Lease's renewTime and the Ready condition's heartbeat.
    async fn check_health(&self, node: &Arc<Node>, now: Timestamp) -> Result<Arc<Node>, kube::Error> {
        let name = node.name_any();
        let lease = self.leases.store().get(&ObjectRef::new(&name).within("kube-node-lease"));
        let renew = lease.and_then(|l| l.spec.as_ref().and_then(|s| s.renew_time.as_ref()).map(|t| t.0));
        let heartbeat = ready_condition(node).and_then(|c| c.last_heartbeat_time.as_ref()).map(|t| t.0);
        let probe = match (renew, heartbeat) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        // A node that never posted anything is judged from its creation.
        let last = probe.or_else(|| node.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let Some(last) = last else { return Ok(node.clone()) };
        let silent = now.as_second() - last.as_second() > self.config.grace_period.as_secs() as i64;
        let already_unknown = ready_condition(node).is_some_and(|c| c.status == "Unknown");
        if !silent || already_unknown {
            return Ok(node.clone());
        }
        let mut conditions = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
            if !conditions.iter().any(|c| c.type_ == t) {
                conditions.push(k8s_openapi::api::core::v1::NodeCondition { type_: t.into(), ..Default::default() });
            }
        }
        for c in &mut conditions {
            if matches!(c.type_.as_str(), "Ready" | "MemoryPressure" | "DiskPressure" | "PIDPressure") {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                if c.last_heartbeat_time.is_none() {
                    c.last_heartbeat_time = node.metadata.creation_timestamp.clone();
                }
            }
        }
        tracing::info!(node = %name, "node stopped posting status; marking it Unknown");
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"status": {"conditions": conditions}});
        let updated = match api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
            Ok(n) => Arc::new(n),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(node.clone()),
            Err(e) => return Err(e),
        };
        // Its pods are not Ready any more (upstream's MarkPodsNotReady).
        for pod in
            self.pods.state_where(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()))
        {
            let ns = pod.namespace().unwrap_or_default();
            let conds: Vec<_> = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    if c.type_ == "Ready" && c.status == "True" {
                        c.status = "False".into();
                        c.last_transition_time = Some(Time(now));
                    }
                    c
                })
                .collect();
            let patch = json!({"status": {"conditions": conds}});
            match Api::<Pod>::namespaced(self.client.clone(), &ns)
                .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(updated)
    }

    async fn reconcile_taints(&self, node: &Node, now: Timestamp) -> Result<(), kube::Error> {
        let ready = ready_condition(node).map(|c| c.status.as_str());
        let mut want: Vec<(&str, &str)> = Vec::new();
        match ready {
            Some("False") => want.extend([(TAINT_NOT_READY, "NoSchedule"), (TAINT_NOT_READY, "NoExecute")]),
            Some("Unknown") => want.extend([(TAINT_UNREACHABLE, "NoSchedule"), (TAINT_UNREACHABLE, "NoExecute")]),
            _ => {}
        }
        if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            want.push((TAINT_UNSCHEDULABLE, "NoSchedule"));
        }
        let ours = |t: &Taint| matches!(t.key.as_str(), TAINT_NOT_READY | TAINT_UNREACHABLE | TAINT_UNSCHEDULABLE);
        let current: Vec<Taint> = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        let have: BTreeSet<(String, String)> =
            current.iter().filter(|t| ours(t)).map(|t| (t.key.clone(), t.effect.clone())).collect();
        let wanted: BTreeSet<(String, String)> = want.iter().map(|(k, e)| (k.to_string(), e.to_string())).collect();
        if have == wanted {
            return Ok(());
        }
        let mut taints: Vec<Taint> =
            current.into_iter().filter(|t| !ours(t) || wanted.contains(&(t.key.clone(), t.effect.clone()))).collect();
        for (k, e) in &want {
            if !have.contains(&(k.to_string(), e.to_string())) {
                taints.push(Taint {
                    key: k.to_string(),
                    effect: e.to_string(),
                    value: None,
                    time_added: (*e == "NoExecute").then_some(Time(now)),
                });
            }
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": if taints.is_empty() { serde_json::Value::Null } else { json!(taints) }}});
        match api.patch(&node.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            // Changed meanwhile: the next pass sees the new version.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The taint manager: pods that do not tolerate a NoExecute taint of their node, or whose
    /// tolerationSeconds have run out, are deleted.
    async fn evict_untolerating(&self, node: &Node, now: Timestamp) -> Result<(), kube::Error> {
        let taints: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.effect == "NoExecute")
            .collect();
        if taints.is_empty() {
            return Ok(());
        }
        let name = node.name_any();
        for pod in
            self.pods.state_where(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()))
        {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
            let mut evict_at: Option<i64> = None;
            let mut now_due = false;
            for taint in &taints {
                let matching: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
                if matching.is_empty() {
                    now_due = true;
                    break;
                }
                // Tolerated forever unless every matching toleration has a limit.
                if matching.iter().all(|t| t.toleration_seconds.is_some()) {
                    let secs = matching.iter().filter_map(|t| t.toleration_seconds).min().unwrap_or(0).max(0);
                    let added = taint.time_added.as_ref().map_or(now.as_second(), |t| t.0.as_second());
                    let at = added + secs;
                    evict_at = Some(evict_at.map_or(at, |e| e.min(at)));
                }
            }
            if now_due || evict_at.is_some_and(|at| at <= now.as_second()) {
                let ns = pod.namespace().unwrap_or_default();
                tracing::info!(pod = %format!("{ns}/{}", pod.name_any()), node = %name, "evicting a pod from a tainted node");
                let note = format!("Marking for deletion Pod {ns}/{}", pod.name_any());
                self.events.publish(pod.as_ref(), false, "TaintManagerEviction", note).await;
                self.delete_pod(&pod, None).await?;
            }
        }
        Ok(())
    }

    /// Pod GC: pods of nodes that are gone (checked against the API, not only the store) and
    /// terminating pods that never got a node are deleted at once.
    async fn collect_pods(&self, nodes: &[Arc<Node>]) -> Result<(), kube::Error> {
        let mut finished: Vec<Arc<Pod>> = self.pods.state_where(|p| {
            p.metadata.deletion_timestamp.is_none()
                && matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
        });
        if finished.len() > self.config.terminated_pod_threshold {
            finished.sort_by_key(|p| (p.metadata.creation_timestamp.as_ref().map(|t| t.0), p.name_any()));
            let excess = finished.len() - self.config.terminated_pod_threshold;
            for pod in &finished[..excess] {
                self.delete_pod(pod, Some(0)).await?;
            }
        }
        let names: BTreeSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        let node_api: Api<Node> = Api::all(self.client.clone());
        let mut confirmed_gone: BTreeSet<String> = BTreeSet::new();
        for pod in self.pods.store().state() {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
            let orphaned = if node.is_empty() {
                pod.metadata.deletion_timestamp.is_some()
            } else if names.contains(&node) {
                false
            } else if confirmed_gone.contains(&node) {
                true
            } else {
                let gone = node_api.get_opt(&node).await?.is_none();
                if gone {
                    confirmed_gone.insert(node.clone());
                }
                gone
            };
            if orphaned {
                self.delete_pod(&pod, Some(0)).await?;
            }
        }
        Ok(())
    }

    /// Delete `pod` (this very pod: its uid is a precondition); an API refusal (gone, changed)
    /// is not an error.
    async fn delete_pod(&self, pod: &Pod, grace_period_seconds: Option<u32>) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let dp = DeleteParams {
            grace_period_seconds,
            preconditions: Some(kube::api::Preconditions { uid: pod.uid(), resource_version: None }),
            ..Default::default()
        };
        match api.delete(&pod.name_any(), &dp).await {
            Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
