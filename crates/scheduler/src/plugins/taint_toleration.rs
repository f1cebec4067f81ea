//! TaintToleration: a node's NoSchedule / NoExecute taints must all be tolerated (filter); fewer
//! untolerated PreferNoSchedule taints score higher.

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::Status;
use crate::labels::{first_untolerated, tolerates};

pub(crate) const NAME: &str = "TaintToleration";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    let tolerations = pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    let taint = first_untolerated(node.taints(), tolerations, &["NoSchedule", "NoExecute"])?;
    Some(Status::unresolvable(
        NAME,
        format!("node(s) had untolerated taint {{{}: {}}}", taint.key, taint.value.as_deref().unwrap_or("")),
    ))
}

/// The number of intolerable PreferNoSchedule taints (normalized later, reversed).
pub(crate) fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    // Only tolerations that could apply to PreferNoSchedule count (upstream
    // getAllTolerationPreferNoSchedule).
    let taints = node.taints();
    if taints.is_empty() {
        return 0;
    }
    let tolerations = pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    let prefer_no_schedule =
        || tolerations.iter().filter(|t| t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "PreferNoSchedule"));
    taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule" && !prefer_no_schedule().any(|tol| tolerates(tol, t)))
        .count() as i64
}
