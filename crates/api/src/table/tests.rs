//! Tests for the table printers: durations and quantities at their thresholds, the pod STATUS
//! state machine branch by branch, and one realistic object per kind against the cells
//! kube-apiserver prints for it.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::*;

/// The reference "now" of every test.
const NOW: &str = "2024-05-01T12:00:00Z";
/// Five minutes before [`NOW`].
const FIVE_MIN_AGO: &str = "2024-05-01T11:55:00Z";

fn now() -> Timestamp {
    NOW.parse().expect("valid timestamp")
}

fn row(group: &str, kind: &str, obj: &Value) -> Vec<Value> {
    cells(group, kind, obj, now())
}

/// Metadata with a name, namespace and a creation time five minutes ago.
fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": FIVE_MIN_AGO})
}

fn strs(values: &[&str]) -> Vec<Value> {
    values.iter().map(|s| json!(s)).collect()
}

// ---------------------------------------------------------------- durations

#[test]
fn human_duration_thresholds() {
    let cases: &[(u64, &str)] = &[
        (0, "0s"),
        (1, "1s"),
        (119, "119s"),
        (120, "2m"),
        (121, "2m1s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60 + 59, "3h5m"),
        (8 * 3600 - 1, "7h59m"),
        (8 * 3600, "8h"),
        (48 * 3600 - 1, "47h"),
        (48 * 3600, "2d"),
        (53 * 3600, "2d5h"),
        (8 * 86400 - 1, "7d23h"),
        (8 * 86400, "8d"),
        (730 * 86400 - 1, "729d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (8 * 365 * 86400 - 1, "7y364d"),
        (8 * 365 * 86400, "8y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(Duration::from_secs(*secs)), *want, "{secs}s");
    }
    // Sub-second parts never change the result.
    assert_eq!(human_duration(Duration::from_millis(119_999)), "119s");
}

#[test]
fn negative_durations_tolerate_a_second_of_skew() {
    assert_eq!(human_signed_duration(SignedDuration::from_millis(-999)), "0s");
    assert_eq!(human_signed_duration(SignedDuration::from_millis(-1_999)), "0s");
    assert_eq!(human_signed_duration(SignedDuration::from_secs(-2)), "<invalid>");
    assert_eq!(short_human_duration(SignedDuration::from_secs(-1)), "0s");
    assert_eq!(short_human_duration(SignedDuration::from_secs(-5)), "<invalid>");
}

#[test]
fn short_human_duration_thresholds() {
    let cases: &[(i64, &str)] = &[
        (59, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (86399, "23h"),
        (86400, "1d"),
        (365 * 86400 - 1, "364d"),
        (365 * 86400, "1y"),
        (3 * 365 * 86400, "3y"),
    ];
    for (secs, want) in cases {
        assert_eq!(short_human_duration(SignedDuration::from_secs(*secs)), *want, "{secs}s");
    }
}

#[test]
fn translate_timestamp_since_handles_unset_and_bad_input() {
    assert_eq!(translate_timestamp_since(Some(FIVE_MIN_AGO), now()), "5m");
    assert_eq!(translate_timestamp_since(Some("2024-05-01T11:59:30.5Z"), now()), "29s");
    assert_eq!(translate_timestamp_since(None, now()), "<unknown>");
    assert_eq!(translate_timestamp_since(Some(""), now()), "<unknown>");
    assert_eq!(translate_timestamp_since(Some("0001-01-01T00:00:00Z"), now()), "<unknown>");
    assert_eq!(translate_timestamp_since(Some("yesterday"), now()), "<invalid>");
    assert_eq!(translate_timestamp_since(Some("2024-05-01T12:10:00Z"), now()), "<invalid>");
}

// ---------------------------------------------------------------- quantities

#[test]
fn quantities_render_canonically() {
    let cases: &[(&str, &str)] = &[
        ("1000m", "1"),
        ("1500m", "1500m"),
        ("100m", "100m"),
        ("0.5", "500m"),
        (".5", "500m"),
        ("1.5", "1500m"),
        ("1000", "1k"),
        ("1200", "1200"),
        ("2048Mi", "2Gi"),
        ("1.5Gi", "1536Mi"),
        ("10Gi", "10Gi"),
        ("1Ki", "1Ki"),
        ("0.5Ki", "512"),
        ("1000Ki", "1000Ki"),
        ("1e3", "1e3"),
        ("1.5e3", "1500"),
        ("5G", "5G"),
        ("0", "0"),
        ("0m", "0"),
        ("-1500m", "-1500m"),
        ("+2", "2"),
        ("1n", "1n"),
        ("0.0000000001", "1n"),
    ];
    for (input, want) in cases {
        assert_eq!(canonical_quantity(input).as_deref(), Some(*want), "{input}");
    }
    for bad in ["", "abc", "1Qi", "1.2.3", "--1", "1e", "Ki"] {
        assert_eq!(canonical_quantity(bad), None, "{bad:?}");
    }
}

// ---------------------------------------------------------------- default table

#[test]
fn kinds_without_a_printer_get_name_and_created_at() {
    for (group, kind) in [
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("", "LimitRange"),
        ("example.com", "Widget"),
    ] {
        assert!(!has_printer(group, kind), "{kind}");
        let cols = columns(group, kind);
        assert_eq!(
            cols.iter().map(|c| (c.name, c.type_, c.format)).collect::<Vec<_>>(),
            [("Name", "string", "name"), ("Created At", "date", "")]
        );
    }
    let role = json!({"metadata": {"name": "reader", "creationTimestamp": "2024-04-30T08:09:10.123Z"}});
    assert_eq!(row("rbac.authorization.k8s.io", "Role", &role), strs(&["reader", "2024-04-30T08:09:10Z"]));
    let unset = json!({"metadata": {"name": "x"}});
    assert_eq!(row("", "LimitRange", &unset), strs(&["x", "0001-01-01T00:00:00Z"]));
}

#[test]
fn every_printer_has_a_name_column_and_matching_cells() {
    let kinds = [
        ("", "Pod"),
        ("", "PodTemplate"),
        ("", "ReplicationController"),
        ("", "Service"),
        ("", "Endpoints"),
        ("", "Node"),
        ("", "Namespace"),
        ("", "Event"),
        ("events.k8s.io", "Event"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ServiceAccount"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("", "ResourceQuota"),
        ("apps", "ReplicaSet"),
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ControllerRevision"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("autoscaling", "Scale"),
        ("policy", "PodDisruptionBudget"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("networking.k8s.io", "ServiceCIDR"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("coordination.k8s.io", "Lease"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "CSIStorageCapacity"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("storage.k8s.io", "VolumeAttributesClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ];
    // Even an empty object prints (as its zero values) with one cell per column.
    let empty = json!({});
    for (group, kind) in kinds {
        assert!(has_printer(group, kind), "{kind}");
        let cols = columns(group, kind);
        assert!(cols.iter().any(|c| c.name == "Name"), "{kind}");
        assert!(cols.iter().all(|c| ["string", "integer", "number", "boolean", "date"].contains(&c.type_)));
        assert!(cols.iter().all(|c| c.priority == 0 || c.priority == 1));
        assert_eq!(row(group, kind, &empty).len(), cols.len(), "{kind}");
        // Wrongly typed fields print as unset rather than failing.
        let garbled = json!({"metadata": "x", "spec": 5, "status": [], "subsets": "y", "data": 1, "roleRef": null});
        assert_eq!(row(group, kind, &garbled).len(), cols.len(), "{kind}");
    }
    // Upstream's one mismatch: an age cell without an Age column.
    assert_eq!(columns("networking.k8s.io", "IPAddress").len(), 2);
    assert_eq!(row("networking.k8s.io", "IPAddress", &empty).len(), 3);
}

// ---------------------------------------------------------------- pods

/// A pod with `containers` (names) in `spec`, created five minutes ago, and `status`.
fn pod(containers: &[&str], status: Value) -> Value {
    let containers: Vec<Value> = containers.iter().map(|n| json!({"name": n, "image": "busybox"})).collect();
    json!({"metadata": meta("p"), "spec": {"containers": containers}, "status": status})
}

fn summary(pod: &Value) -> (String, String, String) {
    let s = pod::summarize(pod, now());
    (s.ready, s.status, s.restarts)
}

fn expect(pod: &Value, ready: &str, status: &str, restarts: &str) {
    assert_eq!(summary(pod), (ready.to_string(), status.to_string(), restarts.to_string()), "{pod:#}");
}

fn running_ready(name: &str) -> Value {
    json!({"name": name, "ready": true, "restartCount": 0, "state": {"running": {"startedAt": FIVE_MIN_AGO}}})
}

fn terminated(name: &str, reason: &str, exit_code: i64) -> Value {
    json!({"name": name, "ready": false, "restartCount": 0,
           "state": {"terminated": {"reason": reason, "exitCode": exit_code, "finishedAt": FIVE_MIN_AGO}}})
}

fn waiting(name: &str, reason: &str) -> Value {
    json!({"name": name, "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason}}})
}

const READY_TRUE: &str = r#"{"type": "Ready", "status": "True"}"#;

fn ready_condition(status: &str) -> Value {
    json!({"type": "Ready", "status": status})
}

#[test]
fn pod_phase_only() {
    expect(&pod(&["app"], json!({"phase": "Pending"})), "0/1", "Pending", "0");
    expect(&pod(&["a", "b"], json!({})), "0/2", "", "0");
}

#[test]
fn pod_waiting_reasons() {
    let p = pod(&["app"], json!({"phase": "Pending", "containerStatuses": [waiting("app", "ContainerCreating")]}));
    expect(&p, "0/1", "ContainerCreating", "0");
    let p = pod(&["app"], json!({"phase": "Pending", "containerStatuses": [waiting("app", "PodInitializing")]}));
    expect(&p, "0/1", "PodInitializing", "0");
    let p = pod(&["app"], json!({"phase": "Pending", "containerStatuses": [waiting("app", "ImagePullBackOff")]}));
    expect(&p, "0/1", "ImagePullBackOff", "0");
    // A waiting state without a reason leaves the phase.
    let p = pod(&["app"], json!({"phase": "Pending", "containerStatuses": [waiting("app", "")]}));
    expect(&p, "0/1", "Pending", "0");
}

#[test]
fn pod_running_and_ready() {
    let p = pod(
        &["app", "side"],
        json!({
            "phase": "Running",
            "conditions": [serde_json::from_str::<Value>(READY_TRUE).unwrap_or_default()],
            "containerStatuses": [running_ready("app"), running_ready("side")]
        }),
    );
    expect(&p, "2/2", "Running", "0");
    // Running but not ready does not count as ready.
    let mut not_ready = running_ready("app");
    not_ready["ready"] = json!(false);
    let p = pod(&["app"], json!({"phase": "Running", "containerStatuses": [not_ready]}));
    expect(&p, "0/1", "Running", "0");
}

#[test]
fn pod_crash_loop_with_restart_age() {
    let p = pod(
        &["app"],
        json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": FIVE_MIN_AGO}}
            }]
        }),
    );
    expect(&p, "0/1", "CrashLoopBackOff", "5 (5m ago)");
}

#[test]
fn pod_restarts_sum_and_use_the_latest_termination() {
    let mut a = running_ready("a");
    a["restartCount"] = json!(2);
    a["lastState"] = json!({"terminated": {"exitCode": 137, "finishedAt": "2024-05-01T09:00:00Z"}});
    let mut b = running_ready("b");
    b["restartCount"] = json!(1);
    b["lastState"] = json!({"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:57:00Z"}});
    let p = pod(&["a", "b"], json!({"phase": "Running", "containerStatuses": [a, b]}));
    expect(&p, "2/2", "Running", "3 (3m ago)");
    // Restarts without any recorded termination print the bare count.
    let mut c = running_ready("c");
    c["restartCount"] = json!(4);
    expect(&pod(&["c"], json!({"phase": "Running", "containerStatuses": [c]})), "1/1", "Running", "4");
    // A termination without restarts does not add a suffix.
    let mut d = running_ready("d");
    d["lastState"] = json!({"terminated": {"exitCode": 0, "finishedAt": FIVE_MIN_AGO}});
    expect(&pod(&["d"], json!({"phase": "Running", "containerStatuses": [d]})), "1/1", "Running", "0");
}

#[test]
fn pod_terminated_reasons() {
    let p = pod(&["app"], json!({"phase": "Succeeded", "containerStatuses": [terminated("app", "Completed", 0)]}));
    expect(&p, "0/1", "Completed", "0");
    let p = pod(&["app"], json!({"phase": "Failed", "containerStatuses": [terminated("app", "Error", 1)]}));
    expect(&p, "0/1", "Error", "0");
    let p = pod(&["app"], json!({"phase": "Failed", "containerStatuses": [terminated("app", "OOMKilled", 137)]}));
    expect(&p, "0/1", "OOMKilled", "0");
    let p = pod(&["app"], json!({"phase": "Failed", "containerStatuses": [terminated("app", "", 2)]}));
    expect(&p, "0/1", "ExitCode:2", "0");
    let mut signalled = terminated("app", "", 137);
    signalled["state"]["terminated"]["signal"] = json!(9);
    let p = pod(&["app"], json!({"phase": "Failed", "containerStatuses": [signalled]}));
    expect(&p, "0/1", "Signal:9", "0");
}

#[test]
fn pod_first_container_decides_over_later_ones() {
    // Statuses are walked from last to first, so the first container's state wins.
    let p = pod(
        &["a", "b"],
        json!({
            "phase": "Running",
            "containerStatuses": [waiting("a", "CrashLoopBackOff"), terminated("b", "Error", 1)]
        }),
    );
    expect(&p, "0/2", "CrashLoopBackOff", "0");
}

#[test]
fn pod_completed_with_a_running_container() {
    let statuses = json!([running_ready("a"), terminated("b", "Completed", 0)]);
    let p = pod(
        &["a", "b"],
        json!({"phase": "Running", "conditions": [ready_condition("True")], "containerStatuses": statuses}),
    );
    expect(&p, "1/2", "Running", "0");
    let p = pod(
        &["a", "b"],
        json!({"phase": "Running", "conditions": [ready_condition("False")], "containerStatuses": statuses}),
    );
    expect(&p, "1/2", "NotReady", "0");
}

#[test]
fn pod_terminating_and_node_lost() {
    let mut p = pod(&["app"], json!({"phase": "Running", "containerStatuses": [running_ready("app")]}));
    p["metadata"]["deletionTimestamp"] = json!(NOW);
    expect(&p, "1/1", "Terminating", "0");
    // A pod that already finished keeps its final status while being deleted.
    let mut done =
        pod(&["app"], json!({"phase": "Succeeded", "containerStatuses": [terminated("app", "Completed", 0)]}));
    done["metadata"]["deletionTimestamp"] = json!(NOW);
    expect(&done, "0/1", "Completed", "0");
    let mut lost = pod(&["app"], json!({"phase": "Running", "reason": "NodeLost"}));
    expect(&lost, "0/1", "NodeLost", "0");
    lost["metadata"]["deletionTimestamp"] = json!(NOW);
    expect(&lost, "0/1", "Unknown", "0");
}

#[test]
fn pod_status_reason_overrides_phase() {
    let p = pod(&["app"], json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}));
    expect(&p, "0/1", "Evicted", "0");
}

#[test]
fn pod_scheduling_gated() {
    let p = pod(
        &["app"],
        json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
        }),
    );
    expect(&p, "0/1", "SchedulingGated", "0");
    let p = pod(
        &["app"],
        json!({
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
        }),
    );
    expect(&p, "0/1", "Pending", "0");
}

/// A pod with init containers `init` (names) and one app container.
fn init_pod(inits: &[Value], init_statuses: Value, extra_status: Value) -> Value {
    let mut p = pod(&["app"], json!({"phase": "Pending", "initContainerStatuses": init_statuses}));
    p["spec"]["initContainers"] = json!(inits);
    if let (Some(status), Some(extra)) = (p["status"].as_object_mut(), extra_status.as_object()) {
        for (k, v) in extra {
            status.insert(k.clone(), v.clone());
        }
    }
    p
}

#[test]
fn pod_init_progress() {
    let inits = [json!({"name": "i1"}), json!({"name": "i2"})];
    let i1_running = json!({"name": "i1", "ready": false, "restartCount": 0, "state": {"running": {}}});
    let p = init_pod(&inits, json!([i1_running, waiting("i2", "PodInitializing")]), json!({}));
    expect(&p, "0/1", "Init:0/2", "0");
    let p = init_pod(&inits, json!([terminated("i1", "Completed", 0), waiting("i2", "PodInitializing")]), json!({}));
    expect(&p, "0/1", "Init:1/2", "0");
    // No init statuses yet: the phase shows.
    let p = init_pod(&inits, json!([]), json!({}));
    expect(&p, "0/1", "Pending", "0");
}

#[test]
fn pod_init_failures() {
    let inits = [json!({"name": "i1"})];
    let p = init_pod(&inits, json!([terminated("i1", "Error", 1)]), json!({}));
    expect(&p, "0/1", "Init:Error", "0");
    let p = init_pod(&inits, json!([terminated("i1", "", 3)]), json!({}));
    expect(&p, "0/1", "Init:ExitCode:3", "0");
    let mut signalled = terminated("i1", "", 143);
    signalled["state"]["terminated"]["signal"] = json!(15);
    expect(&init_pod(&inits, json!([signalled]), json!({})), "0/1", "Init:Signal:15", "0");
    let crash = json!({
        "name": "i1", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": FIVE_MIN_AGO}}
    });
    // While initializing, init container restarts are what RESTARTS shows.
    let p = init_pod(&inits, json!([crash]), json!({"containerStatuses": [waiting("app", "PodInitializing")]}));
    expect(&p, "0/1", "Init:CrashLoopBackOff", "3 (5m ago)");
}

#[test]
fn pod_initialized_condition_lets_containers_count() {
    // A restarted init container on an already-initialized pod: the app containers are
    // counted and can override the status, but a running one leaves the init reason.
    let inits = [json!({"name": "i1"})];
    let mut crash = waiting("i1", "CrashLoopBackOff");
    crash["restartCount"] = json!(2);
    let status = |app: Value| json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}], "containerStatuses": [app]});
    let p = init_pod(&inits, json!([crash.clone()]), status(running_ready("app")));
    expect(&p, "1/1", "Init:CrashLoopBackOff", "0");
    let p = init_pod(&inits, json!([crash]), status(waiting("app", "ContainerCreating")));
    expect(&p, "0/1", "ContainerCreating", "0");
}

