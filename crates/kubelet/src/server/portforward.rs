//! `kubectl port-forward`: the `portforward.k8s.io` protocol over a SPDY/3.1 session.
//!
//! kubectl 1.32 first asks for a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io` and
//! tunnels SPDY frames in its binary messages (client-go `tools/portforward`
//! `tunneling_connection.go`: plain bytes, no channel prefix); if that upgrade fails it falls
//! back to a plain `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io`.
//!
//! For every forwarded connection the client opens two streams with headers `streamType`
//! (`error` first, then `data`), `port` and `requestID`. Once both are there we dial the port
//! inside the pod's network namespace ([`skiff_runtime::Runtime::port_forward`]) and copy
//! bytes both ways; a failure is written as text on the error stream, which is then closed.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use skiff_runtime::Runtime;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::spdy::{self, Stream, header as spdy_header};
use super::wsstream::normal_close;
use super::{Kubelet, text};

/// The WebSocket subprotocol of SPDY tunnelled in a WebSocket.
pub(crate) const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The stream protocol negotiated in `X-Stream-Protocol-Version`.
pub(crate) const PROTOCOL: &str = "portforward.k8s.io";

/// Serve `/portForward/{ns}/{pod}`.
pub(crate) async fn serve(kubelet: &Arc<Kubelet>, ns: &str, pod: &str, req: Request<Body>) -> Response<Body> {
    let Some(sandbox) = kubelet.pods.sandbox(ns, pod) else {
        return text(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let upgrade = req.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let runtime = kubelet.runtime.clone();
    if upgrade.eq_ignore_ascii_case("websocket") {
        let (mut parts, _) = req.into_parts();
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(u) => u.protocols([TUNNEL_PROTOCOL]),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("unable to upgrade connection: {e}")),
        };
        if ws.selected_protocol().is_none() {
            return text(
                StatusCode::BAD_REQUEST,
                format!("unable to upgrade connection: port-forward needs subprotocol {TUNNEL_PROTOCOL}"),
            );
        }
        return ws.on_upgrade(move |ws| async move {
            session(spdy::serve(tunnel(ws)), runtime, sandbox).await;
        });
    }
    if upgrade.eq_ignore_ascii_case("SPDY/3.1") {
        let offered = req
            .headers()
            .get_all("x-stream-protocol-version")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == PROTOCOL);
        if !offered {
            return text(
                StatusCode::FORBIDDEN,
                format!("unable to upgrade: unable to negotiate protocol: client supports none of [{PROTOCOL}]"),
            );
        }
        let on_upgrade = hyper::upgrade::on(req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => session(spdy::serve(TokioIo::new(upgraded)), runtime, sandbox).await,
                Err(e) => tracing::debug!(error = %e, "port-forward: SPDY upgrade failed"),
            }
        });
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        h.insert("X-Stream-Protocol-Version", HeaderValue::from_static(PROTOCOL));
        return r;
    }
    text(StatusCode::BAD_REQUEST, "unable to upgrade: missing upgrade headers in request")
}

/// A byte stream over a WebSocket's binary messages (what the tunnelled SPDY runs on).
pub(crate) fn tunnel(ws: WebSocket) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut sink, mut stream) = ws.split();
    let (mut r, mut w) = tokio::io::split(theirs);
    tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            match m {
                Message::Binary(b) if w.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = w.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink.send(Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sink.send(Message::Close(Some(normal_close()))).await;
    });
    ours
}

/// The two streams of one forwarded connection, as they arrive.
#[derive(Default)]
struct Pair {
    data: Option<Stream>,
    error: Option<Stream>,
}

/// The request a stream belongs to: its `requestID` header, or for clients too old to send
/// one, derived from the stream id the way upstream does (error = id, data = id - 2).
fn request_id(s: &Stream, kind: &str) -> String {
    match spdy_header(s.headers(), "requestID") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ if kind == "data" => s.id().saturating_sub(2).to_string(),
        _ => s.id().to_string(),
    }
}

/// Pair up incoming streams and forward each pair until the session ends.
pub(crate) async fn session(
    mut streams: tokio::sync::mpsc::Receiver<Stream>,
    runtime: Arc<dyn Runtime>,
    sandbox: String,
) {
    let mut pending: HashMap<String, Pair> = HashMap::new();
    while let Some(mut s) = streams.recv().await {
        let kind = spdy_header(s.headers(), "streamType").unwrap_or("").to_string();
        let id = request_id(&s, &kind);
        let pair = pending.entry(id.clone()).or_default();
        match kind.as_str() {
            "data" if pair.data.is_none() => pair.data = Some(s),
            "error" if pair.error.is_none() => pair.error = Some(s),
            _ => {
                tracing::debug!(kind, request = id, "port-forward: unexpected stream");
                s.reset(spdy::RST_PROTOCOL_ERROR);
                continue;
            }
        }
        if pair.data.is_some() && pair.error.is_some() {
            let Some(Pair { data: Some(data), error: Some(error) }) = pending.remove(&id) else { continue };
            tokio::spawn(forward(data, error, runtime.clone(), sandbox.clone()));
        }
    }
}

async fn forward(mut data: Stream, mut error: Stream, runtime: Arc<dyn Runtime>, sandbox: String) {
    let port = spdy_header(data.headers(), "port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
    let result = match port {
        None => {
            Err(format!("invalid port {:?} in port-forward request", spdy_header(data.headers(), "port").unwrap_or("")))
        }
        Some(port) => match runtime.port_forward(&sandbox, port).await {
            Ok(mut conn) => {
                let _ = tokio::io::copy_bidirectional(&mut data, &mut conn).await;
                Ok(())
            }
            Err(e) => Err(format!("error forwarding port {port} to pod {sandbox}, uid : {e}")),
        },
    };
    if let Err(msg) = result {
        tracing::debug!(error = %msg, "port-forward failed");
        let _ = error.write_all(msg.as_bytes()).await;
    }
    let _ = data.shutdown().await;
    let _ = error.shutdown().await;
}
