//! Validation of a CRD's `openAPIV3Schema` (upstream's `ValidateCustomResourceDefinitionOpenAPISchema`,
//! `schema.ValidateStructural` and `defaulting.ValidateDefaults`): allowed keywords, structural
//! schema invariants, list/map type extensions, defaults, and the compilation and estimated
//! cost of `x-kubernetes-validations` rules.

use serde_json::{Map, Value};

use super::cel;
use super::prune;
use super::structural::{RuleSpec, Structural, compile_pattern, str_of};
use super::values;
use crate::field::{ErrorList, ErrorType, FieldError, Path};

/// The OpenAPI types a schema may name.
const OPENAPI_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
/// The fields of `JSONSchemaProps` allowed at the root when the status subresource is enabled,
/// as upstream lists them in the message.
const ROOT_ALLOWED_GO: &str = "[Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum \
                               MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items \
                               Properties ExternalDocs Example XPreserveUnknownFields XValidations]";
/// The JSON keys of `JSONSchemaProps` in Go field order, with whether they are allowed at the
/// root when the status subresource is enabled.
const ROOT_FIELDS: [(&str, bool); 43] = [
    ("id", false),
    ("$schema", false),
    ("$ref", false),
    ("description", true),
    ("type", true),
    ("format", true),
    ("title", true),
    ("default", false),
    ("maximum", true),
    ("exclusiveMaximum", true),
    ("minimum", true),
    ("exclusiveMinimum", true),
    ("maxLength", true),
    ("minLength", true),
    ("pattern", true),
    ("maxItems", true),
    ("minItems", true),
    ("uniqueItems", true),
    ("multipleOf", true),
    ("enum", false),
    ("maxProperties", false),
    ("minProperties", false),
    ("required", true),
    ("items", true),
    ("allOf", false),
    ("oneOf", false),
    ("anyOf", false),
    ("not", false),
    ("properties", true),
    ("additionalProperties", false),
    ("patternProperties", false),
    ("dependencies", false),
    ("additionalItems", false),
    ("definitions", false),
    ("externalDocs", true),
    ("example", true),
    ("nullable", false),
    ("x-kubernetes-preserve-unknown-fields", true),
    ("x-kubernetes-embedded-resource", false),
    ("x-kubernetes-int-or-string", false),
    ("x-kubernetes-list-map-keys", false),
    ("x-kubernetes-list-type", false),
    ("x-kubernetes-validations", true),
];

/// Validates `validation` (a `CustomResourceValidation`: `{openAPIV3Schema: …}`) at `path`
/// (`spec.validation` or `spec.versions[i].schema`).
pub(crate) fn validate_validation(validation: &Value, status_enabled: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(schema) = validation.get("openAPIV3Schema").filter(|s| s.is_object()) else {
        return errs;
    };
    let schema_path = path.child("openAPIV3Schema");
    if status_enabled {
        for (key, allowed) in ROOT_FIELDS {
            let Some(v) = schema.get(key) else { continue };
            if go_zero(key, v) {
                continue;
            }
            if key == "type" {
                if v.as_str() != Some("object") {
                    errs.push(raw_invalid(
                        &path.child("openAPIV3Schema.type"),
                        crate::field::BadValue::format(&v),
                        "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
                    ));
                    break;
                }
                continue;
            }
            if !allowed {
                errs.push(raw_invalid(
                    &schema_path,
                    schema.to_string(),
                    format!(
                        "only {ROOT_ALLOWED_GO} fields are allowed at the root of the schema if the status subresource \
                         is enabled"
                    ),
                ));
                break;
            }
        }
    }
    if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::forbidden(
            &path.child("openAPIV3Schema.nullable"),
            "nullable cannot be true at the root",
        ));
    }

    let mut cel_enabled = false;
    let structural_errs = validate_structural(schema, &schema_path);
    if !structural_errs.is_empty() {
        errs.extend(structural_errs);
    } else {
        let ss = Structural::from_value(schema);
        let default_errs = validate_defaults(&ss, schema, &schema_path);
        if default_errs.is_empty() {
            cel_enabled = true;
        } else {
            errs.extend(default_errs);
        }
    }
    let ssv = Ssv { allow_defaults: true, disallow_reason: String::new(), inside_meta: false, forbid_old_self: None };
    let mut total = TotalCost::default();
    let (schema_errs, cel_errs) =
        validate_openapi_schema(schema, &schema_path, &ssv, true, cel_enabled.then_some(1), &mut total);
    errs.extend(schema_errs);
    errs.extend(cel_errs);
    if total.total > cel::PER_CRD_COST_LIMIT {
        for p in &total.paths {
            errs.push(FieldError::forbidden(
                p,
                "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema",
            ));
        }
        errs.push(FieldError::forbidden(
            &schema_path,
            cel::cost_error_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                total.total,
                cel::PER_CRD_COST_LIMIT,
            ),
        ));
    }
    errs
}

