//! The conformance cases.

use std::time::{Duration, Instant};

use super::env::Env;
use crate::cri::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_and_exit_codes() {
    let env = Env::new();
    let pod = env.pod("life");
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    let st = env.rt.pod_sandbox_status(&sb).await.unwrap();
    assert_eq!(st.state, SandboxState::Ready);
    assert_eq!(st.name, "life");

    let c = env.rt.create_container(&sb, &env.container("three", "exit 3"), &pod).await.unwrap();
    let s = env.rt.container_status(&c).await.unwrap();
    assert_eq!((s.state, s.started_at), (ContainerState::Created, 0));
    env.rt.start_container(&c).await.unwrap();
    let s = env.wait_exit(&c, Duration::from_secs(10)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (3, "Error"));
    assert!(s.started_at >= s.created_at && s.finished_at >= s.started_at && s.started_at > 0);
    // Starting twice is an error.
    assert!(env.rt.start_container(&c).await.is_err());

    let ok = env.rt.create_container(&sb, &env.container("ok", "true"), &pod).await.unwrap();
    env.rt.start_container(&ok).await.unwrap();
    let s = env.wait_exit(&ok, Duration::from_secs(10)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));

    let all = env.rt.list_containers(&ContainerFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let exited = ContainerFilter { state: Some(ContainerState::Exited), ..Default::default() };
    assert_eq!(env.rt.list_containers(&exited).await.unwrap().len(), 2);

    env.rt.remove_container(&c).await.unwrap();
    env.rt.remove_container(&c).await.unwrap();
    assert!(matches!(env.rt.container_status(&c).await, Err(RuntimeError::NotFound { .. })));
    env.rt.stop_pod_sandbox(&sb).await.unwrap();
    assert_eq!(env.rt.pod_sandbox_status(&sb).await.unwrap().state, SandboxState::NotReady);
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
    assert!(env.rt.list_pod_sandboxes().await.unwrap().is_empty());
    assert!(env.rt.list_containers(&ContainerFilter::default()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_a_start_error() {
    let env = Env::new();
    let pod = env.pod("nope");
    let sb = env.rt.run_pod_sandbox(&pod).await.unwrap();
    let mut cfg = env.container("nope", "");
    cfg.command = vec!["/no/such/program".into()];
    let c = env.rt.create_container(&sb, &cfg, &pod).await.unwrap();
    let e = env.rt.start_container(&c).await.unwrap_err();
    assert!(matches!(e, RuntimeError::Start(_)), "{e}");
    let s = env.wait_exit(&c, Duration::from_secs(5)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (128, "StartError"));
    assert!(s.message.contains("/no/such/program"), "{}", s.message);
    // An unknown image fails at create.
    cfg.image = "missing:latest".into();
    assert!(env.rt.create_container(&sb, &cfg, &pod).await.is_err());
    env.rt.remove_pod_sandbox(&sb).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_processes_filesystem_hostname() {
    let env = Env::new();
    let (st, log) = env
        .run_to_end(
            "iso",
            env.container(
                "iso",
                "echo pid=$$; ps -o pid,comm | wc -l; hostname; ls /; cat /etc/hostname; ls /work 2>&1; ls /dev",
            ),
        )
        .await;
    assert_eq!(st.exit_code, 0, "{log}");
    assert!(log.contains("pid=1\n"), "{log}");
    // Header, sh, ps and wc: nothing of the host.
    assert!(log.contains("\n4\n"), "{log}");
    assert!(log.contains("iso\n"), "{log}");
    assert!(log.contains("No such file"), "host dirs are invisible: {log}");
    for dev in ["null", "zero", "urandom", "pts", "shm", "mqueue", "ptmx"] {
        assert!(log.contains(&format!("{dev}\n")), "/dev/{dev} missing: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_have_both_streams_and_partial_lines() {
    let env = Env::new();
    let (st, log) = env.run_to_end("logs", env.container("logs", "echo out; echo err >&2; printf 'no newline'")).await;
    assert_eq!(st.exit_code, 0);
    assert!(log.contains("out\n") && log.contains("err\n") && log.ends_with("no newline\n"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_honours_the_grace_period() {
    let env = Env::new();
    // Handles TERM: exits 0 right away.
    let (_sb, polite) = env.run("polite", "trap 'exit 0' TERM; while true; do sleep 0.1; done").await;
    // PID 1 without a handler ignores TERM: killed after the grace period.
    let (_sb2, stubborn) = env.run("stubborn", "exec sleep 1000").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    env.rt.stop_container(&polite, Duration::from_secs(10)).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let s = env.rt.container_status(&polite).await.unwrap();
    assert_eq!((s.state, s.exit_code), (ContainerState::Exited, 0));
    let t = Instant::now();
    env.rt.stop_container(&stubborn, Duration::from_secs(1)).await.unwrap();
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "{took:?}");
    let s = env.rt.container_status(&stubborn).await.unwrap();
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));
    // Stopping an exited container is a no-op.
    env.rt.stop_container(&stubborn, Duration::from_secs(1)).await.unwrap();
}
