//! The pod row: READY, STATUS and RESTARTS as upstream's `printPod` derives them from the
//! pod's phase, conditions and container statuses.
//!
//! STATUS is decided in this order, each step overriding the last:
//! 1. `status.phase`, replaced by `status.reason` when set (`Evicted`, `NodeLost`, …);
//! 2. `SchedulingGated` when the `PodScheduled` condition says so;
//! 3. the first init container that has not finished: `Init:<reason>`, `Init:ExitCode:N`,
//!    `Init:Signal:N` or `Init:i/n` (sidecars, i.e. restartable init containers, that have
//!    started count as finished);
//! 4. once initialized, the regular containers from last to first: a waiting reason
//!    (`ContainerCreating`, `CrashLoopBackOff`, …), a terminated reason (`Completed`, `Error`,
//!    `ExitCode:N`, `Signal:N`); `Completed` with a container still running becomes `Running`
//!    (pod Ready) or `NotReady`;
//! 5. a pod being deleted is `Unknown` when its node was lost, else `Terminating` unless the
//!    pod already finished.
//!
//! RESTARTS sums restart counts (of sidecars and regular containers once initialized, of init
//! containers while initializing) and appends `(5m ago)` from the latest
//! `lastState.terminated.finishedAt`.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{cell, deleting, int_at, list, name, opt_bool, opt_str, str_at, timestamp};
use super::{AGE, Column, NAME, docs, duration};

pub(super) const COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    Column::new("Status", "string", "The aggregate status of the containers in this pod."),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    Column::wide("IP", "string", docs::POD_IP),
    Column::wide("Node", "string", docs::POD_NODE_NAME),
    Column::wide("Nominated Node", "string", docs::POD_NOMINATED),
    Column::wide("Readiness Gates", "string", docs::POD_READINESS_GATES),
];

/// The READY, STATUS and RESTARTS cells of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Summary {
    /// `ready/total`, counting regular containers and sidecars.
    pub(super) ready: String,
    pub(super) status: String,
    /// The restart count, with `(<age> ago)` when a container has terminated before.
    pub(super) restarts: String,
}

/// Restart count and the latest time a container (re)terminated.
#[derive(Clone, Copy, Default)]
struct Restarts {
    count: i64,
    last: Option<Timestamp>,
}

impl Restarts {
    /// Adds one container status's `restartCount` and `lastState.terminated.finishedAt`.
    fn add(&mut self, status: &Value) {
        self.count += int_at(status, &["restartCount"]);
        if let Some(finished) = timestamp(status, &["lastState", "terminated", "finishedAt"]) {
            self.last = Some(self.last.map_or(finished, |l| l.max(finished)));
        }
    }
}

pub(super) fn cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let summary = summarize(pod, now);
    let or_none = |s: &str| if s.is_empty() { "<none>".to_string() } else { s.to_string() };
    // The internal pod lists `podIPs`; conversion fills it from `podIP` on older objects.
    let ip = list(pod, &["status", "podIPs"])
        .first()
        .map(|p| str_at(p, &["ip"]))
        .unwrap_or_else(|| str_at(pod, &["status", "podIP"]));
    vec![
        name(pod),
        cell(summary.ready),
        cell(summary.status),
        cell(summary.restarts),
        super::format::age(pod, now),
        cell(or_none(ip)),
        cell(or_none(str_at(pod, &["spec", "nodeName"]))),
        cell(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        cell(readiness_gates(pod)),
    ]
}

/// `Completed` row conditions for pods that finished, as upstream marks them.
pub(super) fn row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// READY, STATUS and RESTARTS for a pod, following the steps in the module docs.
pub(super) fn summarize(pod: &Value, now: Timestamp) -> Summary {
    let phase = str_at(pod, &["status", "phase"]);
    let conditions = list(pod, &["status", "conditions"]);
    let init_specs = list(pod, &["spec", "initContainers"]);
    let sidecars: Vec<&str> = init_specs.iter().filter(|c| is_sidecar(c)).map(|c| str_at(c, &["name"])).collect();
    let total = list(pod, &["spec", "containers"]).len() + sidecars.len();
    let mut ready = 0usize;

    let mut reason = match opt_str(pod, &["status", "reason"]) {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => phase.to_string(),
    };
    if conditions.iter().any(|c| str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let mut restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();
    let mut initializing = false;
    for (i, status) in list(pod, &["status", "initContainerStatuses"]).iter().enumerate() {
        restarts.add(status);
        let sidecar = sidecars.contains(&str_at(status, &["name"]));
        if sidecar {
            sidecar_restarts.add(status);
        }
        let terminated = super::format::at(status, &["state", "terminated"]).filter(|t| t.is_object());
        let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && opt_bool(status, &["started"]) == Some(true) {
            if opt_bool(status, &["ready"]) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match str_at(t, &["reason"]) {
                "" if int_at(t, &["signal"]) != 0 => format!("Init:Signal:{}", int_at(t, &["signal"])),
                "" => format!("Init:ExitCode:{}", int_at(t, &["exitCode"])),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == "Initialized")
        .is_some_and(|c| str_at(c, &["status"]) == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for status in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts.add(status);
            let terminated = super::format::at(status, &["state", "terminated"]).filter(|t| t.is_object());
            let waiting_reason = str_at(status, &["state", "waiting", "reason"]);
            let running = super::format::at(status, &["state", "running"]).is_some_and(Value::is_object);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match str_at(t, &["reason"]) {
                    "" if int_at(t, &["signal"]) != 0 => format!("Signal:{}", int_at(t, &["signal"])),
                    "" => format!("ExitCode:{}", int_at(t, &["exitCode"])),
                    r => r.to_string(),
                };
            } else if opt_bool(status, &["ready"]) == Some(true) && running {
                has_running = true;
                ready += 1;
            }
        }
        // A container that completed while another still runs does not make the pod Completed.
        if reason == "Completed" && has_running {
            let pod_ready =
                conditions.iter().any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if deleting(pod) && str_at(pod, &["status", "reason"]) == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting(pod) && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_string();
    }

    let restarts = match restarts.last {
        Some(last) if restarts.count != 0 => format!("{} ({} ago)", restarts.count, duration::since(last, now)),
        _ => restarts.count.to_string(),
    };
    Summary { ready: format!("{ready}/{total}"), status: reason, restarts }
}

/// A restartable init container (`restartPolicy: Always`): a sidecar that keeps running.
fn is_sidecar(container: &Value) -> bool {
    str_at(container, &["restartPolicy"]) == "Always"
}

/// `true/total` of `spec.readinessGates` whose condition is `True`, or `<none>`.
fn readiness_gates(pod: &Value) -> String {
    let gates = list(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conditions = list(pod, &["status", "conditions"]);
    let true_count = gates
        .iter()
        .filter(|g| {
            let wanted = str_at(g, &["conditionType"]);
            conditions.iter().find(|c| str_at(c, &["type"]) == wanted).is_some_and(|c| str_at(c, &["status"]) == "True")
        })
        .count();
    format!("{true_count}/{}", gates.len())
}
