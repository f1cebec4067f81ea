//! The `grpc` probe: one `grpc.health.v1.Health/Check` call over plaintext HTTP/2 (h2c), as
//! upstream's `pkg/probe/grpc`. The request and response messages are tiny, so they are
//! encoded by hand rather than pulling in a protobuf and gRPC stack:
//!
//! - `HealthCheckRequest { string service = 1; }`
//! - `HealthCheckResponse { ServingStatus status = 1; }` (UNKNOWN=0, SERVING=1, NOT_SERVING=2,
//!   SERVICE_UNKNOWN=3)

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{KUBE_VERSION, ProbeOutcome, go_duration, join_host_port};
use skiff_api::field::go_quote;

const SERVING: u64 = 1;

/// What the call returned.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// A response message with this serving status.
    Status(u64),
    /// A gRPC error status (code, message).
    Error(u32, String),
}

pub(super) async fn probe(host: &str, port: u16, service: &str, timeout: Duration) -> ProbeOutcome {
    let addr = join_host_port(host, port);
    let deadline = tokio::time::Instant::now() + timeout;
    let connect_failed = || {
        ProbeOutcome::Failure(format!(
            "timeout: failed to connect service {} within {}: context deadline exceeded",
            go_quote(&addr),
            go_duration(timeout)
        ))
    };
    // Upstream dials with WithBlock: a refused connection is retried until the deadline, so
    // every connection failure reads as the timeout.
    let Ok(Ok(stream)) = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(&addr)).await else {
        return connect_failed();
    };
    let Ok(Ok((sender, conn))) = tokio::time::timeout_at(
        deadline,
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)),
    )
    .await
    else {
        return connect_failed();
    };
    let conn = tokio::spawn(conn);
    let result = tokio::time::timeout_at(deadline, call(sender, &addr, service)).await;
    conn.abort();
    match result {
        Err(_) | Ok(Ok(Reply::Error(4, _))) => {
            ProbeOutcome::Failure(format!("timeout: health rpc did not complete within {}", go_duration(timeout)))
        }
        Ok(Err(e)) => ProbeOutcome::Failure(format!("error: health rpc probe failed: {e}")),
        Ok(Ok(Reply::Error(12, msg))) => ProbeOutcome::Failure(format!(
            "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {msg}"
        )),
        Ok(Ok(Reply::Error(code, msg))) => ProbeOutcome::Failure(format!(
            "error: health rpc probe failed: rpc error: code = {} desc = {msg}",
            code_name(code)
        )),
        Ok(Ok(Reply::Status(SERVING))) => ProbeOutcome::Success,
        Ok(Ok(Reply::Status(s))) => {
            ProbeOutcome::Failure(format!("service unhealthy (responded with {})", go_quote(status_name(s))))
        }
    }
}

async fn call(
    mut sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    addr: &str,
    service: &str,
) -> Result<Reply, String> {
    let request = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, format!("kube-probe/{KUBE_VERSION}"))
        .body(Full::new(Bytes::from(encode_request(service))))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(request).await.map_err(|e| e.to_string())?;
    if resp.status() != http::StatusCode::OK {
        let code = http_status_code(resp.status().as_u16());
        return Ok(Reply::Error(code, format!("unexpected HTTP status code received from server: {}", resp.status())));
    }
    // A trailers-only response carries the status in the headers.
    if let Some(reply) = status_of(resp.headers()) {
        return Ok(reply);
    }
    let collected = resp.into_body().collect().await.map_err(|e| e.to_string())?;
    if let Some(reply) = collected.trailers().and_then(status_of) {
        return Ok(reply);
    }
    let body = collected.to_bytes();
    decode_response(&body).map(Reply::Status)
}

/// A non-OK `grpc-status` in `headers`, or `None` (absent or OK).
fn status_of(headers: &http::HeaderMap) -> Option<Reply> {
    let code: u32 = headers.get("grpc-status")?.to_str().ok()?.trim().parse().ok()?;
    if code == 0 {
        return None;
    }
    let msg = headers.get("grpc-message").and_then(|v| v.to_str().ok()).map(percent_decode).unwrap_or_default();
    Some(Reply::Error(code, msg))
}

/// The length-prefixed gRPC message for `HealthCheckRequest { service }`.
pub(super) fn encode_request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(msg.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(&msg);
    framed
}

/// The serving status in a length-prefixed `HealthCheckResponse`.
pub(super) fn decode_response(body: &[u8]) -> Result<u64, String> {
    let bad = || "grpc: failed to unmarshal the received message".to_string();
    if body.len() < 5 {
        return Err("grpc: the server sent no response message".into());
    }
    if body[0] != 0 {
        return Err("grpc: compressed responses are not supported".into());
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    let mut msg = body.get(5..5 + len).ok_or_else(bad)?;
    let mut status = 0;
    while !msg.is_empty() {
        let tag = get_varint(&mut msg).ok_or_else(bad)?;
        match (tag >> 3, tag & 7) {
            (1, 0) => status = get_varint(&mut msg).ok_or_else(bad)?,
            (_, 0) => {
                get_varint(&mut msg).ok_or_else(bad)?;
            }
            (_, 1) => msg = msg.get(8..).ok_or_else(bad)?,
            (_, 2) => {
                let n = usize::try_from(get_varint(&mut msg).ok_or_else(bad)?).map_err(|_| bad())?;
                msg = msg.get(n..).ok_or_else(bad)?;
            }
            (_, 5) => msg = msg.get(4..).ok_or_else(bad)?,
            _ => return Err(bad()),
        }
    }
    Ok(status)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        if b[i] == b'%'
            && let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// grpc-go's mapping of a non-200 HTTP status to a gRPC code.
fn http_status_code(status: u16) -> u32 {
    match status {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => 14,
        _ => 2,
    }
}

fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES.get(code as usize).copied().unwrap_or("Unknown")
}

fn status_name(status: u64) -> &'static str {
    match status {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_round_trips() {
        assert_eq!(encode_request(""), vec![0, 0, 0, 0, 0]);
        assert_eq!(encode_request("db"), vec![0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']);
        let long = "s".repeat(200);
        let enc = encode_request(&long);
        assert_eq!(&enc[5..8], &[0x0a, 0xc8, 0x01]);
        assert_eq!(decode_response(&[0, 0, 0, 0, 2, 0x08, 1]), Ok(1));
        assert_eq!(decode_response(&[0, 0, 0, 0, 0]), Ok(0), "proto3 default");
        // Unknown fields are skipped.
        assert_eq!(decode_response(&[0, 0, 0, 0, 6, 0x12, 2, b'h', b'i', 0x08, 2]), Ok(2));
        assert!(decode_response(&[0, 0, 0, 0, 3, 0x08]).is_err());
        assert!(decode_response(&[1, 0, 0, 0, 0]).is_err());
        assert!(decode_response(&[0, 0]).is_err());
        assert_eq!(percent_decode("a%20b%zz%"), "a b%zz%");
        assert_eq!(percent_decode("%é%4"), "%é%4");
    }
}
