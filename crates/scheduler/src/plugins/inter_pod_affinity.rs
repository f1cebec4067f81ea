//! InterPodAffinity: required pod affinity / anti-affinity of the incoming pod, and existing
//! pods' required anti-affinity against it, by topology domain (filter); preferred terms of both
//! sides, and existing pods' required affinity, weigh domains (score).

use std::collections::HashMap;

use crate::cache::{AffinityTerm, NodeInfo, PodInfo, Snapshot, WeightedTerm};
use crate::framework::Status;

pub(crate) const NAME: &str = "InterPodAffinity";
const AFFINITY_REASON: &str = "node(s) didn't match pod affinity rules";
const ANTI_AFFINITY_REASON: &str = "node(s) didn't match pod anti-affinity rules";
const EXISTING_ANTI_AFFINITY_REASON: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
/// Upstream `hardPodAffinityWeight` default: existing pods' required affinity counts this much
/// when scoring.
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// Counts by topology key and value, looked up without allocating. A pod's terms name few
/// topology keys, so the keys are scanned; the values (a domain per node for `hostname`) are
/// hashed with foldhash, which costs a fraction of SipHash on short strings. These maps live
/// for one scheduling cycle and are rebuilt from every pod in the cluster, so their lookups
/// are the plugin's inner loop.
#[derive(Debug, Default)]
pub(crate) struct Domains(Vec<(String, HashMap<String, i64, foldhash::fast::RandomState>)>);

impl Domains {
    fn add(&mut self, node: &NodeInfo, key: &str, n: i64) {
        let Some(value) = node.labels.get(key) else { return };
        let at = match self.0.iter().position(|(k, _)| k == key) {
            Some(at) => at,
            None => {
                self.0.push((key.to_string(), HashMap::default()));
                self.0.len() - 1
            }
        };
        let values = &mut self.0[at].1;
        match values.get_mut(value.as_str()) {
            Some(count) => *count += n,
            None => {
                values.insert(value.clone(), n);
            }
        }
    }

