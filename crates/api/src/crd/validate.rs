//! Validation, defaulting and preparation of `CustomResourceDefinition` objects themselves
//! (upstream's `apis/apiextensions/validation`, `v1/defaults.go` and the CRD registry strategy),
//! with upstream's messages and field paths.
//!
//! Upstream validates the *internal* form of a CRD, into which a v1 object is converted by
//! lifting per-version `schema`, `subresources`, `additionalPrinterColumns` and
//! `selectableFields` to the top level when every version has the same value. Error paths show
//! it: a single-version CRD reports `spec.validation.openAPIV3Schema.properties[spec].type`, while
//! a CRD whose versions differ reports `spec.versions[1].schema.openAPIV3Schema…`. [`Lifted`]
//! reproduces that so paths match.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

use super::schema_check::{raw_invalid, validate_validation};
use super::structural::{Structural, str_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::{Admitted, NameRule, ObjectStrategy, Operation, StrategyError, decode_tracking};
use crate::validation;

/// Printer column types and formats upstream accepts (`sets.List` order: sorted).
const COLUMN_TYPES: &str = "boolean,date,integer,number,string";
const COLUMN_TYPE_LIST: [&str; 5] = ["boolean", "date", "integer", "number", "string"];
const COLUMN_FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";
const COLUMN_FORMAT_LIST: [&str; 8] = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"];
/// Upstream's `MaxSelectableFields`.
const MAX_SELECTABLE_FIELDS: usize = 8;
/// The annotation protected groups (`*.k8s.io`, `*.kubernetes.io`) need.
const API_APPROVAL_ANNOTATION: &str = "api-approved.kubernetes.io";

/// A v1 CRD spec seen as upstream's internal form: per-version fields that are identical in
/// every version are lifted to the top level (and absent from the versions).
pub(crate) struct Lifted<'a> {
    pub(crate) versions: &'a [Value],
    pub(crate) validation: Option<&'a Value>,
    pub(crate) subresources: Option<&'a Value>,
    pub(crate) columns: Option<&'a Value>,
    pub(crate) selectable: Option<&'a Value>,
    lifted: [bool; 4],
}

const SCHEMA: usize = 0;
const SUBRESOURCES: usize = 1;
const COLUMNS: usize = 2;
const SELECTABLE: usize = 3;
const PER_VERSION_KEYS: [&str; 4] = ["schema", "subresources", "additionalPrinterColumns", "selectableFields"];

