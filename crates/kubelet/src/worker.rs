//! A pod's life on this node, one task per pod (upstream's pod worker + `SyncPod` +
//! `computePodActions`), driven by the pod's updates, the manager's relist (a container
//! changed), and its own timers (back-off expiry, deadlines, probes).
//!
//! Each round: observe the pod's sandbox and containers → write the status if it changed
//! (computed with the waiting reasons the previous round decided, so `kubectl get -w` sees
//! `Error` before `CrashLoopBackOff` as upstream shows it) → act: sandbox, init containers in
//! order (sidecars stay running), containers, restarts with back-off, dead-container GC.
//! A deleted pod is terminated gracefully (preStop, SIGTERM, grace period, SIGKILL), cleaned
//! up, its final status written, and deleted with `gracePeriodSeconds: 0`.
//!
//! Containers are not stopped when the kubelet stops (fail-static): the next run adopts them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, PodStatus, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::json;
use skiff_events::{Event, EventType, Recorder};
use skiff_runtime::cri::{
    AuthConfig, ContainerConfig, ContainerState as RtState, ContainerStatus, Mount, PodSandboxStatus, SandboxState,
};
use skiff_runtime::{Runtime, RuntimeError};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::KubeletConfig;
use crate::backoff::{Backoff, go_duration};
use crate::convert::{self, is_sidecar, name, namespace, uid};
use crate::env::{self as penv, EnvContext};
use crate::pods::Registry;
use crate::probe::{self, ProbeKind, ProbeResult, Target};
use crate::prober::{self, ProbeEvent};
use crate::status::{self, WorkerView};
use crate::volumes::{self, PodVolumes, VolumeHost};

/// How long a terminated container's termination message may be (upstream: 4096 bytes).
const MAX_TERMINATION_MESSAGE: usize = 4096;
/// Upstream's fallback-to-logs limits: the last 80 lines, at most 2048 bytes.
const FALLBACK_LOG_LINES: usize = 80;
const FALLBACK_LOG_BYTES: usize = 2048;
/// Retry a failed sandbox creation after this long.
const SANDBOX_RETRY: Duration = Duration::from_secs(2);
/// Even without news, look again this often.
const RESYNC: Duration = Duration::from_secs(10);
/// ConfigMap, Secret and downward API volumes are brought up to date this often.
const VOLUME_REFRESH: Duration = Duration::from_secs(10);

/// What a worker is told about its pod.
#[derive(Clone, Debug)]
pub(crate) enum PodUpdate {
    /// The pod as last seen in the API.
    Pod(Box<Pod>),
    /// The pod is gone from the API (deleted, or bound elsewhere): kill and clean up.
    Gone,
}

/// What the workers share.
pub(crate) struct Shared {
    pub(crate) client: kube::Client,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) config: KubeletConfig,
    pub(crate) recorder: Recorder,
    pub(crate) node_memory: u64,
    pub(crate) registry: Registry,
    /// Node facts for volumes and the environment (allocatable, whether tmpfs works).
    pub(crate) volume_host: VolumeHost,
}

/// What the worker starts from: the pod's sandboxes and containers found in the runtime
/// (a previous run's, adopted).
#[derive(Default)]
pub(crate) struct Adopted {
    pub(crate) sandboxes: Vec<PodSandboxStatus>,
    pub(crate) containers: Vec<ContainerStatus>,
}

pub(crate) struct Worker {
    shared: Arc<Shared>,
    pod: Pod,
    updates: watch::Receiver<PodUpdate>,
    relisted: Arc<tokio::sync::Notify>,
    view: WorkerView,
    backoff: Backoff,
    /// The current sandbox, and older ones to remove.
    sandbox: Option<PodSandboxStatus>,
    stale_sandboxes: Vec<String>,
    /// The next attempt number of each container whose instances went with an old sandbox:
    /// restart counts carry over a sandbox's re-creation, as upstream's do.
    attempt_floor: HashMap<String, u32>,
    /// Every container instance of the pod we know of, by id.
    containers: HashMap<String, ContainerStatus>,
    /// When each exited container was first seen exited (the back-off clock).
    exits: HashMap<String, Instant>,
    /// Failed sandbox creation: not before this.
    sandbox_retry_at: Option<Instant>,
    /// The last status written (JSON), to write only changes.
    written: Option<serde_json::Value>,
    /// The next time something is due (back-off end, deadline).
    wake_at: Option<Instant>,
    sandbox_attempt: u32,
    /// The pod's volumes once set up, and when they were last refreshed.
    volumes: Option<PodVolumes>,
    volumes_refreshed: Instant,
    /// When emptyDir usage was last compared with the limits.
    usage_checked: Instant,
    /// The last volume set-up error reported (not repeated every round).
    volume_error: Option<String>,
    /// Probers of running containers, by container id.
    probers: HashMap<String, CancellationToken>,
    probe_tx: tokio::sync::mpsc::UnboundedSender<ProbeEvent>,
    probe_rx: tokio::sync::mpsc::UnboundedReceiver<ProbeEvent>,
}

