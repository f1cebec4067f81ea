//! The node agent of `skiff server` (and, with joining, `skiff agent`): the built-in Linux
//! runtime with the node's image store, and the kubelet on top of it. Host-level names (bridge,
//! cgroup root, pod CIDR, kubelet port) derive from the data dir unless given, so several
//! clusters run side by side on one machine.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use skiff_apiserver::ApiServer;
use skiff_apiserver::pki::Pki;
use skiff_kubelet::{Kubelet, KubeletConfig};
use skiff_runtime::image::{ImageService, ImageStore};
use skiff_runtime::linux::{DEFAULT_DATA_DIR, data_dir_hash};
use skiff_runtime::{LinuxRuntime, LinuxRuntimeConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::server::{ServerArgs, Validated};

/// The /24 a node gets from the cluster CIDR: the first one for the default data dir, else one
/// picked by the data dir's hash (test clusters must not share a subnet: their bridges would
/// route the same addresses).
pub(crate) fn node_pod_cidr(cluster_cidr: &str, data_dir: &Path) -> Result<String> {
    let (base, prefix) = cluster_cidr.split_once('/').context("--cluster-cidr: want ADDRESS/PREFIX")?;
    let base: Ipv4Addr =
        base.parse().with_context(|| format!("--cluster-cidr {cluster_cidr:?}: not an IPv4 address"))?;
    let prefix: u32 = prefix.parse().with_context(|| format!("--cluster-cidr {cluster_cidr:?}: bad prefix"))?;
    if prefix > 24 {
        bail!("--cluster-cidr {cluster_cidr:?} must be a /24 or larger: each node gets a /24");
    }
    let subnets = 1u32 << (24 - prefix);
    let index = if data_dir == Path::new(DEFAULT_DATA_DIR) { 0 } else { data_dir_hash(data_dir) % subnets };
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    let net = u32::from(base) & mask;
    Ok(format!("{}/24", Ipv4Addr::from(net + (index << 8))))
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

/// Start the runtime and kubelet of the server's own node.
pub(crate) async fn start_local(
    args: &ServerArgs,
    v: &Validated,
    server: &Arc<ApiServer>,
    pki: &Pki,
    shutdown: CancellationToken,
) -> Result<Vec<JoinHandle<()>>> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the node agent runs containers and needs root: run skiff server as root, or pass --disable-agent for the control plane only"
        );
    }
    let data_dir = std::path::absolute(&v.data_dir).context("data dir")?;
    let node_name = args.node_name.clone().unwrap_or_else(crate::server::hostname).to_lowercase();
    let node_ip: IpAddr = args.node_ip.unwrap_or(v.api.advertise_address);
    let pod_cidr = node_pod_cidr(&args.cluster_cidr, &data_dir)?;

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
    let runtime: Arc<dyn skiff_runtime::Runtime> = Arc::new(runtime);

    // The kubelet API: its own serving certificate from the cluster CA, for the node's
    // address (the API server connects there and verifies it).
    let listen = std::net::SocketAddr::new(
        args.bind_address,
        args.kubelet_port.unwrap_or(if data_dir == Path::new(DEFAULT_DATA_DIR) { 10250 } else { 0 }),
    );
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("kubelet API: listening on {listen}"))?;
    let kubelet_port = listener.local_addr()?.port();
    let sans = vec![node_ip.to_string(), node_name.clone(), "127.0.0.1".into(), "localhost".into()];
    let (cert, key) = pki
        .issue(&format!("system:node:{node_name}"), &["system:nodes"], &sans, true)
        .map_err(|e| anyhow::anyhow!("kubelet serving certificate: {e}"))?;
    let tls = skiff_kubelet::server::tls_config(&pki.ca_cert_pem, &cert, &key)
        .map_err(|e| anyhow::anyhow!("kubelet TLS: {e}"))?;

    let mut config = KubeletConfig::new(&node_name, &data_dir);
    config.node_ips = vec![node_ip];
    config.pod_cidr = Some(pod_cidr.clone());
    config.max_pods = args.max_pods;
    config.cluster_dns = args.cluster_dns.clone();
    config.cluster_domain = args.cluster_domain.clone();
    config.kubelet_port = kubelet_port;
    parse_reserved(&args.kube_reserved, &mut config.reserved).context("--kube-reserved")?;
    parse_reserved(&args.system_reserved, &mut config.reserved).context("--system-reserved")?;
    for role in ["control-plane", "master"] {
        config.labels.insert(format!("node-role.kubernetes.io/{role}"), "true".into());
    }
    tracing::info!(node = %node_name, pod_cidr = %pod_cidr, "starting the node agent");
    let client = server.client(&format!("system:node:{node_name}"), &["system:nodes", "system:masters"]);
    let kubelet = Kubelet::new(client, runtime.clone(), config);
    let lookup: Arc<dyn skiff_kubelet::server::PodLookup> = kubelet.pods();
    let api = tokio::spawn(skiff_kubelet::server::serve(listener, tls, runtime, lookup, node_name, shutdown.clone()));
    let task = tokio::spawn(async move {
        if let Err(e) = kubelet.run(shutdown).await {
            tracing::error!(error = %e, "the node agent stopped");
        }
    });
    Ok(vec![task, api])
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
