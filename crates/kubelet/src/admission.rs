//! Pod admission: before a pod that never ran on this node gets a worker, the kubelet checks
//! that the node can take it beside the pods it already admitted — upstream's
//! `predicateAdmitHandler.Admit` (`pkg/kubelet/lifecycle/predicate.go`), whose `generalFilter`
//! runs the scheduler's `AdmissionCheck` (NodeResourcesFit, NodeAffinity, NodeName, NodePorts)
//! and then the node's `NoExecute` taints.
//!
//! The scheduler checked the same things against its own cache; this catches what it could not
//! see: two pods bound at once, a pod created with `spec.nodeName` set (no scheduler at all), a
//! node relabelled or tainted since.
//!
//! Pure: the pod manager (`pods.rs`) gathers the node and the admitted pods and calls [`admit`];
//! for a [`Rejection`] it records a Warning event and writes [`rejected_status`] instead of
//! starting anything (the node's step of the path in `docs/data-path.md`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStatus, Node, NodeSelectorRequirement, NodeSelectorTerm, Pod,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use skiff_api::quantity::{milli_value, pod_requests};

/// The OS this kubelet runs pods for (upstream compares with Go's `runtime.GOOS`).
const NODE_OS: &str = "linux";
/// The well-known OS label (`v1.LabelOSStable`).
const LABEL_OS: &str = "kubernetes.io/os";
/// Where a pod came from (`kubetypes.ConfigSourceAnnotationKey`): present and not `api` on
/// static pods, which upstream exempts from the taint check.
const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
/// The prefix upstream's `rejectPod` puts before the message in `status.message`.
pub(crate) const REJECTED_PREFIX: &str = "Pod was rejected: ";
/// Conditions the kubelet owns (`kubetypes.PodConditionsByKubelet` plus the gated
/// `PodReadyToStartContainers`): the status manager keeps them only from the status it writes,
/// and a rejected pod's status has none.
const KUBELET_CONDITIONS: [&str; 7] = [
    "PodScheduled",
    "Ready",
    "Initialized",
    "ContainersReady",
    "PodReadyToStartContainers",
    "PodResizePending",
    "PodResizeInProgress",
];

/// The scheduler plugins whose failures the kubelet reports as `Predicate <name> failed:
/// <reason>`, with upstream's reasons (`ErrReasonPod`, `ErrReason`, `ErrReasonNotMatch`).
const NODE_AFFINITY: (&str, &str) = ("NodeAffinity", "node(s) didn't match Pod's node affinity/selector");
const NODE_NAME: (&str, &str) = ("NodeName", "node(s) didn't match the requested node name");
const NODE_PORTS: (&str, &str) = ("NodePorts", "node(s) didn't have free ports for the requested pod ports");
const TAINT_TOLERATION: (&str, &str) = ("TaintToleration", "node(s) had taints that the pod didn't tolerate");

/// Upstream's `PodAdmitResult` for a pod turned down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// One word for `status.reason` and the event (`OutOfcpu`, `NodeAffinity`).
    pub(crate) reason: String,
    /// The event's message; `status.message` is it behind [`REJECTED_PREFIX`].
    pub(crate) message: String,
}

impl Rejection {
    fn new(reason: &str, message: impl Into<String>) -> Rejection {
        Rejection { reason: reason.to_string(), message: message.into() }
    }
}

/// One failed check of `generalFilter`, in upstream's two shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `InsufficientResourceError`: the pod's request does not fit in what allocatable leaves
    /// beside the admitted pods' requests. CPU in millicores, everything else in whole units.
    Insufficient { resource: String, requested: i128, used: i128, capacity: i128 },
    /// `PredicateFailureError`: a scheduler plugin's name and its reason.
    Predicate { name: &'static str, reason: &'static str },
}

impl Failure {
    fn predicate((name, reason): (&'static str, &'static str)) -> Failure {
        Failure::Predicate { name, reason }
    }

    /// The reason and message upstream's `Admit` derives from the first failure: `OutOf<resource>`
    /// (`OutOfcpu`, `OutOfmemory`, `OutOfephemeral-storage`, `OutOfpods`, `OutOfexample.com/gpu`)
    /// or the plugin's name.
    pub(crate) fn rejection(&self) -> Rejection {
        match self {
            Failure::Insufficient { resource, requested, used, capacity } => Rejection {
                reason: format!("OutOf{resource}"),
                message: format!(
                    "Node didn't have enough resource: {resource}, requested: {requested}, used: {used}, capacity: {capacity}"
                ),
            },
            Failure::Predicate { name, reason } => {
                Rejection { reason: name.to_string(), message: format!("Predicate {name} failed: {reason}") }
            }
        }
    }
}

