//! Stale UDP flows. A UDP "connection" is a conntrack entry that lives as long as packets keep
//! coming (30 s idle, 120 s once replied to). Until it expires, every packet of the flow is
//! NATed as its first packet was, whatever the new rules say. A client that keeps its
//! socket (a resolver, a metrics agent) would keep sending to an endpoint that is gone. So,
//! after each sync, the proxy deletes what upstream's `pkg/proxy/conntrack/cleanup.go` deletes:
//!
//! - flows to a UDP Service address and port that DNAT to an endpoint the port no longer uses
//!   (matched by the reply's source, which is the endpoint);
//! - flows to a UDP Service address and port that had no endpoint before this sync and has
//!   one now: they were dropped or rejected, and must start over to be DNATed.
//!
//! The same for the port's NodePort. TCP needs none of this: a connection to a removed
//! endpoint fails and the client reconnects.
//!
//! The entries are deleted by running `conntrack -D` (Debian's `conntrack` package), as
//! kube-proxy did before it moved to netlink. Without the binary the proxy still works;
//! stale flows then wait for their timeout, and a warning says so once.

use std::collections::BTreeSet;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::service_port::{Protocol, ServicePort};
use crate::topology::categorize;

/// How long one `conntrack` run may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One `conntrack -D` filter, always for UDP.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Filter {
    /// The original destination address (`None`: any, for NodePorts).
    pub(crate) dst: Option<Ipv4Addr>,
    /// The original destination port.
    pub(crate) port: u16,
    /// The endpoint the flow was DNATed to (`None`: any).
    pub(crate) endpoint: Option<Ipv4Addr>,
}

impl Filter {
    fn args(&self) -> Vec<String> {
        let mut args = vec!["-D".to_string(), "-p".into(), "udp".into()];
        if let Some(dst) = self.dst {
            args.extend(["--orig-dst".into(), dst.to_string()]);
        }
        args.extend(["--orig-port-dst".into(), self.port.to_string()]);
        if let Some(ep) = self.endpoint {
            args.extend(["--reply-src".into(), ep.to_string()]);
        }
        args
    }
}

/// What to delete after moving from `old` to `new` (both sorted by name, as
/// [`crate::service_port::service_ports`] returns them).
pub(crate) fn stale_flows(old: &[ServicePort], new: &[ServicePort]) -> Vec<Filter> {
    let mut out = BTreeSet::new();
    let key = |sp: &ServicePort| (sp.namespace.clone(), sp.service.clone(), sp.port_name.clone());
    for sp in new.iter().filter(|sp| sp.protocol == Protocol::Udp) {
        let before = old.iter().find(|o| o.protocol == Protocol::Udp && key(o) == key(sp));
        let now = categorize(sp);
        let addresses =
            || std::iter::once(sp.cluster_ip).chain(sp.external_ips.iter().copied()).chain(sp.lb_ips.iter().copied());
        match before {
            Some(before) => {
                let was = categorize(before);
                // Endpoints this port stopped using.
                let now_ips: BTreeSet<Ipv4Addr> = now.all_reachable.iter().map(|e| e.ip).collect();
                for ep in was.all_reachable.iter().filter(|e| !now_ips.contains(&e.ip)) {
                    for dst in addresses() {
                        out.insert(Filter { dst: Some(dst), port: sp.port, endpoint: Some(ep.ip) });
                    }
                    if sp.node_port != 0 {
                        out.insert(Filter { dst: None, port: sp.node_port, endpoint: Some(ep.ip) });
                    }
                }
                // From no endpoint to some.
                if was.all_reachable.is_empty() && !now.all_reachable.is_empty() {
                    for dst in addresses() {
                        out.insert(Filter { dst: Some(dst), port: sp.port, endpoint: None });
                    }
                    if sp.node_port != 0 {
                        out.insert(Filter { dst: None, port: sp.node_port, endpoint: None });
                    }
                }
            }
            // A new Service port: its address may have been in use by an earlier Service
            // with the same ClusterIP, or rejected while it had none.
            None if !now.all_reachable.is_empty() => {
                for dst in addresses() {
                    out.insert(Filter { dst: Some(dst), port: sp.port, endpoint: None });
                }
            }
            None => {}
        }
    }
    // Ports that went away entirely: their flows DNAT to endpoints nothing serves any more.
    for sp in old.iter().filter(|sp| sp.protocol == Protocol::Udp) {
        if new.iter().any(|n| n.protocol == Protocol::Udp && key(n) == key(sp)) {
            continue;
        }
        for ep in categorize(sp).all_reachable {
            out.insert(Filter { dst: Some(sp.cluster_ip), port: sp.port, endpoint: Some(ep.ip) });
        }
    }
    out.into_iter().collect()
}

/// The `conntrack` binary.
pub(crate) struct Conntrack {
    path: PathBuf,
    /// The binary was missing once: said so, and stopped trying.
    missing: bool,
}

impl Conntrack {
    pub(crate) fn new(path: PathBuf) -> Conntrack {
        Conntrack { path, missing: false }
    }

