//! Request and response bodies: size limits, content types (JSON, YAML), and content
//! negotiation for responses (JSON, YAML, `Table`).

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::status::{ApiError, ApiResult};

/// Request bodies larger than this are refused with 413 (upstream's limit).
pub(crate) const MAX_REQUEST_BODY: usize = 3 * 1024 * 1024;
/// Objects larger than this are not stored (etcd's default request limit is 1.5 MiB).
pub(crate) const MAX_OBJECT_SIZE: usize = 1536 * 1024;

/// Read the whole body, refusing more than [`MAX_REQUEST_BODY`] bytes.
pub(crate) async fn read_body(body: Body, headers: &HeaderMap) -> ApiResult<Bytes> {
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && len > MAX_REQUEST_BODY
    {
        return Err(ApiError::too_large(MAX_REQUEST_BODY));
    }
    let limited = http_body_util::Limited::new(body, MAX_REQUEST_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(ApiError::too_large(MAX_REQUEST_BODY))
        }
        Err(e) => Err(ApiError::bad_request(format!("error reading request body: {e}"))),
    }
}

/// The media type of a request, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Parse YAML the way Kubernetes does (YAML 1.1 booleans, legacy octal `0644` → 420).
///
/// A body that starts with `{` is tried as JSON first, as apimachinery's `YAMLOrJSONDecoder`
/// does: kubectl's server-side apply sends JSON as `application/apply-patch+yaml`, and a JSON
/// parser reads it several times faster. What JSON refuses (a YAML flow mapping, `0644`) goes
/// to the YAML parser, so its answer and its errors stay the same.
pub(crate) fn parse_yaml(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && let Ok(Unique(v)) = serde_json::from_slice::<Unique>(bytes)
    {
        return Ok(v);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let opts = serde_saphyr::options! { legacy_octal_numbers: true };
    serde_saphyr::from_str_with_options::<Value>(text, opts).map_err(|e| e.to_string())
}

/// A JSON value whose maps repeat no key. The YAML parser refuses a repeated key (as
/// upstream's does), so the JSON shortcut above must not take the last one instead: a JSON
/// document with one goes to the YAML parser and gets its error.
struct Unique(Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
        d.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Unique(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let Unique(v) = map.next_value()?;
            if out.contains_key(&k) {
                return Err(serde::de::Error::custom(format_args!("duplicate key {k:?}")));
            }
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Decode an object body (create/update) by content type.
pub(crate) fn decode_object(bytes: &[u8], headers: &HeaderMap) -> ApiResult<Value> {
    let mt = media_type(headers);
    let v = match mt.as_str() {
        "application/json" | "" | "*/*" => serde_json::from_slice::<Value>(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}")))?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            parse_yaml(bytes).map_err(|e| ApiError::bad_request(format!("error decoding YAML body: {e}")))?
        }
        // kubectl's typed commands (create namespace, create configmap, …) send protobuf and
        // client-go does not fall back to JSON, so it is decoded into the JSON form here.
        skiff_api::protobuf::MEDIA_TYPE => skiff_api::protobuf::decode(bytes)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf body: {e}")))?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !v.is_object() {
        return Err(ApiError::bad_request("the request body must be a JSON object"));
    }
    Ok(v)
}

/// What the client asked to get back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accept {
    Json,
    Yaml,
    /// `application/json;as=Table;g=meta.k8s.io;v=v1` (or v1beta1).
    Table {
        v1beta1: bool,
    },
    /// `application/json;as=PartialObjectMetadata[List]`.
    Metadata,
}

/// Pick the first acceptable media type in the `Accept` header.
pub(crate) fn negotiate(headers: &HeaderMap) -> ApiResult<Accept> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return Ok(Accept::Json) };
    let mut saw_any = false;
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let mt = params.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = None;
        let mut g = None;
        let mut v = None;
        for p in params {
            if let Some((k, val)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = Some(val.trim().to_string()),
                    "g" => g = Some(val.trim().to_string()),
                    "v" => v = Some(val.trim().to_string()),
                    _ => {}
                }
            }
        }
        saw_any = true;
        match (mt.as_str(), as_.as_deref()) {
            ("application/json" | "*/*" | "application/*", Some("Table")) if g.as_deref() == Some("meta.k8s.io") => {
                match v.as_deref() {
                    Some("v1") => return Ok(Accept::Table { v1beta1: false }),
                    Some("v1beta1") => return Ok(Accept::Table { v1beta1: true }),
                    _ => continue,
                }
            }
            ("application/json", Some("PartialObjectMetadata" | "PartialObjectMetadataList"))
                if g.as_deref() == Some("meta.k8s.io") =>
            {
                return Ok(Accept::Metadata);
            }
            // Aggregated discovery is negotiated by the discovery handler itself.
            ("application/json", Some(_)) => continue,
            ("application/json" | "*/*" | "application/*", None) => return Ok(Accept::Json),
            ("application/yaml", None) => return Ok(Accept::Yaml),
            _ => continue,
        }
    }
    if saw_any { Err(ApiError::not_acceptable()) } else { Ok(Accept::Json) }
}

