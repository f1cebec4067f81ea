//! The shape of the generated message table (`schema.rs`) and lookups into it.
//!
//! One [`Message`] per Kubernetes protobuf message, named like its OpenAPI definition
//! (`io.k8s.api.core.v1.PodSpec`), with its fields in Go struct order so the JSON object comes out
//! in the order Go's encoder writes it.

use super::schema::{GROUP_VERSIONS, MESSAGES};

/// A protobuf message and how its JSON looks.
#[derive(Debug)]
pub(super) struct Message {
    /// The OpenAPI definition name, which is also the upstream proto name with `io.k8s.` in front.
    pub(super) name: &'static str,
    pub(super) shape: Shape,
    /// In Go struct order (not tag order).
    pub(super) fields: &'static [Field],
}

/// The JSON form of a message: an object, or one of apimachinery's types with their own
/// `MarshalJSON`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// A JSON object with one key per field.
    Object,
    /// `resource.Quantity` (`string` = 1): the string, `"0"` when unset.
    Quantity,
    /// `intstr.IntOrString` (`type` = 1, `intVal` = 2, `strVal` = 3): a number or a string.
    IntOrString,
    /// `meta/v1.Time` (`seconds` = 1, `nanos` = 2): RFC 3339 in seconds, `null` when zero.
    Time,
    /// `meta/v1.MicroTime`: RFC 3339 with six fractional digits, `null` when zero.
    MicroTime,
    /// `meta/v1.Duration` (`duration` = 1, nanoseconds): Go's `time.Duration.String()`.
    Duration,
    /// `runtime.RawExtension`, `meta/v1.FieldsV1`, apiextensions `JSON` (`raw` = 1): the embedded JSON.
    RawJson,
    /// A named string slice (`Verbs`, `ExtraValue`: `repeated string items = 1`): the plain array.
    Items,
    /// apiextensions `JSONSchemaPropsOrArray` (`schema` = 1, `jSONSchemas` = 2).
    SchemaOrArray,
    /// apiextensions `JSONSchemaPropsOrBool` (`allows` = 1, `schema` = 2).
    SchemaOrBool,
    /// apiextensions `JSONSchemaPropsOrStringArray` (`schema` = 1, `property` = 2).
    SchemaOrStringArray,
}

/// One field of a message.
#[derive(Clone, Copy, Debug)]
pub(super) struct Field {
    pub(super) tag: u32,
    /// The JSON key; empty for [`Label::Inline`].
    pub(super) json: &'static str,
    pub(super) kind: Kind,
    pub(super) label: Label,
    pub(super) absent: Absent,
}

/// The protobuf type of a field (of a map's value, for [`Label::Map`]; keys are always strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    /// Base64 in JSON, like Go's `[]byte`.
    Bytes,
    Bool,
    I32,
    I64,
    F64,
    /// A message: an index into [`MESSAGES`].
    Msg(u16),
}

/// How often a field occurs and how a present value shows in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Label {
    /// Kept whenever present, zero or not: a Go pointer (`replicas: 0` differs from unset), a
    /// field without `omitempty`, or a message.
    Opt,
    /// A Go value (not a pointer) with `omitempty`: Go's protobuf encoder always writes it, and a
    /// zero means unset, so a zero is left out as Go's JSON encoder would (`hostNetwork: false`).
    OmitEmpty,
    /// A list; packed or not.
    Rep,
    /// `map<string, kind>`: a JSON object.
    Map,
    /// An embedded Go struct (`json:",inline"`): its keys go into the parent object.
    Inline,
}

/// What Go's JSON shows for a field the body does not carry (Go then holds the zero value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Absent {
    /// Nothing: the Go field has `omitempty` (or is newer than kubectl 1.32, which the table was
    /// made from).
    Omit,
    /// `null`: a nil pointer, slice or map without `omitempty` (`ClusterRole.rules`).
    Null,
    /// The zero value: a plain scalar without `omitempty`, or a struct, which Go always prints
    /// (`metadata.creationTimestamp: null`, `spec: {}`).
    Zero,
}

