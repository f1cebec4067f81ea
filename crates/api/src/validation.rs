//! Generic validation shared by every kind: names, labels, annotations, object metadata.
//! Messages follow upstream's `k8s.io/apimachinery/pkg/util/validation` word for word, because
//! users read them in `kubectl` output and scripts grep for them.

use serde_json::Value;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::NameRule;

pub const DNS1123_LABEL_MAX: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Upstream's `TotalAnnotationSizeLimitB`.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
const LABEL_VALUE_MAX: usize = 63;
const QUALIFIED_NAME_MAX: usize = 63;

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
/// Returns upstream's messages (empty when valid).
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(format!("must be no more than {DNS1123_LABEL_MAX} characters"));
    }
    if !is_dns1123_label_shape(value) {
        errs.push(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start \
             and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                .to_string(),
        );
    }
    errs
}

fn is_dns1123_label_shape(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

/// RFC 1123 subdomain: labels joined by '.', at most 253 characters.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(format!("must be no more than {DNS1123_SUBDOMAIN_MAX} characters"));
    }
    if value.is_empty() || !value.split('.').all(is_dns1123_label_shape) {
        errs.push(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must \
             start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
                .to_string(),
        );
    }
    errs
}

/// RFC 1035 label: like RFC 1123 but must start with a letter (Service names).
pub fn dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(format!("must be no more than {DNS1123_LABEL_MAX} characters"));
    }
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-');
    if !ok {
        errs.push(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic \
             character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for \
             validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                .to_string(),
        );
    }
    errs
}

/// Names that must be usable as one URL path segment (RBAC objects).
pub fn path_segment_name(value: &str) -> Vec<String> {
    if value == "." || value == ".." {
        return vec![format!("may not be '{value}'")];
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if value.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// A qualified name (`prefix/name` where prefix is a DNS subdomain): label and annotation keys.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match value.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, value),
    };
    if value.matches('/').count() > 1 {
        return vec![
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with \
             an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
             '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. \
             'example.com/MyName')"
                .to_string(),
        ];
    }
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_string());
        } else {
            for e in dns1123_subdomain(p) {
                errs.push(format!("prefix part {e}"));
            }
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part must be no more than {QUALIFIED_NAME_MAX} characters"));
    }
    if !name.is_empty() && !is_qualified_name_part(name) {
        errs.push(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is \
             '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
                .to_string(),
        );
    }
    errs
}

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
}

/// A label value: empty, or at most 63 characters shaped like a qualified name part.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(format!("must be no more than {LABEL_VALUE_MAX} characters"));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must \
             start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used \
             for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
                .to_string(),
        );
    }
    errs
}

/// Validate a name by `rule`, returning upstream's messages.
pub fn name_by_rule(rule: NameRule, name: &str) -> Vec<String> {
    match rule {
        NameRule::Subdomain => dns1123_subdomain(name),
        NameRule::Label => dns1123_label(name),
        NameRule::Rfc1035Label => dns1035_label(name),
        NameRule::PathSegment => path_segment_name(name),
    }
}

