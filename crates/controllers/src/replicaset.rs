//! The ReplicaSet controller — and, over the same code, the ReplicationController controller
//! (the legacy core/v1 workload): keeps `spec.replicas` active pods matching the selector.
//!
//! As upstream (`pkg/controller/replicaset`): pods are found through their controller
//! reference (orphans that match the selector are adopted, owned pods that no longer match
//! are released); surplus pods go in [`pods::deletion_order`]; missing pods are created in
//! slow-start batches (1, 2, 4, …) so a failing template costs one error, not hundreds; and
//! **expectations** remember what this controller has just created or deleted, so it does not
//! act again on a store that has not caught up with its own writes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informer::{Change, Informer};
use crate::pods::{self, controller_of, selector_matches};
use crate::queue::WorkQueue;
use crate::{Error, Key};

/// Most pods created or deleted in one sync (upstream's `burstReplicas`).
const BURST: usize = 500;
/// Expectations older than this are assumed lost (a watch event never came).
const EXPECTATIONS_TTL: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Expectations {
    /// Pods we created that the store has not shown yet.
    adds: HashSet<String>,
    /// Pods we deleted that the store still shows as live.
    dels: HashSet<String>,
    at: Option<Instant>,
}

/// A workload the ReplicaSet logic runs: ReplicaSets and ReplicationControllers, whose spec
/// and status have the same shape (an RC's selector is a plain label map).
pub(crate) trait Replicated:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The reporting controller of its events.
    const CONTROLLER: &'static str;
    /// The object in ReplicaSet form.
    fn as_replica_set(&self) -> ReplicaSet;
}

impl Replicated for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";
    fn as_replica_set(&self) -> ReplicaSet {
        self.clone()
    }
}

impl Replicated for ReplicationController {
    const CONTROLLER: &'static str = "replication-controller";
    fn as_replica_set(&self) -> ReplicaSet {
        let spec = self.spec.clone().unwrap_or_default();
        // An RC without a selector selects its template's labels (upstream defaulting).
        let selector = spec
            .selector
            .clone()
            .or_else(|| spec.template.as_ref().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone()));
        let status = self.status.clone().map(|st| ReplicaSetStatus {
            replicas: st.replicas,
            fully_labeled_replicas: st.fully_labeled_replicas,
            ready_replicas: st.ready_replicas,
            available_replicas: st.available_replicas,
            observed_generation: st.observed_generation,
            terminating_replicas: None,
            conditions: st.conditions.map(|cs| {
                cs.into_iter()
                    .map(|c| ReplicaSetCondition {
                        type_: c.type_,
                        status: c.status,
                        reason: c.reason,
                        message: c.message,
                        last_transition_time: c.last_transition_time,
                    })
                    .collect()
            }),
        });
        ReplicaSet {
            metadata: self.metadata.clone(),
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                replicas: spec.replicas,
                min_ready_seconds: spec.min_ready_seconds,
                selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: selector,
                    match_expressions: None,
                },
                template: spec.template,
            }),
            status,
        }
    }
}

pub(crate) struct ReplicaSetController<W: Replicated = ReplicaSet> {
    client: kube::Client,
    sets: Informer<W>,
    pods: Informer<Pod>,
    queue: WorkQueue<Key>,
    expectations: Mutex<HashMap<Key, Expectations>>,
    events: crate::events::Events,
}

impl<W: Replicated> ReplicaSetController<W> {
    pub(crate) fn new(client: kube::Client, sets: Informer<W>, pods: Informer<Pod>) -> Arc<Self> {
        let c = Arc::new(ReplicaSetController {
            events: crate::events::Events::new(client.clone(), W::CONTROLLER),
            client,
            sets: sets.clone(),
            pods: pods.clone(),
            queue: WorkQueue::new(),
            expectations: Mutex::default(),
        });
        let q = c.queue.clone();
        sets.on_change(move |ch| q.add(Key::of(ch.object())));
        let weak = Arc::downgrade(&c);
        pods.on_change(move |ch| {
            if let Some(c) = weak.upgrade() {
                c.pod_changed(ch);
            }
        });
        c
    }

