//! `/openapi/v2`: the Swagger 2.0 form of the built-in component schemas, as JSON and as the
//! protobuf client-go asks for (gnostic's `openapi.v2.Document`).
//!
//! kubectl 1.32 reads it in one case: a `kind: List` manifest. It validates the list's items on
//! the client against the v2 `definitions` (the v3 documents have no `List` kind). Without a
//! v2 document, `kubectl apply -f list.yaml` (what `kubectl get -o yaml` prints) fails with "the
//! server could not find the requested resource".
//!
//! The document carries the `definitions` (every built-in schema, with
//! `x-kubernetes-group-version-kind`) and no `paths`: clients that read operations use the
//! v3 documents. Custom resources are not in it; kubectl then skips their client-side check,
//! and the server still validates every object it is sent.
//!
//! v3 → v2: references move from `#/components/schemas/` to `#/definitions/`; a lone
//! `allOf: [{$ref}]` (v3's way to annotate a reference) becomes the reference; `oneOf` scalars
//! (IntOrString, Quantity) become `type: string`, as upstream's v2 has them. The protobuf
//! carries what kube-openapi's `proto` models read: `$ref`, `type`, `format`, `description`,
//! `required`, `properties`, `additionalProperties`, `items` and the `x-` extensions (as
//! YAML, which JSON is).

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use super::schemas::REF_PREFIX;

/// The content type client-go asks for and the protobuf body is sent as.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

const V2_REF_PREFIX: &str = "#/definitions/";

/// The document as JSON and as protobuf, built once.
pub fn swagger(kubernetes_version: &str) -> &'static (Vec<u8>, Vec<u8>) {
    static DOC: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    DOC.get_or_init(|| {
        let doc = document(super::definitions(), kubernetes_version);
        (serde_json::to_vec(&doc).unwrap_or_default(), encode_document(&doc))
    })
}

/// The Swagger 2.0 document for these v3 component schemas.
pub(crate) fn document(defs: &Map<String, Value>, kubernetes_version: &str) -> Value {
    let definitions: Map<String, Value> = defs.iter().map(|(k, v)| (k.clone(), to_v2(v))).collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": kubernetes_version},
        "paths": {},
        "definitions": definitions,
    })
}

/// One schema, v3 → v2 (see the module docs).
fn to_v2(v: &Value) -> Value {
    match v {
        Value::Object(obj) => {
            // `allOf: [{$ref}]` with siblings (description, default): the reference.
            if let Some(Value::Array(all)) = obj.get("allOf")
                && let [Value::Object(one)] = all.as_slice()
                && one.len() == 1
                && one.contains_key("$ref")
            {
                let mut out = Map::new();
                out.insert("$ref".into(), v2_ref(&one["$ref"]));
                if let Some(d) = obj.get("description") {
                    out.insert("description".into(), d.clone());
                }
                return Value::Object(out);
            }
            let mut out = Map::new();
            for (k, v) in obj {
                match k.as_str() {
                    "oneOf" | "anyOf" | "nullable" => {}
                    "$ref" => {
                        out.insert(k.clone(), v2_ref(v));
                    }
                    // Property names are data, not schema keywords.
                    "properties" => {
                        let props = v.as_object().map(|p| p.iter().map(|(n, s)| (n.clone(), to_v2(s))).collect());
                        out.insert(k.clone(), Value::Object(props.unwrap_or_default()));
                    }
                    _ if k.starts_with("x-") => {
                        out.insert(k.clone(), v.clone());
                    }
                    _ => {
                        out.insert(k.clone(), to_v2(v));
                    }
                }
            }
            let branches = obj.get("oneOf").or_else(|| obj.get("anyOf")).and_then(Value::as_array);
            if !out.contains_key("type") && branches.is_some_and(|b| b.iter().any(|s| s["type"] == "string")) {
                out.insert("type".into(), json!("string"));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v2).collect()),
        other => other.clone(),
    }
}

/// A v3 reference (`#/components/schemas/X`) as v2's (`#/definitions/X`).
fn v2_ref(r: &Value) -> Value {
    let r = r.as_str().unwrap_or_default();
    Value::String(r.strip_prefix(REF_PREFIX).map_or_else(|| r.to_string(), |n| format!("{V2_REF_PREFIX}{n}")))
}

/// Protobuf wire format, just what the document needs.
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.varint(u64::from(field << 3 | 2));
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }
}

/// `openapi.v2.Document`: swagger = 1, info = 2, paths = 8, definitions = 9.
fn encode_document(doc: &Value) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.string(1, doc["swagger"].as_str().unwrap_or("2.0"));
    let mut info = Writer(Vec::new());
    info.string(1, doc["info"]["title"].as_str().unwrap_or_default());
    info.string(2, doc["info"]["version"].as_str().unwrap_or_default());
    w.bytes(2, &info.0);
    w.bytes(8, &[]);
    // Definitions { repeated NamedSchema additional_properties = 1 }.
    let mut defs = Writer(Vec::new());
    for (name, schema) in doc["definitions"].as_object().into_iter().flatten() {
        defs.bytes(1, &named_schema(name, schema));
    }
    w.bytes(9, &defs.0);
    w.0
}

/// `NamedSchema`: name = 1, value = 2.
fn named_schema(name: &str, schema: &Value) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.string(1, name);
    w.bytes(2, &encode_schema(schema));
    w.0
}

