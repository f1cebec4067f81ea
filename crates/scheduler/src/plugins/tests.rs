//! Plugin tests on hand-built snapshots (no API), with exact statuses and scores.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cache::{NodeInfo, PodInfo, Snapshot};
use crate::framework::{Code, Diagnosis, Status};
use crate::plugins::{
    balanced_allocation, image_locality, inter_pod_affinity, node_affinity, node_name, node_ports, node_resources_fit,
    node_unschedulable, pod_topology_spread, taint_toleration,
};
use crate::schedule_one::{ScheduleFailure, post_filter, schedule_pod, score_nodes};

/// Deep-merges `patch` into `base` (objects merge, everything else replaces).
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

pub(crate) fn node(name: &str, cpu: &str, mem: &str, extra: Value) -> NodeInfo {
    let mut v = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}}
    });
    merge(&mut v, extra);
    NodeInfo::new(Arc::new(serde_json::from_value(v).unwrap()))
}

pub(crate) fn pod(name: &str, extra: Value) -> PodInfo {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    });
    merge(&mut v, extra);
    PodInfo::new(Arc::new(serde_json::from_value(v).unwrap()))
}

fn requests(cpu: &str, mem: &str) -> Value {
    json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}})
}

fn with(mut a: Value, b: Value) -> Value {
    merge(&mut a, b);
    a
}

/// Places `pod` on `node` (by name) in the snapshot.
fn place(snapshot: &mut Snapshot, node: &str, pod: PodInfo) {
    let i = snapshot.nodes.iter().position(|n| n.name == node).unwrap();
    snapshot.change_node(i, |n| n.add_pod(Arc::new(pod)));
}

#[test]
fn node_unschedulable_filter() {
    let cordoned = node("n", "1", "1Gi", json!({"spec": {"unschedulable": true}}));
    assert_eq!(
        node_unschedulable::filter(&pod("p", json!({})), &cordoned),
        Some(Status::unresolvable("NodeUnschedulable", "node(s) were unschedulable"))
    );
    let tolerant = pod(
        "p",
        json!({"spec": {"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}),
    );
    assert_eq!(node_unschedulable::filter(&tolerant, &cordoned), None);
    assert_eq!(node_unschedulable::filter(&pod("p", json!({})), &node("m", "1", "1Gi", json!({}))), None);
}

#[test]
fn node_name_filter() {
    let named = pod("p", json!({"spec": {"nodeName": "a"}}));
    assert_eq!(node_name::filter(&named, &node("a", "1", "1Gi", json!({}))), None);
    assert_eq!(
        node_name::filter(&named, &node("b", "1", "1Gi", json!({}))).unwrap().reasons,
        vec!["node(s) didn't match the requested node name"]
    );
}

#[test]
fn taint_toleration_filter_and_score() {
    let tainted = node(
        "n",
        "1",
        "1Gi",
        json!({"spec": {"taints": [
            {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
        ]}}),
    );
    let plain = pod("p", json!({}));
    let s = taint_toleration::filter(&plain, &tainted).unwrap();
    assert_eq!(s, Status::unresolvable("TaintToleration", "node(s) had untolerated taint {dedicated: gpu}"));
    let half = pod("p", json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu"}]}}));
    assert_eq!(
        taint_toleration::filter(&half, &tainted).unwrap().reasons,
        vec!["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
    );
    let all = pod(
        "p",
        json!({"spec": {"tolerations": [{"operator": "Exists", "effect": "NoSchedule"},
                                                          {"operator": "Exists", "effect": "NoExecute"}]}}),
    );
    assert_eq!(taint_toleration::filter(&all, &tainted), None);
    // PreferNoSchedule is only scored: one intolerable taint.
    assert_eq!(taint_toleration::score(&all, &tainted), 1);
    let soft_ok = pod("p", json!({"spec": {"tolerations": [{"key": "soft", "operator": "Exists"}]}}));
    assert_eq!(taint_toleration::score(&soft_ok, &tainted), 0);
}

#[test]
fn node_affinity_filter_and_score() {
    let ssd = node("a", "1", "1Gi", json!({"metadata": {"labels": {"disk": "ssd", "zone": "z1"}}}));
    let hdd = node("b", "1", "1Gi", json!({"metadata": {"labels": {"disk": "hdd", "zone": "z2"}}}));
    let selector = pod("p", json!({"spec": {"nodeSelector": {"disk": "ssd"}}}));
    assert_eq!(node_affinity::filter(&selector, &ssd), None);
    assert_eq!(
        node_affinity::filter(&selector, &hdd),
        Some(Status::unresolvable("NodeAffinity", "node(s) didn't match Pod's node affinity/selector"))
    );
    // Terms are ORed; expressions within a term ANDed.
    let required = pod(
        "p",
        json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]},
                                  {"key": "zone", "operator": "NotIn", "values": ["z1"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}
        ]}}}}}),
    );
    assert!(node_affinity::filter(&required, &ssd).is_some());
    assert_eq!(node_affinity::filter(&required, &hdd), None);
    let preferred = pod(
        "p",
        json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 30, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
            {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}
        ]}}}}),
    );
    assert_eq!(node_affinity::score(&preferred, &ssd), 35);
    assert_eq!(node_affinity::score(&preferred, &hdd), 5);
}

