//! Node IPAM (upstream's range allocator, `--allocate-node-cidrs`): every Node without a
//! `spec.podCIDR` gets the lowest free /24 of the cluster CIDR. Nodes keep theirs for life;
//! a node that registered with one (the server's own node) has it marked used. Pod networks
//! across nodes route to these ranges (issue 7).

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use skiff_api::cidr::Cidr;
use tokio_util::sync::CancellationToken;

use crate::events::Events;
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::{Error, Key};

/// Each node's share of the cluster CIDR (upstream's `--node-cidr-mask-size` for IPv4).
pub const NODE_MASK: u8 = 24;

/// How many node ranges `cluster` holds (0 when it is smaller than one).
pub fn node_ranges(cluster: Cidr) -> u32 {
    if cluster.prefix > NODE_MASK { 0 } else { 1u32 << (NODE_MASK - cluster.prefix) }
}

/// The `index`th node range of `cluster`.
pub fn node_range(cluster: Cidr, index: u32) -> String {
    format!("{}/{NODE_MASK}", Ipv4Addr::from(u32::from(cluster.base) + (index << (32 - NODE_MASK))))
}

/// The lowest /24 of `cluster` not in `used`.
pub(crate) fn next_free(cluster: Cidr, used: &BTreeSet<String>) -> Option<String> {
    (0..node_ranges(cluster)).map(|i| node_range(cluster, i)).find(|s| !used.contains(s))
}

pub(crate) struct NodeIpamController {
    client: kube::Client,
    nodes: Informer<Node>,
    cluster: Cidr,
    reserved: Vec<String>,
    /// What this controller handed out, until the informer shows it (two nodes registering at
    /// once must not get the same range).
    assigned: Mutex<HashMap<String, String>>,
    events: Events,
    queue: WorkQueue<Key>,
}

impl NodeIpamController {
    /// `None` (with the reason logged) when `cluster_cidr` can't hold one node range.
    pub(crate) fn new(
        client: kube::Client,
        nodes: Informer<Node>,
        cluster_cidr: &str,
        reserved: Vec<String>,
    ) -> Option<Arc<Self>> {
        let cluster = match Cidr::parse(cluster_cidr) {
            Ok(r) if r.prefix <= NODE_MASK => r,
            Ok(_) => {
                tracing::error!(%cluster_cidr, "the cluster CIDR is smaller than one node's /24: not allocating podCIDRs");
                return None;
            }
            Err(e) => {
                tracing::error!(error = %e, "the cluster CIDR: not allocating podCIDRs");
                return None;
            }
        };
        let c = Arc::new(NodeIpamController {
            events: Events::new(client.clone(), "node-ipam-controller"),
            client,
            nodes: nodes.clone(),
            cluster,
            reserved,
            assigned: Mutex::default(),
            queue: WorkQueue::new(),
        });
        let q = c.queue.clone();
        nodes.on_change(move |ch| {
            let node = ch.object();
            if node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()).unwrap_or_default().is_empty() {
                q.add(Key::new("", &kube::ResourceExt::name_any(node)));
            }
        });
        Some(c)
    }

    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.nodes.synced().await;
        crate::run_workers("nodeipam", self.queue.clone(), 1, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let Some(node) = self.nodes.store().get(&ObjectRef::new(&key.name)) else { return Ok(None) };
        if !node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()).unwrap_or_default().is_empty() {
            return Ok(None);
        }
        let mut used: BTreeSet<String> = self.reserved.iter().cloned().collect();
        for n in self.nodes.store().state() {
            if let Some(c) = n.spec.as_ref().and_then(|s| s.pod_cidr.clone()) {
                used.insert(c);
            }
        }
        let cidr = {
            let mut assigned = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
            assigned.retain(|name, _| self.nodes.store().get(&ObjectRef::new(name)).is_some());
            match assigned.get(&key.name) {
                Some(c) => Some(c.clone()),
                None => {
                    used.extend(assigned.values().cloned());
                    let c = next_free(self.cluster, &used);
                    if let Some(c) = &c {
                        assigned.insert(key.name.clone(), c.clone());
                    }
                    c
                }
            }
        };
        let Some(cidr) = cidr else {
            let note = format!("Node {} status is now: CIDRNotAvailable", key.name);
            self.events.publish(node.as_ref(), true, "CIDRNotAvailable", note).await;
            return Ok(Some(Duration::from_secs(30)));
        };
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        match api.patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => tracing::info!(node = %key.name, %cidr, "allocated the node's podCIDR"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_the_lowest_free_range() {
        let cluster = Cidr::parse("10.42.0.0/16").unwrap();
        let mut used = BTreeSet::new();
        assert_eq!(next_free(cluster, &used).unwrap(), "10.42.0.0/24");
        used.insert("10.42.0.0/24".to_string());
        used.insert("10.42.2.0/24".to_string());
        assert_eq!(next_free(cluster, &used).unwrap(), "10.42.1.0/24");
        let small = Cidr::parse("10.9.8.0/23").unwrap();
        let full: BTreeSet<String> = ["10.9.8.0/24".to_string(), "10.9.9.0/24".to_string()].into();
        assert_eq!(next_free(small, &full), None);
        assert_eq!(Cidr::parse("10.42.7.9/16").unwrap(), cluster, "host bits are masked");
        assert!(Cidr::parse("10.42.0.0").is_err());
        assert!(Cidr::parse("10.42.0.0/33").is_err());
    }
}
