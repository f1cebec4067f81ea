//! Runtime benchmarks (ignored by default; see docs/benchmarks.md):
//!
//! ```text
//! cargo test --release -p skiff-runtime --lib conformance::bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! - container create+start+wait+remove of `true` from the busybox rootfs, 200 runs, against
//!   `runc run` of the same rootfs in the same process (Debian's runc);
//! - pod sandbox (namespaces, cgroup, bridge + veth + IPAM) create+remove;
//! - private memory of the per-container supervisor.
//!
//! `SKIFF_BENCH_SHIM=/path/to/skiff` uses that binary's `shim` subcommand as the supervisor
//! (what production runs) instead of this test binary.

use std::path::Path;
use std::time::{Duration, Instant};

use super::env::Env;
use crate::cri::*;

const RUNS: usize = 200;

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p = |q: f64| ms(v[((v.len() as f64 * q).ceil() as usize).saturating_sub(1).min(v.len() - 1)]);
    (p(0.5), p(0.99), ms(v.iter().sum::<Duration>()) / v.len() as f64)
}

fn runc_bundle(env: &Env) -> std::path::PathBuf {
    let bundle = env.dir.join("runc-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let ok = std::process::Command::new("runc").arg("spec").arg("--bundle").arg(&bundle).status().unwrap();
    assert!(ok.success(), "runc spec");
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["process"]["args"] = serde_json::json!(["true"]);
    spec["process"]["terminal"] = serde_json::json!(false);
    spec["root"]["path"] = serde_json::json!(env.dir.join("images/busybox"));
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    bundle
}

/// (VmRSS, Pss, private) in KiB of a process.
fn memory_kib(pid: i32) -> (u64, u64, u64) {
    let field = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    (field(&status, "VmRSS:"), field(&smaps, "Pss:"), field(&smaps, "Private_Clean:") + field(&smaps, "Private_Dirty:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
async fn bench_runtime() {
    let shim = std::env::var_os("SKIFF_BENCH_SHIM");
    let env = Env::with(|c| {
        if let Some(p) = &shim {
            c.shim = crate::linux::ShimCommand { program: p.into(), args: vec!["shim".into()], env: vec![] };
        }
    });
    println!("shim: {}", env.config.shim.program.display());
    let pod = env.pod("bench");
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    let mut cfg = env.container("true", "");
    cfg.command = vec!["true".into()];

    // Container lifecycle, ours.
    let mut ours = Vec::with_capacity(RUNS);
    let mut phases = [Duration::ZERO; 4];
    for i in 0..RUNS + 5 {
        let t = Instant::now();
        let c = env.rt.create_container(&sb, &cfg, &pod).await.unwrap();
        let t1 = t.elapsed();
        env.rt.start_container(&c).await.unwrap();
        let t2 = t.elapsed();
        let s = env.rt.wait_container(&c, Duration::from_secs(10)).await.unwrap();
        assert_eq!(s.exit_code, 0);
        let t3 = t.elapsed();
        env.rt.remove_container(&c).await.unwrap();
        if i >= 5 {
            ours.push(t.elapsed());
            phases[0] += t1;
            phases[1] += t2 - t1;
            phases[2] += t3 - t2;
            phases[3] += t.elapsed() - t3;
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / RUNS as f64;
    println!(
        "phases (mean ms): create {:.2}, start {:.2}, wait {:.2}, remove {:.2}",
        per(phases[0]),
        per(phases[1]),
        per(phases[2]),
        per(phases[3])
    );

    // The same with runc (same rootfs; runc's default spec: new net/ipc/uts/pid/mount
    // namespaces, read-only rootfs, its own cgroup).
    let bundle = runc_bundle(&env);
    let root = env.dir.join("runc-state");
    let mut theirs = Vec::with_capacity(RUNS);
    for i in 0..RUNS + 5 {
        let t = Instant::now();
        let st = tokio::process::Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(format!("bench-{}-{i}", std::process::id()))
            .stdin(std::process::Stdio::null())
            .status()
            .await
            .unwrap();
        assert!(st.success());
        if i >= 5 {
            theirs.push(t.elapsed());
        }
    }
    let (om, op, oa) = stats(ours);
    let (rm, rp, ra) = stats(theirs);
    println!("| container create+start+wait+remove (`true`, {RUNS} runs) | median | p99 | mean |");
    println!("|---|---:|---:|---:|");
    println!("| skiff | {om:.2} ms | {op:.2} ms | {oa:.2} ms |");
    println!("| runc run | {rm:.2} ms | {rp:.2} ms | {ra:.2} ms |");
    println!("| ratio skiff/runc | {:.2}× | {:.2}× | {:.2}× |", om / rm, op / rp, oa / ra);

    // Pod sandboxes with network.
    let mut sandboxes = Vec::new();
    for i in 0..55 {
        let mut p = env.pod(&format!("sb{i}"));
        p.uid = format!("bench-{i}");
        let t = Instant::now();
        let id = env.rt.run_pod_sandbox(&p).await.unwrap();
        env.rt.remove_pod_sandbox(&id).await.unwrap();
        if i >= 5 {
            sandboxes.push(t.elapsed());
        }
    }
    let (sm, sp, sa) = stats(sandboxes);
    println!("\n| pod sandbox with network create+remove (50 runs) | median | p99 | mean |");
    println!("|---|---:|---:|---:|");
    println!("| skiff | {sm:.2} ms | {sp:.2} ms | {sa:.2} ms |");

    // Supervisor memory with 10 running containers.
    let mut sleepers = Vec::new();
    for i in 0..10 {
        let mut c = env.container(&format!("sleep{i}"), "");
        c.command = vec!["sleep".into(), "1000".into()];
        let id = env.rt.create_container(&sb, &c, &pod).await.unwrap();
        env.rt.start_container(&id).await.unwrap();
        sleepers.push(id);
    }
    // The supervisors shed start-up pages after a second of quiet.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut mem = Vec::new();
    for id in &sleepers {
        let st: serde_json::Value = serde_json::from_slice(
            &std::fs::read(Path::new(&env.config.state_dir).join("containers").join(id).join("status.json")).unwrap(),
        )
        .unwrap();
        mem.push(memory_kib(st["shim_pid"].as_i64().unwrap() as i32));
    }
    mem.sort();
    let (rss, pss, private) = mem[mem.len() / 2];
    if std::env::var_os("SKIFF_BENCH_SMAPS").is_some() {
        let st: serde_json::Value = serde_json::from_slice(
            &std::fs::read(Path::new(&env.config.state_dir).join("containers").join(&sleepers[0]).join("status.json"))
                .unwrap(),
        )
        .unwrap();
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", st["shim_pid"])).unwrap();
        let mut current = String::new();
        for l in smaps.lines() {
            if l.contains('-') && !l.contains(':')
                || l.split_whitespace()
                    .nth(1)
                    .is_some_and(|x| x.contains('-') || x.chars().all(|c| c.is_ascii_alphabetic() || c == '-'))
                    && l.split_whitespace().count() >= 5
            {
                current = l.to_string();
            }
            if let Some(v) = l.strip_prefix("Rss:") {
                let kb: u64 = v.split_whitespace().next().unwrap().parse().unwrap();
                if kb > 0 {
                    println!("{kb:>6} KiB  {current}");
                }
            }
        }
    }
    println!("\n| supervisor memory (median of 10) | RSS | PSS | private (USS) |");
    println!("|---|---:|---:|---:|");
    println!("| per running container | {rss} KiB | {pss} KiB | {private} KiB |");
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
}