#[test]
fn node_ports_filter() {
    let mut n = node("n", "1", "1Gi", json!({}));
    let holder = pod(
        "h",
        json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]}]}}),
    );
    n.add_pod(Arc::new(holder));
    let want = |port: i64, ip: &str, proto: &str| {
        pod(
            "p",
            json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 1, "hostPort": port, "hostIP": ip, "protocol": proto}]}]}}),
        )
    };
    let reject = Some(Status::unschedulable("NodePorts", "node(s) didn't have free ports for the requested pod ports"));
    assert_eq!(node_ports::filter(&want(8080, "10.0.0.1", "TCP"), &n), reject);
    assert_eq!(node_ports::filter(&want(8080, "", "TCP"), &n), reject, "wildcard IP conflicts with any IP");
    assert_eq!(node_ports::filter(&want(8080, "10.0.0.2", "TCP"), &n), None);
    assert_eq!(node_ports::filter(&want(8080, "10.0.0.1", "UDP"), &n), None);
    assert_eq!(node_ports::filter(&want(8081, "", "TCP"), &n), None);
}

#[test]
fn node_resources_fit_filter() {
    let mut n = node("n", "4", "8Gi", json!({"status": {"allocatable": {"example.com/gpu": "1", "pods": "2"}}}));
    n.add_pod(Arc::new(pod("a", requests("3", "6Gi"))));
    assert_eq!(node_resources_fit::filter(&pod("p", requests("1", "2Gi")), &n), None);
    let s = node_resources_fit::filter(&pod("p", requests("1500m", "3Gi")), &n).unwrap();
    assert_eq!(s.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
    assert_eq!(s.code, Code::Unschedulable);
    // Larger than the whole node: preemption cannot help.
    let s = node_resources_fit::filter(&pod("p", requests("5", "1Gi")), &n).unwrap();
    assert_eq!((s.code, s.reasons.clone()), (Code::UnschedulableAndUnresolvable, vec!["Insufficient cpu".to_string()]));
    let gpu =
        pod("p", json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "2"}}}]}}));
    assert_eq!(node_resources_fit::filter(&gpu, &n).unwrap().reasons, vec!["Insufficient example.com/gpu"]);
    n.add_pod(Arc::new(pod("b", json!({}))));
    assert_eq!(node_resources_fit::filter(&pod("p", json!({})), &n).unwrap().reasons, vec!["Too many pods"]);
}

#[test]
fn resource_scores() {
    let mut n = node("n", "4", "8Gi", json!({}));
    n.add_pod(Arc::new(pod("a", requests("1", "2Gi"))));
    let p = pod("p", requests("1", "1Gi"));
    // cpu (4000-2000)*100/4000 = 50, memory (8-3)*100/8 = 62 → 56
    assert_eq!(node_resources_fit::score(&p, &n), 56);
    // fractions 0.5 and 0.375 → std 0.0625 → 93
    assert_eq!(balanced_allocation::score(&p, &n), 93);
    // Containers without requests count 100m / 200Mi when scoring LeastAllocated.
    let empty = node("e", "1", "1000Mi", json!({}));
    assert_eq!(node_resources_fit::score(&pod("q", json!({})), &empty), 85);
    assert_eq!(balanced_allocation::score(&pod("q", json!({})), &empty), 0);
}

