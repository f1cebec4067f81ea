//! The `pods/status` patch a kubelet would send for a simulated pod, computed from its small
//! [`PodState`] alone (no copy of the Pod is kept). Field by field it follows upstream's
//! `generateAPIPodStatus` and `status/generate.go`: condition order, reasons, container states.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Phase, PodState};
use crate::ipam;
use crate::node::SimNode;

/// A strategic merge patch for `pods/status`. The uid makes it apply to this pod only, as the
/// kubelet's status manager does.
pub(super) fn patch(p: &PodState, node: &SimNode, max_pods: u32) -> Value {
    if let Some(used) = p.rejected {
        // The kubelet's `rejectPod`: a failed phase with the admission's reason, nothing else.
        return json!({"metadata": {"uid": &*p.uid}, "status": {
            "phase": "Failed",
            "reason": "OutOfpods",
            "message": format!(
                "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: {used}, capacity: {max_pods}"
            ),
        }});
    }
    let host_ip = node.address.to_string();
    let mut status = json!({
        "phase": p.phase.as_str(),
        "conditions": conditions(p),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": time(p.started),
        "containerStatuses": p.shape.containers.iter().map(|c| container(p, &c.name, &c.image)).collect::<Vec<_>>(),
    });
    if !p.shape.init.is_empty() {
        status["initContainerStatuses"] = p.shape.init.iter().map(|c| init_container(p, c)).collect();
    }
    // A finished pod keeps showing the address it had (as upstream's do), though the address
    // itself is free again.
    let ip = match p.ip {
        _ if p.shape.host_network => Some(host_ip),
        Some(h) => Some(ipam::pod_address(node.pod_range, h).to_string()),
        None => None,
    };
    if let Some(ip) = ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    json!({"metadata": {"uid": &*p.uid}, "status": status})
}

fn time(ts: Timestamp) -> Value {
    serde_json::to_value(Time(ts)).unwrap_or(Value::Null)
}

/// One pod condition. `null` reason and message remove what an earlier writer left in a
/// condition of that type (the list merges by type).
fn condition(type_: &str, status: bool, reason: Option<&str>, at: Timestamp) -> Value {
    explained(type_, status, reason, None, at)
}

/// A condition with a message.
fn explained(type_: &str, status: bool, reason: Option<&str>, message: Option<&str>, at: Timestamp) -> Value {
    json!({
        "type": type_,
        "status": if status { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": time(at),
    })
}

/// The kubelet's conditions, in its order.
fn conditions(p: &PodState) -> Value {
    let scheduled = condition("PodScheduled", true, None, p.scheduled);
    match p.phase {
        // Never written (nothing changes for a pod that never starts); what it would be.
        Phase::Pending => json!([scheduled]),
        Phase::Running => json!([
            condition("PodReadyToStartContainers", true, None, p.started),
            condition("Initialized", true, None, p.started),
            // A restart would make the pod unready for a moment: the last transition is the
            // last start, or the last change of its readiness gates.
            match &p.gates {
                Some(why) => explained("Ready", false, Some("ReadinessGatesNotReady"), Some(why), p.gates_changed),
                None => condition("Ready", true, None, p.run_started.max(p.gates_changed)),
            },
            condition("ContainersReady", true, None, p.run_started),
            scheduled,
        ]),
        Phase::Succeeded | Phase::Failed => {
            let reason = if p.phase == Phase::Succeeded { "PodCompleted" } else { "PodFailed" };
            let init_reason = (p.phase == Phase::Succeeded).then_some("PodCompleted");
            json!([
                // The sandbox is gone once the pod finished.
                condition("PodReadyToStartContainers", false, None, p.finished),
                condition("Initialized", true, init_reason, p.started),
                condition("Ready", false, Some(reason), p.finished),
                condition("ContainersReady", false, Some(reason), p.finished),
                scheduled,
            ])
        }
    }
}

/// A container id, the same for one run of one container of one pod (so nothing needs
/// storing), different for every restart: `skiff-sim://` + 64 hex digits like containerd's.
fn container_id(uid: &str, name: &str, run: u32) -> String {
    let digest = Sha256::digest(format!("{uid}/{name}/{run}").as_bytes());
    format!("skiff-sim://{}", hex::encode(digest))
}

/// The image id a runtime would report: the repository with a digest. Derived from the image
/// reference so it is stable and identical for pods of the same image.
fn image_id(image: &str) -> String {
    if image.contains("@sha256:") {
        return image.to_string();
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    let repo = match image[last_slash..].rfind(':') {
        Some(colon) => &image[..last_slash + colon],
        None => image,
    };
    format!("{repo}@sha256:{}", hex::encode(Sha256::digest(image.as_bytes())))
}

fn exit_reason(code: i32) -> &'static str {
    if code == 0 { "Completed" } else { "Error" }
}

fn terminated(code: i32, started: Timestamp, finished: Timestamp, id: &str) -> Value {
    json!({"terminated": {
        "exitCode": code,
        "reason": exit_reason(code),
        "startedAt": time(started),
        "finishedAt": time(finished),
        "containerID": id,
    }})
}

/// A regular (or sidecar) container: running while the pod runs, terminated once it finished.
fn container(p: &PodState, name: &str, image: &str) -> Value {
    let id = container_id(&p.uid, name, p.restarts);
    let running = p.phase == Phase::Running;
    let state = if running {
        json!({"running": {"startedAt": time(p.run_started)}})
    } else {
        terminated(p.exit_code, p.run_started, p.finished, &id)
    };
    let last_state = match &p.last {
        Some(l) => terminated(l.code, l.started, l.finished, &container_id(&p.uid, name, p.restarts.saturating_sub(1))),
        None => json!({}),
    };
    json!({
        "name": name,
        "image": image,
        "imageID": image_id(image),
        "containerID": id,
        "ready": running,
        "started": running,
        "restartCount": p.restarts,
        "state": state,
        "lastState": last_state,
    })
}

/// An init container: ran to completion before the pod started; a sidecar (restartPolicy
/// Always) keeps running like a regular container.
fn init_container(p: &PodState, c: &super::Container) -> Value {
    if c.sidecar {
        return container(p, &c.name, &c.image);
    }
    let id = container_id(&p.uid, &c.name, 0);
    json!({
        "name": &*c.name,
        "image": &*c.image,
        "imageID": image_id(&c.image),
        "containerID": id,
        "ready": true,
        "started": false,
        "restartCount": 0,
        "state": terminated(0, p.started, p.started, &id),
        "lastState": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids() {
        let d = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
        assert_eq!(image_id("nginx:1.27"), format!("nginx@sha256:{}", d("nginx:1.27")));
        assert_eq!(image_id("nginx"), format!("nginx@sha256:{}", d("nginx")));
        assert_eq!(
            image_id("localhost:5000/team/app:v1"),
            format!("localhost:5000/team/app@sha256:{}", d("localhost:5000/team/app:v1"))
        );
        assert_eq!(image_id("localhost:5000/app"), format!("localhost:5000/app@sha256:{}", d("localhost:5000/app")));
        assert_eq!(image_id("busybox@sha256:abc"), "busybox@sha256:abc");
    }

    #[test]
    fn container_ids_differ_per_run() {
        let a = container_id("u", "c", 0);
        assert!(a.starts_with("skiff-sim://"));
        assert_eq!(a.len(), "skiff-sim://".len() + 64);
        assert_eq!(a, container_id("u", "c", 0));
        assert_ne!(a, container_id("u", "c", 1));
        assert_ne!(a, container_id("u", "d", 0));
        assert_ne!(a, container_id("v", "c", 0));
    }
}
