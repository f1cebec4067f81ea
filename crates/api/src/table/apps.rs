//! Printers for workloads and their controllers' kinds: `apps`, `batch` and `autoscaling`.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{
    age, at, cell, containers, deleting, format_label_selector, format_labels, int_at, list, name, opt_int, opt_str,
    quantity_ptr, selector_string, str_at, timestamp,
};
use super::{AGE, Column, NAME, docs, duration};

const CONTAINERS: Column = Column::wide("Containers", "string", "Names of each container in the template.");
const IMAGES: Column = Column::wide("Images", "string", "Images referenced by each container in the template.");

/// `spec.replicas`, which defaults to 1 for every scalable workload.
fn desired_replicas(obj: &Value) -> i64 {
    opt_int(obj, &["spec", "replicas"]).unwrap_or(1)
}

/// The container names and images of `spec.template`.
fn template_containers(obj: &Value) -> (Value, Value) {
    containers(list(obj, &["spec", "template", "spec", "containers"]))
}

pub(super) const REPLICA_SET: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", docs::RS_SPEC_REPLICAS),
    Column::new("Current", "integer", docs::RS_STATUS_REPLICAS),
    Column::new("Ready", "integer", docs::RS_STATUS_READY),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", docs::RS_SPEC_SELECTOR),
];

pub(super) fn replica_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    vec![
        name(obj),
        json!(desired_replicas(obj)),
        json!(int_at(obj, &["status", "replicas"])),
        json!(int_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        names,
        images,
        cell(format_label_selector(at(obj, &["spec", "selector"]))),
    ]
}

pub(super) const DEPLOYMENT: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new("Up-to-date", "string", docs::DEPLOY_UPDATED),
    Column::new("Available", "string", docs::DEPLOY_AVAILABLE),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", docs::DEPLOY_SELECTOR),
];

pub(super) fn deployment(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    // Unlike the other workloads, an empty selector prints as "" and a bad one as <invalid>.
    let selector = selector_string(at(obj, &["spec", "selector"])).unwrap_or_else(|()| "<invalid>".to_string());
    vec![
        name(obj),
        cell(format!("{}/{}", int_at(obj, &["status", "readyReplicas"]), desired_replicas(obj))),
        json!(int_at(obj, &["status", "updatedReplicas"])),
        json!(int_at(obj, &["status", "availableReplicas"])),
        age(obj, now),
        names,
        images,
        cell(selector),
    ]
}

pub(super) const STATEFUL_SET: &[Column] =
    &[NAME, Column::new("Ready", "string", "Number of the pod with ready state"), AGE, CONTAINERS, IMAGES];

pub(super) fn stateful_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    vec![
        name(obj),
        cell(format!("{}/{}", int_at(obj, &["status", "readyReplicas"]), desired_replicas(obj))),
        age(obj, now),
        names,
        images,
    ]
}

pub(super) const DAEMON_SET: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", docs::DS_DESIRED),
    Column::new("Current", "integer", docs::DS_CURRENT),
    Column::new("Ready", "integer", docs::DS_READY),
    Column::new("Up-to-date", "integer", docs::DS_UPDATED),
    Column::new("Available", "integer", docs::DS_AVAILABLE),
    Column::new("Node Selector", "string", docs::POD_NODE_SELECTOR),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", docs::DS_SELECTOR),
];

pub(super) fn daemon_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    let status = |field: &str| json!(int_at(obj, &["status", field]));
    vec![
        name(obj),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        cell(format_labels(at(obj, &["spec", "template", "spec", "nodeSelector"]))),
        age(obj, now),
        names,
        images,
        cell(format_label_selector(at(obj, &["spec", "selector"]))),
    ]
}

pub(super) const CONTROLLER_REVISION: &[Column] = &[
    NAME,
    Column::new("Controller", "string", "Controller of the object"),
    Column::new("Revision", "string", docs::CR_REVISION),
    AGE,
];

pub(super) fn controller_revision(obj: &Value, now: Timestamp) -> Vec<Value> {
    let owner = list(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| super::format::opt_bool(r, &["controller"]) == Some(true));
    let controller = match owner {
        None => "<none>".to_string(),
        Some(r) => {
            // `kind.group/name`, lower-cased kind and group, as `formatResourceName` prints it.
            let api_version = str_at(r, &["apiVersion"]);
            let group = api_version.split_once('/').map_or("", |(g, _)| g);
            let kind = str_at(r, &["kind"]);
            let group_kind = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
            if group_kind.is_empty() {
                str_at(r, &["name"]).to_string()
            } else {
                format!("{}/{}", group_kind.to_lowercase(), str_at(r, &["name"]))
            }
        }
    };
    vec![name(obj), cell(controller), json!(int_at(obj, &["revision"])), age(obj, now)]
}

