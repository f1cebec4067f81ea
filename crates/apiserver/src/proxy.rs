//! The subresources served by a node's kubelet: `pods/log`, `pods/exec`, `pods/attach`,
//! `pods/portforward` and `nodes/proxy`. As upstream (`pkg/registry/core/pod/strategy.go`
//! `LogLocation`/`streamLocation`, `pkg/registry/core/node/rest/proxy.go`) the API server
//! validates the request against the pod (container name, node assigned), finds the kubelet
//! (`spec.nodeName` → the Node's InternalIP and `status.daemonEndpoints.kubeletEndpoint`),
//! and proxies: logs as a streamed body, upgrades (WebSocket exec/attach, SPDY port-forward)
//! by forwarding the upgrade request and, once both sides switched protocols, splicing bytes.
//! The kubelet speaks the streaming protocols itself.
//!
//! The kubelet is reached over TLS, its serving certificate verified against the cluster CA,
//! presenting the `kube-apiserver-kubelet-client` certificate ([`KubeletClient`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;

use crate::ApiServer;
use crate::registry::{self, Ctx};
use crate::status::{ApiError, ApiResult};

/// The kubelet's default port.
const DEFAULT_KUBELET_PORT: u16 = 10250;

/// Why a kubelet client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A PEM input does not parse or the key does not fit the certificate.
    #[error("{what}: {reason}")]
    Tls { what: &'static str, reason: String },
}

/// How the API server connects to kubelets: TLS verifying them against the cluster CA,
/// authenticating with the kubelet client certificate.
#[derive(Clone)]
pub struct KubeletClient {
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for KubeletClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletClient").finish_non_exhaustive()
    }
}

impl KubeletClient {
    /// From the cluster CA and the client certificate and key (PEM).
    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<KubeletClient, ProxyError> {
        let err = |what: &'static str| move |e: String| ProxyError::Tls { what, reason: e };
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let c = c.map_err(|e| err("CA certificate")(e.to_string()))?;
            roots.add(c).map_err(|e| err("CA certificate")(e.to_string()))?;
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| err("client certificate")(e.to_string()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| err("client key")(e.to_string()))?;
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| err("TLS versions")(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| err("client certificate")(e.to_string()))?;
        // Upgrades are HTTP/1.1.
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient { tls: Arc::new(cfg) })
    }

    /// The client of the cluster PKI (`kubelet-client.crt` in the TLS directory).
    pub fn from_pki(pki: &crate::pki::Pki) -> Result<KubeletClient, ProxyError> {
        Self::new(&pki.ca_cert_pem, &pki.kubelet_client_cert_pem, &pki.kubelet_client_key_pem)
    }
}

/// The subresources served by kubelets. They are not in the resource registry (whose
/// OpenAPI operations would then include upstream's connect operations), so discovery does
/// not list them yet.
pub(crate) fn is_kubelet_subresource(group: &str, plural: &str, sub: &str) -> bool {
    group.is_empty()
        && match plural {
            "pods" => matches!(sub, "log" | "exec" | "attach" | "portforward" | "proxy"),
            "nodes" | "services" => sub == "proxy",
            _ => false,
        }
}

/// What a proxied request carries besides the parsed URL: the raw URI (repeated query
/// parameters such as `command` must reach the kubelet as sent) and the client's upgrade.
pub(crate) struct Passthrough {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) upgrade: Option<OnUpgrade>,
}

fn parse(bytes: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(ApiError::internal)
}

/// The names of a pod's containers in upstream's `VisitContainers` order: init, regular,
/// ephemeral.
fn container_names(pod: &Value) -> Vec<String> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod.pointer(&format!("/spec/{k}")).and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

/// Upstream's `validateContainer`: default to the only container, or insist on a valid name.
fn validate_container(pod: &Value, name: &str, container: Option<&str>) -> ApiResult<String> {
    match container.filter(|c| !c.is_empty()) {
        Some(c) => {
            if container_names(pod).iter().any(|n| n == c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}")))
            }
        }
        None => {
            let regular: Vec<&str> = pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(|cs| cs.iter().filter_map(|c| c.get("name").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            match regular.as_slice() {
                [one] => Ok(one.to_string()),
                [] => Err(ApiError::bad_request(format!("a container name must be specified for pod {name}"))),
                _ => Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    container_names(pod).join(" ")
                ))),
            }
        }
    }
}

