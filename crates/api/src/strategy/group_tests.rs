//! Tests of the smaller groups' strategies (policy, scheduling, storage, discovery, events,
//! certificates, admissionregistration, coordination, node), through the whole pipeline.

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::node::v1::RuntimeClass;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use serde_json::json;

use crate::strategy::test_util::{create, errors, has, ok, update};

#[test]
fn pod_disruption_budget() {
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    let out = ok(create::<PodDisruptionBudget>(pdb));
    assert_eq!(
        out["status"],
        json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0})
    );
    let bad = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"minAvailable": "50%", "maxUnavailable": "120%"}});
    let errs = errors(create::<PodDisruptionBudget>(bad));
    has(
        &errs,
        "spec: Invalid value: policy.PodDisruptionBudgetSpec{...}: minAvailable and maxUnavailable cannot be both set",
    );
    has(
        &errs,
        "spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%",
    );
}

#[test]
fn priority_class() {
    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000});
    let out = ok(create::<PriorityClass>(pc));
    assert_eq!(out["preemptionPolicy"], "PreemptLowerPriority");
    let mut changed = out.clone();
    changed["value"] = json!(2000);
    has(&errors(update::<PriorityClass>(changed, &out)), "value: Forbidden: may not be changed in an update.");
    let sys = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "system-mine"}, "value": 1});
    has(
        &errors(create::<PriorityClass>(sys)),
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: priority class system-mine is not a known system priority class",
    );
}

#[test]
fn storage_class_and_csi_driver() {
    let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "local-path"}, "provisioner": "rancher.io/local-path"});
    let out = ok(create::<StorageClass>(sc));
    assert_eq!(out["reclaimPolicy"], "Delete");
    assert_eq!(out["volumeBindingMode"], "Immediate");
    let mut changed = out.clone();
    changed["parameters"] = json!({"a": "b"});
    changed["reclaimPolicy"] = json!("Retain");
    let errs = errors(update::<StorageClass>(changed, &out));
    assert_eq!(
        errs,
        [
            "parameters: Forbidden: updates to parameters are forbidden.",
            "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."
        ]
    );
    let bad = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "x"}, "provisioner": "", "reclaimPolicy": "Recycle"});
    let errs = errors(create::<StorageClass>(bad));
    assert_eq!(
        errs,
        [
            "provisioner: Required value",
            "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\""
        ]
    );
    let driver = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "hostpath.csi.k8s.io"}, "spec": {}});
    let out = ok(create::<CSIDriver>(driver));
    assert_eq!(out["spec"]["attachRequired"], true);
    assert_eq!(out["spec"]["volumeLifecycleModes"], json!(["Persistent"]));
    assert_eq!(out["spec"]["fsGroupPolicy"], "ReadWriteOnceWithFSType");
}

#[test]
fn endpoint_slice() {
    let es = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-abc", "namespace": "default"},
        "addressType": "IPv4", "endpoints": [{"addresses": ["10.42.0.5"]}], "ports": [{"port": 80}]});
    let out = ok(create::<EndpointSlice>(es));
    assert_eq!(out["ports"][0], json!({"name": "", "port": 80, "protocol": "TCP"}));
    let bad = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-abc", "namespace": "default"},
        "addressType": "IPv5", "endpoints": [{"addresses": []}]});
    let errs = errors(create::<EndpointSlice>(bad));
    has(&errs, "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"");
    has(&errs, "endpoints[0].addresses: Required value: must contain at least 1 address");
    let v4 = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "w", "namespace": "default"},
        "addressType": "IPv4", "endpoints": [{"addresses": ["fd00::1"]}]});
    has(
        &errors(create::<EndpointSlice>(v4)),
        "endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
    );
}

#[test]
fn events_v1() {
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.000000Z", "type": "Normal", "reason": "Started", "action": "Start",
        "reportingController": "skiff.io/kubelet", "reportingInstance": "node-1", "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}});
    ok(create::<Event>(ev));
    let bad = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"}, "type": "Info"});
    let errs = errors(create::<Event>(bad));
    has(&errs, "eventTime: Required value");
    has(&errs, "type: Invalid value: \"\": has invalid value: Info");
    has(&errs, "reportingInstance: Required value");
}

#[test]
fn csr_lease_runtimeclass() {
    let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "c"},
        "spec": {"request": "aGVsbG8=", "signerName": "kubernetes.io", "usages": ["client auth", "flying"], "expirationSeconds": 60}});
    let errs = errors(create::<CertificateSigningRequest>(csr));
    has(&errs, "spec.request: Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST");
    has(
        &errs,
        "spec.signerName: Invalid value: \"kubernetes.io\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
    );
    has(
        &errs,
        "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)",
    );
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "n1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 0}});
    assert_eq!(errors(create::<Lease>(lease)), ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]);
    let rc = json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"}, "handler": "runsc"});
    let out = ok(create::<RuntimeClass>(rc));
    let mut changed = out.clone();
    changed["handler"] = json!("kata");
    assert_eq!(errors(update::<RuntimeClass>(changed, &out)), ["handler: Invalid value: \"kata\": field is immutable"]);
}

