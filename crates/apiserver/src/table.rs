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

/// The `PartialObjectMetadata` of one object (JSON): its `metadata` copied as it is, without
/// parsing the rest (a metadata-only watch, like the garbage collector's, gets one per event).
pub(crate) fn partial_metadata(obj: &[u8]) -> Bytes {
    #[derive(serde::Deserialize)]
    struct Object<'a> {
        #[serde(borrow)]
        metadata: Option<&'a serde_json::value::RawValue>,
    }
    let meta = serde_json::from_slice::<Object>(obj).ok().and_then(|o| o.metadata).map_or("{}", |m| m.get());
    let head = br#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#;
    let mut out = Vec::with_capacity(head.len() + meta.len() + 1);
    out.extend_from_slice(head);
    out.extend_from_slice(meta.as_bytes());
    out.push(b'}');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_metadata_copies_metadata_only() {
        let obj = br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","labels":{"q":"say \"hi\"\u00e9"},"resourceVersion":"7"},"spec":{"containers":[]}}"#;
        let v: Value = serde_json::from_slice(&partial_metadata(obj)).unwrap();
        assert_eq!(
            v,
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": {"name": "a", "labels": {"q": "say \"hi\"é"}, "resourceVersion": "7"}})
        );
        let v: Value = serde_json::from_slice(&partial_metadata(br#"{"kind":"X"}"#)).unwrap();
        assert_eq!(v["metadata"], json!({}));
    }
}
