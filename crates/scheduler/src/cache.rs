//! The scheduler's node-info cache: nodes and the pods bound (or *assumed* bound) to them, kept up
//! to date from the pod and node watches, in the [`Snapshot`] that filters and scores read (the
//! scheduling loop changes it only between cycles, so each cycle sees one consistent view). An
//! assumed pod counts on its node from the moment the scheduler decides, before the bind call
//! returns, so the next cycle cannot double-book the same room; it is forgotten if the bind fails
//! and confirmed when the watch shows the pod bound.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, PodSpec};

use crate::labels::Selector;
use crate::resources::{Resource, pod_requests};

/// `namespace/name`, the key of a pod everywhere in the scheduler.
pub(crate) fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// A pod affinity term, compiled.
#[derive(Clone, Debug)]
pub(crate) struct AffinityTerm {
    /// Namespaces the term applies to (the pod's own when none are listed), without
    /// repeats. Nearly always one or a few: a scan costs less than hashing the pod's
    /// namespace, which happens for every pod of the cluster in each cycle.
    pub(crate) namespaces: Vec<String>,
    /// `namespaceSelector`: `Some(Nothing)` when unset.
    pub(crate) namespace_selector: Selector,
    pub(crate) selector: Selector,
    pub(crate) topology_key: String,
}

impl AffinityTerm {
    fn new(pod: &Pod, term: &PodAffinityTerm) -> AffinityTerm {
        let own_ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let mut namespaces: Vec<String> = term.namespaces.clone().unwrap_or_default();
        namespaces.sort_unstable();
        namespaces.dedup();
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.push(own_ns);
        }
        let mut selector = Selector::new(term.label_selector.as_ref());
        // matchLabelKeys / mismatchLabelKeys: the pod's own values for those keys are ANDed into
        // the selector as `in` / `notin` requirements.
        let label = |key: &String| pod.metadata.labels.as_ref().and_then(|l| l.get(key));
        for key in term.match_label_keys.iter().flatten() {
            if let Some(v) = label(key) {
                selector = selector.with_label(key, v);
            }
        }
        for key in term.mismatch_label_keys.iter().flatten() {
            if let Some(v) = label(key) {
                selector = selector.without_label(key, v);
            }
        }
        AffinityTerm {
            namespaces,
            namespace_selector: Selector::new(term.namespace_selector.as_ref()),
            selector,
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether `pod` is selected by this term. `ns_labels` gives namespace labels for
    /// `namespaceSelector`.
    pub(crate) fn matches(&self, pod: &PodInfo, ns_labels: &HashMap<String, BTreeMap<String, String>>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.namespace)
            || ns_labels.get(&pod.namespace).is_some_and(|l| self.namespace_selector.matches(l))
            || (matches!(&self.namespace_selector, Selector::Requirements(r) if r.is_empty()));
        ns_ok && self.selector.matches(&pod.labels)
    }
}

/// A weighted (preferred) pod affinity term.
#[derive(Clone, Debug)]
pub(crate) struct WeightedTerm {
    pub(crate) term: AffinityTerm,
    pub(crate) weight: i64,
}

/// A host port a pod wants or holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HostPort {
    pub(crate) ip: String,
    pub(crate) protocol: String,
    pub(crate) port: i32,
}

impl HostPort {
    /// Upstream `HostPortInfo.CheckConflict`: same protocol and port, and same IP or either is
    /// the wildcard.
    pub(crate) fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A pod with everything the plugins need precomputed once.
#[derive(Clone, Debug)]
pub(crate) struct PodInfo {
    pub(crate) pod: Arc<Pod>,
    pub(crate) key: String,
    pub(crate) namespace: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) priority: i32,
    pub(crate) terminating: bool,
    pub(crate) requests: Resource,
    /// Requests with the scoring defaults for containers that ask for no cpu / memory.
    pub(crate) non_zero_requests: Resource,
    pub(crate) host_ports: Vec<HostPort>,
    pub(crate) required_affinity: Vec<AffinityTerm>,
    pub(crate) required_anti_affinity: Vec<AffinityTerm>,
    pub(crate) preferred_affinity: Vec<WeightedTerm>,
    pub(crate) preferred_anti_affinity: Vec<WeightedTerm>,
    /// For pods without spread constraints: the selector of their Services and controller
    /// (upstream `DefaultSelector`), which turns on the system default spreading. Set by the
    /// scheduler loop for the pod being scheduled only.
    pub(crate) default_spread_selector: Option<Selector>,
}

