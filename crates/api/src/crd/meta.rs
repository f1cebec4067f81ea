//! Object metadata inside custom resources (upstream's `schema/objectmeta`): the root's and every
//! `x-kubernetes-embedded-resource`'s `metadata` is read as an `ObjectMeta` (unknown fields
//! dropped and reported, like any typed object), and embedded resources must carry a valid
//! `apiVersion`, `kind` and metadata.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use super::structural::Structural;
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::{NameRule, decode_tracking};
use crate::validation;

/// Rewrites `metadata` at the root and in every embedded resource through `ObjectMeta`,
/// appending the paths of unknown metadata fields to `unknown`. Fails (a 400) when a metadata
/// field has the wrong JSON type.
pub(crate) fn coerce(obj: &mut Value, s: &Structural, unknown: &mut Vec<String>) -> Result<(), String> {
    coerce_meta(obj, &Path::root(), unknown)?;
    coerce_children(obj, s, &Path::root(), unknown)
}

fn coerce_meta(obj: &mut Value, path: &Path, unknown: &mut Vec<String>) -> Result<(), String> {
    let Some(map) = obj.as_object_mut() else { return Ok(()) };
    let Some(meta) = map.get_mut("metadata") else { return Ok(()) };
    if meta.is_null() {
        return Ok(());
    }
    let meta_path = path.child("metadata");
    let mut found = Vec::new();
    let typed: ObjectMeta = decode_tracking(meta.take(), &mut found).map_err(|e| format!("{meta_path}: {e}"))?;
    unknown.extend(found.into_iter().map(|f| meta_path.child(&f).to_string()));
    *meta = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    Ok(())
}

fn coerce_children(x: &mut Value, s: &Structural, path: &Path, unknown: &mut Vec<String>) -> Result<(), String> {
    match x {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if path.as_str().is_empty() && k == "metadata" {
                    continue;
                }
                let Some(cs) = s.field(k) else { continue };
                let child = path.child(k);
                if cs.embedded_resource {
                    coerce_meta(v, &child, unknown)?;
                }
                coerce_children(v, cs, &child, unknown)?;
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.items.as_deref() {
                for (i, v) in items.iter_mut().enumerate() {
                    let child = path.index(i);
                    if is.embedded_resource {
                        coerce_meta(v, &child, unknown)?;
                    }
                    coerce_children(v, is, &child, unknown)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Validates every embedded resource below the root.
pub(crate) fn validate_embedded(x: &Value, s: &Structural, path: &Path, errs: &mut ErrorList) {
    match x {
        Value::Object(map) => {
            if s.embedded_resource && !path.as_str().is_empty() {
                validate_embedded_resource(map, path, errs);
            }
            for (k, v) in map {
                if s.embedded_resource && k == "metadata" {
                    continue;
                }
                if let Some(cs) = s.field(k) {
                    validate_embedded(v, cs, &path.child(k), errs);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.items.as_deref() {
                for (i, v) in items.iter().enumerate() {
                    validate_embedded(v, is, &path.index(i), errs);
                }
            }
        }
        _ => {}
    }
}

fn validate_embedded_resource(map: &serde_json::Map<String, Value>, path: &Path, errs: &mut ErrorList) {
    // apiVersion and kind are required, metadata is not.
    for key in ["apiVersion", "kind"] {
        if !map.contains_key(key) {
            errs.push(FieldError::required(&path.child(key), "must not be empty"));
        }
    }
    if let Some(v) = map.get("apiVersion") {
        let p = path.child("apiVersion");
        match v.as_str() {
            None => errs.push(FieldError::invalid(&p, v, "must be a string")),
            Some("") => errs.push(FieldError::invalid(&p, "", "must not be empty")),
            Some(av) if av.matches('/').count() > 1 => {
                errs.push(FieldError::invalid(&p, av, format!("unexpected GroupVersion string: {av}")))
            }
            Some(_) => {}
        }
    }
    if let Some(v) = map.get("kind") {
        let p = path.child("kind");
        match v.as_str() {
            None => errs.push(FieldError::invalid(&p, v, "must be a string")),
            Some("") => errs.push(FieldError::invalid(&p, "", "must not be empty")),
            Some(kind) => {
                let msgs = validation::dns1035_label(&kind.to_lowercase());
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &p,
                        kind,
                        format!("may have mixed case, but should otherwise match: {}", msgs.join(",")),
                    ));
                }
            }
        }
    }
    if let Some(meta) = map.get("metadata").filter(|m| !m.is_null()) {
        let p = path.child("metadata");
        let Some(m) = meta.as_object() else {
            errs.push(FieldError::invalid(&p, meta, "must be an object"));
            return;
        };
        // Upstream validates an embedded object's metadata as if it were named, when it is not.
        let mut m = m.clone();
        if m.get("name").and_then(Value::as_str).unwrap_or_default().is_empty() {
            m.insert("name".into(), Value::String("fakename".into()));
        }
        let wrapped = serde_json::json!({ "metadata": m });
        errs.extend(validation::validate_object_meta(&wrapped, NameRule::PathSegment, &p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Structural {
        Structural::from_value(&json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                         "x-kubernetes-preserve-unknown-fields": true},
        }}}}))
    }

    #[test]
    fn coerces_metadata_and_reports_unknown_fields() {
        let mut obj = json!({
            "metadata": {"name": "a", "bogus": 1, "labels": {"x": "y"}},
            "spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "nope": true}}},
        });
        let mut unknown = Vec::new();
        coerce(&mut obj, &schema(), &mut unknown).unwrap();
        unknown.sort();
        assert_eq!(unknown, ["metadata.bogus", "spec.template.metadata.nope"]);
        assert_eq!(obj["metadata"], json!({"labels": {"x": "y"}, "name": "a"}));
        let mut bad = json!({"metadata": {"labels": 5}});
        assert!(coerce(&mut bad, &schema(), &mut unknown).is_err());
    }

    #[test]
    fn embedded_resources_need_type_meta() {
        let s = schema();
        let mut errs = ErrorList::new();
        let obj = json!({"spec": {"template": {"kind": "Bad_Kind", "metadata": {"labels": {"-x": "y"}}}}});
        validate_embedded(&obj, &s, &Path::root(), &mut errs);
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(msgs[0], "spec.template.apiVersion: Required value: must not be empty");
        assert!(
            msgs[1].starts_with("spec.template.kind: Invalid value: \"Bad_Kind\": may have mixed case"),
            "{msgs:?}"
        );
        assert!(msgs[2].starts_with("spec.template.metadata.labels: Invalid value: \"-x\""), "{msgs:?}");
    }
}
