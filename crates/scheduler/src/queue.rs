//! The scheduling queue, upstream's three sub-queues:
//! - **active**: ready to schedule, highest `spec.priority` first, then oldest;
//! - **backoff**: failed recently, waiting 1 s doubling per attempt up to 10 s;
//! - **unschedulable**: no node fitted; parked until a cluster event that may help (a node
//!   added or changed, a pod deleted, …) or at the latest 5 minutes.
//!
//! A popped pod is *in flight* until the caller reports the outcome. Events that arrive while a
//! pod is in flight are remembered, so a pod that failed against stale state goes to backoff
//! rather than being parked. Time is `tokio::time::Instant` so tests can pause it.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use crate::cache::pod_key;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream `podMaxInUnschedulablePodsDuration`.
pub(crate) const MAX_UNSCHEDULABLE_DURATION: Duration = Duration::from_secs(5 * 60);

/// A pod in the queue with its scheduling history.
#[derive(Clone, Debug)]
pub(crate) struct QueuedPod {
    pub(crate) pod: Arc<Pod>,
    pub(crate) key: String,
    /// When the pod last entered the queue (orders equal priorities; backoff counts from it).
    pub(crate) timestamp: Instant,
    /// Scheduling attempts so far.
    pub(crate) attempts: u32,
    /// Plugins that rejected the pod last time (decides which events can help it).
    pub(crate) unschedulable_plugins: BTreeSet<&'static str>,
}

impl QueuedPod {
    fn priority(&self) -> i32 {
        self.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }

    fn backoff_expiry(&self) -> Instant {
        let mut d = INITIAL_BACKOFF;
        for _ in 1..self.attempts {
            d = (d * 2).min(MAX_BACKOFF);
        }
        self.timestamp + d
    }
}

/// Which cluster change happened, for deciding which parked pods to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClusterEvent {
    /// A node was added, or changed in a way that matters for scheduling.
    NodeChange,
    /// A bound pod went away (frees resources, ports, affinity or spread slots).
    AssignedPodDelete,
    /// A bound pod appeared or its labels changed (affinity and spreading may now pass).
    AssignedPodAdd,
}

