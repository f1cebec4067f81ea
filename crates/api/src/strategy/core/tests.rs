//! core/v1 strategies driven through the whole admission pipeline.

use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, LimitRange, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    ReplicationController, Secret, Service,
};
use serde_json::{Value, json};

use crate::strategy::test_util::{create, errors, has, ok, update, update_status};

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": "default"}, "spec": spec})
}

fn one_container(extra: Value) -> Value {
    let mut c = json!({"name": "app", "image": "nginx:1.27"});
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    pod(json!({"containers": [c]}))
}

#[test]
fn pod_defaults_match_upstream() {
    let out = ok(create::<Pod>(pod(json!({"containers": [{"name": "app", "image": "nginx"}]}))));
    assert_eq!(
        out["spec"],
        json!({
            "containers": [{
                "name": "app", "image": "nginx", "imagePullPolicy": "Always", "resources": {},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ]
        })
    );
    assert_eq!(out["status"], json!({"phase": "Pending", "qosClass": "BestEffort"}));
    assert_eq!(out["apiVersion"], "v1");
    assert_eq!(out["kind"], "Pod");
}

#[test]
fn pod_nested_defaults() {
    let out = ok(create::<Pod>(pod(json!({
        "containers": [{
            "name": "web", "image": "registry.local:5000/web:v2",
            "ports": [{"containerPort": 80}],
            "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 0},
            "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}},
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "scratch", "mountPath": "/tmp"}]
        }],
        "volumes": [
            {"name": "cfg", "configMap": {"name": "cfg"}},
            {"name": "scratch"},
            {"name": "sec", "secret": {"secretName": "s"}},
            {"name": "host", "hostPath": {"path": "/var/log"}},
            {"name": "dapi", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}
        ],
        "tolerations": [{"operator": "Exists"}]
    }))));
    let c = &out["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0], json!({"containerPort": 80, "protocol": "TCP"}));
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"], json!({"apiVersion": "v1", "fieldPath": "metadata.name"}));
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10,
               "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 10);
    // Requests default to limits; quantities are canonical.
    assert_eq!(
        c["resources"],
        json!({"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "500m", "memory": "128Mi"}})
    );
    let v = &out["spec"]["volumes"];
    assert_eq!(v[0]["configMap"], json!({"name": "cfg", "defaultMode": 420}));
    assert_eq!(v[1]["emptyDir"], json!({}));
    assert_eq!(v[2]["secret"], json!({"secretName": "s", "defaultMode": 420}));
    assert_eq!(v[3]["hostPath"], json!({"path": "/var/log", "type": ""}));
    assert_eq!(v[4]["downwardAPI"]["defaultMode"], 420);
    assert_eq!(v[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"], "v1");
    // A toleration of everything already covers the default ones.
    assert_eq!(out["spec"]["tolerations"], json!([{"operator": "Exists"}]));
    assert_eq!(out["status"]["qosClass"], "Guaranteed");
}

#[test]
fn image_pull_policy_by_tag() {
    use super::pod_spec::pull_policy_for;
    assert_eq!(pull_policy_for("nginx"), "Always");
    assert_eq!(pull_policy_for("nginx:latest"), "Always");
    assert_eq!(pull_policy_for("localhost:5000/nginx"), "Always");
    assert_eq!(pull_policy_for("nginx:1.27"), "IfNotPresent");
    assert_eq!(pull_policy_for("nginx@sha256:abcd"), "IfNotPresent");
    assert_eq!(pull_policy_for("nginx:latest@sha256:abcd"), "Always");
}

#[test]
fn qos_classes() {
    let burstable = ok(create::<Pod>(one_container(json!({"resources": {"requests": {"cpu": "100m"}}}))));
    assert_eq!(burstable["status"]["qosClass"], "Burstable");
    let partial = ok(create::<Pod>(one_container(json!({"resources": {"limits": {"cpu": "1"}}}))));
    assert_eq!(partial["status"]["qosClass"], "Burstable");
}

#[test]
fn pod_required_fields() {
    let errs = errors(create::<Pod>(pod(json!({"containers": [{"name": "app"}]}))));
    assert_eq!(errs, ["spec.containers[0].image: Required value"]);
    let errs = errors(create::<Pod>(pod(json!({}))));
    assert_eq!(errs, ["spec.containers: Required value"]);
}

#[test]
fn pod_enums_and_names() {
    let errs = errors(create::<Pod>(pod(json!({
        "restartPolicy": "Sometimes",
        "containers": [{"name": "App_1", "image": "x", "imagePullPolicy": "Maybe", "ports": [{"containerPort": 70000, "name": "8080", "protocol": "tcp"}]}]
    }))));
    has(
        &errs,
        "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    );
    has(
        &errs,
        "spec.containers[0].name: Invalid value: \"App_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric \
         characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used \
         for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
    has(
        &errs,
        "spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
    );
    has(
        &errs,
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    has(&errs, "spec.containers[0].ports[0].name: Invalid value: \"8080\": must contain at least one letter (a-z)");
    has(
        &errs,
        "spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
    );
}

#[test]
fn pod_duplicates_and_references() {
    let errs = errors(create::<Pod>(pod(json!({
        "initContainers": [{"name": "app", "image": "busybox"}],
        "containers": [
            {"name": "app", "image": "nginx", "volumeMounts": [{"name": "missing", "mountPath": "/data"}],
             "env": [{"name": "A=B", "value": "x"}, {"name": "X", "valueFrom": {}}]},
            {"name": "app", "image": "nginx"}
        ],
        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}},
                    {"name": "two", "emptyDir": {}, "secret": {"secretName": "s"}}]
    }))));
    has(&errs, "spec.containers[1].name: Duplicate value: \"app\"");
    has(&errs, "spec.initContainers[0].name: Duplicate value: \"app\"");
    has(&errs, "spec.volumes[1].name: Duplicate value: \"data\"");
    has(&errs, "spec.volumes[2].secret: Forbidden: may not specify more than 1 volume type");
    has(&errs, "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"");
    has(
        &errs,
        "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of \
         printable ASCII characters other than '='",
    );
    has(
        &errs,
        "spec.containers[0].env[1].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, \
         `configMapKeyRef` or `secretKeyRef`",
    );
}

#[test]
fn pod_resources_and_probes() {
    let errs = errors(create::<Pod>(one_container(json!({
        "resources": {"requests": {"cpu": "2", "memory": "1Gx"}, "limits": {"cpu": "1"}},
        "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2},
        "readinessProbe": {}
    }))));
    has(
        &errs,
        "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
    );
    has(
        &errs,
        "spec.containers[0].resources.requests[memory]: Invalid value: \"1Gx\": quantities must match the regular expression \
         '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    );
    has(&errs, "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1");
    has(&errs, "spec.containers[0].readinessProbe: Required value: must specify a handler type");
    let errs = errors(create::<Pod>(one_container(json!({"resources": {"limits": {"cpux": "1"}}}))));
    has(
        &errs,
        "spec.containers[0].resources.limits[cpux]: Invalid value: \"cpux\": must be a standard resource for containers",
    );
}

#[test]
fn pod_tolerations_and_affinity() {
    let errs = errors(create::<Pod>(pod(json!({
        "containers": [{"name": "a", "image": "x"}],
        "tolerations": [{"key": "", "operator": "Equal", "value": "v"}, {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}],
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"a": "b"}}, "topologyKey": ""}]}}
    }))));
    has(
        &errs,
        "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \
         \"match all values and all keys\"",
    );
    has(
        &errs,
        "spec.tolerations[1].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
    );
    has(
        &errs,
        "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
    );
}

