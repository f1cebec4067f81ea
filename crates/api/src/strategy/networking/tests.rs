//! networking.k8s.io/v1 strategies driven through the whole admission pipeline.

use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy, ServiceCIDR};
use serde_json::{Value, json};

use crate::strategy::test_util::{create, errors, has, ok};

fn netpol(spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "default"}, "spec": spec})
}

#[test]
fn network_policy_defaults() {
    let out = ok(create::<NetworkPolicy>(netpol(json!({"ingress": [{"ports": [{"port": 80}]}]}))));
    assert_eq!(out["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(out["spec"]["podSelector"], json!({}));
    assert_eq!(out["spec"]["ingress"][0]["ports"][0], json!({"port": 80, "protocol": "TCP"}));
    let out = ok(create::<NetworkPolicy>(netpol(json!({"podSelector": {}, "egress": [{}]}))));
    assert_eq!(out["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
}

#[test]
fn network_policy_validation() {
    let errs = errors(create::<NetworkPolicy>(netpol(json!({
        "podSelector": {},
        "ingress": [{"from": [{}, {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["192.168.0.0/24"]}, "podSelector": {}}],
                     "ports": [{"port": "http", "endPort": 90}, {"protocol": "ICMP"}]}],
        "policyTypes": ["Inbound"]
    }))));
    has(&errs, "spec.ingress[0].from[0]: Required value: must specify a peer");
    has(&errs, "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer");
    has(
        &errs,
        "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"192.168.0.0/24\": must be a strict subset of `cidr`",
    );
    has(&errs, "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric");
    has(
        &errs,
        "spec.ingress[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
    );
    has(&errs, "spec.policyTypes[0]: Unsupported value: \"Inbound\": supported values: \"Egress\", \"Ingress\"");
}

fn ingress(spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

#[test]
fn ingress_rules() {
    let good = ingress(json!({"ingressClassName": "traefik", "rules": [{"host": "*.example.com", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}));
    let out = ok(create::<Ingress>(good));
    assert_eq!(out["status"], json!({"loadBalancer": {}}));
    let errs = errors(create::<Ingress>(ingress(json!({}))));
    assert_eq!(
        errs,
        ["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]
    );
    let errs = errors(create::<Ingress>(ingress(json!({"rules": [{"host": "10.0.0.1", "http": {"paths": [
        {"path": "api", "pathType": "Exact", "backend": {"service": {"name": "web"}}},
        {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "/", "pathType": "Regex", "backend": {"service": {"name": "web", "port": {"name": "http", "number": 80}}}}
    ]}}]}))));
    has(&errs, "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address");
    has(&errs, "spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path");
    has(&errs, "spec.rules[0].http.paths[0].backend: Required value: port name or number is required");
    has(&errs, "spec.rules[0].http.paths[1].pathType: Required value: pathType must be specified");
    has(
        &errs,
        "spec.rules[0].http.paths[2].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
    );
    has(&errs, "spec.rules[0].http.paths[2].backend: Invalid value: \"\": cannot set both port name & port number");
}

#[test]
fn ingress_class_and_service_cidr() {
    let errs = errors(create::<IngressClass>(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "c"}, "spec": {}}),
    ));
    assert_eq!(errs, ["spec.controller: Required value"]);
    let errs = errors(create::<ServiceCIDR>(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": "c"},
        "spec": {"cidrs": ["10.43.0.0/33"]}}),
    ));
    assert_eq!(
        errs,
        [
            "spec.cidrs[0]: Invalid value: \"10.43.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
        ]
    );
}
