//! From API objects to what the data plane serves: one [`ServicePort`] per port of every
//! proxied Service, with its endpoints gathered from the Service's EndpointSlices
//! (upstream's `serviceport.go` + `endpointslicecache.go`, IPv4 only).
//!
//! Skipped, as upstream: headless Services (`clusterIP: None`), `ExternalName` Services and
//! Services labelled `service.kubernetes.io/service-proxy-name` (another proxy owns them).
//! A Service port's target port is resolved **per slice**: each slice lists the port number
//! behind the port *name*, so a named `targetPort` can map to different numbers on
//! different pods.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::config::Cidr;

/// Services with this label belong to another proxy.
const SERVICE_PROXY_NAME_LABEL: &str = "service.kubernetes.io/service-proxy-name";
/// The label tying an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Upstream's default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 h).
const DEFAULT_AFFINITY_TIMEOUT: u32 = 10800;

/// A transport protocol a Service port can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The API's spelling (`TCP`); absent means TCP.
    pub(crate) fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// nftables' spelling (`tcp`), also used in chain names.
    pub(crate) fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One backend of a Service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) ip: Ipv4Addr,
    /// The target port, as this endpoint's slice resolved it.
    pub(crate) port: u16,
    /// `conditions.ready` (absent = ready).
    pub(crate) ready: bool,
    /// `conditions.serving` (absent = same as ready).
    pub(crate) serving: bool,
    /// `conditions.terminating` (absent = not terminating).
    pub(crate) terminating: bool,
    /// The endpoint runs on this node (`nodeName` is ours).
    pub(crate) local: bool,
}

/// One port of one Service, with everything the rules for it depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServicePort {
    pub(crate) namespace: String,
    pub(crate) service: String,
    /// The port's name (may be empty for single-port Services).
    pub(crate) port_name: String,
    pub(crate) protocol: Protocol,
    pub(crate) cluster_ip: Ipv4Addr,
    pub(crate) port: u16,
    /// 0: no NodePort.
    pub(crate) node_port: u16,
    pub(crate) external_ips: Vec<Ipv4Addr>,
    /// `status.loadBalancer.ingress[].ip`, except `ipMode: Proxy` ones (the load balancer
    /// proxies those itself).
    pub(crate) lb_ips: Vec<Ipv4Addr>,
    pub(crate) lb_source_ranges: Vec<Cidr>,
    /// `sessionAffinity: ClientIP`: how long a client sticks to its endpoint, in seconds.
    pub(crate) affinity_timeout: Option<u32>,
    /// `internalTrafficPolicy: Local`.
    pub(crate) internal_local: bool,
    /// `externalTrafficPolicy: Local` on an externally reachable Service.
    pub(crate) external_local: bool,
    /// Sorted by address and port, duplicates merged.
    pub(crate) endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// Upstream's `ServicePortName` string: `namespace/name:port`.
    pub(crate) fn name(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.service, self.port_name)
    }

    /// Reachable other than through the ClusterIP (upstream's `ExternallyAccessible`).
    pub(crate) fn externally_accessible(&self) -> bool {
        self.node_port != 0 || !self.lb_ips.is_empty() || !self.external_ips.is_empty()
    }

    /// Whether any traffic uses the cluster-wide endpoint list (even with
    /// `externalTrafficPolicy: Local`, pods' traffic to external addresses does).
    pub(crate) fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_local || self.externally_accessible()
    }

    /// Whether any traffic uses only this node's endpoints.
    pub(crate) fn uses_local_endpoints(&self) -> bool {
        self.internal_local || (self.external_local && self.externally_accessible())
    }
}

