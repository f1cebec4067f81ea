//! The ResourceQuota controller: keeps each quota's `status.hard` (a copy of `spec.hard`) and
//! `status.used`, recomputed from what exists — pods (compute requests/limits and the `pods`
//! count, finished pods excluded) from the shared pod informer, and the object counts
//! (`services`, `configmaps`, `secrets`, `persistentvolumeclaims`, `replicationcontrollers`,
//! `resourcequotas` and their `count/…` forms) by listing. Admission raises `used` on each
//! create; this controller brings it back to the truth after deletions (every 30 s and on
//! changes). Resources it cannot count keep the value admission wrote.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use skiff_api::quantity::{format_milli, pod_usage};
use tokio_util::sync::CancellationToken;

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::{Error, Key};

const RESYNC: Duration = Duration::from_secs(30);

pub(crate) struct QuotaController {
    client: kube::Client,
    quotas: Informer<ResourceQuota>,
    pods: Informer<Pod>,
    queue: WorkQueue<Key>,
}

impl QuotaController {
    pub(crate) fn new(client: kube::Client, quotas: Informer<ResourceQuota>, pods: Informer<Pod>) -> Arc<Self> {
        let c =
            Arc::new(QuotaController { client, quotas: quotas.clone(), pods: pods.clone(), queue: WorkQueue::new() });
        let q = c.queue.clone();
        quotas.on_change(move |ch| q.add(Key::of(ch.object())));
        let weak = Arc::downgrade(&c);
        pods.on_change(move |ch| {
            let Some(c) = weak.upgrade() else { return };
            let ns = ch.object().namespace().unwrap_or_default();
            for q in c.quotas.in_namespace(&ns) {
                c.queue.add(Key::of(q.as_ref()));
            }
        });
        c
    }

    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.quotas.start(shutdown.clone());
        self.quotas.synced().await;
        self.pods.synced().await;
        crate::run_workers("resourcequota", self.queue.clone(), 2, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    async fn count(&self, ns: &str, plural: &str) -> Result<i128, Error> {
        let lp = ListParams::default();
        let n = match plural {
            "services" => Api::<k8s_openapi::api::core::v1::Service>::namespaced(self.client.clone(), ns)
                .list_metadata(&lp)
                .await?
                .items
                .len(),
            "configmaps" => Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(self.client.clone(), ns)
                .list_metadata(&lp)
                .await?
                .items
                .len(),
            "secrets" => Api::<k8s_openapi::api::core::v1::Secret>::namespaced(self.client.clone(), ns)
                .list_metadata(&lp)
                .await?
                .items
                .len(),
            "persistentvolumeclaims" => {
                Api::<k8s_openapi::api::core::v1::PersistentVolumeClaim>::namespaced(self.client.clone(), ns)
                    .list_metadata(&lp)
                    .await?
                    .items
                    .len()
            }
            "replicationcontrollers" => {
                Api::<k8s_openapi::api::core::v1::ReplicationController>::namespaced(self.client.clone(), ns)
                    .list_metadata(&lp)
                    .await?
                    .items
                    .len()
            }
            "resourcequotas" => self.quotas.in_namespace(ns).len(),
            _ => return Err(Error::Invalid(format!("cannot count {plural}"))),
        };
        Ok(n as i128 * 1000)
    }

    async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let Some(quota) = self.quotas.store().get(&ObjectRef::new(&key.name).within(&key.namespace)) else {
            return Ok(None);
        };
        let hard = quota.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
        let old = quota.status.clone().unwrap_or_default();
        let mut pods_total: BTreeMap<String, i128> = BTreeMap::new();
        for p in self.pods.in_namespace(&key.namespace) {
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let v = serde_json::to_value(p.as_ref()).map_err(|e| Error::Invalid(e.to_string()))?;
            for (k, n) in pod_usage(&v) {
                *pods_total.entry(k).or_default() += n;
            }
        }
        let mut used: BTreeMap<String, Quantity> = BTreeMap::new();
        for res in hard.keys() {
            let plural = res.strip_prefix("count/").unwrap_or(res);
            let value = if let Some(v) = pods_total.get(res.as_str()) {
                Some(*v)
            } else if matches!(res.as_str(), "pods" | "count/pods") {
                Some(pods_total.get("pods").copied().unwrap_or(0))
            } else if !plural.contains('.') {
                self.count(&key.namespace, plural).await.ok()
            } else {
                None
            };
            match value {
                Some(v) => {
                    used.insert(res.clone(), Quantity(format_milli(v)));
                }
                None => {
                    // Not countable here: keep what admission recorded.
                    if let Some(q) = old.used.as_ref().and_then(|u| u.get(res)) {
                        used.insert(res.clone(), q.clone());
                    } else {
                        used.insert(res.clone(), Quantity("0".into()));
                    }
                }
            }
        }
        let same = old.hard.as_ref() == Some(&hard) && old.used.as_ref() == Some(&used);
        if !same {
            let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), &key.namespace);
            let patch = json!({"status": {"hard": hard, "used": used}});
            match api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(RESYNC))
    }
}
