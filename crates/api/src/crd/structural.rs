//! The structural schema of one CRD version: the `openAPIV3Schema` JSON read once into a tree the
//! custom resource pipeline walks (pruning, defaulting, value validation, list types, CEL), the
//! counterpart of upstream's `apiserver/schema.Structural`.
//!
//! Reading never fails: a keyword of the wrong JSON type is treated as absent, because the CRD
//! was validated ([`super::validate`]) before any of its custom resources are admitted, and a
//! stored CRD that was accepted by an older, laxer server must still serve.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

/// Upper bound on the compiled size of a `pattern` (the regex crate's default is 10 MiB);
/// schemas come from users, so a pathological pattern must not cost the server much memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// A node of a structural schema.
#[derive(Debug, Default, Clone)]
pub(crate) struct Structural {
    /// `type`, empty when absent (int-or-string and preserve-unknown-fields nodes).
    pub(crate) type_: String,
    pub(crate) format: String,
    pub(crate) nullable: bool,
    pub(crate) default: Option<Value>,
    /// `properties`, by name.
    pub(crate) properties: BTreeMap<String, Structural>,
    /// `additionalProperties` as a schema (a map's value schema).
    pub(crate) additional_properties: Option<Box<Structural>>,
    /// `additionalProperties: true` without a schema (every key allowed, values untyped).
    pub(crate) additional_properties_any: bool,
    pub(crate) items: Option<Box<Structural>>,
    pub(crate) preserve_unknown_fields: bool,
    pub(crate) embedded_resource: bool,
    pub(crate) list_type: Option<String>,
    pub(crate) list_map_keys: Vec<String>,
    pub(crate) map_type: Option<String>,
    /// `x-kubernetes-validations`, in declaration order.
    pub(crate) rules: Vec<RuleSpec>,
    pub(crate) vv: ValueValidation,
}

/// The value validations of a node (what upstream splits into `ValueValidation`), including the
/// logical junctors, whose branches are nodes of their own.
#[derive(Debug, Default, Clone)]
pub(crate) struct ValueValidation {
    pub(crate) enum_: Option<Vec<Value>>,
    /// The source of `pattern` and its compiled form (`None` when it does not compile; the CRD
    /// validation reports that, and at runtime such a pattern matches nothing).
    pub(crate) pattern: Option<(String, Option<Regex>)>,
    pub(crate) maximum: Option<f64>,
    pub(crate) exclusive_maximum: bool,
    pub(crate) minimum: Option<f64>,
    pub(crate) exclusive_minimum: bool,
    pub(crate) max_length: Option<i64>,
    pub(crate) min_length: Option<i64>,
    pub(crate) max_items: Option<i64>,
    pub(crate) min_items: Option<i64>,
    pub(crate) unique_items: bool,
    pub(crate) multiple_of: Option<f64>,
    pub(crate) max_properties: Option<i64>,
    pub(crate) min_properties: Option<i64>,
    pub(crate) required: Vec<String>,
    pub(crate) all_of: Vec<Structural>,
    pub(crate) any_of: Vec<Structural>,
    pub(crate) one_of: Vec<Structural>,
    pub(crate) not: Option<Box<Structural>>,
}

/// One `x-kubernetes-validations` entry as written.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RuleSpec {
    pub(crate) rule: String,
    pub(crate) message: String,
    pub(crate) message_expression: String,
    pub(crate) reason: Option<String>,
    pub(crate) field_path: String,
    pub(crate) optional_old_self: Option<bool>,
}

impl RuleSpec {
    pub(crate) fn from_value(v: &Value) -> Self {
        RuleSpec {
            rule: str_of(v, "rule").to_string(),
            message: str_of(v, "message").to_string(),
            message_expression: str_of(v, "messageExpression").to_string(),
            reason: v.get("reason").and_then(Value::as_str).map(str::to_string),
            field_path: str_of(v, "fieldPath").to_string(),
            optional_old_self: v.get("optionalOldSelf").and_then(Value::as_bool),
        }
    }