    /// Delete the flows `filters` match. Failures are logged, not returned: the rules are
    /// applied already, and stale flows expire on their own.
    pub(crate) async fn delete(&mut self, filters: &[Filter]) {
        if self.missing {
            return;
        }
        for f in filters {
            match self.run(&f.args()).await {
                Ok(()) => tracing::debug!(filter = ?f, "service proxy: deleted stale UDP flows"),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    tracing::warn!(
                        path = %self.path.display(),
                        "service proxy: conntrack not found: stale UDP flows to removed endpoints last until they time out (install conntrack)"
                    );
                    self.missing = true;
                    return;
                }
                Err(e) => tracing::warn!(filter = ?f, error = %e, "service proxy: could not delete stale UDP flows"),
            }
        }
    }

    async fn run(&self, args: &[String]) -> io::Result<()> {
        // Spawned from the calling thread (not a blocking pool), so it acts in the
        // data plane's network namespace, as `nft` does.
        let child = tokio::process::Command::new(&self.path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "conntrack timed out"))??;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Nothing to delete is exit status 1 with this line.
        if out.status.success() || stderr.contains(" 0 flow entries have been deleted") {
            Ok(())
        } else {
            Err(io::Error::other(format!("conntrack {} failed ({}): {}", args.join(" "), out.status, stderr.trim())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service_port::Endpoint;

    fn ep(ip: [u8; 4]) -> Endpoint {
        Endpoint { ip: ip.into(), port: 53, ready: true, serving: true, terminating: false, local: true }
    }

    fn dns(endpoints: Vec<Endpoint>, node_port: u16) -> ServicePort {
        ServicePort {
            namespace: "kube-system".into(),
            service: "dns".into(),
            port_name: "dns".into(),
            protocol: Protocol::Udp,
            cluster_ip: [10, 43, 0, 10].into(),
            port: 53,
            node_port,
            external_ips: vec![],
            lb_ips: vec![],
            lb_source_ranges: vec![],
            affinity_timeout: None,
            internal_local: false,
            external_local: false,
            endpoints,
        }
    }

    fn filter(dst: Option<[u8; 4]>, port: u16, endpoint: Option<[u8; 4]>) -> Filter {
        Filter { dst: dst.map(Into::into), port, endpoint: endpoint.map(Into::into) }
    }

    #[test]
    fn a_removed_endpoint_loses_its_flows() {
        let old = [dns(vec![ep([10, 42, 0, 2]), ep([10, 42, 0, 3])], 30053)];
        let new = [dns(vec![ep([10, 42, 0, 3])], 30053)];
        assert_eq!(
            stale_flows(&old, &new),
            [filter(None, 30053, Some([10, 42, 0, 2])), filter(Some([10, 43, 0, 10]), 53, Some([10, 42, 0, 2])),]
        );
        // Unchanged: nothing to do.
        assert_eq!(stale_flows(&new, &new), []);
        // A not-ready endpoint is not used any more either.
        let mut unready = new.clone();
        unready[0].endpoints.push(Endpoint { ready: false, serving: false, ..ep([10, 42, 0, 4]) });
        assert_eq!(stale_flows(&new, &unready), []);
        let mut gone = unready.clone();
        gone[0].endpoints[0].ready = false;
        gone[0].endpoints[0].serving = false;
        assert_eq!(
            stale_flows(&unready, &gone),
            [filter(None, 30053, Some([10, 42, 0, 3])), filter(Some([10, 43, 0, 10]), 53, Some([10, 42, 0, 3])),]
        );
    }

    #[test]
    fn first_endpoints_clear_rejected_flows() {
        let old = [dns(vec![], 0)];
        let new = [dns(vec![ep([10, 42, 0, 2])], 0)];
        assert_eq!(stale_flows(&old, &new), [filter(Some([10, 43, 0, 10]), 53, None)]);
        // A new Service port with endpoints, too.
        assert_eq!(stale_flows(&[], &new), [filter(Some([10, 43, 0, 10]), 53, None)]);
        // A removed one: its endpoints' flows.
        assert_eq!(stale_flows(&new, &[]), [filter(Some([10, 43, 0, 10]), 53, Some([10, 42, 0, 2]))]);
    }

    #[test]
    fn tcp_ports_need_nothing() {
        let mut old = dns(vec![ep([10, 42, 0, 2])], 0);
        old.protocol = Protocol::Tcp;
        let mut new = old.clone();
        new.endpoints.clear();
        assert_eq!(stale_flows(&[old], &[new]), []);
    }

    #[test]
    fn filter_arguments() {
        assert_eq!(
            filter(Some([10, 43, 0, 10]), 53, Some([10, 42, 0, 2])).args().join(" "),
            ["-D -p udp --orig-dst 10.43.0.10 --orig-port-dst 53 --reply-src 10.42.0.2"].join("")
        );
        assert_eq!(filter(None, 30053, None).args().join(" "), "-D -p udp --orig-port-dst 30053");
    }
}
