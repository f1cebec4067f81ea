//! `skiff-bench`: the control-plane benchmarks of issue 2 (scope item 6). Each measurement
//! runs against `skiff server` and against a single-member etcd 3.4 in the same run, with the
//! same client stack and the same values, and is reported as a ratio next to its goal:
//! (a) durable creates/s, (b) mixed-load and LIST latency, (c) watch fan-out, (d) memory and
//! start-up time. `bench/run.sh` builds the release binaries and runs this; see
//! `docs/benchmarks.md` for what each number means.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use crate::servers::{Env, Kind, Memory, Server};

mod apply;
mod client;
mod creates;
mod deploy;
mod list;
mod load;
mod mixed;
mod peer;
mod report;
mod requests;
mod scale;
mod sched;
mod servers;
mod startup;
mod stats;
mod watch;

/// The measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Durable creates/s against etcd puts/s.
    A,
    /// Mixed GET/CREATE/UPDATE latency at a fixed rate, and LIST of 10,000 pods.
    B,
    /// 100 watchers × 1,000 writes.
    C,
    /// Idle memory and start-to-ready time.
    D,
    /// Server-side apply against plain updates (issue 3); skiff only.
    E,
    /// Scheduling throughput on 5,000 simulated nodes, four of upstream's scheduler_perf
    /// workloads (issue 6); skiff only, not in the default set (it takes a few minutes).
    F,
    /// A 1,000-replica Deployment on simulated nodes: time and API requests (issue 6).
    G,
    /// 150,000 pods on 5,000 simulated nodes: API latency and RSS (issue 6; about 15 minutes).
    H,
}

#[derive(Parser, Debug)]
#[command(about = "Control-plane benchmarks: skiff against a single-member etcd, in one run")]
struct Args {
    /// The `skiff` binary (a release build).
    #[arg(long)]
    skiff_bin: PathBuf,
    /// The etcd 3.4 binary.
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd_bin: PathBuf,
    /// An empty directory on a real disk (not tmpfs: fsync must cost what it costs) for data
    /// dirs, logs and pid files. Left empty on success.
    #[arg(long)]
    work_dir: PathBuf,
    /// Which measurements to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Part::A, Part::B, Part::C, Part::D, Part::E])]
    only: Vec<Part>,
    /// A smoke run: a few seconds, small counts. Its numbers mean nothing.
    #[arg(long)]
    quick: bool,
    /// Which scheduler_perf workloads (f) runs: basic, node-affinity, pod-anti-affinity,
    /// topology-spreading (bound pods stay Pending, as upstream's nodes run no kubelet), and
    /// basic-running (SchedulingBasic with every bound pod reported Running).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = sched::Shape::ALL)]
    shapes: Vec<sched::Shape>,
}

/// Every knob, with the values by default.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub creates: creates::Params,
    pub mixed: mixed::Params,
    pub list: list::Params,
    pub watch: watch::Params,
    pub apply: apply::Params,
    pub sched: sched::Params,
    pub deploy: deploy::Params,
    pub scale: scale::Params,
    pub starts: usize,
    /// Idle time before reading memory after the workloads.
    pub settle_after: Duration,
}

