//! The `FieldsV1` wire form of a [`FieldSet`] (upstream `fieldpath/serialize.go` and
//! `serialize-pe.go`): a JSON object whose keys are serialized path elements (`f:name`,
//! `k:{"name":"web"}`, `v:"a"`, `i:0`) and whose values are the sets below them; `"."` marks a
//! path that is itself a member as well as having members below it.
//!
//! Writing follows upstream exactly: members and children merged in path-element order, `"."`
//! first in a node, key fields sorted, key and set values in Go's JSON text. Reading accepts any
//! order (as upstream does), ignores path elements of unknown kinds (a newer writer's), and
//! turns every malformed piece into a [`FieldsV1Error`].

use serde_json::{Map, Value};

use super::value::{floats_only, write_go_json};
use super::{FieldSet, PathElement};

/// A [`FieldSet`] serialized as its `FieldsV1` JSON object (see [`FieldSet::fields_v1`]).
pub struct FieldsV1<'a> {
    set: &'a FieldSet,
    /// Whether the node is itself a member (a `"."` key first).
    include_self: bool,
}

impl serde::Serialize for FieldsV1<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let set = self.set;
        let mut out = s.serialize_map(None)?;
        if self.include_self && !(set.members.is_empty() && set.children.is_empty()) {
            out.serialize_entry(".", &Empty)?;
        }
        for (pe, below, is_member) in set.merged() {
            let key = pe.to_fields_v1_key();
            match below {
                None => out.serialize_entry(&key, &Empty)?,
                Some(below) => out.serialize_entry(&key, &FieldsV1 { set: below, include_self: is_member })?,
            }
        }
        out.end()
    }
}

/// `{}`.
struct Empty;

