//! Shared pieces of the printers: reading fields out of stored JSON with upstream's zero
//! values, and the formatting helpers upstream's printers share (label sets and selectors,
//! container lists, "a,b,c + 2 more...", access modes, quantities).

use jiff::Timestamp;
use serde_json::Value;

use super::{duration, quantity};

/// The value at `path`, if every step exists.
pub(super) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

/// The string at `path`, if present.
pub(super) fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

/// The string at `path`, or Go's zero value `""`.
pub(super) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    opt_str(v, path).unwrap_or("")
}

/// The integer at `path`, if present.
pub(super) fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    at(v, path).and_then(Value::as_i64)
}

/// The integer at `path`, or 0.
pub(super) fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

/// The boolean at `path`, if present.
pub(super) fn opt_bool(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

/// The array at `path`, or an empty one.
pub(super) fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The number of entries of the map at `path` (0 when absent).
pub(super) fn map_len(v: &Value, path: &[&str]) -> usize {
    at(v, path).and_then(Value::as_object).map_or(0, serde_json::Map::len)
}

/// The timestamp at `path`, if present and valid.
pub(super) fn timestamp(v: &Value, path: &[&str]) -> Option<Timestamp> {
    opt_str(v, path).and_then(|s| s.parse::<Timestamp>().ok()).filter(|ts| !duration::is_go_zero(*ts))
}

/// A string cell.
pub(super) fn cell(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// The object's name cell.
pub(super) fn name(obj: &Value) -> Value {
    cell(str_at(obj, &["metadata", "name"]))
}

/// The object's age cell (`translateTimestampSince(creationTimestamp)`).
pub(super) fn age(obj: &Value, now: Timestamp) -> Value {
    cell(since(obj, &["metadata", "creationTimestamp"], now))
}

/// `translateTimestampSince` for the timestamp at `path`.
pub(super) fn since(v: &Value, path: &[&str], now: Timestamp) -> String {
    duration::translate_timestamp_since(opt_str(v, path), now)
}

/// Whether `metadata.deletionTimestamp` is set.
pub(super) fn deleting(obj: &Value) -> bool {
    at(obj, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null())
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, or `<none>`.
pub(super) fn format_labels(map: Option<&Value>) -> String {
    let mut pairs: Vec<(&str, &str)> = map
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort_unstable();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// `metav1.FormatLabelSelector`: the selector in label-query syntax, `<none>` when it selects
/// everything or nothing, `<error>` when it is malformed.
pub(super) fn format_label_selector(selector: Option<&Value>) -> String {
    match selector_string(selector) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    }
}

/// `LabelSelectorAsSelector(sel).String()`: requirements sorted by key, `k=v`, `k in (a,b)`,
/// `k notin (a,b)`, `k`, `!k`; empty for a nil or empty selector; `Err` for an invalid operator.
pub(super) fn selector_string(selector: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = selector.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            requirements.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for expr in list(sel, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]);
        let mut values: Vec<&str> = list(expr, &["values"]).iter().filter_map(Value::as_str).collect();
        values.sort_unstable();
        let text = match str_at(expr, &["operator"]) {
            "In" | "NotIn" if values.is_empty() => return Err(()),
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(()),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(()),
        };
        requirements.push((key.to_string(), text));
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements.into_iter().map(|(_, text)| text).collect::<Vec<_>>().join(","))
}

/// The Go `String()` of a `*metav1.LabelSelector` (its generated debug form), which upstream
/// prints for a ValidatingAdmissionPolicyBinding's `paramRef.selector`.
pub(super) fn selector_go_string(sel: &Value) -> String {
    let mut keys: Vec<(&String, &Value)> =
        sel.get("matchLabels").and_then(Value::as_object).map(|m| m.iter().collect()).unwrap_or_default();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    let labels: String = keys.iter().map(|(k, v)| format!("{k}: {},", v.as_str().unwrap_or(""))).collect();
    let exprs: String = list(sel, &["matchExpressions"])
        .iter()
        .map(|e| {
            let values: Vec<&str> = list(e, &["values"]).iter().filter_map(Value::as_str).collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                str_at(e, &["key"]),
                str_at(e, &["operator"]),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

/// `layoutContainerCells`: container names and images, each comma-joined.
pub(super) fn containers(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (cell(names.join(",")), cell(images.join(",")))
}

/// `listWithMoreString`: the first `max` items and "+ N more...", or `<unset>` when empty.
pub(super) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count.saturating_sub(max));
    }
    if joined.is_empty() { "<unset>".to_string() } else { joined }
}

/// `Quantity.String()` of an optional quantity: canonical form, `0` when unset.
pub(super) fn quantity(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "0".to_string(),
        Some(q) => quantity_text(q),
    }
}

/// `(*Quantity).String()` of a pointer field: canonical form, `<nil>` when unset.
pub(super) fn quantity_ptr(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<nil>".to_string(),
        Some(q) => quantity_text(q),
    }
}

fn quantity_text(q: &Value) -> String {
    let raw = match q {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    quantity::canonical_quantity(&raw).unwrap_or(raw)
}

/// `GetAccessModesAsString`: `RWO`, `ROX`, `RWX`, `RWOP` in that order, deduplicated.
pub(super) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")]
        .iter()
        .filter(|(mode, _)| has(mode))
        .map(|(_, short)| *short)
        .collect::<Vec<_>>()
        .join(",")
}

/// `net.JoinHostPort`: brackets around hosts containing a colon (IPv6).
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}
