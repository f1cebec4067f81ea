//! The node agent: the built-in Linux runtime with the node's image store, and the kubelet
//! on top of it. `skiff server` runs one for its own node (unless `--disable-agent`);
//! `skiff agent --server URL --token TOKEN` joins another machine (see `join`). Host-level
//! names (bridge, cgroup root, pod CIDR, kubelet port) derive from the data dir unless given,
//! so several clusters and agents run side by side on one machine.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use skiff_api::cidr::Cidr;
use skiff_apiserver::ApiServer;
use skiff_apiserver::pki::Pki;
use skiff_controllers::nodeipam;
use skiff_kubelet::{Kubelet, KubeletConfig};
use skiff_runtime::image::{ImageService, ImageStore};
use skiff_runtime::linux::{DEFAULT_DATA_DIR, PodNetwork, data_dir_hash};
use skiff_runtime::{LinuxRuntime, LinuxRuntimeConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::server::{ServerArgs, Validated};

/// The node agent's flags, shared by `skiff server` and `skiff agent`.
#[derive(Args, Debug, Clone)]
pub(crate) struct NodeArgs {
    /// This node's name (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// This node's InternalIP (default: the advertise address).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The kubelet API port; 0 picks a free one. Default: 10250 with the default data dir,
    /// else 0, so several clusters run side by side.
    #[arg(long)]
    pub kubelet_port: Option<u16>,
    /// Maximum pods on this node.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// Resources reserved for Kubernetes' own daemons, e.g. cpu=100m,memory=256Mi.
    #[arg(long, value_delimiter = ',')]
    pub kube_reserved: Vec<String>,
    /// Resources reserved for the system, e.g. cpu=100m,memory=256Mi.
    #[arg(long, value_delimiter = ',')]
    pub system_reserved: Vec<String>,
    /// Cluster DNS server IPs written into pods' resolv.conf (ClusterFirst).
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Network pods with the first CNI config in this directory (with --cni-bin-dir) instead
    /// of the built-in bridge.
    #[arg(long)]
    pub cni_conf_dir: Option<PathBuf>,
    /// Where the CNI plugins are.
    #[arg(long)]
    pub cni_bin_dir: Option<PathBuf>,
    /// How the service proxy serves Services: `auto` (nftables, or userspace when `nft` is
    /// missing) or `userspace`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "userspace"])]
    pub proxy_mode: String,
    /// How pods reach other nodes' pods: `host-gw` (a route to each node's pod range via its
    /// address; the nodes must share a link) or `vxlan` (an overlay over UDP 8472, for nodes
    /// that only reach each other through routers). Every node of a cluster must use the same.
    #[arg(long, default_value = "host-gw", value_parser = ["host-gw", "vxlan"])]
    pub pod_network: String,
    /// Registries pulled from over plain HTTP (loopback registries always are).
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
}

/// `skiff agent`: join a cluster as a node.
#[derive(Args, Debug)]
pub(crate) struct AgentArgs {
    /// The server to join, e.g. https://10.0.0.1:6443.
    #[arg(long, env = "SKIFF_URL")]
    server: String,
    /// The join token: the server's <data-dir>/node-token (K10<ca-hash>::server:<secret>).
    #[arg(long, env = "SKIFF_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the join token.
    #[arg(long, env = "SKIFF_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Where the agent's state lives (credentials, images, containers).
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "SKIFF_DATA_DIR")]
    data_dir: PathBuf,
    /// The address the kubelet API listens on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// The cluster's pod range (the server's --cluster-cidr), for the service proxy.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// The cluster's Service range (the server's --service-cidr): the proxy's, and where the
    /// cluster DNS address comes from.
    #[arg(long, default_value = "10.43.0.0/16")]
    service_cidr: String,
    #[command(flatten)]
    node: NodeArgs,
    /// Log filter (tracing's env-filter syntax).
    #[arg(long, default_value = "info", env = "SKIFF_LOG")]
    log_level: String,
}

/// The log filter: the user's, with kube-rs's warning about the one unverified request (the
/// CA fetch, checked against the token's hash right after) kept quiet.
fn agent_log_filter(level: &str) -> String {
    format!("{level},kube_client::client::tls=error")
}

/// The /24 a node gets from the cluster CIDR: the first one for the default data dir, else one
/// picked by the data dir's hash (test clusters must not share a subnet: their bridges would
/// route the same addresses).
pub(crate) fn node_pod_cidr(cluster_cidr: &str, data_dir: &Path) -> Result<String> {
    let cluster = Cidr::parse(cluster_cidr).map_err(|e| anyhow::anyhow!("--cluster-cidr: {e}"))?;
    let ranges = nodeipam::node_ranges(cluster);
    if ranges == 0 {
        bail!("--cluster-cidr {cluster_cidr:?} must be a /24 or larger: each node gets a /24");
    }
    let index = if data_dir == Path::new(DEFAULT_DATA_DIR) { 0 } else { data_dir_hash(data_dir) % ranges };
    Ok(nodeipam::node_range(cluster, index))
}

