//! The userspace data plane, for hosts without nftables: the same Services served by tokio
//! forwarders. Service addresses are made local on the proxy's own interface ([`link`]); a
//! listener per `address:port/protocol` (ClusterIP, every node address for NodePorts,
//! load-balancer and external IPs) accepts clients and connects each to an endpoint chosen
//! round-robin, or to the one its address sticks to under `sessionAffinity: ClientIP`. UDP
//! keeps a session (an upstream socket) per client until it idles out.
//!
//! Compared with nftables mode: the endpoint sees the proxy's address, never the client's
//! (so `externalTrafficPolicy: Local` only restricts which endpoints are used); a Service
//! port with no usable endpoint has no listener, so its address refuses connections (TCP
//! reset, ICMP port unreachable for UDP) where nftables mode would drop some of them; and
//! forwarding stops while the proxy is down.

pub(crate) mod link;

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::NodeFacts;
use crate::service_port::{Endpoint, Protocol, ServicePort};
use crate::topology::categorize;
use link::VipLink;

/// How long a connection attempt to one endpoint may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A UDP session without traffic either way for this long is closed (upstream's userspace
/// proxy used 250 ms for DNS-like traffic; a longer idle suits general UDP).
pub(crate) const UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest UDP datagram forwarded.
const UDP_BUFFER: usize = 65_535;

/// Where a listener forwards to. Shared between the listener task and [`Userspace::sync`],
/// which replaces the endpoint lists in place so existing listeners keep their sockets.
pub(crate) struct Route {
    state: Mutex<RouteState>,
}

struct RouteState {
    /// `namespace/name:port`, for logs.
    name: String,
    /// Endpoints for clients from outside the cluster (or for every client of a ClusterIP).
    endpoints: Vec<SocketAddr>,
    /// With `externalTrafficPolicy: Local`, pods and the node itself still use every
    /// endpoint (upstream's short-circuit); `None` otherwise.
    short_circuit: Option<Vec<SocketAddr>>,
    /// Round-robin position.
    next: usize,
    affinity: Option<Affinity>,
}

/// ClientIP affinity: each client's endpoint and when the client last used it.
struct Affinity {
    timeout: Duration,
    clients: HashMap<IpAddr, (SocketAddr, Instant)>,
}

impl Route {
    fn new(spec: RouteSpec) -> Route {
        let route = Route {
            state: Mutex::new(RouteState {
                name: String::new(),
                endpoints: Vec::new(),
                short_circuit: None,
                next: 0,
                affinity: None,
            }),
        };
        route.update(spec);
        route
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RouteState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, spec: RouteSpec) {
        let mut st = self.lock();
        st.name = spec.name;
        st.endpoints = spec.endpoints;
        st.short_circuit = spec.short_circuit;
        st.affinity = match (spec.affinity, st.affinity.take()) {
            (Some(timeout), Some(old)) => Some(Affinity { timeout, clients: old.clients }),
            (Some(timeout), None) => Some(Affinity { timeout, clients: HashMap::new() }),
            (None, _) => None,
        };
    }

    fn name(&self) -> String {
        self.lock().name.clone()
    }

    /// The endpoint for a new connection or session from `client`, skipping `tried` ones.
    /// `cluster_client`: the client is a pod or the node itself.
    pub(crate) fn pick(&self, client: IpAddr, cluster_client: bool, tried: &[SocketAddr]) -> Option<SocketAddr> {
        let mut st = self.lock();
        let st = &mut *st;
        let list = match &st.short_circuit {
            Some(all) if cluster_client => all,
            _ => &st.endpoints,
        };
        if list.is_empty() {
            return None;
        }
        let now = Instant::now();
        if let Some(affinity) = &mut st.affinity
            && let Some((ep, last)) = affinity.clients.get_mut(&client)
            && now.duration_since(*last) < affinity.timeout
            && list.contains(ep)
            && !tried.contains(ep)
        {
            *last = now;
            return Some(*ep);
        }
        let len = list.len();
        let ep = (0..len).map(|i| list[(st.next + i) % len]).find(|ep| !tried.contains(ep))?;
        st.next = (st.next + 1) % len;
        if let Some(Affinity { timeout, clients }) = &mut st.affinity {
            if clients.len() >= 4096 {
                let timeout = *timeout;
                clients.retain(|_, (_, last)| now.duration_since(*last) < timeout);
            }
            clients.insert(client, (ep, now));
        }
        Some(ep)
    }
}

/// What one listener should forward to, computed from a Service port.
struct RouteSpec {
    name: String,
    endpoints: Vec<SocketAddr>,
    short_circuit: Option<Vec<SocketAddr>>,
    affinity: Option<Duration>,
}

/// A listener's identity: the address, port and protocol it binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ListenKey {
    addr: SocketAddr,
    protocol: Protocol,
}

