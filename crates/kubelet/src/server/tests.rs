//! The kubelet API end to end: a real TLS listener on 127.0.0.1:0 with the fake runtime and
//! a fake [`PodLookup`], driven by an HTTP client, a WebSocket client and a SPDY client.

use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use skiff_runtime::cri::{ContainerConfig, ImageConfig, PodSandboxConfig};
use skiff_runtime::{FakeRuntime, Outcome};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use super::spdy::{Codec, Frame, header};
use super::*;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = p.self_signed(&key).unwrap();
    Ca { pem: cert.pem(), issuer: Issuer::new(p, key) }
}

/// (certificate PEM, key PEM) signed by `ca`.
fn leaf(ca: &Ca, cn: &str, orgs: &[&str], server: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    for o in orgs {
        p.distinguished_name.push(DnType::OrganizationName, *o);
    }
    p.distinguished_name.push(DnType::CommonName, cn);
    if server {
        p.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    }
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

struct FakePods {
    sandbox: String,
    containers: HashMap<(String, bool), String>,
    pods: Vec<k8s_openapi::api::core::v1::Pod>,
}

impl PodLookup for FakePods {
    fn sandbox(&self, ns: &str, pod: &str) -> Option<String> {
        (ns == "default" && pod == "web").then(|| self.sandbox.clone())
    }
    fn container(&self, ns: &str, pod: &str, container: &str, previous: bool) -> Option<String> {
        if ns != "default" || pod != "web" {
            return None;
        }
        self.containers.get(&(container.to_string(), previous)).cloned()
    }
    fn pods(&self) -> Vec<k8s_openapi::api::core::v1::Pod> {
        self.pods.clone()
    }
}

struct Harness {
    addr: std::net::SocketAddr,
    ca: Ca,
    runtime: Arc<FakeRuntime>,
    log_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn line(ms: i64, text: &str) -> String {
    let t = jiff::Timestamp::from_nanosecond(1_700_000_000_000_000_000 + i128::from(ms) * 1_000_000).unwrap();
    format!("{}.{:09}Z stdout F {text}\n", t.strftime("%Y-%m-%dT%H:%M:%S"), t.subsec_nanosecond())
}

impl Ca {
    /// The cluster CA of an API server PKI (its key is private to the PKI, so sign through it).
    fn from_pki(pki: &skiff_apiserver::pki::Pki) -> Ca {
        let key = KeyPair::from_pem(&std::fs::read_to_string(pki.dir.join("ca.key")).unwrap()).unwrap();
        Ca { pem: pki.ca_cert_pem.clone(), issuer: Issuer::from_ca_cert_pem(&pki.ca_cert_pem, key).unwrap() }
    }
}

async fn start() -> Harness {
    start_with_ca(ca("cluster-ca")).await
}

async fn start_with_ca(ca: Ca) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Arc::new(FakeRuntime::new());
    runtime.add_image("busybox", ImageConfig::default());
    runtime.script("app", Outcome::RunForever);
    runtime.script("job", Outcome::Exit { code: 0, after: Duration::from_millis(700) });
    let sandbox_cfg = PodSandboxConfig {
        name: "web".into(),
        namespace: "default".into(),
        uid: "uid-1".into(),
        log_directory: dir.path().to_path_buf(),
        ..Default::default()
    };
    let sandbox = runtime.run_pod_sandbox(&sandbox_cfg).await.unwrap();
    let mut containers = HashMap::new();
    let mut log_path = std::path::PathBuf::new();
    for name in ["app", "job"] {
        let cfg = ContainerConfig {
            name: name.into(),
            image: "busybox".into(),
            log_path: format!("{name}/0.log").into(),
            ..Default::default()
        };
        let id = runtime.create_container(&sandbox, &cfg, &sandbox_cfg).await.unwrap();
        runtime.start_container(&id).await.unwrap();
        let path = runtime.container_status(&id).await.unwrap().log_path;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, [line(0, &format!("{name} one")), line(1000, &format!("{name} two"))].concat()).unwrap();
        if name == "app" {
            log_path = path;
        }
        containers.insert((name.to_string(), false), id);
    }
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
        "status": {"containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "image": "busybox",
            "imageID": "", "state": {"running": {}}}]}
    }))
    .unwrap();
    let pods = Arc::new(FakePods { sandbox, containers, pods: vec![pod] });
    let (cert, key) = leaf(&ca, "node-1", &[], true);
    let tls = tls_config(&ca.pem, &cert, &key).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, tls, runtime.clone(), pods, "node-1".into(), shutdown.clone()));
    Harness { addr, ca, runtime, log_path, _dir: dir, shutdown }
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

