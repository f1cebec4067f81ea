//! Label and field selectors: parsing the query-string syntax and matching objects, as
//! upstream's `k8s.io/apimachinery/pkg/labels` and `pkg/fields` do.
//!
//! The watch cache evaluates selectors against each cached object's labels and field
//! attributes ([`field_attributes`]), so lists and watches never touch the store.

use std::collections::BTreeMap;

use serde_json::Value;

/// A parse error, shown to the client as a 400 `BadRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let v = labels.get(&self.key);
        match self.op {
            Op::Eq | Op::In => v.is_some_and(|v| self.values.contains(v)),
            Op::NotEq | Op::NotIn => v.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => v.is_some(),
            Op::DoesNotExist => v.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (v, self.values.first()) else { return false };
                match (v.parse::<i64>(), bound.parse::<i64>()) {
                    (Ok(v), Ok(b)) => {
                        if self.op == Op::Gt {
                            v > b
                        } else {
                            v < b
                        }
                    }
                    _ => false,
                }
            }
        }
    }
}

/// A parsed label selector. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    /// Parse the `labelSelector` query syntax: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut p = Lexer { s: s.as_bytes(), i: 0 };
        let mut reqs = Vec::new();
        p.skip_ws();
        if p.eof() {
            return Ok(LabelSelector { reqs });
        }
        loop {
            reqs.push(p.requirement()?);
            p.skip_ws();
            if p.eof() {
                break;
            }
            if !p.eat(b",") {
                return Err(SelectorError(format!("unable to parse requirement: found '{}', expected: ','", p.rest())));
            }
        }
        Ok(LabelSelector { reqs })
    }

    /// Build from a `metav1.LabelSelector` JSON object (matchLabels + matchExpressions).
    pub fn from_json(sel: &Value) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if let Some(Value::Object(ml)) = sel.get("matchLabels") {
            for (k, v) in ml {
                reqs.push(Requirement {
                    key: k.clone(),
                    op: Op::Eq,
                    values: vec![v.as_str().unwrap_or_default().to_string()],
                });
            }
        }
        if let Some(Value::Array(exprs)) = sel.get("matchExpressions") {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default().to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                    .unwrap_or_default();
                let op = match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    other => return Err(SelectorError(format!("{other:?} is not a valid label selector operator"))),
                };
                reqs.push(Requirement { key, op, values });
            }
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|r| r.matches(labels))
    }
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }
    fn rest(&self) -> String {
        String::from_utf8_lossy(&self.s[self.i..]).into_owned()
    }
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, tok: &[u8]) -> bool {
        self.skip_ws();
        if self.s[self.i..].starts_with(tok) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }
    /// A key or value: anything up to whitespace or an operator character.
    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len() && !b" \t\n,=!()<>".contains(&self.s[self.i]) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        let save = self.i;
        let w = self.word();
        if w == kw {
            true
        } else {
            self.i = save;
            false
        }
    }
    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        self.skip_ws();
        if self.eat(b"!") {
            let key = self.word();
            check_key(&key)?;
            return Ok(Requirement { key, op: Op::DoesNotExist, values: vec![] });
        }
        let key = self.word();
        if key.is_empty() {
            return Err(SelectorError(format!(
                "unable to parse requirement: found '{}', expected: identifier",
                self.rest()
            )));
        }
        check_key(&key)?;
        self.skip_ws();
        if self.eof() || self.s[self.i] == b',' {
            return Ok(Requirement { key, op: Op::Exists, values: vec![] });
        }
        let op = if self.eat(b"==") || self.eat(b"=") {
            Op::Eq
        } else if self.eat(b"!=") {
            Op::NotEq
        } else if self.eat(b">") {
            Op::Gt
        } else if self.eat(b"<") {
            Op::Lt
        } else if self.keyword("notin") {
            Op::NotIn
        } else if self.keyword("in") {
            Op::In
        } else {
            return Err(SelectorError(format!(
                "unable to parse requirement: found '{}', expected: in, notin, =, ==, !=, gt, lt",
                self.rest()
            )));
        };
        let values = match op {
            Op::In | Op::NotIn => {
                if !self.eat(b"(") {
                    return Err(SelectorError(format!(
                        "unable to parse requirement: found '{}', expected: '('",
                        self.rest()
                    )));
                }
                let mut vals = Vec::new();
                loop {
                    let v = self.word();
                    check_value(&v)?;
                    vals.push(v);
                    if self.eat(b",") {
                        continue;
                    }
                    if self.eat(b")") {
                        break;
                    }
                    return Err(SelectorError(format!(
                        "unable to parse requirement: found '{}', expected: ',', or ')'",
                        self.rest()
                    )));
                }
                vals
            }
            _ => {
                let v = self.word();
                if matches!(op, Op::Gt | Op::Lt) && v.parse::<i64>().is_err() {
                    return Err(SelectorError(format!(
                        "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {v}"
                    )));
                }
                check_value(&v)?;
                vec![v]
            }
        };
        Ok(Requirement { key, op, values })
    }
}

