//! One prober task per running container instance with probes: it drives the startup,
//! liveness and readiness [`ProbeState`]s on their own clocks (upstream's prober workers) and
//! tells the pod worker when a published result changes or a probe fails (for the
//! `Unhealthy` events). The pod worker owns all decisions (readiness, restarts).

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Probe};
use skiff_runtime::Runtime;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::probe::{self, ProbeKind, ProbeOutcome, ProbeResult, ProbeState, Target};

/// What a prober reports to its pod worker.
#[derive(Debug)]
pub(crate) enum ProbeEvent {
    /// A published result changed.
    Result { id: String, kind: ProbeKind, result: ProbeResult },
    /// One probe attempt failed (`Liveness probe failed: …`), or warned.
    Failed { container: String, message: String, warning_only: bool },
}

fn kind_name(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Liveness => "Liveness",
        ProbeKind::Readiness => "Readiness",
        ProbeKind::Startup => "Startup",
    }
}

/// `Liveness probe failed: <output>` as upstream's prober records it.
pub(crate) fn failure_message(kind: ProbeKind, output: &str) -> String {
    format!("{} probe failed: {output}", kind_name(kind))
}

/// Whether the container has any probe.
pub(crate) fn has_probes(c: &Container) -> bool {
    c.liveness_probe.is_some() || c.readiness_probe.is_some() || c.startup_probe.is_some()
}

/// Probe container `id` (a running instance of `container`, started at `started_at`) until
/// `stop`.
pub(crate) async fn run(
    container: Container,
    id: String,
    pod_ip: Option<IpAddr>,
    started_at: Instant,
    runtime: Arc<dyn Runtime>,
    events: mpsc::UnboundedSender<ProbeEvent>,
    stop: CancellationToken,
) {
    let mut probes: Vec<(ProbeState, Probe)> = [
        (ProbeKind::Startup, container.startup_probe.clone()),
        (ProbeKind::Liveness, container.liveness_probe.clone()),
        (ProbeKind::Readiness, container.readiness_probe.clone()),
    ]
    .into_iter()
    .filter_map(|(k, p)| {
        let p = p?;
        let mut s = ProbeState::new(k, &p);
        s.container_started(started_at);
        Some((s, p))
    })
    .collect();
    loop {
        let startup_ok = probes
            .iter()
            .find(|(s, _)| s.kind() == ProbeKind::Startup)
            .is_none_or(|(s, _)| s.result() == ProbeResult::Success);
        let next = probes.iter().filter_map(|(s, _)| s.next_tick()).min();
        let Some(next) = next else {
            // Nothing left to probe (on hold after a failure, or only a finished startup probe).
            stop.cancelled().await;
            return;
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        let now = Instant::now();
        let mut startup_done = false;
        for (state, spec) in &mut probes {
            if !state.on_tick(now, startup_ok) {
                continue;
            }
            let target = Target { container_id: &id, container: &container, pod_ip };
            let timeout = state.settings().timeout;
            let outcome = probe::run(spec, &target, runtime.as_ref(), timeout).await;
            let kind = state.kind();
            match &outcome {
                ProbeOutcome::Failure(out) => {
                    let _ = events.send(ProbeEvent::Failed {
                        container: container.name.clone(),
                        message: failure_message(kind, out),
                        warning_only: false,
                    });
                }
                ProbeOutcome::Warning(out) => {
                    let _ = events.send(ProbeEvent::Failed {
                        container: container.name.clone(),
                        message: format!("{} probe warning: {out}", kind_name(kind)),
                        warning_only: true,
                    });
                }
                _ => {}
            }
            if let Some(result) = state.record(&outcome) {
                if kind == ProbeKind::Startup && result == ProbeResult::Success {
                    startup_done = true;
                }
                let _ = events.send(ProbeEvent::Result { id: id.clone(), kind, result });
            }
        }
        if startup_done {
            // Upstream triggers readiness at once when the startup probe succeeds.
            for (s, _) in &mut probes {
                if s.kind() == ProbeKind::Readiness {
                    s.trigger(Instant::now());
                }
            }
        }
    }
}
