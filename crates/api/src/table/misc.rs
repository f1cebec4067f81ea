//! Printers for the remaining API groups: policy, networking, discovery, RBAC, coordination,
//! storage, scheduling, node, certificates and admission registration.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::core::load_balancer_ingress;
use super::format::{
    age, at, cell, format_label_selector, int_at, list, list_with_more, name, opt_bool, opt_int, opt_str, quantity,
    selector_go_string, str_at,
};
use super::{AGE, Column, NAME, docs, duration};

pub(super) const POD_DISRUPTION_BUDGET: &[Column] = &[
    NAME,
    Column::new("Min Available", "string", "The minimum number of pods that must be available."),
    Column::new("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
    Column::new("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
    AGE,
];

pub(super) fn pod_disruption_budget(obj: &Value, now: Timestamp) -> Vec<Value> {
    // An IntOrString prints as its number or its string ("50%").
    let int_or_string = |field: &str| match at(obj, &["spec", field]) {
        None | Some(Value::Null) => "N/A".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    vec![
        name(obj),
        cell(int_or_string("minAvailable")),
        cell(int_or_string("maxUnavailable")),
        json!(int_at(obj, &["status", "disruptionsAllowed"])),
        age(obj, now),
    ]
}

pub(super) const INGRESS: &[Column] = &[
    NAME,
    Column::new(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    Column::new("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
    Column::new("Address", "string", "Address is a list containing ingress points for the load-balancer"),
    Column::new("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

pub(super) fn ingress(obj: &Value, now: Timestamp) -> Vec<Value> {
    let rules = list(obj, &["spec", "rules"]);
    const MAX: usize = 3;
    // Hosts of the first rules until three are shown; host-less rules show nothing.
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = match (hosts.is_empty(), more) {
        (true, _) => "*".to_string(),
        (false, true) => format!("{} + {} more...", hosts.join(","), rules.len() - MAX),
        (false, false) => hosts.join(","),
    };
    let ports = if list(obj, &["spec", "tls"]).is_empty() { "80" } else { "80, 443" };
    vec![
        name(obj),
        cell(opt_str(obj, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        cell(hosts),
        cell(load_balancer_ingress(list(obj, &["status", "loadBalancer", "ingress"])).join(",")),
        cell(ports),
        age(obj, now),
    ]
}

pub(super) const INGRESS_CLASS: &[Column] = &[
    NAME,
    Column::new("Controller", "string", "Controller that is responsible for handling this class"),
    Column::new("Parameters", "string", "A reference to a resource with additional parameters"),
    AGE,
];

pub(super) fn ingress_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let parameters = match at(obj, &["spec", "parameters"]).filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let kind = match opt_str(p, &["apiGroup"]) {
                Some(group) => format!("{}.{group}", str_at(p, &["kind"])),
                None => str_at(p, &["kind"]).to_string(),
            };
            format!("{kind}/{}", str_at(p, &["name"]))
        }
    };
    vec![name(obj), cell(str_at(obj, &["spec", "controller"])), cell(parameters), age(obj, now)]
}

pub(super) const NETWORK_POLICY: &[Column] =
    &[NAME, Column::new("Pod-Selector", "string", docs::NETPOL_POD_SELECTOR), AGE];

pub(super) fn network_policy(obj: &Value, now: Timestamp) -> Vec<Value> {
    // `podSelector` is a struct, never nil: an absent one is the empty selector.
    let empty = json!({});
    let selector = at(obj, &["spec", "podSelector"]).filter(|s| !s.is_null()).unwrap_or(&empty);
    vec![name(obj), cell(format_label_selector(Some(selector))), age(obj, now)]
}

/// Upstream declares no Age column for IPAddresses but still emits the age cell.
pub(super) const IP_ADDRESS: &[Column] = &[NAME, Column::new("ParentRef", "string", docs::IPADDR_PARENT)];

pub(super) fn ip_address(obj: &Value, now: Timestamp) -> Vec<Value> {
    let parent = match at(obj, &["spec", "parentRef"]).filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let (group, resource) = (str_at(p, &["group"]), str_at(p, &["resource"]));
            let mut s = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
            s = s.to_lowercase();
            let namespace = str_at(p, &["namespace"]);
            if !namespace.is_empty() {
                s = format!("{s}/{namespace}");
            }
            format!("{s}/{}", str_at(p, &["name"]))
        }
    };
    vec![name(obj), cell(parent), age(obj, now)]
}

pub(super) const SERVICE_CIDR: &[Column] = &[NAME, Column::new("CIDRs", "string", docs::SCIDR_CIDRS), AGE];

pub(super) fn service_cidr(obj: &Value, now: Timestamp) -> Vec<Value> {
    let cidrs: Vec<&str> = list(obj, &["spec", "cidrs"]).iter().filter_map(Value::as_str).collect();
    vec![name(obj), cell(cidrs.join(",")), age(obj, now)]
}

pub(super) const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    Column::new("AddressType", "string", docs::EPS_ADDRESS_TYPE),
    Column::new("Ports", "string", docs::EPS_PORTS),
    Column::new("Endpoints", "string", docs::EPS_ENDPOINTS),
    AGE,
];

pub(super) fn endpoint_slice(obj: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let ports_list = list(obj, &["ports"]);
    let ports: Vec<String> = ports_list
        .iter()
        .take(MAX)
        .map(|p| match (opt_int(p, &["port"]), opt_str(p, &["name"])) {
            (Some(port), _) => port.to_string(),
            (None, Some(name)) => name.to_string(),
            (None, None) => "*".to_string(),
        })
        .collect();
    let ports = list_with_more(&ports, ports_list.len() > MAX, ports_list.len(), MAX);
    let addresses: Vec<&str> = list(obj, &["endpoints"])
        .iter()
        .flat_map(|e| list(e, &["addresses"]).iter().filter_map(Value::as_str))
        .collect();
    let shown: Vec<String> = addresses.iter().take(MAX).map(|a| a.to_string()).collect();
    let endpoints = list_with_more(&shown, addresses.len() > MAX, addresses.len(), MAX);
    vec![name(obj), cell(str_at(obj, &["addressType"])), cell(ports), cell(endpoints), age(obj, now)]
}

pub(super) const ROLE_BINDING: &[Column] = &[
    NAME,
    Column::new("Role", "string", docs::RB_ROLE_REF),
    AGE,
    Column::wide("Users", "string", "Users in the roleBinding"),
    Column::wide("Groups", "string", "Groups in the roleBinding"),
    Column::wide("ServiceAccounts", "string", "ServiceAccounts in the roleBinding"),
];

pub(super) const CLUSTER_ROLE_BINDING: &[Column] = &[
    NAME,
    Column::new("Role", "string", docs::CRB_ROLE_REF),
    AGE,
    Column::wide("Users", "string", "Users in the clusterRoleBinding"),
    Column::wide("Groups", "string", "Groups in the clusterRoleBinding"),
    Column::wide("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding"),
];

/// RoleBindings and ClusterRoleBindings print alike: `Kind/name` of the role and the subjects.
pub(super) fn role_binding(obj: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!("{}/{}", str_at(obj, &["roleRef", "kind"]), str_at(obj, &["roleRef", "name"]));
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subject in list(obj, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => sas.push(format!("{}/{subject_name}", str_at(subject, &["namespace"]))),
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    vec![name(obj), cell(role), age(obj, now), cell(users.join(", ")), cell(groups.join(", ")), cell(sas.join(", "))]
}

pub(super) const LEASE: &[Column] = &[NAME, Column::new("Holder", "string", docs::LEASE_HOLDER), AGE];

pub(super) fn lease(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), cell(str_at(obj, &["spec", "holderIdentity"])), age(obj, now)]
}

pub(super) const STORAGE_CLASS: &[Column] = &[
    NAME,
    Column::new("Provisioner", "string", docs::SC_PROVISIONER),
    Column::new("ReclaimPolicy", "string", docs::SC_RECLAIM),
    Column::new("VolumeBindingMode", "string", docs::SC_BINDING_MODE),
    Column::new("AllowVolumeExpansion", "string", docs::SC_EXPANSION),
    AGE,
];

pub(super) fn storage_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let annotation = |key: &str| str_at(obj, &["metadata", "annotations", key]) == "true";
    let is_default = annotation("storageclass.kubernetes.io/is-default-class")
        || annotation("storageclass.beta.kubernetes.io/is-default-class");
    let name = str_at(obj, &["metadata", "name"]);
    let name = if is_default { format!("{name} (default)") } else { name.to_string() };
    vec![
        cell(name),
        cell(str_at(obj, &["provisioner"])),
        cell(opt_str(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
        cell(opt_str(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
        json!(opt_bool(obj, &["allowVolumeExpansion"]).unwrap_or(false)),
        age(obj, now),
    ]
}

pub(super) const CSI_DRIVER: &[Column] = &[
    NAME,
    Column::new("AttachRequired", "boolean", docs::CSID_ATTACH),
    Column::new("PodInfoOnMount", "boolean", docs::CSID_POD_INFO),
    Column::new("StorageCapacity", "boolean", docs::CSID_CAPACITY),
    Column::new("TokenRequests", "string", docs::CSID_TOKEN),
    Column::new("RequiresRepublish", "boolean", docs::CSID_REPUBLISH),
    Column::new("Modes", "string", docs::CSID_MODES),
    AGE,
];

pub(super) fn csi_driver(obj: &Value, now: Timestamp) -> Vec<Value> {
    let flag = |field: &str, default: bool| json!(opt_bool(obj, &["spec", field]).unwrap_or(default));
    let token_requests = match at(obj, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        None => "<unset>".to_string(),
        Some(requests) => requests.iter().map(|t| str_at(t, &["audience"])).collect::<Vec<_>>().join(","),
    };
    let modes: Vec<&str> = list(obj, &["spec", "volumeLifecycleModes"]).iter().filter_map(Value::as_str).collect();
    let modes = if modes.is_empty() { "<none>".to_string() } else { modes.join(",") };
    vec![
        name(obj),
        flag("attachRequired", true),
        flag("podInfoOnMount", false),
        flag("storageCapacity", false),
        cell(token_requests),
        flag("requiresRepublish", false),
        cell(modes),
        age(obj, now),
    ]
}

pub(super) const CSI_NODE: &[Column] = &[
    NAME,
    Column::new("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"),
    AGE,
];

pub(super) fn csi_node(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(list(obj, &["spec", "drivers"]).len()), age(obj, now)]
}

pub(super) const CSI_STORAGE_CAPACITY: &[Column] = &[
    NAME,
    Column::new("StorageClassName", "string", docs::CSISC_CLASS),
    Column::new("Capacity", "string", docs::CSISC_CAPACITY),
];

pub(super) fn csi_storage_capacity(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let capacity = match at(obj, &["capacity"]) {
        None | Some(Value::Null) => "<unset>".to_string(),
        q => quantity(q),
    };
    vec![name(obj), cell(str_at(obj, &["storageClassName"])), cell(capacity)]
}

pub(super) const VOLUME_ATTACHMENT: &[Column] = &[
    NAME,
    // Upstream marks the attacher as a name column too.
    Column { name: "Attacher", type_: "string", format: "name", description: docs::VA_ATTACHER, priority: 0 },
    Column::new("PV", "string", docs::VA_PV),
    Column::new("Node", "string", docs::VA_NODE),
    Column::new("Attached", "boolean", docs::VA_ATTACHED),
    AGE,
];

pub(super) fn volume_attachment(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        cell(str_at(obj, &["spec", "attacher"])),
        cell(str_at(obj, &["spec", "source", "persistentVolumeName"])),
        cell(str_at(obj, &["spec", "nodeName"])),
        json!(opt_bool(obj, &["status", "attached"]).unwrap_or(false)),
        age(obj, now),
    ]
}

pub(super) const VOLUME_ATTRIBUTES_CLASS: &[Column] =
    &[NAME, Column::new("DriverName", "string", docs::VAC_DRIVER), AGE];

pub(super) fn volume_attributes_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), cell(str_at(obj, &["driverName"])), age(obj, now)]
}