fn check_key(key: &str) -> Result<(), SelectorError> {
    let errs = crate::validation::qualified_name(key);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "unable to parse requirement: values[0][{key}]: Invalid value: {key:?}: {}",
            errs.join("; ")
        )))
    }
}

fn check_value(v: &str) -> Result<(), SelectorError> {
    let errs = crate::validation::label_value(v);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(SelectorError(format!("unable to parse requirement: values[0]: Invalid value: {v:?}: {}", errs.join("; "))))
    }
}

/// A parsed field selector: `a=b,c!=d`. Only equality operators exist for fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for part in split_unescaped_commas(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(SelectorError(format!("invalid selector: '{s}'; can't understand '{part}'")));
            };
            reqs.push((k.trim().to_string(), eq, unescape_field_value(v.trim())));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The field names used, for checking against what a resource supports.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.reqs.iter().map(|(k, _, _)| k.as_str())
    }

    /// Match against an object's field attributes (missing attributes are the empty string).
    pub fn matches(&self, attrs: &[(&str, String)]) -> bool {
        self.reqs.iter().all(|(k, eq, v)| {
            let actual = attrs.iter().find(|(name, _)| name == k).map_or("", |(_, a)| a.as_str());
            (actual == v) == *eq
        })
    }

    /// The value an equality requirement pins `field` to, if any (e.g. `metadata.name=x`).
    pub fn exact(&self, field: &str) -> Option<&str> {
        self.reqs.iter().find(|(k, eq, _)| k == field && *eq).map(|(_, _, v)| v.as_str())
    }
}

fn split_unescaped_commas(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if let Some(l) = out.last_mut() {
                l.push('\\');
                l.push(c);
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            out.push(String::new());
        } else if let Some(l) = out.last_mut() {
            l.push(c);
        }
    }
    out
}

fn unescape_field_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut v = obj;
    for p in path {
        match v.get(p) {
            Some(n) => v = n,
            None => return "",
        }
    }
    v.as_str().unwrap_or("")
}

fn display_at(obj: &Value, path: &[&str], default: &str) -> String {
    let mut v = obj;
    for p in path {
        match v.get(p) {
            Some(n) => v = n,
            None => return default.to_string(),
        }
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Null => default.to_string(),
        other => other.to_string(),
    }
}

/// The field labels a kind supports beyond `metadata.name` and `metadata.namespace` (upstream's
/// per-kind field label conversion functions), as (label, JSON path, default).
fn kind_fields(group: &str, kind: &str) -> &'static [(&'static str, &'static [&'static str], &'static str)] {
    match (group, kind) {
        ("", "Pod") => &[
            ("spec.nodeName", &["spec", "nodeName"], ""),
            ("spec.restartPolicy", &["spec", "restartPolicy"], ""),
            ("spec.schedulerName", &["spec", "schedulerName"], ""),
            ("spec.serviceAccountName", &["spec", "serviceAccountName"], ""),
            ("spec.hostNetwork", &["spec", "hostNetwork"], "false"),
            ("status.phase", &["status", "phase"], ""),
            ("status.podIP", &["status", "podIP"], ""),
            ("status.nominatedNodeName", &["status", "nominatedNodeName"], ""),
        ],
        ("", "Event") => &[
            ("involvedObject.kind", &["involvedObject", "kind"], ""),
            ("involvedObject.namespace", &["involvedObject", "namespace"], ""),
            ("involvedObject.name", &["involvedObject", "name"], ""),
            ("involvedObject.uid", &["involvedObject", "uid"], ""),
            ("involvedObject.apiVersion", &["involvedObject", "apiVersion"], ""),
            ("involvedObject.resourceVersion", &["involvedObject", "resourceVersion"], ""),
            ("involvedObject.fieldPath", &["involvedObject", "fieldPath"], ""),
            ("reason", &["reason"], ""),
            ("reportingComponent", &["reportingComponent"], ""),
            ("source", &["source", "component"], ""),
            ("type", &["type"], ""),
        ],
        ("events.k8s.io", "Event") => &[
            ("regarding.kind", &["regarding", "kind"], ""),
            ("regarding.namespace", &["regarding", "namespace"], ""),
            ("regarding.name", &["regarding", "name"], ""),
            ("regarding.uid", &["regarding", "uid"], ""),
            ("reason", &["reason"], ""),
            ("reportingController", &["reportingController"], ""),
            ("type", &["type"], ""),
        ],
        ("", "Secret") => &[("type", &["type"], "")],
        ("", "Namespace") => &[("status.phase", &["status", "phase"], "")],
        ("", "Node") => &[("spec.unschedulable", &["spec", "unschedulable"], "false")],
        ("", "ReplicationController") | ("apps", "ReplicaSet") => &[("status.replicas", &["status", "replicas"], "0")],
        ("batch", "Job") => &[("status.successful", &["status", "succeeded"], "0")],
        ("", "Service") => &[("spec.clusterIP", &["spec", "clusterIP"], ""), ("spec.type", &["spec", "type"], "")],
        ("", "PersistentVolumeClaim") => &[("spec.volumeName", &["spec", "volumeName"], "")],
        ("certificates.k8s.io", "CertificateSigningRequest") => &[("spec.signerName", &["spec", "signerName"], "")],
        _ => &[],
    }
}

