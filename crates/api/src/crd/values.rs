//! OpenAPI value validation of custom resources: what kube-openapi's schema validator checks
//! (type, nullable, format, enum, pattern, bounds, lengths, item and property counts, required,
//! `allOf`/`anyOf`/`oneOf`/`not`), with go-openapi's messages turned into field errors the way
//! `apiserver/validation.ValidateCustomResource` does, e.g.
//! `spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`.
//!
//! On update, validation *ratchets* like upstream's `CRDValidationRatcheting` (on by default
//! since 1.30): a value equal to the stored one at the correlated position is not re-validated, so
//! tightening a schema never blocks unrelated edits.

use std::collections::HashSet;

use base64::Engine as _;
use serde_json::Value;

use super::structural::{Structural, json_type_name};
use crate::field::{BadValue, ErrorList, FieldError, Path};

/// Where the value sits in the old object, for ratcheting; `None` when there is no correlated
/// old value (create, or an uncorrelatable position).
pub(crate) type Old<'a> = Option<&'a Value>;

/// Validates `v` against `s`; errors are appended to `errs`.
pub(crate) fn validate(v: &Value, s: &Structural, path: &Path, old: Old<'_>, errs: &mut ErrorList) {
    if old.is_some_and(|o| o == v) {
        return;
    }
    if v.is_null() {
        if !s.nullable && !s.type_.is_empty() {
            errs.push(type_error(path, &s.type_, "null"));
        }
        return;
    }
    let name = path.as_str();
    if !s.type_.is_empty() && !type_matches(&s.type_, v) {
        errs.push(type_error(path, &s.type_, json_type_name(v)));
        // The other keywords would only repeat the problem in other words.
        return;
    }
    check_format(v, s, path, errs);
    check_number(v, s, path, errs);
    check_string(v, s, path, errs);
    check_enum(v, s, path, errs);
    check_junctors(v, s, path, errs);
    match v {
        Value::Object(map) => {
            for req in &s.vv.required {
                if !map.contains_key(req) {
                    errs.push(FieldError::required(&path.child(req), ""));
                }
            }
            let n = map.len() as i64;
            if let Some(max) = s.vv.max_properties
                && n > max
            {
                errs.push(FieldError::too_many(path, map.len(), max.max(0) as usize));
            }
            if let Some(min) = s.vv.min_properties
                && n < min
            {
                errs.push(FieldError::invalid(
                    path,
                    n,
                    format!("{name} in body should have at least {min} properties"),
                ));
            }
            let old_map = old.and_then(Value::as_object);
            for (k, child) in map {
                let Some(cs) = s.field(k) else { continue };
                let old_child = if correlatable_map(s) { old_map.and_then(|m| m.get(k)) } else { None };
                validate(child, cs, &path.child(k), old_child, errs);
            }
        }
        Value::Array(items) => {
            let n = items.len() as i64;
            if let Some(max) = s.vv.max_items
                && n > max
            {
                errs.push(FieldError::too_many(path, items.len(), max.max(0) as usize));
            }
            if let Some(min) = s.vv.min_items
                && n < min
            {
                errs.push(FieldError::invalid(path, n, format!("{name} in body should have at least {min} items")));
            }
            if s.vv.unique_items && has_duplicates(items) {
                errs.push(FieldError::invalid(path, "", format!("{name} in body shouldn't contain duplicates")));
            }
            if let Some(is) = s.items.as_deref() {
                for (i, item) in items.iter().enumerate() {
                    let old_item = old.and_then(|o| correlate_item(s, item, o));
                    validate(item, is, &path.index(i), old_item, errs);
                }
            }
        }
        _ => {}
    }
}

/// Whether children of an object at `s` correlate with the old object's by key (everything but
/// `x-kubernetes-map-type: atomic`).
pub(crate) fn correlatable_map(s: &Structural) -> bool {
    s.map_type.as_deref() != Some("atomic")
}

/// The item of the old list that `item` correlates with: by key for `map` lists, by value for
/// `set` lists; atomic lists do not correlate.
pub(crate) fn correlate_item<'a>(s: &Structural, item: &Value, old: &'a Value) -> Option<&'a Value> {
    let old_items = old.as_array()?;
    match s.list_type.as_deref() {
        Some("map") => {
            let key = |v: &Value| -> Option<Vec<Value>> {
                let obj = v.as_object()?;
                Some(s.list_map_keys.iter().map(|k| obj.get(k).cloned().unwrap_or(Value::Null)).collect())
            };
            let want = key(item)?;
            old_items.iter().find(|o| key(o).as_ref() == Some(&want))
        }
        Some("set") => old_items.iter().find(|o| *o == item),
        _ => None,
    }
}

