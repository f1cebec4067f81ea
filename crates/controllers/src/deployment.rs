//! The Deployment controller: rolls a Deployment's pod template out through ReplicaSets, as
//! upstream's `pkg/controller/deployment`.
//!
//! Each distinct template gets a ReplicaSet named `<deployment>-<pod-template-hash>`, whose
//! selector and pod labels carry the hash so generations never share pods. The ReplicaSet
//! whose template equals the Deployment's (ignoring the hash label) is the *new* one and
//! carries the highest `deployment.kubernetes.io/revision`; going back to an old template
//! (`kubectl rollout undo`) revives that ReplicaSet with a new revision. `RollingUpdate`
//! scales the new one up within `maxSurge` and the old ones down while keeping
//! `replicas - maxUnavailable` pods available; `Recreate` scales old ones to zero and waits
//! for their pods to be gone first. Paused Deployments only report status. Status carries what
//! `kubectl rollout status` reads (observedGeneration, updated/ready/available replicas,
//! `Progressing` with `ProgressDeadlineExceeded`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::informer::Informer;
use crate::pods::{controller_of, selector_matches};
use crate::queue::WorkQueue;
use crate::replicaset::owner_ref;
use crate::{Error, Key};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";

/// When the last write was made, and (ReplicaSet name, resourceVersion) of each.
type PendingWrites = (std::time::Instant, Vec<(String, u64)>);

pub(crate) struct DeploymentController {
    client: kube::Client,
    deployments: Informer<Deployment>,
    sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    queue: WorkQueue<Key>,
    /// ReplicaSet writes per Deployment (name, resourceVersion) the informer has not shown
    /// yet: the next sync waits for them, so it never decides twice on the same stale view.
    written: std::sync::Mutex<std::collections::HashMap<Key, PendingWrites>>,
    events: crate::events::Events,
}

