//! The controller manager in process against the in-process API server. Pods are made
//! Running and Ready by a stand-in kubelet (a watch that patches pods/status), so rollouts can
//! complete without nodes.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::watcher;
use serde_json::json;
use skiff_testkit::InProcess;
use tokio_util::sync::CancellationToken;

struct Env {
    api: InProcess,
    client: kube::Client,
    stop: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The API server, the controller manager, and (with `kubelet`) pods becoming Ready after
/// `ready_after`.
async fn env(kubelet: Option<Duration>) -> Env {
    env_with(kubelet, Default::default()).await
}

async fn env_with(
    kubelet: Option<Duration>,
    node_lifecycle: skiff_controllers::nodelifecycle::NodeLifecycleConfig,
) -> Env {
    let api = InProcess::start().await;
    let stop = CancellationToken::new();
    let cm_client = api.server.client("system:kube-controller-manager", &["system:masters"]);
    let config = skiff_controllers::Config {
        root_ca_pem: "-----BEGIN CERTIFICATE-----\ntest\n".into(),
        workers: 2,
        node_lifecycle,
        ..Default::default()
    };
    tokio::spawn(skiff_controllers::ControllerManager::new(cm_client, config).run(stop.clone()));
    let client = api.server.client("admin", &["system:masters"]);
    if let Some(delay) = kubelet {
        tokio::spawn(fake_kubelet(api.server.client("system:node:fake", &["system:masters"]), delay, stop.clone()));
    }
    Env { api, client, stop }
}

async fn fake_kubelet(client: kube::Client, delay: Duration, stop: CancellationToken) {
    let pods: Api<Pod> = Api::all(client.clone());
    let mut events = std::pin::pin!(watcher(pods, watcher::Config::default()));
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return,
            ev = events.next() => ev,
        };
        let Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) = ev else { continue };
        let ready = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if ready || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"));
        let name = pod.metadata.name.clone().unwrap_or_default();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let now = k8s_openapi::jiff::Timestamp::now().to_string();
            let patch = json!({"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}});
            let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
        });
    }
}

async fn eventually<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn deployment(name: &str, replicas: i32, image: &str, strategy: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": image}]}}
        }
    }))
    .unwrap()
}

async fn rollout_complete(deploys: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    eventually("the rollout to complete", Duration::from_secs(30), async || {
        let d = deploys.get(name).await.ok()?;
        let s = d.status.clone()?;
        let done = s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && s.available_replicas == Some(replicas);
        done.then_some(d)
    })
    .await
}

