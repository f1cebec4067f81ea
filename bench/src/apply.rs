//! (e) Server-side apply against a plain update of the same objects (issue 3): a Deployment
//! with 200 containers, and 1,000 small ConfigMaps. Each round changes one field; the update
//! path sends the whole object (PUT) as a controller would, the apply path sends the applied
//! configuration (`application/apply-patch+yaml`, JSON being YAML). Reported: operations per
//! second, p50/p99 latency and server CPU per operation; the goal is apply ≤ 2× update.

use std::time::Instant;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use crate::servers::Server;
use crate::stats::Summary;

pub(crate) const NAMESPACE: &str = "bench-apply";
const APPLY: &str = "application/apply-patch+yaml";

/// Parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    /// Containers in the big Deployment.
    pub containers: usize,
    /// Rounds on the big Deployment (each path).
    pub big_rounds: usize,
    /// Small objects.
    pub objects: usize,
}

/// One path (update or apply) on one workload.
#[derive(Clone, Debug)]
pub(crate) struct Path {
    pub per_sec: f64,
    pub latency: Summary,
    pub cpu_us_per_op: f64,
}

/// Both paths on both workloads.
#[derive(Clone, Debug)]
pub(crate) struct Apply {
    pub big_update: Path,
    pub big_apply: Path,
    pub small_update: Path,
    pub small_apply: Path,
}

fn deployment(containers: usize, image_tag: usize) -> Value {
    let cs: Vec<Value> = (0..containers)
        .map(|i| {
            json!({"name": format!("c{i}"), "image": format!("busybox:1.{image_tag}"),
                   "ports": [{"containerPort": 8000 + i}], "env": [{"name": "INDEX", "value": i.to_string()}]})
        })
        .collect();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "big", "namespace": NAMESPACE},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "big"}},
                 "template": {"metadata": {"labels": {"app": "big"}}, "spec": {"containers": cs}}},
    })
}

fn small(name: &str, version: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NAMESPACE},
           "data": {"version": version.to_string()}})
}

async fn timed(server: &Server, n: usize, mut op: impl AsyncFnMut(usize) -> Result<()>) -> Result<Path> {
    let cpu0 = server.cpu_time()?;
    let t0 = Instant::now();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let s = Instant::now();
        op(i).await?;
        samples.push(s.elapsed());
    }
    let wall = t0.elapsed();
    let cpu = server.cpu_time()? - cpu0;
    Ok(Path {
        per_sec: n as f64 / wall.as_secs_f64(),
        latency: Summary::of(&samples),
        cpu_us_per_op: cpu.as_secs_f64() * 1e6 / n.max(1) as f64,
    })
}

pub(crate) async fn run(server: &Server, p: Params) -> Result<Apply> {
    let mut conn = server.endpoint.connect().await?;
    let deploys = format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments");
    let big = format!("{deploys}/big");
    conn.call_ok(Method::POST, &deploys, Some(Bytes::from(deployment(p.containers, 0).to_string())))
        .await
        .context("creating the big deployment")?;
    // The update path: the full object with its resourceVersion, as a controller PUTs it.
    let mut current: Value = serde_json::from_slice(&conn.call_ok(Method::GET, &big, None).await?)?;
    let big_update = timed(server, p.big_rounds, async |i| {
        let mut obj = current.clone();
        for c in obj["spec"]["template"]["spec"]["containers"].as_array_mut().into_iter().flatten() {
            c["image"] = json!(format!("busybox:1.{}", i + 1));
        }
        let out = conn.call_ok(Method::PUT, &big, Some(Bytes::from(obj.to_string()))).await?;
        current = serde_json::from_slice(&out)?;
        Ok(())
    })
    .await?;
    let apply_path = format!("{big}?fieldManager=bench&force=true");
    let big_apply = timed(server, p.big_rounds, async |i| {
        let body = Bytes::from(deployment(p.containers, 1000 + i).to_string());
        conn.call_as_ok(Method::PATCH, &apply_path, Some(body), APPLY).await?;
        Ok(())
    })
    .await?;

    let cms = format!("/api/v1/namespaces/{NAMESPACE}/configmaps");
    let mut versions: Vec<String> = Vec::with_capacity(p.objects);
    for i in 0..p.objects {
        let body = Bytes::from(small(&format!("s{i}"), 0).to_string());
        let v: Value = serde_json::from_slice(&conn.call_ok(Method::POST, &cms, Some(body)).await?)?;
        versions.push(v["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string());
    }
    let small_update = timed(server, p.objects, async |i| {
        let name = format!("s{i}");
        let mut obj = small(&name, 1);
        obj["metadata"]["resourceVersion"] = json!(versions[i]);
        conn.call_ok(Method::PUT, &format!("{cms}/{name}"), Some(Bytes::from(obj.to_string()))).await?;
        Ok(())
    })
    .await?;
    let small_apply = timed(server, p.objects, async |i| {
        let name = format!("s{i}");
        let path = format!("{cms}/{name}?fieldManager=bench&force=true");
        conn.call_as_ok(Method::PATCH, &path, Some(Bytes::from(small(&name, 2).to_string())), APPLY).await?;
        Ok(())
    })
    .await?;
    Ok(Apply { big_update, big_apply, small_update, small_apply })
}