fn parse_reserved(items: &[String], into: &mut BTreeMap<String, String>) -> Result<()> {
    for item in items.iter().filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once('=').with_context(|| format!("reserved resource {item:?}: want NAME=QUANTITY"))?;
        let v = v.trim();
        if skiff_api::quantity::milli_value(v).is_none() {
            bail!("reserved resource {item:?}: {v:?} is not a quantity");
        }
        let sum = into
            .get(k.trim())
            .and_then(|old| skiff_api::quantity::milli_value(old))
            .map(|old| skiff_api::quantity::format_milli(old + skiff_api::quantity::milli_value(v).unwrap_or(0)));
        into.insert(k.trim().to_string(), sum.unwrap_or_else(|| v.to_string()));
    }
    Ok(())
}

fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the node agent runs containers and needs root: {what}");
    }
    Ok(())
}

/// What differs between the server's own node and a joined one.
struct NodeSetup {
    data_dir: PathBuf,
    node_name: String,
    node_ip: IpAddr,
    pod_cidr: String,
    client: kube::Client,
    ca_pem: String,
    /// The kubelet API's certificate and key (PEM).
    serving: (String, String),
    listener: tokio::net::TcpListener,
    labels: BTreeMap<String, String>,
    /// The pod and Service ranges (for the service proxy).
    cluster_cidr: String,
    service_cidr: String,
}

/// Refuse a Service range that overlaps the pod range: pods and ClusterIPs would share
/// addresses, and the proxy would DNAT pod traffic.
pub(crate) fn disjoint_ranges(pods: &Cidr, services: &Cidr) -> Result<()> {
    if services.overlaps(pods) {
        bail!("--service-cidr {services} overlaps --cluster-cidr {pods}: the two ranges must be disjoint");
    }
    Ok(())
}

/// The service proxy's nftables table for a data dir: `skiff` for the default one, else one
/// named by the data dir's hash (its interface `<table>-svc` must fit 15 characters).
pub(crate) fn proxy_table(data_dir: &Path) -> String {
    if data_dir == Path::new(DEFAULT_DATA_DIR) { "skiff".into() } else { format!("sk{:08x}", data_dir_hash(data_dir)) }
}

/// The cluster DNS address pods get: the tenth address of the Service range (where the API
/// server puts `kube-dns`).
fn default_cluster_dns(service_cidr: &str) -> Result<IpAddr> {
    let range = Cidr::parse(service_cidr).map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))?;
    Ok(IpAddr::V4(range.nth(9)))
}

/// The kubelet API's listener: port 10250 with the default data dir, else any free one.
async fn kubelet_listener(args: &NodeArgs, address: IpAddr, data_dir: &Path) -> Result<tokio::net::TcpListener> {
    let default = if data_dir == Path::new(DEFAULT_DATA_DIR) { 10250 } else { 0 };
    let listen = SocketAddr::new(address, args.kubelet_port.unwrap_or(default));
    tokio::net::TcpListener::bind(listen).await.with_context(|| format!("kubelet API: listening on {listen}"))
}