/// `openapi.v2.Schema`: _ref = 1, format = 2, description = 4, required = 19,
/// additional_properties = 21, type = 22, items = 23, properties = 25, vendor_extension = 31.
fn encode_schema(schema: &Value) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    let Some(obj) = schema.as_object() else { return w.0 };
    w.string(1, obj.get("$ref").and_then(Value::as_str).unwrap_or_default());
    w.string(2, obj.get("format").and_then(Value::as_str).unwrap_or_default());
    w.string(4, obj.get("description").and_then(Value::as_str).unwrap_or_default());
    for r in obj.get("required").and_then(Value::as_array).into_iter().flatten() {
        w.string(19, r.as_str().unwrap_or_default());
    }
    match obj.get("additionalProperties") {
        // AdditionalPropertiesItem { oneof { Schema schema = 1; bool boolean = 2; } }
        Some(Value::Object(_)) => {
            let mut item = Writer(Vec::new());
            item.bytes(1, &encode_schema(&obj["additionalProperties"]));
            w.bytes(21, &item.0);
        }
        Some(Value::Bool(b)) => {
            let mut item = Writer(Vec::new());
            item.varint(2 << 3);
            item.varint(u64::from(*b));
            w.bytes(21, &item.0);
        }
        _ => {}
    }
    if let Some(t) = obj.get("type").and_then(Value::as_str) {
        // TypeItem { repeated string value = 1 }
        let mut item = Writer(Vec::new());
        item.string(1, t);
        w.bytes(22, &item.0);
    }
    if let Some(items) = obj.get("items").filter(|i| i.is_object()) {
        // ItemsItem { repeated Schema schema = 1 }
        let mut item = Writer(Vec::new());
        item.bytes(1, &encode_schema(items));
        w.bytes(23, &item.0);
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        // Properties { repeated NamedSchema additional_properties = 1 }
        let mut p = Writer(Vec::new());
        for (name, s) in props {
            p.bytes(1, &named_schema(name, s));
        }
        w.bytes(25, &p.0);
    }
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        // NamedAny { name = 1; Any value = 2 }, Any { yaml = 2 }
        let mut any = Writer(Vec::new());
        any.string(2, &serde_json::to_string(v).unwrap_or_default());
        let mut named = Writer(Vec::new());
        named.string(1, k);
        named.bytes(2, &any.0);
        w.bytes(31, &named.0);
    }
    w.0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn refs(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(o) => {
                for (k, v) in o {
                    if k == "$ref" {
                        out.insert(v.as_str().unwrap_or_default().to_string());
                    } else if k == "properties" {
                        // Names (JSONSchemaProps has a property called `$ref`), then schemas.
                        v.as_object().into_iter().flatten().for_each(|(_, s)| refs(s, out));
                    } else if !k.starts_with("x-") {
                        refs(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    /// What kube-openapi's parser refuses: a dangling reference, an array without exactly one
    /// item schema, a type it does not know.
    #[test]
    fn the_document_parses_as_kube_openapi_would() {
        let doc = document(crate::openapi::definitions(), "v1.33.0");
        let defs = doc["definitions"].as_object().expect("definitions");
        let mut all = BTreeSet::new();
        refs(&doc["definitions"], &mut all);
        assert!(!all.is_empty());
        for r in &all {
            let name = r.strip_prefix(V2_REF_PREFIX).unwrap_or_else(|| panic!("a v3 reference left: {r}"));
            assert!(defs.contains_key(name), "dangling reference {r}");
        }
        fn walk(path: &str, v: &Value) {
            let Some(o) = v.as_object() else { return };
            if o.contains_key("$ref") {
                return;
            }
            match o.get("type").and_then(Value::as_str) {
                Some("array") => {
                    assert!(o.get("items").is_some_and(Value::is_object), "{path}: an array without items")
                }
                Some("object" | "string" | "integer" | "number" | "boolean") | None => {}
                Some(other) => panic!("{path}: type {other}"),
            }
            for (k, s) in o.get("properties").and_then(Value::as_object).into_iter().flatten() {
                walk(&format!("{path}.{k}"), s);
            }
            if let Some(i) = o.get("items") {
                walk(&format!("{path}[]"), i);
            }
            if let Some(a) = o.get("additionalProperties") {
                walk(&format!("{path}{{}}"), a);
            }
        }
        for (name, s) in defs {
            walk(name, s);
        }
        // The scalars upstream's v2 types as strings, and annotated references.
        assert_eq!(defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"], "string");
        assert_eq!(defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"], "string");
        let meta = &defs["io.k8s.api.apps.v1.Deployment"]["properties"]["metadata"];
        assert_eq!(meta["$ref"], "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        assert_eq!(
            defs["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
    }

    #[test]
    fn protobuf_encoding() {
        let mut w = Writer(Vec::new());
        w.varint(300);
        assert_eq!(w.0, [0xac, 0x02]);
        let schema = json!({"type": "array", "items": {"$ref": "#/definitions/X"}, "x-k": [1]});
        // type (22): TypeItem{value: "array"}; items (23): ItemsItem{schema: {_ref}};
        // vendor_extension (31): NamedAny{name: "x-k", value: Any{yaml: "[1]"}}.
        let mut want = vec![0xb2, 0x01, 7, 0x0a, 5];
        want.extend(b"array");
        want.extend([0xba, 0x01, 19, 0x0a, 17, 0x0a, 15]);
        want.extend(b"#/definitions/X");
        want.extend([0xfa, 0x01, 12, 0x0a, 3]);
        want.extend(b"x-k");
        want.extend([0x12, 5, 0x12, 3]);
        want.extend(b"[1]");
        assert_eq!(encode_schema(&schema), want);
    }
}
