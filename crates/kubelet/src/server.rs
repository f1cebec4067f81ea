//! The kubelet API (HTTPS, port 10250): what the API server proxies `pods/log`,
//! `pods/exec`, `pods/attach`, `pods/portforward` and `nodes/proxy` to, with upstream's
//! routes (`pkg/kubelet/server/server.go`):
//!
//! - `GET /containerLogs/{ns}/{pod}/{container}` ([`logs`]): CRI log files, with `follow`,
//!   `previous`, `tailLines`, `timestamps`, `sinceSeconds`, `sinceTime`, `limitBytes`.
//! - `/exec/{ns}/{pod}[/{uid}]/{container}` and `/attach/...` ([`wsstream`]): the WebSocket
//!   channel protocol `v5.channel.k8s.io` (and v4) kubectl 1.32 speaks.
//! - `/portForward/{ns}/{pod}[/{uid}]` ([`portforward`]): `portforward.k8s.io` over SPDY/3.1
//!   ([`spdy`]), tunnelled in a WebSocket or on a plain `Upgrade: SPDY/3.1`.
//! - `/healthz`, `/pods` (a PodList), `/stats/summary` and `/metrics/resource` ([`stats`]).
//!
//! Authentication is by client certificate only: TLS asks for one and verifies it against the
//! cluster CA; a request is served only for the API server's kubelet client
//! (`kube-apiserver-kubelet-client`) or members of `system:masters`. Everything else gets 401
//! (no certificate) or 403 — an open kubelet port is a root shell on every node.
//!
//! The kubelet's pod bookkeeping is behind [`PodLookup`]; the containers behind
//! [`skiff_runtime::Runtime`].

mod logs;
mod portforward;
mod spdy;
mod stats;
mod wsstream;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use skiff_runtime::Runtime;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The CN of the client certificate the API server presents to kubelets.
pub const APISERVER_CLIENT_CN: &str = "kube-apiserver-kubelet-client";
/// Members of this group may use the kubelet API too (cluster admins, `skiff` itself).
pub const MASTERS_GROUP: &str = "system:masters";

/// What the server needs to know about the pods this kubelet runs. The kubelet's pod
/// workers implement it.
pub trait PodLookup: Send + Sync + 'static {
    /// The sandbox id of a pod on this node (namespace, name), if it has one.
    fn sandbox(&self, namespace: &str, pod: &str) -> Option<String>;
    /// The runtime container id of a container: the current instance, or with `previous`
    /// the last terminated one.
    fn container(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Option<String>;
    /// The pods this kubelet runs (for `GET /pods`, as a PodList, and for stats), with the
    /// status the kubelet last computed.
    fn pods(&self) -> Vec<k8s_openapi::api::core::v1::Pod>;
}

/// Why the server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A PEM input does not parse or does not fit (key/certificate mismatch, bad CA).
    #[error("{what}: {reason}")]
    Tls { what: &'static str, reason: String },
}

fn tls_err(what: &'static str) -> impl FnOnce(String) -> ServerError {
    move |reason| ServerError::Tls { what, reason }
}