/// The Service ports to proxy, sorted by name, with their endpoints. `node_name` decides
/// which endpoints are local.
pub(crate) fn service_ports<S, E>(services: &[S], slices: &[E], node_name: &str) -> Vec<ServicePort>
where
    S: Borrow<Service>,
    E: Borrow<EndpointSlice>,
{
    // Slices by (namespace, service), in name order so merging is deterministic.
    let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
    for slice in slices.iter().map(Borrow::borrow) {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(service) = slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) else {
            continue;
        };
        let ns = slice.metadata.namespace.as_deref().unwrap_or_default();
        by_service.entry((ns, service.as_str())).or_default().push(slice);
    }
    for list in by_service.values_mut() {
        list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }

    let mut out = Vec::new();
    for svc in services.iter().map(Borrow::borrow) {
        let (Some(name), Some(spec)) = (svc.metadata.name.as_deref(), svc.spec.as_ref()) else { continue };
        let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
        if svc.metadata.labels.as_ref().is_some_and(|l| l.contains_key(SERVICE_PROXY_NAME_LABEL))
            || spec.type_.as_deref() == Some("ExternalName")
        {
            continue;
        }
        // Dual-stack Services list both families in clusterIPs; take the IPv4 one.
        let cluster_ip =
            spec.cluster_ips.iter().flatten().chain(spec.cluster_ip.iter()).find_map(|ip| ip.parse::<Ipv4Addr>().ok());
        let Some(cluster_ip) = cluster_ip else { continue };

        let externally_reachable = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"))
            || spec.external_ips.as_ref().is_some_and(|ips| !ips.is_empty());
        let external_local = externally_reachable && spec.external_traffic_policy.as_deref() == Some("Local");
        let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
        });
        let external_ips: Vec<Ipv4Addr> = spec.external_ips.iter().flatten().filter_map(|ip| ip.parse().ok()).collect();
        let lb_ips: Vec<Ipv4Addr> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter(|ing| ing.ip_mode.as_deref() != Some("Proxy"))
            .filter_map(|ing| ing.ip.as_deref()?.parse().ok())
            .collect();
        let lb_source_ranges: Vec<Cidr> =
            spec.load_balancer_source_ranges.iter().flatten().filter_map(|r| Cidr::parse(r)).collect();
        let svc_slices = by_service.get(&(ns, name)).map(Vec::as_slice).unwrap_or_default();

        for port in spec.ports.iter().flatten() {
            let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else { continue };
            let Ok(number) = u16::try_from(port.port) else { continue };
            if number == 0 {
                continue;
            }
            let port_name = port.name.clone().unwrap_or_default();
            out.push(ServicePort {
                namespace: ns.to_string(),
                service: name.to_string(),
                endpoints: endpoints(svc_slices, &port_name, protocol, node_name),
                port_name,
                protocol,
                cluster_ip,
                port: number,
                node_port: port.node_port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
                external_ips: external_ips.clone(),
                lb_ips: lb_ips.clone(),
                lb_source_ranges: lb_source_ranges.clone(),
                affinity_timeout,
                internal_local,
                external_local,
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.namespace, &a.service, &a.port_name, a.protocol).cmp(&(&b.namespace, &b.service, &b.port_name, b.protocol))
    });
    out
}

/// The endpoints of the Service port named `port_name`: every slice says which port number
/// that name means for its endpoints.
fn endpoints(slices: &[&EndpointSlice], port_name: &str, protocol: Protocol, node_name: &str) -> Vec<Endpoint> {
    let mut merged: BTreeMap<(Ipv4Addr, u16), Endpoint> = BTreeMap::new();
    for slice in slices {
        let target = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        });
        let Some(port) = target.and_then(|p| p.port).and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0) else {
            continue;
        };
        for ep in &slice.endpoints {
            // Upstream uses the first address only; the others are the same pod's.
            let Some(Ok(IpAddr::V4(ip))) = ep.addresses.first().map(|a| a.parse::<IpAddr>()) else { continue };
            let conditions = ep.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let endpoint = Endpoint {
                ip,
                port,
                ready,
                serving: conditions.and_then(|c| c.serving).unwrap_or(ready),
                terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
                local: !node_name.is_empty() && ep.node_name.as_deref() == Some(node_name),
            };
            // The same endpoint in two slices (briefly, while the controller moves it):
            // believe the ready copy.
            match merged.get(&(ip, port)) {
                Some(existing) if existing.ready || !endpoint.ready => {}
                _ => {
                    merged.insert((ip, port), endpoint);
                }
            }
        }
    }
    merged.into_values().collect()
}
