//! `/stats/summary` (the `stats/v1alpha1` Summary that `kubectl top` reads through
//! metrics-server) and `/metrics/resource` (the Prometheus endpoint metrics-server scrapes),
//! from [`skiff_runtime::Runtime::container_stats`] for the containers of the pods this
//! kubelet runs and, for the node, `/proc`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use serde_json::{Value, json};
use skiff_runtime::cri::{ContainerFilter, ContainerState};

use super::Kubelet;

/// Remembers the previous CPU sample per container (and the node) to turn cumulative CPU
/// time into a rate (`usageNanoCores`).
#[derive(Default)]
pub(crate) struct Sampler {
    last: Mutex<HashMap<String, (i64, u64)>>,
}

impl Sampler {
    /// Record a sample (time ns, cumulative cpu ns); the rate since the previous one.
    pub(crate) fn rate(&self, key: &str, time: i64, cpu: u64) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let prev = last.insert(key.to_string(), (time, cpu));
        let (t0, c0) = prev?;
        let dt = time.checked_sub(t0).filter(|d| *d > 0)?;
        let dc = cpu.checked_sub(c0)?;
        Some((u128::from(dc) * 1_000_000_000 / dt as u128) as u64)
    }
}

/// One container's numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContainerSample {
    pub(crate) namespace: String,
    pub(crate) pod: String,
    pub(crate) pod_uid: String,
    pub(crate) container: String,
    pub(crate) started_at: i64,
    pub(crate) time: i64,
    pub(crate) cpu_ns: u64,
    pub(crate) working_set: u64,
    pub(crate) rss: u64,
    pub(crate) id: String,
}

async fn samples(kubelet: &Kubelet) -> (Vec<ContainerSample>, bool) {
    let mut out = Vec::new();
    let mut error = false;
    for pod in kubelet.pods.pods() {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(sandbox) = kubelet.pods.sandbox(&ns, &name) else { continue };
        let filter =
            ContainerFilter { sandbox_id: Some(sandbox), state: Some(ContainerState::Running), ..Default::default() };
        let containers = match kubelet.runtime.list_containers(&filter).await {
            Ok(c) => c,
            Err(_) => {
                error = true;
                continue;
            }
        };
        for c in containers {
            match kubelet.runtime.container_stats(&c.id).await {
                Ok(s) => out.push(ContainerSample {
                    namespace: ns.clone(),
                    pod: name.clone(),
                    pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
                    container: c.name.clone(),
                    started_at: c.started_at,
                    time: s.timestamp,
                    cpu_ns: s.cpu_usage_ns,
                    working_set: s.memory_working_set,
                    rss: s.memory_rss,
                    id: c.id.clone(),
                }),
                Err(_) => error = true,
            }
        }
    }
    (out, error)
}

/// Node totals from `/proc` (cpu ns, working set bytes), when readable.
fn node_usage() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait. USER_HZ is 100.
    let busy: u64 = cpu.iter().enumerate().filter(|(i, _)| *i != 3 && *i != 4).take(8).map(|(_, v)| *v).sum();
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = |key: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let ws = kb("MemTotal:")?.saturating_sub(kb("MemAvailable:")?) * 1024;
    Some((busy * 10_000_000, ws))
}

fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

/// The Summary document.
pub(crate) async fn summary(kubelet: &Kubelet) -> Value {
    let (samples, _) = samples(kubelet).await;
    let now = now_ns();
    let cpu = |key: &str, time: i64, total: u64| {
        let mut v = json!({"time": rfc3339(time), "usageCoreNanoSeconds": total});
        if let Some(rate) = kubelet.stats.rate(key, time, total) {
            v["usageNanoCores"] = json!(rate);
        }
        v
    };
    let mut pods: Vec<(String, String, String, Vec<&ContainerSample>)> = Vec::new();
    for s in &samples {
        match pods.iter_mut().find(|p| p.0 == s.namespace && p.1 == s.pod) {
            Some(p) => p.3.push(s),
            None => pods.push((s.namespace.clone(), s.pod.clone(), s.pod_uid.clone(), vec![s])),
        }
    }
    let pods: Vec<Value> = pods
        .into_iter()
        .map(|(ns, name, uid, cs)| {
            let containers: Vec<Value> = cs
                .iter()
                .map(|c| {
                    json!({
                        "name": c.container,
                        "startTime": rfc3339(c.started_at),
                        "cpu": cpu(&c.id, c.time, c.cpu_ns),
                        "memory": {"time": rfc3339(c.time), "workingSetBytes": c.working_set, "rssBytes": c.rss},
                    })
                })
                .collect();
            let (cpu_total, ws_total): (u64, u64) =
                cs.iter().fold((0, 0), |a, c| (a.0 + c.cpu_ns, a.1 + c.working_set));
            let time = cs.iter().map(|c| c.time).max().unwrap_or(now);
            let start = cs.iter().map(|c| c.started_at).min().unwrap_or(now);
            json!({
                "podRef": {"name": name, "namespace": ns, "uid": uid},
                "startTime": rfc3339(start),
                "containers": containers,
                "cpu": cpu(&format!("pod:{ns}/{name}"), time, cpu_total),
                "memory": {"time": rfc3339(time), "workingSetBytes": ws_total},
            })
        })
        .collect();
    let mut node = json!({"nodeName": kubelet.node_name, "systemContainers": []});
    if let Some((cpu_ns, ws)) = node_usage() {
        node["cpu"] = cpu("node", now, cpu_ns);
        node["memory"] = json!({"time": rfc3339(now), "workingSetBytes": ws});
    }
    json!({"node": node, "pods": pods})
}