#[test]
fn image_locality_score() {
    let with_image = node(
        "a",
        "1",
        "1Gi",
        json!({"status": {"images": [{"names": ["docker.io/library/nginx:1.27", "nginx:1.27"], "sizeBytes": 500 * 1024 * 1024}]}}),
    );
    let without = node("b", "1", "1Gi", json!({}));
    let snap = Snapshot::new(vec![with_image.clone(), without.clone()]);
    let p = pod("p", json!({"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}));
    // 500 MiB spread over half the nodes = 250 MiB → 100 * (250-23) / (1000-23) = 23
    assert_eq!(image_locality::score(&image_locality::pod_images(&p, &snap), &with_image), 23);
    assert_eq!(image_locality::score(&image_locality::pod_images(&p, &snap), &without), 0);
    assert!(!image_locality::pod_images(&p, &snap).scores_nothing());
    // An image no node has scores nothing anywhere, and so does a pod without containers.
    let elsewhere = pod("q", json!({"spec": {"containers": [{"name": "c", "image": "busybox"}]}}));
    let images = image_locality::pod_images(&elsewhere, &snap);
    assert!(images.scores_nothing());
    assert_eq!(image_locality::score(&images, &with_image), 0);
    assert!(image_locality::pod_images(&pod("r", json!({"spec": {"containers": []}})), &snap).scores_nothing());
}

fn zoned(name: &str, zone: &str) -> NodeInfo {
    node(name, "4", "8Gi", json!({"metadata": {"labels": {"zone": zone}}}))
}

fn labelled(name: &str, labels: Value) -> PodInfo {
    pod(name, json!({"metadata": {"labels": labels}}))
}

#[test]
fn inter_pod_affinity_filter() {
    let mut snap = Snapshot::new(vec![zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2")]);
    place(&mut snap, "a", labelled("db", json!({"app": "db"})));
    let affinity = |kind: &str, app: &str| {
        pod(
            "p",
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"affinity": {kind: {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "zone"}
            ]}}}}),
        )
    };
    let check = |p: &PodInfo, snap: &Snapshot| -> Vec<Option<Status>> {
        let state = inter_pod_affinity::pre_filter(p, snap);
        snap.nodes.iter().map(|n| inter_pod_affinity::filter(&state, p, n, snap)).collect()
    };
    let aff = Some(Status::unresolvable("InterPodAffinity", "node(s) didn't match pod affinity rules"));
    let anti = Some(Status::unschedulable("InterPodAffinity", "node(s) didn't match pod anti-affinity rules"));
    assert_eq!(check(&affinity("podAffinity", "db"), &snap), vec![None, None, aff.clone()]);
    assert_eq!(check(&affinity("podAntiAffinity", "db"), &snap), vec![anti.clone(), anti, None]);
    // Nobody matches yet and the pod matches its own term: the first of its group may go anywhere.
    assert_eq!(check(&affinity("podAffinity", "web"), &snap), vec![None, None, None]);
    // Affinity to pods that don't exist, not matching itself: nowhere.
    assert_eq!(check(&affinity("podAffinity", "cache"), &snap), vec![aff.clone(), aff.clone(), aff]);
    // An existing pod's anti-affinity keeps the new pod out of its zone.
    let guard = pod(
        "guard",
        json!({"spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}
        ]}}}}),
    );
    place(&mut snap, "c", guard);
    let existing =
        Some(Status::unschedulable("InterPodAffinity", "node(s) didn't satisfy existing pods anti-affinity rules"));
    assert_eq!(check(&labelled("w", json!({"app": "web"})), &snap), vec![None, None, existing]);
    // Other namespaces are not selected by default.
    let other_ns = pod("w", json!({"metadata": {"namespace": "other", "labels": {"app": "web"}}}));
    assert_eq!(check(&other_ns, &snap), vec![None, None, None]);
}

#[test]
fn affinity_terms_listing_namespaces() {
    let mut snap = Snapshot::new(vec![zoned("a", "z1"), zoned("b", "z2"), zoned("c", "z3")]);
    place(&mut snap, "a", pod("db", json!({"metadata": {"namespace": "team-a", "labels": {"app": "db"}}})));
    place(&mut snap, "b", pod("db", json!({"metadata": {"namespace": "default", "labels": {"app": "db"}}})));
    place(&mut snap, "c", pod("db", json!({"metadata": {"namespace": "team-b", "labels": {"app": "db"}}})));
    let avoiding = |namespaces: Value| {
        pod(
            "p",
            json!({"spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "namespaces": namespaces, "topologyKey": "zone"}
            ]}}}}),
        )
    };
    let check = |p: &PodInfo| -> Vec<bool> {
        let state = inter_pod_affinity::pre_filter(p, &snap);
        snap.nodes.iter().map(|n| inter_pod_affinity::filter(&state, p, n, &snap).is_none()).collect()
    };
    // Listed namespaces replace the pod's own; a repeated name counts once.
    assert_eq!(check(&avoiding(json!(["team-a", "team-a"]))), vec![false, true, true]);
    assert_eq!(check(&avoiding(json!(["team-b", "default"]))), vec![true, false, false]);
    // None listed and no namespace selector: the pod's own namespace.
    assert_eq!(check(&avoiding(json!([]))), vec![true, false, true]);
}

#[test]
fn inter_pod_affinity_score() {
    let mut snap = Snapshot::new(vec![zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2")]);
    place(&mut snap, "a", labelled("db", json!({"app": "db"})));
    let p = pod(
        "p",
        json!({"spec": {"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}}
        ]}}}}),
    );
    let state = inter_pod_affinity::pre_score(&p, &snap);
    let mut scores: Vec<i64> = snap.nodes.iter().map(|n| inter_pod_affinity::score(&state, n)).collect();
    assert_eq!(scores, vec![10, 10, 0]);
    inter_pod_affinity::normalize(&mut scores);
    assert_eq!(scores, vec![100, 100, 0]);
    // An existing pod's preferred anti-affinity weighs against a pod without terms of its own
    // (pre-score then visits only nodes holding pods with terms).
    let shy = pod(
        "shy",
        json!({"spec": {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}}
        ]}}}}),
    );
    place(&mut snap, "c", shy);
    assert_eq!(snap.nodes.iter().map(|n| n.pods_with_affinity).collect::<Vec<_>>(), vec![0, 0, 1]);
    let w = labelled("w", json!({"app": "web"}));
    let state = inter_pod_affinity::pre_score(&w, &snap);
    let scores: Vec<i64> = snap.nodes.iter().map(|n| inter_pod_affinity::score(&state, n)).collect();
    assert_eq!(scores, vec![0, 0, -5]);
}