impl PodInfo {
    /// Any affinity or anti-affinity term, required or preferred.
    pub(crate) fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    pub(crate) fn new(pod: Arc<Pod>) -> PodInfo {
        // Borrowed, not copied: a pod's spec is most of it, and every pod is read here at least
        // twice (scheduled, then confirmed by the watch).
        let no_spec = PodSpec::default();
        let spec = pod.spec.as_ref().unwrap_or(&no_spec);
        let mut host_ports = Vec::new();
        // Only regular containers' host ports count, as upstream's getContainerPorts.
        for c in &spec.containers {
            for p in c.ports.iter().flatten() {
                if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                    host_ports.push(HostPort {
                        ip: p.host_ip.clone().filter(|ip| !ip.is_empty()).unwrap_or_else(|| "0.0.0.0".into()),
                        protocol: p.protocol.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "TCP".into()),
                        port: hp,
                    });
                }
            }
        }
        let affinity = spec.affinity.as_ref();
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms.into_iter().flatten().map(|t| AffinityTerm::new(&pod, t)).collect()
        };
        let preferred = |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|t| WeightedTerm {
                    term: AffinityTerm::new(&pod, &t.pod_affinity_term),
                    weight: i64::from(t.weight),
                })
                .collect::<Vec<_>>()
        };
        PodInfo {
            key: pod_key(&pod),
            namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            priority: spec.priority.unwrap_or(0),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            host_ports,
            required_affinity: required(
                pa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
            ),
            required_anti_affinity: required(
                paa.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
            ),
            preferred_affinity: preferred(
                pa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
            ),
            preferred_anti_affinity: preferred(
                paa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
            ),
            default_spread_selector: None,
            pod,
        }
    }
}

/// One node with the pods on it and their aggregate requests.
///
/// `repr(C)` keeps the fields in this order: what every filter of every pod reads
/// (`unschedulable`, the taints, the resource sums, the pod count) comes first, so that a
/// node costs one or two cache misses in the filter loop, not one per field read (the nodes
/// are scattered on the heap, and a cycle visits hundreds of them).
#[derive(Clone, Debug)]
#[repr(C)]
pub(crate) struct NodeInfo {
    /// `spec.unschedulable` and `spec.taints`, copied here so that the filters read them
    /// without following the pointer to the `Node` (a cache miss per node at 5,000 nodes).
    pub(crate) unschedulable: bool,
    taints: Vec<k8s_openapi::api::core::v1::Taint>,
    pub(crate) pods: Vec<Arc<PodInfo>>,
    pub(crate) allocatable: Resource,
    pub(crate) requested: Resource,
    pub(crate) non_zero_requested: Resource,
    pub(crate) used_ports: Vec<HostPort>,
    /// Pods here with any affinity or anti-affinity term (upstream `PodsWithAffinity`): only
    /// nodes with some need be visited when the incoming pod has no terms of its own.
    pub(crate) pods_with_affinity: usize,
    /// Pods here with required anti-affinity (upstream `PodsWithRequiredAntiAffinity`).
    pub(crate) pods_with_required_anti_affinity: usize,
    pub(crate) name: String,
    pub(crate) node: Arc<Node>,
    pub(crate) labels: Arc<BTreeMap<String, String>>,
    /// Normalized image name → size in bytes, from `status.images`. Looked up for every node
    /// scored, so with a fast hash rather than SipHash (the names come from nodes' status).
    pub(crate) images: Arc<HashMap<String, i64, foldhash::fast::RandomState>>,
}

