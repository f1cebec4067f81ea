//! `GET /containerLogs/{ns}/{pod}/{container}`: a container's CRI log file as `kubectl logs`
//! shows it.
//!
//! The runtime writes the CRI log format and reads it back ([`skiff_runtime::linux::read_logs`]):
//! rotated files oldest first, then the live one. Here: the query as upstream's kubelet
//! parses it, which container's file, and why there are none:
//!
//! - `tailLines`: the last N lines, counted across rotated files;
//! - `sinceSeconds` / `sinceTime`: only records at or after that time;
//! - `timestamps`: each line prefixed with its time (Go's RFC3339Nano: trailing zeros cut);
//! - `limitBytes`: stop after that many bytes;
//! - `follow`: keep reading until the container has exited and the file is drained,
//!   switching to the new file when the runtime rotates it;
//! - `previous`: the last terminated instance ([`super::PodLookup::container`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};
use skiff_runtime::cri::ContainerState;
use tokio::io::AsyncWriteExt;

use super::{Kubelet, parse_bool, query_pairs, text};

/// What the caller asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogOptions {
    pub(crate) follow: bool,
    pub(crate) previous: bool,
    pub(crate) tail: Option<u64>,
    /// Unix nanoseconds.
    pub(crate) since: Option<i64>,
    pub(crate) timestamps: bool,
    pub(crate) limit_bytes: Option<u64>,
}

impl LogOptions {
    /// Parse the query as upstream's kubelet does (`PodLogOptions` validation messages).
    pub(crate) fn parse(query: Option<&str>, now_ns: i64) -> Result<LogOptions, String> {
        let mut o = LogOptions::default();
        let (mut since_seconds, mut since_time) = (None, None);
        for (k, v) in query_pairs(query) {
            let flag = || parse_bool(&v).ok_or_else(|| format!("invalid value for {k}: {v:?}"));
            let int = || v.parse::<i64>().map_err(|_| format!("invalid value for {k}: {v:?}"));
            match k.as_str() {
                "follow" => o.follow = flag()?,
                "previous" => o.previous = flag()?,
                "timestamps" => o.timestamps = flag()?,
                "tailLines" => {
                    let n = int()?;
                    if n < 0 {
                        return Err("tailLines: Invalid value: must be greater than or equal to 0".into());
                    }
                    o.tail = Some(n as u64);
                }
                "limitBytes" => {
                    let n = int()?;
                    if n < 1 {
                        return Err("limitBytes: Invalid value: must be greater than 0".into());
                    }
                    o.limit_bytes = Some(n as u64);
                }
                "sinceSeconds" => {
                    let n = int()?;
                    if n < 1 {
                        return Err("sinceSeconds: Invalid value: must be greater than 0".into());
                    }
                    since_seconds = Some(n);
                }
                "sinceTime" => {
                    let t: jiff::Timestamp =
                        v.parse().map_err(|_| format!("sinceTime: Invalid value: {v:?}: must be RFC 3339"))?;
                    since_time = Some(t.as_nanosecond() as i64);
                }
                _ => {}
            }
        }
        o.since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into()),
            (Some(s), None) => Some(now_ns - s.saturating_mul(1_000_000_000)),
            (None, t) => t,
        };
        Ok(o)
    }

    /// What the runtime's log reader is asked for.
    fn reader(&self) -> skiff_runtime::linux::LogOptions {
        skiff_runtime::linux::LogOptions {
            follow: self.follow,
            tail: self.tail,
            since: self.since,
            timestamps: self.timestamps,
            limit_bytes: self.limit_bytes,
            ..Default::default()
        }
    }
}

/// Why there are no logs for a container, from the pod status the kubelet reports (upstream's
/// `validateContainerLogStatus`).
pub(crate) fn no_logs_reason(pod: &k8s_openapi::api::core::v1::Pod, container: &str, previous: bool) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref().and_then(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
            .chain(s.ephemeral_container_statuses.iter().flatten())
            .find(|c| c.name == container)
    });
    if previous {
        return format!("previous terminated container {container:?} in pod {name:?} not found");
    }
    let waiting = status.and_then(|s| s.state.as_ref()).and_then(|s| s.waiting.as_ref());
    match waiting.map(|w| w.reason.as_deref().unwrap_or("")) {
        Some("ErrImagePull") => {
            format!("container {container:?} in pod {name:?} is waiting to start: image can't be pulled")
        }
        Some("ImagePullBackOff") => {
            format!("container {container:?} in pod {name:?} is waiting to start: trying and failing to pull image")
        }
        Some(reason) => format!("container {container:?} in pod {name:?} is waiting to start: {reason}"),
        None if status.and_then(|s| s.state.as_ref()).and_then(|s| s.terminated.as_ref()).is_some() => {
            format!("container {container:?} in pod {name:?} is terminated")
        }
        None => format!("container {container:?} in pod {name:?} is waiting to start - no logs yet"),
    }
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Serve `GET /containerLogs/{ns}/{pod}/{container}`.
pub(crate) async fn serve(
    kubelet: &Arc<Kubelet>,
    ns: &str,
    pod: &str,
    container: &str,
    query: Option<&str>,
) -> Response<Body> {
    let opts = match LogOptions::parse(query, now_ns()) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let Some(id) = kubelet.pods.container(ns, pod, container, opts.previous) else {
        let found = kubelet
            .pods
            .pods()
            .into_iter()
            .find(|p| p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name.as_deref() == Some(pod));
        return match found {
            Some(p) => text(StatusCode::BAD_REQUEST, no_logs_reason(&p, container, opts.previous)),
            None => text(StatusCode::NOT_FOUND, format!("pod {ns}/{pod} not found")),
        };
    };
    let status = match kubelet.runtime.container_status(&id).await {
        Ok(s) => s,
        Err(e) => {
            return text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to get container status {id:?}: {e}"));
        }
    };
    let path = status.log_path.clone();
    if !path.exists() {
        return text(StatusCode::NOT_FOUND, format!("log file for container {container:?} not found"));
    }
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let runtime = kubelet.runtime.clone();
    tokio::spawn(async move {
        // The container is done once it is no longer running (or gone).
        let exited = async {
            loop {
                match runtime.container_status(&id).await {
                    Ok(s) if s.state == ContainerState::Running || s.state == ContainerState::Created => {}
                    _ => return,
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        if let Err(e) = skiff_runtime::linux::read_logs(&path, &opts.reader(), &mut writer, exited).await {
            tracing::debug!(error = %e, "container logs ended early");
        }
        let _ = writer.shutdown().await;
    });
    let mut r = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(reader)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

#[cfg(test)]
mod tests;
