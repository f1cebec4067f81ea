//! `skiff server`: parse and validate the configuration, prepare the data dir (lock, PKI,
//! token, store), start the API server, write kubeconfigs, and run until SIGINT/SIGTERM.
//! Flags follow k3s's where k3s has one.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use skiff_apiserver::pki::Pki;
use skiff_apiserver::{ApiServer, Authenticator, BOOTSTRAPPERS_GROUP, Cidr, Config, DefaultAuthorizer};
use tokio_util::sync::CancellationToken;

use crate::kubeconfig;

#[derive(Args, Debug, Clone)]
pub(crate) struct ServerArgs {
    /// Where all state lives (database, certificates, kubeconfig).
    #[arg(long, default_value = "/var/lib/skiff", env = "SKIFF_DATA_DIR")]
    pub data_dir: PathBuf,
    /// HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// Address advertised to cluster members (the `kubernetes` Service's endpoint); defaults
    /// to the first non-loopback IPv4 address, else 127.0.0.1.
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// Write the admin kubeconfig to this file instead of merging it into ~/.kube/config.
    #[arg(long, short = 'o')]
    pub write_kubeconfig: Option<PathBuf>,
    /// Run only the control plane, no node agent on this machine.
    #[arg(long)]
    pub disable_agent: bool,
    /// Extra names or IPs for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// Pod network range (one /24 per node).
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Service ClusterIP range; its first address is the `kubernetes` Service.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// NodePort range.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// The cluster secret: a bearer token with admin rights, and (later) what agents join with.
    /// Generated and kept in <data-dir>/token when not given.
    #[arg(long, env = "SKIFF_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A second secret that only joins agents (k3s's --agent-token): it may ask for node
    /// certificates and nothing else. Without it, agents join with the cluster token.
    #[arg(long, env = "SKIFF_AGENT_TOKEN", hide_env_values = true)]
    pub agent_token: Option<String>,
    /// A file holding the cluster secret (k3s's --token-file).
    #[arg(long, env = "SKIFF_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Static bearer tokens, upstream's CSV format: token,user,uid[,"group1,group2"].
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// How long Events are kept after their last update (e.g. 1h, 30m, 90s).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub event_ttl: std::time::Duration,
    /// How often old store history is compacted (e.g. 5m); 0 disables compaction.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub compaction_interval: std::time::Duration,
    /// Do not run the controller manager (workload controllers, garbage collector,
    /// per-namespace defaults).
    #[arg(long)]
    pub disable_controller_manager: bool,
    /// Do not run the scheduler (pods are then bound only through `spec.nodeName`).
    #[arg(long)]
    pub disable_scheduler: bool,
    /// Run this many simulated nodes (`sim-0` …) in the server: nodes that register, renew
    /// their leases and report the pods bound to them Running, but run nothing.
    #[arg(long, default_value_t = 0)]
    pub simulate_nodes: usize,
    /// CPU capacity of each simulated node.
    #[arg(long, default_value = "8")]
    pub sim_node_cpu: String,
    /// Memory capacity of each simulated node.
    #[arg(long, default_value = "32Gi")]
    pub sim_node_memory: String,
    /// Pod capacity of each simulated node (at most 253).
    #[arg(long, default_value_t = 110)]
    pub sim_node_pods: u32,
    /// The node agent's settings.
    #[command(flatten)]
    pub node: crate::agent::NodeArgs,
    /// Log filter (tracing's env-filter syntax), e.g. info or skiff_apiserver=debug.
    #[arg(long, default_value = "info", env = "SKIFF_LOG")]
    pub log_level: String,
}

/// The validated configuration.
#[derive(Debug)]
pub(crate) struct Validated {
    pub(crate) data_dir: PathBuf,
    listen: SocketAddr,
    pub(crate) api: Config,
    kubeconfig_server: String,
}

/// A Go-style duration: `90s`, `5m`, `1h`, `1h30m`, or plain seconds.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        num.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {c:?} (use h, m or s)")),
        };
    }
    if !num.is_empty() {
        return Err(format!("invalid duration {s:?}: missing unit"));
    }
    Ok(std::time::Duration::from_secs(total))
}

fn parse_port_range(s: &str) -> Result<(u16, u16)> {
    let (a, b) = s.split_once('-').with_context(|| format!("--service-node-port-range {s:?}: want LOW-HIGH"))?;
    let (a, b): (u16, u16) = (
        a.trim().parse().with_context(|| format!("--service-node-port-range {s:?}: bad port {a:?}"))?,
        b.trim().parse().with_context(|| format!("--service-node-port-range {s:?}: bad port {b:?}"))?,
    );
    if a == 0 || a > b {
        bail!("--service-node-port-range {s:?}: LOW must be between 1 and HIGH");
    }
    Ok((a, b))
}

