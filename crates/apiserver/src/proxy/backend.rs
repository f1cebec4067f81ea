//! `pods/{name}/proxy/{path}` and `services/{name}/proxy/{path}`: HTTP(S) to a pod, or to one
//! of a Service's ready endpoints, through the node network (upstream's `ResourceLocation` of
//! pods and services and its `UpgradeAwareHandler`, without the upgrade). The name may carry a
//! scheme and a port: `[https:]name[:port]`. As upstream, HTTPS backends are not verified (the
//! API server has no way to know a pod's certificate), and the client's credentials are not
//! passed on.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Request, Response, header};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::Value;

use super::Passthrough;
use crate::registry::{self, Ctx};
use crate::status::{ApiError, ApiResult};

/// `[scheme:]name[:port]` → (scheme, name, port); upstream's `ParseResourceLocation`.
pub(crate) fn split_name(s: &str) -> ApiResult<(&str, &str, &str)> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [name] => Ok(("", name, "")),
        [name, port] => Ok(("", name, port)),
        [scheme, name, port] if matches!(*scheme, "http" | "https" | "") => Ok((scheme, name, port)),
        _ => Err(ApiError::bad_request(format!("invalid service request {s:?}"))),
    }
}

/// The path after `/<plural>/<name>/proxy`, at least `/`, with the query.
fn rest_of(pass: &Passthrough, plural: &str, raw_name: &str) -> String {
    let marker = format!("/{plural}/{raw_name}/proxy");
    let full = pass.uri.path();
    let rest = full.split_once(&marker).map(|(_, r)| r).unwrap_or("");
    let rest = if rest.is_empty() { "/" } else { rest };
    let query = pass.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{rest}{query}")
}

/// Where `pods/<raw>/proxy` goes: the pod's IP and the port asked for, else its first
/// container port, else none (port 80).
pub(crate) fn pod_location(pod: &Value, port: &str) -> ApiResult<(String, u16)> {
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::service_unavailable(format!("address not allowed: pod {name} has no IP")))?;
    let port = if port.is_empty() {
        pod.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_u64))
            .map(|p| p as u16)
            .unwrap_or(80)
    } else {
        port.parse().map_err(|_| ApiError::bad_request(format!("invalid port {port:?}")))?
    };
    Ok((ip.to_string(), port))
}

/// Where `services/<raw>/proxy` goes: a ready address of the Service port named (or numbered)
/// `port` (the only port when none is given), from its Endpoints.
pub(crate) fn service_location(svc: &Value, endpoints: Option<&Value>, port: &str) -> ApiResult<(String, u16)> {
    let name = svc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let ports: Vec<&Value> = svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten().collect();
    let chosen = ports.iter().find(|p| {
        let pname = p["name"].as_str().unwrap_or_default();
        port.is_empty() && ports.len() == 1
            || pname == port
            || p["port"].as_u64().is_some_and(|n| n.to_string() == port)
    });
    let Some(chosen) = chosen else {
        return Err(ApiError::service_unavailable(format!("no service port {port:?} found for service {name:?}")));
    };
    let port_name = chosen["name"].as_str().unwrap_or_default();
    let mut candidates = Vec::new();
    for subset in endpoints.and_then(|e| e["subsets"].as_array()).into_iter().flatten() {
        let Some(p) = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"].as_str().unwrap_or_default() == port_name)
            .and_then(|p| p["port"].as_u64())
        else {
            continue;
        };
        for a in subset["addresses"].as_array().into_iter().flatten() {
            if let Some(ip) = a["ip"].as_str() {
                candidates.push((ip.to_string(), p as u16));
            }
        }
    }
    if candidates.is_empty() {
        return Err(ApiError::service_unavailable(format!("no endpoints available for service {name:?}")));
    }
    Ok(candidates.swap_remove(rand::random_range(0..candidates.len())))
}

/// Serve `pods/<raw>/proxy/...` or `services/<raw>/proxy/...`.
pub(crate) async fn serve(
    ctx: &Ctx<'_>,
    raw_name: &str,
    headers: &HeaderMap,
    pass: Passthrough,
    body: Body,
) -> ApiResult<Response<Body>> {
    let (scheme, name, port) = split_name(raw_name)?;
    let plural = ctx.info().plural;
    let obj: Value = serde_json::from_slice(&registry::get(ctx, name, None).await?).map_err(ApiError::internal)?;
    let (host, port) = if plural == "pods" {
        pod_location(&obj, port)?
    } else {
        let eps_res = ctx
            .server
            .resources()
            .find("", "v1", "endpoints")
            .ok_or_else(|| ApiError::internal("endpoints are not registered"))?;
        let eps_ctx = Ctx { server: ctx.server, res: eps_res, namespace: ctx.namespace };
        let eps = registry::get(&eps_ctx, name, None).await.ok().and_then(|b| serde_json::from_slice(&b).ok());
        service_location(&obj, eps.as_ref(), port)?
    };
    let path = rest_of(&pass, plural, raw_name);
    forward(scheme == "https", &host, port, &path, pass, headers, body).await
}

