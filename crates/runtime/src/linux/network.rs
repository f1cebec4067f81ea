//! The built-in pod network: a node bridge (address = the pod CIDR's gateway), and per pod a
//! veth pair with one end on the bridge and the other moved into the sandbox's network
//! namespace as `eth0`, with an address from [`Ipam`], loopback up and a default route via the
//! bridge. All through netlink ([`NetOps`]; the real one is rtnetlink on a dedicated thread
//! with a current-thread tokio runtime — never a tokio worker, since the pod-side half has to
//! `setns` its thread into the pod's namespace).
//!
//! [`setup`] and [`teardown`] hold the ordering and rollback logic; they are unit-tested against
//! a recording [`NetOps`].

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use serde::{Deserialize, Serialize};

use super::ipam::{Ipam, Subnet};

/// Netlink operations the pod network needs.
pub(crate) trait NetOps {
    /// Create the bridge unless it exists, give it `addr/prefix`, bring it up.
    fn ensure_bridge(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()>;
    /// Create a veth pair `host`/`peer`, attach `host` to `bridge` and bring it up, move `peer`
    /// into the network namespace at `netns`.
    fn create_veth(&mut self, host: &str, peer: &str, bridge: &str, netns: &Path) -> io::Result<()>;
    /// Inside `netns`: loopback up, rename `peer` to `eth0`, address it, bring it up, default
    /// route via `gateway`.
    fn configure_pod(
        &mut self,
        netns: &Path,
        peer: &str,
        ip: Ipv4Addr,
        prefix: u8,
        gateway: Ipv4Addr,
    ) -> io::Result<()>;
    /// Inside `netns`: bring loopback up (host-less pods still need it).
    fn loopback_up(&mut self, netns: &Path) -> io::Result<()>;
    /// Delete a link of the host namespace; missing is fine.
    fn delete_link(&mut self, name: &str) -> io::Result<()>;
}

/// What the network of one sandbox consists of, kept in its record for teardown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Attachment {
    pub(crate) host_veth: String,
    pub(crate) ip: Ipv4Addr,
    pub(crate) prefix: u8,
}

/// Host-side veth name for a sandbox (fits IFNAMSIZ).
pub(crate) fn host_veth_name(sandbox_id: &str) -> String {
    format!("veth{}", &sandbox_id[..sandbox_id.len().min(8)])
}

/// Attach a sandbox to the bridge. On failure everything done so far is undone.
pub(crate) fn setup(
    ops: &mut dyn NetOps,
    ipam: &Ipam,
    subnet: Subnet,
    bridge: &str,
    sandbox_id: &str,
    netns: &Path,
) -> io::Result<Attachment> {
    ops.ensure_bridge(bridge, subnet.gateway(), subnet.prefix)
        .map_err(|e| io::Error::new(e.kind(), format!("bridge {bridge}: {e}")))?;
    let ip = ipam.allocate(sandbox_id)?;
    let host = host_veth_name(sandbox_id);
    let peer = format!("tmp{}", &sandbox_id[..sandbox_id.len().min(8)]);
    let result = ops
        .create_veth(&host, &peer, bridge, netns)
        .map_err(|e| io::Error::new(e.kind(), format!("veth {host}: {e}")))
        .and_then(|()| {
            ops.configure_pod(netns, &peer, ip, subnet.prefix, subnet.gateway())
                .map_err(|e| io::Error::new(e.kind(), format!("pod interface: {e}")))
        });
    match result {
        Ok(()) => Ok(Attachment { host_veth: host, ip, prefix: subnet.prefix }),
        Err(e) => {
            let _ = ops.delete_link(&host);
            let _ = ipam.release(sandbox_id);
            Err(e)
        }
    }
}

/// Undo [`setup`]: delete the host veth (its peer goes with it) and release the address.
pub(crate) fn teardown(ops: &mut dyn NetOps, ipam: &Ipam, sandbox_id: &str, attachment: &Attachment) -> io::Result<()> {
    let r = ops.delete_link(&attachment.host_veth);
    ipam.release(sandbox_id)?;
    r
}

