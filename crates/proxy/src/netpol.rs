//! NetworkPolicy (networking.k8s.io/v1): from policies, pods and namespaces to what this
//! node enforces — for every pod running here that some policy isolates, the list of
//! connections it may accept (ingress) or open (egress). Pure, like [`crate::service_port`];
//! [`crate::render`] turns the result into chains of the proxy's table.
//!
//! Semantics are upstream's (the API reference of `NetworkPolicySpec`):
//!
//! - a pod is isolated for ingress (egress) when a policy in its namespace selects it and
//!   lists `Ingress` (`Egress`) in `policyTypes` (defaulted by the API server: `Ingress`,
//!   plus `Egress` when the policy has egress rules);
//! - an isolated pod accepts a connection when *any* rule of *any* policy selecting it allows
//!   it: rules are unions, never subtractions; a rule allows a connection when one of its
//!   peers matches (no peers: every source/destination) and one of its ports matches (no
//!   ports: every port and protocol);
//! - a peer is an `ipBlock` (a CIDR minus `except`), or pods: `podSelector` alone picks pods
//!   in the policy's namespace, `namespaceSelector` alone every pod of the namespaces it
//!   picks, both together the pods matching the one in the namespaces matching the other;
//! - a named port means a container port of that name and protocol: of the protected pod for
//!   ingress, of the destination pod for egress (so it never matches a non-pod address);
//!   `endPort` makes a port a range;
//! - replies to allowed connections are allowed (connection tracking), and a pod can always
//!   reach itself (its own address never leaves its network namespace);
//! - traffic between a pod and the node it runs on is always allowed (the docs' "traffic to
//!   and from the node where a Pod is running is always allowed"): it does not cross the
//!   node's forward path, where the rules are.
//!
//! Pods are peers while they have an IPv4 address and are not finished; host-network pods
//! are neither isolated nor peers (their address is the node's). Only IPv4 is enforced, like
//! the rest of the proxy.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_api::selector::LabelSelector as Selector;

use crate::config::Cidr;
use crate::service_port::Protocol;

/// What this node enforces: its isolated pods, in namespace/name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Policies {
    pub(crate) pods: Vec<IsolatedPod>,
    /// NetworkPolicies in the cluster (for the userspace mode's warning that none is enforced).
    pub(crate) count: usize,
}

/// A pod on this node that at least one policy isolates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IsolatedPod {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) ip: Ipv4Addr,
    /// `Some`: isolated for ingress; the connections it accepts (empty: none).
    pub(crate) ingress: Option<Vec<Allow>>,
    /// `Some`: isolated for egress; the connections it may open (empty: none).
    pub(crate) egress: Option<Vec<Allow>>,
}

/// One allowed kind of connection: from (ingress) or to (egress) `peer`, on `ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Allow {
    pub(crate) peer: Peer,
    /// Empty: every port of every protocol (ICMP included).
    pub(crate) ports: Vec<PortMatch>,
}

/// The other end of an allowed connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// Any address.
    Any,
    /// These pod addresses (never empty).
    Pods(BTreeSet<Ipv4Addr>),
    /// A CIDR without the `except` ranges (disjoint, none containing another).
    Block { cidr: Cidr, except: Vec<Cidr> },
}

/// A protocol, and a port range of it (`None`: every port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PortMatch {
    pub(crate) protocol: Protocol,
    pub(crate) range: Option<(u16, u16)>,
}

/// A pod as the policies see it.
struct PodView<'a> {
    namespace: &'a str,
    name: &'a str,
    ip: Ipv4Addr,
    labels: &'a BTreeMap<String, String>,
    node: Option<&'a str>,
    /// Named container ports: (name, protocol) → number.
    named_ports: HashMap<(&'a str, Protocol), u16>,
}

/// A policy with its selectors parsed.
struct PolicyView<'a> {
    policy: &'a NetworkPolicy,
    namespace: &'a str,
    selector: Selector,
    ingress: bool,
    egress: bool,
}

