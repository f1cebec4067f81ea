//! The component schemas: schemars output for every served kind (from k8s-openapi's
//! `JsonSchema` impls, which carry upstream's names and descriptions), plus the pieces schemars
//! cannot produce: the `…List` kinds, upstream's v3 shapes for `IntOrString` and `Quantity`,
//! the `x-kubernetes-*` extensions and the group-version-kind of each kind.
//!
//! They are generated ahead of time (`super::generate`, a test that fails when the checked-in
//! `definitions.json` is stale) and embedded: generating them at run time executed the
//! `JsonSchema` code of every k8s-openapi type on a server's first write, which kept megabytes
//! of that code resident for the life of the process.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// Where schemas live in a v3 document; `$ref`s point here.
pub(super) const REF_PREFIX: &str = "#/components/schemas/";
pub(super) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(super) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(super) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(super) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(super) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

/// Group, version, kind.
pub(super) type Gvk = (&'static str, &'static str, &'static str);

/// Every component schema, and which schema describes which kind.
#[derive(Debug)]
pub(super) struct Catalog {
    /// Component schemas by upstream name (`io.k8s.api.core.v1.PodSpec`), sorted by name.
    pub(super) defs: Map<String, Value>,
    /// The schema of each kind (and of each `…List` kind).
    pub(super) by_gvk: HashMap<Gvk, String>,
}

impl Catalog {
    pub(super) fn schema_of(&self, gvk: Gvk) -> Option<&str> {
        self.by_gvk.get(&gvk).map(String::as_str)
    }
}

/// The generated catalog, one definition per line (see [`super::generate::render`]).
pub(super) const EMBEDDED: &str = include_str!("definitions.json");

/// The file's shape: `kinds` lists `[group, version, kind, schema]`.
#[derive(serde::Deserialize)]
struct Embedded<'a> {
    #[serde(borrow)]
    kinds: Vec<(&'a str, &'a str, &'a str, String)>,
    definitions: Map<String, Value>,
}

/// Reads the embedded catalog.
pub(super) fn load() -> Catalog {
    // Compiled in and checked by a test (`definitions_file_is_current`): no input of a user's
    // can make this fail.
    let e: Embedded<'static> = serde_json::from_str(EMBEDDED).expect("the embedded definitions.json parses");
    Catalog { by_gvk: e.kinds.into_iter().map(|(g, v, k, s)| ((g, v, k), s)).collect(), defs: e.definitions }
}
