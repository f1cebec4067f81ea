//! `skiff-dns`: the cluster DNS server, answering as CoreDNS's `kubernetes` plugin does in a
//! default cluster (`kubernetes cluster.local in-addr.arpa ip6.arpa { pods insecure; fallthrough
//! in-addr.arpa ip6.arpa }` followed by `forward . /etc/resolv.conf`). It sits at the end of a
//! pod's name lookup (see `docs/data-path.md`): the pod's resolv.conf points at this server,
//! which answers names under the cluster domain from an in-memory index of Namespaces, Services
//! and EndpointSlices, and forwards everything else to the node's nameservers.
//!
//! Layers, from the wire inwards:
//! - [`server`]: binds UDP and TCP sockets (bind first, so callers and tests can use port 0),
//!   runs the watches, the UDP loops and the hickory server (TCP) until shutdown;
//! - [`udp`]: receives a query, answers it in place when no upstream is involved, sends;
//! - [`handler`]: turns a resolution into a response (for UDP and, as hickory's
//!   `RequestHandler`, for TCP), forwards what is not the cluster's;
//! - [`forward`]: the upstream exchange (UDP, TCP on truncation);
//! - [`watch`]: kube-rs reflectors that rebuild the index on every change;
//! - [`resolve`] and [`index`]: pure code, no I/O — the records CoreDNS would serve, computed
//!   from an [`index::Index`] snapshot.

mod config;
mod forward;
mod handler;
mod index;
mod resolve;
mod server;
mod udp;
mod watch;

pub use config::{DEFAULT_CLUSTER_DOMAIN, DEFAULT_TTL, DnsConfig, upstreams_from_resolv_conf};
pub use server::{ClusterDns, DnsError};
