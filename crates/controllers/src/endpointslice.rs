//! Endpoints for Services with a selector: upstream's EndpointSlice controller and, from the
//! same computation, the legacy Endpoints object `kubectl describe service` and older clients
//! read (upstream's endpoints controller).
//!
//! For each Service the pods it selects become endpoints: the pod's IP, `nodeName`, zone,
//! `targetRef`, `hostname` (headless Services whose name is the pod's `subdomain`), and the
//! conditions upstream derives — `serving` = pod Ready, `terminating` = being deleted,
//! `ready` = serving and not terminating (or always, with `publishNotReadyAddresses`). Named
//! target ports resolve per pod, so pods with different port numbers land in different slices,
//! at most 100 endpoints each. Slices carry `kubernetes.io/service-name`, upstream's
//! `managed-by`, and the Service as controlling owner; existing slices are updated in place,
//! surplus ones deleted. Services without a selector (user-managed slices, the API server's
//! `kubernetes` Service) and ExternalName Services are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Node, ObjectReference, Pod, Service,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint as SliceEndpoint, EndpointConditions, EndpointHints, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::{Error, Key};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Upstream's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Upstream's `ShouldPodBeInEndpoints`: a pod with an IP that can still serve.
fn pod_serves(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    if status.and_then(|s| s.pod_ip.as_deref()).unwrap_or_default().is_empty() {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();
    match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always") {
        "Never" => phase != "Failed" && phase != "Succeeded",
        "OnFailure" => phase != "Succeeded",
        _ => true,
    }
}

/// The port a Service port reaches on `pod`: the number, or the named container port.
fn target_port(sp: &k8s_openapi::api::core::v1::ServicePort, pod: &Pod) -> Option<i32> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => match name.parse::<i32>() {
            Ok(n) => Some(n),
            Err(_) => {
                let protocol = sp.protocol.as_deref().unwrap_or("TCP");
                pod.spec.as_ref()?.containers.iter().flat_map(|c| c.ports.iter().flatten()).find_map(|p| {
                    (p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == protocol)
                        .then_some(p.container_port)
                })
            }
        },
    }
}

/// One pod as an endpoint, with the ports it serves.
#[derive(Clone, Debug, PartialEq)]
struct PodEndpoint {
    ip: String,
    ready: bool,
    serving: bool,
    terminating: bool,
    node: Option<String>,
    zone: Option<String>,
    hostname: Option<String>,
    target: ObjectReference,
}

/// What the controller wants for a Service.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Desired {
    /// Slice contents: ports and endpoints, in a stable order.
    pub slices: Vec<(Vec<SlicePort>, Vec<SliceEndpoint>)>,
    pub subsets: Vec<EndpointSubset>,
}