impl NodeInfo {
    pub(crate) fn new(node: Arc<Node>) -> NodeInfo {
        let allocatable =
            node.status.as_ref().and_then(|s| s.allocatable.as_ref()).map(Resource::from_map).unwrap_or_default();
        let mut images = HashMap::default();
        for img in node.status.as_ref().and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in img.names.iter().flatten() {
                images.insert(normalized_image_name(name), img.size_bytes.unwrap_or(0));
            }
        }
        let spec = node.spec.as_ref();
        NodeInfo {
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            taints: spec.and_then(|s| s.taints.clone()).unwrap_or_default(),
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: Arc::new(node.metadata.labels.clone().unwrap_or_default()),
            node,
            pods: Vec::new(),
            allocatable,
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            used_ports: Vec::new(),
            images: Arc::new(images),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
        }
    }

    pub(crate) fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.pods_with_affinity += usize::from(pod.has_affinity());
        self.pods_with_required_anti_affinity += usize::from(!pod.required_anti_affinity.is_empty());
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        self.pods.push(pod);
    }

    /// Removes a pod by key (used by the preemption dry run).
    pub(crate) fn remove_pod(&mut self, key: &str) {
        if let Some(i) = self.pods.iter().position(|p| p.key == key) {
            let pod = self.pods.remove(i);
            self.pods_with_affinity -= usize::from(pod.has_affinity());
            self.pods_with_required_anti_affinity -= usize::from(!pod.required_anti_affinity.is_empty());
            self.requested.sub(&pod.requests);
            self.non_zero_requested.sub(&pod.non_zero_requests);
            for hp in &pod.host_ports {
                if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                    self.used_ports.remove(j);
                }
            }
        }
    }

    pub(crate) fn taints(&self) -> &[k8s_openapi::api::core::v1::Taint] {
        &self.taints
    }
}

/// What the plain fit check and the resource scores read of one node, copied into one array
/// that the snapshot keeps beside the node infos (same index). A cycle for a pod without
/// constraints filters and scores hundreds of nodes from it, reading memory in order, instead
/// of following each node's pointer to an info somewhere on the heap: at 5,000 nodes, those
/// cache misses were the biggest cost of such a cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeFit {
    /// Neither cordoned nor tainted: only its resources can keep a plain pod off the node.
    /// Other nodes go through the filters.
    pub(crate) open: bool,
    /// Pods on the node (bound and assumed).
    pub(crate) pods: i64,
    pub(crate) allowed_pods: i64,
    /// Allocatable and requested cpu (millicores), memory and ephemeral storage.
    pub(crate) allocatable: [i64; 3],
    pub(crate) requested: [i64; 3],
    /// Requested cpu and memory with the scoring defaults.
    pub(crate) non_zero_requested: [i64; 2],
}

impl NodeFit {
    pub(crate) fn of(node: &NodeInfo) -> NodeFit {
        let (a, r, z) = (&node.allocatable, &node.requested, &node.non_zero_requested);
        NodeFit {
            open: !node.unschedulable && node.taints.is_empty(),
            pods: node.pods.len() as i64,
            allowed_pods: a.allowed_pods,
            allocatable: [a.milli_cpu, a.memory, a.ephemeral_storage],
            requested: [r.milli_cpu, r.memory, r.ephemeral_storage],
            non_zero_requested: [z.milli_cpu, z.memory],
        }
    }
}

/// Upstream `normalizedImageName`: an image without a tag or digest means `:latest`.
pub(crate) fn normalized_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') { name.to_string() } else { format!("{name}:latest") }
}

