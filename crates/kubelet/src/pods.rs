//! The pod manager: one watch on the pods bound to this node (`spec.nodeName=<node>`), one
//! [`Worker`] per pod, and upstream's PLEG in small — one relist of the runtime every
//! `relist_interval` that wakes the workers whose containers changed. It also adopts what a
//! previous run left running (fail-static), and removes sandboxes whose pod no longer exists.
//!
//! A pod that never ran here passes [`admission`](crate::admission) first, against the live
//! pods already admitted; a rejected pod gets no worker, only its `Failed` status and a Warning
//! event (upstream `HandlePodAdditions` → `canAdmitPod` → `rejectPod`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use skiff_events::{Recorder, Reporter};
use skiff_runtime::Runtime;
use skiff_runtime::cri::{ContainerFilter, ContainerState, ContainerStatus};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::KubeletConfig;
use crate::admission::{self, Rejection};
use crate::convert::{self, POD_UID_LABEL};
use crate::worker::{self, Adopted, PodUpdate, Shared, Worker};

/// How long to wait before writing a rejected pod's status again after a failure.
const STATUS_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// What the kubelet API needs about a pod: the pod, its sandbox and its containers.
#[derive(Clone, Debug, Default)]
struct Entry {
    pod: Option<Pod>,
    sandbox: Option<String>,
    /// By container name: (attempt, id, running), newest first.
    containers: BTreeMap<String, Vec<(u32, String, bool)>>,
}

/// The pods this kubelet runs, by `namespace/name`, as their workers last reported.
#[derive(Default)]
pub(crate) struct Registry {
    pods: Mutex<HashMap<String, Entry>>,
}

impl Registry {
    fn key(namespace: &str, name: &str) -> String {
        format!("{namespace}/{name}")
    }

    pub(crate) fn update<'a>(
        &self,
        pod: &Pod,
        sandbox: Option<String>,
        containers: impl Iterator<Item = &'a ContainerStatus>,
    ) {
        let mut by_name: BTreeMap<String, Vec<(u32, String, bool)>> = BTreeMap::new();
        for c in containers {
            by_name.entry(c.name.clone()).or_default().push((
                c.attempt,
                c.id.clone(),
                c.state == ContainerState::Running,
            ));
        }
        for v in by_name.values_mut() {
            v.sort_by_key(|c| std::cmp::Reverse(c.0));
        }
        let key = Self::key(convert::namespace(pod), convert::name(pod));
        let entry = Entry { pod: Some(pod.clone()), sandbox, containers: by_name };
        self.pods.lock().unwrap_or_else(PoisonError::into_inner).insert(key, entry);
    }

    pub(crate) fn remove(&self, pod: &Pod) {
        let key = Self::key(convert::namespace(pod), convert::name(pod));
        let mut pods = self.pods.lock().unwrap_or_else(PoisonError::into_inner);
        // Only if it is still this pod (a new pod of the same name may have taken its place).
        if pods.get(&key).and_then(|e| e.pod.as_ref()).and_then(|p| p.metadata.uid.as_deref())
            == pod.metadata.uid.as_deref()
        {
            pods.remove(&key);
        }
    }

    fn with<T>(&self, namespace: &str, name: &str, f: impl FnOnce(&Entry) -> Option<T>) -> Option<T> {
        let pods = self.pods.lock().unwrap_or_else(PoisonError::into_inner);
        pods.get(&Self::key(namespace, name)).and_then(f)
    }
}

struct Handle {
    /// The pod as last seen (what admission counts), and the worker's news feed.
    updates: watch::Sender<PodUpdate>,
    relisted: Arc<Notify>,
    /// What the last relist saw of this pod's containers (to wake the worker on change).
    fingerprint: u64,
    /// Whether the pod was admitted (and so counts against the node); a rejected pod's handle
    /// only lets it be followed until it is gone.
    admitted: bool,
}

impl Handle {
    /// The pod if it still holds resources here: admitted, not terminal, not gone.
    fn live_pod(&self) -> Option<Pod> {
        match &*self.updates.borrow() {
            PodUpdate::Pod(p) if self.admitted && !admission::is_terminal(p) => Some((**p).clone()),
            _ => None,
        }
    }
}

/// Runs the pods bound to this node.
pub struct PodManager {
    shared: Arc<Shared>,
}

