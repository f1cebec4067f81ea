//! Pruning and defaulting of custom resources, in upstream's order (`schema/pruning`,
//! `schema/defaulting`): unknown fields are dropped (and their paths reported for field
//! validation), nulls that may not be null and have no default are dropped, then `default`s are
//! applied top-down so a defaulted object is itself defaulted.

use serde_json::{Map, Value};

use super::structural::Structural;
use crate::field::Path;

/// The fields every resource (the root and each `x-kubernetes-embedded-resource`) keeps whatever
/// its schema says: they are checked by the object metadata code instead.
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Removes every field `schema` does not specify. The root is treated as a resource (its
/// `apiVersion`, `kind` and `metadata` are kept). Returns the paths of the pruned fields, sorted,
/// in upstream's form (`spec.foo`, `spec.items[0].bar`).
pub(crate) fn prune(obj: &mut Value, schema: &Structural) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_node(obj, Some(schema), true, &Path::root(), &mut pruned);
    pruned.sort();
    pruned
}

/// Prunes a value that is not a resource root (a `default`, for instance); returns whether
/// anything was removed.
pub(crate) fn prune_value(v: &mut Value, schema: &Structural) -> bool {
    let mut pruned = Vec::new();
    prune_node(v, Some(schema), schema.embedded_resource, &Path::root(), &mut pruned);
    !pruned.is_empty()
}