/// The view one scheduling cycle works on. The cache keeps it up to date in place as pods
/// and nodes change (upstream's generation-based `UpdateSnapshot`, without the copy): the
/// scheduling loop is the only writer and runs cycles between changes, so a cycle borrows it
/// instead of copying 5,000 node pointers. A preemption dry run clones it; node infos are
/// shared (`Arc`) and copied only when changed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    /// Nodes in a stable order (the order they were first seen in).
    pub(crate) nodes: Vec<Arc<NodeInfo>>,
    /// Normalized image name → number of nodes that have it (ImageLocality spreads by this).
    pub(crate) image_nodes: Arc<HashMap<String, usize>>,
    /// Namespace labels for `namespaceSelector` in affinity terms (may be empty).
    pub(crate) namespace_labels: Arc<HashMap<String, BTreeMap<String, String>>>,
    /// Pending pods nominated to a node by an earlier preemption, by node name: they hold their
    /// room against pods of lower or equal priority.
    pub(crate) nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    /// Indexes into `nodes` of nodes with pods that have affinity terms (upstream
    /// `HavePodsWithAffinityNodeInfoList`): a pod without terms of its own visits only these.
    pub(crate) with_affinity: BTreeSet<usize>,
    /// Indexes of nodes with pods that have required anti-affinity terms (upstream
    /// `HavePodsWithRequiredAntiAffinityNodeInfoList`).
    pub(crate) with_required_anti_affinity: BTreeSet<usize>,
    /// [`NodeFit`] of each node, same order as `nodes`; empty in a preemption trial (see
    /// [`Snapshot::trial`]), which only runs the filters. Shared by clones until changed.
    pub(crate) fits: Arc<Vec<NodeFit>>,
}

impl Snapshot {
    /// A snapshot of these nodes (tests build their own).
    #[cfg(test)]
    pub(crate) fn new(nodes: Vec<NodeInfo>) -> Snapshot {
        let mut image_nodes: HashMap<String, usize> = HashMap::new();
        for n in &nodes {
            for img in n.images.keys() {
                *image_nodes.entry(img.clone()).or_default() += 1;
            }
        }
        let mut snapshot = Snapshot {
            fits: Arc::new(nodes.iter().map(NodeFit::of).collect()),
            nodes: nodes.into_iter().map(Arc::new).collect(),
            image_nodes: Arc::new(image_nodes),
            ..Snapshot::default()
        };
        snapshot.index_affinity();
        snapshot
    }

    /// Every node if `all`, else the nodes in `list` (one of the affinity lists), in node order.
    pub(crate) fn nodes_in<'a>(
        &'a self,
        all: bool,
        list: &'a BTreeSet<usize>,
    ) -> Box<dyn Iterator<Item = &'a NodeInfo> + 'a> {
        if all {
            Box::new(self.nodes.iter().map(AsRef::as_ref))
        } else {
            Box::new(list.iter().map(|&i| self.nodes[i].as_ref()))
        }
    }

    /// A copy to try changes on (the preemption dry run), without the node fits: a trial
    /// only runs the filters, and would otherwise copy the whole array on its first change.
    pub(crate) fn trial(&self) -> Snapshot {
        Snapshot { fits: Arc::default(), ..self.clone() }
    }

    /// Whether `fits` holds every node's (not in a trial).
    pub(crate) fn has_fits(&self) -> bool {
        self.fits.len() == self.nodes.len()
    }

    /// Changes node `i`'s info (copying it first if another snapshot shares it), keeping the
    /// affinity lists and the node's fit right.
    pub(crate) fn change_node(&mut self, i: usize, change: impl FnOnce(&mut NodeInfo)) {
        change(Arc::make_mut(&mut self.nodes[i]));
        self.node_changed(i);
    }

    /// Puts `info` at index `at` (replacing the node there), or after the last node; returns
    /// its index.
    fn put_node(&mut self, at: Option<usize>, info: NodeInfo) -> usize {
        let i = match at {
            Some(i) => {
                self.nodes[i] = Arc::new(info);
                i
            }
            None => {
                self.nodes.push(Arc::new(info));
                if self.fits.len() + 1 == self.nodes.len() {
                    Arc::make_mut(&mut self.fits).push(NodeFit::default());
                }
                self.nodes.len() - 1
            }
        };
        self.node_changed(i);
        i
    }

    /// Removes node `i` (the indexes of the nodes after it shift down).
    fn remove_node(&mut self, i: usize) {
        self.nodes.remove(i);
        if self.fits.len() == self.nodes.len() + 1 {
            Arc::make_mut(&mut self.fits).remove(i);
        }
        self.index_affinity();
    }

    /// Brings node `i`'s entries in the affinity lists and `fits` up to date.
    fn node_changed(&mut self, i: usize) {
        self.index_node(i);
        if self.has_fits() {
            let fit = NodeFit::of(&self.nodes[i]);
            if self.fits[i] != fit {
                Arc::make_mut(&mut self.fits)[i] = fit;
            }
        }
    }

    /// Recomputes both affinity lists (after nodes were added or removed).
    fn index_affinity(&mut self) {
        self.with_affinity.clear();
        self.with_required_anti_affinity.clear();
        for i in 0..self.nodes.len() {
            self.index_node(i);
        }
    }

    /// Puts node `i` in (or takes it out of) the affinity lists.
    fn index_node(&mut self, i: usize) {
        let node = &self.nodes[i];
        for (set, has) in [
            (&mut self.with_affinity, node.pods_with_affinity > 0),
            (&mut self.with_required_anti_affinity, node.pods_with_required_anti_affinity > 0),
        ] {
            if has {
                set.insert(i);
            } else {
                set.remove(&i);
            }
        }
    }
}

