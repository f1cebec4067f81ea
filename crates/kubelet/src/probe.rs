//! Container probes (liveness, readiness, startup) and lifecycle hooks (postStart, preStop),
//! as upstream's `pkg/kubelet/prober`, `pkg/probe/{exec,http,tcp,grpc}` and
//! `pkg/kubelet/lifecycle`.
//!
//! - [`run`] performs one probe attempt and says what happened ([`ProbeOutcome`]); the texts
//!   are upstream's, since they end up in `Unhealthy` events (`Liveness probe failed: …`).
//! - [`ProbeState`] is the pure per-container, per-probe state machine: when to probe
//!   (initialDelaySeconds, periodSeconds, startup gating) and what the published result is
//!   (successThreshold, failureThreshold). The pod worker owns the timer and calls [`run`].
//! - [`run_hook`] runs a postStart/preStop handler; its error text is the message of the
//!   `FailedPostStartHook`/`FailedPreStopHook` events.

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_runtime::cri::{Runtime, RuntimeError};

use skiff_api::field::go_quote;

mod grpc;
mod http;
mod state;
#[cfg(test)]
mod tests;

pub use state::{ProbeKind, ProbeResult, ProbeSettings, ProbeState};

/// The `kube-probe/<major>.<minor>` User-Agent version: the Kubernetes version Skiff speaks.
const KUBE_VERSION: &str = "1.33";

/// Upstream reads at most this much output of an exec probe or body of an HTTP probe.
const MAX_OUTPUT: usize = 10 * 1024;

/// The result of one probe attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The container passed.
    Success,
    /// It passed, with something to report (an HTTP probe stopped at an off-host redirect);
    /// upstream records a `ProbeWarning` event and counts it as a success.
    Warning(String),
    /// It failed; the message is what the `Unhealthy` event shows after `… probe failed: `.
    Failure(String),
    /// The probe could not be run (bad port, runtime error). Upstream discards such results:
    /// they count neither as success nor failure.
    Unknown(String),
}

/// What a probe or hook is aimed at.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The runtime's id of the running container (exec).
    pub container_id: &'a str,
    /// The container's spec, for named ports.
    pub container: &'a Container,
    /// The pod's first IP: the default host of HTTP, TCP and gRPC probes.
    pub pod_ip: Option<IpAddr>,
}

/// Run one attempt of `probe` against `target`, giving up after `timeout` (the probe's
/// `timeoutSeconds`).
pub async fn run(probe: &Probe, target: &Target<'_>, runtime: &dyn Runtime, timeout: Duration) -> ProbeOutcome {
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return exec_probe(runtime, target.container_id, &cmd, timeout).await;
    }
    if let Some(action) = &probe.http_get {
        let port = match resolve_port(&action.port, target.container) {
            Ok(p) => p,
            Err(e) => return ProbeOutcome::Unknown(e),
        };
        let Some(host) = host_or_pod_ip(action.host.as_deref(), target) else {
            return ProbeOutcome::Unknown("pod has no IP address to probe".into());
        };
        let req = http::Request::from_action(action, &host, port, "probe");
        return http::probe(&req, timeout).await;
    }
    if let Some(action) = &probe.tcp_socket {
        let port = match resolve_port(&action.port, target.container) {
            Ok(p) => p,
            Err(e) => return ProbeOutcome::Unknown(e),
        };
        let Some(host) = host_or_pod_ip(action.host.as_deref(), target) else {
            return ProbeOutcome::Unknown("pod has no IP address to probe".into());
        };
        return tcp_probe(&host, port, timeout).await;
    }
    if let Some(action) = &probe.grpc {
        let Some(host) = target.pod_ip.map(|ip| ip.to_string()) else {
            return ProbeOutcome::Unknown("pod has no IP address to probe".into());
        };
        let Ok(port) = u16::try_from(action.port) else {
            return ProbeOutcome::Unknown(format!("invalid port number: {}", action.port));
        };
        return grpc::probe(&host, port, action.service.as_deref().unwrap_or(""), timeout).await;
    }
    ProbeOutcome::Unknown("missing probe handler".into())
}

fn host_or_pod_ip(host: Option<&str>, target: &Target<'_>) -> Option<String> {
    match host.filter(|h| !h.is_empty()) {
        Some(h) => Some(h.to_string()),
        None => target.pod_ip.map(|ip| ip.to_string()),
    }
}

/// Upstream's `ResolveContainerPort`: a number, a named container port, or a number in a string.
pub(crate) fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    let n: i64 = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => {
            let named = container.ports.iter().flatten().find(|p| p.name.as_deref() == Some(name.as_str()));
            match named {
                Some(p) => i64::from(p.container_port),
                None => {
                    name.parse().map_err(|_| format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(name)))?
                }
            }
        }
    };
    u16::try_from(n).ok().filter(|p| *p > 0).ok_or_else(|| format!("invalid port number: {n}"))
}

