//! The scheduler's event loop: pod and node watches feed the [`Cache`] and the
//! [`SchedulingQueue`]; once both watches have listed, pods are popped one at a time, run through
//! [`schedule_one`](crate::schedule_one), assumed on the chosen node and bound in a background
//! task (`POST pods/{name}/binding`). Failures patch `PodScheduled=False` into `pods/status` and
//! record a `FailedScheduling` event; successes record `Scheduled`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Client, Resource};
use serde_json::json;
use skiff_events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cache::{Cache, PodInfo, pod_key};
use crate::owners::{OwnerEvent, Owners};
use crate::queue::{ClusterEvent, SchedulingQueue};
use crate::schedule_one::{PreemptionCandidate, ScheduleFailure, post_filter, schedule_pod};
use crate::{SchedulerConfig, SchedulerError};

/// Upstream's event note limit (`NoteLengthLimit`).
const NOTE_LIMIT: usize = 1024;

/// The outcome of a background bind.
struct BindOutcome {
    key: String,
    result: Result<(), String>,
}

/// Everything the loop owns.
struct Loop {
    client: Client,
    config: SchedulerConfig,
    recorder: Recorder,
    cache: Cache,
    queue: SchedulingQueue,
    /// Service and controller selectors for the default spreading constraints.
    owners: Owners,
    /// Last seen version of every pod, to diff re-lists and spot label changes.
    pods: HashMap<String, Arc<Pod>>,
    /// Keys seen during a (re-)list in progress.
    pod_relist: Option<HashSet<String>>,
    node_relist: Option<HashSet<String>>,
    namespace_relist: Option<HashSet<String>>,
    pods_synced: bool,
    nodes_synced: bool,
    namespaces_synced: bool,
    next_start: usize,
    binds: mpsc::UnboundedSender<BindOutcome>,
}

pub(crate) async fn run(
    client: Client,
    config: SchedulerConfig,
    shutdown: CancellationToken,
) -> Result<(), SchedulerError> {
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()).default_backoff();
    let node_events = watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).default_backoff();
    let namespace_events = watcher(Api::<Namespace>::all(client.clone()), watcher::Config::default()).default_backoff();
    // Score-only inputs: scheduling does not wait for these lists (nor stop if they fail).
    let cfg = watcher::Config::default;
    let owner_events = futures::stream::select_all([
        watcher(Api::all(client.clone()), cfg())
            .default_backoff()
            .map(|e| e.map(|ev| OwnerEvent::Service(Box::new(ev))))
            .boxed(),
        watcher(Api::all(client.clone()), cfg())
            .default_backoff()
            .map(|e| e.map(|ev| OwnerEvent::ReplicationController(Box::new(ev))))
            .boxed(),
        watcher(Api::all(client.clone()), cfg())
            .default_backoff()
            .map(|e| e.map(|ev| OwnerEvent::ReplicaSet(Box::new(ev))))
            .boxed(),
        watcher(Api::all(client.clone()), cfg())
            .default_backoff()
            .map(|e| e.map(|ev| OwnerEvent::StatefulSet(Box::new(ev))))
            .boxed(),
    ]);
    run_with(client, config, shutdown, pod_events, node_events, namespace_events, owner_events).await
}

async fn run_with(
    client: Client,
    config: SchedulerConfig,
    shutdown: CancellationToken,
    pod_events: impl Stream<Item = Result<watcher::Event<Pod>, watcher::Error>>,
    node_events: impl Stream<Item = Result<watcher::Event<Node>, watcher::Error>>,
    namespace_events: impl Stream<Item = Result<watcher::Event<Namespace>, watcher::Error>>,
    owner_events: impl Stream<Item = Result<OwnerEvent, watcher::Error>>,
) -> Result<(), SchedulerError> {
    let mut owner_events = std::pin::pin!(owner_events);
    let mut pod_events = std::pin::pin!(pod_events);
    let mut node_events = std::pin::pin!(node_events);
    let mut namespace_events = std::pin::pin!(namespace_events);
    let (binds, mut bind_results) = mpsc::unbounded_channel();
    let reporter = Reporter { controller: config.scheduler_name.clone(), instance: reporting_instance(&config) };
    let mut state = Loop {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        config,
        cache: Cache::default(),
        queue: SchedulingQueue::default(),
        owners: Owners::default(),
        pods: HashMap::new(),
        pod_relist: None,
        node_relist: None,
        namespace_relist: None,
        pods_synced: false,
        nodes_synced: false,
        namespaces_synced: false,
        next_start: 0,
        binds,
    };
    loop {
        let wakeup = state.queue.next_wakeup();
        let ready = state.pods_synced && state.nodes_synced && state.namespaces_synced && state.queue.has_active();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            ev = pod_events.next() => match ev {
                Some(Ok(ev)) => state.on_pod_event(ev),
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                None => return Err(SchedulerError::WatchEnded("pods")),
            },
            ev = node_events.next() => match ev {
                Some(Ok(ev)) => state.on_node_event(ev),
                Some(Err(e)) => tracing::warn!(error = %e, "node watch failed; retrying"),
                None => return Err(SchedulerError::WatchEnded("nodes")),
            },
            ev = namespace_events.next() => match ev {
                Some(Ok(ev)) => state.on_namespace_event(ev),
                Some(Err(e)) => tracing::warn!(error = %e, "namespace watch failed; retrying"),
                None => return Err(SchedulerError::WatchEnded("namespaces")),
            },
            Some(ev) = owner_events.next() => match ev {
                Ok(ev) => state.owners.on_event(ev),
                Err(e) => tracing::debug!(error = %e, "service/controller watch failed; retrying"),
            },
            Some(outcome) = bind_results.recv() => state.on_bind_outcome(outcome),
            _ = sleep_until(wakeup) => state.queue.flush(Instant::now()),
            _ = std::future::ready(()), if ready => state.schedule_one(),
        }
    }
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn reporting_instance(config: &SchedulerConfig) -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(format!("{}-{}", config.scheduler_name, host.trim()))
}

