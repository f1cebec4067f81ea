//! Which endpoints a Service port's traffic may use (upstream's `CategorizeEndpoints` in
//! `pkg/proxy/topology.go`, without topology hints): ready endpoints, or — when none is
//! ready anywhere — the ones still serving while terminating, so a rolling update never
//! leaves a window with no backend; and, for the `Local` traffic policies, this node's
//! subset chosen the same way. Both the nftables renderer and the userspace forwarders use it.

use crate::service_port::{Endpoint, ServicePort};

/// The endpoint lists of one Service port.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Categorized<'a> {
    /// Used with traffic policy `Cluster` (empty if the port never uses it).
    pub(crate) cluster: Vec<&'a Endpoint>,
    /// Used with traffic policy `Local` (empty if the port never uses it).
    pub(crate) local: Vec<&'a Endpoint>,
    /// Union of both: every endpoint some traffic can reach (one chain each).
    pub(crate) all_reachable: Vec<&'a Endpoint>,
    /// Whether the Service has a usable endpoint anywhere in the cluster; if not, its
    /// traffic is rejected.
    pub(crate) has_any: bool,
}

impl Categorized<'_> {
    /// The endpoints ClusterIP traffic goes to (none: drop, or reject if `!has_any`).
    pub(crate) fn internal(&self, sp: &ServicePort) -> &[&Endpoint] {
        if sp.internal_local { &self.local } else { &self.cluster }
    }

    /// The endpoints NodePort / LoadBalancer / external IP traffic from outside the cluster
    /// goes to.
    pub(crate) fn external(&self, sp: &ServicePort) -> &[&Endpoint] {
        if sp.external_local { &self.local } else { &self.cluster }
    }
}

fn serving_terminating(ep: &Endpoint) -> bool {
    ep.serving && ep.terminating
}

/// Sort a Service port's endpoints into the lists its traffic policies use.
pub(crate) fn categorize(sp: &ServicePort) -> Categorized<'_> {
    let mut out = Categorized::default();
    if sp.uses_cluster_endpoints() {
        out.cluster = sp.endpoints.iter().filter(|ep| ep.ready).collect();
        if out.cluster.is_empty() {
            out.cluster = sp.endpoints.iter().filter(|ep| serving_terminating(ep)).collect();
        }
        out.has_any = !out.cluster.is_empty();
    }
    if !sp.uses_local_endpoints() {
        out.all_reachable = out.cluster.clone();
        return out;
    }

    let mut local_ready = false;
    let mut local_terminating = false;
    for ep in &sp.endpoints {
        if ep.ready {
            out.has_any = true;
            local_ready |= ep.local;
        } else if serving_terminating(ep) {
            out.has_any = true;
            local_terminating |= ep.local;
        }
    }
    if local_ready {
        out.local = sp.endpoints.iter().filter(|ep| ep.local && ep.ready).collect();
    } else if local_terminating {
        out.local = sp.endpoints.iter().filter(|ep| ep.local && serving_terminating(ep)).collect();
    }

    out.all_reachable = out.cluster.clone();
    for ep in &out.local {
        if !out.all_reachable.iter().any(|c| c.ip == ep.ip && c.port == ep.port) {
            out.all_reachable.push(ep);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::service_port::Protocol;

    fn ep(last: u8, ready: bool, serving: bool, terminating: bool, local: bool) -> Endpoint {
        Endpoint { ip: Ipv4Addr::new(10, 42, 0, last), port: 8080, ready, serving, terminating, local }
    }

    fn port(endpoints: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            namespace: "default".into(),
            service: "web".into(),
            port_name: String::new(),
            protocol: Protocol::Tcp,
            cluster_ip: Ipv4Addr::new(10, 43, 0, 10),
            port: 80,
            node_port: 0,
            external_ips: vec![],
            lb_ips: vec![],
            lb_source_ranges: vec![],
            affinity_timeout: None,
            internal_local: false,
            external_local: false,
            endpoints,
        }
    }

    fn ips(list: &[&Endpoint]) -> Vec<u8> {
        list.iter().map(|e| e.ip.octets()[3]).collect()
    }

    #[test]
    fn ready_endpoints_win_over_terminating() {
        let sp = port(vec![ep(1, true, true, false, false), ep(2, false, true, true, false)]);
        let c = categorize(&sp);
        assert_eq!(ips(&c.cluster), [1]);
        assert!(c.has_any);
        assert!(c.local.is_empty());
        assert_eq!(ips(&c.all_reachable), [1]);
    }

    #[test]
    fn serving_terminating_endpoints_are_the_fallback() {
        let sp = port(vec![
            ep(1, false, false, true, false),  // terminating, no longer serving
            ep(2, false, true, true, false),   // terminating, still serving
            ep(3, false, false, false, false), // not ready yet
        ]);
        let c = categorize(&sp);
        assert_eq!(ips(&c.cluster), [2]);
        assert!(c.has_any);
    }

    #[test]
    fn nothing_usable_means_no_endpoints() {
        let sp = port(vec![ep(3, false, false, false, false)]);
        assert_eq!(categorize(&sp), Categorized::default());
    }

    #[test]
    fn internal_local_uses_only_this_nodes_endpoints() {
        let mut sp = port(vec![ep(1, true, true, false, false), ep(2, true, true, false, true)]);
        sp.internal_local = true;
        let c = categorize(&sp);
        assert!(c.cluster.is_empty(), "a ClusterIP-only Service with iTP=Local never uses the cluster list");
        assert_eq!(ips(c.internal(&sp)), [2]);
        assert!(c.has_any);

        // Remote endpoints only: the Service has endpoints, but none for this node.
        let mut sp = port(vec![ep(1, true, true, false, false)]);
        sp.internal_local = true;
        let c = categorize(&sp);
        assert!(c.internal(&sp).is_empty());
        assert!(c.has_any);
    }

    #[test]
    fn external_local_keeps_cluster_list_for_short_circuit() {
        let mut sp = port(vec![ep(1, true, true, false, false), ep(2, false, true, true, true)]);
        sp.node_port = 30080;
        sp.external_local = true;
        let c = categorize(&sp);
        assert_eq!(ips(&c.cluster), [1]);
        // No ready local endpoint: the local serving-terminating one is used.
        assert_eq!(ips(c.external(&sp)), [2]);
        assert_eq!(ips(&c.all_reachable), [1, 2]);
    }
}