    fn pod_changed(&self, ch: Change<'_, Pod>) {
        let pod = ch.object();
        let ns = pod.namespace().unwrap_or_default();
        match controller_of(&pod.metadata) {
            Some(r) if r.kind == W::kind(&()) => self.queue.add(Key::new(&ns, &r.name)),
            Some(_) => {}
            None if pod.metadata.deletion_timestamp.is_none() => {
                // An orphan: every ReplicaSet that selects it may adopt it.
                for w in self.sets.in_namespace(&ns) {
                    let rs = w.as_replica_set();
                    if rs.spec.as_ref().is_some_and(|s| selector_matches(&s.selector, pod.metadata.labels.as_ref())) {
                        self.queue.add(Key::of(w.as_ref()));
                    }
                }
            }
            None => {}
        }
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize, shutdown: CancellationToken) {
        self.sets.synced().await;
        self.pods.synced().await;
        crate::run_workers("replicaset", self.queue.clone(), workers, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    fn expectations_met(&self, key: &Key) -> bool {
        let mut all = self.expectations.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = all.get_mut(key) else { return true };
        let store = self.pods.store();
        e.adds.retain(|name| store.get(&ObjectRef::new(name).within(&key.namespace)).is_none());
        e.dels.retain(|name| {
            store
                .get(&ObjectRef::new(name).within(&key.namespace))
                .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
        });
        let met = (e.adds.is_empty() && e.dels.is_empty()) || e.at.is_some_and(|t| t.elapsed() > EXPECTATIONS_TTL);
        if met {
            all.remove(key);
        }
        met
    }

    fn expect(&self, key: &Key, adds: impl IntoIterator<Item = String>, dels: impl IntoIterator<Item = String>) {
        let mut all = self.expectations.lock().unwrap_or_else(|e| e.into_inner());
        let e = all.entry(key.clone()).or_default();
        e.adds.extend(adds);
        e.dels.extend(dels);
        e.at = Some(Instant::now());
    }

    async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let Some(owner) = self.sets.store().get(&ObjectRef::new(&key.name).within(&key.namespace)) else {
            self.expectations.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            return Ok(None);
        };
        let owner = owner.as_ref();
        let rs = owner.as_replica_set();
        if !self.expectations_met(key) {
            // The pod events of our own writes will queue this key again.
            return Ok(Some(Duration::from_secs(1)));
        }
        let Some(spec) = rs.spec.as_ref() else { return Ok(None) };
        let uid = rs.uid().unwrap_or_default();
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), &key.namespace);
        let mut owned = Vec::new();
        for pod in self.pods.in_namespace(&key.namespace) {
            let matches = selector_matches(&spec.selector, pod.metadata.labels.as_ref());
            match controller_of(&pod.metadata) {
                Some(r) if r.uid == uid => {
                    if matches || rs.metadata.deletion_timestamp.is_some() {
                        owned.push(pod);
                    } else {
                        release(&pods_api, &pod, &uid).await?;
                    }
                }
                None if matches
                    && rs.metadata.deletion_timestamp.is_none()
                    && pod.metadata.deletion_timestamp.is_none() =>
                {
                    match adopt(&pods_api, &pod, owner).await {
                        Ok(p) => owned.push(Arc::new(p)),
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 || s.code == 422 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => {}
            }
        }
        let active: Vec<Arc<Pod>> = owned.iter().filter(|p| pods::is_active(p)).cloned().collect();
        let mut failure = None;
        if rs.metadata.deletion_timestamp.is_none()
            && let Err(e) = self.manage(key, owner, &rs, &active, &pods_api).await
        {
            failure = Some(e);
        }
        let requeue = self.update_status(owner, &rs, &active, failure.as_ref()).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(requeue),
        }
    }