struct Listener {
    route: Arc<Route>,
    /// Cancels the accept loop; connections already forwarded keep going.
    stop: CancellationToken,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The userspace proxy's state: its interface and its listeners.
pub(crate) struct Userspace<L: VipLink> {
    node: Arc<NodeFacts>,
    link: L,
    listeners: HashMap<ListenKey, Listener>,
    /// Parent of every task this proxy spawns; cancelled on drop.
    tasks: CancellationToken,
    udp_idle: Duration,
}

impl<L: VipLink> Drop for Userspace<L> {
    fn drop(&mut self) {
        self.tasks.cancel();
    }
}

fn socket_addrs(list: &[&Endpoint]) -> Vec<SocketAddr> {
    list.iter().map(|ep| SocketAddr::new(IpAddr::V4(ep.ip), ep.port)).collect()
}

impl<L: VipLink> Userspace<L> {
    pub(crate) fn new(node: Arc<NodeFacts>, link: L, udp_idle: Duration) -> Self {
        Userspace { node, link, listeners: HashMap::new(), tasks: CancellationToken::new(), udp_idle }
    }

    /// Make the interface and the listeners match `ports`. Listeners that cannot bind are
    /// reported after everything else is in place.
    pub(crate) async fn sync(&mut self, ports: &[ServicePort]) -> io::Result<()> {
        let mut addresses = BTreeSet::new();
        let mut desired: HashMap<ListenKey, RouteSpec> = HashMap::new();
        let node_ips: Vec<Ipv4Addr> = self.node.node_ipv4s().collect();
        for sp in ports {
            addresses.insert(sp.cluster_ip);
            addresses.extend(sp.external_ips.iter().chain(&sp.lb_ips).copied());
            if sp.protocol == Protocol::Sctp {
                // No SCTP sockets in tokio; the address stays local, so clients are refused.
                continue;
            }
            let c = categorize(sp);
            let affinity = sp.affinity_timeout.map(|t| Duration::from_secs(u64::from(t)));
            let internal = c.internal(sp);
            if !internal.is_empty() {
                let key = ListenKey { addr: SocketAddr::new(sp.cluster_ip.into(), sp.port), protocol: sp.protocol };
                desired.entry(key).or_insert_with(|| RouteSpec {
                    name: sp.name(),
                    endpoints: socket_addrs(internal),
                    short_circuit: None,
                    affinity,
                });
            }
            if !c.has_any {
                continue;
            }
            let mut external: Vec<SocketAddr> =
                sp.external_ips.iter().chain(&sp.lb_ips).map(|ip| SocketAddr::new(IpAddr::V4(*ip), sp.port)).collect();
            if sp.node_port != 0 {
                if node_ips.is_empty() {
                    external.push(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), sp.node_port));
                } else {
                    external.extend(node_ips.iter().map(|ip| SocketAddr::new(IpAddr::V4(*ip), sp.node_port)));
                }
            }
            for addr in external {
                desired.entry(ListenKey { addr, protocol: sp.protocol }).or_insert_with(|| RouteSpec {
                    name: sp.name(),
                    endpoints: socket_addrs(c.external(sp)),
                    short_circuit: sp.external_local.then(|| socket_addrs(&c.cluster)),
                    affinity,
                });
            }
        }

        self.listeners.retain(|key, _| desired.contains_key(key));
        self.link.sync(&addresses).await?;

        let mut failures = Vec::new();
        let mut keys: Vec<ListenKey> = desired.keys().copied().collect();
        keys.sort();
        for key in keys {
            let Some(spec) = desired.remove(&key) else { continue };
            if let Some(existing) = self.listeners.get(&key) {
                existing.route.update(spec);
                continue;
            }
            let route = Arc::new(Route::new(spec));
            match self.listen(key, route.clone()).await {
                Ok(stop) => {
                    self.listeners.insert(key, Listener { route, stop });
                }
                Err(e) => failures.push(format!("{} {}: {e}", key.protocol.nft(), key.addr)),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(io::Error::other(format!("cannot listen on {}", failures.join("; "))))
        }
    }

    /// Bind `key` and spawn its forwarder.
    async fn listen(&self, key: ListenKey, route: Arc<Route>) -> io::Result<CancellationToken> {
        let stop = self.tasks.child_token();
        let node = self.node.clone();
        match key.protocol {
            Protocol::Tcp => {
                let socket = TcpSocket::new_v4()?;
                socket.set_reuseaddr(true)?;
                socket.bind(key.addr)?;
                let listener = socket.listen(1024)?;
                tokio::spawn(serve_tcp(listener, route, node, stop.clone(), self.tasks.clone()));
            }
            Protocol::Udp => {
                let socket = UdpSocket::bind(key.addr).await?;
                tokio::spawn(serve_udp(Arc::new(socket), route, node, self.udp_idle, stop.clone()));
            }
            Protocol::Sctp => return Err(io::Error::new(io::ErrorKind::Unsupported, "SCTP in userspace mode")),
        }
        Ok(stop)
    }
}

