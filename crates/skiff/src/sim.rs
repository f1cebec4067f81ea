//! `skiff sim`: simulated nodes in a process of their own, against any API server (a skiff
//! server, or another Kubernetes cluster) — for capacity planning and scale tests. The same
//! nodes `skiff server --simulate-nodes` runs in process.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug)]
pub(crate) struct SimArgs {
    /// The API server URL (https://HOST:PORT). Without it, the kubeconfig is used.
    #[arg(long)]
    server: Option<String>,
    /// A bearer token (for example the server's cluster token).
    #[arg(long, env = "SKIFF_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The CA certificate that signed the server's certificate (PEM).
    #[arg(long)]
    certificate_authority: Option<PathBuf>,
    /// A kubeconfig to connect with (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// How many nodes to simulate.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Node names are this prefix and an index.
    #[arg(long, default_value = "sim-")]
    name_prefix: String,
    /// CPU capacity of each node.
    #[arg(long, default_value = "8")]
    node_cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "32Gi")]
    node_memory: String,
    /// Pod capacity of each node (at most 253).
    #[arg(long, default_value_t = 110)]
    node_pods: u32,
    /// Log filter (tracing's env-filter syntax).
    #[arg(long, default_value = "info", env = "SKIFF_LOG")]
    log_level: String,
}

async fn client(args: &SimArgs) -> Result<kube::Client> {
    let config = match &args.server {
        Some(url) => {
            let mut c = kube::Config::new(url.parse().context("--server is not a URL")?);
            let Some(token) = &args.token else { bail!("--server needs --token") };
            c.auth_info.token = Some(token.clone().into());
            match &args.certificate_authority {
                Some(p) => {
                    let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                    let certs = certificates_der(&pem).with_context(|| format!("no certificate in {}", p.display()))?;
                    c.root_cert = Some(certs);
                }
                None => bail!("--server needs --certificate-authority (the cluster CA, <data-dir>/tls/ca.crt)"),
            }
            c
        }
        None => {
            let opts = kube::config::KubeConfigOptions::default();
            match &args.kubeconfig {
                Some(p) => {
                    let kc =
                        kube::config::Kubeconfig::read_from(p).with_context(|| format!("reading {}", p.display()))?;
                    kube::Config::from_custom_kubeconfig(kc, &opts).await?
                }
                None => kube::Config::from_kubeconfig(&opts).await.context("no --server and no usable kubeconfig")?,
            }
        }
    };
    Ok(kube::Client::try_from(config)?)
}

/// The DER certificates in a PEM file.
fn certificates_der(pem: &[u8]) -> Option<Vec<Vec<u8>>> {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<Vec<u8>> = rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .map(|c| c.as_ref().to_vec())
        .collect();
    (!certs.is_empty()).then_some(certs)
}

pub(crate) fn run(args: SimArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    rt.block_on(async {
        let client = client(&args).await?;
        let config = skiff_sim::SimConfig {
            nodes: args.nodes,
            name_prefix: args.name_prefix.clone(),
            cpu: args.node_cpu.clone(),
            memory: args.node_memory.clone(),
            pods: args.node_pods,
            ..Default::default()
        };
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.cancel();
        });
        let s = stop.clone();
        tokio::spawn(async move {
            if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                term.recv().await;
                s.cancel();
            }
        });
        eprintln!("simulating {} nodes ({}0 …); stop with Ctrl-C", args.nodes, args.name_prefix);
        skiff_sim::SimNodes::new(client, config).run(stop).await.map_err(anyhow::Error::new)
    })
}
