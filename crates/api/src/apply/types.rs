//! What structured-merge-diff's type system says about a position in an object, derived from the
//! OpenAPI metadata a [`Schema`] cursor reads, with kube-openapi's conversion rules
//! (`pkg/schemaconv`):
//!
//! - objects are granular maps unless `x-kubernetes-map-type: atomic`;
//! - lists follow `x-kubernetes-list-type` (`atomic`, `set`, `map` keyed by
//!   `x-kubernetes-list-map-keys`); without one, a `merge` patch strategy makes a list map keyed
//!   by the patch merge key (`containers` by `name`), or a set when there is no merge key; any
//!   other list is atomic;
//! - `int-or-string`, `Quantity` and `RawExtension` are opaque scalars;
//! - a field the schema does not declare is atomic, except under
//!   `x-kubernetes-preserve-unknown-fields` (or in a free-form object), where upstream's
//!   "deduced" type applies: objects granular, lists atomic.

use serde_json::Value;

use super::compiled::{self, Node};
use crate::fieldpath::PathElement;
use crate::schema::{MapType, Schema};

/// The type of one position.
#[derive(Clone, Copy, Debug)]
pub(super) enum Ty<'a> {
    /// Described by a schema node. `preserve` says whether an enclosing node of the same
    /// definition preserves unknown fields (upstream propagates that to inline descendants).
    Schema { schema: Schema<'a>, preserve: bool },
    /// A position of the built-in definitions, read once (see [`compiled`]); `preserve` as for
    /// [`Ty::Schema`].
    Node { node: &'static Node, preserve: bool },
    /// No schema: the value is one atomic leaf, whatever its shape.
    Untyped,
    /// Upstream's "deduced" type: objects are granular maps of deduced values, lists atomic.
    Deduced,
}

/// How a value is walked, given its type and its JSON shape.
#[derive(Clone, Debug)]
pub(super) enum Shape<'a> {
    /// Owned, compared and replaced as a whole: scalars, atomic maps and lists, mismatches.
    Leaf,
    /// A granular map (a struct or a map); `null` is an empty one.
    Map,
    /// An associative list: a list map when `keys` is `Some`, a set otherwise.
    List { keys: Option<Vec<&'a str>>, items: Ty<'a> },
}

impl Shape<'_> {
    /// Leaf, map or list: values of different classes cannot be merged item by item.
    pub(super) fn class(&self) -> u8 {
        match self {
            Shape::Leaf => 0,
            Shape::Map => 1,
            Shape::List { .. } => 2,
        }
    }
}

/// Definitions upstream maps to opaque scalars whatever their OpenAPI shape.
const OPAQUE: &[&str] =
    &["io.k8s.apimachinery.pkg.api.resource.Quantity", "io.k8s.apimachinery.pkg.runtime.RawExtension"];

/// Default values of list-map key fields that upstream's schemas declare (`+default="TCP"`) and
/// k8s-openapi's do not; a missing key field takes its default when building the item's key.
const KEY_DEFAULTS: &[(&str, &str, &str)] =
    &[("io.k8s.api.core.v1.ContainerPort", "protocol", "TCP"), ("io.k8s.api.core.v1.ServicePort", "protocol", "TCP")];