/// Non-loopback IPv4 addresses of this host.
pub(crate) fn host_ips() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                let ip = sin.ip();
                if !ip.is_loopback() && !out.contains(&IpAddr::V4(ip)) {
                    out.push(IpAddr::V4(ip));
                }
            }
        }
    }
    out
}

pub(crate) fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

fn validate(args: &ServerArgs) -> Result<Validated> {
    let service_cidr = Cidr::parse(&args.service_cidr).map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))?;
    let cluster_cidr = Cidr::parse(&args.cluster_cidr).map_err(|e| anyhow::anyhow!("--cluster-cidr: {e}"))?;
    crate::agent::disjoint_ranges(&cluster_cidr, &service_cidr)?;
    let node_port_range = parse_port_range(&args.service_node_port_range)?;
    if args.https_listen_port == 0 {
        bail!("--https-listen-port must not be 0");
    }
    let advertise = args
        .advertise_address
        .or_else(|| (!args.bind_address.is_unspecified()).then_some(args.bind_address))
        .or_else(|| host_ips().into_iter().next())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let kube_host = if args.bind_address.is_unspecified() || args.bind_address.is_loopback() {
        "127.0.0.1".to_string()
    } else {
        args.bind_address.to_string()
    };
    Ok(Validated {
        data_dir: args.data_dir.clone(),
        listen: SocketAddr::new(args.bind_address, args.https_listen_port),
        api: Config {
            service_cidr,
            node_port_range,
            advertise_address: advertise,
            advertise_port: args.https_listen_port,
            skiff_version: env!("CARGO_PKG_VERSION").to_string(),
            compaction_interval: args.compaction_interval,
            event_ttl: args.event_ttl,
            ca_cert_pem: String::new(),
            watch_history: Default::default(),
        },
        kubeconfig_server: format!("https://{kube_host}:{}", args.https_listen_port),
    })
}

/// Holds the data dir's lock for the server's lifetime: two servers on one data dir would
/// corrupt each other.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<nix::fcntl::Flock<fs::File>> {
    let path = dir.join("server.lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| anyhow::anyhow!("another skiff process is using {} ({e}); stop it first", dir.display()))
}

