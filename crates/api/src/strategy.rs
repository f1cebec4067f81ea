//! Per-resource strategies: what happens to an object between decoding a request body and
//! handing it to the store (upstream's `strategy.go` files plus the defaulting functions).
//!
//! Built-in kinds implement [`KindStrategy`] on their k8s-openapi type; [`Typed`] adapts that to
//! the type-erased [`ObjectStrategy`] the generic registry in `skiff-apiserver` drives. Custom
//! resources (a later issue) implement [`ObjectStrategy`] directly from their schema.
//!
//! The pipeline for a write (see `docs/data-path.md`):
//! `decode` (unknown fields reported, dropped) → `prepare_for_create|update` → `default` →
//! generic metadata validation → `validate` (+ `validate_update`) → encode back to JSON.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::field::{ErrorList, Path};
use crate::validation;

mod admissionregistration;
mod apps;
mod authorization;
mod autoscaling;
mod batch;
mod certificates;
mod common;
mod coordination;
mod core;
mod discovery;
mod events;
#[cfg(test)]
mod group_tests;
mod networking;
mod node;
mod policy;
mod rbac;
mod scheduling;
mod storage;
#[cfg(test)]
mod test_util;

/// How names of a kind are validated (upstream's `ValidateObjectMeta` name functions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253 characters
    /// (most kinds).
    Subdomain,
    /// RFC 1123 label: lowercase alphanumerics and '-', at most 63 characters (namespaces,
    /// services).
    Label,
    /// Anything that is a valid path segment: not "." or "..", no '/' or '%' (RBAC kinds).
    PathSegment,
    /// RFC 1035 label (must start with a letter): Services.
    Rfc1035Label,
}

/// Behaviour of one built-in kind, on its typed form. Every method has a neutral default, so
/// `impl KindStrategy for Foo {}` gives a kind with only generic handling.
pub trait KindStrategy: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// How `metadata.name` is validated.
    fn name_rule() -> NameRule {
        NameRule::Subdomain
    }

    /// Clear or set what a client may not choose on create (typically: reset `status`).
    fn prepare_for_create(&mut self) {}

    /// On an update of the main resource, carry over from `old` what this path may not change
    /// (`status` is carried over generically by the registry before this runs).
    fn prepare_for_update(&mut self, _old: &Self) {}

    /// Fill in defaults the way upstream's `SetDefaults_<Kind>` functions do. Runs on every write
    /// (create, update, patch), after `prepare_*`.
    fn default(&mut self) {}

    /// Kind-specific validation of the whole object (metadata is validated generically).
    fn validate(&self) -> ErrorList {
        Vec::new()
    }

    /// Extra checks on update: immutable fields and allowed transitions.
    fn validate_update(&self, _old: &Self) -> ErrorList {
        Vec::new()
    }

    /// Checks on an update through the `status` subresource. `old` is the stored object as
    /// JSON, not decoded: most kinds' checks read none of it, and the others read a few fields
    /// (a whole typed decode of a pod costs more than its checks).
    fn validate_status_update(&self, _old: &Value) -> ErrorList {
        Vec::new()
    }

    /// Non-fatal problems returned to the client as `Warning:` headers.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Which write is being admitted.
#[derive(Clone, Copy, Debug)]
pub enum Operation<'a> {
    Create,
    /// An update (or patch) of the main resource; `old` is the stored object.
    Update {
        old: &'a Value,
    },
    /// An update through the `status` subresource; `old` is the stored object.
    UpdateStatus {
        old: &'a Value,
    },
    /// A change the server makes through a narrow subresource (`pods/binding`,
    /// `namespaces/finalize`): the registry has already restricted what changed, so only
    /// defaults and whole-object validation run, not the main resource's update rules.
    System {
        old: &'a Value,
    },
}

/// Why an object was refused.
#[derive(Debug, thiserror::Error)]
pub enum StrategyError {
    /// The body does not fit the kind's schema (wrong JSON types): a 400 `BadRequest`.
    #[error("{0}")]
    Decode(String),
    /// Validation failed: a 422 `Invalid` with these causes.
    #[error("{}", crate::field::aggregate(.0))]
    Invalid(ErrorList),
}

/// The outcome of admitting a write.
#[derive(Debug)]
pub struct Admitted {
    /// The object to store, in canonical form.
    pub object: Value,
    pub warnings: Vec<String>,
}

/// The type-erased strategy the generic registry uses; one per resource.
pub trait ObjectStrategy: Send + Sync {
    /// Run the write pipeline on `object` (already carrying the metadata the registry set).
    /// Unknown fields are dropped; their paths (`spec.foo`, `spec.containers[0].bar`) are
    /// appended to `unknown_fields` for field validation (Strict → 422, Warn → warnings).
    fn admit(
        &self,
        object: Value,
        op: Operation<'_>,
        unknown_fields: &mut Vec<String>,
    ) -> Result<Admitted, StrategyError>;

    /// The `metadata.name` rule.
    fn name_rule(&self) -> NameRule;

    /// Columns and cells for `kubectl get` when they come from the resource itself (custom
    /// resources' printer columns); `None` means the built-in printers, by group and kind.
    fn table_printer(&self) -> Option<&dyn crate::table::TablePrinter> {
        None
    }

    /// Where the `scale` subresource reads and writes replicas, for resources that say so
    /// themselves (custom resources); `None` means the built-in `.spec.replicas` rules.
    fn scale_paths(&self) -> Option<&crate::crd::ScalePaths> {
        None
    }

