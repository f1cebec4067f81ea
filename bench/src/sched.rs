//! (f) Scheduling throughput (issue 6) in the shape of upstream's `scheduler_perf`
//! SchedulingBasic: `skiff server --simulate-nodes 5000` (4 CPU, 32 GiB, 110 pods each, as
//! upstream's `node-default.yaml`), 1,000 pods created and scheduled first, then 10,000
//! measured pods (`pod-default.yaml`: 100m CPU, 500 MiB requested). The whole cluster runs in
//! the one process: API server, store, controllers, scheduler and the simulated nodes, which
//! renew their Leases and heartbeat. As in upstream's benchmark, where the nodes run no kubelet,
//! bound pods stay `Pending` (the simulator's `skiff.dev/sim-pending` annotation); the extra
//! workload `basic-running` is SchedulingBasic with every bound pod reported Running by its
//! simulated kubelet, one more write per pod. Throughput is measured pods divided by the time
//! from the first measured create to the last binding seen on a watch; latency is create →
//! bound per pod. Upstream's CI thresholds (pods/s, on their 8+ core runners, scheduler alone
//! against an API server without kubelets) are printed beside it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::json;

use crate::client::JsonStream;
use crate::requests::Counts;
use crate::servers::{Env, Kind, Memory, Server};
use crate::stats::Summary;

/// Upstream's scheduler_perf workloads we reproduce (`config/performance-config.yaml`), each
/// with the pod templates and node labels it uses there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shape {
    /// `SchedulingBasic`: default pods (100m CPU, 500 MiB).
    Basic,
    /// `SchedulingNodeAffinity`: every node in `zone1`; pods require zone `zone1` or `zone2`.
    NodeAffinity,
    /// `SchedulingPodAntiAffinity`: pods labelled `color: green`, each refusing a node that
    /// already runs one (topology key `kubernetes.io/hostname`, across both namespaces).
    PodAntiAffinity,
    /// `TopologySpreading`: nodes in three zones; default pods first, then pods spreading
    /// over the zones with `maxSkew: 5`, `DoNotSchedule`.
    TopologySpreading,
    /// `SchedulingBasic` with kubelets: each bound pod is reported Running by its simulated
    /// node (a status write per pod that upstream's benchmark does not make).
    BasicRunning,
}

impl Shape {
    pub(crate) const ALL: [Shape; 5] =
        [Shape::Basic, Shape::NodeAffinity, Shape::PodAntiAffinity, Shape::TopologySpreading, Shape::BasicRunning];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Shape::Basic => "SchedulingBasic",
            Shape::NodeAffinity => "SchedulingNodeAffinity",
            Shape::PodAntiAffinity => "SchedulingPodAntiAffinity",
            Shape::TopologySpreading => "TopologySpreading",
            Shape::BasicRunning => "SchedulingBasic, pods reported Running",
        }
    }

    /// Upstream's CI threshold for the 5,000-node workload, pods/s.
    pub(crate) fn threshold(self) -> f64 {
        match self {
            Shape::Basic | Shape::BasicRunning => 270.0,
            Shape::NodeAffinity => 220.0,
            Shape::PodAntiAffinity => 60.0,
            Shape::TopologySpreading => 85.0,
        }
    }

    /// (initial, measured) pods: upstream's 5,000-node counts, except SchedulingBasic, whose
    /// 10,000 measured pods the issue asks for (upstream measures 1,000).
    fn counts(self, quick: bool) -> (usize, usize) {
        match (self, quick) {
            (Shape::Basic | Shape::BasicRunning, false) => (1000, 10_000),
            (Shape::NodeAffinity, false) => (5000, 1000),
            (Shape::PodAntiAffinity, false) => (1000, 1000),
            (Shape::TopologySpreading, false) => (5000, 2000),
            (Shape::Basic | Shape::BasicRunning, true) => (100, 500),
            (Shape::NodeAffinity, true) => (100, 200),
            // At most one per node: 50 nodes take 40.
            (Shape::PodAntiAffinity, true) => (10, 30),
            (Shape::TopologySpreading, true) => (100, 200),
        }
    }

    /// Namespaces of the initial and the measured pods.
    fn namespaces(self) -> (&'static str, &'static str) {
        match self {
            Shape::PodAntiAffinity => ("sched-0", "sched-1"),
            _ => ("sched-0", "sched-0"),
        }
    }

    /// The zone label of node `i`, if the workload labels nodes.
    fn zone(self, i: usize) -> Option<String> {
        match self {
            Shape::NodeAffinity => Some("zone1".into()),
            Shape::TopologySpreading => Some(format!("moon-{}", i % 3 + 1)),
            _ => None,
        }
    }

    fn pod(self, name: &str, namespace: &str, measured: bool) -> Bytes {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                "ports": [{"containerPort": 80}],
                "resources": {"requests": {"cpu": "100m", "memory": "500Mi"},
                              "limits": {"cpu": "100m", "memory": "500Mi"}}}]}
        });
        if self != Shape::BasicRunning {
            // Upstream's nodes run no kubelet: a bound pod stays as the scheduler left it.
            pod["metadata"]["annotations"] = json!({"skiff.dev/sim-pending": "true"});
        }
        match self {
            Shape::Basic | Shape::BasicRunning => {}
            Shape::NodeAffinity => {
                pod["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": ZONE, "operator": "In", "values": ["zone1", "zone2"]}]}]}}});
            }
            Shape::PodAntiAffinity => {
                let (a, b) = self.namespaces();
                pod["metadata"]["labels"] = json!({"color": "green"});
                pod["spec"]["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"color": "green"}},
                    "topologyKey": "kubernetes.io/hostname",
                    "namespaces": [a, b]}]}});
            }
            Shape::TopologySpreading if measured => {
                pod["metadata"]["labels"] = json!({"color": "blue"});
                pod["spec"]["topologySpreadConstraints"] = json!([{
                    "maxSkew": 5, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"color": "blue"}}}]);
            }
            Shape::TopologySpreading => {}
        }
        Bytes::from(serde_json::to_vec(&pod).unwrap_or_default())
    }
}