impl DeploymentController {
    pub(crate) fn new(
        client: kube::Client,
        deployments: Informer<Deployment>,
        sets: Informer<ReplicaSet>,
        pods: Informer<Pod>,
    ) -> Arc<Self> {
        let c = Arc::new(DeploymentController {
            events: crate::events::Events::new(client.clone(), "deployment-controller"),
            client,
            deployments: deployments.clone(),
            sets: sets.clone(),
            pods: pods.clone(),
            queue: WorkQueue::new(),
            written: Default::default(),
        });
        let q = c.queue.clone();
        deployments.on_change(move |ch| q.add(Key::of(ch.object())));
        let weak = Arc::downgrade(&c);
        sets.on_change(move |ch| {
            let Some(c) = weak.upgrade() else { return };
            let rs = ch.object();
            let ns = rs.namespace().unwrap_or_default();
            match controller_of(&rs.metadata) {
                Some(r) if r.kind == "Deployment" => c.queue.add(Key::new(&ns, &r.name)),
                Some(_) => {}
                None => {
                    for d in c.deployments.in_namespace(&ns) {
                        if d.spec.as_ref().is_some_and(|s| selector_matches(&s.selector, rs.metadata.labels.as_ref())) {
                            c.queue.add(Key::of(d.as_ref()));
                        }
                    }
                }
            }
        });
        // Recreate waits for the old pods to be gone: their deletions wake the Deployment.
        let weak = Arc::downgrade(&c);
        pods.on_change(move |ch| {
            let (crate::informer::Change::Deleted(pod) | crate::informer::Change::Applied(pod)) = ch;
            let Some(c) = weak.upgrade() else { return };
            if let Some(r) = controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") {
                let ns = pod.namespace().unwrap_or_default();
                if let Some(rs) = c.sets.store().get(&ObjectRef::new(&r.name).within(&ns))
                    && let Some(d) = controller_of(&rs.metadata).filter(|r| r.kind == "Deployment")
                    && pod.metadata.deletion_timestamp.is_some()
                {
                    c.queue.add(Key::new(&ns, &d.name));
                }
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize, shutdown: CancellationToken) {
        self.deployments.synced().await;
        self.sets.synced().await;
        self.pods.synced().await;
        crate::run_workers("deployment", self.queue.clone(), workers, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let Some(d) = self.deployments.store().get(&ObjectRef::new(&key.name).within(&key.namespace)) else {
            return Ok(None);
        };
        if !self.writes_observed(key) {
            return Ok(Some(Duration::from_millis(20)));
        }
        let d = d.as_ref().clone();
        let Some(spec) = d.spec.clone() else { return Ok(None) };
        let uid = d.uid().unwrap_or_default();
        let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &key.namespace);
        // The ReplicaSets this Deployment controls (adopting orphans it selects).
        let mut sets: Vec<ReplicaSet> = Vec::new();
        for rs in self.sets.in_namespace(&key.namespace) {
            let matches = selector_matches(&spec.selector, rs.metadata.labels.as_ref());
            match controller_of(&rs.metadata) {
                Some(r) if r.uid == uid => sets.push(rs.as_ref().clone()),
                None if matches
                    && d.metadata.deletion_timestamp.is_none()
                    && rs.metadata.deletion_timestamp.is_none() =>
                {
                    let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                    refs.push(owner_ref(&d));
                    let patch = json!({"metadata": {"uid": rs.uid(), "ownerReferences": refs}});
                    match rs_api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                        Ok(r) => sets.push(r),
                        Err(kube::Error::Api(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => {}
            }
        }
        if d.metadata.deletion_timestamp.is_some() {
            return self.update_status(&d, &sets, None, false).await;
        }
        let paused = spec.paused == Some(true);
        let new_idx = sets.iter().position(|rs| same_template(&d, rs));
        let mut created = false;
        let new_rs = match new_idx {
            Some(i) => {
                let rs = sets.remove(i);
                Some(self.ensure_revision(&d, rs, &sets, &rs_api).await?)
            }
            None if paused => None,
            None => {
                created = true;
                Some(self.create_new_rs(&d, &sets, &rs_api).await?)
            }
        };
        let old: Vec<ReplicaSet> = sets;
        // The Deployment carries its current revision too (`kubectl rollout undo` patches
        // annotations in place and needs them to exist).
        if let Some(rev) = new_rs.as_ref().and_then(|r| r.annotations().get(REVISION).cloned())
            && d.annotations().get(REVISION) != Some(&rev)
        {
            let dapi: Api<Deployment> = Api::namespaced(self.client.clone(), &key.namespace);
            let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
            dapi.patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        if !paused && let Some(new_rs) = &new_rs {
            let replicas = spec.replicas.unwrap_or(1);
            let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
            if recreate {
                self.recreate(&d, new_rs, &old, replicas, &rs_api).await?;
            } else {
                self.rolling(&d, new_rs, &old, replicas, &rs_api).await?;
            }
            self.cleanup_history(&d, &old, &rs_api).await?;
        }
        let all: Vec<ReplicaSet> = self.owned_sets(&key.namespace, &uid);
        let new_name = new_rs.as_ref().map(|r| r.name_any());
        self.update_status(&d, &all, new_name.as_deref(), created).await
    }

    fn writes_observed(&self, key: &Key) -> bool {
        let mut all = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let Some((at, writes)) = all.get_mut(key) else { return true };
        let store = self.sets.store();
        writes.retain(|(name, rv)| {
            store.get(&ObjectRef::new(name).within(&key.namespace)).is_some_and(|rs| {
                rs.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()).is_some_and(|v| v < *rv)
            })
        });
        // A write whose event never arrives (the watch was restarted) is not waited for forever.
        let done = writes.is_empty() || at.elapsed() > Duration::from_secs(5);
        if done {
            all.remove(key);
        }
        done
    }

    fn wrote(&self, d: &Deployment, rs: &ReplicaSet) {
        let Some(rv) = rs.metadata.resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()) else { return };
        let mut all = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let entry = all.entry(Key::of(d)).or_insert_with(|| (std::time::Instant::now(), Vec::new()));
        entry.0 = std::time::Instant::now();
        entry.1.push((rs.name_any(), rv));
    }

    fn owned_sets(&self, ns: &str, uid: &str) -> Vec<ReplicaSet> {
        self.sets
            .in_namespace(ns)
            .into_iter()
            .filter(|rs| controller_of(&rs.metadata).is_some_and(|r| r.uid == uid))
            .map(|rs| rs.as_ref().clone())
            .collect()
    }

    /// The new ReplicaSet must carry the highest revision (it may be an old one revived).
    async fn ensure_revision(
        &self,
        d: &Deployment,
        rs: ReplicaSet,
        old: &[ReplicaSet],
        api: &Api<ReplicaSet>,
    ) -> Result<ReplicaSet, Error> {
        let max_old = old.iter().map(revision).max().unwrap_or(0);
        let current = revision(&rs);
        let mut annotations = BTreeMap::new();
        if current <= max_old {
            annotations.insert(REVISION.to_string(), (max_old + 1).to_string());
            let history = rs.annotations().get(REVISION_HISTORY).cloned();
            let h = match history {
                Some(h) if !h.is_empty() => format!("{h},{current}"),
                _ => current.to_string(),
            };
            annotations.insert(REVISION_HISTORY.to_string(), h);
        }
        for (k, v) in copied_annotations(d) {
            if rs.annotations().get(&k) != Some(&v) {
                annotations.insert(k, v);
            }
        }
        if annotations.is_empty() {
            return Ok(rs);
        }
        let patch = json!({"metadata": {"annotations": annotations}});
        Ok(api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?)
    }

    async fn create_new_rs(
        &self,
        d: &Deployment,
        old: &[ReplicaSet],
        api: &Api<ReplicaSet>,
    ) -> Result<ReplicaSet, Error> {
        let spec = d.spec.as_ref().ok_or(Error::NoTemplate)?;
        let collisions = d.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
        let hash = template_hash(&spec.template, collisions);
        let mut template = spec.template.clone();
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.labels.get_or_insert_with(Default::default).insert(HASH_LABEL.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector.match_labels.get_or_insert_with(Default::default).insert(HASH_LABEL.into(), hash.clone());
        let replicas = spec.replicas.unwrap_or(1);
        let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
        let (surge, _) = surge_and_unavailable(d);
        // A first rollout (nothing old running) starts at full size; otherwise the rolling
        // step decides.
        let old_total: i32 = old.iter().map(spec_replicas).sum();
        let initial = if recreate || old_total > 0 {
            if recreate { 0 } else { (replicas + surge - old_total).clamp(0, replicas) }
        } else {
            replicas
        };
        let mut annotations = copied_annotations(d);
        annotations.insert(REVISION.into(), (old.iter().map(revision).max().unwrap_or(0) + 1).to_string());
        annotations.insert(DESIRED_REPLICAS.into(), replicas.to_string());
        annotations.insert(MAX_REPLICAS.into(), (replicas + surge).to_string());
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {
                "name": format!("{}-{hash}", d.name_any()),
                "namespace": d.namespace(),
                "labels": template.metadata.as_ref().and_then(|m| m.labels.clone()),
                "annotations": annotations,
                "ownerReferences": [owner_ref(d)],
            },
            "spec": {
                "replicas": initial,
                "minReadySeconds": spec.min_ready_seconds.unwrap_or(0),
                "selector": selector,
                "template": template,
            }
        }))
        .map_err(|e| Error::Invalid(e.to_string()))?;
        match api.create(&PostParams::default(), &rs).await {
            Ok(rs) => {
                self.wrote(d, &rs);
                if initial > 0 {
                    let note = format!("Scaled up replica set {} from 0 to {initial}", rs.name_any());
                    self.events.publish(d, false, "ScalingReplicaSet", note).await;
                }
                Ok(rs)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // A ReplicaSet of that name with another template: bump the collision count
                // so the next hash differs (upstream's answer to fnv collisions).
                let dapi: Api<Deployment> = Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
                let patch = json!({"status": {"collisionCount": collisions + 1}});
                dapi.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
                Err(Error::Invalid(format!("replica set {} exists with another template", rs.name_any())))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn scale(&self, api: &Api<ReplicaSet>, rs: &ReplicaSet, replicas: i32, d: &Deployment) -> Result<(), Error> {
        if spec_replicas(rs) == replicas {
            return Ok(());
        }
        let (surge, _) = surge_and_unavailable(d);
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let patch = json!({
            "metadata": {"annotations": {DESIRED_REPLICAS: desired.to_string(), MAX_REPLICAS: (desired + surge).to_string()}},
            "spec": {"replicas": replicas},
        });
        let updated = api.patch(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        self.wrote(d, &updated);
        let from = spec_replicas(rs);
        let dir = if replicas > from { "up" } else { "down" };
        let note = format!("Scaled {dir} replica set {} from {from} to {replicas}", rs.name_any());
        self.events.publish(d, false, "ScalingReplicaSet", note).await;
        Ok(())
    }

    async fn rolling(
        &self,
        d: &Deployment,
        new_rs: &ReplicaSet,
        old: &[ReplicaSet],
        replicas: i32,
        api: &Api<ReplicaSet>,
    ) -> Result<(), Error> {
        let (surge, unavailable) = surge_and_unavailable(d);
        let total: i32 = old.iter().map(spec_replicas).sum::<i32>() + spec_replicas(new_rs);
        // Scale the new one up, within maxSurge.
        let new_replicas = spec_replicas(new_rs);
        let target = if new_replicas > replicas {
            replicas
        } else if total >= replicas + surge {
            new_replicas
        } else {
            (new_replicas + (replicas + surge - total).min(replicas - new_replicas)).max(new_replicas)
        };
        self.scale(api, new_rs, target, d).await?;
        // Scale old ones down, keeping replicas - maxUnavailable available.
        let all_pods = total - new_replicas + target;
        let min_available = replicas - unavailable;
        let new_unavailable = target - new_rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
        let mut budget = all_pods - min_available - new_unavailable;
        if budget <= 0 {
            return Ok(());
        }
        let mut old_sorted: Vec<&ReplicaSet> = old.iter().filter(|r| spec_replicas(r) > 0).collect();
        old_sorted.sort_by_key(|r| (r.metadata.creation_timestamp.as_ref().map(|t| t.0), r.name_any()));
        // Unhealthy old pods first: they do not count as available anyway.
        let mut remaining: BTreeMap<String, i32> =
            old_sorted.iter().map(|r| (r.name_any(), spec_replicas(r))).collect();
        for rs in &old_sorted {
            if budget <= 0 {
                break;
            }
            let avail = rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
            let unhealthy = spec_replicas(rs) - avail;
            if unhealthy <= 0 {
                continue;
            }
            let n = unhealthy.min(budget);
            budget -= n;
            remaining.insert(rs.name_any(), spec_replicas(rs) - n);
        }
        // Then healthy ones, as far as availability allows.
        // An old ReplicaSet just scaled down may still report its former available count
        // until its controller has deleted pods and written status again: it cannot have more
        // available pods than it is asked to keep.
        let available: i32 = old_sorted
            .iter()
            .map(|r| r.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0).min(spec_replicas(r)))
            .sum::<i32>()
            + new_rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
        let mut scale_down = (available - min_available).max(0);
        for rs in &old_sorted {
            let cur = remaining[&rs.name_any()];
            if scale_down <= 0 {
                break;
            }
            let n = cur.min(scale_down);
            scale_down -= n;
            remaining.insert(rs.name_any(), cur - n);
        }
        for rs in old_sorted {
            self.scale(api, rs, remaining[&rs.name_any()], d).await?;
        }
        Ok(())
    }

    async fn recreate(
        &self,
        d: &Deployment,
        new_rs: &ReplicaSet,
        old: &[ReplicaSet],
        replicas: i32,
        api: &Api<ReplicaSet>,
    ) -> Result<(), Error> {
        let mut scaled_any = false;
        for rs in old.iter().filter(|r| spec_replicas(r) > 0) {
            self.scale(api, rs, 0, d).await?;
            scaled_any = true;
        }
        if scaled_any {
            return Ok(());
        }
        // Wait until no pod of an old ReplicaSet is still running.
        let ns = d.namespace().unwrap_or_default();
        let old_uids: Vec<String> = old.iter().filter_map(|r| r.uid()).collect();
        let old_running = self.pods.in_namespace(&ns).iter().any(|p| {
            controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid))
                && !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
        });
        if !old_running {
            self.scale(api, new_rs, replicas, d).await?;
        }
        Ok(())
    }

    /// Delete old, empty ReplicaSets beyond `revisionHistoryLimit` (default 10), oldest first.
    async fn cleanup_history(&self, d: &Deployment, old: &[ReplicaSet], api: &Api<ReplicaSet>) -> Result<(), Error> {
        let limit = d.spec.as_ref().and_then(|s| s.revision_history_limit).unwrap_or(10).max(0) as usize;
        let mut empty: Vec<&ReplicaSet> = old
            .iter()
            .filter(|r| {
                spec_replicas(r) == 0
                    && r.status.as_ref().is_none_or(|s| s.replicas == 0)
                    && r.metadata.deletion_timestamp.is_none()
            })
            .collect();
        if empty.len() <= limit {
            return Ok(());
        }
        empty.sort_by_key(|r| revision(r));
        for rs in &empty[..empty.len() - limit] {
            let dp = DeleteParams {
                preconditions: Some(Preconditions { uid: rs.uid(), resource_version: None }),
                ..Default::default()
            };
            match api.delete(&rs.name_any(), &dp).await {
                Ok(_) | Err(kube::Error::Api(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn update_status(
        &self,
        d: &Deployment,
        all: &[ReplicaSet],
        new_name: Option<&str>,
        created: bool,
    ) -> Result<Option<Duration>, Error> {
        let spec = d.spec.clone().unwrap_or_default();
        let desired = spec.replicas.unwrap_or(1);
        let st = |r: &ReplicaSet| r.status.clone().unwrap_or_default();
        let new_rs = new_name.and_then(|n| all.iter().find(|r| r.name_any() == n));
        let replicas: i32 = all.iter().map(|r| st(r).replicas).sum();
        let updated = new_rs.map(|r| st(r).replicas).unwrap_or(0);
        let ready: i32 = all.iter().map(|r| st(r).ready_replicas.unwrap_or(0)).sum();
        let available: i32 = all.iter().map(|r| st(r).available_replicas.unwrap_or(0)).sum();
        let (_, max_unavailable) = surge_and_unavailable(d);
        let old = d.status.clone().unwrap_or_default();
        let now = Time(Timestamp::now());
        let mut conditions = old.conditions.clone().unwrap_or_default();
        let set = |conds: &mut Vec<DeploymentCondition>, type_: &str, status: &str, reason: &str, message: String| {
            let prev = conds.iter().position(|c| c.type_ == type_);
            let transition = match prev.map(|i| &conds[i]) {
                Some(c) if c.status == status => c.last_transition_time.clone(),
                _ => Some(now.clone()),
            };
            if let Some(i) = prev
                && conds[i].status == status
                && conds[i].reason.as_deref() == Some(reason)
                && conds[i].message.as_deref() == Some(message.as_str())
            {
                return;
            }
            let c = DeploymentCondition {
                type_: type_.into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message),
                last_update_time: Some(now.clone()),
                last_transition_time: transition,
            };
            match prev {
                Some(i) => conds[i] = c,
                None => conds.push(c),
            }
        };
        if available >= desired - max_unavailable {
            set(
                &mut conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            );
        } else {
            set(
                &mut conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            );
        }
        let complete = updated == desired && replicas == desired && available == desired && new_rs.is_some();
        let deadline = spec.progress_deadline_seconds.unwrap_or(600);
        let progressing = conditions.iter().find(|c| c.type_ == "Progressing").cloned();
        let mut requeue = None;
        let rs_name = new_name.unwrap_or_default();
        if spec.paused == Some(true) {
            set(&mut conditions, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused".into());
        } else if progressing.as_ref().is_some_and(|c| c.reason.as_deref() == Some("DeploymentPaused")) {
            set(&mut conditions, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed".into());
        } else if complete {
            set(
                &mut conditions,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
            );
        } else if created {
            set(
                &mut conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                format!("Created new replica set \"{rs_name}\""),
            );
        } else if new_rs.is_some() {
            let moved = old.updated_replicas != Some(updated)
                || old.ready_replicas != Some(ready)
                || old.available_replicas != Some(available)
                || old.replicas != Some(replicas);
            let timed_out = progressing
                .as_ref()
                .and_then(|c| c.last_update_time.as_ref())
                .is_some_and(|t| t.0.as_second() + i64::from(deadline) < now.0.as_second());
            if moved || progressing.is_none() {
                let reason = if progressing.is_none() { "FoundNewReplicaSet" } else { "ReplicaSetUpdated" };
                let msg = if progressing.is_none() {
                    format!("Found new replica set \"{rs_name}\"")
                } else {
                    format!("ReplicaSet \"{rs_name}\" is progressing.")
                };
                set(&mut conditions, "Progressing", "True", reason, msg);
                requeue = Some(Duration::from_secs(u64::try_from(deadline).unwrap_or(600) + 1));
            } else if timed_out {
                set(
                    &mut conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                );
            } else if let Some(t) = progressing.as_ref().and_then(|c| c.last_update_time.as_ref()) {
                let left = t.0.as_second() + i64::from(deadline) + 1 - now.0.as_second();
                requeue = Some(Duration::from_secs(left.max(1) as u64));
            }
        }
        // Keep the upstream order: Available first, then Progressing.
        conditions.sort_by_key(|c| match c.type_.as_str() {
            "Available" => 0,
            "Progressing" => 1,
            _ => 2,
        });
        let status = DeploymentStatus {
            observed_generation: d.metadata.generation,
            replicas: Some(replicas),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            unavailable_replicas: Some((desired - available).max(0)),
            terminating_replicas: old.terminating_replicas,
            collision_count: old.collision_count,
            conditions: Some(conditions),
        };
        if status != old {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), &d.namespace().unwrap_or_default());
            let patch = json!({"status": status});
            match api.patch_status(&d.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        if min_ready > 0 && ready > available {
            requeue = Some(requeue.map_or(Duration::from_secs(1), |r: Duration| r.min(Duration::from_secs(1))));
        }
        Ok(requeue)
    }
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations().get(REVISION).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The Deployment's annotations a ReplicaSet carries (`kubernetes.io/change-cause` is what
/// `kubectl rollout history` shows).
fn copied_annotations(d: &Deployment) -> BTreeMap<String, String> {
    d.annotations()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "kubectl.kubernetes.io/last-applied-configuration"
                    | REVISION
                    | REVISION_HISTORY
                    | DESIRED_REPLICAS
                    | MAX_REPLICAS
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether the ReplicaSet's pod template is the Deployment's, ignoring the hash label.
fn same_template(d: &Deployment, rs: &ReplicaSet) -> bool {
    let strip = |v: Value| -> Value {
        let mut v = v;
        if let Some(labels) = v.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
            labels.remove(HASH_LABEL);
            if labels.is_empty() {
                v["metadata"].as_object_mut().map(|m| m.remove("labels"));
            }
        }
        v
    };
    let a = d.spec.as_ref().map(|s| serde_json::to_value(&s.template).unwrap_or_default());
    let b = rs.spec.as_ref().and_then(|s| s.template.as_ref()).map(|t| serde_json::to_value(t).unwrap_or_default());
    match (a, b) {
        (Some(a), Some(b)) => strip(a) == strip(b),
        _ => false,
    }
}

/// `maxSurge` (rounded up) and `maxUnavailable` (rounded down) as pod counts; both zero is
/// not allowed, so unavailable becomes 1 (upstream's `ResolveFenceposts`).
pub fn surge_and_unavailable(d: &Deployment) -> (i32, i32) {
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    if spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        return (0, 0);
    }
    let ru = spec.strategy.and_then(|s| s.rolling_update).unwrap_or_default();
    let resolve = |v: Option<IntOrString>, round_up: bool| -> i32 {
        match v {
            None => {
                let pct = 25.0 * f64::from(replicas) / 100.0;
                if round_up { pct.ceil() as i32 } else { pct.floor() as i32 }
            }
            Some(IntOrString::Int(n)) => n,
            Some(IntOrString::String(s)) => {
                let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
                let n = pct * f64::from(replicas) / 100.0;
                if round_up { n.ceil() as i32 } else { n.floor() as i32 }
            }
        }
    };
    let surge = resolve(ru.max_surge, true);
    let mut unavailable = resolve(ru.max_unavailable, false);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(replicas))
}

/// The `pod-template-hash`: FNV-1a (32 bit) of the template's JSON and the collision count,
/// written with upstream's `SafeEncodeString` alphabet (no vowels, no look-alike digits).
pub fn template_hash(template: &k8s_openapi::api::core::v1::PodTemplateSpec, collisions: i32) -> String {
    let mut h: u32 = 0x811c9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x01000193);
        }
    };
    feed(&serde_json::to_vec(template).unwrap_or_default());
    if collisions > 0 {
        feed(&collisions.to_le_bytes());
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string().bytes().map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(v: Value) -> Deployment {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn fenceposts() {
        let d = |replicas: i32, ru: Value| {
            deploy(json!({"spec": {"replicas": replicas, "selector": {}, "template": {},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": ru}}}))
        };
        assert_eq!(surge_and_unavailable(&d(10, json!({}))), (3, 2));
        assert_eq!(surge_and_unavailable(&d(3, json!({"maxSurge": 0, "maxUnavailable": 0}))), (0, 1));
        assert_eq!(surge_and_unavailable(&d(4, json!({"maxSurge": "50%", "maxUnavailable": "30%"}))), (2, 1));
        assert_eq!(surge_and_unavailable(&d(1, json!({"maxSurge": 1, "maxUnavailable": 0}))), (1, 0));
    }

    #[test]
    fn hashes_are_stable_and_differ_by_template_and_collisions() {
        let t: k8s_openapi::api::core::v1::PodTemplateSpec =
            serde_json::from_value(json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
        let mut t2 = t.clone();
        t2.spec.as_mut().unwrap().containers[0].image = Some("busybox:1.36".into());
        let h = template_hash(&t, 0);
        assert_eq!(h, template_hash(&t, 0));
        assert_ne!(h, template_hash(&t2, 0));
        assert_ne!(h, template_hash(&t, 1));
        assert!(h.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)), "{h}");
    }
}