    /// Create or delete pods so that `replicas` are active.
    async fn manage(
        &self,
        key: &Key,
        owner: &W,
        rs: &ReplicaSet,
        active: &[Arc<Pod>],
        api: &Api<Pod>,
    ) -> Result<(), Error> {
        let want = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
        if active.len() < want {
            let missing = (want - active.len()).min(BURST);
            let template = pod_from_template(owner, rs)?;
            let pp = PostParams::default();
            let mut created = 0;
            let mut batch = 1;
            while created < missing {
                let n = batch.min(missing - created);
                let results = futures::future::join_all((0..n).map(|_| api.create(&pp, &template))).await;
                let mut names = Vec::new();
                let mut first_err = None;
                let mut refs = Vec::new();
                for r in results {
                    match r {
                        Ok(p) => {
                            names.push(p.name_any());
                            refs.push((p.name_any(), p.object_ref(&())));
                        }
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                }
                for (n, r) in refs {
                    self.events
                        .publish_related(owner, Some(r), false, "SuccessfulCreate", format!("Created pod: {n}"))
                        .await;
                }
                if let Some(kube::Error::Api(s)) = &first_err {
                    self.events.publish(owner, true, "FailedCreate", format!("Error creating: {}", s.message)).await;
                }
                created += names.len();
                self.expect(key, names, []);
                if let Some(e) = first_err {
                    return Err(Error::Create(e));
                }
                batch *= 2;
            }
        } else if active.len() > want {
            let mut victims: Vec<Arc<Pod>> = active.to_vec();
            victims.sort_by(|a, b| pods::deletion_order(a, b));
            victims.truncate((active.len() - want).min(BURST));
            let names: Vec<String> = victims.iter().map(|p| p.name_any()).collect();
            self.expect(key, [], names.clone());
            let results = futures::future::join_all(victims.iter().map(|p| {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions { uid: p.uid(), resource_version: None }),
                    ..DeleteParams::default()
                };
                let name = p.name_any();
                async move { api.delete(&name, &dp).await }
            }))
            .await;
            for ((r, name), pod) in results.into_iter().zip(&names).zip(&victims) {
                match r {
                    Ok(_) => {
                        let note = format!("Deleted pod: {name}");
                        self.events
                            .publish_related(owner, Some(pod.object_ref(&())), false, "SuccessfulDelete", note)
                            .await
                    }
                    Err(kube::Error::Api(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Write the observed counts; returns when to look again (a pod becomes available after
    /// `minReadySeconds`).
    async fn update_status(
        &self,
        owner: &W,
        rs: &ReplicaSet,
        active: &[Arc<Pod>],
        failure: Option<&Error>,
    ) -> Result<Option<Duration>, Error> {
        let spec = rs.spec.as_ref();
        let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
        let template_labels = spec
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let now = Timestamp::now();
        let fully_labeled = active
            .iter()
            .filter(|p| {
                let l = p.metadata.labels.clone().unwrap_or_default();
                template_labels.iter().all(|(k, v)| l.get(k) == Some(v))
            })
            .count() as i32;
        let ready = active.iter().filter(|p| pods::is_ready(p)).count() as i32;
        let available = active.iter().filter(|p| pods::is_available(p, min_ready, now)).count() as i32;
        let old = rs.status.clone().unwrap_or_default();
        let mut conditions: Vec<ReplicaSetCondition> = old.conditions.clone().unwrap_or_default();
        match failure {
            Some(e) => {
                let (reason, msg) = match e {
                    Error::Create(_) => ("FailedCreate", e.to_string()),
                    _ => ("FailedDelete", e.to_string()),
                };
                if !conditions.iter().any(|c| c.type_ == "ReplicaFailure" && c.message.as_deref() == Some(&msg)) {
                    conditions.retain(|c| c.type_ != "ReplicaFailure");
                    conditions.push(ReplicaSetCondition {
                        type_: "ReplicaFailure".into(),
                        status: "True".into(),
                        reason: Some(reason.into()),
                        message: Some(msg),
                        last_transition_time: Some(Time(now)),
                    });
                }
            }
            None => conditions.retain(|c| c.type_ != "ReplicaFailure"),
        }
        let status = ReplicaSetStatus {
            replicas: active.len() as i32,
            fully_labeled_replicas: Some(fully_labeled),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            observed_generation: rs.metadata.generation,
            conditions: if conditions.is_empty() { None } else { Some(conditions) },
            terminating_replicas: old.terminating_replicas,
        };
        if status != old {
            let api: Api<W> = Api::namespaced(self.client.clone(), &owner.namespace().unwrap_or_default());
            let patch = json!({"status": status});
            match api.patch_status(&rs.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((min_ready > 0 && ready > available).then(|| Duration::from_secs(1)))
    }
}

/// The pod a ReplicaSet creates: its template, named after it, controlled by it.
fn pod_from_template<W: Replicated>(owner: &W, rs: &ReplicaSet) -> Result<Pod, Error> {
    let template = rs.spec.as_ref().and_then(|s| s.template.clone()).ok_or(Error::NoTemplate)?;
    let mut meta = template.metadata.unwrap_or_default();
    meta.generate_name = Some(format!("{}-", rs.name_any()));
    meta.name = None;
    meta.namespace = rs.namespace();
    meta.owner_references = Some(vec![owner_ref(owner)]);
    Ok(Pod { metadata: meta, spec: template.spec, status: None })
}

pub(crate) fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Take an orphan: add our controller reference (the pod's uid is a precondition, so a
/// recreated pod of the same name is not taken by mistake).
pub(crate) async fn adopt<K: Resource<DynamicType = ()>>(api: &Api<Pod>, pod: &Pod, owner: &K) -> kube::Result<Pod> {
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(owner_ref(owner));
    let patch = json!({"metadata": {"uid": pod.uid(), "ownerReferences": refs}});
    api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(&patch)).await
}

/// Drop our controller reference from a pod we no longer select.
async fn release(api: &Api<Pod>, pod: &Pod, uid: &str) -> Result<(), Error> {
    let refs: Vec<_> = pod.metadata.owner_references.iter().flatten().filter(|r| r.uid != uid).cloned().collect();
    let refs = if refs.is_empty() { serde_json::Value::Null } else { json!(refs) };
    let patch = json!({"metadata": {"uid": pod.uid(), "ownerReferences": refs}});
    match api.patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) | Err(kube::Error::Api(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