/// Labels: keys are qualified names, values label values.
pub fn validate_labels(labels: &serde_json::Map<String, Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (k, v) in labels {
        for msg in qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        let v = v.as_str().unwrap_or_default();
        // Upstream reports bad values at the map's path, not at the key.
        for msg in label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
    errs
}

/// Annotations: qualified-name keys, and at most 256 KiB of keys and values together.
pub fn validate_annotations(annotations: &serde_json::Map<String, Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        for msg in qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// Generic `ObjectMeta` validation (upstream's `ValidateObjectMeta`): name or generateName,
/// labels, annotations, finalizers, owner references.
pub fn validate_object_meta(object: &Value, rule: NameRule, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let meta = object.get("metadata").and_then(Value::as_object);
    let Some(meta) = meta else {
        errs.push(FieldError::required(path, "metadata is required"));
        return errs;
    };
    let name = meta.get("name").and_then(Value::as_str).unwrap_or_default();
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), "name or generateName is required"));
    } else {
        for msg in name_by_rule(rule, name) {
            errs.push(FieldError::invalid(&path.child("name"), name, msg));
        }
    }
    if let Some(Value::Object(labels)) = meta.get("labels") {
        errs.extend(validate_labels(labels, &path.child("labels")));
    }
    if let Some(Value::Object(ann)) = meta.get("annotations") {
        errs.extend(validate_annotations(ann, &path.child("annotations")));
    }
    if let Some(Value::Array(finalizers)) = meta.get("finalizers") {
        let fpath = path.child("finalizers");
        for (i, f) in finalizers.iter().enumerate() {
            let f = f.as_str().unwrap_or_default();
            for msg in qualified_name(f) {
                errs.push(FieldError::invalid(&fpath.index(i), f, msg));
            }
        }
    }
    if let Some(Value::Array(owners)) = meta.get("ownerReferences") {
        let opath = path.child("ownerReferences");
        let mut controllers = 0;
        for (i, o) in owners.iter().enumerate() {
            for field in ["apiVersion", "kind", "name", "uid"] {
                if o.get(field).and_then(Value::as_str).unwrap_or_default().is_empty() {
                    errs.push(FieldError::invalid(
                        &opath.index(i).child(field),
                        "",
                        format!("{field} must not be empty"),
                    ));
                }
            }
            if o.get("controller").and_then(Value::as_bool) == Some(true) {
                controllers += 1;
            }
        }
        if controllers > 1 {
            errs.push(FieldError::invalid(&opath, "", "Only one reference can have Controller set to true"));
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Value checks used by the per-kind strategies. Each returns upstream's messages
// (`k8s.io/apimachinery/pkg/util/validation`), empty when the value is fine.
// ---------------------------------------------------------------------------------------------

/// Upstream's `IsNegativeErrorMsg`.
pub const NEGATIVE_MSG: &str = "must be greater than or equal to 0";
/// Upstream's `FieldImmutableErrorMsg`.
pub const IMMUTABLE_MSG: &str = "field is immutable";

/// Upstream's `InclusiveRangeError`.
pub fn inclusive_range_msg(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// `IsValidPortNum`: 1..=65535.
pub fn port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) { Vec::new() } else { vec![inclusive_range_msg(1, 65535)] }
}

/// `IsValidPortName`: an IANA_SVC_NAME (at most 15 characters, a-z, 0-9 and '-', at least one
/// letter, no "--", no leading or trailing '-').
pub fn port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push("must be no more than 15 characters".to_string());
    }
    if port.is_empty() || !port.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// `IsRelaxedEnvVarName` (the `RelaxedEnvironmentVariableValidation` gate is on by default in
/// 1.33): printable ASCII except '='.
pub fn env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push("environment variable name must be non-empty".to_string());
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .to_string(),
        );
    }
    errs
}

/// `IsConfigMapKey`: keys of ConfigMap and Secret data.
pub fn config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(format!("must be no more than {DNS1123_SUBDOMAIN_MAX} characters"));
    }
    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.') {
        errs.push(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or \
             'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
                .to_string(),
        );
    }
    if value == "." {
        errs.push("must not be '.'".to_string());
    } else if value == ".." {
        errs.push("must not be '..'".to_string());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// Parse an IP the way Go's `netutils.ParseIPSloppy` does (IPv4 octets may carry leading zeros).
pub fn parse_ip(value: &str) -> Option<std::net::IpAddr> {
    if value.contains(':') {
        return value.parse::<std::net::Ipv6Addr>().ok().map(std::net::IpAddr::V6);
    }
    let parts: Vec<&str> = value.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        octets[i] = p.parse::<u8>().ok()?;
    }
    Some(std::net::IpAddr::V4(std::net::Ipv4Addr::from(octets)))
}

/// `IsValidIP`.
pub fn ip(value: &str) -> Vec<String> {
    match parse_ip(value) {
        Some(_) => Vec::new(),
        None => vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()],
    }
}

/// `IsValidCIDR`.
pub fn cidr(value: &str) -> Vec<String> {
    let ok = value.split_once('/').is_some_and(|(addr, bits)| match (parse_ip(addr), bits.parse::<u8>()) {
        (Some(std::net::IpAddr::V4(_)), Ok(b)) => b <= 32 && !bits.starts_with('+'),
        (Some(std::net::IpAddr::V6(_)), Ok(b)) => b <= 128 && !bits.starts_with('+'),
        _ => false,
    });
    if ok { Vec::new() } else { vec!["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)".to_string()] }
}

