//! Addresses of simulated nodes and their pods. Nothing routes them: they only need to be
//! valid, unique and inside each node's `podCIDR`, as a real CNI's host-local allocator would
//! make them.
//!
//! - Pod ranges: node `i` gets the /24 number `i` of `10.128.0.0/9` (well away from k3s'
//!   `10.42.0.0/16` and `10.43.0.0/16`).
//! - Node addresses: node `i` gets `100.64.0.0/10` + `i + 1` (RFC 6598 shared space: never a
//!   real LAN or the internet).

use std::net::Ipv4Addr;

/// The network of all simulated pod ranges.
const POD_NETWORK: u32 = u32::from_be_bytes([10, 128, 0, 0]);
/// The network of the simulated node addresses.
const NODE_NETWORK: u32 = u32::from_be_bytes([100, 64, 0, 0]);
/// How many /24s fit in `10.128.0.0/9`.
pub(crate) const MAX_NODES: usize = 1 << 15;
/// Pod addresses per node: `.2` to `.254` (`.0` network, `.1` the bridge a real node would
/// have, `.255` broadcast).
pub(crate) const POD_ADDRESSES: u32 = 253;
/// The first pod host number.
const FIRST_HOST: u8 = 2;
/// The last pod host number.
const LAST_HOST: u8 = 254;

/// The pod range (network address of a /24) of node `index`.
pub(crate) fn pod_range(index: usize) -> Ipv4Addr {
    Ipv4Addr::from(POD_NETWORK + ((index as u32) << 8))
}

/// The InternalIP of node `index`.
pub(crate) fn node_address(index: usize) -> Ipv4Addr {
    Ipv4Addr::from(NODE_NETWORK + index as u32 + 1)
}

/// The network address of the first /24 inside `cidr` (`a.b.c.d/n` with `n <= 24`), or `None`
/// when it is not an IPv4 range large enough to hold our pods.
pub(crate) fn parse_range(cidr: &str) -> Option<Ipv4Addr> {
    let (ip, prefix) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    if prefix > 24 {
        return None;
    }
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    Some(Ipv4Addr::from(u32::from(ip) & mask))
}

/// The address of host `host` in the /24 starting at `range`.
pub(crate) fn pod_address(range: Ipv4Addr, host: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(range) | u32::from(host))
}

/// The host number of `ip` if it lies in the /24 starting at `range` and may be a pod's.
pub(crate) fn host_in_range(range: Ipv4Addr, ip: &str) -> Option<u8> {
    let ip: Ipv4Addr = ip.parse().ok()?;
    let ip = u32::from(ip);
    if ip & !0xff != u32::from(range) {
        return None;
    }
    let host = (ip & 0xff) as u8;
    (FIRST_HOST..=LAST_HOST).contains(&host).then_some(host)
}

/// The pod addresses of one node in use: 32 bytes of bits plus a cursor, so 5,000 nodes cost
/// nothing. Allocation goes round-robin like host-local, so a freed address is not handed out
/// again at once (a stale endpoint would point at the wrong pod).
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    /// Bit `h` set: host `h` is taken.
    used: [u64; 4],
    /// The host number tried first next time.
    next: u8,
}

impl Default for Pool {
    fn default() -> Self {
        Pool { used: [0; 4], next: FIRST_HOST }
    }
}

impl Pool {
    fn bit(host: u8) -> (usize, u64) {
        (usize::from(host / 64), 1u64 << (host % 64))
    }

    fn is_used(&self, host: u8) -> bool {
        let (w, b) = Self::bit(host);
        self.used[w] & b != 0
    }

    /// Takes the next free host number, or `None` when the range is full.
    pub(crate) fn allocate(&mut self) -> Option<u8> {
        let span = u16::from(LAST_HOST - FIRST_HOST) + 1;
        for step in 0..span {
            let offset = (u16::from(self.next - FIRST_HOST) + step) % span;
            // Below `span` (253), so it fits.
            let host = FIRST_HOST + offset as u8;
            if !self.is_used(host) {
                self.reserve(host);
                self.next = if host == LAST_HOST { FIRST_HOST } else { host + 1 };
                return Some(host);
            }
        }
        None
    }

    /// Marks `host` as taken (a pod that already had it); false if it already was.
    pub(crate) fn reserve(&mut self, host: u8) -> bool {
        let (w, b) = Self::bit(host);
        let was_free = self.used[w] & b == 0;
        self.used[w] |= b;
        was_free
    }

    /// Gives `host` back.
    pub(crate) fn release(&mut self, host: u8) {
        let (w, b) = Self::bit(host);
        self.used[w] &= !b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_addresses_are_distinct_per_node() {
        assert_eq!(pod_range(0), Ipv4Addr::new(10, 128, 0, 0));
        assert_eq!(pod_range(1), Ipv4Addr::new(10, 128, 1, 0));
        assert_eq!(pod_range(256), Ipv4Addr::new(10, 129, 0, 0));
        assert_eq!(pod_range(MAX_NODES - 1), Ipv4Addr::new(10, 255, 255, 0));
        assert_eq!(node_address(0), Ipv4Addr::new(100, 64, 0, 1));
        assert_eq!(node_address(4999), Ipv4Addr::new(100, 64, 19, 136));
    }

    #[test]
    fn parse_range_takes_the_first_24() {
        assert_eq!(parse_range("10.42.3.0/24"), Some(Ipv4Addr::new(10, 42, 3, 0)));
        assert_eq!(parse_range("10.42.3.7/16"), Some(Ipv4Addr::new(10, 42, 0, 0)));
        assert_eq!(parse_range("10.42.3.0/25"), None);
        assert_eq!(parse_range("fd00::/64"), None);
        assert_eq!(parse_range("garbage"), None);
    }

    #[test]
    fn host_in_range_checks_the_network_and_reserved_hosts() {
        let r = Ipv4Addr::new(10, 128, 1, 0);
        assert_eq!(host_in_range(r, "10.128.1.7"), Some(7));
        assert_eq!(host_in_range(r, "10.128.2.7"), None);
        assert_eq!(host_in_range(r, "10.128.1.1"), None);
        assert_eq!(host_in_range(r, "10.128.1.255"), None);
        assert_eq!(host_in_range(r, "x"), None);
        assert_eq!(pod_address(r, 9), Ipv4Addr::new(10, 128, 1, 9));
    }

    #[test]
    fn pool_allocates_round_robin_until_full() {
        let mut p = Pool::default();
        assert_eq!(p.allocate(), Some(2));
        assert_eq!(p.allocate(), Some(3));
        p.release(2);
        // Round-robin: the freed address is not reused at once.
        assert_eq!(p.allocate(), Some(4));
        assert!(p.reserve(100));
        assert!(!p.reserve(100));
        let mut got = vec![2, 3, 4, 100];
        while let Some(h) = p.allocate() {
            got.push(h);
        }
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), POD_ADDRESSES as usize);
        assert_eq!(got.first(), Some(&2));
        assert_eq!(got.last(), Some(&254));
        p.release(77);
        assert_eq!(p.allocate(), Some(77));
        assert_eq!(p.allocate(), None);
    }
}