fn spread(when: &str, key: &str, extra: Value) -> PodInfo {
    let mut c = json!({"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": when,
                        "labelSelector": {"matchLabels": {"app": "web"}}});
    merge(&mut c, extra);
    pod("p", json!({"metadata": {"labels": {"app": "web"}}, "spec": {"topologySpreadConstraints": [c]}}))
}

#[test]
fn pod_topology_spread_filter() {
    let mut snap =
        Snapshot::new(vec![zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2"), node("d", "4", "8Gi", json!({}))]);
    place(&mut snap, "a", labelled("w1", json!({"app": "web"})));
    place(&mut snap, "a", labelled("w2", json!({"app": "web"})));
    let check = |p: &PodInfo, snap: &Snapshot| -> Vec<Option<Status>> {
        let state = pod_topology_spread::pre_filter(p, snap);
        snap.nodes.iter().map(|n| pod_topology_spread::filter(&state, p, n)).collect()
    };
    let skew = Some(Status::unschedulable("PodTopologySpread", "node(s) didn't match pod topology spread constraints"));
    let label = Some(Status::unresolvable(
        "PodTopologySpread",
        "node(s) didn't match pod topology spread constraints (missing required label)",
    ));
    let p = spread("DoNotSchedule", "zone", json!({}));
    assert_eq!(check(&p, &snap), vec![skew.clone(), skew.clone(), None, label]);
    // z1 = 2, z2 = 1: min 1, so z1 gives skew 2 and z2 gives 1.
    place(&mut snap, "c", labelled("w3", json!({"app": "web"})));
    assert_eq!(check(&p, &snap)[..3], [skew.clone(), skew.clone(), None]);
    // minDomains 3 with only 2 zones: the minimum counts as 0 and z2 (1 + 1 - 0) is too skewed too.
    let strict = spread("DoNotSchedule", "zone", json!({"minDomains": 3, "maxSkew": 1}));
    assert_eq!(check(&strict, &snap)[..3], [skew.clone(), skew.clone(), skew]);
    // ScheduleAnyway constraints don't filter.
    assert_eq!(check(&spread("ScheduleAnyway", "zone", json!({})), &snap), vec![None, None, None, None]);
}

#[test]
fn pod_topology_spread_score() {
    let mut snap = Snapshot::new(vec![zoned("a", "z1"), zoned("b", "z1"), zoned("c", "z2")]);
    place(&mut snap, "a", labelled("w1", json!({"app": "web"})));
    place(&mut snap, "a", labelled("w2", json!({"app": "web"})));
    place(&mut snap, "b", labelled("w3", json!({"app": "web"})));
    let p = spread("ScheduleAnyway", "kubernetes.io/hostname", json!({}));
    let feasible: Vec<&NodeInfo> = snap.nodes.iter().map(AsRef::as_ref).collect();
    let state = pod_topology_spread::pre_score(&p, &feasible, &snap);
    let raw: Vec<Option<i64>> = feasible.iter().map(|n| pod_topology_spread::score(&state, &p, n)).collect();
    // weight ln(3 + 2) = 1.609: a 2 pods → 3, b 1 pod → 2, c → 0
    assert_eq!(raw, vec![Some(3), Some(2), Some(0)]);
    assert_eq!(pod_topology_spread::normalize(&state, &raw), vec![0, 33, 100]);
}

#[test]
fn scoring_prefers_emptier_nodes_and_preferences() {
    let mut snap = Snapshot::new(vec![node("busy", "4", "8Gi", json!({})), node("idle", "4", "8Gi", json!({}))]);
    place(&mut snap, "busy", pod("a", requests("3", "6Gi")));
    let p = pod("p", requests("500m", "512Mi"));
    let feasible: Vec<&NodeInfo> = snap.nodes.iter().map(AsRef::as_ref).collect();
    let scores = score_nodes(&p, &feasible, &snap);
    assert!(scores[1] > scores[0], "{scores:?}");
    let mut rng = rand::rng();
    let mut start = 0;
    let r = schedule_pod(&p, &snap, None, &mut start, &mut rng).unwrap();
    assert_eq!((r.node.as_str(), r.evaluated_nodes, r.feasible_nodes), ("idle", 2, 2));
    assert_eq!(start, 0, "all nodes processed: the rotation wraps around");
}

#[test]
fn fit_error_message_with_preemption() {
    let mut snap = Snapshot::new(vec![
        node(
            "cp",
            "4",
            "8Gi",
            json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
        ),
        node("w1", "4", "8Gi", json!({})),
        node("w2", "4", "8Gi", json!({})),
    ]);
    // Same-priority pods fill the workers: nothing to preempt.
    place(&mut snap, "w1", pod("a", requests("3", "1Gi")));
    place(&mut snap, "w2", pod("b", requests("3", "1Gi")));
    let p = pod("p", requests("2", "1Gi"));
    let mut start = 0;
    let Err(ScheduleFailure::Unfit { num_all_nodes, mut diagnosis }) =
        schedule_pod(&p, &snap, None, &mut start, &mut rand::rng())
    else {
        panic!("expected a fit error")
    };
    let post = post_filter(&p, &snap, &diagnosis);
    assert!(post.candidate.is_none());
    diagnosis.post_filter_msg = post.message;
    let msg = ScheduleFailure::Unfit { num_all_nodes, diagnosis }.message();
    assert_eq!(
        msg,
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
         2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
         2 No preemption victims found for incoming pod."
    );
    let never = pod("p", with(requests("2", "1Gi"), json!({"spec": {"preemptionPolicy": "Never"}})));
    let d = Diagnosis {
        node_to_status: [("w1".to_string(), Status::unschedulable("NodeResourcesFit", "Insufficient cpu"))].into(),
        ..Default::default()
    };
    let post = post_filter(&never, &snap, &d);
    assert_eq!(post.message.as_deref(), Some("preemption: not eligible due to preemptionPolicy=Never."));
    assert_eq!(
        ScheduleFailure::Unfit { num_all_nodes: 3, diagnosis: Diagnosis { post_filter_msg: post.message, ..d } }
            .message(),
        "0/3 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
    assert_eq!(
        schedule_pod(&p, &Snapshot::default(), None, &mut 0, &mut rand::rng()).unwrap_err().message(),
        "no nodes available to schedule pods"
    );
}

#[test]
fn preemption_picks_victims_and_reprieves() {
    let mut snap = Snapshot::new(vec![node("w1", "2", "8Gi", json!({})), node("w2", "2", "8Gi", json!({}))]);
    let prio =
        |name: &str, p: i32, cpu: &str| pod(name, with(requests(cpu, "100Mi"), json!({"spec": {"priority": p}})));
    place(&mut snap, "w1", prio("low0", 0, "500m"));
    place(&mut snap, "w1", prio("low10", 10, "1"));
    place(&mut snap, "w2", prio("mid", 50, "1500m"));
    let p = prio("p", 100, "1500m");
    let mut start = 0;
    let Err(ScheduleFailure::Unfit { diagnosis, .. }) = schedule_pod(&p, &snap, None, &mut start, &mut rand::rng())
    else {
        panic!("expected a fit error")
    };
    let post = post_filter(&p, &snap, &diagnosis);
    assert_eq!(post.message, None);
    let c = post.candidate.unwrap();
    assert_eq!(c.node, "w1");
    // Removing low10 alone frees enough (0.5 + 1.5 = 2): low0 is reprieved.
    assert_eq!(c.victims.iter().map(|v| v.key.as_str()).collect::<Vec<_>>(), vec!["default/low10"]);
    // Victims that would not make room anyway are reported.
    let big = prio("big", 100, "2500m");
    let Err(ScheduleFailure::Unfit { diagnosis, .. }) = schedule_pod(&big, &snap, None, &mut 0, &mut rand::rng())
    else {
        panic!("expected a fit error")
    };
    // 2.5 cpu is more than either node has: unresolvable, so preemption is not tried.
    assert!(diagnosis.node_to_status.values().all(|s| s.code == Code::UnschedulableAndUnresolvable));
    assert_eq!(
        post_filter(&big, &snap, &diagnosis).message.as_deref(),
        Some("preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling")
    );
}

fn unfit_message(p: &PodInfo, snap: &Snapshot) -> String {
    let Err(ScheduleFailure::Unfit { num_all_nodes, mut diagnosis }) =
        schedule_pod(p, snap, None, &mut 0, &mut rand::rng())
    else {
        panic!("expected a fit error")
    };
    diagnosis.post_filter_msg = post_filter(p, snap, &diagnosis).message;
    ScheduleFailure::Unfit { num_all_nodes, diagnosis }.message()
}

#[test]
fn daemonset_style_pods_only_consider_their_node() {
    let mut snap = Snapshot::new(vec![
        node("a", "1", "8Gi", json!({})),
        node("b", "4", "8Gi", json!({})),
        node("c", "4", "8Gi", json!({})),
    ]);
    place(&mut snap, "a", pod("x", requests("1", "1Gi")));
    let pinned = |names: Value| {
        pod(
            "ds",
            with(
                requests("100m", "10Mi"),
                json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": names}]}
                ]}}}}}),
            ),
        )
    };
    assert_eq!(
        unfit_message(&pinned(json!(["a"])), &snap),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
         preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
         2 Preemption is not helpful for scheduling."
    );
    let r = schedule_pod(&pinned(json!(["c", "missing"])), &snap, None, &mut 0, &mut rand::rng()).unwrap();
    assert_eq!((r.node.as_str(), r.evaluated_nodes), ("c", 1));
    // Two ANDed name requirements that don't intersect: rejected before filtering.
    let conflict = pod(
        "ds",
        json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]},
                             {"key": "metadata.name", "operator": "In", "values": ["b"]}]}
        ]}}}}}),
    );
    assert_eq!(
        unfit_message(&conflict, &snap),
        "0/3 nodes are available: pod affinity terms conflict. preemption: 0/3 nodes are available: \
         3 Preemption is not helpful for scheduling."
    );
}

