use std::time::Duration;

use k8s_openapi::api::events::v1::Event as ApiEvent;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;
use skiff_runtime::{FakeCall, FakeRuntime};

use super::*;

fn handle(phase: &str, admitted: bool) -> Handle {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p", "uid": "u"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": phase}
    }))
    .unwrap();
    let (updates, _) = watch::channel(PodUpdate::Pod(Box::new(pod)));
    Handle { updates, relisted: Arc::new(Notify::new()), fingerprint: 0, admitted }
}

#[test]
fn admission_counts_live_admitted_pods_only() {
    assert!(handle("Running", true).live_pod().is_some());
    assert!(handle("Pending", true).live_pod().is_some());
    // Finished pods hold nothing; rejected pods never held anything.
    assert!(handle("Succeeded", true).live_pod().is_none());
    assert!(handle("Failed", true).live_pod().is_none());
    assert!(handle("Pending", false).live_pod().is_none());
    // Gone from the API: not counted any more, even before its worker is done.
    let gone = handle("Running", true);
    gone.updates.send_replace(PodUpdate::Gone);
    assert!(gone.live_pod().is_none());
    // The latest pod is what counts, even when its worker no longer listens.
    let h = handle("Running", true);
    let finished: Pod =
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": {"phase": "Failed"}})).unwrap();
    h.updates.send_replace(PodUpdate::Pod(Box::new(finished)));
    assert!(h.live_pod().is_none());
}

/// Polls `f` every 50 ms for up to 20 s.
async fn until<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    for _ in 0..400 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn sandboxes_of(rt: &FakeRuntime, pod: &str) -> usize {
    rt.calls().iter().filter(|c| matches!(c, FakeCall::RunPodSandbox { name, .. } if name == pod)).count()
}

fn pod_on_n1(name: &str, extra: serde_json::Value) -> Pod {
    let mut spec = json!({
        "nodeName": "n1",
        "automountServiceAccountToken": false,
        "containers": [{"name": "c", "image": "busybox"}]
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// The pod manager against the in-process API server and the fake runtime: a pod beyond the
/// node's pod capacity and one that does not tolerate the node's NoExecute taint are failed
/// with upstream's reason and message and a Warning event, and never get a sandbox; once the
/// admitted pod is gone, its place is free again; a restarted kubelet never rejects what runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_do_not_fit_are_rejected_and_never_started() {
    let api = skiff_testkit::InProcess::start().await;
    let client = api.server.client("system:node:n1", &["system:nodes", "system:masters"]);
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "spec": {"taints": [{"key": "dedicated", "value": "infra", "effect": "NoExecute"}]}
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut config = KubeletConfig::new("n1", dir.path());
    config.max_pods = 1;
    config.relist_interval = Duration::from_millis(100);
    let runtime = Arc::new(FakeRuntime::new());
    let manager = Arc::new(PodManager::new(client.clone(), runtime.clone(), config));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(manager.run(shutdown.clone()));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let tolerates = json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]});
    pods.create(&PostParams::default(), &pod_on_n1("first", tolerates.clone())).await.unwrap();
    until("the first pod's sandbox", || async { (sandboxes_of(&runtime, "first") > 0).then_some(()) }).await;

    // Over capacity: OutOfpods.
    pods.create(&PostParams::default(), &pod_on_n1("second", tolerates.clone())).await.unwrap();
    let failed = |name: &'static str| {
        let pods = pods.clone();
        async move {
            let p = pods.get(name).await.ok()?;
            let s = p.status?;
            (s.phase.as_deref() == Some("Failed")).then_some(s)
        }
    };
    let status = until("the second pod to fail", || failed("second")).await;
    assert_eq!(status.reason.as_deref(), Some("OutOfpods"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1")
    );
    assert!(status.start_time.is_some());
    assert!(status.conditions.iter().flatten().all(|c| c.type_ != "PodScheduled"), "{:?}", status.conditions);
    let events: Api<ApiEvent> = Api::namespaced(client.clone(), "default");
    let event = until("the rejection event", || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items.into_iter().find(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("second"))
        }
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.reason.as_deref(), Some("OutOfpods"));
    assert_eq!(
        event.note.as_deref(),
        Some("Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1")
    );

    // A failed pod is deleted at once, by the API server.
    pods.delete("second", &DeleteParams::default()).await.unwrap();
    until("the second pod to be gone", || {
        let pods = pods.clone();
        async move { pods.get_opt("second").await.ok().and_then(|p| p.is_none().then_some(())) }
    })
    .await;

    // Once the first pod is gone its place is free, but the NoExecute taint still rejects
    // a pod that does not tolerate it.
    pods.delete("first", &DeleteParams::default()).await.unwrap();
    until("the first pod to be gone", || {
        let pods = pods.clone();
        async move { pods.get_opt("first").await.ok().and_then(|p| p.is_none().then_some(())) }
    })
    .await;
    pods.create(&PostParams::default(), &pod_on_n1("intolerant", json!({}))).await.unwrap();
    let status = until("the intolerant pod to fail", || failed("intolerant")).await;
    assert_eq!(status.reason.as_deref(), Some("TaintToleration"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was rejected: Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate")
    );
    pods.create(&PostParams::default(), &pod_on_n1("third", tolerates)).await.unwrap();
    until("the third pod's sandbox", || async { (sandboxes_of(&runtime, "third") > 0).then_some(()) }).await;

    assert_eq!(sandboxes_of(&runtime, "second"), 0);
    assert_eq!(sandboxes_of(&runtime, "intolerant"), 0);
    shutdown.cancel();
    running.await.unwrap();

    // A restarted kubelet with room for no pod at all adopts the running pod without judging
    // it, and counts it against a new one.
    let mut config = KubeletConfig::new("n1", dir.path());
    config.max_pods = 0;
    let manager = Arc::new(PodManager::new(client.clone(), runtime.clone(), config));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(manager.run(shutdown.clone()));
    pods.create(&PostParams::default(), &pod_on_n1("fourth", json!({}))).await.unwrap();
    let status = until("the fourth pod to fail", || failed("fourth")).await;
    assert_eq!(status.reason.as_deref(), Some("OutOfpods"));
    assert_eq!(
        status.message.as_deref(),
        Some("Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 0")
    );
    let third = pods.get("third").await.unwrap();
    assert_ne!(third.status.and_then(|s| s.phase).as_deref(), Some("Failed"));
    assert_eq!(sandboxes_of(&runtime, "third"), 1);
    shutdown.cancel();
    running.await.unwrap();
}

