//! Helpers shared by the per-group strategies: Kubernetes quantities, label selectors, small
//! defaulting shorthands and the Go-style value printing upstream's error messages use.
//!
//! Users read these values in `kubectl` errors (`Invalid value: map[string]string{"app":"web"}`),
//! so they are printed the way Go's `%#v` prints the upstream types.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::field::{BadValue, ErrorList, FieldError, Path, go_quote};
use crate::validation;

pub(crate) use crate::quantity::Qty;

/// A bad value that is already formatted (Go `%#v` renderings of structs, maps, lists).
pub(crate) struct Raw(pub(crate) String);

impl BadValue for Raw {
    fn format(&self) -> String {
        self.0.clone()
    }
}

/// `map[string]string{"a":"b", "c":"d"}`, or `map[string]string(nil)` for a missing map.
pub(crate) fn go_map(map: Option<&BTreeMap<String, String>>) -> String {
    match map {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v))).collect();
            format!("map[string]string{{{}}}", parts.join(", "))
        }
    }
}

/// `[]string{"a", "b"}`, or `[]string(nil)`.
pub(crate) fn go_strings(list: Option<&[String]>) -> String {
    match list {
        None => "[]string(nil)".to_string(),
        Some(l) => {
            let parts: Vec<String> = l.iter().map(|s| go_quote(s)).collect();
            format!("[]string{{{}}}", parts.join(", "))
        }
    }
}

/// A label selector as Go prints `*metav1.LabelSelector` through `%#v` after dereferencing.
pub(crate) fn go_selector(sel: &LabelSelector) -> String {
    let exprs = match &sel.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let parts: Vec<String> = list
                .iter()
                .map(|r| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(&r.key),
                        go_quote(&r.operator),
                        go_strings(r.values.as_deref())
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", parts.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}", go_map(sel.match_labels.as_ref()), exprs)
}

/// `intstr.IntOrString{Type:0, IntVal:5, StrVal:""}` (Go prints the struct, not its `String()`).
pub(crate) fn go_int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrString::String(s) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}", go_quote(s)),
    }
}

/// Upstream's `ValidateLabels` on a typed map: qualified-name keys, label values.
pub(crate) fn validate_labels(labels: &BTreeMap<String, String>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (k, v) in labels {
        errs.extend(validation::invalid_each(path, k, validation::qualified_name(k)));
        errs.extend(validation::invalid_each(path, v, validation::label_value(v)));
    }
    errs
}

/// Upstream's `ValidateAnnotations` on a typed map.
pub(crate) fn validate_annotations(annotations: &BTreeMap<String, String>, path: &Path) -> ErrorList {
    let map: serde_json::Map<String, serde_json::Value> =
        annotations.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    validation::validate_annotations(&map, path)
}

/// Upstream's `ValidateLabelSelector` (metav1 validation).
pub(crate) fn validate_label_selector(sel: &LabelSelector, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(labels) = &sel.match_labels {
        errs.extend(validate_labels(labels, &path.child("matchLabels")));
    }
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_selector_requirement(req, &path.child("matchExpressions").index(i)));
    }
    errs
}

fn validate_selector_requirement(req: &LabelSelectorRequirement, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        other => errs.push(FieldError::invalid(&path.child("operator"), other, "not a valid selector operator")),
    }
    errs.extend(validation::invalid_each(&path.child("key"), &req.key, validation::qualified_name(&req.key)));
    for (j, v) in values.iter().enumerate() {
        errs.extend(validation::invalid_each(&path.child("values").index(j), v, validation::label_value(v)));
    }
    errs
}

