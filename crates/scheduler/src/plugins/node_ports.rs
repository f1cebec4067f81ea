//! NodePorts: a pod's host ports must not collide with host ports already in use on the node.

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::Status;

pub(crate) const NAME: &str = "NodePorts";
const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    let conflict = pod.host_ports.iter().any(|want| node.used_ports.iter().any(|used| want.conflicts(used)));
    conflict.then(|| Status::unschedulable(NAME, REASON))
}
