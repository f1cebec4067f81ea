//! Hand-written schema fixtures in the shape of kube-apiserver's `/openapi/v3` component
//! schemas, for the patch tests. Both reference styles appear on purpose: upstream's
//! `allOf`-wrapped `$ref` and schemars' bare `$ref` with sibling extensions.

use serde_json::{Map, Value, json};

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A bare reference with sibling extensions (schemars style).
fn bare(name: &str, extra: Value) -> Value {
    let mut node = json!({ "$ref": format!("#/components/schemas/{name}") });
    if let (Value::Object(node), Value::Object(extra)) = (&mut node, extra) {
        node.extend(extra);
    }
    node
}

/// An `allOf`-wrapped reference with extensions (upstream style).
fn wrapped(name: &str, extra: Value) -> Value {
    let mut node = json!({
        "allOf": [{ "$ref": format!("#/components/schemas/{name}") }],
        "default": {}
    });
    if let (Value::Object(node), Value::Object(extra)) = (&mut node, extra) {
        node.extend(extra);
    }
    node
}

/// A list of objects merged by `key`.
fn merge_list(item: Value, key: &str, strategy: &str) -> Value {
    json!({
        "type": "array",
        "items": item,
        "x-kubernetes-patch-strategy": strategy,
        "x-kubernetes-patch-merge-key": key,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": [key]
    })
}

/// The equivalent of upstream's `MergeItem` / `RetainKeysMergeItem` test types
/// (strategicpatch's `testdata/swagger-merge-item-v3.json`), root `mergeItem`.
pub(super) fn merge_item_defs() -> Map<String, Value> {
    into_map(json!({
        "mergeItem": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "value": {"type": "string"},
                "other": {"type": "string"},
                "mergingList": merge_list(wrapped("mergeItem", json!({})), "name", "merge"),
                "nonMergingList": {"type": "array", "items": bare("mergeItem", json!({}))},
                "mergingIntList": {
                    "type": "array",
                    "items": {"type": "integer", "format": "int32"},
                    "x-kubernetes-patch-strategy": "merge"
                },
                "nonMergingIntList": {"type": "array", "items": {"type": "integer"}},
                "mergeItemPtr": merge_list(bare("mergeItem", json!({})), "name", "merge"),
                "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
                "replacingItem": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "x-kubernetes-patch-strategy": "replace"
                },
                "retainKeysMap": wrapped(
                    "retainKeysMergeItem",
                    json!({"x-kubernetes-patch-strategy": "retainKeys"})
                ),
                "retainKeysMergingList": merge_list(
                    bare("mergeItem", json!({})),
                    "name",
                    "merge,retainKeys"
                ),
                "badStrategy": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "x-kubernetes-patch-strategy": "merge,replace"
                },
                "keylessMergeList": {
                    "type": "array",
                    "items": bare("mergeItem", json!({})),
                    "x-kubernetes-patch-strategy": "merge"
                }
            }
        },
        "retainKeysMergeItem": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "value": {"type": "string"},
                "other": {"type": "string"},
                "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
                "mergingIntList": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "x-kubernetes-patch-strategy": "merge"
                },
                "mergingList": merge_list(bare("mergeItem", json!({})), "name", "merge"),
                "nonMergingList": {"type": "array", "items": bare("mergeItem", json!({}))}
            }
        }
    }))
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const POD_SPEC: &str = "io.k8s.api.core.v1.PodSpec";
const CONTAINER: &str = "io.k8s.api.core.v1.Container";

