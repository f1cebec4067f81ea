//! The scheduler against an in-process API server: real watches, bindings, status patches and
//! events, with Node objects and pods created directly (no kubelet).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use skiff_testkit::InProcess;
use tokio_util::sync::CancellationToken;

use crate::{Scheduler, SchedulerConfig};

struct Harness {
    _api: InProcess,
    client: kube::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), crate::SchedulerError>>,
}

impl Harness {
    async fn start() -> Harness {
        let api = InProcess::start().await;
        let client = api.server.client("system:kube-scheduler", &["system:masters"]);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(Scheduler::new(client.clone(), SchedulerConfig::default()).run(shutdown.clone()));
        Harness { _api: api, client, shutdown, task }
    }

    async fn node(&self, name: &str, cpu: &str, extra: Value) {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
                       "allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        });
        merge(&mut v, extra);
        let node: Node = serde_json::from_value(v.clone()).unwrap();
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes.create(&PostParams::default(), &node).await.unwrap();
        // Status may be dropped on create (as upstream does for some resources): set it.
        let patch = kube::api::Patch::Merge(json!({"status": v["status"]}));
        nodes.patch_status(name, &Default::default(), &patch).await.unwrap();
    }

    async fn pod(&self, name: &str, cpu: &str, extra: Value) {
        let mut v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}
        });
        merge(&mut v, extra);
        let pod: Pod = serde_json::from_value(v).unwrap();
        self.pods().create(&PostParams::default(), &pod).await.unwrap();
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Polls until `check` returns `Some`, or fails after 10 s.
    async fn wait_for<T>(&self, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn node_of(&self, pod: &str) -> String {
        self.wait_for(&format!("{pod} to be bound"), async || {
            let p = self.pods().get(pod).await.unwrap();
            p.spec.and_then(|s| s.node_name)
        })
        .await
    }

    async fn events_for(&self, pod: &str, reason: &str) -> Vec<K8sEvent> {
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), "default");
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some(reason) && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod)
            })
            .collect()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let res = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        assert!(matches!(res, Ok(Ok(Ok(())))), "scheduler did not stop cleanly: {res:?}");
    }
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

