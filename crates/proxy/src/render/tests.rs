//! Rendering, asserted on the lines `nft list table` would show; every rendered table is also
//! fed to `nft -c -f -` (check mode: parsed and validated by the kernel, nothing applied)
//! when `nft` is installed.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

use super::*;
use crate::ProxyConfig;

const TABLE: &str = "skiff-test";

fn node() -> NodeFacts {
    ProxyConfig {
        node_name: "node-a".into(),
        node_ips: vec![IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10))],
        ..ProxyConfig::default()
    }
    .node_facts()
    .expect("valid config")
}

fn service(name: &str, spec: Value) -> Service {
    service_with_status(name, spec, json!({}))
}

fn service_with_status(name: &str, spec: Value, status: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"namespace": "default", "name": name},
        "spec": spec,
        "status": status,
    }))
    .expect("a Service")
}

/// An endpoint: address, node, and (ready, serving, terminating).
fn ep(ip: &str, node: &str, conditions: (bool, bool, bool)) -> Value {
    json!({
        "addresses": [ip],
        "nodeName": node,
        "conditions": {"ready": conditions.0, "serving": conditions.1, "terminating": conditions.2},
    })
}

const READY: (bool, bool, bool) = (true, true, false);

fn slice(service: &str, name: &str, ports: Value, endpoints: Vec<Value>) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {
            "namespace": "default",
            "name": name,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .expect("an EndpointSlice")
}

fn web_slice(endpoints: Vec<Value>) -> EndpointSlice {
    slice("web", "web-abc", json!([{"name": "http", "port": 8080, "protocol": "TCP"}]), endpoints)
}

fn web(extra: Value) -> Service {
    let mut spec = json!({
        "type": "ClusterIP",
        "clusterIP": "10.43.0.10",
        "clusterIPs": ["10.43.0.10"],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
    });
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    service("web", spec)
}

fn base(name: &str) -> String {
    chain_name_base(name)
}

fn ep_base(ip: &str, port: u16) -> String {
    base(&format!("default/web/tcp/http__{ip}/{port}"))
}

/// Render, check with `nft -c` and return the text.
fn rendered(services: &[Service], slices: &[EndpointSlice]) -> String {
    let text = render(TABLE, &node(), services, slices);
    nft_check(&text);
    text
}

/// `nft -c -f -`: the kernel validates the whole transaction without committing it.
pub(crate) fn nft_check(text: &str) {
    let child = Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("NOTE: nft is not installed; rendered rules were not syntax-checked");
            return;
        }
        Err(e) => panic!("running nft -c: {e}"),
    };
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("writing to nft");
    let out = child.wait_with_output().expect("nft -c finishes");
    assert!(
        out.status.success(),
        "nft -c rejected the rendered table:\n{}\n--- rules ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        numbered(text)
    );
}

fn numbered(text: &str) -> String {
    text.lines().enumerate().map(|(i, l)| format!("{:4} {l}\n", i + 1)).collect()
}

/// The body of chain `name` (its rule lines, trimmed; a base chain's `type …` line left out).
fn chain_body(text: &str, name: &str) -> Vec<String> {
    let header = format!("\tchain {name} {{");
    let Some(start) = text.find(&header) else { panic!("no chain {name} in:\n{text}") };
    text[start + header.len()..]
        .lines()
        .skip(1)
        .take_while(|l| l.trim() != "}")
        .map(|l| l.trim().to_string())
        .filter(|l| !l.starts_with("type "))
        .collect()
}

/// The element lines of set or map `name`.
fn elements(text: &str, name: &str) -> Vec<String> {
    let start = text
        .find(&format!("\tmap {name} {{"))
        .or_else(|| text.find(&format!("\tset {name} {{")))
        .unwrap_or_else(|| panic!("no set or map {name}"));
    let block: Vec<&str> = text[start..].lines().skip(1).take_while(|l| *l != "\t}").collect();
    let Some(open) = block.iter().position(|l| l.trim() == "elements = {") else { return vec![] };
    block[open + 1..]
        .iter()
        .take_while(|l| l.trim() != "}")
        .map(|l| l.trim().trim_end_matches(',').to_string())
        .collect()
}

