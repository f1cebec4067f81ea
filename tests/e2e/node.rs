//! Whole one-node clusters (`skiff server` with its node agent) running real containers from
//! a busybox image built here, driven by real kubectl 1.32 the way the README shows: logs,
//! exec, attach, cp, port-forward, restarts with back-off, probes, init containers, volumes,
//! environment, graceful deletion, and fail-static restarts of skiff itself.
//!
//! Needs root and `busybox-static` (scripts/test.sh installs it). Every cluster runs
//! `skiff reset` when dropped: no container, mount, link or cgroup outlives a test.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_testkit::Cluster;
use skiff_testkit::images::busybox_archive;

fn node() -> Cluster {
    let c = Cluster::start_node(&[]).expect("starting a one-node cluster");
    c.import_image(&busybox_archive(&["busybox:latest"])).expect("importing busybox");
    c.kubectl_until(&["get", "nodes", "--no-headers"], "the node to be Ready", |o| o.contains(" Ready "));
    c
}

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl(&a).ok()).expect("kubectl json")
}

#[track_caller]
fn wait_for(c: &Cluster, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", tail(&c.log_text()));
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn phase(c: &Cluster, pod: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]).stdout
}

fn run(c: &Cluster, args: &[&str]) {
    let mut a = vec!["run"];
    a.extend_from_slice(args);
    c.kubectl(&a).ok();
}

fn running(c: &Cluster, pod: &str) {
    wait_for(c, &format!("pod {pod} Running"), Duration::from_secs(60), || phase(c, pod) == "Running");
}

