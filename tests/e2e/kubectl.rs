//! End-to-end: the built `skiff server` binary, driven by the real kubectl 1.32, running the
//! commands of the control-plane issue and checking what kubectl prints.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_testkit::Cluster;

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: app
  labels:
    app: web
spec:
  containers:
  - name: web
    image: busybox:1.36
    command: ["sleep", "3600"]
    ports:
    - containerPort: 8080
"#;

fn cluster() -> Cluster {
    Cluster::start().expect("skiff server starts")
}

/// Column headers and rows of kubectl's table output, whitespace-split.
fn table(out: &str) -> Vec<Vec<String>> {
    out.lines().map(|l| l.split_whitespace().map(String::from).collect()).collect()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn version_discovery_and_explain() {
    let c = cluster();
    let v = c.kubectl(&["version", "-o", "json"]).ok();
    let v = json(&v);
    assert!(v["serverVersion"]["gitVersion"].as_str().unwrap().starts_with("v1.33."), "{v}");
    assert_eq!(v["serverVersion"]["minor"], "33");

    let res = c.kubectl(&["api-resources"]).ok();
    let rows = table(&res);
    assert_eq!(rows[0], ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]);
    assert!(rows.contains(&vec!["pods".into(), "po".into(), "v1".into(), "true".into(), "Pod".into()]), "{res}");
    assert!(rows.contains(&vec![
        "deployments".into(),
        "deploy".into(),
        "apps/v1".into(),
        "true".into(),
        "Deployment".into()
    ]));
    assert!(rows.contains(&vec!["namespaces".into(), "ns".into(), "v1".into(), "false".into(), "Namespace".into()]));

    let versions = c.kubectl(&["api-versions"]).ok();
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "autoscaling/v1",
        "networking.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
    ] {
        assert!(versions.lines().any(|l| l == gv), "{gv} missing from\n{versions}");
    }

    let explain = c.kubectl(&["explain", "pod.spec.containers"]).ok();
    assert!(explain.contains("KIND:       Pod"), "{explain}");
    assert!(explain.contains("FIELD: containers <[]Container>"), "{explain}");
    assert!(
        explain.contains("image\t<string>") || explain.contains("image <string>") || explain.contains("image\t"),
        "{explain}"
    );
}

