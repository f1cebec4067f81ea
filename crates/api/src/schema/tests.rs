use serde_json::{Map, Value, json};

use super::{ListType, MapType, Schema};

/// A few components in both reference shapes: upstream's `allOf` wrapper and schemars' bare
/// `$ref` with sibling extensions.
fn defs() -> Map<String, Value> {
    let v = json!({
        "io.k8s.api.core.v1.PodSpec": {
            "type": "object",
            "properties": {
                "containers": {
                    "type": "array",
                    "items": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}], "default": {}},
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "x-kubernetes-patch-strategy": "merge",
                    "x-kubernetes-patch-merge-key": "name"
                },
                "volumes": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Volume"},
                    "x-kubernetes-patch-strategy": "merge,retainKeys",
                    "x-kubernetes-patch-merge-key": "name"
                },
                "nodeSelector": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "default": ""},
                    "x-kubernetes-map-type": "atomic"
                },
                "selector": {
                    "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
                    "description": "schemars style"
                },
                "chain": {"$ref": "#/components/schemas/alias"},
                "dangling": {"$ref": "#/components/schemas/nope"},
                "loop": {"$ref": "#/components/schemas/loop"},
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "port": {"x-kubernetes-int-or-string": true},
                "weird": {"x-kubernetes-list-type": "bogus", "x-kubernetes-map-type": 3}
            }
        },
        "io.k8s.api.core.v1.Container": {
            "type": "object",
            "properties": {"name": {"type": "string", "default": ""}, "image": {"type": "string"}}
        },
        "io.k8s.api.core.v1.Volume": {"type": "object", "properties": {"name": {"type": "string"}}},
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector": {
            "type": "object",
            "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
            "x-kubernetes-map-type": "atomic"
        },
        "alias": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}]},
        "loop": {"$ref": "#/components/schemas/loop"}
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("fixture is an object"),
    }
}

#[test]
fn root_and_missing_root() {
    let defs = defs();
    assert!(Schema::root(&defs, "io.k8s.api.core.v1.PodSpec").is_some());
    assert!(Schema::root(&defs, "io.k8s.api.core.v1.Nope").is_none());
}

#[test]
fn upstream_allof_reference_and_extensions_on_the_property() {
    let defs = defs();
    let spec = Schema::root(&defs, "io.k8s.api.core.v1.PodSpec").expect("root");
    let containers = spec.property("containers").expect("containers");
    assert!(containers.is_array());
    assert_eq!(containers.patch_strategies().collect::<Vec<_>>(), ["merge"]);
    assert_eq!(containers.patch_merge_key(), Some("name"));
    assert_eq!(containers.list_type(), Some(ListType::Map));
    assert_eq!(containers.list_map_keys().collect::<Vec<_>>(), ["name"]);

    let item = containers.items().expect("items");
    assert_eq!(item.name(), Some("io.k8s.api.core.v1.Container"));
    assert!(item.is_object());
    assert_eq!(item.property("image").and_then(|s| s.schema_type()), Some("string"));
    assert!(item.property("nope").is_none());
}

#[test]
fn schemars_reference_with_sibling_extensions() {
    let defs = defs();
    let spec = Schema::root(&defs, "io.k8s.api.core.v1.PodSpec").expect("root");
    let volumes = spec.property("volumes").expect("volumes");
    assert_eq!(volumes.patch_strategies().collect::<Vec<_>>(), ["merge", "retainKeys"]);
    assert!(volumes.has_patch_strategy("retainKeys"));
    assert!(!volumes.has_patch_strategy("replace"));
    let volume = volumes.items().expect("items");
    assert_eq!(volume.name(), Some("io.k8s.api.core.v1.Volume"));
    assert!(volume.property("name").is_some());

    // A type-level extension is found through the reference.
    let selector = spec.property("selector").expect("selector");
    assert_eq!(selector.map_type(), Some(MapType::Atomic));
    assert_eq!(selector.node().get("description"), Some(&json!("schemars style")));
    let labels = selector.property("matchLabels").expect("matchLabels");
    assert_eq!(labels.field("anything").and_then(|s| s.schema_type()), Some("string"));
}

#[test]
fn maps_fields_and_flags() {
    let defs = defs();
    let spec = Schema::root(&defs, "io.k8s.api.core.v1.PodSpec").expect("root");
    let node_selector = spec.property("nodeSelector").expect("nodeSelector");
    assert!(node_selector.is_object());
    assert_eq!(node_selector.map_type(), Some(MapType::Atomic));
    assert!(node_selector.additional_properties().is_some());
    assert!(node_selector.property("x").is_none());
    assert!(node_selector.field("x").is_some());

    let raw = spec.property("raw").expect("raw");
    assert!(raw.preserves_unknown_fields());
    assert!(raw.field("x").is_none());
    assert!(spec.property("port").expect("port").is_int_or_string());
    assert!(!raw.is_int_or_string());
    assert!(!raw.is_embedded_resource());

    let weird = spec.property("weird").expect("weird");
    assert_eq!(weird.list_type(), None);
    assert_eq!(weird.map_type(), None);
    assert_eq!(weird.patch_strategies().count(), 0);
    assert_eq!(weird.patch_merge_key(), None);

    let names: Vec<_> = spec.properties().map(|(k, _)| k).collect();
    assert_eq!(names[0], "containers");
    assert_eq!(names.len(), 10);
}

#[test]
fn chained_dangling_and_cyclic_references_terminate() {
    let defs = defs();
    let spec = Schema::root(&defs, "io.k8s.api.core.v1.PodSpec").expect("root");
    let chain = spec.property("chain").expect("chain");
    assert_eq!(chain.name(), Some("io.k8s.api.core.v1.Container"));
    assert!(chain.property("image").is_some());

    let dangling = spec.property("dangling").expect("dangling");
    assert_eq!(dangling.resolved(), &Value::Null);
    assert!(dangling.property("x").is_none());
    assert!(!dangling.is_object());

    let looping = spec.property("loop").expect("loop");
    assert_eq!(looping.resolved(), &Value::Null);
    assert!(looping.items().is_none());
}

#[test]
fn a_null_node_carries_no_metadata() {
    let defs = defs();
    let none = Schema::new(&defs, &Value::Null);
    assert!(none.field("containers").is_none());
    assert!(none.items().is_none());
    assert_eq!(none.name(), None);
    assert_eq!(none.patch_strategies().count(), 0);
}
