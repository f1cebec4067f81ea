//! Proxy resync benchmark, the rendering half (issue 7): build `--services` ClusterIP Services
//! (every `--nodeport-every`th also a NodePort) with one EndpointSlice of `--endpoints` ready
//! endpoints each, time [`skiff_proxy::render`] over them, and write what
//! `bench/services/resync.sh` applies with `nft -f` in a network namespace of its own:
//! - `--out`: the table, as the proxy renders it on every sync;
//! - `--changed`: the same with one endpoint of one Service moved (a sync after a change);
//! - `--peer`: the same endpoints as a bare DNAT map, one element per endpoint and one rule,
//!   the least nftables could be given for them.
//!
//! Prints `key value` lines. Addresses: Service range 10.250.0.0/16, pods 10.251.0.0/16
//! (65,023 endpoints at most), NodePorts from 30000.
//!
//!   cargo run --release -p skiff-proxy --example resync -- --services 10000 --endpoints 5 --out t.nft

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;
use skiff_proxy::{ProxyConfig, render};

/// The node the endpoints run on (none of them is local to the proxy's node).
const ENDPOINT_NODE: &str = "node-b";
const TARGET_PORT: u16 = 8080;

struct Args {
    services: usize,
    endpoints: usize,
    nodeport_every: usize,
    table: String,
    repeat: usize,
    out: Option<String>,
    changed: Option<String>,
    peer: Option<String>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        services: 10_000,
        endpoints: 5,
        nodeport_every: 4,
        table: "skiff-bench".to_string(),
        repeat: 5,
        out: None,
        changed: None,
        peer: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--services" => a.services = value()?.parse()?,
            "--endpoints" => a.endpoints = value()?.parse()?,
            "--nodeport-every" => a.nodeport_every = value()?.parse()?,
            "--table" => a.table = value()?,
            "--repeat" => a.repeat = value()?.parse()?,
            "--out" => a.out = Some(value()?),
            "--changed" => a.changed = Some(value()?),
            "--peer" => a.peer = Some(value()?),
            other => bail!("unknown flag {other}"),
        }
    }
    if a.services * a.endpoints >= 254 * 256 || a.services > 65_000 || a.repeat == 0 {
        bail!("at most 65,000 Services and 65,023 endpoints in all, and --repeat ≥ 1");
    }
    Ok(a)
}

fn cluster_ip(i: usize) -> Ipv4Addr {
    // 10.250.0.1 onwards: i + 1 so that .0.0 (the network) is never used.
    let n = i + 1;
    Ipv4Addr::new(10, 250, (n >> 8) as u8, (n & 0xff) as u8)
}

fn pod_ip(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 251, (n / 254) as u8, (n % 254 + 1) as u8)
}

fn objects(a: &Args) -> Result<(Vec<Service>, Vec<EndpointSlice>)> {
    let mut services = Vec::with_capacity(a.services);
    let mut slices = Vec::with_capacity(a.services);
    let mut node_ports = 0usize;
    for i in 0..a.services {
        let name = format!("svc-{i:05}");
        let mut port = json!({"name": "http", "port": 80, "protocol": "TCP", "targetPort": TARGET_PORT});
        let mut kind = "ClusterIP";
        if a.nodeport_every > 0 && i % a.nodeport_every == 0 {
            port["nodePort"] = json!(30000 + node_ports);
            node_ports += 1;
            kind = "NodePort";
        }
        let ip = cluster_ip(i).to_string();
        services.push(serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "bench"},
            "spec": {"type": kind, "clusterIP": ip, "clusterIPs": [ip], "ports": [port], "selector": {"app": name}},
        }))?);
        let endpoints: Vec<_> = (0..a.endpoints)
            .map(|e| {
                json!({
                    "addresses": [pod_ip(i * a.endpoints + e).to_string()],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "nodeName": ENDPOINT_NODE,
                })
            })
            .collect();
        slices.push(serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-x1"), "namespace": "bench",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": TARGET_PORT, "protocol": "TCP"}],
        }))?);
    }
    if node_ports > 2768 {
        bail!("{node_ports} NodePorts do not fit in 30000-32767; raise --nodeport-every");
    }
    Ok((services, slices))
}