#[test]
fn namespace_configmap_and_pod_lifecycle() {
    let c = cluster();
    assert_eq!(c.kubectl(&["create", "namespace", "demo"]).ok().trim(), "namespace/demo created");
    let readme = c.data_dir.path().join("README.md");
    std::fs::write(&readme, "# hello\nskiff\n").unwrap();
    let from_file = format!("--from-file={}", readme.display());
    let out = c.kubectl(&["-n", "demo", "create", "configmap", "app", "--from-literal=a=1", &from_file]).ok();
    assert_eq!(out.trim(), "configmap/app created");
    let cm = json(&c.kubectl(&["-n", "demo", "get", "cm", "app", "-o", "json"]).ok());
    assert_eq!(cm["data"]["a"], "1");
    assert_eq!(cm["data"]["README.md"], "# hello\nskiff\n");

    // Default (strict) client validation against our OpenAPI, then server-side validation.
    let out = c.kubectl_stdin(&["-n", "demo", "create", "-f", "-"], Some(POD)).ok();
    assert_eq!(out.trim(), "pod/app created");

    let out = c.kubectl(&["-n", "demo", "get", "pods"]).ok();
    let rows = table(&out);
    assert_eq!(rows[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(rows[1][..4], ["app", "0/1", "Pending", "0"]);
    assert!(rows[1][4].ends_with('s'), "age like 2s: {out}");

    let wide = table(&c.kubectl(&["-n", "demo", "get", "pods", "-o", "wide"]).ok());
    assert_eq!(
        wide[0],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
    );
    assert_eq!(wide[1][5..], ["<none>", "<none>", "<none>", "<none>"]);

    let pod = json(&c.kubectl(&["-n", "demo", "get", "pod", "app", "-o", "json"]).ok());
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(pod["spec"]["containers"][0]["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
    let yaml = c.kubectl(&["-n", "demo", "get", "pod", "app", "-o", "yaml"]).ok();
    assert!(yaml.contains("kind: Pod") && yaml.contains("  name: app"), "{yaml}");
    assert_eq!(c.kubectl(&["-n", "demo", "get", "pods", "-o", "name"]).ok().trim(), "pod/app");
    let jp = c.kubectl(&["-n", "demo", "get", "pods", "-o", "jsonpath={.items[*].metadata.name}"]).ok();
    assert_eq!(jp, "app");
    let cc = table(
        &c.kubectl(&[
            "-n",
            "demo",
            "get",
            "pods",
            "-o",
            "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image",
        ])
        .ok(),
    );
    assert_eq!(cc, [vec!["NAME", "IMAGE"], vec!["app", "busybox:1.36"]]);

    let out = c.kubectl(&["-n", "demo", "get", "cm,pods", "--show-labels", "-l", "app=web"]).ok();
    let rows = table(&out);
    assert_eq!(rows[0].last().map(String::as_str), Some("LABELS"));
    assert!(rows.iter().any(|r| r[0] == "pod/app" && r.last().map(String::as_str) == Some("app=web")), "{out}");
    assert!(!out.contains("configmap/app"), "the config map has no app=web label: {out}");

    let out = c.kubectl(&["get", "pods", "-A", "--field-selector", "status.phase=Pending"]).ok();
    let rows = table(&out);
    assert_eq!(rows[0], ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(rows[1][..2], ["demo", "app"]);

    let desc = c.kubectl(&["-n", "demo", "describe", "pod", "app"]).ok();
    let fields: Vec<(String, String)> = desc
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    for (k, v) in [
        ("Name", "app"),
        ("Namespace", "demo"),
        ("Status", "Pending"),
        ("Labels", "app=web"),
        ("Image", "busybox:1.36"),
        ("Port", "8080/TCP"),
        ("QoS Class", "BestEffort"),
        ("Service Account", "default"),
        ("Tolerations", "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s"),
    ] {
        assert!(fields.iter().any(|(a, b)| a == k && b == v), "missing {k}: {v} in\n{desc}");
    }

    assert_eq!(c.kubectl(&["-n", "demo", "label", "pod", "app", "tier=web"]).ok().trim(), "pod/app labeled");
    assert_eq!(c.kubectl(&["-n", "demo", "annotate", "pod", "app", "note=x"]).ok().trim(), "pod/app annotated");
    let pod = json(&c.kubectl(&["-n", "demo", "get", "pod", "app", "-o", "json"]).ok());
    assert_eq!(pod["metadata"]["labels"]["tier"], "web");
    assert_eq!(pod["metadata"]["annotations"]["note"], "x");

    // kubectl edit with a scripted editor.
    let out = c
        .kubectl_env(
            &["-n", "demo", "edit", "cm", "app"],
            &[("KUBE_EDITOR", "sed -i s/a:\\ \\\"1\\\"/a:\\ \\\"2\\\"/")],
        )
        .ok();
    assert_eq!(out.trim(), "configmap/app edited");
    let cm = json(&c.kubectl(&["-n", "demo", "get", "cm", "app", "-o", "json"]).ok());
    assert_eq!(cm["data"]["a"], "2");

    assert_eq!(c.kubectl(&["-n", "demo", "delete", "pod", "app"]).ok().trim(), "pod \"app\" deleted");
    let err = c.kubectl(&["-n", "demo", "get", "pod", "app"]).fails();
    assert_eq!(err.trim(), "Error from server (NotFound): pods \"app\" not found");
    let out = c.kubectl(&["delete", "namespace", "demo", "--timeout=30s"]).ok();
    assert_eq!(out.trim(), "namespace \"demo\" deleted");
    let err = c.kubectl(&["get", "namespace", "demo"]).fails();
    assert!(err.contains("namespaces \"demo\" not found"), "{err}");
}

#[test]
fn get_watch_prints_each_change() {
    let c = cluster();
    c.kubectl(&["create", "namespace", "w"]).ok();
    let mut watch = c.kubectl_spawn(&["-n", "w", "get", "pods", "-w"]).unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    c.kubectl_stdin(&["-n", "w", "create", "-f", "-"], Some(POD)).ok();
    c.kubectl(&["-n", "w", "label", "pod", "app", "step=2"]).ok();
    c.kubectl(&["-n", "w", "delete", "pod", "app", "--wait=false"]).ok();
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lines.len() < 4 && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    let rows = table(&lines.join("\n"));
    assert!(rows.len() >= 3, "watch printed {lines:?}");
    assert_eq!(rows[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(rows[1..].iter().all(|r| r[0] == "app" && r[2] == "Pending"), "{lines:?}");
}

#[test]
fn apply_patch_and_scale() {
    let c = cluster();
    let v1 = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox:1.35
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
"#;
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(v1)).ok();
    assert_eq!(out.trim(), "deployment.apps/web created");
    // The second apply sends a strategic merge patch computed from last-applied-configuration:
    // a changed image and a removed env var.
    let v2 = v1.replace("busybox:1.35", "busybox:1.36").replace("        - {name: B, value: \"2\"}\n", "");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(&v2)).ok();
    assert_eq!(out.trim(), "deployment.apps/web configured");
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json"]).ok());
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1.36");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["env"], serde_json::json!([{"name": "A", "value": "1"}]));
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(c.kubectl_stdin(&["apply", "-f", "-"], Some(&v2)).ok().trim(), "deployment.apps/web unchanged");

    assert_eq!(c.kubectl(&["scale", "deploy", "web", "--replicas=5"]).ok().trim(), "deployment.apps/web scaled");
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json"]).ok());
    assert_eq!(d["spec"]["replicas"], 5);

    c.kubectl(&["patch", "deploy", "web", "--type=merge", "-p", r#"{"metadata":{"labels":{"m":"1"}}}"#]).ok();
    c.kubectl(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#,
    ])
    .ok();
    c.kubectl(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"busybox:1.37"}]}}}}"#,
    ])
    .ok();
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json"]).ok());
    assert_eq!(d["metadata"]["labels"]["m"], "1");
    assert_eq!(d["metadata"]["labels"]["j"], "2");
    let containers = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "strategic merge merged by name");
    assert_eq!(containers[0]["image"], "busybox:1.37");
    assert_eq!(containers[0]["env"][0]["name"], "A");

    let err = c
        .kubectl(&[
            "patch",
            "deploy",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
        ])
        .fails();
    assert!(err.contains("testing value /spec/replicas failed"), "{err}");
}