impl Harness {
    /// A TLS connection presenting `client` (PEMs) or no certificate.
    async fn connect(&self, client: Option<(String, String)>) -> std::io::Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.ca.pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut cfg = match client {
            Some((cert, key)) => b
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap(),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => b.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let name = rustls_pki_types::ServerName::IpAddress(self.addr.ip().into());
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await?;
        // TLS 1.3 reports a rejected client certificate only on the first read.
        tls.flush().await?;
        Ok(tls)
    }

    fn apiserver(&self) -> (String, String) {
        leaf(&self.ca, APISERVER_CLIENT_CN, &[], false)
    }

    /// One HTTP/1.1 request; returns the response with a streaming body.
    async fn request(
        &self,
        client: Option<(String, String)>,
        req: Request<String>,
    ) -> std::io::Result<Response<hyper::body::Incoming>> {
        let tls = self.connect(client).await?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(std::io::Error::other)?;
        tokio::spawn(conn.with_upgrades());
        send.send_request(req).await.map_err(std::io::Error::other)
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let req = Request::get(path).header("host", "kubelet").body(String::new()).unwrap();
        let resp = self.request(Some(self.apiserver()), req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn websocket(&self, path: &str, protocol: &str) -> tokio_tungstenite::WebSocketStream<Tls> {
        let tls = self.connect(Some(self.apiserver())).await.unwrap();
        let mut req = format!("wss://{}{path}", self.addr).into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (ws, resp) = tokio_tungstenite::client_async(req, tls).await.unwrap();
        assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), protocol.split(',').next().unwrap().trim());
        ws
    }
}

#[tokio::test]
async fn authentication_and_authorization() {
    let h = start().await;
    // No certificate: 401.
    let req = || Request::get("/healthz").header("host", "k").body(String::new()).unwrap();
    let resp = h.request(None, req()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A certificate of the cluster CA for someone else: 403.
    let resp = h.request(Some(leaf(&h.ca, "bob", &["devs"], false)), req()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Forbidden (user=bob, verb=get, resource=nodes, subresource=healthz)");
    let logs = Request::get("/containerLogs/default/web/app").header("host", "k").body(String::new()).unwrap();
    assert_eq!(h.request(Some(leaf(&h.ca, "bob", &[], false)), logs).await.unwrap().status(), StatusCode::FORBIDDEN);
    // A certificate of another CA: the handshake fails.
    let other = ca("other-ca");
    let forged = leaf(&other, APISERVER_CLIENT_CN, &["system:masters"], false);
    assert!(h.request(Some(forged), req()).await.is_err());
    // The API server's client and cluster admins are in.
    assert_eq!(h.get("/healthz").await, (StatusCode::OK, "ok".into()));
    let resp = h.request(Some(leaf(&h.ca, "admin", &[MASTERS_GROUP], false)), req()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h.get("/nope").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pods_stats_and_metrics() {
    let h = start().await;
    let (status, body) = h.get("/pods").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["kind"].as_str(), v["items"][0]["metadata"]["name"].as_str()), (Some("PodList"), Some("web")));
    let (status, body) = h.get("/stats/summary").await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["node"]["nodeName"], "node-1");
    assert_eq!(v["pods"][0]["podRef"], serde_json::json!({"name": "web", "namespace": "default", "uid": "uid-1"}));
    let names: Vec<&str> =
        v["pods"][0]["containers"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"app"), "{names:?}");
    assert!(v["pods"][0]["containers"][0]["cpu"]["usageCoreNanoSeconds"].is_u64());
    assert!(v["pods"][0]["containers"][0]["memory"]["workingSetBytes"].is_u64());
    // The second sample has a rate.
    let v: serde_json::Value = serde_json::from_str(&h.get("/stats/summary").await.1).unwrap();
    assert!(v["pods"][0]["containers"][0]["cpu"]["usageNanoCores"].is_u64(), "{v}");
    let (status, body) = h.get("/metrics/resource").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web\"}"));
    assert!(body.contains("# TYPE container_memory_working_set_bytes gauge"));
    assert!(body.contains("pod_memory_working_set_bytes{namespace=\"default\",pod=\"web\"}"));
    assert!(body.contains("scrape_error 0"));
}