fn type_error(path: &Path, expected: &str, actual: &str) -> FieldError {
    let mut e = FieldError::invalid(path, actual, format!("{} in body must be of type {expected}: \"{actual}\"", path));
    e.kind = crate::field::ErrorType::TypeInvalid;
    e
}

fn type_matches(t: &str, v: &Value) -> bool {
    match (t, v) {
        ("object", Value::Object(_)) | ("array", Value::Array(_)) | ("string", Value::String(_)) => true,
        ("boolean", Value::Bool(_)) | ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(is_json_integer),
        _ => false,
    }
}

/// go-openapi's `IsFloat64AJSONInteger`: a float that is a whole number within ±2^53.
fn is_json_integer(f: f64) -> bool {
    f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0
}

fn check_number(v: &Value, s: &Structural, path: &Path, errs: &mut ErrorList) {
    let Some(x) = v.as_f64().filter(|_| v.is_number()) else { return };
    let name = path.as_str();
    let vv = &s.vv;
    if let Some(m) = vv.multiple_of
        && m > 0.0
    {
        let q = x / m;
        if q.fract() != 0.0 || !q.is_finite() {
            errs.push(FieldError::invalid(path, v, format!("{name} in body should be a multiple of {}", go_float(m))));
        }
    }
    if let Some(max) = vv.maximum {
        if vv.exclusive_maximum && x >= max {
            errs.push(FieldError::invalid(path, v, format!("{name} in body should be less than {}", go_float(max))));
        } else if !vv.exclusive_maximum && x > max {
            errs.push(FieldError::invalid(
                path,
                v,
                format!("{name} in body should be less than or equal to {}", go_float(max)),
            ));
        }
    }
    if let Some(min) = vv.minimum {
        if vv.exclusive_minimum && x <= min {
            errs.push(FieldError::invalid(path, v, format!("{name} in body should be greater than {}", go_float(min))));
        } else if !vv.exclusive_minimum && x < min {
            errs.push(FieldError::invalid(
                path,
                v,
                format!("{name} in body should be greater than or equal to {}", go_float(min)),
            ));
        }
    }
}

fn check_string(v: &Value, s: &Structural, path: &Path, errs: &mut ErrorList) {
    let Value::String(text) = v else { return };
    let name = path.as_str();
    // go-openapi counts characters (runes), not bytes, although upstream's message says bytes.
    let len = text.chars().count() as i64;
    if let Some(max) = s.vv.max_length
        && len > max
    {
        errs.push(FieldError::too_long(path, max.max(0) as usize));
    }
    if let Some(min) = s.vv.min_length
        && len < min
    {
        errs.push(FieldError::invalid(path, text, format!("{name} in body should be at least {min} chars long")));
    }
    if let Some((src, re)) = &s.vv.pattern
        && !re.as_ref().is_some_and(|re| re.is_match(text))
    {
        errs.push(FieldError::invalid(path, text, format!("{name} in body should match '{src}'")));
    }
}

fn check_enum(v: &Value, s: &Structural, path: &Path, errs: &mut ErrorList) {
    let Some(allowed) = &s.vv.enum_ else { return };
    if allowed.iter().any(|a| json_equal(a, v)) {
        return;
    }
    let supported: Vec<String> = allowed.iter().map(go_sprint).collect();
    errs.push(FieldError::not_supported(path, v, &supported));
}