/// `/metrics/resource` in the Prometheus text format, with upstream's metric names.
pub(crate) async fn resource_metrics(kubelet: &Kubelet) -> String {
    let (samples, error) = samples(kubelet).await;
    let ms = |ns: i64| ns / 1_000_000;
    let secs = |ns: u64| ns as f64 / 1e9;
    let mut out = String::new();
    let mut family = |name: &str, help: &str, kind: &str, lines: Vec<String>| {
        let _ = writeln!(out, "# HELP {name} [STABLE] {help}\n# TYPE {name} {kind}");
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    };
    let labels =
        |s: &ContainerSample| format!("container=\"{}\",namespace=\"{}\",pod=\"{}\"", s.container, s.namespace, s.pod);
    family(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the container in core-seconds",
        "counter",
        samples
            .iter()
            .map(|s| format!("container_cpu_usage_seconds_total{{{}}} {} {}", labels(s), secs(s.cpu_ns), ms(s.time)))
            .collect(),
    );
    family(
        "container_memory_working_set_bytes",
        "Current working set of the container in bytes",
        "gauge",
        samples
            .iter()
            .map(|s| format!("container_memory_working_set_bytes{{{}}} {} {}", labels(s), s.working_set, ms(s.time)))
            .collect(),
    );
    family(
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds",
        "gauge",
        samples
            .iter()
            .map(|s| {
                format!("container_start_time_seconds{{{}}} {} {}", labels(s), s.started_at as f64 / 1e9, ms(s.time))
            })
            .collect(),
    );
    let now = now_ns();
    let node = node_usage();
    family(
        "node_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the node in core-seconds",
        "counter",
        node.map(|(c, _)| vec![format!("node_cpu_usage_seconds_total {} {}", secs(c), ms(now))]).unwrap_or_default(),
    );
    family(
        "node_memory_working_set_bytes",
        "Current working set of the node in bytes",
        "gauge",
        node.map(|(_, w)| vec![format!("node_memory_working_set_bytes {w} {}", ms(now))]).unwrap_or_default(),
    );
    let mut pods: Vec<(String, String, u64, u64, i64)> = Vec::new();
    for s in &samples {
        match pods.iter_mut().find(|p| p.0 == s.namespace && p.1 == s.pod) {
            Some(p) => {
                p.2 += s.cpu_ns;
                p.3 += s.working_set;
                p.4 = p.4.max(s.time);
            }
            None => pods.push((s.namespace.clone(), s.pod.clone(), s.cpu_ns, s.working_set, s.time)),
        }
    }
    family(
        "pod_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the pod in core-seconds",
        "counter",
        pods.iter()
            .map(|p| {
                format!(
                    "pod_cpu_usage_seconds_total{{namespace=\"{}\",pod=\"{}\"}} {} {}",
                    p.0,
                    p.1,
                    secs(p.2),
                    ms(p.4)
                )
            })
            .collect(),
    );
    family(
        "pod_memory_working_set_bytes",
        "Current working set of the pod in bytes",
        "gauge",
        pods.iter()
            .map(|p| {
                format!("pod_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\"}} {} {}", p.0, p.1, p.3, ms(p.4))
            })
            .collect(),
    );
    family(
        "scrape_error",
        "1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
        vec![format!("scrape_error {}", u8::from(error))],
    );
    out
}