/// Struct fields that upstream's Go types hold by value (not by pointer), so they are always
/// present, at least as `{}`, in the objects upstream compares. Knowing them keeps an
/// update that fills one in from marking the struct itself as owned (a `"."` entry), as upstream
/// never does for these. Keyed by (definition, property); a root object's `metadata`, `spec`
/// and `status` are handled separately.
const VALUE_STRUCTS: &[(&str, &str)] = &[
    ("io.k8s.api.apps.v1.DeploymentSpec", "template"),
    ("io.k8s.api.apps.v1.DeploymentSpec", "strategy"),
    ("io.k8s.api.apps.v1.ReplicaSetSpec", "template"),
    ("io.k8s.api.apps.v1.StatefulSetSpec", "template"),
    ("io.k8s.api.apps.v1.StatefulSetSpec", "updateStrategy"),
    ("io.k8s.api.apps.v1.DaemonSetSpec", "template"),
    ("io.k8s.api.apps.v1.DaemonSetSpec", "updateStrategy"),
    ("io.k8s.api.batch.v1.JobSpec", "template"),
    ("io.k8s.api.batch.v1.CronJobSpec", "jobTemplate"),
    ("io.k8s.api.batch.v1.JobTemplateSpec", "metadata"),
    ("io.k8s.api.batch.v1.JobTemplateSpec", "spec"),
    ("io.k8s.api.core.v1.PodTemplateSpec", "metadata"),
    ("io.k8s.api.core.v1.PodTemplateSpec", "spec"),
    ("io.k8s.api.core.v1.PodTemplate", "template"),
    ("io.k8s.api.core.v1.PersistentVolumeClaimTemplate", "metadata"),
    ("io.k8s.api.core.v1.PersistentVolumeClaimTemplate", "spec"),
    ("io.k8s.api.core.v1.Container", "resources"),
    ("io.k8s.api.core.v1.EphemeralContainer", "resources"),
    ("io.k8s.api.core.v1.PersistentVolumeClaimSpec", "resources"),
    ("io.k8s.api.core.v1.ContainerStatus", "state"),
    ("io.k8s.api.core.v1.ContainerStatus", "lastState"),
    ("io.k8s.api.core.v1.NodeStatus", "daemonEndpoints"),
    ("io.k8s.api.core.v1.NodeStatus", "nodeInfo"),
    ("io.k8s.api.core.v1.NodeDaemonEndpoints", "kubeletEndpoint"),
    ("io.k8s.api.core.v1.Event", "involvedObject"),
    ("io.k8s.api.core.v1.Event", "source"),
    ("io.k8s.api.discovery.v1.Endpoint", "conditions"),
    ("io.k8s.api.networking.v1.HTTPIngressPath", "backend"),
    ("io.k8s.api.networking.v1.NetworkPolicySpec", "podSelector"),
    ("io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec", "scaleTargetRef"),
    ("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", "scaleTargetRef"),
    ("io.k8s.api.rbac.v1.RoleBinding", "roleRef"),
    ("io.k8s.api.rbac.v1.ClusterRoleBinding", "roleRef"),
    ("io.k8s.api.storage.v1.VolumeAttachmentSpec", "source"),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec", "names"),
    ("io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus", "acceptedNames"),
    ("io.k8s.api.admissionregistration.v1.ValidatingWebhook", "clientConfig"),
    ("io.k8s.api.admissionregistration.v1.MutatingWebhook", "clientConfig"),
];

/// List fields upstream's Go types serialize without `omitempty`: always present, as `null` when
/// empty, in the objects upstream compares (so, like [`VALUE_STRUCTS`], never owned as a whole
/// by the update that first fills them).
const NULL_LISTS: &[(&str, &str)] = &[("io.k8s.api.core.v1.PodSpec", "containers")];

/// What upstream's typed object holds for a field the JSON omits, when it is not nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Implicit {
    /// A value-typed struct: `{}`.
    EmptyObject,
    /// A list without `omitempty`: `null`.
    Null,
}

/// What [`Ty::shape`] reads of a schema position. Each is a hashed lookup of a key in the
/// schema's JSON, a dozen for every value walked, so for the built-in definitions they are read
/// once per position, into its [`Node`].
#[derive(Clone, Copy)]
pub(super) struct Facts {
    /// Int-or-string, quantities, raw extensions: leaves whatever their JSON.
    opaque: bool,
    /// Objects (and `null`) are walked as maps here: an object type, or no type at all
    /// (upstream accepts any shape there).
    maps: bool,
    /// Arrays (and `null`) are walked as lists here.
    lists: bool,
    /// Maps here are atomic (`x-kubernetes-map-type: atomic`, or a value upstream rejects).
    atomic_map: bool,
}

impl Facts {
    pub(super) fn read(schema: Schema<'_>) -> Facts {
        let object = schema.is_object();
        let array = schema.is_array();
        let typeless = !object && !array && schema.schema_type().is_none();
        Facts {
            opaque: is_opaque(schema),
            maps: object || typeless,
            lists: array || typeless,
            atomic_map: schema.map_type() == Some(MapType::Atomic) || bad_extension(schema, "x-kubernetes-map-type"),
        }
    }
}

impl<'a> Ty<'a> {
    /// The type of a whole object described by `schema`.
    pub(super) fn root(schema: Schema<'a>) -> Self {
        match compiled::root(schema) {
            Some(node) => Ty::Node { node, preserve: false },
            None => Ty::Schema { schema, preserve: false },
        }
    }

    /// The type at a built-in child position (see [`Ty::at`]).
    fn at_node(node: &'static Node, parent: &Node, preserve: bool) -> Self {
        Ty::Node { node, preserve: (preserve || parent.preserves) && !node.named }
    }

