//! The disruption controller: keeps each PodDisruptionBudget's status — how many of its pods
//! are healthy, how many must be, and how many may be disrupted now — which the eviction
//! subresource (`kubectl drain`) consults. As upstream's `pkg/controller/disruption`:
//! - the expected number of pods comes from the pods' controllers' `spec.replicas` (for
//!   ReplicaSets; other controllers count their pods) when the budget is a percentage or a
//!   `maxUnavailable`, and from the number of selected pods for an integer `minAvailable`;
//! - healthy pods are Ready and not being deleted, minus the ones an eviction just took
//!   (`disruptedPods`, forgotten after two minutes or once the pod is gone);
//! - `disruptionsAllowed = max(0, currentHealthy - desiredHealthy)`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informer::Informer;
use crate::pods::{self, controller_of, selector_matches};
use crate::queue::WorkQueue;
use crate::{Error, Key};

const DISRUPTED_TTL_SECONDS: i64 = 120;

pub(crate) struct DisruptionController {
    client: kube::Client,
    budgets: Informer<PodDisruptionBudget>,
    pods: Informer<Pod>,
    sets: Informer<ReplicaSet>,
    queue: WorkQueue<Key>,
}

impl DisruptionController {
    pub(crate) fn new(
        client: kube::Client,
        budgets: Informer<PodDisruptionBudget>,
        pods: Informer<Pod>,
        sets: Informer<ReplicaSet>,
    ) -> Arc<Self> {
        let c = Arc::new(DisruptionController {
            client,
            budgets: budgets.clone(),
            pods: pods.clone(),
            sets: sets.clone(),
            queue: WorkQueue::new(),
        });
        let q = c.queue.clone();
        budgets.on_change(move |ch| q.add(Key::of(ch.object())));
        let weak = Arc::downgrade(&c);
        pods.on_change(move |ch| {
            let Some(c) = weak.upgrade() else { return };
            let pod = ch.object();
            let ns = pod.namespace().unwrap_or_default();
            for b in c.budgets.in_namespace(&ns) {
                if selects(&b, pod) {
                    c.queue.add(Key::of(b.as_ref()));
                }
            }
        });
        let weak = Arc::downgrade(&c);
        sets.on_change(move |ch| {
            let Some(c) = weak.upgrade() else { return };
            let ns = ch.object().namespace().unwrap_or_default();
            for b in c.budgets.in_namespace(&ns) {
                c.queue.add(Key::of(b.as_ref()));
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.budgets.start(shutdown.clone());
        self.budgets.synced().await;
        self.pods.synced().await;
        self.sets.synced().await;
        crate::run_workers("disruption", self.queue.clone(), 2, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let Some(pdb) = self.budgets.store().get(&ObjectRef::new(&key.name).within(&key.namespace)) else {
            return Ok(None);
        };
        let spec = pdb.spec.clone().unwrap_or_default();
        let selected: Vec<Arc<Pod>> =
            self.pods.in_namespace(&key.namespace).into_iter().filter(|p| selects(&pdb, p)).collect();
        let now = Timestamp::now();
        let old = pdb.status.clone().unwrap_or_default();
        // Evicted pods still around count as gone for a while.
        let mut disrupted: BTreeMap<String, Time> = BTreeMap::new();
        let mut requeue = None;
        for (name, t) in old.disrupted_pods.clone().unwrap_or_default() {
            let live = selected.iter().any(|p| p.name_any() == name && p.metadata.deletion_timestamp.is_none());
            let age = now.as_second() - t.0.as_second();
            if live && age < DISRUPTED_TTL_SECONDS {
                requeue = Some(Duration::from_secs((DISRUPTED_TTL_SECONDS - age).max(1) as u64));
                disrupted.insert(name, t);
            }
        }
        let healthy = selected
            .iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none() && pods::is_ready(p) && !disrupted.contains_key(&p.name_any())
            })
            .count() as i32;
        let (expected, desired) = match (&spec.min_available, &spec.max_unavailable) {
            (Some(IntOrString::Int(n)), None) => (selected.len() as i32, *n),
            (min, max) => {
                let expected = self.expected_count(&selected);
                let desired = match (min, max) {
                    (Some(IntOrString::String(p)), _) => percent(p, expected, true),
                    (_, Some(IntOrString::Int(n))) => (expected - n).max(0),
                    (_, Some(IntOrString::String(p))) => (expected - percent(p, expected, true)).max(0),
                    _ => 0,
                };
                (expected, desired)
            }
        };
        let allowed = (healthy - desired).max(0);
        let (status_word, reason, message) =
            if allowed > 0 { ("True", "SufficientPods", "") } else { ("False", "InsufficientPods", "") };
        let mut conditions = old.conditions.clone().unwrap_or_default();
        let prev = conditions.iter().position(|c| c.type_ == "DisruptionAllowed");
        let changed = prev.is_none_or(|i| conditions[i].status != status_word || conditions[i].reason != reason);
        if changed {
            let c = Condition {
                type_: "DisruptionAllowed".into(),
                status: status_word.into(),
                reason: reason.into(),
                message: message.into(),
                last_transition_time: Time(now),
                observed_generation: pdb.metadata.generation,
            };
            match prev {
                Some(i) => conditions[i] = c,
                None => conditions.push(c),
            }
        }
        let status = PodDisruptionBudgetStatus {
            current_healthy: healthy,
            desired_healthy: desired,
            disruptions_allowed: allowed,
            expected_pods: expected,
            observed_generation: pdb.metadata.generation,
            disrupted_pods: if disrupted.is_empty() { None } else { Some(disrupted) },
            conditions: Some(conditions),
        };
        if status != old {
            let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &key.namespace);
            // A full status (not a merge): disruptedPods entries must be removable.
            let patch = json!({"status": status});
            match api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(requeue)
    }

    /// The replicas the selected pods' controllers want (each controller once); pods without
    /// a ReplicaSet controller count as one each.
    fn expected_count(&self, selected: &[Arc<Pod>]) -> i32 {
        let mut seen = HashSet::new();
        let mut total = 0;
        for p in selected {
            match controller_of(&p.metadata).filter(|r| r.kind == "ReplicaSet") {
                Some(r) => {
                    if seen.insert(r.uid.clone()) {
                        let ns = p.namespace().unwrap_or_default();
                        total += self
                            .sets
                            .store()
                            .get(&ObjectRef::new(&r.name).within(&ns))
                            .and_then(|rs| rs.spec.as_ref().and_then(|s| s.replicas))
                            .unwrap_or(1);
                    }
                }
                None => total += 1,
            }
        }
        total
    }
}

fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    // policy/v1: a null selector selects nothing, an empty one everything.
    pdb.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|sel| selector_matches(sel, pod.metadata.labels.as_ref()))
}

/// `pct`% of `of`, rounded up or down.
fn percent(pct: &str, of: i32, round_up: bool) -> i32 {
    let p: f64 = pct.trim_end_matches('%').parse().unwrap_or(0.0);
    let v = p * f64::from(of) / 100.0;
    if round_up { v.ceil() as i32 } else { v.floor() as i32 }
}