const ZONE: &str = "topology.kubernetes.io/zone";

#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub nodes: usize,
    /// Concurrent creating connections.
    pub creators: usize,
    /// Smaller pod counts (a smoke run).
    pub quick: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct Sched {
    pub shape: Shape,
    pub nodes: usize,
    pub init_pods: usize,
    pub measured_pods: usize,
    pub nodes_ready: Duration,
    pub per_sec: f64,
    pub create_per_sec: f64,
    pub latency: Summary,
    pub rss: Memory,
    /// The server's CPU time (user + system) per measured pod, from the first create to the
    /// last bind: what throughput on more cores would be bounded by.
    pub cpu_per_pod: Duration,
    /// Requests the server handled during the measured phase (all clients, in-process ones too).
    pub requests: Vec<(String, u64)>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    object: Obj,
}
#[derive(Deserialize)]
struct Obj {
    metadata: Meta,
    #[serde(default)]
    spec: Option<Spec>,
}
#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
}
#[derive(Deserialize)]
struct Spec {
    #[serde(rename = "nodeName", default)]
    node_name: Option<String>,
}

/// Sends one request per item over `creators` connections, as fast as they go; returns when
/// each was sent.
pub(crate) async fn send_all(
    server: &Server,
    items: Vec<(String, Method, String, Bytes)>,
    creators: usize,
) -> Result<HashMap<String, Instant>> {
    send_paced(server, items, creators, None).await
}

