//! NetworkPolicy in the proxy's table ([`crate::netpol`] decides what is allowed):
//!
//! - the base chain `netpol-forward` (filter, forward hook, priority 0: after the Services'
//!   DNAT, so it sees pod addresses) accepts packets of tracked connections, then sends new
//!   ones to the destination's `ingress-…` chain and the source's `egress-…` chain through
//!   the maps `netpol-ingress` / `netpol-egress` (pod IP → `jump` verdict);
//! - each isolated pod's chain returns for every allowed connection and drops the rest.
//!
//! Both checks happen on the node of the pod they protect: a pod's egress on its node, its
//! ingress on its node. Pod-to-pod traffic on one node is bridged, and reaches these hooks
//! because the proxy enables bridge netfilter.

use std::fmt::Write as _;

use super::{chain, chain_name_base, quote, set};
use crate::netpol::{Allow, Peer, Policies, PortMatch};

/// Append the NetworkPolicy chains for `policies` (nothing when no pod here is isolated).
pub(super) fn render(out: &mut String, policies: &Policies) {
    if policies.pods.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n\t# NetworkPolicy");
    let _ = writeln!(out, "\n\tchain netpol-forward {{");
    let _ = writeln!(out, "\t\ttype filter hook forward priority 0; policy accept;");
    let _ = writeln!(out, "\t\tct state established,related accept");
    let _ = writeln!(out, "\t\tip daddr vmap @netpol-ingress");
    let _ = writeln!(out, "\t\tip saddr vmap @netpol-egress");
    let _ = writeln!(out, "\t}}");

    let mut ingress = Vec::new();
    let mut egress = Vec::new();
    let mut chains = String::new();
    for pod in &policies.pods {
        let base = chain_name_base(&format!("{}/{}", pod.namespace, pod.name));
        let who = format!("{}/{}", pod.namespace, pod.name);
        if let Some(allows) = &pod.ingress {
            let name = format!("ingress-{base}");
            ingress.push(format!("{} comment {} : jump {name}", pod.ip, quote(&who)));
            chain(&mut chains, &name, &rules(allows, "saddr"));
        }
        if let Some(allows) = &pod.egress {
            let name = format!("egress-{base}");
            egress.push(format!("{} comment {} : jump {name}", pod.ip, quote(&who)));
            chain(&mut chains, &name, &rules(allows, "daddr"));
        }
    }
    const KEY: &str = "ipv4_addr : verdict";
    set(out, "netpol-ingress", KEY, Some("pods isolated for ingress"), &[], &ingress);
    set(out, "netpol-egress", KEY, Some("pods isolated for egress"), &[], &egress);
    out.push_str(&chains);
}

/// A pod's chain: `return` for each allowed connection (`field` is the other end's address:
/// `saddr` for ingress, `daddr` for egress), then drop.
fn rules(allows: &[Allow], field: &str) -> Vec<String> {
    let mut out = Vec::new();
    for allow in allows {
        let peer = match &allow.peer {
            Peer::Any => String::new(),
            Peer::Pods(ips) if ips.len() == 1 => format!("ip {field} {} ", ips.first().expect("one")),
            Peer::Pods(ips) => {
                let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
                format!("ip {field} {{ {} }} ", list.join(", "))
            }
            Peer::Block { cidr, except } if except.is_empty() => format!("ip {field} {cidr} "),
            Peer::Block { cidr, except } => {
                let list: Vec<String> = except.iter().map(ToString::to_string).collect();
                format!("ip {field} {cidr} ip {field} != {{ {} }} ", list.join(", "))
            }
        };
        if allow.ports.is_empty() {
            out.push(format!("{peer}return"));
        }
        for port in &allow.ports {
            out.push(format!("{peer}{}return", port_match(port)));
        }
    }
    // Identical allowances from several policies need only one rule.
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.clone()));
    out.push("drop".to_string());
    out
}

fn port_match(p: &PortMatch) -> String {
    let proto = p.protocol.nft();
    match p.range {
        None => format!("meta l4proto {proto} "),
        Some((a, b)) if a == b => format!("meta l4proto {proto} th dport {a} "),
        Some((a, b)) => format!("meta l4proto {proto} th dport {a}-{b} "),
    }
}