/// Start the runtime, the kubelet and the kubelet API.
async fn start_node(args: &NodeArgs, setup: NodeSetup, shutdown: CancellationToken) -> Result<Vec<JoinHandle<()>>> {
    let NodeSetup {
        data_dir,
        node_name,
        node_ip,
        pod_cidr,
        client,
        ca_pem,
        serving,
        listener,
        labels,
        cluster_cidr,
        service_cidr,
    } = setup;
    if let (Ok(pods), Ok(services)) = (Cidr::parse(&cluster_cidr), Cidr::parse(&service_cidr)) {
        disjoint_ranges(&pods, &services)?;
    }
    let mut rc = LinuxRuntimeConfig::new(&data_dir);
    rc.pod_cidr = pod_cidr.clone();
    rc.cni_bin_dir = args.cni_bin_dir.clone();
    rc.cni_conf_dir = args.cni_conf_dir.clone();
    if rc.cni_bin_dir.is_some() != rc.cni_conf_dir.is_some() {
        bail!("--cni-bin-dir and --cni-conf-dir go together");
    }
    let store = ImageStore::open(&data_dir).context("opening the image store")?;
    let images = Arc::new(ImageService::new(store.clone(), args.insecure_registries.clone()));
    let runtime = LinuxRuntime::new(rc, Arc::new(store), Some(images)).context("starting the container runtime")?;
    let mut tasks = Vec::new();
    // The cluster DNS of this node, on the pod bridge's address (the `kube-dns` Service's
    // endpoint here; decisions/0010).
    match runtime.pod_gateway().await {
        Ok(Some(gateway)) => {
            let config = skiff_dns::DnsConfig {
                cluster_domain: args.cluster_domain.clone(),
                listen: vec![SocketAddr::new(IpAddr::V4(gateway), 53)],
                upstreams: skiff_dns::upstreams_from_resolv_conf(Path::new("/etc/resolv.conf")),
                ttl: skiff_dns::DEFAULT_TTL,
            };
            match skiff_dns::ClusterDns::bind(client.clone(), config).await {
                Ok(dns) => {
                    tracing::info!(listen = %SocketAddr::new(IpAddr::V4(gateway), 53), "cluster DNS");
                    let stop = shutdown.clone();
                    tasks.push(tokio::spawn(async move {
                        if let Err(e) = dns.run(stop).await {
                            tracing::error!(error = %e, "the cluster DNS stopped");
                        }
                    }));
                }
                Err(e) => {
                    tracing::error!(error = %e, "the cluster DNS cannot start; pods will not resolve Service names")
                }
            }
        }
        Ok(None) => tracing::warn!("pods are networked by CNI: no cluster DNS on this node"),
        Err(e) => tracing::error!(error = %e, "the pod bridge; no cluster DNS on this node"),
    }
    // The service proxy (nftables, or userspace without nft).
    let service_cidr_for_dns = service_cidr.clone();
    let proxy = skiff_proxy::ProxyConfig {
        node_name: node_name.clone(),
        node_ips: vec![node_ip],
        cluster_cidr,
        service_cidr,
        table: proxy_table(&data_dir),
        nft: PathBuf::from("nft"),
        conntrack: PathBuf::from("conntrack"),
        netns: None,
        force_userspace: args.proxy_mode == "userspace",
    };
    let proxier =
        skiff_proxy::Proxier::new(client.clone(), proxy).map_err(|e| anyhow::anyhow!("service proxy: {e}"))?;
    let stop = shutdown.clone();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = proxier.run(stop).await {
            tracing::error!(error = %e, "the service proxy stopped");
        }
    }));
    let runtime = Arc::new(runtime);
    // Pods on other nodes: a route to each node's podCIDR via its address (host-gw), or
    // through the VXLAN overlay.
    let network = match (args.pod_network.as_str(), node_ip) {
        ("vxlan", IpAddr::V4(local)) => PodNetwork::Vxlan { local },
        ("vxlan", IpAddr::V6(_)) => bail!("--pod-network vxlan needs an IPv4 node address (--node-ip)"),
        _ => PodNetwork::HostGw,
    };
    let (c, rt, me, stop) = (client.clone(), runtime.clone(), node_name.clone(), shutdown.clone());
    tasks.push(tokio::spawn(async move { node_routes(c, rt, me, network, stop).await }));
    let runtime: Arc<dyn skiff_runtime::Runtime> = runtime;

    let kubelet_port = listener.local_addr()?.port();
    let tls = skiff_kubelet::server::tls_config(&ca_pem, &serving.0, &serving.1)
        .map_err(|e| anyhow::anyhow!("kubelet TLS: {e}"))?;
    let mut config = KubeletConfig::new(&node_name, &data_dir);
    config.node_ips = vec![node_ip];
    config.pod_cidr = Some(pod_cidr.clone());
    config.max_pods = args.max_pods;
    config.cluster_dns = args.cluster_dns.clone();
    if config.cluster_dns.is_empty() {
        config.cluster_dns = vec![default_cluster_dns(&service_cidr_for_dns)?];
    }
    config.cluster_domain = args.cluster_domain.clone();
    config.kubelet_port = kubelet_port;
    config.labels = labels;
    parse_reserved(&args.kube_reserved, &mut config.reserved).context("--kube-reserved")?;
    parse_reserved(&args.system_reserved, &mut config.reserved).context("--system-reserved")?;
    tracing::info!(node = %node_name, pod_cidr = %pod_cidr, kubelet_port, "starting the node agent");
    let kubelet = Kubelet::new(client, runtime.clone(), config);
    let lookup: Arc<dyn skiff_kubelet::server::PodLookup> = kubelet.pods();
    let api = tokio::spawn(skiff_kubelet::server::serve(listener, tls, runtime, lookup, node_name, shutdown.clone()));
    let task = tokio::spawn(async move {
        if let Err(e) = kubelet.run(shutdown).await {
            tracing::error!(error = %e, "the node agent stopped");
        }
    });
    tasks.extend([task, api]);
    Ok(tasks)
}