#[tokio::test]
async fn pods_land_where_they_fit() {
    let h = Harness::start().await;
    h.node("small", "1", json!({"metadata": {"labels": {"disk": "hdd"}}})).await;
    h.node("large", "8", json!({"metadata": {"labels": {"disk": "hdd"}}})).await;
    h.node("ssd", "2", json!({"metadata": {"labels": {"disk": "ssd"}}})).await;
    h.node("gpu", "64", json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}))
        .await;

    h.pod("big", "4", json!({})).await;
    assert_eq!(h.node_of("big").await, "large");
    h.pod("picky", "100m", json!({"spec": {"nodeSelector": {"disk": "ssd"}}})).await;
    assert_eq!(h.node_of("picky").await, "ssd");
    h.pod(
        "gpu-job",
        "100m",
        json!({"spec": {
        "nodeSelector": {"kubernetes.io/hostname": "gpu"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}}),
    )
    .await;
    assert_eq!(h.node_of("gpu-job").await, "gpu");
    // 5 cpu fit nowhere: "large" has 8 - 4 = 4 left and the big node's taint is not tolerated.
    h.pod("five", "5", json!({})).await;
    // Another scheduler's pod is left alone.
    h.pod("foreign", "100m", json!({"spec": {"schedulerName": "other"}})).await;
    h.wait_for("five to be reported", async || {
        let p = h.pods().get("five").await.unwrap();
        p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")
    })
    .await;
    let sched = h.events_for("big", "Scheduled").await;
    assert_eq!(sched.len(), 1);
    assert_eq!(sched[0].note.as_deref(), Some("Successfully assigned default/big to large"));
    assert_eq!(sched[0].type_.as_deref(), Some("Normal"));
    assert_eq!(sched[0].reporting_controller.as_deref(), Some("default-scheduler"));
    let five = h.pods().get("five").await.unwrap();
    assert_eq!(five.spec.unwrap().node_name, None);
    let foreign = h.pods().get("foreign").await.unwrap();
    assert_eq!(foreign.spec.unwrap().node_name, None);
    assert!(h.events_for("foreign", "FailedScheduling").await.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn assumed_pods_count_before_binds_are_seen() {
    let h = Harness::start().await;
    h.node("only", "2", json!({})).await;
    // Created back to back: the scheduler decides on the later pods before the watch shows the
    // earlier ones bound, so only the assumed-pod accounting keeps it from overbooking.
    for i in 0..3 {
        h.pod(&format!("p{i}"), "1", json!({})).await;
    }
    let mut bound = 0;
    let mut pending = Vec::new();
    for i in 0..3 {
        let name = format!("p{i}");
        let done = h
            .wait_for("each pod to be bound or reported", async || {
                let p = h.pods().get(&name).await.unwrap();
                if p.spec.as_ref().and_then(|s| s.node_name.clone()).is_some() {
                    return Some(true);
                }
                p.status?.conditions?.iter().any(|c| c.type_ == "PodScheduled").then_some(false)
            })
            .await;
        if done { bound += 1 } else { pending.push(name) }
    }
    assert_eq!((bound, pending.len()), (2, 1));
    let p = h.pods().get(&pending[0]).await.unwrap();
    let cond = p.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "PodScheduled").unwrap();
    assert_eq!(
        cond.message.as_deref(),
        Some(
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
             1 No preemption victims found for incoming pod."
        )
    );
    h.stop().await;
}

#[tokio::test]
async fn unschedulable_pod_reports_then_schedules_on_a_new_node() {
    let h = Harness::start().await;
    h.node(
        "cp",
        "8",
        json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
    )
    .await;
    h.node("w1", "4", json!({})).await;
    // Already bound (as if by an earlier scheduler): 3 of w1's 4 cpus are taken.
    h.pod("existing", "3", json!({"spec": {"nodeName": "w1"}})).await;
    h.pod("needy", "2", json!({})).await;

    let expected = "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint \
                    {node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are available: \
                    1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling.";
    let cond = h
        .wait_for("the PodScheduled condition", async || {
            let p = h.pods().get("needy").await.unwrap();
            p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")
        })
        .await;
    assert_eq!(cond.status, "False");
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(cond.message.as_deref(), Some(expected));
    assert!(cond.last_transition_time.is_some());
    let events = h
        .wait_for("the FailedScheduling event", async || {
            let evs = h.events_for("needy", "FailedScheduling").await;
            (!evs.is_empty()).then_some(evs)
        })
        .await;
    assert_eq!(events[0].note.as_deref(), Some(expected));
    assert_eq!(events[0].type_.as_deref(), Some("Warning"));
    assert_eq!(events[0].action.as_deref(), Some("Scheduling"));
    assert_eq!(events[0].reporting_controller.as_deref(), Some("default-scheduler"));
    let regarding = events[0].regarding.clone().unwrap();
    assert_eq!((regarding.kind.as_deref(), regarding.namespace.as_deref()), (Some("Pod"), Some("default")));

    // A node with room appears: the parked pod is retried at once (well before 5 minutes).
    h.node("w2", "4", json!({})).await;
    assert_eq!(h.node_of("needy").await, "w2");
    let sched = h
        .wait_for("the Scheduled event", async || {
            let evs = h.events_for("needy", "Scheduled").await;
            (!evs.is_empty()).then_some(evs)
        })
        .await;
    assert_eq!(sched[0].note.as_deref(), Some("Successfully assigned default/needy to w2"));
    h.stop().await;
}

#[tokio::test]
async fn deleting_a_pod_frees_room_and_no_nodes_is_reported() {
    let h = Harness::start().await;
    h.pod("lonely", "1", json!({})).await;
    let cond = h
        .wait_for("the no-nodes condition", async || {
            let p = h.pods().get("lonely").await.unwrap();
            p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")
        })
        .await;
    assert_eq!(cond.message.as_deref(), Some("no nodes available to schedule pods"));
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    h.node("n", "2", json!({})).await;
    assert_eq!(h.node_of("lonely").await, "n");
    h.pod("second", "2", json!({})).await;
    h.wait_for("second to be reported unschedulable", async || {
        let p = h.pods().get("second").await.unwrap();
        p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")
    })
    .await;
    // Without a kubelet, only a forced delete removes a bound pod (a graceful one leaves it
    // terminating, still holding its cpu, as upstream).
    h.pods()
        .delete("lonely", &kube::api::DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(h.node_of("second").await, "n");
    h.stop().await;
}

#[tokio::test]
async fn preemption_evicts_lower_priority_pods_and_nominates_the_node() {
    let h = Harness::start().await;
    h.node("n", "2", json!({})).await;
    h.pod("low", "1500m", json!({"spec": {"nodeName": "n", "priority": 0}})).await;
    h.pod("high", "1", json!({"spec": {"priority": 100}})).await;

    let high = h
        .wait_for("high to be nominated", async || {
            let p = h.pods().get("high").await.unwrap();
            let nominated = p.status.as_ref()?.nominated_node_name.clone()?;
            Some((p, nominated))
        })
        .await;
    assert_eq!(high.1, "n");
    let low = h.pods().get("low").await.unwrap();
    assert!(low.metadata.deletion_timestamp.is_some(), "the victim is being deleted");
    let preempted = h
        .wait_for("the Preempted event", async || {
            let evs = h.events_for("low", "Preempted").await;
            (!evs.is_empty()).then_some(evs)
        })
        .await;
    let uid = high.0.metadata.uid.clone().unwrap();
    assert_eq!(preempted[0].note.as_deref(), Some(format!("Preempted by pod {uid} on node n").as_str()));
    let cond = h
        .wait_for("the PodScheduled condition", async || {
            let p = h.pods().get("high").await.unwrap();
            p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")
        })
        .await;
    assert_eq!(cond.message.as_deref(), Some("0/1 nodes are available: 1 Insufficient cpu."));
    // No kubelet here to finish the graceful deletion: do it by force, and the preemptor lands.
    let force = kube::api::DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
    h.pods().delete("low", &force).await.unwrap();
    assert_eq!(h.node_of("high").await, "n");
    h.stop().await;
}

#[tokio::test]
async fn gated_pods_wait_for_their_gates() {
    let h = Harness::start().await;
    h.node("n", "2", json!({})).await;
    h.pod("gated", "100m", json!({"spec": {"schedulingGates": [{"name": "example.com/wait"}]}})).await;
    h.pod("free", "100m", json!({})).await;
    assert_eq!(h.node_of("free").await, "n");
    let gated = h.pods().get("gated").await.unwrap();
    assert_eq!(gated.spec.as_ref().unwrap().node_name, None);
    let patch = kube::api::Patch::Merge(json!({"spec": {"schedulingGates": null}}));
    h.pods().patch("gated", &Default::default(), &patch).await.unwrap();
    assert_eq!(h.node_of("gated").await, "n");
    h.stop().await;
}

#[tokio::test]
async fn repeated_failures_become_an_event_series() {
    let h = Harness::start().await;
    h.node("n", "1", json!({})).await;
    h.pod("needy", "2", json!({})).await;
    h.wait_for("the first FailedScheduling", async || {
        let evs = h.events_for("needy", "FailedScheduling").await;
        (!evs.is_empty()).then_some(())
    })
    .await;
    // A node change that does not help: the pod is retried (after its 1 s backoff) and fails
    // again; the recorder turns the repeat into a series on the same Event.
    let nodes: Api<Node> = Api::all(h.client.clone());
    let patch = kube::api::Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}}));
    nodes.patch("n", &Default::default(), &patch).await.unwrap();
    let evs = h
        .wait_for("a series of two", async || {
            let evs = h.events_for("needy", "FailedScheduling").await;
            evs.first().and_then(|e| e.series.as_ref()).is_some_and(|s| s.count == 2).then_some(evs)
        })
        .await;
    assert_eq!(evs.len(), 1);
    assert_eq!(
        evs[0].note.as_deref(),
        Some(
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
             1 Preemption is not helpful for scheduling."
        )
    );
    h.stop().await;
}

