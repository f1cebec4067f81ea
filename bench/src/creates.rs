//! (a) Durable creates per second: 64 concurrent clients in a closed loop creating ~1 KB
//! ConfigMaps through skiff's API, against raw puts of the same bytes into etcd driven the same
//! way. Both acknowledge only after an fsync (SQLite `synchronous=FULL` / etcd's WAL).

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::load::{Until, closed_loop};
use crate::peer;
use crate::servers::Server;
use crate::stats::Summary;

/// Parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub clients: usize,
    /// Run before the measured window, to fill connection and page caches.
    pub warmup: Duration,
    pub measure: Duration,
}

/// Result for one peer.
#[derive(Clone, Debug)]
pub(crate) struct Creates {
    /// Writes completed inside the measured window, per second.
    pub per_sec: f64,
    /// Closed-loop latency of those writes.
    pub latency: Summary,
    /// Server CPU time per write over the whole run (warm-up included).
    pub cpu_us_per_op: f64,
    /// Writes done in total (the objects this left in the store).
    pub total: usize,
}

pub(crate) const NAMESPACE: &str = "bench";

pub(crate) async fn run(server: &Server, p: Params) -> Result<Creates> {
    let kind = server.kind;
    let cpu0 = server.cpu_time()?;
    let t0 = Instant::now();
    let (from, to) = (t0 + p.warmup, t0 + p.warmup + p.measure);
    let out = closed_loop(&server.endpoint, p.clients, Until::Deadline(to), move |i| {
        let name = format!("cm-{i}");
        peer::create(kind, "configmaps", NAMESPACE, &name, &peer::configmap(NAMESPACE, &name, 0))
    })
    .await?;
    let cpu = server.cpu_time()? - cpu0;
    out.check("creates")?;
    let window: Vec<Duration> =
        out.samples.iter().filter(|s| s.end >= from && s.end <= to).map(|s| s.latency()).collect();
    Ok(Creates {
        per_sec: window.len() as f64 / p.measure.as_secs_f64(),
        latency: Summary::of(&window),
        cpu_us_per_op: cpu.as_secs_f64() * 1e6 / out.samples.len().max(1) as f64,
        total: out.samples.len(),
    })
}