fn nl_err(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => match m.code {
            Some(code) => io::Error::from_raw_os_error(-code.get()),
            None => io::Error::other("netlink error"),
        },
        other => io::Error::other(other.to_string()),
    }
}

/// MTU of the overlay device: a 1500-byte uplink less VXLAN's 50 bytes of headers.
const VXLAN_MTU: u32 = 1450;

/// The real [`NetOps`]: rtnetlink on the calling (dedicated) thread.
pub(crate) struct RtNetlink {
    rt: tokio::runtime::Runtime,
    handle: rtnetlink::Handle,
}

/// A netlink handle bound to the calling thread's current network namespace.
fn connect(rt: &tokio::runtime::Runtime) -> io::Result<rtnetlink::Handle> {
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(handle)
    })
}

fn current_thread_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

async fn link_index(handle: &rtnetlink::Handle, name: &str) -> io::Result<Option<u32>> {
    Ok(link_message(handle, name).await?.map(|msg| msg.header.index))
}

async fn link_message(handle: &rtnetlink::Handle, name: &str) -> io::Result<Option<LinkMessage>> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(found) => Ok(found),
        Err(rtnetlink::Error::NetlinkError(m)) if m.code.map(|c| -c.get()) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_err(e)),
    }
}

/// The node bridge's hardware address: fixed, derived from its IPv4 address as upstream's
/// CNI plugins do (`0a:58` then the four address bytes, a locally administered unicast
/// address). Left to itself a Linux bridge takes the lowest address among its ports, so it
/// changes whenever a pod whose veth holds that address comes or goes; every other pod then
/// keeps sending to the old gateway address, a black hole until its ARP entry expires (some
/// 15 s of hung connections and failed DNS lookups, seen in rolling updates).
fn bridge_mac(gateway: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = gateway.octets();
    [0x0a, 0x58, a, b, c, d]
}

async fn require_index(handle: &rtnetlink::Handle, name: &str) -> io::Result<u32> {
    link_index(handle, name)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("link {name} not found")))
}

async fn add_address(handle: &rtnetlink::Handle, index: u32, ip: Ipv4Addr, prefix: u8) -> io::Result<()> {
    match handle.address().add(index, ip.into(), prefix).execute().await {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = nl_err(e);
            if e.raw_os_error() == Some(libc::EEXIST) { Ok(()) } else { Err(e) }
        }
    }
}

async fn set_up(handle: &rtnetlink::Handle, index: u32) -> io::Result<()> {
    handle.link().set(rtnetlink::LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(nl_err)
}

impl RtNetlink {
    /// Must be called on a dedicated std thread (see the module docs).
    pub(crate) fn new() -> io::Result<Self> {
        let rt = current_thread_runtime()?;
        let handle = connect(&rt)?;
        Ok(RtNetlink { rt, handle })
    }

    /// Whether a link of this name exists in the thread's namespace.
    pub(crate) fn link_exists(&mut self, name: &str) -> io::Result<bool> {
        let h = self.handle.clone();
        let name = name.to_string();
        self.rt.block_on(async move { Ok(link_index(&h, &name).await?.is_some()) })
    }

    /// Run `f` on a new thread that has joined the network namespace at `netns`, with a
    /// netlink handle of that namespace.
    fn in_netns<T: Send + 'static>(
        netns: &Path,
        f: impl FnOnce(&tokio::runtime::Runtime, &rtnetlink::Handle) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let netns = netns.to_path_buf();
        std::thread::spawn(move || -> io::Result<T> {
            enter_netns(&netns)?;
            let rt = current_thread_runtime()?;
            let handle = connect(&rt)?;
            f(&rt, &handle)
        })
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?
    }
}