impl PodManager {
    pub(crate) fn new(client: kube::Client, runtime: Arc<dyn Runtime>, config: KubeletConfig) -> PodManager {
        let recorder = Recorder::new(
            client.clone(),
            Reporter { controller: "kubelet".into(), instance: Some(config.node_name.clone()) },
        );
        let machine = crate::node::Machine::read(&config.root_dir);
        let (_, allocatable) = crate::node::resources(&machine, &config);
        let volume_host = crate::volumes::VolumeHost {
            node_allocatable: allocatable
                .into_iter()
                .map(|(k, v)| (k, k8s_openapi::apimachinery::pkg::api::resource::Quantity(v)))
                .collect(),
            // Secrets and memory-backed emptyDirs on tmpfs need mount rights.
            tmpfs: nix::unistd::geteuid().is_root(),
        };
        PodManager {
            shared: Arc::new(Shared {
                client,
                runtime,
                config,
                recorder,
                node_memory: machine.memory_bytes,
                registry: Registry::default(),
                volume_host,
            }),
        }
    }

    /// Watch and run pods until `shutdown`; containers keep running afterwards.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let config = &self.shared.config;
        let api: Api<Pod> = Api::all(self.shared.client.clone());
        let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", config.node_name));
        let mut events = watcher(api, wc).default_backoff().boxed();
        let mut handles: HashMap<String, Handle> = HashMap::new();
        let mut workers: JoinSet<String> = JoinSet::new();
        let mut adoptable = self.runtime_by_pod().await;
        let mut listed: Option<HashSet<String>> = None;
        // The pods of a (re)list, applied together once it is complete.
        let mut initial: Vec<Pod> = Vec::new();
        let mut relist = tokio::time::interval(config.relist_interval);
        relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut housekeeping_due = 0u32;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                ev = events.next() => {
                    let Some(ev) = ev else { break };
                    match ev {
                        Ok(watcher::Event::Init) => {
                            listed = Some(HashSet::new());
                            initial.clear();
                        }
                        Ok(watcher::Event::InitApply(pod)) => {
                            if let (Some(l), Some(u)) = (listed.as_mut(), pod.metadata.uid.clone()) {
                                l.insert(u);
                            }
                            initial.push(pod);
                        }
                        Ok(watcher::Event::InitDone) => {
                            // Pods that need no admission (known, already running, finished)
                            // first, so new pods are admitted against everything that runs;
                            // new pods oldest first, as upstream sorts pod additions.
                            let mut batch = std::mem::take(&mut initial);
                            batch.sort_by_cached_key(|p| {
                                let uid = p.metadata.uid.as_deref().unwrap_or_default();
                                let known = handles.contains_key(uid) || adoptable.contains_key(uid);
                                let new = !known && admission::needs_admission(p, false);
                                (new, p.metadata.creation_timestamp.as_ref().map(|t| t.0))
                            });
                            for pod in batch {
                                self.apply(pod, &mut handles, &mut workers, &mut adoptable, &shutdown).await;
                            }
                            // Pods that went away while we were not watching.
                            if let Some(seen) = listed.take() {
                                for (uid, h) in &handles {
                                    if !seen.contains(uid) {
                                        let _ = h.updates.send(PodUpdate::Gone);
                                    }
                                }
                                self.remove_orphans(&handles, &mut adoptable).await;
                            }
                        }
                        Ok(watcher::Event::Apply(pod)) => {
                            self.apply(pod, &mut handles, &mut workers, &mut adoptable, &shutdown).await;
                        }
                        Ok(watcher::Event::Delete(pod)) => {
                            if let Some(h) = pod.metadata.uid.as_ref().and_then(|u| handles.get(u)) {
                                let _ = h.updates.send(PodUpdate::Gone);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "watching this node's pods"),
                    }
                }
                Some(done) = workers.join_next() => {
                    if let Ok(uid) = done {
                        handles.remove(&uid);
                    }
                }
                _ = relist.tick() => {
                    self.relist(&mut handles).await;
                    housekeeping_due += 1;
                    if housekeeping_due >= 10 && listed.is_none() {
                        housekeeping_due = 0;
                        let mut none = HashMap::new();
                        self.remove_orphans(&handles, &mut none).await;
                    }
                }
            }
        }
        // Workers return on shutdown without touching containers.
        while workers.join_next().await.is_some() {}
    }

    /// Hand the pod to its worker; a pod seen for the first time gets one, once admitted.
    async fn apply(
        &self,
        pod: Pod,
        handles: &mut HashMap<String, Handle>,
        workers: &mut JoinSet<String>,
        adoptable: &mut HashMap<String, Adopted>,
        shutdown: &CancellationToken,
    ) {
        let Some(uid) = pod.metadata.uid.clone() else { return };
        if let Some(h) = handles.get(&uid) {
            // `send_replace`: the latest pod is kept even when its worker is done listening.
            h.updates.send_replace(PodUpdate::Pod(Box::new(pod)));
            return;
        }
        let (tx, rx) = watch::channel(PodUpdate::Pod(Box::new(pod.clone())));
        let relisted = Arc::new(Notify::new());
        let adopted = adoptable.remove(&uid);
        if admission::needs_admission(&pod, adopted.is_some()) {
            let admitted: Vec<Pod> = handles.values().filter_map(Handle::live_pod).collect();
            let node = self.node().await;
            if let Err(rejection) = admission::admit(&pod, &admitted, &node, &self.shared.volume_host.node_allocatable)
            {
                tracing::info!(
                    pod = %format!("{}/{}", convert::namespace(&pod), convert::name(&pod)),
                    reason = %rejection.reason,
                    message = %rejection.message,
                    "pod admission denied"
                );
                workers.spawn(run_rejected(self.shared.clone(), pod, rejection, rx, shutdown.clone()));
                handles.insert(uid, Handle { updates: tx, relisted, fingerprint: 0, admitted: false });
                return;
            }
        }
        let worker = Worker::new(self.shared.clone(), pod, rx, relisted.clone(), adopted.unwrap_or_default());
        let stop = shutdown.clone();
        let u = uid.clone();
        workers.spawn(async move {
            worker.run(stop).await;
            u
        });
        handles.insert(uid, Handle { updates: tx, relisted, fingerprint: 0, admitted: true });
    }

    /// This node as admission sees it: the Node object, or when it cannot be read the one this
    /// kubelet registers (upstream's `getNodeAnyWay` falls back on its initial node the same way).
    async fn node(&self) -> Node {
        let config = &self.shared.config;
        let nodes: Api<Node> = Api::all(self.shared.client.clone());
        match nodes.get(&config.node_name).await {
            Ok(node) => node,
            Err(e) => {
                let name = &config.node_name;
                tracing::warn!(node = %name, error = %e, "reading the node for admission failed; using its registered form");
                crate::node::node_object(config)
            }
        }
    }

    /// Sandboxes and containers in the runtime, grouped by pod uid.
    async fn runtime_by_pod(&self) -> HashMap<String, Adopted> {
        let rt = &self.shared.runtime;
        let mut out: HashMap<String, Adopted> = HashMap::new();
        let sandboxes = rt.list_pod_sandboxes().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "listing sandboxes");
            Vec::new()
        });
        let mut pod_of: HashMap<String, String> = HashMap::new();
        for s in sandboxes {
            let uid = s.labels.get(POD_UID_LABEL).cloned().unwrap_or_else(|| s.uid.clone());
            pod_of.insert(s.id.clone(), uid.clone());
            out.entry(uid).or_default().sandboxes.push(s);
        }
        for c in rt.list_containers(&ContainerFilter::default()).await.unwrap_or_default() {
            let uid = c.labels.get(POD_UID_LABEL).cloned().or_else(|| pod_of.get(&c.sandbox_id).cloned());
            if let Some(uid) = uid {
                out.entry(uid).or_default().containers.push(c);
            }
        }
        out
    }

    /// Wake the workers whose containers changed since the last relist.
    async fn relist(&self, handles: &mut HashMap<String, Handle>) {
        if handles.is_empty() {
            return;
        }
        let Ok(containers) = self.shared.runtime.list_containers(&ContainerFilter::default()).await else { return };
        let mut prints: HashMap<&str, u64> = HashMap::new();
        for c in &containers {
            let Some(uid) = c.labels.get(POD_UID_LABEL) else { continue };
            let h = prints.entry(uid.as_str()).or_insert(0);
            *h = h.wrapping_add(fingerprint(c));
        }
        for (uid, h) in handles.iter_mut() {
            let print = prints.get(uid.as_str()).copied().unwrap_or(0);
            if print != h.fingerprint {
                h.fingerprint = print;
                h.relisted.notify_one();
            }
        }
    }

    /// Remove sandboxes (and their containers) of pods that are not ours any more.
    async fn remove_orphans(&self, handles: &HashMap<String, Handle>, adoptable: &mut HashMap<String, Adopted>) {
        let rt = &self.shared.runtime;
        let current = self.runtime_by_pod().await;
        for (uid, found) in current {
            if handles.contains_key(&uid) {
                continue;
            }
            adoptable.remove(&uid);
            for s in &found.sandboxes {
                tracing::info!(pod = %format!("{}/{}", s.namespace, s.name), "removing the sandbox of a pod that is gone");
                let _ = rt.stop_pod_sandbox(&s.id).await;
                if let Err(e) = rt.remove_pod_sandbox(&s.id).await {
                    tracing::warn!(error = %e, "removing an orphaned sandbox");
                }
                let dir = self.shared.config.logs_dir.join(format!("{}_{}_{}", s.namespace, s.name, uid));
                let _ = std::fs::remove_dir_all(dir);
            }
            for c in &found.containers {
                let _ = rt.remove_container(&c.id).await;
            }
            if !uid.is_empty() {
                let _ = std::fs::remove_dir_all(self.shared.config.pods_dir.join(&uid));
            }
        }
    }
}

