//! CustomResourceDefinitions as data: everything about CRDs and their custom resources that
//! needs no I/O (upstream's `apiextensions-apiserver`, minus the controllers' loops and the
//! HTTP handler). The API server watches CRDs and, for each established one, serves a
//! [`Resource`](crate::Resource) per served version built by [`resources`].
//!
//! - [`validate`](validate_crd): the `customresourcedefinitions` resource itself — defaults,
//!   validation with upstream's messages and paths (structural schemas, list types, printer
//!   columns, scale paths, selectable fields, CEL rule compilation and cost), and its strategy
//!   [`CustomResourceDefinitionStrategy`];
//! - [`names_accepted`] / [`reconcile_status`]: the naming and establishing controllers'
//!   status computations;
//! - [`CustomResourceStrategy`]: a custom resource's write pipeline (prune unknown fields →
//!   drop disallowed nulls → coerce metadata → default → validate: OpenAPI, embedded resources,
//!   list types, `x-kubernetes-validations`), and [`resource_info`];
//! - [`columns`] / [`cells`] / [`Printer`]: `kubectl get` tables;
//! - [`openapi_schema`] / [`openapi_components`]: OpenAPI v3 for `kubectl explain` and apply;
//! - [`scale_paths`], [`scale_of`], [`apply_scale`]: the `scale` subresource.
//!
//! Versions are served with conversion strategy `None` only: every version shares one storage
//! (`<group>/<plural>`) and objects are returned with `apiVersion` rewritten to the requested
//! version. `ResourceInfo` has `&'static str` fields, so a CRD's names are interned (leaked once
//! per distinct string, see `intern`); owning them (`Arc<str>` or `Cow<'static, str>`) would
//! lift that.

mod cel;
mod intern;
mod jsonpath;
mod listtype;
mod meta;
mod names;
mod openapi;
mod prune;
mod scale;
mod schema_check;
mod strategy;
mod structural;
mod table;
mod validate;
mod values;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use names::{NamingOutcome, established_condition, names_accepted, reconcile_status, set_condition};
pub use openapi::{openapi_components, openapi_schema, schema_name};
pub use scale::{ScaleError, ScalePaths, apply_scale, replicas_at, scale_of, scale_paths, set_replicas_at};
pub use strategy::{CustomResourceStrategy, resource_info, resources};
pub use table::{CrdColumn, Printer, cells, columns};
pub use validate::{
    CustomResourceDefinitionStrategy, default_crd, prepare_crd_for_create, prepare_crd_for_status_update,
    prepare_crd_for_update, validate_crd, validate_crd_status_update, validate_crd_update,
};

/// Why a custom resource strategy could not be built from a CRD.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrdError {
    /// The CRD has no version of that name.
    #[error("version {0} not found in the CustomResourceDefinition")]
    VersionNotFound(String),
    /// The version has no `schema.openAPIV3Schema` (v1 CRDs always have one once validated).
    #[error("version {0} of the CustomResourceDefinition has no openAPIV3Schema")]
    NoSchema(String),
}

/// The names a CRD is served under.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Names {
    pub(crate) plural: String,
    pub(crate) singular: String,
    pub(crate) kind: String,
    pub(crate) list_kind: String,
    pub(crate) short_names: Vec<String>,
    pub(crate) categories: Vec<String>,
}

/// The accepted names once the naming controller set them (what upstream serves), else the
/// requested ones (with upstream's defaults for `singular` and `listKind`).
pub(crate) fn served_names(crd: &Value) -> Names {
    let accepted = crd.pointer("/status/acceptedNames").filter(|a| {
        a.get("plural").and_then(Value::as_str).is_some_and(|p| !p.is_empty())
            && a.get("kind").and_then(Value::as_str).is_some_and(|k| !k.is_empty())
    });
    let n = accepted.or_else(|| crd.pointer("/spec/names")).unwrap_or(&Value::Null);
    let s = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let list = |k: &str| -> Vec<String> {
        n.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let kind = s("kind");
    let singular = match s("singular") {
        x if x.is_empty() => kind.to_lowercase(),
        x => x,
    };
    let list_kind = match s("listKind") {
        x if x.is_empty() && !kind.is_empty() => format!("{kind}List"),
        x => x,
    };
    Names {
        plural: s("plural"),
        singular,
        kind,
        list_kind,
        short_names: list("shortNames"),
        categories: list("categories"),
    }
}

/// The `spec.versions[]` entry named `version`.
pub(crate) fn version_of<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    crd.pointer("/spec/versions")?.as_array()?.iter().find(|v| v.get("name").and_then(Value::as_str) == Some(version))
}

/// The `openAPIV3Schema` of `version`.
pub(crate) fn schema_for<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    version_of(crd, version)?.pointer("/schema/openAPIV3Schema").filter(|s| s.is_object())
}

/// The `subresources` of `version`.
pub(crate) fn subresources_for<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    version_of(crd, version)?.get("subresources").filter(|s| s.is_object())
}

/// The names of the versions marked `served`, in spec order.
pub fn served_versions(crd: &Value) -> Vec<String> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The version objects are stored in (the one marked `storage`).
pub fn storage_version(crd: &Value) -> Option<String> {
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
}

/// Whether the CRD's `Established` condition is `True` (its resources should be served).
pub fn is_established(crd: &Value) -> bool {
    crd.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| {
        cs.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Established")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    })
}
