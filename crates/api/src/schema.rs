//! A read-only cursor over OpenAPI v3 component schemas: the per-field metadata that
//! strategic merge patch (and, later, server-side apply) needs.
//!
//! The source is the `components.schemas` map of kube-apiserver's `/openapi/v3/api/v1` documents,
//! keyed by upstream names (`io.k8s.api.core.v1.PodSpec`). Two reference shapes occur and both are
//! followed: upstream's `{"allOf":[{"$ref":"#/components/schemas/NAME"}], "default":{}, ...}` and
//! schemars' `{"$ref":"#/components/schemas/NAME", ...}` with sibling keywords. The
//! `x-kubernetes-*` extensions that drive patching (`x-kubernetes-patch-strategy`,
//! `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, ...) live on the *property* schema,
//! i.e. on the wrapper around the reference; a [`Schema`] therefore remembers the node it was
//! reached through and only resolves references when it needs structure (properties, items).
//!
//! Where it sits: the API server's PATCH handler walks a cursor rooted at the resource's kind
//! alongside the object (see `docs/data-path.md`, "patch"). Absence is meaningful: a field with no
//! schema has no metadata, and callers treat it as plain JSON.

use serde_json::{Map, Value};

/// The prefix of local references in an OpenAPI v3 document.
const COMPONENTS_REF: &str = "#/components/schemas/";
/// The prefix of local references in a Swagger 2 document; accepted so a v2 `definitions` map
/// works as well.
const DEFINITIONS_REF: &str = "#/definitions/";
/// How many references are followed before giving up: upstream never chains more than one, and
/// the bound keeps a malformed self-referencing map from looping.
const MAX_REF_HOPS: usize = 16;

/// The `x-kubernetes-list-type` of an array field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    /// The list is replaced as a whole.
    Atomic,
    /// Items are unique scalars; merged as a set.
    Set,
    /// Items are objects keyed by [`Schema::list_map_keys`].
    Map,
}

/// The `x-kubernetes-map-type` of an object field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    /// The object is replaced as a whole.
    Atomic,
    /// Each key is owned and merged separately (the default).
    Granular,
}

/// A position in a schema: the node a field was reached through, plus the component map used to
/// resolve references. Cheap to copy.
#[derive(Clone, Copy, Debug)]
pub struct Schema<'a> {
    /// All component schemas, to resolve `$ref`s against.
    defs: &'a Map<String, Value>,
    /// The schema as written at this position (possibly only a reference plus extensions).
    node: &'a Value,
    /// `node` with references followed (see [`Schema::resolved`]), found once when the cursor
    /// is made: walks ask for it at every position, and each lookup hashes a long name.
    target: &'a Value,
    /// The last component name followed (see [`Schema::name`]).
    name: Option<&'a str>,
    /// Whether this position lies in the built-in definitions (static, never freed): see
    /// [`Schema::builtin_id`].
    builtin: bool,
}