#[tokio::test]
async fn container_logs_with_options() {
    let h = start().await;
    assert_eq!(h.get("/containerLogs/default/web/app").await, (StatusCode::OK, "app one\napp two\n".into()));
    let (_, body) = h.get("/containerLogs/default/web/app?tailLines=1&timestamps=true").await;
    assert_eq!(body, "2023-11-14T22:13:21Z app two\n");
    assert_eq!(h.get("/containerLogs/default/web/app?limitBytes=5").await.1, "app o");
    assert_eq!(h.get("/containerLogs/default/web/app?sinceTime=2023-11-14T22:13:21Z").await.1, "app two\n");
    let (status, body) = h.get("/containerLogs/default/web/app?tailLines=-1").await;
    assert_eq!((status, body.contains("tailLines")), (StatusCode::BAD_REQUEST, true));
    let (status, body) = h.get("/containerLogs/default/web/app?previous=true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, "previous terminated container \"app\" in pod \"web\" not found");
    assert_eq!(h.get("/containerLogs/default/nope/app").await.0, StatusCode::NOT_FOUND);

    // follow: new lines stream until the container exits ("job" exits after 700ms).
    let req =
        Request::get("/containerLogs/default/web/job?follow=true").header("host", "k").body(String::new()).unwrap();
    let resp = h.request(Some(h.apiserver()), req).await.unwrap();
    let mut body = resp.into_body();
    let job_log = h.log_path.parent().unwrap().parent().unwrap().join("job/0.log");
    let mut got = String::new();
    let mut appended = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Some(frame) = tokio::time::timeout_at(deadline, body.frame()).await.expect("follow ends") {
        if let Ok(data) = frame.unwrap().into_data() {
            got.push_str(&String::from_utf8_lossy(&data));
        }
        if got.contains("job two\n") && !appended {
            appended = true;
            let mut f = std::fs::OpenOptions::new().append(true).open(&job_log).unwrap();
            std::io::Write::write_all(&mut f, line(2000, "job three").as_bytes()).unwrap();
        }
    }
    assert_eq!(got, "job one\njob two\njob three\n");
    let _ = &h.runtime;
}

fn channel(msg: &Message) -> Option<(u8, Vec<u8>)> {
    match msg {
        Message::Binary(b) if !b.is_empty() => Some((b[0], b[1..].to_vec())),
        _ => None,
    }
}

/// Read until the server closes: (stdout, stderr, status JSON).
async fn collect(ws: &mut tokio_tungstenite::WebSocketStream<Tls>) -> (String, String, serde_json::Value) {
    let (mut out, mut err, mut status) = (String::new(), String::new(), serde_json::Value::Null);
    while let Some(m) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("in time") {
        let m = m.unwrap();
        match channel(&m) {
            Some((1, d)) => out.push_str(&String::from_utf8_lossy(&d)),
            Some((2, d)) => err.push_str(&String::from_utf8_lossy(&d)),
            Some((3, d)) => status = serde_json::from_slice(&d).unwrap(),
            _ => {}
        }
        if matches!(m, Message::Close(_)) {
            break;
        }
    }
    (out, err, status)
}

