//! NodeResourcesFit: the pod's requests must fit in the node's allocatable minus what pods on it
//! already request (filter); the LeastAllocated strategy prefers emptier nodes (score).

use crate::cache::{NodeFit, NodeInfo, PodInfo};
use crate::framework::{Code, Status};

pub(crate) const NAME: &str = "NodeResourcesFit";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    let mut reasons = Vec::new();
    let mut unresolvable = false;
    if node.pods.len() as i64 + 1 > node.allocatable.allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    let req = &pod.requests;
    let alloc = &node.allocatable;
    let used = &node.requested;
    let mut check = |name: &str, want: i64, have: i64, in_use: i64| {
        if want > 0 && want > have - in_use {
            reasons.push(format!("Insufficient {name}"));
            // A request larger than the whole node cannot be helped by preemption.
            unresolvable |= want > have;
        }
    };
    check("cpu", req.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    check("memory", req.memory, alloc.memory, used.memory);
    check("ephemeral-storage", req.ephemeral_storage, alloc.ephemeral_storage, used.ephemeral_storage);
    for (name, want) in &req.scalar {
        let have = alloc.scalar.get(name).copied().unwrap_or(0);
        let in_use = used.scalar.get(name).copied().unwrap_or(0);
        check(name, *want, have, in_use);
    }
    if reasons.is_empty() {
        return None;
    }
    let code = if unresolvable { Code::UnschedulableAndUnresolvable } else { Code::Unschedulable };
    Some(Status { code, reasons, plugin: NAME })
}

/// [`filter`] from the node's [`NodeFit`], for a pod without extended resource requests:
/// whether the pod fits (`filter` gives `None`).
pub(crate) fn fits(pod: &PodInfo, node: &NodeFit) -> bool {
    debug_assert!(pod.requests.scalar.is_empty());
    let req = &pod.requests;
    let want = [req.milli_cpu, req.memory, req.ephemeral_storage];
    node.pods < node.allowed_pods && (0..3).all(|k| want[k] <= 0 || want[k] <= node.allocatable[k] - node.requested[k])
}

/// LeastAllocated over cpu and memory (weight 1 each), with the non-zero request defaults.
pub(crate) fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    least_allocated(
        pod,
        [node.allocatable.milli_cpu, node.allocatable.memory],
        [node.non_zero_requested.milli_cpu, node.non_zero_requested.memory],
    )
}

/// [`score`] from the node's [`NodeFit`].
pub(crate) fn score_fit(pod: &PodInfo, node: &NodeFit) -> i64 {
    least_allocated(pod, [node.allocatable[0], node.allocatable[1]], node.non_zero_requested)
}

/// The score from the node's allocatable and (non-zero) requested cpu and memory, without
/// the pod's.
fn least_allocated(pod: &PodInfo, allocatable: [i64; 2], requested: [i64; 2]) -> i64 {
    let want = [pod.non_zero_requests.milli_cpu, pod.non_zero_requests.memory];
    let pairs = [(allocatable[0], requested[0] + want[0]), (allocatable[1], requested[1] + want[1])];
    let (mut sum, mut weights) = (0, 0);
    for (alloc, req) in pairs {
        if alloc == 0 {
            continue;
        }
        sum += if req > alloc { 0 } else { (alloc - req) * 100 / alloc };
        weights += 1;
    }
    if weights == 0 { 0 } else { sum / weights }
}
