use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, Probe};
use serde_json::json;
use skiff_runtime::cri::{ContainerConfig, ExecResult, PodSandboxConfig, Runtime, RuntimeError};
use skiff_runtime::{FakeRuntime, ImageConfig};
use tokio::net::TcpListener;

use super::*;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn container(ports: serde_json::Value) -> Container {
    serde_json::from_value(json!({"name": "app", "ports": ports})).unwrap()
}

fn probe(v: serde_json::Value) -> Probe {
    serde_json::from_value(v).unwrap()
}

/// A running container named `app` in a fake runtime.
async fn running() -> (FakeRuntime, String) {
    let rt = FakeRuntime::new();
    rt.add_image("busybox", ImageConfig::default());
    let sb_cfg = PodSandboxConfig { name: "web".into(), namespace: "ns".into(), uid: "u".into(), ..Default::default() };
    let sb = rt.run_pod_sandbox(&sb_cfg).await.unwrap();
    let cfg = ContainerConfig { name: "app".into(), image: "busybox".into(), ..Default::default() };
    let id = rt.create_container(&sb, &cfg, &sb_cfg).await.unwrap();
    rt.start_container(&id).await.unwrap();
    (rt, id)
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn exec_probe_outcomes() {
    let (rt, id) = running().await;
    let c = container(json!([]));
    let target = Target { container_id: &id, container: &c, pod_ip: None };
    let p = probe(json!({"exec": {"command": ["sh", "-c", "check"]}}));
    assert_eq!(run(&p, &target, &rt, Duration::from_secs(1)).await, ProbeOutcome::Success);

    rt.exec_result("app", ExecResult { stdout: b"out;".to_vec(), stderr: b"err".to_vec(), exit_code: 1 });
    assert_eq!(run(&p, &target, &rt, Duration::from_secs(1)).await, ProbeOutcome::Failure("out;err".into()));

    rt.fail_next("exec_sync", RuntimeError::Timeout("exec".into()));
    assert_eq!(
        run(&p, &target, &rt, Duration::from_secs(1)).await,
        ProbeOutcome::Failure("command \"sh -c check\" timed out".into())
    );
    let gone = Target { container_id: "nope", ..target };
    assert!(matches!(run(&p, &gone, &rt, Duration::from_secs(1)).await, ProbeOutcome::Unknown(_)));
    let empty = probe(json!({}));
    assert_eq!(
        run(&empty, &target, &rt, Duration::from_secs(1)).await,
        ProbeOutcome::Unknown("missing probe handler".into())
    );
}

#[tokio::test]
async fn tcp_probe_and_ports() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let (rt, id) = running().await;
    let c = container(json!([{"name": "web", "containerPort": port}]));
    let target = Target { container_id: &id, container: &c, pod_ip: Some(LOCAL) };
    let t = Duration::from_secs(1);
    for port_spec in [json!(port), json!("web"), json!(port.to_string())] {
        let p = probe(json!({"tcpSocket": {"port": port_spec}}));
        assert_eq!(run(&p, &target, &rt, t).await, ProbeOutcome::Success, "{port_spec}");
    }
    let closed = closed_port().await;
    let p = probe(json!({"tcpSocket": {"port": closed}}));
    assert_eq!(
        run(&p, &target, &rt, t).await,
        ProbeOutcome::Failure(format!("dial tcp 127.0.0.1:{closed}: connect: connection refused"))
    );
    let p = probe(json!({"tcpSocket": {"port": "nope"}}));
    assert_eq!(
        run(&p, &target, &rt, t).await,
        ProbeOutcome::Unknown("strconv.Atoi: parsing \"nope\": invalid syntax".into())
    );
    let p = probe(json!({"tcpSocket": {"port": 70000}}));
    assert_eq!(run(&p, &target, &rt, t).await, ProbeOutcome::Unknown("invalid port number: 70000".into()));
    let no_ip = Target { pod_ip: None, ..target };
    let p = probe(json!({"tcpSocket": {"port": port}}));
    assert!(matches!(run(&p, &no_ip, &rt, t).await, ProbeOutcome::Unknown(_)));
    let p = probe(json!({"tcpSocket": {"port": port, "host": "127.0.0.1"}}));
    assert_eq!(run(&p, &no_ip, &rt, t).await, ProbeOutcome::Success, "explicit host");
}