    /// The schema cursor at this position, if it has one.
    fn schema(&self) -> Option<Schema<'a>> {
        match self {
            Ty::Schema { schema, .. } => Some(*schema),
            Ty::Node { node, .. } => Some(node.schema),
            Ty::Untyped | Ty::Deduced => None,
        }
    }

    /// A child schema position; `preserve` carries over only to inline children (a reference
    /// starts a new definition, converted on its own upstream).
    fn at(schema: Schema<'a>, parent: Schema<'a>, preserve: bool) -> Self {
        let inherited = (preserve || parent.preserves_unknown_fields()) && schema.name().is_none();
        Ty::Schema { schema, preserve: inherited }
    }

    /// How `v` is walked at this position.
    pub(super) fn shape(&self, v: &Value) -> Shape<'a> {
        let (schema, facts) = match self {
            Ty::Untyped => return Shape::Leaf,
            Ty::Deduced => return if v.is_object() || v.is_null() { Shape::Map } else { Shape::Leaf },
            Ty::Schema { schema, .. } => (*schema, Facts::read(*schema)),
            Ty::Node { node, .. } => (node.schema, node.facts),
        };
        if facts.opaque {
            return Shape::Leaf;
        }
        match v {
            Value::Object(_) | Value::Null if facts.maps => {
                if facts.atomic_map {
                    Shape::Leaf
                } else {
                    Shape::Map
                }
            }
            Value::Array(_) | Value::Null if facts.lists => self.list_shape(schema),
            _ => Shape::Leaf,
        }
    }

    fn list_shape(&self, schema: Schema<'a>) -> Shape<'a> {
        if let Ty::Node { node, .. } = self {
            // Read once per position: a list map's keys, none for a set, `None` for an atomic list.
            let keys = node.list_keys(|schema| match Ty::list_shape_of(Ty::Untyped, schema) {
                Shape::List { keys: Some(keys), .. } => Some(keys.into_boxed_slice()),
                Shape::List { keys: None, .. } => Some(Box::new([]) as Box<[&str]>),
                _ => None,
            });
            let items = self.items();
            return match keys {
                None => Shape::Leaf,
                Some([]) => Shape::List { keys: None, items },
                Some(keys) => Shape::List { keys: Some(keys.to_vec()), items },
            };
        }
        Ty::list_shape_of(self.items(), schema)
    }

    /// The list shape `schema` declares, with items of type `items`.
    fn list_shape_of(items: Ty<'a>, schema: Schema<'a>) -> Shape<'a> {
        match schema.extension("x-kubernetes-list-type") {
            Some(Value::String(t)) => match t.as_str() {
                "set" => Shape::List { keys: None, items },
                "map" => {
                    let keys: Vec<&'a str> = schema.list_map_keys().collect();
                    // A map list without keys is a schema error upstream; treat it as atomic.
                    if keys.is_empty() { Shape::Leaf } else { Shape::List { keys: Some(keys), items } }
                }
                _ => Shape::Leaf,
            },
            Some(_) => Shape::Leaf,
            None => match schema.extension("x-kubernetes-patch-strategy").and_then(Value::as_str) {
                Some("merge" | "merge,retainKeys") => match schema.patch_merge_key() {
                    Some(key) => Shape::List { keys: Some(vec![key]), items },
                    None => Shape::List { keys: None, items },
                },
                _ => Shape::Leaf,
            },
        }
    }

    /// The type of the value under key `name` of an object at this position.
    pub(super) fn child(&self, name: &str) -> Ty<'a> {
        let (schema, preserve) = match self {
            Ty::Untyped => return Ty::Untyped,
            Ty::Deduced => return Ty::Deduced,
            Ty::Schema { schema, preserve } => {
                if let Some(p) = schema.property(name) {
                    return Ty::at(p, *schema, *preserve);
                }
                if let Some(ap) = schema.additional_properties() {
                    return Ty::at(ap, *schema, *preserve);
                }
                (*schema, *preserve)
            }
            Ty::Node { node, preserve } => {
                if let Some(p) = node.property(name).or_else(|| node.additional()) {
                    return Ty::at_node(p, node, *preserve);
                }
                (node.schema, *preserve)
            }
        };
        let resolved = schema.resolved();
        let free_form = resolved.get("properties").and_then(Value::as_object).is_none_or(|p| p.is_empty());
        if preserve
            || schema.preserves_unknown_fields()
            || free_form
            || resolved.get("additionalProperties") == Some(&Value::Bool(true))
        {
            Ty::Deduced
        } else {
            Ty::Untyped
        }
    }

    /// The type of the items of a list at this position.
    pub(super) fn items(&self) -> Ty<'a> {
        match self {
            Ty::Schema { schema, preserve } => match schema.items() {
                Some(items) => Ty::at(items, *schema, *preserve),
                None => Ty::Untyped,
            },
            Ty::Node { node, preserve } => match node.items() {
                Some(items) => Ty::at_node(items, node, *preserve),
                None => Ty::Untyped,
            },
            _ => Ty::Untyped,
        }
    }

    /// Whether `name` is a declared field of a struct at this position (upstream `FindField`).
    pub(super) fn declares(&self, name: &str) -> bool {
        match self {
            Ty::Schema { schema, .. } => schema.property(name).is_some(),
            Ty::Node { node, .. } => node.property(name).is_some(),
            _ => false,
        }
    }

    /// The default of list-map key field `field` for items of this type, if any.
    pub(super) fn key_default(&self, field: &str) -> Option<Value> {
        let schema = self.schema()?;
        if let Some(p) = schema.property(field)
            && let Some(d) = p.node().get("default").or_else(|| p.resolved().get("default"))
        {
            return Some(d.clone());
        }
        let name = schema.name()?;
        KEY_DEFAULTS.iter().find(|(def, f, _)| *def == name && *f == field).map(|(_, _, d)| Value::from(*d))
    }

    /// What upstream's Go type holds for field `name` when the JSON omits it (see
    /// [`VALUE_STRUCTS`] and [`NULL_LISTS`]). `root` is set for the position of the whole object,
    /// whose `metadata`, `spec` and `status` are value structs in every built-in kind.
    pub(super) fn implicit(&self, name: &str, root: bool) -> Option<Implicit> {
        let schema = self.schema()?;
        if root {
            let value_struct = schema.extension("x-kubernetes-group-version-kind").is_some()
                && matches!(name, "metadata" | "spec" | "status")
                && schema.property(name).is_some_and(|p| p.is_object());
            return value_struct.then_some(Implicit::EmptyObject);
        }
        match self {
            Ty::Node { node, .. } => node.implicit(name),
            _ => implicit_in(schema, name),
        }
    }

    /// The path element of a list item, or upstream's reason why it has none.
    pub(super) fn item_element(&self, keys: Option<&[&str]>, item: &Value) -> Result<PathElement, String> {
        match keys {
            Some(keys) => {
                let Value::Object(fields) = item else {
                    return Err(if item.is_null() {
                        "associative list with keys may not have a null element".to_string()
                    } else {
                        "associative list with keys may not have non-map elements".to_string()
                    });
                };
                let mut key = Vec::with_capacity(keys.len());
                for k in keys {
                    let v = match fields.get(*k) {
                        Some(v) => v.clone(),
                        None => self.key_default(k).ok_or_else(|| {
                            format!(
                                "associative list with keys has an element that omits key field {} (and doesn't have default value)",
                                crate::fieldpath::go_quote(k)
                            )
                        })?,
                    };
                    key.push(((*k).to_string(), v));
                }
                Ok(PathElement::key(key))
            }
            None => match item {
                Value::Object(_) => Err("associative list without keys has an element that's a map type".to_string()),
                Value::Array(_) => Err("not supported: associative list with lists as elements".to_string()),
                Value::Null => Err("associative list without keys has an element that's an explicit null".to_string()),
                v => Ok(PathElement::Value(v.clone())),
            },
        }
    }
}

/// What upstream's Go type of `schema` (not a root) holds for field `name` when the JSON omits
/// it (see [`VALUE_STRUCTS`] and [`NULL_LISTS`]).
pub(super) fn implicit_in(schema: Schema<'_>, name: &str) -> Option<Implicit> {
    let def = schema.name()?;
    if VALUE_STRUCTS.iter().any(|(d, p)| *d == def && *p == name) {
        Some(Implicit::EmptyObject)
    } else if NULL_LISTS.iter().any(|(d, p)| *d == def && *p == name) {
        Some(Implicit::Null)
    } else {
        None
    }
}

fn is_opaque(schema: Schema<'_>) -> bool {
    schema.is_int_or_string() || schema.name().is_some_and(|n| OPAQUE.contains(&n))
}

/// An extension present with a value upstream would reject (and then treat as atomic).
fn bad_extension(schema: Schema<'_>, name: &str) -> bool {
    match schema.extension(name) {
        None => false,
        Some(Value::String(s)) => s != "atomic" && s != "granular",
        Some(_) => true,
    }
}