#[test]
fn pod_sidecars_count_in_ready_and_restarts() {
    let inits = [json!({"name": "proxy", "restartPolicy": "Always"}), json!({"name": "setup"})];
    let proxy = json!({
        "name": "proxy", "ready": true, "started": true, "restartCount": 2,
        "state": {"running": {}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:50:00Z"}}
    });
    let mut app = running_ready("app");
    app["restartCount"] = json!(1);
    app["lastState"] = json!({"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:57:00Z"}});
    let p = init_pod(
        &inits,
        json!([proxy, terminated("setup", "Completed", 0)]),
        json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}, ready_condition("True")],
               "containerStatuses": [app]}),
    );
    expect(&p, "2/2", "Running", "3 (3m ago)");

    // A sidecar that has not started yet blocks initialization.
    let starting =
        json!({"name": "proxy", "ready": false, "started": false, "restartCount": 0, "state": {"running": {}}});
    let p = init_pod(&inits, json!([starting, waiting("setup", "PodInitializing")]), json!({}));
    expect(&p, "0/2", "Init:0/2", "0");

    // A started but unready sidecar is past init yet not ready.
    let unready =
        json!({"name": "proxy", "ready": false, "started": true, "restartCount": 0, "state": {"running": {}}});
    let i1_running = json!({"name": "setup", "ready": false, "restartCount": 0, "state": {"running": {}}});
    let p = init_pod(&inits, json!([unready, i1_running]), json!({}));
    expect(&p, "0/2", "Init:1/2", "0");
}