#[test]
fn chain_names_match_upstream() {
    // The example in upstream's proxier.go comment.
    assert_eq!(chain_name_base("ns1/svc1/tcp/p80"), "ULMVA6XW-ns1/svc1/tcp/p80");
    let long = "x".repeat(300);
    let b = chain_name_base(&long);
    assert_eq!(b.len(), 240);
    assert!(b.ends_with("..."));
}

#[test]
fn empty_cluster_renders_the_base_table() {
    let text = rendered(&[], &[]);
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(lines.next(), Some("table inet skiff-test {}"));
    assert_eq!(lines.next(), Some("delete table inet skiff-test"));
    assert_eq!(lines.next(), Some("table inet skiff-test {"));
    assert!(text.contains("\t\ttype nat hook prerouting priority -100; policy accept;"));
    assert!(text.contains("\t\ttype nat hook postrouting priority 100; policy accept;"));
    assert_eq!(chain_body(&text, "nat-output"), ["jump services"]);
    assert_eq!(
        chain_body(&text, "masquerading"),
        ["meta mark & 0x4000 == 0 return", "meta mark set meta mark ^ 0x4000", "masquerade fully-random"]
    );
    assert_eq!(
        chain_body(&text, "cluster-ips-check")[1],
        "ip daddr { 10.43.0.0/16 } drop comment \"Drop traffic to unallocated ClusterIPs\""
    );
    assert_eq!(
        chain_body(&text, "services")[1],
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
    );
    assert!(elements(&text, "service-ips").is_empty());
}

#[test]
fn cluster_ip_spreads_over_ready_endpoints() {
    let text = rendered(
        &[web(json!({}))],
        &[web_slice(vec![
            ep("10.42.0.2", "node-a", READY),
            ep("10.42.1.3", "node-b", READY),
            ep("10.42.1.4", "node-b", (false, false, false)),
        ])],
    );
    let svc = format!("service-{}", base("default/web/tcp/http"));
    assert_eq!(elements(&text, "cluster-ips"), ["10.43.0.10"]);
    assert_eq!(elements(&text, "service-ips"), [format!("10.43.0.10 . tcp . 80 : goto {svc}")]);
    let (e1, e2) = (ep_base("10.42.0.2", 8080), ep_base("10.42.1.3", 8080));
    assert_eq!(
        chain_body(&text, &svc),
        [
            "ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade".to_string(),
            format!("numgen random mod 2 == 0 goto endpoint-{e1}"),
            format!("goto endpoint-{e2}"),
        ]
    );
    assert_eq!(
        chain_body(&text, &format!("endpoint-{e1}")),
        ["ip saddr 10.42.0.2 jump mark-for-masquerade", "meta l4proto tcp dnat ip to 10.42.0.2:8080"],
        "the first rule masquerades hairpin traffic (a pod reaching itself)"
    );
    assert!(!text.contains("10.42.1.4"), "a not-ready endpoint gets no chain");
    assert!(elements(&text, "no-endpoint-services").is_empty());
}

