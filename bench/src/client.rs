//! The one HTTP client stack used against both peers: hyper 1 HTTP/1.1 connections, one
//! keep-alive connection per task, over TLS with the admin client certificate for skiff and
//! over plain TCP for etcd's HTTP/JSON gateway. Using the same stack for both keeps the
//! client's own cost equal on both sides of every ratio.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

/// Where to connect and how: cheap to clone, one per server.
#[derive(Clone)]
pub(crate) struct Endpoint {
    addr: SocketAddr,
    /// `None` for plain HTTP (etcd's gateway).
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The Host header: both servers ignore it, but HTTP/1.1 requires one.
    host: HeaderValue,
}

impl Endpoint {
    /// Plain HTTP to `addr`.
    pub(crate) fn plain(addr: SocketAddr) -> Result<Endpoint> {
        Ok(Endpoint { addr, tls: None, host: HeaderValue::try_from(addr.to_string())? })
    }

    /// HTTPS to `addr`, trusting `ca` and presenting the client certificate `cert`/`key`
    /// (PEM files, as skiff writes them under `<data-dir>/tls`).
    pub(crate) fn tls(addr: SocketAddr, ca: &Path, cert: &Path, key: &Path) -> Result<Endpoint> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))? {
            roots.add(c.with_context(|| format!("parsing {}", ca.display()))?)?;
        }
        let chain = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing {}", cert.display()))?;
        if chain.is_empty() {
            bail!("{} holds no certificate", cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("client certificate")?;
        let name = ServerName::IpAddress(addr.ip().into());
        Ok(Endpoint {
            addr,
            tls: Some((TlsConnector::from(Arc::new(cfg)), name)),
            host: HeaderValue::try_from(addr.to_string())?,
        })
    }

    /// Opens a new connection (TCP, then TLS when configured, then the HTTP/1.1 handshake).
    pub(crate) async fn connect(&self) -> Result<Conn> {
        let tcp = TcpStream::connect(self.addr).await.with_context(|| format!("connecting to {}", self.addr))?;
        // Requests are small and latency is what we measure: no Nagle delay.
        tcp.set_nodelay(true)?;
        let io = match &self.tls {
            Some((connector, name)) => {
                Either::Left(connector.connect(name.clone(), tcp).await.context("TLS handshake")?)
            }
            None => Either::Right(tcp),
        };
        let (sender, conn) = http1::handshake(TokioIo::new(io)).await.context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // The connection ends when its sender is dropped or the server closes it; either
            // way the next request on it reports the error.
            let _ = conn.await;
        });
        Ok(Conn { sender, host: self.host.clone() })
    }
}

/// One keep-alive HTTP/1.1 connection; requests on it are sequential.
pub(crate) struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    /// Sends a request and returns the response with its body still streaming (for watches).
    pub(crate) async fn send(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Response<Incoming>> {
        self.send_as(method, path, body, "application/json").await
    }

    /// Like [`Conn::send`] with an explicit body content type (patches, apply).
    pub(crate) async fn send_as(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
    ) -> Result<Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone())
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        self.sender.ready().await.context("connection closed")?;
        self.sender.send_request(req).await.context("sending a request")
    }

    /// Sends a request and reads the whole response body.
    pub(crate) async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = self.send(method, path, body).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await.context("reading a response body")?.to_bytes();
        Ok((status, body))
    }

    /// [`Conn::send_as`], reading the whole body; a non-2xx status is an error.
    pub(crate) async fn call_as_ok(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
    ) -> Result<Bytes> {
        let resp = self.send_as(method.clone(), path, body, content_type).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await.context("reading a response body")?.to_bytes();
        if !status.is_success() {
            bail!("{method} {path}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(500)]));
        }
        Ok(body)
    }

    /// Like [`Conn::call`], but a non-2xx status is an error carrying the body.
    pub(crate) async fn call_ok(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Bytes> {
        let (status, body) = self.call(method.clone(), path, body).await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(500)]));
        }
        Ok(body)
    }
}

/// Splits a byte stream into concatenated or newline-separated JSON documents, as watch
/// streams (skiff's and the etcd gateway's) deliver them, across arbitrary chunk boundaries.
#[derive(Default)]
pub(crate) struct JsonStream {
    buf: Vec<u8>,
}

impl JsonStream {
    /// Appends `chunk` and returns every complete document now buffered.
    pub(crate) fn push<T: serde::de::DeserializeOwned>(&mut self, chunk: &[u8]) -> Result<Vec<T>> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut docs = serde_json::Deserializer::from_slice(&self.buf).into_iter::<T>();
        let consumed = loop {
            let before = docs.byte_offset();
            match docs.next() {
                Some(Ok(v)) => out.push(v),
                Some(Err(e)) if e.is_eof() => break before,
                Some(Err(e)) => return Err(e).context("a malformed document in a watch stream"),
                None => break docs.byte_offset(),
            }
        };
        self.buf.drain(..consumed);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_stream_splits_across_chunks() {
        let mut s = JsonStream::default();
        let a: Vec<serde_json::Value> = s.push(b"{\"a\":1}\n{\"b\"").unwrap();
        assert_eq!(a, vec![serde_json::json!({"a": 1})]);
        let b: Vec<serde_json::Value> = s.push(b":2}{\"c\":3}\n").unwrap();
        assert_eq!(b, vec![serde_json::json!({"b": 2}), serde_json::json!({"c": 3})]);
        let none: Vec<serde_json::Value> = s.push(b"  \n").unwrap();
        assert!(none.is_empty());
        let bad: Result<Vec<serde_json::Value>> = s.push(b"}garbage");
        assert!(bad.is_err());
    }
}
