//! LoadBalancer Services on machines without a cloud (what k3s's ServiceLB does): a Service of
//! `type: LoadBalancer` gets the addresses of the Ready nodes as `status.loadBalancer.ingress`
//! (ExternalIP where a node has one, else its InternalIP), and the service proxy serves its
//! ports on them. Each port (and protocol) serves one Service: a later Service asking for a
//! port an earlier one holds stays `<pending>`, with upstream's service-controller events
//! saying why. Services with a `loadBalancerClass` belong to another implementation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::events::Events;
use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::{Error, Key};

fn is_ours(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| s.type_.as_deref() == Some("LoadBalancer") && s.load_balancer_class.is_none())
}

fn ports_of(svc: &Service) -> Vec<(String, i32)> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|p| (p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.port))
        .collect()
}

/// Who holds each (protocol, port): the oldest LoadBalancer Service asking for it.
pub(crate) fn holders(services: &[Arc<Service>]) -> BTreeMap<(String, i32), String> {
    let mut lbs: Vec<&Arc<Service>> =
        services.iter().filter(|s| is_ours(s) && s.metadata.deletion_timestamp.is_none()).collect();
    lbs.sort_by_key(|s| (s.metadata.creation_timestamp.clone().map(|t| t.0), s.namespace(), s.name_any()));
    let mut out = BTreeMap::new();
    for s in lbs {
        let id = format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any());
        for port in ports_of(s) {
            out.entry(port).or_insert_with(|| id.clone());
        }
    }
    out
}

/// The addresses a LoadBalancer is reachable at: each Ready node's ExternalIP, else InternalIP,
/// leaving out nodes labelled `node.kubernetes.io/exclude-from-external-load-balancers` (as
/// upstream's service controller does; cordoned nodes still serve, as k3s's do).
pub(crate) fn node_addresses(nodes: &[Arc<Node>]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for n in nodes {
        let status = n.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let excluded = n.labels().contains_key("node.kubernetes.io/exclude-from-external-load-balancers");
        if !ready || excluded {
            continue;
        }
        let addresses = status.and_then(|s| s.addresses.clone()).unwrap_or_default();
        let pick = |t: &str| addresses.iter().find(|a| a.type_ == t).map(|a| a.address.clone());
        if let Some(ip) = pick("ExternalIP").or_else(|| pick("InternalIP")) {
            out.insert(ip);
        }
    }
    out.into_iter().collect()
}

pub(crate) struct ServiceLbController {
    client: kube::Client,
    services: Informer<Service>,
    nodes: Informer<Node>,
    events: Events,
    queue: WorkQueue<Key>,
}

impl ServiceLbController {
    pub(crate) fn new(client: kube::Client, services: Informer<Service>, nodes: Informer<Node>) -> Arc<Self> {
        let c = Arc::new(ServiceLbController {
            events: Events::new(client.clone(), "service-lb-controller"),
            client,
            services: services.clone(),
            nodes: nodes.clone(),
            queue: WorkQueue::new(),
        });
        // Any LoadBalancer change may free or take a port another one waits for.
        let weak = Arc::downgrade(&c);
        services.on_change(move |ch| {
            let Some(c) = weak.upgrade() else { return };
            c.queue.add(Key::of(ch.object()));
            if is_ours(ch.object()) {
                c.enqueue_all();
            }
        });
        let weak = Arc::downgrade(&c);
        nodes.on_change(move |_| {
            if let Some(c) = weak.upgrade() {
                c.enqueue_all();
            }
        });
        c
    }