#[test]
fn endpoints_are_picked_evenly_by_a_cascade_and_by_a_vmap_past_sixteen() {
    let ips = |n: usize| (0..n).map(|i| format!("10.42.2.{}", i + 1)).collect::<Vec<_>>();
    let svc = format!("service-{}", base("default/web/tcp/http"));

    // Sixteen: rule i takes 1/(16-i) of what reaches it, the last the rest.
    let sixteen = ips(16);
    let text = rendered(&[web(json!({}))], &[web_slice(sixteen.iter().map(|ip| ep(ip, "node-b", READY)).collect())]);
    let rules = &chain_body(&text, &svc)[1..];
    assert_eq!(rules.len(), 16);
    let mut sorted = sixteen.clone();
    sorted.sort_by_key(|ip| ip.parse::<Ipv4Addr>().unwrap());
    for (i, (rule, ip)) in rules.iter().zip(&sorted).enumerate() {
        let target = format!("endpoint-{}", ep_base(ip, 8080));
        let expected =
            if i < 15 { format!("numgen random mod {} == 0 goto {target}", 16 - i) } else { format!("goto {target}") };
        assert_eq!(*rule, expected);
    }
    // Each endpoint's share: what reaches its rule times what the rule takes.
    let mut reaching = 1.0_f64;
    for i in 0..16 {
        let takes = 1.0 / (16 - i) as f64;
        assert!((reaching * takes - 1.0 / 16.0).abs() < 1e-12, "endpoint {i} gets {}", reaching * takes);
        reaching *= 1.0 - takes;
    }

    // Seventeen: one vmap, as upstream.
    let seventeen = ips(17);
    let text = rendered(&[web(json!({}))], &[web_slice(seventeen.iter().map(|ip| ep(ip, "node-b", READY)).collect())]);
    let rules = &chain_body(&text, &svc)[1..];
    assert_eq!(rules.len(), 1);
    assert!(rules[0].starts_with("numgen random mod 17 vmap { 0 : goto endpoint-"), "{}", rules[0]);
    assert_eq!(rules[0].matches(" : goto endpoint-").count(), 17);
}

#[test]
fn service_without_endpoints_is_rejected() {
    let udp =
        service("dns", json!({"clusterIP": "10.43.0.53", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}));
    let text = rendered(&[web(json!({})), udp], &[web_slice(vec![ep("10.42.1.4", "node-b", (false, false, false))])]);
    assert_eq!(
        elements(&text, "no-endpoint-services"),
        [
            "10.43.0.53 . udp . 53 comment \"default/dns:dns\" : goto reject-chain",
            "10.43.0.10 . tcp . 80 comment \"default/web:http\" : goto reject-chain",
        ]
    );
    assert_eq!(elements(&text, "cluster-ips"), ["10.43.0.10", "10.43.0.53"]);
    assert!(elements(&text, "service-ips").is_empty());
    assert_eq!(chain_body(&text, "reject-chain"), ["meta l4proto tcp reject with tcp reset", "reject"]);
    assert_eq!(chain_body(&text, "filter-forward")[0], "ct state new jump service-endpoints-check");
    assert_eq!(chain_body(&text, "filter-output")[0], "ct state new jump service-endpoints-check");
    let b = base("default/web/tcp/http");
    assert!(!text.contains(&format!("chain service-{b}")), "no NAT chain for a Service without endpoints");
    assert!(!text.contains("chain endpoint-"));
}

#[test]
fn node_port_goes_through_the_external_chain() {
    let svc = web(json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}));
    let text = rendered(&[svc], &[web_slice(vec![ep("10.42.1.3", "node-b", READY)])]);
    let b = base("default/web/tcp/http");
    assert_eq!(elements(&text, "service-nodeports"), [format!("tcp . 30080 : goto external-{b}")]);
    assert_eq!(
        chain_body(&text, &format!("external-{b}")),
        ["jump mark-for-masquerade".to_string(), format!("goto service-{b}")],
        "NodePort traffic may leave the node: masquerade"
    );
    assert_eq!(elements(&text, "service-ips"), [format!("10.43.0.10 . tcp . 80 : goto service-{b}")]);
}

#[test]
fn node_port_without_endpoints_is_rejected() {
    let svc = web(json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}));
    let text = rendered(&[svc], &[]);
    assert_eq!(
        elements(&text, "no-endpoint-nodeports"),
        ["tcp . 30080 comment \"default/web:http\" : goto reject-chain"]
    );
    assert_eq!(
        chain_body(&text, "nodeport-endpoints-check"),
        ["ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports"]
    );
    assert!(elements(&text, "service-nodeports").is_empty());
}