#[test]
fn pod_row_with_wide_columns() {
    let mut p = pod(
        &["app"],
        json!({
            "phase": "Running",
            "podIP": "10.42.0.7",
            "podIPs": [{"ip": "10.42.0.7"}, {"ip": "fd00::7"}],
            "conditions": [ready_condition("True"), {"type": "example.com/gate", "status": "True"}],
            "containerStatuses": [running_ready("app")]
        }),
    );
    p["spec"]["nodeName"] = json!("node-1");
    p["spec"]["readinessGates"] =
        json!([{"conditionType": "example.com/gate"}, {"conditionType": "example.com/other"}]);
    assert_eq!(row("", "Pod", &p), strs(&["p", "1/1", "Running", "0", "5m", "10.42.0.7", "node-1", "<none>", "1/2"]));

    let mut pending = pod(&["app"], json!({"phase": "Pending", "nominatedNodeName": "node-2"}));
    pending["metadata"]["creationTimestamp"] = json!("2024-04-29T10:00:00Z");
    assert_eq!(
        row("", "Pod", &pending),
        strs(&["p", "0/1", "Pending", "0", "2d2h", "<none>", "<none>", "node-2", "<none>"])
    );
    // Older objects with only `podIP`.
    let legacy = pod(&["app"], json!({"phase": "Running", "podIP": "10.42.0.9"}));
    assert_eq!(row("", "Pod", &legacy)[5], json!("10.42.0.9"));

    let cols: Vec<(&str, i32)> = columns("", "Pod").iter().map(|c| (c.name, c.priority)).collect();
    assert_eq!(
        cols,
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1)
        ]
    );
    assert_eq!(columns("", "Pod")[3].type_, "string");
}

