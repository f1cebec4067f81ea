//! NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory utilisation (with this pod)
//! are close to each other, so neither resource is stranded.

use crate::cache::{NodeFit, NodeInfo, PodInfo};

/// `(1 - std(fractions)) * 100` over cpu and memory, using actual (not defaulted) requests.
pub(crate) fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    // A pod that requests nothing is skipped upstream: every node scores the same.
    if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
        return 0;
    }
    balanced([
        (node.allocatable.milli_cpu, node.requested.milli_cpu + pod.requests.milli_cpu),
        (node.allocatable.memory, node.requested.memory + pod.requests.memory),
    ])
}

/// [`score`] from the node's [`NodeFit`].
pub(crate) fn score_fit(pod: &PodInfo, node: &NodeFit) -> i64 {
    if pod.requests.milli_cpu == 0 && pod.requests.memory == 0 {
        return 0;
    }
    balanced([
        (node.allocatable[0], node.requested[0] + pod.requests.milli_cpu),
        (node.allocatable[1], node.requested[1] + pod.requests.memory),
    ])
}

/// `(allocatable, requested with the pod)` of cpu and memory.
fn balanced(pairs: [(i64, i64); 2]) -> i64 {
    let fraction = |(alloc, req): (i64, i64)| (alloc != 0).then(|| (req as f64 / alloc as f64).min(1.0));
    let std = match pairs.map(fraction) {
        [Some(a), Some(b)] => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - std) * 100.0) as i64
}
