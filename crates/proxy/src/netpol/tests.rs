//! Policy resolution: which pods are isolated, and what each rule allows. The rendered
//! chains are checked in `render/tests.rs`; real packets in `tests/netns`.

use serde_json::{Value, json};

use super::*;

fn pod(ns: &str, name: &str, ip: &str, node: &str, labels: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i", "ports": [
            {"name": "http", "containerPort": 8080},
            {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
        ]}]},
        "status": {"phase": "Running", "podIP": ip},
    }))
    .expect("a Pod")
}

fn namespace(name: &str, labels: Value) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("a Namespace")
}

fn policy(ns: &str, name: &str, spec: Value) -> NetworkPolicy {
    serde_json::from_value(json!({"metadata": {"namespace": ns, "name": name}, "spec": spec})).expect("a policy")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("an IPv4 address")
}

fn pods_of(ips: &[&str]) -> Peer {
    Peer::Pods(ips.iter().map(|s| ip(s)).collect())
}

fn tcp(port: u16) -> PortMatch {
    PortMatch { protocol: Protocol::Tcp, range: Some((port, port)) }
}

/// x/a (app=a), x/b (app=b) on node-a; y/a on node-b; namespaces labelled ns=<name>.
fn world() -> (Vec<Pod>, Vec<Namespace>) {
    (
        vec![
            pod("x", "a", "10.42.0.2", "node-a", json!({"app": "a"})),
            pod("x", "b", "10.42.0.3", "node-a", json!({"app": "b"})),
            pod("y", "a", "10.42.1.2", "node-b", json!({"app": "a"})),
        ],
        vec![namespace("x", json!({"ns": "x"})), namespace("y", json!({"ns": "y"}))],
    )
}

fn resolved(policies: &[NetworkPolicy]) -> Policies {
    let (pods, namespaces) = world();
    resolve(&pods, &namespaces, policies, "node-a")
}

fn find<'a>(p: &'a Policies, name: &str) -> &'a IsolatedPod {
    p.pods.iter().find(|i| format!("{}/{}", i.namespace, i.name) == name).unwrap_or_else(|| panic!("{name}: {p:?}"))
}

#[test]
fn no_policy_isolates_nothing_and_only_local_pods_are_isolated() {
    assert_eq!(resolved(&[]), Policies::default());
    // A deny-all in y selects y/a, which runs on node-b: nothing for node-a to enforce.
    let deny = policy("y", "deny", json!({"podSelector": {}, "policyTypes": ["Ingress"]}));
    let p = resolved(&[deny]);
    assert!(p.pods.is_empty());
    assert_eq!(p.count, 1);
}