    fn enqueue_all(&self) {
        for s in self.services.store().state() {
            if is_ours(&s) {
                self.queue.add(Key::of(s.as_ref()));
            }
        }
    }

    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.services.synced().await;
        self.nodes.synced().await;
        crate::run_workers("service-lb", self.queue.clone(), 1, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let Some(svc) = self.services.store().get(&ObjectRef::new(&key.name).within(&key.namespace)) else {
            return Ok(None);
        };
        let current = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.clone());
        let current_ips: Vec<String> = current.iter().flatten().filter_map(|i| i.ip.clone()).collect();
        let api: Api<Service> = Api::namespaced(self.client.clone(), &key.namespace);
        let set = |ips: &[String]| {
            let ingress: Vec<serde_json::Value> = ips.iter().map(|ip| json!({"ip": ip, "ipMode": "VIP"})).collect();
            json!({"status": {"loadBalancer": if ingress.is_empty() { json!({}) } else { json!({"ingress": ingress}) }}})
        };
        if !is_ours(&svc) {
            // No longer a LoadBalancer of ours: drop the addresses we gave it (a class'
            // implementation owns its status).
            let ours_before = svc.spec.as_ref().is_some_and(|s| s.load_balancer_class.is_none());
            if ours_before && !current_ips.is_empty() {
                self.patch(&api, &key.name, &set(&[])).await?;
            }
            return Ok(None);
        }
        let id = format!("{}/{}", key.namespace, key.name);
        let holders = holders(&self.services.store().state());
        let conflicts: Vec<String> = ports_of(&svc)
            .into_iter()
            .filter_map(|(proto, port)| {
                let holder = holders.get(&(proto.clone(), port))?;
                (holder != &id).then(|| format!("port {port}/{proto} is already used by service {holder}"))
            })
            .collect();
        if !conflicts.is_empty() {
            if !current_ips.is_empty() {
                self.patch(&api, &key.name, &set(&[])).await?;
            }
            let note = format!("Error syncing load balancer: failed to ensure load balancer: {}", conflicts.join(", "));
            self.events.publish(svc.as_ref(), true, "SyncLoadBalancerFailed", note).await;
            return Ok(None);
        }
        let want = node_addresses(&self.nodes.store().state());
        if want != current_ips {
            if current_ips.is_empty() {
                self.events.publish(svc.as_ref(), false, "EnsuringLoadBalancer", "Ensuring load balancer".into()).await;
            }
            self.patch(&api, &key.name, &set(&want)).await?;
            if !want.is_empty() {
                self.events.publish(svc.as_ref(), false, "EnsuredLoadBalancer", "Ensured load balancer".into()).await;
            }
        }
        Ok(None)
    }

    async fn patch(&self, api: &Api<Service>, name: &str, patch: &serde_json::Value) -> Result<(), Error> {
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeAddress, NodeCondition, NodeSpec, NodeStatus, ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn lb(name: &str, age: i64, ports: &[i32]) -> Arc<Service> {
        Arc::new(Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + age).unwrap())),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                ports: Some(ports.iter().map(|p| ServicePort { port: *p, ..Default::default() }).collect()),
                ..Default::default()
            }),
            status: None,
        })
    }

    fn node(name: &str, ready: bool, addresses: &[(&str, &str)], excluded: bool) -> Arc<Node> {
        let labels = [("node.kubernetes.io/exclude-from-external-load-balancers".to_string(), String::new())];
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: excluded.then(|| labels.into()),
                ..Default::default()
            },
            spec: Some(NodeSpec { unschedulable: Some(true), ..Default::default() }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                addresses: Some(
                    addresses
                        .iter()
                        .map(|(t, a)| NodeAddress { type_: t.to_string(), address: a.to_string() })
                        .collect(),
                ),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn the_oldest_service_holds_a_port() {
        let services = vec![lb("late", 20, &[8081, 9000]), lb("early", 10, &[8081]), lb("other", 30, &[9001])];
        let h = holders(&services);
        assert_eq!(h[&("TCP".to_string(), 8081)], "default/early");
        assert_eq!(h[&("TCP".to_string(), 9000)], "default/late");
        assert_eq!(h[&("TCP".to_string(), 9001)], "default/other");
        let mut classed = (*lb("classed", 0, &[8081])).clone();
        classed.spec.as_mut().unwrap().load_balancer_class = Some("example.com/lb".into());
        let h = holders(&[Arc::new(classed), lb("early", 10, &[8081])]);
        assert_eq!(h[&("TCP".to_string(), 8081)], "default/early", "another class's Service takes no port");
    }

    #[test]
    fn ingress_is_each_ready_nodes_address() {
        let nodes = vec![
            node("a", true, &[("InternalIP", "10.0.0.2"), ("Hostname", "a")], false),
            node("b", true, &[("InternalIP", "10.0.0.3"), ("ExternalIP", "203.0.113.9")], false),
            node("c", false, &[("InternalIP", "10.0.0.4")], false),
            node("d", true, &[("InternalIP", "10.0.0.5")], true),
        ];
        assert_eq!(node_addresses(&nodes), ["10.0.0.2", "203.0.113.9"]);
    }
}