impl<'a> Schema<'a> {
    /// The cursor at the component schema `name`, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub fn root(defs: &'a Map<String, Value>, name: &str) -> Option<Self> {
        let builtin = std::ptr::eq(defs, crate::openapi::definitions());
        defs.get(name).map(|node| Schema { builtin, ..Schema::new(defs, node) })
    }

    /// A cursor at an arbitrary schema node, resolving references against `defs`. A node without
    /// properties (e.g. `Value::Null`) is a cursor that carries no metadata at all.
    pub fn new(defs: &'a Map<String, Value>, node: &'a Value) -> Self {
        let (target, name) = resolve(defs, node);
        Schema { defs, node, target, name, builtin: false }
    }

    /// An identity of this position that stays valid for the life of the process, for caching
    /// what is derived from it: the node's address, for positions in the built-in definitions
    /// (reached from [`Schema::root`] on them), which are never freed. `None` elsewhere (a
    /// custom resource's schema is dropped with its definition, and its addresses reused).
    pub fn builtin_id(&self) -> Option<usize> {
        self.builtin.then(|| std::ptr::from_ref(self.node) as usize)
    }

    /// The schema as written at this position, before following references.
    pub fn node(&self) -> &'a Value {
        self.node
    }

    /// The schema after following references; the node itself when it is not a reference, or
    /// `Value::Null` when a reference dangles.
    pub fn resolved(&self) -> &'a Value {
        self.target
    }

    /// The component name this position refers to (`io.k8s.api.core.v1.Container`), if it is a
    /// reference; used in error messages.
    pub fn name(&self) -> Option<&'a str> {
        self.name
    }

    /// The schema of the named property, resolved through references.
    pub fn property(&self, name: &str) -> Option<Schema<'a>> {
        let node = self.resolved().get("properties")?.as_object()?.get(name)?;
        Some(self.at(node))
    }

    /// All declared properties, in declaration order.
    pub fn properties(&self) -> impl Iterator<Item = (&'a str, Schema<'a>)> + 'a {
        let this = *self;
        self.resolved()
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(move |props| props.iter().map(move |(k, v)| (k.as_str(), this.at(v))))
    }

    /// The schema of the array's items.
    pub fn items(&self) -> Option<Schema<'a>> {
        let node = self.resolved().get("items")?;
        node.is_object().then(|| self.at(node))
    }

    /// The schema of the values of a map-typed object (`additionalProperties`); `None` when it
    /// is absent or a plain boolean.
    pub fn additional_properties(&self) -> Option<Schema<'a>> {
        let node = self.resolved().get("additionalProperties")?;
        node.is_object().then(|| self.at(node))
    }

    /// The schema of a key inside an object: a declared property, else the map value schema.
    /// `None` means the key has no metadata.
    pub fn field(&self, name: &str) -> Option<Schema<'a>> {
        self.property(name).or_else(|| self.additional_properties())
    }

    /// The OpenAPI `type` (`object`, `array`, `string`, `integer`, `number`, `boolean`).
    pub fn schema_type(&self) -> Option<&'a str> {
        self.resolved().get("type").and_then(Value::as_str)
    }

    /// Whether values here are JSON objects (a struct or a map).
    pub fn is_object(&self) -> bool {
        let target = self.resolved();
        self.schema_type() == Some("object")
            || target.get("properties").is_some()
            || target.get("additionalProperties").is_some()
    }

    /// Whether values here are JSON arrays.
    pub fn is_array(&self) -> bool {
        self.schema_type() == Some("array") || self.resolved().get("items").is_some()
    }

    /// A vendor extension, looked up on the node first (where upstream puts per-field
    /// extensions) and then on the referenced definition (where type-level ones such as
    /// `x-kubernetes-map-type` on `LabelSelector` live).
    pub fn extension(&self, name: &str) -> Option<&'a Value> {
        self.node.get(name).or_else(|| self.resolved().get(name))
    }

    /// The comma-separated `x-kubernetes-patch-strategy`, e.g. `merge`, `retainKeys`,
    /// `merge,retainKeys`; empty when there is none.
    pub fn patch_strategies(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.extension_str("x-kubernetes-patch-strategy")
            .into_iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.is_empty())
    }

    /// Whether `x-kubernetes-patch-strategy` lists `strategy`.
    pub fn has_patch_strategy(&self, strategy: &str) -> bool {
        self.patch_strategies().any(|s| s == strategy)
    }

    /// The `x-kubernetes-patch-merge-key` of a list of objects.
    pub fn patch_merge_key(&self) -> Option<&'a str> {
        self.extension_str("x-kubernetes-patch-merge-key")
    }

    /// The `x-kubernetes-list-type`; `None` when absent or not one of the known values.
    pub fn list_type(&self) -> Option<ListType> {
        match self.extension_str("x-kubernetes-list-type")? {
            "atomic" => Some(ListType::Atomic),
            "set" => Some(ListType::Set),
            "map" => Some(ListType::Map),
            _ => None,
        }
    }

    /// The `x-kubernetes-list-map-keys` of a `map` list.
    pub fn list_map_keys(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.extension("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    }

    /// The `x-kubernetes-map-type`; `None` when absent or not one of the known values.
    pub fn map_type(&self) -> Option<MapType> {
        match self.extension_str("x-kubernetes-map-type")? {
            "atomic" => Some(MapType::Atomic),
            "granular" => Some(MapType::Granular),
            _ => None,
        }
    }

    /// `x-kubernetes-preserve-unknown-fields: true`: fields not declared here are kept as-is.
    pub fn preserves_unknown_fields(&self) -> bool {
        self.extension_bool("x-kubernetes-preserve-unknown-fields")
    }

    /// `x-kubernetes-int-or-string: true` (e.g. `IntOrString` ports and percentages).
    pub fn is_int_or_string(&self) -> bool {
        self.extension_bool("x-kubernetes-int-or-string")
            || self.resolved().get("format").and_then(Value::as_str) == Some("int-or-string")
    }

    /// `x-kubernetes-embedded-resource: true` (a nested object with its own kind and metadata).
    pub fn is_embedded_resource(&self) -> bool {
        self.extension_bool("x-kubernetes-embedded-resource")
    }

    fn extension_str(&self, name: &str) -> Option<&'a str> {
        self.extension(name).and_then(Value::as_str)
    }

    fn extension_bool(&self, name: &str) -> bool {
        self.extension(name).and_then(Value::as_bool).unwrap_or(false)
    }

    /// A cursor at a child node, sharing the component map.
    fn at(&self, node: &'a Value) -> Schema<'a> {
        Schema { builtin: self.builtin, ..Schema::new(self.defs, node) }
    }
}

/// Follows references from `node`: a direct `$ref` (schemars) or a single-element `allOf`
/// holding one (upstream). Returns the target and the last component name followed.
fn resolve<'a>(defs: &'a Map<String, Value>, node: &'a Value) -> (&'a Value, Option<&'a str>) {
    static DANGLING: Value = Value::Null;
    let mut node = node;
    let mut name = None;
    for _ in 0..MAX_REF_HOPS {
        let Some(target) = reference(node) else {
            return (node, name);
        };
        match defs.get_key_value(target) {
            Some((key, next)) => {
                name = Some(key.as_str());
                node = next;
            }
            None => return (&DANGLING, Some(target)),
        }
    }
    (&DANGLING, name)
}

/// The component name a node refers to, in either reference shape.
fn reference(node: &Value) -> Option<&str> {
    let obj = node.as_object()?;
    let raw = match obj.get("$ref") {
        Some(r) => r.as_str()?,
        None => {
            let [single] = obj.get("allOf")?.as_array()?.as_slice() else {
                return None;
            };
            single.get("$ref")?.as_str()?
        }
    };
    raw.strip_prefix(COMPONENTS_REF).or_else(|| raw.strip_prefix(DEFINITIONS_REF))
}

#[cfg(test)]
mod tests;