impl<'a> Lifted<'a> {
    pub(crate) fn new(spec: &'a Value) -> Lifted<'a> {
        let versions = spec.get("versions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let mut lifted = [false; 4];
        let mut tops: [Option<&Value>; 4] = [None; 4];
        if !versions.is_empty() {
            for (i, key) in PER_VERSION_KEYS.iter().enumerate() {
                let first = normalized(versions[0].get(*key));
                if versions.iter().all(|v| normalized(v.get(*key)) == first) {
                    lifted[i] = true;
                    tops[i] = first;
                }
            }
        }
        Lifted {
            versions,
            validation: tops[SCHEMA],
            subresources: tops[SUBRESOURCES],
            columns: tops[COLUMNS],
            selectable: tops[SELECTABLE],
            lifted,
        }
    }

    /// A version's own value of a per-version field (absent when it was lifted).
    fn own(&self, version: &'a Value, field: usize) -> Option<&'a Value> {
        if self.lifted[field] { None } else { normalized(version.get(PER_VERSION_KEYS[field])) }
    }

    /// The subresources that apply to `version` (upstream's `getSubresourcesForVersion`).
    fn subresources_for(&self, version: &'a Value) -> Option<&'a Value> {
        if self.lifted[SUBRESOURCES] { self.subresources } else { normalized(version.get("subresources")) }
    }

    fn any_status(&self) -> bool {
        self.versions
            .iter()
            .any(|v| self.subresources_for(v).is_some_and(|s| s.get("status").is_some_and(|x| !x.is_null())))
    }
}

/// Missing, null and empty lists are the same (Go's semantic equality of nil and empty).
fn normalized(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null() && !v.as_array().is_some_and(Vec::is_empty))
}

fn has_status(sub: Option<&Value>) -> bool {
    sub.and_then(|s| s.get("status")).is_some_and(|s| !s.is_null())
}

/// Validates a CRD on create (after [`prepare_crd_for_create`] and [`default_crd`]).
pub fn validate_crd(crd: &Value) -> ErrorList {
    let mut errs = validate_meta(crd);
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    errs.extend(validate_spec(spec, &Path::new("spec")));
    errs.extend(validate_status(crd));
    errs.extend(validate_stored_versions(crd));
    errs.extend(validate_api_approval(crd, None));
    errs.extend(validate_preserve_unknown_fields(crd, None));
    errs
}

/// Validates an update of a CRD's main resource (after [`prepare_crd_for_update`]).
pub fn validate_crd_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_meta(new);
    let spec = new.get("spec").unwrap_or(&Value::Null);
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    let spec_path = Path::new("spec");
    errs.extend(validate_spec(spec, &spec_path));
    if is_established(old) {
        // These determine the storage and cannot change once the CRD serves.
        errs.extend(immutable(spec.get("scope"), old_spec.get("scope"), &spec_path.child("scope")));
        errs.extend(immutable(
            names(spec).get("kind"),
            names(old_spec).get("kind"),
            &spec_path.child("names").child("kind"),
        ));
    }
    // Both are part of the CRD's name, which never changes.
    errs.extend(immutable(spec.get("group"), old_spec.get("group"), &spec_path.child("group")));
    errs.extend(immutable(
        names(spec).get("plural"),
        names(old_spec).get("plural"),
        &spec_path.child("names").child("plural"),
    ));
    errs.extend(validate_status(new));
    errs.extend(validate_stored_versions(new));
    errs.extend(validate_api_approval(new, Some(old)));
    errs.extend(validate_preserve_unknown_fields(new, Some(old)));
    errs
}

/// Validates an update through `customresourcedefinitions/status`.
pub fn validate_crd_status_update(new: &Value, _old: &Value) -> ErrorList {
    validate_status(new)
}

fn immutable(new: Option<&Value>, old: Option<&Value>, path: &Path) -> ErrorList {
    let n = new.unwrap_or(&Value::Null);
    if n == old.unwrap_or(&Value::Null) {
        return Vec::new();
    }
    vec![FieldError::invalid(path, n, validation::IMMUTABLE_MSG)]
}

fn names(spec: &Value) -> &Value {
    spec.get("names").unwrap_or(&Value::Null)
}

fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| str_of(c, "type") == "Established" && str_of(c, "status") == "True"))
}