#[test]
fn nominated_pods_hold_their_room() {
    let mut snap = Snapshot::new(vec![node("n", "2", "8Gi", json!({}))]);
    let prio = |name: &str, p: i32, cpu: &str| pod(name, with(requests(cpu, "10Mi"), json!({"spec": {"priority": p}})));
    snap.nominated.insert("n".into(), vec![Arc::new(prio("high", 100, "1500m"))]);
    assert_eq!(
        unfit_message(&prio("mid", 50, "1"), &snap),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: \
         1 No preemption victims found for incoming pod."
    );
    let top = schedule_pod(&prio("top", 200, "1"), &snap, None, &mut 0, &mut rand::rng()).unwrap();
    assert_eq!(top.node, "n");
    // The nominated pod itself is not in its own way, and tries its node first.
    let mut high = (*prio("high", 100, "1500m").pod).clone();
    high.status = Some(serde_json::from_value(json!({"nominatedNodeName": "n"})).unwrap());
    let high = PodInfo::new(Arc::new(high));
    let r = schedule_pod(&high, &snap, None, &mut 0, &mut rand::rng()).unwrap();
    assert_eq!((r.node.as_str(), r.evaluated_nodes), ("n", 1));
}

#[test]
fn terminating_victims_on_the_nominated_node_stop_more_preemption() {
    let mut snap = Snapshot::new(vec![node("n", "2", "8Gi", json!({}))]);
    let victim = pod(
        "victim",
        with(requests("1500m", "10Mi"), json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})),
    );
    place(&mut snap, "n", victim);
    place(&mut snap, "n", pod("other", with(requests("100m", "10Mi"), json!({}))));
    let mut p = (*pod("p", with(requests("1", "10Mi"), json!({"spec": {"priority": 10}}))).pod).clone();
    p.status = Some(serde_json::from_value(json!({"nominatedNodeName": "n"})).unwrap());
    let p = PodInfo::new(Arc::new(p));
    assert_eq!(
        unfit_message(&p, &snap),
        "0/1 nodes are available: 1 Insufficient cpu. \
         preemption: not eligible due to a terminating pod on the nominated node."
    );
}

