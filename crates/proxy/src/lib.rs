//! `skiff-proxy`: the per-node service proxy — what kube-proxy does upstream, in its
//! nftables mode. It sits at the end of the request path (`docs/data-path.md`): once the
//! endpointslice controller has published a Service's ready pods, the proxy on every node
//! turns Services and EndpointSlices into packet rewriting, so `curl my-svc` from a pod, the
//! node or the outside reaches a pod.
//!
//! - [`Proxier`] watches Services and EndpointSlices through the API (kube-rs reflectors)
//!   and, after every change, replaces the whole desired rule set;
//! - [`render`] is that rule set as nftables text: pure, unit-tested without root;
//! - the nftables data plane applies it as one atomic `nft -f -` transaction into the one
//!   table the proxy owns (`table inet <table>`); without `nft` the proxy falls back to
//!   userspace forwarders;
//! - [`netpol`] resolves NetworkPolicies into what this node enforces, rendered into the
//!   same table (nftables mode only);
//! - [`cleanup`] removes everything the proxy created (for `skiff reset`); stopping the
//!   proxy does not (fail-static, like kube-proxy).
//!
//! IPv4 only: IPv6 ClusterIPs, endpoints and addresses are ignored for now (the table is
//! `inet` so an IPv6 half can join it). Not implemented: topology-aware routing hints,
//! `healthCheckNodePort` servers, and the
//! `--nodeport-addresses` restriction (NodePorts answer on every local address).

mod config;
mod conntrack;
mod host;
mod netpol;
mod nftables;
mod proxier;
mod render;
mod service_port;
mod topology;
mod userspace;

use std::io;
use std::path::Path;

pub use config::{ConfigError, NodeFacts, ProxyConfig};
pub use nftables::NftError;
pub use proxier::{Mode, Proxier, Status};
pub use render::render;

/// Why the proxy failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data-plane thread could not start in its network namespace (or died).
    #[error("service proxy data plane: {0}")]
    Netns(#[source] io::Error),
    /// Running `nft` failed.
    #[error(transparent)]
    Nft(#[from] NftError),
    /// The userspace forwarders could not be set up (interface, addresses, sockets).
    #[error("userspace proxy: {0}")]
    Userspace(#[source] io::Error),
}

/// Remove what the proxy created in the calling thread's network namespace: the table
/// `table inet <table>` (through `nft`) and the userspace mode's interface. Missing pieces
/// are fine, so it is safe to run on any host; `skiff reset` calls it.
pub fn cleanup(table: &str, nft: &Path) -> Result<(), Error> {
    nftables::delete_table(nft, table)?;
    userspace::link::delete_link(&userspace::link::link_name(table)).map_err(Error::Userspace)
}