#[tokio::test]
async fn pod_affinity_waits_for_its_peer() {
    let h = Harness::start().await;
    h.node("a", "4", json!({"metadata": {"labels": {"zone": "z1"}}})).await;
    h.node("b", "4", json!({"metadata": {"labels": {"zone": "z2"}}})).await;
    // "web" wants to share a zone with a "db" pod that does not exist yet.
    h.pod(
        "web",
        "100m",
        json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
        ]}}}}),
    )
    .await;
    let cond = h
        .wait_for("web to be reported", async || {
            let p = h.pods().get("web").await.unwrap();
            p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled")
        })
        .await;
    assert_eq!(
        cond.message.as_deref(),
        Some(
            "0/2 nodes are available: 2 node(s) didn't match pod affinity rules. preemption: 0/2 nodes are \
             available: 2 Preemption is not helpful for scheduling."
        )
    );
    // Once the db pod is scheduled (by us), web follows it into its zone.
    h.pod("db", "100m", json!({"metadata": {"labels": {"app": "db"}}, "spec": {"nodeSelector": {"zone": "z2"}}})).await;
    assert_eq!(h.node_of("db").await, "b");
    assert_eq!(h.node_of("web").await, "b");
    h.stop().await;
}

#[test]
fn kept_pods_drop_what_the_scheduler_never_reads() {
    let status = json!({"phase": "Running", "nominatedNodeName": "n2", "podIP": "10.0.0.1",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": true, "restartCount": 0}]});
    let decode = |node: Option<&str>| -> Pod {
        let v = json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}],
                     "tolerations": [{"key": "a", "operator": "Exists"}]},
            "status": status});
        serde_json::from_str(&v.to_string()).unwrap()
    };
    let mut bound = decode(Some("n1"));
    super::keep(&mut bound);
    let kept = bound.status.as_ref().unwrap();
    assert_eq!(kept.phase.as_deref(), Some("Running"));
    assert_eq!(kept.nominated_node_name.as_deref(), Some("n2"));
    assert!(kept.conditions.is_none() && kept.container_statuses.is_none() && kept.pod_ip.is_none());
    assert_eq!(bound.spec.as_ref().unwrap().tolerations.as_ref().unwrap().capacity(), 1);

    let mut pending = decode(None);
    let before = pending.clone();
    super::keep(&mut pending);
    assert_eq!(pending, before);
    assert_eq!(pending.status.as_ref().unwrap().conditions.as_ref().unwrap().capacity(), 1);
}
