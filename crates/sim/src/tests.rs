//! Component tests: simulated nodes against the in-process API server, observed through a
//! kube-rs client the way any other component would see them.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use skiff_testkit::InProcess;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;

/// A running set of simulated nodes on an in-process server; stopped on drop.
struct Sim {
    /// Kept for the server's lifetime; handed back by [`Sim::stop`].
    api: Option<InProcess>,
    client: kube::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), SimError>>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn test_config(nodes: usize) -> SimConfig {
    SimConfig {
        nodes,
        renew_interval: Duration::from_millis(200),
        status_interval: Duration::from_millis(300),
        ..SimConfig::default()
    }
}

async fn start(config: SimConfig) -> Sim {
    let api = InProcess::start().await;
    start_on(api, config).await
}

async fn start_on(api: InProcess, config: SimConfig) -> Sim {
    let client = api.server.client("system:node:sim", &["system:masters"]);
    let shutdown = CancellationToken::new();
    let sim = SimNodes::new(client.clone(), config);
    let task = Some(tokio::spawn(sim.run(shutdown.clone())));
    Sim { api: Some(api), client, shutdown, task }
}

impl Sim {
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    async fn stop(mut self) -> InProcess {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let r = tokio::time::timeout(Duration::from_secs(5), task).await.expect("run returns on shutdown");
            r.expect("run does not panic").expect("run ends without error");
        }
        self.api.take().expect("server kept until stop")
    }
}

/// Polls `probe` until it yields a value (10 s at most).
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn node_json(sim: &Sim, name: &str) -> Option<Value> {
    let n = sim.nodes().get_opt(name).await.ok()??;
    let v = serde_json::to_value(n).ok()?;
    v.pointer("/status/nodeInfo").is_some().then_some(v)
}

async fn pod_json(sim: &Sim, name: &str) -> Option<Value> {
    serde_json::to_value(sim.pods().get_opt(name).await.ok()??).ok()
}

async fn pod_in_phase(sim: &Sim, name: &str, phase: &str) -> Value {
    eventually(&format!("pod {name} {phase}"), || async {
        pod_json(sim, name).await.filter(|p| p["status"]["phase"] == phase)
    })
    .await
}

fn pod(name: &str, node: &str, annotations: Value, restart: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart,
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        },
    }))
    .expect("valid pod")
}

async fn create(sim: &Sim, p: &Pod) {
    sim.pods().create(&PostParams::default(), p).await.expect("pod created");
}

fn types(conditions: &Value) -> Vec<String> {
    conditions.as_array().into_iter().flatten().map(|c| c["type"].as_str().unwrap_or_default().to_string()).collect()
}

fn condition<'a>(v: &'a Value, type_: &str) -> &'a Value {
    v["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == type_)).unwrap_or(&Value::Null)
}

fn ip_of(v: &Value, field: &str) -> Ipv4Addr {
    v["status"][field].as_str().and_then(|s| s.parse().ok()).unwrap_or(Ipv4Addr::UNSPECIFIED)
}