impl ClusterEvent {
    /// Whether this event can make a pod rejected by `plugins` schedulable.
    fn may_help(self, plugins: &BTreeSet<&'static str>) -> bool {
        use crate::plugins::{inter_pod_affinity, node_ports, node_resources_fit, pod_topology_spread};
        match self {
            ClusterEvent::NodeChange => true,
            ClusterEvent::AssignedPodDelete => {
                plugins.is_empty()
                    || plugins.iter().any(|p| {
                        [
                            node_resources_fit::NAME,
                            node_ports::NAME,
                            inter_pod_affinity::NAME,
                            pod_topology_spread::NAME,
                        ]
                        .contains(p)
                    })
            }
            ClusterEvent::AssignedPodAdd => {
                plugins.is_empty()
                    || plugins.iter().any(|p| [inter_pod_affinity::NAME, pod_topology_spread::NAME].contains(p))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active,
    Backoff,
    Unschedulable,
}

type ActiveKey = (Reverse<i32>, Instant, u64, String);

/// The queue. All operations are synchronous; the scheduler loop owns it.
#[derive(Debug, Default)]
pub(crate) struct SchedulingQueue {
    pods: HashMap<String, (QueuedPod, Place, u64)>,
    active: BTreeSet<ActiveKey>,
    backoff: BTreeSet<(Instant, u64, String)>,
    unschedulable: BTreeSet<(Instant, u64, String)>,
    /// Popped and not yet reported back: key → (pod, cycle it was popped in).
    in_flight: HashMap<String, (QueuedPod, u64)>,
    seq: u64,
    cycle: u64,
    /// The cycle during which the last "move" cluster event happened.
    move_request_cycle: u64,
}

impl SchedulingQueue {
    fn insert(&mut self, qp: QueuedPod, place: Place, now: Instant) {
        self.seq += 1;
        let seq = self.seq;
        match place {
            Place::Active => {
                self.active.insert((Reverse(qp.priority()), qp.timestamp, seq, qp.key.clone()));
            }
            Place::Backoff => {
                self.backoff.insert((qp.backoff_expiry(), seq, qp.key.clone()));
            }
            Place::Unschedulable => {
                self.unschedulable.insert((now, seq, qp.key.clone()));
            }
        }
        self.pods.insert(qp.key.clone(), (qp, place, seq));
    }

    fn take(&mut self, key: &str) -> Option<(QueuedPod, Place, Instant)> {
        let (qp, place, seq) = self.pods.remove(key)?;
        let mut since = qp.timestamp;
        match place {
            Place::Active => {
                self.active.remove(&(Reverse(qp.priority()), qp.timestamp, seq, qp.key.clone()));
            }
            Place::Backoff => {
                self.backoff.remove(&(qp.backoff_expiry(), seq, qp.key.clone()));
            }
            Place::Unschedulable => {
                if let Some(e) = self.unschedulable.iter().find(|e| e.1 == seq).cloned() {
                    since = e.0;
                    self.unschedulable.remove(&e);
                }
            }
        }
        Some((qp, place, since))
    }

    /// A new or updated pending pod. New pods go to active; an update of a parked pod that
    /// changed what scheduling looks at (spec, labels, annotations) retries it.
    pub(crate) fn add_or_update(&mut self, pod: Arc<Pod>, now: Instant) {
        let key = pod_key(&pod);
        if let Some((qp, _)) = self.in_flight.get_mut(&key) {
            qp.pod = pod;
            return;
        }
        match self.take(&key) {
            None => {
                let qp = QueuedPod { pod, key, timestamp: now, attempts: 0, unschedulable_plugins: BTreeSet::new() };
                self.insert(qp, Place::Active, now);
            }
            Some((mut qp, place, since)) => {
                let changed = scheduling_relevant_change(&qp.pod, &pod);
                qp.pod = pod;
                match place {
                    Place::Unschedulable if changed => {
                        let to = if qp.backoff_expiry() > now { Place::Backoff } else { Place::Active };
                        self.insert(qp, to, now);
                    }
                    Place::Unschedulable => {
                        // Keep the original parking time so the 5-minute limit still applies.
                        self.insert(qp, Place::Unschedulable, since);
                    }
                    other => self.insert(qp, other, now),
                }
            }
        }
    }

    /// The pod was deleted, bound by someone else, or is no longer ours.
    pub(crate) fn delete(&mut self, key: &str) {
        self.take(key);
        self.in_flight.remove(key);
    }

    /// Moves due pods: backoff → active when the backoff expired, unschedulable → active /
    /// backoff after [`MAX_UNSCHEDULABLE_DURATION`].
    pub(crate) fn flush(&mut self, now: Instant) {
        while let Some(first) = self.backoff.first().cloned() {
            if first.0 > now {
                break;
            }
            if let Some((qp, _, _)) = self.take(&first.2) {
                self.insert(qp, Place::Active, now);
            } else {
                self.backoff.remove(&first);
            }
        }
        let stale: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|(since, _, _)| *since + MAX_UNSCHEDULABLE_DURATION <= now)
            .map(|(_, _, k)| k.clone())
            .collect();
        for key in stale {
            self.requeue_parked(&key, now);
        }
    }

    fn requeue_parked(&mut self, key: &str, now: Instant) {
        if let Some((qp, _, _)) = self.take(key) {
            let to = if qp.backoff_expiry() > now { Place::Backoff } else { Place::Active };
            self.insert(qp, to, now);
        }
    }

    /// When [`SchedulingQueue::flush`] next has something to do.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.backoff.first().map(|e| e.0);
        let parked = self.unschedulable.iter().map(|e| e.0 + MAX_UNSCHEDULABLE_DURATION).min();
        [backoff, parked].into_iter().flatten().min()
    }

    /// Retries parked pods that `event` may help.
    pub(crate) fn on_cluster_event(&mut self, event: ClusterEvent, now: Instant) {
        self.move_request_cycle = self.cycle;
        let keys: Vec<String> = self
            .unschedulable
            .iter()
            .map(|(_, _, k)| k.clone())
            .filter(|k| self.pods.get(k).is_some_and(|(qp, _, _)| event.may_help(&qp.unschedulable_plugins)))
            .collect();
        for key in keys {
            self.requeue_parked(&key, now);
        }
    }

    /// Takes the best active pod, if any, marking it in flight.
    pub(crate) fn pop(&mut self) -> Option<QueuedPod> {
        let first = self.active.first()?.clone();
        let (mut qp, _, _) = self.take(&first.3)?;
        self.cycle += 1;
        qp.attempts += 1;
        self.in_flight.insert(qp.key.clone(), (qp.clone(), self.cycle));
        Some(qp)
    }

    /// Whether an active pod is waiting.
    pub(crate) fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// The in-flight pod was bound (or handed off): forget it.
    pub(crate) fn done(&mut self, key: &str) {
        self.in_flight.remove(key);
    }

    /// The in-flight pod failed. `plugins` is empty for errors (bind failures), which go to
    /// backoff; rejections park the pod unless a cluster event arrived meanwhile. Returns the
    /// latest pod object, or `None` if the pod was deleted while in flight.
    pub(crate) fn failed(&mut self, key: &str, plugins: BTreeSet<&'static str>, now: Instant) -> Option<Arc<Pod>> {
        let (mut qp, cycle) = self.in_flight.remove(key)?;
        qp.timestamp = now;
        qp.unschedulable_plugins = plugins;
        let pod = qp.pod.clone();
        let to = if qp.unschedulable_plugins.is_empty() || self.move_request_cycle >= cycle {
            Place::Backoff
        } else {
            Place::Unschedulable
        };
        self.insert(qp, to, now);
        Some(pod)
    }

    /// Where a pod is (tests and diagnostics).
    #[cfg(test)]
    fn place(&self, key: &str) -> Option<Place> {
        self.pods.get(key).map(|(_, p, _)| *p)
    }
}

/// Whether an update may change the scheduling outcome (upstream `isPodUpdated`: anything but
/// status and bookkeeping metadata).
fn scheduling_relevant_change(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

#[cfg(test)]
mod tests;