/// The field label of the storage version that answers a selector written against another
/// version of the same resource (events.k8s.io Events are stored as core/v1 Events).
pub fn storage_field_label<'a>(group: &str, kind: &str, field: &'a str) -> std::borrow::Cow<'a, str> {
    if (group, kind) == ("events.k8s.io", "Event") {
        if let Some(rest) = field.strip_prefix("regarding.") {
            return format!("involvedObject.{rest}").into();
        }
        if field == "reportingController" {
            return "reportingComponent".into();
        }
    }
    field.into()
}

impl FieldSelector {
    /// The same selector with every field renamed by `f`.
    pub fn map_fields(&self, f: impl Fn(&str) -> String) -> FieldSelector {
        FieldSelector { reqs: self.reqs.iter().map(|(k, eq, v)| (f(k), *eq, v.clone())).collect() }
    }
}

/// Whether `field` can be used in a field selector for this kind.
pub fn supports_field(group: &str, kind: &str, field: &str) -> bool {
    field == "metadata.name"
        || field == "metadata.namespace"
        || kind_fields(group, kind).iter().any(|(f, _, _)| *f == field)
}

/// All field-selector attributes of an object.
pub fn field_attributes(group: &str, kind: &str, obj: &Value) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("metadata.name", str_at(obj, &["metadata", "name"]).to_string()),
        ("metadata.namespace", str_at(obj, &["metadata", "namespace"]).to_string()),
    ];
    for (label, path, default) in kind_fields(group, kind) {
        out.push((label, display_at(obj, path, default)));
    }
    out
}

/// The parts of an object to parse, as a tree of keys; a kept key's whole value is parsed.
/// Label and field selectors read a handful of fields of an object that may be kilobytes of
/// JSON: [`Keep::parse`] builds a [`Value`] holding only those, skipping the rest without
/// allocating. [`field_attributes`] and [`labels_of`] read the result as they would the
/// whole object.
#[derive(Clone, Debug, Default)]
pub struct Keep {
    /// Keep this value whole (a leaf, or [`Keep::everything`]).
    whole: bool,
    keys: Vec<(&'static str, Keep)>,
}

impl Keep {
    /// Parse the whole object (kinds whose attributes are not known in advance: custom
    /// resources' selectable fields).
    pub fn everything() -> Keep {
        Keep { whole: true, keys: Vec::new() }
    }

    /// What [`field_attributes`] and [`labels_of`] read of an object of `group`/`kind`.
    pub fn for_selectors(group: &str, kind: &str) -> Keep {
        let mut keep = Keep::default();
        for path in [&["metadata", "name"][..], &["metadata", "namespace"], &["metadata", "labels"]] {
            keep.add(path);
        }
        for (_, path, _) in kind_fields(group, kind) {
            keep.add(path);
        }
        keep
    }

    fn add(&mut self, path: &[&'static str]) {
        let Some((first, rest)) = path.split_first() else {
            self.whole = true;
            return;
        };
        let at = match self.keys.iter().position(|(k, _)| k == first) {
            Some(at) => at,
            None => {
                self.keys.push((first, Keep::default()));
                self.keys.len() - 1
            }
        };
        self.keys[at].1.add(rest);
    }

    /// Parses `json`, keeping only the kept keys. Where an object was expected and something
    /// else is found, the result holds `null`, which reads as absent.
    pub fn parse(&self, json: &[u8]) -> serde_json::Result<Value> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_slice(json);
        let v = Sparse(self).deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }
}

struct Sparse<'k>(&'k Keep);