/// The routes to the other nodes' pod ranges, from their `spec.podCIDR` and InternalIP, kept
/// in step with the Nodes (the node network's part of issue 7's multi-node pod network).
async fn node_routes(
    client: kube::Client,
    runtime: Arc<LinuxRuntime>,
    me: String,
    network: PodNetwork,
    shutdown: CancellationToken,
) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    // Forwarding between the pod bridge and the node's uplink.
    if let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1") {
        tracing::warn!(error = %e, "could not enable net.ipv4.ip_forward: pods on other nodes will not be reachable");
    }
    let (store, writer) = reflector::store::<Node>();
    let stream = reflector(writer, watcher(Api::<Node>::all(client), watcher::Config::default())).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut last: Option<BTreeMap<String, Ipv4Addr>> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            ev = stream.next() => match ev {
                None => return,
                Some(Err(e)) => { tracing::warn!(error = %e, "watching nodes for pod routes"); continue }
                Some(Ok(watcher::Event::InitApply(_) | watcher::Event::Init)) => continue,
                Some(Ok(_)) => {}
            },
        }
        let desired: BTreeMap<String, Ipv4Addr> = store
            .state()
            .iter()
            .filter(|n| n.metadata.name.as_deref() != Some(me.as_str()))
            .filter_map(|n| {
                let cidr = n.spec.as_ref()?.pod_cidr.clone().filter(|c| !c.is_empty())?;
                let ip = n.status.as_ref()?.addresses.as_ref()?.iter().find(|a| a.type_ == "InternalIP")?;
                Some((cidr, ip.address.parse::<Ipv4Addr>().ok()?))
            })
            .collect();
        if last.as_ref() == Some(&desired) {
            continue;
        }
        match runtime.sync_node_routes(desired.clone(), network).await {
            Ok(()) => {
                tracing::info!(routes = ?desired, ?network, "routes to other nodes' pods");
                last = Some(desired);
            }
            Err(e) => tracing::warn!(error = %e, "routing to other nodes' pods; retrying on the next change"),
        }
    }
}

/// The server's own node's name and podCIDR (the controller manager keeps the range out of
/// what it hands to joining nodes).
pub(crate) fn local_node(args: &ServerArgs) -> Result<(String, String)> {
    let data_dir = std::path::absolute(&args.data_dir).context("data dir")?;
    let name = args.node.node_name.clone().unwrap_or_else(crate::server::hostname).to_lowercase();
    Ok((name, node_pod_cidr(&args.cluster_cidr, &data_dir)?))
}

/// Start the runtime and kubelet of the server's own node.
pub(crate) async fn start_local(
    args: &ServerArgs,
    v: &Validated,
    server: &Arc<ApiServer>,
    pki: &Pki,
    shutdown: CancellationToken,
) -> Result<Vec<JoinHandle<()>>> {
    require_root("run skiff server as root, or pass --disable-agent for the control plane only")?;
    let data_dir = std::path::absolute(&v.data_dir).context("data dir")?;
    let (node_name, pod_cidr) = local_node(args)?;
    let node_ip: IpAddr = args.node.node_ip.unwrap_or(v.api.advertise_address);
    let listener = kubelet_listener(&args.node, args.bind_address, &data_dir).await?;
    // The kubelet API's serving certificate comes straight from the cluster CA here; a
    // joined node asks for one (join.rs).
    let sans = vec![node_ip.to_string(), node_name.clone(), "127.0.0.1".into(), "localhost".into()];
    let serving = pki
        .issue(&format!("system:node:{node_name}"), &["system:nodes"], &sans, true)
        .map_err(|e| anyhow::anyhow!("kubelet serving certificate: {e}"))?;
    let labels = ["control-plane", "master"]
        .into_iter()
        .map(|role| (format!("node-role.kubernetes.io/{role}"), "true".to_string()))
        .collect();
    let client = server.client(&format!("system:node:{node_name}"), &["system:nodes", "system:masters"]);
    let setup = NodeSetup {
        data_dir,
        node_name,
        node_ip,
        pod_cidr,
        client,
        ca_pem: pki.ca_cert_pem.clone(),
        serving,
        listener,
        labels,
        cluster_cidr: args.cluster_cidr.clone(),
        service_cidr: args.service_cidr.clone(),
    };
    start_node(&args.node, setup, shutdown).await
}