#[test]
fn node_registers_and_pods_run_with_logs_exec_cp_attach_and_port_forward() {
    let c = node();
    let wide = c.kubectl(&["get", "nodes", "-o", "wide"]).ok();
    assert!(wide.contains("control-plane,master") && wide.contains("skiff://"), "{wide}");
    let n = json(&c, &["get", "nodes"]);
    let node = &n["items"][0];
    assert_eq!(node["status"]["addresses"][0]["type"], "InternalIP");
    assert!(node["status"]["capacity"]["cpu"].as_str().is_some_and(|v| v.parse::<u32>().unwrap() >= 1));
    assert_eq!(node["status"]["capacity"]["pods"], "110");
    assert!(node["status"]["nodeInfo"]["kernelVersion"].as_str().is_some_and(|k| !k.is_empty()));
    let name = node["metadata"]["name"].as_str().unwrap().to_string();
    c.kubectl_until(&["get", "lease", "-n", "kube-node-lease", &name], "the node lease", |o| o.contains(&name));

    run(
        &c,
        &[
            "web",
            "--image=busybox",
            "--image-pull-policy=IfNotPresent",
            "--restart=Never",
            "--",
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            "/www",
        ],
    );
    running(&c, "web");
    let pod = json(&c, &["get", "pod", "web"]);
    let ip = pod["status"]["podIP"].as_str().unwrap();
    assert!(ip.starts_with("10.42."), "{ip}");
    assert_eq!(pod["status"]["hostIP"], "127.0.0.1");
    let st = &pod["status"]["containerStatuses"][0];
    assert_eq!((st["ready"].as_bool(), st["restartCount"].as_i64()), (Some(true), Some(0)));
    assert!(st["containerID"].as_str().unwrap().starts_with("skiff://"));
    assert!(st["imageID"].as_str().unwrap().starts_with("sha256:"));
    let conds: Vec<&str> =
        pod["status"]["conditions"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    for t in ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"] {
        assert!(conds.contains(&t), "{conds:?}");
    }

    // exec: output, exit codes, stdin.
    assert_eq!(c.kubectl(&["exec", "web", "--", "cat", "/etc/hostname"]).ok().trim(), "web");
    let out = c.kubectl(&["exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status, 3, "{out:?}");
    assert!(out.stdout.contains("out") && out.stderr.contains("command terminated with exit code 3"), "{out:?}");
    let out = c.kubectl_stdin(&["exec", "-i", "web", "--", "wc", "-c"], Some("twelve bytes"));
    assert_eq!(out.ok().trim(), "12");
    let out = c.kubectl(&["exec", "web", "-c", "nope", "--", "true"]);
    assert!(out.stderr.contains("container nope is not valid for pod web"), "{out:?}");

    // cp both ways (tar over exec).
    let local = c.data_dir.path().join("to-pod.txt");
    std::fs::write(&local, "copied in\n").unwrap();
    c.kubectl(&["cp", local.to_str().unwrap(), "web:/tmp/in.txt"]).ok();
    assert_eq!(c.kubectl(&["exec", "web", "--", "cat", "/tmp/in.txt"]).ok(), "copied in\n");
    let back = c.data_dir.path().join("passwd");
    c.kubectl(&["cp", "web:/etc/passwd", back.to_str().unwrap()]).ok();
    assert!(std::fs::read_to_string(&back).unwrap().starts_with("root:x:0:0"));

    // port-forward (SPDY in a WebSocket) to httpd.
    let body = c.get_through_port_forward("pod/web", 8080, "/index.html").unwrap();
    assert!(body.contains("hello from skiff"), "{body}");

    // logs: --tail, --timestamps, -f, attach.
    run(
        &c,
        &[
            "tick",
            "--image=busybox",
            "--image-pull-policy=IfNotPresent",
            "--",
            "sh",
            "-c",
            "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done",
        ],
    );
    running(&c, "tick");
    c.kubectl_until(&["logs", "tick"], "ticks", |o| o.contains("tick 3"));
    let t = c.kubectl(&["logs", "tick", "--tail=2", "--timestamps"]).ok();
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2, "{t}");
    assert!(lines.iter().all(|l| l.split(' ').next().is_some_and(|ts| ts.ends_with('Z') && ts.contains('T'))), "{t}");
    for args in [vec!["logs", "-f", "tick"], vec!["attach", "tick"]] {
        let mut child = c.kubectl_spawn(&args).unwrap();
        let mut r = BufReader::new(child.stdout.take().unwrap());
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap() == 0 {
                break;
            }
            if l.starts_with("tick") {
                seen.push(l);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(seen.len(), 3, "{args:?}: {seen:?}");
    }

    // describe reads like upstream's.
    let d = c.kubectl(&["describe", "pod", "web"]).ok();
    for e in ["Scheduled", "Pulled", "Created", "Started", "Created container: web", "already present on machine"] {
        assert!(d.contains(e), "{e} missing:\n{d}");
    }

    // Graceful deletion with a grace period: SIGTERM is ignored by sleep as PID 1, so it is
    // killed when the period ends; the pod's files go with it.
    run(
        &c,
        &["sleeper", "--image=busybox", "--image-pull-policy=IfNotPresent", "--restart=Never", "--", "sleep", "3600"],
    );
    running(&c, "sleeper");
    let uid = c.kubectl(&["get", "pod", "sleeper", "-o", "jsonpath={.metadata.uid}"]).ok();
    let started = Instant::now();
    c.kubectl(&["delete", "pod", "sleeper", "--grace-period=2"]).ok();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(20), "{took:?}");
    assert!(c.kubectl(&["get", "pod", "sleeper"]).stderr.contains("NotFound"));
    assert!(!c.data_dir.path().join("pods").join(&uid).exists());
    let logs = std::fs::read_dir(c.data_dir.path().join("logs/pods")).unwrap();
    assert!(logs.flatten().all(|e| !e.file_name().to_string_lossy().contains(&uid)));
}

#[test]
fn crash_loops_back_off_and_keep_the_previous_logs() {
    let c = node();
    run(
        &c,
        &[
            "crashy",
            "--image=busybox",
            "--image-pull-policy=IfNotPresent",
            "--",
            "sh",
            "-c",
            "echo run $(cat /proc/uptime); exit 2",
        ],
    );
    // Watch every status: Error (terminated) shows before CrashLoopBackOff, as upstream.
    let mut w = c.kubectl_spawn(&["get", "pod", "crashy", "-w", "--no-headers"]).unwrap();
    let stdout = w.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_secs(1)) {
            seen.push(l.split_whitespace().nth(2).unwrap_or_default().to_string());
            if seen.iter().filter(|s| *s == "CrashLoopBackOff").count() >= 2 {
                break;
            }
        }
    }
    let _ = w.kill();
    let _ = w.wait();
    let first_error = seen.iter().position(|s| s == "Error");
    let first_backoff = seen.iter().position(|s| s == "CrashLoopBackOff");
    assert!(first_error.is_some() && first_error < first_backoff, "{seen:?}");
    let pod = json(&c, &["get", "pod", "crashy"]);
    let st = &pod["status"]["containerStatuses"][0];
    assert!(st["restartCount"].as_i64().unwrap() >= 2, "{st}");
    assert_eq!(st["lastState"]["terminated"]["exitCode"], 2);
    assert_eq!(pod["status"]["phase"], "Running");
    if st["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
        let msg = st["state"]["waiting"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with("back-off ") && msg.contains("restarting failed container=crashy pod=crashy_default("),
            "{msg}"
        );
    }
    assert!(c.kubectl(&["logs", "crashy", "--previous"]).ok().starts_with("run "));
    let ev = c.kubectl(&["get", "events", "--field-selector", "involvedObject.name=crashy"]).ok();
    assert!(ev.contains("BackOff") && ev.contains("Back-off restarting failed container crashy"), "{ev}");

    // A bad image: ErrImagePull, then ImagePullBackOff (nothing listens on port 1).
    run(&c, &["nopull", "--image=127.0.0.1:1/nothing:1"]);
    c.kubectl_until(&["get", "pod", "nopull"], "an image pull failure", |o| {
        o.contains("ErrImagePull") || o.contains("ImagePullBackOff")
    });
    c.kubectl_until(&["get", "pod", "nopull"], "ImagePullBackOff", |o| o.contains("ImagePullBackOff"));
    let d = c.kubectl(&["describe", "pod", "nopull"]).ok();
    assert!(
        d.contains("Failed to pull image \"127.0.0.1:1/nothing:1\"") && d.contains("Back-off pulling image"),
        "{d}"
    );
}

