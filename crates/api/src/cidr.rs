//! IPv4 ranges as the command line and the API give them (`10.43.0.0/16`): the Service range,
//! the cluster's pod range and the nodes' shares of it.

use std::net::Ipv4Addr;

/// An IPv4 CIDR (host bits masked off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (ip, len) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a CIDR (want a.b.c.d/n)"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("{s:?}: {ip:?} is not an IPv4 address"))?;
        let prefix: u8 = len.parse().map_err(|_| format!("{s:?}: bad prefix length"))?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("{s:?}: prefix length must be between 8 and 30"));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr { base: Ipv4Addr::from(u32::from(ip) & mask), prefix })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.base)
    }

    /// Whether the two ranges share any address (one then contains the other's base).
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.base) || other.contains(self.base)
    }

    /// Number of usable addresses (network and broadcast excluded).
    pub fn size(&self) -> u32 {
        (1u32 << (32 - self.prefix)) - 2
    }

    /// The `n`th usable address (0-based: n = 0 is base + 1).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1 + n)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap() {
        let c = |s| Cidr::parse(s).expect("cidr");
        assert!(c("10.42.0.0/16").overlaps(&c("10.42.7.0/24")));
        assert!(c("10.42.7.0/24").overlaps(&c("10.42.0.0/16")));
        assert!(c("10.42.0.0/16").overlaps(&c("10.42.0.0/16")));
        assert!(!c("10.42.0.0/16").overlaps(&c("10.43.0.0/16")));
    }
}
