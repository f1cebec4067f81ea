//! The desired rule set: every proxied Service port rendered into one nftables table, as
//! text for `nft -f -`. Pure: API objects and node facts in, a string out; [`crate::nftables`]
//! applies it.
//!
//! The layout follows upstream kube-proxy's nftables proxier (`pkg/proxy/nftables/proxier.go`)
//! chain for chain, so its documentation and debugging habits carry over:
//!
//! - base chains `nat-prerouting` / `nat-output` jump to `services`, which dispatches on
//!   `daddr . l4proto . dport` through the map `service-ips` (ClusterIPs, external IPs,
//!   load-balancer IPs) and, for local destinations (`fib daddr type local`), on
//!   `l4proto . dport` through `service-nodeports`;
//! - per Service port a `service-…` chain (endpoints for traffic policy `Cluster`), a
//!   `local-…` chain (`Local`), an `external-…` chain (NodePort / LB / external IP traffic:
//!   masquerade, or keep the client address under `externalTrafficPolicy: Local`), a
//!   `firewall-…` chain (`loadBalancerSourceRanges`); the policy chains pick an endpoint at
//!   random, or first the endpoint a client is stuck to (`sessionAffinity: ClientIP`,
//!   per-endpoint `affinity-…` sets with a timeout);
//! - per endpoint an `endpoint-…` chain that marks hairpin traffic for masquerade, records
//!   affinity and DNATs;
//! - `mark-for-masquerade` sets bit 0x4000 of the packet mark, `masquerading` (postrouting)
//!   masquerades marked packets;
//! - the filter chains reject new connections to Services without endpoints (through
//!   `no-endpoint-services` / `no-endpoint-nodeports` and `reject-chain`: TCP reset, ICMP
//!   port unreachable otherwise), reject unknown ports of a ClusterIP and drop traffic to
//!   unallocated ClusterIPs.
//!
//! Two differences: the table is `inet` rather than `ip`, so a future IPv6 half can live in
//! the same table (today only IPv4 is rendered); and a policy chain with up to 16 endpoints
//! picks one with a cascade of `numgen random mod n-i == 0` rules, as upstream's iptables
//! proxier does, rather than upstream's `numgen random mod n vmap { … }`, whose anonymous sets
//! the kernel loads in quadratic time (see [`dispatch_rules`]). Base chain priorities are numbers (`-100`
//! is `dstnat`, `100` is `srcnat`) because nft 1.0.6 accepts the names only on some hooks.
//!
//! Text rather than the `nftables` crate's JSON model: the rules read exactly like upstream's
//! and nft's own listings, unit tests assert on lines an operator would see in
//! `nft list table`, and the swap idiom (`table {}` / `delete table` / `table { … }` in one
//! transaction) is three lines. The crate would add a dependency for a typed tree we would
//! only serialise.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use sha2::{Digest, Sha256};

use crate::config::{Cidr, NodeFacts};
use crate::netpol::Policies;
use crate::service_port::{Endpoint, ServicePort, service_ports};
use crate::topology::categorize;

/// Policy chains with up to this many endpoints pick one with a cascade of `numgen` rules
/// rather than a vmap (see [`dispatch_rules`]).
const CASCADE_MAX_ENDPOINTS: usize = 16;

/// The packet-mark bit that asks `masquerading` to SNAT (upstream's default,
/// `--masquerade-bit=14`).
pub(crate) const MASQUERADE_MARK: &str = "0x4000";

/// Affinity entries carried over from the table being replaced: set name → (client,
/// seconds left). Without them every sync would forget which endpoint each client sticks to.
pub(crate) type CarriedAffinity = BTreeMap<String, Vec<(Ipv4Addr, u64)>>;

/// Render the whole table for these Services and EndpointSlices.
pub fn render(table: &str, node: &NodeFacts, services: &[Service], slices: &[EndpointSlice]) -> String {
    let ports = service_ports(services, slices, &node.node_name);
    render_ports(table, node, &ports, &Policies::default(), &CarriedAffinity::new())
}