pub(super) const PRIORITY_CLASS: &[Column] = &[
    NAME,
    Column::new("Value", "integer", docs::PC_VALUE),
    Column::new("Global-Default", "boolean", docs::PC_GLOBAL_DEFAULT),
    AGE,
    // Not marked wide upstream, so kubectl always shows it.
    Column::new("PreemptionPolicy", "string", docs::PC_PREEMPTION),
];

pub(super) fn priority_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(int_at(obj, &["value"])),
        json!(opt_bool(obj, &["globalDefault"]).unwrap_or(false)),
        age(obj, now),
        cell(str_at(obj, &["preemptionPolicy"])),
    ]
}

pub(super) const RUNTIME_CLASS: &[Column] = &[
    NAME,
    // Upstream looks this description up under a key ObjectMeta does not have: it is empty.
    Column::new("Handler", "string", ""),
    AGE,
];

pub(super) fn runtime_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), cell(str_at(obj, &["handler"])), age(obj, now)]
}

pub(super) const CSR: &[Column] = &[
    NAME,
    AGE,
    Column::new("SignerName", "string", docs::CSR_SIGNER),
    Column::new("Requestor", "string", docs::CSR_REQUEST),
    Column::new("RequestedDuration", "string", docs::CSR_EXPIRATION),
    Column::new("Condition", "string", docs::CSR_CONDITIONS),
];

