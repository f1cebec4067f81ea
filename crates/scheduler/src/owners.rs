//! Selectors of Services and workload controllers, kept from watches so PodTopologySpread can
//! apply upstream's system default constraints: a pod without constraints of its own is spread
//! like the other pods of its Services and its controller (upstream `helper.DefaultSelector`).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::runtime::watcher;

use crate::labels::Selector;

/// One kind's selectors by `namespace/name`.
type ByKey<T> = HashMap<String, T>;

fn key(ns: Option<&str>, name: Option<&str>) -> String {
    format!("{}/{}", ns.unwrap_or("default"), name.unwrap_or_default())
}

/// The selectors, per kind. Label maps for Services and ReplicationControllers, full label
/// selectors for ReplicaSets and StatefulSets.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    services: ByKey<BTreeMap<String, String>>,
    replication_controllers: ByKey<BTreeMap<String, String>>,
    replica_sets: ByKey<LabelSelector>,
    stateful_sets: ByKey<LabelSelector>,
}

/// A watch event of one of the kinds [`Owners`] keeps (boxed: the objects are large).
pub(crate) enum OwnerEvent {
    Service(Box<watcher::Event<Service>>),
    ReplicationController(Box<watcher::Event<ReplicationController>>),
    ReplicaSet(Box<watcher::Event<ReplicaSet>>),
    StatefulSet(Box<watcher::Event<StatefulSet>>),
}

/// Applies one watch event to one kind's map. A (re-)list starts from scratch: scoring may use
/// a partial view for the moment the list takes, which only affects preferences.
fn apply<K: kube::Resource, T>(map: &mut ByKey<T>, ev: watcher::Event<K>, value: impl Fn(&K) -> Option<T>) {
    let k = |o: &K| key(o.meta().namespace.as_deref(), o.meta().name.as_deref());
    match ev {
        watcher::Event::Init => map.clear(),
        watcher::Event::InitDone => {}
        watcher::Event::InitApply(o) | watcher::Event::Apply(o) => match value(&o) {
            Some(v) => {
                map.insert(k(&o), v);
            }
            None => {
                map.remove(&k(&o));
            }
        },
        watcher::Event::Delete(o) => {
            map.remove(&k(&o));
        }
    }
}

impl Owners {
    pub(crate) fn on_event(&mut self, ev: OwnerEvent) {
        match ev {
            // Services with a nil selector match nothing, not everything.
            OwnerEvent::Service(ev) => {
                apply(&mut self.services, *ev, |s: &Service| s.spec.as_ref().and_then(|s| s.selector.clone()))
            }
            OwnerEvent::ReplicationController(ev) => {
                apply(&mut self.replication_controllers, *ev, |rc: &ReplicationController| {
                    rc.spec.as_ref().and_then(|s| s.selector.clone())
                })
            }
            OwnerEvent::ReplicaSet(ev) => {
                apply(&mut self.replica_sets, *ev, |rs: &ReplicaSet| rs.spec.as_ref().map(|s| s.selector.clone()))
            }
            OwnerEvent::StatefulSet(ev) => {
                apply(&mut self.stateful_sets, *ev, |ss: &StatefulSet| ss.spec.as_ref().map(|s| s.selector.clone()))
            }
        }
    }

