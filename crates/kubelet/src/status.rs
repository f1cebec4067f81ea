//! The pod status upstream's kubelet reports (`generateAPIPodStatus`, `getPhase`,
//! `convertToAPIContainerStatuses` and the condition generators in `pkg/kubelet/status`),
//! computed from what the runtime shows and what the worker decided last time (why a container
//! waits). Pure: the worker observes, this module describes.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus as ApiContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use skiff_runtime::cri::{ContainerState as RtState, ContainerStatus, PodSandboxStatus, SandboxState};

use crate::convert::is_sidecar;

/// The prefix of `containerID`s, like `containerd://`.
pub(crate) const CONTAINER_ID_PREFIX: &str = "skiff://";

/// What the worker knows beyond the runtime's view.
#[derive(Default)]
pub(crate) struct WorkerView {
    /// Why a container is not running, from the last sync (`CrashLoopBackOff`, `ErrImagePull`,
    /// `CreateContainerConfigError`, …) with the message.
    pub(crate) waiting: HashMap<String, (String, String)>,
    /// Container ids whose readiness probe succeeds (or that have none).
    pub(crate) ready: HashSet<String>,
    /// Container ids whose startup probe succeeded (or that have none).
    pub(crate) started: HashSet<String>,
    /// The pod was killed for exceeding `activeDeadlineSeconds`.
    pub(crate) deadline_exceeded: bool,
    /// The pod was evicted (an emptyDir over its `sizeLimit`), with upstream's message.
    pub(crate) evicted: Option<String>,
    /// The pod is being terminated (deletion): nothing restarts any more.
    pub(crate) terminating: bool,
}

fn ts(ns: i64) -> Option<Time> {
    if ns <= 0 {
        return None;
    }
    Timestamp::from_nanosecond(i128::from(ns)).ok().map(Time)
}

/// The latest instance of each container name and the one before it.
fn instances<'a>(all: &'a [ContainerStatus], name: &str) -> (Option<&'a ContainerStatus>, Option<&'a ContainerStatus>) {
    let mut mine: Vec<&ContainerStatus> = all.iter().filter(|c| c.name == name).collect();
    mine.sort_by_key(|c| (c.attempt, c.created_at));
    let latest = mine.pop();
    (latest, mine.pop())
}

fn terminated(c: &ContainerStatus) -> ContainerStateTerminated {
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: Some(if c.reason.is_empty() {
            if c.exit_code == 0 { "Completed".into() } else { "Error".into() }
        } else {
            c.reason.clone()
        }),
        message: (!c.message.is_empty()).then(|| c.message.clone()),
        started_at: ts(c.started_at),
        finished_at: ts(c.finished_at),
        container_id: Some(format!("{CONTAINER_ID_PREFIX}{}", c.id)),
        signal: None,
    }
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message: (!message.is_empty()).then(|| message.into()),
        }),
        ..Default::default()
    }
}

/// One container's status. `default_wait` is the waiting reason when nothing ran yet.
fn container_status(
    spec: &Container,
    all: &[ContainerStatus],
    view: &WorkerView,
    default_wait: &str,
) -> ApiContainerStatus {
    let (latest, previous) = instances(all, &spec.name);
    let mut st = ApiContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        ..Default::default()
    };
    let reason = view.waiting.get(&spec.name);
    match latest {
        None => {
            let (r, m) = reason.map(|(r, m)| (r.as_str(), m.as_str())).unwrap_or((default_wait, ""));
            st.state = Some(waiting(r, m));
        }
        Some(c) => {
            st.restart_count = c.attempt as i32;
            st.image_id = c.image_ref.clone();
            st.container_id = Some(format!("{CONTAINER_ID_PREFIX}{}", c.id));
            match c.state {
                RtState::Running => {
                    st.state = Some(ContainerState {
                        running: Some(ContainerStateRunning { started_at: ts(c.started_at) }),
                        ..Default::default()
                    });
                    let started = view.started.contains(&c.id);
                    st.started = Some(started);
                    st.ready = started && view.ready.contains(&c.id);
                    st.last_state =
                        previous.map(|p| ContainerState { terminated: Some(terminated(p)), ..Default::default() });
                }
                RtState::Exited | RtState::Unknown => match reason {
                    // Decided to wait before restarting it (back-off, config error…).
                    Some((r, m)) if !view.terminating => {
                        st.state = Some(waiting(r, m));
                        st.last_state = Some(ContainerState { terminated: Some(terminated(c)), ..Default::default() });
                    }
                    _ => {
                        st.state = Some(ContainerState { terminated: Some(terminated(c)), ..Default::default() });
                        st.last_state =
                            previous.map(|p| ContainerState { terminated: Some(terminated(p)), ..Default::default() });
                    }
                },
                RtState::Created => {
                    let (r, m) = reason.map(|(r, m)| (r.as_str(), m.as_str())).unwrap_or(("ContainerCreating", ""));
                    st.state = Some(waiting(r, m));
                    st.last_state =
                        previous.map(|p| ContainerState { terminated: Some(terminated(p)), ..Default::default() });
                }
            }
        }
    }
    st
}