pub(super) const JOB: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the job."),
    Column::new("Completions", "string", docs::JOB_SUCCEEDED),
    Column::new("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", docs::JOB_SELECTOR),
];

pub(super) fn job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int_at(obj, &["status", "succeeded"]);
    let completions = match opt_int(obj, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_int(obj, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (timestamp(obj, &["status", "startTime"]), timestamp(obj, &["status", "completionTime"])) {
        (None, _) => String::new(),
        (Some(start), None) => duration::human_signed_duration(now.duration_since(start)),
        (Some(start), Some(done)) => duration::human_signed_duration(done.duration_since(start)),
    };
    let conditions = list(obj, &["status", "conditions"]);
    // The first condition of a type decides whether it holds.
    let has = |wanted: &str| {
        conditions.iter().find(|c| str_at(c, &["type"]) == wanted).is_some_and(|c| str_at(c, &["status"]) == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if deleting(obj) {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = template_containers(obj);
    vec![
        name(obj),
        cell(status),
        cell(completions),
        cell(duration),
        age(obj, now),
        names,
        images,
        cell(format_label_selector(at(obj, &["spec", "selector"]))),
    ]
}

pub(super) const CRON_JOB: &[Column] = &[
    NAME,
    Column::new("Schedule", "string", docs::CJ_SCHEDULE),
    Column::new("Timezone", "string", docs::CJ_TIMEZONE),
    Column::new("Suspend", "boolean", docs::CJ_SUSPEND),
    Column::new("Active", "integer", docs::CJ_ACTIVE),
    Column::new("Last Schedule", "string", docs::CJ_LAST_SCHEDULE),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", docs::JOB_SELECTOR),
];

pub(super) fn cron_job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let last_schedule = match opt_str(obj, &["status", "lastScheduleTime"]) {
        None => "<none>".to_string(),
        Some(t) => duration::translate_timestamp_since(Some(t), now),
    };
    // Upstream prints the pointer as True/False/<unset>, a string in a "boolean" column.
    let suspend = match super::format::opt_bool(obj, &["spec", "suspend"]) {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    };
    let template = at(obj, &["spec", "jobTemplate", "spec"]).unwrap_or(&Value::Null);
    let (names, images) = containers(list(template, &["template", "spec", "containers"]));
    vec![
        name(obj),
        cell(str_at(obj, &["spec", "schedule"])),
        cell(opt_str(obj, &["spec", "timeZone"]).unwrap_or("<none>")),
        cell(suspend),
        json!(list(obj, &["status", "active"]).len()),
        cell(last_schedule),
        age(obj, now),
        names,
        images,
        cell(format_label_selector(at(template, &["selector"]))),
    ]
}

pub(super) const HPA: &[Column] = &[
    NAME,
    Column::new("Reference", "string", docs::HPA_SCALE_TARGET),
    Column::new("Targets", "string", docs::HPA_METRICS),
    Column::new("MinPods", "string", docs::HPA_MIN),
    Column::new("MaxPods", "string", docs::HPA_MAX),
    Column::new("Replicas", "string", docs::HPA_CURRENT),
    AGE,
];

/// Default CPU utilization target of an autoscaling/v1 HPA that sets none.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

pub(super) fn horizontal_pod_autoscaler(obj: &Value, now: Timestamp) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(obj, &["spec", "scaleTargetRef", "kind"]),
        str_at(obj, &["spec", "scaleTargetRef", "name"])
    );
    let v1 = str_at(obj, &["apiVersion"]) == "autoscaling/v1"
        || (at(obj, &["spec", "metrics"]).is_none() && at(obj, &["spec", "targetCPUUtilizationPercentage"]).is_some());
    let targets = if v1 { v1_cpu_target(obj) } else { format_hpa_metrics(obj) };
    let min_pods = opt_int(obj, &["spec", "minReplicas"]).map_or_else(|| "<unset>".to_string(), |m| m.to_string());
    vec![
        name(obj),
        cell(reference),
        cell(targets),
        cell(min_pods),
        json!(int_at(obj, &["spec", "maxReplicas"])),
        json!(int_at(obj, &["status", "currentReplicas"])),
        age(obj, now),
    ]
}

/// An autoscaling/v1 HPA converts to a single CPU-utilization metric (80% unless set).
fn v1_cpu_target(obj: &Value) -> String {
    let target = opt_int(obj, &["spec", "targetCPUUtilizationPercentage"]).unwrap_or(DEFAULT_CPU_UTILIZATION);
    let current = opt_int(obj, &["status", "currentCPUUtilizationPercentage"])
        .map_or_else(|| "<unknown>".to_string(), |c| format!("{c}%"));
    format!("cpu: {current}/{target}%")
}

/// `formatHPAMetrics`: one `current/target` entry per metric, at most two, then "+ N more...".
fn format_hpa_metrics(obj: &Value) -> String {
    let specs = list(obj, &["spec", "metrics"]);
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let statuses = list(obj, &["status", "currentMetrics"]);
    const MAX: usize = 2;
    let mut entries: Vec<String> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        // The status of the same source type at the same index, as upstream pairs them.
        let status = |source: &str| statuses.get(i).and_then(|s| s.get(source)).filter(|s| s.is_object());
        let entry = match str_at(spec, &["type"]) {
            "External" => value_or_average(spec, "external", status("external")),
            "Object" => value_or_average(spec, "object", status("object")),
            "Pods" => {
                let current = status("pods")
                    .map_or_else(|| "<unknown>".to_string(), |s| quantity_ptr(at(s, &["current", "averageValue"])));
                format!("{current}/{}", quantity_ptr(at(spec, &["pods", "target", "averageValue"])))
            }
            "Resource" => resource_entry(spec, "resource", status("resource")),
            "ContainerResource" => resource_entry(spec, "containerResource", status("containerResource")),
            _ => "<unknown type>".to_string(),
        };
        entries.push(entry);
    }
    let count = entries.len();
    if count > MAX {
        entries.truncate(MAX);
        return format!("{} + {} more...", entries.join(", "), count - MAX);
    }
    entries.join(", ")
}