impl<'de> serde::de::DeserializeSeed<'de> for Sparse<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0.whole {
            return serde::Deserialize::deserialize(d);
        }
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Sparse<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(found) = map.next_key_seed(KeyIn(&self.0.keys))? {
            match found {
                Some(at) => {
                    let (key, child) = &self.0.keys[at];
                    let v = map.next_value_seed(Sparse(child))?;
                    out.insert((*key).to_string(), v);
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// A map key: the index of the kept key it is, if any (compared without copying it).
struct KeyIn<'k>(&'k [(&'static str, Keep)]);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIn<'_> {
    type Value = Option<usize>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyIn<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|(k, _)| *k == key))
    }
}

/// An object's labels as a sorted map.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("missing!=x", true),
            ("app=web,tier=back", false),
            ("n>3", true),
            ("n<3", false),
            ("app in (db),tier", false),
        ] {
            assert_eq!(LabelSelector::parse(sel).unwrap().matches(&l), want, "{sel}");
        }
        for bad in ["=web", "app in web", "app in (a b)", "a b", "app=we b", "app=-x"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn label_selector_from_json() {
        let sel = serde_json::json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]});
        let s = LabelSelector::from_json(&sel).unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
    }

    #[test]
    fn field_selectors() {
        let pod = serde_json::json!({"metadata": {"name": "a", "namespace": "demo"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Pending"}});
        let attrs = field_attributes("", "Pod", &pod);
        assert!(FieldSelector::parse("status.phase=Pending").unwrap().matches(&attrs));
        assert!(FieldSelector::parse("status.phase!=Running,metadata.name=a").unwrap().matches(&attrs));
        assert!(!FieldSelector::parse("spec.nodeName=").unwrap().matches(&attrs));
        assert!(FieldSelector::parse("spec.hostNetwork=false").unwrap().matches(&attrs));
        assert!(FieldSelector::parse("nonsense").is_err());
        assert!(supports_field("", "Pod", "spec.nodeName"));
        assert!(!supports_field("", "ConfigMap", "spec.nodeName"));
        assert_eq!(FieldSelector::parse("metadata.name=x").unwrap().exact("metadata.name"), Some("x"));
        let ev = serde_json::json!({"metadata": {"name": "e"}, "involvedObject": {"name": "p"}});
        let sel = FieldSelector::parse("regarding.name=p")
            .unwrap()
            .map_fields(|f| storage_field_label("events.k8s.io", "Event", f).into_owned());
        assert!(sel.matches(&field_attributes("", "Event", &ev)));
    }

    /// A sparse parse answers selectors exactly as the whole object does, whatever the shape.
    #[test]
    fn sparse_parse_reads_as_the_whole_object() {
        use serde_json::json;
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web", "n": "5"},
                "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}], "uid": "u"},
            "spec": {"nodeName": "n1", "hostNetwork": true, "containers": [{"name": "c", "image": "i"}],
                "restartPolicy": "Always", "schedulerName": "default-scheduler"},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready"}]},
        });
        let cases = [
            ("", "Pod", pod.clone()),
            ("", "Pod", json!({"metadata": {"name": "bare"}})),
            // Odd shapes: what selectors read is missing, of the wrong type, or nested deeper.
            ("", "Pod", json!({"metadata": "x", "spec": [1, 2], "status": {"phase": 3, "podIP": null}})),
            (
                "",
                "Pod",
                json!({"metadata": {"labels": {"a": 1, "b": null, "c": {"d": "e"}}}, "spec": {"nodeName": {"x": 1}}}),
            ),
            ("", "Node", json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true, "taints": []}})),
            ("apps", "ReplicaSet", json!({"metadata": {"name": "r"}, "status": {"replicas": 3}})),
            (
                "",
                "Event",
                json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
                "source": {"component": "kubelet"}, "reason": "Started", "type": "Normal"}),
            ),
            ("events.k8s.io", "Event", json!({"metadata": {"name": "e"}, "regarding": {"kind": "Pod"}})),
            ("", "ConfigMap", json!({"metadata": {"name": "c", "labels": {}}, "data": {"k": "v"}})),
            ("", "Pod", json!([1, 2, 3])),
            ("", "Pod", json!("text")),
        ];
        for (group, kind, obj) in cases {
            let bytes = serde_json::to_vec(&obj).unwrap();
            let sparse = Keep::for_selectors(group, kind).parse(&bytes).expect("parses");
            assert_eq!(field_attributes(group, kind, &sparse), field_attributes(group, kind, &obj), "{obj}");
            assert_eq!(labels_of(&sparse), labels_of(&obj), "{obj}");
            assert_eq!(Keep::everything().parse(&bytes).expect("parses"), obj);
        }
        // Only what selectors read is kept.
        let sparse = Keep::for_selectors("", "Pod").parse(&serde_json::to_vec(&pod).unwrap()).unwrap();
        assert_eq!(
            sparse,
            json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web", "n": "5"}},
                "spec": {"nodeName": "n1", "hostNetwork": true, "restartPolicy": "Always",
                    "schedulerName": "default-scheduler"},
                "status": {"phase": "Running", "podIP": "10.0.0.1"}})
        );
        // Bad JSON is an error, as for a whole parse, including trailing bytes.
        for bad in [&b"{\"metadata\": "[..], b"{} x", b""] {
            assert!(Keep::for_selectors("", "Pod").parse(bad).is_err(), "{bad:?}");
        }
    }
}