#[test]
fn affinity_namespace_selector_uses_namespace_labels() {
    let mut snap = Snapshot::new(vec![zoned("a", "z1"), zoned("b", "z2")]);
    Arc::make_mut(&mut snap.namespace_labels).insert("team-a".into(), [("team".to_string(), "a".to_string())].into());
    Arc::make_mut(&mut snap.namespace_labels).insert("default".into(), Default::default());
    place(&mut snap, "a", pod("db", json!({"metadata": {"namespace": "team-a", "labels": {"app": "db"}}})));
    let p = pod(
        "p",
        json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "namespaceSelector": {"matchLabels": {"team": "a"}},
             "topologyKey": "zone"}
        ]}}}}),
    );
    let r = schedule_pod(&p, &snap, None, &mut 0, &mut rand::rng()).unwrap();
    assert_eq!(r.node, "a");
    // Without the namespace selector, only the pod's own namespace is searched: no match.
    let own = pod(
        "p",
        json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone"}
        ]}}}}),
    );
    assert_eq!(
        unfit_message(&own, &snap),
        "0/2 nodes are available: 2 node(s) didn't match pod affinity rules. preemption: 0/2 nodes are available: \
         2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn large_clusters_stop_filtering_early_and_rotate() {
    let nodes: Vec<NodeInfo> = (0..200).map(|i| node(&format!("n{i:03}"), "4", "8Gi", json!({}))).collect();
    let snap = Snapshot::new(nodes);
    let p = pod("p", requests("100m", "10Mi"));
    let mut start = 0;
    // 50 - 200/125 = 49% of 200 = 98, raised to the 100-node minimum.
    let r = schedule_pod(&p, &snap, None, &mut start, &mut rand::rng()).unwrap();
    assert_eq!((r.evaluated_nodes, r.feasible_nodes, start), (100, 100, 100));
    assert!(r.node.as_str() < "n100", "{}", r.node);
    let r = schedule_pod(&p, &snap, None, &mut start, &mut rand::rng()).unwrap();
    assert!(r.node.as_str() >= "n100", "the next cycle starts where the last stopped: {}", r.node);
    assert_eq!(start, 0);
    let r = schedule_pod(&p, &snap, Some(100), &mut start, &mut rand::rng()).unwrap();
    assert_eq!(r.evaluated_nodes, 200);
}