/// The parts of `apps/v1` and `core/v1` that kubectl's patches touch, with upstream's patch
/// metadata. Roots: `io.k8s.api.apps.v1.Deployment`, `io.k8s.api.core.v1.Pod`.
pub(super) fn k8s_defs() -> Map<String, Value> {
    let string = json!({"type": "string"});
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}});
    into_map(json!({
        "io.k8s.api.apps.v1.Deployment": {
            "type": "object",
            "properties": {
                "apiVersion": string,
                "kind": string,
                "metadata": wrapped(META, json!({})),
                "spec": bare("io.k8s.api.apps.v1.DeploymentSpec", json!({"description": "spec"})),
                "status": wrapped("io.k8s.api.apps.v1.DeploymentStatus", json!({}))
            }
        },
        "io.k8s.api.apps.v1.DeploymentSpec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer", "format": "int32"},
                "selector": wrapped("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", json!({})),
                "template": wrapped("io.k8s.api.core.v1.PodTemplateSpec", json!({})),
                "strategy": wrapped(
                    "io.k8s.api.apps.v1.DeploymentStrategy",
                    json!({"x-kubernetes-patch-strategy": "retainKeys"})
                ),
                "revisionHistoryLimit": {"type": "integer"},
                "progressDeadlineSeconds": {"type": "integer"}
            }
        },
        "io.k8s.api.apps.v1.DeploymentStrategy": {
            "type": "object",
            "properties": {
                "type": string,
                "rollingUpdate": wrapped("io.k8s.api.apps.v1.RollingUpdateDeployment", json!({}))
            }
        },
        "io.k8s.api.apps.v1.RollingUpdateDeployment": {
            "type": "object",
            "properties": {
                "maxSurge": {"x-kubernetes-int-or-string": true},
                "maxUnavailable": {"x-kubernetes-int-or-string": true}
            }
        },
        "io.k8s.api.apps.v1.DeploymentStatus": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "conditions": merge_list(
                    wrapped("io.k8s.api.apps.v1.DeploymentCondition", json!({})),
                    "type",
                    "merge"
                )
            }
        },
        "io.k8s.api.apps.v1.DeploymentCondition": {
            "type": "object",
            "properties": {"type": string, "status": string, "reason": string}
        },
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector": {
            "type": "object",
            "properties": {"matchLabels": string_map},
            "x-kubernetes-map-type": "atomic"
        },
        "io.k8s.api.core.v1.PodTemplateSpec": {
            "type": "object",
            "properties": {
                "metadata": wrapped(META, json!({})),
                "spec": wrapped(POD_SPEC, json!({}))
            }
        },
        "io.k8s.api.core.v1.Pod": {
            "type": "object",
            "properties": {
                "apiVersion": string,
                "kind": string,
                "metadata": wrapped(META, json!({})),
                "spec": wrapped(POD_SPEC, json!({}))
            }
        },
        (META): {
            "type": "object",
            "properties": {
                "name": string,
                "namespace": string,
                "uid": string,
                "resourceVersion": string,
                "generation": {"type": "integer"},
                "labels": string_map,
                "annotations": string_map,
                "finalizers": {
                    "type": "array",
                    "items": {"type": "string", "default": ""},
                    "x-kubernetes-list-type": "set",
                    "x-kubernetes-patch-strategy": "merge"
                },
                "ownerReferences": merge_list(
                    wrapped("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", json!({})),
                    "uid",
                    "merge"
                )
            }
        },
        "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference": {
            "type": "object",
            "properties": {"uid": string, "name": string, "kind": string, "apiVersion": string}
        },
        (POD_SPEC): {
            "type": "object",
            "properties": {
                "containers": merge_list(wrapped(CONTAINER, json!({})), "name", "merge"),
                "initContainers": merge_list(bare(CONTAINER, json!({})), "name", "merge"),
                "volumes": merge_list(
                    wrapped("io.k8s.api.core.v1.Volume", json!({})),
                    "name",
                    "merge,retainKeys"
                ),
                "imagePullSecrets": merge_list(
                    bare("io.k8s.api.core.v1.LocalObjectReference", json!({})),
                    "name",
                    "merge"
                ),
                "nodeSelector": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "x-kubernetes-map-type": "atomic"
                },
                "tolerations": {
                    "type": "array",
                    "items": wrapped("io.k8s.api.core.v1.Toleration", json!({})),
                    "x-kubernetes-list-type": "atomic"
                },
                "restartPolicy": string,
                "terminationGracePeriodSeconds": {"type": "integer"},
                "dnsPolicy": string,
                "schedulerName": string
            }
        },
        (CONTAINER): {
            "type": "object",
            "properties": {
                "name": string,
                "image": string,
                "imagePullPolicy": string,
                "command": {"type": "array", "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "env": merge_list(wrapped("io.k8s.api.core.v1.EnvVar", json!({})), "name", "merge"),
                "ports": {
                    "type": "array",
                    "items": wrapped("io.k8s.api.core.v1.ContainerPort", json!({})),
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                    "x-kubernetes-patch-strategy": "merge",
                    "x-kubernetes-patch-merge-key": "containerPort"
                },
                "volumeMounts": merge_list(
                    wrapped("io.k8s.api.core.v1.VolumeMount", json!({})),
                    "mountPath",
                    "merge"
                ),
                "resources": wrapped("io.k8s.api.core.v1.ResourceRequirements", json!({})),
                "terminationMessagePath": string,
                "terminationMessagePolicy": string
            }
        },
        "io.k8s.api.core.v1.EnvVar": {
            "type": "object",
            "properties": {"name": string, "value": string, "valueFrom": {"type": "object"}}
        },
        "io.k8s.api.core.v1.ContainerPort": {
            "type": "object",
            "properties": {
                "containerPort": {"type": "integer"},
                "protocol": string,
                "name": string
            }
        },
        "io.k8s.api.core.v1.VolumeMount": {
            "type": "object",
            "properties": {"name": string, "mountPath": string, "readOnly": {"type": "boolean"}}
        },
        "io.k8s.api.core.v1.ResourceRequirements": {
            "type": "object",
            "properties": {
                "limits": {"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": true}},
                "requests": {"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": true}}
            }
        },
        "io.k8s.api.core.v1.Volume": {
            "type": "object",
            "properties": {
                "name": string,
                "emptyDir": {"type": "object", "properties": {"medium": string}},
                "configMap": {"type": "object", "properties": {"name": string}},
                "secret": {"type": "object", "properties": {"secretName": string}}
            }
        },
        "io.k8s.api.core.v1.LocalObjectReference": {
            "type": "object",
            "properties": {"name": string}
        },
        "io.k8s.api.core.v1.Toleration": {
            "type": "object",
            "properties": {"key": string, "operator": string, "effect": string}
        }
    }))
}