/// A runtime time (Unix ns) as an `Instant` on tokio's clock.
fn instant_of(ns: i64) -> Instant {
    let now_ns = Timestamp::now().as_nanosecond() as i64;
    let ago = Duration::from_nanos(now_ns.saturating_sub(ns).max(0) as u64);
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

fn restarts(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        pod: Pod,
        updates: watch::Receiver<PodUpdate>,
        relisted: Arc<tokio::sync::Notify>,
        adopted: Adopted,
    ) -> Worker {
        let mut sandboxes = adopted.sandboxes;
        sandboxes.sort_by_key(|s| (s.attempt, s.created_at));
        let sandbox = sandboxes.pop();
        let sandbox_attempt = sandbox.as_ref().map(|s| s.attempt).unwrap_or(0);
        let stale_sandboxes = sandboxes.into_iter().map(|s| s.id).collect();
        let view = WorkerView::default();
        let containers: HashMap<String, ContainerStatus> =
            adopted.containers.into_iter().map(|c| (c.id.clone(), c)).collect();
        let (probe_tx, probe_rx) = tokio::sync::mpsc::unbounded_channel();
        Worker {
            volumes: None,
            volumes_refreshed: Instant::now(),
            usage_checked: Instant::now(),
            volume_error: None,
            probers: HashMap::new(),
            probe_tx,
            probe_rx,
            shared,
            pod,
            updates,
            relisted,
            view,
            backoff: Backoff::default(),
            sandbox,
            stale_sandboxes,
            attempt_floor: HashMap::new(),
            containers,
            exits: HashMap::new(),
            sandbox_retry_at: None,
            written: None,
            wake_at: None,
            sandbox_attempt,
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", namespace(&self.pod), name(&self.pod))
    }

    /// Runs until the pod is gone (terminated and cleaned up) or `shutdown`.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        // Adopted containers: what ran before counts as started and ready until probes say
        // otherwise (no restart is counted, nothing is re-run).
        let running: Vec<ContainerStatus> =
            self.containers.values().filter(|c| c.state == RtState::Running).cloned().collect();
        for c in running {
            self.view.started.insert(c.id.clone());
            let Some(spec) = self.spec_of(&c.name) else { continue };
            if spec.readiness_probe.is_none() {
                self.view.ready.insert(c.id.clone());
            }
            self.start_prober(&spec, &c.id, instant_of(c.started_at), true);
        }
        loop {
            let update = self.updates.borrow_and_update().clone();
            match update {
                PodUpdate::Gone => {
                    self.terminate(false).await;
                    return;
                }
                PodUpdate::Pod(p) => self.pod = *p,
            }
            if self.pod.metadata.deletion_timestamp.is_some() {
                self.terminate(true).await;
                return;
            }
            self.observe().await;
            self.write_status().await;
            let acted = if self.is_terminal() { self.stop_terminal().await } else { self.act().await };
            if acted {
                tokio::task::yield_now().await;
                continue;
            }
            let wake = self.wake_at.take().unwrap_or_else(|| Instant::now() + RESYNC).min(Instant::now() + RESYNC);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.updates.changed() => if r.is_err() { return },
                _ = self.relisted.notified() => {}
                Some(ev) = self.probe_rx.recv() => self.on_probe(ev).await,
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    fn wake(&mut self, at: Instant) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    fn is_terminal(&self) -> bool {
        let phase = self.pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let written = self.written.as_ref().and_then(|w| w.get("phase")).and_then(|p| p.as_str());
        matches!(written.or(phase), Some("Succeeded" | "Failed"))
    }

    /// Refresh the sandbox and every known container from the runtime; pick up containers of
    /// this pod we don't know (created by a previous run just before it died).
    async fn observe(&mut self) {
        let rt = self.shared.runtime.clone();
        if let Some(sb) = &self.sandbox {
            match rt.pod_sandbox_status(&sb.id).await {
                Ok(s) => self.sandbox = Some(s),
                Err(RuntimeError::NotFound { .. }) => self.sandbox = None,
                Err(e) => tracing::warn!(pod = %self.key(), error = %e, "sandbox status"),
            }
        }
        let ids: Vec<String> = self.containers.keys().cloned().collect();
        for id in ids {
            match rt.container_status(&id).await {
                Ok(mut s) => {
                    if s.state == RtState::Exited && !self.exits.contains_key(&id) {
                        self.exits.insert(id.clone(), instant_of(s.finished_at));
                        if s.message.is_empty() {
                            s.message = self.termination_message(&s);
                        }
                    } else if let Some(old) = self.containers.get(&id) {
                        // The message is read once, at exit.
                        if s.message.is_empty() {
                            s.message = old.message.clone();
                        }
                    }
                    self.containers.insert(id, s);
                }
                Err(RuntimeError::NotFound { .. }) => {
                    self.containers.remove(&id);
                }
                Err(e) => tracing::warn!(pod = %self.key(), error = %e, "container status"),
            }
        }
        let gone: Vec<String> = self
            .probers
            .keys()
            .filter(|id| self.containers.get(*id).is_none_or(|c| c.state != RtState::Running))
            .cloned()
            .collect();
        for id in gone {
            if let Some(stop) = self.probers.remove(&id) {
                stop.cancel();
            }
            self.view.ready.remove(&id);
        }
        self.publish();
    }

    /// The pod's first IP (the node's for host-network pods): where probes and hooks go.
    fn pod_ip(&self) -> Option<IpAddr> {
        if self.pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false) {
            return self.shared.config.node_ips.first().copied();
        }
        self.sandbox.as_ref().and_then(|s| s.ips.first().copied())
    }

    fn start_prober(&mut self, spec: &Container, id: &str, started_at: Instant, adopted: bool) {
        if !prober::has_probes(spec) || self.probers.contains_key(id) {
            return;
        }
        let mut spec = spec.clone();
        if adopted {
            // It ran before we restarted: its startup is behind it.
            spec.startup_probe = None;
        }
        let stop = CancellationToken::new();
        self.probers.insert(id.to_string(), stop.clone());
        tokio::spawn(prober::run(
            spec,
            id.to_string(),
            self.pod_ip(),
            started_at,
            self.shared.runtime.clone(),
            self.probe_tx.clone(),
            stop,
        ));
    }

    async fn on_probe(&mut self, ev: ProbeEvent) {
        match ev {
            ProbeEvent::Failed { container, message, warning_only, .. } => {
                let reason = if warning_only { "ProbeWarning" } else { "Unhealthy" };
                self.event(Some(&container), true, reason, message).await;
            }
            ProbeEvent::Result { id, kind, result } => match (kind, result) {
                (ProbeKind::Readiness, ProbeResult::Success) => {
                    self.view.ready.insert(id);
                }
                (ProbeKind::Readiness, _) => {
                    self.view.ready.remove(&id);
                }
                (ProbeKind::Startup, ProbeResult::Success) => {
                    self.view.started.insert(id);
                }
                (ProbeKind::Liveness | ProbeKind::Startup, ProbeResult::Failure) => {
                    let Some(c) = self.containers.get(&id).cloned() else { return };
                    let what = if kind == ProbeKind::Liveness { "liveness" } else { "startup" };
                    self.event(
                        Some(&c.name),
                        false,
                        "Killing",
                        format!("Container {} failed {what} probe, will be restarted", c.name),
                    )
                    .await;
                    let spec = self.spec_of(&c.name);
                    let probe_grace = spec.as_ref().and_then(|s| {
                        let p = if kind == ProbeKind::Liveness { &s.liveness_probe } else { &s.startup_probe };
                        p.as_ref().and_then(|p| p.termination_grace_period_seconds)
                    });
                    let grace = probe_grace
                        .map(|g| Duration::from_secs(g.max(0) as u64))
                        .unwrap_or_else(|| self.grace_period());
                    let rt = self.shared.runtime.clone();
                    // Stopping may take the grace period: not on the worker's time.
                    tokio::spawn(async move {
                        if let Err(e) = rt.stop_container(&id, grace).await {
                            tracing::warn!(container = %id, error = %e, "stopping an unhealthy container");
                        }
                    });
                }
                _ => {}
            },
        }
    }

    /// Set up the pod's volumes, or bring them up to date; false while they are not ready.
    async fn ensure_volumes(&mut self) -> bool {
        let dir = convert::pod_dir(&self.shared.config, &self.pod);
        let source: &dyn volumes::ObjectSource = &self.shared.client;
        if let Some(v) = &self.volumes {
            if self.volumes_refreshed.elapsed() >= VOLUME_REFRESH {
                self.volumes_refreshed = Instant::now();
                if let Err(e) = v.refresh(&self.pod, source, &self.shared.volume_host).await {
                    tracing::debug!(pod = %self.key(), error = %e, "refreshing volumes");
                }
            }
            return true;
        }
        match volumes::prepare(&self.pod, &dir, source, &self.shared.volume_host).await {
            Ok(v) => {
                self.volumes = Some(v);
                self.volumes_refreshed = Instant::now();
                self.volume_error = None;
                true
            }
            Err(e) => {
                let msg = e.to_string();
                if self.volume_error.as_deref() != Some(msg.as_str()) {
                    self.event(None, true, volumes::FAILED_MOUNT_REASON, msg.clone()).await;
                    self.volume_error = Some(msg);
                }
                self.wake(Instant::now() + SANDBOX_RETRY);
                false
            }
        }
    }

    /// Tell the registry (the kubelet API's view) what runs.
    fn publish(&self) {
        self.shared.registry.update(&self.pod, self.sandbox.as_ref().map(|s| s.id.clone()), self.containers.values());
    }

    /// The container's termination message: the file it wrote, or (with
    /// `FallbackToLogsOnError` and a failure) the tail of its log.
    fn termination_message(&self, s: &ContainerStatus) -> String {
        let Some(spec) = self.spec_of(&s.name) else { return String::new() };
        let file = convert::termination_message_file(&self.shared.config, &self.pod, &s.name, s.attempt);
        let mut msg = std::fs::read(&file)
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(MAX_TERMINATION_MESSAGE)]).into_owned())
            .unwrap_or_default();
        if msg.is_empty()
            && s.exit_code != 0
            && spec.termination_message_policy.as_deref() == Some("FallbackToLogsOnError")
        {
            msg = tail_log(&s.log_path);
        }
        msg
    }

    fn spec_of(&self, name: &str) -> Option<Container> {
        let spec = self.pod.spec.as_ref()?;
        spec.containers.iter().chain(spec.init_containers.iter().flatten()).find(|c| c.name == name).cloned()
    }

    fn compute_status(&self) -> PodStatus {
        let containers: Vec<ContainerStatus> = match &self.sandbox {
            Some(sb) => self.containers.values().filter(|c| c.sandbox_id == sb.id).cloned().collect(),
            None => self.containers.values().cloned().collect(),
        };
        status::pod_status(
            &self.pod,
            &status::Inputs {
                sandbox: self.sandbox.as_ref(),
                containers: &containers,
                view: &self.view,
                host_ips: &self.shared.config.node_ips,
                now: Timestamp::now(),
            },
        )
    }

    /// Patch `pods/status` when what we would report changed. A failed write is retried on
    /// the next round (nothing is marked written), so no status is lost.
    async fn write_status(&mut self) {
        let status = self.compute_status();
        let Ok(mut value) = serde_json::to_value(&status) else { return };
        // Transition times only move when a condition's status does: equal means unchanged.
        if self.written.as_ref() == Some(&value) {
            return;
        }
        let pods: Api<Pod> = Api::namespaced(self.shared.client.clone(), namespace(&self.pod));
        let mut patch = json!({"metadata": {"uid": uid(&self.pod)}, "status": value});
        // Pod and host IPs are merged by `ip` in a strategic merge patch: a sandbox re-created
        // with a new address would add it beside the old one (and the API server refuses two
        // of a family). Replace those lists whole, as upstream's status manager's patch (with
        // its deletions) does.
        for list in ["podIPs", "hostIPs"] {
            if let Some(items) = patch["status"].get_mut(list).and_then(serde_json::Value::as_array_mut) {
                items.push(json!({"$patch": "replace"}));
            }
        }
        match pods.patch_status(name(&self.pod), &PatchParams::default(), &Patch::Strategic(patch)).await {
            Ok(p) => {
                self.pod.status = p.status;
                self.written = Some(std::mem::take(&mut value));
            }
            Err(e) => {
                tracing::warn!(pod = %self.key(), error = %e, "writing the pod status failed; retrying");
                self.wake(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    async fn event(&self, container: Option<&str>, warning: bool, reason: &str, note: String) {
        let mut reference = pod_reference(&self.pod);
        if let Some(c) = container {
            let init = self
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.init_containers.as_ref())
                .is_some_and(|i| i.iter().any(|x| x.name == c));
            reference.field_path = Some(format!("spec.{}{{{c}}}", if init { "initContainers" } else { "containers" }));
        }
        record(&self.shared.recorder, &reference, warning, reason, note).await;
    }

    fn grace_period(&self) -> Duration {
        let secs = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30)
            .max(0);
        Duration::from_secs(secs as u64)
    }

    /// The attempt number of a container's next instance: one past every instance known, in
    /// this sandbox or an earlier one.
    fn next_attempt(&self, name: &str) -> u32 {
        let seen = self.containers.values().filter(|c| c.name == name).map(|c| c.attempt + 1).max();
        seen.into_iter().chain(self.attempt_floor.get(name).copied()).max().unwrap_or(0)
    }

    /// Upstream's eviction message for the first emptyDir whose usage exceeds its `sizeLimit`.
    async fn empty_dir_over_limit(&self) -> Option<String> {
        let volumes = self.volumes.as_ref()?;
        let specs = self.pod.spec.as_ref()?.volumes.clone().unwrap_or_default();
        for (name, used, limit) in volumes.empty_dir_usage().await {
            let Some(limit) = limit.filter(|l| *l > 0) else { continue };
            if used > limit {
                let written = specs
                    .iter()
                    .find(|v| v.name == name)
                    .and_then(|v| v.empty_dir.as_ref()?.size_limit.as_ref().map(|q| q.0.clone()))
                    .unwrap_or_else(|| limit.to_string());
                return Some(format!("Usage of EmptyDir volume {name:?} exceeds the limit {written:?}. "));
            }
        }
        None
    }

    /// Latest instance of a container by name (in the current sandbox).
    fn latest(&self, name: &str) -> Option<&ContainerStatus> {
        let sandbox = self.sandbox.as_ref().map(|s| s.id.as_str());
        self.containers
            .values()
            .filter(|c| c.name == name && Some(c.sandbox_id.as_str()) == sandbox)
            .max_by_key(|c| (c.attempt, c.created_at))
    }

    /// One round of actions; true when something changed (the caller observes again at once).
    async fn act(&mut self) -> bool {
        let Some(spec) = self.pod.spec.clone() else { return false };
        // activeDeadlineSeconds: counted from the pod's start time.
        if let (Some(ads), Some(start)) =
            (spec.active_deadline_seconds, self.pod.status.as_ref().and_then(|s| s.start_time.as_ref()))
        {
            let deadline = start.0 + jiff::SignedDuration::from_secs(ads);
            if Timestamp::now() >= deadline {
                if !self.view.deadline_exceeded {
                    self.view.deadline_exceeded = true;
                    self.event(
                        None,
                        false,
                        "DeadlineExceeded",
                        "Pod was active on the node longer than the specified deadline".into(),
                    )
                    .await;
                    self.kill_all(Duration::from_secs(0)).await;
                    return true;
                }
                return false;
            }
            let left = deadline.duration_since(Timestamp::now()).unsigned_abs();
            self.wake(Instant::now() + left);
        }
        if !self.ensure_sandbox().await {
            return self.sandbox.is_some();
        }
        let mut acted = false;
        for id in std::mem::take(&mut self.stale_sandboxes) {
            let _ = self.shared.runtime.stop_pod_sandbox(&id).await;
            if let Err(e) = self.shared.runtime.remove_pod_sandbox(&id).await {
                tracing::warn!(pod = %self.key(), error = %e, "removing an old sandbox");
            }
            for c in self.containers.values().filter(|c| c.sandbox_id == id) {
                let next = self.attempt_floor.entry(c.name.clone()).or_default();
                *next = (*next).max(c.attempt + 1);
            }
            self.containers.retain(|_, c| c.sandbox_id != id);
            acted = true;
        }
        if !self.ensure_volumes().await {
            return acted;
        }
        // Upstream's eviction manager: an emptyDir over its sizeLimit evicts the pod.
        if self.view.evicted.is_none() && self.usage_checked.elapsed() >= VOLUME_REFRESH {
            self.usage_checked = Instant::now();
            self.wake(Instant::now() + VOLUME_REFRESH);
            if let Some(message) = self.empty_dir_over_limit().await {
                self.view.evicted = Some(message.clone());
                self.event(None, true, "Evicted", message).await;
                self.kill_all(Duration::from_secs(0)).await;
                return true;
            }
        }
        let policy = spec.restart_policy.clone().unwrap_or_else(|| "Always".into());
        // Init containers, in order.
        for c in spec.init_containers.iter().flatten() {
            let latest = self.latest(&c.name).cloned();
            if is_sidecar(c) {
                match latest {
                    Some(l) if l.state == RtState::Running => {
                        if self.view.started.contains(&l.id) {
                            continue;
                        }
                        return acted;
                    }
                    _ => {
                        acted |= self.start_or_wait(c, latest.as_ref(), true).await;
                        return acted;
                    }
                }
            }
            match latest {
                Some(l) if l.state == RtState::Exited && l.exit_code == 0 => continue,
                Some(l) if l.state == RtState::Running => return acted,
                Some(l) if l.state == RtState::Exited => {
                    if policy == "Never" {
                        // The pod failed: its phase says so; nothing more starts.
                        return acted;
                    }
                    acted |= self.start_or_wait(c, Some(&l), true).await;
                    return acted;
                }
                other => {
                    acted |= self.start_or_wait(c, other.as_ref(), true).await;
                    return acted;
                }
            }
        }
        for c in &spec.containers {
            let latest = self.latest(&c.name).cloned();
            match &latest {
                Some(l) if l.state == RtState::Running => {}
                Some(l) if l.state == RtState::Exited && !restarts(&policy, l.exit_code) => {}
                _ => acted |= self.start_or_wait(c, latest.as_ref(), restarts(&policy, 1)).await,
            }
        }
        acted |= self.prune_dead().await;
        acted
    }

    /// Keep only the newest exited instance of each container (for `logs --previous`).
    async fn prune_dead(&mut self) -> bool {
        let mut by_name: HashMap<String, Vec<ContainerStatus>> = HashMap::new();
        for c in self.containers.values() {
            by_name.entry(c.name.clone()).or_default().push(c.clone());
        }
        let mut acted = false;
        for (_, mut list) in by_name {
            list.sort_by_key(|c| std::cmp::Reverse((c.attempt, c.created_at)));
            // The latest (running or not) and the one before it stay.
            for old in list.into_iter().skip(2).filter(|c| c.state != RtState::Running) {
                if self.shared.runtime.remove_container(&old.id).await.is_ok() {
                    self.containers.remove(&old.id);
                    self.exits.remove(&old.id);
                    acted = true;
                }
            }
        }
        acted
    }

    /// Make sure a ready sandbox exists; false if not (yet).
    async fn ensure_sandbox(&mut self) -> bool {
        if self.sandbox.as_ref().is_some_and(|s| s.state == SandboxState::Ready) {
            return true;
        }
        if let Some(at) = self.sandbox_retry_at
            && Instant::now() < at
        {
            self.wake(at);
            return false;
        }
        if let Some(old) = self.sandbox.take() {
            // The sandbox died under us (host reboot, someone removed its namespaces).
            self.event(None, false, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.".into())
                .await;
            self.stale_sandboxes.push(old.id);
            self.sandbox_attempt += 1;
        }
        let config = convert::sandbox_config(&self.pod, &self.shared.config, self.sandbox_attempt);
        if let Err(e) = std::fs::create_dir_all(&config.log_directory) {
            tracing::warn!(pod = %self.key(), error = %e, "creating the pod log directory");
        }
        match self.shared.runtime.run_pod_sandbox(&config).await {
            Ok(id) => {
                self.sandbox_retry_at = None;
                match self.shared.runtime.pod_sandbox_status(&id).await {
                    Ok(s) => self.sandbox = Some(s),
                    Err(e) => {
                        tracing::warn!(pod = %self.key(), error = %e, "sandbox status");
                        return false;
                    }
                }
                self.publish();
                true
            }
            Err(e) => {
                self.event(None, true, "FailedCreatePodSandBox", format!("Failed to create pod sandbox: {e}")).await;
                self.sandbox_retry_at = Some(Instant::now() + SANDBOX_RETRY);
                self.wake(Instant::now() + SANDBOX_RETRY);
                false
            }
        }
    }

    /// Start container `c` (first time, or restart after `latest` exited), unless back-off
    /// says wait. Returns whether anything changed.
    async fn start_or_wait(&mut self, c: &Container, latest: Option<&ContainerStatus>, may_restart: bool) -> bool {
        let pod_desc = format!("{}_{}({})", name(&self.pod), namespace(&self.pod), uid(&self.pod));
        if let Some(l) = latest {
            if l.state == RtState::Exited {
                if !may_restart {
                    return false;
                }
                let since = self.exits.get(&l.id).copied().unwrap_or_else(Instant::now);
                let now = Instant::now();
                let key = format!("container/{}", c.name);
                if self.backoff.in_backoff_since(&key, since, now) {
                    let delay = self.backoff.get(&key, now).unwrap_or_default();
                    let msg = format!(
                        "back-off {} restarting failed container={} pod={pod_desc}",
                        go_duration(delay),
                        c.name
                    );
                    let first = self.view.waiting.get(&c.name).map(|(r, _)| r.as_str()) != Some("CrashLoopBackOff");
                    self.view.waiting.insert(c.name.clone(), ("CrashLoopBackOff".into(), msg));
                    if first {
                        self.event(
                            Some(&c.name),
                            true,
                            "BackOff",
                            format!("Back-off restarting failed container {} in pod {pod_desc}", c.name),
                        )
                        .await;
                    }
                    self.wake(since + delay);
                    return first;
                }
                self.backoff.next(&key, since);
            } else if l.state == RtState::Created {
                // Created but never started (a start that failed half-way): replace it.
                let _ = self.shared.runtime.remove_container(&l.id).await;
                self.containers.remove(&l.id);
            }
        }
        let attempt = self.next_attempt(&c.name);
        match self.start(c, attempt).await {
            Ok(id) => {
                self.view.waiting.remove(&c.name);
                let has_startup = c.startup_probe.is_some();
                let has_readiness = c.readiness_probe.is_some();
                if !has_startup {
                    self.view.started.insert(id.clone());
                }
                if !has_readiness {
                    self.view.ready.insert(id.clone());
                }
                self.start_prober(c, &id, Instant::now(), false);
                true
            }
            Err((reason, message)) => {
                let changed = self.view.waiting.get(&c.name) != Some(&(reason.clone(), message.clone()));
                self.view.waiting.insert(c.name.clone(), (reason, message));
                changed
            }
        }
    }

    /// Pull, create and start one container. Err: (waiting reason, message).
    async fn start(&mut self, c: &Container, attempt: u32) -> Result<String, (String, String)> {
        let image = self.ensure_image(c).await?;
        let sandbox = self.sandbox.clone().ok_or(("ContainerCreating".to_string(), String::new()))?;
        let sandbox_config = convert::sandbox_config(&self.pod, &self.shared.config, self.sandbox_attempt);
        let config = match self.container_config(c, attempt, &image, &sandbox).await {
            Ok(cfg) => cfg,
            Err(msg) => {
                self.event(Some(&c.name), true, "Failed", format!("Error: {msg}")).await;
                return Err(("CreateContainerConfigError".into(), msg));
            }
        };
        let rt = self.shared.runtime.clone();
        let id = match rt.create_container(&sandbox.id, &config, &sandbox_config).await {
            Ok(id) => id,
            Err(e) => {
                self.event(Some(&c.name), true, "Failed", format!("Error: {e}")).await;
                return Err(("CreateContainerError".into(), e.to_string()));
            }
        };
        if let Ok(s) = rt.container_status(&id).await {
            self.containers.insert(id.clone(), s);
        }
        self.event(Some(&c.name), false, "Created", format!("Created container: {}", c.name)).await;
        if let Err(e) = rt.start_container(&id).await {
            self.event(Some(&c.name), true, "Failed", format!("Error: {e}")).await;
            if let Ok(s) = rt.container_status(&id).await {
                self.containers.insert(id.clone(), s);
            }
            return Err(("RunContainerError".into(), e.to_string()));
        }
        self.event(Some(&c.name), false, "Started", format!("Started container {}", c.name)).await;
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let target = Target { container_id: &id, container: c, pod_ip: self.pod_ip() };
            if let Err(e) = probe::run_hook(hook, &self.pod, &target, rt.as_ref(), self.grace_period()).await {
                tracing::info!(pod = %self.key(), container = %c.name, error = %e, "postStart hook failed");
                // Upstream keeps the handler's output out of the event (it may hold secrets).
                self.event(Some(&c.name), true, probe::FAILED_POST_START_HOOK, "PostStartHook failed".into()).await;
                let _ = rt.stop_container(&id, self.grace_period()).await;
                if let Ok(s) = rt.container_status(&id).await {
                    self.containers.insert(id.clone(), s);
                }
                return Err(("PostStartHookError".into(), e.to_string()));
            }
        }
        if let Ok(s) = rt.container_status(&id).await {
            self.containers.insert(id.clone(), s);
        }
        self.publish();
        Ok(id)
    }

    /// The image per `imagePullPolicy`, pulled if needed. Ok: the image id.
    async fn ensure_image(&mut self, c: &Container) -> Result<String, (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        let rt = self.shared.runtime.clone();
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            let tag = image.rsplit('/').next().unwrap_or_default();
            if !tag.contains(':') || tag.ends_with(":latest") { "Always".into() } else { "IfNotPresent".into() }
        });
        let present = rt.image_status(&image).await.ok().flatten();
        match (policy.as_str(), &present) {
            ("Never", None) => {
                let msg = format!("Container image \"{image}\" is not present with pull policy of Never");
                self.event(Some(&c.name), true, "ErrImageNeverPull", msg.clone()).await;
                return Err(("ErrImageNeverPull".into(), msg));
            }
            ("Never" | "IfNotPresent", Some(i)) => {
                self.event(
                    Some(&c.name),
                    false,
                    "Pulled",
                    format!("Container image \"{image}\" already present on machine"),
                )
                .await;
                return Ok(i.id.clone());
            }
            _ => {}
        }
        let key = format!("image/{image}");
        let now = Instant::now();
        if self.view.waiting.get(&c.name).is_some_and(|(r, _)| r == "ErrImagePull" || r == "ImagePullBackOff")
            && let Some(until) = self.backoff.backoff_until(&key, now)
        {
            let msg = format!("Back-off pulling image \"{image}\"");
            if self.view.waiting.get(&c.name).map(|(r, _)| r.as_str()) != Some("ImagePullBackOff") {
                self.event(Some(&c.name), false, "BackOff", msg.clone()).await;
            }
            self.wake(until);
            return Err(("ImagePullBackOff".into(), msg));
        }
        self.event(Some(&c.name), false, "Pulling", format!("Pulling image \"{image}\"")).await;
        let auth = self.pull_auth(&image).await;
        let started = std::time::Instant::now();
        match rt.pull_image(&image, auth.as_ref()).await {
            Ok(id) => {
                self.backoff.reset(&key);
                let took = started.elapsed().as_secs_f64();
                let size = rt.image_status(&id).await.ok().flatten().map(|i| i.size).unwrap_or(0);
                self.event(
                    Some(&c.name),
                    false,
                    "Pulled",
                    format!(
                        "Successfully pulled image \"{image}\" in {took:.3}s ({took:.3}s including waiting). Image size: {size} bytes."
                    ),
                )
                .await;
                Ok(id)
            }
            Err(e) => {
                let msg = e.to_string();
                self.event(Some(&c.name), true, "Failed", format!("Failed to pull image \"{image}\": {msg}")).await;
                self.event(Some(&c.name), true, "Failed", "Error: ErrImagePull".into()).await;
                self.backoff.next(&key, now);
                if let Some(d) = self.backoff.get(&key, now) {
                    self.wake(now + d);
                }
                Err(("ErrImagePull".into(), msg))
            }
        }
    }

    /// Credentials for `image` from the pod's `imagePullSecrets` (`.dockerconfigjson` or
    /// `.dockercfg`), matched by registry host.
    async fn pull_auth(&self, image: &str) -> Option<AuthConfig> {
        let secrets = self.pod.spec.as_ref()?.image_pull_secrets.clone()?;
        let registry = registry_of(image);
        let api: Api<Secret> = Api::namespaced(self.shared.client.clone(), namespace(&self.pod));
        for s in secrets {
            let n = s.name;
            if n.is_empty() {
                continue;
            }
            let Ok(Some(secret)) = api.get_opt(&n).await else { continue };
            if let Some(a) = docker_auth(&secret, &registry) {
                return Some(a);
            }
        }
        None
    }

    /// The CRI config of a container: command, env, mounts, resources, security.
    async fn container_config(
        &self,
        c: &Container,
        attempt: u32,
        image: &str,
        sandbox: &PodSandboxStatus,
    ) -> Result<ContainerConfig, String> {
        let image_user = self.shared.runtime.image_status(image).await.ok().flatten().and_then(|i| i.user);
        let security = convert::security(&self.pod, c, image_user.as_deref())?;
        let source: &dyn volumes::ObjectSource = &self.shared.client;
        let service_env = penv::service_env_for(&self.pod, source).await.map_err(|e| e.to_string())?;
        let host_network = self.pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        let ctx = EnvContext {
            node_name: self.shared.config.node_name.clone(),
            host_ips: self.shared.config.node_ips.iter().map(IpAddr::to_string).collect(),
            pod_ips: if host_network {
                self.shared.config.node_ips.iter().map(IpAddr::to_string).collect()
            } else {
                sandbox.ips.iter().map(IpAddr::to_string).collect()
            },
            service_env,
            node_allocatable: self.shared.volume_host.node_allocatable.clone(),
        };
        let built = penv::container_env(&self.pod, c, source, &ctx).await.map_err(|e| e.to_string())?;
        for w in &built.warnings {
            self.event(Some(&c.name), true, penv::INVALID_ENV_NAMES_REASON, w.clone()).await;
        }
        let env = built.vars;
        let mut mounts: Vec<Mount> = match &self.volumes {
            Some(v) => volumes::container_mounts(&self.pod, c, v, &env).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        let tm_path = c.termination_message_path.clone().unwrap_or_else(|| "/dev/termination-log".into());
        if !tm_path.is_empty() {
            let file = convert::termination_message_file(&self.shared.config, &self.pod, &c.name, attempt);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            }
            std::fs::write(&file, b"").map_err(|e| format!("creating {}: {e}", file.display()))?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666));
            mounts.push(Mount {
                container_path: PathBuf::from(tm_path),
                host_path: Some(file),
                readonly: false,
                tmpfs: None,
                propagation: Default::default(),
            });
        }
        let lookup = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let expand = |v: &Vec<String>| -> Vec<String> { v.iter().map(|s| penv::expand(s, lookup)).collect() };
        Ok(ContainerConfig {
            name: c.name.clone(),
            attempt,
            image: image.to_string(),
            command: c.command.as_ref().map(expand).unwrap_or_default(),
            args: c.args.as_ref().map(expand).unwrap_or_default(),
            working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
            env,
            mounts,
            labels: convert::container_labels(&self.pod, &c.name),
            annotations: Default::default(),
            log_path: PathBuf::from(&c.name).join(format!("{attempt}.log")),
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            tty: c.tty.unwrap_or(false),
            resources: convert::container_resources(&self.pod, c, self.shared.node_memory),
            security,
        })
    }

    /// Stop every running container (no hooks), e.g. past the active deadline.
    async fn kill_all(&mut self, grace: Duration) {
        let running: Vec<ContainerStatus> =
            self.containers.values().filter(|c| c.state == RtState::Running).cloned().collect();
        for c in running {
            self.event(Some(&c.name), false, "Killing", format!("Stopping container {}", c.name)).await;
            if let Err(e) = self.shared.runtime.stop_container(&c.id, grace).await {
                tracing::warn!(pod = %self.key(), error = %e, "stopping a container");
            }
        }
    }

    /// A pod in a terminal phase: stop whatever still runs (sidecars) and release the
    /// sandbox's network; containers stay for their logs until the pod is deleted.
    async fn stop_terminal(&mut self) -> bool {
        let running = self.containers.values().any(|c| c.state == RtState::Running);
        if running {
            self.kill_all(self.grace_period()).await;
            return true;
        }
        if let Some(sb) = &self.sandbox
            && sb.state == SandboxState::Ready
        {
            if let Err(e) = self.shared.runtime.stop_pod_sandbox(&sb.id).await {
                tracing::warn!(pod = %self.key(), error = %e, "stopping the sandbox");
            }
            return true;
        }
        false
    }

    /// Graceful termination (deletion): stop containers within the grace period (regular
    /// ones first, then sidecars), remove the sandbox and the pod's files, write the final
    /// status and delete the pod for good. Without `in_api` (pod gone), no API writes.
    async fn terminate(&mut self, in_api: bool) {
        self.observe().await;
        self.view.terminating = true;
        let grace = self.grace_period();
        let deadline = Instant::now() + grace;
        let spec = self.pod.spec.clone().unwrap_or_default();
        let sidecars: Vec<String> =
            spec.init_containers.iter().flatten().filter(|c| is_sidecar(c)).map(|c| c.name.clone()).collect();
        let running: Vec<ContainerStatus> =
            self.containers.values().filter(|c| c.state == RtState::Running).cloned().collect();
        let (side, regular): (Vec<_>, Vec<_>) = running.into_iter().partition(|c| sidecars.contains(&c.name));
        for group in [regular, side] {
            let pod = self.pod.clone();
            let pod_ip = self.pod_ip();
            let stops = group.iter().map(|c| {
                let rt = self.shared.runtime.clone();
                let id = c.id.clone();
                let spec = self.spec_of(&c.name);
                let pod = &pod;
                async move {
                    let mut hook_error = None;
                    if let Some(spec) = &spec
                        && let Some(hook) = spec.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref())
                    {
                        let target = Target { container_id: &id, container: spec, pod_ip };
                        let left = deadline.saturating_duration_since(Instant::now());
                        if let Err(e) = probe::run_hook(hook, pod, &target, rt.as_ref(), left).await {
                            hook_error = Some((spec.name.clone(), e.to_string()));
                        }
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    (rt.stop_container(&id, left).await, hook_error)
                }
            });
            for c in &group {
                self.event(Some(&c.name), false, "Killing", format!("Stopping container {}", c.name)).await;
            }
            for (r, hook_error) in futures::future::join_all(stops).await {
                if let Err(e) = r {
                    tracing::warn!(pod = %self.key(), error = %e, "stopping a container");
                }
                if let Some((name, msg)) = hook_error {
                    self.event(Some(&name), true, probe::FAILED_PRE_STOP_HOOK, msg).await;
                }
            }
        }
        self.observe().await;
        if in_api {
            self.write_status().await;
        }
        let mut sandboxes: Vec<String> = self.stale_sandboxes.drain(..).collect();
        sandboxes.extend(self.sandbox.take().map(|s| s.id));
        for id in sandboxes {
            let _ = self.shared.runtime.stop_pod_sandbox(&id).await;
            if let Err(e) = self.shared.runtime.remove_pod_sandbox(&id).await {
                tracing::warn!(pod = %self.key(), error = %e, "removing the sandbox");
            }
        }
        for id in self.containers.keys() {
            let _ = self.shared.runtime.remove_container(id).await;
        }
        self.containers.clear();
        for (_, stop) in self.probers.drain() {
            stop.cancel();
        }
        let config = &self.shared.config;
        let pod_dir = convert::pod_dir(config, &self.pod);
        if let Err(e) = volumes::teardown(&pod_dir).await {
            tracing::warn!(pod = %self.key(), dir = %pod_dir.display(), error = %e, "removing the pod's volumes");
        }
        let logs = convert::log_directory(config, &self.pod);
        if let Err(e) = remove_dir(&logs) {
            tracing::warn!(pod = %self.key(), dir = %logs.display(), error = %e, "removing pod logs");
        }
        self.shared.registry.remove(&self.pod);
        if in_api {
            final_delete(&self.shared.client, &self.pod).await;
        }
    }
}

