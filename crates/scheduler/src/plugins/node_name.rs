//! NodeName: a pod that names a node fits only there. Queued pods have no `spec.nodeName`, so this
//! only matters when plugins are reused (e.g. a dry run of a named pod).

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::Status;

pub(crate) const NAME: &str = "NodeName";
const REASON: &str = "node(s) didn't match the requested node name";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        Some(name) if !name.is_empty() && name != node.name => Some(Status::unresolvable(NAME, REASON)),
        _ => None,
    }
}