    /// Upstream `DefaultSelector`: the merged selectors of the Services selecting the pod, plus
    /// its controller's selector; `None` when that is empty (no default spreading).
    pub(crate) fn default_selector(&self, pod: &Pod) -> Option<Selector> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let prefix = format!("{ns}/");
        let mut merged: BTreeMap<String, String> = BTreeMap::new();
        for (k, selector) in &self.services {
            if k.starts_with(&prefix) && selector.iter().all(|(sk, sv)| labels.get(sk) == Some(sv)) {
                merged.extend(selector.clone());
            }
        }
        let mut requirements: Vec<LabelSelectorRequirement> = Vec::new();
        let owner = pod.metadata.owner_references.iter().flatten().find(|o| o.controller == Some(true));
        if let Some(owner) = owner {
            let owner_key = key(Some(ns), Some(&owner.name));
            match (owner.api_version.as_str(), owner.kind.as_str()) {
                ("v1", "ReplicationController") => {
                    if let Some(sel) = self.replication_controllers.get(&owner_key) {
                        merged.extend(sel.clone());
                    }
                }
                ("apps/v1", "ReplicaSet") => requirements.extend(as_requirements(self.replica_sets.get(&owner_key))),
                ("apps/v1", "StatefulSet") => requirements.extend(as_requirements(self.stateful_sets.get(&owner_key))),
                _ => {}
            }
        }
        if merged.is_empty() && requirements.is_empty() {
            return None;
        }
        let selector = LabelSelector { match_labels: Some(merged), match_expressions: Some(requirements) };
        Some(Selector::new(Some(&selector)))
    }
}

/// A label selector as a list of requirements (matchLabels become `In` requirements).
fn as_requirements(sel: Option<&LabelSelector>) -> Vec<LabelSelectorRequirement> {
    let Some(sel) = sel else { return Vec::new() };
    let mut out: Vec<LabelSelectorRequirement> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| LabelSelectorRequirement { key: k.clone(), operator: "In".into(), values: Some(vec![v.clone()]) })
        .collect();
    out.extend(sel.match_expressions.iter().flatten().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj<T: k8s_openapi::serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn pod(labels: serde_json::Value, owner: Option<(&str, &str, &str)>) -> Pod {
        let refs: Vec<serde_json::Value> = owner
            .map(|(api, kind, name)| json!({"apiVersion": api, "kind": kind, "name": name, "uid": "u", "controller": true}))
            .into_iter()
            .collect();
        obj(json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels, "ownerReferences": refs}}))
    }

    #[test]
    fn default_selector_merges_services_and_controller() {
        let mut o = Owners::default();
        o.on_event(OwnerEvent::Service(Box::new(watcher::Event::Apply(obj(json!({
            "metadata": {"name": "web", "namespace": "ns"}, "spec": {"selector": {"app": "web"}}
        }))))));
        // Another namespace's service and a selector-less service don't count.
        o.on_event(OwnerEvent::Service(Box::new(watcher::Event::Apply(obj(json!({
            "metadata": {"name": "web", "namespace": "other"}, "spec": {"selector": {"tier": "x"}}
        }))))));
        o.on_event(OwnerEvent::Service(Box::new(watcher::Event::Apply(obj(json!({
            "metadata": {"name": "headless", "namespace": "ns"}, "spec": {}
        }))))));
        o.on_event(OwnerEvent::ReplicaSet(Box::new(watcher::Event::Apply(obj(json!({
            "metadata": {"name": "web-1", "namespace": "ns"},
            "spec": {"selector": {"matchLabels": {"app": "web", "hash": "1"}}}
        }))))));
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let p = pod(json!({"app": "web", "hash": "1"}), Some(("apps/v1", "ReplicaSet", "web-1")));
        let sel = o.default_selector(&p).unwrap();
        assert!(sel.matches(&labels(&[("app", "web"), ("hash", "1")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("hash", "2")])), "the ReplicaSet's selector applies");
        // Only the service: hash is not required.
        let sel = o.default_selector(&pod(json!({"app": "web"}), None)).unwrap();
        assert!(sel.matches(&labels(&[("app", "web"), ("hash", "2")])));
        // Nothing selects it: no default spreading.
        assert!(o.default_selector(&pod(json!({"app": "db"}), None)).is_none());
        // A re-list forgets what is gone.
        o.on_event(OwnerEvent::Service(Box::new(watcher::Event::Init)));
        o.on_event(OwnerEvent::Service(Box::new(watcher::Event::InitDone)));
        assert!(o.default_selector(&pod(json!({"app": "web"}), None)).is_none());
    }
}