/// For `pods/log` of a container that never ran: the kubelet's answer, given here from the
/// pod status so it does not need a round trip (upstream's `validateContainerLogStatus`).
fn waiting_error(pod: &Value, name: &str, container: &str) -> Option<ApiError> {
    let status = ["containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"]
        .iter()
        .filter_map(|k| pod.pointer(&format!("/status/{k}")).and_then(Value::as_array))
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container))?;
    if status.pointer("/lastState/terminated").is_some() {
        return None;
    }
    let reason = status.pointer("/state/waiting")?.get("reason").and_then(Value::as_str).unwrap_or("");
    let why = match reason {
        "ErrImagePull" => "image can't be pulled".to_string(),
        "ImagePullBackOff" => "trying and failing to pull image".to_string(),
        r => r.to_string(),
    };
    Some(ApiError::bad_request(format!("container {container:?} in pod {name:?} is waiting to start: {why}")))
}

/// Where a node's kubelet listens.
async fn kubelet_address(server: &Arc<ApiServer>, node: &str) -> ApiResult<(String, u16)> {
    let res = server.resources().find("", "v1", "nodes").ok_or_else(|| ApiError::internal("no nodes resource"))?;
    let ctx = Ctx { server, res, namespace: None };
    let n = parse(&registry::get(&ctx, node, None).await?)?;
    let addresses = n.pointer("/status/addresses").and_then(Value::as_array).cloned().unwrap_or_default();
    let pick = |ty: &str| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(ty))
            .and_then(|a| a.get("address").and_then(Value::as_str))
            .map(String::from)
    };
    let host = pick("InternalIP")
        .or_else(|| pick("ExternalIP"))
        .or_else(|| pick("Hostname"))
        .ok_or_else(|| ApiError::bad_request(format!("node {node} has no address to reach its kubelet")))?;
    let port = n
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok((host, port))
}

/// Headers worth passing to the kubelet: the upgrade handshake and content negotiation.
fn forwarded_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (k, v) in from {
        let name = k.as_str();
        let keep = matches!(name, "connection" | "upgrade" | "accept" | "content-type" | "user-agent")
            || name.starts_with("sec-websocket-")
            || name == "x-stream-protocol-version";
        if keep {
            to.append(k.clone(), v.clone());
        }
    }
}

/// Proxy to the kubelet at `host:port`: `path_and_query` with the client's method and
/// (for upgrades) handshake headers.
async fn proxy(
    server: &Arc<ApiServer>,
    host: &str,
    port: u16,
    path_and_query: &str,
    pass: Passthrough,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response<Body>> {
    let client = server
        .kubelet_client
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .ok_or_else(|| ApiError::service_unavailable("the API server has no kubelet client credentials"))?;
    let dial_err = |e: String| ApiError::internal(format!("error dialing backend: {e}"));
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| dial_err(format!("dial tcp {host}:{port}: i/o timeout")))?
        .map_err(|e| dial_err(format!("dial tcp {host}:{port}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(host.to_string()).map_err(|e| dial_err(e.to_string()))?,
    };
    let tls = tokio_rustls::TlsConnector::from(client.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| dial_err(format!("tls: {e}")))?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(|e| dial_err(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    let host_header = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut req = Request::builder().method(pass.method.clone()).uri(path_and_query);
    if let Some(h) = req.headers_mut() {
        forwarded_headers(headers, h);
        if let Ok(v) = HeaderValue::from_str(&host_header) {
            h.insert(header::HOST, v);
        }
    }
    let req = req.body(body).map_err(ApiError::internal)?;
    let mut resp = send.send_request(req).await.map_err(|e| dial_err(e.to_string()))?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = pass.upgrade else {
            return Err(ApiError::bad_request("the kubelet switched protocols on a request that asked for none"));
        };
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (client, backend) = match tokio::join!(client_upgrade, backend_upgrade) {
                (Ok(c), Ok(b)) => (c, b),
                (c, b) => {
                    tracing::debug!(client = c.is_ok(), backend = b.is_ok(), "proxied upgrade failed");
                    return;
                }
            };
            let (mut client, mut backend) = (TokioIo::new(client), TokioIo::new(backend));
            let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
        });
        let mut out = Response::new(Body::empty());
        *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *out.headers_mut() = resp.headers().clone();
        return Ok(out);
    }
    let (parts, incoming) = resp.into_parts();
    let mut out = Response::new(Body::new(incoming));
    *out.status_mut() = parts.status;
    for k in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::TRANSFER_ENCODING] {
        if let Some(v) = parts.headers.get(&k) {
            out.headers_mut().insert(k, v.clone());
        }
    }
    Ok(out)
}