/// The exec prober: exit code 0 passes, anything else fails with the combined output.
async fn exec_probe(runtime: &dyn Runtime, container_id: &str, cmd: &[String], timeout: Duration) -> ProbeOutcome {
    match runtime.exec_sync(container_id, cmd, timeout).await {
        Ok(r) => {
            let mut out = r.stdout;
            out.extend_from_slice(&r.stderr);
            out.truncate(MAX_OUTPUT);
            let out = String::from_utf8_lossy(&out).into_owned();
            if r.exit_code == 0 { ProbeOutcome::Success } else { ProbeOutcome::Failure(out) }
        }
        Err(RuntimeError::Timeout(_)) => {
            ProbeOutcome::Failure(format!("command {} timed out", go_quote(&cmd.join(" "))))
        }
        Err(e) => ProbeOutcome::Unknown(e.to_string()),
    }
}

/// The TCP prober: a connection that opens passes.
async fn tcp_probe(host: &str, port: u16, timeout: Duration) -> ProbeOutcome {
    let addr = join_host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => ProbeOutcome::Success,
        Ok(Err(e)) => ProbeOutcome::Failure(dial_error(&addr, &e)),
        Err(_) => ProbeOutcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// Go's `net.JoinHostPort`.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// A connect error worded like Go's dialer (`dial tcp 10.0.0.1:80: connect: connection refused`).
pub(crate) fn dial_error(addr: &str, e: &std::io::Error) -> String {
    let reason = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::HostUnreachable => "connect: no route to host".to_string(),
        std::io::ErrorKind::NetworkUnreachable => "connect: network is unreachable".to_string(),
        _ => e.to_string(),
    };
    format!("dial tcp {addr}: {reason}")
}

/// Go's `time.Duration` `%v` for the whole and fractional seconds probes use.
pub(crate) fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return format!("{}s", d.as_secs());
    }
    if d < Duration::from_secs(1) {
        let ms = d.as_secs_f64() * 1000.0;
        return format!("{}ms", trim_float(ms));
    }
    format!("{}s", trim_float(d.as_secs_f64()))
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Why a lifecycle hook failed; the text is the `FailedPostStartHook`/`FailedPreStopHook`
/// event message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

/// Event reasons for [`HookError`].
pub const FAILED_POST_START_HOOK: &str = "FailedPostStartHook";
pub const FAILED_PRE_STOP_HOOK: &str = "FailedPreStopHook";

/// Run a postStart or preStop handler of `target.container` in `pod`. `timeout` bounds an exec
/// or HTTP handler (upstream gives postStart none and preStop the grace period; the caller
/// decides). The HTTP status of an HTTP handler is not checked, as upstream: only reaching
/// the server matters.
pub async fn run_hook(
    handler: &LifecycleHandler,
    pod: &Pod,
    target: &Target<'_>,
    runtime: &dyn Runtime,
    timeout: Duration,
) -> Result<(), HookError> {
    let container = &target.container.name;
    let pod_ref = format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    );
    if let Some(exec) = &handler.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let failure = |err: String, output: &str| {
            HookError(format!(
                "Exec lifecycle hook ([{}]) for Container {} in Pod {} failed - error: {err}, message: {}",
                cmd.join(" "),
                go_quote(container),
                go_quote(&pod_ref),
                go_quote(output)
            ))
        };
        return match runtime.exec_sync(target.container_id, &cmd, timeout).await {
            Ok(r) if r.exit_code == 0 => Ok(()),
            Ok(r) => {
                let stderr = String::from_utf8_lossy(&r.stderr).into_owned();
                let mut out = r.stdout.clone();
                out.extend_from_slice(&r.stderr);
                let err = format!("command '{}' exited with {}: {stderr}", cmd.join(" "), r.exit_code);
                Err(failure(err, &String::from_utf8_lossy(&out)))
            }
            Err(e) => Err(failure(e.to_string(), "")),
        };
    }
    if let Some(action) = &handler.http_get {
        let path = action.path.clone().unwrap_or_default();
        let failure = |err: String| {
            HookError(format!(
                "HTTP lifecycle hook ({path}) for Container {} in Pod {} failed - error: {err}",
                go_quote(container),
                go_quote(&pod_ref)
            ))
        };
        let port = resolve_port(&action.port, target.container).map_err(failure)?;
        let host = host_or_pod_ip(action.host.as_deref(), target)
            .ok_or_else(|| failure("failed to find networking container".into()))?;
        let req = http::Request::from_action(action, &host, port, "lifecycle");
        return http::get(&req, timeout).await.map(drop).map_err(failure);
    }
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(u64::try_from(sleep.seconds).unwrap_or(0))).await;
        return Ok(());
    }
    // tcpSocket is accepted by the API for compatibility but never runs as a hook.
    Err(HookError(format!("Cannot run handler: invalid handler: {handler:?}")))
}