/// The live cache, kept incrementally: every node's info (with its pods) is updated in place
/// as pods and nodes change, in the snapshot itself.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    /// Node infos (with the pods bound or assumed on each), image counts, namespace labels and
    /// nominations, as cycles see them.
    snap: Snapshot,
    /// Node name → index in `snap.nodes`.
    index: HashMap<String, usize>,
    /// Bound pods by key, with their node name (also pods of nodes not seen yet).
    pods: HashMap<String, (String, Arc<PodInfo>)>,
    /// Keys of pods that are assumed (decided, bind not yet observed).
    assumed: HashSet<String>,
    /// Pending pods with `status.nominatedNodeName`: key → (node, pod).
    nominated: HashMap<String, (String, Arc<PodInfo>)>,
}

/// Whether a node update leaves everything the scheduler reads of the node as it was (status
/// heartbeats do): labels, spec (taints, unschedulable), allocatable and images.
fn same_for_scheduling(old: &Node, new: &Node) -> bool {
    let (o, n) = (old.status.as_ref(), new.status.as_ref());
    old.metadata.labels == new.metadata.labels
        && old.spec == new.spec
        && o.map(|s| &s.allocatable) == n.map(|s| &s.allocatable)
        && o.map(|s| &s.images) == n.map(|s| &s.images)
}

