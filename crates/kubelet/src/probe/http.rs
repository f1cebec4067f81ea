//! HTTP(S) GET for `httpGet` probes and lifecycle hooks, like upstream's `pkg/probe/http`: no
//! keep-alive, no certificate verification (the kubelet cannot know the pod's CA), the
//! `kube-probe/1.33` User-Agent, redirects followed only while they stay on the same host,
//! at most 10 KiB of body read.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::HTTPGetAction;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{KUBE_VERSION, MAX_OUTPUT, ProbeOutcome, dial_error, join_host_port};

/// Go's client gives up after this many redirects.
const MAX_REDIRECTS: usize = 10;

/// A URL as the probe needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Url {
    scheme: String,
    /// Without brackets for IPv6.
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, join_host_port(&self.host, self.port), self.path)
    }
}

/// A prepared GET.
#[derive(Clone, Debug)]
pub(super) struct Request {
    url: Url,
    /// Headers to send, after upstream's defaults (User-Agent, Accept) are applied.
    headers: Vec<(String, String)>,
    /// The `Host` header when the action sets one.
    host_header: Option<String>,
}

impl Request {
    /// Upstream's `NewRequestForHTTPGetAction`; `purpose` is `probe` or `lifecycle` (the
    /// User-Agent is `kube-<purpose>/1.33`).
    pub(super) fn from_action(action: &HTTPGetAction, host: &str, port: u16, purpose: &str) -> Request {
        let scheme = action.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let mut path = action.path.clone().unwrap_or_default();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        let mut headers = Vec::new();
        let mut host_header = None;
        for h in action.http_headers.iter().flatten() {
            if h.name.eq_ignore_ascii_case("host") {
                host_header = Some(h.value.clone());
            } else {
                headers.push((h.name.clone(), h.value.clone()));
            }
        }
        let has = |headers: &[(String, String)], name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if !has(&headers, "user-agent") {
            headers.push(("User-Agent".into(), format!("kube-{purpose}/{KUBE_VERSION}")));
        }
        if !has(&headers, "accept") {
            headers.push(("Accept".into(), "*/*".into()));
        } else {
            // An Accept header set to "" means: send none.
            headers.retain(|(k, v)| !(k.eq_ignore_ascii_case("accept") && v.is_empty()));
        }
        Request {
            url: Url { scheme, host: host.trim_matches(['[', ']']).to_string(), port, path },
            headers,
            host_header,
        }
    }
}

/// What came back.
#[derive(Debug)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// The probe verdict of a GET: 2xx and 3xx pass (a 3xx left unfollowed with a warning), anything
/// else fails.
pub(super) async fn probe(req: &Request, timeout: Duration) -> ProbeOutcome {
    match get(req, timeout).await {
        Err(e) => ProbeOutcome::Failure(e),
        Ok(r) if (200..300).contains(&r.status) => ProbeOutcome::Success,
        Ok(r) if (300..400).contains(&r.status) => ProbeOutcome::Warning(format!(
            "Probe terminated redirects, Response body: {}",
            String::from_utf8_lossy(&r.body)
        )),
        Ok(r) => ProbeOutcome::Failure(format!("HTTP probe failed with statuscode: {}", r.status)),
    }
}

