//! Host settings around the data plane: entering the network namespace the proxy programs
//! ([`crate::ProxyConfig::netns`]) and the sysctls Service traffic depends on.
//!
//! Both act on the *calling thread's* network namespace (`/proc/sys/net` is resolved per
//! thread), so they run on the data-plane thread.

use std::io;
use std::path::Path;

/// Replies between two pods on one Linux bridge are switched at layer 2 and never reach the
/// host's IP hooks — so the reply of a DNATed connection would skip conntrack's reverse NAT
/// and the client would drop it — unless br_netfilter passes bridged IPv4 through them.
const BRIDGE_NF_CALL_IPTABLES: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";
const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// `setns` the calling thread into the network namespace at `path`. Only for threads that
/// exit afterwards (never a pooled one).
pub(crate) fn enter_netns(path: &Path) -> io::Result<()> {
    let f =
        std::fs::File::open(path).map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| io::Error::other(format!("entering network namespace {}: {e}", path.display())))
}

/// Make bridged pod traffic visible to the service rules: set
/// `net.bridge.bridge-nf-call-iptables` to 1 when br_netfilter provides it, and say so.
pub(crate) fn enable_bridge_netfilter() {
    match std::fs::read_to_string(BRIDGE_NF_CALL_IPTABLES) {
        Ok(v) if v.trim() == "1" => {
            tracing::info!(
                "service proxy: net.bridge.bridge-nf-call-iptables=1 (bridged pod traffic passes the service rules)"
            );
        }
        Ok(_) => match std::fs::write(BRIDGE_NF_CALL_IPTABLES, "1") {
            Ok(()) => tracing::info!(
                "service proxy: set net.bridge.bridge-nf-call-iptables=1 so replies between pods on one bridge pass the service rules"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "service proxy: could not set net.bridge.bridge-nf-call-iptables=1; replies between pods on one bridge will miss the service NAT"
            ),
        },
        Err(_) => tracing::warn!(
            "service proxy: br_netfilter is not loaded ({BRIDGE_NF_CALL_IPTABLES} is missing); a pod reaching a Service backed by a pod on the same bridge will not get its replies"
        ),
    }
}

/// Warn when the node does not forward IPv4: NodePorts and endpoints on other nodes need it.
/// (Forwarding is the node network's setting, not the proxy's: only a warning.)
pub(crate) fn check_ip_forward() {
    if std::fs::read_to_string(IP_FORWARD).is_ok_and(|v| v.trim() == "0") {
        tracing::warn!(
            "service proxy: net.ipv4.ip_forward=0; Service traffic to endpoints on other nodes will not be forwarded"
        );
    }
}
