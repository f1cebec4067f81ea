use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;
use skiff_runtime::cri::ContainerStatus;

use super::*;

fn pod(v: serde_json::Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

fn sandbox() -> PodSandboxStatus {
    PodSandboxStatus {
        id: "sb".into(),
        name: "p".into(),
        namespace: "ns".into(),
        uid: "u".into(),
        attempt: 0,
        state: SandboxState::Ready,
        created_at: 1,
        ips: vec!["10.42.0.7".parse().unwrap()],
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

fn ctr(name: &str, attempt: u32, state: RtState, exit: i32) -> ContainerStatus {
    ContainerStatus {
        id: format!("{name}-{attempt}"),
        sandbox_id: "sb".into(),
        name: name.into(),
        attempt,
        state,
        created_at: 1_700_000_000_000_000_000 + i64::from(attempt),
        started_at: 1_700_000_000_000_000_000,
        finished_at: if state == RtState::Exited { 1_700_000_001_000_000_000 } else { 0 },
        exit_code: exit,
        reason: String::new(),
        message: String::new(),
        image: "busybox".into(),
        image_ref: "sha256:abc".into(),
        log_path: PathBuf::new(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

fn run(p: &Pod, sb: Option<&PodSandboxStatus>, cs: &[ContainerStatus], view: &WorkerView) -> PodStatus {
    let hosts: Vec<IpAddr> = vec!["192.0.2.10".parse().unwrap()];
    pod_status(p, &Inputs { sandbox: sb, containers: cs, view, host_ips: &hosts, now: Timestamp::now() })
}

fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
    s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == t).unwrap()
}

fn web(policy: &str) -> Pod {
    pod(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"restartPolicy": policy, "containers": [{"name": "web", "image": "busybox"}]},
        "status": {"phase": "Pending", "qosClass": "BestEffort",
            "conditions": [{"type": "PodScheduled", "status": "True"}]},
    }))
}

#[test]
fn creating_then_running() {
    let p = web("Always");
    let s = run(&p, None, &[], &WorkerView::default());
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let st = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(st.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("ContainerCreating"));
    assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
    assert_eq!(cond(&s, "Ready").message.as_deref(), Some("containers with unready status: [web]"));
    assert_eq!(s.host_ip.as_deref(), Some("192.0.2.10"));
    assert!(s.pod_ip.is_none());

    let sb = sandbox();
    let c = ctr("web", 0, RtState::Running, 0);
    let mut view = WorkerView::default();
    view.started.insert(c.id.clone());
    view.ready.insert(c.id.clone());
    let s = run(&p, Some(&sb), &[c], &view);
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.7"));
    let st = &s.container_statuses.as_ref().unwrap()[0];
    assert!(st.ready && st.started == Some(true));
    assert_eq!(st.container_id.as_deref(), Some("skiff://web-0"));
    assert_eq!(st.image_id, "sha256:abc");
    for t in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"] {
        assert_eq!(cond(&s, t).status, "True", "{t}");
    }
    // The scheduler's condition is not ours to write again.
    assert!(s.conditions.as_ref().unwrap().iter().all(|c| c.type_ != "PodScheduled"));
}

#[test]
fn crash_loop_shows_error_then_back_off() {
    let p = web("Always");
    let sb = sandbox();
    let cs = [ctr("web", 0, RtState::Exited, 0), ctr("web", 1, RtState::Exited, 2)];
    // Just exited, no decision yet: terminated Error.
    let s = run(&p, Some(&sb), &cs, &WorkerView::default());
    let st = &s.container_statuses.as_ref().unwrap()[0];
    let t = st.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((t.exit_code, t.reason.as_deref()), (2, Some("Error")));
    assert_eq!(st.restart_count, 1);
    assert_eq!(st.last_state.as_ref().unwrap().terminated.as_ref().unwrap().reason.as_deref(), Some("Completed"));
    assert_eq!(s.phase.as_deref(), Some("Running"));
    // Back-off decided: waiting CrashLoopBackOff, the exit in lastState.
    let mut view = WorkerView::default();
    view.waiting
        .insert("web".into(), ("CrashLoopBackOff".into(), "back-off 10s restarting failed container=web".into()));
    let s = run(&p, Some(&sb), &cs, &view);
    let st = &s.container_statuses.as_ref().unwrap()[0];
    let w = st.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(st.last_state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 2);
    assert_eq!(s.phase.as_deref(), Some("Running"));
}