#[tokio::test]
async fn nodes_register_ready_with_capacity_and_labels() {
    let mut config = test_config(3);
    config.cpu = "4".into();
    config.memory = "16Gi".into();
    config.pods = 50;
    config.labels = BTreeMap::from([("zone".to_string(), "a".to_string())]);
    let sim = start(config).await;
    let n = eventually("sim-2 registered", || node_json(&sim, "sim-2")).await;
    let n1 = eventually("sim-1 registered", || node_json(&sim, "sim-1")).await;
    let n0 = eventually("sim-0 registered", || node_json(&sim, "sim-0")).await;
    assert_eq!(
        n["metadata"]["labels"],
        json!({
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": "sim-2",
            "kubernetes.io/os": "linux",
            "type": "skiff-sim",
            "zone": "a",
        })
    );
    assert_eq!(n["metadata"]["annotations"]["node.alpha.kubernetes.io/ttl"], "0");
    assert_eq!(n["spec"]["podCIDR"], "10.128.2.0/24");
    assert_eq!(n["spec"]["podCIDRs"], json!(["10.128.2.0/24"]));
    assert_eq!(n1["spec"]["podCIDR"], "10.128.1.0/24");
    let resources = json!({
        "cpu": "4", "ephemeral-storage": "100Gi", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
        "memory": "16Gi", "pods": "50",
    });
    assert_eq!(n["status"]["capacity"], resources);
    assert_eq!(n["status"]["allocatable"], resources);
    assert_eq!(types(&n["status"]["conditions"]), ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]);
    let ready = condition(&n, "Ready");
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "KubeletReady");
    assert_eq!(ready["message"], "kubelet is posting ready status");
    let mem = condition(&n, "MemoryPressure");
    assert_eq!(mem["status"], "False");
    assert_eq!(mem["reason"], "KubeletHasSufficientMemory");
    assert_eq!(condition(&n, "DiskPressure")["reason"], "KubeletHasNoDiskPressure");
    assert_eq!(condition(&n, "PIDPressure")["message"], "kubelet has sufficient PID available");
    assert_eq!(
        n["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "100.64.0.3"}, {"type": "Hostname", "address": "sim-2"}])
    );
    let info = &n["status"]["nodeInfo"];
    assert_eq!(info["kubeletVersion"], "v1.33.0-skiff-sim");
    assert_eq!(info["containerRuntimeVersion"], format!("skiff-sim://{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(info["operatingSystem"], "linux");
    assert_eq!(info["architecture"], "amd64");
    for field in ["machineID", "systemUUID", "bootID"] {
        let ids: std::collections::BTreeSet<&str> =
            [&n, &n1, &n0].iter().map(|n| n["status"]["nodeInfo"][field].as_str().unwrap_or_default()).collect();
        assert_eq!(ids.len(), 3, "{field} unique per node: {ids:?}");
        assert!(!ids.contains(""), "{field} set");
    }
    assert_eq!(n["status"]["daemonEndpoints"], json!({"kubeletEndpoint": {"Port": 0}}));
    assert_eq!(n0["status"]["addresses"][0]["address"], "100.64.0.1");
}

#[tokio::test]
async fn leases_and_heartbeats_advance() {
    let sim = start(test_config(2)).await;
    let node = eventually("sim-1 registered", || node_json(&sim, "sim-1")).await;
    let leases: Api<Lease> = Api::namespaced(sim.client.clone(), "kube-node-lease");
    let lease = eventually("lease of sim-1", || async { leases.get_opt("sim-1").await.ok()? }).await;
    let spec = lease.spec.clone().expect("lease spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("sim-1"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = lease.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.len(), 1);
    assert_eq!((owner[0].kind.as_str(), owner[0].name.as_str()), ("Node", "sim-1"));
    assert_eq!(Some(owner[0].uid.as_str()), node["metadata"]["uid"].as_str());
    let first = spec.renew_time.expect("renewTime").0;
    eventually("renewTime advances", || async {
        let t = leases.get_opt("sim-1").await.ok()??.spec?.renew_time?.0;
        (t > first).then_some(())
    })
    .await;
    let beat = condition(&node, "Ready")["lastHeartbeatTime"].as_str().unwrap_or_default().to_string();
    let since = condition(&node, "Ready")["lastTransitionTime"].clone();
    // Heartbeat times have second precision: wait for a later one.
    let later = eventually("heartbeat advances", || async {
        let n = node_json(&sim, "sim-1").await?;
        let b = condition(&n, "Ready")["lastHeartbeatTime"].as_str()?.to_string();
        (b > beat).then_some(n)
    })
    .await;
    assert_eq!(condition(&later, "Ready")["lastTransitionTime"], since, "no transition without a change");
    assert_eq!(condition(&later, "Ready")["status"], "True");
    // A deleted Node stays deleted (a kubelet registers only when it starts) ...
    sim.nodes().delete("sim-0", &DeleteParams::default()).await.expect("delete node");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(sim.nodes().get_opt("sim-0").await.expect("get node").is_none());
    // ... but a deleted lease is made again by the next renewal, as the node lease controller
    // does.
    leases.delete("sim-1", &DeleteParams::default()).await.expect("delete lease");
    let again = eventually("lease recreated", || async { leases.get_opt("sim-1").await.ok()? }).await;
    assert_ne!(again.metadata.uid, lease.metadata.uid);
    assert_eq!(again.spec.and_then(|s| s.holder_identity).as_deref(), Some("sim-1"));
}

/// Runs `nodes` nodes with `per_node` pods each and checks every pod runs with its own address
/// in its node's range. Returns how long registration and pod start-up took, and the running
/// simulation.
async fn many_pods(nodes: usize, per_node: usize) -> (Duration, Duration, Sim) {
    let begin = std::time::Instant::now();
    let sim = start(SimConfig { nodes, ..SimConfig::default() }).await;
    let last = format!("sim-{}", nodes - 1);
    let all = Api::<Node>::all(sim.client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let list = all.list(&Default::default()).await.expect("list nodes");
        let ready = list.items.iter().filter(|n| n.status.as_ref().is_some_and(|s| s.node_info.is_some())).count();
        if ready == nodes {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{ready} of {nodes} nodes registered");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    node_json(&sim, &last).await.expect("last node registered");
    let registered = begin.elapsed();
    let begin = std::time::Instant::now();
    let pods = sim.pods();
    let creates = (0..nodes * per_node).map(|i| {
        let p = pod(&format!("p{i}"), &format!("sim-{}", i % nodes), json!({}), "Always");
        let pods = pods.clone();
        async move { pods.create(&PostParams::default(), &p).await.map(|_| ()) }
    });
    let results: Vec<_> = futures::stream::iter(creates).buffer_unordered(32).collect().await;
    assert!(results.iter().all(Result::is_ok), "all pods created");
    println!("{} pods created in {:?}", nodes * per_node, begin.elapsed());
    // Wait until no pod is left that is not Running: cheap to ask (one item at most).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1800);
    let not_running = kube::api::ListParams::default().fields("status.phase!=Running").limit(1);
    loop {
        let list = pods.list(&not_running).await.expect("list pods");
        if list.items.is_empty() {
            break;
        }
        let left = list.metadata.remaining_item_count.unwrap_or(0) + 1;
        assert!(tokio::time::Instant::now() < deadline, "{left} of {} pods not running", nodes * per_node);
        // Even this query filters every pod on the server: ask big runs rarely.
        tokio::time::sleep(Duration::from_millis((nodes * per_node / 10) as u64).max(Duration::from_millis(500))).await;
    }
    let elapsed = begin.elapsed();
    let list = pods.list(&Default::default()).await.expect("list pods");
    assert_eq!(list.items.len(), nodes * per_node);
    let mut seen = std::collections::HashSet::new();
    for p in &list.items {
        assert_eq!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running"));
        let node: usize = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| n.strip_prefix("sim-"))
            .and_then(|i| i.parse().ok())
            .expect("our node");
        let ip: Ipv4Addr =
            p.status.as_ref().and_then(|s| s.pod_ip.as_deref()).and_then(|i| i.parse().ok()).expect("pod IP");
        assert_eq!(Ipv4Addr::from(u32::from(ip) & !0xff), ipam::pod_range(node), "{ip} on sim-{node}");
        assert!(seen.insert(ip), "{ip} given twice");
    }
    (registered, elapsed, sim)
}

#[tokio::test]
async fn a_thousand_pods_on_forty_nodes() {
    many_pods(40, 25).await;
}

/// The target scale: `SKIFF_SIM_NODES` (5,000) nodes with `SKIFF_SIM_PODS_PER_NODE` (30) pods.
/// `cargo test -p skiff-sim --release --lib -- --ignored --nocapture at_scale`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "minutes long; run by hand to measure"]
async fn at_scale() {
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let (nodes, per_node) = (env("SKIFF_SIM_NODES", 5000), env("SKIFF_SIM_PODS_PER_NODE", 30));
    let (registered, started, sim) = many_pods(nodes, per_node).await;
    println!(
        "{nodes} nodes registered in {registered:?}; {} pods created and running in {started:?}",
        nodes * per_node
    );
    // Under that load every lease was still renewed within its duration.
    let leases = Api::<Lease>::namespaced(sim.client.clone(), "kube-node-lease")
        .list(&Default::default())
        .await
        .expect("leases");
    assert_eq!(leases.items.len(), nodes);
    let now = jiff::Timestamp::now();
    let stalest = leases
        .items
        .iter()
        .filter_map(|l| l.spec.as_ref()?.renew_time.as_ref())
        .map(|t| now.duration_since(t.0).as_secs_f64())
        .fold(0f64, f64::max);
    println!("stalest lease renewed {stalest:.1}s ago");
    assert!(stalest < 40.0, "a lease expired: renewed {stalest:.1}s ago");
    let rss = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    println!("{}", rss.lines().find(|l| l.starts_with("VmRSS")).unwrap_or_default());
}

#[tokio::test]
async fn bound_pod_runs_with_an_address_in_its_node_range() {
    let sim = start(test_config(2)).await;
    eventually("sim-1 registered", || node_json(&sim, "sim-1")).await;
    let p: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "nodeName": "sim-1",
            "initContainers": [{"name": "setup", "image": "busybox"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "log", "image": "fluent/fluent-bit:3"}],
        },
    }))
    .expect("valid pod");
    create(&sim, &p).await;
    let v = pod_in_phase(&sim, "web", "Running").await;
    let s = &v["status"];
    let ip = ip_of(&v, "podIP");
    assert_eq!(ip.octets()[..3], [10, 128, 1], "{ip} in sim-1's 10.128.1.0/24");
    assert!(ip.octets()[3] >= 2 && ip.octets()[3] <= 254, "{ip}");
    assert_eq!(s["podIPs"], json!([{"ip": ip.to_string()}]));
    assert_eq!(s["hostIP"], "100.64.0.2");
    assert_eq!(s["hostIPs"], json!([{"ip": "100.64.0.2"}]));
    assert!(s["startTime"].is_string());
    assert_eq!(
        types(&s["conditions"]),
        ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    );
    for c in s["conditions"].as_array().into_iter().flatten() {
        assert_eq!(c["status"], "True", "{c}");
        assert!(c["lastTransitionTime"].is_string(), "{c}");
        assert!(c.get("reason").is_none(), "{c}");
    }
    let cs = s["containerStatuses"].as_array().cloned().unwrap_or_default();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["name"], "app");
    assert_eq!(cs[0]["image"], "nginx:1.27");
    assert!(cs[0]["imageID"].as_str().unwrap_or_default().starts_with("nginx@sha256:"), "{}", cs[0]);
    assert_eq!(cs[1]["name"], "log");
    for c in &cs {
        assert_eq!(c["ready"], true);
        assert_eq!(c["started"], true);
        assert_eq!(c["restartCount"], 0);
        assert!(c["state"]["running"]["startedAt"].is_string(), "{c}");
        assert!(c["containerID"].as_str().unwrap_or_default().starts_with("skiff-sim://"), "{c}");
    }
    assert_ne!(cs[0]["containerID"], cs[1]["containerID"]);
    let init = &s["initContainerStatuses"][0];
    assert_eq!(init["name"], "setup");
    assert_eq!(init["ready"], true);
    assert_eq!(init["started"], false);
    assert_eq!(init["state"]["terminated"]["exitCode"], 0);
    assert_eq!(init["state"]["terminated"]["reason"], "Completed");
    // A second pod on the same node gets another address of the same range.
    create(&sim, &pod("web2", "sim-1", json!({}), "Always")).await;
    let v2 = pod_in_phase(&sim, "web2", "Running").await;
    let ip2 = ip_of(&v2, "podIP");
    assert_eq!(ip2.octets()[..3], [10, 128, 1]);
    assert_ne!(ip, ip2);
    // And one on sim-0 one of sim-0's range.
    create(&sim, &pod("web3", "sim-0", json!({}), "Always")).await;
    let v3 = pod_in_phase(&sim, "web3", "Running").await;
    assert_eq!(ip_of(&v3, "podIP").octets()[..3], [10, 128, 0]);
    assert_eq!(v3["status"]["hostIP"], "100.64.0.1");
}

