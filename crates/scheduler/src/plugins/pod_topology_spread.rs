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

/// The pod's own constraints, both kinds.
fn own_constraints(pod: &PodInfo) -> &[TopologySpreadConstraint] {
    pod.pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_deref()).unwrap_or_default()
}

/// The pod's constraints for `when`, and whether they are the system defaults.
fn constraints(pod: &PodInfo, when: &str) -> (Vec<Constraint>, bool) {
    let list = own_constraints(pod);
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

/// Matching pods per topology value, one map per constraint (by index). Looking a value up
/// borrows the node's label: the loops over every node allocate nothing. The maps are rebuilt
/// every cycle and looked up once per node, so they hash with foldhash, not SipHash.
type DomainCounts = Vec<HashMap<String, i64, foldhash::fast::RandomState>>;

#[derive(Debug, Default)]
pub(crate) struct FilterState {
    constraints: Vec<Constraint>,
    counts: DomainCounts,
    /// Smallest count of any domain, per constraint.
    min: Vec<i64>,
}

pub(crate) fn pre_filter(pod: &PodInfo, snapshot: &Snapshot) -> FilterState {
    let (cs, _) = constraints(pod, "DoNotSchedule");
    let mut s = FilterState::default();
    if cs.is_empty() {
        return s;
    }
    s.counts = vec![HashMap::default(); cs.len()];
    // The node's value for each constraint's key, found once: this loop visits every node of
    // the cluster in each cycle, and each label lookup compares strings held elsewhere in memory.
    let mut values: Vec<&String> = Vec::with_capacity(cs.len());
    for node in &snapshot.nodes {
        values.clear();
        // A node lacking any of the keys is not counted (has_all_keys).
        if !cs.iter().all(|c| node.labels.get(&c.key).map(|v| values.push(v)).is_some()) {
            continue;
        }
        for (i, c) in cs.iter().enumerate() {
            if !included(c, pod, node) {
                continue;
            }
            let value = values[i];
            let n = count_matching(node, &c.selector, &pod.namespace);
            match s.counts[i].get_mut(value.as_str()) {
                Some(count) => *count += n,
                None => {
                    s.counts[i].insert(value.clone(), n);
                }
            }
        }
    }
    s.min = s.counts.iter().map(|m| m.values().copied().min().unwrap_or(i64::MAX)).collect();
    s.constraints = cs;
    s
}

/// Whether [`filter`] passes every node: the pod has no `DoNotSchedule` constraints (the
/// system defaults are `ScheduleAnyway`).
pub(crate) fn filter_passes_all(pod: &PodInfo) -> bool {
    let list = own_constraints(pod);
    list.iter().all(|c| c.when_unsatisfiable != "DoNotSchedule")
}

/// Whether the score is 0 on every node: the pod has no `ScheduleAnyway` constraints, of its
/// own or the system defaults.
pub(crate) fn scores_nothing(pod: &PodInfo) -> bool {
    // As `constraints` decides, without building them.
    let list = own_constraints(pod);
    if list.is_empty() {
        pod.default_spread_selector.is_none()
    } else {
        list.iter().all(|c| c.when_unsatisfiable != "ScheduleAnyway")
    }
}

pub(crate) fn filter(state: &FilterState, pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    for (i, c) in state.constraints.iter().enumerate() {
        let Some(value) = node.labels.get(&c.key) else {
            return Some(Status::unresolvable(NAME, LABEL_REASON));
        };
        let mut min = state.min[i];
        if let Some(min_domains) = c.min_domains
            && (state.counts[i].len() as i64) < min_domains
        {
            // Too few domains: the global minimum is treated as zero so pods spread out to new
            // domains.
            min = 0;
        }
        let self_match = i64::from(c.selector.matches(&pod.labels));
        let count = state.counts[i].get(value.as_str()).copied().unwrap_or(0);
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
    /// Per constraint, the domains of the feasible nodes (hostname: counted per node in
    /// `score` instead, as upstream does).
    counts: DomainCounts,
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
    s.counts = vec![HashMap::default(); cs.len()];
    for node in feasible {
        if require_all && !has_all_keys(node, &cs) {
            s.ignored.insert(node.name.clone());
            continue;
        }
        for (i, c) in cs.iter().enumerate() {
            if c.key == HOSTNAME {
                continue;
            }
            // A node without the label is in the "" domain (upstream reads a missing label as "").
            let value = node.labels.get(&c.key).map_or("", String::as_str);
            if !s.counts[i].contains_key(value) {
                s.counts[i].insert(value.to_string(), 0);
            }
        }
    }
    s.weights = cs
        .iter()
        .zip(&s.counts)
        .map(|(c, domains)| {
            let size = if c.key == HOSTNAME { feasible.len() - s.ignored.len() } else { domains.len() };
            ((size + 2) as f64).ln()
        })
        .collect();
    // Score reads a domain's count only for nodes that carry the label; the "" domain of nodes
    // without it is read only if some feasible node has the label with an empty value.
    let empty_read: Vec<bool> =
        cs.iter().map(|c| feasible.iter().any(|n| n.labels.get(&c.key).is_some_and(String::is_empty))).collect();
    let counted: Vec<usize> = (0..cs.len()).filter(|i| cs[*i].key != HOSTNAME).collect();
    if counted.is_empty() {
        s.constraints = cs;
        return s;
    }
    for node in &snapshot.nodes {
        if node.pods.is_empty() || (require_all && !has_all_keys(node, &cs)) {
            continue;
        }
        for &i in &counted {
            let c = &cs[i];
            let value = node.labels.get(&c.key).map_or("", String::as_str);
            if value.is_empty() && !empty_read[i] {
                continue;
            }
            // Only the feasible nodes' domains are scored.
            let Some(count) = s.counts[i].get_mut(value) else { continue };
            if included(c, pod, node) {
                *count += count_matching(node, &c.selector, &pod.namespace);
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
    for (i, (c, w)) in state.constraints.iter().zip(&state.weights).enumerate() {
        let Some(value) = node.labels.get(&c.key) else { continue };
        let count = if c.key == HOSTNAME {
            count_matching(node, &c.selector, &pod.namespace)
        } else {
            state.counts[i].get(value.as_str()).copied().unwrap_or(0)
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
