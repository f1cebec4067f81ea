//! (c) Watch fan-out: 100 watch streams on one namespace from the revision of a fresh list,
//! then 1,000 ConfigMap creates from 10 concurrent writers. Every watcher must receive every
//! event exactly once, in increasing revision order; lag is the time from the write's
//! acknowledgement (its response fully read by the writer) to the event's arrival at each
//! watcher. On etcd: `/v3/watch` streams through the gateway over the same key prefix, fed by
//! raw puts.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http_body_util::BodyExt;
use serde::Deserialize;

use crate::client::JsonStream;
use crate::peer;
use crate::servers::{Kind, Server};
use crate::stats::Summary;

/// Parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub watchers: usize,
    pub writes: usize,
    pub writers: usize,
}

/// Result for one peer.
#[derive(Clone, Debug)]
pub(crate) struct Watch {
    /// Events received over all watchers (want `watchers × writes`).
    pub delivered: usize,
    pub expected: usize,
    /// Watchers that got exactly the acknowledged revisions, in increasing order.
    pub exact_watchers: usize,
    /// Event arrival − write acknowledgement, per event per watcher (may be slightly negative:
    /// the event can beat the write's own response to the client).
    pub lag_from_ack: Summary,
    /// Event arrival − write sent.
    pub lag_from_send: Summary,
    /// Writes acknowledged per second during the fan-out.
    pub writes_per_sec: f64,
    /// Server CPU time from the first write until every watcher had every event.
    pub cpu: Duration,
    /// First problem seen, if any watcher was not exact.
    pub problem: Option<String>,
}

pub(crate) const NAMESPACE: &str = "w";

/// How long watchers may take to drain after the last write.
const DRAIN: Duration = Duration::from_secs(60);

/// A skiff watch event; only the revision is read.
#[derive(Deserialize)]
struct KubeEvent {
    #[serde(rename = "type")]
    kind: String,
    object: KubeObject,
}
#[derive(Deserialize)]
struct KubeObject {
    metadata: KubeMeta,
}
#[derive(Deserialize)]
struct KubeMeta {
    #[serde(rename = "resourceVersion")]
    resource_version: String,
}

/// One message of etcd's gateway watch stream.
#[derive(Deserialize)]
struct EtcdMessage {
    result: Option<EtcdResult>,
    error: Option<serde_json::Value>,
}
#[derive(Deserialize)]
struct EtcdResult {
    #[serde(default)]
    created: bool,
    #[serde(default)]
    events: Vec<EtcdEvent>,
}
#[derive(Deserialize)]
struct EtcdEvent {
    kv: EtcdKv,
}
#[derive(Deserialize)]
struct EtcdKv {
    mod_revision: String,
}

/// What one watcher saw: revisions with their arrival times.
type Seen = Vec<(i64, Instant)>;