fn is_finished(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())
}

/// What the scheduler keeps of a watched pod, which it holds for every pod of the cluster. Of
/// a bound pod's status only the phase (finished pods leave the cache) and the nomination
/// matter here; its conditions, container statuses and addresses are a quarter of a shrunk pod
/// in memory. Pending pods keep theirs (a failure rewrites their `PodScheduled` condition).
/// Lists are shrunk to their length.
fn keep(pod: &mut Pod) {
    if node_name(pod).is_some()
        && let Some(status) = pod.status.take()
    {
        pod.status = Some(PodStatus {
            phase: status.phase,
            nominated_node_name: status.nominated_node_name,
            ..PodStatus::default()
        });
    }
    skiff_api::compact::shrink_pod(pod);
}

impl Loop {
    fn on_pod_event(&mut self, ev: watcher::Event<Pod>) {
        match ev {
            watcher::Event::Init => self.pod_relist = Some(HashSet::new()),
            watcher::Event::InitApply(mut pod) => {
                if let Some(seen) = self.pod_relist.as_mut() {
                    seen.insert(pod_key(&pod));
                }
                keep(&mut pod);
                self.on_pod(Arc::new(pod));
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.pod_relist.take() {
                    let gone: Vec<Arc<Pod>> =
                        self.pods.iter().filter(|(k, _)| !seen.contains(*k)).map(|(_, p)| p.clone()).collect();
                    for pod in gone {
                        self.on_pod_delete(&pod);
                    }
                }
                self.pods_synced = true;
            }
            watcher::Event::Apply(mut pod) => {
                keep(&mut pod);
                self.on_pod(Arc::new(pod));
            }
            watcher::Event::Delete(pod) => self.on_pod_delete(&pod),
        }
    }

