//! (b) LIST of 10,000 pods: pre-create 10,000 small Pods in one namespace, then
//! `GET /api/v1/namespaces/x/pods` (JSON, no limit) repeatedly on one connection, timed from
//! send to the last body byte. On etcd: one range over 10,000 keys holding the same pod JSON
//! skiff stored (so the values are the same size).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bytes::Bytes;

use crate::load::{Until, closed_loop};
use crate::peer;
use crate::servers::{Kind, Server};
use crate::stats::Summary;

/// Parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub pods: usize,
    pub repeats: usize,
    /// Clients used to pre-create the pods.
    pub loaders: usize,
}

/// Result for one peer.
#[derive(Clone, Debug)]
pub(crate) struct List {
    pub latency: Summary,
    /// Size of one list response.
    pub bytes: usize,
    /// Rate of the closed-loop pre-creation.
    pub load_per_sec: f64,
    /// Server CPU time per list (warm-up included).
    pub cpu_per_list: Duration,
    /// One stored pod as skiff returns it (skiff only): the value etcd's run stores.
    pub sample: Option<Bytes>,
}

pub(crate) const NAMESPACE: &str = "x";

/// Unmeasured lists first, so both peers are measured warm.
const WARMUP: usize = 2;

/// `value`: for etcd, the pod JSON to store under every key (from skiff's run).
pub(crate) async fn run(server: &Server, p: Params, value: Option<Bytes>) -> Result<List> {
    let kind = server.kind;
    let fixed = value.clone();
    let t0 = Instant::now();
    let out = closed_loop(&server.endpoint, p.loaders, Until::Count(p.pods), move |i| {
        let name = format!("pod-{i}");
        let object = fixed.clone().unwrap_or_else(|| peer::pod(NAMESPACE, &name));
        peer::create(kind, "pods", NAMESPACE, &name, &object)
    })
    .await?;
    out.check("pre-creating pods")?;
    let load_per_sec = p.pods as f64 / t0.elapsed().as_secs_f64();

    let mut conn = server.endpoint.connect().await?;
    let sample = match kind {
        Kind::Skiff => {
            let r = peer::get(kind, "pods", NAMESPACE, "pod-0");
            Some(conn.call_ok(r.method, &r.path, r.body).await?)
        }
        Kind::Etcd => None,
    };
    let req = peer::list(kind, "pods", NAMESPACE);
    let mut times = Vec::with_capacity(p.repeats);
    let mut bytes = 0;
    let cpu0 = server.cpu_time()?;
    for i in 0..WARMUP + p.repeats {
        let start = Instant::now();
        let body = conn.call_ok(req.method.clone(), &req.path, req.body.clone()).await?;
        let took = start.elapsed();
        if i == 0 {
            let n = peer::count_of(kind, &body)?;
            if n != p.pods {
                bail!("{} listed {n} pods, want {}", kind.name(), p.pods);
            }
            bytes = body.len();
        }
        if i >= WARMUP {
            times.push(took);
        }
    }
    let cpu_per_list = (server.cpu_time()? - cpu0) / u32::try_from(WARMUP + p.repeats)?;
    Ok(List { latency: Summary::of(&times), bytes, load_per_sec, cpu_per_list, sample })
}