#[tokio::test]
async fn exec_streams_stdin_close_and_exit_codes() {
    let h = start().await;
    // The "command": upper-cases stdin to stdout until stdin closes, complains on stderr, exits 3.
    h.runtime.script_streams(
        "app",
        Arc::new(|cmd, mut io| {
            Box::pin(async move {
                let mut input = Vec::new();
                if let Some(r) = &mut io.stdin {
                    let _ = r.read_to_end(&mut input).await;
                }
                if let Some(w) = &mut io.stdout {
                    let _ = w.write_all(&input.to_ascii_uppercase()).await;
                }
                if let Some(w) = &mut io.stderr {
                    let _ = w.write_all(b"warning").await;
                }
                if cmd.first().map(String::as_str) == Some("fail") { 3 } else { 0 }
            })
        }),
    );
    let path = "/exec/default/web/app?command=fail&command=now&stdin=1&stdout=1&stderr=1";
    let mut ws = h.websocket(path, "v5.channel.k8s.io, v4.channel.k8s.io").await;
    ws.send(Message::Binary(vec![0u8, b'h', b'i'].into())).await.unwrap();
    ws.send(Message::Binary(vec![0u8, b'!'].into())).await.unwrap();
    ws.send(Message::Binary(vec![255u8, 0].into())).await.unwrap();
    let (out, err, status) = collect(&mut ws).await;
    assert_eq!((out.as_str(), err.as_str()), ("HI!", "warning"));
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"], serde_json::json!([{"reason": "ExitCode", "message": "3"}]));

    // Exit 0 on v4 (no close message: stdin ends when the client closes... so send none).
    let mut ws = h.websocket("/exec/default/web/app?command=ok&stdout=1", "v4.channel.k8s.io").await;
    let (_, _, status) = collect(&mut ws).await;
    assert_eq!(status, serde_json::json!({"metadata": {}, "status": "Success"}));

    // Validation happens before the upgrade.
    let (status, body) = h.get("/exec/default/web/app?command=ls").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "you must specify at least 1 of stdin, stdout, stderr")
    );
    let (status, _) = h.get("/exec/default/web/nope?command=ls&stdout=1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn exec_tty_resize_and_runtime_errors() {
    let h = start().await;
    h.runtime.script_streams(
        "app",
        Arc::new(|_, mut io| {
            Box::pin(async move {
                let size = match &mut io.resize {
                    Some(rx) => rx.recv().await,
                    None => None,
                };
                let msg = match size {
                    Some(s) => format!("{}x{} tty={}", s.width, s.height, io.tty),
                    None => "no resize".into(),
                };
                if let Some(w) = &mut io.stdout {
                    let _ = w.write_all(msg.as_bytes()).await;
                }
                0
            })
        }),
    );
    let mut ws = h
        .websocket("/exec/default/web/uid-1/app?command=sh&stdin=1&stdout=1&stderr=1&tty=1", "v5.channel.k8s.io")
        .await;
    ws.send(Message::Binary([&[4u8][..], br#"{"Width":120,"Height":40}"#].concat().into())).await.unwrap();
    let (out, err, status) = collect(&mut ws).await;
    assert_eq!((out.as_str(), err.as_str()), ("120x40 tty=true", ""));
    assert_eq!(status["status"], "Success");

    // A runtime failure is an InternalError status.
    h.runtime.fail_next("exec", skiff_runtime::RuntimeError::Internal("no such binary".into()));
    let mut ws = h.websocket("/exec/default/web/app?command=x&stdout=1", "v5.channel.k8s.io").await;
    let (_, _, status) = collect(&mut ws).await;
    assert_eq!(status["reason"], "InternalError");
    assert!(status["message"].as_str().unwrap().contains("no such binary"));

    // attach goes to the container's streams.
    let mut ws = h.websocket("/attach/default/web/app?stdout=1&tty=1&stdin=1", "v5.channel.k8s.io").await;
    ws.send(Message::Binary([&[4u8][..], br#"{"Width":80,"Height":24}"#].concat().into())).await.unwrap();
    let (out, _, status) = collect(&mut ws).await;
    assert_eq!((out.as_str(), &status["status"]), ("80x24 tty=true", &serde_json::json!("Success")));
}

/// A SPDY client over any byte stream, as spdystream is to kubectl.
struct SpdyClient<T> {
    codec: Codec,
    io: T,
    buf: BytesMut,
}

impl<T: AsyncRead + AsyncWrite + Unpin> SpdyClient<T> {
    fn new(io: T) -> Self {
        SpdyClient { codec: Codec::new(), io, buf: BytesMut::new() }
    }
    async fn send(&mut self, f: Frame) {
        let mut b = BytesMut::new();
        self.codec.encode(&f, &mut b).unwrap();
        self.io.write_all(&b).await.unwrap();
        self.io.flush().await.unwrap();
    }
    async fn recv(&mut self) -> Frame {
        loop {
            if let Some(f) = self.codec.decode(&mut self.buf).unwrap() {
                if matches!(f, Frame::WindowUpdate { .. }) {
                    continue;
                }
                return f;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read_buf(&mut self.buf))
                .await
                .expect("frame in time")
                .unwrap();
            assert!(n > 0, "connection closed");
        }
    }
    async fn open(&mut self, id: u32, kind: &str, port: u16, request: &str) {
        let headers = vec![
            ("streamtype".to_string(), kind.to_string()),
            ("port".to_string(), port.to_string()),
            ("requestid".to_string(), request.to_string()),
        ];
        self.send(Frame::SynStream {
            stream_id: id,
            associated: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers,
        })
        .await;
    }

    /// One forwarded connection: open error + data streams, send `payload`, half-close, and
    /// return (data received, error stream text).
    async fn forward(&mut self, first_id: u32, port: u16, payload: &[u8]) -> (Vec<u8>, String) {
        let (err_id, data_id) = (first_id, first_id + 2);
        self.open(err_id, "error", port, &first_id.to_string()).await;
        self.send(Frame::Data { stream_id: err_id, fin: true, data: bytes::Bytes::new() }).await;
        self.open(data_id, "data", port, &first_id.to_string()).await;
        self.send(Frame::Data { stream_id: data_id, fin: false, data: bytes::Bytes::copy_from_slice(payload) }).await;
        self.send(Frame::Data { stream_id: data_id, fin: true, data: bytes::Bytes::new() }).await;
        let (mut data, mut error) = (Vec::new(), Vec::new());
        let (mut data_done, mut error_done) = (false, false);
        while !(data_done && error_done) {
            match self.recv().await {
                Frame::SynReply { .. } => {}
                Frame::Data { stream_id, fin, data: d } if stream_id == data_id => {
                    data.extend_from_slice(&d);
                    data_done |= fin;
                }
                Frame::Data { stream_id, fin, data: d } if stream_id == err_id => {
                    error.extend_from_slice(&d);
                    error_done |= fin;
                }
                f => panic!("unexpected {f:?}"),
            }
        }
        (data, String::from_utf8(error).unwrap())
    }
}

/// A TCP server answering "echo:" + what it read, then closing.
async fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                let _ = c.read_to_end(&mut got).await;
                let _ = c.write_all(&[b"echo:".as_slice(), &got].concat()).await;
            });
        }
    });
    addr
}

