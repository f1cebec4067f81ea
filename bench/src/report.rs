//! The results as Markdown: one table row per measurement with skiff's value, etcd's, their
//! ratio (skiff ÷ etcd: above 1 is better for rates, below 1 is better for times and memory)
//! and the goal from the issue; then the details behind them.

use std::fmt::Write;

use crate::servers::Memory;
use crate::stats::{Summary, median};
use crate::{PerPeer, Results, mixed};

fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

fn ratio(skiff: f64, etcd: f64) -> String {
    if etcd > 0.0 && skiff.is_finite() && etcd.is_finite() { format!("{:.2}×", skiff / etcd) } else { "–".into() }
}

fn p50_p99(s: &Summary) -> String {
    format!("{:.1} / {:.1} ms", s.p50_ms, s.p99_ms)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

struct Table {
    out: String,
}

impl Table {
    fn new() -> Table {
        let mut out = String::new();
        out.push_str("| Measurement | skiff | etcd 3.4 | skiff ÷ etcd | Goal | Verdict |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        Table { out }
    }

    fn row(&mut self, what: &str, skiff: String, etcd: String, ratio: String, goal: &str, verdict: &str) {
        let _ = writeln!(self.out, "| {what} | {skiff} | {etcd} | {ratio} | {goal} | {verdict} |");
    }
}

/// (e): server-side apply against a plain update, skiff only.
pub(crate) fn apply_table(a: &crate::apply::Apply) -> String {
    let mut out = String::new();
    out.push_str("| Measurement (skiff) | apply | update | apply ÷ update | Goal | Verdict |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for (what, ap, up) in [
        ("(e) 200-container Deployment", &a.big_apply, &a.big_update),
        ("(e) 1,000 small ConfigMaps", &a.small_apply, &a.small_update),
    ] {
        let cost = ap.cpu_us_per_op / up.cpu_us_per_op;
        let _ = writeln!(
            out,
            "| {what}: server CPU per op | {:.0} µs | {:.0} µs | {:.2}× | apply ≤ 2× update | {} |",
            ap.cpu_us_per_op,
            up.cpu_us_per_op,
            cost,
            verdict(cost <= 2.0)
        );
        let _ = writeln!(
            out,
            "| {what}: ops/s, p50 / p99 | {:.0}/s, {} | {:.0}/s, {} | {:.2}× |  |  |",
            ap.per_sec,
            p50_p99(&ap.latency),
            up.per_sec,
            p50_p99(&up.latency),
            up.per_sec / ap.per_sec
        );
    }
    out
}

/// Scheduling throughput beside upstream's scheduler_perf CI thresholds, one row per workload.
pub(crate) fn sched_table(runs: &[crate::sched::Sched]) -> String {
    let mut out = String::new();
    out.push_str("| Workload (skiff, whole cluster in one process) | nodes | initial + measured pods | pods/s | upstream CI threshold | ratio | create → bound p50 / p99 | client creates/s | server CPU per pod | server RSS at the end |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for s in runs {
        let t = s.shape.threshold();
        let _ = writeln!(
            out,
            "| (f) {} | {} | {} + {} | **{:.0}** | {t:.0} | {:.2}× | {} | {:.0}/s | {:.2} ms | {:.0} MB |",
            s.shape.name(),
            s.nodes,
            s.init_pods,
            s.measured_pods,
            s.per_sec,
            s.per_sec / t,
            p50_p99(&s.latency),
            s.create_per_sec,
            s.cpu_per_pod.as_secs_f64() * 1e3,
            mb(s.rss.rss),
        );
    }
    for b in runs.iter().filter(|s| matches!(s.shape, crate::sched::Shape::Basic | crate::sched::Shape::BasicRunning)) {
        let _ = writeln!(
            out,
            "\nGoal (issue 6): {} ≥ 3,000 pods/s: {} ({:.0} pods/s).",
            b.shape.name(),
            verdict(b.per_sec >= 3000.0),
            b.per_sec
        );
    }
    for s in runs {
        let _ = writeln!(
            out,
            "\nAPI requests while {} measured pods were scheduled ({} nodes Ready after {:.1} s): {}",
            s.shape.name(),
            s.nodes,
            s.nodes_ready.as_secs_f64(),
            crate::requests::summary(&s.requests)
        );
    }
    out
}

/// The 1,000-replica Deployment.
pub(crate) fn deploy_table(d: &crate::deploy::Deploy) -> String {
    let mut out = String::new();
    let p = d.params;
    out.push_str("| Measurement (skiff, whole cluster in one process) | value |\n|---|---|\n");
    let _ = writeln!(
        out,
        "| (g) {}-replica Deployment on {} simulated nodes: create → all pods created | {:.2} s |",
        p.replicas,
        p.nodes,
        d.created.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| (g) create → all replicas available (Running, Ready) | **{:.2} s** |",
        d.available.as_secs_f64()
    );
    let total: u64 = d.requests.iter().map(|(_, n)| n).sum();
    let _ = writeln!(
        out,
        "| (g) API requests meanwhile, all clients (of them the benchmark's own polling GETs) | {total} ({}); {:.2} per replica |",
        d.polls,
        total.saturating_sub(d.polls) as f64 / p.replicas as f64
    );
    let _ = writeln!(out, "| (g) server RSS at the end | {:.0} MB |", mb(d.rss.rss));
    let _ = writeln!(out, "\nRequests by verb and resource: {}", crate::requests::summary(&d.requests));
    out
}

/// 150,000 pods on 5,000 simulated nodes.
pub(crate) fn scale_table(s: &crate::scale::Scale) -> String {
    let mut out = String::new();
    let p = s.params;
    let _ = writeln!(
        out,
        "(h) {} pods on {} simulated nodes ({} namespaces), created at {:.0} pods/s over {} connections: all bound after {:.0} s ({:.0} pods/s).\n",
        p.pods,
        p.nodes,
        p.namespaces,
        p.per_sec,
        p.creators,
        s.fill.as_secs_f64(),
        p.pods as f64 / s.fill.as_secs_f64()
    );
    out.push_str("| Probe call | SLO (p99) | while filling: p50 / p99 / max | once full: p50 / p99 / max | Verdict (both phases) |\n|---|---|---|---|---|\n");
    for (i, call) in crate::scale::CALLS.iter().enumerate() {
        let slo = if call.starts_with("LIST") { 5000.0 } else { 1000.0 };
        let (f, g) = (&s.filling[i], &s.full[i]);
        let _ = writeln!(
            out,
            "| {call} | ≤ {:.0} s | {:.1} / {:.1} / {:.1} ms | {:.1} / {:.1} / {:.1} ms | {} |",
            slo / 1000.0,
            f.p50_ms,
            f.p99_ms,
            f.max_ms,
            g.p50_ms,
            g.p99_ms,
            g.max_ms,
            verdict(g.p99_ms <= slo && f.p99_ms <= slo)
        );
    }
    let _ = writeln!(
        out,
        "\nServer RSS with {} pods: **{:.0} MB** (peak {:.0} MB; anonymous {:.0} MB).",
        p.pods,
        mb(s.rss.rss),
        mb(s.rss.hwm),
        mb(s.rss.anon)
    );
    out
}

/// The results table.
pub(crate) fn table(r: &Results) -> String {
    let Some(p) = r.params else { return String::new() };
    let mut t = Table::new();
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.creates {
        let x = s.per_sec / e.per_sec;
        t.row(
            &format!("(a) durable writes/s, {} clients, ~1.2 KB objects", p.creates.clients),
            format!("{:.0} creates/s", s.per_sec),
            format!("{:.0} puts/s", e.per_sec),
            ratio(s.per_sec, e.per_sec),
            "≥ 1.0× etcd",
            verdict(x >= 1.0),
        );
        t.row(
            "(a) write latency p50 / p99 (closed loop)",
            p50_p99(&s.latency),
            p50_p99(&e.latency),
            ratio(s.latency.p99_ms, e.latency.p99_ms),
            "",
            "",
        );
        t.row(
            "(a) server CPU time per write",
            format!("{:.0} µs", s.cpu_us_per_op),
            format!("{:.0} µs", e.cpu_us_per_op),
            ratio(s.cpu_us_per_op, e.cpu_us_per_op),
            "",
            "",
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.mixed {
        for (i, op) in mixed::OPS.iter().enumerate() {
            let (so, eo) = (&s.ops[i], &e.ops[i]);
            t.row(
                &format!(
                    "(b) {op} p50 / p99, {:.0} req/s mixed over {} objects for {} s",
                    p.mixed.rate,
                    p.mixed.objects,
                    p.mixed.duration.as_secs()
                ),
                p50_p99(so),
                p50_p99(eo),
                ratio(so.p99_ms, eo.p99_ms),
                "p99 ≤ 25 ms",
                verdict(so.p99_ms <= 25.0),
            );
        }
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.list {
        t.row(
            &format!("(b) LIST {} pods p50 / p99 of {} (etcd: range of as many keys)", p.list.pods, p.list.repeats),
            p50_p99(&s.latency),
            p50_p99(&e.latency),
            ratio(s.latency.p99_ms, e.latency.p99_ms),
            "≤ 100 ms (judged on p99)",
            verdict(s.latency.p99_ms <= 100.0),
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.watch {
        let exact = |w: &crate::watch::Watch| {
            format!("{}/{} events, {} exact watchers", w.delivered, w.expected, w.exact_watchers)
        };
        let all = s.delivered == s.expected && s.problem.is_none();
        t.row(
            &format!("(c) {} watchers × {} writes: delivery", p.watch.watchers, p.watch.writes),
            exact(s),
            exact(e),
            "–".into(),
            "all, in order",
            verdict(all),
        );
        t.row(
            "(c) watch lag p50 / p99 (write acked → event received)",
            p50_p99(&s.lag_from_ack),
            p50_p99(&e.lag_from_ack),
            ratio(s.lag_from_ack.p99_ms, e.lag_from_ack.p99_ms),
            "",
            "",
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.rss_start {
        t.row(
            "(d) idle RSS after start-up",
            format!("{:.1} MB", mb(s.rss)),
            format!("{:.1} MB", mb(e.rss)),
            ratio(s.rss as f64, e.rss as f64),
            "≤ 40 MB",
            verdict(mb(s.rss) <= 40.0),
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.startup {
        let med = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
        };
        let (sm, em) = (med(&s.idle_rss_kib), med(&e.idle_rss_kib));
        t.row(
            &format!("(d) idle RSS 1 s after ready, median of {} fresh starts", s.idle_rss_kib.len()),
            format!("{:.1} MB", mb(sm)),
            format!("{:.1} MB", mb(em)),
            ratio(sm as f64, em as f64),
            "≤ 40 MB",
            verdict(mb(sm) <= 40.0),
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.rss_after {
        let parts = r.parts.iter().filter(|p| p.as_str() != "d").cloned().collect::<Vec<_>>().join(",");
        t.row(
            &format!("(d) RSS after ({parts}), idle {} s / peak (VmHWM)", p.settle_after.as_secs()),
            format!("{:.1} / {:.1} MB", mb(s.rss), mb(s.hwm)),
            format!("{:.1} / {:.1} MB", mb(e.rss), mb(e.hwm)),
            ratio(s.rss as f64, e.rss as f64),
            "",
            "",
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.startup {
        let range = |v: &[std::time::Duration]| {
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            let (lo, hi) = (v.iter().min().copied().unwrap_or_default(), v.iter().max().copied().unwrap_or_default());
            format!("{:.0} ms ({:.0}–{:.0})", ms(median(v)), ms(lo), ms(hi))
        };
        let (sm, em) = (median(&s.ready), median(&e.ready));
        t.row(
            &format!("(d) spawn → ready, median (min–max) of {} fresh starts", s.ready.len()),
            range(&s.ready),
            range(&e.ready),
            ratio(sm.as_secs_f64(), em.as_secs_f64()),
            "≤ 0.5 s",
            verdict(sm.as_secs_f64() <= 0.5),
        );
    }
    t.out
}

/// What the table's numbers rest on.
pub(crate) fn details(r: &Results) -> String {
    let mut o = String::from("Details:\n");
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.creates {
        let _ = writeln!(
            o,
            "- (a) writes in total (warm-up included): skiff {}, etcd {}; latency max skiff {:.1} ms, etcd {:.1} ms",
            s.total, e.total, s.latency.max_ms, e.latency.max_ms
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.mixed {
        let _ = writeln!(
            o,
            "- (b) mixed: server CPU skiff {:.1} s, etcd {:.1} s; pre-create configmaps: skiff {:.0}/s, etcd {:.0}/s; achieved rate skiff {:.1}/s, etcd {:.1}/s; samples per op {:?}; max ms skiff {:?}, etcd {:?}",
            s.cpu.as_secs_f64(),
            e.cpu.as_secs_f64(),
            s.load_per_sec,
            e.load_per_sec,
            s.achieved_rate,
            e.achieved_rate,
            s.ops.map(|o| o.count),
            s.ops.map(|o| (o.max_ms * 10.0).round() / 10.0),
            e.ops.map(|o| (o.max_ms * 10.0).round() / 10.0),
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.list {
        let _ = writeln!(
            o,
            "- (b) list: server CPU per list skiff {:.1} ms, etcd {:.1} ms; pre-create pods: skiff {:.0}/s, etcd {:.0}/s; list response skiff {:.1} MB, etcd {:.1} MB (base64 values); {} timed lists, max skiff {:.1} ms, etcd {:.1} ms",
            s.cpu_per_list.as_secs_f64() * 1e3,
            e.cpu_per_list.as_secs_f64() * 1e3,
            s.load_per_sec,
            e.load_per_sec,
            s.bytes as f64 / 1e6,
            e.bytes as f64 / 1e6,
            s.latency.count,
            s.latency.max_ms,
            e.latency.max_ms
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.watch {
        let _ = writeln!(
            o,
            "- (c) server CPU writes+fan-out: skiff {:.1} s, etcd {:.1} s; writes/s during fan-out: skiff {:.0}, etcd {:.0}; lag from send p50/p99 skiff {}, etcd {}; lag max skiff {:.1} ms, etcd {:.1} ms",
            s.cpu.as_secs_f64(),
            e.cpu.as_secs_f64(),
            s.writes_per_sec,
            e.writes_per_sec,
            p50_p99(&s.lag_from_send),
            p50_p99(&e.lag_from_send),
            s.lag_from_ack.max_ms,
            e.lag_from_ack.max_ms
        );
        for (name, w) in [("skiff", s), ("etcd", e)] {
            if let Some(p) = &w.problem {
                let _ = writeln!(o, "- (c) {name}: {p}");
            }
        }
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.startup {
        let ms =
            |v: &[std::time::Duration]| v.iter().map(|d| (d.as_secs_f64() * 1e3).round() as u64).collect::<Vec<_>>();
        let _ = writeln!(o, "- (d) spawn → ready ms, skiff {:?}, etcd {:?}", ms(&s.ready), ms(&e.ready));
        let _ = writeln!(
            o,
            "- (d) idle RSS MB per start, skiff {:?}, etcd {:?}",
            s.idle_rss_kib.iter().map(|k| (mb(*k) * 10.0).round() / 10.0).collect::<Vec<_>>(),
            e.idle_rss_kib.iter().map(|k| (mb(*k) * 10.0).round() / 10.0).collect::<Vec<_>>()
        );
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.rss_start {
        let _ = writeln!(o, "- (d) memory 2 s after start: skiff {}; etcd {}", memory(s), memory(e));
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.rss_after {
        let _ = writeln!(o, "- (d) memory after the workloads: skiff {}; etcd {}", memory(s), memory(e));
        if let (Some(start), Some(n)) = (&r.rss_start, objects(r)) {
            let per = |after: u64, before: u64, n: usize| after.saturating_sub(before) as f64 * 1024.0 / n as f64;
            let _ = writeln!(
                o,
                "- (d) objects stored at the end: skiff {}, etcd {}; resident growth per object: skiff {:.0} B, etcd {:.0} B (anonymous only: skiff {:.0} B, etcd {:.0} B)",
                n.skiff,
                n.etcd,
                per(s.rss, start.skiff.rss, n.skiff),
                per(e.rss, start.etcd.rss, n.etcd),
                per(s.anon, start.skiff.anon, n.skiff),
                per(e.anon, start.etcd.anon, n.etcd),
            );
        }
    }
    if let Some(PerPeer { skiff: s, etcd: e }) = &r.data_bytes {
        let _ = writeln!(o, "- data dirs at the end: skiff {:.1} MB, etcd {:.1} MB", *s as f64 / 1e6, *e as f64 / 1e6);
    }
    let _ = writeln!(o, "- wall time of the benchmark binary: {:.0} s", r.wall.as_secs_f64());
    o
}

fn memory(m: &Memory) -> String {
    format!(
        "RSS {:.1} MB (anonymous {:.1}, file-backed {:.1}), peak {:.1} MB",
        mb(m.rss),
        mb(m.anon),
        mb(m.file),
        mb(m.hwm)
    )
}

/// Objects (keys) the workloads left in each store.
fn objects(r: &Results) -> Option<PerPeer<usize>> {
    let p = r.params?;
    let mut n = PerPeer { skiff: 0, etcd: 0 };
    if let Some(c) = &r.creates {
        n.skiff += c.skiff.total;
        n.etcd += c.etcd.total;
    }
    if let Some(m) = &r.mixed {
        n.skiff += p.mixed.objects + m.skiff.ops[1].count;
        n.etcd += p.mixed.objects + m.etcd.ops[1].count;
    }
    if r.list.is_some() {
        n.skiff += p.list.pods;
        n.etcd += p.list.pods;
    }
    if r.watch.is_some() {
        n.skiff += p.watch.writes;
        n.etcd += p.watch.writes;
    }
    (n.skiff > 0 && n.etcd > 0).then_some(n)
}
