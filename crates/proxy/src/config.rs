//! The proxy's configuration: what the binary passes in ([`ProxyConfig`]) and its validated
//! form ([`NodeFacts`]) that rendering and the userspace forwarders read. Validation happens
//! before anything touches the network, so a bad CIDR or table name fails at start-up with one
//! line instead of a failing `nft` transaction later.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Configuration of one node's service proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// This node's name: endpoints whose `nodeName` equals it are local (traffic policy `Local`).
    pub node_name: String,
    /// The node's addresses. NodePorts in nftables mode match every local address
    /// (`fib daddr type local`), as upstream without `--nodeport-addresses`; the userspace
    /// forwarders listen on these (on `0.0.0.0` when the list is empty). They also decide
    /// whether the node itself passes a Service's `loadBalancerSourceRanges`.
    pub node_ips: Vec<IpAddr>,
    /// The pod range(s), comma-separated (`10.42.0.0/16`): traffic from outside it to a
    /// ClusterIP is masqueraded, traffic from inside short-circuits `externalTrafficPolicy:
    /// Local`. Empty: no such detection (upstream's "local detector not implemented").
    pub cluster_cidr: String,
    /// The Service range(s), comma-separated (`10.43.0.0/16`): traffic to an unallocated
    /// ClusterIP is dropped rather than routed off the node.
    pub service_cidr: String,
    /// The nftables table (`table inet <table>`) the proxy owns; the userspace mode's dummy
    /// interface is named after it too. Tests use unique names.
    pub table: String,
    /// The `nft` binary (a bare name is looked up in `PATH`). When it cannot be run, the proxy
    /// serves Services from userspace instead.
    pub nft: PathBuf,
    /// The `conntrack` binary, for deleting stale UDP flows after endpoints change (see
    /// `conntrack.rs`); when it cannot be run, stale flows wait for their timeout.
    pub conntrack: PathBuf,
    /// Program the data plane of this network namespace (a path like `/run/netns/<name>`)
    /// rather than the caller's: `nft`, the dummy interface, sysctls and the userspace
    /// sockets all live there. `None` in the binary; tests point it at a namespace acting as
    /// the node.
    pub netns: Option<PathBuf>,
    /// Serve Services from userspace even when nftables works (`--proxy-mode userspace`).
    pub force_userspace: bool,
}

impl Default for ProxyConfig {
    /// k3s' defaults (ARCHITECTURE.md, "Default ranges and names"); `node_name` is empty and
    /// must be set.
    fn default() -> Self {
        ProxyConfig {
            node_name: String::new(),
            node_ips: Vec::new(),
            cluster_cidr: "10.42.0.0/16".to_string(),
            service_cidr: "10.43.0.0/16".to_string(),
            table: "skiff".to_string(),
            nft: PathBuf::from("nft"),
            conntrack: PathBuf::from("conntrack"),
            netns: None,
            force_userspace: false,
        }
    }
}

/// Why a [`ProxyConfig`] was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `node_name` is empty: local endpoints could not be recognised.
    #[error("the service proxy needs the node name")]
    NoNodeName,
    /// A CIDR in `cluster_cidr` or `service_cidr` does not parse.
    #[error("{field}: {value:?} is not a CIDR (like 10.42.0.0/16)")]
    BadCidr {
        /// Which field.
        field: &'static str,
        /// The offending entry.
        value: String,
    },
    /// The table name is not usable as an nftables identifier and interface-name stem.
    #[error("table name {0:?}: use 1-32 characters of [A-Za-z0-9_-], starting with a letter")]
    BadTable(String),
}

impl ProxyConfig {
    /// Check the configuration and parse it into what rendering needs.
    pub fn node_facts(&self) -> Result<NodeFacts, ConfigError> {
        if self.node_name.is_empty() {
            return Err(ConfigError::NoNodeName);
        }
        let valid_table = !self.table.is_empty()
            && self.table.len() <= 32
            && self.table.starts_with(|c: char| c.is_ascii_alphabetic())
            && self.table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_table {
            return Err(ConfigError::BadTable(self.table.clone()));
        }
        Ok(NodeFacts {
            node_name: self.node_name.clone(),
            node_ips: self.node_ips.clone(),
            cluster_cidrs: parse_cidrs("cluster_cidr", &self.cluster_cidr)?,
            service_cidrs: parse_cidrs("service_cidr", &self.service_cidr)?,
        })
    }
}

