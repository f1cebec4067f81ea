//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into the
//! JSON the rest of the API server works on.
//!
//! kubectl's typed commands (`create namespace|configmap|secret|deployment|job|cronjob|service|
//! quota|role|rolebinding|pdb|priorityclass|ingress|token`, `autoscale`, `certificate approve`,
//! `auth can-i`) send protobuf and client-go does not fall back to JSON on a 415, so the server
//! must read it. Responses stay JSON, which kubectl accepts. The handler calls [`decode`] on such a
//! body before anything else and carries on as if the client had sent JSON.
//!
//! On the wire a body is the magic `k8s\0` and a `runtime.Unknown` message: `typeMeta` (1:
//! `apiVersion` 1, `kind` 2), `raw` (2: the typed object's protobuf encoding, per k8s.io/api's
//! `generated.proto`), `contentEncoding` (3) and `contentType` (4), both unused by upstream.
//! The object is read with a generated table of every message (`protobuf/schema.rs`, from
//! `scripts/gen-protobuf-schema.py`) and printed as Go's JSON encoder would print the same Go
//! object: see [`decode`]. See `docs/data-path.md` for where body decoding sits in a request.

// Generated: formatted by its generator (one field a line), not by rustfmt.
#[rustfmt::skip]
mod schema;
mod table;
mod to_json;
mod wire;

#[cfg(test)]
mod kubectl_bodies;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use wire::{Payload, Reader};

/// The `Content-Type` of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body starts with these bytes; the fourth is the encoding style, 0 being the
/// `runtime.Unknown` envelope.
const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be turned into JSON. All are the client's fault (a 400).
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`.
    #[error("not a Kubernetes protobuf body (missing k8s magic)")]
    MissingMagic,
    /// The envelope's `typeMeta` has no `apiVersion` or no `kind`.
    #[error("protobuf body has no {0} in its typeMeta")]
    MissingTypeMeta(&'static str),
    /// No protobuf message is known for the envelope's group version and kind.
    #[error("unknown kind {api_version} {kind}")]
    UnknownKind { api_version: String, kind: String },
    /// A field's payload runs past the end of its message.
    #[error("truncated field {tag} of {message}")]
    Truncated { tag: u32, message: &'static str },
    /// A field key is cut off, longer than ten bytes, or names field 0.
    #[error("malformed field key in {message}")]
    BadKey { message: &'static str },
    /// A wire type that Kubernetes messages never use (groups) or that does not exist.
    #[error("field {tag} of {message} has unsupported wire type {wire_type}")]
    UnsupportedWireType { tag: u32, message: &'static str, wire_type: u8 },
    /// A known field arrived with a wire type its declared type never has.
    #[error("field {tag} of {message} has wire type {found}, expected {expected}")]
    WireType { tag: u32, message: &'static str, found: u8, expected: u8 },
    /// A value with no JSON form.
    #[error("field {tag} of {message}: {reason}")]
    Value { tag: u32, message: &'static str, reason: &'static str },
    /// The bytes of a `RawExtension`, `FieldsV1` or apiextensions `JSON` are not JSON.
    #[error("field {tag} of {message} does not hold valid JSON")]
    RawJson {
        tag: u32,
        message: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// Messages nested deeper than any real object does.
    #[error("protobuf messages nested deeper than {} levels", to_json::MAX_DEPTH)]
    TooDeep,
}

const UNKNOWN: &str = "io.k8s.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "io.k8s.apimachinery.pkg.runtime.TypeMeta";

/// Decode a `k8s\0`-framed body. Returns the object as JSON (apiVersion and kind set from the envelope).
///
/// The JSON is what Go's encoder writes for the object the client encoded: keys in Go struct order
/// with `kind` and `apiVersion` first; `creationTimestamp: null` and other zero times as `null`;
/// zero plain `omitempty` values (`hostNetwork: false`, `dnsPolicy: ""`) left out, while pointer
/// fields keep a zero (`replicas: 0`); quantities and int-or-strings in their string/number forms;
/// bytes (Secret data) in base64; empty lists and maps left out. Unknown fields are skipped.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::MissingMagic)?;
    let unknown = Envelope::read(envelope)?;
    let api_version =
        unknown.api_version.filter(|s| !s.is_empty()).ok_or(ProtobufError::MissingTypeMeta("apiVersion"))?;
    let kind = unknown.kind.filter(|s| !s.is_empty()).ok_or(ProtobufError::MissingTypeMeta("kind"))?;
    let Some(message) = table::by_kind(&api_version, &kind) else {
        return Err(ProtobufError::UnknownKind { api_version, kind });
    };
    let Value::Object(fields) = to_json::message(message, unknown.raw, 0)? else {
        // `by_kind` only returns messages that print as objects.
        return Err(ProtobufError::UnknownKind { api_version, kind });
    };
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("kind".to_owned(), Value::String(kind));
    out.insert("apiVersion".to_owned(), Value::String(api_version));
    out.extend(fields);
    Ok(Value::Object(out))
}

/// The parts of `runtime.Unknown` that matter: the type and the raw object.
struct Envelope<'a> {
    api_version: Option<String>,
    kind: Option<String>,
    raw: &'a [u8],
}

impl<'a> Envelope<'a> {
    fn read(buf: &'a [u8]) -> Result<Self, ProtobufError> {
        let mut envelope = Envelope { api_version: None, kind: None, raw: &[] };
        let mut reader = Reader::new(buf);
        while let Some((tag, payload)) = reader.next_field().map_err(|e| to_json::wire_error(e, UNKNOWN))? {
            match (tag, payload) {
                (1, Payload::Bytes(type_meta)) => {
                    let mut inner = Reader::new(type_meta);
                    while let Some((tag, payload)) =
                        inner.next_field().map_err(|e| to_json::wire_error(e, TYPE_META))?
                    {
                        let text = || match payload {
                            Payload::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
                            other => Err(ProtobufError::WireType {
                                tag,
                                message: TYPE_META,
                                found: other.wire_type(),
                                expected: 2,
                            }),
                        };
                        match tag {
                            1 => envelope.api_version = Some(text()?),
                            2 => envelope.kind = Some(text()?),
                            _ => {}
                        }
                    }
                }
                (2, Payload::Bytes(raw)) => envelope.raw = raw,
                (1 | 2, other) => {
                    return Err(ProtobufError::WireType {
                        tag,
                        message: UNKNOWN,
                        found: other.wire_type(),
                        expected: 2,
                    });
                }
                // contentEncoding and contentType: upstream's decoder ignores them too.
                _ => {}
            }
        }
        Ok(envelope)
    }
}
