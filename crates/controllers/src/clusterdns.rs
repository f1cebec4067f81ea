//! Endpoints of the cluster DNS. Every node runs the DNS server on its pod bridge's address (the
//! first host of its podCIDR, where the built-in runtime puts the bridge), so the `kube-dns`
//! Service in `kube-system` has one endpoint per node, in an EndpointSlice per node
//! (`kube-dns-<node>`), ready while the node is. The Service's `internalTrafficPolicy: Local`
//! keeps each pod's queries on its own node. Simulated nodes (`type: skiff-sim`) run no DNS
//! server and get no endpoint. A slice already as wanted is not written again: nodes change
//! often (heartbeats), their DNS endpoint rarely.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use skiff_api::cidr::Cidr;
use tokio_util::sync::CancellationToken;

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::{Error, Key};

pub const NAMESPACE: &str = "kube-system";
pub const SERVICE: &str = "kube-dns";
const MANAGER: &str = "cluster-dns.skiff.dev";

/// The DNS server's address on a node: its podCIDR's first host.
pub(crate) fn node_dns_address(node: &Node) -> Option<Ipv4Addr> {
    Some(Cidr::parse(node.spec.as_ref()?.pod_cidr.as_deref()?).ok()?.nth(0))
}

fn slice_name(node: &str) -> String {
    format!("{SERVICE}-{node}")
}

pub(crate) fn desired_slice(node: &Node, service: &Service) -> Option<serde_json::Value> {
    let (key, value) = skiff_sim::SIMULATED_NODE_LABEL;
    if node.labels().get(key).is_some_and(|v| v == value) {
        return None;
    }
    let address = node_dns_address(node)?;
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: SERVICE.into(),
        uid: service.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let name = node.name_any();
    Some(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(&name),
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": SERVICE, "endpointslice.kubernetes.io/managed-by": MANAGER},
            "ownerReferences": [owner],
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": [address.to_string()],
            "nodeName": name,
            "conditions": {"ready": ready, "serving": ready, "terminating": false},
        }],
        "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        ],
    }))
}

/// Whether `have` already says everything `want` (from [`desired_slice`]) says.
fn up_to_date(have: &EndpointSlice, want: &serde_json::Value) -> bool {
    let Ok(have) = serde_json::to_value(have) else { return false };
    let labels_held = want["metadata"]["labels"]
        .as_object()
        .is_some_and(|l| l.iter().all(|(k, v)| have["metadata"]["labels"].get(k) == Some(v)));
    labels_held
        && have["metadata"]["ownerReferences"] == want["metadata"]["ownerReferences"]
        && have["addressType"] == want["addressType"]
        && have["endpoints"] == want["endpoints"]
        && have["ports"] == want["ports"]
}

pub(crate) struct ClusterDnsEndpoints {
    client: kube::Client,
    nodes: Informer<Node>,
    services: Informer<Service>,
    /// Our slices, to skip writes that would change nothing.
    slices: Informer<EndpointSlice>,
    queue: WorkQueue<Key>,
}

impl ClusterDnsEndpoints {
    pub(crate) fn new(client: kube::Client, nodes: Informer<Node>, services: Informer<Service>) -> Arc<Self> {
        let slices = Informer::with_config(
            Api::namespaced(client.clone(), NAMESPACE),
            kube::runtime::watcher::Config::default()
                .labels(&format!("endpointslice.kubernetes.io/managed-by={MANAGER}")),
        );
        let c = Arc::new(ClusterDnsEndpoints {
            client,
            nodes: nodes.clone(),
            services: services.clone(),
            slices: slices.clone(),
            queue: WorkQueue::new(),
        });
        let q = c.queue.clone();
        nodes.on_change(move |ch| q.add(Key::new("", &ch.object().name_any())));
        // A slice changed or removed by someone else is put back.
        let q = c.queue.clone();
        slices.on_change(move |ch| {
            if let Some(node) = ch.object().name_any().strip_prefix(SERVICE).and_then(|n| n.strip_prefix('-')) {
                q.add(Key::new("", node));
            }
        });
        let weak = Arc::downgrade(&c);
        services.on_change(move |ch| {
            let s = ch.object();
            if s.name_any() == SERVICE
                && s.namespace().as_deref() == Some(NAMESPACE)
                && let Some(c) = weak.upgrade()
            {
                for n in c.nodes.store().state() {
                    c.queue.add(Key::new("", &n.name_any()));
                }
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.slices.start(shutdown.clone());
        self.nodes.synced().await;
        self.services.synced().await;
        self.slices.synced().await;
        crate::run_workers("cluster-dns-endpoints", self.queue.clone(), 1, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), NAMESPACE);
        let node = self.nodes.store().get(&ObjectRef::new(&key.name));
        let service = self.services.store().get(&ObjectRef::new(SERVICE).within(NAMESPACE));
        let want = match (node, service) {
            (Some(n), Some(s)) => desired_slice(&n, &s),
            _ => None,
        };
        let name = slice_name(&key.name);
        let have = self.slices.store().get(&ObjectRef::new(&name).within(NAMESPACE));
        match want {
            Some(slice) if have.as_deref().is_some_and(|h| up_to_date(h, &slice)) => {}
            Some(slice) => {
                let pp = PatchParams::apply("cluster-dns-endpoints").force();
                api.patch(&name, &pp, &Patch::Apply(&slice)).await?;
            }
            // Known to be gone (a slice created meanwhile comes back through the informer).
            None if have.is_none() => {}
            None => match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            },
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_endpoint_per_node_at_its_bridge_address() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "spec": {"podCIDR": "10.42.3.0/24"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": "kube-dns", "uid": "u1"}})).unwrap();
        let slice = desired_slice(&node, &svc).unwrap();
        assert_eq!(slice["metadata"]["name"], "kube-dns-n1");
        assert_eq!(slice["endpoints"][0]["addresses"][0], "10.42.3.1");
        assert_eq!(slice["endpoints"][0]["conditions"]["ready"], true);
        assert_eq!(slice["metadata"]["ownerReferences"][0]["uid"], "u1");
        let bare: Node = serde_json::from_value(json!({"metadata": {"name": "n2"}})).unwrap();
        assert!(desired_slice(&bare, &svc).is_none(), "no podCIDR, no DNS address");
        let sim: Node = serde_json::from_value(json!({
            "metadata": {"name": "sim-0", "labels": {"type": "skiff-sim"}},
            "spec": {"podCIDR": "10.42.4.0/24"},
        }))
        .unwrap();
        assert!(desired_slice(&sim, &svc).is_none(), "a simulated node runs no DNS server");

        // The slice as the API server returns it (with server-set fields and defaults) is up to
        // date; a change of readiness, address or owner is not.
        let mut stored = slice.clone();
        stored["metadata"]["uid"] = json!("s1");
        stored["metadata"]["resourceVersion"] = json!("7");
        stored["metadata"]["labels"]["extra"] = json!("kept");
        let have: EndpointSlice = serde_json::from_value(stored.clone()).unwrap();
        assert!(up_to_date(&have, &slice));
        let mut not_ready = slice.clone();
        not_ready["endpoints"][0]["conditions"]["ready"] = json!(false);
        assert!(!up_to_date(&have, &not_ready));
        let mut moved = slice.clone();
        moved["endpoints"][0]["addresses"][0] = json!("10.42.9.1");
        assert!(!up_to_date(&have, &moved));
        let mut reowned = slice.clone();
        reowned["metadata"]["ownerReferences"][0]["uid"] = json!("u2");
        assert!(!up_to_date(&have, &reowned));
    }
}
