//! Tests of [`decode`]: real kubectl bodies against Go's JSON of the same objects, k8s-pb (prost)
//! encodings of typed objects, and hostile input.

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message as _;
use serde_json::{Value, json};

use super::kubectl_bodies::BODIES;
use super::*;

/// Frame an encoded object like client-go: magic, then `runtime.Unknown` with every field written
/// (Go writes the empty `contentEncoding` and `contentType` too).
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn encode(api_version: &str, kind: &str, object: &impl prost::Message) -> Value {
    match decode(&envelope(api_version, kind, object.encode_to_vec())) {
        Ok(v) => v,
        Err(e) => panic!("decode {api_version} {kind}: {e}"),
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn meta(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta { name: s(name), ..Default::default() })
}

fn quantity(v: &str) -> core_quantity::Quantity {
    core_quantity::Quantity { string: s(v) }
}

use k8s_pb::apimachinery::pkg::api::resource as core_quantity;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;

fn int(v: i32) -> Option<IntOrString> {
    Some(IntOrString { r#type: Some(0), int_val: Some(v), str_val: None })
}

fn string(v: &str) -> Option<IntOrString> {
    Some(IntOrString { r#type: Some(1), int_val: None, str_val: s(v) })
}

#[test]
fn kubectl_bodies_decode_to_kubectls_own_json() {
    for (name, args, body, go_json) in BODIES {
        let got = decode(body).unwrap_or_else(|e| panic!("{name} ({args}): {e}"));
        let Some(go_json) = go_json else { continue };
        let want: Value = serde_json::from_str(go_json).expect("fixture JSON");
        assert_eq!(got, want, "{name}: kubectl {args}");
        // Key order too: Go's encoder writes struct order, and serde_json keeps insertion order.
        assert_eq!(got.to_string(), want.to_string(), "{name}: key order");
    }
}

fn body(name: &str) -> Value {
    let (_, _, body, _) = BODIES.iter().find(|(n, ..)| *n == name).expect("fixture");
    decode(body).expect("decodes")
}

#[test]
fn kubectl_bodies_without_a_dry_run_print() {
    // `kubectl create token sa1 --duration=10m --audience=a`: expirationSeconds is a pointer;
    // boundObjectRef a nil pointer without omitempty.
    assert_eq!(
        body("token"),
        json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"creationTimestamp": null},
               "spec": {"audiences": ["a"], "expirationSeconds": 600, "boundObjectRef": null},
               "status": {"token": "", "expirationTimestamp": null}})
    );
    // `kubectl auth can-i get pods`
    assert_eq!(
        body("cani"),
        json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
               "metadata": {"creationTimestamp": null},
               "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
               "status": {"allowed": false}})
    );
    // `kubectl certificate approve csr1`: the object as read back, with the Approved condition.
    let csr = body("csr_approve");
    assert_eq!(csr["metadata"]["creationTimestamp"], "2026-01-02T03:04:05Z");
    assert_eq!(csr["spec"]["request"], "LS0tLQ==");
    assert_eq!(csr["spec"]["expirationSeconds"], 3600);
    assert_eq!(csr["spec"]["usages"], json!(["client auth"]));
    let condition = &csr["status"]["conditions"][0];
    assert_eq!(condition["type"], "Approved");
    assert_eq!(condition["status"], "True");
    assert_eq!(condition["reason"], "KubectlApprove");
    assert!(condition["lastUpdateTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{condition}");
}

#[test]
fn namespace_and_unknown_fields() {
    let ns = core::Namespace { metadata: meta("demo"), ..Default::default() };
    let mut raw = ns.encode_to_vec();
    // A field from a newer server (tag 999, varint, then a length-delimited one) is skipped.
    raw.extend([0xb8, 0x3e, 0x01, 0xc2, 0x3e, 0x02, b'h', b'i']);
    let got = decode(&envelope("v1", "Namespace", raw)).expect("decodes");
    // Go prints the zero spec and status structs and the zero creationTimestamp as null.
    assert_eq!(
        got,
        json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "demo", "creationTimestamp": null},
               "spec": {}, "status": {}})
    );
}

