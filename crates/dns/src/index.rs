//! The in-memory view of the cluster that [`crate::resolve`] answers from: Namespaces,
//! Services and their published endpoint addresses, reduced to what DNS needs (as CoreDNS's
//! `object.Service` / `object.Endpoints` are). Rebuilt whole from the watch caches on every
//! change ([`crate::watch`]); answering never reads the API.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use hickory_server::proto::rr::rdata::SOA;
use hickory_server::proto::rr::{Name, RData, Record};
use k8s_openapi::api::core::v1::{Namespace, Service as ApiService};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// `(namespace, name)` of a Service, lower-case.
pub(crate) type ServiceKey = (String, String);

/// A snapshot of the cluster as DNS sees it.
#[derive(Debug)]
pub(crate) struct Index {
    /// The cluster zone, lower-case and fully qualified (`cluster.local.`).
    pub(crate) zone: Name,
    /// TTL of every record built from this index.
    pub(crate) ttl: u32,
    /// The SOA serial: when the index last changed, in Unix seconds (CoreDNS uses the time of
    /// the last change it saw too).
    pub(crate) serial: u32,
    /// The zone's SOA record, for the authority section of negative answers: built once here
    /// rather than for every NXDOMAIN.
    pub(crate) soa: Record,
    /// Whether every watch has listed once. Until then a name that is not found may exist, so
    /// NXDOMAIN becomes SERVFAIL (as CoreDNS does before its caches sync) and is not cached.
    pub(crate) synced: bool,
    /// Existing namespaces: `<ns>.svc.<zone>` and names below it exist only for these.
    pub(crate) namespaces: HashSet<String>,
    pub(crate) services: HashMap<ServiceKey, Service>,
    /// Published addresses per Service, one subset per EndpointSlice (a Service may have
    /// several slices, and slices may arrive before or outlive their Service).
    pub(crate) endpoints: HashMap<ServiceKey, Vec<Subset>>,
    /// ClusterIP → Service, for PTR.
    pub(crate) service_ips: HashMap<IpAddr, ServiceKey>,
    /// Endpoint address → `(service, hostname)` of every endpoint with it, for PTR.
    pub(crate) endpoint_ips: HashMap<IpAddr, Vec<(ServiceKey, String)>>,
}

/// What a Service resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServiceKind {
    /// A virtual IP per family (`spec.clusterIPs`). Empty while the Service has none.
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: the names resolve to the ready endpoints.
    Headless,
    /// `type: ExternalName`: a CNAME to this name.
    ExternalName(Name),
}

#[derive(Clone, Debug)]
pub(crate) struct Service {
    pub(crate) kind: ServiceKind,
    /// `spec.ports`, or one port-less entry when there are none (CoreDNS's sentinel, so that
    /// address queries still match while SRV skips it).
    pub(crate) ports: Vec<Port>,
}

/// A port of a Service or an EndpointSlice. Name and protocol are lower-case; queries
/// compare case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Port {
    pub(crate) name: String,
    pub(crate) protocol: String,
    /// `None` when unset (CoreDNS's port -1): no SRV record.
    pub(crate) port: Option<u16>,
}

impl Port {
    fn none() -> Port {
        Port { name: String::new(), protocol: String::new(), port: None }
    }
}

/// One EndpointSlice's published addresses and its ports (the addresses × ports product, as
/// an Endpoints subset).
#[derive(Clone, Debug)]
pub(crate) struct Subset {
    pub(crate) addresses: Vec<Address>,
    pub(crate) ports: Vec<Port>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Address {
    pub(crate) ip: IpAddr,
    /// The endpoint's `hostname`, or else its address with `.`/`:` replaced by `-`
    /// (`10-1-2-3`, `fd00--1`), CoreDNS's `endpointHostname`. Lower-case.
    pub(crate) hostname: String,
}

impl Index {
    /// An index with nothing in it, not synced: what the server answers from before the
    /// first list.
    pub(crate) fn empty(zone: Name, ttl: u32) -> Index {
        Index {
            soa: soa(&zone, ttl, 0),
            zone,
            ttl,
            serial: 0,
            synced: false,
            namespaces: HashSet::new(),
            services: HashMap::new(),
            endpoints: HashMap::new(),
            service_ips: HashMap::new(),
            endpoint_ips: HashMap::new(),
        }
    }

    /// Build an index from the current objects. `zone` must be lower-case and fully
    /// qualified ([`crate::DnsConfig`] makes it so).
    pub(crate) fn build<'a>(
        zone: Name,
        ttl: u32,
        serial: u32,
        synced: bool,
        namespaces: impl IntoIterator<Item = &'a Namespace>,
        services: impl IntoIterator<Item = &'a ApiService>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Index {
        let mut ix = Index::empty(zone, ttl);
        ix.serial = serial;
        ix.soa = soa(&ix.zone, ttl, serial);
        ix.synced = synced;
        ix.namespaces =
            namespaces.into_iter().filter_map(|ns| ns.metadata.name.as_deref()).map(str::to_ascii_lowercase).collect();