/// GET with same-host redirects followed; `Err` is worded like Go's client (`Get "url": …`).
pub(super) async fn get(req: &Request, timeout: Duration) -> Result<Response, String> {
    let first = req.url.clone();
    match tokio::time::timeout(timeout, follow(req)).await {
        Ok(r) => r,
        Err(_) => {
            Err(format!("Get \"{first}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
        }
    }
}

async fn follow(req: &Request) -> Result<Response, String> {
    let mut url = req.url.clone();
    let mut redirects = 0;
    loop {
        let (resp, location) = exchange(&url, req).await.map_err(|e| format!("Get \"{url}\": {e}"))?;
        let redirect = matches!(resp.status, 301 | 302 | 303 | 307 | 308);
        let Some(next) = location.filter(|_| redirect).and_then(|l| resolve(&url, &l)) else { return Ok(resp) };
        // Upstream's RedirectChecker: another host ends the chain with this response.
        if next.host != req.url.host {
            return Ok(resp);
        }
        redirects += 1;
        if redirects >= MAX_REDIRECTS {
            return Err(format!("Get \"{next}\": stopped after {MAX_REDIRECTS} redirects"));
        }
        url = next;
    }
}

/// A `Location` relative to `base`.
fn resolve(base: &Url, location: &str) -> Option<Url> {
    if location.contains("://") || location.starts_with("//") {
        let absolute = if location.starts_with("//") { format!("{}:{location}", base.scheme) } else { location.into() };
        let uri: http::Uri = absolute.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = if scheme == "https" { 443 } else { 80 };
        let host = uri.host()?.trim_matches(['[', ']']).to_string();
        let path = uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
        return Some(Url { port: uri.port_u16().unwrap_or(default_port), scheme, host, path });
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path.split('?').next().unwrap_or("/");
        let dir = &dir[..dir.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{location}")
    };
    Some(Url { path, ..base.clone() })
}

/// One request/response on a fresh connection; returns the response and its `Location`.
async fn exchange(url: &Url, req: &Request) -> Result<(Response, Option<String>), String> {
    let addr = join_host_port(&url.host, url.port);
    let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| dial_error(&addr, &e))?;
    match url.scheme.as_str() {
        "http" => send(tcp, url, req).await,
        "https" => {
            let name = rustls_pki_types::ServerName::try_from(url.host.clone()).map_err(|e| e.to_string())?;
            let config = tls_config().ok_or("no TLS configuration with the ring provider")?;
            let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| e.to_string())?;
            send(tls, url, req).await
        }
        other => Err(format!("unsupported protocol scheme {other:?}")),
    }
}

async fn send<S>(io: S, url: &Url, req: &Request) -> Result<(Response, Option<String>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let host = req.host_header.clone().unwrap_or_else(|| {
        let default_port = if url.scheme == "https" { 443 } else { 80 };
        if url.port == default_port { bracket(&url.host) } else { join_host_port(&url.host, url.port) }
    });
    let mut builder = http::Request::get(url.path.as_str()).header(http::header::HOST, host);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    // No keep-alive, as upstream's probe transport.
    let request =
        builder.header(http::header::CONNECTION, "close").body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
    let resp = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let location = resp.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut body = resp.into_body();
    let mut data = Vec::new();
    while data.len() < MAX_OUTPUT {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    data.extend_from_slice(&chunk);
                }
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => break,
        }
    }
    data.truncate(MAX_OUTPUT);
    conn.abort();
    Ok((Response { status, body: data }, location))
}

fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

/// TLS without certificate verification, like upstream's `InsecureSkipVerify` probe transport.
fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(config))
        })
        .clone()
}

/// Accepts any certificate; still checks the handshake signatures so the session is sound.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(path: &str) -> Url {
        Url { scheme: "http".into(), host: "10.0.0.1".into(), port: 8080, path: path.into() }
    }

    #[test]
    fn resolves_locations() {
        let base = url("/a/b?x=1");
        assert_eq!(resolve(&base, "/c").unwrap(), url("/c"));
        assert_eq!(resolve(&base, "c?y").unwrap(), url("/a/c?y"));
        let abs = resolve(&base, "https://example.com/z").unwrap();
        assert_eq!(
            (abs.scheme.as_str(), abs.host.as_str(), abs.port, abs.path.as_str()),
            ("https", "example.com", 443, "/z")
        );
        let v6 = resolve(&base, "//[fd00::1]:81").unwrap();
        assert_eq!((v6.host.as_str(), v6.port, v6.path.as_str()), ("fd00::1", 81, "/"));
        assert_eq!(v6.to_string(), "http://[fd00::1]:81/");
    }

    #[test]
    fn request_defaults_like_upstream() {
        let action: HTTPGetAction = serde_json::from_value(serde_json::json!({
            "port": 80, "path": "healthz", "scheme": "HTTPS",
            "httpHeaders": [{"name": "Host", "value": "example.com"}, {"name": "X-A", "value": "1"}]
        }))
        .unwrap();
        let r = Request::from_action(&action, "10.0.0.1", 80, "probe");
        assert_eq!(r.url.to_string(), "https://10.0.0.1:80/healthz");
        assert_eq!(r.host_header.as_deref(), Some("example.com"));
        assert!(r.headers.contains(&("User-Agent".into(), "kube-probe/1.33".into())));
        assert!(r.headers.contains(&("Accept".into(), "*/*".into())));
        let action: HTTPGetAction = serde_json::from_value(serde_json::json!({
            "port": 80, "httpHeaders": [{"name": "accept", "value": ""}, {"name": "user-agent", "value": "mine"}]
        }))
        .unwrap();
        let r = Request::from_action(&action, "10.0.0.1", 80, "lifecycle");
        assert_eq!(r.headers, vec![("user-agent".to_string(), "mine".to_string())]);
        assert_eq!(r.url.to_string(), "http://10.0.0.1:80/");
    }
}