#[test]
fn configmap_and_secret_bytes_are_base64() {
    let cm = core::ConfigMap {
        metadata: meta("cm"),
        immutable: Some(false),
        data: [("a".to_owned(), "1".to_owned())].into(),
        binary_data: [("blob".to_owned(), vec![0, 1, 0xff]), ("empty".to_owned(), vec![])].into(),
    };
    assert_eq!(
        encode("v1", "ConfigMap", &cm),
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "cm", "creationTimestamp": null},
               "immutable": false, "data": {"a": "1"}, "binaryData": {"blob": "AAH/", "empty": ""}})
    );
    let secret = core::Secret {
        metadata: meta("s"),
        data: [("pass".to_owned(), b"s3cr3t".to_vec())].into(),
        string_data: [("user".to_owned(), "admin".to_owned())].into(),
        r#type: s("Opaque"),
        ..Default::default()
    };
    assert_eq!(
        encode("v1", "Secret", &secret),
        json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s", "creationTimestamp": null},
               "data": {"pass": "czNjcjN0"}, "stringData": {"user": "admin"}, "type": "Opaque"})
    );
}

fn container() -> core::Container {
    let http_get = core::HttpGetAction { path: s("/healthz"), port: string("http"), ..Default::default() };
    core::Container {
        name: s("web"),
        image: s("nginx:1.27"),
        ports: vec![core::ContainerPort { name: s("http"), container_port: Some(8080), ..Default::default() }],
        resources: Some(core::ResourceRequirements {
            limits: [("cpu".to_owned(), quantity("500m")), ("memory".to_owned(), quantity("128Mi"))].into(),
            requests: [("cpu".to_owned(), quantity("100m"))].into(),
            ..Default::default()
        }),
        liveness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler { http_get: Some(http_get), ..Default::default() }),
            // Plain omitempty int32s: Go's zero means "unset" and is not printed.
            timeout_seconds: Some(0),
            period_seconds: Some(5),
            ..Default::default()
        }),
        env: vec![core::EnvVar { name: s("A"), value: s("1"), ..Default::default() }],
        ..Default::default()
    }
}

#[test]
fn deployment_keeps_pointer_zeros_and_drops_plain_zeros() {
    let deployment = k8s_pb::api::apps::v1::Deployment {
        metadata: meta("web"),
        spec: Some(k8s_pb::api::apps::v1::DeploymentSpec {
            // *int32: a present 0 is meaningful.
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: [("app".to_owned(), "web".to_owned())].into(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels: [("app".to_owned(), "web".to_owned())].into(),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![container()],
                    // Plain omitempty values: Go writes them always, zero meaning unset.
                    restart_policy: s(""),
                    host_network: Some(false),
                    dns_policy: s(""),
                    // Pointers: kept with their zero.
                    termination_grace_period_seconds: Some(0),
                    automount_service_account_token: Some(false),
                    ..Default::default()
                }),
            }),
            min_ready_seconds: Some(0),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(
        encode("apps/v1", "Deployment", &deployment),
        json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": "web", "creationTimestamp": null},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [{"name": "A", "value": "1"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5}
                        }],
                        "terminationGracePeriodSeconds": 0,
                        "automountServiceAccountToken": false
                    }
                },
                "strategy": {}
            },
            "status": {}
        })
    );
}