type Seen = Arc<Mutex<Vec<::http::request::Parts>>>;

async fn http_handler(
    req: hyper::Request<hyper::body::Incoming>,
    seen: Seen,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, _) = req.into_parts();
    let path = parts.uri.path().to_string();
    seen.lock().unwrap().push(parts);
    let resp = |status: u16, location: Option<&str>, body: Bytes| {
        let mut b = hyper::Response::builder().status(status);
        if let Some(l) = location {
            b = b.header("location", l);
        }
        Ok(b.body(Full::new(body)).unwrap())
    };
    match path.as_str() {
        "/ok" | "/" => resp(200, None, Bytes::from_static(b"fine")),
        "/bad" => resp(500, None, Bytes::from_static(b"broken")),
        "/redirect-same" => resp(302, Some("/ok"), Bytes::new()),
        "/redirect-other" => resp(302, Some("http://elsewhere.invalid/x"), Bytes::from_static(b"moved")),
        "/loop" => resp(302, Some("/loop"), Bytes::new()),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            resp(200, None, Bytes::new())
        }
        "/big" => resp(200, None, Bytes::from(vec![b'x'; 100 * 1024])),
        _ => resp(404, None, Bytes::new()),
    }
}

/// An HTTP/1 server on a loopback port, recording the requests it gets.
async fn http_server() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| http_handler(req, s.clone()));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn http_probe_outcomes() {
    let (port, seen) = http_server().await;
    let (rt, id) = running().await;
    let c = container(json!([{"name": "http", "containerPort": port}]));
    let target = Target { container_id: &id, container: &c, pod_ip: Some(LOCAL) };
    let t = Duration::from_secs(2);
    let get = |path: &str| {
        probe(json!({"httpGet": {"port": "http", "path": path,
            "httpHeaders": [{"name": "X-Custom", "value": "1"}, {"name": "Host", "value": "svc.example"}]}}))
    };

    assert_eq!(run(&get("/ok"), &target, &rt, t).await, ProbeOutcome::Success);
    {
        let seen = seen.lock().unwrap();
        let h = &seen[0].headers;
        assert_eq!(h["user-agent"], "kube-probe/1.33");
        assert_eq!(h["accept"], "*/*");
        assert_eq!(h["x-custom"], "1");
        assert_eq!(h["host"], "svc.example");
        assert_eq!(h["connection"], "close");
    }
    assert_eq!(
        run(&get("/bad"), &target, &rt, t).await,
        ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    seen.lock().unwrap().clear();
    assert_eq!(run(&get("/redirect-same"), &target, &rt, t).await, ProbeOutcome::Success);
    assert_eq!(
        seen.lock().unwrap().iter().map(|p| p.uri.path().to_string()).collect::<Vec<_>>(),
        ["/redirect-same", "/ok"]
    );
    assert_eq!(
        run(&get("/redirect-other"), &target, &rt, t).await,
        ProbeOutcome::Warning("Probe terminated redirects, Response body: moved".into())
    );
    assert_eq!(
        run(&get("/loop"), &target, &rt, t).await,
        ProbeOutcome::Failure(format!("Get \"http://127.0.0.1:{port}/loop\": stopped after 10 redirects"))
    );
    assert_eq!(run(&get("/big"), &target, &rt, t).await, ProbeOutcome::Success);
    assert_eq!(
        run(&get("/slow"), &target, &rt, Duration::from_millis(200)).await,
        ProbeOutcome::Failure(format!(
            "Get \"http://127.0.0.1:{port}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        ))
    );
    let closed = closed_port().await;
    let p = probe(json!({"httpGet": {"port": closed}}));
    assert_eq!(
        run(&p, &target, &rt, t).await,
        ProbeOutcome::Failure(format!(
            "Get \"http://127.0.0.1:{closed}/\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
        ))
    );
}

#[tokio::test]
async fn https_probe_skips_certificate_verification() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["not-the-pod.example".to_string()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, s) = (acceptor.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let svc = hyper::service::service_fn(move |req| http_handler(req, s.clone()));
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
            });
        }
    });
    let (rt, id) = running().await;
    let c = container(json!([]));
    let target = Target { container_id: &id, container: &c, pod_ip: Some(LOCAL) };
    let p = probe(json!({"httpGet": {"port": port, "path": "/ok", "scheme": "HTTPS"}}));
    assert_eq!(run(&p, &target, &rt, Duration::from_secs(2)).await, ProbeOutcome::Success);
    let p = probe(json!({"httpGet": {"port": port, "path": "/bad", "scheme": "HTTPS"}}));
    assert_eq!(
        run(&p, &target, &rt, Duration::from_secs(2)).await,
        ProbeOutcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}