/// A sandbox that dies under a running pod is re-created with its containers, and restart
/// counts go on from where they were (upstream counts across sandboxes too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_counts_survive_a_new_sandbox() {
    let api = skiff_testkit::InProcess::start().await;
    let client = api.server.client("system:node:n1", &["system:nodes", "system:masters"]);
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = KubeletConfig::new("n1", dir.path());
    config.relist_interval = Duration::from_millis(100);
    let runtime = Arc::new(FakeRuntime::new());
    let manager = Arc::new(PodManager::new(client.clone(), runtime.clone(), config));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(manager.run(shutdown.clone()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod_on_n1("web", json!({}))).await.unwrap();
    let restarts_when_running = |pods: Api<Pod>| async move {
        let p = pods.get("web").await.ok()?;
        let cs = p.status?.container_statuses?.into_iter().next()?;
        cs.state.and_then(|s| s.running).map(|_| cs.restart_count)
    };
    assert_eq!(until("web running", || restarts_when_running(pods.clone())).await, 0);
    let sandbox = runtime.list_pod_sandboxes().await.unwrap().into_iter().next().expect("a sandbox").id;
    runtime.stop_pod_sandbox(&sandbox).await.unwrap();
    until("a second sandbox", || async { (sandboxes_of(&runtime, "web") == 2).then_some(()) }).await;
    let restarts = until("web running again with a restart counted", || {
        let pods = pods.clone();
        async move { restarts_when_running(pods).await.filter(|n| *n > 0) }
    })
    .await;
    assert_eq!(restarts, 1);
    // The new sandbox's address replaced the old one (not added beside it).
    let status = pods.get("web").await.unwrap().status.unwrap();
    let ips: Vec<String> = status.pod_ips.unwrap_or_default().into_iter().map(|p| p.ip).collect();
    assert_eq!(ips, [status.pod_ip.unwrap()]);
    shutdown.cancel();
    running.await.unwrap();
}

/// An emptyDir written beyond its `sizeLimit` gets the pod evicted, as upstream's eviction
/// manager does: Failed, reason Evicted, upstream's message, a Warning event, containers gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_dir_over_its_size_limit_evicts_the_pod() {
    let api = skiff_testkit::InProcess::start().await;
    let client = api.server.client("system:node:n1", &["system:nodes", "system:masters"]);
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = KubeletConfig::new("n1", dir.path());
    config.relist_interval = Duration::from_millis(100);
    let runtime = Arc::new(FakeRuntime::new());
    let manager = Arc::new(PodManager::new(client.clone(), runtime.clone(), config));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(manager.run(shutdown.clone()));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let volumes = json!({"volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "64Ki"}}]});
    let created = pods.create(&PostParams::default(), &pod_on_n1("filler", volumes)).await.unwrap();
    let uid = created.metadata.uid.unwrap();
    let scratch = dir.path().join("pods").join(&uid).join("volumes/kubernetes.io~empty-dir/scratch");
    until("the emptyDir", || {
        let s = scratch.clone();
        async move { s.is_dir().then_some(()) }
    })
    .await;
    std::fs::write(scratch.join("big"), vec![7u8; 256 * 1024]).unwrap();
    let status = until("the eviction", || {
        let pods = pods.clone();
        async move {
            let s = pods.get("filler").await.ok()?.status?;
            (s.phase.as_deref() == Some("Failed")).then_some(s)
        }
    })
    .await;
    assert_eq!(status.reason.as_deref(), Some("Evicted"));
    assert_eq!(status.message.as_deref(), Some("Usage of EmptyDir volume \"scratch\" exceeds the limit \"64Ki\". "));
    let terminated = status.container_statuses.unwrap()[0].state.clone().unwrap().terminated;
    assert!(terminated.is_some(), "the container was stopped");
    shutdown.cancel();
    running.await.unwrap();
}