/// `kubectl set image` on a Deployment: every observed state keeps the ReplicaSets within
/// `replicas + maxSurge` and the Ready pods at or above `replicas - maxUnavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_stays_within_surge_and_unavailability() {
    let e = env(Some(Duration::from_millis(30))).await;
    let deploys: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    let strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    deploys.create(&PostParams::default(), &deployment("web", 4, "busybox:1", strategy)).await.unwrap();
    let d = rollout_complete(&deploys, "web", 4).await;
    assert_eq!(d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"], "1");
    let progressing = d.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Progressing").unwrap();
    assert_eq!(progressing.reason.as_deref(), Some("NewReplicaSetAvailable"));

    // Watch every step of the next rollout.
    let (tx, mut violations) = tokio::sync::mpsc::unbounded_channel::<String>();
    let watch_stop = CancellationToken::new();
    let (rs_api, pod_api): (Api<ReplicaSet>, Api<Pod>) =
        (Api::namespaced(e.client.clone(), "default"), Api::namespaced(e.client.clone(), "default"));
    let (stop2, tx2) = (watch_stop.clone(), tx.clone());
    let rs_watch = tokio::spawn(async move {
        let mut specs: BTreeMap<String, i32> = BTreeMap::new();
        let mut max_seen = 0;
        let mut s = std::pin::pin!(watcher(rs_api, watcher::Config::default()));
        loop {
            let ev = tokio::select! { _ = stop2.cancelled() => return max_seen, ev = s.next() => ev };
            match ev {
                Some(Ok(watcher::Event::Apply(rs) | watcher::Event::InitApply(rs))) => {
                    specs.insert(rs.metadata.name.clone().unwrap(), rs.spec.unwrap().replicas.unwrap());
                }
                Some(Ok(watcher::Event::Delete(rs))) => {
                    specs.remove(&rs.metadata.name.unwrap());
                }
                _ => continue,
            }
            let total: i32 = specs.values().sum();
            max_seen = max_seen.max(total);
            if total > 5 {
                let _ = tx2.send(format!("replica sets want {total} pods: {specs:?}"));
            }
        }
    });
    let stop3 = watch_stop.clone();
    let pod_watch = tokio::spawn(async move {
        let mut ready: BTreeMap<String, bool> = BTreeMap::new();
        let mut min_seen = i32::MAX;
        let mut s = std::pin::pin!(watcher(pod_api, watcher::Config::default()));
        let mut synced = false;
        loop {
            let ev = tokio::select! { _ = stop3.cancelled() => return min_seen, ev = s.next() => ev };
            match ev {
                Some(Ok(watcher::Event::InitDone)) => synced = true,
                Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => {
                    let r = p.metadata.deletion_timestamp.is_none()
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                    ready.insert(p.metadata.name.unwrap(), r);
                }
                Some(Ok(watcher::Event::Delete(p))) => {
                    ready.remove(&p.metadata.name.unwrap());
                }
                _ => continue,
            }
            if synced {
                let n = ready.values().filter(|r| **r).count() as i32;
                min_seen = min_seen.min(n);
                if n < 3 {
                    let _ = tx.send(format!("only {n} ready pods"));
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}});
    deploys.patch("web", &PatchParams::default(), &Patch::Strategic(&patch)).await.unwrap();
    let d = rollout_complete(&deploys, "web", 4).await;
    assert_eq!(d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"], "2");
    tokio::time::sleep(Duration::from_millis(300)).await;
    watch_stop.cancel();
    let (max_total, min_ready) = (rs_watch.await.unwrap(), pod_watch.await.unwrap());
    violations.close();
    let mut all = Vec::new();
    while let Some(v) = violations.recv().await {
        all.push(v);
    }
    assert!(all.is_empty(), "{all:?}");
    assert_eq!(max_total, 5, "the rollout used its surge");
    assert!(min_ready >= 3, "{min_ready}");
    // The old ReplicaSet is kept, scaled to zero, for rollbacks.
    let sets = Api::<ReplicaSet>::namespaced(e.client.clone(), "default").list(&ListParams::default()).await.unwrap();
    let mut specs: Vec<(String, i32)> = sets
        .items
        .iter()
        .map(|r| {
            (
                r.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"].clone(),
                r.spec.as_ref().unwrap().replicas.unwrap(),
            )
        })
        .collect();
    specs.sort();
    assert_eq!(specs, [("1".to_string(), 0), ("2".to_string(), 4)]);
    let pods = Api::<Pod>::namespaced(e.client.clone(), "default").list(&ListParams::default()).await.unwrap();
    assert_eq!(pods.items.len(), 4);
    assert!(pods.items.iter().all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("busybox:2")));
}

/// Recreate: the old pods are all gone before a new one is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_strategy() {
    let e = env(Some(Duration::from_millis(10))).await;
    let deploys: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    deploys
        .create(&PostParams::default(), &deployment("rc", 3, "busybox:1", json!({"type": "Recreate"})))
        .await
        .unwrap();
    rollout_complete(&deploys, "rc", 3).await;
    let pod_api: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let stop = CancellationToken::new();
    let stop2 = stop.clone();
    let mixed = tokio::spawn(async move {
        let mut images: BTreeMap<String, String> = BTreeMap::new();
        let mut s = std::pin::pin!(watcher(pod_api, watcher::Config::default()));
        let mut mixed = false;
        loop {
            let ev = tokio::select! { _ = stop2.cancelled() => return mixed, ev = s.next() => ev };
            match ev {
                Some(Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p))) => {
                    let image = p.spec.unwrap().containers[0].image.clone().unwrap();
                    images.insert(p.metadata.name.unwrap(), image);
                }
                Some(Ok(watcher::Event::Delete(p))) => {
                    images.remove(&p.metadata.name.unwrap());
                }
                _ => continue,
            }
            let kinds: std::collections::BTreeSet<&String> = images.values().collect();
            mixed |= kinds.len() > 1;
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}});
    deploys.patch("rc", &PatchParams::default(), &Patch::Strategic(&patch)).await.unwrap();
    rollout_complete(&deploys, "rc", 3).await;
    stop.cancel();
    assert!(!mixed.await.unwrap(), "old and new pods ran at the same time");
}