/// A reference to the pod for its events.
pub(crate) fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        // Not the resourceVersion: repeats of an event must fold into one series.
        resource_version: None,
        field_path: None,
    }
}

/// Record an event about `reference`; a failure is only logged (events are best effort).
pub(crate) async fn record(
    recorder: &Recorder,
    reference: &ObjectReference,
    warning: bool,
    reason: &str,
    note: String,
) {
    let ev = Event {
        type_: if warning { EventType::Warning } else { EventType::Normal },
        reason: reason.into(),
        note: Some(note),
        action: reason.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&ev, reference).await {
        tracing::debug!(reason, error = %e, "recording an event failed");
    }
}

/// Delete the pod with grace period 0, bound to its uid: the last step of a graceful
/// deletion, as upstream's status manager does once the pod's resources are gone.
pub(crate) async fn final_delete(client: &kube::Client, pod: &Pod) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace(pod));
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    for _ in 0..5 {
        match pods.delete(name(pod), &dp).await {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return,
            Err(e) => {
                let key = format!("{}/{}", namespace(pod), name(pod));
                tracing::warn!(pod = %key, error = %e, "deleting the pod failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Remove a directory tree without following symlinks out of it (a container may have
/// planted some in its volumes); a missing directory is fine.
fn remove_dir(dir: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// The last lines of a CRI log file, contents only (for `FallbackToLogsOnError`).
fn tail_log(path: &std::path::Path) -> String {
    let Ok(text) = std::fs::read(path) else { return String::new() };
    let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
    let start = lines.len().saturating_sub(FALLBACK_LOG_LINES);
    let mut out = Vec::new();
    for rec in lines[start..].iter().filter_map(|l| skiff_runtime::linux::parse_record(l)) {
        out.extend_from_slice(rec.content);
        if !rec.partial {
            out.push(b'\n');
        }
    }
    let out = String::from_utf8_lossy(&out).into_owned();
    if out.len() > FALLBACK_LOG_BYTES {
        let mut cut = out.len() - FALLBACK_LOG_BYTES;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        return out[cut..].to_string();
    }
    out
}

/// The registry host of an image reference, as Docker normalises it.
fn registry_of(image: &str) -> String {
    skiff_runtime::image::registry_of(image).unwrap_or_else(|| "docker.io".to_string())
}

/// Credentials for `registry` from a docker config secret.
fn docker_auth(secret: &Secret, registry: &str) -> Option<AuthConfig> {
    use base64::Engine;
    let data = secret.data.as_ref()?;
    let config: serde_json::Value = if let Some(b) = data.get(".dockerconfigjson") {
        serde_json::from_slice::<serde_json::Value>(&b.0).ok()?.get("auths")?.clone()
    } else {
        serde_json::from_slice(&data.get(".dockercfg")?.0).ok()?
    };
    let auths = config.as_object()?;
    let host_of = |k: &str| {
        let k = k.trim_start_matches("https://").trim_start_matches("http://");
        let k = k.split('/').next().unwrap_or(k);
        if k == "index.docker.io" || k == "registry-1.docker.io" { "docker.io".to_string() } else { k.to_string() }
    };
    let entry = auths.iter().find(|(k, _)| host_of(k) == registry)?.1;
    let mut auth = AuthConfig {
        username: entry.get("username").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
        password: entry.get("password").and_then(|v| v.as_str()).unwrap_or_default().to_string(),
        identity_token: entry.get("identitytoken").and_then(|v| v.as_str()).map(str::to_string),
    };
    if auth.username.is_empty()
        && let Some(a) = entry.get("auth").and_then(|v| v.as_str())
        && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(a)
        && let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':')
    {
        auth.username = u.to_string();
        auth.password = p.to_string();
    }
    Some(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_and_docker_auth() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1.36"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/busybox"), "127.0.0.1:5000");
        assert_eq!(registry_of("localhost/x"), "localhost");
        let secret: Secret = serde_json::from_value(json!({
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64_of(r#"{"auths": {"127.0.0.1:5000": {"auth": "dXNlcjpwYXNz"}}}"#)},
        }))
        .unwrap();
        let a = docker_auth(&secret, "127.0.0.1:5000").unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("user", "pass"));
        assert!(docker_auth(&secret, "docker.io").is_none());
    }

    fn base64_of(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn fallback_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        std::fs::write(&p, "2024-01-01T00:00:00Z stderr P part\n2024-01-01T00:00:00Z stderr F ial\n2024-01-01T00:00:01Z stdout F boom\n").unwrap();
        assert_eq!(tail_log(&p), "partial\nboom\n");
    }
}
