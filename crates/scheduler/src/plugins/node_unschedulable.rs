//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take no new pods unless the pod
//! tolerates the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use crate::cache::{NodeInfo, PodInfo};
use crate::framework::Status;
use crate::labels::tolerates;

pub(crate) const NAME: &str = "NodeUnschedulable";
const REASON: &str = "node(s) were unschedulable";

pub(crate) fn filter(pod: &PodInfo, node: &NodeInfo) -> Option<Status> {
    if !node.unschedulable {
        return None;
    }
    let taint =
        Taint { key: "node.kubernetes.io/unschedulable".into(), effect: "NoSchedule".into(), ..Taint::default() };
    let tolerations = pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    if tolerations.iter().any(|t| tolerates(t, &taint)) {
        return None;
    }
    Some(Status::unresolvable(NAME, REASON))
}