#[tokio::test]
async fn exit_annotation_ends_or_restarts_the_containers() {
    let sim = start(test_config(1)).await;
    eventually("sim-0 registered", || node_json(&sim, "sim-0")).await;
    let exit = |after: &str, code: Option<&str>| match code {
        Some(c) => json!({EXIT_AFTER_ANNOTATION: after, EXIT_CODE_ANNOTATION: c}),
        None => json!({EXIT_AFTER_ANNOTATION: after}),
    };
    create(&sim, &pod("ok", "sim-0", exit("300ms", None), "Never")).await;
    create(&sim, &pod("bad", "sim-0", exit("300ms", Some("3")), "Never")).await;
    create(&sim, &pod("again", "sim-0", exit("200ms", Some("1")), "Always")).await;
    create(&sim, &pod("retry-ok", "sim-0", exit("200ms", None), "OnFailure")).await;

    let ok = pod_in_phase(&sim, "ok", "Succeeded").await;
    let c = &ok["status"]["containerStatuses"][0];
    assert_eq!(c["state"]["terminated"]["exitCode"], 0);
    assert_eq!(c["state"]["terminated"]["reason"], "Completed");
    assert_eq!(c["state"]["terminated"]["containerID"], c["containerID"]);
    assert!(c["state"]["terminated"]["finishedAt"].is_string());
    assert_eq!(c["ready"], false);
    assert_eq!(c["started"], false);
    assert_eq!(c["restartCount"], 0);
    assert_eq!(condition(&ok, "Ready")["status"], "False");
    assert_eq!(condition(&ok, "Ready")["reason"], "PodCompleted");
    assert_eq!(condition(&ok, "ContainersReady")["reason"], "PodCompleted");
    assert_eq!(condition(&ok, "Initialized")["reason"], "PodCompleted");
    assert_eq!(condition(&ok, "PodReadyToStartContainers")["status"], "False");
    // The address stays in the finished pod's status.
    assert_eq!(ip_of(&ok, "podIP").octets()[..3], [10, 128, 0]);

    let bad = pod_in_phase(&sim, "bad", "Failed").await;
    let c = &bad["status"]["containerStatuses"][0];
    assert_eq!(c["state"]["terminated"]["exitCode"], 3);
    assert_eq!(c["state"]["terminated"]["reason"], "Error");
    assert_eq!(condition(&bad, "Ready")["reason"], "PodFailed");
    assert_eq!(condition(&bad, "Initialized")["status"], "True");
    assert!(condition(&bad, "Initialized").get("reason").is_none());

    // OnFailure with exit code 0: done, not restarted.
    let done = pod_in_phase(&sim, "retry-ok", "Succeeded").await;
    assert_eq!(done["status"]["containerStatuses"][0]["restartCount"], 0);

    let again = eventually("restarts", || async {
        pod_json(&sim, "again")
            .await
            .filter(|p| p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(2))
    })
    .await;
    assert_eq!(again["status"]["phase"], "Running");
    let c = &again["status"]["containerStatuses"][0];
    assert_eq!(c["ready"], true);
    assert!(c["state"]["running"]["startedAt"].is_string());
    let last = &c["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 1);
    assert_eq!(last["reason"], "Error");
    assert_ne!(last["containerID"], c["containerID"], "each run is a new container");
}

#[tokio::test]
async fn pending_annotation_leaves_the_pod_unstarted_and_deletion_still_completes() {
    let sim = start(SimConfig { pods: 1, ..test_config(1) }).await;
    eventually("sim-0 registered", || node_json(&sim, "sim-0")).await;
    create(&sim, &pod("held", "sim-0", json!({PENDING_ANNOTATION: "true"}), "Always")).await;
    create(&sim, &pod("typo", "sim-0", json!({PENDING_ANNOTATION: "yes"}), "Always")).await;
    // A bad value is ignored: that pod runs, and takes the node's only pod slot, which the
    // pending pod does not hold.
    let typo = pod_in_phase(&sim, "typo", "Running").await;
    assert_eq!(ip_of(&typo, "podIP").octets()[..3], [10, 128, 0]);
    let before = pod_json(&sim, "held").await.expect("held exists");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = pod_json(&sim, "held").await.expect("held exists");
    assert_eq!(held["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"], "no write: {held}");
    assert_eq!(held["status"]["phase"], "Pending");
    assert!(held["status"].get("podIP").is_none());
    assert!(held["status"].get("containerStatuses").is_none());

    sim.pods().delete("held", &DeleteParams::default()).await.expect("delete held");
    eventually("held gone", || async { sim.pods().get_opt("held").await.ok()?.is_none().then_some(()) }).await;
}

#[tokio::test]
async fn a_recreated_pod_does_not_inherit_the_exit_of_its_namesake() {
    let sim = start(test_config(1)).await;
    eventually("sim-0 registered", || node_json(&sim, "sim-0")).await;
    let begin = tokio::time::Instant::now();
    create(&sim, &pod("x", "sim-0", json!({EXIT_AFTER_ANNOTATION: "1s"}), "Never")).await;
    let first = pod_in_phase(&sim, "x", "Running").await;
    sim.pods().delete("x", &DeleteParams::default()).await.expect("delete x");
    eventually("x gone", || async { sim.pods().get_opt("x").await.ok()?.is_none().then_some(()) }).await;
    create(&sim, &pod("x", "sim-0", json!({EXIT_AFTER_ANNOTATION: "20s"}), "Never")).await;
    let second = eventually("new x running", || async {
        pod_json(&sim, "x")
            .await
            .filter(|p| p["metadata"]["uid"] != first["metadata"]["uid"] && p["status"]["phase"] == "Running")
    })
    .await;
    assert_ne!(ip_of(&second, "podIP"), Ipv4Addr::UNSPECIFIED);
    // Past the first pod's exit time, the second one still runs.
    tokio::time::sleep_until(begin + Duration::from_millis(1500)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = pod_json(&sim, "x").await.expect("x exists");
    assert_eq!(later["status"]["phase"], "Running");
    assert_eq!(later["metadata"]["uid"], second["metadata"]["uid"]);
}

#[tokio::test]
async fn a_pod_bound_later_through_the_binding_subresource_runs() {
    let sim = start(test_config(1)).await;
    eventually("sim-0 registered", || node_json(&sim, "sim-0")).await;
    create(&sim, &pod("later", "", json!({}), "Always")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pod_json(&sim, "later").await.expect("pod")["status"]["phase"], "Pending");
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "later"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "sim-0"},
    });
    sim.pods()
        .create_subresource::<Value, Value>("binding", "later", &PostParams::default(), &binding)
        .await
        .expect("bound");
    let v = pod_in_phase(&sim, "later", "Running").await;
    assert_eq!(ip_of(&v, "podIP").octets()[..3], [10, 128, 0]);
}

