//! Load generators. [`closed_loop`]: N tasks, each on its own connection, sending the next
//! request as soon as the previous one is answered (throughput, and bulk loading).
//! [`open_loop`]: requests sent on a fixed schedule regardless of how fast answers come, with
//! latency measured from each request's *scheduled* send time, so a slow answer that delays
//! the requests queued behind it is charged to them too (no coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::sync::{Mutex, mpsc};

use crate::client::Endpoint;
use crate::peer::{Req, truncate};

/// One answered request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    /// When it was sent (closed loop) or scheduled (open loop).
    pub start: Instant,
    /// When its whole response had arrived.
    pub end: Instant,
    /// Which kind of operation, for mixed loads.
    pub op: usize,
    pub ok: bool,
}

impl Sample {
    pub(crate) fn latency(&self) -> Duration {
        self.end - self.start
    }
}

/// What a load run produced.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub samples: Vec<Sample>,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

impl Outcome {
    pub(crate) fn errors(&self) -> usize {
        self.samples.iter().filter(|s| !s.ok).count()
    }

    /// Fails when any request failed: a benchmark of failing requests measures nothing.
    pub(crate) fn check(&self, what: &str) -> Result<()> {
        if let Some(e) = &self.first_error {
            bail!("{what}: {} of {} requests failed; first: {e}", self.errors(), self.samples.len());
        }
        Ok(())
    }
}

/// When a closed loop stops.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Until {
    /// After this many requests in total.
    Count(usize),
    /// At this instant (requests in flight finish).
    Deadline(Instant),
}

/// Runs `tasks` connections in a closed loop; request `i` (0, 1, 2, … across all tasks) is
/// `make(i)`.
pub(crate) async fn closed_loop<F>(ep: &Endpoint, tasks: usize, until: Until, make: F) -> Result<Outcome>
where
    F: Fn(usize) -> Req + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let mut conns = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        conns.push(ep.connect().await?);
    }
    let mut handles = Vec::with_capacity(tasks);
    for mut conn in conns {
        let (make, next) = (make.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let mut failed = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                match until {
                    Until::Count(n) if i >= n => break,
                    Until::Deadline(d) if Instant::now() >= d => break,
                    _ => {}
                }
                let req = make(i);
                let start = Instant::now();
                let res = conn.call(req.method.clone(), &req.path, req.body).await;
                let end = Instant::now();
                let ok = match res {
                    Ok((status, _)) if status.is_success() => true,
                    Ok((status, body)) => {
                        out.first_error.get_or_insert_with(|| {
                            format!("{} {}: {status}: {}", req.method, req.path, truncate(&body))
                        });
                        false
                    }
                    Err(e) => {
                        out.first_error.get_or_insert_with(|| format!("{} {}: {e:#}", req.method, req.path));
                        false
                    }
                };
                out.samples.push(Sample { start, end, op: 0, ok });
                failed += usize::from(!ok);
                if failed > 100 {
                    break; // The server is failing; no point hammering it.
                }
            }
            out
        }));
    }
    let mut all = Outcome::default();
    for h in handles {
        let out = h.await?;
        all.samples.extend(out.samples);
        if all.first_error.is_none() {
            all.first_error = out.first_error;
        }
    }
    Ok(all)
}