    fn on_pod(&mut self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        let now = Instant::now();
        if is_finished(&pod) {
            self.on_pod_delete(&pod);
            return;
        }
        let old = self.pods.insert(key.clone(), pod.clone());
        if node_name(&pod).is_some() {
            self.queue.delete(&key);
            self.cache.remove_pending_pod(&key);
            let was_bound = old.as_deref().and_then(node_name).is_some();
            let labels_changed = old.as_ref().is_some_and(|o| o.metadata.labels != pod.metadata.labels);
            self.cache.set_bound_pod(pod);
            // Even a pod we assumed ourselves may be what a parked pod's affinity or spreading
            // was waiting for (it may have failed before the assumption).
            if !was_bound || labels_changed {
                self.queue.on_cluster_event(ClusterEvent::AssignedPodAdd, now);
            }
            return;
        }
        let ours = pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()).unwrap_or("default-scheduler")
            == self.config.scheduler_name;
        // Gated pods (`spec.schedulingGates`) wait outside the queue until the gates are removed
        // (upstream's SchedulingGates PreEnqueue plugin); the API server sets their condition.
        let gated = pod.spec.as_ref().and_then(|s| s.scheduling_gates.as_ref()).is_some_and(|g| !g.is_empty());
        if !ours || gated || pod.metadata.deletion_timestamp.is_some() {
            self.queue.delete(&key);
            self.cache.remove_pending_pod(&key);
            return;
        }
        self.cache.set_pending_pod(pod.clone());
        if self.cache.is_assumed(&key) {
            // Our bind is in flight; the watch has not caught up yet.
            return;
        }
        self.queue.add_or_update(pod, now);
    }

    fn on_pod_delete(&mut self, pod: &Pod) {
        let key = pod_key(pod);
        self.pods.remove(&key);
        self.queue.delete(&key);
        self.cache.remove_pending_pod(&key);
        if self.cache.remove_pod(&key) {
            self.queue.on_cluster_event(ClusterEvent::AssignedPodDelete, Instant::now());
        }
    }

    fn on_node_event(&mut self, ev: watcher::Event<Node>) {
        let now = Instant::now();
        match ev {
            watcher::Event::Init => self.node_relist = Some(HashSet::new()),
            watcher::Event::InitApply(node) | watcher::Event::Apply(node) => {
                if let Some(seen) = self.node_relist.as_mut() {
                    seen.insert(node.metadata.name.clone().unwrap_or_default());
                }
                if self.cache.set_node(Arc::new(node)) {
                    self.queue.on_cluster_event(ClusterEvent::NodeChange, now);
                }
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.node_relist.take() {
                    for name in self.cache.node_names() {
                        if !seen.contains(&name) {
                            self.cache.remove_node(&name);
                        }
                    }
                }
                self.nodes_synced = true;
            }
            watcher::Event::Delete(node) => {
                self.cache.remove_node(node.metadata.name.as_deref().unwrap_or_default());
            }
        }
    }

    fn on_namespace_event(&mut self, ev: watcher::Event<Namespace>) {
        match ev {
            watcher::Event::Init => self.namespace_relist = Some(HashSet::new()),
            watcher::Event::InitApply(ns) | watcher::Event::Apply(ns) => {
                let name = ns.metadata.name.clone().unwrap_or_default();
                if let Some(seen) = self.namespace_relist.as_mut() {
                    seen.insert(name.clone());
                }
                self.cache.set_namespace_labels(name, ns.metadata.labels.unwrap_or_default());
            }
            watcher::Event::InitDone => {
                if let Some(seen) = self.namespace_relist.take() {
                    for name in self.cache.namespace_names() {
                        if !seen.contains(&name) {
                            self.cache.remove_namespace(&name);
                        }
                    }
                }
                self.namespaces_synced = true;
            }
            watcher::Event::Delete(ns) => self.cache.remove_namespace(ns.metadata.name.as_deref().unwrap_or_default()),
        }
    }

    fn schedule_one(&mut self) {
        let Some(qp) = self.queue.pop() else { return };
        let now = Instant::now();
        let mut info = PodInfo::new(qp.pod.clone());
        info.default_spread_selector = self.owners.default_selector(&qp.pod);
        let snapshot = self.cache.snapshot();
        let mut rng = rand::rng();
        match schedule_pod(&info, snapshot, self.config.percentage_of_nodes_to_score, &mut self.next_start, &mut rng) {
            Ok(result) => {
                tracing::debug!(pod = %qp.key, node = %result.node, evaluated = result.evaluated_nodes,
                    feasible = result.feasible_nodes, "scheduled");
                self.cache.assume(info, &result.node);
                let ctx = self.report_ctx();
                let binds = self.binds.clone();
                let (pod, key, node) = (qp.pod.clone(), qp.key.clone(), result.node);
                tokio::spawn(async move {
                    let result = bind(&ctx, &pod, &node).await;
                    let _ = binds.send(BindOutcome { key, result });
                });
            }
            Err(failure) => {
                let (failure, plugins, candidate) = match failure {
                    ScheduleFailure::NoNodes => (ScheduleFailure::NoNodes, BTreeSet::from(["NoNodes"]), None),
                    ScheduleFailure::Unfit { num_all_nodes, mut diagnosis } => {
                        let post = post_filter(&info, snapshot, &diagnosis);
                        diagnosis.post_filter_msg = post.message;
                        let plugins = diagnosis.unschedulable_plugins();
                        (ScheduleFailure::Unfit { num_all_nodes, diagnosis }, plugins, post.candidate)
                    }
                };
                let message = failure.message();
                tracing::debug!(pod = %qp.key, %message, "unschedulable");
                let Some(latest) = self.queue.failed(&qp.key, plugins, now) else { return };
                let ctx = self.report_ctx();
                tokio::spawn(async move {
                    if let Some(c) = candidate {
                        preempt(&ctx, &latest, &c).await;
                    }
                    report_failure(&ctx, &latest, "Unschedulable", &message).await;
                });
            }
        }
    }

    fn on_bind_outcome(&mut self, outcome: BindOutcome) {
        match outcome.result {
            Ok(()) => self.queue.done(&outcome.key),
            Err(message) => {
                let now = Instant::now();
                self.cache.forget(&outcome.key);
                self.queue.on_cluster_event(ClusterEvent::AssignedPodDelete, now);
                if let Some(pod) = self.queue.failed(&outcome.key, BTreeSet::new(), now) {
                    let ctx = self.report_ctx();
                    tokio::spawn(async move { report_failure(&ctx, &pod, "SchedulerError", &message).await });
                }
            }
        }
    }

    fn report_ctx(&self) -> ReportCtx {
        ReportCtx { client: self.client.clone(), recorder: self.recorder.clone() }
    }
}