    /// Whether `application/strategic-merge-patch+json` applies. Custom resources have no patch
    /// strategy metadata, so upstream refuses it for them with 415.
    fn supports_strategic_merge_patch(&self) -> bool {
        true
    }

    /// Field-selector labels beyond the kind's built-in ones (custom resources'
    /// `selectableFields`, as `spec.color`).
    fn selectable_fields(&self) -> &[&'static str] {
        &[]
    }

    /// The field-selector attributes of `obj`: `metadata.name`, `metadata.namespace` and the
    /// selectable fields. `None` means the built-in per-kind rules.
    fn field_attributes(&self, _obj: &Value) -> Option<Vec<(&'static str, String)>> {
        None
    }

    /// A standalone OpenAPI schema of the kind (custom resources), for server-side apply;
    /// `None` means the built-in definitions.
    fn openapi_schema(&self) -> Option<&Value> {
        None
    }
}

/// Adapts a typed [`KindStrategy`] to [`ObjectStrategy`].
pub struct Typed<K>(std::marker::PhantomData<fn() -> K>);

impl<K> Typed<K> {
    pub fn new() -> Self {
        Typed(std::marker::PhantomData)
    }
}

impl<K> Default for Typed<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// Decode `value` into `K`, collecting the paths of fields `K` does not have.
pub fn decode_tracking<K: DeserializeOwned>(value: Value, unknown: &mut Vec<String>) -> Result<K, String> {
    // Nearly every object decodes: try without tracking the path (half the cost), and only
    // for an object that fails go again tracking it, for the message.
    let mut found = Vec::new();
    if let Ok(obj) = serde_ignored::deserialize(&value, |path| found.push(format_ignored_path(&path))) {
        unknown.extend(found);
        return Ok(obj);
    }
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    let result = serde_ignored::deserialize(de, |path| unknown.push(format_ignored_path(&path)));
    result.map_err(|e| {
        let path = track.path().to_string();
        if path.is_empty() || path == "." { e.to_string() } else { format!("{path}: {e}") }
    })
}

/// `spec.containers.0.foo` (serde_ignored's form) → `spec.containers[0].foo` (upstream's form).
fn format_ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", format_ignored_path(parent)),
        P::Map { parent, key } => {
            let p = format_ignored_path(parent);
            if p.is_empty() { key.to_string() } else { format!("{p}.{key}") }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => format_ignored_path(parent),
    }
}

/// `a == b` as serde_json defines it (key order does not matter), without hashing a key where
/// both objects hold the same keys in the same order, as a stored object and an update of it
/// do: keys are paired by position, and looked up only if the orders part. serde_json's own
/// equality looks every key up in the other map.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return false;
            }
            let mut in_order = true;
            for ((kx, vx), (ky, vy)) in x.iter().zip(y) {
                if kx != ky {
                    in_order = false;
                    break;
                }
                if !json_eq(vx, vy) {
                    return false;
                }
            }
            in_order || x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_eq(v, w)),
        _ => a == b,
    }
}

/// Sets `key` in `map`: in place when present, else before the first greater key. That is where
/// the typed encoding puts it (k8s-openapi writes struct fields, and `BTreeMap`s, in sorted
/// order), for writes that change a stored object without encoding it again: the stored form
/// must stay the one any later write produces, or writing back what was read is not a no-op.
pub fn insert_sorted(map: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    if let Some(slot) = map.get_mut(key) {
        *slot = value;
        return;
    }
    let at = map.keys().position(|k| k.as_str() > key).unwrap_or(map.len());
    map.shift_insert(at, key.to_string(), value);
}

fn encode<K: Serialize>(obj: &K) -> Result<Value, StrategyError> {
    serde_json::to_value(obj).map_err(|e| StrategyError::Decode(e.to_string()))
}

fn decode_stored<K: DeserializeOwned>(v: &Value) -> Result<K, StrategyError> {
    K::deserialize(v).map_err(|e| StrategyError::Decode(format!("stored object does not decode: {e}")))
}

impl<K: KindStrategy> ObjectStrategy for Typed<K> {
    fn admit(
        &self,
        object: Value,
        op: Operation<'_>,
        unknown_fields: &mut Vec<String>,
    ) -> Result<Admitted, StrategyError> {
        let mut obj: K = decode_tracking(object, unknown_fields).map_err(StrategyError::Decode)?;
        let mut errs = ErrorList::new();
        match op {
            Operation::Create => {
                obj.prepare_for_create();
                obj.default();
                errs.extend(obj.validate());
            }
            Operation::Update { old } => {
                let old: K = decode_stored(old)?;
                obj.prepare_for_update(&old);
                obj.default();
                errs.extend(obj.validate());
                errs.extend(obj.validate_update(&old));
            }
            Operation::UpdateStatus { old } => {
                obj.default();
                errs.extend(obj.validate_status_update(old));
            }
            Operation::System { old: _ } => {
                obj.default();
                errs.extend(obj.validate());
            }
        }
        let object = encode(&obj)?;
        errs.extend(validation::validate_object_meta(&object, K::name_rule(), &Path::new("metadata")));
        if !errs.is_empty() {
            return Err(StrategyError::Invalid(errs));
        }
        Ok(Admitted { object, warnings: obj.warnings() })
    }

    fn name_rule(&self) -> NameRule {
        K::name_rule()
    }
}
