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

type Pair = (String, String);

/// Counts per topology domain, computed once per cycle.
#[derive(Debug, Default)]
pub(crate) struct FilterState {
    /// Domains where some existing pod's required anti-affinity selects the incoming pod.
    existing_anti_affinity: HashMap<Pair, i64>,
    /// Domains holding pods that match all the incoming pod's required affinity terms.
    affinity: HashMap<Pair, i64>,
    /// Domains holding pods that match one of the incoming pod's anti-affinity terms.
    anti_affinity: HashMap<Pair, i64>,
}

fn pair(node: &NodeInfo, key: &str) -> Option<Pair> {
    node.labels.get(key).map(|v| (key.to_string(), v.clone()))
}

pub(crate) fn pre_filter(pod: &PodInfo, snapshot: &Snapshot) -> FilterState {
    let ns = &snapshot.namespace_labels;
    let mut s = FilterState::default();
    for (node, existing) in snapshot.all_pods() {
        for term in &existing.required_anti_affinity {
            if term.matches(pod, ns)
                && let Some(p) = pair(node, &term.topology_key)
            {
                *s.existing_anti_affinity.entry(p).or_default() += 1;
            }
        }
        if !pod.required_affinity.is_empty() && pod.required_affinity.iter().all(|t| t.matches(existing, ns)) {
            for term in &pod.required_affinity {
                if let Some(p) = pair(node, &term.topology_key) {
                    *s.affinity.entry(p).or_default() += 1;
                }
            }
        }
        for term in &pod.required_anti_affinity {
            if term.matches(existing, ns)
                && let Some(p) = pair(node, &term.topology_key)
            {
                *s.anti_affinity.entry(p).or_default() += 1;
            }
        }
    }
    s
}

pub(crate) fn filter(state: &FilterState, pod: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) -> Option<Status> {
    if !satisfies_affinity(state, pod, node, snapshot) {
        return Some(Status::unresolvable(NAME, AFFINITY_REASON));
    }
    let anti = pod
        .required_anti_affinity
        .iter()
        .any(|t| pair(node, &t.topology_key).is_some_and(|p| state.anti_affinity.get(&p).copied().unwrap_or(0) > 0));
    if anti {
        return Some(Status::unschedulable(NAME, ANTI_AFFINITY_REASON));
    }
    let existing = node
        .labels
        .iter()
        .any(|(k, v)| state.existing_anti_affinity.get(&(k.clone(), v.clone())).copied().unwrap_or(0) > 0);
    existing.then(|| Status::unschedulable(NAME, EXISTING_ANTI_AFFINITY_REASON))
}

fn satisfies_affinity(state: &FilterState, pod: &PodInfo, node: &NodeInfo, snapshot: &Snapshot) -> bool {
    let mut pods_exist = true;
    for term in &pod.required_affinity {
        let Some(p) = pair(node, &term.topology_key) else { return false };
        if state.affinity.get(&p).copied().unwrap_or(0) <= 0 {
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
    topology_score: HashMap<String, HashMap<String, i64>>,
}

pub(crate) fn pre_score(pod: &PodInfo, snapshot: &Snapshot) -> ScoreState {
    let ns = &snapshot.namespace_labels;
    let mut s = ScoreState::default();
    let mut add = |term: &AffinityTerm, weight: i64, node: &NodeInfo| {
        if let Some(v) = node.labels.get(&term.topology_key) {
            *s.topology_score.entry(term.topology_key.clone()).or_default().entry(v.clone()).or_default() += weight;
        }
    };
    let weighted = |terms: &[WeightedTerm], target: &PodInfo, sign: i64, add: &mut dyn FnMut(&AffinityTerm, i64)| {
        for t in terms {
            if t.term.matches(target, ns) {
                add(&t.term, sign * t.weight);
            }
        }
    };
    for (node, existing) in snapshot.all_pods() {
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
    state.topology_score.iter().filter_map(|(key, values)| node.labels.get(key).and_then(|v| values.get(v))).sum()
}

/// Min-max normalization to 0..=100 (all zero when every node scores the same).
pub(crate) fn normalize(scores: &mut [i64]) {
    let (Some(min), Some(max)) = (scores.iter().min().copied(), scores.iter().max().copied()) else { return };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 { (100.0 * ((*s - min) as f64 / diff as f64)) as i64 } else { 0 };
    }
}