/// Whether the selector selects nothing-in-particular (no labels and no expressions).
pub(crate) fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty) && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// Whether `sel` selects an object with `labels` (upstream's `LabelSelectorAsSelector` +
/// `Matches`); an invalid operator matches nothing.
pub(crate) fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    let labels_ok = sel.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|r| {
        let values = r.values.as_deref().unwrap_or_default();
        let have = labels.get(&r.key);
        match r.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// A map-equality selector (Service, ReplicationController) matching `labels`.
pub(crate) fn map_selector_matches(sel: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    sel.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Set an optional field to `value` when it is unset (upstream's `if x == nil { x = &v }`).
pub(crate) fn default_to<T>(field: &mut Option<T>, value: T) {
    if field.is_none() {
        *field = Some(value);
    }
}

/// Set an optional string to `value` when it is unset or empty (Go's `if x == "" { x = v }`).
pub(crate) fn default_str(field: &mut Option<String>, value: &str) {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
}

/// `field.NotSupported` when `value` is set and not in `supported`; `field.Required` when
/// `required` and empty.
pub(crate) fn enum_value(value: Option<&str>, supported: &[&str], required: bool, path: &Path) -> ErrorList {
    match value {
        None | Some("") if required => vec![FieldError::required(path, "")],
        None | Some("") => Vec::new(),
        Some(v) if supported.contains(&v) => Vec::new(),
        Some(v) => vec![FieldError::not_supported(path, v, supported)],
    }
}

/// `IntOrString` holding an int or a percentage; upstream's `ValidatePositiveIntOrPercent`.
pub(crate) fn validate_int_or_percent(v: &IntOrString, path: &Path) -> ErrorList {
    match v {
        IntOrString::Int(i) => validation::nonnegative(i64::from(*i), path),
        IntOrString::String(s) => {
            validation::percent(s).into_iter().map(|m| FieldError::invalid(path, Raw(go_int_or_string(v)), m)).collect()
        }
    }
}

/// The integer or percentage value of an `IntOrString` (percent strings give the percentage).
pub(crate) fn int_or_percent_value(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::Int(i) => Some(i64::from(*i)),
        IntOrString::String(s) => s.strip_suffix('%').and_then(|d| d.parse().ok()),
    }
}

/// Upstream's `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(v: &IntOrString, path: &Path) -> ErrorList {
    match v {
        IntOrString::String(s) if s.ends_with('%') && int_or_percent_value(v).is_some_and(|p| p > 100) => {
            vec![FieldError::invalid(path, Raw(go_int_or_string(v)), "must not be greater than 100%")]
        }
        _ => Vec::new(),
    }
}

/// Validate and canonicalize one quantity in place, the way upstream's decoder does
/// (`0.5` becomes `500m`, `1536Mi` stays); an unparsable quantity is a field error.
pub(crate) fn canonical_quantity(q: &mut k8s_openapi::apimachinery::pkg::api::resource::Quantity) {
    if let Ok(parsed) = Qty::parse(&q.0) {
        q.0 = parsed.to_string();
    }
}

/// Parse a quantity for validation, reporting upstream's format message on failure.
pub(crate) fn parse_quantity(q: &str, path: &Path, errs: &mut ErrorList) -> Option<Qty> {
    match Qty::parse(q) {
        Ok(v) => Some(v),
        Err(msg) => {
            errs.push(FieldError::invalid(path, q, msg));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        let mut m = BTreeMap::new();
        m.insert("app".to_string(), "web".to_string());
        m.insert("tier".to_string(), "fe".to_string());
        assert_eq!(go_map(Some(&m)), r#"map[string]string{"app":"web", "tier":"fe"}"#);
        assert_eq!(go_map(None), "map[string]string(nil)");
        let sel = LabelSelector { match_labels: Some(m), match_expressions: None };
        assert_eq!(
            go_selector(&sel),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"fe"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
    }

    #[test]
    fn selectors() {
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "web".to_string());
        let sel = LabelSelector {
            match_labels: Some(labels.clone()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        assert!(selector_matches(&sel, Some(&labels)));
        labels.insert("tier".into(), "db".into());
        assert!(!selector_matches(&sel, Some(&labels)));
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "In".into(),
                values: None,
            }]),
        };
        let errs = validate_label_selector(&bad, &Path::new("spec").child("selector"));
        assert_eq!(
            errs[0].to_string(),
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
    }
}