const WORKLOAD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello, "file.txt": "from a configmap\n"}
---
apiVersion: v1
kind: Pod
metadata: {name: full, labels: {app: full}}
spec:
  initContainers:
  - name: prepare
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo prepared > /work/state"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "cat /work/state; echo $GREETING $POD_NAME $(MY_NS); sleep 3600"]
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: settings, key: greeting}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MY_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    readinessProbe:
      exec: {command: [test, -f, /tmp/ready]}
      periodSeconds: 1
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: cfg, mountPath: /etc/cfg}
  volumes:
  - {name: work, emptyDir: {}}
  - {name: cfg, configMap: {name: settings}}
---
apiVersion: v1
kind: Pod
metadata: {name: unhealthy}
spec:
  containers:
  - name: app
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    livenessProbe:
      exec: {command: ["false"]}
      periodSeconds: 1
      failureThreshold: 1
  terminationGracePeriodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: once-ok}
spec:
  restartPolicy: OnFailure
  containers: [{name: app, image: busybox, imagePullPolicy: IfNotPresent, command: ["true"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: once-bad}
spec:
  restartPolicy: Never
  containers: [{name: app, image: busybox, imagePullPolicy: IfNotPresent, command: [sh, -c, "echo it went wrong > /dev/termination-log; exit 1"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: missing-ref}
spec:
  containers:
  - name: app
    image: busybox
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    env: [{name: X, valueFrom: {configMapKeyRef: {name: absent, key: k}}}]
"#;

#[test]
fn init_containers_volumes_env_probes_and_restart_policies() {
    let c = node();
    c.kubectl_stdin(&["apply", "-f", "-"], Some(WORKLOAD)).ok();
    running(&c, "full");
    c.kubectl_until(&["logs", "full"], "the app's first lines", |o| o.contains("hello full default"));
    assert!(c.kubectl(&["logs", "full"]).ok().starts_with("prepared\n"));
    assert_eq!(c.kubectl(&["logs", "full", "-c", "prepare"]).ok(), "");
    assert_eq!(c.kubectl(&["exec", "full", "--", "cat", "/etc/cfg/file.txt"]).ok(), "from a configmap\n");
    let pod = json(&c, &["get", "pod", "full"]);
    assert_eq!(pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
    // Not ready until the readiness probe passes.
    assert_eq!(pod["status"]["containerStatuses"][0]["ready"], false);
    c.kubectl(&["exec", "full", "--", "touch", "/tmp/ready"]).ok();
    c.kubectl_until(&["get", "pod", "full", "--no-headers"], "full to be ready", |o| o.contains("1/1"));
    // ConfigMap updates reach the volume while the pod runs.
    c.kubectl(&["patch", "configmap", "settings", "-p", r#"{"data":{"file.txt":"updated\n"}}"#]).ok();
    wait_for(&c, "the configmap update in the volume", Duration::from_secs(40), || {
        c.kubectl(&["exec", "full", "--", "cat", "/etc/cfg/file.txt"]).stdout == "updated\n"
    });

    // Liveness failure: killed and restarted, with Unhealthy and Killing events.
    c.kubectl_until(
        &["get", "pod", "unhealthy", "-o", "jsonpath={.status.containerStatuses[0].restartCount}"],
        "a liveness restart",
        |o| o.parse::<i32>().is_ok_and(|n| n >= 1),
    );
    let d = c.kubectl(&["describe", "pod", "unhealthy"]).ok();
    assert!(d.contains("Liveness probe failed") && d.contains("failed liveness probe, will be restarted"), "{d}");

    // Restart policies and termination messages.
    wait_for(&c, "once-ok to succeed", Duration::from_secs(30), || phase(&c, "once-ok") == "Succeeded");
    wait_for(&c, "once-bad to fail", Duration::from_secs(30), || phase(&c, "once-bad") == "Failed");
    let bad = json(&c, &["get", "pod", "once-bad"]);
    let t = &bad["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!((t["exitCode"].as_i64(), t["reason"].as_str()), (Some(1), Some("Error")));
    assert_eq!(t["message"], "it went wrong\n");
    let get = c.kubectl(&["get", "pods", "once-ok", "once-bad", "--no-headers"]).ok();
    assert!(get.contains("Completed") && get.contains("Error"), "{get}");

    // A missing ConfigMap reference: CreateContainerConfigError with upstream's message.
    c.kubectl_until(
        &["get", "pod", "missing-ref", "-o", "jsonpath={.status.containerStatuses[0].state.waiting.message}"],
        "CreateContainerConfigError",
        |o| o.contains("configmap \"absent\" not found"),
    );
    assert!(c.kubectl(&["get", "pod", "missing-ref"]).ok().contains("CreateContainerConfigError"));
}

#[test]
fn containers_survive_a_crash_of_skiff_and_are_adopted() {
    let mut c = node();
    run(&c, &["keep", "--image=busybox", "--image-pull-policy=IfNotPresent", "--", "sleep", "3600"]);
    running(&c, "keep");
    let id = c.kubectl(&["get", "pod", "keep", "-o", "jsonpath={.status.containerStatuses[0].containerID}"]).ok();
    c.kill();
    let procs = std::process::Command::new("pgrep").args(["-f", "sleep 3600"]).stdout(Stdio::piped()).output().unwrap();
    assert!(!procs.stdout.is_empty(), "the container died with skiff");
    c.start_again().unwrap();
    c.kubectl_until(&["get", "nodes", "--no-headers"], "the node Ready again", |o| o.contains(" Ready "));
    std::thread::sleep(Duration::from_secs(3));
    let pod = json(&c, &["get", "pod", "keep"]);
    let st = &pod["status"]["containerStatuses"][0];
    assert_eq!(st["containerID"].as_str(), Some(id.as_str()), "{st}");
    assert_eq!(st["restartCount"], 0);
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(c.kubectl(&["exec", "keep", "--", "echo", "still here"]).ok().trim(), "still here");
}
