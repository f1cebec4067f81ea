//! The upstream examples, against the real built-in schemas of [`crate::openapi::definitions`].

use serde_json::{Value, json};

use super::super::*;
use super::{NOW, entry, fields, has_entry};
use crate::openapi::definitions;

const LATER: &str = "2024-05-01T12:00:00Z";
const APPS: &str = "apps/v1";

fn schema(name: &str) -> Schema<'static> {
    Schema::root(definitions(), name).unwrap_or_else(|| panic!("no definition {name}"))
}

fn deployment_schema() -> Schema<'static> {
    schema("io.k8s.api.apps.v1.Deployment")
}

/// The Deployment of the server-side apply documentation.
fn nginx(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx-deployment", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn apply_deploy(
    live: Option<&Value>,
    config: &Value,
    entries: Vec<ManagedFieldsEntry>,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<(Value, Vec<ManagedFieldsEntry>), ApplyError> {
    apply(live, config, entries, manager, APPS, force, now, deployment_schema())
}

#[test]
fn server_side_apply_creates_with_upstreams_field_set() {
    let (obj, entries) = apply_deploy(None, &nginx(3, "nginx:1.14.2"), vec![], "kubectl", false, NOW).expect("applies");
    assert_eq!(obj["spec"]["replicas"], 3);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        fields(&entries[0]),
        concat!(
            r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"#,
            r#""f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"#,
            r#""f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#
        )
    );
    let mf = &obj["metadata"]["managedFields"][0];
    assert_eq!(mf["manager"], "kubectl");
    assert_eq!(mf["operation"], "Apply");
    assert_eq!(mf["apiVersion"], APPS);
    assert_eq!(mf["fieldsType"], "FieldsV1");
}

#[test]
fn create_by_update_matches_kubectl_create() {
    let obj = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "uid": "u", "creationTimestamp": NOW},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{"name": "nginx", "image": "nginx", "resources": {}, "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                    "restartPolicy": "Always"
                }
            }
        },
        "status": {}
    });
    let entries = record_update(None, &obj, vec![], "kubectl-create", APPS, None, NOW, deployment_schema());
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].operation, ManagedFieldsOperation::Update);
    // Value-typed structs (spec, template, strategy, ...) and the non-omitempty containers list
    // get no "." of their own, pointers and maps (rollingUpdate, labels) and new items do.
    assert_eq!(
        fields(&entries[0]),
        concat!(
            r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"#,
            r#""f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"#,
            r#""f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"#,
            r#""f:image":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"#,
            r#""f:resources":{}}},"f:restartPolicy":{}}}}}"#
        )
    );
    // Defaulting an omitted value struct to `{}` later changes no ownership.
    let mut without = obj.clone();
    if let Some(c) = without["spec"]["template"]["spec"]["containers"][0].as_object_mut() {
        c.remove("resources");
    }
    let again =
        record_update(Some(&without), &obj, entries.clone(), "defaulter", APPS, None, LATER, deployment_schema());
    assert_eq!(again, entries);
}

#[test]
fn changing_replicas_by_apply_and_conflicting_with_a_scaler() {
    let (obj, entries) = apply_deploy(None, &nginx(3, "nginx:1.14.2"), vec![], "kubectl", false, NOW).expect("applies");
    let (obj, entries) =
        apply_deploy(Some(&obj), &nginx(4, "nginx:1.14.2"), entries, "kubectl", false, LATER).expect("applies");
    assert_eq!(obj["spec"]["replicas"], 4);
    // The HPA scales through /scale: it owns replicas now.
    let mut scaled = obj.clone();
    scaled["spec"]["replicas"] = json!(10);
    let entries = record_update(
        Some(&obj),
        &scaled,
        entries,
        "kube-controller-manager",
        APPS,
        Some("scale"),
        LATER,
        deployment_schema(),
    );
    assert_eq!(fields(entry(&entries, "kube-controller-manager")), r#"{"f:spec":{"f:replicas":{}}}"#);
    let err = apply_deploy(Some(&scaled), &nginx(4, "nginx:1.14.2"), entries.clone(), "kubectl", false, LATER)
        .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kube-controller-manager\" with subresource \"scale\" using apps/v1: .spec.replicas"
    );
    // The documented fix: stop applying replicas.
    let mut without = nginx(4, "nginx:1.14.2");
    if let Some(spec) = without["spec"].as_object_mut() {
        spec.remove("replicas");
    }
    let (obj, entries) = apply_deploy(Some(&scaled), &without, entries, "kubectl", false, LATER).expect("applies");
    assert_eq!(obj["spec"]["replicas"], 10);
    assert!(!entry(&entries, "kubectl").fields.to_fields_v1_string().contains("replicas"));
}