fn prune_node(x: &mut Value, s: Option<&Structural>, resource: bool, path: &Path, pruned: &mut Vec<String>) {
    if let Some(s) = s.filter(|s| s.preserve_unknown_fields) {
        skip_prune(x, s, resource, path, pruned);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                pruned.extend(map.keys().map(|k| path.child(k).to_string()));
                map.clear();
                return;
            };
            let resource = resource || s.embedded_resource;
            map.retain(|k, v| {
                if resource && META_FIELDS.contains(&k.as_str()) {
                    return true;
                }
                let child = path.child(k);
                if let Some(prop) = s.properties.get(k) {
                    prune_node(v, Some(prop), false, &child, pruned);
                    true
                } else if let Some(ap) = s.additional_properties.as_deref() {
                    prune_node(v, Some(ap), false, &child, pruned);
                    true
                } else if s.additional_properties_any {
                    // `additionalProperties: true` keeps every value as it is.
                    true
                } else {
                    pruned.push(child.to_string());
                    false
                }
            });
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for (i, v) in items.iter_mut().enumerate() {
                prune_node(v, item_schema, false, &path.index(i), pruned);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known ones are pruned by
/// their own schemas.
fn skip_prune(x: &mut Value, s: &Structural, resource: bool, path: &Path, pruned: &mut Vec<String>) {
    match x {
        Value::Object(map) => {
            let resource = resource || s.embedded_resource;
            for (k, v) in map.iter_mut() {
                if resource && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(prop) = s.field(k) {
                    prune_node(v, Some(prop), false, &path.child(k), pruned);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items.as_deref() {
                for (i, v) in items.iter_mut().enumerate() {
                    skip_prune(v, item_schema, false, &path.index(i), pruned);
                }
            }
        }
        _ => {}
    }
}

/// Drops `null` fields whose schema is neither nullable nor defaulted (upstream's
/// `PruneNonNullableNullsWithoutDefaults`): a client sending `"foo": null` means "unset".
pub(crate) fn drop_non_nullable_nulls(x: &mut Value, s: &Structural) {
    match x {
        Value::Object(map) => {
            map.retain(|k, v| match s.field(k) {
                Some(prop) if v.is_null() => prop.nullable || prop.default.is_some(),
                _ => true,
            });
            for (k, v) in map.iter_mut() {
                if let Some(prop) = s.field(k) {
                    drop_non_nullable_nulls(v, prop);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.items.as_deref() {
                items.iter_mut().for_each(|v| drop_non_nullable_nulls(v, item_schema));
            }
        }
        _ => {}
    }
}

/// Applies `default`s (upstream's `structuraldefaulting.Default`): a missing property, or a
/// `null` one that may not be null, gets a copy of its default; then every child is defaulted,
/// including values that were just defaulted.
pub(crate) fn apply_defaults(x: &mut Value, s: &Structural) {
    match x {
        Value::Object(map) => {
            for (k, prop) in &s.properties {
                let Some(default) = &prop.default else { continue };
                let missing = match map.get(k) {
                    None => true,
                    Some(v) => is_non_nullable_null(v, Some(prop)),
                };
                if missing {
                    map.insert(k.clone(), default.clone());
                }
            }
            default_children(map, s);
        }
        Value::Array(items) => {
            let Some(item_schema) = s.items.as_deref() else { return };
            for v in items.iter_mut() {
                if is_non_nullable_null(v, Some(item_schema))
                    && let Some(d) = &item_schema.default
                {
                    *v = d.clone();
                }
                apply_defaults(v, item_schema);
            }
        }
        _ => {}
    }
}

fn default_children(map: &mut Map<String, Value>, s: &Structural) {
    for (k, v) in map.iter_mut() {
        if let Some(prop) = s.properties.get(k) {
            apply_defaults(v, prop);
        } else if let Some(ap) = s.additional_properties.as_deref() {
            if is_non_nullable_null(v, Some(ap))
                && let Some(d) = &ap.default
            {
                *v = d.clone();
            }
            apply_defaults(v, ap);
        }
    }
}

fn is_non_nullable_null(v: &Value, s: Option<&Structural>) -> bool {
    v.is_null() && s.is_some_and(|s| s.default.is_some() && !s.nullable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Structural {
        Structural::from_value(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer", "default": 1},
                        "image": {"type": "string"},
                        "ports": {"type": "array", "items": {"type": "object", "properties": {
                            "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                  "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                        "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                     "properties": {"spec": {"type": "object"}}},
                        "limits": {"type": "object", "default": {}, "properties": {"cpu": {"type": "string", "default": "1"}}},
                        "maybe": {"type": "string", "nullable": true},
                    },
                },
            },
        }))
    }

    #[test]
    fn prunes_unknown_fields_and_reports_paths() {
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "foo": 1,
            "spec": {
                "image": "nginx", "bogus": true,
                "ports": [{"port": 80, "nope": 1}],
                "extra": {"anything": {"goes": 1}, "known": {"a": "x", "b": "y"}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}, "x": 1},
            },
        });
        let pruned = prune(&mut obj, &schema());
        assert_eq!(pruned, ["foo", "spec.bogus", "spec.extra.known.b", "spec.ports[0].nope", "spec.template.x"]);
        assert_eq!(obj["spec"]["extra"]["anything"], json!({"goes": 1}));
        assert_eq!(obj["spec"]["template"]["kind"], "Pod");
        assert_eq!(obj["metadata"]["name"], "a");
    }

    #[test]
    fn nulls_then_defaults() {
        let s = schema();
        let mut obj = json!({"spec": {"image": null, "maybe": null, "replicas": null, "ports": [{"port": 1}]}});
        drop_non_nullable_nulls(&mut obj, &s);
        assert_eq!(obj["spec"].get("image"), None);
        assert_eq!(obj["spec"]["maybe"], Value::Null);
        apply_defaults(&mut obj, &s);
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["spec"]["ports"][0]["protocol"], "TCP");
        // A defaulted object is defaulted in turn.
        assert_eq!(obj["spec"]["limits"], json!({"cpu": "1"}));
        // Existing values win.
        let mut obj = json!({"spec": {"replicas": 3}});
        apply_defaults(&mut obj, &s);
        assert_eq!(obj["spec"]["replicas"], 3);
    }

    #[test]
    fn prune_value_detects_unknown_fields_in_defaults() {
        let s = schema();
        let spec = &s.properties["spec"];
        let mut d = json!({"replicas": 2, "zzz": 1});
        assert!(prune_value(&mut d, spec));
        let mut d = json!({"replicas": 2});
        assert!(!prune_value(&mut d, spec));
    }
}