#[test]
fn default_deny_ingress_and_egress() {
    let p = resolved(&[policy("x", "deny", json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}))]);
    assert_eq!(p.pods.len(), 2);
    for pod in &p.pods {
        assert_eq!(pod.ingress, Some(vec![]));
        assert_eq!(pod.egress, Some(vec![]));
    }
    // policyTypes absent (not defaulted by an API server): Ingress only, Egress when there are
    // egress rules.
    let p = resolved(&[policy("x", "deny", json!({"podSelector": {"matchLabels": {"app": "a"}}}))]);
    assert_eq!(find(&p, "x/a").ingress, Some(vec![]));
    assert_eq!(find(&p, "x/a").egress, None);
    assert!(p.pods.iter().all(|i| i.name == "a"));
    let p = resolved(&[policy("x", "e", json!({"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}))]);
    assert_eq!(find(&p, "x/a").egress, Some(vec![Allow { peer: Peer::Any, ports: vec![tcp(53)] }]));
}

#[test]
fn peers_by_pod_namespace_and_both() {
    let from = |peer: Value| {
        let p = resolved(&[policy(
            "x",
            "p",
            json!({"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [peer]}]}),
        )]);
        find(&p, "x/a").ingress.clone().expect("isolated")
    };
    // podSelector alone: the policy's namespace only.
    assert_eq!(
        from(json!({"podSelector": {"matchLabels": {"app": "a"}}})),
        [Allow { peer: pods_of(&["10.42.0.2"]), ports: vec![] }]
    );
    // namespaceSelector alone: every pod there.
    assert_eq!(
        from(json!({"namespaceSelector": {"matchLabels": {"ns": "y"}}})),
        [Allow { peer: pods_of(&["10.42.1.2"]), ports: vec![] }]
    );
    // Both in one peer: AND.
    assert_eq!(
        from(json!({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "a"}}})),
        [Allow { peer: pods_of(&["10.42.0.2", "10.42.1.2"]), ports: vec![] }]
    );
    // Matching nothing: the rule allows nothing (the pod stays isolated).
    assert_eq!(from(json!({"podSelector": {"matchLabels": {"app": "zzz"}}})), []);
    // ipBlock with nested excepts: only the outer one is kept.
    assert_eq!(
        from(json!({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.42.0.0/24", "10.42.0.0/16", "10.1.2.3/32"]}})),
        [Allow {
            peer: Peer::Block {
                cidr: Cidr::parse("10.0.0.0/8").expect("cidr"),
                except: vec![Cidr::parse("10.1.2.3/32").expect("cidr"), Cidr::parse("10.42.0.0/16").expect("cidr")],
            },
            ports: vec![],
        }]
    );
    // IPv6 blocks are not enforced.
    assert_eq!(from(json!({"ipBlock": {"cidr": "fd00::/8"}})), []);
}

#[test]
fn rules_and_policies_add_up() {
    let a = json!({"podSelector": {"matchLabels": {"app": "a"}}});
    let p = resolved(&[
        policy(
            "x",
            "one",
            json!({"podSelector": a["podSelector"], "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}),
        ),
        policy(
            "x",
            "two",
            json!({"podSelector": {}, "ingress": [{"ports": [{"port": 9000, "endPort": 9010}, {"protocol": "UDP"}]}]}),
        ),
    ]);
    let got = find(&p, "x/a").ingress.clone().expect("isolated");
    assert_eq!(
        got,
        [
            Allow { peer: pods_of(&["10.42.0.3"]), ports: vec![] },
            Allow {
                peer: Peer::Any,
                ports: vec![
                    PortMatch { protocol: Protocol::Tcp, range: Some((9000, 9010)) },
                    PortMatch { protocol: Protocol::Udp, range: None },
                ],
            },
        ]
    );
    // x/b is selected only by "two".
    assert_eq!(find(&p, "x/b").ingress.as_ref().map(Vec::len), Some(1));
    // An empty ingress rule allows everything.
    let p = resolved(&[policy("x", "all", json!({"podSelector": {}, "ingress": [{}]}))]);
    assert_eq!(find(&p, "x/a").ingress, Some(vec![Allow { peer: Peer::Any, ports: vec![] }]));
}

#[test]
fn named_ports_resolve_on_the_right_pod() {
    // Ingress: the protected pod's port; unknown names match nothing.
    let p = resolved(&[policy(
        "x",
        "in",
        json!({"podSelector": {}, "ingress": [{"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}, {"port": "nope"}]}]}),
    )]);
    assert_eq!(
        find(&p, "x/a").ingress,
        Some(vec![Allow {
            peer: Peer::Any,
            ports: vec![tcp(8080), PortMatch { protocol: Protocol::Udp, range: Some((5353, 5353)) }],
        }])
    );
    // A named port whose protocol differs does not match.
    let p = resolved(&[policy(
        "x",
        "in",
        json!({"podSelector": {}, "ingress": [{"ports": [{"port": "http", "protocol": "UDP"}]}]}),
    )]);
    assert_eq!(find(&p, "x/a").ingress, Some(vec![]));
    // Egress: each destination pod's own number, so one allowance per pod.
    let p = resolved(&[policy(
        "x",
        "out",
        json!({"podSelector": {"matchLabels": {"app": "a"}}, "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": "http"}, {"port": 443}]}]}),
    )]);
    let got = find(&p, "x/a").egress.clone().expect("isolated");
    assert_eq!(got[0], Allow { peer: pods_of(&["10.42.0.2", "10.42.0.3", "10.42.1.2"]), ports: vec![tcp(443)] });
    assert_eq!(
        got[1..],
        [
            Allow { peer: pods_of(&["10.42.0.2"]), ports: vec![tcp(8080)] },
            Allow { peer: pods_of(&["10.42.0.3"]), ports: vec![tcp(8080)] },
            Allow { peer: pods_of(&["10.42.1.2"]), ports: vec![tcp(8080)] },
        ]
    );
}

#[test]
fn finished_and_host_network_pods_are_not_peers() {
    let (mut pods, namespaces) = world();
    pods[1].status.as_mut().expect("status").phase = Some("Succeeded".into());
    let mut host = pod("x", "h", "192.168.1.10", "node-a", json!({"app": "b"}));
    host.spec.as_mut().expect("spec").host_network = Some(true);
    pods.push(host);
    let policies = [policy("x", "p", json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}))];
    let p = resolve(&pods, &namespaces, &policies, "node-a");
    assert_eq!(p.pods.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["a"], "only x/a is isolated");
    assert_eq!(find(&p, "x/a").ingress, Some(vec![Allow { peer: pods_of(&["10.42.0.2"]), ports: vec![] }]));
}
