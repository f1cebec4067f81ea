//! Printers for the core (`v1`) kinds other than pods, and for `events.k8s.io` Events (which
//! upstream prints through the core Event printer after conversion).

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{
    access_modes, age, at, cell, containers, deleting, format_labels, int_at, join_host_port, list, map_len, name,
    opt_str, quantity, since, str_at,
};
use super::{AGE, Column, NAME, docs};

const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

pub(super) const POD_TEMPLATE: &[Column] = &[
    NAME,
    Column::new("Containers", "string", CONTAINERS_DOC),
    Column::new("Images", "string", IMAGES_DOC),
    Column::new("Pod Labels", "string", "The labels for the pod template."),
];

pub(super) fn pod_template(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(list(obj, &["template", "spec", "containers"]));
    vec![name(obj), names, images, cell(format_labels(at(obj, &["template", "metadata", "labels"])))]
}

pub(super) const REPLICATION_CONTROLLER: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", docs::RC_SPEC_REPLICAS),
    Column::new("Current", "integer", docs::RC_STATUS_REPLICAS),
    Column::new("Ready", "integer", docs::RC_STATUS_READY),
    AGE,
    Column::wide("Containers", "string", CONTAINERS_DOC),
    Column::wide("Images", "string", IMAGES_DOC),
    Column::wide("Selector", "string", docs::RC_SPEC_SELECTOR),
];

