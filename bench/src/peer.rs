//! The same logical operation expressed for each peer: a Kubernetes REST call for skiff, the
//! matching key-value call on etcd's HTTP/JSON gateway (`/v3/kv/put`, `/v3/kv/range`,
//! `/v3/watch`) under the key Kubernetes itself would use (`/registry/<resource>/<ns>/<name>`),
//! with the same JSON object as the stored value so both sides move the same bytes.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::servers::Kind;

/// One HTTP request, ready to send.
#[derive(Clone, Debug)]
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub body: Option<Bytes>,
}

/// About 1 KB of ConfigMap data, as the issue asks.
pub(crate) const PAYLOAD_BYTES: usize = 1000;

/// A ConfigMap `name` in `ns` whose data is `PAYLOAD_BYTES` of text tagged with `version`, so
/// that successive updates really change the object.
pub(crate) fn configmap(ns: &str, name: &str, version: u64) -> Bytes {
    static PAYLOAD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let payload = PAYLOAD.get_or_init(|| {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..PAYLOAD_BYTES).map(|i| ALPHABET[i % ALPHABET.len()] as char).collect()
    });
    let v = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench"}},
        "data": {"version": version.to_string(), "payload": payload},
    });
    Bytes::from(v.to_string())
}

/// A small Pod `name` in `ns`: one container, no volumes (skiff adds the defaults).
pub(crate) fn pod(ns: &str, name: &str) -> Bytes {
    let v = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
    });
    Bytes::from(v.to_string())
}

/// The etcd key Kubernetes would use.
fn key(resource: &str, ns: &str, name: &str) -> String {
    format!("/registry/{resource}/{ns}/{name}")
}

fn etcd_body(v: Value) -> Option<Bytes> {
    Some(Bytes::from(v.to_string()))
}

/// Creates `object` (`resource` in `ns`, named `name`). On etcd this is a raw put.
pub(crate) fn create(kind: Kind, resource: &str, ns: &str, name: &str, object: &Bytes) -> Req {
    match kind {
        Kind::Skiff => Req {
            method: Method::POST,
            path: format!("/api/v1/namespaces/{ns}/{resource}"),
            body: Some(object.clone()),
        },
        Kind::Etcd => put(resource, ns, name, object),
    }
}

/// Replaces `object` unconditionally (no resourceVersion precondition, like a raw put).
pub(crate) fn update(kind: Kind, resource: &str, ns: &str, name: &str, object: &Bytes) -> Req {
    match kind {
        Kind::Skiff => Req {
            method: Method::PUT,
            path: format!("/api/v1/namespaces/{ns}/{resource}/{name}"),
            body: Some(object.clone()),
        },
        Kind::Etcd => put(resource, ns, name, object),
    }
}

fn put(resource: &str, ns: &str, name: &str, object: &Bytes) -> Req {
    Req {
        method: Method::POST,
        path: "/v3/kv/put".into(),
        body: etcd_body(json!({"key": B64.encode(key(resource, ns, name)), "value": B64.encode(object)})),
    }
}

/// Reads one object.
pub(crate) fn get(kind: Kind, resource: &str, ns: &str, name: &str) -> Req {
    match kind {
        Kind::Skiff => {
            Req { method: Method::GET, path: format!("/api/v1/namespaces/{ns}/{resource}/{name}"), body: None }
        }
        Kind::Etcd => Req {
            method: Method::POST,
            path: "/v3/kv/range".into(),
            body: etcd_body(json!({"key": B64.encode(key(resource, ns, name))})),
        },
    }
}

/// The etcd range covering every key of `resource` in `ns`: `[prefix, prefix+1)`.
fn prefix_range(resource: &str, ns: &str) -> (String, String) {
    let prefix = format!("/registry/{resource}/{ns}/");
    let end = format!("/registry/{resource}/{ns}0");
    (B64.encode(prefix), B64.encode(end))
}

/// Lists every object of `resource` in `ns` in one response (no limit).
pub(crate) fn list(kind: Kind, resource: &str, ns: &str) -> Req {
    match kind {
        Kind::Skiff => Req { method: Method::GET, path: format!("/api/v1/namespaces/{ns}/{resource}"), body: None },
        Kind::Etcd => {
            let (key, range_end) = prefix_range(resource, ns);
            Req {
                method: Method::POST,
                path: "/v3/kv/range".into(),
                body: etcd_body(json!({"key": key, "range_end": range_end})),
            }
        }
    }
}