/// Direction of a rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// Resolve every policy against the pods and namespaces, for the pods on `node_name`.
/// Policies whose selectors do not parse (the API server validates them) select nothing.
pub(crate) fn resolve<P, N, Q>(pods: &[P], namespaces: &[N], policies: &[Q], node_name: &str) -> Policies
where
    P: Borrow<Pod>,
    N: Borrow<Namespace>,
    Q: Borrow<NetworkPolicy>,
{
    let pods: Vec<PodView<'_>> = pods.iter().filter_map(|p| pod_view(p.borrow())).collect();
    let empty = BTreeMap::new();
    let ns_labels: HashMap<&str, &BTreeMap<String, String>> = namespaces
        .iter()
        .map(Borrow::borrow)
        .filter_map(|n: &Namespace| Some((n.metadata.name.as_deref()?, n.metadata.labels.as_ref().unwrap_or(&empty))))
        .collect();
    let views: Vec<PolicyView<'_>> = policies.iter().filter_map(|p| policy_view(p.borrow())).collect();
    let count = policies.len();
    let mut out = Vec::new();
    for pod in pods.iter().filter(|p| p.node == Some(node_name)) {
        let selecting: Vec<&PolicyView<'_>> =
            views.iter().filter(|v| v.namespace == pod.namespace && v.selector.matches(pod.labels)).collect();
        if selecting.is_empty() {
            continue;
        }
        let resolver = Resolver { pods: &pods, ns_labels: &ns_labels };
        let ingress = selecting.iter().any(|v| v.ingress).then(|| {
            selecting
                .iter()
                .filter(|v| v.ingress)
                .flat_map(|v| {
                    v.policy.spec.as_ref().and_then(|s| s.ingress.as_ref()).into_iter().flatten().flat_map(|r| {
                        resolver.rule(v.namespace, pod, Direction::Ingress, r.from.as_deref(), r.ports.as_deref())
                    })
                })
                .collect()
        });
        let egress = selecting.iter().any(|v| v.egress).then(|| {
            selecting
                .iter()
                .filter(|v| v.egress)
                .flat_map(|v| {
                    v.policy.spec.as_ref().and_then(|s| s.egress.as_ref()).into_iter().flatten().flat_map(|r| {
                        resolver.rule(v.namespace, pod, Direction::Egress, r.to.as_deref(), r.ports.as_deref())
                    })
                })
                .collect()
        });
        out.push(IsolatedPod {
            namespace: pod.namespace.to_string(),
            name: pod.name.to_string(),
            ip: pod.ip,
            ingress,
            egress,
        });
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Policies { pods: out, count }
}

fn pod_view(pod: &Pod) -> Option<PodView<'_>> {
    let spec = pod.spec.as_ref()?;
    let status = pod.status.as_ref()?;
    if spec.host_network == Some(true) || matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let ip: Ipv4Addr = status.pod_ip.as_deref()?.parse().ok()?;
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    let mut named_ports = HashMap::new();
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        for p in c.ports.iter().flatten() {
            if let (Some(name), Some(protocol), Ok(number)) =
                (p.name.as_deref(), Protocol::parse(p.protocol.as_deref()), u16::try_from(p.container_port))
            {
                named_ports.entry((name, protocol)).or_insert(number);
            }
        }
    }
    Some(PodView {
        namespace: pod.metadata.namespace.as_deref().unwrap_or("default"),
        name: pod.metadata.name.as_deref().unwrap_or_default(),
        ip,
        labels: pod.metadata.labels.as_ref().unwrap_or(&EMPTY),
        node: spec.node_name.as_deref(),
        named_ports,
    })
}

fn policy_view(policy: &NetworkPolicy) -> Option<PolicyView<'_>> {
    let spec = policy.spec.as_ref()?;
    let selector = selector(spec.pod_selector.as_ref())?;
    let types = spec.policy_types.clone().unwrap_or_else(|| {
        let mut t = vec!["Ingress".to_string()];
        if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
            t.push("Egress".to_string());
        }
        t
    });
    Some(PolicyView {
        policy,
        namespace: policy.metadata.namespace.as_deref().unwrap_or("default"),
        selector,
        ingress: types.iter().any(|t| t == "Ingress"),
        egress: types.iter().any(|t| t == "Egress"),
    })
}

/// A parsed selector; `None` when it does not parse (it then selects nothing). An absent
/// selector is the empty one, which selects everything.
fn selector(s: Option<&LabelSelector>) -> Option<Selector> {
    let Some(s) = s else { return Some(Selector::default()) };
    let json = serde_json::to_value(s).ok()?;
    Selector::from_json(&json).ok()
}

/// Pods and namespaces, for resolving peers.
struct Resolver<'a, 'p> {
    pods: &'a [PodView<'p>],
    ns_labels: &'a HashMap<&'a str, &'a BTreeMap<String, String>>,
}