/// Whether the pod is in a terminal phase.
pub(crate) fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Whether a pod seen for the first time must pass admission: only one that never started on
/// this node. One with sandboxes or containers in the runtime (a previous run's, adopted), or
/// whose status shows a container that ran, was admitted before — a kubelet restart must never
/// reject what runs. Terminal pods are not admitted (upstream skips them), nor pods being deleted
/// (there is nothing left to do for them but tear down).
pub(crate) fn needs_admission(pod: &Pod, has_runtime_state: bool) -> bool {
    if has_runtime_state || pod.metadata.deletion_timestamp.is_some() || is_terminal(pod) {
        return false;
    }
    let Some(status) = pod.status.as_ref() else { return true };
    let mut statuses = status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .chain(status.ephemeral_container_statuses.iter().flatten());
    !statuses.any(ran)
}

/// A container that is running or terminated, now or in its last state.
fn ran(s: &ContainerStatus) -> bool {
    let ran_in = |st: Option<&ContainerState>| st.is_some_and(|st| st.running.is_some() || st.terminated.is_some());
    ran_in(s.state.as_ref()) || ran_in(s.last_state.as_ref())
}

/// Upstream `predicateAdmitHandler.Admit`: whether `pod` may run on `node` beside `admitted`
/// (the live pods this kubelet admitted, terminal ones and the pod itself left out).
/// `allocatable` is what the kubelet computes for its node (`node::resources`); the Node
/// object adds the resources the kubelet does not compute (extended resources advertised in
/// its status). The checks preemption could not help come first; then the first failure of
/// [`general_filter`] decides.
pub(crate) fn admit(
    pod: &Pod,
    admitted: &[Pod],
    node: &Node,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<(), Rejection> {
    if pod.metadata.labels.as_ref().and_then(|l| l.get(LABEL_OS)).is_some_and(|os| os != NODE_OS) {
        return Err(Rejection::new(
            "PodOSSelectorNodeLabelDoesNotMatch",
            "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label",
        ));
    }
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.os.as_ref()).is_some_and(|os| os.name != NODE_OS) {
        return Err(Rejection::new("PodOSNotSupported", "Failed to admit pod as the OS field doesn't match node OS"));
    }
    // SupplementalGroupsPolicy is beta (on) in 1.33: `Strict` needs a node that says it does it.
    let policy = spec.and_then(|s| s.security_context.as_ref()).and_then(|sc| sc.supplemental_groups_policy.as_deref());
    let supported = node
        .status
        .as_ref()
        .and_then(|s| s.features.as_ref())
        .and_then(|f| f.supplemental_groups_policy)
        .unwrap_or(false);
    if policy == Some("Strict") && !supported {
        return Err(Rejection::new(
            "SupplementalGroupsPolicyNotSupported",
            "SupplementalGroupsPolicy=Strict is not supported in this node",
        ));
    }
    match general_filter(pod, admitted, node, allocatable).first() {
        Some(failure) => Err(failure.rejection()),
        None => Ok(()),
    }
}

/// Upstream `generalFilter`: every failure, in upstream's order — insufficient resources (pods,
/// cpu, memory, ephemeral-storage, then scalar resources by name), NodeAffinity, NodeName,
/// NodePorts, and untolerated `NoExecute` taints (not for static pods).
pub(crate) fn general_filter(
    pod: &Pod,
    admitted: &[Pod],
    node: &Node,
    allocatable: &BTreeMap<String, Quantity>,
) -> Vec<Failure> {
    let allocatable = node_allocatable(allocatable, node);
    let requests = pod_requests(&without_missing_extended_resources(pod, &allocatable));
    let mut failures = fits(&requests, admitted, &allocatable);
    if !node_affinity_matches(pod, node) {
        failures.push(Failure::predicate(NODE_AFFINITY));
    }
    if !node_name_matches(pod, node) {
        failures.push(Failure::predicate(NODE_NAME));
    }
    if ports_conflict(pod, admitted) {
        failures.push(Failure::predicate(NODE_PORTS));
    }
    if !is_static(pod) && has_untolerated_no_execute_taint(pod, node) {
        failures.push(Failure::predicate(TAINT_TOLERATION));
    }
    failures
}