/// A ReplicaSet adopts a matching orphan, replaces deleted pods, and deletes surplus ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_adopts_replaces_and_scales() {
    let e = env(None).await;
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let orphan: Pod = serde_json::from_value(json!({"metadata": {"name": "orphan", "labels": {"app": "rs"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    // Let the controllers' pod watch see the orphan first (otherwise the ReplicaSet creates
    // three pods and then, rightly, deletes one surplus pod, which may be the orphan).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rs: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": "rs"}, "spec": {"replicas": 3,
        "selector": {"matchLabels": {"app": "rs"}},
        "template": {"metadata": {"labels": {"app": "rs"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))
    .unwrap();
    let sets: Api<ReplicaSet> = Api::namespaced(e.client.clone(), "default");
    sets.create(&PostParams::default(), &rs).await.unwrap();
    let count = async |n: usize| {
        eventually(&format!("{n} pods"), Duration::from_secs(30), async || {
            let l = pods.list(&ListParams::default()).await.ok()?;
            (l.items.len() == n).then_some(l.items)
        })
        .await
    };
    let items = count(3).await;
    let adopted = items.iter().find(|p| p.metadata.name.as_deref() == Some("orphan")).unwrap();
    assert_eq!(adopted.metadata.owner_references.as_ref().unwrap()[0].name, "rs");
    assert!(
        items
            .iter()
            .all(|p| p.metadata.name.as_deref() == Some("orphan")
                || p.metadata.name.as_ref().unwrap().starts_with("rs-"))
    );
    let st = eventually("status", Duration::from_secs(30), async || {
        let r = sets.get("rs").await.ok()?;
        r.status.filter(|s| s.replicas == 3 && s.observed_generation == Some(1))
    })
    .await;
    assert_eq!(st.fully_labeled_replicas, Some(3));
    pods.delete("orphan", &DeleteParams::default()).await.unwrap();
    let items = count(3).await;
    assert!(items.iter().all(|p| p.metadata.name.as_deref() != Some("orphan")));
    sets.patch("rs", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"replicas": 1}}))).await.unwrap();
    count(1).await;
}

/// Deletion modes: background (the default) removes dependents after the owner, foreground
/// keeps the owner until its dependents are gone, orphan leaves them without the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collector_deletion_modes() {
    let e = env(None).await;
    let deploys: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(e.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let pods_of =
        async |app: &str| pods.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items;
    for name in ["bg", "fg", "or"] {
        deploys.create(&PostParams::default(), &deployment(name, 2, "busybox", json!({}))).await.unwrap();
    }
    for name in ["bg", "fg", "or"] {
        eventually("pods", Duration::from_secs(30), async || (pods_of(name).await.len() == 2).then_some(())).await;
    }
    deploys.delete("bg", &DeleteParams::default()).await.unwrap();
    eventually("background cascade", Duration::from_secs(30), async || {
        let rs = sets.list(&ListParams::default().labels("app=bg")).await.ok()?;
        (rs.items.is_empty() && pods_of("bg").await.is_empty()).then_some(())
    })
    .await;

    deploys
        .delete("fg", &DeleteParams { propagation_policy: Some(PropagationPolicy::Foreground), ..Default::default() })
        .await
        .unwrap();
    // Right after the call the owner still exists, marked, with the finalizer.
    if let Ok(d) = deploys.get("fg").await {
        assert!(d.metadata.deletion_timestamp.is_some());
    }
    eventually("foreground cascade", Duration::from_secs(30), async || {
        let gone = deploys.get_opt("fg").await.ok()?.is_none();
        let rs = sets.list(&ListParams::default().labels("app=fg")).await.ok()?;
        (gone && rs.items.is_empty() && pods_of("fg").await.is_empty()).then_some(())
    })
    .await;

    deploys
        .delete("or", &DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), ..Default::default() })
        .await
        .unwrap();
    let rs = eventually("orphaned replica set", Duration::from_secs(30), async || {
        let gone = deploys.get_opt("or").await.ok()?.is_none();
        let rs = sets.list(&ListParams::default().labels("app=or")).await.ok()?.items;
        (gone && rs.len() == 1 && rs[0].metadata.owner_references.as_ref().is_none_or(|o| o.is_empty()))
            .then(|| rs[0].clone())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(pods_of("or").await.len(), 2, "orphaned pods are kept");
    assert!(sets.get_opt(rs.metadata.name.as_deref().unwrap()).await.unwrap().is_some());
}

/// Every namespace gets the `default` ServiceAccount and `kube-root-ca.crt`, also after they
/// are deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_defaults() {
    let e = env(None).await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    Api::<Namespace>::all(e.client.clone()).create(&PostParams::default(), &ns).await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(e.client.clone(), "team");
    let cms: Api<ConfigMap> = Api::namespaced(e.client.clone(), "team");
    eventually("defaults", Duration::from_secs(30), async || {
        let sa = sas.get_opt("default").await.ok()??;
        let cm = cms.get_opt("kube-root-ca.crt").await.ok()??;
        assert_eq!(cm.data.unwrap()["ca.crt"], "-----BEGIN CERTIFICATE-----\ntest\n");
        Some(sa)
    })
    .await;
    cms.delete("kube-root-ca.crt", &DeleteParams::default()).await.unwrap();
    sas.delete("default", &DeleteParams::default()).await.unwrap();
    eventually("defaults again", Duration::from_secs(30), async || {
        (sas.get_opt("default").await.ok()?.is_some() && cms.get_opt("kube-root-ca.crt").await.ok()?.is_some())
            .then_some(())
    })
    .await;
    let _ = &e.api;
}

