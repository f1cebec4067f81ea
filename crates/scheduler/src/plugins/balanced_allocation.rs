//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory utilisation (with this pod)
//! are close to each other, so neither resource is stranded.

use crate::cache::{NodeFit, NodeInfo, PodInfo};

/// `(1 - std(fractions)) * 100` over cpu and memory, using actual (not defaulted) requests.
pub(crate) fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    balanced(
        pod,
        [node.allocatable.milli_cpu, node.allocatable.memory],
        [node.requested.milli_cpu, node.requested.memory],
    )
}

/// [`score`] from the node's [`NodeFit`].
pub(crate) fn score_fit(pod: &PodInfo, node: &NodeFit) -> i64 {
    balanced(pod, [node.allocatable[0], node.allocatable[1]], [node.requested[0], node.requested[1]])
}

/// The score from the node's allocatable and requested cpu and memory (without the pod's).
fn balanced(pod: &PodInfo, allocatable: [i64; 2], requested: [i64; 2]) -> i64 {
    // A pod that requests nothing is skipped upstream: every node scores the same.
    let want = [pod.requests.milli_cpu, pod.requests.memory];
    if want == [0, 0] {
        return 0;
    }
    let fraction =
        |k: usize| (allocatable[k] != 0).then(|| ((requested[k] + want[k]) as f64 / allocatable[k] as f64).min(1.0));
    let std = match [fraction(0), fraction(1)] {
        [Some(a), Some(b)] => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - std) * 100.0) as i64
}
