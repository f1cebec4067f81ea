//! The DNS server's configuration, checked before anything binds, and the reading of
//! resolv.conf for the upstream nameservers (`forward . /etc/resolv.conf`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use hickory_server::proto::rr::Name;

use crate::server::DnsError;

/// The cluster domain kubelet and kubeadm default to.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// TTL of cluster answers: the kubernetes plugin's default (`defaultTTL = 5` in CoreDNS's
/// plugin/kubernetes/kubernetes.go), which is what k3s's Corefile runs with. kubeadm's Corefile
/// sets `ttl 30` instead.
pub const DEFAULT_TTL: u32 = 5;

/// The largest TTL the kubernetes plugin accepts ("ttl must be in range [0, 3600]").
const MAX_TTL: u32 = 3600;

/// Configuration of the cluster DNS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    /// The zone answered from the cluster, e.g. `cluster.local` (a trailing dot is accepted).
    /// Names under it never leave the server.
    pub cluster_domain: String,
    /// Where to serve; each address gets a UDP socket and a TCP listener on the same port.
    /// Port 0 picks a free port (the same one for both); see [`crate::ClusterDns::local_addrs`].
    pub listen: Vec<SocketAddr>,
    /// Nameservers for every name outside the cluster zone (and for reverse lookups of
    /// addresses the cluster does not know), tried in order. Empty: such queries get SERVFAIL.
    pub upstreams: Vec<SocketAddr>,
    /// TTL, in seconds, of records answered from the cluster (0 to 3600). Forwarded answers
    /// keep the upstream's TTLs.
    pub ttl: u32,
}

impl Default for DnsConfig {
    /// `cluster.local`, the default TTL, and nothing to listen on or forward to yet.
    fn default() -> Self {
        DnsConfig {
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_string(),
            listen: Vec::new(),
            upstreams: Vec::new(),
            ttl: DEFAULT_TTL,
        }
    }
}

impl DnsConfig {
    /// Check the configuration; returns the cluster zone as a lower-case, fully qualified name.
    pub(crate) fn validate(&self) -> Result<Name, DnsError> {
        let domain = self.cluster_domain.trim();
        let invalid = |reason: String| DnsError::InvalidClusterDomain { domain: self.cluster_domain.clone(), reason };
        if domain.is_empty() || domain == "." {
            return Err(invalid("it is empty".to_string()));
        }
        let mut zone = Name::from_ascii(domain).map_err(|e| invalid(e.to_string()))?.to_lowercase();
        zone.set_fqdn(true);
        if self.listen.is_empty() {
            return Err(DnsError::NoListenAddress);
        }
        if self.ttl > MAX_TTL {
            return Err(DnsError::TtlOutOfRange(self.ttl));
        }
        Ok(zone)
    }
}

/// The `nameserver` entries of a resolv.conf, on port 53, in file order. Lines that do not
/// parse (including IPv6 addresses with a `%zone`, which a socket address cannot carry) are
/// skipped; an unreadable file gives no upstreams (and a warning).
pub fn upstreams_from_resolv_conf(path: &Path) -> Vec<SocketAddr> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_resolv_conf(&text),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read resolv.conf: no upstream nameservers");
            Vec::new()
        }
    }
}

fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_in_order_skipping_what_does_not_parse() {
        let text = "# generated\nsearch example.com\nnameserver 192.0.2.1\n; comment\nnameserver  2001:db8::53 \n\
                    nameserver fe80::1%eth0\nnameserver not-an-ip\nnameserver\noptions ndots:5\n#nameserver 192.0.2.9\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec!["192.0.2.1:53".parse::<SocketAddr>().unwrap(), "[2001:db8::53]:53".parse().unwrap()]
        );
    }

    #[test]
    fn resolv_conf_from_a_file_and_a_missing_file() {
        let dir = std::env::temp_dir().join(format!("skiff-dns-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("resolv.conf");
        std::fs::write(&path, "nameserver 127.0.0.53\n").unwrap();
        assert_eq!(upstreams_from_resolv_conf(&path), vec!["127.0.0.53:53".parse::<SocketAddr>().unwrap()]);
        assert!(upstreams_from_resolv_conf(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn config(domain: &str) -> DnsConfig {
        DnsConfig {
            cluster_domain: domain.to_string(),
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            ..DnsConfig::default()
        }
    }

    #[test]
    fn validation_normalizes_the_zone_and_rejects_bad_values() {
        assert_eq!(config("Cluster.Local").validate().unwrap().to_ascii(), "cluster.local.");
        assert_eq!(config("cluster.local.").validate().unwrap().to_ascii(), "cluster.local.");
        assert!(matches!(config("").validate(), Err(DnsError::InvalidClusterDomain { .. })));
        assert!(matches!(config(".").validate(), Err(DnsError::InvalidClusterDomain { .. })));
        assert!(matches!(config("a..b").validate(), Err(DnsError::InvalidClusterDomain { .. })));
        let no_listen = DnsConfig::default();
        assert!(matches!(no_listen.validate(), Err(DnsError::NoListenAddress)));
        let ttl = DnsConfig { ttl: 3601, ..config("cluster.local") };
        assert!(matches!(ttl.validate(), Err(DnsError::TtlOutOfRange(3601))));
        assert_eq!(DnsConfig::default().ttl, 5);
    }
}
