//! The strategy of a custom resource (one CRD version): upstream's
//! `registry/customresource` strategy and validator plus the schema-driven decoding of
//! `crdHandler` (prune → drop disallowed nulls → coerce metadata → default → validate).

use std::sync::Arc;

use serde_json::Value;

use super::cel::{self, RuleTree};
use super::scale::{self, ScalePaths};
use super::structural::Structural;
use super::{CrdError, intern, listtype, meta, prune, values};
use crate::field::{ErrorList, ErrorType, FieldError, Path};
use crate::resources::{Resource, ResourceInfo, SubresourceInfo};
use crate::strategy::{Admitted, NameRule, ObjectStrategy, Operation, StrategyError};
use crate::validation;

/// The verbs of a custom resource, in upstream's discovery order.
const VERBS: &[&str] = &["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"];
const SUBRESOURCE_VERBS: &[&str] = &["get", "patch", "update"];

/// Admits custom resources of one version of a CRD. Built once per (CRD revision, version);
/// holds the compiled schema and rules.
#[derive(Debug)]
pub struct CustomResourceStrategy {
    group: String,
    version: String,
    kind: String,
    schema: Structural,
    rules: Option<RuleTree>,
    status_enabled: bool,
    scale: Option<ScalePaths>,
    /// `kubectl get` columns of this version.
    printer: super::Printer,
    /// The version's OpenAPI schema (for server-side apply).
    openapi: Value,
}

impl CustomResourceStrategy {
    /// The strategy for `version` of `crd` (an `apiextensions.k8s.io/v1` object as JSON).
    pub fn new(crd: &Value, version: &str) -> Result<Self, CrdError> {
        super::version_of(crd, version).ok_or_else(|| CrdError::VersionNotFound(version.to_string()))?;
        let schema_json = super::schema_for(crd, version).ok_or_else(|| CrdError::NoSchema(version.to_string()))?;
        let schema = Structural::from_value(schema_json);
        let rules = RuleTree::build(&schema);
        let names = super::served_names(crd);
        let subresources = super::subresources_for(crd, version);
        Ok(CustomResourceStrategy {
            group: crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default().to_string(),
            version: version.to_string(),
            kind: names.kind,
            schema,
            rules,
            status_enabled: subresources.and_then(|s| s.get("status")).is_some_and(|s| !s.is_null()),
            scale: scale::scale_paths(crd, version),
            printer: super::Printer::new(crd, version),
            openapi: super::openapi_schema(crd, version),
        })
    }

    fn validate(&self, obj: &Value, old: Option<&Value>, status_only: bool, warnings: &mut Vec<String>) -> ErrorList {
        let mut errs = ErrorList::new();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        if kind != self.kind {
            errs.push(FieldError::invalid(&Path::new("kind"), kind, format!("must be {}", self.kind)));
        }
        let want = format!("{}/{}", self.group, self.version);
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        if api_version != want {
            errs.push(FieldError::invalid(&Path::new("apiVersion"), api_version, format!("must be {want}")));
        }
        if !errs.is_empty() {
            return errs;
        }
        errs.extend(validation::validate_object_meta(obj, NameRule::Subdomain, &Path::new("metadata")));
        values::validate(obj, &self.schema, &Path::root(), old, &mut errs);
        if let Some(paths) = &self.scale {
            errs.extend(scale::validate(obj, paths, !status_only, true));
        }
        meta::validate_embedded(obj, &self.schema, &Path::root(), &mut errs);
        // Set/map invariants ratchet as a whole: an old object that already broke them does
        // not block updates.
        let old_ok = old.is_none_or(|o| {
            let mut e = ErrorList::new();
            listtype::validate(o, &self.schema, &Path::root(), &mut e);
            e.is_empty()
        });
        if old_ok {
            listtype::validate(obj, &self.schema, &Path::root(), &mut errs);
        }
        if let Some(rules) = &self.rules {
            if has_blocking_error(&errs) {
                errs.push(FieldError::invalid(
                    &Path::root(),
                    "null",
                    "some validation rules were not checked because the object was invalid; correct the existing \
                     errors to complete validation",
                ));
            } else {
                cel::validate_with_warnings(obj, old, &self.schema, rules, &Path::root(), &mut errs, warnings);
            }
        }
        errs
    }
}

/// Upstream's `hasBlockingErr`: type, requiredness, enum and size violations mean the object
/// does not have the shape CEL rules were compiled for.
fn has_blocking_error(errs: &ErrorList) -> bool {
    errs.iter().any(|e| {
        matches!(
            e.kind,
            ErrorType::NotSupported
                | ErrorType::Required
                | ErrorType::TooLong
                | ErrorType::TooMany
                | ErrorType::TypeInvalid
        )
    })
}