/// Turn a failed `pods/log` response of the kubelet into the error upstream reports
/// (`GenericHttpResponseChecker`).
async fn check_log_response(resp: Response<Body>, name: &str) -> ApiResult<Response<Body>> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.map(|b| b.to_bytes()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).trim_end().to_string();
    Err(match status {
        StatusCode::BAD_REQUEST => ApiError::bad_request(text),
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal(text),
        StatusCode::NOT_FOUND => ApiError::new(StatusCode::NOT_FOUND, "NotFound", text)
            .with_details_json(serde_json::json!({"name": name, "kind": "pods/log"})),
        other => ApiError::new(other, "InternalError", text),
    })
}

impl ApiError {
    fn with_details_json(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Serve `pods/{log,exec,attach,portforward}` of pod `name` in the context's namespace.
pub(crate) async fn pod(
    ctx: &Ctx<'_>,
    name: &str,
    subresource: &str,
    query: &crate::request::Query,
    headers: &HeaderMap,
    pass: Passthrough,
) -> ApiResult<Response<Body>> {
    let pod = parse(&registry::get(ctx, name, None).await?)?;
    let ns = ctx.namespace.unwrap_or_default().to_string();
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").to_string();
    let raw_query = pass.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let path = match subresource {
        "log" => {
            let container = validate_container(&pod, name, query.get("container"))?;
            if node.is_empty() {
                // Upstream streams nothing for a pod that is not scheduled yet.
                return Ok(Response::new(Body::empty()));
            }
            if !query.bool("previous")?
                && let Some(e) = waiting_error(&pod, name, &container)
            {
                return Err(e);
            }
            format!("/containerLogs/{ns}/{name}/{container}{}", log_query(query)?)
        }
        "exec" | "attach" => {
            let container = validate_container(&pod, name, query.get("container"))?;
            if node.is_empty() {
                return Err(ApiError::bad_request(format!("pod {name} does not have a host assigned")));
            }
            format!("/{subresource}/{ns}/{name}/{container}{raw_query}")
        }
        "portforward" => {
            if node.is_empty() {
                return Err(ApiError::bad_request(format!("pod {name} does not have a host assigned")));
            }
            format!("/portForward/{ns}/{name}{raw_query}")
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    let (host, port) = kubelet_address(ctx.server, &node).await?;
    let resp = proxy(ctx.server, &host, port, &path, pass, headers, Body::empty()).await?;
    if subresource == "log" { check_log_response(resp, name).await } else { Ok(resp) }
}

/// The kubelet query of `pods/log`, from the validated options (upstream re-encodes them).
fn log_query(q: &crate::request::Query) -> ApiResult<String> {
    let mut params = Vec::new();
    for flag in ["follow", "previous", "timestamps"] {
        if q.bool(flag)? {
            params.push(format!("{flag}=true"));
        }
    }
    for (k, min) in [("sinceSeconds", 1), ("tailLines", 0), ("limitBytes", 1)] {
        if let Some(v) = q.int(k)? {
            if v < min {
                let rel = if min == 0 { "greater than or equal to 0" } else { "greater than 0" };
                return Err(ApiError::bad_request(format!("{k}: Invalid value: {v}: must be {rel}")));
            }
            params.push(format!("{k}={v}"));
        }
    }
    if let Some(t) = q.nonempty("sinceTime") {
        let ts: jiff::Timestamp = t
            .parse()
            .map_err(|_| ApiError::bad_request(format!("sinceTime: Invalid value: {t:?}: must be RFC 3339")))?;
        if q.nonempty("sinceSeconds").is_some() {
            return Err(ApiError::bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified"));
        }
        let s = ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        params.push(format!("sinceTime={}", s.replace(':', "%3A")));
    }
    Ok(if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) })
}

/// Serve `nodes/{name}/proxy/{path}`: any method, the rest of the path and the query to the
/// node's kubelet.
pub(crate) async fn node(
    server: &Arc<ApiServer>,
    name: &str,
    headers: &HeaderMap,
    pass: Passthrough,
    body: Body,
) -> ApiResult<Response<Body>> {
    let marker = format!("/nodes/{name}/proxy");
    let full = pass.uri.path().to_string();
    let rest = full.split_once(&marker).map(|(_, r)| r).unwrap_or("");
    let rest = if rest.is_empty() { "/" } else { rest };
    let query = pass.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let (host, port) = kubelet_address(server, name).await?;
    proxy(server, &host, port, &format!("{rest}{query}"), pass, headers, body).await
}

pub(crate) mod backend;

#[cfg(test)]
mod tests;