/// Whether a client counts as inside the cluster (a pod or the node itself).
fn cluster_client(node: &NodeFacts, client: IpAddr) -> bool {
    match client {
        IpAddr::V4(ip) => ip.is_loopback() || node.is_pod_ip(ip) || node.node_ipv4s().any(|n| n == ip),
        IpAddr::V6(_) => false,
    }
}

/// Accept until `stop` (the listener's token); forwarded connections end with `proxy`.
async fn serve_tcp(
    listener: TcpListener,
    route: Arc<Route>,
    node: Arc<NodeFacts>,
    stop: CancellationToken,
    proxy: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, peer)) => {
                let (route, node, proxy) = (route.clone(), node.clone(), proxy.clone());
                // Forwarded connections outlive their listener (like conntrack entries
                // outlive rules), but not the proxy.
                tokio::spawn(async move {
                    tokio::select! {
                        _ = proxy.cancelled() => {}
                        _ = forward_tcp(client, peer, &route, &node) => {}
                    }
                });
            }
            Err(e) => {
                tracing::debug!(error = %e, "userspace proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn forward_tcp(mut client: TcpStream, peer: SocketAddr, route: &Route, node: &NodeFacts) {
    let inside = cluster_client(node, peer.ip());
    let mut tried = Vec::new();
    while let Some(ep) = route.pick(peer.ip(), inside, &tried) {
        tried.push(ep);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ep)).await {
            Ok(Ok(mut upstream)) => {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(service = %route.name(), endpoint = %ep, error = %e, "userspace proxy: endpoint refused")
            }
            Err(_) => tracing::debug!(service = %route.name(), endpoint = %ep, "userspace proxy: endpoint timed out"),
        }
    }
    // No endpoint would take it: reset rather than close, as a refused connection would.
    // (SO_LINGER with a zero timeout never blocks the close.)
    let reset = nix::libc::linger { l_onoff: 1, l_linger: 0 };
    let _ = nix::sys::socket::setsockopt(&client, nix::sys::socket::sockopt::Linger, &reset);
}

/// One UDP client's session: an upstream socket connected to its endpoint.
struct Session {
    upstream: Arc<UdpSocket>,
    /// Set by the reply task when the session idled out.
    closed: Arc<AtomicBool>,
    last: Arc<Mutex<Instant>>,
}

async fn serve_udp(
    socket: Arc<UdpSocket>,
    route: Arc<Route>,
    node: Arc<NodeFacts>,
    idle: Duration,
    stop: CancellationToken,
) {
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let Ok((n, client)) = received else { continue };
        sessions.retain(|_, s| !s.closed.load(Ordering::Relaxed));
        let session = match sessions.entry(client) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let Some(ep) = route.pick(client.ip(), cluster_client(&node, client.ip()), &[]) else { continue };
                match open_session(&socket, client, ep, idle, stop.clone()).await {
                    Ok(s) => v.insert(s),
                    Err(e) => {
                        tracing::debug!(service = %route.name(), endpoint = %ep, error = %e, "userspace proxy: UDP session failed");
                        continue;
                    }
                }
            }
        };
        *session.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let _ = session.upstream.send(&buf[..n]).await;
    }
}

async fn open_session(
    listener: &Arc<UdpSocket>,
    client: SocketAddr,
    ep: SocketAddr,
    idle: Duration,
    stop: CancellationToken,
) -> io::Result<Session> {
    let upstream = Arc::new(UdpSocket::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)).await?);
    upstream.connect(ep).await?;
    let closed = Arc::new(AtomicBool::new(false));
    let last = Arc::new(Mutex::new(Instant::now()));
    let (up, back, flag, seen) = (upstream.clone(), listener.clone(), closed.clone(), last.clone());
    // Sessions end with their listener: they reply through its socket, which must be free
    // to bind again when the Service comes back.
    tokio::spawn(async move {
        let mut buf = vec![0u8; UDP_BUFFER];
        let relay = async {
            loop {
                let since = *seen.lock().unwrap_or_else(|e| e.into_inner());
                match tokio::time::timeout_at(since + idle, up.recv(&mut buf)).await {
                    Ok(Ok(n)) => {
                        *seen.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                        let _ = back.send_to(&buf[..n], client).await;
                    }
                    // ICMP errors from the endpoint surface here; keep the session.
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(_) => {
                        let last = *seen.lock().unwrap_or_else(|e| e.into_inner());
                        if Instant::now().duration_since(last) >= idle {
                            return;
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = relay => {}
        }
        flag.store(true, Ordering::Relaxed);
    });
    Ok(Session { upstream, closed, last })
}

#[cfg(test)]
mod tests;