fn state_of(s: &ApiContainerStatus) -> (bool, Option<i32>, bool, Option<i32>) {
    // (running, terminated exit code, waiting, last terminated exit code)
    let st = s.state.as_ref();
    (
        st.and_then(|s| s.running.as_ref()).is_some(),
        st.and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code),
        st.and_then(|s| s.waiting.as_ref()).is_some(),
        s.last_state.as_ref().and_then(|l| l.terminated.as_ref()).map(|t| t.exit_code),
    )
}

/// Whether every init container is done: regular ones exited 0, sidecars started.
pub(crate) fn initialized(init_specs: &[Container], init: &[ApiContainerStatus]) -> (bool, Vec<String>) {
    let mut incomplete = Vec::new();
    for (spec, s) in init_specs.iter().zip(init) {
        let (running, exit, _, _) = state_of(s);
        let done = if is_sidecar(spec) { running && s.started == Some(true) } else { exit == Some(0) };
        if !done {
            incomplete.push(spec.name.clone());
        }
    }
    (incomplete.is_empty(), incomplete)
}

/// Upstream's `getPhase`.
pub(crate) fn phase(
    pod: &Pod,
    init: &[ApiContainerStatus],
    containers: &[ApiContainerStatus],
    terminal: bool,
) -> &'static str {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let init_specs = spec.init_containers.unwrap_or_default();
    let (mut pending_init, mut failed_init) = (0, 0);
    for (c, s) in init_specs.iter().zip(init) {
        let (running, exit, waiting, last) = state_of(s);
        if is_sidecar(c) {
            let sidecar_started = running && s.started == Some(true);
            let regular_ran = containers.iter().any(|s| state_of(s).0 || state_of(s).1.is_some());
            if !sidecar_started && !regular_ran {
                pending_init += 1;
            }
            continue;
        }
        match (running, exit, waiting, last) {
            (true, ..) => pending_init += 1,
            (_, Some(code), ..) => {
                if code != 0 {
                    failed_init += 1;
                }
            }
            (_, _, true, Some(code)) => {
                if code != 0 {
                    failed_init += 1;
                }
            }
            _ => pending_init += 1,
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in containers {
        match state_of(s) {
            (true, ..) => running += 1,
            (_, Some(code), ..) => {
                stopped += 1;
                if code == 0 {
                    succeeded += 1;
                }
            }
            (_, _, true, Some(_)) => stopped += 1,
            _ => waiting += 1,
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    let any_regular_started = containers.iter().any(|s| {
        let (r, e, _, l) = state_of(s);
        r || e.is_some() || l.is_some()
    });
    if (pending_init > 0 && !any_regular_started) || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if terminal {
            return if stopped == succeeded { "Succeeded" } else { "Failed" };
        }
        return match policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(str::to_string),
        message,
        ..Default::default()
    }
}

/// Everything the status is computed from.
pub(crate) struct Inputs<'a> {
    pub(crate) sandbox: Option<&'a PodSandboxStatus>,
    pub(crate) containers: &'a [ContainerStatus],
    pub(crate) view: &'a WorkerView,
    pub(crate) host_ips: &'a [IpAddr],
    pub(crate) now: Timestamp,
}

/// The status to write, the kubelet-owned fields only; conditions keep their transition time
/// when their status did not change.
pub(crate) fn pod_status(pod: &Pod, input: &Inputs<'_>) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let mut init: Vec<ApiContainerStatus> = Vec::new();
    let mut blocked = false;
    for c in &init_specs {
        let st = container_status(c, input.containers, input.view, "PodInitializing");
        let (running, exit, ..) = state_of(&st);
        init.push(st);
        // Init containers after one that is not done have not been tried yet.
        if blocked {
            continue;
        }
        blocked = if is_sidecar(c) { !running } else { exit != Some(0) };
    }
    let (is_initialized, incomplete) = initialized(&init_specs, &init);
    let default_wait = if is_initialized { "ContainerCreating" } else { "PodInitializing" };
    let mut containers: Vec<ApiContainerStatus> =
        spec.containers.iter().map(|c| container_status(c, input.containers, input.view, default_wait)).collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    let terminal = input.view.deadline_exceeded || input.view.evicted.is_some() || input.view.terminating;
    let mut phase = phase(pod, &init, &containers, terminal);
    if input.view.deadline_exceeded || input.view.evicted.is_some() {
        phase = "Failed";
    }
    // A pod that reached a terminal phase never leaves it (upstream keeps it).
    if matches!(old.phase.as_deref(), Some("Succeeded" | "Failed")) {
        phase = if old.phase.as_deref() == Some("Succeeded") { "Succeeded" } else { "Failed" };
    }

    let sandbox_ready = input.sandbox.is_some_and(|s| s.state == SandboxState::Ready);
    let completed = phase == "Succeeded";
    let unready: Vec<String> = spec
        .containers
        .iter()
        .filter(|c| !containers.iter().any(|s| s.name == c.name && s.ready))
        .map(|c| c.name.clone())
        .chain(init_specs.iter().zip(&init).filter(|(c, s)| is_sidecar(c) && !s.ready).map(|(c, _)| c.name.clone()))
        .collect();
    let containers_ready = if completed {
        condition("ContainersReady", false, Some("PodCompleted"), None)
    } else if unready.is_empty() {
        condition("ContainersReady", true, None, None)
    } else {
        condition(
            "ContainersReady",
            false,
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: [{}]", unready.join(" "))),
        )
    };
    let mut ready = containers_ready.clone();
    ready.type_ = "Ready".into();
    if ready.status == "True" {
        for gate in spec.readiness_gates.iter().flatten() {
            let t = &gate.condition_type;
            match old.conditions.iter().flatten().find(|c| &c.type_ == t) {
                Some(c) if c.status == "True" => {}
                Some(_) => {
                    ready = condition(
                        "Ready",
                        false,
                        Some("ReadinessGatesNotReady"),
                        Some(format!("the status of pod readiness gate \"{t}\" is not \"True\", but False")),
                    );
                    break;
                }
                None => {
                    ready = condition(
                        "Ready",
                        false,
                        Some("ReadinessGatesNotReady"),
                        Some(format!("corresponding condition of pod readiness gate \"{t}\" does not exist.")),
                    );
                    break;
                }
            }
        }
    }
    let initialized_cond = if is_initialized || completed && incomplete.is_empty() {
        condition("Initialized", true, None, None)
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{}]", incomplete.join(" "))),
        )
    };
    let mut conditions = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None),
        initialized_cond,
        ready,
        containers_ready,
    ];
    if !old.conditions.iter().flatten().any(|c| c.type_ == "PodScheduled") {
        conditions.push(condition("PodScheduled", true, None, None));
    }
    for c in &mut conditions {
        let prev = old.conditions.iter().flatten().find(|o| o.type_ == c.type_);
        c.last_transition_time = match prev {
            Some(p) if p.status == c.status => p.last_transition_time.clone(),
            _ => Some(Time(input.now)),
        };
        c.last_probe_time = None;
    }

    let mut pod_ips: Vec<String> =
        input.sandbox.map(|s| s.ips.iter().map(IpAddr::to_string).collect()).unwrap_or_default();
    if spec.host_network.unwrap_or(false) {
        pod_ips = input.host_ips.iter().map(IpAddr::to_string).collect();
    }
    if pod_ips.is_empty() {
        // Keep the address a terminated pod had: its sandbox is gone, not its history.
        pod_ips = old.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect();
    }
    let start_time = old.start_time.clone().or(Some(Time(input.now)));
    let (reason, message) = if input.view.deadline_exceeded {
        (
            Some("DeadlineExceeded".to_string()),
            Some("Pod was active on the node longer than the specified deadline".to_string()),
        )
    } else if let Some(m) = &input.view.evicted {
        (Some("Evicted".to_string()), Some(m.clone()))
    } else {
        (old.reason.clone(), old.message.clone())
    };
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: input.host_ips.first().map(IpAddr::to_string),
        host_ips: Some(input.host_ips.iter().map(|ip| HostIP { ip: ip.to_string() }).collect()),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty()).then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time,
        container_statuses: Some(containers),
        init_container_statuses: (!init.is_empty()).then_some(init),
        qos_class: old.qos_class.clone(),
        reason,
        message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
