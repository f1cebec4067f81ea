//! The server: bind (UDP and TCP on each listen address, the same port for both), then run
//! the watches, the UDP loops ([`crate::udp`], on a thread of their own) and the hickory server
//! (TCP) until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::NetError;
use hickory_server::proto::rr::Name;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::DnsConfig;
use crate::forward::Forwarder;
use crate::handler::Handler;
use crate::index::Index;

/// How long a TCP client may stay idle between queries before the server closes the
/// connection.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// Attempts at finding a port free for both UDP and TCP when the configuration says port 0.
const EPHEMERAL_PORT_ATTEMPTS: usize = 16;

/// Why the DNS server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// `cluster_domain` is not a usable DNS name.
    #[error("invalid cluster domain {domain:?}: {reason}")]
    InvalidClusterDomain { domain: String, reason: String },
    /// `listen` is empty.
    #[error("the DNS server has no listen address")]
    NoListenAddress,
    /// `ttl` is over 3600 seconds, the most the kubernetes plugin accepts.
    #[error("DNS ttl {0} is out of range: 0 to 3600 seconds")]
    TtlOutOfRange(u32),
    /// A listen address could not be bound.
    #[error("cannot bind DNS {protocol} on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        protocol: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The hickory server failed while serving.
    #[error("the DNS server failed: {0}")]
    Serve(#[source] NetError),
    /// The UDP thread could not start.
    #[error("cannot start the DNS server's UDP thread: {0}")]
    UdpThread(#[source] std::io::Error),
    /// The UDP thread panicked.
    #[error("the DNS server's UDP thread panicked")]
    UdpThreadPanicked,
    /// A UDP socket could no longer be read.
    #[error("the DNS server's UDP socket on {addr} failed: {source}")]
    Udp {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The cluster DNS server, bound and ready to [`run`](ClusterDns::run).
pub struct ClusterDns {
    /// Source of the watches.
    client: kube::Client,
    /// The cluster zone, validated and normalized.
    zone: Name,
    /// TTL of cluster records.
    ttl: u32,
    /// Where non-cluster questions go.
    upstreams: Vec<SocketAddr>,
    /// Bound sockets, one UDP/TCP pair per listen address.
    sockets: Vec<(UdpSocket, TcpListener)>,
    /// The addresses the pairs are bound to (the actual port when 0 was asked for).
    local_addrs: Vec<SocketAddr>,
}

impl ClusterDns {
    /// Validate `config` and bind its listen addresses. Nothing is served (and no watch
    /// started) until [`run`](ClusterDns::run).
    pub async fn bind(client: kube::Client, config: DnsConfig) -> Result<ClusterDns, DnsError> {
        let zone = config.validate()?;
        let mut sockets = Vec::with_capacity(config.listen.len());
        let mut local_addrs = Vec::with_capacity(config.listen.len());
        for &addr in &config.listen {
            let (udp, tcp) = bind_pair(addr).await?;
            let local = udp.local_addr().map_err(|source| DnsError::Bind { addr, protocol: "udp", source })?;
            local_addrs.push(local);
            sockets.push((udp, tcp));
        }
        if config.upstreams.is_empty() {
            tracing::warn!("cluster DNS has no upstream nameservers: names outside {zone} will get SERVFAIL");
        }
        Ok(ClusterDns { client, zone, ttl: config.ttl, upstreams: config.upstreams, sockets, local_addrs })
    }

    /// The bound addresses, in the order of `listen`; each serves UDP and TCP.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Watch the cluster and serve until `shutdown` is cancelled. Until the first list of
    /// every watched kind completes, names that are not found answer SERVFAIL rather than
    /// NXDOMAIN.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), DnsError> {
        let (tx, rx) = watch::channel(Arc::new(Index::empty(self.zone.clone(), self.ttl)));
        let handler = Handler::new(rx, Forwarder::new(self.upstreams));
        let mut server = Server::new(handler.clone());
        let mut udp_sockets = Vec::with_capacity(self.sockets.len());
        for ((udp, tcp), addr) in self.sockets.into_iter().zip(self.local_addrs.iter().copied()) {
            let udp = udp.into_std().map_err(|source| DnsError::Udp { addr, source })?;
            udp_sockets.push((udp, addr));
            server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        }
        // The UDP thread outlives no `run`: it stops with `shutdown`, or when this future is dropped.
        let udp_stop = shutdown.child_token();
        let _udp_stop_on_drop = udp_stop.clone().drop_guard();
        let udp = crate::udp::start(udp_sockets, Arc::new(handler), udp_stop)?;
        let watches = shutdown.child_token();
        let watch_task = tokio::spawn(crate::watch::run(self.client, self.zone.clone(), self.ttl, tx, watches.clone()));
        tracing::info!(zone = %self.zone, addrs = ?self.local_addrs, "cluster DNS serving");
        // hickory stops on its own token; tie it to ours.
        let stop = server.shutdown_token().clone();
        let relay = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                stop.cancel();
            }
        });
        // Like hickory, serve until every socket is done, and report a failure if any.
        let tcp_result = server.block_until_done().await.map_err(DnsError::Serve);
        let udp_result = udp.await.unwrap_or(Err(DnsError::UdpThreadPanicked));
        let result = tcp_result.and(udp_result);
        relay.abort();
        watches.cancel();
        if let Err(error) = watch_task.await {
            tracing::warn!(%error, "cluster DNS watch task ended abnormally");
        }
        result
    }
}

/// Bind UDP then TCP on the port UDP got (so port 0 yields one port for both).
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    let attempts = if addr.port() == 0 { EPHEMERAL_PORT_ATTEMPTS } else { 1 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = UdpSocket::bind(addr).await.map_err(|source| DnsError::Bind { addr, protocol: "udp", source })?;
        let bound = udp.local_addr().map_err(|source| DnsError::Bind { addr, protocol: "udp", source })?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // Port 0: the port UDP got may be taken for TCP; try another.
            Err(_) if attempt < attempts => continue,
            Err(source) => return Err(DnsError::Bind { addr: bound, protocol: "tcp", source }),
        }
    }
}
