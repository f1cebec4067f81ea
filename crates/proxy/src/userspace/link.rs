//! The interface that makes Service addresses local in userspace mode: a `dummy` link
//! owned by the proxy (`<table>-svc`), carrying every ClusterIP, external IP and
//! load-balancer IP as a /32, so the forwarders can bind them and the node's own stack
//! answers for them (upstream's IPVS mode does the same with `kube-ipvs0`).
//!
//! Through netlink (`rtnetlink`, as the runtime's pod network) rather than `ip`: typed errors
//! instead of parsing iproute2's messages, no dependency on iproute2 on exactly the minimal
//! hosts that lack `nft` too, and the socket belongs to the calling thread's network
//! namespace like everything else on the data-plane thread. Kernels built without the dummy
//! driver (this project's CI VM is one) get an `ifb` link instead, which holds addresses
//! just as well.

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;

/// Linux's IFNAMSIZ minus the terminating NUL.
const MAX_IFNAME: usize = 15;

/// The name of the proxy's interface for `table`: `<table>-svc`, the table part cut so the
/// whole fits 15 characters.
pub(crate) fn link_name(table: &str) -> String {
    const SUFFIX: &str = "-svc";
    let stem: String = table.chars().take(MAX_IFNAME - SUFFIX.len()).collect();
    format!("{stem}{SUFFIX}")
}

/// The seam between the userspace proxy and the host's interfaces: keep one link carrying
/// exactly a set of addresses. Unit tests use a recording fake.
pub(crate) trait VipLink: Send {
    /// Create the link if needed, bring it up, and make its IPv4 addresses exactly
    /// `addresses` (each a /32).
    fn sync(&mut self, addresses: &BTreeSet<Ipv4Addr>) -> impl Future<Output = io::Result<()>> + Send;
}

/// The real [`VipLink`]: netlink in the calling thread's network namespace.
pub(crate) struct DummyLink {
    name: String,
    handle: Option<rtnetlink::Handle>,
}

impl DummyLink {
    pub(crate) fn new(name: String) -> DummyLink {
        DummyLink { name, handle: None }
    }

    /// A netlink handle, connected on first use (from the runtime that will drive it).
    fn handle(&mut self) -> io::Result<rtnetlink::Handle> {
        if let Some(h) = &self.handle {
            return Ok(h.clone());
        }
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        self.handle = Some(handle.clone());
        Ok(handle)
    }
}

impl VipLink for DummyLink {
    async fn sync(&mut self, addresses: &BTreeSet<Ipv4Addr>) -> io::Result<()> {
        let h = self.handle()?;
        let index = ensure_link(&h, &self.name).await?;
        let mut current = BTreeSet::new();
        let mut stale = Vec::new();
        let mut msgs = h.address().get().set_link_index_filter(index).execute();
        while let Some(msg) = msgs.try_next().await.map_err(nl_err)? {
            let ip = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            match ip {
                Some(ip) if addresses.contains(&ip) && msg.header.prefix_len == 32 => {
                    current.insert(ip);
                }
                Some(_) => stale.push(msg),
                None => {}
            }
        }
        for msg in stale {
            match h.address().del(msg).execute().await {
                Err(e) if errno(&e) != Some(libc::EADDRNOTAVAIL) => return Err(nl_err(e)),
                _ => {}
            }
        }
        for ip in addresses.difference(&current) {
            match h.address().add(index, IpAddr::V4(*ip), 32).execute().await {
                Err(e) if errno(&e) != Some(libc::EEXIST) => {
                    return Err(io::Error::new(nl_err(e).kind(), format!("adding {ip}/32 to {}", self.name)));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The link's index; created (dummy, else ifb) and brought up if missing.
async fn ensure_link(h: &rtnetlink::Handle, name: &str) -> io::Result<u32> {
    let index = match link_index(h, name).await? {
        Some(i) => i,
        None => {
            let added = h.link().add(rtnetlink::LinkDummy::new(name).build()).execute().await;
            match added {
                Err(e) if errno(&e) == Some(libc::EOPNOTSUPP) => {
                    tracing::info!(
                        link = name,
                        "kernel has no dummy interfaces; using an ifb interface for Service addresses"
                    );
                    match h.link().add(rtnetlink::LinkIfb::new(name).build()).execute().await {
                        Err(e) if errno(&e) != Some(libc::EEXIST) => return Err(nl_err(e)),
                        _ => {}
                    }
                }
                Err(e) if errno(&e) != Some(libc::EEXIST) => return Err(nl_err(e)),
                _ => {}
            }
            link_index(h, name)
                .await?
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("link {name} vanished")))?
        }
    };
    h.link().set(rtnetlink::LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(nl_err)?;
    Ok(index)
}

async fn link_index(h: &rtnetlink::Handle, name: &str) -> io::Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_err(e)),
    }
}

/// Delete the link `name` in the calling thread's network namespace; missing is fine.
pub(crate) async fn remove(name: &str) -> io::Result<()> {
    let (conn, h, _) = rtnetlink::new_connection()?;
    tokio::spawn(conn);
    let Some(index) = link_index(&h, name).await? else { return Ok(()) };
    match h.link().del(index).execute().await {
        Err(e) if errno(&e) != Some(libc::ENODEV) => Err(nl_err(e)),
        _ => Ok(()),
    }
}

/// [`remove`], blocking (for `skiff reset`): netlink runs on a short-lived thread of its
/// own, which inherits the caller's network namespace.
pub(crate) fn delete_link(name: &str) -> io::Result<()> {
    let name = name.to_string();
    std::thread::spawn(move || -> io::Result<()> {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(remove(&name))
    })
    .join()
    .map_err(|_| io::Error::other("netlink thread panicked"))?
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl_err(e: rtnetlink::Error) -> io::Error {
    match errno(&e) {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::link_name;

    #[test]
    fn link_names_fit_ifnamsiz() {
        assert_eq!(link_name("skiff"), "skiff-svc");
        assert_eq!(link_name("skt-proxy-12345"), "skt-proxy-1-svc");
        assert!(link_name(&"t".repeat(32)).len() <= 15);
    }
}