#[tokio::test]
async fn deleted_pods_disappear_and_foreign_pods_are_left_alone() {
    let sim = start(test_config(1)).await;
    eventually("sim-0 registered", || node_json(&sim, "sim-0")).await;
    // The foreign pod is created first: by the time ours runs, the watch has passed it.
    create(&sim, &pod("foreign", "real-node", json!({}), "Always")).await;
    create(&sim, &pod("mine", "sim-0", json!({}), "Always")).await;
    let mine = pod_in_phase(&sim, "mine", "Running").await;
    let foreign = pod_json(&sim, "foreign").await.expect("foreign pod exists");
    assert_eq!(foreign["status"]["phase"], "Pending");
    assert!(foreign["status"].get("podIP").is_none());
    assert!(foreign["status"].get("containerStatuses").is_none());

    sim.pods().delete("foreign", &DeleteParams::default()).await.expect("delete foreign");
    sim.pods().delete("mine", &DeleteParams::default()).await.expect("delete mine");
    eventually("mine gone", || async { sim.pods().get_opt("mine").await.ok()?.is_none().then_some(()) }).await;
    // The foreign pod waits for its own kubelet: still there, terminating.
    let foreign = pod_json(&sim, "foreign").await.expect("foreign pod still exists");
    assert!(foreign["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(foreign["status"]["phase"], "Pending");
    assert_eq!(ip_of(&mine, "podIP").octets()[..3], [10, 128, 0]);
}

#[tokio::test]
async fn takes_over_an_existing_node_and_keeps_state_across_restarts() {
    let api = InProcess::start().await;
    let admin = api.server.client("admin", &["system:masters"]);
    let existing: Node = serde_json::from_value(json!({
        "metadata": {"name": "sim-0", "labels": {"team": "a"}},
        "spec": {"podCIDR": "10.42.7.0/24", "podCIDRs": ["10.42.7.0/24"]},
    }))
    .expect("valid node");
    Api::<Node>::all(admin).create(&PostParams::default(), &existing).await.expect("node created");
    let sim = start_on(api, test_config(1)).await;
    let n = eventually("sim-0 taken over", || async {
        node_json(&sim, "sim-0").await.filter(|n| n["metadata"]["labels"]["type"] == "skiff-sim")
    })
    .await;
    assert_eq!(n["metadata"]["labels"]["team"], "a");
    assert_eq!(n["spec"]["podCIDR"], "10.42.7.0/24");
    create(&sim, &pod("p", "sim-0", json!({}), "Always")).await;
    let p = pod_in_phase(&sim, "p", "Running").await;
    let ip = ip_of(&p, "podIP");
    assert_eq!(ip.octets()[..3], [10, 42, 7], "{ip} in the existing podCIDR");

    // A second run of the simulation adopts the running pod as it is and does not reuse its
    // address for a new pod.
    let api = sim.stop().await;
    // A stopped simulation leaves its nodes behind, like a kubelet that stopped.
    let admin = api.server.client("admin", &["system:masters"]);
    assert!(Api::<Node>::all(admin).get_opt("sim-0").await.expect("get node").is_some());
    let sim = start_on(api, test_config(1)).await;
    create(&sim, &pod("q", "sim-0", json!({}), "Always")).await;
    let q = pod_in_phase(&sim, "q", "Running").await;
    let p2 = pod_json(&sim, "p").await.expect("p still exists");
    assert_eq!(ip_of(&p2, "podIP"), ip);
    assert_eq!(p2["status"]["startTime"], p["status"]["startTime"]);
    assert_eq!(p2["status"]["containerStatuses"], p["status"]["containerStatuses"]);
    assert_eq!(ip_of(&q, "podIP").octets()[..3], [10, 42, 7]);
    assert_ne!(ip_of(&q, "podIP"), ip);
}

#[tokio::test]
async fn host_network_pods_use_the_node_address() {
    let sim = start(SimConfig { pods: 2, ..test_config(2) }).await;
    eventually("sim-1 registered", || node_json(&sim, "sim-1")).await;
    let mut p = pod("agent", "sim-1", json!({}), "Always");
    if let Some(spec) = p.spec.as_mut() {
        spec.host_network = Some(true);
    }
    create(&sim, &p).await;
    let v = pod_in_phase(&sim, "agent", "Running").await;
    assert_eq!(v["status"]["podIP"], "100.64.0.2");
    assert_eq!(v["status"]["podIPs"], json!([{"ip": "100.64.0.2"}]));
    assert_eq!(v["status"]["hostIP"], "100.64.0.2");
    // It still counts against the node's pod capacity.
    create(&sim, &pod("b", "sim-1", json!({}), "Always")).await;
    pod_in_phase(&sim, "b", "Running").await;
    create(&sim, &pod("c", "sim-1", json!({}), "Always")).await;
    let c = pod_in_phase(&sim, "c", "Failed").await;
    assert_eq!(c["status"]["reason"], "OutOfpods");
}

#[tokio::test]
async fn readiness_gates_hold_ready_until_their_conditions_are_true() {
    let sim = start(test_config(1)).await;
    eventually("sim-0 registered", || node_json(&sim, "sim-0")).await;
    let mut p = pod("gated", "sim-0", json!({}), "Always");
    if let Some(spec) = p.spec.as_mut() {
        spec.readiness_gates =
            Some(vec![k8s_openapi::api::core::v1::PodReadinessGate { condition_type: "example.com/lb".to_string() }]);
    }
    create(&sim, &p).await;
    let v = pod_in_phase(&sim, "gated", "Running").await;
    let ready = condition(&v, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "ReadinessGatesNotReady");
    assert_eq!(ready["message"], "corresponding condition of pod readiness gate \"example.com/lb\" does not exist.");
    assert_eq!(condition(&v, "ContainersReady")["status"], "True");
    let set = |status: &str| {
        kube::api::Patch::Strategic(json!({"status": {"conditions": [{"type": "example.com/lb", "status": status}]}}))
    };
    let pp = kube::api::PatchParams::default();
    sim.pods().patch_status("gated", &pp, &set("False")).await.expect("gate False");
    eventually("Ready names the gate's status", || async {
        let v = pod_json(&sim, "gated").await?;
        let m = condition(&v, "Ready")["message"].as_str()?.to_string();
        (m == "the status of pod readiness gate \"example.com/lb\" is not \"True\", but False").then_some(())
    })
    .await;
    sim.pods().patch_status("gated", &pp, &set("True")).await.expect("gate True");
    let v = eventually("Ready", || async {
        pod_json(&sim, "gated").await.filter(|v| condition(v, "Ready")["status"] == "True")
    })
    .await;
    assert!(condition(&v, "Ready").get("reason").is_none());
    assert!(condition(&v, "Ready").get("message").is_none());
    assert_eq!(condition(&v, "example.com/lb")["status"], "True", "the gate's condition is kept");
}

#[tokio::test]
async fn a_full_node_rejects_pods_until_one_is_gone() {
    let sim = start(SimConfig { pods: 2, ..test_config(1) }).await;
    eventually("sim-0 registered", || node_json(&sim, "sim-0")).await;
    create(&sim, &pod("a", "sim-0", json!({}), "Always")).await;
    create(&sim, &pod("b", "sim-0", json!({}), "Always")).await;
    pod_in_phase(&sim, "a", "Running").await;
    pod_in_phase(&sim, "b", "Running").await;
    create(&sim, &pod("c", "sim-0", json!({}), "Always")).await;
    let c = pod_in_phase(&sim, "c", "Failed").await;
    assert_eq!(c["status"]["reason"], "OutOfpods");
    assert_eq!(
        c["status"]["message"],
        "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2"
    );
    assert!(c["status"].get("podIP").is_none());
    sim.pods().delete("a", &DeleteParams::default()).await.expect("delete a");
    eventually("a gone", || async { sim.pods().get_opt("a").await.ok()?.is_none().then_some(()) }).await;
    create(&sim, &pod("d", "sim-0", json!({}), "Always")).await;
    pod_in_phase(&sim, "d", "Running").await;
    // The rejected pod is deleted like any other.
    sim.pods().delete("c", &DeleteParams::default()).await.expect("delete c");
    eventually("c gone", || async { sim.pods().get_opt("c").await.ok()?.is_none().then_some(()) }).await;
}

#[tokio::test]
async fn invalid_configurations_are_refused_before_any_write() {
    let api = InProcess::start().await;
    let client = api.server.client("system:node:sim", &["system:masters"]);
    let cases = [
        SimConfig { nodes: 40_000, ..SimConfig::default() },
        SimConfig { pods: 300, ..SimConfig::default() },
        SimConfig { renew_interval: Duration::ZERO, ..SimConfig::default() },
        SimConfig { lease_duration_seconds: 0, ..SimConfig::default() },
    ];
    for config in cases {
        let r = SimNodes::new(client.clone(), config.clone()).run(CancellationToken::new()).await;
        assert!(matches!(r, Err(SimError::InvalidConfig(_))), "{config:?}: {r:?}");
    }
    let nodes = Api::<Node>::all(client).list(&Default::default()).await.expect("list nodes");
    assert!(nodes.items.is_empty());
}

#[tokio::test]
async fn forbidden_registration_is_an_error() {
    let api = InProcess::start().await;
    let nobody = api.server.client("nobody", &[]);
    let r = SimNodes::new(nobody, test_config(1)).run(CancellationToken::new()).await;
    match r {
        Err(SimError::Register { node, source }) => {
            assert_eq!(node, "sim-0");
            assert_eq!(retry::code(&source), Some(403));
        }
        other => panic!("expected a registration error, got {other:?}"),
    }
}