/// Watches `resource` in `ns` for changes after `revision`.
pub(crate) fn watch(kind: Kind, resource: &str, ns: &str, revision: i64) -> Req {
    match kind {
        Kind::Skiff => Req {
            method: Method::GET,
            path: format!("/api/v1/namespaces/{ns}/{resource}?watch=true&resourceVersion={revision}"),
            body: None,
        },
        Kind::Etcd => {
            let (key, range_end) = prefix_range(resource, ns);
            Req {
                method: Method::POST,
                path: "/v3/watch".into(),
                body: etcd_body(
                    json!({"create_request": {"key": key, "range_end": range_end, "start_revision": revision + 1}}),
                ),
            }
        }
    }
}

/// Creates namespace `ns` (skiff only: etcd has no namespaces).
pub(crate) fn namespace(ns: &str) -> Req {
    Req {
        method: Method::POST,
        path: "/api/v1/namespaces".into(),
        body: Some(Bytes::from(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).to_string())),
    }
}

/// The revision a write produced or a list was served at: `metadata.resourceVersion` from
/// skiff, `header.revision` from etcd (the gateway renders int64 as a JSON string).
pub(crate) fn revision_of(kind: Kind, body: &[u8]) -> Result<i64> {
    let v: Value = serde_json::from_slice(body).context("a response that is not JSON")?;
    let field = match kind {
        Kind::Skiff => v.pointer("/metadata/resourceVersion"),
        Kind::Etcd => v.pointer("/header/revision"),
    };
    let s = field.and_then(Value::as_str).with_context(|| format!("no revision in {}", truncate(body)))?;
    s.parse().with_context(|| format!("revision {s:?}"))
}

/// How many objects a list response holds.
pub(crate) fn count_of(kind: Kind, body: &[u8]) -> Result<usize> {
    let v: Value = serde_json::from_slice(body).context("a list response that is not JSON")?;
    let items = match kind {
        Kind::Skiff => v.get("items"),
        Kind::Etcd => v.get("kvs"),
    };
    Ok(items.and_then(Value::as_array).map_or(0, Vec::len))
}

/// The first bytes of a body, for error messages.
pub(crate) fn truncate(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_same_object_on_both_peers() {
        let cm = configmap("bench", "cm-1", 3);
        assert!(cm.len() > PAYLOAD_BYTES && cm.len() < PAYLOAD_BYTES + 300, "{}", cm.len());
        let s = create(Kind::Skiff, "configmaps", "bench", "cm-1", &cm);
        assert_eq!((s.method, s.path.as_str()), (Method::POST, "/api/v1/namespaces/bench/configmaps"));
        assert_eq!(s.body.as_ref(), Some(&cm));
        let e = create(Kind::Etcd, "configmaps", "bench", "cm-1", &cm);
        let body: Value = serde_json::from_slice(e.body.as_ref().unwrap()).unwrap();
        assert_eq!(B64.decode(body["value"].as_str().unwrap()).unwrap(), cm.to_vec());
        assert_eq!(B64.decode(body["key"].as_str().unwrap()).unwrap(), b"/registry/configmaps/bench/cm-1");
    }

    #[test]
    fn revisions_and_counts() {
        assert_eq!(revision_of(Kind::Skiff, br#"{"metadata":{"resourceVersion":"42"}}"#).unwrap(), 42);
        assert_eq!(revision_of(Kind::Etcd, br#"{"header":{"revision":"7"}}"#).unwrap(), 7);
        assert!(revision_of(Kind::Etcd, br#"{"header":{}}"#).is_err());
        assert!(revision_of(Kind::Skiff, b"not json").is_err());
        assert_eq!(count_of(Kind::Skiff, br#"{"items":[{},{}]}"#).unwrap(), 2);
        assert_eq!(count_of(Kind::Etcd, br#"{"header":{}}"#).unwrap(), 0);
    }

    #[test]
    fn etcd_prefix_range_ends_after_the_prefix() {
        let (k, e) = prefix_range("pods", "x");
        assert_eq!(B64.decode(k).unwrap(), b"/registry/pods/x/");
        assert_eq!(B64.decode(e).unwrap(), b"/registry/pods/x0");
    }
}
