use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn pod(v: Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

/// A pod with one container requesting `requests`.
fn requesting(name: &str, requests: Value) -> Pod {
    pod(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox", "resources": {"requests": requests}}]}
    }))
}

fn node() -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": "n1", "labels": {
            "kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "zone": "a", "cores": "8"
        }}
    }))
    .unwrap()
}

/// What `node::resources` gives a 1-cpu, 1 GiB node.
fn small() -> BTreeMap<String, Quantity> {
    [
        ("cpu", "1"),
        ("memory", "1Gi"),
        ("ephemeral-storage", "10Gi"),
        ("pods", "110"),
        ("hugepages-1Gi", "0"),
        ("hugepages-2Mi", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
    .collect()
}

/// Admission of `p` beside `admitted` on [`node`] with [`small`] allocatable, as
/// `(reason, message)`.
fn verdict(p: &Pod, admitted: &[Pod]) -> Result<(), (String, String)> {
    verdict_on(p, admitted, &node(), &small())
}

fn verdict_on(p: &Pod, admitted: &[Pod], n: &Node, alloc: &BTreeMap<String, Quantity>) -> Result<(), (String, String)> {
    admit(p, admitted, n, alloc).map_err(|r| (r.reason, r.message))
}

fn rejected(reason: &str, message: &str) -> Result<(), (String, String)> {
    Err((reason.to_string(), message.to_string()))
}

#[test]
fn messages_match_upstream() {
    let cpu = Failure::Insufficient { resource: "cpu".into(), requested: 2000, used: 500, capacity: 1000 };
    assert_eq!(
        cpu.rejection(),
        Rejection {
            reason: "OutOfcpu".into(),
            message: "Node didn't have enough resource: cpu, requested: 2000, used: 500, capacity: 1000".into()
        }
    );
    for (resource, reason) in [
        ("memory", "OutOfmemory"),
        ("ephemeral-storage", "OutOfephemeral-storage"),
        ("pods", "OutOfpods"),
        ("example.com/gpu", "OutOfexample.com/gpu"),
        ("hugepages-2Mi", "OutOfhugepages-2Mi"),
    ] {
        let f = Failure::Insufficient { resource: resource.into(), requested: 3, used: 1, capacity: 2 };
        let r = f.rejection();
        assert_eq!(r.reason, reason);
        assert_eq!(
            r.message,
            format!("Node didn't have enough resource: {resource}, requested: 3, used: 1, capacity: 2")
        );
    }
    let cases = [
        (NODE_AFFINITY, "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"),
        (NODE_NAME, "Predicate NodeName failed: node(s) didn't match the requested node name"),
        (NODE_PORTS, "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"),
        (TAINT_TOLERATION, "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate"),
    ];
    for (plugin, message) in cases {
        let r = Failure::predicate(plugin).rejection();
        assert_eq!((r.reason.as_str(), r.message.as_str()), (plugin.0, message));
    }
}

#[test]
fn cpu_beyond_what_is_left_is_out_of_cpu() {
    let running = requesting("a", json!({"cpu": "500m"}));
    assert_eq!(
        verdict(&requesting("b", json!({"cpu": "2"})), std::slice::from_ref(&running)),
        rejected("OutOfcpu", "Node didn't have enough resource: cpu, requested: 2000, used: 500, capacity: 1000")
    );
    // Exactly what is left fits; one millicore more does not.
    assert_eq!(verdict(&requesting("b", json!({"cpu": "500m"})), std::slice::from_ref(&running)), Ok(()));
    assert_eq!(
        verdict(&requesting("b", json!({"cpu": "501m"})), std::slice::from_ref(&running)),
        rejected("OutOfcpu", "Node didn't have enough resource: cpu, requested: 501, used: 500, capacity: 1000")
    );
    // A pod that requests nothing fits even on an overcommitted node.
    let hog = requesting("hog", json!({"cpu": "3"}));
    assert_eq!(verdict(&requesting("b", json!({})), &[hog]), Ok(()));
}

#[test]
fn memory_and_ephemeral_storage() {
    let running = requesting("a", json!({"memory": "512Mi"}));
    assert_eq!(
        verdict(&requesting("b", json!({"memory": "600Mi"})), std::slice::from_ref(&running)),
        rejected(
            "OutOfmemory",
            "Node didn't have enough resource: memory, requested: 629145600, used: 536870912, capacity: 1073741824"
        )
    );
    assert_eq!(verdict(&requesting("b", json!({"memory": "512Mi"})), &[running]), Ok(()));
    assert_eq!(
        verdict(&requesting("b", json!({"ephemeral-storage": "11Gi"})), &[]),
        rejected(
            "OutOfephemeral-storage",
            "Node didn't have enough resource: ephemeral-storage, requested: 11811160064, used: 0, capacity: 10737418240"
        )
    );
    // Fractional amounts are rounded up, like upstream's Quantity.Value().
    let mut alloc = small();
    alloc.insert("memory".into(), Quantity("1000".into()));
    assert_eq!(
        verdict_on(&requesting("b", json!({"memory": "1000.5"})), &[], &node(), &alloc),
        rejected("OutOfmemory", "Node didn't have enough resource: memory, requested: 1001, used: 0, capacity: 1000")
    );
}

#[test]
fn pod_count_is_checked_first() {
    let mut alloc = small();
    alloc.insert("pods".into(), Quantity("2".into()));
    let admitted = [requesting("a", json!({})), requesting("b", json!({}))];
    // Also too much cpu: upstream reports the pod count, which it checks first.
    assert_eq!(
        verdict_on(&requesting("c", json!({"cpu": "5"})), &admitted, &node(), &alloc),
        rejected("OutOfpods", "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2")
    );
    assert_eq!(verdict_on(&requesting("c", json!({})), &admitted[..1], &node(), &alloc), Ok(()));
}

#[test]
fn extended_resources() {
    let mut n = node();
    n.status = Some(serde_json::from_value(json!({"allocatable": {"example.com/gpu": "2", "cpu": "64"}})).unwrap());
    let running = requesting("a", json!({"example.com/gpu": "1"}));
    assert_eq!(
        verdict_on(&requesting("b", json!({"example.com/gpu": "2"})), std::slice::from_ref(&running), &n, &small()),
        rejected(
            "OutOfexample.com/gpu",
            "Node didn't have enough resource: example.com/gpu, requested: 2, used: 1, capacity: 2"
        )
    );
    assert_eq!(verdict_on(&requesting("b", json!({"example.com/gpu": "1"})), &[running], &n, &small()), Ok(()));
    // The kubelet's own cpu figure wins over the Node object's.
    assert_eq!(verdict_on(&requesting("b", json!({"cpu": "2"})), &[], &n, &small()).unwrap_err().0, "OutOfcpu");
    // An extended resource the node does not know is not the kubelet's to check
    // (upstream removeMissingExtendedResources)…
    assert_eq!(verdict(&requesting("b", json!({"example.com/fpga": "4"})), &[]), Ok(()));
    // …but hugepages are not extended resources: none here.
    assert_eq!(
        verdict(&requesting("b", json!({"hugepages-2Mi": "4Mi"})), &[]),
        rejected(
            "OutOfhugepages-2Mi",
            "Node didn't have enough resource: hugepages-2Mi, requested: 4194304, used: 0, capacity: 0"
        )
    );
}

#[test]
fn requests_follow_init_containers_sidecars_and_overhead() {
    // Regular containers 2+1 cpu, a 4-cpu init container, a 1-cpu sidecar started before a
    // 2-cpu init container, 500m overhead.
    let p = pod(json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "1", "example.com/gpu": "1"}}}
            ],
            "initContainers": [
                {"name": "i1", "resources": {"requests": {"cpu": "4"}}},
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "i2", "resources": {"requests": {"cpu": "2", "memory": "3Gi"}}}
            ],
            "overhead": {"cpu": "500m"}
        }
    }));
    let r = pod_requests(&p);
    // Steady: 2+1+1 = 4 cpu; init peak: max(4, 1, 2+1) = 4; plus overhead.
    assert_eq!(r["cpu"], 4500);
    // Steady 1Gi+1Gi = 2Gi; i2 beside the sidecar: 3Gi+1Gi = 4Gi.
    assert_eq!(r["memory"], 4 << 30);
    assert_eq!(r["example.com/gpu"], 1);

    // A sidecar started before a big init container counts during it.
    let p = pod(json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "300m"}}},
                {"name": "i", "resources": {"requests": {"cpu": "800m"}}}
            ]
        }
    }));
    assert_eq!(pod_requests(&p)["cpu"], 1100);
    assert_eq!(
        verdict(&p, &[]),
        rejected("OutOfcpu", "Node didn't have enough resource: cpu, requested: 1100, used: 0, capacity: 1000")
    );
    // Without the sidecar's restartPolicy it is a classic init container: max(300, 800, 100).
    let mut classic = p.clone();
    classic.spec.as_mut().unwrap().init_containers.as_mut().unwrap()[0].restart_policy = None;
    assert_eq!(pod_requests(&classic)["cpu"], 800);
    assert_eq!(verdict(&classic, &[]), Ok(()));

    // Overhead counts, for the pod and for the admitted pods.
    let mut with_overhead = requesting("o", json!({"cpu": "500m"}));
    with_overhead.spec.as_mut().unwrap().overhead = Some(BTreeMap::from([("cpu".into(), Quantity("600m".into()))]));
    assert_eq!(
        verdict(&with_overhead, &[]),
        rejected("OutOfcpu", "Node didn't have enough resource: cpu, requested: 1100, used: 0, capacity: 1000")
    );
    let mut lighter = with_overhead.clone();
    lighter.spec.as_mut().unwrap().containers[0].resources = None;
    assert_eq!(
        verdict(&requesting("b", json!({"cpu": "500m"})), &[lighter]),
        rejected("OutOfcpu", "Node didn't have enough resource: cpu, requested: 500, used: 600, capacity: 1000")
    );

    let empty = pod(json!({"spec": {"containers": [{"name": "a"}]}}));
    assert!(pod_requests(&empty).is_empty());
}