impl ObjectStrategy for CustomResourceStrategy {
    fn admit(
        &self,
        object: Value,
        op: Operation<'_>,
        unknown_fields: &mut Vec<String>,
    ) -> Result<Admitted, StrategyError> {
        if !object.is_object() {
            return Err(StrategyError::Decode("the object must be a JSON object".to_string()));
        }
        let mut obj = match op {
            // Through /status only the status changes: start from the stored object.
            Operation::UpdateStatus { old } => with_status_of(old, object),
            _ => object,
        };
        unknown_fields.extend(prune::prune(&mut obj, &self.schema));
        prune::drop_non_nullable_nulls(&mut obj, &self.schema);
        meta::coerce(&mut obj, &self.schema, unknown_fields).map_err(StrategyError::Decode)?;
        prune::apply_defaults(&mut obj, &self.schema);
        match op {
            Operation::Create if self.status_enabled => {
                // Create cannot set status when it has its own subresource (upstream drops it after
                // defaulting, so a defaulted status goes too).
                if let Some(m) = obj.as_object_mut() {
                    m.remove("status");
                }
            }
            Operation::Update { old } if self.status_enabled => {
                if let Some(m) = obj.as_object_mut() {
                    match old.get("status") {
                        Some(s) => m.insert("status".into(), s.clone()),
                        None => m.remove("status"),
                    };
                }
            }
            _ => {}
        }
        let mut warnings = Vec::new();
        let errs = match op {
            Operation::Create => self.validate(&obj, None, false, &mut warnings),
            Operation::Update { old } | Operation::System { old } => {
                self.validate(&obj, Some(old), false, &mut warnings)
            }
            Operation::UpdateStatus { old } => self.validate(&obj, Some(old), true, &mut warnings),
        };
        if !errs.is_empty() {
            return Err(StrategyError::Invalid(errs));
        }
        Ok(Admitted { object: obj, warnings })
    }

    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }

    fn table_printer(&self) -> Option<&dyn crate::table::TablePrinter> {
        Some(&self.printer)
    }

    fn scale_paths(&self) -> Option<&ScalePaths> {
        self.scale.as_ref()
    }

    fn supports_strategic_merge_patch(&self) -> bool {
        false
    }

    fn openapi_schema(&self) -> Option<&Value> {
        Some(&self.openapi)
    }
}

/// Upstream's status strategy `PrepareForUpdate`: the stored object with the new status (and
/// the new `managedFields`, which track the status change).
fn with_status_of(old: &Value, new: Value) -> Value {
    let mut out = old.clone();
    let (status, managed) = match &new {
        Value::Object(m) => (m.get("status").cloned(), new.pointer("/metadata/managedFields").cloned()),
        _ => (None, None),
    };
    if let Some(m) = out.as_object_mut() {
        match status {
            Some(s) => m.insert("status".into(), s),
            None => m.remove("status"),
        };
    }
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        match managed {
            Some(mf) => meta.insert("managedFields".into(), mf),
            None => meta.remove("managedFields"),
        };
    }
    out
}

/// What discovery and the registry need to serve `version` of `crd`: names (the accepted ones
/// once the naming controller ran, else the requested ones), scope, verbs, `status` and `scale`
/// subresources, generation tracking, and one storage shared by all versions
/// (`<group>/<plural>`).
pub fn resource_info(crd: &Value, version: &str) -> ResourceInfo {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
    let names = super::served_names(crd);
    let group_s = intern::intern(group);
    let version_s = intern::intern(version);
    let kind_s = intern::intern(&names.kind);
    let mut subresources = Vec::new();
    if let Some(sub) = super::subresources_for(crd, version) {
        if sub.get("status").is_some_and(|s| !s.is_null()) {
            subresources.push(SubresourceInfo {
                name: "status",
                group: group_s,
                version: version_s,
                kind: kind_s,
                verbs: SUBRESOURCE_VERBS,
            });
        }
        if sub.get("scale").is_some_and(Value::is_object) {
            subresources.push(SubresourceInfo {
                name: "scale",
                group: "autoscaling",
                version: "v1",
                kind: "Scale",
                verbs: SUBRESOURCE_VERBS,
            });
        }
    }
    ResourceInfo {
        group: group_s,
        version: version_s,
        kind: kind_s,
        list_kind: intern::intern(&names.list_kind),
        plural: intern::intern(&names.plural),
        singular: intern::intern(&names.singular),
        namespaced: crd.pointer("/spec/scope").and_then(Value::as_str) == Some("Namespaced"),
        short_names: intern::intern_list(&names.short_names),
        categories: intern::intern_list(&names.categories),
        verbs: VERBS,
        subresources,
        tracks_generation: true,
        storage: format!("{group}/{}", names.plural),
        ephemeral: false,
    }
}

/// A [`Resource`] (info + strategy) for every served version of `crd`, in spec order.
pub fn resources(crd: &Value) -> Result<Vec<Resource>, CrdError> {
    let mut out = Vec::new();
    for version in super::served_versions(crd) {
        let strategy = CustomResourceStrategy::new(crd, &version)?;
        out.push(Resource { info: resource_info(crd, &version), strategy: Arc::new(strategy) });
    }
    Ok(out)
}