#[test]
fn pod_row_conditions_mark_finished_pods() {
    let done = pod(&["app"], json!({"phase": "Succeeded"}));
    assert_eq!(
        row_conditions("", "Pod", &done),
        Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
        )
    );
    let failed = pod(&["app"], json!({"phase": "Failed"}));
    assert_eq!(
        row_conditions("", "Pod", &failed).and_then(|c| c[0]["reason"].as_str().map(String::from)).as_deref(),
        Some("Failed")
    );
    assert_eq!(row_conditions("", "Pod", &pod(&["app"], json!({"phase": "Running"}))), None);
    assert_eq!(row_conditions("apps", "Deployment", &done), None);
}

// ---------------------------------------------------------------- core kinds

#[test]
fn pod_template_row() {
    let obj = json!({"metadata": meta("tpl"), "template": {
        "metadata": {"labels": {"tier": "web", "app": "nginx"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}
    }});
    assert_eq!(row("", "PodTemplate", &obj), strs(&["tpl", "nginx,log", "nginx:1.27,busybox", "app=nginx,tier=web"]));
}

#[test]
fn replication_controller_row() {
    let obj = json!({"metadata": meta("rc"),
        "spec": {"replicas": 3, "selector": {"app": "web"}, "template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
        "status": {"replicas": 3, "readyReplicas": 2}});
    assert_eq!(
        row("", "ReplicationController", &obj),
        vec![json!("rc"), json!(3), json!(3), json!(2), json!("5m"), json!("web"), json!("nginx"), json!("app=web")]
    );
}

#[test]
fn service_rows() {
    let svc = |spec: Value, status: Value| json!({"metadata": meta("svc"), "spec": spec, "status": status});
    let cluster_ip = svc(
        json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
               "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}], "selector": {"k8s-app": "dns"}}),
        json!({}),
    );
    assert_eq!(
        row("", "Service", &cluster_ip),
        strs(&["svc", "ClusterIP", "10.43.0.10", "<none>", "53/UDP,53/TCP", "5m", "k8s-app=dns"])
    );

    let node_port = svc(
        json!({"type": "NodePort", "clusterIPs": ["10.43.0.20"], "externalIPs": ["192.0.2.1"],
               "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
        json!({}),
    );
    assert_eq!(
        row("", "Service", &node_port),
        strs(&["svc", "NodePort", "10.43.0.20", "192.0.2.1", "80:30080/TCP", "5m", "<none>"])
    );

    let pending_lb = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.30"], "ports": [{"port": 443, "nodePort": 31443}]}),
        json!({}),
    );
    assert_eq!(row("", "Service", &pending_lb)[3], json!("<pending>"));
    assert_eq!(row("", "Service", &pending_lb)[4], json!("443:31443/TCP"));

    let lb = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.30"], "externalIPs": ["192.0.2.9"], "ports": []}),
        json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.7"}]}}),
    );
    assert_eq!(row("", "Service", &lb)[3], json!("203.0.113.7,lb.example.com,192.0.2.9"));
    assert_eq!(row("", "Service", &lb)[4], json!("<none>"));

    let external = svc(json!({"type": "ExternalName", "externalName": "db.example.com"}), json!({}));
    assert_eq!(
        row("", "Service", &external),
        strs(&["svc", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"])
    );

    let headless = svc(json!({"clusterIP": "None", "ports": [{"port": 5432}]}), json!({}));
    assert_eq!(
        row("", "Service", &headless),
        strs(&["svc", "ClusterIP", "None", "<none>", "5432/TCP", "5m", "<none>"])
    );
}

#[test]
fn endpoints_rows() {
    let obj = json!({"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}], "ports": [{"port": 80}, {"port": 443}]},
        {"addresses": [{"ip": "fd00::1"}]}
    ]});
    assert_eq!(row("", "Endpoints", &obj), strs(&["web", "10.42.0.5:80,10.42.0.6:80,10.42.0.5:443 + 2 more...", "5m"]));
    let v6 =
        json!({"metadata": meta("v6"), "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 8080}]}]});
    assert_eq!(row("", "Endpoints", &v6)[1], json!("[fd00::1]:8080"));
    let headless = json!({"metadata": meta("h"), "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}]});
    assert_eq!(row("", "Endpoints", &headless)[1], json!("10.0.0.1,10.0.0.2"));
    assert_eq!(row("", "Endpoints", &json!({"metadata": meta("e")}))[1], json!("<none>"));
}

#[test]
fn node_rows() {
    let mut meta = meta("node-1");
    meta["labels"] = json!({
        "node-role.kubernetes.io/control-plane": "",
        "node-role.kubernetes.io/master": "true",
        "kubernetes.io/role": "etcd",
        "node-role.kubernetes.io/": "",
        "kubernetes.io/hostname": "node-1"
    });
    let node = json!({"metadata": meta, "spec": {"unschedulable": true}, "status": {
        "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
        "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
        "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                     "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "skiff://0.1.0"}
    }});
    assert_eq!(
        row("", "Node", &node),
        strs(&[
            "node-1",
            "Ready,SchedulingDisabled",
            "control-plane,etcd,master",
            "5m",
            "v1.33.0",
            "192.168.1.10",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-18-amd64",
            "skiff://0.1.0"
        ])
    );
    let not_ready =
        json!({"metadata": {"name": "n2"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(
        row("", "Node", &not_ready),
        strs(&["n2", "NotReady", "<none>", "<unknown>", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"])
    );
    assert_eq!(row("", "Node", &json!({"metadata": {"name": "n3"}}))[1], json!("Unknown"));
}

#[test]
fn namespace_row() {
    let obj = json!({"metadata": meta("kube-system"), "status": {"phase": "Active"}});
    assert_eq!(row("", "Namespace", &obj), strs(&["kube-system", "Active", "5m"]));
}

#[test]
fn core_event_rows() {
    let ev = json!({
        "metadata": meta("web.17c"),
        "involvedObject": {"kind": "Pod", "name": "web-7d4b9", "namespace": "default", "fieldPath": "spec.containers{web}"},
        "reason": "Pulled", "type": "Normal", "message": "  Successfully pulled image \"nginx\"\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": FIVE_MIN_AGO, "count": 3
    });
    assert_eq!(
        row("", "Event", &ev),
        vec![
            json!("5m"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web-7d4b9"),
            json!("spec.containers{web}"),
            json!("kubelet, node-1"),
            json!("Successfully pulled image \"nginx\""),
            json!("60m"),
            json!(3),
            json!("web.17c")
        ]
    );
    // New-style event: eventTime and series, reporting controller as the source.
    let series = json!({
        "metadata": meta("e2"), "involvedObject": {"kind": "Node"},
        "reason": "Rebooted", "type": "Warning", "message": "rebooted",
        "eventTime": "2024-05-01T10:00:00.000000Z", "reportingComponent": "skiff-kubelet",
        "series": {"count": 7, "lastObservedTime": "2024-05-01T11:59:00.000000Z"}
    });
    assert_eq!(
        row("", "Event", &series),
        vec![
            json!("60s"),
            json!("Warning"),
            json!("Rebooted"),
            json!("node"),
            json!(""),
            json!("skiff-kubelet"),
            json!("rebooted"),
            json!("120m"),
            json!(7),
            json!("e2")
        ]
    );
    let singleton =
        json!({"metadata": meta("e3"), "eventTime": FIVE_MIN_AGO, "involvedObject": {"kind": "Pod", "name": "x"}});
    let cells = row("", "Event", &singleton);
    assert_eq!((cells[0].clone(), cells[7].clone(), cells[8].clone()), (json!("5m"), json!("5m"), json!(1)));
    assert_eq!(
        columns("", "Event").iter().filter(|c| c.priority == 0).map(|c| c.name).collect::<Vec<_>>(),
        ["Last Seen", "Type", "Reason", "Object", "Message"]
    );
}

#[test]
fn events_k8s_io_event_row() {
    let ev = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta("sched.1"),
        "eventTime": "2024-05-01T11:58:00.000000Z", "reportingController": "default-scheduler",
        "reportingInstance": "default-scheduler-node-1", "action": "Binding", "reason": "Scheduled", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "web-0", "namespace": "default"},
        "note": "Successfully assigned default/web-0 to node-1"
    });
    assert_eq!(
        row("events.k8s.io", "Event", &ev),
        vec![
            json!("2m"),
            json!("Normal"),
            json!("Scheduled"),
            json!("pod/web-0"),
            json!(""),
            json!("default-scheduler, default-scheduler-node-1"),
            json!("Successfully assigned default/web-0 to node-1"),
            json!("2m"),
            json!(1),
            json!("sched.1")
        ]
    );
    let deprecated = json!({"metadata": meta("old"), "deprecatedFirstTimestamp": "2024-05-01T11:50:00Z",
        "deprecatedLastTimestamp": FIVE_MIN_AGO, "deprecatedCount": 4, "deprecatedSource": {"component": "kubelet"}});
    let cells = row("events.k8s.io", "Event", &deprecated);
    assert_eq!(
        (cells[0].clone(), cells[5].clone(), cells[7].clone(), cells[8].clone()),
        (json!("5m"), json!("kubelet"), json!("10m"), json!(4))
    );
}

#[test]
fn config_map_secret_and_service_account_rows() {
    let cm = json!({"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(row("", "ConfigMap", &cm), vec![json!("cfg"), json!(3), json!("5m")]);
    let secret = json!({"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(row("", "Secret", &secret), vec![json!("tls"), json!("kubernetes.io/tls"), json!(2), json!("5m")]);
    let opaque = json!({"metadata": meta("s"), "stringData": {"password": "x"}, "data": {"password": "eA=="}});
    assert_eq!(row("", "Secret", &opaque), vec![json!("s"), json!("Opaque"), json!(1), json!("5m")]);
    let sa = json!({"metadata": meta("default"), "secrets": [{"name": "default-token"}]});
    assert_eq!(row("", "ServiceAccount", &sa), vec![json!("default"), json!(1), json!("5m")]);
    assert_eq!(row("", "ServiceAccount", &json!({"metadata": meta("d")}))[1], json!(0));
}

#[test]
fn persistent_volume_row() {
    let pv = json!({"metadata": meta("pv-1"), "spec": {
        "capacity": {"storage": "10240Mi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local-path",
        "claimRef": {"namespace": "db", "name": "data-0"}, "volumeMode": "Filesystem"
    }, "status": {"phase": "Bound"}});
    assert_eq!(
        row("", "PersistentVolume", &pv),
        strs(&[
            "pv-1",
            "10Gi",
            "RWO,RWX",
            "Retain",
            "Bound",
            "db/data-0",
            "local-path",
            "<unset>",
            "",
            "5m",
            "Filesystem"
        ])
    );
    let mut released = pv.clone();
    released["metadata"]["deletionTimestamp"] = json!(NOW);
    released["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": "beta-class"});
    released["spec"]["claimRef"] = Value::Null;
    let cells = row("", "PersistentVolume", &released);
    assert_eq!(
        (cells[4].clone(), cells[5].clone(), cells[6].clone()),
        (json!("Terminating"), json!(""), json!("beta-class"))
    );
}

#[test]
fn persistent_volume_claim_rows() {
    let bound = json!({"metadata": meta("data-0"),
        "spec": {"volumeName": "pv-1", "storageClassName": "local-path", "resources": {"requests": {"storage": "1Gi"}},
                 "volumeMode": "Filesystem", "accessModes": ["ReadWriteOnce"]},
        "status": {"phase": "Bound", "capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteOnce"]}});
    assert_eq!(
        row("", "PersistentVolumeClaim", &bound),
        strs(&["data-0", "Bound", "pv-1", "1Gi", "RWO", "local-path", "<unset>", "5m", "Filesystem"])
    );
    let pending = json!({"metadata": meta("p"), "spec": {"resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}});
    assert_eq!(
        row("", "PersistentVolumeClaim", &pending),
        strs(&["p", "Pending", "", "", "", "", "<unset>", "5m", "<unset>"])
    );
}

#[test]
fn resource_quota_row() {
    let rq = json!({"metadata": meta("quota"), "status": {
        "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi", "limits.cpu": "4000m", "requests.memory": "1Gi"},
        "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1", "requests.memory": "512Mi"}
    }});
    assert_eq!(
        row("", "ResourceQuota", &rq),
        strs(&[
            "quota",
            "pods: 3/10, requests.cpu: 500m/2, requests.memory: 512Mi/1Gi",
            "limits.cpu: 1/4, limits.memory: 0/2Gi",
            "5m"
        ])
    );
}

// ---------------------------------------------------------------- apps, batch, autoscaling

fn template(name: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": image}]}})
}

#[test]
fn replica_set_and_deployment_rows() {
    let rs = json!({"metadata": meta("web-7d4b9"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9"}}, "template": template("web", "nginx:1.27")},
        "status": {"replicas": 3, "readyReplicas": 1}});
    assert_eq!(
        row("apps", "ReplicaSet", &rs),
        vec![
            json!("web-7d4b9"),
            json!(3),
            json!(3),
            json!(1),
            json!("5m"),
            json!("web"),
            json!("nginx:1.27"),
            json!("app=web,pod-template-hash=7d4b9")
        ]
    );
    let deploy = json!({"metadata": meta("web"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold", "bronze"]}, {"key": "canary", "operator": "DoesNotExist"}]},
                 "template": template("web", "nginx:1.27")},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    assert_eq!(
        row("apps", "Deployment", &deploy),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("5m"),
            json!("web"),
            json!("nginx:1.27"),
            json!("app=web,!canary,tier in (bronze,gold)")
        ]
    );
    // Defaults: one replica; an empty selector is "" for deployments and <none> elsewhere.
    let bare = json!({"metadata": meta("d"), "spec": {"selector": {}}});
    assert_eq!(row("apps", "Deployment", &bare)[1], json!("0/1"));
    assert_eq!(row("apps", "Deployment", &bare)[7], json!(""));
    assert_eq!(row("apps", "ReplicaSet", &bare)[7], json!("<none>"));
    let bad =
        json!({"metadata": meta("d"), "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}});
    assert_eq!(row("apps", "Deployment", &bad)[7], json!("<invalid>"));
    assert_eq!(row("apps", "ReplicaSet", &bad)[7], json!("<error>"));
}

#[test]
fn stateful_set_and_daemon_set_rows() {
    let sts = json!({"metadata": meta("db"), "spec": {"replicas": 3, "template": template("pg", "postgres:16")}, "status": {"readyReplicas": 2}});
    assert_eq!(row("apps", "StatefulSet", &sts), strs(&["db", "2/3", "5m", "pg", "postgres:16"]));
    let ds = json!({"metadata": meta("proxy"),
        "spec": {"selector": {"matchLabels": {"app": "proxy"}},
                 "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "proxy", "image": "skiff/proxy"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}});
    assert_eq!(
        row("apps", "DaemonSet", &ds),
        vec![
            json!("proxy"),
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("kubernetes.io/os=linux"),
            json!("5m"),
            json!("proxy"),
            json!("skiff/proxy"),
            json!("app=proxy")
        ]
    );
}

#[test]
fn controller_revision_row() {
    let mut m = meta("proxy-5f6d");
    m["ownerReferences"] = json!([
        {"apiVersion": "v1", "kind": "Pod", "name": "other"},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "proxy", "controller": true}
    ]);
    let cr = json!({"metadata": m, "revision": 4, "data": {}});
    assert_eq!(
        row("apps", "ControllerRevision", &cr),
        vec![json!("proxy-5f6d"), json!("daemonset.apps/proxy"), json!(4), json!("5m")]
    );
    let orphan = json!({"metadata": meta("o"), "revision": 1});
    assert_eq!(row("apps", "ControllerRevision", &orphan)[1], json!("<none>"));
}

#[test]
fn job_rows() {
    let job = |spec: Value, status: Value| {
        let mut spec = spec;
        spec["template"] = template("work", "busybox");
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}});
        json!({"metadata": meta("pi"), "spec": spec, "status": status})
    };
    let complete = job(
        json!({"completions": 1, "parallelism": 1}),
        json!({"succeeded": 1, "startTime": "2024-05-01T11:55:00Z", "completionTime": "2024-05-01T11:55:42Z",
               "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
    );
    assert_eq!(
        row("batch", "Job", &complete),
        strs(&["pi", "Complete", "1/1", "42s", "5m", "work", "busybox", "batch.kubernetes.io/controller-uid=abc"])
    );
    let running = job(json!({"parallelism": 3}), json!({"succeeded": 1, "startTime": "2024-05-01T11:56:30Z"}));
    let cells = row("batch", "Job", &running);
    assert_eq!(
        (cells[1].clone(), cells[2].clone(), cells[3].clone()),
        (json!("Running"), json!("1/1 of 3"), json!("3m30s"))
    );
    let unstarted = job(json!({}), json!({}));
    assert_eq!(row("batch", "Job", &unstarted)[1..4], strs(&["Running", "0/1", ""]));
    let status_of = |conditions: Value| {
        row("batch", "Job", &job(json!({"completions": 2}), json!({"conditions": conditions})))[1].clone()
    };
    assert_eq!(status_of(json!([{"type": "Failed", "status": "True"}])), json!("Failed"));
    assert_eq!(status_of(json!([{"type": "Suspended", "status": "True"}])), json!("Suspended"));
    assert_eq!(status_of(json!([{"type": "FailureTarget", "status": "True"}])), json!("FailureTarget"));
    assert_eq!(status_of(json!([{"type": "Complete", "status": "False"}])), json!("Running"));
    let mut deleting = job(json!({}), json!({"conditions": [{"type": "Suspended", "status": "True"}]}));
    deleting["metadata"]["deletionTimestamp"] = json!(NOW);
    assert_eq!(row("batch", "Job", &deleting)[1], json!("Terminating"));
}

#[test]
fn cron_job_row() {
    let cj = json!({"metadata": meta("backup"),
        "spec": {"schedule": "*/5 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": template("backup", "restic")}}},
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": "2024-05-01T11:59:00Z"}});
    assert_eq!(
        row("batch", "CronJob", &cj),
        vec![
            json!("backup"),
            json!("*/5 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("60s"),
            json!("5m"),
            json!("backup"),
            json!("restic"),
            json!("<none>")
        ]
    );
    let never = json!({"metadata": meta("n"), "spec": {"schedule": "@daily", "timeZone": "Etc/UTC"}});
    assert_eq!(row("batch", "CronJob", &never)[2..6], [json!("Etc/UTC"), json!("<unset>"), json!(0), json!("<none>")]);
}

#[test]
fn horizontal_pod_autoscaler_rows() {
    let v2 = json!({"apiVersion": "autoscaling/v2", "metadata": meta("web"),
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 10,
             "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1000m"}}}
             ]},
    "status": {"currentReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "120m"}}}
    ]}});
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &v2),
        vec![
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: 45%/60%, memory: <unknown>/1Gi + 1 more..."),
            json!("2"),
            json!(10),
            json!(3),
            json!("5m")
        ]
    );
    let targets = |metrics: Value, current: Value| {
        let hpa = json!({"metadata": meta("h"), "spec": {"maxReplicas": 1, "metrics": metrics}, "status": {"currentMetrics": current}});
        row("autoscaling", "HorizontalPodAutoscaler", &hpa)[2].clone()
    };
    assert_eq!(
        targets(
            json!([{"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "30"}}},
                   {"type": "Object", "object": {"metric": {"name": "hits"}, "target": {"type": "AverageValue", "averageValue": "2k"}}}]),
            json!([{"type": "External", "external": {"current": {"value": "12"}}},
                   {"type": "Object", "object": {"current": {"averageValue": "1500"}}}])
        ),
        json!("12/30, 1500/2k (avg)")
    );
    assert_eq!(
        targets(
            json!([{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization"}}}]),
            json!([])
        ),
        json!("cpu: <unknown>/<auto>")
    );
    assert_eq!(targets(json!([{"type": "Mystery"}]), json!([])), json!("<unknown type>"));
    assert_eq!(targets(json!([]), json!([])), json!("<none>"));

    let v1 = json!({"apiVersion": "autoscaling/v1", "metadata": meta("old"),
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "old"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
        "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 12}});
    assert_eq!(
        row("autoscaling", "HorizontalPodAutoscaler", &v1)[2..5],
        [json!("cpu: 12%/50%"), json!("<unset>"), json!(5)]
    );
    let v1_default =
        json!({"apiVersion": "autoscaling/v1", "metadata": meta("d"), "spec": {"maxReplicas": 5, "minReplicas": 1}});
    assert_eq!(row("autoscaling", "HorizontalPodAutoscaler", &v1_default)[2], json!("cpu: <unknown>/80%"));
}

#[test]
fn scale_row() {
    let scale =
        json!({"metadata": meta("web"), "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web"}});
    assert_eq!(row("autoscaling", "Scale", &scale), vec![json!("web"), json!(3), json!(2), json!("5m")]);
    assert_eq!(columns("autoscaling", "Scale")[0].format, "");
}

// ---------------------------------------------------------------- other groups

#[test]
fn pod_disruption_budget_rows() {
    let pdb = json!({"metadata": meta("web"), "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        row("policy", "PodDisruptionBudget", &pdb),
        vec![json!("web"), json!("2"), json!("N/A"), json!(1), json!("5m")]
    );
    let pct = json!({"metadata": meta("p"), "spec": {"maxUnavailable": "25%"}});
    assert_eq!(row("policy", "PodDisruptionBudget", &pct)[1..4], [json!("N/A"), json!("25%"), json!(0)]);
}

#[test]
fn ingress_and_ingress_class_rows() {
    let ing = json!({"metadata": meta("web"),
        "spec": {"ingressClassName": "traefik", "tls": [{"hosts": ["a.example.com"]}],
                 "rules": [{"host": "a.example.com"}, {"http": {}}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}, {"ip": "192.168.1.11"}]}}});
    assert_eq!(
        row("networking.k8s.io", "Ingress", &ing),
        strs(&[
            "web",
            "traefik",
            "a.example.com,b.example.com,c.example.com + 2 more...",
            "192.168.1.10,192.168.1.11",
            "80, 443",
            "5m"
        ])
    );
    let catch_all = json!({"metadata": meta("all"), "spec": {"defaultBackend": {}}});
    assert_eq!(row("networking.k8s.io", "Ingress", &catch_all), strs(&["all", "<none>", "*", "", "80", "5m"]));

    let class = json!({"metadata": meta("traefik"), "spec": {"controller": "traefik.io/ingress-controller",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
    assert_eq!(
        row("networking.k8s.io", "IngressClass", &class),
        strs(&["traefik", "traefik.io/ingress-controller", "IngressParameters.k8s.example.com/external-lb", "5m"])
    );
    let plain = json!({"metadata": meta("nginx"), "spec": {"controller": "k8s.io/ingress-nginx"}});
    assert_eq!(row("networking.k8s.io", "IngressClass", &plain)[2], json!("<none>"));
}

#[test]
fn network_policy_ip_address_and_service_cidr_rows() {
    let np = json!({"metadata": meta("deny"), "spec": {"podSelector": {}}});
    assert_eq!(row("networking.k8s.io", "NetworkPolicy", &np), strs(&["deny", "<none>", "5m"]));
    let np = json!({"metadata": meta("db"), "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
    assert_eq!(row("networking.k8s.io", "NetworkPolicy", &np)[1], json!("role=db"));

    let ip = json!({"metadata": meta("10.43.0.10"), "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "kube-system", "name": "kube-dns"}}});
    assert_eq!(
        row("networking.k8s.io", "IPAddress", &ip),
        strs(&["10.43.0.10", "services/kube-system/kube-dns", "5m"])
    );
    let ip = json!({"metadata": meta("x"), "spec": {"parentRef": {"group": "Gateway.Networking.K8s.io", "resource": "Gateways", "name": "gw"}}});
    assert_eq!(row("networking.k8s.io", "IPAddress", &ip)[1], json!("gateways.gateway.networking.k8s.io/gw"));

    let cidr = json!({"metadata": meta("kubernetes"), "spec": {"cidrs": ["10.43.0.0/16", "fd00:43::/112"]}});
    assert_eq!(
        row("networking.k8s.io", "ServiceCIDR", &cidr),
        strs(&["kubernetes", "10.43.0.0/16,fd00:43::/112", "5m"])
    );
}

#[test]
fn endpoint_slice_rows() {
    let eps = json!({"metadata": meta("web-abcde"), "addressType": "IPv4",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "named"}, {}, {"port": 9090}],
        "endpoints": [{"addresses": ["10.42.0.5"]}, {"addresses": ["10.42.0.6", "10.42.0.7"]}]});
    assert_eq!(
        row("discovery.k8s.io", "EndpointSlice", &eps),
        strs(&["web-abcde", "IPv4", "80,named,* + 1 more...", "10.42.0.5,10.42.0.6,10.42.0.7", "5m"])
    );
    let empty = json!({"metadata": meta("e"), "addressType": "IPv6"});
    assert_eq!(row("discovery.k8s.io", "EndpointSlice", &empty)[2..4], strs(&["<unset>", "<unset>"]));
}

#[test]
fn role_binding_rows() {
    let rb = json!({"metadata": meta("admins"), "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
    "subjects": [
        {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
        {"kind": "Group", "name": "ops"},
        {"kind": "ServiceAccount", "name": "ci", "namespace": "build"}
    ]});
    assert_eq!(
        row("rbac.authorization.k8s.io", "RoleBinding", &rb),
        strs(&["admins", "ClusterRole/admin", "5m", "alice, bob", "ops", "build/ci"])
    );
    let crb = json!({"metadata": {"name": "cluster-admin", "creationTimestamp": FIVE_MIN_AGO}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "system:masters"}]});
    assert_eq!(
        row("rbac.authorization.k8s.io", "ClusterRoleBinding", &crb),
        strs(&["cluster-admin", "ClusterRole/cluster-admin", "5m", "", "system:masters", ""])
    );
    assert_eq!(
        columns("rbac.authorization.k8s.io", "ClusterRoleBinding")[3].description,
        "Users in the clusterRoleBinding"
    );
}

#[test]
fn lease_row() {
    let lease = json!({"metadata": meta("node-1"), "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}});
    assert_eq!(row("coordination.k8s.io", "Lease", &lease), strs(&["node-1", "node-1", "5m"]));
    assert_eq!(row("coordination.k8s.io", "Lease", &json!({"metadata": meta("l")}))[1], json!(""));
}

#[test]
fn storage_rows() {
    let mut m = meta("local-path");
    m["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
    let sc =
        json!({"metadata": m, "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        row("storage.k8s.io", "StorageClass", &sc),
        vec![
            json!("local-path (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false),
            json!("5m")
        ]
    );

    let driver = json!({"metadata": meta("csi.example.com"), "spec": {"attachRequired": false, "podInfoOnMount": true,
        "volumeLifecycleModes": ["Persistent", "Ephemeral"], "tokenRequests": [{"audience": "vault"}, {"audience": ""}]}});
    assert_eq!(
        row("storage.k8s.io", "CSIDriver", &driver),
        vec![
            json!("csi.example.com"),
            json!(false),
            json!(true),
            json!(false),
            json!("vault,"),
            json!(false),
            json!("Persistent,Ephemeral"),
            json!("5m")
        ]
    );
    let bare = json!({"metadata": meta("d"), "spec": {}});
    assert_eq!(
        row("storage.k8s.io", "CSIDriver", &bare)[1..7],
        [json!(true), json!(false), json!(false), json!("<unset>"), json!(false), json!("<none>")]
    );

    let node = json!({"metadata": meta("node-1"), "spec": {"drivers": [{"name": "a", "nodeID": "n"}]}});
    assert_eq!(row("storage.k8s.io", "CSINode", &node), vec![json!("node-1"), json!(1), json!("5m")]);

    let cap = json!({"metadata": meta("csisc-1"), "storageClassName": "fast", "capacity": "100Gi"});
    assert_eq!(row("storage.k8s.io", "CSIStorageCapacity", &cap), strs(&["csisc-1", "fast", "100Gi"]));
    assert_eq!(row("storage.k8s.io", "CSIStorageCapacity", &json!({"metadata": meta("c")}))[2], json!("<unset>"));

    let va = json!({"metadata": meta("csi-123"), "spec": {"attacher": "csi.example.com", "nodeName": "node-1",
        "source": {"persistentVolumeName": "pv-1"}}, "status": {"attached": true}});
    assert_eq!(
        row("storage.k8s.io", "VolumeAttachment", &va),
        vec![json!("csi-123"), json!("csi.example.com"), json!("pv-1"), json!("node-1"), json!(true), json!("5m")]
    );
    let vac = json!({"metadata": meta("gold"), "driverName": "csi.example.com", "parameters": {}});
    assert_eq!(row("storage.k8s.io", "VolumeAttributesClass", &vac), strs(&["gold", "csi.example.com", "5m"]));
}

#[test]
fn priority_and_runtime_class_rows() {
    let pc = json!({"metadata": meta("system-node-critical"), "value": 2000001000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"});
    assert_eq!(
        row("scheduling.k8s.io", "PriorityClass", &pc),
        vec![
            json!("system-node-critical"),
            json!(2000001000),
            json!(false),
            json!("5m"),
            json!("PreemptLowerPriority")
        ]
    );
    assert_eq!(columns("scheduling.k8s.io", "PriorityClass")[4].priority, 0);
    let rc = json!({"metadata": meta("gvisor"), "handler": "runsc"});
    assert_eq!(row("node.k8s.io", "RuntimeClass", &rc), strs(&["gvisor", "runsc", "5m"]));
}

#[test]
fn certificate_signing_request_rows() {
    let csr = |conditions: Value, certificate: Option<&str>| {
        let mut obj = json!({"metadata": meta("csr-1"),
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "alice", "expirationSeconds": 86400},
            "status": {"conditions": conditions}});
        if let Some(c) = certificate {
            obj["status"]["certificate"] = json!(c);
        }
        row("certificates.k8s.io", "CertificateSigningRequest", &obj)
    };
    assert_eq!(
        csr(json!([]), None),
        strs(&["csr-1", "5m", "kubernetes.io/kube-apiserver-client", "alice", "24h", "Pending"])
    );
    assert_eq!(csr(json!([{"type": "Approved", "status": "True"}]), Some("LS0t"))[5], json!("Approved,Issued"));
    assert_eq!(
        csr(json!([{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]), None)[5],
        json!("Denied,Failed")
    );
    let bare = json!({"metadata": meta("b"), "spec": {}});
    assert_eq!(row("certificates.k8s.io", "CertificateSigningRequest", &bare)[2..5], strs(&["<none>", "", "<none>"]));
}

#[test]
fn admission_registration_rows() {
    let hooks = json!({"metadata": meta("hooks"), "webhooks": [{"name": "a.example.com"}, {"name": "b.example.com"}]});
    assert_eq!(
        row("admissionregistration.k8s.io", "MutatingWebhookConfiguration", &hooks),
        vec![json!("hooks"), json!(2), json!("5m")]
    );
    assert_eq!(row("admissionregistration.k8s.io", "ValidatingWebhookConfiguration", &hooks)[1], json!(2));

    let vap = json!({"metadata": meta("replicas"), "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "validations": [{"expression": "object.spec.replicas <= 5"}]}});
    assert_eq!(
        row("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", &vap),
        vec![json!("replicas"), json!(1), json!("v1/ConfigMap"), json!("5m")]
    );
    assert_eq!(
        row("admissionregistration.k8s.io", "ValidatingAdmissionPolicy", &json!({"metadata": meta("v")}))[2],
        json!("<unset>")
    );

    let binding = |param: Value| {
        let obj = json!({"metadata": meta("b"), "spec": {"policyName": "replicas", "paramRef": param}});
        row("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding", &obj)[2].clone()
    };
    assert_eq!(binding(json!({"name": "limits", "namespace": "prod"})), json!("prod/limits"));
    assert_eq!(binding(json!({"name": "limits"})), json!("*/limits"));
    assert_eq!(
        binding(
            json!({"selector": {"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["x", "y"]}]}})
        ),
        json!(
            "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:env,Operator:In,Values:[x y],},},}"
        )
    );
    assert_eq!(binding(Value::Null), json!("<unset>"));
    let cells = row(
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        &json!({"metadata": meta("b"), "spec": {"policyName": "p"}}),
    );
    assert_eq!(cells, strs(&["b", "p", "<unset>", "5m"]));
}

#[test]
fn column_definitions_serialize_every_field() {
    assert_eq!(
        columns("", "Pod")[5].definition(),
        json!({
            "name": "IP", "type": "string", "format": "", "description": columns("", "Pod")[5].description, "priority": 1
        })
    );
    assert_eq!(DEFAULT_COLUMNS[0].definition()["format"], json!("name"));
}

#[test]
fn column_descriptions_come_from_the_api_docs() {
    let pod_cols = columns("", "Pod");
    assert!(pod_cols[0].description.starts_with("Name must be unique within a namespace."));
    assert!(pod_cols[4].description.starts_with("CreationTimestamp is a timestamp"));
    assert!(columns("", "Service")[1].description.contains("ExternalName"));
    assert_eq!(columns("node.k8s.io", "RuntimeClass")[1].description, "");
}