pub(super) fn replication_controller(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(list(obj, &["spec", "template", "spec", "containers"]));
    vec![
        name(obj),
        // `spec.replicas` defaults to 1.
        json!(super::format::opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
        json!(int_at(obj, &["status", "replicas"])),
        json!(int_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        names,
        images,
        cell(format_labels(at(obj, &["spec", "selector"]))),
    ]
}

pub(super) const SERVICE: &[Column] = &[
    NAME,
    Column::new("Type", "string", docs::SVC_TYPE),
    Column::new("Cluster-IP", "string", docs::SVC_CLUSTER_IP),
    Column::new("External-IP", "string", docs::SVC_EXTERNAL_IPS),
    Column::new("Port(s)", "string", docs::SVC_PORTS),
    AGE,
    Column::wide("Selector", "string", docs::SVC_SELECTOR),
];

pub(super) fn service(obj: &Value, now: Timestamp) -> Vec<Value> {
    // `spec.type` defaults to ClusterIP.
    let type_ = opt_str(obj, &["spec", "type"]).unwrap_or("ClusterIP");
    // The internal service lists `clusterIPs`; conversion fills it from `clusterIP`.
    let cluster_ip = list(obj, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_str(obj, &["spec", "clusterIP"]).filter(|s| !s.is_empty()))
        .unwrap_or("<none>");
    let ports: Vec<String> = list(obj, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let protocol = opt_str(p, &["protocol"]).unwrap_or("TCP");
            match int_at(p, &["nodePort"]) {
                node_port if node_port > 0 => format!("{port}:{node_port}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() { "<none>".to_string() } else { ports.join(",") };
    vec![
        name(obj),
        cell(type_),
        cell(cluster_ip),
        cell(service_external_ip(obj, type_)),
        cell(ports),
        age(obj, now),
        cell(format_labels(at(obj, &["spec", "selector"]))),
    ]
}

/// EXTERNAL-IP: external IPs for ClusterIP/NodePort, load-balancer ingress (or `<pending>`)
/// for LoadBalancer, the external name for ExternalName.
fn service_external_ip(obj: &Value, type_: &str) -> String {
    let external: Vec<&str> = list(obj, &["spec", "externalIPs"]).iter().filter_map(Value::as_str).collect();
    match type_ {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let lb = load_balancer_ingress(list(obj, &["status", "loadBalancer", "ingress"]));
            let mut all: Vec<String> = lb.clone();
            if !external.is_empty() {
                all.extend(external.iter().map(|s| s.to_string()));
                return all.join(",");
            }
            if lb.is_empty() { "<pending>".to_string() } else { lb.join(",") }
        }
        "ExternalName" => str_at(obj, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// The sorted, deduplicated IPs (or hostnames) of load-balancer ingress points. Upstream clips
/// this to 16 characters only for client-side narrow output; the server always prints wide.
pub(super) fn load_balancer_ingress(ingress: &[Value]) -> Vec<String> {
    let set: BTreeSet<String> = ingress
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, &["ip"]);
            let host = str_at(i, &["hostname"]);
            if !ip.is_empty() {
                Some(ip.to_string())
            } else if !host.is_empty() {
                Some(host.to_string())
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect()
}

pub(super) const ENDPOINTS: &[Column] = &[NAME, Column::new("Endpoints", "string", docs::EP_SUBSETS), AGE];

pub(super) fn endpoints(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), cell(format_endpoints(list(obj, &["subsets"]))), age(obj, now)]
}

/// `formatEndpoints`: up to three `ip:port` (or bare IPs for port-less subsets), then
/// "+ N more...".
fn format_endpoints(subsets: &[Value]) -> String {
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let (mut shown, mut more, mut count) = (Vec::new(), false, 0usize);
    for subset in subsets {
        let addresses = list(subset, &["addresses"]);
        let ports = list(subset, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                shown.push(join_host_port(str_at(a, &["ip"]), int_at(port, &["port"])));
            }
        }
    }
    let joined = shown.join(",");
    if more { format!("{joined} + {} more...", count - MAX) } else { joined }
}

pub(super) const NODE: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    AGE,
    Column::new("Version", "string", docs::NODE_KUBELET),
    Column::wide("Internal-IP", "string", docs::NODE_ADDRESSES),
    Column::wide("External-IP", "string", docs::NODE_ADDRESSES),
    Column::wide("OS-Image", "string", docs::NODE_OS_IMAGE),
    Column::wide("Kernel-Version", "string", docs::NODE_KERNEL),
    Column::wide("Container-Runtime", "string", docs::NODE_RUNTIME),
];

pub(super) fn node(obj: &Value, now: Timestamp) -> Vec<Value> {
    // Only the Ready condition shows; a later duplicate wins, as in upstream's map.
    let ready = list(obj, &["status", "conditions"]).iter().rev().find(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if super::format::opt_bool(obj, &["spec", "unschedulable"]) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let roles: BTreeSet<&str> = at(obj, &["metadata", "labels"])
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
                    Some(role) if !role.is_empty() => Some(role),
                    Some(_) => None,
                    None if k == "kubernetes.io/role" => v.as_str().filter(|v| !v.is_empty()),
                    None => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let roles = if roles.is_empty() { "<none>".to_string() } else { roles.into_iter().collect::<Vec<_>>().join(",") };
    let address = |kind: &str| {
        list(obj, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == kind)
            .map_or("<none>", |a| str_at(a, &["address"]))
            .to_string()
    };
    let info = |field: &str| match str_at(obj, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        name(obj),
        cell(status.join(",")),
        cell(roles),
        age(obj, now),
        cell(str_at(obj, &["status", "nodeInfo", "kubeletVersion"])),
        cell(address("InternalIP")),
        cell(address("ExternalIP")),
        cell(info("osImage")),
        cell(info("kernelVersion")),
        cell(info("containerRuntimeVersion")),
    ]
}

pub(super) const NAMESPACE: &[Column] = &[NAME, Column::new("Status", "string", "The status of the namespace"), AGE];

pub(super) fn namespace(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), cell(str_at(obj, &["status", "phase"])), age(obj, now)]
}

pub(super) const EVENT: &[Column] = &[
    Column::new("Last Seen", "string", docs::EV_LAST),
    Column::new("Type", "string", docs::EV_TYPE),
    Column::new("Reason", "string", docs::EV_REASON),
    Column::new("Object", "string", docs::EV_INVOLVED),
    Column::wide("Subobject", "string", docs::OBJREF_FIELD_PATH),
    Column::wide("Source", "string", docs::EV_SOURCE),
    Column::new("Message", "string", docs::EV_MESSAGE),
    Column::wide("First Seen", "string", docs::EV_FIRST),
    Column::wide("Count", "string", docs::EV_COUNT),
    Column { name: "Name", type_: "string", format: "name", description: docs::META_NAME, priority: 1 },
];

/// The fields of an Event the printer uses, named as in core/v1 (events.k8s.io/v1 renames and
/// deprecates several of them).
struct EventView<'a> {
    first_timestamp: &'a str,
    last_timestamp: &'a str,
    event_time: &'a str,
    count: i64,
    series: Option<&'a Value>,
    involved: Option<&'a Value>,
    source: Option<&'a Value>,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    message: &'a str,
}

pub(super) fn core_event(obj: &Value, now: Timestamp) -> Vec<Value> {
    let view = EventView {
        first_timestamp: str_at(obj, &["firstTimestamp"]),
        last_timestamp: str_at(obj, &["lastTimestamp"]),
        event_time: str_at(obj, &["eventTime"]),
        count: int_at(obj, &["count"]),
        series: at(obj, &["series"]).filter(|s| s.is_object()),
        involved: at(obj, &["involvedObject"]),
        source: at(obj, &["source"]),
        reporting_controller: str_at(obj, &["reportingComponent"]),
        reporting_instance: str_at(obj, &["reportingInstance"]),
        message: str_at(obj, &["message"]),
    };
    event_cells(obj, &view, now)
}

pub(super) fn events_event(obj: &Value, now: Timestamp) -> Vec<Value> {
    let view = EventView {
        first_timestamp: str_at(obj, &["deprecatedFirstTimestamp"]),
        last_timestamp: str_at(obj, &["deprecatedLastTimestamp"]),
        event_time: str_at(obj, &["eventTime"]),
        count: int_at(obj, &["deprecatedCount"]),
        series: at(obj, &["series"]).filter(|s| s.is_object()),
        involved: at(obj, &["regarding"]),
        source: at(obj, &["deprecatedSource"]),
        reporting_controller: str_at(obj, &["reportingController"]),
        reporting_instance: str_at(obj, &["reportingInstance"]),
        message: str_at(obj, &["note"]),
    };
    event_cells(obj, &view, now)
}

fn event_cells(obj: &Value, ev: &EventView<'_>, now: Timestamp) -> Vec<Value> {
    let ts = |s: &str| super::duration::translate_timestamp_since(Some(s), now);
    let first = if ev.first_timestamp.is_empty() { ts(ev.event_time) } else { ts(ev.first_timestamp) };
    let mut last = if ev.last_timestamp.is_empty() { first.clone() } else { ts(ev.last_timestamp) };
    let mut count = ev.count;
    if let Some(series) = ev.series {
        last = since(series, &["lastObservedTime"], now);
        count = int_at(series, &["count"]);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }
    let involved = ev.involved.unwrap_or(&Value::Null);
    let kind = str_at(involved, &["kind"]).to_lowercase();
    let target = match str_at(involved, &["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let source = ev.source.unwrap_or(&Value::Null);
    let first_non_empty = |a: &'_ str, b: &'_ str| if a.is_empty() { b.to_string() } else { a.to_string() };
    let component = first_non_empty(str_at(source, &["component"]), ev.reporting_controller);
    let host = first_non_empty(str_at(source, &["host"]), ev.reporting_instance);
    let source = if host.is_empty() { component } else { format!("{component}, {host}") };
    vec![
        cell(last),
        cell(str_at(obj, &["type"])),
        cell(str_at(obj, &["reason"])),
        cell(target),
        cell(str_at(involved, &["fieldPath"])),
        cell(source),
        cell(ev.message.trim()),
        cell(first),
        json!(count),
        name(obj),
    ]
}

pub(super) const CONFIG_MAP: &[Column] = &[NAME, Column::new("Data", "string", docs::CM_DATA), AGE];

pub(super) fn config_map(obj: &Value, now: Timestamp) -> Vec<Value> {
    let data = map_len(obj, &["data"]) + map_len(obj, &["binaryData"]);
    vec![name(obj), json!(data), age(obj, now)]
}

pub(super) const SECRET: &[Column] =
    &[NAME, Column::new("Type", "string", docs::SECRET_TYPE), Column::new("Data", "string", docs::SECRET_DATA), AGE];

pub(super) fn secret(obj: &Value, now: Timestamp) -> Vec<Value> {
    // `stringData` is merged into `data` on write upstream; count the union in case it was not.
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    for field in ["data", "stringData"] {
        if let Some(m) = at(obj, &[field]).and_then(Value::as_object) {
            keys.extend(m.keys().map(String::as_str));
        }
    }
    // `type` defaults to Opaque.
    let type_ = opt_str(obj, &["type"]).unwrap_or("Opaque");
    vec![name(obj), cell(type_), json!(keys.len()), age(obj, now)]
}

pub(super) const SERVICE_ACCOUNT: &[Column] = &[NAME, Column::new("Secrets", "string", docs::SA_SECRETS), AGE];

pub(super) fn service_account(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(list(obj, &["secrets"]).len()), age(obj, now)]
}

pub(super) const PERSISTENT_VOLUME: &[Column] = &[
    NAME,
    Column::new("Capacity", "string", docs::PV_CAPACITY),
    Column::new("Access Modes", "string", docs::PV_ACCESS_MODES),
    Column::new("Reclaim Policy", "string", docs::PV_RECLAIM),
    Column::new("Status", "string", docs::PV_PHASE),
    Column::new("Claim", "string", docs::PV_CLAIM_REF),
    Column::new("StorageClass", "string", "StorageClass of the pv"),
    Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    Column::new("Reason", "string", docs::PV_REASON),
    AGE,
    Column::wide("VolumeMode", "string", docs::PV_VOLUME_MODE),
];

const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

pub(super) fn persistent_volume(obj: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match at(obj, &["spec", "claimRef"]).filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let phase = if deleting(obj) { "Terminating" } else { str_at(obj, &["status", "phase"]) };
    let class = opt_str(obj, &["metadata", "annotations", BETA_STORAGE_CLASS_ANNOTATION])
        .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]));
    vec![
        name(obj),
        cell(quantity(at(obj, &["spec", "capacity", "storage"]))),
        cell(access_modes(list(obj, &["spec", "accessModes"]))),
        cell(str_at(obj, &["spec", "persistentVolumeReclaimPolicy"])),
        cell(phase),
        cell(claim),
        cell(class),
        cell(opt_str(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        cell(str_at(obj, &["status", "reason"])),
        age(obj, now),
        cell(opt_str(obj, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
}

pub(super) const PERSISTENT_VOLUME_CLAIM: &[Column] = &[
    NAME,
    Column::new("Status", "string", docs::PVC_PHASE),
    Column::new("Volume", "string", docs::PVC_VOLUME_NAME),
    Column::new("Capacity", "string", docs::PVC_CAPACITY),
    Column::new("Access Modes", "string", docs::PVC_ACCESS_MODES),
    Column::new("StorageClass", "string", "StorageClass of the pvc"),
    Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
    AGE,
    Column::wide("VolumeMode", "string", docs::PVC_VOLUME_MODE),
];

pub(super) fn persistent_volume_claim(obj: &Value, now: Timestamp) -> Vec<Value> {
    let phase = if deleting(obj) { "Terminating" } else { str_at(obj, &["status", "phase"]) };
    let volume = str_at(obj, &["spec", "volumeName"]);
    // Capacity and access modes are only meaningful once bound.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (quantity(at(obj, &["status", "capacity", "storage"])), access_modes(list(obj, &["status", "accessModes"])))
    };
    let class = opt_str(obj, &["metadata", "annotations", BETA_STORAGE_CLASS_ANNOTATION])
        .or_else(|| opt_str(obj, &["spec", "storageClassName"]))
        .unwrap_or("");
    vec![
        name(obj),
        cell(phase),
        cell(volume),
        cell(capacity),
        cell(modes),
        cell(class),
        cell(opt_str(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        age(obj, now),
        cell(opt_str(obj, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
}

pub(super) const RESOURCE_QUOTA: &[Column] = &[
    NAME,
    Column::new("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    Column::new(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

pub(super) fn resource_quota(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut resources: Vec<&String> =
        at(obj, &["status", "hard"]).and_then(Value::as_object).map(|m| m.keys().collect()).unwrap_or_default();
    resources.sort();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for resource in resources {
        let used = quantity(at(obj, &["status", "used", resource.as_str()]));
        let hard = quantity(at(obj, &["status", "hard", resource.as_str()]));
        let entry = format!("{resource}: {used}/{hard}");
        // `limits.cpu` and friends go to the Limit column.
        match resource.split_once('.') {
            Some(("limits", _)) => limits.push(entry),
            _ => requests.push(entry),
        }
    }
    vec![name(obj), cell(requests.join(", ")), cell(limits.join(", ")), age(obj, now)]
}