    /// The count of `node`'s domain for `key`; `None` if the node lacks the label.
    fn of(&self, node: &NodeInfo, key: &str) -> Option<i64> {
        let value = node.labels.get(key)?;
        let values = self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        Some(values.and_then(|m| m.get(value.as_str())).copied().unwrap_or(0))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any of `node`'s labels names a domain with a positive count.
    fn holds(&self, node: &NodeInfo) -> bool {
        self.0
            .iter()
            .any(|(key, values)| node.labels.get(key).is_some_and(|v| values.get(v.as_str()).is_some_and(|n| *n > 0)))
    }

    /// The sum of the counts of `node`'s domains, over every key.
    fn sum(&self, node: &NodeInfo) -> i64 {
        self.0.iter().filter_map(|(key, values)| node.labels.get(key).and_then(|v| values.get(v.as_str()))).sum()
    }
}

/// Counts per topology domain, computed once per cycle.
#[derive(Debug, Default)]
pub(crate) struct FilterState {
    /// Domains where some existing pod's required anti-affinity selects the incoming pod.
    existing_anti_affinity: Domains,
    /// Domains holding pods that match all the incoming pod's required affinity terms.
    affinity: Domains,
    /// Domains holding pods that match one of the incoming pod's anti-affinity terms.
    anti_affinity: Domains,
}

pub(crate) fn pre_filter(pod: &PodInfo, snapshot: &Snapshot) -> FilterState {
    let ns = &snapshot.namespace_labels;
    let mut s = FilterState::default();
    // Without terms of its own, only existing pods' required anti-affinity can keep the pod
    // off a node: visit only nodes that have such pods (upstream does the same).
    let own_terms = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
    for node in snapshot.nodes_in(own_terms, &snapshot.with_required_anti_affinity) {
        for existing in &node.pods {
            for term in &existing.required_anti_affinity {
                if term.matches(pod, ns) {
                    s.existing_anti_affinity.add(node, &term.topology_key, 1);
                }
            }
            if !pod.required_affinity.is_empty() && pod.required_affinity.iter().all(|t| t.matches(existing, ns)) {
                for term in &pod.required_affinity {
                    s.affinity.add(node, &term.topology_key, 1);
                }
            }
            for term in &pod.required_anti_affinity {
                if term.matches(existing, ns) {
                    s.anti_affinity.add(node, &term.topology_key, 1);
                }
            }
        }
    }
    s
}

pub(crate) fn filter(state: &FilterState, pod: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) -> Option<Status> {
    if !satisfies_affinity(state, pod, node, snapshot) {
        return Some(Status::unresolvable(NAME, AFFINITY_REASON));
    }
    let anti =
        pod.required_anti_affinity.iter().any(|t| state.anti_affinity.of(node, &t.topology_key).is_some_and(|n| n > 0));
    if anti {
        return Some(Status::unschedulable(NAME, ANTI_AFFINITY_REASON));
    }
    let existing = !state.existing_anti_affinity.is_empty() && state.existing_anti_affinity.holds(node);
    existing.then(|| Status::unschedulable(NAME, EXISTING_ANTI_AFFINITY_REASON))
}

/// Whether [`filter`] passes `pod` on every node: it has no required terms of its own and no
/// pod in the cluster has required anti-affinity (the nodes [`pre_filter`] would visit).
pub(crate) fn filter_passes_all(pod: &PodInfo, snapshot: &Snapshot) -> bool {
    pod.required_affinity.is_empty()
        && pod.required_anti_affinity.is_empty()
        && snapshot.with_required_anti_affinity.is_empty()
}

/// Whether [`score`] is 0 on every node: the pod has no preferred terms and no node holds pods
/// with terms of their own (the nodes [`pre_score`] would visit).
pub(crate) fn scores_nothing(pod: &PodInfo, snapshot: &Snapshot) -> bool {
    pod.preferred_affinity.is_empty() && pod.preferred_anti_affinity.is_empty() && snapshot.with_affinity.is_empty()
}

fn satisfies_affinity(state: &FilterState, pod: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) -> bool {
    let mut pods_exist = true;
    for term in &pod.required_affinity {
        let Some(n) = state.affinity.of(node, &term.topology_key) else { return false };
        if n <= 0 {
            pods_exist = false;
        }
    }
    // The first pod of a group with affinity to itself: nobody matches yet, so it may go
    // anywhere that has the topology labels.
    pods_exist
        || (state.affinity.is_empty()
            && pod.required_affinity.iter().all(|t| t.matches(pod, &snapshot.namespace_labels)))
}

/// Per-domain preference sums, computed over all pods before scoring.
#[derive(Debug, Default)]
pub(crate) struct ScoreState {
    topology_score: Domains,
}

pub(crate) fn pre_score(pod: &PodInfo, snapshot: &Snapshot) -> ScoreState {
    let ns = &snapshot.namespace_labels;
    let mut s = ScoreState::default();
    let mut add =
        |term: &AffinityTerm, weight: i64, node: &NodeInfo| s.topology_score.add(node, &term.topology_key, weight);
    let weighted = |terms: &[WeightedTerm], target: &PodInfo, sign: i64, add: &mut dyn FnMut(&AffinityTerm, i64)| {
        for t in terms {
            if t.term.matches(target, ns) {
                add(&t.term, sign * t.weight);
            }
        }
    };
    // Without preferred terms of its own, only existing pods' terms weigh: visit only nodes
    // with pods that have some.
    let own_terms = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
    let nodes = snapshot.nodes_in(own_terms, &snapshot.with_affinity);
    for (node, existing) in nodes.flat_map(|n| n.pods.iter().map(move |p| (n, p))) {
        let mut add_here = |term: &AffinityTerm, w: i64| add(term, w, node);
        weighted(&pod.preferred_affinity, existing, 1, &mut add_here);
        weighted(&pod.preferred_anti_affinity, existing, -1, &mut add_here);
        for t in &existing.required_affinity {
            if t.matches(pod, ns) {
                add_here(t, HARD_POD_AFFINITY_WEIGHT);
            }
        }
        weighted(&existing.preferred_affinity, pod, 1, &mut add_here);
        weighted(&existing.preferred_anti_affinity, pod, -1, &mut add_here);
    }
    s
}

pub(crate) fn score(state: &ScoreState, node: &NodeInfo) -> i64 {
    state.topology_score.sum(node)
}

/// Min-max normalization to 0..=100 (all zero when every node scores the same).
pub(crate) fn normalize(scores: &mut [i64]) {
    let (Some(min), Some(max)) = (scores.iter().min().copied(), scores.iter().max().copied()) else { return };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 { (100.0 * ((*s - min) as f64 / diff as f64)) as i64 } else { 0 };
    }
}