/// A WebSocket as a byte stream (the client side of the SPDY tunnel).
fn ws_bytes(ws: tokio_tungstenite::WebSocketStream<Tls>) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (mut sink, mut stream) = ws.split();
    let (mut r, mut w) = tokio::io::split(theirs);
    tokio::spawn(async move {
        while let Some(Ok(Message::Binary(b))) = stream.next().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 || sink.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                break;
            }
        }
    });
    ours
}

#[tokio::test]
async fn port_forward_tunnelled_in_a_websocket() {
    let h = start().await;
    h.runtime.forward_port(8080, echo_server().await);
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    h.runtime.forward_port(9090, closed);
    let ws = h.websocket("/portForward/default/web", "SPDY/3.1+portforward.k8s.io").await;
    let mut c = SpdyClient::new(ws_bytes(ws));
    let (data, error) = c.forward(1, 8080, b"hello").await;
    assert_eq!((data.as_slice(), error.as_str()), (&b"echo:hello"[..], ""));
    // A second connection on the same session.
    let big = vec![b'x'; 200 * 1024];
    let (data, _) = c.forward(5, 8080, &big).await;
    assert_eq!(data.len(), 5 + big.len());
    // Nothing listens on 9090: the error stream says so.
    let (data, error) = c.forward(9, 9090, b"x").await;
    assert!(data.is_empty());
    assert!(error.starts_with("error forwarding port 9090 to pod "), "{error}");
}