/// Sends `reqs[i]` at `start + i / rate` over `workers` connections and measures each from
/// its scheduled time. `reqs[i].0` is the operation kind recorded in the sample.
pub(crate) async fn open_loop(ep: &Endpoint, workers: usize, rate: f64, reqs: Vec<(usize, Req)>) -> Result<Outcome> {
    let (tx, rx) = mpsc::unbounded_channel::<(Instant, usize, Req)>();
    let rx = Arc::new(Mutex::new(rx));
    let mut conns = Vec::with_capacity(workers);
    for _ in 0..workers {
        conns.push(ep.connect().await?);
    }
    let mut handles = Vec::with_capacity(workers);
    for mut conn in conns {
        let rx = rx.clone();
        handles.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            loop {
                // The lock is only held while waiting for the next request.
                let Some((scheduled, op, req)) = rx.lock().await.recv().await else { break };
                let res = conn.call(req.method.clone(), &req.path, req.body).await;
                let end = Instant::now();
                let ok = match res {
                    Ok((status, _)) if status.is_success() => true,
                    Ok((status, body)) => {
                        out.first_error.get_or_insert_with(|| {
                            format!("{} {}: {status}: {}", req.method, req.path, truncate(&body))
                        });
                        false
                    }
                    Err(e) => {
                        out.first_error.get_or_insert_with(|| format!("{} {}: {e:#}", req.method, req.path));
                        false
                    }
                };
                out.samples.push(Sample { start: scheduled, end, op, ok });
            }
            out
        }));
    }
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(50);
    for (i, (op, req)) in reqs.into_iter().enumerate() {
        let at = start + interval * u32::try_from(i)?;
        tokio::time::sleep_until(at.into()).await;
        if tx.send((at, op, req)).is_err() {
            bail!("every load worker stopped");
        }
    }
    drop(tx);
    let mut all = Outcome::default();
    for h in handles {
        let out = h.await?;
        all.samples.extend(out.samples);
        if all.first_error.is_none() {
            all.first_error = out.first_error;
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use http::{Method, Response, StatusCode};
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;

    use super::*;

    /// A loopback HTTP server: `/slow` answers after 100 ms, `/fail` with a 500, anything
    /// else at once.
    async fn server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                        let status = match req.uri().path() {
                            "/slow" => {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                StatusCode::OK
                            }
                            "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
                            _ => StatusCode::OK,
                        };
                        let mut resp = Response::new(Full::new(Bytes::from_static(b"body")));
                        *resp.status_mut() = status;
                        Ok::<_, std::convert::Infallible>(resp)
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
        addr
    }

    fn req(path: &str) -> Req {
        Req { method: Method::GET, path: path.into(), body: None }
    }

    #[tokio::test]
    async fn closed_loop_sends_each_index_once() {
        let ep = Endpoint::plain(server().await).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let out = closed_loop(&ep, 4, Until::Count(20), move |i| {
            s.lock().unwrap().push(i);
            req("/")
        })
        .await
        .unwrap();
        out.check("test").unwrap();
        assert_eq!(out.samples.len(), 20);
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn failures_are_reported() {
        let ep = Endpoint::plain(server().await).unwrap();
        let out = closed_loop(&ep, 2, Until::Count(5), |_| req("/fail")).await.unwrap();
        assert_eq!(out.errors(), 5);
        let err = out.check("loading").unwrap_err().to_string();
        assert!(err.contains("loading: 5 of 5 requests failed") && err.contains("500"), "{err}");
    }

    #[tokio::test]
    async fn open_loop_charges_queueing_to_the_requests_behind_a_slow_one() {
        let ep = Endpoint::plain(server().await).unwrap();
        // One connection at 100/s: request 0 takes 100 ms, so requests 1..5 (scheduled 10..50 ms
        // later) wait behind it; measured from their schedule they must show that wait.
        let reqs: Vec<(usize, Req)> = (0..6).map(|i| (i, if i == 0 { req("/slow") } else { req("/") })).collect();
        let out = open_loop(&ep, 1, 100.0, reqs).await.unwrap();
        out.check("test").unwrap();
        let lat = |op: usize| out.samples.iter().find(|s| s.op == op).unwrap().latency();
        assert!(lat(0) >= Duration::from_millis(100));
        assert!(lat(1) >= Duration::from_millis(85), "{:?}", lat(1));
        assert!(lat(5) >= Duration::from_millis(45), "{:?}", lat(5));
    }

    #[tokio::test]
    async fn connecting_to_nothing_fails() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let ep = Endpoint::plain(addr).unwrap();
        assert!(closed_loop(&ep, 1, Until::Count(1), |_| req("/")).await.is_err());
        let missing = std::path::Path::new("/nonexistent/ca.crt");
        assert!(Endpoint::tls(addr, missing, missing, missing).is_err());
    }
}
