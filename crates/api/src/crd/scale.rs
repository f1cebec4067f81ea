//! The `scale` subresource of custom resources: reading and writing replicas at the CRD's
//! `specReplicasPath` / `statusReplicasPath` / `labelSelectorPath` (upstream's
//! `registry/customresource` `scaleFromCustomResource` / `scaleUpdatedObjectInfo`), and the
//! checks the custom resource strategy makes on those fields.

use serde_json::{Map, Value, json};

use super::structural::str_of;
use crate::field::{ErrorList, FieldError, Path};

/// The scale paths of one CRD version (as written: `.spec.replicas`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// Why a scale could not be read or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScaleError {
    /// A field on the path has the wrong JSON type (upstream's unstructured accessor error,
    /// e.g. `.spec.replicas accessor error: three is of the type string, expected int64`).
    #[error("{0}")]
    Accessor(String),
    /// The object is not a JSON object.
    #[error("object is not a JSON object")]
    NotAnObject,
}

/// The scale subresource of `version` of `crd`, if it has one.
pub fn scale_paths(crd: &Value, version: &str) -> Option<ScalePaths> {
    let scale = super::subresources_for(crd, version)?.get("scale").filter(|s| s.is_object())?;
    let selector = str_of(scale, "labelSelectorPath");
    Some(ScalePaths {
        spec_replicas: str_of(scale, "specReplicasPath").to_string(),
        status_replicas: str_of(scale, "statusReplicasPath").to_string(),
        label_selector: (!selector.is_empty()).then(|| selector.to_string()),
    })
}

fn fields(path: &str) -> Vec<&str> {
    path.trim_start_matches('.').split('.').collect()
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn go_print(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// Upstream's `unstructured.NestedFieldNoCopy` + type check.
fn nested<'a>(obj: &'a Value, path: &str, want: &str) -> Result<Option<&'a Value>, ScaleError> {
    let fs = fields(path);
    let json_path = format!(".{}", fs.join("."));
    let mut cur = obj;
    for f in &fs {
        match cur {
            Value::Object(m) => match m.get(*f) {
                Some(v) => cur = v,
                None => return Ok(None),
            },
            other => {
                return Err(ScaleError::Accessor(format!(
                    "{json_path} accessor error: {} is of the type {}, expected map[string]interface{{}}",
                    go_print(other),
                    go_type(other)
                )));
            }
        }
    }
    let ok = match want {
        "int64" => cur.is_i64(),
        _ => cur.is_string(),
    };
    if !ok {
        return Err(ScaleError::Accessor(format!(
            "{json_path} accessor error: {} is of the type {}, expected {want}",
            go_print(cur),
            go_type(cur)
        )));
    }
    Ok(Some(cur))
}

/// The replicas at `path`: `Ok(None)` when absent.
pub fn replicas_at(obj: &Value, path: &str) -> Result<Option<i64>, ScaleError> {
    Ok(nested(obj, path, "int64")?.and_then(Value::as_i64))
}

/// The `autoscaling/v1` `Scale` of a custom resource (missing replicas read as 0).
pub fn scale_of(obj: &Value, paths: &ScalePaths) -> Result<Value, ScaleError> {
    if !obj.is_object() {
        return Err(ScaleError::NotAnObject);
    }
    let spec = replicas_at(obj, &paths.spec_replicas)?.unwrap_or(0);
    let status = replicas_at(obj, &paths.status_replicas)?.unwrap_or(0);
    let selector = match &paths.label_selector {
        Some(p) => nested(obj, p, "string")?.and_then(Value::as_str).unwrap_or_default().to_string(),
        None => String::new(),
    };
    let mut meta = Map::new();
    for key in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = obj.pointer(&format!("/metadata/{key}")).filter(|v| !v.is_null()) {
            meta.insert(key.into(), v.clone());
        }
    }
    let mut status_obj = json!({"replicas": spec_clamp(status)});
    if !selector.is_empty() {
        status_obj["selector"] = json!(selector);
    }
    Ok(json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": meta,
        "spec": {"replicas": spec_clamp(spec)},
        "status": status_obj,
    }))
}

/// Go converts with `int32(x)`; values out of range were refused on write, so clamping only
/// matters for objects stored before a schema change.
fn spec_clamp(v: i64) -> i64 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