#[tokio::test]
async fn port_forward_on_a_plain_spdy_upgrade() {
    let h = start().await;
    h.runtime.forward_port(8080, echo_server().await);
    let req = Request::post("/portForward/default/web")
        .header("host", "k")
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "portforward.k8s.io")
        .body(String::new())
        .unwrap();
    let resp = h.request(Some(h.apiserver()), req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(resp.headers().get("x-stream-protocol-version").unwrap(), "portforward.k8s.io");
    let upgraded = hyper::upgrade::on(resp).await.unwrap();
    let mut c = SpdyClient::new(TokioIo::new(upgraded));
    // Without requestID headers, old clients' streams pair by id (error 1, data 3).
    c.send(Frame::SynStream {
        stream_id: 1,
        associated: 0,
        priority: 0,
        fin: true,
        unidirectional: false,
        headers: vec![("streamtype".into(), "error".into()), ("port".into(), "8080".into())],
    })
    .await;
    c.send(Frame::SynStream {
        stream_id: 3,
        associated: 0,
        priority: 0,
        fin: false,
        unidirectional: false,
        headers: vec![("streamtype".into(), "data".into()), ("port".into(), "8080".into())],
    })
    .await;
    c.send(Frame::Data { stream_id: 3, fin: true, data: bytes::Bytes::from_static(b"old") }).await;
    let mut data = Vec::new();
    loop {
        match c.recv().await {
            Frame::Data { stream_id: 3, fin, data: d } => {
                data.extend_from_slice(&d);
                if fin {
                    break;
                }
            }
            Frame::SynReply { stream_id, .. } => assert!(stream_id == 1 || stream_id == 3),
            Frame::Data { stream_id: 1, .. } => {}
            f => panic!("{f:?}"),
        }
    }
    assert_eq!(data, b"echo:old");
    assert_eq!(header(&vec![("port".into(), "1".into())], "PORT"), Some("1"));

    // No protocol header: refused; unknown pod: 404.
    let req = Request::post("/portForward/default/web")
        .header("host", "k")
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .body(String::new())
        .unwrap();
    assert_eq!(h.request(Some(h.apiserver()), req).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(h.get("/portForward/default/other").await.0, StatusCode::NOT_FOUND);
}

/// Unmodified kubectl 1.32 through the API server's proxy to this kubelet server:
/// `logs`, `exec -i` (stdin, exit code) and `port-forward` (SPDY tunnelled in a WebSocket).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_through_the_api_server() {
    use skiff_apiserver::pki::Pki;
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&dir.path().join("tls"), &["127.0.0.1".to_string()]).unwrap();

    // The kubelet, with the cluster's CA.
    let h = start_with_ca(Ca::from_pki(&pki)).await;
    h.runtime.forward_port(8080, echo_server().await);
    h.runtime.script_streams(
        "app",
        Arc::new(|cmd, mut io| {
            Box::pin(async move {
                let mut input = Vec::new();
                if let Some(r) = &mut io.stdin {
                    let _ = r.read_to_end(&mut input).await;
                }
                if let Some(w) = &mut io.stdout {
                    let _ = w.write_all(&input.to_ascii_uppercase()).await;
                    let _ = w.write_all(cmd.join(" ").as_bytes()).await;
                }
                3
            })
        }),
    );

    // The API server.
    let mut authn = skiff_apiserver::Authenticator::new();
    authn.add_token("admin-token", "admin", &["system:masters"]);
    let shutdown = CancellationToken::new();
    let api = skiff_apiserver::ApiServer::start(
        skiff_apiserver::Config::default(),
        Arc::new(skiff_store::MemoryStore::new()),
        authn,
        Box::new(skiff_apiserver::MastersAuthorizer),
        shutdown.clone(),
    )
    .await
    .unwrap();
    api.set_kubelet_client(skiff_apiserver::KubeletClient::from_pki(&pki).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    tokio::spawn(skiff_apiserver::serve(
        api.clone(),
        listener,
        skiff_apiserver::tls_config(&pki).unwrap(),
        shutdown.clone(),
    ));
    let send = |method: Method, path: String, body: serde_json::Value| {
        let api = api.clone();
        async move {
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", "Bearer admin-token")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let resp = api.handle(req).await;
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&body));
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        }
    };
    let mut node =
        send(Method::POST, "/api/v1/nodes".into(), serde_json::json!({"metadata": {"name": "node-1"}})).await;
    node["status"] = serde_json::json!({
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": h.addr.port()}},
    });
    send(Method::PUT, "/api/v1/nodes/node-1/status".into(), node).await;
    let mut pod = send(
        Method::POST,
        "/api/v1/namespaces/default/pods".into(),
        serde_json::json!({"metadata": {"name": "web"}, "spec": {"nodeName": "node-1",
            "containers": [{"name": "app", "image": "busybox"}]}}),
    )
    .await;
    // kubectl port-forward wants a running pod.
    pod["status"]["phase"] = serde_json::json!("Running");
    send(Method::PUT, "/api/v1/namespaces/default/pods/web/status".into(), pod).await;

    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{api_addr}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: admin-token\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n",
            b64(&pki.ca_cert_pem)
        ),
    )
    .unwrap();
    let kubectl = skiff_testkit::kubectl_binary();
    let run = |args: Vec<&'static str>, stdin: &'static str| {
        let (kubectl, kubeconfig) = (kubectl.clone(), kubeconfig.clone());
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = std::process::Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(&args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("kubectl 1.32 runs");
            let mut input = child.stdin.take().unwrap();
            input.write_all(stdin.as_bytes()).unwrap();
            drop(input);
            let out = child.wait_with_output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
    };

    let (code, out, err) = run(vec!["logs", "web"], "").await.unwrap();
    assert_eq!((code, out.as_str()), (Some(0), "app one\napp two\n"), "{err}");
    let (code, out, err) = run(vec!["logs", "web", "--tail=1", "--timestamps"], "").await.unwrap();
    assert_eq!((code, out.as_str()), (Some(0), "2023-11-14T22:13:21Z app two\n"), "{err}");
    let (code, _, err) = run(vec!["logs", "web", "-c", "nope"], "").await.unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("container nope is not valid for pod web"), "{err}");

    let (code, out, err) = run(vec!["exec", "-i", "web", "--", "tr", "a-z"], "hello").await.unwrap();
    assert_eq!(out, "HELLOtr a-z", "{err}");
    assert_eq!(code, Some(3), "kubectl exits with the command's code: {err}");

    // port-forward: kubectl prints the local port, then forwards connections.
    let mut child = tokio::process::Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["port-forward", "pod/web", ":8080", "--address", "127.0.0.1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    tokio::spawn(async move {
        let mut e = String::new();
        let _ = stderr.read_to_string(&mut e).await;
        if !e.is_empty() {
            eprintln!("kubectl port-forward stderr: {e}");
        }
    });
    let mut first = String::new();
    tokio::time::timeout(Duration::from_secs(20), tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut first))
        .await
        .expect("kubectl port-forward starts")
        .unwrap();
    // "Forwarding from 127.0.0.1:PORT -> 8080"
    let port: u16 = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port-forward output {first:?}"));
    for msg in ["first", "second"] {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        c.write_all(msg.as_bytes()).await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = String::new();
        tokio::time::timeout(Duration::from_secs(10), c.read_to_string(&mut got)).await.expect("echo in time").unwrap();
        assert_eq!(got, format!("echo:{msg}"));
    }
    child.kill().await.unwrap();
    shutdown.cancel();
}