/// A quantity as the scheduler framework counts it: CPU in millicores, everything else in whole
/// units rounded up.
fn amount(resource: &str, q: &Quantity) -> i128 {
    let milli = milli_value(&q.0).unwrap_or(0);
    if resource == "cpu" {
        milli
    } else if milli % 1000 > 0 {
        milli / 1000 + 1
    } else {
        milli / 1000
    }
}

/// What the node offers: the kubelet's own figures, plus what the Node object advertises that
/// the kubelet does not compute.
pub(crate) fn node_allocatable(local: &BTreeMap<String, Quantity>, node: &Node) -> BTreeMap<String, i128> {
    let mut out: BTreeMap<String, i128> = local.iter().map(|(k, q)| (k.clone(), amount(k, q))).collect();
    for (k, q) in node.status.as_ref().and_then(|s| s.allocatable.as_ref()).into_iter().flatten() {
        out.entry(k.clone()).or_insert_with(|| amount(k, q));
    }
    out
}

/// Upstream `IsExtendedResourceName`: a domain-prefixed name outside `kubernetes.io`
/// (`example.com/gpu`); the API server validated the rest of its syntax.
fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// Upstream `IsScalarResourceName`: what the scheduler counts besides cpu, memory and
/// ephemeral-storage — extended resources, hugepages, `kubernetes.io/`-prefixed native
/// resources and attachable volumes.
fn is_scalar(name: &str) -> bool {
    is_extended(name)
        || name.starts_with("hugepages-")
        || name.contains("kubernetes.io/")
        || name.starts_with("attachable-volumes-")
}

/// Upstream `removeMissingExtendedResources`: requests of extended resources the node does not
/// know are not the kubelet's business (cluster-level resources, resources backed by DRA).
fn without_missing_extended_resources(pod: &Pod, allocatable: &BTreeMap<String, i128>) -> Pod {
    let mut pod = pod.clone();
    if let Some(spec) = pod.spec.as_mut() {
        for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
            if let Some(requests) = c.resources.as_mut().and_then(|r| r.requests.as_mut()) {
                requests.retain(|name, _| !is_extended(name) || allocatable.contains_key(name));
            }
        }
    }
    pod
}

/// Upstream `noderesources.Fits` (`fitsRequest`): the pod count first, then each requested
/// resource against allocatable minus what the admitted pods request. Scalar resources are
/// checked in name order (upstream walks a map).
pub(crate) fn fits(
    requests: &BTreeMap<String, i128>,
    admitted: &[Pod],
    allocatable: &BTreeMap<String, i128>,
) -> Vec<Failure> {
    let get = |m: &BTreeMap<String, i128>, k: &str| m.get(k).copied().unwrap_or(0);
    let mut out = Vec::new();
    let allowed = get(allocatable, "pods");
    let count = admitted.len() as i128;
    if count + 1 > allowed {
        out.push(Failure::Insufficient { resource: "pods".into(), requested: 1, used: count, capacity: allowed });
    }
    const NATIVE: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];
    let scalar: Vec<(&String, i128)> = requests.iter().filter(|(k, _)| is_scalar(k)).map(|(k, v)| (k, *v)).collect();
    if NATIVE.iter().all(|r| get(requests, r) == 0) && scalar.is_empty() {
        return out;
    }
    let mut used: BTreeMap<String, i128> = BTreeMap::new();
    for p in admitted {
        for (k, v) in pod_requests(p) {
            *used.entry(k).or_default() += v;
        }
    }
    let mut check = |resource: &str, want: i128| {
        let (have, taken) = (get(allocatable, resource), get(&used, resource));
        if want > 0 && want > have - taken {
            out.push(Failure::Insufficient { resource: resource.into(), requested: want, used: taken, capacity: have });
        }
    };
    for r in NATIVE {
        check(r, get(requests, r));
    }
    for (r, want) in scalar {
        check(r, want);
    }
    out
}

/// Upstream `GetRequiredNodeAffinity(pod).Match(node)`: every `nodeSelector` label, and one of
/// the required node affinity terms.
pub(crate) fn node_affinity_matches(pod: &Pod, node: &Node) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return true };
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if spec.node_selector.iter().flatten().any(|(k, v)| labels.get(k) != Some(v)) {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        // Terms are ORed.
        Some(sel) => sel.node_selector_terms.iter().any(|t| term_matches(t, node, &labels)),
        None => true,
    }
}