pub(super) fn certificate_signing_request(obj: &Value, now: Timestamp) -> Vec<Value> {
    let conditions = list(obj, &["status", "conditions"]);
    let has = |t: &str| conditions.iter().any(|c| str_at(c, &["type"]) == t);
    let mut condition = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        condition.push_str(",Failed");
    }
    if !str_at(obj, &["status", "certificate"]).is_empty() {
        condition.push_str(",Issued");
    }
    let signer = match str_at(obj, &["spec", "signerName"]) {
        "" => "<none>",
        s => s,
    };
    let requested = opt_int(obj, &["spec", "expirationSeconds"]).map_or_else(
        || "<none>".to_string(),
        |secs| duration::human_duration(std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0))),
    );
    vec![
        name(obj),
        age(obj, now),
        cell(signer),
        cell(str_at(obj, &["spec", "username"])),
        cell(requested),
        cell(condition),
    ]
}

const WEBHOOKS_DOC: &str = "Webhooks indicates the number of webhooks registered in this configuration";

pub(super) const MUTATING_WEBHOOK: &[Column] = &[NAME, Column::new("Webhooks", "integer", WEBHOOKS_DOC), AGE];
pub(super) const VALIDATING_WEBHOOK: &[Column] = MUTATING_WEBHOOK;

