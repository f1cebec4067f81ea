//! The controllers and scheduler issue's commands with real kubectl against
//! `skiff server --simulate-nodes`: nodes that register and report their pods Running without
//! running anything.

use std::time::Duration;

use skiff_testkit::Cluster;

fn column(out: &str, i: usize) -> Vec<String> {
    out.lines().skip(1).filter_map(|l| l.split_whitespace().nth(i).map(String::from)).collect()
}

#[test]
fn deployments_on_simulated_nodes() {
    let mut c = Cluster::start_with(&["--simulate-nodes", "5", "--sim-node-cpu", "4", "--sim-node-memory", "8Gi"])
        .expect("server starts");
    let nodes = c.kubectl_until(&["get", "nodes"], "5 Ready nodes", |o| o.matches(" Ready ").count() == 5);
    assert_eq!(column(&nodes, 0), ["sim-0", "sim-1", "sim-2", "sim-3", "sim-4"]);
    let cpu =
        c.kubectl(&["get", "node", "sim-2", "-o", "jsonpath={.status.capacity.cpu} {.status.allocatable.memory}"]).ok();
    assert_eq!(cpu, "4 8Gi");

    c.kubectl(&["create", "deployment", "web", "--image=busybox", "--replicas=3"]).ok();
    let status = c.kubectl(&["rollout", "status", "deploy/web", "--timeout=30s"]).ok();
    assert!(status.contains("deployment \"web\" successfully rolled out"), "{status}");
    let pods = c.kubectl(&["get", "pods", "-o", "wide"]).ok();
    assert_eq!(column(&pods, 2), ["Running"; 3], "{pods}");
    assert!(column(&pods, 6).iter().all(|n| n.starts_with("sim-")), "{pods}");

    c.kubectl(&["scale", "deploy", "web", "--replicas=10"]).ok();
    c.kubectl(&["set", "image", "deploy/web", "busybox=busybox:1.36"]).ok();
    let status = c.kubectl(&["rollout", "status", "deploy/web", "--timeout=60s"]).ok();
    assert!(status.contains("successfully rolled out"), "{status}");
    let images = c.kubectl(&["get", "pods", "-o", "jsonpath={.items[*].spec.containers[0].image}"]).ok();
    assert_eq!(images.split(' ').filter(|i| *i == "busybox:1.36").count(), 10, "{images}");
    // Spread over the nodes (LeastAllocated + default topology spreading).
    let wide = c.kubectl(&["get", "pods", "-o", "wide"]).ok();
    let nodes_used: std::collections::BTreeSet<String> = column(&wide, 6).into_iter().collect();
    assert_eq!(nodes_used.len(), 5, "{wide}");

    let history = c.kubectl(&["rollout", "history", "deploy/web"]).ok();
    assert!(history.contains("\n1 ") && history.contains("\n2 "), "{history}");
    c.kubectl(&["rollout", "undo", "deploy/web"]).ok();
    c.kubectl(&["rollout", "status", "deploy/web", "--timeout=60s"]).ok();
    let image = c.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).ok();
    assert_eq!(image, "busybox");
    c.kubectl(&["rollout", "restart", "deploy/web"]).ok();
    c.kubectl(&["rollout", "status", "deploy/web", "--timeout=60s"]).ok();

    // Cordon and drain, within a PodDisruptionBudget.
    c.kubectl(&["cordon", "sim-3"]).ok();
    c.kubectl(&["create", "pdb", "web", "--selector=app=web", "--min-available=9"]).ok();
    c.kubectl_until(&["get", "pdb", "web", "-o", "jsonpath={.status.disruptionsAllowed}"], "budget status", |o| {
        o == "1"
    });
    let drain = c.kubectl(&["drain", "sim-3", "--ignore-daemonsets", "--timeout=90s"]).ok();
    assert!(drain.contains("node/sim-3 drained"), "{drain}");
    let nodes = c.kubectl(&["get", "nodes"]).ok();
    assert!(nodes.contains("sim-3   Ready,SchedulingDisabled"), "{nodes}");
    let on3 = c.kubectl(&["get", "pods", "--field-selector", "spec.nodeName=sim-3", "-o", "name"]).ok();
    assert!(on3.trim().is_empty(), "{on3}");
    c.kubectl_until(&["get", "deploy", "web", "-o", "jsonpath={.status.availableReplicas}"], "10 available", |o| {
        o == "10"
    });

    // A pod that fits nowhere: upstream's FailedScheduling message, sorted events.
    c.kubectl(&[
        "run",
        "huge",
        "--image=busybox",
        "--overrides",
        r#"{"spec":{"containers":[{"name":"huge","image":"busybox","resources":{"requests":{"cpu":"64"}}}]}}"#,
    ])
    .ok();
    let events = c.kubectl_until(&["get", "events", "--sort-by=.lastTimestamp"], "FailedScheduling", |o| {
        o.contains("FailedScheduling")
    });
    assert!(events.contains("0/5 nodes are available: 1 node(s) were unschedulable, 4 Insufficient cpu."), "{events}");
    assert!(events.contains("ScalingReplicaSet") && events.contains("Scheduled"), "{events}");
    let cond = c.kubectl(&["get", "pod", "huge", "-o", "jsonpath={.status.conditions[0].reason}"]).ok();
    assert_eq!(cond, "Unschedulable");

    // Namespace deletion takes everything in it.
    c.kubectl(&["create", "namespace", "demo"]).ok();
    c.kubectl(&["-n", "demo", "create", "deployment", "d", "--image=busybox", "--replicas=2"]).ok();
    c.kubectl(&["-n", "demo", "rollout", "status", "deploy/d", "--timeout=30s"]).ok();
    c.kubectl(&["delete", "namespace", "demo", "--timeout=60s"]).ok();
    let err = c.kubectl(&["get", "namespace", "demo"]).fails();
    assert!(err.contains("NotFound"), "{err}");
    c.kubectl(&["delete", "deploy", "web"]).ok();
    c.kubectl_until(&["get", "pods", "-l", "app=web", "-o", "name"], "pods gone", |o| o.trim().is_empty());

    // SIGTERM stops the components first, so the scheduler and the controller manager release
    // their Leases through a working API server (a write waits for the watch cache, which
    // used to stop first: each release then waited 10 s and failed).
    let took = c.stop_within(Duration::from_secs(8)).unwrap();
    let log = c.log_text();
    assert!(!log.contains("request failed"), "took {took:?}\n{log}");
}