#[test]
fn terminal_phases_by_restart_policy() {
    let sb = sandbox();
    let ok = [ctr("web", 0, RtState::Exited, 0)];
    let bad = [ctr("web", 0, RtState::Exited, 1)];
    let s = run(&web("Never"), Some(&sb), &ok, &WorkerView::default());
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
    assert_eq!(run(&web("Never"), Some(&sb), &bad, &WorkerView::default()).phase.as_deref(), Some("Failed"));
    assert_eq!(run(&web("OnFailure"), Some(&sb), &bad, &WorkerView::default()).phase.as_deref(), Some("Running"));
    assert_eq!(run(&web("OnFailure"), Some(&sb), &ok, &WorkerView::default()).phase.as_deref(), Some("Succeeded"));
    // Being deleted: terminal whatever the policy.
    let view = WorkerView { terminating: true, ..Default::default() };
    assert_eq!(run(&web("Always"), Some(&sb), &bad, &view).phase.as_deref(), Some("Failed"));
    // Once terminal, always terminal.
    let mut done = web("Always");
    done.status.as_mut().unwrap().phase = Some("Succeeded".into());
    assert_eq!(run(&done, Some(&sb), &[], &WorkerView::default()).phase.as_deref(), Some("Succeeded"));
}

#[test]
fn init_containers_gate_the_pod() {
    let p = pod(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"initContainers": [{"name": "i1", "image": "b"}, {"name": "i2", "image": "b"}],
                 "containers": [{"name": "web", "image": "b"}]},
    }));
    let sb = sandbox();
    let s = run(&p, Some(&sb), &[ctr("i1", 0, RtState::Running, 0)], &WorkerView::default());
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(cond(&s, "Initialized").message.as_deref(), Some("containers with incomplete status: [i1 i2]"));
    let init = s.init_container_statuses.as_ref().unwrap();
    assert_eq!(init[1].state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("PodInitializing"));
    let web = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(web.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("PodInitializing"));
    // A failing init container with restartPolicy Never fails the pod.
    let mut never = p.clone();
    never.spec.as_mut().unwrap().restart_policy = Some("Never".into());
    let s = run(&never, Some(&sb), &[ctr("i1", 0, RtState::Exited, 3)], &WorkerView::default());
    assert_eq!(s.phase.as_deref(), Some("Failed"));
    // Both done: initialized, and the app container is being created.
    let done = [ctr("i1", 0, RtState::Exited, 0), ctr("i2", 0, RtState::Exited, 0)];
    let s = run(&p, Some(&sb), &done, &WorkerView::default());
    assert_eq!(cond(&s, "Initialized").status, "True");
    let web = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(web.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("ContainerCreating"));
}

#[test]
fn transition_times_survive_unchanged_conditions_and_readiness_gates_hold_ready() {
    let mut p = web("Always");
    let sb = sandbox();
    let c = ctr("web", 0, RtState::Running, 0);
    let mut view = WorkerView::default();
    view.started.insert(c.id.clone());
    view.ready.insert(c.id.clone());
    let first = run(&p, Some(&sb), std::slice::from_ref(&c), &view);
    p.status = Some(first.clone());
    let second = run(&p, Some(&sb), std::slice::from_ref(&c), &view);
    assert_eq!(cond(&first, "Ready").last_transition_time, cond(&second, "Ready").last_transition_time);
    p.spec.as_mut().unwrap().readiness_gates =
        Some(vec![serde_json::from_value(json!({"conditionType": "example.com/lb"})).unwrap()]);
    let gated = run(&p, Some(&sb), &[c], &view);
    assert_eq!(cond(&gated, "Ready").status, "False");
    assert_eq!(cond(&gated, "ContainersReady").status, "True");
    assert_eq!(
        cond(&gated, "Ready").message.as_deref(),
        Some("corresponding condition of pod readiness gate \"example.com/lb\" does not exist.")
    );
}