#[test]
fn service_ports_with_int_or_string_target_ports() {
    let port = |name: &str, port: i32, target| core::ServicePort {
        name: s(name),
        protocol: s("TCP"),
        port: Some(port),
        target_port: target,
        ..Default::default()
    };
    let svc = core::Service {
        metadata: meta("svc"),
        spec: Some(core::ServiceSpec {
            ports: vec![port("http", 80, int(8080)), port("https", 443, string("https")), port("raw", 9, None)],
            selector: [("app".to_owned(), "web".to_owned())].into(),
            r#type: s("ClusterIP"),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(
        encode("v1", "Service", &svc),
        json!({
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "svc", "creationTimestamp": null},
            "spec": {
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https"},
                    // targetPort is a plain struct in Go: its zero prints as 0.
                    {"name": "raw", "protocol": "TCP", "port": 9, "targetPort": 0}
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP"
            },
            "status": {"loadBalancer": {}}
        })
    );
}

#[test]
fn cronjob() {
    use k8s_pb::api::batch::v1 as batch;
    let cronjob = batch::CronJob {
        metadata: meta("cj"),
        spec: Some(batch::CronJobSpec {
            schedule: s("*/5 * * * *"),
            suspend: Some(false),
            job_template: Some(batch::JobTemplateSpec {
                metadata: None,
                spec: Some(batch::JobSpec {
                    backoff_limit: Some(0),
                    template: Some(core::PodTemplateSpec {
                        metadata: None,
                        spec: Some(core::PodSpec {
                            restart_policy: s("OnFailure"),
                            containers: vec![core::Container {
                                name: s("c"),
                                image: s("busybox"),
                                command: vec!["date".to_owned()],
                                ..Default::default()
                            }],
                            ..Default::default()
                        }),
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let got = encode("batch/v1", "CronJob", &cronjob);
    assert_eq!(got["spec"]["schedule"], "*/5 * * * *");
    assert_eq!(got["spec"]["suspend"], false);
    let job = &got["spec"]["jobTemplate"];
    assert_eq!(job["metadata"], json!({"creationTimestamp": null}));
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(
        job["spec"]["template"]["spec"],
        json!({"containers": [{"name": "c", "image": "busybox", "command": ["date"], "resources": {}}],
               "restartPolicy": "OnFailure"})
    );
    assert_eq!(got["status"], json!({}));
}

#[test]
fn role_and_role_binding() {
    use k8s_pb::api::rbac::v1 as rbac;
    let role = rbac::Role {
        metadata: meta("r"),
        rules: vec![rbac::PolicyRule {
            verbs: vec!["get".to_owned(), "list".to_owned()],
            api_groups: vec![String::new(), "apps".to_owned()],
            resources: vec!["pods".to_owned(), "deployments".to_owned()],
            ..Default::default()
        }],
    };
    assert_eq!(
        encode("rbac.authorization.k8s.io/v1", "Role", &role),
        json!({"kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1",
               "metadata": {"name": "r", "creationTimestamp": null},
               "rules": [{"verbs": ["get", "list"], "apiGroups": ["", "apps"], "resources": ["pods", "deployments"]}]})
    );
    let binding = rbac::RoleBinding {
        metadata: meta("rb"),
        subjects: vec![rbac::Subject {
            kind: s("User"),
            api_group: s("rbac.authorization.k8s.io"),
            name: s("alice"),
            namespace: None,
        }],
        role_ref: Some(rbac::RoleRef { api_group: s("rbac.authorization.k8s.io"), kind: s("Role"), name: s("r") }),
    };
    assert_eq!(
        encode("rbac.authorization.k8s.io/v1", "RoleBinding", &binding),
        json!({"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
               "metadata": {"name": "rb", "creationTimestamp": null},
               "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}],
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}})
    );
    // A ClusterRole without rules: Go prints the nil slice (no omitempty) as null.
    let empty = rbac::ClusterRole { metadata: meta("c"), ..Default::default() };
    assert_eq!(encode("rbac.authorization.k8s.io/v1", "ClusterRole", &empty)["rules"], Value::Null);
}

#[test]
fn pod_disruption_budget_percent() {
    use k8s_pb::api::policy::v1 as policy;
    let pdb = policy::PodDisruptionBudget {
        metadata: meta("pdb"),
        spec: Some(policy::PodDisruptionBudgetSpec { max_unavailable: string("50%"), ..Default::default() }),
        status: None,
    };
    assert_eq!(
        encode("policy/v1", "PodDisruptionBudget", &pdb),
        json!({"kind": "PodDisruptionBudget", "apiVersion": "policy/v1",
               "metadata": {"name": "pdb", "creationTimestamp": null},
               "spec": {"maxUnavailable": "50%"},
               "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}})
    );
}

#[test]
fn token_request() {
    use k8s_pb::api::authentication::v1 as authn;
    let token = authn::TokenRequest {
        metadata: None,
        spec: Some(authn::TokenRequestSpec {
            audiences: vec!["api".to_owned()],
            expiration_seconds: Some(3600),
            bound_object_ref: Some(authn::BoundObjectReference {
                kind: s("Pod"),
                api_version: s("v1"),
                name: s("p"),
                u_id: s("u-1"),
            }),
        }),
        status: None,
    };
    assert_eq!(
        encode("authentication.k8s.io/v1", "TokenRequest", &token),
        json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"creationTimestamp": null},
               "spec": {"audiences": ["api"], "expirationSeconds": 3600,
                        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-1"}},
               "status": {"token": "", "expirationTimestamp": null}})
    );
}

#[test]
fn horizontal_pod_autoscaler_v2() {
    use k8s_pb::api::autoscaling::v2 as hpa;
    let object = hpa::HorizontalPodAutoscaler {
        metadata: meta("web"),
        spec: Some(hpa::HorizontalPodAutoscalerSpec {
            scale_target_ref: Some(hpa::CrossVersionObjectReference {
                kind: s("Deployment"),
                name: s("web"),
                api_version: s("apps/v1"),
            }),
            min_replicas: Some(1),
            max_replicas: Some(5),
            metrics: vec![hpa::MetricSpec {
                r#type: s("Resource"),
                resource: Some(hpa::ResourceMetricSource {
                    name: s("cpu"),
                    target: Some(hpa::MetricTarget {
                        r#type: s("Utilization"),
                        average_utilization: Some(80),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }],
            behavior: Some(hpa::HorizontalPodAutoscalerBehavior {
                scale_down: Some(hpa::HpaScalingRules {
                    stabilization_window_seconds: Some(0),
                    policies: vec![hpa::HpaScalingPolicy {
                        r#type: s("Percent"),
                        value: Some(10),
                        period_seconds: Some(60),
                    }],
                    ..Default::default()
                }),
                scale_up: None,
            }),
        }),
        status: None,
    };
    let got = encode("autoscaling/v2", "HorizontalPodAutoscaler", &object);
    assert_eq!(
        got["spec"],
        json!({"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
               "minReplicas": 1, "maxReplicas": 5,
               "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 80}}}],
               "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}}})
    );
}

#[test]
fn delete_options_in_any_group_version() {
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions { uid: s("u-1"), resource_version: None }),
        orphan_dependents: None,
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".to_owned()],
        ignore_store_read_error_with_cluster_breaking_potential: None,
    };
    let want = |api_version: &str| {
        json!({"kind": "DeleteOptions", "apiVersion": api_version, "gracePeriodSeconds": 0,
               "preconditions": {"uid": "u-1"}, "propagationPolicy": "Foreground", "dryRun": ["All"]})
    };
    for api_version in ["meta.k8s.io/v1", "v1", "apps/v1", "batch/v1"] {
        assert_eq!(encode(api_version, "DeleteOptions", &options), want(api_version));
    }
}

#[test]
fn times_micro_times_and_managed_fields() {
    let time = |seconds| Some(meta::Time { seconds: Some(seconds), nanos: Some(999) });
    let event = core::Event {
        metadata: Some(meta::ObjectMeta {
            name: s("e"),
            creation_timestamp: time(1_767_323_045),
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                api_version: s("v1"),
                time: time(0),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 { raw: Some(br#"{"f:reason":{}}"#.to_vec()) }),
                subresource: None,
            }],
            ..Default::default()
        }),
        event_time: Some(meta::MicroTime { seconds: Some(1_767_323_045), nanos: Some(123_456_789) }),
        first_timestamp: Some(meta::Time::default()),
        count: Some(0),
        ..Default::default()
    };
    let got = encode("v1", "Event", &event);
    assert_eq!(got["metadata"]["creationTimestamp"], "2026-01-02T03:04:05Z");
    assert_eq!(
        got["metadata"]["managedFields"],
        json!([{"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "time": "1970-01-01T00:00:00Z",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:reason": {}}}])
    );
    assert_eq!(got["eventTime"], "2026-01-02T03:04:05.123456Z");
    // An empty Time message is Go's zero time.
    assert_eq!(got["firstTimestamp"], Value::Null);
    // A plain int32 with omitempty.
    assert!(got.get("count").is_none(), "{got}");
}

#[test]
fn raw_extensions_hold_embedded_json() {
    let revision = k8s_pb::api::apps::v1::ControllerRevision {
        metadata: meta("rev"),
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(br#"{"spec":{"template":{"x":1}}}"#.to_vec()),
        }),
        revision: Some(3),
    };
    let got = encode("apps/v1", "ControllerRevision", &revision);
    assert_eq!(got["data"], json!({"spec": {"template": {"x": 1}}}));
    assert_eq!(got["revision"], 3);
}

#[test]
fn named_string_slices_print_as_arrays() {
    use k8s_pb::api::authorization::v1 as authz;
    let review = authz::SubjectAccessReview {
        metadata: None,
        spec: Some(authz::SubjectAccessReviewSpec {
            user: s("alice"),
            extra: [("scopes".to_owned(), authz::ExtraValue { items: vec!["a".to_owned(), "b".to_owned()] })].into(),
            non_resource_attributes: Some(authz::NonResourceAttributes { path: s("/healthz"), verb: s("get") }),
            ..Default::default()
        }),
        status: None,
    };
    let got = encode("authorization.k8s.io/v1", "SubjectAccessReview", &review);
    assert_eq!(got["spec"]["extra"], json!({"scopes": ["a", "b"]}));
    assert_eq!(got["spec"]["nonResourceAttributes"], json!({"path": "/healthz", "verb": "get"}));
}

#[test]
fn custom_resource_definition_schemas() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let string_prop = ext::JsonSchemaProps { r#type: s("string"), ..Default::default() };
    let schema = ext::JsonSchemaProps {
        r#type: s("object"),
        properties: [
            (
                "replicas".to_owned(),
                ext::JsonSchemaProps {
                    r#type: s("integer"),
                    minimum: Some(0.0),
                    maximum: Some(2.5),
                    default: Some(ext::Json { raw: Some(b"1".to_vec()) }),
                    ..Default::default()
                },
            ),
            (
                "tags".to_owned(),
                ext::JsonSchemaProps {
                    r#type: s("array"),
                    items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                        schema: Some(Box::new(string_prop.clone())),
                        j_son_schemas: vec![],
                    })),
                    ..Default::default()
                },
            ),
            (
                "labels".to_owned(),
                ext::JsonSchemaProps {
                    r#type: s("object"),
                    additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                        allows: Some(true),
                        schema: Some(Box::new(string_prop.clone())),
                    })),
                    ..Default::default()
                },
            ),
            (
                "free".to_owned(),
                ext::JsonSchemaProps {
                    r#type: s("object"),
                    x_kubernetes_preserve_unknown_fields: Some(true),
                    additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                        allows: Some(false),
                        schema: None,
                    })),
                    ..Default::default()
                },
            ),
        ]
        .into(),
        dependencies: [(
            "a".to_owned(),
            ext::JsonSchemaPropsOrStringArray { schema: None, property: vec!["b".to_owned()] },
        )]
        .into(),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: meta("widgets.example.com"),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            scope: s("Namespaced"),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: s("v1"),
                served: Some(true),
                storage: Some(true),
                schema: Some(ext::CustomResourceValidation { open_apiv3_schema: Some(schema) }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let got = encode("apiextensions.k8s.io/v1", "CustomResourceDefinition", &crd);
    let schema = &got["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(
        schema,
        &json!({
            "type": "object",
            "properties": {
                "free": {"type": "object", "additionalProperties": false, "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "replicas": {"type": "integer", "default": 1, "maximum": 2.5, "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "dependencies": {"a": ["b"]}
        })
    );
}

#[test]
fn packed_and_unpacked_repeated_numbers_decode_alike() {
    let ctx = core::PodSecurityContext { supplemental_groups: vec![1, 2, 300], ..Default::default() };
    let spec = core::PodSpec { security_context: Some(ctx), ..Default::default() };
    let pod = core::Pod { metadata: meta("p"), spec: Some(spec), status: None };
    let unpacked = encode("v1", "Pod", &pod);
    assert_eq!(unpacked["spec"]["securityContext"]["supplementalGroups"], json!([1, 2, 300]));

    // The same list packed: PodSpec(2) { securityContext(14) { supplementalGroups(4) packed } }.
    let packed_ctx = [0x22, 4, 1, 2, 0xac, 0x02];
    let mut spec = vec![0x72, packed_ctx.len() as u8];
    spec.extend(packed_ctx);
    let mut raw = meta("p").map(|m| {
        let mut out = vec![0x0a];
        let m = m.encode_to_vec();
        out.push(m.len() as u8);
        out.extend(m);
        out
    });
    let raw = raw.as_mut().expect("metadata");
    raw.push(0x12);
    raw.push(spec.len() as u8);
    raw.extend(spec);
    let packed = decode(&envelope("v1", "Pod", raw.clone())).expect("decodes");
    assert_eq!(packed["spec"]["securityContext"], unpacked["spec"]["securityContext"]);
}

#[test]
fn repeated_singular_messages_merge() {
    // metadata twice: protobuf merges them (name from the first, labels from the second).
    let first = meta::ObjectMeta { name: s("demo"), ..Default::default() }.encode_to_vec();
    let second =
        meta::ObjectMeta { labels: [("a".to_owned(), "b".to_owned())].into(), ..Default::default() }.encode_to_vec();
    let mut raw = vec![0x0a, first.len() as u8];
    raw.extend(first);
    raw.extend([0x0a, second.len() as u8]);
    raw.extend(second);
    let got = decode(&envelope("v1", "Namespace", raw)).expect("decodes");
    assert_eq!(got["metadata"], json!({"name": "demo", "creationTimestamp": null, "labels": {"a": "b"}}));
}

#[test]
fn errors_name_the_problem() {
    let err = |body: &[u8]| decode(body).expect_err("must fail").to_string();
    assert_eq!(err(b"{\"kind\":\"Pod\"}"), "not a Kubernetes protobuf body (missing k8s magic)");
    assert_eq!(err(b"k8s"), "not a Kubernetes protobuf body (missing k8s magic)");
    assert_eq!(err(b"k8s\0"), "protobuf body has no apiVersion in its typeMeta");
    assert_eq!(err(&envelope("apps/v1", "", vec![])), "protobuf body has no kind in its typeMeta");
    assert_eq!(err(&envelope("apps/v1", "Foo", vec![])), "unknown kind apps/v1 Foo");
    assert_eq!(err(&envelope("example.com/v1", "Widget", vec![])), "unknown kind example.com/v1 Widget");
    assert_eq!(err(&envelope("v1", "ObjectMeta", vec![])), "unknown kind v1 ObjectMeta");

    // Pod { spec(2) { containers(2) { name(1): 5 bytes announced, 1 present } } }
    let raw = vec![0x12, 5, 0x12, 3, 0x0a, 5, b'x'];
    assert_eq!(err(&envelope("v1", "Pod", raw)), "truncated field 1 of io.k8s.api.core.v1.Container");
    let raw = vec![0x12, 9, b'x'];
    assert_eq!(err(&envelope("v1", "Pod", raw)), "truncated field 2 of io.k8s.api.core.v1.Pod");
    // spec sent as a varint.
    assert_eq!(
        err(&envelope("v1", "Pod", vec![0x10, 1])),
        "field 2 of io.k8s.api.core.v1.Pod has wire type 0, expected 2"
    );
    // A group (wire type 3) in PodSpec.
    assert_eq!(
        err(&envelope("v1", "Pod", vec![0x12, 1, 0x0b])),
        "field 1 of io.k8s.api.core.v1.PodSpec has unsupported wire type 3"
    );
    assert_eq!(err(&envelope("v1", "Pod", vec![0x12, 1, 0x00])), "malformed field key in io.k8s.api.core.v1.PodSpec");

    let bad_json = k8s_pb::api::apps::v1::ControllerRevision {
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension { raw: Some(b"{nope".to_vec()) }),
        ..Default::default()
    };
    let e = decode(&envelope("apps/v1", "ControllerRevision", bad_json.encode_to_vec())).expect_err("bad JSON");
    assert_eq!(e.to_string(), "field 1 of io.k8s.apimachinery.pkg.runtime.RawExtension does not hold valid JSON");
    assert!(std::error::Error::source(&e).is_some(), "the serde_json cause is kept");

    let far = meta::ObjectMeta {
        creation_timestamp: Some(meta::Time { seconds: Some(i64::MAX), nanos: None }),
        ..Default::default()
    };
    let ns = core::Namespace { metadata: Some(far), ..Default::default() };
    assert_eq!(
        err(&envelope("v1", "Namespace", ns.encode_to_vec())),
        "field 1 of io.k8s.apimachinery.pkg.apis.meta.v1.Time: time outside the years 0000-9999"
    );
}

#[test]
fn non_finite_numbers_are_refused() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let schema = ext::JsonSchemaProps { maximum: Some(f64::NAN), ..Default::default() };
    let crd = ext::CustomResourceDefinition {
        spec: Some(ext::CustomResourceDefinitionSpec {
            versions: vec![ext::CustomResourceDefinitionVersion {
                schema: Some(ext::CustomResourceValidation { open_apiv3_schema: Some(schema) }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = decode(&envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd.encode_to_vec()));
    assert!(matches!(e, Err(ProtobufError::Value { tag: 9, .. })), "{e:?}");
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    // JSONSchemaProps.not (tag 28) nested far past the limit.
    let mut schema: Vec<u8> = Vec::new();
    for _ in 0..2000 {
        let mut outer = vec![0xe2, 0x01];
        let mut len = schema.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            outer.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        outer.extend(schema);
        schema = outer;
    }
    // CRD { spec(2) { versions(7) { schema(4) { openAPIV3Schema(1) } } } }, built inside out.
    let wrap = |tag: u8, inner: Vec<u8>| {
        let mut out = vec![tag];
        let mut len = inner.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            out.push(if len > 0 { byte | 0x80 } else { byte });
            if len == 0 {
                break;
            }
        }
        out.extend(inner);
        out
    };
    let raw = wrap(0x12, wrap(0x3a, wrap(0x22, wrap(0x0a, schema))));
    let e = decode(&envelope("apiextensions.k8s.io/v1", "CustomResourceDefinition", raw));
    assert!(matches!(e, Err(ProtobufError::TooDeep)), "{e:?}");
}

#[test]
fn truncated_and_corrupted_kubectl_bodies_never_panic() {
    for (name, _, body, _) in BODIES {
        for len in 0..body.len() {
            let _ = decode(&body[..len]);
        }
        for i in 0..body.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut corrupted = body.to_vec();
                corrupted[i] ^= flip;
                let _ = decode(&corrupted);
            }
        }
        assert!(decode(body).is_ok(), "{name}");
    }
}

proptest::proptest! {
    #[test]
    fn random_bytes_never_panic(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                                kind in 0usize..6) {
        let (api_version, kind) = [("v1", "Pod"), ("apps/v1", "Deployment"), ("v1", "Secret"), ("batch/v1", "CronJob"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"), ("v1", "Event")][kind];
        let _ = decode(&envelope(api_version, kind, raw.clone()));
        let mut framed = MAGIC.to_vec();
        framed.extend(&raw);
        let _ = decode(&framed);
    }
}