type GrpcBody = BoxBody<Bytes, Infallible>;

async fn grpc_handler(req: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<GrpcBody>, Infallible> {
    assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
    assert_eq!(req.headers()["content-type"], "application/grpc");
    assert_eq!(req.headers()["user-agent"], "kube-probe/1.33");
    let body = req.into_body().collect().await.unwrap().to_bytes();
    // HealthCheckRequest: the service name is field 1.
    let service = if body.len() > 7 { String::from_utf8_lossy(&body[7..]).into_owned() } else { String::new() };
    let reply = |status: u8| {
        let msg = Bytes::from(vec![0, 0, 0, 0, 2, 0x08, status]);
        let mut trailers = ::http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let frames = vec![Ok::<_, Infallible>(Frame::data(msg)), Ok(Frame::trailers(trailers))];
        hyper::Response::builder()
            .header("content-type", "application/grpc")
            .body(StreamBody::new(futures::stream::iter(frames)).boxed())
            .unwrap()
    };
    Ok(match service.as_str() {
        "" => reply(1),
        "down" => reply(2),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            reply(1)
        }
        _ => hyper::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "12")
            .header("grpc-message", "unknown%20service")
            .body(Full::new(Bytes::new()).boxed())
            .unwrap(),
    })
}

#[tokio::test]
async fn grpc_probe_outcomes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(grpc_handler);
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let (rt, id) = running().await;
    let c = container(json!([]));
    let target = Target { container_id: &id, container: &c, pod_ip: Some(LOCAL) };
    let t = Duration::from_secs(2);
    let grpc = |service: Option<&str>| probe(json!({"grpc": {"port": port, "service": service}}));
    assert_eq!(run(&grpc(None), &target, &rt, t).await, ProbeOutcome::Success);
    assert_eq!(
        run(&grpc(Some("down")), &target, &rt, t).await,
        ProbeOutcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
    );
    assert_eq!(
        run(&grpc(Some("other")), &target, &rt, t).await,
        ProbeOutcome::Failure(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service"
                .into()
        )
    );
    assert_eq!(
        run(&grpc(Some("slow")), &target, &rt, Duration::from_millis(300)).await,
        ProbeOutcome::Failure("timeout: health rpc did not complete within 300ms".into())
    );
    let closed = closed_port().await;
    let p = probe(json!({"grpc": {"port": closed}}));
    assert_eq!(
        run(&p, &target, &rt, Duration::from_secs(1)).await,
        ProbeOutcome::Failure(format!(
            "timeout: failed to connect service \"127.0.0.1:{closed}\" within 1s: context deadline exceeded"
        ))
    );
}

fn pod() -> Pod {
    serde_json::from_value(
        json!({"metadata": {"name": "web", "namespace": "ns", "uid": "u-1"}, "spec": {"containers": []}}),
    )
    .unwrap()
}

