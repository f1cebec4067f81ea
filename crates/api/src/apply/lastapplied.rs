//! The `kubectl.kubernetes.io/last-applied-configuration` annotation and server-side apply by
//! `kubectl` (upstream `lastappliedmanager.go` and `lastappliedupdater.go`):
//!
//! - an object managed by client-side apply carries the annotation; when `kubectl` first applies
//!   it server-side, conflicts on fields whose live value still equals the annotation's are not
//!   conflicts (kubectl owned them, client-side): the apply goes ahead as if forced;
//! - while the annotation exists, every server-side apply by `kubectl` rewrites it to the
//!   applied configuration, so that a later client-side apply still computes the right patch.

use serde_json::{Map, Value};

use super::types::Ty;
use super::walk;
use crate::fieldpath::{FieldSet, go_json};

/// The client-side apply annotation.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The only manager whose applies consult and maintain the annotation.
pub(super) const KUBECTL: &str = "kubectl";
/// Upstream's limit on the total size of an object's annotations (keys plus values).
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn annotations(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("annotations")?.as_object()
}

fn last_applied(obj: &Value) -> Option<&str> {
    annotations(obj)?.get(LAST_APPLIED_ANNOTATION)?.as_str().filter(|s| !s.is_empty())
}

/// The fields whose conflicts client-side apply excuses: those the annotation sets and the live
/// object still holds unchanged. `None` when there is no usable annotation.
pub(super) fn allowed_conflicts(live: &Value, api_version: &str, ty: Ty<'_>) -> Option<FieldSet> {
    let text = last_applied(live)?;
    let applied: Value = serde_json::from_str(text).ok()?;
    if !applied.is_object() || applied.get("apiVersion").and_then(Value::as_str) != Some(api_version) {
        return None;
    }
    let set = walk::to_set(&applied, ty);
    let diff = walk::compare(&applied, live, ty, true);
    Some(set.difference(&diff.modified).difference(&diff.added).difference(&diff.removed))
}

/// After a successful apply by `kubectl`: if `result` has the annotation, set it to `config`
/// (without the annotation itself), written as upstream's JSON encoder writes it.
pub(super) fn update_annotation(result: &mut Value, config: &Value) {
    if last_applied(result).is_none() {
        return;
    }
    let mut recorded = config.clone();
    if let Some(Value::Object(a)) = recorded.get_mut("metadata").and_then(|m| m.get_mut("annotations")) {
        a.remove(LAST_APPLIED_ANNOTATION);
    }
    let mut text = go_json(&recorded);
    text.push('\n');
    let Some(Value::Object(a)) = result.get_mut("metadata").and_then(|m| m.get_mut("annotations")) else {
        return;
    };
    a.insert(LAST_APPLIED_ANNOTATION.to_string(), Value::from(text));
    let size: usize = a.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
    if size > TOTAL_ANNOTATION_SIZE_LIMIT {
        // Upstream drops the annotation rather than fail the request.
        a.remove(LAST_APPLIED_ANNOTATION);
    }
}