/// Lines, chains, rules (lines inside a chain other than its `type … hook` line) and set/map
/// elements of a rendered table.
fn size(table: &str) -> (usize, usize, usize, usize) {
    let (mut chains, mut rules, mut elements) = (0, 0, 0);
    let mut in_chain = false;
    for line in table.lines() {
        if line.starts_with("\tchain ") {
            chains += 1;
            in_chain = true;
        } else if line.starts_with("\t}") || line.starts_with("\tmap ") || line.starts_with("\tset ") {
            in_chain = false;
        } else if in_chain && line.starts_with("\t\t") && !line.starts_with("\t\ttype ") {
            rules += 1;
        } else if line.starts_with("\t\t\t") {
            elements += 1;
        }
    }
    (table.lines().count(), chains, rules, elements)
}

/// The peer: every endpoint as an element of one map keyed by Service address, port and
/// endpoint index, picked by one `numgen` rule.
fn peer(a: &Args) -> String {
    let mut out = String::with_capacity(a.services * a.endpoints * 64);
    let table = format!("{}-peer", a.table);
    out.push_str(&format!("table inet {table} {{}}\ndelete table inet {table}\ntable inet {table} {{\n"));
    out.push_str("\tmap endpoints {\n\t\ttypeof ip daddr . tcp dport . numgen random mod 1 : ip daddr . tcp dport\n");
    out.push_str("\t\telements = {\n");
    let total = a.services * a.endpoints;
    for i in 0..a.services {
        for e in 0..a.endpoints {
            let n = i * a.endpoints + e;
            let sep = if n + 1 < total { "," } else { "" };
            out.push_str(&format!("\t\t\t{} . 80 . {e} : {} . {TARGET_PORT}{sep}\n", cluster_ip(i), pod_ip(n)));
        }
    }
    out.push_str(
        "\t\t}\n\t}\n\n\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority -100; policy accept;\n",
    );
    out.push_str(&format!(
        "\t\tmeta l4proto tcp dnat ip to ip daddr . tcp dport . numgen random mod {} map @endpoints\n\t}}\n}}\n",
        a.endpoints
    ));
    out
}

fn main() -> Result<()> {
    let a = args()?;
    let facts = ProxyConfig {
        node_name: "node-a".to_string(),
        node_ips: vec!["10.252.0.1".parse()?],
        cluster_cidr: "10.251.0.0/16".to_string(),
        service_cidr: "10.250.0.0/16".to_string(),
        table: a.table.clone(),
        ..ProxyConfig::default()
    }
    .node_facts()?;
    let (services, mut slices) = objects(&a)?;

    // The first render warms the allocator; report the median and the best of the rest.
    let mut table = render(&a.table, &facts, &services, &slices);
    let mut times: Vec<Duration> = Vec::with_capacity(a.repeat);
    for _ in 0..a.repeat {
        let start = Instant::now();
        table = render(&a.table, &facts, &services, &slices);
        times.push(start.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (lines, chains, rules, elements) = size(&table);
    println!("services {}", a.services);
    println!("endpoints {}", a.services * a.endpoints);
    println!(
        "nodeports {}",
        services.iter().filter(|s| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("NodePort")).count()
    );
    println!("render_ms_median {:.1}", ms(times[times.len() / 2]));
    println!("render_ms_best {:.1}", ms(times[0]));
    println!("table_bytes {}", table.len());
    println!("table_lines {lines}");
    println!("table_chains {chains}");
    println!("table_rules {rules}");
    println!("table_elements {elements}");
    if let Some(path) = &a.out {
        std::fs::write(path, &table).with_context(|| format!("writing {path}"))?;
    }
    if let Some(path) = &a.changed {
        // One endpoint of the middle Service moves to a new pod address.
        let slice = &mut slices[a.services / 2];
        slice.endpoints[0].addresses = vec![pod_ip(a.services * a.endpoints).to_string()];
        let changed = render(&a.table, &facts, &services, &slices);
        std::fs::write(path, changed).with_context(|| format!("writing {path}"))?;
    }
    if let Some(path) = &a.peer {
        let text = peer(&a);
        println!("peer_lines {}", text.lines().count());
        std::fs::write(path, text).with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}