fn stored_pod() -> Value {
    ok(create::<Pod>(pod(json!({"containers": [{"name": "app", "image": "nginx:1"}], "activeDeadlineSeconds": 100}))))
}

#[test]
fn pod_update_allows_image_and_deadline() {
    let old = stored_pod();
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = json!("nginx:2");
    new["spec"]["activeDeadlineSeconds"] = json!(50);
    new["spec"]["tolerations"].as_array_mut().unwrap().push(json!({"key": "k", "operator": "Exists"}));
    new["metadata"]["labels"] = json!({"tier": "web"});
    let out = ok(update::<Pod>(new, &old));
    assert_eq!(out["spec"]["containers"][0]["image"], "nginx:2");
}

#[test]
fn pod_update_forbids_other_fields() {
    let old = stored_pod();
    let mut new = old.clone();
    new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
    let errs = errors(update::<Pod>(new, &old));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,\
             `spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing \
             tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
        ),
        "{}",
        errs[0]
    );

    let mut new = old.clone();
    new["spec"]["containers"].as_array_mut().unwrap().push(json!({"name": "b", "image": "x"}));
    let errs = errors(update::<Pod>(new, &old));
    has(&errs, "spec.containers: Forbidden: pod updates may not add or remove containers");

    let mut new = old.clone();
    new["spec"]["activeDeadlineSeconds"] = json!(200);
    let errs = errors(update::<Pod>(new, &old));
    has(&errs, "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value");

    let mut new = old.clone();
    new["spec"]["tolerations"] = json!([]);
    let errs = errors(update::<Pod>(new, &old));
    has(&errs, "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds");
}

#[test]
fn pod_status_update_rules() {
    let old = stored_pod();
    let mut new = old.clone();
    new["status"] =
        json!({"phase": "Running", "qosClass": "Guaranteed", "podIPs": [{"ip": "10.42.0.5"}, {"ip": "nope"}]});
    let errs = errors(update_status::<Pod>(new, &old));
    has(&errs, "status.qosClass: Invalid value: \"Guaranteed\": field is immutable");
    has(
        &errs,
        "status.podIPs[1]: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    );

    let mut new = old.clone();
    new["status"]["phase"] = json!("Running");
    new["status"]["podIP"] = json!("10.42.0.5");
    new["status"]["hostIPs"] = json!([{"ip": "192.168.1.10"}]);
    let out = ok(update_status::<Pod>(new, &old));
    // The singular and plural IP fields are kept in step.
    assert_eq!(out["status"]["podIPs"], json!([{"ip": "10.42.0.5"}]));
    assert_eq!(out["status"]["hostIP"], "192.168.1.10");

    let mut moved = old.clone();
    moved["spec"]["nodeName"] = json!("n2");
    has(&errors(update_status::<Pod>(moved, &old)), "status.nodeName: Forbidden: may not be changed directly");
}

/// The checks that read the stored pod (decoded from its JSON alone): a terminated container
/// stays terminated unless the pod restarts it, and a new nomination must be a valid name.
#[test]
fn pod_status_update_reads_the_stored_pod() {
    let mut old = stored_pod();
    old["spec"]["restartPolicy"] = json!("Never");
    old["status"]["containerStatuses"] = json!([{"name": "app", "image": "nginx:1", "imageID": "", "ready": false,
        "restartCount": 0, "state": {"terminated": {"exitCode": 1, "startedAt": "2026-11-27T12:00:00Z"}}}]);
    let running = json!([{"name": "app", "image": "nginx:1", "imageID": "", "ready": true, "restartCount": 0,
        "state": {"running": {"startedAt": "2026-11-27T12:00:00Z"}}}]);
    let mut new = old.clone();
    new["status"]["containerStatuses"] = running.clone();
    has(
        &errors(update_status::<Pod>(new, &old)),
        "status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state",
    );
    // Under `Always` the kubelet restarts it, and under `OnFailure` after a failure: allowed.
    for policy in ["Always", "OnFailure"] {
        let mut restarts = old.clone();
        restarts["spec"]["restartPolicy"] = json!(policy);
        let mut new = restarts.clone();
        new["status"]["containerStatuses"] = running.clone();
        ok(update_status::<Pod>(new, &restarts));
    }
    // `OnFailure` after a success: the container is done.
    let mut succeeded = old.clone();
    succeeded["spec"]["restartPolicy"] = json!("OnFailure");
    succeeded["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] = json!(0);
    let mut new = succeeded.clone();
    new["status"]["containerStatuses"] = running;
    has(
        &errors(update_status::<Pod>(new, &succeeded)),
        "status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state",
    );

    let mut new = old.clone();
    new["status"]["nominatedNodeName"] = json!("Not_A_Node");
    let errs = errors(update_status::<Pod>(new, &old));
    assert!(errs.iter().any(|e| e.starts_with("status.nominatedNodeName: Invalid value: \"Not_A_Node\"")), "{errs:?}");
    // The same nomination as stored is not checked again.
    let mut nominated = old.clone();
    nominated["status"]["nominatedNodeName"] = json!("Not_A_Node");
    let new = nominated.clone();
    ok(update_status::<Pod>(new, &nominated));
}

#[test]
fn metadata_label_values_are_reported_at_the_map() {
    let mut p = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
    p["metadata"]["labels"] = json!({"app": "not ok"});
    let errs = errors(create::<Pod>(p));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("metadata.labels: Invalid value: \"not ok\": a valid label must be"), "{errs:?}");
}

fn svc(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

#[test]
fn service_defaults() {
    let out = ok(create::<Service>(svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}))));
    assert_eq!(
        out["spec"],
        json!({
            "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack"
        })
    );
    assert_eq!(out["status"], json!({"loadBalancer": {}}));
    let lb =
        ok(create::<Service>(svc(json!({"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": "https"}]}))));
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(lb["spec"]["ports"][0]["targetPort"], "https");
    let en = ok(create::<Service>(svc(json!({"type": "ExternalName", "externalName": "example.com"}))));
    assert!(en["spec"].get("ipFamilies").is_none());
    assert!(en["spec"].get("internalTrafficPolicy").is_none());
}

#[test]
fn service_validation() {
    let errs = errors(create::<Service>(svc(json!({"type": "ExternalName"}))));
    assert_eq!(errs, ["spec.externalName: Required value"]);
    let errs = errors(create::<Service>(svc(json!({"type": "Magic", "ports": [{"port": 0}, {"port": 80}]}))));
    has(&errs, "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive");
    has(&errs, "spec.ports[0].name: Required value");
    has(
        &errs,
        "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
    );
    let errs = errors(create::<Service>(svc(json!({"ports": [{"port": 80, "nodePort": 30080}]}))));
    has(&errs, "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'");
    let errs = errors(create::<Service>(svc(json!({}))));
    assert_eq!(errs, ["spec.ports: Required value"]);
    // Headless services need no ports.
    let headless = ok(create::<Service>(svc(json!({"clusterIP": "None", "selector": {"app": "db"}}))));
    assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    let errs = errors(create::<Service>(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}}),
    ));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("metadata.name: Invalid value: \"1web\": a DNS-1035 label"), "{errs:?}");
}

#[test]
fn service_update_keeps_allocations_and_cluster_ip_is_immutable() {
    let mut stored = ok(create::<Service>(svc(json!({"type": "NodePort", "ports": [{"port": 80}]}))));
    // What the API server's allocator records.
    stored["spec"]["clusterIP"] = json!("10.43.0.10");
    stored["spec"]["clusterIPs"] = json!(["10.43.0.10"]);
    stored["spec"]["ports"][0]["nodePort"] = json!(30080);
    // `kubectl apply` of the original manifest leaves them out.
    let out = ok(update::<Service>(svc(json!({"type": "NodePort", "ports": [{"port": 80}]})), &stored));
    assert_eq!(out["spec"]["clusterIP"], "10.43.0.10");
    assert_eq!(out["spec"]["clusterIPs"], json!(["10.43.0.10"]));
    assert_eq!(out["spec"]["ports"][0]["nodePort"], 30080);
    let mut changed = stored.clone();
    changed["spec"]["clusterIP"] = json!("10.43.0.99");
    let errs = errors(update::<Service>(changed, &stored));
    has(&errs, "spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.99\"}: may not change once set");
    // Switching to ClusterIP drops the node port.
    let mut to_cluster_ip = stored.clone();
    to_cluster_ip["spec"]["type"] = json!("ClusterIP");
    let out = ok(update::<Service>(to_cluster_ip, &stored));
    assert!(out["spec"]["ports"][0].get("nodePort").is_none());
    assert!(out["spec"].get("externalTrafficPolicy").is_none());
}

#[test]
fn namespace_defaults_and_name_rule() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
    let out = ok(create::<Namespace>(ns));
    assert_eq!(out["spec"], json!({"finalizers": ["kubernetes"]}));
    assert_eq!(out["status"], json!({"phase": "Active"}));
    assert_eq!(out["metadata"]["labels"], json!({"kubernetes.io/metadata.name": "team-a"}));
    let errs =
        errors(create::<Namespace>(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}})));
    assert!(errs[0].starts_with("metadata.name: Invalid value: \"a.b\": a lowercase RFC 1123 label"), "{errs:?}");
    let errs = errors(create::<Namespace>(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "spec": {"finalizers": ["foo"]}}),
    ));
    has(
        &errs,
        "spec.finalizers: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified",
    );
}

#[test]
fn secret_defaults_and_validation() {
    let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
                   "stringData": {"password": "hunter2"}});
    let out = ok(create::<Secret>(s));
    assert_eq!(out["type"], "Opaque");
    assert_eq!(out["data"], json!({"password": "aHVudGVyMg=="}));
    assert!(out.get("stringData").is_none());
    let tls = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t", "namespace": "default"},
                     "type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "bad key": "eA=="}});
    let errs = errors(create::<Secret>(tls));
    has(&errs, "data[tls.key]: Required value");
    has(
        &errs,
        "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or \
         '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    );
    let old = ok(create::<Secret>(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
                                          "immutable": true, "data": {"a": "eA=="}}),
    ));
    let mut new = old.clone();
    new["data"]["a"] = json!("eQ==");
    new["type"] = json!("kubernetes.io/basic-auth");
    let errs = errors(update::<Secret>(new, &old));
    has(&errs, "type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable");
    has(&errs, "data: Forbidden: field is immutable when `immutable` is set");
}

#[test]
fn configmap_rules() {
    let cm = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": data});
    ok(create::<ConfigMap>(cm(json!({"game.properties": "x=1"}))));
    let errs = errors(create::<ConfigMap>(cm(json!({"..x": "1"}))));
    has(&errs, "data[..x]: Invalid value: \"..x\": must not start with '..'");
    let mut old = ok(create::<ConfigMap>(cm(json!({"a": "1"}))));
    old["immutable"] = json!(true);
    let mut new = old.clone();
    new["data"]["a"] = json!("2");
    new["immutable"] = json!(false);
    let errs = errors(update::<ConfigMap>(new, &old));
    assert_eq!(
        errs,
        [
            "immutable: Forbidden: field is immutable when `immutable` is set",
            "data: Forbidden: field is immutable when `immutable` is set"
        ]
    );
}

#[test]
fn pvc_and_pv() {
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let out = ok(create::<PersistentVolumeClaim>(pvc.clone()));
    assert_eq!(out["spec"]["volumeMode"], "Filesystem");
    assert_eq!(out["status"], json!({"phase": "Pending"}));
    let errs = errors(create::<PersistentVolumeClaim>(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "d", "namespace": "default"}, "spec": {"accessModes": ["ReadWriteSometimes"]}})));
    has(&errs, "spec.resources[storage]: Required value");
    has(
        &errs,
        "spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \
         \"ReadWriteOnce\", \"ReadWriteOncePod\"",
    );
    let mut new = out.clone();
    new["spec"]["storageClassName"] = json!("fast");
    new["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    let errs = errors(update::<PersistentVolumeClaim>(new, &out));
    has(
        &errs,
        "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
    );

    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
                    "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}}});
    let out = ok(create::<PersistentVolume>(pv));
    assert_eq!(out["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(out["spec"]["volumeMode"], "Filesystem");
    assert_eq!(out["status"], json!({"phase": "Pending"}));
    let errs = errors(create::<PersistentVolume>(
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv2"},
        "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}}),
    ));
    assert_eq!(errs, ["spec: Required value: must specify a volume type"]);
}

#[test]
fn replication_controller_defaults_from_template() {
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc", "namespace": "default"},
        "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}}});
    let out = ok(create::<ReplicationController>(rc));
    assert_eq!(out["spec"]["selector"], json!({"app": "a"}));
    assert_eq!(out["spec"]["replicas"], 1);
    assert_eq!(out["metadata"]["labels"], json!({"app": "a"}));
    let bad = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc", "namespace": "default"},
        "spec": {"selector": {"app": "b"}, "template": {"metadata": {"labels": {"app": "a"}},
                 "spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "x"}]}}}});
    let errs = errors(create::<ReplicationController>(bad));
    has(
        &errs,
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`",
    );
    has(&errs, "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"");
}