/// `skiff sim` in its own process joins simulated nodes to a running server with the cluster
/// token; a wrong token is refused with the server's answer.
#[test]
fn skiff_sim_process_joins_nodes() {
    let c = Cluster::start_with(&["--disable-controller-manager"]).expect("server starts");
    let dir = c.data_dir.path();
    let token = std::fs::read_to_string(dir.join("token")).unwrap();
    let sim = |token: &str| {
        std::process::Command::new(skiff_testkit::skiff_binary())
            .args(["sim", "--server", &c.url(), "--token", token.trim(), "--nodes", "2", "--name-prefix", "ext-"])
            .arg("--certificate-authority")
            .arg(dir.join("tls/ca.crt"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let bad = sim("not-the-token").wait_with_output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Unauthorized"), "{}", String::from_utf8_lossy(&bad.stderr));

    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _sim = Kill(sim(&token));
    c.kubectl_until(&["get", "nodes"], "2 Ready nodes", |o| o.matches(" Ready ").count() == 2);
    c.kubectl(&["run", "p", "--image=busybox", "--overrides", r#"{"spec":{"nodeName":"ext-1"}}"#]).ok();
    let out = c.kubectl_until(&["get", "pod", "p", "-o", "wide"], "pod Running on ext-1", |o| o.contains("Running"));
    assert!(out.contains("ext-1"), "{out}");
}

/// LimitRange defaults and bounds, ResourceQuota limits and usage, with kubectl.
#[test]
fn limit_ranges_and_quotas() {
    let c = Cluster::start_with(&["--disable-scheduler"]).expect("server starts");
    c.kubectl(&["create", "namespace", "q"]).ok();
    let lr = r#"{"apiVersion":"v1","kind":"LimitRange","metadata":{"name":"lr","namespace":"q"},
        "spec":{"limits":[{"type":"Container","default":{"cpu":"500m"},"defaultRequest":{"cpu":"250m"},"max":{"cpu":"1"}}]}}"#;
    c.kubectl_stdin(&["apply", "-f", "-"], Some(lr)).ok();
    c.kubectl(&["-n", "q", "run", "a", "--image=busybox"]).ok();
    let res = c.kubectl(&["-n", "q", "get", "pod", "a", "-o", "jsonpath={.spec.containers[0].resources}"]).ok();
    assert_eq!(res, r#"{"limits":{"cpu":"500m"},"requests":{"cpu":"250m"}}"#);
    let ann = c
        .kubectl(&["-n", "q", "get", "pod", "a", "-o", "jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger}"])
        .ok();
    assert_eq!(ann, "LimitRanger plugin set: cpu limit for container a; cpu request for container a");
    let big = r#"{"spec":{"containers":[{"name":"big","image":"busybox","resources":{"limits":{"cpu":"2"}}}]}}"#;
    let err = c.kubectl(&["-n", "q", "run", "big", "--image=busybox", "--overrides", big]).fails();
    assert!(
        err.contains(r#"pods "big" is forbidden: [maximum cpu usage per Container is 1, but limit is 2]"#),
        "{err}"
    );

    c.kubectl(&["-n", "q", "create", "quota", "qq", "--hard=pods=2,requests.cpu=600m"]).ok();
    c.kubectl_until(&["-n", "q", "get", "quota", "qq", "-o", "jsonpath={.status.used}"], "quota usage", |o| {
        o == r#"{"pods":"1","requests.cpu":"250m"}"#
    });
    c.kubectl(&["-n", "q", "run", "b", "--image=busybox"]).ok();
    let err = c.kubectl(&["-n", "q", "run", "c", "--image=busybox"]).fails();
    assert!(
        err.contains(r#"pods "c" is forbidden: exceeded quota: qq, requested: pods=1,requests.cpu=250m, used: pods=2,requests.cpu=500m, limited: pods=2,requests.cpu=600m"#),
        "{err}"
    );
    let described = c.kubectl(&["-n", "q", "describe", "quota", "qq"]).ok();
    assert!(described.contains("pods          2     2"), "{described}");
    // Deleting a pod gives its share back.
    c.kubectl(&["-n", "q", "delete", "pod", "a", "--wait=false"]).ok();
    c.kubectl_until(&["-n", "q", "get", "quota", "qq", "-o", "jsonpath={.status.used.pods}"], "usage down", |o| {
        o == "1"
    });
    c.kubectl(&["-n", "q", "run", "c", "--image=busybox"]).ok();
}
