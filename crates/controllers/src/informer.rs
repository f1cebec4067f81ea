//! Shared informers: one watch per resource for the whole controller manager, an in-memory
//! store every controller reads (kube-rs's reflector), and change notifications that
//! controllers turn into queue keys (client-go's SharedInformer, in small).

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// What happened to an object.
pub enum Change<'a, K> {
    Applied(&'a K),
    Deleted(&'a K),
}

impl<K> Change<'_, K> {
    pub fn object(&self) -> &K {
        match self {
            Change::Applied(o) | Change::Deleted(o) => o,
        }
    }
}

type Handler<K> = Box<dyn Fn(Change<'_, K>) + Send + Sync>;

/// A watched resource: its store and its change handlers. Cheap to clone.
pub struct Informer<K: Resource<DynamicType = ()> + Clone + 'static> {
    api: Api<K>,
    config: watcher::Config,
    store: Store<K>,
    writer: Arc<Mutex<Option<reflector::store::Writer<K>>>>,
    handlers: Arc<Mutex<Vec<Handler<K>>>>,
    /// Applied to every object before it is stored or handed to handlers.
    transform: Option<fn(&mut K)>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            api: self.api.clone(),
            config: self.config.clone(),
            store: self.store.clone(),
            writer: self.writer.clone(),
            handlers: self.handlers.clone(),
            transform: self.transform,
        }
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    pub fn new(api: Api<K>) -> Self {
        Self::with_config(api, watcher::Config::default())
    }

    /// An informer over the objects `config` selects (label and field selectors).
    pub fn with_config(api: Api<K>, config: watcher::Config) -> Self {
        let (store, writer) = reflector::store();
        Informer {
            api,
            config,
            store,
            writer: Arc::new(Mutex::new(Some(writer))),
            handlers: Arc::new(Mutex::new(Vec::new())),
            transform: None,
        }
    }

    /// Pass every object through `f` before storing it (client-go's `SetTransform`), e.g. to
    /// keep a smaller copy of each.
    pub fn with_transform(mut self, f: fn(&mut K)) -> Self {
        self.transform = Some(f);
        self
    }

    /// The objects as last seen (empty until the first list completes).
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Call `f` for every change (and every object of the initial list). Register handlers
    /// before [`Informer::start`].
    pub fn on_change(&self, f: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        self.handlers.lock().unwrap_or_else(|e| e.into_inner()).push(Box::new(f));
    }

    /// Start watching (once; later calls do nothing).
    pub fn start(&self, shutdown: CancellationToken) {
        let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let handlers = self.handlers.clone();
        let api = self.api.clone();
        let config = self.config.clone();
        let transform = self.transform;
        tokio::spawn(async move {
            let events = watcher(api, config).map(move |ev| match transform {
                Some(f) => ev.map(|ev| ev.modify(f)),
                None => ev,
            });
            let stream = reflector::reflector(writer, events);
            let mut stream = std::pin::pin!(stream);
            loop {
                let ev = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    ev = stream.next() => ev,
                };
                match ev {
                    None => return,
                    Some(Err(e)) => {
                        tracing::debug!(kind = %K::kind(&()), error = %e, "watch failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                    Some(Ok(ev)) => {
                        let hs = handlers.lock().unwrap_or_else(|e| e.into_inner());
                        match &ev {
                            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                                hs.iter().for_each(|h| h(Change::Applied(o)));
                            }
                            watcher::Event::Delete(o) => hs.iter().for_each(|h| h(Change::Deleted(o))),
                            watcher::Event::Init | watcher::Event::InitDone => {}
                        }
                    }
                }
            }
        });
    }

    /// Wait until the first list has been stored.
    pub async fn synced(&self) {
        let _ = self.store.wait_until_ready().await;
    }

    /// Objects for which `f` holds.
    pub fn state_where(&self, f: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.store.state().into_iter().filter(|o| f(o)).collect()
    }

    /// Objects in `namespace`.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.store.state().into_iter().filter(|o| o.namespace().as_deref() == Some(namespace)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::PostParams;
    use skiff_testkit::InProcess;

    #[tokio::test]
    async fn a_transform_applies_before_the_store_and_the_handlers() {
        let api = InProcess::start().await;
        let client = api.server.client("system:kube-controller-manager", &["system:masters"]);
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let informer = Informer::new(Api::<ConfigMap>::all(client)).with_transform(|cm| {
            cm.data.get_or_insert_default().insert("seen".into(), "yes".into());
        });
        let handled = Arc::new(Mutex::new(Vec::new()));
        let h = handled.clone();
        informer.on_change(move |c| {
            let seen = c.object().data.as_ref().and_then(|d| d.get("seen")).cloned();
            h.lock().unwrap().push(seen);
        });
        let shutdown = CancellationToken::new();
        informer.start(shutdown.clone());
        informer.synced().await;
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("a".into());
        cms.create(&PostParams::default(), &cm).await.unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while informer.in_namespace("default").iter().all(|c| c.metadata.name.as_deref() != Some("a")) {
            assert!(tokio::time::Instant::now() < deadline, "the informer never saw the ConfigMap");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for cm in informer.in_namespace("default") {
            assert_eq!(cm.data.as_ref().and_then(|d| d.get("seen")).map(String::as_str), Some("yes"));
        }
        let handled = handled.lock().unwrap().clone();
        assert!(!handled.is_empty() && handled.iter().all(|s| s.as_deref() == Some("yes")), "{handled:?}");
        shutdown.cancel();
    }
}