#[test]
fn node_endpoints_limitrange() {
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"}, {"key": "j", "effect": "Sometimes"}]},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}});
    let errs = errors(create::<Node>(node.clone()));
    has(
        &errs,
        "metadata.taints[1]: Duplicate value: core.Taint{Key:\"k\", Value:\"\", Effect:\"NoSchedule\", TimeAdded:<nil>}: taints must be unique by key and effect pair",
    );
    has(
        &errs,
        "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
    );
    let mut good = node;
    good["spec"] = json!({"podCIDRs": ["10.42.0.0/24"]});
    let out = ok(create::<Node>(good.clone()));
    assert_eq!(out["status"]["allocatable"], json!({"cpu": "4", "memory": "8Gi"}));
    assert_eq!(out["spec"]["podCIDR"], "10.42.0.0/24");
    let mut moved = out.clone();
    moved["spec"]["podCIDRs"] = json!(["10.42.1.0/24"]);
    has(
        &errors(update::<Node>(moved, &out)),
        "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
    );

    let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}]}]});
    let errs = errors(create::<Endpoints>(ep));
    assert_eq!(
        errs,
        [
            "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"
        ]
    );
    let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "default"},
        "subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 80}]}]});
    assert_eq!(ok(create::<Endpoints>(ep))["subsets"][0]["ports"][0]["protocol"], "TCP");

    let lr = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "default"},
        "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}});
    let errs = errors(create::<LimitRange>(lr));
    has(&errs, "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1");
}

#[test]
fn pod_warnings() {
    let p = pod(json!({
        "nodeSelector": {"beta.kubernetes.io/os": "linux"},
        "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}, {"containerPort": 80}],
                        "resources": {"requests": {"memory": "1.5"}}}]
    }));
    let w = crate::strategy::test_util::create_warnings::<Pod>(p);
    assert_eq!(
        w,
        [
            "spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use \"kubernetes.io/os\" instead",
            "spec.containers[0].resources.requests[memory]: fractional byte value \"1500m\" is invalid, must be an integer",
            "spec.containers[0].ports[1]: duplicate port definition with spec.containers[0].ports[0]",
        ]
    );
    let d = json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t", "namespace": "default"},
        "template": {"spec": {"terminationGracePeriodSeconds": -1, "containers": [{"name": "a", "image": "x"}]}}});
    let w = crate::strategy::test_util::create_warnings::<k8s_openapi::api::core::v1::PodTemplate>(d);
    assert_eq!(
        w,
        [
            "template.spec.terminationGracePeriodSeconds: must be >= 0; negative values are invalid and will be treated as 1"
        ]
    );
}