fn validate_meta(crd: &Value) -> ErrorList {
    let mut errs = validation::validate_object_meta(crd, NameRule::Subdomain, &Path::new("metadata"));
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    let required = format!("{}.{}", str_of(names(spec), "plural"), str_of(spec, "group"));
    if !name.is_empty() && name != required {
        errs.push(FieldError::invalid(
            &Path::new("metadata").child("name"),
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    errs
}

fn validate_spec(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let group = str_of(spec, "group");
    if group.is_empty() {
        errs.push(FieldError::required(&path.child("group"), ""));
    } else {
        let msgs = validation::dns1123_subdomain(group);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(&path.child("group"), group, msgs.join(",")));
        } else if !group.contains('.') {
            errs.push(FieldError::invalid(&path.child("group"), group, "should be a domain with at least one dot"));
        }
    }
    match str_of(spec, "scope") {
        "" => errs.push(FieldError::required(&path.child("scope"), "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(&path.child("scope"), other, &["Cluster", "Namespaced"])),
    }

    let lifted = Lifted::new(spec);
    let vpath = path.child("versions");
    if lifted.validation.and_then(|v| v.get("openAPIV3Schema")).is_none() {
        for (i, v) in lifted.versions.iter().enumerate() {
            if v.pointer("/schema/openAPIV3Schema").is_none_or(Value::is_null) {
                errs.push(FieldError::required(
                    &vpath.index(i).child("schema").child("openAPIV3Schema"),
                    "schemas are required",
                ));
            }
        }
    }
    let mut storage = 0;
    let mut seen = std::collections::HashSet::new();
    let mut unique = true;
    for (i, v) in lifted.versions.iter().enumerate() {
        let name = str_of(v, "name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        if !seen.insert(name) {
            unique = false;
        }
        let msgs = validation::dns1035_label(name);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(&vpath.index(i).child("name"), name, msgs.join(",")));
        }
        errs.extend(validate_version(&lifted, v, &vpath.index(i)));
    }
    let versions_json = Value::Array(lifted.versions.to_vec()).to_string();
    if !unique {
        errs.push(raw_invalid(&vpath, versions_json.clone(), "must contain unique version names"));
    }
    if storage != 1 {
        errs.push(raw_invalid(&vpath, versions_json, "must have exactly one version marked as storage version"));
    }
    // The internal form's `spec.version` is versions[0].name, checked again on its own path.
    if let Some(first) = lifted.versions.first() {
        let name = str_of(first, "name");
        let msgs = validation::dns1035_label(name);
        if !name.is_empty() && !msgs.is_empty() {
            errs.push(FieldError::invalid(&path.child("version"), name, msgs.join(",")));
        }
    }
    let n = names(spec);
    for key in ["plural", "singular", "kind", "listKind"] {
        if str_of(n, key).is_empty() {
            errs.push(FieldError::required(&path.child("names").child(key), ""));
        }
    }
    errs.extend(validate_names(n, &path.child("names")));
    if let Some(v) = lifted.validation {
        errs.extend(validate_validation(v, lifted.any_status(), &path.child("validation")));
    }
    errs.extend(validate_subresources(lifted.subresources, &path.child("subresources")));
    if let Some(Value::Array(cols)) = lifted.columns {
        for (i, c) in cols.iter().enumerate() {
            errs.extend(validate_column(c, &path.child("additionalPrinterColumns").index(i)));
        }
    }
    if let Some(Value::Array(fields)) = lifted.selectable {
        match lifted.validation.and_then(|v| v.get("openAPIV3Schema")) {
            None => errs.push(FieldError::invalid(
                &path.child("selectableFields"),
                "",
                "selectableFields may only be set when validations.schema is included",
            )),
            Some(schema) => errs.extend(validate_selectable_fields(fields, schema, &path.child("selectableFields"))),
        }
    }
    errs.extend(validate_conversion(spec.get("conversion"), &path.child("conversion")));
    errs
}

fn validate_version(lifted: &Lifted<'_>, version: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let deprecated = version.get("deprecated").and_then(Value::as_bool).unwrap_or(false);
    if let Some(w) = version.get("deprecationWarning").and_then(Value::as_str) {
        let p = path.child("deprecationWarning");
        if !deprecated {
            errs.push(FieldError::invalid(&p, w, "can only be set for deprecated versions"));
        } else {
            if w.len() > 256 {
                errs.push(FieldError::invalid(&p, w, "must be <= 256 characters long"));
            }
            if w.is_empty() {
                errs.push(FieldError::invalid(&p, w, "must not be an empty string"));
            }
            if let Some((i, _)) = w.char_indices().find(|(_, c)| c.is_control()) {
                errs.push(FieldError::invalid(
                    &p,
                    w,
                    format!("must only contain printable UTF-8 characters; control character found at index {i}"),
                ));
            }
        }
    }
    let status = has_status(lifted.subresources_for(version));
    if let Some(schema) = lifted.own(version, SCHEMA) {
        errs.extend(validate_validation(schema, status, &path.child("schema")));
    }
    errs.extend(validate_subresources(lifted.own(version, SUBRESOURCES), &path.child("subresources")));
    if let Some(Value::Array(cols)) = lifted.own(version, COLUMNS) {
        for (i, c) in cols.iter().enumerate() {
            errs.extend(validate_column(c, &path.child("additionalPrinterColumns").index(i)));
        }
    }
    if let Some(Value::Array(fields)) = lifted.own(version, SELECTABLE) {
        // The schema that applies to this version, whether lifted or its own.
        let schema = lifted.own(version, SCHEMA).or(lifted.validation).and_then(|v| v.get("openAPIV3Schema"));
        match schema {
            None => errs.push(FieldError::invalid(
                &path.child("selectableFields"),
                "",
                "selectableFields may only be set when version.schema.openAPIV3Schema is not included",
            )),
            Some(schema) => errs.extend(validate_selectable_fields(fields, schema, &path.child("selectableFields"))),
        }
    }
    errs
}

/// Upstream's `ValidateCustomResourceDefinitionNames` (for `spec.names` and
/// `status.acceptedNames`).
fn validate_names(n: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in ["plural", "singular"] {
        let v = str_of(n, key);
        let msgs = validation::dns1035_label(v);
        if !v.is_empty() && !msgs.is_empty() {
            errs.push(FieldError::invalid(&path.child(key), v, msgs.join(",")));
        }
    }
    for key in ["kind", "listKind"] {
        let v = str_of(n, key);
        let msgs = validation::dns1035_label(&v.to_lowercase());
        if !v.is_empty() && !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &path.child(key),
                v,
                format!("may have mixed case, but should otherwise match: {}", msgs.join(",")),
            ));
        }
    }
    for (i, s) in string_items(n.get("shortNames")).iter().enumerate() {
        let msgs = validation::dns1035_label(s);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(&path.child("shortNames").index(i), s.as_str(), msgs.join(",")));
        }
    }
    let kind = str_of(n, "kind");
    if !kind.is_empty() && kind == str_of(n, "listKind") {
        errs.push(FieldError::invalid(&path.child("listKind"), kind, "kind and listKind may not be the same"));
    }
    for (i, c) in string_items(n.get("categories")).iter().enumerate() {
        let msgs = validation::dns1035_label(c);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(&path.child("categories").index(i), c.as_str(), msgs.join(",")));
        }
    }
    errs
}