impl Cache {
    /// Adds or updates a node; returns whether that can change scheduling decisions (a new
    /// node, or one whose labels, spec, allocatable or images changed; heartbeats cannot).
    pub(crate) fn set_node(&mut self, node: Arc<Node>) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let at = self.index.get(&name).copied();
        if let Some(i) = at
            && same_for_scheduling(&self.snap.nodes[i].node, &node)
        {
            Arc::make_mut(&mut self.snap.nodes[i]).node = node;
            return false;
        }
        let mut info = NodeInfo::new(node);
        match at {
            Some(i) => self.snap.nodes[i].pods.iter().for_each(|p| info.add_pod(p.clone())),
            None => {
                // Pods the watch showed bound here before the node itself.
                let mut here: Vec<&Arc<PodInfo>> =
                    self.pods.values().filter(|(n, _)| *n == name).map(|(_, p)| p).collect();
                here.sort_by(|a, b| a.key.cmp(&b.key));
                here.into_iter().for_each(|p| info.add_pod(p.clone()));
            }
        }
        self.count_images(at, -1);
        let i = self.snap.put_node(at, info);
        if at.is_none() {
            self.index.insert(name, i);
        }
        self.count_images(Some(i), 1);
        true
    }

    pub(crate) fn remove_node(&mut self, name: &str) {
        if let Some(i) = self.index.get(name).copied() {
            self.count_images(Some(i), -1);
            self.snap.remove_node(i);
            self.reindex();
        }
    }

    /// Rebuilds the name index after nodes moved (a node was removed).
    fn reindex(&mut self) {
        self.index = self.snap.nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
    }

    fn count_images(&mut self, at: Option<usize>, delta: isize) {
        let Some(i) = at else { return };
        let info = &self.snap.nodes[i];
        if info.images.is_empty() {
            return;
        }
        let counts = Arc::make_mut(&mut self.snap.image_nodes);
        for img in info.images.keys() {
            let n = counts.entry(img.clone()).or_default();
            *n = n.saturating_add_signed(delta);
            if *n == 0 {
                counts.remove(img);
            }
        }
    }

    pub(crate) fn node_names(&self) -> Vec<String> {
        self.snap.nodes.iter().map(|n| n.name.clone()).collect()
    }

    /// Changes node `name`'s info, if the node is known.
    fn update_node(&mut self, name: &str, change: impl FnOnce(&mut NodeInfo)) {
        if let Some(&i) = self.index.get(name) {
            self.snap.change_node(i, change);
        }
    }

    /// Puts `info` on `node` (replacing the pod's earlier version, wherever it was).
    fn put_pod(&mut self, node: String, info: Arc<PodInfo>) {
        self.take_pod(&info.key);
        self.update_node(&node, |n| n.add_pod(info.clone()));
        self.pods.insert(info.key.clone(), (node, info));
    }

    /// Removes a pod from the cache and its node; returns whether it was there.
    fn take_pod(&mut self, key: &str) -> bool {
        let Some((node, _)) = self.pods.remove(key) else { return false };
        self.update_node(&node, |n| n.remove_pod(key));
        true
    }

    /// Adds or updates a pod the API shows as bound; this confirms an assumed pod.
    pub(crate) fn set_bound_pod(&mut self, pod: Arc<Pod>) {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else { return };
        let info = PodInfo::new(pod);
        self.assumed.remove(&info.key);
        self.put_pod(node, Arc::new(info));
    }

    /// Removes a pod (deleted or finished); returns whether it was known.
    pub(crate) fn remove_pod(&mut self, key: &str) -> bool {
        self.assumed.remove(key);
        self.take_pod(key)
    }

    /// Counts the pod `info` was made for on `node` before the bind is confirmed. The pod is
    /// kept as it was scheduled (without `spec.nodeName`): the cache files pods by the node
    /// it records beside them, and nothing reads a placed pod's own `nodeName`.
    pub(crate) fn assume(&mut self, mut info: PodInfo, node: &str) {
        info.default_spread_selector = None;
        self.assumed.insert(info.key.clone());
        self.put_pod(node.to_string(), Arc::new(info));
    }

    /// Undoes [`Cache::assume`] after a failed bind (no-op if the watch already confirmed it).
    pub(crate) fn forget(&mut self, key: &str) {
        if self.assumed.remove(key) {
            self.take_pod(key);
        }
    }

    pub(crate) fn is_assumed(&self, key: &str) -> bool {
        self.assumed.contains(key)
    }

    pub(crate) fn set_namespace_labels(&mut self, name: String, labels: BTreeMap<String, String>) {
        if self.snap.namespace_labels.get(&name) != Some(&labels) {
            Arc::make_mut(&mut self.snap.namespace_labels).insert(name, labels);
        }
    }

    pub(crate) fn remove_namespace(&mut self, name: &str) {
        if self.snap.namespace_labels.contains_key(name) {
            Arc::make_mut(&mut self.snap.namespace_labels).remove(name);
        }
    }

    pub(crate) fn namespace_names(&self) -> Vec<String> {
        self.snap.namespace_labels.keys().cloned().collect()
    }

    /// Records (or clears) a pending pod's nomination from its `status.nominatedNodeName`.
    pub(crate) fn set_pending_pod(&mut self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        match pod.status.as_ref().and_then(|s| s.nominated_node_name.clone()).filter(|n| !n.is_empty()) {
            Some(node) => {
                self.nominated.insert(key, (node, Arc::new(PodInfo::new(pod))));
                self.index_nominated();
            }
            None => self.remove_pending_pod(&key),
        }
    }

    /// The pod is no longer pending (bound, deleted, or not ours).
    pub(crate) fn remove_pending_pod(&mut self, key: &str) {
        if self.nominated.remove(key).is_some() {
            self.index_nominated();
        }
    }

    /// Rebuilds the snapshot's nominations by node, each node's in pod-key order.
    fn index_nominated(&mut self) {
        let mut nominated: Vec<&(String, Arc<PodInfo>)> = self.nominated.values().collect();
        nominated.sort_by(|a, b| a.1.key.cmp(&b.1.key));
        self.snap.nominated.clear();
        for (node, info) in nominated {
            self.snap.nominated.entry(node.clone()).or_default().push(info.clone());
        }
    }

    /// The current view, for one cycle.
    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snap
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                           "images": [{"names": ["docker.io/library/nginx:1.27", "nginx"], "sizeBytes": 1000}]}
            }))
            .unwrap(),
        )
    }

    /// The snapshot's node fits are those of its node infos.
    fn fits_in_step(snap: &Snapshot) {
        let want: Vec<NodeFit> = snap.nodes.iter().map(|n| NodeFit::of(n)).collect();
        assert_eq!(*snap.fits, want);
    }

    fn pod(name: &str, node: Option<&str>, cpu: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}},
                     "ports": [{"containerPort": 80, "hostPort": 8080}]}]}
        }))
        .unwrap()
    }

    #[test]
    fn assume_confirm_forget() {
        let mut cache = Cache::default();
        cache.set_node(node("n1"));
        fits_in_step(cache.snapshot());
        cache.set_bound_pod(Arc::new(pod("a", Some("n1"), "1")));
        fits_in_step(cache.snapshot());
        cache.assume(PodInfo::new(Arc::new(pod("b", None, "2"))), "n1");
        fits_in_step(cache.snapshot());
        let snap = cache.snapshot();
        assert_eq!(snap.nodes[0].requested.milli_cpu, 3000);
        assert_eq!(snap.nodes[0].pods.len(), 2);
        assert_eq!(snap.nodes[0].used_ports.len(), 2);
        assert_eq!(snap.nodes[0].allocatable.allowed_pods, 110);
        assert_eq!(snap.image_nodes.get("nginx:latest"), Some(&1));
        assert_eq!(snap.image_nodes.get("docker.io/library/nginx:1.27"), Some(&1));
        assert!(cache.is_assumed("default/b"));
        cache.forget("default/b");
        fits_in_step(cache.snapshot());
        assert_eq!(cache.snapshot().nodes[0].requested.milli_cpu, 1000);
        // A confirmed pod is not forgotten by a late bind failure report.
        cache.assume(PodInfo::new(Arc::new(pod("c", None, "1"))), "n1");
        fits_in_step(cache.snapshot());
        cache.set_bound_pod(Arc::new(pod("c", Some("n1"), "1")));
        fits_in_step(cache.snapshot());
        cache.forget("default/c");
        fits_in_step(cache.snapshot());
        assert_eq!(cache.snapshot().nodes[0].requested.milli_cpu, 2000);
        // Pods on unknown nodes are kept but not shown.
        cache.set_bound_pod(Arc::new(pod("d", Some("n2"), "1")));
        fits_in_step(cache.snapshot());
        assert_eq!(cache.snapshot().nodes.len(), 1);
        cache.set_node(node("n2"));
        fits_in_step(cache.snapshot());
        assert_eq!(cache.snapshot().nodes[1].requested.milli_cpu, 1000);
        assert!(cache.remove_pod("default/d"));
        fits_in_step(cache.snapshot());
        assert!(!cache.remove_pod("default/d"));
        fits_in_step(cache.snapshot());
    }

    #[test]
    fn snapshots_are_isolated_from_later_changes() {
        let mut cache = Cache::default();
        cache.set_node(node("n1"));
        fits_in_step(cache.snapshot());
        cache.set_node(node("n2"));
        fits_in_step(cache.snapshot());
        cache.set_bound_pod(Arc::new(pod("a", Some("n1"), "1")));
        fits_in_step(cache.snapshot());
        let before = cache.snapshot().clone();
        cache.assume(PodInfo::new(Arc::new(pod("b", None, "2"))), "n1");
        fits_in_step(cache.snapshot());
        cache.remove_node("n2");
        fits_in_step(cache.snapshot());
        let after = cache.snapshot().clone();
        assert_eq!((before.nodes.len(), before.nodes[0].requested.milli_cpu), (2, 1000));
        assert_eq!((after.nodes.len(), after.nodes[0].requested.milli_cpu), (1, 3000));
        // Unchanged nodes are shared, not copied.
        let again = cache.snapshot();
        assert!(Arc::ptr_eq(&after.nodes[0], &again.nodes[0]));
        fits_in_step(&before);
        fits_in_step(&after);
        // A trial carries no fits and changes nothing of the snapshot it came from.
        let mut trial = again.trial();
        trial.change_node(0, |n| n.remove_pod("default/a"));
        assert!(!trial.has_fits() && trial.fits.is_empty());
        assert_eq!((trial.nodes[0].requested.milli_cpu, again.nodes[0].requested.milli_cpu), (2000, 3000));
        fits_in_step(cache.snapshot());
        assert_eq!(cache.snapshot().fits[0].requested[0], 3000);
        assert_eq!(before.image_nodes.get("nginx:latest"), Some(&2));
        assert_eq!(after.image_nodes.get("nginx:latest"), Some(&1));

        // A heartbeat (status conditions only) keeps the node's pods and parsed info; a
        // change the scheduler reads rebuilds the info, pods included.
        let mut beat = (*node("n1")).clone();
        beat.status.get_or_insert_default().conditions = Some(vec![]);
        assert!(!cache.set_node(Arc::new(beat)), "a heartbeat changes nothing the scheduler reads");
        fits_in_step(cache.snapshot());
        assert_eq!(cache.snapshot().nodes[0].pods.len(), 2);
        let mut relabelled = (*node("n1")).clone();
        relabelled.metadata.labels = Some([("zone".to_string(), "a".to_string())].into());
        assert!(cache.set_node(Arc::new(relabelled)));
        fits_in_step(cache.snapshot());
        let snap = cache.snapshot();
        assert!(snap.fits[0].open);
        assert_eq!(snap.nodes[0].labels.get("zone").map(String::as_str), Some("a"));
        assert_eq!((snap.nodes[0].pods.len(), snap.nodes[0].requested.milli_cpu), (2, 3000));
        // Cordoning closes the node's fit; the pods stay counted.
        let mut cordoned = (*node("n1")).clone();
        cordoned.spec.get_or_insert_default().unschedulable = Some(true);
        assert!(cache.set_node(Arc::new(cordoned)));
        fits_in_step(cache.snapshot());
        assert!(!cache.snapshot().fits[0].open);
        assert_eq!(cache.snapshot().fits[0].pods, 2);
        // Moving a pod (a re-bind after a failed one) takes it off the old node.
        cache.set_node(node("n2"));
        fits_in_step(cache.snapshot());
        cache.set_bound_pod(Arc::new(pod("b", Some("n2"), "2")));
        fits_in_step(cache.snapshot());
        let snap = cache.snapshot();
        assert_eq!((snap.nodes[0].requested.milli_cpu, snap.nodes[1].requested.milli_cpu), (1000, 2000));
    }

    #[test]
    fn image_names() {
        assert_eq!(normalized_image_name("nginx"), "nginx:latest");
        assert_eq!(normalized_image_name("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(normalized_image_name("a/b:1"), "a/b:1");
        assert_eq!(normalized_image_name("a/b@sha256:00"), "a/b@sha256:00");
    }
}