/// `IsValidPercent`: digits followed by '%'.
pub fn percent(value: &str) -> Vec<String> {
    let ok = value.strip_suffix('%').is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()));
    if ok {
        Vec::new()
    } else {
        vec![
            "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex \
             used for validation is '[0-9]+%')"
                .to_string(),
        ]
    }
}

/// `IsHTTPHeaderName`.
pub fn http_header_name(value: &str) -> Vec<String> {
    if !value.is_empty() && value.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        Vec::new()
    } else {
        vec![
            "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used \
             for validation is '[-A-Za-z0-9]+')"
                .to_string(),
        ]
    }
}

/// `IsValidUserID` / `IsValidGroupID`: 0..=2147483647.
pub fn user_or_group_id(id: i64) -> Vec<String> {
    if (0..=i64::from(i32::MAX)).contains(&id) { Vec::new() } else { vec![inclusive_range_msg(0, i64::from(i32::MAX))] }
}

/// Field errors for `value` at `path` from one of the message-returning checks above.
pub fn invalid_each(path: &Path, value: &str, msgs: Vec<String>) -> ErrorList {
    msgs.into_iter().map(|m| FieldError::invalid(path, value, m)).collect()
}

/// `ValidateNonnegativeField`.
pub fn nonnegative(value: i64, path: &Path) -> ErrorList {
    if value < 0 { vec![FieldError::invalid(path, value, NEGATIVE_MSG)] } else { Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_subdomain("my-app.example").is_empty());
        assert!(!dns1123_subdomain("My_App").is_empty());
        assert!(!dns1123_subdomain(&"a".repeat(254)).is_empty());
        assert!(dns1123_label("web-1").is_empty());
        assert!(!dns1123_label("web.1").is_empty());
        assert!(!dns1035_label("1web").is_empty());
        assert!(path_segment_name("system:admin").is_empty());
        assert!(!path_segment_name("a/b").is_empty());
    }

    #[test]
    fn labels_and_keys() {
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(qualified_name("app").is_empty());
        assert!(!qualified_name("-app").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert!(label_value("").is_empty());
        assert!(label_value("v1.2_3").is_empty());
        assert!(!label_value("has space").is_empty());
    }

    #[test]
    fn value_checks() {
        assert!(port_num(80).is_empty());
        assert_eq!(port_num(0), ["must be between 1 and 65535, inclusive"]);
        assert!(port_name("http-alt").is_empty());
        assert!(!port_name("8080").is_empty());
        assert!(!port_name("a--b").is_empty());
        assert!(!port_name("abcdefghijklmnop").is_empty());
        assert!(env_var_name("1FOO_bar.x").is_empty());
        assert!(!env_var_name("A=B").is_empty());
        assert!(config_map_key("game.properties").is_empty());
        assert!(!config_map_key("a/b").is_empty());
        assert!(!config_map_key("..a").is_empty());
        assert!(ip("10.0.0.1").is_empty());
        assert!(ip("010.0.0.1").is_empty());
        assert!(ip("::1").is_empty());
        assert!(!ip("10.0.0").is_empty());
        assert!(cidr("10.0.0.0/8").is_empty());
        assert!(!cidr("10.0.0.0/33").is_empty());
        assert!(percent("25%").is_empty());
        assert!(!percent("x%").is_empty());
        assert!(!http_header_name("X Y").is_empty());
        assert!(!user_or_group_id(-1).is_empty());
    }

    #[test]
    fn object_meta() {
        let obj = serde_json::json!({"metadata": {"name": "Bad_Name", "labels": {"ok": "yes", "bad key!": "x"}}});
        let errs = validate_object_meta(&obj, NameRule::Subdomain, &Path::new("metadata"));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "metadata.labels"]);
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let obj = serde_json::json!({"metadata": {"name": "a", "annotations": {"k": big}}});
        let errs = validate_object_meta(&obj, NameRule::Subdomain, &Path::new("metadata"));
        assert_eq!(errs[0].to_string(), "metadata.annotations: Too long: may not be more than 262144 bytes");
    }
}