#[test]
fn load_balancer_and_external_ips() {
    let svc = service_with_status(
        "web",
        json!({
            "type": "LoadBalancer",
            "clusterIP": "10.43.0.10",
            "externalIPs": ["203.0.113.7", "2001:db8::7"],
            "loadBalancerSourceRanges": ["192.168.1.0/24", "198.51.100.0/24"],
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}],
        }),
        json!({"loadBalancer": {"ingress": [
            {"ip": "198.51.100.20"},
            {"ip": "198.51.100.21", "ipMode": "Proxy"},
            {"hostname": "lb.example.com"},
        ]}}),
    );
    let text = rendered(&[svc], &[web_slice(vec![ep("10.42.1.3", "node-b", READY)])]);
    let b = base("default/web/tcp/http");
    assert_eq!(
        elements(&text, "service-ips"),
        [
            format!("10.43.0.10 . tcp . 80 : goto service-{b}"),
            format!("203.0.113.7 . tcp . 80 : goto external-{b}"),
            format!("198.51.100.20 . tcp . 80 : goto external-{b}"),
        ],
        "IPv6 external IPs and ipMode: Proxy ingress are not ours"
    );
    assert_eq!(elements(&text, "firewall-ips"), [format!("198.51.100.20 . tcp . 80 : goto firewall-{b}")]);
    assert_eq!(
        chain_body(&text, &format!("firewall-{b}")),
        ["ip saddr != { 192.168.1.0/24, 198.51.100.0/24, 198.51.100.20 } drop"],
        "the node (192.168.1.10) is inside the ranges, so traffic from the VIP itself passes"
    );
    assert_eq!(chain_body(&text, "filter-prerouting"), ["ct state new jump firewall-check"]);
}

#[test]
fn client_ip_affinity_uses_timed_sets() {
    let svc =
        web(json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}}}));
    let slices = [web_slice(vec![ep("10.42.0.2", "node-a", READY), ep("10.42.1.3", "node-b", READY)])];
    let text = rendered(std::slice::from_ref(&svc), &slices);
    let (e1, e2) = (ep_base("10.42.0.2", 8080), ep_base("10.42.1.3", 8080));
    let svc_chain = format!("service-{}", base("default/web/tcp/http"));
    assert_eq!(
        chain_body(&text, &svc_chain)[1..],
        [
            format!("ip saddr @affinity-{e1} goto endpoint-{e1}"),
            format!("ip saddr @affinity-{e2} goto endpoint-{e2}"),
            format!("numgen random mod 2 == 0 goto endpoint-{e1}"),
            format!("goto endpoint-{e2}"),
        ]
    );
    assert_eq!(
        chain_body(&text, &format!("endpoint-{e2}")),
        [
            "ip saddr 10.42.1.3 jump mark-for-masquerade".to_string(),
            format!("update @affinity-{e2} {{ ip saddr }}"),
            "meta l4proto tcp dnat ip to 10.42.1.3:8080".to_string(),
        ]
    );
    assert!(text.contains(&format!(
        "\tset affinity-{e1} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 600s\n\t}}"
    )));

    // Entries of the table being replaced carry over, clamped to the timeout.
    let ports = service_ports(&[svc], &slices, "node-a");
    let carried = CarriedAffinity::from([
        (format!("affinity-{e1}"), vec![(Ipv4Addr::new(10, 42, 9, 9), 42), (Ipv4Addr::new(10, 42, 9, 8), 99_999)]),
        ("affinity-gone".to_string(), vec![(Ipv4Addr::new(10, 42, 9, 7), 5)]),
    ]);
    let text = render_ports(TABLE, &node(), &ports, &Policies::default(), &carried);
    nft_check(&text);
    assert_eq!(elements(&text, &format!("affinity-{e1}")), ["10.42.9.9 expires 42s", "10.42.9.8 expires 600s"]);
    assert!(!text.contains("affinity-gone"));

    // Without a config the timeout is upstream's default, three hours.
    let text = rendered(&[web(json!({"sessionAffinity": "ClientIP"}))], &slices);
    assert!(text.contains("\t\ttimeout 10800s\n"));
}