/// A JSON response from bytes.
pub(crate) fn json_bytes(status: StatusCode, bytes: Bytes) -> Response<Body> {
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, v: &Value) -> Response<Body> {
    json_bytes(status, Bytes::from(serde_json::to_vec(v).unwrap_or_default()))
}

/// Respond with object bytes in the negotiated encoding (JSON or YAML).
pub(crate) fn object_response(status: StatusCode, bytes: Bytes, accept: Accept) -> Response<Body> {
    if accept == Accept::Yaml
        && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        && let Ok(y) = serde_saphyr::to_string(&v)
    {
        let mut r = Response::new(Body::from(y));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
        return r;
    }
    json_bytes(status, bytes)
}

/// The error response for an [`ApiError`].
pub(crate) fn error_response(e: &ApiError) -> Response<Body> {
    json(e.code, &e.to_status())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn negotiation() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(&headers(&[("accept", kubectl)])).unwrap(), Accept::Table { v1beta1: false });
        assert_eq!(negotiate(&headers(&[])).unwrap(), Accept::Json);
        assert_eq!(negotiate(&headers(&[("accept", "application/yaml")])).unwrap(), Accept::Yaml);
        assert_eq!(negotiate(&headers(&[("accept", "*/*")])).unwrap(), Accept::Json);
        assert!(negotiate(&headers(&[("accept", "application/vnd.kubernetes.protobuf")])).is_err());
        assert_eq!(
            negotiate(&headers(&[("accept", "application/vnd.kubernetes.protobuf, application/json")])).unwrap(),
            Accept::Json
        );
    }

    #[test]
    fn yaml_like_kubernetes() {
        let v = parse_yaml(b"a: yes\nmode: 0644\nn: 3\ns: '0644'\n").unwrap();
        assert_eq!(v, serde_json::json!({"a": true, "mode": 420, "n": 3, "s": "0644"}));
        assert!(parse_yaml(b"a: [1, 2").is_err());
        // JSON reads as JSON; what only YAML accepts still reads as YAML.
        let body = br#" {"metadata": {"name": "x"}, "data": {"a": "yes"}, "n": 3, "b": true}"#;
        assert_eq!(
            parse_yaml(body).unwrap(),
            serde_json::json!({"metadata": {"name": "x"}, "data": {"a": "yes"}, "n": 3, "b": true})
        );
        assert_eq!(parse_yaml(b"{a: yes, mode: 0644}").unwrap(), serde_json::json!({"a": true, "mode": 420}));
        assert!(parse_yaml(b"{\"a\": [1, 2}").is_err());
        // The shortcut reads what serde_json reads, and leaves repeated keys to YAML's error.
        let doc = br#"{"a": [1, -2, 3.5, 18446744073709551615, null, "x\u00e9"], "b": {"c": {}}}"#;
        assert_eq!(parse_yaml(doc).unwrap(), serde_json::from_slice::<Value>(doc).unwrap());
        let e = parse_yaml(br#"{"a": 1, "b": {"c": 1, "c": 2}}"#).unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn decode_errors_are_400_or_415() {
        let h = headers(&[("content-type", "application/json")]);
        assert_eq!(decode_object(b"{bad", &h).unwrap_err().code, StatusCode::BAD_REQUEST);
        assert_eq!(decode_object(b"[1]", &h).unwrap_err().code, StatusCode::BAD_REQUEST);
        let h = headers(&[("content-type", "application/vnd.kubernetes.protobuf")]);
        assert_eq!(decode_object(b"x", &h).unwrap_err().code, StatusCode::BAD_REQUEST, "garbage protobuf is a 400");
        let h = headers(&[("content-type", "application/cbor")]);
        assert_eq!(decode_object(b"x", &h).unwrap_err().code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