/// The cluster secret: from --token, --token-file, or generated once into <data-dir>/token.
fn cluster_token(args: &ServerArgs, data_dir: &Path) -> Result<String> {
    if let Some(t) = &args.token {
        return Ok(t.clone());
    }
    if let Some(p) = &args.token_file {
        let t = fs::read_to_string(p).with_context(|| format!("reading --token-file {}", p.display()))?;
        let t = t.trim().to_string();
        if t.is_empty() {
            bail!("--token-file {} is empty", p.display());
        }
        return Ok(t);
    }
    let path = data_dir.join("token");
    match fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => {
            use rand::Rng;
            const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
            let mut rng = rand::rng();
            let t: String = (0..32).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect();
            write_private(&path, &t)?;
            Ok(t)
        }
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

fn serving_sans(args: &ServerArgs, v: &Validated) -> Vec<String> {
    let mut sans: Vec<String> = vec![
        "127.0.0.1".into(),
        "localhost".into(),
        hostname(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
        v.api.service_cidr.nth(0).to_string(),
        v.api.advertise_address.to_string(),
    ];
    sans.extend(host_ips().iter().map(IpAddr::to_string));
    if !args.bind_address.is_unspecified() {
        sans.push(args.bind_address.to_string());
    }
    sans.extend(args.tls_san.iter().filter(|s| !s.is_empty()).cloned());
    let mut seen = std::collections::HashSet::new();
    sans.retain(|s| seen.insert(s.clone()));
    sans
}

pub(crate) fn init_logging(filter: &str) {
    // hickory logs every DNS query at info: quiet unless the user asks for it by name.
    let filter = if filter.contains("hickory") { filter.to_string() } else { format!("{filter},hickory_server=warn") };
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub(crate) fn run(args: ServerArgs) -> Result<()> {
    let v = validate(&args)?;
    init_logging(&args.log_level);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(serve(args, v))
}

async fn serve(args: ServerArgs, v: Validated) -> Result<()> {
    fs::create_dir_all(&v.data_dir).with_context(|| format!("creating data dir {}", v.data_dir.display()))?;
    let _lock = lock_data_dir(&v.data_dir)?;
    let sans = serving_sans(&args, &v);
    let pki = Pki::load_or_create(&v.data_dir.join("tls"), &sans).context("preparing certificates")?;
    let token = cluster_token(&args, &v.data_dir)?;
    let mut authn = Authenticator::new();
    authn.add_token(&token, "skiff:cluster-token", &["system:masters"]);
    // Agents join with a token that pins this CA (k3s's format), kept where k3s keeps it.
    let join_secret = match args.agent_token.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => {
            authn.add_token(t, "system:bootstrap:skiff-agent", &[BOOTSTRAPPERS_GROUP]);
            t
        }
        None => token.as_str(),
    };
    let node_token = v.data_dir.join("node-token");
    write_private(&node_token, &format!("{}\n", crate::join::JoinToken::format(&pki.ca_cert_pem, join_secret)))?;
    let mut api_config = v.api.clone();
    api_config.ca_cert_pem = pki.ca_cert_pem.clone();
    if let Some(p) = &args.token_auth_file {
        authn.load_token_file(p)?;
    }
    let store = crate::datadir::open_store(&v.data_dir).await?;
    // Bind before starting anything that would need to be torn down if the port is taken.
    let listener =
        tokio::net::TcpListener::bind(v.listen).await.with_context(|| format!("listening on {}", v.listen))?;
    // Two stages: the components stop first (releasing their Leases and finishing what they
    // were writing), then the API server they write through.
    let shutdown = CancellationToken::new();
    let server_stop = CancellationToken::new();
    let server = ApiServer::start(api_config, store, authn, Box::new(DefaultAuthorizer), server_stop.clone())
        .await
        .map_err(|e| anyhow::anyhow!("starting the API server: {e}"))?;
    server.set_kubelet_client(
        skiff_apiserver::KubeletClient::from_pki(&pki).map_err(|e| anyhow::anyhow!("the kubelet client: {e}"))?,
    );
    let tls = skiff_apiserver::tls_config(&pki).map_err(|e| anyhow::anyhow!("TLS: {e}"))?;
    let serving = tokio::spawn(skiff_apiserver::serve(server.clone(), listener, tls, server_stop.clone()));
    let mut components = Vec::new();
    // The controller manager and the scheduler run where they hold their Lease (one server
    // today; several with HA).
    let identity = format!(
        "{}_{:016x}",
        nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
        rand::random::<u64>()
    );
    if !args.disable_controller_manager {
        let client = server.client("system:kube-controller-manager", &["system:masters"]);
        let reserved_pod_cidrs = match args.disable_agent {
            true => Vec::new(),
            false => vec![crate::agent::local_node(&args)?.1],
        };
        let config = skiff_controllers::Config {
            root_ca_pem: pki.ca_cert_pem.clone(),
            signer: Some(skiff_controllers::certificates::Signer(Arc::new(PkiSigner(pki.clone())))),
            cluster_cidr: Some(args.cluster_cidr.clone()),
            reserved_pod_cidrs,
            ..Default::default()
        };
        let election = skiff_controllers::leader::LeaderElection::new("kube-controller-manager", &identity);
        let stop = shutdown.clone();
        components.push(tokio::spawn(async move {
            election
                .run(client.clone(), stop, |lost| {
                    skiff_controllers::ControllerManager::new(client.clone(), config.clone()).run(lost)
                })
                .await
        }));
    }
    if args.simulate_nodes > 0 {
        let client = server.client("system:node:sim", &["system:nodes", "system:masters"]);
        let config = skiff_sim::SimConfig {
            nodes: args.simulate_nodes,
            cpu: args.sim_node_cpu.clone(),
            memory: args.sim_node_memory.clone(),
            pods: args.sim_node_pods,
            ..Default::default()
        };
        let sim = skiff_sim::SimNodes::new(client, config);
        let stop = shutdown.clone();
        components.push(tokio::spawn(async move {
            if let Err(e) = sim.run(stop).await {
                tracing::error!(error = %e, "the simulated nodes stopped");
            }
        }));
    }
    if !args.disable_scheduler {
        let client = server.client("system:kube-scheduler", &["system:masters"]);
        let election = skiff_controllers::leader::LeaderElection::new("kube-scheduler", &identity);
        let stop = shutdown.clone();
        components.push(tokio::spawn(async move {
            election
                .run(client.clone(), stop, |lost| {
                    let scheduler = skiff_scheduler::Scheduler::new(client.clone(), Default::default());
                    async move {
                        if let Err(e) = scheduler.run(lost).await {
                            tracing::error!(error = %e, "the scheduler stopped");
                        }
                    }
                })
                .await
        }));
    }

    let creds = kubeconfig::Credentials {
        server: &v.kubeconfig_server,
        ca_pem: &pki.ca_cert_pem,
        cert_pem: &pki.admin_cert_pem,
        key_pem: &pki.admin_key_pem,
    };
    let own = v.data_dir.join("kubeconfig.yaml");
    kubeconfig::write(&own, &kubeconfig::standalone(&creds))?;
    let target = match &args.write_kubeconfig {
        Some(p) => {
            kubeconfig::write(p, &kubeconfig::standalone(&creds))?;
            p.clone()
        }
        None => match kubeconfig::user_kubeconfig_path() {
            Some(p) => {
                let existing = kubeconfig::read(&p)?.unwrap_or(serde_json::Value::Null);
                kubeconfig::write(&p, &kubeconfig::merge(existing, &creds))?;
                crate::datadir::remember_merge(&v.data_dir, &p)?;
                p
            }
            None => own.clone(),
        },
    };
    if !args.disable_agent {
        let agent = crate::agent::start_local(&args, &v, &server, &pki, shutdown.clone())
            .await
            .context("starting the node agent")?;
        components.extend(agent);
    }
    tracing::info!(listen = %v.listen, "API server ready");
    println!("skiff is running: {}", v.kubeconfig_server);
    println!("kubeconfig: {} (context \"skiff\")", target.display());
    println!("try: KUBECONFIG={} kubectl get namespaces", target.display());
    println!(
        "join nodes: skiff agent --server https://{}:{} --token-file {}",
        v.api.advertise_address,
        v.api.advertise_port,
        node_token.display()
    );

    wait_for_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    let stopped = async {
        for c in components {
            let _ = c.await;
        }
    };
    if tokio::time::timeout(COMPONENT_STOP_TIMEOUT, stopped).await.is_err() {
        tracing::warn!(
            "components did not stop within {} s; stopping the API server anyway",
            COMPONENT_STOP_TIMEOUT.as_secs()
        );
    }
    server_stop.cancel();
    let _ = serving.await;
    Ok(())
}

/// How long the components get to stop (release Leases, finish writes) before the API server
/// stops under them.
const COMPONENT_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The controller manager's CSR signer: the cluster CA.
struct PkiSigner(Pki);

impl skiff_controllers::certificates::CsrSigner for PkiSigner {
    fn sign(&self, request_pem: &str, usages: &[String], valid_for: std::time::Duration) -> Result<String, String> {
        self.0.sign_request(request_pem, usages, valid_for).map_err(|e| e.to_string())
    }
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ServerArgs,
    }

    fn args(extra: &[&str]) -> ServerArgs {
        let mut v = vec!["skiff"];
        v.extend_from_slice(extra);
        T::parse_from(v).a
    }

    #[test]
    fn defaults_and_validation() {
        let a = args(&[]);
        assert_eq!(a.data_dir, PathBuf::from("/var/lib/skiff"));
        assert_eq!(a.https_listen_port, 6443);
        let v = validate(&a).unwrap();
        assert_eq!(v.api.node_port_range, (30000, 32767));
        assert_eq!(v.kubeconfig_server, "https://127.0.0.1:6443");
        assert!(validate(&args(&["--service-cidr", "10.43.0.0"])).unwrap_err().to_string().contains("--service-cidr"));
        assert!(validate(&args(&["--service-node-port-range", "9-1"])).is_err());
        let a = args(&["--tls-san", "a.example,b.example", "--tls-san", "10.1.2.3"]);
        assert_eq!(a.tls_san, ["a.example", "b.example", "10.1.2.3"]);
        let v = validate(&a).unwrap();
        let sans = serving_sans(&a, &v);
        assert!(sans.contains(&"a.example".to_string()) && sans.contains(&"10.43.0.1".to_string()));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("0").unwrap().as_secs(), 0);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("5m3").is_err());
    }

    #[test]
    fn token_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(&[]);
        let t1 = cluster_token(&a, dir.path()).unwrap();
        let t2 = cluster_token(&a, dir.path()).unwrap();
        assert_eq!(t1, t2);
        assert_eq!(t1.len(), 32);
        let a = args(&["--token", "given"]);
        assert_eq!(cluster_token(&a, dir.path()).unwrap(), "given");
    }
}