fn hook(v: serde_json::Value) -> LifecycleHandler {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn lifecycle_hooks() {
    let (rt, id) = running().await;
    let (port, seen) = http_server().await;
    let c = container(json!([]));
    let target = Target { container_id: &id, container: &c, pod_ip: Some(LOCAL) };
    let pod = pod();
    let t = Duration::from_secs(2);

    let exec = hook(json!({"exec": {"command": ["sh", "-c", "setup"]}}));
    run_hook(&exec, &pod, &target, &rt, t).await.unwrap();
    rt.exec_result("app", ExecResult { stdout: b"out\n".to_vec(), stderr: b"no such file".to_vec(), exit_code: 2 });
    let err = run_hook(&exec, &pod, &target, &rt, t).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Exec lifecycle hook ([sh -c setup]) for Container \"app\" in Pod \"web_ns(u-1)\" failed - error: command \
         'sh -c setup' exited with 2: no such file, message: \"out\\nno such file\""
    );

    // The status code does not matter, reaching the server does.
    let http_hook = hook(json!({"httpGet": {"port": port, "path": "/bad"}}));
    run_hook(&http_hook, &pod, &target, &rt, t).await.unwrap();
    assert_eq!(seen.lock().unwrap().last().unwrap().headers["user-agent"], "kube-lifecycle/1.33");
    let closed = closed_port().await;
    let http_hook = hook(json!({"httpGet": {"port": closed, "path": "/stop"}}));
    let err = run_hook(&http_hook, &pod, &target, &rt, t).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "HTTP lifecycle hook (/stop) for Container \"app\" in Pod \"web_ns(u-1)\" failed - error: Get \
             \"http://127.0.0.1:{closed}/stop\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
        )
    );
    let tcp = hook(json!({"tcpSocket": {"port": 80}}));
    let err = run_hook(&tcp, &pod, &target, &rt, t).await.unwrap_err();
    assert!(err.to_string().starts_with("Cannot run handler: invalid handler: "), "{err}");
}