/// Create the Node (if new) with the address its serving certificate will name, and wait for
/// the controller manager to give it a podCIDR. Returns the podCIDR.
async fn pre_register(client: &kube::Client, name: &str, ip: IpAddr) -> Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let cidr_of = |n: &Node| n.spec.as_ref().and_then(|s| s.pod_cidr.clone()).filter(|c| !c.is_empty());
    let addresses = serde_json::json!([
        {"type": "InternalIP", "address": ip.to_string()},
        {"type": "Hostname", "address": name},
    ]);
    let existing = nodes.get_opt(name).await.with_context(|| format!("reading node {name}"))?;
    match existing {
        Some(_) => {
            let patch = serde_json::json!({"status": {"addresses": addresses}});
            nodes
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .with_context(|| format!("updating node {name}'s addresses"))?;
        }
        None => {
            let node: Node = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
                }},
                "status": {"addresses": addresses},
            }))?;
            match nodes.create(&PostParams::default(), &node).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(e).with_context(|| format!("registering node {name}")),
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let node = nodes.get(name).await.with_context(|| format!("reading node {name}"))?;
        if let Some(cidr) = cidr_of(&node) {
            return Ok(cidr);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "node {name} got no podCIDR within 60 s: the server's controller manager allocates them from its --cluster-cidr (is it running, and is the range full? kubectl get events -A --field-selector reason=CIDRNotAvailable)"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(crate) fn run(args: AgentArgs) -> Result<()> {
    crate::server::init_logging(&agent_log_filter(&args.log_level));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(agent(args))
}

async fn agent(args: AgentArgs) -> Result<()> {
    require_root("run skiff agent as root")?;
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => std::fs::read_to_string(p)
            .with_context(|| format!("reading --token-file {}", p.display()))?
            .trim()
            .to_string(),
        (None, None) => bail!("--token or --token-file is required: the server's <data-dir>/node-token"),
    };
    let data_dir = std::path::absolute(&args.data_dir).context("data dir")?;
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let _lock = crate::server::lock_data_dir(&data_dir)?;
    let node_name = args.node.node_name.clone().unwrap_or_else(crate::server::hostname).to_lowercase();
    let node_ip = match args.node.node_ip {
        Some(ip) => ip,
        None => crate::server::host_ips()
            .into_iter()
            .next()
            .context("this machine has no non-loopback IPv4 address: pass --node-ip")?,
    };
    let server = args.server.trim_end_matches('/');
    let creds = crate::join::bootstrap(server, &token, &data_dir, &node_name)
        .await
        .with_context(|| format!("joining {server}"))?;
    let client = crate::join::node_client(&creds).await?;
    let pod_cidr = pre_register(&client, &node_name, node_ip).await?;
    let listener = kubelet_listener(&args.node, args.bind_address, &data_dir).await?;
    let sans = vec![node_ip.to_string(), node_name.clone()];
    let serving = crate::join::serving_certificate(client.clone(), &data_dir, &node_name, &sans).await?;
    let shutdown = CancellationToken::new();
    let setup = NodeSetup {
        data_dir,
        node_name: node_name.clone(),
        node_ip,
        pod_cidr,
        client,
        ca_pem: creds.ca_pem.clone(),
        serving,
        listener,
        labels: BTreeMap::new(),
        cluster_cidr: args.cluster_cidr.clone(),
        service_cidr: args.service_cidr.clone(),
    };
    let tasks = start_node(&args.node, setup, shutdown.clone()).await?;
    println!("skiff agent: node {node_name} joined {server}");
    crate::server::wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_cidrs_and_reservations() {
        assert_eq!(node_pod_cidr("10.42.0.0/16", Path::new(DEFAULT_DATA_DIR)).unwrap(), "10.42.0.0/24");
        let other = node_pod_cidr("10.42.0.0/16", Path::new("/tmp/a")).unwrap();
        assert!(other.starts_with("10.42.") && other.ends_with(".0/24"), "{other}");
        assert_eq!(node_pod_cidr("10.42.7.0/24", Path::new("/tmp/a")).unwrap(), "10.42.7.0/24");
        assert!(node_pod_cidr("10.42.0.0/25", Path::new("/x")).is_err());
        let mut r = BTreeMap::new();
        parse_reserved(&["cpu=100m".into(), "memory=1Gi".into()], &mut r).unwrap();
        parse_reserved(&["cpu=150m".into()], &mut r).unwrap();
        assert_eq!(r["cpu"], "250m");
        assert!(parse_reserved(&["cpu".into()], &mut r).is_err());
        assert!(parse_reserved(&["cpu=lots".into()], &mut r).is_err());
    }
}
