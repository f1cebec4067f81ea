//! `meta.k8s.io/v1 Table` responses (what `kubectl get` prints): columns and cells come from
//! the per-kind printers in `skiff_api::table`; this module assembles them and applies
//! `includeObject` the way upstream's `asTable` does.

use bytes::Bytes;
use serde_json::{Value, json};
use skiff_api::Resource;

use crate::status::{ApiError, ApiResult};

/// `includeObject`: what each row carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn parse(v: Option<&str>) -> ApiResult<Self> {
        match v {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("Object") => Ok(IncludeObject::Object),
            Some("None") => Ok(IncludeObject::None),
            Some(other) => Err(ApiError::bad_request(format!(
                "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
            ))),
        }
    }
}

/// Table rendering options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TableOptions {
    pub include: IncludeObject,
    pub v1beta1: bool,
    /// Omit `columnDefinitions` (watch events after the first).
    pub no_headers: bool,
}

fn column_definitions(res: &Resource) -> Vec<Value> {
    match res.strategy.table_printer() {
        Some(p) => p.column_definitions(),
        None => skiff_api::table::columns(res.info.group, res.info.kind).iter().map(|c| c.definition()).collect(),
    }
}

fn row(res: &Resource, obj: &Value, opts: &TableOptions, now: jiff::Timestamp) -> Value {
    let info = &res.info;
    let cells = match res.strategy.table_printer() {
        Some(p) => p.cells(obj, now),
        None => skiff_api::table::cells(info.group, info.kind, obj, now),
    };
    let object = match opts.include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        // Upstream labels the partial object v1beta1 whatever the table version.
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1beta1",
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        }),
    };
    let mut r = json!({"cells": cells});
    if let Some(c) = skiff_api::table::row_conditions(info.group, info.kind, obj) {
        r["conditions"] = c;
    }
    if !object.is_null() {
        r["object"] = object;
    }
    r
}

/// A table of `objects` (already in the request's version).
pub(crate) fn render(res: &Resource, objects: &[Bytes], list_meta: Value, opts: &TableOptions) -> ApiResult<Value> {
    let now = jiff::Timestamp::now();
    let mut rows = Vec::with_capacity(objects.len());
    for b in objects {
        let v: Value = serde_json::from_slice(b).map_err(|e| ApiError::internal(format!("cached object: {e}")))?;
        rows.push(row(res, &v, opts, now));
    }
    Ok(json!({
        "kind": "Table",
        "apiVersion": if opts.v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": list_meta,
        "columnDefinitions": if opts.no_headers { Value::Null } else { Value::Array(column_definitions(res)) },
        "rows": rows,
    }))
}

/// `PartialObjectMetadata` of one object, or a `PartialObjectMetadataList`.
pub(crate) fn partial_metadata(obj: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(obj).unwrap_or(Value::Null);
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": v.get("metadata").cloned().unwrap_or(json!({})),
    })
}