#[test]
fn parallel_filtering_matches_sequential_order() {
    // 600 nodes: every third has room. Filtering runs on threads but must pick the same prefix.
    let nodes: Vec<NodeInfo> = (0..600).map(|i| node(&format!("n{i:03}"), "4", "8Gi", json!({}))).collect();
    let mut snap = Snapshot::new(nodes);
    for i in 0..600 {
        if i % 3 != 0 {
            place(&mut snap, &format!("n{i:03}"), pod(&format!("f{i}"), requests("4", "1Gi")));
        }
    }
    let p = pod("p", requests("1", "1Gi"));
    // 50 - 600/125 = 46% of 600 = 276 wanted, but only 200 fit: all nodes are processed.
    let mut start = 7;
    let r = schedule_pod(&p, &snap, None, &mut start, &mut rand::rng()).unwrap();
    assert_eq!((r.evaluated_nodes, r.feasible_nodes, start), (600, 200, 7));
    // Want 100 (10% → 60, raised to 100): fitting nodes from n007 on are n009, n012, …, the
    // 100th is n306, the 300th node processed.
    let r = schedule_pod(&p, &snap, Some(10), &mut start, &mut rand::rng()).unwrap();
    assert_eq!((r.evaluated_nodes, r.feasible_nodes), (300, 100));
    assert_eq!(start, 307);
    // Unfit everywhere: every node's reason is collected.
    let huge = pod("h", requests("5", "1Gi"));
    let Err(ScheduleFailure::Unfit { diagnosis, .. }) = schedule_pod(&huge, &snap, None, &mut 0, &mut rand::rng())
    else {
        panic!("expected a fit error")
    };
    assert_eq!(diagnosis.node_to_status.len(), 600);
}

#[test]
fn affinity_match_and_mismatch_label_keys() {
    // Anti-affinity only against pods of other tenants: mismatchLabelKeys adds `tenant notin (a)`.
    let mut snap = Snapshot::new(vec![zoned("a", "z1"), zoned("b", "z2")]);
    place(&mut snap, "a", labelled("same", json!({"app": "web", "tenant": "a"})));
    place(&mut snap, "b", labelled("other", json!({"app": "web", "tenant": "b"})));
    let p = pod(
        "p",
        json!({"metadata": {"labels": {"app": "web", "tenant": "a"}},
               "spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "mismatchLabelKeys": ["tenant"], "topologyKey": "zone"}
        ]}}}}),
    );
    assert_eq!(schedule_pod(&p, &snap, None, &mut 0, &mut rand::rng()).unwrap().node, "a");
    // matchLabelKeys: affinity to pods of the same tenant only.
    let q = pod(
        "q",
        json!({"metadata": {"labels": {"tenant": "b"}},
               "spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["tenant"], "topologyKey": "zone"}
        ]}}}}),
    );
    assert_eq!(schedule_pod(&q, &snap, None, &mut 0, &mut rand::rng()).unwrap().node, "b");
}

#[test]
fn system_default_spreading_for_owned_pods() {
    // No zone labels: the default zone constraint is skipped, hostname spreading still applies.
    let mut snap = Snapshot::new(vec![
        node("a", "4", "8Gi", json!({})),
        node("b", "4", "8Gi", json!({})),
        node("c", "4", "8Gi", json!({})),
    ]);
    place(&mut snap, "a", labelled("w1", json!({"app": "web"})));
    place(&mut snap, "a", labelled("w2", json!({"app": "web"})));
    place(&mut snap, "c", labelled("w3", json!({"app": "web"})));
    let mut p = labelled("p", json!({"app": "web"}));
    let feasible: Vec<&NodeInfo> = snap.nodes.iter().map(AsRef::as_ref).collect();
    let normalized = |p: &PodInfo| {
        let state = pod_topology_spread::pre_score(p, &feasible, &snap);
        let raw: Vec<Option<i64>> = feasible.iter().map(|n| pod_topology_spread::score(&state, p, n)).collect();
        let normalized = pod_topology_spread::normalize(&state, &raw);
        (raw, normalized)
    };
    // Not selected by any Service or controller: no default constraints.
    assert_eq!(normalized(&p).1, vec![0, 0, 0]);
    p.default_spread_selector = Some(crate::labels::Selector::new(Some(
        &serde_json::from_value(json!({"matchLabels": {"app": "web"}})).unwrap(),
    )));
    // hostname: count * ln(5) + (3 - 1): a 5.2 → 5, b 2, c 3.6 → 4; normalized 100 * (5 + 2 - s) / 5.
    assert_eq!(normalized(&p), (vec![Some(5), Some(2), Some(4)], vec![40, 100, 60]));
    // Pods with constraints of their own don't get the defaults.
    let mut own = spread("ScheduleAnyway", "zone", json!({}));
    own.default_spread_selector = p.default_spread_selector.clone();
    assert_eq!(normalized(&own).1, vec![0, 0, 0], "no node has a zone label: all ignored");

    // With zones, the default zone constraint counts each zone's pods too (z1: 2, z2: 1; weight
    // ln(2 + 2)): a 5.2 + 6.8 → 12, b 2 + 6.8 → 9, c 3.6 + 5.4 → 9.
    let zone =
        |n: &str, z: &str| node(n, "4", "8Gi", json!({"metadata": {"labels": {"topology.kubernetes.io/zone": z}}}));
    let mut snap = Snapshot::new(vec![zone("a", "z1"), zone("b", "z1"), zone("c", "z2")]);
    place(&mut snap, "a", labelled("w1", json!({"app": "web"})));
    place(&mut snap, "a", labelled("w2", json!({"app": "web"})));
    place(&mut snap, "c", labelled("w3", json!({"app": "web"})));
    let feasible: Vec<&NodeInfo> = snap.nodes.iter().map(AsRef::as_ref).collect();
    let state = pod_topology_spread::pre_score(&p, &feasible, &snap);
    let raw: Vec<Option<i64>> = feasible.iter().map(|n| pod_topology_spread::score(&state, &p, n)).collect();
    assert_eq!(raw, vec![Some(12), Some(9), Some(9)]);
    assert_eq!(pod_topology_spread::normalize(&state, &raw), vec![75, 100, 100]);
}