/// What background tasks need to talk to the API.
struct ReportCtx {
    client: Client,
    recorder: Recorder,
}

impl ReportCtx {
    fn pods(&self, pod: &Pod) -> Api<Pod> {
        Api::namespaced(self.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"))
    }

    async fn event(&self, pod: &Pod, type_: EventType, reason: &str, action: &str, note: String) {
        let ev =
            Event { type_, reason: reason.into(), note: Some(truncate(note)), action: action.into(), secondary: None };
        if let Err(e) = self.recorder.publish(&ev, &pod.object_ref(&())).await {
            tracing::warn!(pod = %pod_key(pod), error = %e, "recording event failed");
        }
    }
}

fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

async fn bind(ctx: &ReportCtx, pod: &Pod, node: &str) -> Result<(), String> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": pod.metadata.namespace, "uid": pod.metadata.uid},
        "target": {"kind": "Node", "name": node},
    });
    let res: Result<serde_json::Value, _> =
        ctx.pods(pod).create_subresource("binding", &name, &PostParams::default(), &binding).await;
    match res {
        Ok(_) => {
            let note = format!("Successfully assigned {} to {node}", pod_key(pod));
            ctx.event(pod, EventType::Normal, "Scheduled", "Binding", note).await;
            Ok(())
        }
        Err(e) => {
            tracing::info!(pod = %pod_key(pod), node, error = %e, "binding failed");
            // Upstream wraps bind plugin errors the same way.
            Err(format!("running Bind plugin \"DefaultBinder\": {}", api_message(&e)))
        }
    }
}

/// Sets `PodScheduled=False` (unless already identical) and records `FailedScheduling`.
async fn report_failure(ctx: &ReportCtx, pod: &Pod, reason: &str, message: &str) {
    let mut conditions = pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let existing = conditions.iter().position(|c| c.type_ == "PodScheduled");
    let unchanged = existing.is_some_and(|i| {
        let c = &conditions[i];
        c.status == "False" && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(message)
    });
    if !unchanged {
        let transition = existing
            .filter(|i| conditions[*i].status == "False")
            .and_then(|i| conditions[i].last_transition_time.clone())
            .unwrap_or_else(|| Time(jiff::Timestamp::now()));
        let cond = PodCondition {
            type_: "PodScheduled".into(),
            status: "False".into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(transition),
            last_probe_time: None,
            observed_generation: None,
        };
        match existing {
            Some(i) => conditions[i] = cond,
            None => conditions.push(cond),
        }
        let patch = json!({"status": {"conditions": conditions}});
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        if let Err(e) = ctx.pods(pod).patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::warn!(pod = %pod_key(pod), error = %e, "updating PodScheduled condition failed");
        }
    }
    ctx.event(pod, EventType::Warning, "FailedScheduling", "Scheduling", message.to_string()).await;
}

/// Evicts the victims and nominates the node for the preemptor (upstream `prepareCandidate`).
async fn preempt(ctx: &ReportCtx, pod: &Pod, candidate: &PreemptionCandidate) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    for victim in &candidate.victims {
        let note = format!("Preempted by pod {uid} on node {}", candidate.node);
        ctx.event(&victim.pod, EventType::Normal, "Preempted", "Preempting", note).await;
        let name = victim.pod.metadata.name.as_deref().unwrap_or_default();
        match ctx.pods(&victim.pod).delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => tracing::warn!(victim = %victim.key, error = %e, "deleting preemption victim failed"),
        }
    }
    let patch = json!({"status": {"nominatedNodeName": candidate.node}});
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if let Err(e) = ctx.pods(pod).patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        tracing::warn!(pod = %pod_key(pod), error = %e, "setting nominatedNodeName failed");
    }
}

/// Upstream `truncateMessage`.
fn truncate(message: String) -> String {
    if message.len() <= NOTE_LIMIT {
        return message;
    }
    let mut cut = NOTE_LIMIT - " ...".len();
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} ...", &message[..cut])
}

#[cfg(test)]
mod tests;
