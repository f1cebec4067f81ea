//! (g) A 1,000-replica Deployment on simulated nodes (issue 6): from `POST deployments` until
//! the Deployment reports every replica available (the simulated kubelets mark each pod
//! Running and Ready), with the API requests the whole cluster made meanwhile: the
//! Deployment and ReplicaSet controllers' creates and status updates, the scheduler's
//! bindings and events, the simulated kubelets' status patches.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::Method;
use serde_json::json;

use crate::requests::Counts;
use crate::servers::{Env, Memory};

const NAMESPACE: &str = "bench-deploy";

#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub nodes: usize,
    pub replicas: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct Deploy {
    pub params: Params,
    /// Until `status.replicas` reached the count: every pod created.
    pub created: Duration,
    /// Until `status.availableReplicas` reached it: every pod Running and Ready.
    pub available: Duration,
    pub requests: Vec<(String, u64)>,
    /// GETs of the Deployment by this benchmark's own polling (included in `requests`).
    pub polls: u64,
    pub rss: Memory,
}

pub(crate) async fn run(env: &Env, p: Params) -> Result<Deploy> {
    crate::progress(&format!("(g) a {}-replica Deployment on {} simulated nodes", p.replicas, p.nodes));
    crate::sched::on_sim_server(env, "skiff-deploy", p.nodes, async |server, _| measure(server, p).await).await
}

async fn measure(server: &crate::servers::Server, p: Params) -> Result<Deploy> {
    let started = Instant::now();
    let mut conn = server.endpoint.connect().await?;
    conn.call_ok(Method::POST, "/api/v1/namespaces", crate::peer::namespace(NAMESPACE).body).await?;
    // The namespace's default ServiceAccount must exist before pods can be created.
    let sa = format!("/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default");
    while !conn.call(Method::GET, &sa, None).await?.0.is_success() {
        if started.elapsed() > Duration::from_secs(300) {
            bail!("no default ServiceAccount in {NAMESPACE}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "big", "namespace": NAMESPACE},
        "spec": {
            "replicas": p.replicas,
            "selector": {"matchLabels": {"app": "big"}},
            "template": {
                "metadata": {"labels": {"app": "big"}},
                "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}]}
            }
        }
    });
    let before = Counts::read(server).await?;
    let t0 = Instant::now();
    conn.call_ok(
        Method::POST,
        &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments"),
        Some(Bytes::from(deployment.to_string())),
    )
    .await
    .context("creating the Deployment")?;
    let path = format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/big");
    let (mut created, mut polls) = (None, 0u64);
    let available = loop {
        let body = conn.call_ok(Method::GET, &path, None).await?;
        polls += 1;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let status = |f: &str| v["status"][f].as_u64().unwrap_or(0) as usize;
        if created.is_none() && status("replicas") >= p.replicas {
            created = Some(t0.elapsed());
        }
        if status("availableReplicas") >= p.replicas {
            break t0.elapsed();
        }
        if t0.elapsed() > Duration::from_secs(600) {
            bail!("{} of {} replicas available after 600 s", status("availableReplicas"), p.replicas);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let requests = Counts::read(server).await?.since(&before);
    Ok(Deploy { params: p, created: created.unwrap_or(available), available, requests, polls, rss: server.memory()? })
}
