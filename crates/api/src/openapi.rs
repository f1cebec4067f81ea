//! The OpenAPI v3 documents served at `/openapi/v3/<group-version>`, generated from k8s-openapi's
//! types: what kubectl needs for `--validate=strict` (a PATCH operation per kind listing
//! `fieldValidation`, after which kubectl leaves validation to the server) and for `kubectl
//! explain` (component schemas with `x-kubernetes-group-version-kind`), and the per-field merge
//! metadata (`x-kubernetes-patch-strategy`, `-patch-merge-key`, `-list-type`, `-list-map-keys`,
//! `-map-type`) that strategic merge patch and server-side apply read through [`definitions`].
//!
//! - `schemas`: the component schemas, embedded from `definitions.json`;
//! - `generate` (a test): makes that file from schemars (`SchemaSettings::openapi3()`) output
//!   plus list kinds, GVKs and upstream's scalar shapes, and fails when it is stale;
//! - `ext`: the extension tables and where they go (generation only); `list_types` is generated
//!   by `scripts/gen-openapi-ext.py`;
//! - `paths`: the operations of each resource, shaped like upstream's.
//!
//! The API server serves [`document`] bytes (it caches them) and builds the `/openapi/v3` root
//! from [`group_versions`]: `{"paths": {"api/v1": {"serverRelativeURL":
//! "/openapi/v3/api/v1?hash=<HASH>"}, …}}`. Upstream's `<HASH>` is the uppercase hex SHA-512 of
//! the document bytes (kube-openapi `handler3`), also sent as the document's `ETag`.
//!
//! The component schemas are parsed once, on first use.

#[cfg(test)]
mod ext;
#[cfg(test)]
mod generate;
#[cfg(test)]
mod list_types;
mod paths;
mod schemas;
#[cfg(test)]
mod tests;
mod v2;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

pub use self::paths::returns_deleted_object;
use self::schemas::{Catalog, REF_PREFIX};
pub use self::v2::{PROTOBUF_CONTENT_TYPE as V2_PROTOBUF, swagger};
use crate::resources::{Resource, ResourceInfo};

/// The group-versions served, as "api/v1", "apis/apps/v1", …, in the order of `resources`.
pub fn group_versions(resources: &[Resource]) -> Vec<String> {
    paths::group_versions_of(resources).into_iter().map(|(g, v)| group_version_path(g, v)).collect()
}

/// The document for one group-version (serialized JSON), or None if no resource is served there.
pub fn document(resources: &[Resource], group_version_path: &str) -> Option<Vec<u8>> {
    let (group, version) = parse_group_version_path(group_version_path)?;
    let served: Vec<&ResourceInfo> =
        resources.iter().map(|r| &r.info).filter(|i| i.group == group && i.version == version).collect();
    if served.is_empty() {
        return None;
    }
    let cat = catalog();
    let paths = paths::paths(cat, group, version, &served);
    let schemas = reachable_schemas(cat, &paths);
    let doc = json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header",
                },
            },
        },
    });
    // Serializing a `Value` cannot fail (string keys, finite numbers only).
    serde_json::to_vec(&doc).ok()
}

/// The document of a custom resource group-version: `served` lists each CRD (as JSON) with the
/// version and resource info it serves there. The built-in meta schemas (ObjectMeta, Status,
/// DeleteOptions, …) the paths refer to are included, as upstream's CRD documents do.
pub fn custom_resource_document(served: &[(&Value, &str, &ResourceInfo)]) -> Option<Vec<u8>> {
    let (_, _, first) = served.first()?;
    let (group, version) = (first.group, first.version);
    let base = catalog();
    let mut cat = Catalog { defs: Map::new(), by_gvk: base.by_gvk.clone() };
    let mut own = Map::new();
    for (crd, v, info) in served {
        let components = crate::crd::openapi_components(crd, v);
        let kind = crate::crd::schema_name(info.group, v, info.kind);
        let list = crate::crd::schema_name(info.group, v, info.list_kind);
        cat.by_gvk.insert((info.group, info.version, info.kind), kind);
        cat.by_gvk.insert((info.group, info.version, info.list_kind), list);
        own.extend(components);
    }
    let infos: Vec<&ResourceInfo> = served.iter().map(|(_, _, i)| *i).collect();
    let mut paths = paths::paths(&cat, group, version, &infos);
    // Custom resources take no strategic merge patch; kubectl reads the PATCH operation's
    // content types to decide between a strategic and a JSON merge patch for `apply`.
    for item in paths.values_mut() {
        if let Some(content) = item.pointer_mut("/patch/requestBody/content").and_then(Value::as_object_mut) {
            content.remove("application/strategic-merge-patch+json");
        }
    }
    // Resolve references against the custom schemas first, then the built-in catalog.
    cat.defs = own;
    let mut schemas = Map::new();
    let mut seen = BTreeSet::new();
    let mut queue = Vec::new();
    for item in paths.values() {
        collect_refs(item, &mut queue);
    }
    for schema in cat.defs.values() {
        collect_refs(schema, &mut queue);
    }
    for (name, schema) in &cat.defs {
        schemas.insert(name.clone(), schema.clone());
    }
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) || schemas.contains_key(&name) {
            continue;
        }
        if let Some(schema) = base.defs.get(&name) {
            collect_refs(schema, &mut queue);
            schemas.insert(name, schema.clone());
        }
    }
    schemas.sort_keys();
    let doc = json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes CRD Swagger", "version": "v0.1.0" },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header",
                },
            },
        },
    });
    serde_json::to_vec(&doc).ok()
}

/// All component schemas (for the patch/apply code), built once, keyed by upstream name
/// (`io.k8s.api.core.v1.PodSpec`).
pub fn definitions() -> &'static Map<String, Value> {
    &catalog().defs
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(schemas::load)
}

fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// "api/v1" → ("", "v1"); "apis/apps/v1" → ("apps", "v1"); anything else → None.
fn parse_group_version_path(path: &str) -> Option<(&str, &str)> {
    let path = path.trim_matches('/');
    let mut parts = path.split('/');
    let gv = match (parts.next(), parts.next(), parts.next()) {
        (Some("api"), Some(version), None) => ("", version),
        (Some("apis"), Some(group), Some(version)) if !group.is_empty() => (group, version),
        _ => return None,
    };
    if parts.next().is_some() || gv.1.is_empty() {
        return None;
    }
    Some(gv)
}

/// The component schemas `paths` refers to, directly or through other schemas, sorted by name
/// (upstream's documents carry exactly these).
fn reachable_schemas(cat: &Catalog, paths: &Map<String, Value>) -> Map<String, Value> {
    let mut seen = BTreeSet::new();
    let mut queue = Vec::new();
    for item in paths.values() {
        collect_refs(item, &mut queue);
    }
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = cat.defs.get(&name) {
            collect_refs(schema, &mut queue);
        }
    }
    seen.into_iter().filter_map(|name| cat.defs.get(&name).map(|s| (name, s.clone()))).collect()
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(obj) => {
            for (k, v) in obj {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(REF_PREFIX) {
                            out.push(name.to_string());
                        }
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
