//! Tests of [`decode`]: real kubectl bodies against Go's JSON of the same objects, k8s-pb (prost)
//! encodings of typed objects, and hostile input.

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message as _;
use serde_json::{Value, json};

use super::kubectl_bodies::BODIES;
use super::*;

/// Frame an encoded object like client-go: magic, then `runtime.Unknown` with every field written
/// (Go writes the empty `contentEncoding` and `contentType` too).
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn encode(api_version: &str, kind: &str, object: &impl prost::Message) -> Value {
    match decode(&envelope(api_version, kind, object.encode_to_vec())) {
        Ok(v) => v,
        Err(e) => panic!("decode {api_version} {kind}: {e}"),
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn meta(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta { name: s(name), ..Default::default() })
}

fn quantity(v: &str) -> core_quantity::Quantity {
    core_quantity::Quantity { string: s(v) }
}

use k8s_pb::apimachinery::pkg::api::resource as core_quantity;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;

fn int(v: i32) -> Option<IntOrString> {
    Some(IntOrString { r#type: Some(0), int_val: Some(v), str_val: None })
}

fn string(v: &str) -> Option<IntOrString> {
    Some(IntOrString { r#type: Some(1), int_val: None, str_val: s(v) })
}

#[test]
fn kubectl_bodies_decode_to_kubectls_own_json() {
    for (name, args, body, go_json) in BODIES {
        let got = decode(body).unwrap_or_else(|e| panic!("{name} ({args}): {e}"));
        let Some(go_json) = go_json else { continue };
        let want: Value = serde_json::from_str(go_json).expect("fixture JSON");
        assert_eq!(got, want, "{name}: kubectl {args}");
        // Key order too: Go's encoder writes struct order, and serde_json keeps insertion order.
        assert_eq!(got.to_string(), want.to_string(), "{name}: key order");
    }
}

fn body(name: &str) -> Value {
    let (_, _, body, _) = BODIES.iter().find(|(n, ..)| *n == name).expect("fixture");
    decode(body).expect("decodes")
}

#[test]
fn kubectl_bodies_without_a_dry_run_print() {
    // `kubectl create token sa1 --duration=10m --audience=a`: expirationSeconds is a pointer;
    // boundObjectRef a nil pointer without omitempty.
    assert_eq!(
        body("token"),
        json!({"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
               "metadata": {"creationTimestamp": null},
               "spec": {"audiences": ["a"], "expirationSeconds": 600, "boundObjectRef": null},
               "status": {"token": "", "expirationTimestamp": null}})
    );
    // `kubectl auth can-i get pods`
    assert_eq!(
        body("cani"),
        json!({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
               "metadata": {"creationTimestamp": null},
               "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
               "status": {"allowed": false}})
    );
    // `kubectl certificate approve csr1`: the object as read back, with the Approved condition.
    let csr = body("csr_approve");
    assert_eq!(csr["metadata"]["creationTimestamp"], "2026-01-02T03:04:05Z");
    assert_eq!(csr["spec"]["request"], "LS0tLQ==");
    assert_eq!(csr["spec"]["expirationSeconds"], 3600);
    assert_eq!(csr["spec"]["usages"], json!(["client auth"]));
    let condition = &csr["status"]["conditions"][0];
    assert_eq!(condition["type"], "Approved");
    assert_eq!(condition["status"], "True");
    assert_eq!(condition["reason"], "KubectlApprove");
    assert!(condition["lastUpdateTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{condition}");
}
