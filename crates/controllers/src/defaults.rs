//! What every namespace gets: the `default` ServiceAccount (upstream's serviceaccounts
//! controller) and the `kube-root-ca.crt` ConfigMap holding the cluster CA (the root CA
//! publisher). Both are recreated when deleted and repaired when changed; nothing is added to
//! a namespace that is terminating.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::{Error, Key};

pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
const DEFAULT_SA: &str = "default";

pub(crate) struct NamespaceDefaults {
    client: kube::Client,
    namespaces: Informer<Namespace>,
    accounts: Informer<ServiceAccount>,
    configmaps: Informer<ConfigMap>,
    ca: String,
    queue: WorkQueue<Key>,
}

impl NamespaceDefaults {
    pub(crate) fn new(client: kube::Client, namespaces: Informer<Namespace>, ca: String) -> Arc<Self> {
        let accounts = Informer::with_config(
            Api::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={DEFAULT_SA}")),
        );
        let configmaps = Informer::with_config(
            Api::all(client.clone()),
            watcher::Config::default().fields(&format!("metadata.name={ROOT_CA_CONFIGMAP}")),
        );
        let c = Arc::new(NamespaceDefaults {
            client,
            namespaces: namespaces.clone(),
            accounts: accounts.clone(),
            configmaps: configmaps.clone(),
            ca,
            queue: WorkQueue::new(),
        });
        let q = c.queue.clone();
        namespaces.on_change(move |ch| q.add(Key::new("", &kube::ResourceExt::name_any(ch.object()))));
        let q = c.queue.clone();
        accounts
            .on_change(move |ch| q.add(Key::new("", &kube::ResourceExt::namespace(ch.object()).unwrap_or_default())));
        let q = c.queue.clone();
        configmaps
            .on_change(move |ch| q.add(Key::new("", &kube::ResourceExt::namespace(ch.object()).unwrap_or_default())));
        c
    }

    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.accounts.start(shutdown.clone());
        self.configmaps.start(shutdown.clone());
        self.namespaces.synced().await;
        self.accounts.synced().await;
        self.configmaps.synced().await;
        crate::run_workers("namespace-defaults", self.queue.clone(), 2, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key.name).await }
        })
        .await;
    }

    async fn sync(&self, ns: &str) -> Result<Option<Duration>, Error> {
        let Some(namespace) = self.namespaces.store().get(&ObjectRef::new(ns)) else { return Ok(None) };
        let terminating = namespace.metadata.deletion_timestamp.is_some()
            || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
        if terminating {
            return Ok(None);
        }
        if self.accounts.store().get(&ObjectRef::new(DEFAULT_SA).within(ns)).is_none() {
            let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": DEFAULT_SA}}))
                .map_err(|e| Error::Invalid(e.to_string()))?;
            ignore_conflicts(
                Api::<ServiceAccount>::namespaced(self.client.clone(), ns).create(&PostParams::default(), &sa).await,
            )?;
        }
        if !self.ca.is_empty() {
            let want = BTreeMap::from([("ca.crt".to_string(), self.ca.clone())]);
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
            match self.configmaps.store().get(&ObjectRef::new(ROOT_CA_CONFIGMAP).within(ns)) {
                None => {
                    let cm = ConfigMap {
                        metadata: kube::api::ObjectMeta {
                            name: Some(ROOT_CA_CONFIGMAP.into()),
                            annotations: Some(BTreeMap::from([(
                                "kubernetes.io/description".to_string(),
                                "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.".to_string(),
                            )])),
                            ..Default::default()
                        },
                        data: Some(want),
                        ..Default::default()
                    };
                    ignore_conflicts(api.create(&PostParams::default(), &cm).await)?;
                }
                Some(cm) if cm.data.as_ref() != Some(&want) => {
                    let patch = json!({"data": want});
                    api.patch(ROOT_CA_CONFIGMAP, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                }
                Some(_) => {}
            }
        }
        Ok(None)
    }
}

/// AlreadyExists (the store was behind) and Forbidden on a namespace that started
/// terminating are not failures.
fn ignore_conflicts<T>(r: kube::Result<T>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 || s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