fn string_items(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

fn validate_subresources(sub: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(scale) = sub.and_then(|s| s.get("scale")).filter(|s| s.is_object()) else {
        return errs;
    };
    for (key, prefix, under) in [("specReplicasPath", ".spec.", ".spec"), ("statusReplicasPath", ".status.", ".status")]
    {
        let p = path.child(&format!("scale.{key}"));
        let v = str_of(scale, key);
        if v.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else {
            let simple = validate_simple_json_path(v, &p);
            if !simple.is_empty() {
                errs.extend(simple);
            } else if !v.starts_with(prefix) {
                errs.push(FieldError::invalid(&p, v, format!("should be a json path under {under}")));
            }
        }
    }
    let selector = str_of(scale, "labelSelectorPath");
    if !selector.is_empty() {
        let p = path.child("scale.labelSelectorPath");
        let simple = validate_simple_json_path(selector, &p);
        if !simple.is_empty() {
            errs.extend(simple);
        } else if !selector.starts_with(".spec.") && !selector.starts_with(".status.") {
            errs.push(FieldError::invalid(&p, selector, "should be a json path under either .spec or .status"));
        }
    }
    errs
}

fn validate_simple_json_path(s: &str, path: &Path) -> ErrorList {
    if s.is_empty() {
        return vec![FieldError::invalid(path, s, "must not be empty")];
    }
    if !s.starts_with('.') {
        return vec![FieldError::invalid(path, s, "must be a simple json path starting with .")];
    }
    Vec::new()
}

fn validate_column(col: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if str_of(col, "name").is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    let t = str_of(col, "type");
    if t.is_empty() {
        errs.push(FieldError::required(&path.child("type"), format!("must be one of {COLUMN_TYPES}")));
    } else if !COLUMN_TYPE_LIST.contains(&t) {
        errs.push(FieldError::invalid(&path.child("type"), t, format!("must be one of {COLUMN_TYPES}")));
    }
    let f = str_of(col, "format");
    if !f.is_empty() && !COLUMN_FORMAT_LIST.contains(&f) {
        errs.push(FieldError::invalid(&path.child("format"), f, format!("must be one of {COLUMN_FORMATS}")));
    }
    let jp = str_of(col, "jsonPath");
    if jp.is_empty() {
        errs.push(FieldError::required(&path.child("JSONPath"), ""));
    } else {
        errs.extend(validate_simple_json_path(jp, &path.child("JSONPath")));
    }
    errs
}

fn validate_selectable_fields(fields: &[Value], schema: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let ss = Structural::from_value(schema);
    let mut unique = std::collections::HashSet::new();
    for (i, f) in fields.iter().enumerate() {
        let p = path.index(i).child("jsonPath");
        let jp = str_of(f, "jsonPath");
        if jp.is_empty() {
            errs.push(FieldError::required(&p, ""));
            continue;
        }
        let (segs, target) = match super::cel::parse_field_path(jp, &ss, false) {
            Ok(found) => found,
            Err(e) => {
                errs.push(FieldError::invalid(&p, jp, format!("is an invalid path: {e}")));
                continue;
            }
        };
        if segs.first().map(String::as_str) == Some("metadata") {
            errs.push(FieldError::invalid(&p, jp, "must not point to fields in metadata"));
        }
        if !["string", "boolean", "integer"].contains(&target.type_.as_str()) {
            errs.push(FieldError::invalid(
                &p,
                jp,
                "must point to a field of type string, boolean or integer. Enum string fields and strings with \
                 formats are allowed.",
            ));
        }
        if !unique.insert(segs.join(".")) {
            errs.push(FieldError::duplicate(&p, jp));
        }
    }
    if unique.len() > MAX_SELECTABLE_FIELDS {
        errs.push(FieldError::too_many(path, unique.len(), MAX_SELECTABLE_FIELDS));
    }
    errs
}

fn validate_conversion(conversion: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(c) = conversion.filter(|c| c.is_object()) else { return errs };
    let webhook = c.get("webhook").filter(|w| !w.is_null());
    match str_of(c, "strategy") {
        "" => errs.push(FieldError::required(&path.child("strategy"), "")),
        "None" => {
            if webhook.and_then(|w| w.get("clientConfig")).is_some_and(|x| !x.is_null()) {
                errs.push(FieldError::forbidden(
                    &path.child("webhookClientConfig"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
            if webhook
                .and_then(|w| w.get("conversionReviewVersions"))
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
            {
                errs.push(FieldError::forbidden(
                    &path.child("conversionReviewVersions"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        // Skiff has no conversion webhook client: refuse rather than accept a CRD whose
        // versions would be served unconverted.
        "Webhook" => errs.push(FieldError::invalid(
            &path.child("strategy"),
            "Webhook",
            "conversion webhooks are not supported by Skiff; use strategy None (every version is then served from \
             the same stored fields with only apiVersion rewritten)",
        )),
        other => errs.push(FieldError::not_supported(&path.child("strategy"), other, &["None", "Webhook"])),
    }
    errs
}

fn validate_status(crd: &Value) -> ErrorList {
    let accepted = crd.pointer("/status/acceptedNames").unwrap_or(&Value::Null);
    validate_names(accepted, &Path::new("status").child("acceptedNames"))
}

fn validate_stored_versions(crd: &Value) -> ErrorList {
    let path = Path::new("status").child("storedVersions");
    let stored = string_items(crd.pointer("/status/storedVersions"));
    if stored.is_empty() {
        return vec![raw_invalid(&path, "[]string(nil)".into(), "must have at least one stored version")];
    }
    let mut errs = ErrorList::new();
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let stored_json = Value::from(stored.clone());
    for v in versions {
        let name = str_of(v, "name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) && !stored.iter().any(|s| s == name) {
            errs.push(FieldError::invalid(&path, &stored_json, format!("must have the storage version {name}")));
        }
    }
    for (i, s) in stored.iter().enumerate() {
        if !versions.iter().any(|v| str_of(v, "name") == s) {
            errs.push(FieldError::invalid(
                &path.index(i),
                s.as_str(),
                format!(
                    "missing from spec.versions; {s} was previously a storage version, and must remain in \
                     spec.versions until a storage migration ensures no data remains persisted in {s} and removes \
                     {s} from status.storedVersions"
                ),
            ));
        }
    }
    errs
}

/// Groups owned by the Kubernetes project need an approval annotation (KEP 1111).
fn validate_api_approval(crd: &Value, old: Option<&Value>) -> ErrorList {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
    let protected = group == "k8s.io"
        || group == "kubernetes.io"
        || group.ends_with(".k8s.io")
        || group.ends_with(".kubernetes.io");
    if !protected {
        return Vec::new();
    }
    let state = |o: &Value| approval_state(o.pointer(&format!("/metadata/annotations/{API_APPROVAL_ANNOTATION}")));
    let new_state = state(crd);
    if old.is_some_and(|o| state(o) == new_state) {
        return Vec::new();
    }
    let path = Path::new("metadata").child("annotations").key(API_APPROVAL_ANNOTATION);
    let value = crd
        .pointer(&format!("/metadata/annotations/{API_APPROVAL_ANNOTATION}"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    match new_state {
        Approval::Missing => vec![FieldError::required(
            &path,
            format!(
                "protected groups must have approval annotation {API_APPROVAL_ANNOTATION:?}, see \
                 https://github.com/kubernetes/enhancements/pull/1111"
            ),
        )],
        Approval::Invalid => vec![FieldError::invalid(
            &path,
            value,
            format!(
                "protected groups must have approval annotation {API_APPROVAL_ANNOTATION:?} with either a URL or a \
                 reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"
            ),
        )],
        Approval::Ok => Vec::new(),
    }
}

#[derive(PartialEq)]
enum Approval {
    Missing,
    Invalid,
    Ok,
}

fn approval_state(v: Option<&Value>) -> Approval {
    match v.and_then(Value::as_str) {
        None | Some("") => Approval::Missing,
        Some(s) if s.starts_with("unapproved") => Approval::Ok,
        Some(s) if (s.starts_with("https://") || s.starts_with("http://")) && s.len() > 8 => Approval::Ok,
        Some(_) => Approval::Invalid,
    }
}

fn validate_preserve_unknown_fields(crd: &Value, old: Option<&Value>) -> ErrorList {
    let flag = |c: &Value| c.pointer("/spec/preserveUnknownFields").and_then(Value::as_bool) == Some(true);
    if old.is_some_and(flag) || !flag(crd) {
        return Vec::new();
    }
    vec![FieldError::invalid(
        &Path::new("spec").child("preserveUnknownFields"),
        true,
        "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
    )]
}

/// Upstream's v1 defaulting: `singular` is the lowercased kind, `listKind` is `<Kind>List`,
/// conversion is `None`, webhook service ports are 443.
pub fn default_crd(crd: &mut Value) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else { return };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        if names.get("singular").and_then(Value::as_str).unwrap_or_default().is_empty() {
            names.insert("singular".into(), Value::String(kind.to_lowercase()));
        }
        if names.get("listKind").and_then(Value::as_str).unwrap_or_default().is_empty() && !kind.is_empty() {
            names.insert("listKind".into(), Value::String(format!("{kind}List")));
        }
    }
    match spec.get_mut("conversion") {
        Some(c @ Value::Object(_)) => {
            if let Some(svc) = c.pointer_mut("/webhook/clientConfig/service").and_then(Value::as_object_mut)
                && svc.get("port").is_none_or(Value::is_null)
            {
                svc.insert("port".into(), json!(443));
            }
        }
        _ => {
            spec.insert("conversion".into(), json!({"strategy": "None"}));
        }
    }
}

/// What upstream's CRD strategy does on create: status cleared and `storedVersions` seeded with
/// the storage version; generation starts at 1.
pub fn prepare_crd_for_create(crd: &mut Value) {
    let storage = storage_version(crd);
    if let Some(obj) = crd.as_object_mut() {
        let mut status = json!({"acceptedNames": {"plural": "", "kind": ""}});
        if let Some(v) = storage {
            status["storedVersions"] = json!([v]);
        }
        obj.insert("status".into(), status);
    }
    if let Some(meta) = crd.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("generation".into(), json!(1));
    }
}

/// On update of the main resource: status is kept from `old`, the (new) storage version is
/// added to `storedVersions`, and generation is bumped when the spec changed.
pub fn prepare_crd_for_update(new: &mut Value, old: &Value) {
    let old_status = old.get("status").cloned().unwrap_or_else(|| json!({}));
    let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
    let changed = new.get("spec") != old.get("spec");
    if let Some(obj) = new.as_object_mut() {
        obj.insert("status".into(), old_status);
    }
    add_stored_version(new);
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("generation".into(), json!(if changed { generation + 1 } else { generation }));
    }
}

/// On update through `/status`: only the status may change.
pub fn prepare_crd_for_status_update(new: &mut Value, old: &Value) {
    if let Some(spec) = old.get("spec") {
        new["spec"] = spec.clone();
    }
    for key in ["labels", "annotations", "finalizers", "ownerReferences", "generation"] {
        let old_v = old.pointer(&format!("/metadata/{key}")).cloned();
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            match old_v {
                Some(v) => meta.insert(key.into(), v),
                None => meta.remove(key),
            };
        }
    }
}

fn storage_version(crd: &Value) -> Option<String> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| str_of(v, "name").to_string())
}

fn add_stored_version(crd: &mut Value) {
    let Some(storage) = storage_version(crd) else { return };
    let Some(status) = crd.get_mut("status").and_then(Value::as_object_mut) else { return };
    let stored = status.entry("storedVersions").or_insert_with(|| json!([]));
    if !stored.is_array() {
        *stored = json!([]);
    }
    if let Some(list) = stored.as_array_mut()
        && !list.iter().any(|v| v.as_str() == Some(&storage))
    {
        list.push(Value::String(storage));
    }
}

/// The strategy of the `customresourcedefinitions` resource itself (apiextensions.k8s.io/v1):
/// the typed decode reports unknown fields and wrong JSON types, then the CRD is prepared,
/// defaulted and validated as upstream does.
#[derive(Clone, Copy, Debug, Default)]
pub struct CustomResourceDefinitionStrategy;

impl ObjectStrategy for CustomResourceDefinitionStrategy {
    fn admit(
        &self,
        object: Value,
        op: Operation<'_>,
        unknown_fields: &mut Vec<String>,
    ) -> Result<Admitted, StrategyError> {
        let typed: CustomResourceDefinition = decode_tracking(object, unknown_fields).map_err(StrategyError::Decode)?;
        let mut obj = serde_json::to_value(&typed).map_err(|e| StrategyError::Decode(e.to_string()))?;
        whole_number_keywords(&mut obj);
        let errs = match op {
            Operation::Create => {
                prepare_crd_for_create(&mut obj);
                default_crd(&mut obj);
                validate_crd(&obj)
            }
            Operation::Update { old } => {
                prepare_crd_for_update(&mut obj, old);
                default_crd(&mut obj);
                validate_crd_update(&obj, old)
            }
            Operation::UpdateStatus { old } => {
                prepare_crd_for_status_update(&mut obj, old);
                validate_crd_status_update(&obj, old)
            }
            Operation::System { old } => {
                default_crd(&mut obj);
                validate_crd_update(&obj, old)
            }
        };
        if !errs.is_empty() {
            return Err(StrategyError::Invalid(errs));
        }
        Ok(Admitted { object: obj, warnings: Vec::new() })
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }
}

/// k8s-openapi holds `maximum`, `minimum` and `multipleOf` as floats; print whole ones as
/// integers again, as upstream stores them (`maximum: 10`, not `10.0`).
fn whole_number_keywords(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if ["maximum", "minimum", "multipleOf"].contains(&k.as_str())
                    && let Some(f) = child.as_f64().filter(|f| child.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15)
                {
                    *child = json!(f as i64);
                } else {
                    whole_number_keywords(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_number_keywords),
        _ => {}
    }
}