impl Resolver<'_, '_> {
    /// One rule of a policy in `namespace` that selects `pod`, as the connections it allows.
    fn rule(
        &self,
        namespace: &str,
        pod: &PodView<'_>,
        dir: Direction,
        peers: Option<&[NetworkPolicyPeer]>,
        ports: Option<&[NetworkPolicyPort]>,
    ) -> Vec<Allow> {
        let peers: Vec<Peer> = match peers {
            None | Some([]) => vec![Peer::Any],
            Some(list) => list.iter().filter_map(|p| self.peer(namespace, p)).collect(),
        };
        let ports = ports.unwrap_or_default();
        if ports.is_empty() {
            return peers.into_iter().map(|peer| Allow { peer, ports: Vec::new() }).collect();
        }
        // Numbered ports (and protocol-only entries) are the same for every peer.
        let numbered: Vec<PortMatch> = ports.iter().filter_map(numbered_port).collect();
        let named: Vec<(&str, Protocol)> = ports
            .iter()
            .filter_map(|p| match &p.port {
                Some(IntOrString::String(name)) => Some((name.as_str(), Protocol::parse(p.protocol.as_deref())?)),
                _ => None,
            })
            .collect();
        let mut out = Vec::new();
        if !numbered.is_empty() {
            out.extend(peers.iter().map(|peer| Allow { peer: peer.clone(), ports: numbered.clone() }));
        }
        if named.is_empty() {
            return out;
        }
        match dir {
            // The protected pod's own ports.
            Direction::Ingress => {
                let resolved = resolve_named(pod, &named);
                if !resolved.is_empty() {
                    out.extend(peers.into_iter().map(|peer| Allow { peer, ports: resolved.clone() }));
                }
            }
            // Each destination pod's ports: one allowance per pod that has them.
            Direction::Egress => {
                for target in self.pods {
                    if !peers.iter().any(|p| p.admits(target.ip)) {
                        continue;
                    }
                    let resolved = resolve_named(target, &named);
                    if !resolved.is_empty() {
                        out.push(Allow { peer: Peer::Pods(BTreeSet::from([target.ip])), ports: resolved });
                    }
                }
            }
        }
        out
    }

    /// One `from`/`to` entry; `None` when it matches nothing.
    fn peer(&self, namespace: &str, peer: &NetworkPolicyPeer) -> Option<Peer> {
        if let Some(block) = &peer.ip_block {
            // IPv6 blocks are not enforced (the proxy is IPv4-only).
            let cidr = Cidr::parse(&block.cidr).filter(|_| block.cidr.contains('/'))?;
            let except = block.except.iter().flatten().filter_map(|e| Cidr::parse(e)).collect();
            return Some(Peer::Block { cidr, except: disjoint(except) });
        }
        let pod_sel = selector(peer.pod_selector.as_ref())?;
        let ns_sel = match &peer.namespace_selector {
            Some(s) => Some(selector(Some(s))?),
            None => None,
        };
        let ips: BTreeSet<Ipv4Addr> = self
            .pods
            .iter()
            .filter(|p| match &ns_sel {
                None => p.namespace == namespace,
                Some(sel) => self.ns_labels.get(p.namespace).is_some_and(|l| sel.matches(l)),
            })
            .filter(|p| pod_sel.matches(p.labels))
            .map(|p| p.ip)
            .collect();
        (!ips.is_empty()).then_some(Peer::Pods(ips))
    }
}

impl Peer {
    /// Whether `ip` is one of this peer's addresses.
    fn admits(&self, ip: Ipv4Addr) -> bool {
        match self {
            Peer::Any => true,
            Peer::Pods(ips) => ips.contains(&ip),
            Peer::Block { cidr, except } => cidr.contains(ip) && !except.iter().any(|e| e.contains(ip)),
        }
    }
}

/// A port entry with a number or no port at all; `None` for named ports (and protocols the
/// API does not know).
fn numbered_port(p: &NetworkPolicyPort) -> Option<PortMatch> {
    let protocol = Protocol::parse(p.protocol.as_deref())?;
    let range = match &p.port {
        None => None,
        Some(IntOrString::Int(n)) => {
            let start = u16::try_from(*n).ok()?;
            let end = p.end_port.and_then(|e| u16::try_from(e).ok()).unwrap_or(start).max(start);
            Some((start, end))
        }
        Some(IntOrString::String(_)) => return None,
    };
    Some(PortMatch { protocol, range })
}

/// Named ports as `pod` numbers them; the ones it does not have match nothing.
fn resolve_named(pod: &PodView<'_>, named: &[(&str, Protocol)]) -> Vec<PortMatch> {
    let mut out: Vec<PortMatch> = named
        .iter()
        .filter_map(|(name, protocol)| {
            let n = *pod.named_ports.get(&(*name, *protocol))?;
            Some(PortMatch { protocol: *protocol, range: Some((n, n)) })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `except` ranges with those inside another dropped: nft refuses overlapping intervals in
/// one set.
fn disjoint(mut cidrs: Vec<Cidr>) -> Vec<Cidr> {
    cidrs.sort_by_key(|c| (c.prefix, c.base));
    let mut out: Vec<Cidr> = Vec::new();
    for c in cidrs {
        if !out.iter().any(|o| o.contains(c.base)) {
            out.push(c);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests;