/// Build the kubelet's TLS configuration: serve `cert_pem`/`key_pem`, ask every client for a
/// certificate and verify it against `ca_pem` (the cluster CA). A client without one still
/// completes the handshake and gets 401, so the error is readable; one with a certificate of
/// another CA fails the handshake.
pub fn tls_config(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let c = c.map_err(|e| tls_err("CA certificate")(e.to_string()))?;
        roots.add(c).map_err(|e| tls_err("CA certificate")(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(tls_err("CA certificate")("no certificate in PEM".into()));
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| tls_err("client verifier")(e.to_string()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err("serving certificate")(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| tls_err("serving key")(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_err("TLS versions")(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls_err("serving certificate")(e.to_string()))?;
    // HTTP/1.1 only: every streaming protocol here is an HTTP/1.1 upgrade.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Who is calling: the subject of the verified client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) user: String,
    pub(crate) groups: Vec<String>,
}

impl Identity {
    pub(crate) fn from_der(der: &[u8]) -> Option<Identity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let user = subject.iter_common_name().next()?.as_str().ok()?.to_string();
        let groups = subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
        Some(Identity { user, groups })
    }

    fn allowed(&self) -> bool {
        self.user == APISERVER_CLIENT_CN || self.groups.iter().any(|g| g == MASTERS_GROUP)
    }
}

/// The server's state, shared by all connections.
pub(crate) struct Kubelet {
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) pods: Arc<dyn PodLookup>,
    pub(crate) node_name: String,
    pub(crate) stats: stats::Sampler,
}

/// Serve the kubelet API on `listener` until `shutdown`; open streams then get a few seconds.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    runtime: Arc<dyn Runtime>,
    pods: Arc<dyn PodLookup>,
    node_name: String,
    shutdown: CancellationToken,
) {
    let kubelet = Arc::new(Kubelet { runtime, pods, node_name, stats: stats::Sampler::default() });
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
    let builder = Arc::new(builder);
    loop {
        let (tcp, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "kubelet API: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, kubelet, builder, watcher) =
            (acceptor.clone(), kubelet.clone(), builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "kubelet API: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let identity =
                tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|c| Identity::from_der(c));
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (kubelet, identity) = (kubelet.clone(), identity.clone());
                async move { Ok::<_, std::convert::Infallible>(kubelet.handle(req.map(Body::new), identity.as_ref()).await) }
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, "kubelet API: connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await.is_err() {
        tracing::info!("kubelet API: connections still open after 5s; closing them");
    }
}

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Body::from(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

pub(crate) fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The query string as (key, value) pairs, percent-decoded, repeated keys kept in order
/// (`command=sh&command=-c`).
pub(crate) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Go's `strconv.ParseBool`, which upstream's query decoding uses.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Some(false),
        _ => None,
    }
}

impl Kubelet {
    /// Serve one request from a caller with `identity` (the whole API without a socket).
    pub(crate) async fn handle(self: &Arc<Self>, req: Request<Body>, identity: Option<&Identity>) -> Response<Body> {
        let Some(identity) = identity else {
            return text(StatusCode::UNAUTHORIZED, "Unauthorized");
        };
        let path = req.uri().path().to_string();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if !identity.allowed() {
            // Upstream names the node subresource each path maps to.
            let sub = match segments.first().copied() {
                Some("stats") => "stats",
                Some("metrics") => "metrics",
                Some("healthz") => "healthz",
                _ => "proxy",
            };
            let verb = if req.method() == Method::GET { "get" } else { "create" };
            return text(
                StatusCode::FORBIDDEN,
                format!("Forbidden (user={}, verb={verb}, resource=nodes, subresource={sub})", identity.user),
            );
        }
        let get = req.method() == Method::GET || req.method() == Method::HEAD;
        match segments.as_slice() {
            ["healthz"] if get => text(StatusCode::OK, "ok"),
            ["pods"] if get => {
                let items = self.pods.pods();
                json(
                    StatusCode::OK,
                    &serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}),
                )
            }
            ["stats", "summary"] if get => json(StatusCode::OK, &stats::summary(self).await),
            ["metrics", "resource"] if get => {
                let mut r = text(StatusCode::OK, stats::resource_metrics(self).await);
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
                r
            }
            ["containerLogs", ns, pod, container] if get => {
                logs::serve(self, ns, pod, container, req.uri().query()).await
            }
            [kind @ ("exec" | "attach"), ns, pod, container] | [kind @ ("exec" | "attach"), ns, pod, _, container]
                if get || req.method() == Method::POST =>
            {
                let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
                let kind = if *kind == "exec" { wsstream::Kind::Exec } else { wsstream::Kind::Attach };
                wsstream::serve(self, kind, &ns, &pod, &container, req).await
            }
            ["portForward", ns, pod] | ["portForward", ns, pod, _] if get || req.method() == Method::POST => {
                let (ns, pod) = (ns.to_string(), pod.to_string());
                portforward::serve(self, &ns, &pod, req).await
            }
            _ => text(StatusCode::NOT_FOUND, "404 page not found"),
        }
    }
}

#[cfg(test)]
mod tests;