/// A PodDisruptionBudget's status follows its pods, and the eviction subresource honours it:
/// 201 while disruptions are allowed, 429 with upstream's message when not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disruption_budgets_and_eviction() {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::api::EvictParams;
    let e = env(Some(Duration::from_millis(300))).await;
    let deploys: Api<Deployment> = Api::namespaced(e.client.clone(), "default");
    deploys.create(&PostParams::default(), &deployment("db", 3, "busybox", json!({}))).await.unwrap();
    rollout_complete(&deploys, "db", 3).await;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(e.client.clone(), "default");
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "db"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}}))
    .unwrap();
    budgets.create(&PostParams::default(), &pdb).await.unwrap();
    let status = eventually("budget status", Duration::from_secs(30), async || {
        budgets.get("db").await.ok()?.status.filter(|s| s.observed_generation == Some(1) && s.current_healthy == 3)
    })
    .await;
    assert_eq!((status.desired_healthy, status.expected_pods, status.disruptions_allowed), (2, 3, 1));

    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let names: Vec<String> = pods
        .list(&ListParams::default().labels("app=db"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect();
    pods.evict(&names[0], &EvictParams::default()).await.unwrap();
    let err = pods.evict(&names[1], &EvictParams::default()).await.unwrap_err();
    let kube::Error::Api(s) = &err else { panic!("{err:?}") };
    assert_eq!((s.code, s.reason.as_str()), (429, "TooManyRequests"), "{s:?}");
    assert_eq!(s.message, "Cannot evict pod as it would violate the pod's disruption budget.");
    let causes = s.details.as_ref().map(|d| d.causes.clone()).unwrap_or_default();
    assert_eq!(causes[0].reason, "DisruptionBudget");
    assert!(pods.get_opt(&names[1]).await.unwrap().is_some(), "a refused eviction deletes nothing");
    // The replacement becomes ready, the budget allows one disruption again.
    eventually("budget recovers", Duration::from_secs(30), async || {
        let s = budgets.get("db").await.ok()?.status?;
        (s.current_healthy == 3 && s.disruptions_allowed == 1).then_some(())
    })
    .await;
    pods.evict(&names[1], &EvictParams::default()).await.unwrap();
    // Evicting a pod that does not exist is a 404.
    let err = pods.evict("nope", &EvictParams::default()).await.unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 404), "{err:?}");
}

