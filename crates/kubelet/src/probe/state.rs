//! One probe of one container as a pure state machine, after upstream's prober `worker`: it
//! says when to probe and turns probe outcomes into the published result. It owns no timer and
//! does no I/O: the pod worker sleeps until [`ProbeState::next_tick`], asks
//! [`ProbeState::on_tick`] whether to probe, runs [`super::run`] and feeds the outcome to
//! [`ProbeState::record`].
//!
//! Transitions:
//! - `container_started(t)`: a new container instance: counters reset, the result goes back
//!   to the kind's initial value (liveness Success, readiness Failure, startup Unknown), the
//!   first probe is due at `t + initialDelaySeconds`, then every `periodSeconds`.
//! - `record(outcome)`: `failureThreshold` consecutive failures publish Failure,
//!   `successThreshold` consecutive successes publish Success; Unknown outcomes (the probe could
//!   not run) are discarded, as upstream does with prober errors.
//! - A published liveness or startup Failure puts the probe on hold until the next
//!   `container_started` (the container is about to be restarted).
//! - A startup probe stops once it has succeeded; liveness and readiness probes do not run
//!   until the container's startup probe (if any) has succeeded.
//! - `container_stopped()`: nothing to probe; readiness turns Failure.

use std::time::Duration;

use k8s_openapi::api::core::v1::Probe;
use tokio::time::Instant;

use super::ProbeOutcome;

/// Which probe this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

/// A published probe result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure,
    Unknown,
}

/// A probe's timing and thresholds, with upstream's defaults for unset or zero fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeSettings {
    /// period 10s, timeout 1s, success 1, failure 3, no initial delay unless set.
    pub fn from_probe(probe: &Probe) -> ProbeSettings {
        let secs = |v: Option<i32>, default: u64| {
            Duration::from_secs(v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0).unwrap_or(default))
        };
        let count =
            |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).filter(|v| *v > 0).unwrap_or(default);
        ProbeSettings {
            initial_delay: secs(probe.initial_delay_seconds, 0),
            period: secs(probe.period_seconds, 10),
            timeout: secs(probe.timeout_seconds, 1),
            success_threshold: count(probe.success_threshold, 1),
            failure_threshold: count(probe.failure_threshold, 3),
        }
    }
}

/// The state of one probe of one container.
#[derive(Clone, Debug)]
pub struct ProbeState {
    kind: ProbeKind,
    settings: ProbeSettings,
    /// When the current container instance started; `None` while none runs.
    started_at: Option<Instant>,
    /// When the next probe is due.
    next_at: Instant,
    /// The published result.
    result: ProbeResult,
    /// The last counted outcome and how many times in a row it came.
    last: Option<ProbeResult>,
    run: u32,
    /// Liveness/startup failed: wait for a new container.
    on_hold: bool,
}

impl ProbeState {
    pub fn new(kind: ProbeKind, probe: &Probe) -> ProbeState {
        ProbeState {
            kind,
            settings: ProbeSettings::from_probe(probe),
            started_at: None,
            next_at: Instant::now(),
            result: initial(kind),
            last: None,
            run: 0,
            on_hold: false,
        }
    }

    pub fn kind(&self) -> ProbeKind {
        self.kind
    }

    pub fn settings(&self) -> &ProbeSettings {
        &self.settings
    }

    /// The published result.
    pub fn result(&self) -> ProbeResult {
        self.result
    }

    /// A new instance of the container runs since `at`; probing starts over.
    pub fn container_started(&mut self, at: Instant) {
        self.started_at = Some(at);
        self.next_at = at + self.settings.initial_delay;
        self.result = initial(self.kind);
        self.last = None;
        self.run = 0;
        self.on_hold = false;
    }

    /// The container is not running any more. Returns the new result if it changed (readiness
    /// turns Failure).
    pub fn container_stopped(&mut self) -> Option<ProbeResult> {
        self.started_at = None;
        self.last = None;
        self.run = 0;
        if self.kind == ProbeKind::Readiness && self.result != ProbeResult::Failure {
            self.result = ProbeResult::Failure;
            return Some(ProbeResult::Failure);
        }
        None
    }

    /// Probe as soon as allowed rather than at the next period (upstream triggers readiness
    /// this way once the startup probe has succeeded).
    pub fn trigger(&mut self, now: Instant) {
        if let Some(started) = self.started_at {
            self.next_at = now.max(started + self.settings.initial_delay);
        }
    }

    /// When the worker should call [`ProbeState::on_tick`] next; `None` while there is nothing
    /// to probe (no container, on hold after a failure, startup probe done).
    pub fn next_tick(&self) -> Option<Instant> {
        let done = self.kind == ProbeKind::Startup && self.result == ProbeResult::Success;
        (self.started_at.is_some() && !self.on_hold && !done).then_some(self.next_at)
    }

    /// Called at or after [`ProbeState::next_tick`]: whether to run the probe now.
    /// `startup_succeeded` says whether the container's startup probe has succeeded (true when it
    /// has none); liveness and readiness wait for it.
    pub fn on_tick(&mut self, now: Instant, startup_succeeded: bool) -> bool {
        let Some(due) = self.next_tick() else { return false };
        if now < due {
            return false;
        }
        // Advance on the period grid; a late wake-up does not cause a burst of probes.
        while self.next_at <= now {
            self.next_at += self.settings.period;
        }
        self.kind == ProbeKind::Startup || startup_succeeded
    }

    /// Count one outcome. Returns the published result when it changes.
    pub fn record(&mut self, outcome: &ProbeOutcome) -> Option<ProbeResult> {
        if self.started_at.is_none() || self.on_hold {
            return None;
        }
        let r = match outcome {
            ProbeOutcome::Success | ProbeOutcome::Warning(_) => ProbeResult::Success,
            ProbeOutcome::Failure(_) => ProbeResult::Failure,
            ProbeOutcome::Unknown(_) => return None,
        };
        if self.last == Some(r) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(r);
            self.run = 1;
        }
        let threshold =
            if r == ProbeResult::Failure { self.settings.failure_threshold } else { self.settings.success_threshold };
        if self.run < threshold {
            return None;
        }
        let changed = self.result != r;
        self.result = r;
        if r == ProbeResult::Failure && matches!(self.kind, ProbeKind::Liveness | ProbeKind::Startup) {
            self.on_hold = true;
            self.run = 0;
        }
        changed.then_some(r)
    }
}

fn initial(kind: ProbeKind) -> ProbeResult {
    match kind {
        ProbeKind::Liveness => ProbeResult::Success,
        ProbeKind::Readiness => ProbeResult::Failure,
        ProbeKind::Startup => ProbeResult::Unknown,
    }
}