/// External and Object metrics: `current/target (avg)` for average-value targets, else
/// `current/target` on the plain value.
fn value_or_average(spec: &Value, source: &str, status: Option<&Value>) -> String {
    let target = at(spec, &[source, "target"]).unwrap_or(&Value::Null);
    if at(target, &["averageValue"]).is_some_and(|v| !v.is_null()) {
        let current = status
            .and_then(|s| at(s, &["current", "averageValue"]))
            .filter(|v| !v.is_null())
            .map_or_else(|| "<unknown>".to_string(), |v| quantity_ptr(Some(v)));
        format!("{current}/{} (avg)", quantity_ptr(at(target, &["averageValue"])))
    } else {
        let current = status.map_or_else(|| "<unknown>".to_string(), |s| quantity_ptr(at(s, &["current", "value"])));
        format!("{current}/{}", quantity_ptr(at(target, &["value"])))
    }
}

/// Resource and ContainerResource metrics: `cpu: current/target` as an average value or a
/// utilization percentage (`<auto>` when the target sets neither).
fn resource_entry(spec: &Value, source: &str, status: Option<&Value>) -> String {
    let resource = str_at(spec, &[source, "name"]);
    let target = at(spec, &[source, "target"]).unwrap_or(&Value::Null);
    if at(target, &["averageValue"]).is_some_and(|v| !v.is_null()) {
        let current =
            status.map_or_else(|| "<unknown>".to_string(), |s| quantity_ptr(at(s, &["current", "averageValue"])));
        format!("{resource}: {current}/{}", quantity_ptr(at(target, &["averageValue"])))
    } else {
        let current = status
            .and_then(|s| opt_int(s, &["current", "averageUtilization"]))
            .map_or_else(|| "<unknown>".to_string(), |u| format!("{u}%"));
        let target = opt_int(target, &["averageUtilization"]).map_or_else(|| "<auto>".to_string(), |u| format!("{u}%"));
        format!("{resource}: {current}/{target}")
    }
}

pub(super) const SCALE: &[Column] = &[
    // Upstream's Scale table marks no column as the name.
    Column::new("Name", "string", docs::META_NAME),
    Column::new("Desired", "integer", docs::SCALE_SPEC_REPLICAS),
    Column::new("Available", "integer", docs::SCALE_STATUS_REPLICAS),
    AGE,
];

pub(super) fn scale(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(int_at(obj, &["spec", "replicas"])),
        json!(int_at(obj, &["status", "replicas"])),
        age(obj, now),
    ]
}