fn with_ports(name: &str, ports: Value) -> Pod {
    pod(json!({
        "metadata": {"name": name, "uid": name},
        "spec": {"containers": [{"name": "c", "ports": ports}]}
    }))
}

#[test]
fn host_ports() {
    let busy = with_ports("a", json!([{"containerPort": 80, "hostPort": 8080}]));
    let conflict =
        rejected("NodePorts", "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports");
    let check = |ports: Value| verdict(&with_ports("b", ports), std::slice::from_ref(&busy));
    assert_eq!(check(json!([{"containerPort": 80, "hostPort": 8080}])), conflict);
    assert_eq!(check(json!([{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}])), conflict);
    assert_eq!(check(json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}])), conflict);
    assert_eq!(check(json!([{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}])), Ok(()));
    assert_eq!(check(json!([{"containerPort": 80, "hostPort": 8081}])), Ok(()));
    // Container ports without a host port take nothing on the node.
    assert_eq!(check(json!([{"containerPort": 8080}])), Ok(()));

    // Two specific addresses do not collide; a specific one and the wildcard do.
    let on_ip =
        with_ports("a", json!([{"containerPort": 80, "hostPort": 53, "hostIP": "10.0.0.1", "protocol": "UDP"}]));
    let check = |ports: Value| verdict(&with_ports("b", ports), std::slice::from_ref(&on_ip));
    assert_eq!(check(json!([{"containerPort": 53, "hostPort": 53, "hostIP": "10.0.0.2", "protocol": "UDP"}])), Ok(()));
    assert_eq!(
        check(json!([{"containerPort": 53, "hostPort": 53, "hostIP": "10.0.0.1", "protocol": "UDP"}])),
        conflict
    );
    assert_eq!(check(json!([{"containerPort": 53, "hostPort": 53, "protocol": "UDP"}])), conflict);

    // Init containers' host ports are not counted (upstream looks at regular containers only).
    let init = pod(json!({
        "metadata": {"name": "i"},
        "spec": {
            "containers": [{"name": "c"}],
            "initContainers": [{"name": "i", "ports": [{"containerPort": 80, "hostPort": 8080}]}]
        }
    }));
    assert_eq!(verdict(&init, std::slice::from_ref(&busy)), Ok(()));
}

