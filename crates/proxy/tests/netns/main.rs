//! The whole proxy, in process, against a real data path: an in-process API server holds the
//! Services and EndpointSlices, the [`Proxier`] watches it and programs a "node" network
//! namespace (`ProxyConfig::netns`), and real TCP connections from "pod" namespaces on the
//! node's bridge must reach the right pod. Needs root; nothing touches the host's own
//! network (see `lab.rs`), and each test checks that it left nothing behind.

mod lab;
mod netpol;
mod udp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use skiff_proxy::{Mode, Proxier, ProxyConfig, Status};
use skiff_testkit::InProcess;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use lab::{Lab, NODE_IP, Server, assert_nothing_left, fetch, in_netns, nft_in, set_sysctl, sysctl};

const WEB_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 20);
const SELF_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 21);
const EMPTY_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 22);
const STICKY_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 23);
const LATER_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 24);
const BOTH_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 25);
const NODE_PORT: u16 = 30080;

fn svc(name: &str, cluster_ip: Ipv4Addr, node_port: Option<u16>) -> Service {
    let mut port = json!({"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"});
    let mut spec = json!({"type": "ClusterIP", "clusterIP": cluster_ip.to_string(), "selector": {"app": name}});
    if let Some(np) = node_port {
        port["nodePort"] = json!(np);
        spec["type"] = json!("NodePort");
    }
    spec["ports"] = json!([port]);
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})).expect("Service")
}

fn slice(service: &str, endpoints: &[(Ipv4Addr, &str)]) -> EndpointSlice {
    let endpoints: Vec<_> = endpoints
        .iter()
        .map(|(ip, node)| json!({"addresses": [ip.to_string()], "nodeName": node, "conditions": {"ready": true}}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{service}-1"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .expect("EndpointSlice")
}

/// web (NodePort) → pod b; self → pod a; empty → nothing.
async fn create_services(client: &kube::Client, a: Ipv4Addr, b: Ipv4Addr) -> Result<()> {
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let pp = PostParams::default();
    services.create(&pp, &svc("web", WEB_IP, Some(NODE_PORT))).await.context("creating web")?;
    services.create(&pp, &svc("self", SELF_IP, None)).await.context("creating self")?;
    services.create(&pp, &svc("empty", EMPTY_IP, None)).await.context("creating empty")?;
    slices.create(&pp, &slice("web", &[(b, "node-b")])).await.context("creating web's slice")?;
    slices.create(&pp, &slice("self", &[(a, "node-a")])).await.context("creating self's slice")?;
    Ok(())
}

fn config(lab: &Lab, nft: &str) -> ProxyConfig {
    ProxyConfig {
        node_name: "node-a".into(),
        node_ips: vec![IpAddr::V4(NODE_IP)],
        table: format!("skt{}", lab.id),
        nft: PathBuf::from(nft),
        netns: Some(lab.node.path()),
        ..ProxyConfig::default()
    }
}

async fn wait_for_mode(status: &mut watch::Receiver<Status>) -> Mode {
    let s = tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| s.syncs > 0))
        .await
        .expect("the proxier syncs within 20 s")
        .expect("the proxier is running");
    s.mode.expect("a mode after a sync")
}

/// A proxier running against a lab's node.
struct Running {
    table: String,
    nft: PathBuf,
    node: PathBuf,
    status: watch::Receiver<Status>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), skiff_proxy::Error>>,
}

impl Running {
    /// Start a proxier for `lab` (with the `nft` binary at `nft`) and wait for its first
    /// sync; also returns the mode it chose.
    async fn start(lab: &Lab, client: &kube::Client, nft: &str) -> (Running, Mode) {
        let config = config(lab, nft);
        let table = config.table.clone();
        let proxier = Proxier::new(client.clone(), config).expect("valid config");
        let mut status = proxier.status();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(proxier.run(shutdown.clone()));
        let mode = wait_for_mode(&mut status).await;
        (Running { table, nft: PathBuf::from(nft), node: lab.node.path(), status, shutdown, task }, mode)
    }

    /// Stop the proxier and wait until it has; its rules stay (fail-static).
    async fn stop(&mut self) {
        self.shutdown.cancel();
        (&mut self.task).await.expect("proxier task").expect("proxier ran");
    }

    /// What `skiff reset` does: remove the table and the userspace mode's interface.
    fn cleanup(&self) {
        let (t, nft) = (self.table.clone(), self.nft.clone());
        in_netns(self.node.clone(), move || skiff_proxy::cleanup(&t, &nft)).expect("cleanup");
    }
}

