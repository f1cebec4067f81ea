//! PodTopologySpread: `DoNotSchedule` constraints bound the skew of matching pods across topology
//! domains (filter); `ScheduleAnyway` constraints prefer the least crowded domains (score).
//! Cluster-level default constraints (which need Service/ReplicaSet selectors) are not applied.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use crate::cache::{NodeInfo, PodInfo, Snapshot};
use crate::framework::Status;
use crate::labels::{Selector, first_untolerated};
use crate::plugins::node_affinity;

pub(crate) const NAME: &str = "PodTopologySpread";
const CONSTRAINTS_REASON: &str = "node(s) didn't match pod topology spread constraints";
const LABEL_REASON: &str = "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";

type Pair = (String, String);

#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    max_skew: i64,
    key: String,
    selector: Selector,
    min_domains: Option<i64>,
    /// nodeAffinityPolicy: Honor (default) counts only nodes the pod's node affinity accepts.
    honor_affinity: bool,
    /// nodeTaintsPolicy: Honor counts only nodes whose taints the pod tolerates (default Ignore).
    honor_taints: bool,
}

/// Upstream's system default constraints, applied (for scoring only) to pods that have none of
/// their own but belong to a Service, ReplicaSet, StatefulSet or ReplicationController.
const SYSTEM_DEFAULTS: [(&str, i64); 2] = [(HOSTNAME, 3), ("topology.kubernetes.io/zone", 5)];