#[test]
fn a_second_applier_conflicts_on_a_container_image_until_forced() {
    let (obj, entries) = apply_deploy(None, &nginx(2, "nginx:1"), vec![], "kubectl", false, NOW).expect("applies");
    let patch = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx-deployment"},
        "spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:2"}]}}}
    });
    let err = apply_deploy(Some(&obj), &patch, entries.clone(), "updater", false, LATER).expect_err("conflict");
    let ApplyError::Conflicts(c) = &err else { panic!("{err:?}") };
    assert_eq!(c[0].field, ".spec.template.spec.containers[name=\"nginx\"].image");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl\": .spec.template.spec.containers[name=\"nginx\"].image"
    );
    let (obj, entries) = apply_deploy(Some(&obj), &patch, entries, "updater", true, LATER).expect("forced");
    assert_eq!(obj["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(obj["spec"]["template"]["spec"]["containers"][0]["ports"], json!([{"containerPort": 80}]));
    assert!(!fields(entry(&entries, "kubectl")).contains("f:image"));
    assert!(fields(entry(&entries, "updater")).contains("f:image"));
}

#[test]
fn client_side_applied_objects_migrate_to_server_side_apply() {
    // `kubectl apply` (client-side) created the object with an extra label.
    let mut csa = nginx(2, "nginx:1");
    csa["metadata"]["labels"]["team"] = json!("a");
    let entries = record_update(None, &csa, vec![], CLIENT_SIDE_APPLY_MANAGER, APPS, None, NOW, deployment_schema());
    // kubectl --server-side first migrates the entries (a JSON patch of managedFields)...
    let entries = upgrade_client_side_apply(entries, CLIENT_SIDE_APPLY_MANAGER, "kubectl");
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].manager.as_str(), entries[0].operation), ("kubectl", ManagedFieldsOperation::Apply));
    // ...so that applying without the label now removes it, as client-side apply would have.
    let (obj, entries) =
        apply_deploy(Some(&csa), &nginx(2, "nginx:1"), entries, "kubectl", false, LATER).expect("applies");
    assert_eq!(obj["metadata"]["labels"], json!({"app": "nginx"}));
    assert!(!has_entry(&entries, CLIENT_SIDE_APPLY_MANAGER));
}

#[test]
fn config_maps_and_services_use_their_schemas() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
    let cm_schema = schema("io.k8s.api.core.v1.ConfigMap");
    let (obj, entries) = apply(None, &cm, vec![], "one", "v1", false, NOW, cm_schema).expect("applies");
    let two = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"c": "3"}});
    let (obj, entries) = apply(Some(&obj), &two, entries, "two", "v1", false, NOW, cm_schema).expect("applies");
    assert_eq!(obj["data"], json!({"a": "1", "b": "2", "c": "3"}));
    assert_eq!(fields(entry(&entries, "two")), r#"{"f:data":{"f:c":{}}}"#);

    let svc = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 8080}]}
    });
    let svc_schema = schema("io.k8s.api.core.v1.Service");
    let set = fields_of(&svc, svc_schema);
    assert_eq!(
        set.to_fields_v1_string(),
        concat!(
            r#"{"f:apiVersion":{},"f:kind":{},"f:metadata":{"f:name":{}},"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"#,
            r#""f:port":{},"f:targetPort":{}}},"f:selector":{}}}"#
        )
    );
}

#[test]
fn status_writes_through_the_subresource_keep_their_own_entry() {
    let pod_schema = schema("io.k8s.api.core.v1.Pod");
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}
    });
    let main = FieldManager::new(pod_schema, "v1").with_reset_fields(FieldSet::from_paths(&[Path::fields(["status"])]));
    let entries = main.update(None, &pod, vec![], "kubectl-run", NOW);
    let mut running = pod.clone();
    running["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
    let status = FieldManager::new(pod_schema, "v1")
        .with_subresource("status")
        .with_reset_fields(FieldSet::from_paths(&[Path::fields(["spec"]), Path::fields(["metadata"])]));
    let entries = status.update(Some(&pod), &running, entries, "kubelet", LATER);
    let kubelet = entry(&entries, "kubelet");
    assert_eq!(kubelet.subresource.as_deref(), Some("status"));
    assert_eq!(
        fields(kubelet),
        r#"{"f:status":{"f:conditions":{".":{},"k:{\"type\":\"Ready\"}":{".":{},"f:status":{},"f:type":{}}},"f:phase":{}}}"#
    );
    assert_eq!(entry(&entries, "kubectl-run").subresource, None);
}

/// The built-in definitions are walked through nodes read once (`compiled`); walking the same
/// objects with the schema cursor itself gives the same field sets and comparisons.
#[test]
fn compiled_nodes_walk_like_the_schema_cursor() {
    use super::super::types::Ty;
    use super::super::walk;
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "a"}, "annotations": {"x": "y"}, "finalizers": ["f"],
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u"}]},
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "c", "image": "nginx", "args": ["a", "b"],
                            "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
                            "env": [{"name": "E", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                            "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}}],
            "nodeSelector": {"zone": "a"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "z", "operator": "In", "values": ["a"]}]}]}}},
            "volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "configMap": {"name": "cm", "items": [{"key": "k", "path": "p"}]}}],
            "unknownField": {"nested": 1}
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0, "image": "nginx", "imageID": "",
                                          "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}}]}
    });
    let mut changed = pod.clone();
    changed["spec"]["containers"][0]["image"] = json!("nginx:2");
    changed["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
    changed["metadata"]["labels"] = json!({"app": "b", "tier": "web"});
    changed["spec"]["volumes"].as_array_mut().expect("volumes").pop();
    changed["status"]["conditions"] =
        json!([{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"}, "scope": "Namespaced",
                 "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": true,
                     "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}
    });
    let cases = [
        ("io.k8s.api.core.v1.Pod", pod, changed),
        ("io.k8s.api.apps.v1.Deployment", nginx(3, "nginx:1"), nginx(5, "nginx:2")),
        ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition", json!({}), crd),
    ];
    for (name, a, b) in cases {
        let s = schema(name);
        let (node, cursor) = (Ty::root(s), Ty::Schema { schema: s, preserve: false });
        assert!(matches!(node, Ty::Node { .. }), "{name} is walked through compiled nodes");
        for v in [&a, &b] {
            assert_eq!(walk::to_set(v, node), walk::to_set(v, cursor), "{name}: fields of {v}");
        }
        for implicit in [false, true] {
            let (x, y) = (walk::compare(&a, &b, node, implicit), walk::compare(&a, &b, cursor, implicit));
            assert_eq!((x.added, x.modified, x.removed), (y.added, y.modified, y.removed), "{name}: comparison");
        }
        assert_eq!(walk::validate(&b, node), walk::validate(&b, cursor), "{name}: validation");
    }
}
