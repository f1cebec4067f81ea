//! NodeAffinity: `spec.nodeSelector` and required node affinity terms must match (filter);
//! preferred terms add their weight (score).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{NodeAffinity, NodeSelector, PreferredSchedulingTerm};

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::Status;
use crate::labels::node_selector_term_matches;

pub(crate) const NAME: &str = "NodeAffinity";
const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// The pod's node affinity.
fn node_affinity(pod: &PodInfo) -> Option<&NodeAffinity> {
    pod.pod.spec.as_ref()?.affinity.as_ref()?.node_affinity.as_ref()
}

/// The pod's required node affinity.
fn required(pod: &PodInfo) -> Option<&NodeSelector> {
    node_affinity(pod)?.required_during_scheduling_ignored_during_execution.as_ref()
}

/// The pod's preferred node affinity terms.
fn preferred(pod: &PodInfo) -> &[PreferredSchedulingTerm] {
    node_affinity(pod)
        .and_then(|na| na.preferred_during_scheduling_ignored_during_execution.as_deref())
        .unwrap_or_default()
}

/// Whether the pod's nodeSelector and required node affinity accept the node (also used by
/// PodTopologySpread's node inclusion policy).
pub(crate) fn required_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    let Some(spec) = pod.pod.spec.as_ref() else { return true };
    for (k, v) in spec.node_selector.iter().flatten() {
        if node.labels.get(k) != Some(v) {
            return false;
        }
    }
    match required(pod) {
        // Terms are ORed.
        Some(sel) => sel.node_selector_terms.iter().any(|t| node_selector_term_matches(t, &node.node)),
        None => true,
    }
}

/// Whether [`filter`] passes every node: the pod has neither a nodeSelector nor required node
/// affinity.
pub(crate) fn filter_passes_all(pod: &PodInfo) -> bool {
    let no_selector = pod.pod.spec.as_ref().and_then(|s| s.node_selector.as_ref()).is_none_or(|s| s.is_empty());
    no_selector && required(pod).is_none()
}

/// Whether [`score`] is 0 on every node: no preferred term carries weight.
pub(crate) fn scores_nothing(pod: &PodInfo) -> bool {
    preferred(pod).iter().all(|t| t.weight == 0)
}

/// Upstream's PreFilter: when every required term pins `metadata.name In [...]`, only those nodes
/// are worth filtering (DaemonSet pods). `Ok(None)` means all nodes; an empty intersection
/// rejects the pod outright.
pub(crate) fn pre_filter(pod: &PodInfo) -> Result<Option<BTreeSet<String>>, Status> {
    let terms = required(pod).map(|r| r.node_selector_terms.as_slice()).unwrap_or_default();
    if terms.is_empty() {
        return Ok(None);
    }
    let mut names = BTreeSet::new();
    for term in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for r in term.match_fields.iter().flatten() {
            if r.key == "metadata.name" && r.operator == "In" {
                let set: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
                term_names = Some(match term_names {
                    None => set,
                    Some(prev) => prev.intersection(&set).cloned().collect(),
                });
            }
        }
        // A term without a name restriction makes every node eligible (terms are ORed).
        let Some(term_names) = term_names else { return Ok(None) };
        names.extend(term_names);
    }
    if names.is_empty() {
        return Err(Status::unresolvable(NAME, "pod affinity terms conflict"));
    }
    Ok(Some(names))
}

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    (!required_matches(pod, node)).then(|| Status::unresolvable(NAME, REASON))
}

/// Sum of the weights of matching preferred terms.
pub(crate) fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    preferred(pod)
        .iter()
        .filter(|t| t.weight != 0 && node_selector_term_matches(&t.preference, &node.node))
        .map(|t| i64::from(t.weight))
        .sum()
}
