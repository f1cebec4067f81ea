//! (f) Scheduling throughput (issue 6) in the shape of upstream's `scheduler_perf`
//! SchedulingBasic: `skiff server --simulate-nodes 5000` (4 CPU, 32 GiB, 110 pods each, as
//! upstream's `node-default.yaml`), 1,000 pods created and scheduled first, then 10,000
//! measured pods (`pod-default.yaml`: 100m CPU, 500 MiB requested). The whole cluster runs in
//! the one process: API server, store, controllers, scheduler and the simulated nodes that
//! report every bound pod Running. Throughput is measured pods divided by the time from the
//! first measured create to the last binding seen on a watch; latency is create → bound per
//! pod. Upstream's CI thresholds (pods/s, on their 8+ core runners, scheduler alone against
//! an API server without kubelets) are printed beside it.

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
use crate::servers::{Env, Kind, Memory, Server};
use crate::stats::Summary;

const NAMESPACE: &str = "bench-sched";

#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub nodes: usize,
    pub init_pods: usize,
    pub measured_pods: usize,
    /// Concurrent creating connections.
    pub creators: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Sched {
    pub params: Params,
    pub nodes_ready: Duration,
    pub per_sec: f64,
    pub create_per_sec: f64,
    pub latency: Summary,
    pub rss: Memory,
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

fn pod(name: &str) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]}
        }))
        .unwrap_or_default(),
    )
}

/// Create `names` over `creators` connections; returns each pod's create time.
async fn create_all(server: &Server, names: Vec<String>, creators: usize) -> Result<HashMap<String, Instant>> {
    let queue = Arc::new(Mutex::new(names));
    let mut tasks = Vec::new();
    for _ in 0..creators {
        let mut conn = server.endpoint.connect().await?;
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let Some(name) = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop() else { break };
                let at = Instant::now();
                conn.call_ok(Method::POST, &format!("/api/v1/namespaces/{NAMESPACE}/pods"), Some(pod(&name))).await?;
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

pub(crate) async fn run(env: &Env, p: Params) -> Result<Sched> {
    let nodes = p.nodes.to_string();
    let started = Instant::now();
    let server = Server::start_with(
        env,
        Kind::Skiff,
        "skiff-sched",
        &["--simulate-nodes", &nodes, "--sim-node-cpu", "4", "--sim-node-memory", "32Gi", "--sim-node-pods", "110"],
    )
    .await?;
    let result = measure(&server, p, started).await;
    let stopped = server.stop().await;
    let r = result?;
    stopped?;
    Ok(r)
}

async fn measure(server: &Server, p: Params, started: Instant) -> Result<Sched> {
    let mut conn = server.endpoint.connect().await?;
    // Wait for every node to register Ready.
    loop {
        let body = conn.call_ok(Method::GET, "/api/v1/nodes", None).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let ready = v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|n| {
                        n["status"]["conditions"]
                            .as_array()
                            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
                    })
                    .count()
            })
            .unwrap_or(0);
        if ready == p.nodes {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("only {ready} of {} simulated nodes became Ready", p.nodes);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let nodes_ready = started.elapsed();
    conn.call_ok(Method::POST, "/api/v1/namespaces", Some(crate::peer::namespace(NAMESPACE).body.unwrap_or_default()))
        .await
        .context("creating the namespace")?;

    // One watch records when each pod is first seen bound.
    let list = conn.call_ok(Method::GET, &format!("/api/v1/namespaces/{NAMESPACE}/pods"), None).await?;
    let rv: String = serde_json::from_slice::<serde_json::Value>(&list)?["metadata"]["resourceVersion"]
        .as_str()
        .context("no resourceVersion")?
        .to_string();
    let mut wconn = server.endpoint.connect().await?;
    let resp = wconn
        .send(Method::GET, &format!("/api/v1/namespaces/{NAMESPACE}/pods?watch=1&resourceVersion={rv}"), None)
        .await?;
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let b = bound.clone();
    let watcher = tokio::spawn(async move {
        let _conn = wconn;
        let mut body = resp.into_body();
        let mut stream = JsonStream::default();
        while let Some(frame) = body.frame().await {
            let at = Instant::now();
            let Ok(data) = frame?.into_data() else { continue };
            for e in stream.push::<Event>(&data)? {
                if e.kind == "ERROR" {
                    bail!("watch error");
                }
                if e.object.spec.and_then(|s| s.node_name).is_some_and(|n| !n.is_empty()) {
                    b.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.entry(e.object.metadata.name).or_insert(at);
                }
            }
        }
        anyhow::Ok(())
    });
    let wait_bound = |want: usize| {
        let bound = bound.clone();
        async move {
            let t = Instant::now();
            loop {
                let n = bound.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.len();
                if n >= want {
                    return anyhow::Ok(());
                }
                if t.elapsed() > Duration::from_secs(600) {
                    bail!("only {n} of {want} pods were scheduled");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    crate::progress(&format!("(f) {} initial pods", p.init_pods));
    let init: Vec<String> = (0..p.init_pods).map(|i| format!("init-{i}")).collect();
    create_all(server, init, p.creators).await?;
    wait_bound(p.init_pods).await?;

    crate::progress(&format!("(f) {} measured pods", p.measured_pods));
    let measured: Vec<String> = (0..p.measured_pods).map(|i| format!("m-{i}")).collect();
    let t0 = Instant::now();
    let created = create_all(server, measured, p.creators).await?;
    let create_time = t0.elapsed();
    wait_bound(p.init_pods + p.measured_pods).await?;
    watcher.abort();
    let bound = bound.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let mut last = t0;
    let mut lat = Vec::with_capacity(created.len());
    for (name, c) in &created {
        let b = *bound.get(name).context("a measured pod was never bound")?;
        last = last.max(b);
        lat.push(b.saturating_duration_since(*c));
    }
    let elapsed = last.duration_since(t0);
    Ok(Sched {
        params: p,
        nodes_ready,
        per_sec: p.measured_pods as f64 / elapsed.as_secs_f64(),
        create_per_sec: p.measured_pods as f64 / create_time.as_secs_f64(),
        latency: Summary::of(&lat),
        rss: server.memory()?,
    })
}