#[test]
fn internal_traffic_policy_local() {
    let svc = web(json!({"internalTrafficPolicy": "Local"}));
    let both = [web_slice(vec![ep("10.42.0.2", "node-a", READY), ep("10.42.1.3", "node-b", READY)])];
    let text = rendered(std::slice::from_ref(&svc), &both);
    let b = base("default/web/tcp/http");
    assert_eq!(elements(&text, "service-ips"), [format!("10.43.0.10 . tcp . 80 : goto local-{b}")]);
    let e1 = ep_base("10.42.0.2", 8080);
    assert_eq!(
        chain_body(&text, &format!("local-{b}")),
        [
            "ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade".to_string(),
            format!("goto endpoint-{e1}"),
        ]
    );
    assert!(!text.contains("10.42.1.3"), "the other node's endpoint is never used");
    assert!(!text.contains(&format!("chain service-{b}")));

    // Endpoints exist, but not here: drop (not reject).
    let text = rendered(&[svc], &[web_slice(vec![ep("10.42.1.3", "node-b", READY)])]);
    assert_eq!(elements(&text, "no-endpoint-services"), ["10.43.0.10 . tcp . 80 comment \"default/web:http\" : drop"]);
}

#[test]
fn external_traffic_policy_local_keeps_the_client_address() {
    let svc = web(json!({
        "type": "NodePort",
        "externalTrafficPolicy": "Local",
        "ports": [{"name": "http", "port": 80, "nodePort": 30080}],
    }));
    let slices = [web_slice(vec![ep("10.42.0.2", "node-a", READY), ep("10.42.1.3", "node-b", READY)])];
    let text = rendered(std::slice::from_ref(&svc), &slices);
    let b = base("default/web/tcp/http");
    assert_eq!(
        chain_body(&text, &format!("external-{b}")),
        [
            format!("ip saddr 10.42.0.0/16 goto service-{b} comment \"short-circuit pod traffic\""),
            "fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"".to_string(),
            format!("fib saddr type local goto service-{b} comment \"short-circuit local traffic\""),
            format!("goto local-{b}"),
        ],
        "no unconditional masquerade: outside clients keep their source address"
    );
    let e1 = ep_base("10.42.0.2", 8080);
    assert_eq!(chain_body(&text, &format!("local-{b}")), [format!("goto endpoint-{e1}")]);
    assert_eq!(chain_body(&text, &format!("service-{b}")).len(), 3, "ClusterIP traffic still uses every endpoint");

    // No local endpoint: outside traffic is dropped after the short-circuit rules.
    let text = rendered(&[svc], &[web_slice(vec![ep("10.42.1.3", "node-b", READY)])]);
    assert_eq!(elements(&text, "no-endpoint-nodeports"), ["tcp . 30080 comment \"default/web:http\" : drop"]);
    assert_eq!(elements(&text, "service-nodeports"), [format!("tcp . 30080 : goto external-{b}")]);
    assert!(!chain_body(&text, &format!("external-{b}")).iter().any(|r| r.starts_with("goto local-")));
}

#[test]
fn terminating_endpoints_are_used_when_none_is_ready() {
    let text = rendered(
        &[web(json!({}))],
        &[web_slice(vec![
            ep("10.42.0.2", "node-a", (false, true, true)),
            ep("10.42.0.3", "node-a", (false, false, true)),
        ])],
    );
    assert!(text.contains("dnat ip to 10.42.0.2:8080"), "serving while terminating: still a backend");
    assert!(!text.contains("10.42.0.3"), "terminating and no longer serving: not a backend");
    assert!(elements(&text, "no-endpoint-services").is_empty());
}