        // Whether a Service publishes not-ready endpoints, for the slices below.
        let mut publish_not_ready = HashSet::new();
        for svc in services {
            let (Some(ns), Some(name)) = (svc.metadata.namespace.as_deref(), svc.metadata.name.as_deref()) else {
                continue;
            };
            let key = (ns.to_ascii_lowercase(), name.to_ascii_lowercase());
            let Some(service) = Service::from_api(svc) else {
                continue;
            };
            if let ServiceKind::ClusterIp(ips) = &service.kind {
                for ip in ips {
                    // Two Services never share a ClusterIP (the allocator sees to that); keep the
                    // first by name so a transient overlap answers the same every time.
                    ix.service_ips
                        .entry(*ip)
                        .and_modify(|k| *k = k.clone().min(key.clone()))
                        .or_insert_with(|| key.clone());
                }
            }
            if svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false) {
                publish_not_ready.insert(key.clone());
            }
            ix.services.insert(key, service);
        }

        for slice in slices {
            let Some(ns) = slice.metadata.namespace.as_deref() else { continue };
            // A slice without the label belongs to no Service (CoreDNS files it under an empty
            // service name, which no query can reach).
            let Some(svc) = slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) else {
                continue;
            };
            let key = (ns.to_ascii_lowercase(), svc.to_ascii_lowercase());
            let subset = subset(slice, publish_not_ready.contains(&key));
            for a in &subset.addresses {
                ix.endpoint_ips.entry(a.ip).or_default().push((key.clone(), a.hostname.clone()));
            }
            ix.endpoints.entry(key).or_default().push(subset);
        }
        ix
    }
}

/// The zone's SOA, as CoreDNS builds it (plugin/backend_lookup.go `SOA`).
fn soa(zone: &Name, ttl: u32, serial: u32) -> Record {
    let in_zone =
        |labels: &str| Name::from_ascii(format!("{labels}.{}", zone.to_ascii())).unwrap_or_else(|_| zone.clone());
    let data = SOA::new(in_zone("ns.dns"), in_zone("hostmaster"), serial, 7200, 1800, 86400, ttl);
    Record::from_rdata(zone.clone(), ttl.min(300), RData::SOA(data))
}

impl Service {
    fn from_api(svc: &ApiService) -> Option<Service> {
        let spec = svc.spec.as_ref()?;
        let kind = if spec.type_.as_deref() == Some("ExternalName") {
            // An ExternalName that is an IP address is no CNAME: CoreDNS serves nothing for it.
            let target = spec.external_name.as_deref().filter(|n| !n.is_empty() && n.parse::<IpAddr>().is_err())?;
            let mut name = Name::from_ascii(target).ok()?;
            name.set_fqdn(true);
            ServiceKind::ExternalName(name)
        } else {
            let ips: Vec<&str> = match &spec.cluster_ips {
                Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
                _ => spec.cluster_ip.as_deref().into_iter().collect(),
            };
            if ips.first() == Some(&"None") {
                ServiceKind::Headless
            } else {
                ServiceKind::ClusterIp(ips.iter().filter_map(|ip| ip.parse().ok()).collect())
            }
        };
        let ports = match spec.ports.as_deref() {
            Some(ports) if !ports.is_empty() => ports
                .iter()
                .map(|p| Port {
                    name: p.name.as_deref().unwrap_or_default().to_ascii_lowercase(),
                    protocol: p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                    port: u16::try_from(p.port).ok(),
                })
                .collect(),
            _ => vec![Port::none()],
        };
        Some(Service { kind, ports })
    }
}

/// The addresses of a slice that DNS publishes: endpoints whose `ready` condition is true or
/// unknown (nil reads as ready, per the API docs and CoreDNS), or all of them when the Service
/// has `publishNotReadyAddresses` (the EndpointSlice controller marks those ready already; the
/// check here keeps DNS right if a slice was written by someone else).
fn subset(slice: &EndpointSlice, publish_not_ready: bool) -> Subset {
    let mut addresses = Vec::new();
    // FQDN slices (deprecated) hold names, not addresses: nothing to publish.
    if matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
        for ep in &slice.endpoints {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready && !publish_not_ready {
                continue;
            }
            for raw in &ep.addresses {
                let Ok(ip) = raw.parse::<IpAddr>() else { continue };
                let hostname = match ep.hostname.as_deref() {
                    Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
                    _ => raw.to_ascii_lowercase().replace(['.', ':'], "-"),
                };
                addresses.push(Address { ip, hostname });
            }
        }
    }
    let ports = match slice.ports.as_deref() {
        Some(ports) if !ports.is_empty() => ports
            .iter()
            .map(|p| Port {
                name: p.name.as_deref().unwrap_or_default().to_ascii_lowercase(),
                protocol: p.protocol.as_deref().unwrap_or_default().to_ascii_lowercase(),
                port: p.port.and_then(|n| u16::try_from(n).ok()),
            })
            .collect(),
        _ => vec![Port::none()],
    };
    Subset { addresses, ports }
}