#[tokio::test(start_paused = true)]
async fn sleep_hook_sleeps() {
    let (rt, id) = running().await;
    let c = container(json!([]));
    let target = Target { container_id: &id, container: &c, pod_ip: None };
    let start = tokio::time::Instant::now();
    run_hook(&hook(json!({"sleep": {"seconds": 7}})), &pod(), &target, &rt, Duration::from_secs(30)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[test]
fn go_durations() {
    assert_eq!(go_duration(Duration::from_secs(1)), "1s");
    assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
    assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
}

#[test]
fn settings_default_like_upstream() {
    let s = ProbeSettings::from_probe(&probe(json!({"exec": {"command": ["true"]}})));
    assert_eq!(
        s,
        ProbeSettings {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    );
    let s = ProbeSettings::from_probe(&probe(json!({"periodSeconds": 0, "timeoutSeconds": 5, "failureThreshold": -1})));
    assert_eq!((s.period, s.timeout, s.failure_threshold), (Duration::from_secs(10), Duration::from_secs(5), 3));
}

/// Drive `state` like a pod worker would, for `total` of (paused) time, answering probes with
/// `outcome(n)` for the n-th probe. Returns (seconds since start, published change) pairs and
/// the probe times.
async fn drive(
    state: &mut ProbeState,
    started: impl Fn(u64) -> bool,
    mut outcome: impl FnMut(usize) -> ProbeOutcome,
    total: Duration,
) -> (Vec<(u64, ProbeResult)>, Vec<u64>) {
    let t0 = tokio::time::Instant::now();
    let (mut changes, mut probes) = (Vec::new(), Vec::new());
    while let Some(at) = state.next_tick() {
        if at > t0 + total {
            break;
        }
        tokio::time::sleep_until(at).await;
        let now = tokio::time::Instant::now();
        let secs = (now - t0).as_secs();
        if state.on_tick(now, started(secs)) {
            probes.push(secs);
            if let Some(r) = state.record(&outcome(probes.len())) {
                changes.push((secs, r));
            }
        }
    }
    (changes, probes)
}

#[tokio::test(start_paused = true)]
async fn liveness_needs_consecutive_failures_then_holds() {
    let p = probe(json!({"initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3}));
    let mut s = ProbeState::new(ProbeKind::Liveness, &p);
    assert_eq!(s.next_tick(), None, "no container yet");
    s.container_started(tokio::time::Instant::now());
    assert_eq!(s.result(), ProbeResult::Success);
    // Fail, fail, succeed (resets the count), then fail three times; unknown outcomes don't count.
    let script = |n: usize| match n {
        1 | 2 | 4 | 6 | 7 => ProbeOutcome::Failure("x".into()),
        5 => ProbeOutcome::Unknown("runtime hiccup".into()),
        _ => ProbeOutcome::Success,
    };
    let (changes, probes) = drive(&mut s, |_| true, script, Duration::from_secs(200)).await;
    assert_eq!(probes, vec![5, 15, 25, 35, 45, 55, 65]);
    assert_eq!(changes, vec![(65, ProbeResult::Failure)]);
    assert_eq!(s.next_tick(), None, "on hold until the container restarts");
    // The restarted container starts over.
    s.container_started(tokio::time::Instant::now());
    assert_eq!(s.result(), ProbeResult::Success);
    assert!(s.next_tick().is_some());
}

#[tokio::test(start_paused = true)]
async fn readiness_success_threshold_and_stop() {
    let p = probe(json!({"periodSeconds": 5, "successThreshold": 2, "failureThreshold": 1}));
    let mut s = ProbeState::new(ProbeKind::Readiness, &p);
    s.container_started(tokio::time::Instant::now());
    assert_eq!(s.result(), ProbeResult::Failure);
    let script = |n: usize| if n == 4 { ProbeOutcome::Failure("x".into()) } else { ProbeOutcome::Warning("w".into()) };
    let (changes, probes) = drive(&mut s, |_| true, script, Duration::from_secs(30)).await;
    assert_eq!(probes, vec![0, 5, 10, 15, 20, 25, 30]);
    // Ready after two successes, unready at the first failure, ready again after two more.
    assert_eq!(changes, vec![(5, ProbeResult::Success), (15, ProbeResult::Failure), (25, ProbeResult::Success)]);
    assert!(s.next_tick().is_some(), "readiness keeps probing after failures");
    assert_eq!(s.container_stopped(), Some(ProbeResult::Failure));
    assert_eq!(s.next_tick(), None);
    assert_eq!(s.record(&ProbeOutcome::Success), None, "late outcomes are ignored");
}

#[tokio::test(start_paused = true)]
async fn startup_gates_liveness() {
    let startup_probe = probe(json!({"periodSeconds": 1, "failureThreshold": 30}));
    let mut startup = ProbeState::new(ProbeKind::Startup, &startup_probe);
    let mut liveness = ProbeState::new(ProbeKind::Liveness, &probe(json!({"periodSeconds": 10})));
    let t0 = tokio::time::Instant::now();
    startup.container_started(t0);
    liveness.container_started(t0);
    assert_eq!(startup.result(), ProbeResult::Unknown);
    // Startup succeeds at its 4th probe (t=3s).
    let script = |n: usize| if n < 4 { ProbeOutcome::Failure("not yet".into()) } else { ProbeOutcome::Success };
    let (changes, probes) = drive(&mut startup, |_| true, script, Duration::from_secs(60)).await;
    assert_eq!(probes, vec![0, 1, 2, 3]);
    assert_eq!(changes, vec![(3, ProbeResult::Success)]);
    assert_eq!(startup.next_tick(), None, "a succeeded startup probe stops");

    // Liveness ticks did not probe while startup was pending.
    let mut gated = liveness.clone();
    assert!(!gated.on_tick(t0 + Duration::from_secs(0), false));
    // Once started, the worker triggers it and it runs on its period.
    liveness.trigger(tokio::time::Instant::now());
    let start = (tokio::time::Instant::now() - t0).as_secs();
    let (_, probes) = drive(&mut liveness, |_| true, |_| ProbeOutcome::Success, Duration::from_secs(25)).await;
    assert_eq!(probes.len(), 3, "{probes:?} from {start}");
    assert_eq!(liveness.result(), ProbeResult::Success);

    // A startup probe that never succeeds fails after failureThreshold and holds.
    let mut s = ProbeState::new(ProbeKind::Startup, &probe(json!({"periodSeconds": 1, "failureThreshold": 3})));
    s.container_started(tokio::time::Instant::now());
    let (changes, _) = drive(&mut s, |_| true, |_| ProbeOutcome::Failure("no".into()), Duration::from_secs(10)).await;
    assert_eq!(changes, vec![(2, ProbeResult::Failure)]);
    assert_eq!(s.next_tick(), None);
}

#[tokio::test(start_paused = true)]
async fn late_wakeups_do_not_burst() {
    let mut s = ProbeState::new(ProbeKind::Readiness, &probe(json!({"periodSeconds": 10})));
    let t0 = tokio::time::Instant::now();
    s.container_started(t0);
    // The worker oversleeps by 35s: one probe, then the next one on the grid.
    let late = t0 + Duration::from_secs(35);
    assert!(s.on_tick(late, true));
    assert!(!s.on_tick(late, true));
    assert_eq!(s.next_tick(), Some(t0 + Duration::from_secs(40)));
}
