use std::sync::Arc;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::pki::{KUBELET_CLIENT_CN, Pki};
use crate::{ApiServer, Authenticator, Config, KubeletClient, MastersAuthorizer};

const ADMIN: &str = "admin-token";
const USER: &str = "user-token";

async fn api() -> (Arc<ApiServer>, CancellationToken) {
    let mut authn = Authenticator::new();
    authn.add_token(ADMIN, "admin", &["system:masters"]);
    authn.add_token(USER, "bob", &[]);
    let shutdown = CancellationToken::new();
    let store = Arc::new(skiff_store::MemoryStore::new());
    let server =
        ApiServer::start(Config::default(), store, authn, Box::new(MastersAuthorizer), shutdown.clone()).await.unwrap();
    (server, shutdown)
}

async fn call(
    server: &Arc<ApiServer>,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = server.handle(req).await;
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body).ok().and_then(|v| v["message"].as_str().map(String::from)).unwrap_or_default()
}

async fn pod(server: &Arc<ApiServer>, name: &str, node: Option<&str>, containers: &[&str], status: Option<Value>) {
    let mut spec =
        json!({"containers": containers.iter().map(|c| json!({"name": c, "image": "busybox"})).collect::<Vec<_>>()});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec});
    let (s, b) = call(server, Method::POST, "/api/v1/namespaces/default/pods", ADMIN, Some(obj)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    if let Some(st) = status {
        let mut v: Value = serde_json::from_str(&b).unwrap();
        for (k, val) in st.as_object().unwrap() {
            v["status"][k] = val.clone();
        }
        let path = format!("/api/v1/namespaces/default/pods/{name}/status");
        let (s, b) = call(server, Method::PUT, &path, ADMIN, Some(v)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
}

async fn node(server: &Arc<ApiServer>, name: &str, port: u16) {
    let obj = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
    let (s, b) = call(server, Method::POST, "/api/v1/nodes", ADMIN, Some(obj)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut v: Value = serde_json::from_str(&b).unwrap();
    v["status"] = json!({
        "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    });
    let (s, b) = call(server, Method::PUT, &format!("/api/v1/nodes/{name}/status"), ADMIN, Some(v)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn validates_like_upstream_before_proxying() {
    let (server, _shutdown) = api().await;
    pod(&server, "two", Some("n1"), &["a", "b"], None).await;
    pod(&server, "pending", None, &["c"], None).await;
    let waiting = json!({"containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "image": "busybox",
        "imageID": "", "state": {"waiting": {"reason": "ContainerCreating"}}}]});
    pod(&server, "waiting", Some("n1"), &["c"], Some(waiting)).await;
    let base = "/api/v1/namespaces/default/pods";

    let (s, b) = call(&server, Method::GET, &format!("{base}/nope/log"), ADMIN, None).await;
    assert_eq!((s, message(&b).as_str()), (StatusCode::NOT_FOUND, "pods \"nope\" not found"));
    let (s, b) = call(&server, Method::GET, &format!("{base}/two/log"), ADMIN, None).await;
    assert_eq!(
        (s, message(&b).as_str()),
        (StatusCode::BAD_REQUEST, "a container name must be specified for pod two, choose one of: [a b]")
    );
    let (s, b) =
        call(&server, Method::POST, &format!("{base}/two/exec?container=z&command=ls&stdout=1"), ADMIN, None).await;
    assert_eq!((s, message(&b).as_str()), (StatusCode::BAD_REQUEST, "container z is not valid for pod two"));
    let (s, b) = call(&server, Method::POST, &format!("{base}/pending/exec?command=ls&stdout=1"), ADMIN, None).await;
    assert_eq!((s, message(&b).as_str()), (StatusCode::BAD_REQUEST, "pod pending does not have a host assigned"));
    let (s, b) = call(&server, Method::POST, &format!("{base}/pending/portforward"), ADMIN, None).await;
    assert_eq!((s, message(&b).as_str()), (StatusCode::BAD_REQUEST, "pod pending does not have a host assigned"));
    // Logs of a pod not yet scheduled: empty, as upstream.
    assert_eq!(
        call(&server, Method::GET, &format!("{base}/pending/log"), ADMIN, None).await,
        (StatusCode::OK, String::new())
    );
    let (s, b) = call(&server, Method::GET, &format!("{base}/waiting/log"), ADMIN, None).await;
    assert_eq!(
        (s, message(&b).as_str()),
        (StatusCode::BAD_REQUEST, "container \"c\" in pod \"waiting\" is waiting to start: ContainerCreating")
    );
    let (s, b) = call(&server, Method::GET, &format!("{base}/two/log?container=a&tailLines=-1"), ADMIN, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(message(&b).starts_with("tailLines"), "{b}");
    // Only GET reads logs; other users are refused; the node must exist.
    assert_eq!(
        call(&server, Method::POST, &format!("{base}/two/log?container=a"), ADMIN, None).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let (s, _) = call(&server, Method::GET, &format!("{base}/two/log?container=a"), USER, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = call(&server, Method::GET, &format!("{base}/two/log?container=a"), ADMIN, None).await;
    assert_eq!((s, message(&b).as_str()), (StatusCode::NOT_FOUND, "nodes \"n1\" not found"));
    // With a node but no kubelet client credentials: 503.
    node(&server, "n1", 1).await;
    let (s, _) = call(&server, Method::GET, &format!("{base}/two/log?container=a"), ADMIN, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

/// A stand-in kubelet: TLS requiring a client certificate of the cluster CA; logs answer with
/// the path they were asked for; upgrades echo after a line naming the path.
async fn fake_kubelet(pki: &Pki) -> u16 {
    let (cert, key) = pki.issue("node-1", &[], &["127.0.0.1".to_string()], true).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca_cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap(),
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let der = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap();
                let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
                let cn = parsed.subject().iter_common_name().next().unwrap().as_str().unwrap().to_string();
                let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    let cn = cn.clone();
                    async move {
                        let target = req.uri().to_string();
                        let mut resp = http::Response::new(Body::empty());
                        if cn != KUBELET_CLIENT_CN {
                            *resp.status_mut() = StatusCode::FORBIDDEN;
                        } else if target.starts_with("/containerLogs/default/two/b") {
                            *resp.status_mut() = StatusCode::BAD_REQUEST;
                            *resp.body_mut() =
                                Body::from("previous terminated container \"b\" in pod \"two\" not found");
                        } else if req.headers().contains_key("upgrade") {
                            let on = hyper::upgrade::on(&mut req);
                            tokio::spawn(async move {
                                let mut io = TokioIo::new(on.await.unwrap());
                                io.write_all(format!("{target}\n").as_bytes()).await.unwrap();
                                let mut buf = [0u8; 64];
                                while let Ok(n) = io.read(&mut buf).await {
                                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            });
                            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                            resp.headers_mut().insert("connection", "Upgrade".parse().unwrap());
                            resp.headers_mut().insert("upgrade", "echo".parse().unwrap());
                        } else {
                            *resp.body_mut() = Body::from(format!("{} {target}\n", req.method()));
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn proxies_logs_upgrades_and_node_paths_to_the_kubelet() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &["127.0.0.1".to_string()]).unwrap();
    let (server, shutdown) = api().await;
    server.set_kubelet_client(KubeletClient::from_pki(&pki).unwrap());
    let port = fake_kubelet(&pki).await;
    node(&server, "n1", port).await;
    pod(&server, "two", Some("n1"), &["a", "b"], None).await;
    let base = "/api/v1/namespaces/default/pods/two";

    // Logs: options re-encoded for the kubelet, body streamed back.
    let (s, b) = call(
        &server,
        Method::GET,
        &format!("{base}/log?container=a&follow=true&tailLines=3&sinceTime=2024-01-02T03:04:05Z&bogus=1"),
        ADMIN,
        None,
    )
    .await;
    assert_eq!(
        (s, b.as_str()),
        (
            StatusCode::OK,
            "GET /containerLogs/default/two/a?follow=true&tailLines=3&sinceTime=2024-01-02T03%3A04%3A05Z\n"
        )
    );
    // A kubelet 400 becomes a BadRequest Status with its text.
    let (s, b) = call(&server, Method::GET, &format!("{base}/log?container=b&previous=true"), ADMIN, None).await;
    assert_eq!(
        (s, message(&b).as_str()),
        (StatusCode::BAD_REQUEST, "previous terminated container \"b\" in pod \"two\" not found")
    );
    // nodes/proxy: the rest of the path and the query.
    let (s, b) = call(&server, Method::GET, "/api/v1/nodes/n1/proxy/stats/summary?only_cpu=true", ADMIN, None).await;
    assert_eq!((s, b.as_str()), (StatusCode::OK, "GET /stats/summary?only_cpu=true\n"));

    // An upgrade through the real listener: 101 from both sides, then bytes both ways.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(crate::serve(server.clone(), listener, crate::tls_config(&pki).unwrap(), shutdown.clone()));
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca_cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            CertificateDer::pem_slice_iter(pki.admin_cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap(),
            PrivateKeyDer::from_pem_slice(pki.admin_key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(rustls_pki_types::ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn.with_upgrades());
    let req = Request::get(format!("{base}/exec?container=a&command=sh&command=-c&stdin=1&stdout=1"))
        .header("host", "skiff")
        .header("connection", "Upgrade")
        .header("upgrade", "echo")
        .body(String::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(resp.headers().get("upgrade").unwrap(), "echo");
    let mut io = TokioIo::new(hyper::upgrade::on(resp).await.unwrap());
    io.write_all(b"ping").await.unwrap();
    let want = "/exec/default/two/a?container=a&command=sh&command=-c&stdin=1&stdout=1\nping";
    let mut got = vec![0u8; want.len()];
    io.read_exact(&mut got).await.unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), want);
    shutdown.cancel();
}