#[test]
fn webhook_configurations() {
    let hook = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"},
        "webhooks": [{"name": "check.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                      "clientConfig": {"service": {"name": "svc", "namespace": "default"}},
                      "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]});
    let out = ok(create::<ValidatingWebhookConfiguration>(hook));
    let w = &out["webhooks"][0];
    assert_eq!(w["failurePolicy"], "Fail");
    assert_eq!(w["matchPolicy"], "Equivalent");
    assert_eq!(w["timeoutSeconds"], 10);
    assert_eq!(w["namespaceSelector"], json!({}));
    assert_eq!(w["objectSelector"], json!({}));
    assert_eq!(w["rules"][0]["scope"], "*");
    assert_eq!(w["clientConfig"]["service"]["port"], 443);
    let bad = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration", "metadata": {"name": "m"},
        "webhooks": [{"name": "hook", "clientConfig": {}, "timeoutSeconds": 60}]});
    let errs = errors(create::<MutatingWebhookConfiguration>(bad));
    has(
        &errs,
        "webhooks[0].name: Invalid value: \"hook\": should be a domain with at least three segments separated by dots",
    );
    has(&errs, "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun");
    has(&errs, "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1");
    has(&errs, "webhooks[0].clientConfig: Required value: exactly one of url or service is required");
    has(&errs, "webhooks[0].timeoutSeconds: Invalid value: 60: the timeout value must be between 1 and 30 seconds");
}

/// Every built-in kind must answer malformed input with errors, never a panic.
#[test]
fn hostile_objects_never_panic() {
    use crate::strategy::Operation;
    let weird_values = [
        json!(null),
        json!({}),
        json!({"metadata": {"name": "x", "namespace": "default", "uid": "u"}}),
        json!({"metadata": {"name": "x"}, "spec": {}}),
        json!({"metadata": {"name": "x"}, "spec": {"containers": [{}], "template": {}, "selector": {}}}),
        json!({"metadata": {"name": "x"}, "spec": {
            "replicas": -5, "ports": [{"port": -1, "targetPort": "", "nodePort": 99999}],
            "containers": [{"name": "", "image": " x ", "ports": [{"containerPort": 0, "hostPort": -3}],
                            "resources": {"limits": {"cpu": "1e400", "memory": "99999999999999999999999999999999999Ei"},
                                          "requests": {"cpu": "-1", "memory": "0.000000000000000000000000000000000000000000000000001"}},
                            "livenessProbe": {"exec": {}, "httpGet": {"port": "x"}, "periodSeconds": -1}}],
            "volumes": [{"name": ""}, {"name": "a", "projected": {"sources": [{}]}}],
            "template": {"metadata": {"labels": {"": ""}}, "spec": {"containers": []}},
            "selector": {"matchExpressions": [{"key": "", "operator": ""}]},
            "strategy": {"type": "", "rollingUpdate": {"maxSurge": "abc%", "maxUnavailable": "%"}},
            "updateStrategy": {"type": "x"},
            "schedule": "@every",
            "jobTemplate": {},
            "rules": [{}],
            "ingress": [{"from": [{"ipBlock": {"cidr": "::/0", "except": ["::/129"]}}]}],
            "clusterIPs": ["None", "None", "1.2.3"], "clusterIP": "None", "type": "LoadBalancer",
            "capacity": {"storage": "x"}, "accessModes": [], "cidrs": ["x", "y", "z"],
            "metrics": [{"type": "Resource"}], "behavior": {"scaleUp": {"policies": []}},
            "minAvailable": "200%", "maxUnavailable": -1
        }}),
    ];
    for res in crate::resources::builtin() {
        for obj in &weird_values {
            let mut obj = obj.clone();
            if let Some(m) = obj.as_object_mut() {
                m.insert("apiVersion".into(), json!(res.info.api_version()));
                m.insert("kind".into(), json!(res.info.kind));
            }
            let created = res.strategy.admit(obj.clone(), Operation::Create, &mut Vec::new());
            if let Ok(created) = created {
                let _ = res.strategy.admit(
                    created.object.clone(),
                    Operation::Update { old: &created.object },
                    &mut Vec::new(),
                );
                let _ = res.strategy.admit(obj.clone(), Operation::Update { old: &created.object }, &mut Vec::new());
                let _ =
                    res.strategy.admit(obj.clone(), Operation::UpdateStatus { old: &created.object }, &mut Vec::new());
            }
        }
    }
}

/// `json_eq` is serde_json's equality, with or without the keys in the same order.
#[test]
fn json_eq_is_serde_json_equality() {
    use super::json_eq;
    let a = json!({"a": 1, "b": {"x": [1, {"y": 2, "z": 3}], "w": null}, "c": "s"});
    let same_order = a.clone();
    let other_order = json!({"c": "s", "b": {"w": null, "x": [1, {"z": 3, "y": 2}]}, "a": 1});
    let cases = [
        (&a, &same_order),
        (&a, &other_order),
        (&a, &json!({"a": 1, "b": {"x": [1, {"y": 2, "z": 4}], "w": null}, "c": "s"})),
        (&a, &json!({"a": 1, "b": {"x": [{"y": 2, "z": 3}, 1], "w": null}, "c": "s"})),
        (&a, &json!({"a": 1, "b": {"x": [1, {"y": 2, "z": 3}], "w": null}})),
        (&a, &json!({"a": 1, "b": {"x": [1, {"y": 2, "z": 3}], "w": null}, "d": "s"})),
        (&a, &json!({"a": 1.0, "b": {"x": [1, {"y": 2, "z": 3}], "w": null}, "c": "s"})),
        (&a, &json!([1])),
        (&json!(null), &json!(null)),
    ];
    for (x, y) in cases {
        assert_eq!(json_eq(x, y), x == y, "{x} against {y}");
        assert_eq!(json_eq(y, x), y == x, "{y} against {x}");
    }
    assert!(json_eq(&a, &other_order));
}
