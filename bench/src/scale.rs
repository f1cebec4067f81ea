//! (h) Scale (issue 6): `skiff server` with 5,000 simulated nodes filled with 150,000 pods
//! (30 per node), created by the benchmark at a steady 250 pods/s over 64 connections across
//! 15 namespaces. A probe
//! client meanwhile makes the calls upstream's API-call-latency SLO covers (single-object
//! reads and writes: p99 ≤ 1 s; namespace-scoped lists: p99 ≤ 5 s), one of each every
//! 200 ms, while the cluster fills and again for 30 s once it is full. The server's RSS is
//! read at the end.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::servers::{Env, Memory, Server};
use crate::stats::Summary;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub nodes: usize,
    pub pods: usize,
    pub namespaces: usize,
    pub creators: usize,
    /// Creates per second: below what the cluster schedules, as upstream's load tests pace
    /// theirs, so what is measured is a large cluster at work rather than an overload.
    pub per_sec: f64,
}

/// The probe's calls.
pub(crate) const CALLS: [&str; 4] = ["GET node", "GET pod", "PATCH configmap", "LIST pods in a namespace (limit 500)"];

#[derive(Clone, Debug)]
pub(crate) struct Scale {
    pub params: Params,
    /// First create → last pod bound.
    pub fill: Duration,
    /// Per call in [`CALLS`]: while filling, and once full.
    pub filling: Vec<Summary>,
    pub full: Vec<Summary>,
    pub rss: Memory,
}

pub(crate) async fn run(env: &Env, p: Params) -> Result<Scale> {
    crate::progress(&format!("(h) {} pods on {} simulated nodes", p.pods, p.nodes));
    crate::sched::on_sim_server(env, "skiff-scale", p.nodes, async |server, ready| measure(server, p, ready).await)
        .await
}

/// One of each call every 200 ms until cancelled; a failed call is an error.
async fn probe(server: &Server, node: String, stop: CancellationToken) -> Result<Vec<Vec<Duration>>> {
    let mut conn = server.endpoint.connect().await?;
    let mut samples = vec![Vec::new(); CALLS.len()];
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut n = 0u64;
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        n += 1;
        let patch = Bytes::from(json!({"data": {"n": n.to_string()}}).to_string());
        let calls: [(Method, String, Option<Bytes>, &str); 4] = [
            (Method::GET, format!("/api/v1/nodes/{node}"), None, "application/json"),
            (Method::GET, "/api/v1/namespaces/scale-0/pods/p-0".into(), None, "application/json"),
            (
                Method::PATCH,
                "/api/v1/namespaces/scale-0/configmaps/probe".into(),
                Some(patch),
                "application/merge-patch+json",
            ),
            (Method::GET, "/api/v1/namespaces/scale-0/pods?limit=500".into(), None, "application/json"),
        ];
        for (i, (method, path, body, ct)) in calls.into_iter().enumerate() {
            let t = Instant::now();
            let resp = conn.send_as(method.clone(), &path, body, ct).await?;
            let status = resp.status();
            resp.into_body().collect().await?;
            // The pod may not exist yet when the probe starts; a 404 is a served read too.
            if !(status.is_success() || status == http::StatusCode::NOT_FOUND && method == Method::GET && i == 1) {
                bail!("{method} {path}: {status}");
            }
            samples[i].push(t.elapsed());
        }
    }
    Ok(samples)
}

async fn measure(server: &Server, p: Params, ready: crate::sched::Ready) -> Result<Scale> {
    let mut conn = server.endpoint.connect().await?;
    let nodes = ready.names;
    for i in 0..p.namespaces {
        conn.call_ok(Method::POST, "/api/v1/namespaces", crate::peer::namespace(&format!("scale-{i}")).body).await?;
    }
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe"}, "data": {"n": "0"}});
    conn.call_ok(Method::POST, "/api/v1/namespaces/scale-0/configmaps", Some(Bytes::from(cm.to_string()))).await?;
    let bound = crate::sched::Bound::track(server).await?;
    let pods: Vec<_> = (0..p.pods)
        .map(|i| {
            let (name, ns) = (format!("p-{i}"), format!("scale-{}", i % p.namespaces));
            let body = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": format!("a{}", i % 100)}},
                "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "50Mi"}}}]}
            });
            (name, Method::POST, format!("/api/v1/namespaces/{ns}/pods"), Bytes::from(body.to_string()))
        })
        .collect();

    let node = nodes.first().cloned().unwrap_or_default();
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let fill = async {
        crate::sched::send_paced(server, pods, p.creators, Some(p.per_sec)).await?;
        bound.wait(p.pods, Duration::from_secs(1800)).await?;
        anyhow::Ok(t0.elapsed())
    };
    // The probe runs until the fill ends (or fails).
    let (filling_samples, fill) = tokio::join!(probe(server, node.clone(), stop.clone()), async {
        let r = fill.await;
        stop.cancel();
        r
    });
    let (filling_samples, fill) = (filling_samples?, fill?);
    bound.finish()?;
    crate::progress("(h) full: probing for 30 s");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stop = CancellationToken::new();
    let probe = probe(server, node, stop.clone());
    let full_samples = tokio::join!(probe, async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        stop.cancel();
    })
    .0?;
    if full_samples.iter().any(Vec::is_empty) {
        bail!("the probe made no calls once full");
    }
    Ok(Scale {
        params: p,
        fill,
        filling: filling_samples.iter().map(|s| Summary::of(s)).collect(),
        full: full_samples.iter().map(|s| Summary::of(s)).collect(),
        rss: server.memory()?,
    })
}
