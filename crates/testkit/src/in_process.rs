//! The API server inside the test process, over the in-memory store, driven without a socket
//! through the same `handle` entry point the HTTPS listener uses.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use skiff_apiserver::{ApiServer, Authenticator, Config, MastersAuthorizer};
use tokio_util::sync::CancellationToken;

/// The admin bearer token of in-process servers.
pub const ADMIN_TOKEN: &str = "in-process-admin";
/// A token for a user outside `system:masters`.
pub const USER_TOKEN: &str = "in-process-user";

/// An in-process API server; shut down on drop.
pub struct InProcess {
    pub server: Arc<ApiServer>,
    pub store: Arc<dyn skiff_store::Store>,
    shutdown: CancellationToken,
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (Value::Null if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl InProcess {
    pub async fn start() -> InProcess {
        Self::start_with(Config::default(), Arc::new(skiff_store::MemoryStore::new())).await
    }

    pub async fn start_with(config: Config, store: Arc<dyn skiff_store::Store>) -> InProcess {
        let mut authn = Authenticator::new();
        authn.add_token(ADMIN_TOKEN, "admin", &["system:masters"]);
        authn.add_token(USER_TOKEN, "bob", &[]);
        let shutdown = CancellationToken::new();
        let server = ApiServer::start(config, store.clone(), authn, Box::new(MastersAuthorizer), shutdown.clone())
            .await
            .expect("in-process API server starts");
        InProcess { server, store, shutdown }
    }

    /// Send a request as the admin. `body` is sent as JSON unless `content_type` says otherwise.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let bytes = body.map(|b| Bytes::from(serde_json::to_vec(&b).unwrap_or_default()));
        self.raw(method, path, bytes, "application/json", ADMIN_TOKEN, None).await
    }

    /// Send a request with full control over body, content type, token and Accept header.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
        token: &str,
        accept: Option<&str>,
    ) -> Reply {
        let mut b = Request::builder().method(method).uri(path).header("content-type", content_type);
        if !token.is_empty() {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        if let Some(a) = accept {
            b = b.header("accept", a);
        }
        let req = b.body(body.map(Body::from).unwrap_or_else(Body::empty)).expect("valid request");
        let resp = self.server.handle(req).await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        Reply { status, headers, body }
    }

    /// Open a watch and return the response body as a stream of lines.
    pub async fn watch(&self, path: &str) -> (StatusCode, tokio::sync::mpsc::Receiver<Value>) {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .body(Body::empty())
            .expect("valid request");
        let resp = self.server.handle(req).await;
        let status = resp.status();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let mut body = resp.into_body();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    while let Some(pos) = buf.iter().position(|&c| c == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        if let Ok(v) = serde_json::from_slice::<Value>(&line)
                            && tx.send(v).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        (status, rx)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