/// The pod's constraints for `when`, and whether they are the system defaults.
fn constraints(pod: &PodInfo, when: &str) -> (Vec<Constraint>, bool) {
    let list: &[TopologySpreadConstraint] =
        pod.pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_deref()).unwrap_or_default();
    if list.is_empty() {
        let defaults = match (&pod.default_spread_selector, when) {
            (Some(selector), "ScheduleAnyway") => SYSTEM_DEFAULTS
                .iter()
                .map(|(key, max_skew)| Constraint {
                    max_skew: *max_skew,
                    key: key.to_string(),
                    selector: selector.clone(),
                    min_domains: None,
                    honor_affinity: true,
                    honor_taints: false,
                })
                .collect(),
            _ => Vec::new(),
        };
        return (defaults, true);
    }
    let own = list
        .iter()
        .filter(|c| c.when_unsatisfiable == when)
        .map(|c| {
            let mut selector = Selector::new(c.label_selector.as_ref());
            for key in c.match_label_keys.iter().flatten() {
                if let Some(v) = pod.labels.get(key) {
                    selector = selector.with_label(key, v);
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                key: c.topology_key.clone(),
                selector,
                min_domains: c.min_domains.map(i64::from),
                honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect();
    (own, false)
}

fn has_all_keys(node: &NodeInfo, cs: &[Constraint]) -> bool {
    cs.iter().all(|c| node.labels.contains_key(&c.key))
}

fn included(c: &Constraint, pod: &PodInfo, node: &NodeInfo) -> bool {
    if c.honor_affinity && !node_affinity::required_matches(pod, node) {
        return false;
    }
    if c.honor_taints {
        let tolerations = pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
        if first_untolerated(node.taints(), tolerations, &["NoSchedule", "NoExecute"]).is_some() {
            return false;
        }
    }
    true
}

fn count_matching(node: &NodeInfo, selector: &Selector, namespace: &str) -> i64 {
    node.pods.iter().filter(|p| !p.terminating && p.namespace == namespace && selector.matches(&p.labels)).count()
        as i64
}

#[derive(Debug, Default)]
pub(crate) struct FilterState {
    constraints: Vec<Constraint>,
    pair_counts: HashMap<Pair, i64>,
    /// Smallest count of any domain, per topology key.
    min_per_key: HashMap<String, i64>,
    domains_per_key: HashMap<String, i64>,
}

pub(crate) fn pre_filter(pod: &PodInfo, snapshot: &Snapshot) -> FilterState {
    let (cs, _) = constraints(pod, "DoNotSchedule");
    let mut s = FilterState::default();
    if cs.is_empty() {
        return s;
    }
    for node in &snapshot.nodes {
        if !has_all_keys(node, &cs) {
            continue;
        }
        for c in &cs {
            if !included(c, pod, node) {
                continue;
            }
            let p = (c.key.clone(), node.labels[&c.key].clone());
            *s.pair_counts.entry(p).or_default() += count_matching(node, &c.selector, &pod.namespace);
        }
    }
    for ((key, _), n) in &s.pair_counts {
        let m = s.min_per_key.entry(key.clone()).or_insert(i64::MAX);
        *m = (*m).min(*n);
        *s.domains_per_key.entry(key.clone()).or_default() += 1;
    }
    s.constraints = cs;
    s
}

pub(crate) fn filter(state: &FilterState, pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    for c in &state.constraints {
        let Some(value) = node.labels.get(&c.key) else {
            return Some(Status::unresolvable(NAME, LABEL_REASON));
        };
        let mut min = state.min_per_key.get(&c.key).copied().unwrap_or(0);
        if let Some(min_domains) = c.min_domains
            && state.domains_per_key.get(&c.key).copied().unwrap_or(0) < min_domains
        {
            // Too few domains: the global minimum is treated as zero so pods spread out to new
            // domains.
            min = 0;
        }
        let self_match = i64::from(c.selector.matches(&pod.labels));
        let count = state.pair_counts.get(&(c.key.clone(), value.clone())).copied().unwrap_or(0);
        if count + self_match - min > c.max_skew {
            return Some(Status::unschedulable(NAME, CONSTRAINTS_REASON));
        }
    }
    None
}

#[derive(Debug, Default)]
pub(crate) struct ScoreState {
    constraints: Vec<Constraint>,
    ignored: HashSet<String>,
    pair_counts: HashMap<Pair, i64>,
    weights: Vec<f64>,
}

pub(crate) fn pre_score(pod: &PodInfo, feasible: &[&NodeInfo], snapshot: &Snapshot) -> ScoreState {
    let (cs, system_defaulted) = constraints(pod, "ScheduleAnyway");
    // System defaults don't require nodes to carry every topology label (a node without a zone
    // still spreads by hostname).
    let require_all = !system_defaulted;
    let mut s = ScoreState::default();
    if cs.is_empty() {
        return s;
    }
    let mut sizes = vec![0usize; cs.len()];
    for node in feasible {
        if require_all && !has_all_keys(node, &cs) {
            s.ignored.insert(node.name.clone());
            continue;
        }
        for (i, c) in cs.iter().enumerate() {
            if c.key == HOSTNAME {
                continue;
            }
            let p = (c.key.clone(), node.labels.get(&c.key).cloned().unwrap_or_default());
            if let std::collections::hash_map::Entry::Vacant(e) = s.pair_counts.entry(p) {
                e.insert(0);
                sizes[i] += 1;
            }
        }
    }
    s.weights = cs
        .iter()
        .zip(&sizes)
        .map(|(c, size)| {
            let size = if c.key == HOSTNAME { feasible.len() - s.ignored.len() } else { *size };
            ((size + 2) as f64).ln()
        })
        .collect();
    for node in &snapshot.nodes {
        if require_all && !has_all_keys(node, &cs) {
            continue;
        }
        for c in &cs {
            if !included(c, pod, node) {
                continue;
            }
            let p = (c.key.clone(), node.labels.get(&c.key).cloned().unwrap_or_default());
            if let Some(n) = s.pair_counts.get_mut(&p) {
                *n += count_matching(node, &c.selector, &pod.namespace);
            }
        }
    }
    s.constraints = cs;
    s
}

/// Raw score: matching pods in the node's domains, weighted; lower is better (reversed when
/// normalizing). `None` for nodes lacking the topology labels.
pub(crate) fn score(state: &ScoreState, pod: &PodInfo, node: &NodeInfo) -> Option<i64> {
    if state.constraints.is_empty() {
        return Some(0);
    }
    if state.ignored.contains(&node.name) {
        return None;
    }
    let mut score = 0.0;
    for (c, w) in state.constraints.iter().zip(&state.weights) {
        let Some(value) = node.labels.get(&c.key) else { continue };
        let count = if c.key == HOSTNAME {
            count_matching(node, &c.selector, &pod.namespace)
        } else {
            state.pair_counts.get(&(c.key.clone(), value.clone())).copied().unwrap_or(0)
        };
        score += count as f64 * w + (c.max_skew - 1) as f64;
    }
    Some(score.round() as i64)
}

/// Upstream NormalizeScore: ignored nodes get 0, the rest `100 * (max + min - s) / max`.
pub(crate) fn normalize(state: &ScoreState, raw: &[Option<i64>]) -> Vec<i64> {
    if state.constraints.is_empty() {
        return vec![0; raw.len()];
    }
    let valid = raw.iter().flatten();
    let min = valid.clone().min().copied().unwrap_or(0);
    let max = valid.max().copied().unwrap_or(0);
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => 100,
            Some(s) => 100 * (max + min - s) / max,
        })
        .collect()
}