/// JSON equality where `1` and `1.0` are the same number, as Go compares decoded values.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn check_junctors(v: &Value, s: &Structural, path: &Path, errs: &mut ErrorList) {
    let vv = &s.vv;
    let name = path.as_str();
    let run = |branch: &Structural| {
        let mut e = ErrorList::new();
        validate(v, branch, path, None, &mut e);
        e
    };
    if !vv.all_of.is_empty() {
        let results: Vec<ErrorList> = vv.all_of.iter().map(run).collect();
        let valid = results.iter().filter(|r| r.is_empty()).count();
        if valid != results.len() {
            results.into_iter().for_each(|r| errs.extend(r));
            let extra = if valid == 0 { ". None validated" } else { "" };
            errs.push(FieldError::invalid(
                path,
                "",
                format!("\"{name}\" must validate all the schemas (allOf){extra}"),
            ));
        }
    }
    if !vv.any_of.is_empty() {
        let results: Vec<ErrorList> = vv.any_of.iter().map(run).collect();
        if !results.iter().any(Vec::is_empty) {
            errs.push(FieldError::invalid(path, "", format!("\"{name}\" must validate at least one schema (anyOf)")));
            if let Some(best) = results.into_iter().min_by_key(Vec::len) {
                errs.extend(best);
            }
        }
    }
    if !vv.one_of.is_empty() {
        let results: Vec<ErrorList> = vv.one_of.iter().map(run).collect();
        let valid = results.iter().filter(|r| r.is_empty()).count();
        if valid != 1 {
            let extra = if valid == 0 {
                ". Found none valid".to_string()
            } else {
                format!(". Found {valid} valid alternatives")
            };
            errs.push(FieldError::invalid(
                path,
                "",
                format!("\"{name}\" must validate one and only one schema (oneOf){extra}"),
            ));
            if valid == 0
                && let Some(best) = results.into_iter().min_by_key(Vec::len)
            {
                errs.extend(best);
            }
        }
    }
    if let Some(not) = vv.not.as_deref()
        && run(not).is_empty()
    {
        errs.push(FieldError::invalid(path, "", format!("\"{name}\" must not validate the schema (not)")));
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    let mut seen = HashSet::new();
    items.iter().any(|i| !seen.insert(i.to_string()))
}

fn check_format(v: &Value, s: &Structural, path: &Path, errs: &mut ErrorList) {
    let Value::String(text) = v else { return };
    if s.format.is_empty() || !(s.type_ == "string" || s.type_.is_empty()) {
        return;
    }
    if let Some(false) = format_ok(&s.format, text) {
        errs.push(FieldError {
            kind: crate::field::ErrorType::TypeInvalid,
            ..FieldError::invalid(
                path,
                text,
                format!("{} in body must be of type {}: {}", path, s.format, text.format()),
            )
        });
    }
}

/// Whether `text` is valid for the string format `format`; `None` for formats that are not
/// checked (number formats such as `int32`, and unknown ones, as upstream ignores them).
pub(crate) fn format_ok(format: &str, text: &str) -> Option<bool> {
    Some(match format {
        "date-time" | "datetime" => jiff::Timestamp::from_str_rfc3339(text),
        "date" => is_date(text),
        "byte" => base64::engine::general_purpose::STANDARD.decode(text).is_ok(),
        "uuid" => is_uuid(text),
        "uuid3" | "uuid4" | "uuid5" => is_uuid(text),
        "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => crate::validation::cidr(text).is_empty(),
        "mac" => is_mac(text),
        "hostname" => is_hostname(text),
        "email" => is_email(text),
        "uri" => is_uri(text),
        "duration" => is_duration(text),
        _ => return None,
    })
}

trait Rfc3339 {
    fn from_str_rfc3339(s: &str) -> bool;
}

impl Rfc3339 for jiff::Timestamp {
    fn from_str_rfc3339(s: &str) -> bool {
        // RFC 3339 requires the 'T' separator region and an offset; jiff's parser accepts those
        // (and some extensions, which is fine for a validity check).
        s.len() >= 20 && s.parse::<jiff::Timestamp>().is_ok()
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && s.parse::<jiff::civil::Date>().is_ok()
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    matches!(parts.len(), 6 | 8 | 20) && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()))
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_email(s: &str) -> bool {
    s.split_once('@').is_some_and(|(user, host)| !user.is_empty() && !host.is_empty() && !host.contains('@'))
}

fn is_uri(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, _)| {
        let b = scheme.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
    })
}