#[test]
fn errors_print_like_upstream() {
    let c = cluster();
    let err = c.kubectl(&["get", "pod", "nope"]).fails();
    assert_eq!(err.trim(), "Error from server (NotFound): pods \"nope\" not found");
    let bad = POD.replace("    image: busybox:1.36\n", "");
    let err = c.kubectl_stdin(&["create", "-f", "-"], Some(&bad)).fails();
    assert!(err.contains("The Pod \"app\" is invalid: spec.containers[0].image: Required value"), "{err}");
    let err = c.kubectl_stdin(&["create", "-f", "-"], Some(&POD.replace("name: app", "name: Bad_Name"))).fails();
    assert!(err.contains("metadata.name: Invalid value: \"Bad_Name\""), "{err}");
    // Strict client-side validation finds unknown fields through our OpenAPI.
    let err = c
        .kubectl_stdin(&["create", "-f", "-"], Some(&POD.replace("    command:", "    bogus: 1\n    command:")))
        .fails();
    assert!(err.contains("unknown field \"spec.containers[0].bogus\""), "{err}");
    c.kubectl_stdin(&["create", "-f", "-"], Some(POD)).ok();
    let err = c.kubectl_stdin(&["create", "-f", "-"], Some(POD)).fails();
    assert!(err.contains("pods \"app\" already exists"), "{err}");
}

#[test]
fn data_survives_a_restart() {
    let mut c = cluster();
    c.kubectl(&["create", "namespace", "keep"]).ok();
    c.kubectl(&["-n", "keep", "create", "configmap", "c", "--from-literal=k=v"]).ok();
    let before = json(&c.kubectl(&["-n", "keep", "get", "cm", "c", "-o", "json"]).ok());
    c.restart().unwrap();
    let after = json(&c.kubectl(&["-n", "keep", "get", "cm", "c", "-o", "json"]).ok());
    assert_eq!(before["metadata"]["uid"], after["metadata"]["uid"]);
    assert_eq!(after["data"]["k"], "v");
    // The same kubeconfig and certificates still work; the `kubernetes` Service kept its IP.
    let svc = json(&c.kubectl(&["get", "svc", "kubernetes", "-o", "json"]).ok());
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1");
}