impl Params {
    fn new(quick: bool) -> Params {
        if quick {
            return Params {
                creates: creates::Params {
                    clients: 64,
                    warmup: Duration::from_millis(500),
                    measure: Duration::from_secs(2),
                },
                mixed: mixed::Params {
                    objects: 500,
                    rate: 200.0,
                    duration: Duration::from_secs(3),
                    workers: 32,
                    loaders: 64,
                },
                list: list::Params { pods: 1000, repeats: 5, loaders: 64 },
                watch: watch::Params { watchers: 10, writes: 100, writers: 10 },
                apply: apply::Params { containers: 20, big_rounds: 10, objects: 50 },
                sched: sched::Params { nodes: 50, creators: 16, quick: true },
                deploy: deploy::Params { nodes: 10, replicas: 100 },
                scale: scale::Params { nodes: 50, pods: 1500, namespaces: 3, creators: 16, per_sec: 500.0 },
                starts: 2,
                settle_after: Duration::from_secs(1),
            };
        }
        Params {
            creates: creates::Params { clients: 64, warmup: Duration::from_secs(3), measure: Duration::from_secs(15) },
            mixed: mixed::Params {
                objects: 5000,
                rate: 200.0,
                duration: Duration::from_secs(30),
                workers: 32,
                loaders: 64,
            },
            list: list::Params { pods: 10_000, repeats: 30, loaders: 64 },
            watch: watch::Params { watchers: 100, writes: 1000, writers: 10 },
            apply: apply::Params { containers: 200, big_rounds: 100, objects: 1000 },
            sched: sched::Params { nodes: 5000, creators: 64, quick: false },
            deploy: deploy::Params { nodes: 100, replicas: 1000 },
            scale: scale::Params { nodes: 5000, pods: 150_000, namespaces: 15, creators: 64, per_sec: 250.0 },
            starts: 10,
            settle_after: Duration::from_secs(5),
        }
    }
}

/// One value per peer.
#[derive(Clone, Debug)]
pub(crate) struct PerPeer<T> {
    pub skiff: T,
    pub etcd: T,
}

/// Everything measured; `None` for parts not run.
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub startup: Option<PerPeer<startup::Startup>>,
    /// Memory of the long-running instances two seconds after start.
    pub rss_start: Option<PerPeer<Memory>>,
    pub creates: Option<PerPeer<creates::Creates>>,
    pub mixed: Option<PerPeer<mixed::Mixed>>,
    pub list: Option<PerPeer<list::List>>,
    pub watch: Option<PerPeer<watch::Watch>>,
    /// Server-side apply against update (skiff only).
    pub apply: Option<apply::Apply>,
    /// Scheduling throughput (skiff only).
    pub sched: Vec<sched::Sched>,
    pub deploy: Option<deploy::Deploy>,
    pub scale: Option<scale::Scale>,
    /// Memory after the workloads and an idle pause.
    pub rss_after: Option<PerPeer<Memory>>,
    /// Bytes in each data dir at the end.
    pub data_bytes: Option<PerPeer<u64>>,
    pub parts: Vec<String>,
    /// The knobs the run used, for the labels.
    pub params: Option<Params>,
    pub wall: Duration,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let results = rt.block_on(run(&args))?;
    println!("{}", report::table(&results));
    if let Some(a) = &results.apply {
        println!("{}", report::apply_table(a));
    }
    if !results.sched.is_empty() {
        println!("{}", report::sched_table(&results.sched));
    }
    if let Some(d) = &results.deploy {
        println!("{}", report::deploy_table(d));
    }
    if let Some(s) = &results.scale {
        println!("{}", report::scale_table(s));
    }
    println!("{}", report::details(&results));
    Ok(())
}

fn progress(msg: &str) {
    eprintln!("[skiff-bench] {msg}");
}

