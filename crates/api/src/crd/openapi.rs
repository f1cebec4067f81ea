//! OpenAPI v3 component schemas for custom resources, shaped like upstream's
//! `controller/openapi/builder`: the version's schema with the standard `apiVersion`, `kind` and
//! `metadata` (a reference to `ObjectMeta`) properties and `x-kubernetes-group-version-kind`, so
//! `kubectl explain crontab.spec` works and server-side apply reads the same list/map types.

use serde_json::{Map, Value, json};

const OBJECT_META: &str = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers \
                               should convert recognized schemas to the latest internal value, and may reject \
                               unrecognized values. More info: \
                               https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may \
                        infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. \
                        More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: \
                            https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DOC: &str = "Standard list metadata. More info: \
                                 https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// Upstream's `ToRESTFriendlyName` of group/version/kind: the group's domain reversed
/// (`stable.example.com`, `v1`, `CronTab` → `com.example.stable.v1.CronTab`).
pub fn schema_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The component schema of `version` of `crd` (`{}`-based when the version has no schema).
pub fn openapi_schema(crd: &Value, version: &str) -> Value {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
    let names = super::served_names(crd);
    let mut schema = super::schema_for(crd, version).cloned().unwrap_or_else(|| json!({"type": "object"}));
    unfold(&mut schema, 0);
    add_resource_properties(&mut schema);
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": group, "kind": names.kind, "version": version}]),
        );
    }
    schema
}

/// The component schemas of `version` of `crd`: the kind's and its list's, by name.
pub fn openapi_components(crd: &Value, version: &str) -> Map<String, Value> {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
    let names = super::served_names(crd);
    let kind_name = schema_name(group, version, &names.kind);
    let list = json!({
        "description": format!("{} is a list of {}", names.list_kind, names.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION_DOC},
            "items": {
                "type": "array",
                "description": format!(
                    "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                    names.plural
                ),
                "items": {"$ref": format!("#/components/schemas/{kind_name}")},
            },
            "kind": {"type": "string", "description": KIND_DOC},
            "metadata": {"allOf": [{"$ref": LIST_META}], "description": LIST_METADATA_DOC},
        },
        "x-kubernetes-group-version-kind": [{"group": group, "kind": names.list_kind, "version": version}],
    });
    let mut out = Map::new();
    out.insert(kind_name, openapi_schema(crd, version));
    out.insert(schema_name(group, version, &names.list_kind), list);
    out
}

/// `apiVersion`, `kind` and `metadata` on a resource node (the root, or an embedded resource).
fn add_resource_properties(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else { return };
    let props = obj.entry("properties").or_insert_with(|| json!({}));
    if !props.is_object() {
        *props = json!({});
    }
    props["apiVersion"] = json!({"type": "string", "description": API_VERSION_DOC});
    props["kind"] = json!({"type": "string", "description": KIND_DOC});
    props["metadata"] = json!({"allOf": [{"$ref": OBJECT_META}], "description": METADATA_DOC});
    obj.entry("type").or_insert_with(|| json!("object"));
}

/// Upstream's `Unfold`: int-or-string nodes spell out their `anyOf`, and embedded resources get
/// the resource properties.
fn unfold(v: &mut Value, depth: usize) {
    if depth > 200 {
        return;
    }
    let Some(obj) = v.as_object_mut() else { return };
    let int_or_string = obj.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    let untyped = obj.get("type").and_then(Value::as_str).unwrap_or_default().is_empty();
    if int_or_string && untyped && !obj.contains_key("anyOf") {
        obj.insert("anyOf".into(), json!([{"type": "integer"}, {"type": "string"}]));
    }
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        props.values_mut().for_each(|p| unfold(p, depth + 1));
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = obj.get_mut(key) {
            unfold(child, depth + 1);
        }
    }
    if obj.get("x-kubernetes-embedded-resource").and_then(Value::as_bool) == Some(true) {
        add_resource_properties(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_shape() {
        assert_eq!(schema_name("stable.example.com", "v1", "CronTab"), "com.example.stable.v1.CronTab");
        let crd = json!({"spec": {"group": "stable.example.com", "names": {"kind": "CronTab", "plural": "crontabs",
            "listKind": "CronTabList"}, "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "port": {"x-kubernetes-int-or-string": true},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}},
            "metadata": {"type": "object"}}}}}]}});
        let s = openapi_schema(&crd, "v1");
        assert_eq!(s["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
        assert_eq!(s["properties"]["metadata"]["allOf"][0]["$ref"], OBJECT_META);
        assert_eq!(s["properties"]["kind"]["type"], "string");
        assert_eq!(s["properties"]["spec"]["properties"]["port"]["anyOf"][1]["type"], "string");
        assert_eq!(s["properties"]["spec"]["properties"]["template"]["properties"]["apiVersion"]["type"], "string");
        let comps = openapi_components(&crd, "v1");
        assert!(comps.contains_key("com.example.stable.v1.CronTab"));
        let list = &comps["com.example.stable.v1.CronTabList"];
        assert_eq!(list["properties"]["items"]["items"]["$ref"], "#/components/schemas/com.example.stable.v1.CronTab");
        assert_eq!(list["x-kubernetes-group-version-kind"][0]["kind"], "CronTabList");
    }
}