/// Writes `replicas` at `path`, creating intermediate objects as needed (upstream's
/// `unstructured.SetNestedField`).
pub fn set_replicas_at(obj: &mut Value, path: &str, replicas: i64) -> Result<(), ScaleError> {
    let fs = fields(path);
    let mut cur = obj;
    for (i, f) in fs.iter().enumerate() {
        let Value::Object(m) = cur else {
            return Err(ScaleError::Accessor(format!(
                "value cannot be set because {} is not a map[string]interface{{}}",
                fs[..i].join(".")
            )));
        };
        if i + 1 == fs.len() {
            m.insert((*f).to_string(), json!(replicas));
            return Ok(());
        }
        let next = m.entry((*f).to_string()).or_insert_with(|| json!({}));
        if !next.is_object() {
            *next = json!({});
        }
        cur = next;
    }
    Ok(())
}

/// Applies a `Scale` update to a custom resource: `spec.replicas` (and, when the scale carries
/// one, `metadata.resourceVersion` for the optimistic-concurrency check).
pub fn apply_scale(obj: &mut Value, paths: &ScalePaths, scale: &Value) -> Result<(), ScaleError> {
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    set_replicas_at(obj, &paths.spec_replicas, replicas)?;
    if let Some(rv) = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|s| !s.is_empty())
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("resourceVersion".into(), json!(rv));
    }
    Ok(())
}

/// Upstream's `ValidateScaleSpec` / `ValidateScaleStatus` on a custom resource.
pub(crate) fn validate(obj: &Value, paths: &ScalePaths, spec: bool, status: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut check = |p: &str| {
        let path = Path::new(p);
        match replicas_at(obj, p) {
            Err(e) => errs.push(FieldError::invalid(&path, 0i64, e.to_string())),
            Ok(Some(n)) if n < 0 => errs.push(FieldError::invalid(&path, n, "should be a non-negative integer")),
            Ok(Some(n)) if n > i64::from(i32::MAX) => {
                errs.push(FieldError::invalid(&path, n, format!("should be less than or equal to {}", i32::MAX)))
            }
            Ok(_) => {}
        }
    };
    if spec {
        check(&paths.spec_replicas);
    }
    if status {
        check(&paths.status_replicas);
        if let Some(p) = &paths.label_selector
            && let Err(e) = nested(obj, p, "string")
        {
            errs.push(FieldError::invalid(&Path::new(p), "", e.to_string()));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> ScalePaths {
        ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".status.labelSelector".into()),
        }
    }

    #[test]
    fn reads_and_writes() {
        let mut obj = json!({"metadata": {"name": "a", "namespace": "ns", "resourceVersion": "5"},
                             "spec": {"replicas": 3}, "status": {"replicas": 2, "labelSelector": "app=a"}});
        let scale = scale_of(&obj, &paths()).unwrap();
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"], json!({"replicas": 2, "selector": "app=a"}));
        assert_eq!(scale["metadata"]["name"], "a");
        apply_scale(&mut obj, &paths(), &json!({"spec": {"replicas": 7}})).unwrap();
        assert_eq!(obj["spec"]["replicas"], 7);
        let mut empty = json!({"metadata": {"name": "b"}});
        assert_eq!(scale_of(&empty, &paths()).unwrap()["spec"]["replicas"], 0);
        set_replicas_at(&mut empty, ".spec.replicas", 1).unwrap();
        assert_eq!(empty["spec"]["replicas"], 1);
    }

    #[test]
    fn errors_like_upstream() {
        let obj = json!({"spec": {"replicas": "three"}, "status": {"replicas": -1, "labelSelector": 5}});
        assert_eq!(
            replicas_at(&obj, ".spec.replicas").unwrap_err().to_string(),
            ".spec.replicas accessor error: three is of the type string, expected int64"
        );
        let msgs: Vec<String> = validate(&obj, &paths(), true, true).iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                ".spec.replicas: Invalid value: 0: .spec.replicas accessor error: three is of the type string, expected int64",
                ".status.replicas: Invalid value: -1: should be a non-negative integer",
                ".status.labelSelector: Invalid value: \"\": .status.labelSelector accessor error: 5 is of the type int64, expected string",
            ]
        );
    }
}