fn with_spec(spec: Value) -> Pod {
    let mut spec = spec;
    spec["containers"] = json!([{"name": "c"}]);
    pod(json!({"metadata": {"name": "p"}, "spec": spec}))
}

#[test]
fn node_selector_and_required_affinity() {
    let mismatch =
        rejected("NodeAffinity", "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector");
    assert_eq!(verdict(&with_spec(json!({"nodeSelector": {"zone": "a"}})), &[]), Ok(()));
    assert_eq!(verdict(&with_spec(json!({"nodeSelector": {"zone": "b"}})), &[]), mismatch);
    assert_eq!(verdict(&with_spec(json!({"nodeSelector": {"zone": "a", "gpu": "yes"}})), &[]), mismatch);

    let required = |terms: Value| {
        with_spec(json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
        }}}))
    };
    let expr = |op: &str, key: &str, values: &[&str]| json!([{"matchExpressions": [{"key": key, "operator": op, "values": values}]}]);
    for (terms, fits) in [
        (expr("In", "zone", &["a", "b"]), true),
        (expr("In", "zone", &["b"]), false),
        (expr("NotIn", "zone", &["a"]), false),
        (expr("NotIn", "gpu", &["yes"]), true),
        (expr("Exists", "zone", &[]), true),
        (expr("DoesNotExist", "zone", &[]), false),
        (expr("Gt", "cores", &["4"]), true),
        (expr("Gt", "cores", &["8"]), false),
        (expr("Lt", "cores", &["9"]), true),
        (expr("Lt", "zone", &["9"]), false),
        (json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]), true),
        (json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}]), false),
        // An empty term matches nothing.
        (json!([{}]), false),
        // Terms are ORed; expressions within one are ANDed.
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]),
            true,
        ),
        (
            json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]},
                                      {"key": "cores", "operator": "In", "values": ["4"]}]}]),
            false,
        ),
    ] {
        let want = if fits { Ok(()) } else { mismatch.clone() };
        assert_eq!(verdict(&required(terms.clone()), &[]), want, "{terms}");
    }
    // nodeSelector and affinity must both hold.
    let mut both = required(expr("In", "zone", &["a"]));
    both.spec.as_mut().unwrap().node_selector = Some(BTreeMap::from([("zone".into(), "b".into())]));
    assert_eq!(verdict(&both, &[]), mismatch);
}