pub(super) const fn m(name: &'static str, shape: Shape, fields: &'static [Field]) -> Message {
    Message { name, shape, fields }
}

pub(super) const fn f(tag: u32, json: &'static str, kind: Kind, label: Label) -> Field {
    Field { tag, json, kind, label, absent: Absent::Omit }
}

impl Field {
    /// Absent means `null` (see [`Absent::Null`]).
    pub(super) const fn null(self) -> Field {
        Field { absent: Absent::Null, ..self }
    }

    /// Absent means the zero value (see [`Absent::Zero`]).
    pub(super) const fn zero(self) -> Field {
        Field { absent: Absent::Zero, ..self }
    }
}

/// The message at a table index (indices come from the table itself).
pub(super) fn by_index(index: u16) -> &'static Message {
    &MESSAGES[usize::from(index)]
}

/// A message by its definition name.
pub(super) fn by_name(name: &str) -> Option<&'static Message> {
    MESSAGES.binary_search_by(|m| m.name.cmp(name)).ok().map(|i| &MESSAGES[i])
}

/// Kinds of meta/v1 that upstream registers in every group version (`metav1.AddToGroupVersion`),
/// plus `Status`, so `apps/v1 DeleteOptions` decodes as meta/v1's.
const META_KINDS: &[&str] = &[
    "CreateOptions",
    "DeleteOptions",
    "GetOptions",
    "ListOptions",
    "PatchOptions",
    "Status",
    "UpdateOptions",
    "WatchEvent",
];

/// The message of a top-level object from its envelope's `apiVersion` and `kind`.
pub(super) fn by_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    let (_, prefix) = GROUP_VERSIONS.iter().find(|(gv, _)| *gv == api_version)?;
    let own = by_name(&format!("{prefix}.{kind}"));
    let meta = || {
        META_KINDS.contains(&kind).then(|| by_name(&format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}"))).flatten()
    };
    own.or_else(meta).filter(|m| m.shape == Shape::Object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_consistent() {
        for pair in MESSAGES.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} !< {}", pair[0].name, pair[1].name);
        }
        for m in &MESSAGES {
            for f in m.fields {
                if let Kind::Msg(i) = f.kind {
                    assert!(usize::from(i) < MESSAGES.len(), "{}.{}", m.name, f.json);
                }
                assert_eq!(f.json.is_empty(), f.label == Label::Inline, "{}.{}", m.name, f.tag);
                assert!(f.tag > 0, "{}", m.name);
                // Go's zero value of a list, a map or an embedded struct is never spelled out.
                if matches!(f.label, Label::Rep | Label::Map | Label::Inline | Label::OmitEmpty) {
                    assert_ne!(f.absent, Absent::Zero, "{}.{}", m.name, f.json);
                }
            }
        }
    }

    #[test]
    fn kinds_resolve_by_group_version() {
        assert_eq!(by_kind("apps/v1", "Deployment").map(|m| m.name), Some("io.k8s.api.apps.v1.Deployment"));
        assert_eq!(by_kind("v1", "Namespace").map(|m| m.name), Some("io.k8s.api.core.v1.Namespace"));
        assert_eq!(
            by_kind("apps/v1", "DeleteOptions").map(|m| m.name),
            Some("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(
            by_kind("meta.k8s.io/v1", "DeleteOptions").map(|m| m.name),
            Some("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert!(by_kind("apps/v1", "Foo").is_none());
        assert!(by_kind("example.com/v1", "Deployment").is_none());
        // Only meta/v1's option kinds fall back; a nested type is not a top-level kind.
        assert!(by_kind("apps/v1", "ObjectMeta").is_none());
        assert!(by_kind("meta.k8s.io/v1", "Time").is_none());
    }
}