/// Keywords whose Go field is a pointer: present (and not null) means set, whatever the value.
const POINTER_FIELDS: [&str; 14] = [
    "default",
    "maximum",
    "minimum",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "multipleOf",
    "maxProperties",
    "minProperties",
    "items",
    "not",
    "additionalProperties",
    "additionalItems",
];

/// Go's notion of a zero value for the decoded JSON field `key`.
fn go_zero(key: &str, v: &Value) -> bool {
    let pointer = POINTER_FIELDS.contains(&key)
        || [
            "externalDocs",
            "example",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-list-type",
            "x-kubernetes-map-type",
        ]
        .contains(&key);
    if pointer { v.is_null() } else { is_zero(v) }
}

/// Go's notion of a zero value for a decoded JSON value.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        // Numeric keywords are pointers in Go: present means set, even when 0.
        Value::Number(_) => false,
    }
}

/// A field error whose bad value is printed as given (Go's `%#v` of a struct).
pub(crate) fn raw_invalid(path: &Path, value: String, detail: impl Into<String>) -> FieldError {
    FieldError { bad_value: Some(value), ..FieldError::invalid(path, "", detail) }
}

#[derive(Default)]
struct TotalCost {
    total: u64,
    paths: Vec<Path>,
}

/// The per-branch state of upstream's `specStandardValidator`.
#[derive(Clone)]
struct Ssv {
    allow_defaults: bool,
    disallow_reason: String,
    inside_meta: bool,
    /// The first ancestor at which old and new values stop correlating; `oldSelf` is refused below.
    forbid_old_self: Option<Path>,
}

impl Ssv {
    fn forbidding_defaults(&self, reason: &str) -> Ssv {
        Ssv { allow_defaults: false, disallow_reason: reason.to_string(), ..self.clone() }
    }

    fn forbidding_old_self(&self, at: &Path) -> Ssv {
        if self.forbid_old_self.is_some() {
            return self.clone();
        }
        Ssv { forbid_old_self: Some(at.clone()), ..self.clone() }
    }

    fn validate(&self, s: &Map<String, Value>, path: &Path, errs: &mut ErrorList) {
        if let Some(t) = s.get("type").and_then(Value::as_str)
            && !t.is_empty()
        {
            if t == "null" {
                errs.push(FieldError::not_supported(&path.child("type"), t, &OPENAPI_TYPES));
                errs.push(FieldError::forbidden(
                    &path.child("type"),
                    "type cannot be set to null, use nullable as an alternative",
                ));
            } else if !OPENAPI_TYPES.contains(&t) {
                errs.push(FieldError::not_supported(&path.child("type"), t, &OPENAPI_TYPES));
            }
        }
        if s.get("default").is_some_and(|d| !d.is_null()) && !self.allow_defaults {
            let mut detail = "must not be set".to_string();
            if !self.disallow_reason.is_empty() {
                detail.push(' ');
                detail.push_str(&self.disallow_reason);
            }
            errs.push(FieldError::forbidden(&path.child("default"), detail));
        }
        let forbidden = [
            ("id", "id is not supported"),
            ("additionalItems", "additionalItems is not supported"),
            ("patternProperties", "patternProperties is not supported"),
            ("definitions", "definitions is not supported"),
            ("dependencies", "dependencies is not supported"),
            ("$ref", "$ref is not supported"),
        ];
        for (key, msg) in forbidden {
            if s.get(key).is_some_and(|v| !go_zero(key, v)) {
                errs.push(FieldError::forbidden(&path.child(key), msg));
            }
        }
        if s.get("items").is_some_and(Value::is_array) {
            errs.push(FieldError::forbidden(&path.child("items"), "items must be a schema object and not an array"));
        }
        if self.inside_meta && flag(s, "x-kubernetes-embedded-resource") {
            errs.push(FieldError::forbidden(
                &path.child("x-kubernetes-embedded-resource"),
                "must not be used inside of resource meta",
            ));
        }
    }
}

fn flag(s: &Map<String, Value>, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn text<'a>(s: &'a Map<String, Value>, key: &str) -> &'a str {
    s.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Upstream's `ValidateCustomResourceDefinitionOpenAPISchema`: returns (schema errors, CEL