/// A node that stops renewing its lease becomes Unknown and tainted unreachable; its pods are
/// evicted when their tolerationSeconds run out (an untolerating pod at once); cordon adds the
/// unschedulable taint; pods of a deleted node are garbage-collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_lifecycle_taints_and_evictions() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::Node;
    let cfg = skiff_controllers::nodelifecycle::NodeLifecycleConfig {
        monitor_period: Duration::from_millis(200),
        grace_period: Duration::from_secs(2),
        terminated_pod_threshold: 1,
    };
    let e = env_with(None, cfg).await;
    let now = k8s_openapi::jiff::Timestamp::now();
    let nodes: Api<Node> = Api::all(e.client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status", "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}]}});
    nodes.patch_status("n1", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    let leases: Api<Lease> = Api::namespaced(e.client.clone(), "kube-node-lease");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "n1"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                 "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}}))
    .unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let pod = |name: &str, tolerations: serde_json::Value| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"nodeName": "n1",
            "containers": [{"name": "c", "image": "busybox"}], "tolerations": tolerations}}))
        .unwrap()
    };
    // Admission gives "patient" the default 300 s tolerations; "short" tolerates 1 s.
    pods.create(&PostParams::default(), &pod("patient", json!([]))).await.unwrap();
    let short = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]);
    pods.create(&PostParams::default(), &pod("short", short)).await.unwrap();
    // Cordon: the unschedulable taint appears while the node is healthy.
    nodes.patch("n1", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"unschedulable": true}}))).await.unwrap();
    let taints = async || -> Vec<(String, String)> {
        let n = nodes.get("n1").await.unwrap();
        let mut t: Vec<(String, String)> =
            n.spec.unwrap().taints.unwrap_or_default().into_iter().map(|t| (t.key, t.effect)).collect();
        t.sort();
        t
    };
    eventually("cordon taint", Duration::from_secs(5), async || {
        (taints().await == [("node.kubernetes.io/unschedulable".to_string(), "NoSchedule".to_string())]).then_some(())
    })
    .await;
    // The lease is not renewed: Unknown, unreachable taints.
    let n = eventually("node Unknown", Duration::from_secs(30), async || {
        let n = nodes.get("n1").await.ok()?;
        let ready = n.status.clone()?.conditions?.into_iter().find(|c| c.type_ == "Ready")?;
        (ready.status == "Unknown").then_some(ready)
    })
    .await;
    assert_eq!(n.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(n.message.as_deref(), Some("Kubelet stopped posting node status."));
    let want: Vec<(String, String)> = [
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    eventually("unreachable taints", Duration::from_secs(5), async || (taints().await == want).then_some(())).await;
    // "short" is evicted (bound, so it waits Terminating for a kubelet that is gone);
    // "patient" stays for its 300 s.
    eventually("short evicted", Duration::from_secs(30), async || {
        pods.get("short").await.ok()?.metadata.deletion_timestamp.map(|_| ())
    })
    .await;
    assert!(pods.get("patient").await.unwrap().metadata.deletion_timestamp.is_none());
    // Finished pods beyond the threshold (1 here) go, oldest first.
    for name in ["done-1", "done-2"] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
        let st = json!({"status": {"phase": "Succeeded"}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&st)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    eventually("oldest finished pod collected", Duration::from_secs(30), async || {
        (pods.get_opt("done-1").await.ok()?.is_none() && pods.get_opt("done-2").await.ok()?.is_some()).then_some(())
    })
    .await;
    pods.delete("done-2", &DeleteParams::default()).await.unwrap();
    // The node is deleted: pod GC removes its pods for good.
    nodes.delete("n1", &DeleteParams::default()).await.unwrap();
    eventually("pods collected", Duration::from_secs(30), async || {
        pods.list(&ListParams::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
}

/// ReplicationControllers (core/v1) run on the ReplicaSet logic: pods owned by the RC, status,
/// scaling through the scale subresource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controllers() {
    use k8s_openapi::api::core::v1::ReplicationController;
    let e = env(Some(Duration::from_millis(10))).await;
    let rcs: Api<ReplicationController> = Api::namespaced(e.client.clone(), "default");
    let rc: ReplicationController = serde_json::from_value(json!({"metadata": {"name": "legacy"}, "spec": {"replicas": 2,
        "selector": {"app": "legacy"},
        "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))
    .unwrap();
    rcs.create(&PostParams::default(), &rc).await.unwrap();
    let st = eventually("rc status", Duration::from_secs(30), async || {
        rcs.get("legacy").await.ok()?.status.filter(|s| s.replicas == 2 && s.available_replicas == Some(2))
    })
    .await;
    assert_eq!((st.ready_replicas, st.fully_labeled_replicas, st.observed_generation), (Some(2), Some(2), Some(1)));
    let pods: Api<Pod> = Api::namespaced(e.client.clone(), "default");
    let items = pods.list(&ListParams::default().labels("app=legacy")).await.unwrap().items;
    assert_eq!(items.len(), 2);
    for p in &items {
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.api_version.as_str(), owner.name.as_str()),
            ("ReplicationController", "v1", "legacy")
        );
        assert!(p.metadata.name.as_ref().unwrap().starts_with("legacy-"));
    }
    rcs.patch_scale("legacy", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"replicas": 0}}))).await.unwrap();
    eventually("scaled to zero", Duration::from_secs(30), async || {
        pods.list(&ListParams::default().labels("app=legacy")).await.ok()?.items.is_empty().then_some(())
    })
    .await;
}

/// Leader election through a Lease: one candidate works at a time; a clean stop hands over at
/// once, a crashed leader is replaced after the lease expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_hands_over() {
    use skiff_controllers::leader::LeaderElection;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let api = InProcess::start().await;
    let client = api.server.client("system:kube-controller-manager", &["system:masters"]);
    let leading = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let max_concurrent = Arc::new(AtomicUsize::new(0));
    let candidate = |id: &str, stop: CancellationToken| {
        let mut e = LeaderElection::new("test-lease", id);
        e.lease_duration = Duration::from_secs(2);
        e.renew_deadline = Duration::from_millis(1500);
        e.retry_period = Duration::from_millis(200);
        let (leading, max_concurrent, client, id) =
            (leading.clone(), max_concurrent.clone(), client.clone(), id.to_string());
        tokio::spawn(async move {
            e.run(client, stop, |lost| {
                let (leading, max_concurrent, id) = (leading.clone(), max_concurrent.clone(), id.clone());
                async move {
                    let n = {
                        let mut l = leading.lock().unwrap();
                        l.push(id.clone());
                        l.len()
                    };
                    max_concurrent.fetch_max(n, Ordering::SeqCst);
                    lost.cancelled().await;
                    leading.lock().unwrap().retain(|x| *x != id);
                }
            })
            .await
        })
    };
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = candidate("a", stop_a.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = candidate("b", stop_b.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(*leading.lock().unwrap(), ["a"]);
    // A clean stop releases the lease: b leads within a retry period or two.
    stop_a.cancel();
    a.await.unwrap();
    eventually("b leads", Duration::from_secs(3), async || (*leading.lock().unwrap() == ["b"]).then_some(())).await;
    // A crash (no release): a new candidate waits for the lease to expire.
    b.abort();
    let _ = b.await;
    // A crashed process leads nothing (its work was dropped without cleaning up).
    leading.lock().unwrap().retain(|x| x != "b");
    let started = tokio::time::Instant::now();
    let stop_c = CancellationToken::new();
    let c = candidate("c", stop_c.clone());
    eventually("c leads", Duration::from_secs(10), async || {
        leading.lock().unwrap().contains(&"c".to_string()).then_some(())
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(1000), "took over a live lease after {:?}", started.elapsed());
    assert_eq!(max_concurrent.load(Ordering::SeqCst), 1, "two leaders at once");
    stop_c.cancel();
    c.await.unwrap();
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        api.server.client("admin", &["system:masters"]),
        "kube-system",
    )
    .get("test-lease")
    .await
    .unwrap();
    assert_eq!(lease.spec.unwrap().lease_transitions, Some(2));
}