#[test]
fn node_name() {
    assert_eq!(verdict(&with_spec(json!({"nodeName": "n1"})), &[]), Ok(()));
    assert_eq!(
        verdict(&with_spec(json!({"nodeName": "n2"})), &[]),
        rejected("NodeName", "Predicate NodeName failed: node(s) didn't match the requested node name")
    );
}

#[test]
fn only_untolerated_no_execute_taints_reject() {
    let tainted = |effect: &str| -> Node {
        let mut n = node();
        n.spec =
            Some(serde_json::from_value(json!({"taints": [{"key": "k", "value": "v", "effect": effect}]})).unwrap());
        n
    };
    let untolerated = rejected(
        "TaintToleration",
        "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate",
    );
    let plain = with_spec(json!({}));
    assert_eq!(verdict_on(&plain, &[], &tainted("NoExecute"), &small()), untolerated);
    // NoSchedule and PreferNoSchedule are the scheduler's business.
    assert_eq!(verdict_on(&plain, &[], &tainted("NoSchedule"), &small()), Ok(()));
    assert_eq!(verdict_on(&plain, &[], &tainted("PreferNoSchedule"), &small()), Ok(()));
    for (tolerations, ok) in [
        (json!([{"key": "k", "value": "v"}]), true),
        (json!([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute"}]), true),
        (json!([{"key": "k", "operator": "Exists"}]), true),
        (json!([{"operator": "Exists"}]), true),
        (json!([{"key": "k", "value": "w"}]), false),
        (json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]), false),
        (json!([{"key": "other", "operator": "Exists"}]), false),
    ] {
        let p = with_spec(json!({"tolerations": tolerations}));
        let want = if ok { Ok(()) } else { untolerated.clone() };
        assert_eq!(verdict_on(&p, &[], &tainted("NoExecute"), &small()), want, "{tolerations}");
    }
    // Static pods are exempt; a pod from the API server is not.
    let mut static_pod = plain.clone();
    static_pod.metadata.annotations = Some(BTreeMap::from([(CONFIG_SOURCE_ANNOTATION.into(), "file".into())]));
    assert_eq!(verdict_on(&static_pod, &[], &tainted("NoExecute"), &small()), Ok(()));
    let mut api_pod = plain;
    api_pod.metadata.annotations = Some(BTreeMap::from([(CONFIG_SOURCE_ANNOTATION.into(), "api".into())]));
    assert_eq!(verdict_on(&api_pod, &[], &tainted("NoExecute"), &small()), untolerated);
}

#[test]
fn first_failure_in_upstream_order_decides() {
    // Too much cpu, the wrong zone, a taken port and an untolerated taint: resources first.
    let busy = with_ports("a", json!([{"containerPort": 80, "hostPort": 8080}]));
    let mut p = requesting("b", json!({"cpu": "4", "memory": "2Gi"}));
    let spec = p.spec.as_mut().unwrap();
    spec.node_selector = Some(BTreeMap::from([("zone".into(), "b".into())]));
    spec.containers[0].ports =
        Some(vec![serde_json::from_value(json!({"containerPort": 80, "hostPort": 8080})).unwrap()]);
    let mut n = node();
    n.spec = Some(serde_json::from_value(json!({"taints": [{"key": "k", "effect": "NoExecute"}]})).unwrap());
    let failures = general_filter(&p, std::slice::from_ref(&busy), &n, &small());
    let names: Vec<String> = failures.iter().map(|f| f.rejection().reason).collect();
    assert_eq!(names, ["OutOfcpu", "OutOfmemory", "NodeAffinity", "NodePorts", "TaintToleration"]);
    assert_eq!(verdict_on(&p, &[busy], &n, &small()).unwrap_err().0, "OutOfcpu");
}

#[test]
fn os_and_supplemental_groups_checks() {
    let mut labelled = with_spec(json!({}));
    labelled.metadata.labels = Some(BTreeMap::from([("kubernetes.io/os".into(), "windows".into())]));
    assert_eq!(
        verdict(&labelled, &[]),
        rejected(
            "PodOSSelectorNodeLabelDoesNotMatch",
            "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label"
        )
    );
    labelled.metadata.labels = Some(BTreeMap::from([("kubernetes.io/os".into(), "linux".into())]));
    assert_eq!(verdict(&labelled, &[]), Ok(()));

    assert_eq!(
        verdict(&with_spec(json!({"os": {"name": "windows"}})), &[]),
        rejected("PodOSNotSupported", "Failed to admit pod as the OS field doesn't match node OS")
    );
    assert_eq!(verdict(&with_spec(json!({"os": {"name": "linux"}})), &[]), Ok(()));

    let strict = with_spec(json!({"securityContext": {"supplementalGroupsPolicy": "Strict"}}));
    assert_eq!(
        verdict(&strict, &[]),
        rejected(
            "SupplementalGroupsPolicyNotSupported",
            "SupplementalGroupsPolicy=Strict is not supported in this node"
        )
    );
    let mut supporting = node();
    supporting.status = Some(serde_json::from_value(json!({"features": {"supplementalGroupsPolicy": true}})).unwrap());
    assert_eq!(verdict_on(&strict, &[], &supporting, &small()), Ok(()));
    assert_eq!(verdict(&with_spec(json!({"securityContext": {"supplementalGroupsPolicy": "Merge"}})), &[]), Ok(()));
}

#[test]
fn only_pods_that_never_ran_are_admitted() {
    let fresh = requesting("a", json!({}));
    assert!(needs_admission(&fresh, false));
    // Something of it in the runtime: a previous run admitted it.
    assert!(!needs_admission(&fresh, true));
    let with_status = |status: Value| {
        let mut p = fresh.clone();
        p.status = Some(serde_json::from_value(status).unwrap());
        p
    };
    let waiting = json!({"name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                         "state": {"waiting": {"reason": "ContainerCreating"}}});
    assert!(needs_admission(&with_status(json!({"phase": "Pending", "containerStatuses": [waiting]})), false));
    let running = json!({"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                         "state": {"running": {}}});
    assert!(!needs_admission(&with_status(json!({"phase": "Running", "containerStatuses": [running]})), false));
    let restarting = json!({"name": "i", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
                            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                            "lastState": {"terminated": {"exitCode": 1}}});
    assert!(!needs_admission(&with_status(json!({"phase": "Pending", "initContainerStatuses": [restarting]})), false));
    // Finished pods and pods being deleted are not admitted.
    assert!(!needs_admission(&with_status(json!({"phase": "Failed"})), false));
    assert!(!needs_admission(&with_status(json!({"phase": "Succeeded"})), false));
    let mut deleting = fresh.clone();
    deleting.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    assert!(!needs_admission(&deleting, false));
}

#[test]
fn node_allocatable_adds_what_the_kubelet_does_not_compute() {
    let mut n = node();
    n.status = Some(
        serde_json::from_value(json!({"allocatable": {"cpu": "64", "example.com/gpu": "2", "pods": "5"}})).unwrap(),
    );
    let a = node_allocatable(&small(), &n);
    assert_eq!(a["cpu"], 1000);
    assert_eq!(a["memory"], 1 << 30);
    assert_eq!(a["pods"], 110);
    assert_eq!(a["example.com/gpu"], 2);
    assert_eq!(a["hugepages-2Mi"], 0);
}

#[test]
fn rejected_status_fails_the_pod_like_upstream() {
    let rejection = Rejection {
        reason: "OutOfcpu".into(),
        message: "Node didn't have enough resource: cpu, requested: 2000, used: 500, capacity: 1000".into(),
    };
    let now = Timestamp::from_second(1_700_000_000).unwrap();
    let mut p = requesting("a", json!({"cpu": "2"}));
    p.status = Some(
        serde_json::from_value(json!({
            "phase": "Pending",
            "qosClass": "Burstable",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "DisruptionTarget", "status": "False"}
            ]
        }))
        .unwrap(),
    );
    assert_eq!(
        rejected_status(&p, &rejection, now),
        json!({
            "metadata": {"uid": "uid-a"},
            "status": {
                "phase": "Failed",
                "reason": "OutOfcpu",
                "message": "Pod was rejected: Node didn't have enough resource: cpu, requested: 2000, used: 500, capacity: 1000",
                "startTime": "2023-11-14T22:13:20Z",
                "conditions": [{"type": "PodScheduled", "$patch": "delete"}]
            }
        })
    );
    // A start time is kept; without kubelet conditions there is nothing to delete.
    p.status = Some(serde_json::from_value(json!({"phase": "Pending", "startTime": "2023-01-01T00:00:00Z"})).unwrap());
    let patch = rejected_status(&p, &rejection, now);
    assert_eq!(patch["status"].get("startTime"), None);
    assert_eq!(patch["status"].get("conditions"), None);
    assert_eq!(patch["status"]["phase"], "Failed");
}