/// Like [`send_all`], at most `per_sec` requests per second if given (request `i` is sent no
/// earlier than `i / per_sec` seconds after the start).
pub(crate) async fn send_paced(
    server: &Server,
    mut items: Vec<(String, Method, String, Bytes)>,
    creators: usize,
    per_sec: Option<f64>,
) -> Result<HashMap<String, Instant>> {
    items.reverse();
    let queue = Arc::new(Mutex::new((items, 0u64)));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..creators {
        let mut conn = server.endpoint.connect().await?;
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let (item, i) = {
                    let mut q = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                    let i = q.1;
                    q.1 += 1;
                    (q.0.pop(), i)
                };
                let Some((name, method, path, body)) = item else { break };
                if let Some(rate) = per_sec {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
                }
                let at = Instant::now();
                let ct = if method == Method::PATCH { "application/merge-patch+json" } else { "application/json" };
                conn.call_as_ok(method, &path, Some(body), ct).await?;
                out.push((name, at));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = HashMap::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(all)
}

/// Runs each workload on a fresh server.
pub(crate) async fn run(env: &Env, p: Params, shapes: &[Shape]) -> Result<Vec<Sched>> {
    let mut out = Vec::new();
    for &shape in shapes {
        crate::progress(&format!("(f) {} on {} simulated nodes", shape.name(), p.nodes));
        out.push(run_one(env, p, shape).await.with_context(|| shape.name())?);
    }
    Ok(out)
}

/// Every node Ready, and how long after the start.
pub(crate) struct Ready {
    pub after: Duration,
    pub names: Vec<String>,
}

/// Starts `skiff server` with `nodes` simulated nodes of upstream's `node-default.yaml` size
/// (4 CPU, 32 GiB, 110 pods), waits until all are Ready, runs `measure`, and stops the server
/// whatever the outcome.
pub(crate) async fn on_sim_server<T>(
    env: &Env,
    name: &str,
    nodes: usize,
    measure: impl AsyncFnOnce(&Server, Ready) -> Result<T>,
) -> Result<T> {
    let started = Instant::now();
    let count = nodes.to_string();
    let server = Server::start_with(
        env,
        Kind::Skiff,
        name,
        &["--simulate-nodes", &count, "--sim-node-cpu", "4", "--sim-node-memory", "32Gi", "--sim-node-pods", "110"],
    )
    .await?;
    let result = async {
        let mut conn = server.endpoint.connect().await?;
        let names = wait_nodes_ready(&mut conn, nodes, started).await?;
        measure(&server, Ready { after: started.elapsed(), names }).await
    }
    .await;
    let stopped = server.stop().await;
    let r = result?;
    stopped?;
    Ok(r)
}

async fn run_one(env: &Env, p: Params, shape: Shape) -> Result<Sched> {
    on_sim_server(env, "skiff-sched", p.nodes, async |server, ready| measure(server, p, shape, ready).await).await
}

async fn wait_nodes_ready(conn: &mut crate::client::Conn, nodes: usize, started: Instant) -> Result<Vec<String>> {
    loop {
        let body = conn.call_ok(Method::GET, "/api/v1/nodes", None).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let ready: Vec<String> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
            .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        if ready.len() == nodes {
            return Ok(ready);
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("only {} of {nodes} simulated nodes became Ready", ready.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn measure(server: &Server, p: Params, shape: Shape, ready: Ready) -> Result<Sched> {
    let mut conn = server.endpoint.connect().await?;
    let (mut names, nodes_ready) = (ready.names, ready.after);
    // Upstream's labelNodePrepareStrategy: label the nodes once they exist.
    names.sort_by_key(|n| n.trim_start_matches(|c: char| !c.is_ascii_digit()).parse::<usize>().unwrap_or(0));
    let labels: Vec<_> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let zone = shape.zone(i)?;
            let body = json!({"metadata": {"labels": {ZONE: zone}}}).to_string();
            Some((n.clone(), Method::PATCH, format!("/api/v1/nodes/{n}"), Bytes::from(body)))
        })
        .collect();
    send_all(server, labels, p.creators).await.context("labelling the nodes")?;
    let (init_ns, measured_ns) = shape.namespaces();
    for ns in [init_ns, measured_ns] {
        let r = conn
            .call(Method::POST, "/api/v1/namespaces", Some(crate::peer::namespace(ns).body.unwrap_or_default()))
            .await?;
        if !(r.0.is_success() || r.0 == http::StatusCode::CONFLICT) {
            bail!("creating namespace {ns}: {}", r.0);
        }
    }

    let bound = Bound::track(server).await?;
    let pods = |prefix: &str, ns: &str, n: usize, measured: bool| -> Vec<(String, Method, String, Bytes)> {
        (0..n)
            .map(|i| {
                let name = format!("{prefix}-{i}");
                let body = shape.pod(&name, ns, measured);
                (name, Method::POST, format!("/api/v1/namespaces/{ns}/pods"), body)
            })
            .collect()
    };

    let (init_pods, measured_pods) = shape.counts(p.quick);
    crate::progress(&format!("(f) {init_pods} initial pods"));
    send_all(server, pods("init", init_ns, init_pods, false), p.creators).await?;
    bound.wait(init_pods, Duration::from_secs(600)).await?;

    crate::progress(&format!("(f) {measured_pods} measured pods"));
    let before = Counts::read(server).await?;
    let cpu_before = server.cpu_time()?;
    let t0 = Instant::now();
    let created = send_all(server, pods("m", measured_ns, measured_pods, true), p.creators).await?;
    let create_time = t0.elapsed();
    bound.wait(init_pods + measured_pods, Duration::from_secs(600)).await?;
    let cpu = server.cpu_time()?.saturating_sub(cpu_before);
    let requests = Counts::read(server).await?.since(&before);
    let bound = bound.finish()?;
    let mut last = t0;
    let mut lat = Vec::with_capacity(created.len());
    for (name, c) in &created {
        let b = *bound.get(name).context("a measured pod was never bound")?;
        last = last.max(b);
        lat.push(b.saturating_duration_since(*c));
    }
    let elapsed = last.duration_since(t0);
    // Where the time went: binding while the client still creates, and after.
    let during = created
        .iter()
        .filter(|(n, _)| bound.get(n.as_str()).is_some_and(|b| b.duration_since(t0) <= create_time))
        .count();
    let after = last.saturating_duration_since(t0 + create_time).as_secs_f64();
    crate::progress(&format!(
        "(f) {}: bound {:.0}/s while the client created ({:.1} s), {:.0}/s after ({after:.1} s); server CPU {:.2} ms per pod",
        shape.name(),
        during as f64 / create_time.as_secs_f64(),
        create_time.as_secs_f64(),
        (created.len() - during) as f64 / after.max(1e-3),
        cpu.as_secs_f64() * 1e3 / measured_pods.max(1) as f64,
    ));
    Ok(Sched {
        shape,
        nodes: p.nodes,
        init_pods,
        measured_pods,
        nodes_ready,
        per_sec: measured_pods as f64 / elapsed.as_secs_f64(),
        create_per_sec: measured_pods as f64 / create_time.as_secs_f64(),
        latency: Summary::of(&lat),
        rss: server.memory()?,
        cpu_per_pod: cpu / measured_pods.max(1) as u32,
        requests,
    })
}

/// When each pod was first seen bound, from one watch over all namespaces. A watch that
/// falls too far behind gets a 410 `ERROR` (as any client would): it relists, counting pods
/// bound in the list as seen then, and watches again.
pub(crate) struct Bound {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    watcher: tokio::task::JoinHandle<Result<()>>,
}

#[derive(Deserialize)]
struct PodList {
    metadata: ListMeta,
    items: Vec<Obj>,
}
#[derive(Deserialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion", default)]
    resource_version: String,
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn mark(seen: &Seen, obj: Obj, at: Instant) -> Result<()> {
    if obj.spec.and_then(|s| s.node_name).is_some_and(|n| !n.is_empty()) {
        seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.entry(obj.metadata.name).or_insert(at);
    }
    Ok(())
}

/// Lists every pod (in pages), marking the bound ones; returns the list's revision.
async fn relist(endpoint: &crate::client::Endpoint, seen: &Seen) -> Result<String> {
    let mut conn = endpoint.connect().await?;
    let mut cont = String::new();
    loop {
        let path = if cont.is_empty() {
            "/api/v1/pods?limit=500".to_string()
        } else {
            format!("/api/v1/pods?limit=500&continue={cont}")
        };
        let list: PodList = serde_json::from_slice(&conn.call_ok(Method::GET, &path, None).await?)?;
        let at = Instant::now();
        for item in list.items {
            mark(seen, item, at)?;
        }
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => cont = c,
            None => return Ok(list.metadata.resource_version),
        }
    }
}

impl Bound {
    pub(crate) async fn track(server: &Server) -> Result<Bound> {
        let seen: Seen = Arc::default();
        let b = seen.clone();
        let endpoint = server.endpoint.clone();
        let mut rv = relist(&endpoint, &seen).await?;
        let watcher = tokio::spawn(async move {
            loop {
                let mut wconn = endpoint.connect().await?;
                let resp = wconn.send(Method::GET, &format!("/api/v1/pods?watch=1&resourceVersion={rv}"), None).await?;
                let mut body = resp.into_body();
                let mut stream = JsonStream::default();
                'watch: while let Some(frame) = body.frame().await {
                    let at = Instant::now();
                    let Ok(data) = frame?.into_data() else { continue };
                    for e in stream.push::<Event>(&data)? {
                        if e.kind == "ERROR" {
                            crate::progress("(pod watch) 410: relisting");
                            break 'watch;
                        }
                        mark(&b, e.object, at)?;
                    }
                }
                rv = relist(&endpoint, &b).await?;
            }
        });
        Ok(Bound { seen, watcher })
    }

    pub(crate) fn count(&self) -> Result<usize> {
        Ok(self.seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len())
    }

    /// Waits until `want` pods were seen bound.
    pub(crate) async fn wait(&self, want: usize, limit: Duration) -> Result<()> {
        let t = Instant::now();
        loop {
            let n = self.count()?;
            if n >= want {
                return Ok(());
            }
            if self.watcher.is_finished() {
                bail!("the pod watch ended with {n} of {want} pods bound");
            }
            if t.elapsed() > limit {
                bail!("only {n} of {want} pods were scheduled within {} s", limit.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn finish(self) -> Result<HashMap<String, Instant>> {
        self.watcher.abort();
        Ok(self.seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone())
    }
}