/// Go's `time.ParseDuration` shape: a sequence of decimal numbers with units.
fn is_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num_len = rest.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
        if num_len == 0 {
            return false;
        }
        rest = &rest[num_len..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"].iter().find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// A float as Go's `%v` prints it (`10`, `1.5`, `1e+06`, `1e-05`).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return "0".into();
    }
    // Go's `%v` is `%g` with the shortest digits: plain notation for exponents in [-4, 6).
    let exp = f.abs().log10().floor() as i32;
    if (-4..6).contains(&exp) {
        // Rust's shortest round-trip digits match Go's.
        return format!("{f}");
    }
    // Scientific with Go's exponent shape: at least two digits, explicit sign.
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mant, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{mant}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// A JSON value as Go's `fmt.Sprint` prints the decoded value (strings bare, whole numbers
/// without a fraction).
pub(crate) fn go_sprint(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or_default()),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: Value, v: Value) -> Vec<String> {
        let s = Structural::from_value(&schema);
        let mut errs = ErrorList::new();
        validate(&v, &s, &Path::new("spec"), None, &mut errs);
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn upstream_messages() {
        let s = json!({"type": "object", "required": ["image"], "properties": {
            "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5, "minLength": 2},
            "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1},
            "tags": {"type": "array", "maxItems": 1, "minItems": 1, "items": {"type": "string"}},
            "when": {"type": "string", "format": "date-time"},
            "image": {"type": "string"},
        }});
        assert_eq!(
            check(s.clone(), json!({"replicas": "3", "image": "x"})),
            ["spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""]
        );
        assert_eq!(check(s.clone(), json!({"replicas": 3})), ["spec.image: Required value"]);
        assert_eq!(
            check(s.clone(), json!({"image": "x", "replicas": 0, "mode": "c"})),
            [
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
                "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"",
            ]
        );
        assert_eq!(
            check(s.clone(), json!({"image": "x", "replicas": 11, "name": "ABCDEFG", "ratio": 1})),
            [
                "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
                "spec.name: Too long: may not be more than 5 bytes",
                "spec.name: Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'",
                "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1",
            ]
        );
        assert_eq!(
            check(s.clone(), json!({"image": "x", "tags": ["a", "b"], "when": "yesterday"})),
            [
                "spec.tags: Too many: 2: must have at most 1 items",
                "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"",
            ]
        );
        assert!(check(s.clone(), json!({"image": "x", "replicas": 2.0, "when": "2024-01-02T03:04:05Z"})).is_empty());
        assert_eq!(
            check(s, json!({"image": null})),
            ["spec.image: Invalid value: \"null\": spec.image in body must be of type string: \"null\""]
        );
    }

    #[test]
    fn junctors() {
        let s = json!({"type": "object", "properties": {"x": {
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}]}}});
        assert!(check(s.clone(), json!({"x": 1})).is_empty());
        assert!(check(s.clone(), json!({"x": "1%"})).is_empty());
        let errs = check(s, json!({"x": true}));
        assert_eq!(errs[0], "spec.x: Invalid value: \"\": \"spec.x\" must validate at least one schema (anyOf)");
        let s = json!({"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]});
        assert_eq!(
            check(s.clone(), json!({"a": 1, "b": 2})),
            [
                "spec: Invalid value: \"\": \"spec\" must validate one and only one schema (oneOf). Found 2 valid alternatives"
            ]
        );
        assert!(check(s, json!({"a": 1})).is_empty());
    }

    #[test]
    fn ratchets_unchanged_values() {
        let s = Structural::from_value(&json!({"type": "object", "properties": {
            "a": {"type": "string", "maxLength": 1}, "b": {"type": "string", "maxLength": 1}}}));
        let old = json!({"a": "too long", "b": "x"});
        let mut errs = ErrorList::new();
        validate(&json!({"a": "too long", "b": "y"}), &s, &Path::root(), Some(&old), &mut errs);
        assert!(errs.is_empty(), "{errs:?}");
        validate(&json!({"a": "still too long", "b": "y"}), &s, &Path::root(), Some(&old), &mut errs);
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn go_number_formatting() {
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1_000_000.0), "1e+06");
        assert_eq!(go_float(100_000.0), "100000");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_sprint(&json!(3)), "3");
    }

    #[test]
    fn formats() {
        assert_eq!(format_ok("int32", "x"), None);
        assert_eq!(format_ok("date", "2024-02-30"), Some(false));
        assert_eq!(format_ok("date", "2024-02-29"), Some(true));
        assert_eq!(format_ok("uuid", "123e4567-e89b-12d3-a456-426614174000"), Some(true));
        assert_eq!(format_ok("duration", "1h30m"), Some(true));
        assert_eq!(format_ok("duration", "1x"), Some(false));
        assert_eq!(format_ok("byte", "aGVsbG8="), Some(true));
        assert_eq!(format_ok("ipv4", "10.0.0.256"), Some(false));
    }
}