/// Headers not passed on: the client's credentials and hop-by-hop headers.
fn passed(name: &str) -> bool {
    !matches!(
        name,
        "authorization"
            | "host"
            | "connection"
            | "upgrade"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "impersonate-user"
            | "impersonate-group"
    )
}

async fn forward(
    https: bool,
    host: &str,
    port: u16,
    path: &str,
    pass: Passthrough,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Response<Body>> {
    let dial_err = |e: String| ApiError::service_unavailable(format!("error trying to reach service: {e}"));
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| dial_err(format!("dial tcp {host}:{port}: i/o timeout")))?
        .map_err(|e| dial_err(format!("dial tcp {host}:{port}: {e}")))?;
    let host_header = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    let mut req = Request::builder().method(pass.method.clone()).uri(path);
    if let Some(h) = req.headers_mut() {
        for (k, v) in headers {
            if passed(k.as_str()) {
                h.append(k.clone(), v.clone());
            }
        }
        if let Ok(v) = HeaderValue::from_str(&host_header) {
            h.insert(header::HOST, v);
        }
    }
    let req = req.body(body).map_err(ApiError::internal)?;
    let resp = if https {
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_string()).map_err(|e| dial_err(e.to_string()))?,
        };
        let tls = tokio_rustls::TlsConnector::from(insecure_tls())
            .connect(name, tcp)
            .await
            .map_err(|e| dial_err(format!("tls: {e}")))?;
        send(TokioIo::new(tls), req).await?
    } else {
        send(TokioIo::new(tcp), req).await?
    };
    let (parts, incoming) = resp.into_parts();
    let mut out = Response::new(Body::new(incoming));
    *out.status_mut() = parts.status;
    for (k, v) in &parts.headers {
        if passed(k.as_str()) || k == header::TRANSFER_ENCODING {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    Ok(out)
}

async fn send<T>(io: T, req: Request<Body>) -> ApiResult<Response<hyper::body::Incoming>>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let dial_err = |e: String| ApiError::service_unavailable(format!("error trying to reach service: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| dial_err(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(|e| dial_err(e.to_string()))
}

/// TLS that accepts any certificate: upstream proxies to HTTPS pods without verifying them.
fn insecure_tls() -> Arc<rustls::ClientConfig> {
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _end_entity: &rustls_pki_types::CertificateDer<'_>,
            _intermediates: &[rustls_pki_types::CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|b| b.dangerous().with_custom_certificate_verifier(Arc::new(AnyCert(provider))).with_no_client_auth())
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCert(Arc::new(rustls::crypto::ring::default_provider()))))
                .with_no_client_auth()
        });
    Arc::new(cfg)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_with_scheme_and_port() {
        assert_eq!(split_name("web").unwrap(), ("", "web", ""));
        assert_eq!(split_name("web:8080").unwrap(), ("", "web", "8080"));
        assert_eq!(split_name("https:web:443").unwrap(), ("https", "web", "443"));
        assert!(split_name("ftp:web:21").is_err());
        assert!(split_name("a:b:c:d").is_err());
    }

    #[test]
    fn pod_and_service_locations() {
        let pod = json!({"metadata": {"name": "p"}, "status": {"podIP": "10.42.0.5"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}});
        assert_eq!(pod_location(&pod, "").unwrap(), ("10.42.0.5".into(), 8080));
        assert_eq!(pod_location(&pod, "9000").unwrap(), ("10.42.0.5".into(), 9000));
        assert!(pod_location(&json!({"metadata": {"name": "p"}}), "").unwrap_err().message.contains("has no IP"));
        let svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 81}]}});
        let eps = json!({"subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}]}]});
        assert_eq!(service_location(&svc, Some(&eps), "http").unwrap(), ("10.42.0.5".into(), 8080));
        assert_eq!(service_location(&svc, Some(&eps), "81").unwrap(), ("10.42.0.5".into(), 9090));
        assert!(service_location(&svc, Some(&eps), "").is_err(), "two ports: one must be named");
        let e = service_location(&svc, None, "http").unwrap_err();
        assert_eq!(e.message, "no endpoints available for service \"web\"");
    }
}