/// Comma-separated CIDRs; IPv6 entries parse but are dropped (the proxy is IPv4-only, see
/// the crate docs).
fn parse_cidrs(field: &'static str, value: &str) -> Result<Vec<Cidr>, ConfigError> {
    let mut out = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || ConfigError::BadCidr { field, value: part.to_string() };
        let (addr, prefix) = part.split_once('/').ok_or_else(bad)?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        match addr.parse::<IpAddr>().map_err(|_| bad())? {
            IpAddr::V4(a) if prefix <= 32 => out.push(Cidr::new(a, prefix)),
            IpAddr::V6(_) if prefix <= 128 => {}
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// What the proxy knows about its node, validated: the input of [`crate::render`] besides
/// the API objects. Built by [`ProxyConfig::node_facts`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    pub(crate) node_name: String,
    pub(crate) node_ips: Vec<IpAddr>,
    pub(crate) cluster_cidrs: Vec<Cidr>,
    pub(crate) service_cidrs: Vec<Cidr>,
}

impl NodeFacts {
    /// The node's IPv4 addresses.
    pub(crate) fn node_ipv4s(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.node_ips.iter().filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
    }

    /// Whether `ip` is a pod address (inside the cluster CIDR).
    pub(crate) fn is_pod_ip(&self, ip: Ipv4Addr) -> bool {
        self.cluster_cidrs.iter().any(|c| c.contains(ip))
    }
}

/// An IPv4 network, normalised (host bits cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Cidr {
    pub(crate) base: Ipv4Addr,
    pub(crate) prefix: u8,
}

impl Cidr {
    pub(crate) fn new(addr: Ipv4Addr, prefix: u8) -> Cidr {
        let prefix = prefix.min(32);
        Cidr { base: Ipv4Addr::from(u32::from(addr) & Self::mask(prefix)), prefix }
    }

    pub(crate) fn parse(s: &str) -> Option<Cidr> {
        match s.split_once('/') {
            Some((a, p)) => Some(Cidr::new(a.trim().parse().ok()?, p.trim().parse().ok().filter(|p| *p <= 32)?)),
            None => Some(Cidr::new(s.trim().parse().ok()?, 32)),
        }
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) }
    }

    pub(crate) fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.prefix) == u32::from(self.base)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ProxyConfig {
        ProxyConfig { node_name: "n1".into(), ..ProxyConfig::default() }
    }

    #[test]
    fn defaults_validate() {
        let facts = config().node_facts().expect("valid");
        assert_eq!(facts.cluster_cidrs, vec![Cidr::new(Ipv4Addr::new(10, 42, 0, 0), 16)]);
        assert_eq!(facts.service_cidrs[0].to_string(), "10.43.0.0/16");
        assert!(facts.is_pod_ip(Ipv4Addr::new(10, 42, 7, 9)));
        assert!(!facts.is_pod_ip(Ipv4Addr::new(10, 43, 0, 1)));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(ProxyConfig::default().node_facts(), Err(ConfigError::NoNodeName));
        let bad = ProxyConfig { cluster_cidr: "10.42.0.0".into(), ..config() };
        assert!(matches!(bad.node_facts(), Err(ConfigError::BadCidr { field: "cluster_cidr", .. })));
        let bad = ProxyConfig { service_cidr: "10.43.0.0/33".into(), ..config() };
        assert!(matches!(bad.node_facts(), Err(ConfigError::BadCidr { field: "service_cidr", .. })));
        for table in ["", "1abc", "a b", "a/b", "x".repeat(33).as_str()] {
            let bad = ProxyConfig { table: table.into(), ..config() };
            assert!(matches!(bad.node_facts(), Err(ConfigError::BadTable(_))), "{table:?}");
        }
    }

    #[test]
    fn dual_stack_lists_keep_ipv4_and_empty_means_none() {
        let c = ProxyConfig { cluster_cidr: "fd00::/56, 10.42.0.0/16".into(), service_cidr: String::new(), ..config() };
        let facts = c.node_facts().expect("valid");
        assert_eq!(facts.cluster_cidrs.len(), 1);
        assert!(facts.service_cidrs.is_empty());
    }

    #[test]
    fn cidr_normalises_and_contains() {
        let c = Cidr::parse("10.42.3.7/16").expect("parses");
        assert_eq!(c.to_string(), "10.42.0.0/16");
        assert!(c.contains(Ipv4Addr::new(10, 42, 255, 1)));
        assert_eq!(Cidr::parse("1.2.3.4").map(|c| c.prefix), Some(32));
        assert!(Cidr::new(Ipv4Addr::UNSPECIFIED, 0).contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(Cidr::parse("1.2.3.4/40"), None);
    }
}