    /// The rule as upstream prints an `apiextensions.ValidationRule` in `Invalid value:` (`%#v`).
    pub(crate) fn go_repr(&self) -> String {
        let reason = match &self.reason {
            Some(r) => format!("&\"{r}\""),
            None => "(*apiextensions.FieldValueErrorReason)(nil)".to_string(),
        };
        let optional = match self.optional_old_self {
            Some(b) => format!("&{b}"),
            None => "(*bool)(nil)".to_string(),
        };
        format!(
            "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, \
             OptionalOldSelf:{optional}}}",
            crate::field::go_quote(&self.rule),
            crate::field::go_quote(&self.message),
            crate::field::go_quote(&self.message_expression),
            crate::field::go_quote(&self.field_path),
        )
    }
}

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn bool_of(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn int_of(v: &Value, key: &str) -> Option<i64> {
    let n = v.get(key)?;
    n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
}

impl Structural {
    /// Reads a schema node. `depth` bounds recursion on hostile input.
    pub(crate) fn from_value(v: &Value) -> Structural {
        Self::read(v, 0)
    }

    fn read(v: &Value, depth: usize) -> Structural {
        // A schema nested deeper than this is not a real API; stop reading rather than risk the stack.
        const MAX_DEPTH: usize = 200;
        let Some(obj) = v.as_object() else {
            return Structural::default();
        };
        if depth > MAX_DEPTH {
            return Structural { preserve_unknown_fields: true, ..Default::default() };
        }
        let child = |x: &Value| Structural::read(x, depth + 1);
        let mut s = Structural {
            type_: str_of(v, "type").to_string(),
            format: str_of(v, "format").to_string(),
            nullable: bool_of(v, "nullable"),
            default: obj.get("default").filter(|d| !d.is_null()).cloned(),
            preserve_unknown_fields: bool_of(v, "x-kubernetes-preserve-unknown-fields"),
            embedded_resource: bool_of(v, "x-kubernetes-embedded-resource"),
            list_type: obj.get("x-kubernetes-list-type").and_then(Value::as_str).map(str::to_string),
            list_map_keys: string_list(obj.get("x-kubernetes-list-map-keys")),
            map_type: obj.get("x-kubernetes-map-type").and_then(Value::as_str).map(str::to_string),
            ..Default::default()
        };
        if let Some(Value::Object(props)) = obj.get("properties") {
            s.properties = props.iter().map(|(k, p)| (k.clone(), child(p))).collect();
        }
        match obj.get("additionalProperties") {
            Some(Value::Bool(true)) => s.additional_properties_any = true,
            Some(ap @ Value::Object(_)) => s.additional_properties = Some(Box::new(child(ap))),
            _ => {}
        }
        if let Some(items @ Value::Object(_)) = obj.get("items") {
            s.items = Some(Box::new(child(items)));
        }
        if let Some(Value::Array(rules)) = obj.get("x-kubernetes-validations") {
            s.rules = rules.iter().map(RuleSpec::from_value).collect();
        }
        s.vv = ValueValidation::read(v, obj, depth);
        s
    }

    /// Whether the value at this node may hold any JSON (no type constraint).
    pub(crate) fn is_untyped(&self) -> bool {
        self.type_.is_empty()
    }

    /// The schema of the values under `key` in an object at this node.
    pub(crate) fn field(&self, key: &str) -> Option<&Structural> {
        self.properties.get(key).or(self.additional_properties.as_deref())
    }
}

impl ValueValidation {
    fn read(v: &Value, obj: &Map<String, Value>, depth: usize) -> ValueValidation {
        let branch = |key: &str| -> Vec<Structural> {
            match obj.get(key) {
                Some(Value::Array(items)) => items.iter().map(|x| Structural::read(x, depth + 1)).collect(),
                _ => Vec::new(),
            }
        };
        let pattern = obj.get("pattern").and_then(Value::as_str).map(|p| (p.to_string(), compile_pattern(p)));
        ValueValidation {
            enum_: obj.get("enum").and_then(Value::as_array).cloned(),
            pattern,
            maximum: obj.get("maximum").and_then(Value::as_f64),
            exclusive_maximum: bool_of(v, "exclusiveMaximum"),
            minimum: obj.get("minimum").and_then(Value::as_f64),
            exclusive_minimum: bool_of(v, "exclusiveMinimum"),
            max_length: int_of(v, "maxLength"),
            min_length: int_of(v, "minLength"),
            max_items: int_of(v, "maxItems"),
            min_items: int_of(v, "minItems"),
            unique_items: bool_of(v, "uniqueItems"),
            multiple_of: obj.get("multipleOf").and_then(Value::as_f64),
            max_properties: int_of(v, "maxProperties"),
            min_properties: int_of(v, "minProperties"),
            required: string_list(obj.get("required")),
            all_of: branch("allOf"),
            any_of: branch("anyOf"),
            one_of: branch("oneOf"),
            not: obj.get("not").filter(|n| n.is_object()).map(|n| Box::new(Structural::read(n, depth + 1))),
        }
    }
}

/// Compiles an OpenAPI `pattern` (an ECMA/RE2-style regular expression, unanchored).
pub(crate) fn compile_pattern(p: &str) -> Option<Regex> {
    regex::RegexBuilder::new(p).size_limit(PATTERN_SIZE_LIMIT).build().ok()
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// The JSON type name of a value as go-openapi reports it (`integer` for whole numbers that
/// came as integers, `number` otherwise).
pub(crate) fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_nodes_and_ignores_garbage() {
        let s = Structural::from_value(&json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1, "default": 1}}},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "x-kubernetes-validations": [{"rule": "true", "reason": "FieldValueForbidden"}],
            "maxLength": "not a number",
            "pattern": "([",
        }));
        assert_eq!(s.vv.required, ["spec"]);
        assert_eq!(s.properties["spec"].properties["replicas"].vv.minimum, Some(1.0));
        assert_eq!(s.properties["spec"].properties["replicas"].default, Some(json!(1)));
        assert_eq!(s.properties["tags"].list_type.as_deref(), Some("set"));
        assert!(s.properties["labels"].field("anything").is_some());
        assert_eq!(s.rules[0].reason.as_deref(), Some("FieldValueForbidden"));
        assert_eq!(s.vv.max_length, None);
        assert!(matches!(&s.vv.pattern, Some((_, None))));
        assert!(Structural::from_value(&json!(5)).is_untyped());
    }

    #[test]
    fn rule_prints_like_go() {
        let r = RuleSpec { rule: "self > 0".into(), ..Default::default() };
        assert_eq!(
            r.go_repr(),
            "apiextensions.ValidationRule{Rule:\"self > 0\", Message:\"\", MessageExpression:\"\", \
             Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}"
        );
    }
}