/// The workload commands of the controllers issue, with no nodes: ReplicaSets and pods are
/// created, scaled, rolled out, rolled back and cascaded by the controller manager.
#[test]
fn deployments_replicasets_and_cascading_deletion() {
    let c = cluster();
    c.kubectl(&["create", "deployment", "web", "--image=busybox", "--replicas=3"]).ok();
    let pods = c.kubectl_until(&["get", "pods", "-l", "app=web", "-o", "name"], "3 pods", |o| o.lines().count() == 3);
    assert!(pods.lines().all(|l| l.starts_with("pod/web-")), "{pods}");
    let rs = c.kubectl_until(&["get", "rs", "-o", "wide"], "replica set status", |o| {
        table(o).get(1).is_some_and(|r| r.get(2).map(String::as_str) == Some("3"))
    });
    let rows = table(&rs);
    assert_eq!(rows[0][..4], ["NAME", "DESIRED", "CURRENT", "READY"]);
    assert!(rows[1][0].starts_with("web-") && rows[1][1] == "3" && rows[1][2] == "3", "{rs}");
    assert!(rows[1].last().unwrap().starts_with("app=web,pod-template-hash="), "{rs}");
    // Events as upstream's controllers write them.
    let rs_name = rows[1][0].clone();
    let described =
        c.kubectl_until(&["describe", "deploy", "web"], "the scaling event", |o| o.contains("ScalingReplicaSet"));
    assert!(described.contains(&format!("Scaled up replica set {rs_name} from 0 to 3")), "{described}");
    let described = c.kubectl_until(&["describe", "rs", &rs_name], "three create events", |o| {
        o.matches("SuccessfulCreate").count() == 3
    });
    assert!(described.contains("replicaset-controller  Created pod: web-"), "{described}");

    c.kubectl(&["scale", "deploy", "web", "--replicas=5"]).ok();
    c.kubectl_until(&["get", "pods", "-l", "app=web", "-o", "name"], "5 pods", |o| o.lines().count() == 5);
    c.kubectl(&["set", "image", "deploy/web", "busybox=busybox:1.36"]).ok();
    c.kubectl_until(&["get", "rs", "-o", "name"], "a second replica set", |o| o.lines().count() == 2);
    let history = c.kubectl_until(&["rollout", "history", "deploy/web"], "two revisions", |o| o.contains("\n2 "));
    assert!(history.contains("REVISION  CHANGE-CAUSE"), "{history}");
    // No pod can become ready without nodes: rollout status reports the wait and times out.
    let status = c.kubectl(&["rollout", "status", "deploy/web", "--timeout=1s"]);
    assert_ne!(status.status, 0);
    assert!(status.stdout.contains("Waiting for deployment \"web\" rollout to finish"), "{status:?}");
    assert!(status.stderr.contains("timed out waiting for the condition"), "{status:?}");

    let undo = c.kubectl(&["rollout", "undo", "deploy/web"]).ok();
    assert_eq!(undo.trim(), "deployment.apps/web rolled back");
    c.kubectl_until(
        &["get", "deploy", "web", "-o", "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"],
        "revision 3",
        |o| o == "3",
    );
    let image = c.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]).ok();
    assert_eq!(image, "busybox");

    c.kubectl(&["rollout", "pause", "deploy/web"]).ok();
    c.kubectl(&["set", "image", "deploy/web", "busybox=busybox:1.37"]).ok();
    c.kubectl_until(
        &["get", "deploy", "web", "-o", "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}"],
        "paused",
        |o| o == "DeploymentPaused",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.kubectl(&["get", "rs", "-o", "name"]).ok().lines().count(), 2, "paused: no new replica set");
    c.kubectl(&["rollout", "resume", "deploy/web"]).ok();
    c.kubectl_until(&["get", "rs", "-o", "name"], "a third replica set", |o| o.lines().count() == 3);

    // Orphan keeps the replica sets (without owner), background deletes everything.
    c.kubectl(&["create", "deployment", "keep", "--image=busybox", "--replicas=2"]).ok();
    c.kubectl_until(&["get", "pods", "-l", "app=keep", "-o", "name"], "2 pods", |o| o.lines().count() == 2);
    c.kubectl(&["delete", "deploy", "keep", "--cascade=orphan"]).ok();
    let owners = c.kubectl_until(
        &["get", "rs", "-l", "app=keep", "-o", "jsonpath={.items[*].metadata.ownerReferences}"],
        "orphaned",
        |o| o.is_empty(),
    );
    assert_eq!(owners, "");
    // The replica set itself stays (an empty jsonpath would also mean it was deleted).
    assert_eq!(c.kubectl(&["get", "rs", "-l", "app=keep", "-o", "name"]).ok().lines().count(), 1, "orphaned rs kept");
    c.kubectl(&["delete", "deploy", "web"]).ok();
    c.kubectl_until(&["get", "rs,pods", "-l", "app=web", "-o", "name"], "cascade", |o| o.trim().is_empty());
    assert_eq!(c.kubectl(&["get", "pods", "-l", "app=keep", "-o", "name"]).ok().lines().count(), 2);

    // Namespaces: a new one gets its defaults; system ones cannot be deleted.
    c.kubectl(&["create", "namespace", "team"]).ok();
    c.kubectl_until(&["-n", "team", "get", "sa,cm", "-o", "name"], "defaults", |o| {
        o.contains("serviceaccount/default") && o.contains("configmap/kube-root-ca.crt")
    });
    let err = c.kubectl(&["delete", "namespace", "default"]).fails();
    assert!(err.contains("namespaces \"default\" is forbidden: this namespace may not be deleted"), "{err}");
}