#[test]
fn named_target_ports_resolve_per_slice() {
    // Two versions of a Deployment name their container port "http" differently.
    let v1 = slice("web", "web-v1", json!([{"name": "http", "port": 8080}]), vec![ep("10.42.0.2", "node-a", READY)]);
    let v2 = slice("web", "web-v2", json!([{"name": "http", "port": 9090}]), vec![ep("10.42.0.3", "node-a", READY)]);
    let other =
        slice("web", "web-x", json!([{"name": "metrics", "port": 9100}]), vec![ep("10.42.0.4", "node-a", READY)]);
    let text = rendered(&[web(json!({}))], &[v1, v2, other]);
    assert!(text.contains("meta l4proto tcp dnat ip to 10.42.0.2:8080"));
    assert!(text.contains("meta l4proto tcp dnat ip to 10.42.0.3:9090"));
    assert!(!text.contains("10.42.0.4"), "a slice without the port name has no endpoint for it");
}

#[test]
fn protocols_and_skipped_services() {
    let multi = service(
        "multi",
        json!({"clusterIP": "10.43.0.20", "ports": [
            {"name": "u", "port": 53, "protocol": "UDP"},
            {"name": "s", "port": 3868, "protocol": "SCTP"},
        ]}),
    );
    let headless = service("headless", json!({"clusterIP": "None", "ports": [{"port": 80}]}));
    let external_name = service("ext", json!({"type": "ExternalName", "externalName": "example.com"}));
    let mut foreign = web(json!({"clusterIP": "10.43.0.30"}));
    foreign.metadata.name = Some("foreign".into());
    foreign.metadata.labels =
        Some([("service.kubernetes.io/service-proxy-name".to_string(), "other".to_string())].into());
    let multi_slice = slice(
        "multi",
        "multi-1",
        json!([{"name": "u", "port": 5353, "protocol": "UDP"}, {"name": "s", "port": 3868, "protocol": "SCTP"}]),
        vec![ep("10.42.0.5", "node-a", READY)],
    );
    let mut v6 = slice(
        "multi",
        "multi-6",
        json!([{"name": "u", "port": 5353, "protocol": "UDP"}]),
        vec![ep("fd00::5", "node-a", READY)],
    );
    v6.address_type = "IPv6".into();
    let text = rendered(&[multi, headless, external_name, foreign], &[multi_slice, v6]);
    assert_eq!(elements(&text, "cluster-ips"), ["10.43.0.20"]);
    assert!(text.contains("ip daddr 10.43.0.20 udp dport 53 ip saddr != 10.42.0.0/16 jump mark-for-masquerade"));
    assert!(text.contains("meta l4proto udp dnat ip to 10.42.0.5:5353"));
    assert!(text.contains("meta l4proto sctp dnat ip to 10.42.0.5:3868"));
    assert!(text.contains("10.43.0.20 . sctp . 3868 : goto service-"));
    assert!(!text.contains("fd00"));
}

#[test]
fn off_cluster_masquerade_needs_a_cluster_cidr() {
    let facts = ProxyConfig { node_name: "node-a".into(), cluster_cidr: String::new(), ..ProxyConfig::default() }
        .node_facts()
        .expect("valid");
    let text = render(TABLE, &facts, &[web(json!({}))], &[web_slice(vec![ep("10.42.0.2", "node-a", READY)])]);
    nft_check(&text);
    assert!(!text.contains("ip saddr != 10.42"), "without a pod range no traffic counts as off-cluster");
    assert!(text.contains("ip saddr 10.42.0.2 jump mark-for-masquerade"), "hairpin still masquerades");
}

#[test]
fn a_contested_external_ip_goes_to_the_first_service() {
    let mut other = web(json!({"clusterIP": "10.43.0.99", "externalIPs": ["203.0.113.7"]}));
    other.metadata.name = Some("zz-other".into());
    let first = web(json!({"externalIPs": ["203.0.113.7"]}));
    let slices = [
        web_slice(vec![ep("10.42.0.2", "node-a", READY)]),
        slice("zz-other", "zz-1", json!([{"name": "http", "port": 8080}]), vec![ep("10.42.0.9", "node-a", READY)]),
    ];
    // nft refuses a transaction with a duplicate map key; one Service must not take every
    // other Service down with it.
    let text = rendered(&[other, first], &slices);
    let claims: Vec<String> =
        elements(&text, "service-ips").into_iter().filter(|e| e.starts_with("203.0.113.7 ")).collect();
    assert_eq!(claims, [format!("203.0.113.7 . tcp . 80 : goto external-{}", base("default/web/tcp/http"))]);
}