/// What the kubelet API looks pods and containers up in.
impl crate::server::PodLookup for PodManager {
    fn sandbox(&self, namespace: &str, pod: &str) -> Option<String> {
        self.shared.registry.with(namespace, pod, |e| e.sandbox.clone())
    }

    /// The newest instance, or with `previous` the one before it.
    fn container(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Option<String> {
        self.shared.registry.with(namespace, pod, |e| {
            let list = e.containers.get(container)?;
            list.get(usize::from(previous)).map(|(_, id, _)| id.clone())
        })
    }

    fn pods(&self) -> Vec<Pod> {
        let pods = self.shared.registry.pods.lock().unwrap_or_else(PoisonError::into_inner);
        pods.values().filter_map(|e| e.pod.clone()).collect()
    }
}

/// A pod admission turned down: nothing is started for it. Records the Warning event, writes
/// the `Failed` status (retried until it lands, or the pod is gone or replaced), then follows the
/// pod until it is gone: one deleted before its status landed waits for the kubelet to delete it
/// for good, as the worker does once a pod's containers are gone — here there never were any.
/// Returns the pod's uid, like a worker.
async fn run_rejected(
    shared: Arc<Shared>,
    mut pod: Pod,
    rejection: Rejection,
    mut updates: watch::Receiver<PodUpdate>,
    shutdown: CancellationToken,
) -> String {
    updates.mark_unchanged();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let key = format!("{}/{}", convert::namespace(&pod), convert::name(&pod));
    let reference = worker::pod_reference(&pod);
    worker::record(&shared.recorder, &reference, true, &rejection.reason, rejection.message.clone()).await;
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), convert::namespace(&pod));
    let mut written = false;
    loop {
        if !written {
            let patch = admission::rejected_status(&pod, &rejection, jiff::Timestamp::now());
            match pods.patch_status(convert::name(&pod), &PatchParams::default(), &Patch::Strategic(patch)).await {
                Ok(_) => written = true,
                // Gone, or the name now belongs to another pod (the uid precondition failed).
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return uid,
                Err(e) => tracing::warn!(pod = %key, error = %e, "writing a rejected pod's status failed; retrying"),
            }
        }
        if written && pod.metadata.deletion_timestamp.is_some() {
            worker::final_delete(&shared.client, &pod).await;
            return uid;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return uid,
            r = updates.changed() => if r.is_err() { return uid },
            _ = tokio::time::sleep(STATUS_RETRY), if !written => {}
        }
        match &*updates.borrow_and_update() {
            PodUpdate::Pod(p) => pod = (**p).clone(),
            PodUpdate::Gone => return uid,
        }
    }
}

fn fingerprint(c: &ContainerStatus) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    c.id.hash(&mut h);
    (c.state as u8).hash(&mut h);
    c.finished_at.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests;