/// Retry until `ns` gets `want` from `to` (rules follow the watch asynchronously).
async fn eventually_fetch(ns: PathBuf, to: SocketAddr, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = tokio::task::spawn_blocking({
            let ns = ns.clone();
            move || fetch(ns, to, Duration::from_millis(500))
        })
        .await
        .expect("fetch thread");
        match got {
            Ok(text) if text == want => return,
            other if Instant::now() > deadline => panic!("{to}: wanted {want:?}, got {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A connection that must be refused, and quickly (a reject, not a timeout).
async fn assert_refused(ns: PathBuf, to: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let started = Instant::now();
        let got = tokio::task::spawn_blocking({
            let ns = ns.clone();
            move || fetch(ns, to, Duration::from_secs(3))
        })
        .await
        .expect("fetch thread");
        match got {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                assert!(started.elapsed() < Duration::from_secs(1), "refused, but only after {:?}", started.elapsed());
                return;
            }
            other if Instant::now() > deadline => panic!("{to}: wanted a refused connection, got {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nftables_mode_serves_cluster_ips_node_ports_and_hairpin() {
    lab::require_root_and_tools();
    let lab = Lab::new(2).expect("creating the namespaces");
    let namespaces = lab.namespaces();
    let (a, b) = (&lab.pods[0], &lab.pods[1]);
    let node = lab.node.name.clone();
    // The proxy must turn it on (it defaults to 1 in a new namespace when br_netfilter is
    // loaded).
    set_sysctl(&node, "net/bridge/bridge-nf-call-iptables", "0").expect("sysctl");
    let _servers = [Server::start(a.ns.path(), 8080, "hello from a"), Server::start(b.ns.path(), 8080, "hello from b")];

    let api = InProcess::start().await;
    let client = api.server.client("system:kube-proxy", &["system:masters"]);
    create_services(&client, a.ip, b.ip).await.expect("creating Services");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let mut sticky = svc("sticky", STICKY_IP, None);
    if let Some(spec) = sticky.spec.as_mut() {
        spec.session_affinity = Some("ClientIP".into());
    }
    services.create(&PostParams::default(), &sticky).await.expect("creating sticky");
    slices.create(&PostParams::default(), &slice("sticky", &[(b.ip, "node-b")])).await.expect("sticky's slice");
    let (mut proxy, mode) = Running::start(&lab, &client, "nft").await;
    assert_eq!(mode, Mode::Nftables);
    let table = proxy.table.clone();
    assert_eq!(sysctl(&node, "net/bridge/bridge-nf-call-iptables").expect("sysctl"), "1", "the proxy turns it on");

    // ClusterIP from a pod, to a pod on the same bridge.
    eventually_fetch(a.ns.path(), SocketAddr::new(WEB_IP.into(), 80), "hello from b").await;
    // Hairpin: a pod reaching its own Service lands on itself.
    eventually_fetch(a.ns.path(), SocketAddr::new(SELF_IP.into(), 80), "hello from a").await;
    // NodePort on the node's address, from a pod.
    eventually_fetch(a.ns.path(), SocketAddr::new(NODE_IP.into(), NODE_PORT), "hello from b").await;
    // From the node itself (the output hook), to a ClusterIP and a NodePort.
    eventually_fetch(lab.node.path(), SocketAddr::new(WEB_IP.into(), 80), "hello from b").await;
    eventually_fetch(lab.node.path(), SocketAddr::new(NODE_IP.into(), NODE_PORT), "hello from b").await;
    // Two endpoints: new connections reach both (the first rule of the cascade takes half).
    services.create(&PostParams::default(), &svc("both", BOTH_IP, None)).await.expect("creating both");
    let both = slice("both", &[(a.ip, "node-a"), (b.ip, "node-b")]);
    slices.create(&PostParams::default(), &both).await.expect("both's slice");
    eventually_fetch(lab.node.path(), SocketAddr::new(BOTH_IP.into(), 80), "hello from a").await;
    eventually_fetch(lab.node.path(), SocketAddr::new(BOTH_IP.into(), 80), "hello from b").await;
    // No endpoints: refused at once.
    assert_refused(a.ns.path(), SocketAddr::new(EMPTY_IP.into(), 80)).await;
    // A port the ClusterIP does not serve: refused too.
    assert_refused(a.ns.path(), SocketAddr::new(WEB_IP.into(), 81)).await;

    // Bridged traffic between two pods passes the inet hooks (br_netfilter): count it.
    let probe = format!("{table}-probe");
    nft_in(
        &node,
        &["-f", "-"],
        Some(&format!(
            "table inet {probe} {{\n  chain probe {{\n    type filter hook forward priority 0; policy accept;\n    \
             ip saddr {} ip daddr {} tcp dport 8080 counter\n  }}\n}}\n",
            a.ip, b.ip
        )),
    )
    .expect("adding the probe table");
    let direct = fetch(a.ns.path(), SocketAddr::new(b.ip.into(), 8080), Duration::from_secs(2));
    assert_eq!(direct.expect("pod to pod"), "hello from b");
    let counted = nft_in(&node, &["list", "chain", "inet", &probe, "probe"], None).expect("listing the probe");
    assert!(
        !counted.contains("counter packets 0 "),
        "bridged pod-to-pod packets did not reach the inet forward hook:\n{counted}"
    );
    nft_in(&node, &["delete", "table", "inet", &probe], None).expect("deleting the probe");

    // ClientIP affinity survives the table being replaced: pod a's entry is carried into
    // the next sync's table (nothing else could put it back without new traffic).
    eventually_fetch(a.ns.path(), SocketAddr::new(STICKY_IP.into(), 80), "hello from b").await;
    let before = proxy.status.borrow().syncs;
    services.create(&PostParams::default(), &svc("later", LATER_IP, None)).await.expect("creating later");
    tokio::time::timeout(Duration::from_secs(10), proxy.status.wait_for(|s| s.syncs > before))
        .await
        .expect("a sync")
        .expect("running");
    let listed = nft_in(&node, &["list", "table", "inet", &table], None).expect("listing the table");
    assert!(listed.contains(&LATER_IP.to_string()), "the new sync is applied");
    let affinity = listed.split("set affinity-").nth(1).expect("an affinity set");
    assert!(
        affinity[..affinity.find("\n\t}").unwrap_or(affinity.len())].contains(&format!("{} expires", a.ip)),
        "{listed}"
    );

    // Endpoints go away: the Service starts refusing.
    slices.delete("web-1", &DeleteParams::default()).await.expect("deleting web's slice");
    assert_refused(a.ns.path(), SocketAddr::new(WEB_IP.into(), 80)).await;

    // Shutdown leaves the rules (fail-static); cleanup removes them.
    proxy.stop().await;
    let listed = nft_in(&node, &["list", "table", "inet", &table], None).expect("the table outlives the proxier");
    assert!(listed.contains(&EMPTY_IP.to_string()));
    proxy.cleanup();
    assert!(nft_in(&node, &["list", "table", "inet", &table], None).is_err(), "cleanup deletes the table");
    proxy.cleanup(); // twice is fine

    drop(_servers);
    drop(lab);
    assert_nothing_left(&namespaces, &table);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userspace_mode_when_nft_is_missing() {
    lab::require_root_and_tools();
    let lab = Lab::new(2).expect("creating the namespaces");
    let namespaces = lab.namespaces();
    let (a, b) = (&lab.pods[0], &lab.pods[1]);
    let node = lab.node.name.clone();
    let _servers = [Server::start(a.ns.path(), 8080, "hello from a"), Server::start(b.ns.path(), 8080, "hello from b")];

    let api = InProcess::start().await;
    let client = api.server.client("system:kube-proxy", &["system:masters"]);
    create_services(&client, a.ip, b.ip).await.expect("creating Services");
    let (mut proxy, mode) = Running::start(&lab, &client, "/nonexistent/nft").await;
    assert_eq!(mode, Mode::Userspace);
    let table = proxy.table.clone();

    let link = format!("{table}-svc");
    let addrs = lab::run("ip", &["-n", &node, "-o", "addr", "show", "dev", &link]).expect("the proxy's interface");
    let addrs = String::from_utf8_lossy(&addrs.stdout).into_owned();
    assert!(addrs.contains(&format!("{WEB_IP}/32")), "{addrs}");

    eventually_fetch(a.ns.path(), SocketAddr::new(WEB_IP.into(), 80), "hello from b").await;
    eventually_fetch(a.ns.path(), SocketAddr::new(SELF_IP.into(), 80), "hello from a").await;
    eventually_fetch(a.ns.path(), SocketAddr::new(NODE_IP.into(), NODE_PORT), "hello from b").await;
    eventually_fetch(lab.node.path(), SocketAddr::new(WEB_IP.into(), 80), "hello from b").await;
    assert_refused(a.ns.path(), SocketAddr::new(EMPTY_IP.into(), 80)).await;

    proxy.stop().await;
    proxy.cleanup();
    let links = lab::run("ip", &["-n", &node, "-o", "link"]).expect("ip link");
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&link), "cleanup removes the interface");

    drop(_servers);
    drop(lab);
    assert_nothing_left(&namespaces, &table);
}
