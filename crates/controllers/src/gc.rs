//! The garbage collector: deletes objects whose owners are all gone, and carries out the
//! `foregroundDeletion` and `orphan` deletion modes, like upstream's
//! `pkg/controller/garbagecollector`.
//!
//! It watches the metadata (only) of every resource discovery lists with list, watch and
//! delete (re-discovered every 30 s, so custom resources join) and keeps a graph of
//! ownerReferences by uid. Work is keyed by uid:
//! - an object with owners: every owner is looked up (in the graph, then with a GET that checks
//!   the uid, since the graph can lag); before acting on a missing owner the object itself is
//!   read again, and its live references decide; if none exists any more the object is deleted (in the
//!   foreground when an owner is itself waiting for its dependents and the object blocks it),
//!   and references to owners that are gone are dropped when some remain;
//! - an object being deleted with the `orphan` finalizer: its dependents lose the reference to
//!   it, then the finalizer is removed;
//! - an object being deleted with `foregroundDeletion`: its dependents are deleted, and the
//!   finalizer is removed once no dependent with `blockOwnerDeletion` is left.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::{ApiResource, PartialObjectMeta};
use kube::discovery::{Discovery, Scope, verbs};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::queue::WorkQueue;

#[derive(Clone, Debug)]
struct Node {
    resource: Arc<ApiResource>,
    namespaced: bool,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    /// owner uid → dependent uids
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn upsert(&mut self, uid: String, node: Node) {
        if let Some(old) = self.nodes.get(&uid) {
            for o in &old.owners {
                if let Some(set) = self.dependents.get_mut(&o.uid) {
                    set.remove(&uid);
                }
            }
        }
        for o in &node.owners {
            self.dependents.entry(o.uid.clone()).or_default().insert(uid.clone());
        }
        self.nodes.insert(uid, node);
    }

    fn remove(&mut self, uid: &str) -> Option<Node> {
        let node = self.nodes.remove(uid)?;
        for o in &node.owners {
            if let Some(set) = self.dependents.get_mut(&o.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
        }
        Some(node)
    }

    fn dependents_of(&self, uid: &str) -> Vec<(String, Node)> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect()
    }
}

pub(crate) struct GarbageCollector {
    client: kube::Client,
    graph: Mutex<Graph>,
    queue: WorkQueue<String>,
    /// "group/version/Kind" → resource, for owner lookups.
    kinds: Mutex<HashMap<String, (Arc<ApiResource>, bool)>>,
}

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

/// The merge-patch value of an ownerReferences list: none left removes the field (as
/// upstream's `omitempty` does) instead of storing an empty list.
fn owner_refs(refs: &[&OwnerReference]) -> serde_json::Value {
    if refs.is_empty() { serde_json::Value::Null } else { json!(refs) }
}

fn kind_key(api_version: &str, kind: &str) -> String {
    format!("{api_version}/{kind}")
}