/// A plain pod's cycle, filtered (and, when nothing else scores, scored) from the node fits,
/// decides exactly as the general one over the node infos: same node, same number of nodes
/// evaluated and found feasible, same failure message, same place to start next. The
/// clusters mix cordoned, tainted, full and loaded nodes; the pods tolerate or not, fit or
/// not, and some have preferences that only the general scoring reads.
#[test]
fn plain_cycles_decide_as_the_general_one() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::schedule_one::plain;

    let mut draw = StdRng::seed_from_u64(7);
    let mut plain_cycles = 0;
    for round in 0..32 {
        let count = [3, 40, 150, 400][round % 4];
        let nodes: Vec<NodeInfo> = (0..count)
            .map(|i| {
                let extra = match draw.random_range(0..10) {
                    0 => json!({"spec": {"unschedulable": true}}),
                    1 => json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
                    2 => json!({"spec": {"taints": [{"key": "soft", "effect": "PreferNoSchedule"}]}}),
                    3 => json!({"status": {"allocatable": {"pods": "1"}}}),
                    4 => json!({"metadata": {"labels": {"disk": "ssd"}}}),
                    _ => json!({}),
                };
                let cpu = ["500m", "2", "4"][draw.random_range(0..3)];
                let mem = ["1Gi", "4Gi", "16Gi"][draw.random_range(0..3)];
                node(&format!("n{i}"), cpu, mem, extra)
            })
            .collect();
        let mut snapshot = Snapshot::new(nodes);
        for j in 0..count {
            let on = format!("n{}", draw.random_range(0..count));
            let cpu = ["100m", "250m", "1"][draw.random_range(0..3)];
            let mem = ["64Mi", "512Mi", "2Gi"][draw.random_range(0..3)];
            place(&mut snapshot, &on, pod(&format!("old-{j}"), requests(cpu, mem)));
        }
        let tolerate = |key: &str, effect: &str| json!({"spec": {"tolerations": [{"key": key, "operator": "Exists", "effect": effect}]}});
        let incoming = [
            requests("100m", "100Mi"),
            requests("1500m", "3Gi"),
            requests("8", "1Gi"),
            json!({}),
            with(requests("200m", "200Mi"), tolerate("k", "NoSchedule")),
            with(requests("200m", "200Mi"), tolerate("node.kubernetes.io/unschedulable", "NoSchedule")),
            with(
                requests("100m", "100Mi"),
                json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
                ]}}}}),
            ),
        ];
        for (v, extra) in incoming.into_iter().enumerate() {
            let p = pod(&format!("new-{v}"), extra);
            assert!(plain(&p, &snapshot));
            assert!(!plain(&p, &snapshot.trial()), "a trial has no fits");
            plain_cycles += 1;
            for percentage in [None, Some(100), Some(30)] {
                let start = draw.random_range(0..count);
                let seed: u64 = draw.random();
                let (mut fast_next, mut general_next) = (start, start);
                let fast = schedule_pod(&p, &snapshot, percentage, &mut fast_next, &mut StdRng::seed_from_u64(seed));
                let general = schedule_pod(
                    &p,
                    &snapshot.trial(),
                    percentage,
                    &mut general_next,
                    &mut StdRng::seed_from_u64(seed),
                );
                let case = format!("round {round}, pod {v}, percentage {percentage:?}");
                match (fast, general) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{case}"),
                    (Err(a), Err(b)) => assert_eq!(a.message(), b.message(), "{case}"),
                    (a, b) => panic!("{case}: {a:?} vs {b:?}"),
                }
                assert_eq!(fast_next, general_next, "{case}");
            }
        }
    }
    assert!(plain_cycles > 0);
    // Not plain: a node selector, host ports, extended resources, hard spreading.
    let snapshot = Snapshot::new(vec![node("n0", "1", "1Gi", json!({}))]);
    for extra in [
        json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
        json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}]}]}}),
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]}}),
        json!({"spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {}}]}}),
        json!({"spec": {"nodeName": "n0"}}),
    ] {
        assert!(!plain(&pod("p", extra.clone()), &snapshot), "{extra}");
    }
}
