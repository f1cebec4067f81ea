//! Pod and selector helpers shared by the workload controllers: activity, readiness and
//! availability as upstream's `podutil` defines them, label selector matching, controller
//! references, and the order in which a ReplicaSet deletes surplus pods.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

/// Not finished and not being deleted: counts towards a controller's replicas.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// When the pod's `Ready` condition turned true, if it is true.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let c = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    (c.status == "True").then(|| c.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => t.as_second() + i64::from(min_ready_seconds) <= now.as_second(),
    }
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_ref()?.iter().find(|r| r.controller == Some(true))
}

/// Whether `labels` match `selector`. An empty selector matches everything; a selector this
/// code cannot evaluate (unknown operator) matches nothing.
pub fn selector_matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    if let Some(ml) = &selector.match_labels
        && ml.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default();
        let ok = match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `selector` that selects nothing (nil or without requirements is "everything" for most
/// workloads, but a controller must never claim every pod: validation forbids it anyway).
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Running") => 2,
        _ => 1,
    }
}

fn deletion_cost(pod: &Pod) -> i64 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
}

/// Upstream's `ActivePodsWithRanks` order: the pods to delete first come first — unbound
/// before bound, Pending before Unknown before Running, not ready before ready, lower
/// `pod-deletion-cost` first, more recently ready first, more restarts first, newer first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    let bound = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some_and(|n| !n.is_empty());
    bound(a)
        .cmp(&bound(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| {
            // Both ready: the one ready for less time goes first.
            match (ready_since(a).flatten(), ready_since(b).flatten()) {
                (Some(x), Some(y)) => y.cmp(&x),
                _ => Ordering::Equal,
            }
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b).cmp(&created(a))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn selectors() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                 {"key": "canary", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        let l = |v: serde_json::Value| serde_json::from_value::<BTreeMap<String, String>>(v).unwrap();
        assert!(selector_matches(&sel, Some(&l(json!({"app": "web", "tier": "a"})))));
        assert!(!selector_matches(&sel, Some(&l(json!({"app": "web", "tier": "c"})))));
        assert!(!selector_matches(&sel, Some(&l(json!({"app": "web", "tier": "a", "canary": "1"})))));
        assert!(!selector_matches(&sel, None));
        let bad: LabelSelector =
            serde_json::from_value(json!({"matchExpressions": [{"key": "x", "operator": "Near"}]})).unwrap();
        assert!(!selector_matches(&bad, Some(&l(json!({"x": "1"})))));
    }

    #[test]
    fn availability_needs_min_ready_seconds() {
        let p = pod(json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}));
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(is_available(&p, 0, at("2026-01-01T00:00:00Z")));
        assert!(!is_available(&p, 10, at("2026-01-01T00:00:09Z")));
        assert!(is_available(&p, 10, at("2026-01-01T00:00:10Z")));
        assert!(!is_available(&pod(json!({})), 0, at("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn surplus_pods_are_deleted_in_upstream_order() {
        let unbound = pod(json!({"metadata": {"name": "unbound"}, "status": {"phase": "Pending"}}));
        let pending = pod(
            json!({"metadata": {"name": "pending"}, "spec": {"containers": [], "nodeName": "n"}, "status": {"phase": "Pending"}}),
        );
        let ready = |name: &str, since: &str, cost: &str| {
            pod(json!({"metadata": {"name": name, "annotations": {"controller.kubernetes.io/pod-deletion-cost": cost}},
                "spec": {"containers": [], "nodeName": "n"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}]}}))
        };
        let old = ready("old", "2026-01-01T00:00:00Z", "0");
        let young = ready("young", "2026-01-01T01:00:00Z", "0");
        let costly = ready("costly", "2026-01-01T02:00:00Z", "100");
        let mut v = [costly, old, young, pending, unbound];
        v.sort_by(deletion_order);
        let names: Vec<_> = v.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
        assert_eq!(names, ["unbound", "pending", "young", "old", "costly"]);
    }
}