impl GarbageCollector {
    pub(crate) fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(GarbageCollector { client, graph: Mutex::default(), queue: WorkQueue::new(), kinds: Mutex::default() })
    }

    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let watching = Arc::new(Mutex::new(HashSet::<String>::new()));
        let discover = {
            let gc = self.clone();
            let shutdown = shutdown.clone();
            async move {
                loop {
                    if let Err(e) = gc.clone().discover(&watching, &shutdown).await {
                        tracing::debug!(error = %e, "garbage collector discovery failed");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                    }
                }
            }
        };
        let work = {
            let gc = self.clone();
            let shutdown = shutdown.clone();
            async move {
                let mut tasks = Vec::new();
                for _ in 0..4 {
                    let gc = gc.clone();
                    let shutdown = shutdown.clone();
                    tasks.push(tokio::spawn(async move {
                        loop {
                            let uid = tokio::select! {
                                _ = shutdown.cancelled() => return,
                                k = gc.queue.next() => k,
                            };
                            match gc.process(&uid).await {
                                Ok(()) => gc.queue.forget(&uid),
                                Err(e) => {
                                    tracing::debug!(%uid, error = %e, "garbage collection failed; retrying");
                                    gc.queue.add_rate_limited(uid.clone());
                                }
                            }
                            gc.queue.done(&uid);
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            }
        };
        tokio::join!(discover, work);
    }

    /// Start a metadata watch for every deletable resource not watched yet.
    async fn discover(
        self: Arc<Self>,
        watching: &Arc<Mutex<HashSet<String>>>,
        shutdown: &CancellationToken,
    ) -> kube::Result<()> {
        let discovery = Discovery::new(self.client.clone()).run().await?;
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if !caps.supports_operation(verbs::LIST)
                    || !caps.supports_operation(verbs::WATCH)
                    || !caps.supports_operation(verbs::DELETE)
                {
                    continue;
                }
                let namespaced = caps.scope == Scope::Namespaced;
                let ar = Arc::new(ar);
                self.kinds
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(kind_key(&ar.api_version, &ar.kind), (ar.clone(), namespaced));
                // Events never own anything and are many.
                if ar.plural == "events" {
                    continue;
                }
                let id = format!("{}/{}", ar.api_version, ar.plural);
                if !watching.lock().unwrap_or_else(|e| e.into_inner()).insert(id) {
                    continue;
                }
                tokio::spawn(self.clone().watch(ar, namespaced, shutdown.clone()));
            }
        }
        Ok(())
    }

    async fn watch(self: Arc<Self>, ar: Arc<ApiResource>, namespaced: bool, shutdown: CancellationToken) {
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(self.client.clone(), ar.as_ref());
        let stream = watcher::watcher(api, watcher::Config::default());
        let mut stream = std::pin::pin!(stream);
        // Objects seen in the current (re)list, to drop the ones that vanished meanwhile.
        let mut relist: Option<HashSet<String>> = None;
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = stream.next() => ev,
            };
            match ev {
                None => return,
                Some(Err(e)) => {
                    tracing::debug!(resource = %ar.plural, error = %e, "garbage collector watch failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Some(Ok(watcher::Event::Init)) => relist = Some(HashSet::new()),
                Some(Ok(watcher::Event::InitApply(m))) => {
                    if let Some(seen) = relist.as_mut()
                        && let Some(uid) = &m.metadata.uid
                    {
                        seen.insert(uid.clone());
                    }
                    self.observe(&ar, namespaced, &m);
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    if let Some(seen) = relist.take() {
                        let gone: Vec<String> = self
                            .graph()
                            .nodes
                            .iter()
                            .filter(|(uid, n)| Arc::ptr_eq(&n.resource, &ar) && !seen.contains(*uid))
                            .map(|(uid, _)| uid.clone())
                            .collect();
                        for uid in gone {
                            self.forget(&uid);
                        }
                    }
                }
                Some(Ok(watcher::Event::Apply(m))) => self.observe(&ar, namespaced, &m),
                Some(Ok(watcher::Event::Delete(m))) => {
                    if let Some(uid) = &m.metadata.uid {
                        self.forget(uid);
                    }
                }
            }
        }
    }

    fn observe(&self, ar: &Arc<ApiResource>, namespaced: bool, m: &PartialObjectMeta<DynamicObject>) {
        let Some(uid) = m.metadata.uid.clone() else { return };
        let node = Node {
            resource: ar.clone(),
            namespaced,
            namespace: m.metadata.namespace.clone(),
            name: m.metadata.name.clone().unwrap_or_default(),
            owners: m.metadata.owner_references.clone().unwrap_or_default(),
            deleting: m.metadata.deletion_timestamp.is_some(),
            finalizers: m.metadata.finalizers.clone().unwrap_or_default(),
        };
        let interesting = !node.owners.is_empty()
            || (node.deleting && node.finalizers.iter().any(|f| f == FOREGROUND || f == ORPHAN));
        // A dependent that changed may unblock an owner deleting in the foreground.
        let owners: Vec<String> = node.owners.iter().map(|o| o.uid.clone()).collect();
        self.graph().upsert(uid.clone(), node);
        if interesting {
            self.queue.add(uid);
        }
        self.wake_foreground_owners(&owners);
    }

    fn forget(&self, uid: &str) {
        let removed = self.graph().remove(uid);
        // Its dependents may be orphans now.
        let dependents = self.graph().dependents_of(uid);
        for (d, _) in dependents {
            self.queue.add(d);
        }
        if let Some(n) = removed {
            let owners: Vec<String> = n.owners.iter().map(|o| o.uid.clone()).collect();
            self.wake_foreground_owners(&owners);
        }
    }

    fn wake_foreground_owners(&self, owners: &[String]) {
        let g = self.graph();
        for o in owners {
            if g.nodes.get(o).is_some_and(|n| n.deleting && n.finalizers.iter().any(|f| f == FOREGROUND)) {
                self.queue.add(o.clone());
            }
        }
    }

    fn api_for(&self, node: &Node) -> Api<DynamicObject> {
        match (&node.namespace, node.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, node.resource.as_ref()),
            _ => Api::all_with(self.client.clone(), node.resource.as_ref()),
        }
    }

    async fn process(&self, uid: &str) -> Result<(), kube::Error> {
        let Some(node) = self.graph().nodes.get(uid).cloned() else { return Ok(()) };
        if node.deleting && node.finalizers.iter().any(|f| f == ORPHAN) {
            return self.orphan_dependents(uid, &node).await;
        }
        if node.deleting && node.finalizers.iter().any(|f| f == FOREGROUND) {
            self.delete_dependents(uid, &node).await?;
        }
        if !node.owners.is_empty() && !node.deleting {
            self.check_owners(uid, &node).await?;
        }
        Ok(())
    }

    /// Whether `owner` (referenced from an object in `namespace`) still exists; `Some(true)`
    /// when it exists and waits for its dependents (foreground deletion).
    async fn owner_state(&self, owner: &OwnerReference, namespace: Option<&str>) -> Result<Option<bool>, kube::Error> {
        if let Some(n) = self.graph().nodes.get(&owner.uid) {
            return Ok(Some(n.deleting && n.finalizers.iter().any(|f| f == FOREGROUND)));
        }
        let found = self
            .kinds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&kind_key(&owner.api_version, &owner.kind))
            .cloned();
        let Some((ar, namespaced)) = found else {
            // A kind the server does not serve (any more): the owner cannot exist.
            return Ok(None);
        };
        let api: Api<DynamicObject> = match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar.as_ref()),
            _ => Api::all_with(self.client.clone(), ar.as_ref()),
        };
        match api.get_metadata_opt(&owner.name).await? {
            Some(m) if m.metadata.uid.as_deref() == Some(owner.uid.as_str()) => Ok(Some(
                m.metadata.deletion_timestamp.is_some()
                    && m.metadata.finalizers.iter().flatten().any(|f| f == FOREGROUND),
            )),
            _ => Ok(None),
        }
    }

    /// The uids of `owners` that are gone and of those waiting for their dependents, and the
    /// number that exist otherwise (solid).
    async fn classify_owners(
        &self,
        owners: &[OwnerReference],
        namespace: Option<&str>,
    ) -> Result<(Vec<String>, Vec<String>, usize), kube::Error> {
        let (mut dangling, mut waiting, mut solid) = (Vec::new(), Vec::new(), 0);
        for o in owners {
            match self.owner_state(o, namespace).await? {
                None => dangling.push(o.uid.clone()),
                Some(true) => waiting.push(o.uid.clone()),
                Some(false) => solid += 1,
            }
        }
        Ok((dangling, waiting, solid))
    }

    /// Upstream's `attemptToDeleteItem`: with a *solid* owner (existing, not deleting in the
    /// foreground) the object stays and only loses references to owners that are gone or
    /// waiting for it; without one it is deleted — in the foreground when an owner waits and
    /// the object has dependents of its own, else in the background.
    async fn check_owners(&self, uid: &str, node: &Node) -> Result<(), kube::Error> {
        let (dangling, waiting, _) = self.classify_owners(&node.owners, node.namespace.as_deref()).await?;
        if dangling.is_empty() && waiting.is_empty() {
            return Ok(());
        }
        // Act on the object as it is now, not as the graph last saw it (upstream reads it
        // live too). The graph can lag: after an orphaning delete, the owner's removal can
        // arrive before the dependent's update that dropped the reference to it, and the
        // stale reference would make a kept dependent look abandoned.
        let api = self.api_for(node);
        let Some(live) = api.get_metadata_opt(&node.name).await? else { return Ok(()) };
        if live.metadata.uid.as_deref() != Some(uid) || live.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let owners = live.metadata.owner_references.unwrap_or_default();
        if owners.is_empty() {
            return Ok(());
        }
        let (dangling, waiting, solid) = self.classify_owners(&owners, node.namespace.as_deref()).await?;
        if solid > 0 {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            let keep: Vec<&OwnerReference> =
                owners.iter().filter(|o| !dangling.contains(&o.uid) && !waiting.contains(&o.uid)).collect();
            let patch = json!({"metadata": {"uid": uid, "ownerReferences": owner_refs(&keep)}});
            return match api.patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 || s.code == 422 => Ok(()),
                Err(e) => Err(e),
            };
        }
        let has_dependents = !self.graph().dependents_of(uid).is_empty();
        let policy = if !waiting.is_empty() && has_dependents {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
            ..Default::default()
        };
        tracing::debug!(kind = %node.resource.kind, name = %node.name, "deleting an object whose owners are gone");
        match api.delete(&node.name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete_dependents(&self, uid: &str, node: &Node) -> Result<(), kube::Error> {
        let dependents = self.graph().dependents_of(uid);
        let mut blocking = 0;
        for (duid, d) in &dependents {
            let blocks = d.owners.iter().any(|o| o.uid == uid && o.block_owner_deletion == Some(true));
            if blocks {
                blocking += 1;
            }
            if d.deleting {
                continue;
            }
            let dp = DeleteParams {
                propagation_policy: Some(if blocks {
                    PropagationPolicy::Foreground
                } else {
                    PropagationPolicy::Background
                }),
                preconditions: Some(Preconditions { uid: Some(duid.clone()), resource_version: None }),
                ..Default::default()
            };
            match self.api_for(d).delete(&d.name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        if blocking == 0 {
            self.remove_finalizer(node, uid, FOREGROUND).await?;
        }
        Ok(())
    }

    async fn orphan_dependents(&self, uid: &str, node: &Node) -> Result<(), kube::Error> {
        let dependents = self.graph().dependents_of(uid);
        for (duid, d) in dependents {
            let keep: Vec<&OwnerReference> = d.owners.iter().filter(|o| o.uid != uid).collect();
            let patch = json!({"metadata": {"uid": duid, "ownerReferences": owner_refs(&keep)}});
            match self.api_for(&d).patch(&d.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        self.remove_finalizer(node, uid, ORPHAN).await
    }

    async fn remove_finalizer(&self, node: &Node, uid: &str, finalizer: &str) -> Result<(), kube::Error> {
        let api = self.api_for(node);
        // Read-modify-write with the resourceVersion, so a finalizer added meanwhile survives.
        for _ in 0..5 {
            let Some(current) = api.get_metadata_opt(&node.name).await? else { return Ok(()) };
            if current.metadata.uid.as_deref() != Some(uid) {
                return Ok(());
            }
            let finalizers: Vec<String> = current
                .metadata
                .finalizers
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            if Some(&finalizers) == current.metadata.finalizers.as_ref() {
                return Ok(());
            }
            let patch =
                json!({"metadata": {"resourceVersion": current.metadata.resource_version, "finalizers": finalizers}});
            match api.patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => continue,
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::PostParams;
    use skiff_testkit::InProcess;

    use super::*;

    async fn config_map(api: &Api<ConfigMap>, name: &str, owners: Vec<OwnerReference>) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.owner_references = Some(owners).filter(|o| !o.is_empty());
        api.create(&PostParams::default(), &cm).await.expect("create")
    }

    fn node_of(cm: &ConfigMap, owners: Vec<OwnerReference>) -> Node {
        Node {
            resource: Arc::new(ApiResource::erase::<ConfigMap>(&())),
            namespaced: true,
            namespace: Some("default".into()),
            name: cm.metadata.name.clone().unwrap_or_default(),
            owners,
            deleting: false,
            finalizers: Vec::new(),
        }
    }

    fn gone_owner() -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "gone".into(),
            uid: "uid-of-an-owner-that-is-gone".into(),
            ..OwnerReference::default()
        }
    }

    /// The race an orphaning delete can produce: the graph still holds a dependent's
    /// reference to an owner that is gone, but the dependent itself no longer has it. The
    /// dependent must stay.
    #[tokio::test]
    async fn a_stale_reference_to_a_gone_owner_deletes_nothing() {
        let server = InProcess::start().await;
        let client = server.server.client("system:kube-controller-manager", &["system:masters"]);
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let gc = GarbageCollector::new(client);

        let kept = config_map(&cms, "kept", Vec::new()).await;
        let uid = kept.metadata.uid.clone().expect("uid");
        gc.check_owners(&uid, &node_of(&kept, vec![gone_owner()])).await.expect("check");
        assert!(cms.get_opt("kept").await.expect("get").is_some(), "a dependent without owners was deleted");

        // Still referencing the gone owner, live: deleted, as before.
        let abandoned = config_map(&cms, "abandoned", vec![gone_owner()]).await;
        let uid = abandoned.metadata.uid.clone().expect("uid");
        gc.check_owners(&uid, &node_of(&abandoned, vec![gone_owner()])).await.expect("check");
        assert!(cms.get_opt("abandoned").await.expect("get").is_none(), "an abandoned dependent was kept");
    }
}