fn slice_ports(svc: &Service, resolved: &[Option<i32>]) -> Vec<SlicePort> {
    let ports = svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    ports
        .iter()
        .zip(resolved)
        .filter_map(|(sp, port)| {
            Some(SlicePort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some((*port)?),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The endpoints of `svc` among `pods` (all in its namespace), zones from `nodes`.
pub(crate) fn desired(svc: &Service, pods: &[Arc<Pod>], nodes: &BTreeMap<String, Option<String>>) -> Desired {
    let Some(spec) = svc.spec.as_ref() else { return Desired::default() };
    let Some(selector) = spec.selector.as_ref() else { return Desired::default() };
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let svc_name = svc.name_any();
    let ports = spec.ports.clone().unwrap_or_default();
    // Group pods by the ports they resolve to (a named port may differ per pod).
    let mut groups: BTreeMap<Vec<Option<i32>>, Vec<PodEndpoint>> = BTreeMap::new();
    let mut sorted: Vec<&Arc<Pod>> = pods.iter().collect();
    sorted.sort_by_key(|p| p.name_any());
    for pod in sorted {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) || !pod_serves(pod, true) {
            continue;
        }
        let serving = crate::pods::is_ready(pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let ready = publish_not_ready || (serving && !terminating);
        let pspec = pod.spec.as_ref();
        let node = pspec.and_then(|s| s.node_name.clone());
        let hostname = pspec
            .filter(|s| headless && s.subdomain.as_deref() == Some(svc_name.as_str()))
            .and_then(|s| s.hostname.clone());
        let ep = PodEndpoint {
            ip: pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
            ready,
            serving,
            terminating,
            zone: node.as_ref().and_then(|n| nodes.get(n).cloned().flatten()),
            node,
            hostname,
            target: ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.namespace(),
                name: Some(pod.name_any()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
        };
        let resolved: Vec<Option<i32>> = ports.iter().map(|sp| target_port(sp, pod)).collect();
        groups.entry(resolved).or_default().push(ep);
    }
    let mut out = Desired::default();
    for (resolved, eps) in &groups {
        let sports = slice_ports(svc, resolved);
        for chunk in eps.chunks(MAX_ENDPOINTS_PER_SLICE) {
            let endpoints = chunk
                .iter()
                .map(|e| SliceEndpoint {
                    addresses: vec![e.ip.clone()],
                    conditions: Some(EndpointConditions {
                        ready: Some(e.ready),
                        serving: Some(e.serving),
                        terminating: Some(e.terminating),
                    }),
                    hostname: e.hostname.clone(),
                    node_name: e.node.clone(),
                    zone: e.zone.clone(),
                    target_ref: Some(e.target.clone()),
                    hints: None::<EndpointHints>,
                    ..Default::default()
                })
                .collect();
            out.slices.push((sports.clone(), endpoints));
        }
        // Endpoints (legacy): terminating pods are left out; not-ready ones are listed apart.
        let address = |e: &PodEndpoint| EndpointAddress {
            ip: e.ip.clone(),
            hostname: e.hostname.clone(),
            node_name: e.node.clone(),
            target_ref: Some(e.target.clone()),
        };
        let live: Vec<&PodEndpoint> = eps.iter().filter(|e| !e.terminating).collect();
        if live.is_empty() {
            continue;
        }
        let ready: Vec<EndpointAddress> = live.iter().filter(|e| e.ready).map(|e| address(e)).collect();
        let not_ready: Vec<EndpointAddress> = live.iter().filter(|e| !e.ready).map(|e| address(e)).collect();
        let eports: Vec<EndpointPort> = sports
            .iter()
            .map(|p| EndpointPort {
                name: p.name.clone().filter(|n| !n.is_empty()),
                port: p.port.unwrap_or_default(),
                protocol: p.protocol.clone(),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        out.subsets.push(EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!eports.is_empty()).then_some(eports),
        });
    }
    out
}

/// Labels of the objects written for `svc`: the Service's own (as upstream copies them),
/// the service name, manager and headless marker.
fn labels_for(svc: &Service, slice: bool) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.retain(|k, _| k != SERVICE_NAME_LABEL && k != MANAGED_BY_LABEL);
    if slice {
        labels.insert(SERVICE_NAME_LABEL.into(), svc.name_any());
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    }
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

fn owner(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.name_any(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn selects(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| s.selector.is_some() && s.type_.as_deref() != Some("ExternalName"))
}

pub(crate) struct EndpointSliceController {
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    slices: Informer<EndpointSlice>,
    endpoints: Informer<Endpoints>,
    queue: WorkQueue<Key>,
}

impl EndpointSliceController {
    pub(crate) fn new(
        client: kube::Client,
        services: Informer<Service>,
        pods: Informer<Pod>,
        nodes: Informer<Node>,
    ) -> Arc<Self> {
        let slices = Informer::with_config(
            Api::all(client.clone()),
            watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
        );
        let endpoints = Informer::new(Api::all(client.clone()));
        let c = Arc::new(EndpointSliceController {
            client,
            services: services.clone(),
            pods: pods.clone(),
            nodes,
            slices: slices.clone(),
            endpoints: endpoints.clone(),
            queue: WorkQueue::new(),
        });
        let q = c.queue.clone();
        services.on_change(move |ch| q.add(Key::of(ch.object())));
        // A pod change may concern any Service of its namespace (its labels may have just
        // stopped matching one): look at them all; syncs are cheap and deduplicated.
        let weak = Arc::downgrade(&c);
        pods.on_change(move |ch| {
            let Some(c) = weak.upgrade() else { return };
            let ns = ch.object().namespace().unwrap_or_default();
            for s in c.services.in_namespace(&ns) {
                if selects(&s) {
                    c.queue.add(Key::of(s.as_ref()));
                }
            }
        });
        let q = c.queue.clone();
        slices.on_change(move |ch| {
            let s = ch.object();
            if let Some(name) = s.labels().get(SERVICE_NAME_LABEL) {
                q.add(Key::new(&s.namespace().unwrap_or_default(), name));
            }
        });
        let q = c.queue.clone();
        endpoints.on_change(move |ch| q.add(Key::of(ch.object())));
        c
    }

    pub(crate) async fn run(self: Arc<Self>, workers: usize, shutdown: CancellationToken) {
        self.slices.start(shutdown.clone());
        self.endpoints.start(shutdown.clone());
        self.services.synced().await;
        self.pods.synced().await;
        self.slices.synced().await;
        self.endpoints.synced().await;
        crate::run_workers("endpointslice", self.queue.clone(), workers, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let svc = self.services.store().get(&ObjectRef::new(&key.name).within(&key.namespace));
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .in_namespace(&key.namespace)
            .into_iter()
            .filter(|s| s.labels().get(SERVICE_NAME_LABEL) == Some(&key.name))
            .collect();
        let slices: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &key.namespace);
        let Some(svc) = svc else {
            // Deleted: its slices go (the garbage collector would take them too, through
            // their owner reference) and its Endpoints, as upstream's endpoints controller
            // removes them.
            for s in existing {
                delete_ignoring_missing(&slices, &s.name_any()).await?;
            }
            if self.endpoints.store().get(&ObjectRef::new(&key.name).within(&key.namespace)).is_some() {
                let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &key.namespace);
                delete_ignoring_missing(&api, &key.name).await?;
            }
            return Ok(None);
        };
        if !selects(&svc) || svc.metadata.deletion_timestamp.is_some() {
            // Without a selector (or ExternalName) the Service's endpoints are someone
            // else's (the user's, the API server's for `kubernetes`): upstream leaves them be.
            return Ok(None);
        }
        let nodes: BTreeMap<String, Option<String>> =
            self.nodes.store().state().iter().map(|n| (n.name_any(), n.labels().get(ZONE_LABEL).cloned())).collect();
        let want = desired(&svc, &self.pods.in_namespace(&key.namespace), &nodes);
        self.write_slices(&svc, &slices, existing, &want).await?;
        self.write_endpoints(&svc, &want).await?;
        Ok(None)
    }

    async fn write_slices(
        &self,
        svc: &Service,
        api: &Api<EndpointSlice>,
        mut existing: Vec<Arc<EndpointSlice>>,
        want: &Desired,
    ) -> Result<(), Error> {
        existing.sort_by_key(|s| s.name_any());
        let labels = labels_for(svc, true);
        // A Service with no endpoints still gets one (empty) slice, as upstream does, so
        // clients see its ports.
        let placeholder = [(slice_ports(svc, &[]), Vec::new())];
        let wanted: &[(Vec<SlicePort>, Vec<SliceEndpoint>)] =
            if want.slices.is_empty() { &placeholder } else { &want.slices };
        let mut reuse = existing.into_iter();
        for (ports, endpoints) in wanted {
            let content = |mut s: EndpointSlice| {
                s.address_type = "IPv4".into();
                s.endpoints = endpoints.clone();
                s.ports = Some(ports.clone());
                s.metadata.labels = Some(labels.clone());
                s.metadata.owner_references = Some(vec![owner(svc)]);
                s
            };
            match reuse.next() {
                Some(old) => {
                    let new = content((*old).clone());
                    if new != *old {
                        match api.replace(&old.name_any(), &PostParams::default(), &new).await {
                            Ok(_) => {}
                            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {
                                return Err(Error::Invalid("endpoint slice changed meanwhile; retrying".into()));
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                None => {
                    let mut s = content(EndpointSlice {
                        address_type: "IPv4".into(),
                        endpoints: Vec::new(),
                        metadata: ObjectMeta::default(),
                        ports: None,
                    });
                    s.metadata.generate_name = Some(format!("{}-", svc.name_any()));
                    s.metadata.namespace = svc.namespace();
                    api.create(&PostParams::default(), &s).await?;
                }
            }
        }
        for surplus in reuse {
            delete_ignoring_missing(api, &surplus.name_any()).await?;
        }
        Ok(())
    }

    async fn write_endpoints(&self, svc: &Service, want: &Desired) -> Result<(), Error> {
        let ns = svc.namespace().unwrap_or_default();
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &ns);
        let current = self.endpoints.store().get(&ObjectRef::new(&svc.name_any()).within(&ns));
        let subsets = (!want.subsets.is_empty()).then(|| want.subsets.clone());
        let labels = labels_for(svc, false);
        match current {
            Some(cur) => {
                if cur.subsets == subsets && cur.metadata.labels.as_ref() == Some(&labels) {
                    return Ok(());
                }
                let mut new = (*cur).clone();
                new.subsets = subsets;
                new.metadata.labels = Some(labels);
                match api.replace(&svc.name_any(), &PostParams::default(), &new).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                        Err(Error::Invalid("endpoints changed meanwhile; retrying".into()))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            None => {
                let e = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(svc.name_any()),
                        namespace: Some(ns.clone()),
                        labels: Some(labels),
                        ..Default::default()
                    },
                    subsets,
                };
                match api.create(&PostParams::default(), &e).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        Err(Error::Invalid("endpoints appeared meanwhile; retrying".into()))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

async fn delete_ignoring_missing<K>(api: &Api<K>, name: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests;
