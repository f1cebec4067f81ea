//! (b) Latency under a steady mixed load: 5,000 ConfigMaps pre-created, then GET, CREATE and
//! UPDATE (a third each, random objects) sent open-loop at a fixed 200 requests/s, each
//! measured from its scheduled send time. On etcd: range, put of a new key, put of an existing
//! key, over the same 5,000 keys and values.

use std::time::{Duration, Instant};

use anyhow::Result;
use rand::{Rng, SeedableRng};

use crate::load::{Until, closed_loop, open_loop};
use crate::peer::{self, Req};
use crate::servers::Server;
use crate::stats::Summary;

/// Parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub objects: usize,
    pub rate: f64,
    pub duration: Duration,
    /// Connections the open-loop requests are spread over; enough that a slow answer does
    /// not idle the schedule (it still counts against the requests queued behind it).
    pub workers: usize,
    /// Clients used to pre-create the objects.
    pub loaders: usize,
}

/// The operation kinds, in [`Mixed::ops`] order.
pub(crate) const OPS: [&str; 3] = ["GET", "CREATE", "UPDATE"];

/// Result for one peer.
#[derive(Clone, Debug)]
pub(crate) struct Mixed {
    /// Per operation kind (see [`OPS`]).
    pub ops: [Summary; 3],
    /// Requests answered per second over the run (should equal the target rate).
    pub achieved_rate: f64,
    /// Rate of the closed-loop pre-creation.
    pub load_per_sec: f64,
    /// Server CPU time during the timed load.
    pub cpu: Duration,
}

pub(crate) const NAMESPACE: &str = "mixed";

pub(crate) async fn run(server: &Server, p: Params) -> Result<Mixed> {
    let kind = server.kind;
    let t0 = Instant::now();
    let out = closed_loop(&server.endpoint, p.loaders, Until::Count(p.objects), move |i| {
        let name = format!("cm-{i}");
        peer::create(kind, "configmaps", NAMESPACE, &name, &peer::configmap(NAMESPACE, &name, 0))
    })
    .await?;
    out.check("pre-creating configmaps")?;
    let load_per_sec = p.objects as f64 / t0.elapsed().as_secs_f64();

    // The same seed on both peers: the same sequence of operations and objects.
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let n = (p.rate * p.duration.as_secs_f64()) as usize;
    let reqs: Vec<(usize, Req)> = (0..n)
        .map(|i| {
            let op = rng.random_range(0..OPS.len());
            let target = format!("cm-{}", rng.random_range(0..p.objects));
            let req = match op {
                0 => peer::get(kind, "configmaps", NAMESPACE, &target),
                1 => {
                    let name = format!("new-{i}");
                    peer::create(kind, "configmaps", NAMESPACE, &name, &peer::configmap(NAMESPACE, &name, 0))
                }
                _ => peer::update(
                    kind,
                    "configmaps",
                    NAMESPACE,
                    &target,
                    &peer::configmap(NAMESPACE, &target, i as u64 + 1),
                ),
            };
            (op, req)
        })
        .collect();
    let cpu0 = server.cpu_time()?;
    let t0 = Instant::now();
    let out = open_loop(&server.endpoint, p.workers, p.rate, reqs).await?;
    let elapsed = t0.elapsed();
    let cpu = server.cpu_time()? - cpu0;
    out.check("mixed load")?;
    let ops = std::array::from_fn(|op| {
        Summary::of(&out.samples.iter().filter(|s| s.op == op).map(|s| s.latency()).collect::<Vec<_>>())
    });
    Ok(Mixed { ops, achieved_rate: out.samples.len() as f64 / elapsed.as_secs_f64(), load_per_sec, cpu })
}