pub(crate) async fn run(server: &Server, p: Params) -> Result<Watch> {
    let kind = server.kind;
    let ep = &server.endpoint;
    let mut conn = ep.connect().await?;
    let list = peer::list(kind, "configmaps", NAMESPACE);
    let body = conn.call_ok(list.method, &list.path, list.body).await?;
    let from = match kind {
        Kind::Skiff => {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            v.pointer("/metadata/resourceVersion")
                .and_then(|r| r.as_str())
                .context("a list without resourceVersion")?
                .parse()?
        }
        Kind::Etcd => peer::revision_of(kind, &body)?,
    };

    // Open every stream and wait until each is established: response headers for skiff, the
    // `created` message for etcd.
    let ready = Arc::new(AtomicUsize::new(0));
    let mut watchers = Vec::with_capacity(p.watchers);
    for _ in 0..p.watchers {
        let mut conn = ep.connect().await?;
        let req = peer::watch(kind, "configmaps", NAMESPACE, from);
        let resp = conn.send(req.method, &req.path, req.body).await?;
        if !resp.status().is_success() {
            bail!("watch: {}", resp.status());
        }
        if kind == Kind::Skiff {
            ready.fetch_add(1, Ordering::SeqCst);
        }
        let (ready, want) = (ready.clone(), p.writes);
        watchers.push(tokio::spawn(async move {
            let _conn = conn;
            let mut body = resp.into_body();
            let mut stream = JsonStream::default();
            let mut seen: Seen = Vec::with_capacity(want);
            while seen.len() < want {
                let Some(frame) = body.frame().await else {
                    bail!("the watch stream ended after {} events", seen.len())
                };
                let at = Instant::now();
                let Ok(data) = frame?.into_data() else { continue };
                match kind {
                    Kind::Skiff => {
                        for e in stream.push::<KubeEvent>(&data)? {
                            if e.kind != "ADDED" {
                                bail!("unexpected {} event", e.kind);
                            }
                            seen.push((e.object.metadata.resource_version.parse()?, at));
                        }
                    }
                    Kind::Etcd => {
                        for m in stream.push::<EtcdMessage>(&data)? {
                            if let Some(err) = m.error {
                                bail!("etcd watch error: {err}");
                            }
                            let Some(r) = m.result else { continue };
                            if r.created {
                                ready.fetch_add(1, Ordering::SeqCst);
                            }
                            for e in r.events {
                                seen.push((e.kv.mod_revision.parse()?, at));
                            }
                        }
                    }
                }
            }
            Ok(seen)
        }));
    }
    let t = Instant::now();
    while ready.load(Ordering::SeqCst) < p.watchers {
        if t.elapsed() > Duration::from_secs(30) {
            bail!("only {} of {} watches started", ready.load(Ordering::SeqCst), p.watchers);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let the server finish registering the streams it has answered.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The writes.
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::with_capacity(p.writers);
    let cpu0 = server.cpu_time()?;
    let t0 = Instant::now();
    for _ in 0..p.writers {
        let mut conn = ep.connect().await?;
        let (next, writes) = (next.clone(), p.writes);
        writers.push(tokio::spawn(async move {
            let mut acks: Vec<(i64, Instant, Instant)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= writes {
                    break;
                }
                let name = format!("w-{i}");
                let req = peer::create(kind, "configmaps", NAMESPACE, &name, &peer::configmap(NAMESPACE, &name, 0));
                let sent = Instant::now();
                let body = conn.call_ok(req.method, &req.path, req.body).await?;
                let acked = Instant::now();
                acks.push((peer::revision_of(kind, &body)?, sent, acked));
            }
            anyhow::Ok(acks)
        }));
    }
    let mut acks: HashMap<i64, (Instant, Instant)> = HashMap::with_capacity(p.writes);
    for w in writers {
        for (rev, sent, acked) in w.await?? {
            acks.insert(rev, (sent, acked));
        }
    }
    let writes_per_sec = p.writes as f64 / t0.elapsed().as_secs_f64();
    let drain_until = Instant::now() + DRAIN;
    if acks.len() != p.writes {
        bail!("{} writes share revisions", p.writes - acks.len());
    }
    let mut want: Vec<i64> = acks.keys().copied().collect();
    want.sort_unstable();

    let mut result = Watch {
        delivered: 0,
        expected: p.watchers * p.writes,
        exact_watchers: 0,
        lag_from_ack: Summary::default(),
        lag_from_send: Summary::default(),
        writes_per_sec,
        cpu: Duration::ZERO,
        problem: None,
    };
    let (mut from_ack, mut from_send) = (Vec::with_capacity(result.expected), Vec::with_capacity(result.expected));
    for (i, mut w) in watchers.into_iter().enumerate() {
        let seen = match tokio::time::timeout_at(drain_until.into(), &mut w).await {
            Ok(Ok(Ok(seen))) => seen,
            Ok(Ok(Err(e))) => {
                result.problem.get_or_insert_with(|| format!("watcher {i}: {e:#}"));
                continue;
            }
            Ok(Err(e)) => {
                result.problem.get_or_insert_with(|| format!("watcher {i}: {e}"));
                continue;
            }
            Err(_) => {
                w.abort();
                result.problem.get_or_insert_with(|| format!("watcher {i}: events missing after {DRAIN:?}"));
                continue;
            }
        };
        result.delivered += seen.len();
        let revs: Vec<i64> = seen.iter().map(|(r, _)| *r).collect();
        if revs == want {
            result.exact_watchers += 1;
        } else {
            result.problem.get_or_insert_with(|| describe_mismatch(i, &revs, &want));
        }
        for (rev, at) in seen {
            if let Some((sent, acked)) = acks.get(&rev) {
                from_ack.push(signed_ms(at, *acked));
                from_send.push(signed_ms(at, *sent));
            }
        }
    }
    result.cpu = server.cpu_time()? - cpu0;
    result.lag_from_ack = Summary::of_signed_ms(&from_ack);
    result.lag_from_send = Summary::of_signed_ms(&from_send);
    Ok(result)
}

/// `a − b` in milliseconds, negative when `a` is earlier.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b { (a - b).as_secs_f64() * 1e3 } else { -((b - a).as_secs_f64() * 1e3) }
}

fn describe_mismatch(watcher: usize, got: &[i64], want: &[i64]) -> String {
    if got.windows(2).any(|w| w[0] >= w[1]) {
        return format!("watcher {watcher}: revisions out of order or repeated");
    }
    let first = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
    format!(
        "watcher {watcher}: got {} events, want {}; first difference at #{first}: got {:?}, want {:?}",
        got.len(),
        want.len(),
        got.get(first),
        want.get(first)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_descriptions() {
        assert!(describe_mismatch(1, &[1, 3, 2], &[1, 2, 3]).contains("out of order"));
        assert!(describe_mismatch(2, &[1, 3], &[1, 2, 3]).contains("got Some(3), want Some(2)"));
        assert!(describe_mismatch(3, &[1, 2], &[1, 2, 3]).contains("#2"));
        let early = Instant::now();
        let late = early + Duration::from_millis(3);
        assert!((signed_ms(late, early) - 3.0).abs() < 1e-9);
        assert!((signed_ms(early, late) + 3.0).abs() < 1e-9);
    }

    #[test]
    fn event_shapes_parse() {
        let mut s = JsonStream::default();
        let k: Vec<KubeEvent> = s
            .push(br#"{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"12"},"data":{}}}"#)
            .unwrap();
        assert_eq!(k[0].object.metadata.resource_version, "12");
        let e: Vec<EtcdMessage> = s
            .push(br#"{"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"YQ==","mod_revision":"3"}}]}}"#)
            .unwrap();
        let r = e[0].result.as_ref().unwrap();
        assert!(!r.created);
        assert_eq!(r.events[0].kv.mod_revision, "3");
    }
}