#[test]
fn network_policy_chains() {
    use crate::netpol::{Allow, IsolatedPod, Peer, PortMatch};
    use crate::service_port::Protocol;
    let ip = |s: &str| s.parse::<Ipv4Addr>().expect("ip");
    let cidr = |s: &str| Cidr::parse(s).expect("cidr");
    let policies = Policies {
        pods: vec![
            IsolatedPod {
                namespace: "x".into(),
                name: "a".into(),
                ip: ip("10.42.0.2"),
                ingress: Some(vec![
                    Allow { peer: Peer::Pods([ip("10.42.0.3"), ip("10.42.1.2")].into()), ports: vec![] },
                    Allow {
                        peer: Peer::Block { cidr: cidr("10.0.0.0/8"), except: vec![cidr("10.42.0.0/16")] },
                        ports: vec![
                            PortMatch { protocol: Protocol::Tcp, range: Some((80, 80)) },
                            PortMatch { protocol: Protocol::Udp, range: Some((9000, 9010)) },
                            PortMatch { protocol: Protocol::Sctp, range: None },
                        ],
                    },
                    // The same allowance from a second policy: one rule.
                    Allow { peer: Peer::Pods([ip("10.42.0.3"), ip("10.42.1.2")].into()), ports: vec![] },
                ]),
                egress: None,
            },
            IsolatedPod {
                namespace: "x".into(),
                name: "b".into(),
                ip: ip("10.42.0.3"),
                ingress: Some(vec![]),
                egress: Some(vec![Allow { peer: Peer::Pods([ip("10.42.0.2")].into()), ports: vec![] }]),
            },
        ],
        count: 2,
    };
    let text = render_ports(TABLE, &node(), &[], &policies, &CarriedAffinity::new());
    nft_check(&text);
    assert_eq!(
        chain_body(&text, "netpol-forward"),
        ["ct state established,related accept", "ip daddr vmap @netpol-ingress", "ip saddr vmap @netpol-egress",]
    );
    let (a, b) = (base("x/a"), base("x/b"));
    assert_eq!(
        elements(&text, "netpol-ingress"),
        [
            format!("10.42.0.2 comment \"x/a\" : jump ingress-{a}"),
            format!("10.42.0.3 comment \"x/b\" : jump ingress-{b}"),
        ]
    );
    assert_eq!(elements(&text, "netpol-egress"), [format!("10.42.0.3 comment \"x/b\" : jump egress-{b}")]);
    assert_eq!(
        chain_body(&text, &format!("ingress-{a}")),
        [
            "ip saddr { 10.42.0.3, 10.42.1.2 } return",
            "ip saddr 10.0.0.0/8 ip saddr != { 10.42.0.0/16 } meta l4proto tcp th dport 80 return",
            "ip saddr 10.0.0.0/8 ip saddr != { 10.42.0.0/16 } meta l4proto udp th dport 9000-9010 return",
            "ip saddr 10.0.0.0/8 ip saddr != { 10.42.0.0/16 } meta l4proto sctp return",
            "drop",
        ]
    );
    assert_eq!(chain_body(&text, &format!("ingress-{b}")), ["drop"]);
    assert_eq!(chain_body(&text, &format!("egress-{b}")), ["ip daddr 10.42.0.2 return", "drop"]);

    // No isolated pod: no NetworkPolicy chains at all.
    let text = render_ports(TABLE, &node(), &[], &Policies::default(), &CarriedAffinity::new());
    assert!(!text.contains("netpol"));
}