/// One node selector term: all its expressions and fields hold; a term with neither matches
/// nothing (upstream `nodeaffinity.NewLazyErrorNodeSelector`).
fn term_matches(term: &NodeSelectorTerm, node: &Node, labels: &BTreeMap<String, String>) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    if !exprs.iter().all(|r| requirement_matches(r, labels.get(&r.key))) {
        return false;
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    // `metadata.name` with In or NotIn is the only field selector upstream accepts.
    fields.iter().all(|r| {
        r.key == "metadata.name" && matches!(r.operator.as_str(), "In" | "NotIn") && requirement_matches(r, Some(&name))
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value, values) else { return false };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else { return false };
            if r.operator == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// Upstream `nodename.Fits`: an empty `spec.nodeName` or this node's.
fn node_name_matches(pod: &Pod, node: &Node) -> bool {
    let wanted = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
    wanted.is_empty() || Some(wanted) == node.metadata.name.as_deref()
}

/// A host port as upstream's `HostPortInfo` keys it: defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostPort {
    ip: String,
    protocol: String,
    port: i32,
}

impl HostPort {
    /// `HostPortInfo.CheckConflict`: same protocol and port, on the same IP or with either on
    /// the wildcard address.
    fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// The host ports of a pod's regular containers (upstream's `getContainerPorts` and
/// `NodeInfo.UsedPorts` look at no others).
fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.is_some_and(|p| p > 0))
        .map(|p| HostPort {
            ip: p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "0.0.0.0".into()),
            protocol: p.protocol.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "TCP".into()),
            port: p.host_port.unwrap_or(0),
        })
        .collect()
}

/// Upstream `nodeports.Fits`: none of the pod's host ports is taken by an admitted pod.
fn ports_conflict(pod: &Pod, admitted: &[Pod]) -> bool {
    let wanted = host_ports(pod);
    if wanted.is_empty() {
        return false;
    }
    let used: Vec<HostPort> = admitted.iter().flat_map(host_ports).collect();
    wanted.iter().any(|w| used.iter().any(|u| w.conflicts(u)))
}

/// Upstream `types.IsStaticPod`: a config-source annotation other than `api`.
fn is_static(pod: &Pod) -> bool {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(CONFIG_SOURCE_ANNOTATION)).is_some_and(|s| s != "api")
}

/// Upstream `FindMatchingUntoleratedTaint` over the node's `NoExecute` taints, the only ones the
/// kubelet cares about (`NoSchedule` is the scheduler's).
fn has_untolerated_no_execute_taint(pod: &Pod, node: &Node) -> bool {
    let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
    taints.iter().filter(|t| t.effect == "NoExecute").any(|taint| {
        !tolerations.iter().any(|t| {
            // Upstream `Toleration.ToleratesTaint`.
            if t.effect.as_deref().is_some_and(|e| !e.is_empty() && e != taint.effect) {
                return false;
            }
            if t.key.as_deref().is_some_and(|k| !k.is_empty() && k != taint.key) {
                return false;
            }
            match t.operator.as_deref().unwrap_or("") {
                "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
                "Exists" => true,
                _ => false,
            }
        })
    })
}

/// The strategic merge patch of `pods/status` that fails a rejected pod (upstream `rejectPod`
/// through the status manager): phase `Failed`, the reason, the message behind
/// [`REJECTED_PREFIX`], a start time if it had none, and the kubelet-owned conditions removed
/// (the status manager takes those from the status it writes, and a rejected pod's has none).
/// Bound to the pod's uid, so it never lands on a successor of the same name.
pub(crate) fn rejected_status(pod: &Pod, rejection: &Rejection, now: Timestamp) -> Value {
    let status = pod.status.clone().unwrap_or_default();
    let mut patch = json!({
        "phase": "Failed",
        "reason": rejection.reason,
        "message": format!("{REJECTED_PREFIX}{}", rejection.message),
    });
    if status.start_time.is_none() {
        patch["startTime"] = serde_json::to_value(Time(now)).unwrap_or(Value::Null);
    }
    let drop: Vec<Value> = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| KUBELET_CONDITIONS.contains(&c.type_.as_str()))
        .map(|c| json!({"type": c.type_, "$patch": "delete"}))
        .collect();
    if !drop.is_empty() {
        patch["conditions"] = Value::Array(drop);
    }
    json!({"metadata": {"uid": pod.metadata.uid}, "status": patch})
}

#[cfg(test)]
mod tests;