/// The base chains: (name, type, hook, priority, rules). Filter chains run before DNAT
/// (priority dstnat - 10) so they see the Service address, `filter-output-post-dnat` after.
const BASE_CHAINS: &[(&str, &str, &str, i32, &[&str])] = &[
    ("filter-prerouting", "filter", "prerouting", -110, &["ct state new jump firewall-check"]),
    (
        "filter-input",
        "filter",
        "input",
        -110,
        &["ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"],
    ),
    (
        "filter-forward",
        "filter",
        "forward",
        -110,
        &["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"],
    ),
    (
        "filter-output",
        "filter",
        "output",
        -110,
        &["ct state new jump service-endpoints-check", "ct state new jump firewall-check"],
    ),
    ("filter-output-post-dnat", "filter", "output", -90, &["ct state new jump cluster-ips-check"]),
    ("nat-prerouting", "nat", "prerouting", -100, &["jump services"]),
    ("nat-output", "nat", "output", -100, &["jump services"]),
    ("nat-postrouting", "nat", "postrouting", 100, &["jump masquerading"]),
];

/// The rule set for already-built Service ports.
pub(crate) fn render_ports(
    table: &str,
    node: &NodeFacts,
    ports: &[ServicePort],
    policies: &Policies,
    carried: &CarriedAffinity,
) -> String {
    let mut maps = Maps::default();
    let mut per_service = String::new();
    for sp in ports {
        render_service_port(&mut per_service, &mut maps, node, sp, carried);
    }

    let mut out = String::new();
    let _ = writeln!(out, "# skiff service proxy: the whole table, rendered from Services and EndpointSlices.");
    let _ = writeln!(out, "# Applied as one transaction: create (if missing), delete, re-create.");
    let _ = writeln!(out, "table inet {table} {{}}");
    let _ = writeln!(out, "delete table inet {table}");
    let _ = writeln!(out, "table inet {table} {{");
    let _ = writeln!(out, "\tcomment \"rules for skiff's service proxy\"");
    for (name, kind, hook, priority, rules) in BASE_CHAINS {
        let _ = writeln!(out, "\n\tchain {name} {{");
        let _ = writeln!(out, "\t\ttype {kind} hook {hook} priority {priority}; policy accept;");
        rules.iter().for_each(|r| {
            let _ = writeln!(out, "\t\t{r}");
        });
        let _ = writeln!(out, "\t}}");
    }
    chain(&mut out, "mark-for-masquerade", &[format!("meta mark set meta mark | {MASQUERADE_MARK}")]);
    chain(
        &mut out,
        "masquerading",
        &[
            format!("meta mark & {MASQUERADE_MARK} == 0 return"),
            format!("meta mark set meta mark ^ {MASQUERADE_MARK}"),
            "masquerade fully-random".to_string(),
        ],
    );

    let cluster_ips: Vec<String> = maps.cluster_ips.iter().map(Ipv4Addr::to_string).collect();
    set(&mut out, "cluster-ips", "ipv4_addr", Some("Active ClusterIPs"), &[], &cluster_ips);
    let mut check =
        vec!["ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"".to_string()];
    if !node.service_cidrs.is_empty() {
        check.push(format!(
            "ip daddr {{ {} }} drop comment \"Drop traffic to unallocated ClusterIPs\"",
            join(&node.service_cidrs)
        ));
    }
    chain(&mut out, "cluster-ips-check", &check);

    const VIP_KEY: &str = "ipv4_addr . inet_proto . inet_service : verdict";
    const PORT_KEY: &str = "inet_proto . inet_service : verdict";
    set(
        &mut out,
        "no-endpoint-services",
        VIP_KEY,
        Some("reject or drop traffic to Services without endpoints"),
        &[],
        &maps.no_endpoint_services.lines,
    );
    set(
        &mut out,
        "no-endpoint-nodeports",
        PORT_KEY,
        Some("reject or drop NodePort traffic to Services without endpoints"),
        &[],
        &maps.no_endpoint_nodeports.lines,
    );
    chain(&mut out, "reject-chain", &["meta l4proto tcp reject with tcp reset".into(), "reject".into()]);
    chain(
        &mut out,
        "service-endpoints-check",
        &["ip daddr . meta l4proto . th dport vmap @no-endpoint-services".into()],
    );
    chain(
        &mut out,
        "nodeport-endpoints-check",
        &["ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports".into()],
    );
    set(
        &mut out,
        "firewall-ips",
        VIP_KEY,
        Some("destinations subject to loadBalancerSourceRanges"),
        &[],
        &maps.firewall_ips.lines,
    );
    chain(&mut out, "firewall-check", &["ip daddr . meta l4proto . th dport vmap @firewall-ips".into()]);
    set(
        &mut out,
        "service-ips",
        VIP_KEY,
        Some("ClusterIP, ExternalIP and LoadBalancer IP traffic"),
        &[],
        &maps.service_ips.lines,
    );
    set(&mut out, "service-nodeports", PORT_KEY, Some("NodePort traffic"), &[], &maps.service_nodeports.lines);
    chain(
        &mut out,
        "services",
        &[
            "ip daddr . meta l4proto . th dport vmap @service-ips".into(),
            "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports".into(),
        ],
    );
    out.push_str(&per_service);
    policy::render(&mut out, policies);
    out.push_str("}\n");
    out
}

/// Elements of the shared sets and maps, collected while rendering the Service ports.
#[derive(Default)]
struct Maps {
    cluster_ips: BTreeSet<Ipv4Addr>,
    service_ips: Elements,
    service_nodeports: Elements,
    no_endpoint_services: Elements,
    no_endpoint_nodeports: Elements,
    firewall_ips: Elements,
}

/// A map's elements in the order added, one per key: nft rejects a transaction with a
/// duplicate key, and two Services may well claim the same external IP and port. The first
/// Service (in namespace/name order) keeps it.
#[derive(Default)]
struct Elements {
    lines: Vec<String>,
    keys: HashSet<String>,
}

impl Elements {
    /// Add `key` followed by `rest` (` : verdict`, maybe with a comment first).
    fn add(&mut self, key: String, rest: String) {
        if !self.keys.contains(&key) {
            self.lines.push(format!("{key}{rest}"));
            self.keys.insert(key);
        }
    }
}

/// Names of one Service port's chains.
struct Chains {
    cluster: String,
    local: String,
    external: String,
    firewall: String,
}

fn render_service_port(
    out: &mut String,
    maps: &mut Maps,
    node: &NodeFacts,
    sp: &ServicePort,
    carried: &CarriedAffinity,
) {
    let proto = sp.protocol.nft();
    let name = sp.name();
    let base = chain_name_base(&format!("{}/{}/{proto}/{}", sp.namespace, sp.service, sp.port_name));
    let chains = Chains {
        cluster: format!("service-{base}"),
        local: format!("local-{base}"),
        external: format!("external-{base}"),
        firewall: format!("firewall-{base}"),
    };
    let c = categorize(sp);

    let uses_cluster_chain = !c.cluster.is_empty() && sp.uses_cluster_endpoints();
    let uses_local_chain = !c.local.is_empty() && sp.uses_local_endpoints();
    let (internal_chain, has_internal) = if sp.internal_local {
        (&chains.local, c.has_any && !c.local.is_empty())
    } else {
        (&chains.cluster, c.has_any)
    };
    let (external_policy_chain, has_external) = if sp.external_local {
        (&chains.local, c.has_any && !c.local.is_empty())
    } else {
        (&chains.cluster, c.has_any)
    };
    // Even with no endpoint for external traffic the external chain exists when the Service
    // has endpoints at all: pods' and the node's own traffic short-circuits to the cluster
    // list.
    let uses_external_chain = c.has_any && sp.externally_accessible();
    // No endpoints at all: reject. Endpoints, but none for this traffic: drop (what
    // upstream does; the client's retry may land on a node that has one).
    let no_endpoint_verdict = if c.has_any { "drop" } else { "goto reject-chain" };

    maps.cluster_ips.insert(sp.cluster_ip);
    let vip_key = |ip: Ipv4Addr| format!("{ip} . {proto} . {}", sp.port);
    let goto = |chain: &str| format!(" : goto {chain}");
    let refuse = |verdict: &str| format!(" comment {} : {verdict}", quote(&name));
    if has_internal {
        maps.service_ips.add(vip_key(sp.cluster_ip), goto(internal_chain));
    } else {
        maps.no_endpoint_services.add(vip_key(sp.cluster_ip), refuse(no_endpoint_verdict));
    }
    let uses_firewall = !sp.lb_ips.is_empty() && !sp.lb_source_ranges.is_empty();
    for ip in sp.external_ips.iter().chain(&sp.lb_ips) {
        if c.has_any {
            maps.service_ips.add(vip_key(*ip), goto(&chains.external));
        }
        if uses_firewall && sp.lb_ips.contains(ip) {
            maps.firewall_ips.add(vip_key(*ip), goto(&chains.firewall));
        }
        if !has_external {
            maps.no_endpoint_services.add(vip_key(*ip), refuse(no_endpoint_verdict));
        }
    }
    if sp.node_port != 0 {
        let key = format!("{proto} . {}", sp.node_port);
        if c.has_any {
            maps.service_nodeports.add(key.clone(), goto(&chains.external));
        }
        if !has_external {
            maps.no_endpoint_nodeports.add(key, refuse(no_endpoint_verdict));
        }
    }

    let mut bodies: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let pod_cidrs = (!node.cluster_cidrs.is_empty()).then(|| cidr_match(&node.cluster_cidrs));
    if has_internal && let Some(pods) = &pod_cidrs {
        // Off-cluster clients reach ClusterIPs through a route to this node; the reply must
        // come back through it too.
        bodies.entry(internal_chain.as_str()).or_default().push(format!(
            "ip daddr {} {proto} dport {} ip saddr != {pods} jump mark-for-masquerade",
            sp.cluster_ip, sp.port
        ));
    }
    if uses_external_chain {
        let rules = bodies.entry(chains.external.as_str()).or_default();
        if !sp.external_local {
            // The endpoint may be on another node: masquerade so replies return here.
            rules.push("jump mark-for-masquerade".into());
        } else {
            if let Some(pods) = &pod_cidrs {
                rules.push(format!("ip saddr {pods} goto {} comment \"short-circuit pod traffic\"", chains.cluster));
            }
            rules.push("fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"".into());
            rules.push(format!("fib saddr type local goto {} comment \"short-circuit local traffic\"", chains.cluster));
        }
        if has_external {
            rules.push(format!("goto {external_policy_chain}"));
        }
    }
    if uses_firewall {
        let mut sources: Vec<String> = sp.lb_source_ranges.iter().map(Cidr::to_string).collect();
        // A node inside the allowed ranges reaching its own VIP comes from the VIP itself.
        if node.node_ipv4s().any(|ip| sp.lb_source_ranges.iter().any(|r| r.contains(ip))) {
            sources.extend(sp.lb_ips.iter().map(Ipv4Addr::to_string));
        }
        bodies
            .entry(chains.firewall.as_str())
            .or_default()
            .push(format!("ip saddr != {{ {} }} drop", sources.join(", ")));
    }

    let endpoint_names: Vec<(&Endpoint, String)> = c
        .all_reachable
        .iter()
        .map(|ep| {
            let b = chain_name_base(&format!(
                "{}/{}/{proto}/{}__{}/{}",
                sp.namespace, sp.service, sp.port_name, ep.ip, ep.port
            ));
            (*ep, b)
        })
        .collect();
    let ep_base = |ep: &Endpoint| {
        endpoint_names
            .iter()
            .find(|(e, _)| e.ip == ep.ip && e.port == ep.port)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    };
    if uses_cluster_chain {
        let rules = dispatch_rules(sp, &c.cluster, &ep_base);
        bodies.entry(chains.cluster.as_str()).or_default().extend(rules);
    }
    if uses_local_chain {
        let rules = dispatch_rules(sp, &c.local, &ep_base);
        bodies.entry(chains.local.as_str()).or_default().extend(rules);
    }

    let _ = writeln!(out, "\n\t# {name} ({proto})");
    if let Some(timeout) = sp.affinity_timeout {
        for (_, b) in &endpoint_names {
            let set_name = format!("affinity-{b}");
            let elements: Vec<String> = carried
                .get(&set_name)
                .into_iter()
                .flatten()
                .map(|(client, left)| format!("{client} expires {}s", (*left).clamp(1, u64::from(timeout))))
                .collect();
            set(
                out,
                &set_name,
                "ipv4_addr",
                None,
                &["flags dynamic,timeout".to_string(), format!("timeout {timeout}s")],
                &elements,
            );
        }
    }
    for (name, rules) in &bodies {
        chain(out, name, rules);
    }
    for (ep, b) in &endpoint_names {
        let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", ep.ip)];
        if sp.affinity_timeout.is_some() {
            rules.push(format!("update @affinity-{b} {{ ip saddr }}"));
        }
        rules.push(format!("meta l4proto {proto} dnat ip to {}:{}", ep.ip, ep.port));
        chain(out, &format!("endpoint-{b}"), &rules);
    }
}

/// The rules of a policy chain: stick to an affinity endpoint, else pick one at random.
///
/// Up to [`CASCADE_MAX_ENDPOINTS`] endpoints the pick is a cascade of rules, as upstream's
/// iptables proxier does it with `statistic`: the first rule takes 1/n of the connections, the
/// next 1/(n-1) of the rest, …, the last all that is left, so each endpoint gets 1/n. Beyond
/// that, upstream's nftables `numgen random mod n vmap { … }`. The vmap is an anonymous set,
/// and the kernel's handling of anonymous sets is quadratic in their number: it binds each by
/// walking the whole transaction (`__nft_set_trans_bind`) and names each by scanning the
/// table's sets. With one per Service, 10,000 Services took 95 s to load and 202 s to replace
/// (`bench/services/resync.sh`, docs/benchmarks.md), past the 30 s `nft` timeout. The cascade
/// costs up to n-1 `numgen` rules on a connection's first packet only (NAT chains see nothing
/// else); 16 keep that small while the Services with more endpoints stay few.
fn dispatch_rules(sp: &ServicePort, endpoints: &[&Endpoint], base: &dyn Fn(&Endpoint) -> String) -> Vec<String> {
    let mut rules = Vec::new();
    if sp.affinity_timeout.is_some() {
        for ep in endpoints {
            let b = base(ep);
            rules.push(format!("ip saddr @affinity-{b} goto endpoint-{b}"));
        }
    }
    let n = endpoints.len();
    if n <= CASCADE_MAX_ENDPOINTS {
        for (i, ep) in endpoints.iter().enumerate() {
            if i + 1 < n {
                rules.push(format!("numgen random mod {} == 0 goto endpoint-{}", n - i, base(ep)));
            } else {
                rules.push(format!("goto endpoint-{}", base(ep)));
            }
        }
    } else {
        let targets: Vec<String> =
            endpoints.iter().enumerate().map(|(i, ep)| format!("{i} : goto endpoint-{}", base(ep))).collect();
        rules.push(format!("numgen random mod {n} vmap {{ {} }}", targets.join(", ")));
    }
    rules
}

fn chain(out: &mut String, name: &str, rules: &[String]) {
    let _ = writeln!(out, "\n\tchain {name} {{");
    for r in rules {
        let _ = writeln!(out, "\t\t{r}");
    }
    let _ = writeln!(out, "\t}}");
}

/// A set or map declaration; `elements` one per line.
fn set(out: &mut String, name: &str, kind: &str, comment: Option<&str>, extra: &[String], elements: &[String]) {
    let word = if kind.contains(':') { "map" } else { "set" };
    let _ = writeln!(out, "\n\t{word} {name} {{");
    let _ = writeln!(out, "\t\ttype {kind}");
    for e in extra {
        let _ = writeln!(out, "\t\t{e}");
    }
    if let Some(c) = comment {
        let _ = writeln!(out, "\t\tcomment {}", quote(c));
    }
    if !elements.is_empty() {
        let _ = writeln!(out, "\t\telements = {{");
        for (i, e) in elements.iter().enumerate() {
            let sep = if i + 1 < elements.len() { "," } else { "" };
            let _ = writeln!(out, "\t\t\t{e}{sep}");
        }
        let _ = writeln!(out, "\t\t}}");
    }
    let _ = writeln!(out, "\t}}");
}

fn join(cidrs: &[Cidr]) -> String {
    cidrs.iter().map(Cidr::to_string).collect::<Vec<_>>().join(", ")
}

/// A match operand for one CIDR or several (an anonymous set).
fn cidr_match(cidrs: &[Cidr]) -> String {
    match cidrs {
        [one] => one.to_string(),
        many => format!("{{ {} }}", join(many)),
    }
}

/// A quoted nft string. Kubernetes names cannot contain quotes; strip them anyway.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace(['"', '\\'], ""))
}

/// Upstream's `hashAndTruncate`: a short hash of the name in front (names that differ only
/// at the end stay distinguishable, and stay unique if truncated), truncated so that the
/// longest prefix (`affinity-`, `endpoint-`, …) still fits nft's 256-byte name limit.
/// Namespaces, names and port names are `[a-z0-9-]`, protocols letters, IPv4 endpoints
/// digits and dots: all legal in nft identifiers, with `/` and `__` as separators.
pub(crate) fn chain_name_base(name: &str) -> String {
    const MAX: usize = 240;
    let hash = Sha256::digest(name.as_bytes());
    let mut out = base32_prefix(&hash[..5]);
    out.push('-');
    out.push_str(name);
    if out.len() > MAX {
        out.truncate(MAX - 3);
        out.push_str("...");
    }
    out
}

/// RFC 4648 base32 of 5 bytes: 8 characters (what upstream takes of the encoded hash).
fn base32_prefix(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    for b in bytes.iter().take(5) {
        bits = (bits << 8) | u64::from(*b);
    }
    (0..8).rev().map(|i| char::from(ALPHABET[((bits >> (i * 5)) & 31) as usize])).collect()
}

mod policy;
#[cfg(test)]
mod tests;