async fn run(args: &Args) -> Result<Results> {
    let t0 = Instant::now();
    let p = Params::new(args.quick);
    let env = Env { skiff_bin: args.skiff_bin.clone(), etcd_bin: args.etcd_bin.clone(), work: args.work_dir.clone() };
    std::fs::create_dir_all(&env.work).with_context(|| format!("creating {}", env.work.display()))?;
    let mut r = Results {
        parts: args.only.iter().map(|p| format!("{p:?}").to_lowercase()).collect(),
        params: Some(p),
        ..Results::default()
    };
    let has = |part| args.only.contains(&part);

    if has(Part::D) {
        progress(&format!("(d) {} fresh starts of each server", p.starts));
        let skiff = startup::run(&env, Kind::Skiff, p.starts).await?;
        let etcd = startup::run(&env, Kind::Etcd, p.starts).await?;
        r.startup = Some(PerPeer { skiff, etcd });
    }

    if has(Part::F) {
        r.sched = sched::run(&env, p.sched, &args.shapes).await?;
    }
    if has(Part::G) {
        r.deploy = Some(deploy::run(&env, p.deploy).await?);
    }
    if has(Part::H) {
        r.scale = Some(scale::run(&env, p.scale).await?);
    }
    // The simulated-node measurements run their own servers.
    if args.only.iter().all(|x| matches!(x, Part::F | Part::G | Part::H)) {
        r.wall = t0.elapsed();
        return Ok(r);
    }

    progress("starting the long-running servers");
    let skiff = Server::start(&env, Kind::Skiff, "skiff-main").await?;
    let etcd = Server::start(&env, Kind::Etcd, "etcd-main").await?;
    let outcome = workloads(&skiff, &etcd, &p, args, &mut r).await;
    if outcome.is_ok() {
        r.data_bytes = Some(PerPeer { skiff: skiff.data_bytes(), etcd: etcd.data_bytes() });
    }
    let stopped = (skiff.stop().await, etcd.stop().await);
    outcome?;
    stopped.0?;
    stopped.1?;
    r.wall = t0.elapsed();
    Ok(r)
}

async fn workloads(skiff: &Server, etcd: &Server, p: &Params, args: &Args, r: &mut Results) -> Result<()> {
    let has = |part| args.only.contains(&part);
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.rss_start = Some(PerPeer { skiff: skiff.memory()?, etcd: etcd.memory()? });

    let mut conn = skiff.endpoint.connect().await?;
    for ns in [creates::NAMESPACE, mixed::NAMESPACE, list::NAMESPACE, watch::NAMESPACE, apply::NAMESPACE] {
        let req = peer::namespace(ns);
        conn.call_ok(req.method, &req.path, req.body).await.with_context(|| format!("creating namespace {ns}"))?;
    }
    drop(conn);
    // Between runs: let the previous peer's background work (fsyncs, compaction) settle.
    let pause = || tokio::time::sleep(Duration::from_secs(1));

    if has(Part::A) {
        progress("(a) durable creates (skiff)");
        let s = creates::run(skiff, p.creates).await?;
        pause().await;
        progress("(a) raw puts (etcd)");
        let e = creates::run(etcd, p.creates).await?;
        r.creates = Some(PerPeer { skiff: s, etcd: e });
        pause().await;
    }
    if has(Part::B) {
        progress("(b) mixed load (skiff)");
        let s = mixed::run(skiff, p.mixed).await?;
        pause().await;
        progress("(b) mixed load (etcd)");
        let e = mixed::run(etcd, p.mixed).await?;
        r.mixed = Some(PerPeer { skiff: s, etcd: e });
        pause().await;
        progress("(b) LIST of pods (skiff)");
        let s = list::run(skiff, p.list, None).await?;
        pause().await;
        progress("(b) range of keys (etcd)");
        let e = list::run(etcd, p.list, s.sample.clone()).await?;
        r.list = Some(PerPeer { skiff: s, etcd: e });
        pause().await;
    }
    if has(Part::C) {
        progress("(c) watch fan-out (skiff)");
        let s = watch::run(skiff, p.watch).await?;
        pause().await;
        progress("(c) watch fan-out (etcd)");
        let e = watch::run(etcd, p.watch).await?;
        r.watch = Some(PerPeer { skiff: s, etcd: e });
    }
    if has(Part::E) {
        progress("(e) server-side apply against update (skiff)");
        r.apply = Some(apply::run(skiff, p.apply).await?);
    }
    progress(&format!("idle {:?} before reading memory", p.settle_after));
    tokio::time::sleep(p.settle_after).await;
    r.rss_after = Some(PerPeer { skiff: skiff.memory()?, etcd: etcd.memory()? });
    Ok(())
}