impl serde::Serialize for Empty {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

/// Why a `FieldsV1` document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FieldsV1Error {
    /// The document or a node in it is not a JSON object.
    #[error("expected a JSON object at {at}, got {got}")]
    NotAnObject {
        /// The serialized path of the offending node (`f:spec/f:replicas`).
        at: String,
        /// The JSON type found instead.
        got: &'static str,
    },
    /// A key shorter than the two characters of its `x:` prefix.
    #[error("key must be 2 characters long: {0:?}")]
    KeyTooShort(String),
    /// A key whose second character is not the `:` separator.
    #[error("missing colon: {0}")]
    MissingColon(String),
    /// A `k:` or `v:` key whose JSON does not parse, or a `k:` key that is not an object.
    #[error("parsing key as path element {key:?}: {reason}")]
    BadElement {
        /// The key as written.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The document is not JSON at all.
    #[error("invalid FieldsV1 JSON: {0}")]
    Json(#[source] serde_json::Error),
}

impl PathElement {
    /// The `FieldsV1` key of this element (`f:name`, `k:{...}`, `v:...`, `i:3`).
    pub fn to_fields_v1_key(&self) -> String {
        let mut out = String::new();
        match self {
            PathElement::Field(name) => {
                out.push_str("f:");
                out.push_str(name);
            }
            PathElement::Key(fields) => {
                out.push_str("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    super::write_go_string(name, &mut out);
                    out.push(':');
                    write_go_json(value, &mut out);
                }
                out.push('}');
            }
            PathElement::Value(v) => {
                out.push_str("v:");
                write_go_json(v, &mut out);
            }
            PathElement::Index(i) => {
                out.push_str("i:");
                out.push_str(&i.to_string());
            }
        }
        out
    }

    /// Parses a `FieldsV1` key; `Ok(None)` for a well-formed key of an unknown kind, which
    /// upstream skips (a future writer's element).
    pub fn from_fields_v1_key(key: &str) -> Result<Option<PathElement>, FieldsV1Error> {
        let mut chars = key.char_indices();
        let (Some((_, kind)), Some((sep_at, sep))) = (chars.next(), chars.next()) else {
            return Err(FieldsV1Error::KeyTooShort(key.to_string()));
        };
        if sep != ':' {
            return Err(FieldsV1Error::MissingColon(key.to_string()));
        }
        let body = &key[sep_at + 1..];
        let bad = |reason: String| FieldsV1Error::BadElement { key: key.to_string(), reason };
        match kind {
            'f' => Ok(Some(PathElement::Field(body.to_string()))),
            'v' => {
                let v: Value = serde_json::from_str(body).map_err(|e| bad(e.to_string()))?;
                Ok(Some(PathElement::Value(floats_only(v))))
            }
            'k' => match serde_json::from_str(body).map_err(|e| bad(e.to_string()))? {
                Value::Object(fields) => {
                    Ok(Some(PathElement::key(fields.into_iter().map(|(k, v)| (k, floats_only(v))))))
                }
                other => Err(bad(format!("expected an object of key fields, got {}", json_type(&other)))),
            },
            'i' => body.parse::<usize>().map(|i| Some(PathElement::Index(i))).map_err(|e| bad(e.to_string())),
            _ => Ok(None),
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl FieldSet {
    /// The set in upstream's `FieldsV1` form, as a JSON object (keys in upstream's order).
    pub fn to_fields_v1(&self) -> Value {
        // Serializing maps of string keys cannot fail.
        serde_json::to_value(self.fields_v1()).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The set as `FieldsV1` JSON text, byte-identical to upstream's `Set.ToJSON`.
    pub fn to_fields_v1_string(&self) -> String {
        serde_json::to_string(&self.fields_v1()).unwrap_or_else(|_| "{}".to_string())
    }

    /// The set in `FieldsV1` form as it serializes, written straight out without building a
    /// JSON tree ([`FieldSet::to_fields_v1`] is its tree).
    pub fn fields_v1(&self) -> FieldsV1<'_> {
        FieldsV1 { set: self, include_self: false }
    }

    /// Members and children merged in path-element order, as upstream writes them: each with
    /// its node below, if it has one, and whether it is also a member.
    fn merged(&self) -> impl Iterator<Item = (&PathElement, Option<&FieldSet>, bool)> {
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        std::iter::from_fn(move || {
            let take_member = match (members.peek(), children.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(m), Some((c, _))) => *m < *c,
            };
            if take_member {
                return members.next().map(|m| (m, None, true));
            }
            let (pe, set) = children.next()?;
            let is_member = members.peek().is_some_and(|m| *m == pe);
            if is_member {
                members.next();
            }
            Some((pe, Some(set), is_member))
        })
    }

    /// Reads a `FieldsV1` document (a JSON object).
    pub fn from_fields_v1(doc: &Value) -> Result<FieldSet, FieldsV1Error> {
        let Value::Object(map) = doc else {
            return Err(FieldsV1Error::NotAnObject { at: String::new(), got: json_type(doc) });
        };
        let mut at = Vec::new();
        Ok(read_node(map, &mut at)?.0.unwrap_or_default())
    }

    /// Reads `FieldsV1` JSON text.
    pub fn from_fields_v1_str(text: &str) -> Result<FieldSet, FieldsV1Error> {
        let doc: Value = serde_json::from_str(text).map_err(FieldsV1Error::Json)?;
        Self::from_fields_v1(&doc)
    }
}

/// Reads one node: the set below it (if any) and whether the node itself is a member. As
/// upstream, a node with nothing below it (`{}`, or only unknown elements) is a member.
fn read_node(map: &Map<String, Value>, at: &mut Vec<String>) -> Result<(Option<FieldSet>, bool), FieldsV1Error> {
    let mut is_member = false;
    let mut children: Option<FieldSet> = None;
    for (key, value) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::from_fields_v1_key(key)? else {
            continue;
        };
        at.push(key.clone());
        let Value::Object(inner) = value else {
            return Err(FieldsV1Error::NotAnObject { at: at.join("/"), got: json_type(value) });
        };
        let (grandchildren, child_is_member) = read_node(inner, at)?;
        at.pop();
        let node = children.get_or_insert_with(FieldSet::default);
        if child_is_member {
            node.members.insert(pe.clone());
        }
        if let Some(g) = grandchildren {
            // Upstream keeps the last of duplicate child nodes; keys of a JSON object are
            // unique already, but two spellings of one element (`1` and `1.0`) can collide.
            if !g.is_empty() {
                node.children.insert(pe, g);
            }
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}
