//! `exec` and `attach` over WebSocket: the channel protocol of
//! `k8s.io/apimachinery/pkg/util/httpstream/wsstream` and client-go's WebSocket executor.
//!
//! Every binary message starts with a channel byte: 0 stdin (client → us), 1 stdout,
//! 2 stderr, 3 error (one JSON `metav1.Status` when the command ends: Success, or Failure
//! with reason `NonZeroExitCode` and cause `ExitCode`), 4 resize (JSON `{"Width","Height"}`).
//! `v5.channel.k8s.io` adds a close message — channel 255, payload the stream id — which
//! half-closes stdin (`kubectl cp` relies on it to end the tar stream).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use skiff_runtime::cri::{StreamIo, TerminalSize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{Kubelet, parse_bool, query_pairs, text};

pub(crate) const V5: &str = "v5.channel.k8s.io";
pub(crate) const V4: &str = "v4.channel.k8s.io";

pub(crate) const STDIN: u8 = 0;
pub(crate) const STDOUT: u8 = 1;
pub(crate) const STDERR: u8 = 2;
pub(crate) const ERROR: u8 = 3;
pub(crate) const RESIZE: u8 = 4;
pub(crate) const CLOSE: u8 = 255;

/// Which verb a stream request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Exec,
    Attach,
}

/// The streaming options of the request (`PodExecOptions` / `PodAttachOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) tty: bool,
    pub(crate) command: Vec<String>,
}

impl Options {
    /// Parse and validate as upstream's `remotecommand.NewOptions` does.
    pub(crate) fn parse(query: Option<&str>) -> Result<Options, String> {
        let mut o = Options::default();
        for (k, v) in query_pairs(query) {
            let flag = || parse_bool(&v).ok_or_else(|| format!("invalid value for {k}: {v:?}"));
            match k.as_str() {
                "stdin" | "input" => o.stdin = flag()?,
                "stdout" | "output" => o.stdout = flag()?,
                "stderr" | "error" => o.stderr = flag()?,
                "tty" => o.tty = flag()?,
                "command" => o.command.push(v),
                _ => {}
            }
        }
        if !o.stdin && !o.stdout && !o.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        // A terminal has no separate stderr.
        if o.tty {
            o.stderr = false;
        }
        Ok(o)
    }
}

/// `metav1.Status` for how the command ended, as upstream's remotecommand writes it.
pub(crate) fn status_json(command: &[String], result: &Result<i32, String>) -> Value {
    match result {
        Ok(0) => json!({"metadata": {}, "status": "Success"}),
        Ok(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                command.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Err(e) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {e}"),
            "reason": "InternalError",
            "details": {"causes": [{"message": e}]},
            "code": 500,
        }),
    }
}

/// Serve `/exec/...` or `/attach/...`: validate, then upgrade to the channel protocol.
pub(crate) async fn serve(
    kubelet: &Arc<Kubelet>,
    kind: Kind,
    ns: &str,
    pod: &str,
    container: &str,
    req: Request<Body>,
) -> Response<Body> {
    let opts = match Options::parse(req.uri().query()) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(id) = kubelet.pods.container(ns, pod, container, false) else {
        return text(StatusCode::NOT_FOUND, format!("container not found ({container:?})"));
    };
    let is_ws = req
        .headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_ws {
        return text(
            StatusCode::BAD_REQUEST,
            format!("unable to upgrade connection: {kind:?} needs a WebSocket upgrade ({V5} or {V4})").to_lowercase(),
        );
    }
    let (mut parts, _body) = req.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("unable to upgrade connection: {e}")),
    };
    let upgrade = upgrade.protocols([V5, V4]);
    let Some(protocol) = upgrade.selected_protocol().and_then(|p| p.to_str().ok()).map(String::from) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "unable to upgrade connection: none of the requested subprotocols is supported (want {V5} or {V4})"
            ),
        );
    };
    let runtime = kubelet.runtime.clone();
    upgrade.on_upgrade(move |ws| async move {
        let v5 = protocol == V5;
        let cmd = opts.command.clone();
        run(ws, v5, opts, move |io| async move {
            match kind {
                Kind::Exec => runtime.exec(&id, &cmd, io).await.map_err(|e| e.to_string()),
                Kind::Attach => runtime.attach(&id, io).await.map(|()| 0).map_err(|e| e.to_string()),
            }
        })
        .await;
    })
}