/// errors). `cardinality` is `Some` when rules are to be compiled (the schema is structural),
/// holding how many times a rule at this node may run per object.
fn validate_openapi_schema(
    schema: &Value,
    path: &Path,
    ssv: &Ssv,
    is_root: bool,
    cardinality: Option<u64>,
    total: &mut TotalCost,
) -> (ErrorList, ErrorList) {
    let mut errs = ErrorList::new();
    let mut cel_errs = ErrorList::new();
    let Some(s) = schema.as_object() else {
        return (errs, cel_errs);
    };
    ssv.validate(s, path, &mut errs);
    if flag(s, "uniqueItems") {
        errs.push(FieldError::forbidden(
            &path.child("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let has_props = s.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty());
    let structural = Structural::from_value(schema);
    let mut sub = |child: &Value,
                   child_path: Path,
                   child_ssv: &Ssv,
                   card: Option<u64>,
                   errs: &mut ErrorList,
                   cel_errs: &mut ErrorList| {
        let (e, c) = validate_openapi_schema(child, &child_path, child_ssv, false, card, total);
        errs.extend(e);
        cel_errs.extend(c);
    };
    if let Some(ap) = s.get("additionalProperties") {
        if has_props && (ap == &Value::Bool(false) || ap.is_object()) {
            errs.push(FieldError::forbidden(
                &path.child("additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        let child_ssv = if ssv.inside_meta {
            ssv.forbidding_defaults("inside additionalProperties applying to object metadata")
        } else {
            ssv.clone()
        };
        if ap.is_object() {
            let card = cardinality.map(|c| c.saturating_mul(cel::max_cardinality(&structural)));
            sub(ap, path.child("additionalProperties"), &child_ssv, card, &mut errs, &mut cel_errs);
        }
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        for (name, prop) in props {
            let mut child_ssv = ssv.clone();
            if !super::values::correlatable_map(&structural) {
                child_ssv = child_ssv.forbidding_old_self(path);
            }
            if (is_root || flag(s, "x-kubernetes-embedded-resource"))
                && ["metadata", "kind", "apiVersion"].contains(&name.as_str())
            {
                child_ssv.inside_meta = true;
                if is_root {
                    child_ssv = child_ssv.forbidding_defaults(&format!("in top-level {name}"));
                }
            }
            sub(prop, path.child("properties").key(name), &child_ssv, cardinality, &mut errs, &mut cel_errs);
        }
    }
    if let Some(not) = s.get("not") {
        sub(not, path.child("not"), ssv, None, &mut errs, &mut cel_errs);
    }
    for junctor in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = s.get(junctor) {
            for (i, b) in branches.iter().enumerate() {
                sub(b, path.child(junctor).index(i), ssv, None, &mut errs, &mut cel_errs);
            }
        }
    }
    if let Some(Value::Object(defs)) = s.get("definitions") {
        for (name, d) in defs {
            sub(d, path.child("definitions").key(name), ssv, None, &mut errs, &mut cel_errs);
        }
    }
    if let Some(items) = s.get("items") {
        let child_ssv =
            if text(s, "x-kubernetes-list-type") != "map" { ssv.forbidding_old_self(path) } else { ssv.clone() };
        let card = cardinality.map(|c| c.saturating_mul(cel::max_cardinality(&structural)));
        match items {
            Value::Object(_) => sub(items, path.child("items"), &child_ssv, card, &mut errs, &mut cel_errs),
            Value::Array(list) => {
                for (i, it) in list.iter().enumerate() {
                    sub(it, path.child("items").index(i), &child_ssv, card, &mut errs, &mut cel_errs);
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Object(deps)) = s.get("dependencies") {
        for (name, d) in deps {
            if d.is_object() {
                sub(d, path.child("dependencies").key(name), ssv, None, &mut errs, &mut cel_errs);
            }
        }
    }
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        errs.push(FieldError::invalid(
            &path.child("x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
    let type_ = text(s, "type");
    if let Some(mt) = s.get("x-kubernetes-map-type").and_then(Value::as_str) {
        if type_ != "object" {
            errs.push(type_must_be(path, type_, "must be object if x-kubernetes-map-type is specified"));
        }
        if mt != "atomic" && mt != "granular" {
            errs.push(FieldError::not_supported(&path.child("x-kubernetes-map-type"), mt, &["atomic", "granular"]));
        }
    }
    let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
    if let Some(lt) = list_type {
        if type_ != "array" {
            errs.push(type_must_be(path, type_, "must be array if x-kubernetes-list-type is specified"));
        } else if lt == "set"
            && let Some(is) = s.get("items").and_then(Value::as_object)
        {
            match text(is, "type") {
                "array" => {
                    if let Some(ilt) = is.get("x-kubernetes-list-type").and_then(Value::as_str)
                        && ilt != "atomic"
                    {
                        errs.push(FieldError::invalid(
                            &path.child("items").child("x-kubernetes-list-type"),
                            ilt,
                            "must be atomic as item of a list with x-kubernetes-list-type=set",
                        ));
                    }
                }
                "object" if text(is, "x-kubernetes-map-type") != "atomic" => {
                    errs.push(FieldError::invalid(
                        &path.child("items").child("x-kubernetes-map-type"),
                        lt,
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
                _ => {}
            }
        }
        if !["atomic", "set", "map"].contains(&lt) {
            errs.push(FieldError::not_supported(&path.child("x-kubernetes-list-type"), lt, &["atomic", "set", "map"]));
        }
    }
    let map_keys: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let keys_json = s.get("x-kubernetes-list-map-keys").cloned().unwrap_or(Value::Null);
    if !map_keys.is_empty() {
        match list_type {
            None => errs.push(FieldError::required(
                &path.child("x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some(lt) if lt != "map" => errs.push(FieldError::invalid(
                &path.child("x-kubernetes-list-type"),
                lt,
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            _ => {}
        }
    }
    if list_type == Some("map") {
        if map_keys.is_empty() {
            errs.push(FieldError::required(
                &path.child("x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match s.get("items") {
            None => errs.push(FieldError::required(
                &path.child("items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(items @ Value::Array(_)) => errs.push(FieldError::invalid(
                &path.child("items"),
                items,
                "must only have a single schema if x-kubernetes-list-type is map",
            )),
            Some(Value::Object(is)) => {
                let it = text(is, "type");
                if it != "object" {
                    errs.push(FieldError::invalid(
                        &path.child("items").child("type"),
                        it,
                        "must be object if parent array's x-kubernetes-list-type is map",
                    ));
                } else {
                    let props = is.get("properties").and_then(Value::as_object);
                    let mut seen = std::collections::HashSet::new();
                    for k in &map_keys {
                        match props.and_then(|p| p.get(*k)) {
                            Some(kp) => {
                                let kt = str_of(kp, "type");
                                if kt == "array" || kt == "object" {
                                    errs.push(FieldError::invalid(
                                        &path.child("items").child("properties").key(k).child("type"),
                                        it,
                                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                                    ));
                                }
                            }
                            None => errs.push(FieldError::invalid(
                                &path.child("x-kubernetes-list-map-keys"),
                                &keys_json,
                                "entries must all be names of item properties",
                            )),
                        }
                        if !seen.insert(*k) {
                            errs.push(FieldError::invalid(
                                &path.child("x-kubernetes-list-map-keys"),
                                &keys_json,
                                "must not contain duplicate entries",
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    validate_map_list_keys_map_set(s, path, list_type, &map_keys, &mut errs);
    if let Some(Value::Array(rules)) = s.get("x-kubernetes-validations") {
        validate_rules(rules, &structural, path, ssv, cardinality, errs.is_empty(), total, &mut errs, &mut cel_errs);
    }
    (errs, cel_errs)
}

fn type_must_be(path: &Path, type_: &str, msg: &str) -> FieldError {
    if type_.is_empty() {
        FieldError::required(&path.child("type"), msg)
    } else {
        FieldError::invalid(&path.child("type"), type_, msg)
    }
}

/// Upstream's `validateMapListKeysMapSet`.
fn validate_map_list_keys_map_set(
    s: &Map<String, Value>,
    path: &Path,
    list_type: Option<&str>,
    map_keys: &[&str],
    errs: &mut ErrorList,
) {
    let Some(is) = s.get("items").and_then(Value::as_object) else { return };
    let Some(lt) = list_type.filter(|lt| *lt == "set" || *lt == "map") else { return };
    if flag(is, "nullable") {
        errs.push(FieldError::forbidden(
            &path.child("items").child("nullable"),
            format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
        ));
    }
    if lt != "map" {
        return;
    }
    let required: Vec<&str> = is
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let props = is.get("properties").and_then(Value::as_object);
    for k in map_keys {
        let Some(kp) = props.and_then(|p| p.get(*k)) else { continue };
        if !required.contains(k) && kp.get("default").is_none_or(Value::is_null) {
            errs.push(FieldError::required(
                &path.child("items").child("properties").key(k).child("default"),
                "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
            ));
        }
        if kp.get("nullable").and_then(Value::as_bool) == Some(true) {
            errs.push(FieldError::forbidden(
                &path.child("items").child("properties").key(k).child("nullable"),
                "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
            ));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn validate_rules(
    rules: &[Value],
    s: &Structural,
    path: &Path,
    ssv: &Ssv,
    cardinality: Option<u64>,
    schema_ok: bool,
    total: &mut TotalCost,
    errs: &mut ErrorList,
    cel_errs: &mut ErrorList,
) {
    let base = path.child("x-kubernetes-validations");
    let specs: Vec<RuleSpec> = rules.iter().map(RuleSpec::from_value).collect();
    for (i, r) in specs.iter().enumerate() {
        let rp = base.index(i);
        let trimmed_rule = r.rule.trim();
        let trimmed_msg = r.message.trim();
        if trimmed_rule.is_empty() {
            errs.push(FieldError::required(&rp.child("rule"), "rule is not specified"));
        } else if !r.message.is_empty() && trimmed_msg.is_empty() {
            errs.push(FieldError::invalid(&rp.child("message"), &r.message, "message must be non-empty if specified"));
        } else if trimmed_msg.contains(['\n', '\r']) {
            errs.push(FieldError::invalid(&rp.child("message"), &r.message, "message must not contain line breaks"));
        } else if trimmed_rule.contains(['\n', '\r']) && trimmed_msg.is_empty() {
            errs.push(FieldError::required(
                &rp.child("message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        if !r.message_expression.is_empty() && r.message_expression.trim().is_empty() {
            errs.push(FieldError::required(
                &rp.child("messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = &r.reason
            && !cel::SUPPORTED_REASONS.contains(&reason.as_str())
        {
            errs.push(FieldError::not_supported(&rp.child("reason"), reason.as_str(), &cel::SUPPORTED_REASONS));
        }
        if !r.field_path.is_empty() {
            if r.field_path.trim().is_empty() {
                errs.push(FieldError::invalid(
                    &rp.child("fieldPath"),
                    &r.field_path,
                    "fieldPath must be non-empty if specified",
                ));
            }
            if r.field_path.contains(['\n', '\r']) {
                errs.push(FieldError::invalid(
                    &rp.child("fieldPath"),
                    &r.field_path,
                    "fieldPath must not contain line breaks",
                ));
            }
            if cel::parse_field_path(&r.field_path, s, true).is_err() {
                errs.push(FieldError::invalid(&rp.child("fieldPath"), &r.field_path, "fieldPath must be a valid path"));
            }
        }
    }
    // Rules are only compiled on a schema without errors at or below this node.
    let Some(card) = cardinality.filter(|_| schema_ok && errs.is_empty()) else { return };
    for (i, r) in specs.iter().enumerate() {
        if r.rule.trim().is_empty() {
            continue;
        }
        let rp = base.index(i);
        let res = cel::compile(r, s);
        let cost = res.cost.saturating_mul(card);
        if cost > cel::PER_EXPRESSION_COST_LIMIT {
            cel_errs.push(FieldError::forbidden(
                &rp.child("rule"),
                cel::cost_error_message("estimated rule cost", cost, cel::PER_EXPRESSION_COST_LIMIT),
            ));
        }
        total.total = total.total.saturating_add(cost);
        if cost > 0 {
            total.paths.push(rp.child("rule"));
        }
        if let Err(e) = &res.rule {
            cel_errs.push(match e.kind {
                ErrorType::Required => FieldError::required(&rp.child("rule"), e.detail.clone()),
                _ => raw_invalid(&rp.child("rule"), r.go_repr(), e.detail.clone()),
            });
        }
        if let Some(me) = &res.message_error {
            cel_errs.push(raw_invalid(&rp.child("messageExpression"), r.go_repr(), me.clone()));
        } else if !r.message_expression.trim().is_empty() {
            let mcost = res.message_cost.saturating_mul(card);
            if mcost > cel::PER_EXPRESSION_COST_LIMIT {
                cel_errs.push(FieldError::forbidden(
                    &rp.child("messageExpression"),
                    cel::cost_error_message("estimated messageExpression cost", mcost, cel::PER_EXPRESSION_COST_LIMIT),
                ));
            }
            total.total = total.total.saturating_add(mcost);
        }
        if res.uses_old_self {
            if let Some(at) = &ssv.forbid_old_self {
                cel_errs.push(FieldError::invalid(
                    &rp.child("rule"),
                    &r.rule,
                    format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {at}"),
                ));
            }
        } else if let Some(b) = r.optional_old_self {
            cel_errs.push(FieldError::invalid(
                &rp.child("optionalOldSelf"),
                b,
                "may not be set if oldSelf is not used in rule",
            ));
        }
    }
    // Keep only the most expensive paths for the total-cost message (upstream keeps a few).
    if total.paths.len() > 4 {
        total.paths.drain(..total.paths.len() - 4);
    }
}

// ---------------------------------------------------------------------------------------------
// Structural schema invariants (upstream `schema/validation.go` and `schema/complete.go`)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Upstream's `ValidateStructural`: errors sorted by their text.
pub(crate) fn validate_structural(schema: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    invariants(schema, Level::Root, path, &mut errs);
    completeness(schema, path, &mut errs);
    errs.sort_by_key(ToString::to_string);
    errs
}

fn invariants(v: &Value, lvl: Level, path: &Path, errs: &mut ErrorList) {
    let Some(s) = v.as_object() else { return };
    let type_ = text(s, "type");
    if type_ == "array" && !s.get("items").is_some_and(Value::is_object) {
        errs.push(FieldError::required(&path.child("items"), "must be specified"));
    }
    if let Some(items @ Value::Object(_)) = s.get("items") {
        invariants(items, Level::Item, &path.child("items"), errs);
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        for (k, p) in props {
            invariants(p, Level::Field, &path.child("properties").key(k), errs);
        }
    }
    if let Some(ap) = s.get("additionalProperties").filter(|ap| !ap.is_null()) {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(&path.child("additionalProperties"), "must not be used at the root"));
        }
        if ap.is_object() {
            invariants(ap, Level::Field, &path.child("additionalProperties"), errs);
        }
    }
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        errs.push(FieldError::invalid(
            &path.child("x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        errs.push(FieldError::invalid(
            &path.child("x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(s.get("anyOf"));
    let skip_first_all_of_any_of = s
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .is_some_and(|first| is_int_or_string_any_of(first.get("anyOf")));
    value_validation(s, skip_any_of, skip_first_all_of_any_of, path, errs);

    let check_metadata = lvl == Level::Root || embedded;
    if embedded && type_ != "object" {
        errs.push(type_must_be(path, type_, "must be object if x-kubernetes-embedded-resource is true"));
    } else if type_.is_empty() && !int_or_string && !preserve {
        let msg = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(&path.child("type"), msg));
    }
    if embedded && s.get("additionalProperties").is_some_and(|ap| !ap.is_null()) {
        errs.push(FieldError::forbidden(
            &path.child("additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !type_.is_empty() && type_ != "object" {
        errs.push(FieldError::invalid(&path.child("type"), type_, "must be object at the root"));
    }
    let props = s.get("properties").and_then(Value::as_object);
    if check_metadata && let Some(props) = props {
        for (name, want) in [("kind", "string"), ("apiVersion", "string"), ("metadata", "object")] {
            if let Some(p) = props.get(name) {
                let t = str_of(p, "type");
                if t != want {
                    errs.push(FieldError::invalid(
                        &path.child("properties").key(name).child("type"),
                        t,
                        format!("must be {want}"),
                    ));
                }
            }
        }
    }
    if lvl == Level::Root
        && let Some(meta) = props.and_then(|p| p.get("metadata")).and_then(Value::as_object)
        && !metadata_schema_ok(meta)
    {
        errs.push(FieldError::forbidden(
            &path.child("properties").key("metadata"),
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
    if embedded && !preserve && props.is_none_or(|p| p.is_empty()) {
        errs.push(FieldError::required(
            &path.child("properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// The root `metadata` schema may only set `type` and restrict `name` and `generateName`.
fn metadata_schema_ok(meta: &Map<String, Value>) -> bool {
    meta.iter().all(|(k, v)| match k.as_str() {
        "type" | "default" => true,
        "properties" => v.as_object().is_none_or(|p| p.keys().all(|name| name == "name" || name == "generateName")),
        _ => is_zero(v),
    })
}

fn is_int_or_string_any_of(v: Option<&Value>) -> bool {
    let Some(Value::Array(branches)) = v else { return false };
    branches.len() == 2
        && branches[0] == serde_json::json!({"type": "integer"})
        && branches[1] == serde_json::json!({"type": "string"})
}

fn value_validation(
    s: &Map<String, Value>,
    skip_any_of: bool,
    skip_first_all_of: bool,
    path: &Path,
    errs: &mut ErrorList,
) {
    if !skip_any_of && let Some(Value::Array(bs)) = s.get("anyOf") {
        for (i, b) in bs.iter().enumerate() {
            nested(b, false, &path.child("anyOf").index(i), errs);
        }
    }
    if let Some(Value::Array(bs)) = s.get("allOf") {
        for (i, b) in bs.iter().enumerate() {
            nested(b, skip_first_all_of && i == 0, &path.child("allOf").index(i), errs);
        }
    }
    if let Some(Value::Array(bs)) = s.get("oneOf") {
        for (i, b) in bs.iter().enumerate() {
            nested(b, false, &path.child("oneOf").index(i), errs);
        }
    }
    if let Some(not) = s.get("not") {
        nested(not, false, &path.child("not"), errs);
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str)
        && !p.is_empty()
        && compile_pattern(p).is_none()
    {
        let why = regex::Regex::new(p).err().map_or_else(|| "pattern too large".to_string(), |e| e.to_string());
        errs.push(FieldError::invalid(
            &path.child("pattern"),
            p,
            format!("must be a valid regular expression, but isn't: {why}"),
        ));
    }
}

/// Upstream's `validateNestedValueValidation`: what a branch of a junctor may not say.
fn nested(v: &Value, skip_any_of: bool, path: &Path, errs: &mut ErrorList) {
    let Some(s) = v.as_object() else { return };
    value_validation(s, skip_any_of, false, path, errs);
    if let Some(items) = s.get("items") {
        nested(items, false, &path.child("items"), errs);
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        for (k, p) in props {
            nested(p, false, &path.child("properties").key(k), errs);
        }
    }
    let checks: [(&str, &str); 12] = [
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
        ("x-kubernetes-embedded-resource", "must be false to be structural"),
        ("x-kubernetes-int-or-string", "must be false to be structural"),
        ("x-kubernetes-list-map-keys", "must be empty to be structural"),
        ("x-kubernetes-list-type", "must be undefined to be structural"),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ];
    for (key, msg) in checks {
        if s.get(key).is_some_and(|x| !is_zero(x) || (key == "additionalProperties" && !x.is_null())) {
            errs.push(FieldError::forbidden(&path.child(key), msg));
        }
    }
    if s.get("properties").and_then(Value::as_object).is_some_and(|p| p.contains_key("metadata")) {
        errs.push(FieldError::forbidden(
            &path.child("properties").key("metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Upstream's `validateStructuralCompleteness`: whatever a junctor branch talks about (a
/// property, items) must also be specified structurally.
fn completeness(s: &Value, path: &Path, errs: &mut ErrorList) {
    let Some(obj) = s.as_object() else { return };
    junctor_completeness(obj, Some(s), path, path, errs);
    if let Some(Value::Object(props)) = obj.get("properties") {
        for (k, p) in props {
            completeness(p, &path.child("properties").key(k), errs);
        }
    }
    if let Some(items) = obj.get("items") {
        completeness(items, &path.child("items"), errs);
    }
    if let Some(ap) = obj.get("additionalProperties") {
        completeness(ap, &path.child("additionalProperties"), errs);
    }
}

fn junctor_completeness(v: &Map<String, Value>, s: Option<&Value>, s_path: &Path, v_path: &Path, errs: &mut ErrorList) {
    if let Some(not) = v.get("not") {
        nested_completeness(not, s, s_path, &v_path.child("not"), errs);
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(bs)) = v.get(junctor) {
            for (i, b) in bs.iter().enumerate() {
                nested_completeness(b, s, s_path, &v_path.child(junctor).index(i), errs);
            }
        }
    }
}

fn nested_completeness(v: &Value, s: Option<&Value>, s_path: &Path, v_path: &Path, errs: &mut ErrorList) {
    let Some(vo) = v.as_object() else { return };
    let Some(s) = s else {
        errs.push(FieldError::required(s_path, format!("because it is defined in {v_path}")));
        return;
    };
    junctor_completeness(vo, Some(s), s_path, v_path, errs);
    if let Some(items) = vo.get("items") {
        nested_completeness(items, s.get("items"), &s_path.child("items"), &v_path.child("items"), errs);
    }
    if let Some(Value::Object(props)) = vo.get("properties") {
        for (k, p) in props {
            let sp = s
                .get("properties")
                .and_then(|ps| ps.get(k))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()));
            nested_completeness(p, sp, &s_path.child("properties").key(k), &v_path.child("properties").key(k), errs);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults (upstream `defaulting.ValidateDefaults`)
// ---------------------------------------------------------------------------------------------

/// Every `default` must survive pruning unchanged and validate against its own schema.
fn validate_defaults(s: &Structural, raw: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    defaults_walk(s, raw, path, true, &mut errs);
    errs
}

fn defaults_walk(s: &Structural, raw: &Value, path: &Path, is_root: bool, errs: &mut ErrorList) {
    if let Some(d) = &s.default
        && !is_root
    {
        let dpath = path.child("default");
        let mut pruned = d.clone();
        if prune::prune_value(&mut pruned, s) {
            errs.push(FieldError::invalid(&dpath, d, "must not have unknown fields"));
        } else {
            let mut derrs = ErrorList::new();
            values::validate(d, s, &dpath, None, &mut derrs);
            super::listtype::validate(d, s, &dpath, &mut derrs);
            errs.extend(derrs);
        }
    }
    for (k, p) in &s.properties {
        // Defaults in top-level metadata, kind and apiVersion are refused elsewhere.
        if is_root && ["metadata", "kind", "apiVersion"].contains(&k.as_str()) {
            continue;
        }
        let raw_child = raw.get("properties").and_then(|ps| ps.get(k)).unwrap_or(&Value::Null);
        defaults_walk(p, raw_child, &path.child("properties").key(k), false, errs);
    }
    if let Some(is) = s.items.as_deref() {
        defaults_walk(is, raw.get("items").unwrap_or(&Value::Null), &path.child("items"), false, errs);
    }
    if let Some(ap) = s.additional_properties.as_deref() {
        defaults_walk(
            ap,
            raw.get("additionalProperties").unwrap_or(&Value::Null),
            &path.child("additionalProperties"),
            false,
            errs,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(schema: Value, status: bool) -> Vec<String> {
        validate_validation(&json!({"openAPIV3Schema": schema}), status, &Path::new("spec").child("validation"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn structural_errors() {
        let e =
            errors(json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}), false);
        assert_eq!(
            e,
            [
                "spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
            ]
        );
        let e = errors(json!({"type": "object", "properties": {"l": {"type": "array"}}}), false);
        assert_eq!(e, ["spec.validation.openAPIV3Schema.properties[l].items: Required value: must be specified"]);
        let e = errors(
            json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}),
            false,
        );
        assert_eq!(
            e,
            [
                "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
            ]
        );
        let e = errors(json!({"type": "object", "properties": {"x": {"type": "string", "$ref": "#/x"}}}), false);
        assert_eq!(e, ["spec.validation.openAPIV3Schema.properties[x].$ref: Forbidden: $ref is not supported"]);
        let e = errors(json!({"type": "object", "anyOf": [{"type": "object", "properties": {"q": {}}}]}), false);
        assert!(
            e.contains(
                &"spec.validation.openAPIV3Schema.anyOf[0].type: Forbidden: must be empty to be structural".to_string()
            ),
            "{e:?}"
        );
        assert!(e.contains(&"spec.validation.openAPIV3Schema.properties[q]: Required value: because it is defined in spec.validation.openAPIV3Schema.anyOf[0].properties[q]".to_string()), "{e:?}");
    }

    #[test]
    fn keywords_and_extensions() {
        let mut e = errors(
            json!({"type": "object", "properties": {
                "u": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
                "m": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
                "t": {"type": "string", "x-kubernetes-list-type": "set"},
            }}),
            false,
        );
        e.sort();
        assert_eq!(
            e,
            [
                "spec.validation.openAPIV3Schema.properties[m].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map",
                "spec.validation.openAPIV3Schema.properties[t].type: Invalid value: \"string\": must be array if x-kubernetes-list-type is specified",
                "spec.validation.openAPIV3Schema.properties[u].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ]
        );
    }

    #[test]
    fn status_root_and_defaults() {
        let e = errors(json!({"type": "object", "minProperties": 1}), true);
        assert!(e[0].starts_with("spec.validation.openAPIV3Schema: Invalid value: "), "{e:?}");
        assert!(e[0].ends_with("fields are allowed at the root of the schema if the status subresource is enabled"));
        let e = errors(
            json!({"type": "object", "properties": {
            "metadata": {"type": "object", "default": {}},
            "spec": {"type": "object", "properties": {"r": {"type": "integer", "default": "x"}, "o": {"type": "object", "default": {"z": 1}}}}}}),
            false,
        );
        assert!(e.contains(&"spec.validation.openAPIV3Schema.properties[metadata].default: Forbidden: must not be set in top-level metadata".to_string()), "{e:?}");
        let e = errors(
            json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"r": {"type": "integer", "default": "x"}, "o": {"type": "object", "default": {"z": 1}}}}}}),
            false,
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains("properties[o].default: Invalid value: {\"z\":1}: must not have unknown fields"),
            "{e:?}"
        );
        assert!(e[1].contains("properties[r].default: Invalid value: \"string\""), "{e:?}");
    }

    #[test]
    fn rules_compile_and_cost() {
        let e = errors(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"n": {"type": "integer"}, "l": {"type": "array", "items": {"type": "string"}}},
            "x-kubernetes-validations": [
                {"rule": "self.n >"},
                {"rule": "self.l.all(a, self.l.all(b, a != b))"},
                {"rule": "self.n > 0", "reason": "Bogus"},
            ]}}}),
            false,
        );
        assert!(e.iter().any(|m| m.starts_with("spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[2].reason: Unsupported value: \"Bogus\"")), "{e:?}");
        let e = errors(
            json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"n": {"type": "integer"}, "l": {"type": "array", "items": {"type": "string"}}},
            "x-kubernetes-validations": [
                {"rule": "self.n >"},
                {"rule": "self.l.all(a, self.l.all(b, a != b))"},
            ]}}}),
            false,
        );
        assert!(e[0].starts_with("spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.n >\""), "{e:?}");
        assert!(e[0].contains(": compilation failed: ERROR: <input>:1:"), "{e:?}");
        assert!(e[1].starts_with("spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[1].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x"), "{e:?}");
        let e = errors(
            json!({"type": "object", "properties": {"l": {"type": "array", "items": {"type": "object",
            "properties": {"a": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.a == oldSelf.a"}]}}}}),
            false,
        );
        assert_eq!(
            e,
            [
                "spec.validation.openAPIV3Schema.properties[l].items.x-kubernetes-validations[0].rule: Invalid value: \"self.a == oldSelf.a\": oldSelf cannot be used on the uncorrelatable portion of the schema within spec.validation.openAPIV3Schema.properties[l]"
            ]
        );
    }
}
