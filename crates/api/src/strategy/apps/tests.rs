//! apps/v1 strategies driven through the whole admission pipeline.

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use serde_json::{Value, json};

use crate::strategy::test_util::{create, errors, has, ok, update, update_status};

fn template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}})
}

fn workload(kind: &str, spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn deployment() -> Value {
    workload(
        "Deployment",
        json!({"selector": {"matchLabels": {"app": "web"}}, "template": template(json!({"app": "web"}))}),
    )
}

#[test]
fn deployment_defaults() {
    let out = ok(create::<Deployment>(deployment()));
    let spec = &out["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["securityContext"], json!({}));
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(pod["containers"][0]["resources"], json!({}));
    // Pod-only admission defaults are not applied to templates.
    assert!(pod.get("serviceAccountName").is_none());
    assert!(pod.get("tolerations").is_none());
    assert_eq!(out["status"], json!({}));
}

#[test]
fn deployment_selector_must_match_template() {
    let d = workload(
        "Deployment",
        json!({"selector": {"matchLabels": {"app": "api"}}, "template": template(json!({"app": "web"}))}),
    );
    let errs = errors(create::<Deployment>(d));
    assert_eq!(
        errs,
        [
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
        ]
    );
    let d = workload("Deployment", json!({"template": template(json!({"app": "web"}))}));
    let errs = errors(create::<Deployment>(d));
    assert_eq!(
        errs,
        [
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
        ]
    );
}

#[test]
fn deployment_validation() {
    let d = workload(
        "Deployment",
        json!({
            "replicas": -1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
            "progressDeadlineSeconds": 5, "minReadySeconds": 10,
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"restartPolicy": "OnFailure", "activeDeadlineSeconds": 5, "containers": [{"name": "web", "image": "x"}]}}
        }),
    );
    let errs = errors(create::<Deployment>(d));
    has(&errs, "spec.replicas: Invalid value: -1: must be greater than or equal to 0");
    has(
        &errs,
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
    );
    has(&errs, "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds");
    has(&errs, "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"");
    has(
        &errs,
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
    );
    let d = workload(
        "Deployment",
        json!({"selector": {"matchLabels": {"app": "web"}}, "strategy": {"type": "Recreate", "rollingUpdate": {}}, "template": template(json!({"app": "web"}))}),
    );
    has(
        &errors(create::<Deployment>(d)),
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
    );
    let d = workload(
        "Deployment",
        json!({"selector": {"matchLabels": {"app": "web"}}, "strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}, "template": template(json!({"app": "web"}))}),
    );
    has(
        &errors(create::<Deployment>(d)),
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%",
    );
}

#[test]
fn deployment_selector_is_immutable() {
    let old = ok(create::<Deployment>(deployment()));
    let mut new = old.clone();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
    new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "v": "2"});
    let errs = errors(update::<Deployment>(new, &old));
    assert_eq!(
        errs,
        [
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        ]
    );
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    ok(update::<Deployment>(scaled, &old));
    let mut st = old.clone();
    st["status"] = json!({"replicas": 1, "readyReplicas": 2});
    has(
        &errors(update_status::<Deployment>(st, &old)),
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
    );
}

#[test]
fn replicaset() {
    let rs = workload(
        "ReplicaSet",
        json!({"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, "template": template(json!({"app": "web"}))}),
    );
    let out = ok(create::<ReplicaSet>(rs));
    assert_eq!(out["spec"]["replicas"], 1);
    let bad = workload(
        "ReplicaSet",
        json!({"selector": {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["web"]}]}, "template": template(json!({"app": "web"}))}),
    );
    let errs = errors(create::<ReplicaSet>(bad));
    has(&errs, "spec.selector.matchExpressions[0].operator: Invalid value: \"Near\": not a valid selector operator");
}

#[test]
fn daemonset() {
    let ds = workload(
        "DaemonSet",
        json!({"selector": {"matchLabels": {"app": "web"}}, "template": template(json!({"app": "web"}))}),
    );
    let out = ok(create::<DaemonSet>(ds));
    assert_eq!(
        out["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(out["spec"]["revisionHistoryLimit"], 10);
    let bad = workload(
        "DaemonSet",
        json!({"selector": {"matchLabels": {"app": "x"}}, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}, "template": template(json!({"app": "web"}))}),
    );
    let errs = errors(create::<DaemonSet>(bad));
    has(
        &errs,
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
    );
    has(
        &errs,
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: may not be set when maxUnavailable is non-zero",
    );
}

fn statefulset() -> Value {
    workload(
        "StatefulSet",
        json!({
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": template(json!({"app": "web"})),
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        }),
    )
}

#[test]
fn statefulset_defaults() {
    let out = ok(create::<StatefulSet>(statefulset()));
    let spec = &out["spec"];
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(spec["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
    assert_eq!(spec["persistentVolumeClaimRetentionPolicy"], json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["volumeClaimTemplates"][0]["spec"]["volumeMode"], "Filesystem");
    assert_eq!(spec["volumeClaimTemplates"][0]["status"], json!({"phase": "Pending"}));
    // serviceName is optional in 1.33.
    let mut no_service = statefulset();
    no_service["spec"].as_object_mut().unwrap().remove("serviceName");
    ok(create::<StatefulSet>(no_service));
}

#[test]
fn statefulset_update_rules() {
    let old = ok(create::<StatefulSet>(statefulset()));
    let mut ok_update = old.clone();
    ok_update["spec"]["replicas"] = json!(3);
    ok_update["spec"]["minReadySeconds"] = json!(5);
    ok_update["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    ok(update::<StatefulSet>(ok_update, &old));
    let mut bad = old.clone();
    bad["spec"]["serviceName"] = json!("other");
    let errs = errors(update::<StatefulSet>(bad, &old));
    assert_eq!(
        errs,
        [
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        ]
    );
    let mut bad = statefulset();
    bad["spec"]["podManagementPolicy"] = json!("Random");
    has(
        &errors(create::<StatefulSet>(bad)),
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
    );
}

#[test]
fn controller_revision() {
    let cr = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r", "namespace": "default"}, "revision": -1});
    let errs = errors(create::<ControllerRevision>(cr));
    assert_eq!(
        errs,
        ["data: Required value: data is mandatory", "revision: Invalid value: -1: must be greater than or equal to 0"]
    );
}
