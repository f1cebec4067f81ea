//! Decoded objects as components keep them in memory: lists shrunk to their length.
//!
//! serde builds a list of unknown length by pushing, and a `Vec` grows from room for four
//! elements, doubling. A decoded pod's one container status therefore holds four slots of a
//! 752-byte struct, its five conditions eight slots, its two tolerations four: more than a
//! quarter of the pod's 11 KB in memory is slack. Components that keep every pod of a large
//! cluster (the controller manager's informer, the scheduler's cache) shrink each pod as it
//! arrives.

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodSpec, PodStatus};

fn shrink<T>(list: &mut Option<Vec<T>>) {
    if let Some(v) = list {
        v.shrink_to_fit();
    }
}

/// Shrink `list`, then each of its elements with `f`.
fn shrink_each<T>(list: &mut Vec<T>, f: fn(&mut T)) {
    list.shrink_to_fit();
    list.iter_mut().for_each(f);
}

/// Shrink every list of `pod` (metadata, spec, containers, status) to its length.
pub fn shrink_pod(pod: &mut Pod) {
    let m = &mut pod.metadata;
    shrink(&mut m.owner_references);
    shrink(&mut m.finalizers);
    shrink(&mut m.managed_fields);
    if let Some(spec) = &mut pod.spec {
        shrink_spec(spec);
    }
    if let Some(status) = &mut pod.status {
        shrink_status(status);
    }
}

fn shrink_spec(s: &mut PodSpec) {
    for list in std::iter::once(&mut s.containers).chain(&mut s.init_containers) {
        shrink_each(list, shrink_container);
    }
    shrink(&mut s.ephemeral_containers);
    shrink(&mut s.tolerations);
    shrink(&mut s.volumes);
    shrink(&mut s.topology_spread_constraints);
    shrink(&mut s.image_pull_secrets);
    shrink(&mut s.host_aliases);
    shrink(&mut s.readiness_gates);
    shrink(&mut s.resource_claims);
    shrink(&mut s.scheduling_gates);
}

fn shrink_container(c: &mut Container) {
    shrink(&mut c.args);
    shrink(&mut c.command);
    shrink(&mut c.env);
    shrink(&mut c.env_from);
    shrink(&mut c.ports);
    shrink(&mut c.volume_mounts);
    shrink(&mut c.volume_devices);
    shrink(&mut c.resize_policy);
}

fn shrink_status(s: &mut PodStatus) {
    shrink(&mut s.conditions);
    for list in [&mut s.container_statuses, &mut s.init_container_statuses, &mut s.ephemeral_container_statuses]
        .into_iter()
        .flatten()
    {
        shrink_each(list, shrink_container_status);
    }
    shrink(&mut s.pod_ips);
    shrink(&mut s.host_ips);
    shrink(&mut s.resource_claim_statuses);
}

fn shrink_container_status(c: &mut ContainerStatus) {
    shrink(&mut c.volume_mounts);
    shrink(&mut c.allocated_resources_status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_fit_their_length_and_the_pod_is_unchanged() {
        let manifest = json!({
            "metadata": {"name": "p", "finalizers": ["a"], "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u"}]},
            "spec": {
                "containers": [
                    {"name": "a", "args": ["x"], "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
                    {"name": "b"},
                    {"name": "c"},
                ],
                "initContainers": [{"name": "i", "command": ["true"]}],
                "tolerations": [{"key": "k", "operator": "Exists"}, {"key": "l", "operator": "Exists"}],
            },
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"},
                    {"type": "PodScheduled", "status": "True"}, {"type": "ContainersReady", "status": "True"},
                    {"type": "PodReadyToStartContainers", "status": "True"}],
                "containerStatuses": [{"name": "a", "image": "i", "imageID": "", "ready": true, "restartCount": 2}],
                "podIPs": [{"ip": "10.0.0.1"}],
            },
        });
        // Decoded from text twice, as clients decode (a clone, or a decode from a `Value`,
        // would already fit its lists).
        let text = manifest.to_string();
        let pod: Pod = serde_json::from_str(&text).unwrap();
        let mut shrunk: Pod = serde_json::from_str(&text).unwrap();
        // What serde leaves: room to spare.
        let status = shrunk.status.as_ref().unwrap();
        assert!(status.container_statuses.as_ref().unwrap().capacity() > 1);
        assert!(status.conditions.as_ref().unwrap().capacity() > 5);

        shrink_pod(&mut shrunk);
        assert_eq!(shrunk, pod);
        let spec = shrunk.spec.as_ref().unwrap();
        let status = shrunk.status.as_ref().unwrap();
        assert_eq!(spec.containers.capacity(), 3);
        assert_eq!(spec.tolerations.as_ref().unwrap().capacity(), 2);
        assert_eq!(spec.containers[0].env.as_ref().unwrap().capacity(), 1);
        assert_eq!(spec.init_containers.as_ref().unwrap()[0].command.as_ref().unwrap().capacity(), 1);
        assert_eq!(status.conditions.as_ref().unwrap().capacity(), 5);
        assert_eq!(status.container_statuses.as_ref().unwrap().capacity(), 1);
        assert_eq!(status.pod_ips.as_ref().unwrap().capacity(), 1);
        assert_eq!(shrunk.metadata.owner_references.as_ref().unwrap().capacity(), 1);
    }
}