pub(super) fn webhook(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(list(obj, &["webhooks"]).len()), age(obj, now)]
}

pub(super) const VALIDATING_ADMISSION_POLICY: &[Column] = &[
    NAME,
    Column::new(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    Column::new("ParamKind", "string", "ParamKind specifies the kind of resources used to parameterize this policy"),
    AGE,
];

pub(super) fn validating_admission_policy(obj: &Value, now: Timestamp) -> Vec<Value> {
    let param_kind = match at(obj, &["spec", "paramKind"]).filter(|p| p.is_object()) {
        None => "<unset>".to_string(),
        Some(p) => format!("{}/{}", str_at(p, &["apiVersion"]), str_at(p, &["kind"])),
    };
    vec![name(obj), json!(list(obj, &["spec", "validations"]).len()), cell(param_kind), age(obj, now)]
}

pub(super) const VALIDATING_ADMISSION_POLICY_BINDING: &[Column] = &[
    NAME,
    Column::new(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    Column::new("ParamRef", "string", "ParamRef indicates the param resource which sets the configration param"),
    AGE,
];

pub(super) fn validating_admission_policy_binding(obj: &Value, now: Timestamp) -> Vec<Value> {
    let param = match at(obj, &["spec", "paramRef"]).filter(|p| p.is_object()) {
        None => "<unset>".to_string(),
        Some(p) => match (str_at(p, &["name"]), str_at(p, &["namespace"])) {
            ("", _) => match at(p, &["selector"]).filter(|s| s.is_object()) {
                Some(sel) => selector_go_string(sel),
                None => "<unset>".to_string(),
            },
            // The param may be cluster-scoped; without a namespace upstream prints `*`.
            (n, "") => format!("*/{n}"),
            (n, ns) => format!("{ns}/{n}"),
        },
    };
    vec![name(obj), cell(str_at(obj, &["spec", "policyName"])), cell(param), age(obj, now)]
}