/// Pump a reader into channel messages until EOF.
async fn pump<R: AsyncRead + Unpin>(mut r: R, channel: u8, out: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf[1..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                buf[0] = channel;
                if out.send(Message::Binary(Bytes::copy_from_slice(&buf[..=n]))).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A close frame with status 1000: client-go treats anything else (even "no status") as an
/// error on the streams still being read.
pub(crate) fn normal_close() -> axum::extract::ws::CloseFrame {
    axum::extract::ws::CloseFrame { code: axum::extract::ws::close_code::NORMAL, reason: "".into() }
}

fn message(channel: u8, payload: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(payload.len() + 1);
    b.put_u8(channel);
    b.put_slice(payload);
    Message::Binary(b.freeze())
}

/// Run one exec/attach session on an upgraded WebSocket: wire the channels to the
/// runtime's streams, run `call`, report its outcome on the error channel, close.
pub(crate) async fn run<F, Fut>(ws: WebSocket, v5: bool, opts: Options, call: F)
where
    F: FnOnce(StreamIo) -> Fut,
    Fut: std::future::Future<Output = Result<i32, String>>,
{
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });

    const PIPE: usize = 64 * 1024;
    let mut pumps = Vec::new();
    let mut io = StreamIo { stdin: None, stdout: None, stderr: None, tty: opts.tty, resize: None };
    if opts.stdout {
        let (ours, theirs) = tokio::io::duplex(PIPE);
        io.stdout = Some(Box::new(theirs));
        pumps.push(tokio::spawn(pump(ours, STDOUT, out_tx.clone())));
    }
    if opts.stderr {
        let (ours, theirs) = tokio::io::duplex(PIPE);
        io.stderr = Some(Box::new(theirs));
        pumps.push(tokio::spawn(pump(ours, STDERR, out_tx.clone())));
    }
    let mut stdin_w = None;
    if opts.stdin {
        let (ours, theirs) = tokio::io::duplex(PIPE);
        io.stdin = Some(Box::new(theirs));
        stdin_w = Some(ours);
    }
    let mut resize_tx = None;
    if opts.tty {
        let (tx, rx) = mpsc::channel(4);
        io.resize = Some(rx);
        resize_tx = Some(tx);
    }
    // Upstream writes an empty message on the lowest writable channel once streams are set up.
    let first = if opts.stdout {
        STDOUT
    } else if opts.stderr {
        STDERR
    } else {
        ERROR
    };
    let _ = out_tx.send(message(first, &[])).await;

    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            let data = match m {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&channel, payload)) = data.split_first() else { continue };
            match channel {
                STDIN => {
                    if let Some(w) = &mut stdin_w
                        && w.write_all(payload).await.is_err()
                    {
                        stdin_w = None;
                    }
                }
                RESIZE => {
                    if let (Some(tx), Ok(v)) = (&resize_tx, serde_json::from_slice::<Value>(payload)) {
                        let dim = |k: &str| v.get(k).and_then(Value::as_u64).map(|n| n.min(u64::from(u16::MAX)) as u16);
                        if let (Some(width), Some(height)) = (dim("Width"), dim("Height")) {
                            let _ = tx.try_send(TerminalSize { width, height });
                        }
                    }
                }
                CLOSE if v5 && payload.first() == Some(&STDIN) => {
                    if let Some(mut w) = stdin_w.take() {
                        let _ = w.shutdown().await;
                    }
                }
                _ => {}
            }
        }
        // The client went away: stdin ends too.
        if let Some(mut w) = stdin_w.take() {
            let _ = w.shutdown().await;
        }
    });

    let command = opts.command.clone();
    let result = call(io).await;
    // The runtime dropped its ends of the pipes: drain what is left of the output first.
    for p in pumps {
        let _ = p.await;
    }
    let status = status_json(&command, &result);
    let _ = out_tx.send(message(ERROR, status.to_string().as_bytes())).await;
    let _ = out_tx.send(Message::Close(Some(normal_close()))).await;
    drop(out_tx);
    let _ = writer.await;
    reader.abort();
}