/// `setns` the calling thread into the network namespace at `path`. Only for threads that
/// exit afterwards (never a pooled one).
pub(crate) fn enter_netns(path: &Path) -> io::Result<()> {
    let f = File::open(path).map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

impl NetOps for RtNetlink {
    fn ensure_bridge(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let h = self.handle.clone();
        let name = name.to_string();
        let mac = bridge_mac(addr).to_vec();
        self.rt.block_on(async move {
            let index = match link_message(&h, &name).await? {
                Some(msg) => {
                    let index = msg.header.index;
                    let current = msg.attributes.iter().find_map(|a| match a {
                        LinkAttribute::Address(m) => Some(m.as_slice()),
                        _ => None,
                    });
                    // A bridge made before its address was fixed (or by hand) gets it now.
                    if current != Some(mac.as_slice()) {
                        h.link()
                            .set(rtnetlink::LinkUnspec::new_with_index(index).address(mac.clone()).build())
                            .execute()
                            .await
                            .map_err(nl_err)?;
                    }
                    index
                }
                None => {
                    match h.link().add(rtnetlink::LinkBridge::new(&name).address(mac).build()).execute().await {
                        Ok(()) => {}
                        // Another runtime created it meanwhile.
                        Err(e) if nl_err_code(&e) == Some(libc::EEXIST) => {}
                        Err(e) => return Err(nl_err(e)),
                    }
                    require_index(&h, &name).await?
                }
            };
            add_address(&h, index, addr, prefix).await?;
            set_up(&h, index).await
        })
    }

    fn create_veth(&mut self, host: &str, peer: &str, bridge: &str, netns: &Path) -> io::Result<()> {
        let ns = File::open(netns)?;
        let h = self.handle.clone();
        let (host, peer, bridge) = (host.to_string(), peer.to_string(), bridge.to_string());
        self.rt.block_on(async move {
            let br = require_index(&h, &bridge).await?;
            h.link().add(rtnetlink::LinkVeth::new(&host, &peer).build()).execute().await.map_err(nl_err)?;
            let peer_index = require_index(&h, &peer).await?;
            h.link()
                .set(rtnetlink::LinkUnspec::new_with_index(peer_index).setns_by_fd(ns.as_raw_fd()).build())
                .execute()
                .await
                .map_err(nl_err)?;
            let host_index = require_index(&h, &host).await?;
            h.link()
                .set(rtnetlink::LinkUnspec::new_with_index(host_index).controller(br).up().build())
                .execute()
                .await
                .map_err(nl_err)?;
            // Hairpin: a pod reaching a Service that lands on itself gets its packets back
            // out of the port they came in by (what the CNI bridge plugin's hairpinMode does).
            h.link()
                .set_port(rtnetlink::LinkBridgePort::new(host_index).hairpin(true).build())
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    fn configure_pod(
        &mut self,
        netns: &Path,
        peer: &str,
        ip: Ipv4Addr,
        prefix: u8,
        gateway: Ipv4Addr,
    ) -> io::Result<()> {
        let peer = peer.to_string();
        Self::in_netns(netns, move |rt, h| {
            rt.block_on(async {
                let lo = require_index(h, "lo").await?;
                set_up(h, lo).await?;
                let index = require_index(h, &peer).await?;
                h.link()
                    .set(rtnetlink::LinkUnspec::new_with_index(index).name("eth0".to_string()).build())
                    .execute()
                    .await
                    .map_err(nl_err)?;
                add_address(h, index, ip, prefix).await?;
                set_up(h, index).await?;
                let route = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).build();
                h.route().add(route).execute().await.map_err(nl_err)
            })
        })
    }

    fn loopback_up(&mut self, netns: &Path) -> io::Result<()> {
        Self::in_netns(netns, |rt, h| {
            rt.block_on(async {
                let lo = require_index(h, "lo").await?;
                set_up(h, lo).await
            })
        })
    }

    fn delete_link(&mut self, name: &str) -> io::Result<()> {
        let h = self.handle.clone();
        let name = name.to_string();
        self.rt.block_on(async move {
            let Some(index) = link_index(&h, &name).await? else { return Ok(()) };
            match h.link().del(index).execute().await {
                Ok(()) => Ok(()),
                Err(e) if nl_err_code(&e) == Some(libc::ENODEV) => Ok(()),
                Err(e) => Err(nl_err(e)),
            }
        })
    }
}

impl RtNetlink {
    /// Route `dst/prefix` via `gateway` (created, or replaced if it went elsewhere).
    pub(crate) fn replace_route(&mut self, dst: Ipv4Addr, prefix: u8, gateway: Ipv4Addr) -> io::Result<()> {
        let h = self.handle.clone();
        self.rt.block_on(async move {
            let route = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(dst, prefix)
                .gateway(gateway)
                .build();
            h.route().add(route).replace().execute().await.map_err(nl_err)
        })
    }

    /// The VXLAN device of the overlay pod network (flannel's layout): `name`, VNI `vni`,
    /// UDP `port`, encapsulating from `local`, with the fixed `mac` and `vtep/32` as its
    /// address; created if missing, brought up. Returns its index.
    pub(crate) fn ensure_vxlan(
        &mut self,
        name: &str,
        vni: u32,
        port: u16,
        local: Ipv4Addr,
        mac: [u8; 6],
        vtep: Ipv4Addr,
    ) -> io::Result<u32> {
        let h = self.handle.clone();
        let name = name.to_string();
        self.rt.block_on(async move {
            let index = match link_index(&h, &name).await? {
                Some(i) => i,
                None => {
                    let link = rtnetlink::LinkVxlan::new(&name, vni)
                        .port(port)
                        .local(local)
                        .learning(false)
                        .mtu(VXLAN_MTU)
                        .address(mac.to_vec())
                        .build();
                    h.link().add(link).execute().await.map_err(nl_err)?;
                    require_index(&h, &name).await?
                }
            };
            add_address(&h, index, vtep, 32).await?;
            set_up(&h, index).await?;
            Ok(index)
        })
    }

    /// Make the overlay reach a peer node: its VTEP address resolves to its device's `mac`
    /// (a permanent neighbour), and frames for `mac` go to `remote` (a forwarding entry).
    pub(crate) fn replace_vxlan_peer(
        &mut self,
        index: u32,
        vtep: Ipv4Addr,
        mac: [u8; 6],
        remote: Ipv4Addr,
    ) -> io::Result<()> {
        let h = self.handle.clone();
        self.rt.block_on(async move {
            h.neighbours()
                .add(index, vtep.into())
                .link_layer_address(&mac)
                .replace()
                .execute()
                .await
                .map_err(nl_err)?;
            h.neighbours()
                .add_bridge(index, &mac)
                .destination(remote.into())
                .flags(rtnetlink::packet_route::neighbour::NeighbourFlags::Own)
                .replace()
                .execute()
                .await
                .map_err(nl_err)
        })
    }

    /// Add or replace the route to `dst/prefix` via `gateway` on the link `index`, on-link
    /// (the gateway is a peer's VTEP, not on any subnet of ours).
    pub(crate) fn replace_route_onlink(
        &mut self,
        dst: Ipv4Addr,
        prefix: u8,
        gateway: Ipv4Addr,
        index: u32,
    ) -> io::Result<()> {
        let h = self.handle.clone();
        self.rt.block_on(async move {
            let route = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(dst, prefix)
                .gateway(gateway)
                .output_interface(index)
                .onlink()
                .build();
            h.route().add(route).replace().execute().await.map_err(nl_err)
        })
    }

    /// Remove the route to `dst/prefix` via `gateway`; missing is fine.
    pub(crate) fn delete_route(&mut self, dst: Ipv4Addr, prefix: u8, gateway: Ipv4Addr) -> io::Result<()> {
        let h = self.handle.clone();
        self.rt.block_on(async move {
            let route = rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(dst, prefix)
                .gateway(gateway)
                .build();
            match h.route().del(route).execute().await {
                Ok(()) => Ok(()),
                Err(e) if matches!(nl_err_code(&e), Some(libc::ESRCH) | Some(libc::ENOENT)) => Ok(()),
                Err(e) => Err(nl_err(e)),
            }
        })
    }
}

fn nl_err_code(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Run `f` with a real [`RtNetlink`] on a dedicated thread, from async code.
pub(crate) async fn with_netlink<T: Send + 'static>(
    f: impl FnOnce(&mut RtNetlink) -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = RtNetlink::new().and_then(|mut ops| f(&mut ops));
        let _ = tx.send(r);
    });
    rx.await.map_err(|_| io::Error::other("netlink thread died"))?
}

/// The path a sandbox's network namespace is bound at.
pub(crate) fn netns_path(sandbox_dir: &Path) -> PathBuf {
    sandbox_dir.join("ns").join("net")
}

#[cfg(test)]
mod tests;
