//! Server-side apply, dry-run and diff with kubectl: ownership, conflicts, force, migration
//! from client-side apply, pruning.

use serde_json::Value;
use skiff_testkit::Cluster;

const DEPLOY: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
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
"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The (manager, operation) pairs of managedFields, leaving out the controllers' own (the
/// Deployment controller records the revision annotation and the status).
fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["manager"] != "kube-controller-manager")
                .map(|e| {
                    (e["manager"].as_str().unwrap_or("").to_string(), e["operation"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn server_side_apply_ownership_conflicts_and_force() {
    // No controllers: the test counts resourceVersions, and the Deployment controller would
    // write status in between.
    let c = Cluster::start_with(&["--disable-controller-manager"]).expect("server starts");
    let out = c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(DEPLOY)).ok();
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).ok());
    assert_eq!(managers(&d), [("kubectl".to_string(), "Apply".to_string())]);
    let fields = &d["metadata"]["managedFields"][0]["fieldsV1"];
    assert!(fields["f:spec"]["f:replicas"].is_object(), "{fields}");
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:image"].is_object(),
        "{fields}"
    );
    // Without --show-managed-fields kubectl hides them.
    let plain = c.kubectl(&["get", "deploy", "web", "-o", "yaml"]).ok();
    assert!(!plain.contains("managedFields"), "{plain}");

    // A changed manifest: only what it owns changes; dropping a label removes it.
    let changed = DEPLOY.replace("replicas: 2", "replicas: 3").replace("  labels: {app: web}\nspec:", "spec:");
    c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(&changed)).ok();
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json"]).ok());
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(d["metadata"].get("labels").is_none_or(|l| l.get("app").is_none()), "{}", d["metadata"]);

    // Another manager changing an owned field conflicts, with upstream's message.
    let other = changed.replace("replicas: 3", "replicas: 5");
    let err = c.kubectl_stdin(&["apply", "--server-side", "--field-manager=other", "-f", "-"], Some(&other)).fails();
    assert!(err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"), "{err}");
    // Forcing takes ownership.
    c.kubectl_stdin(&["apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-"], Some(&other))
        .ok();
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).ok());
    assert_eq!(d["spec"]["replicas"], 5);
    let owners: Vec<String> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["fieldsV1"]["f:spec"]["f:replicas"].is_object())
        .map(|e| e["manager"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(owners, ["other"]);

    // An imperative update (kubectl scale) is recorded as an Update through `scale`.
    c.kubectl(&["scale", "deploy", "web", "--replicas=1"]).ok();
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).ok());
    assert!(
        d["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "Update" && e["subresource"] == "scale"),
        "{}",
        d["metadata"]["managedFields"]
    );

    // Applying the same configuration again changes nothing: the object is not written, so
    // its resourceVersion stays (the cluster's revision may move on meanwhile: Leases).
    let apply_other = || {
        c.kubectl_stdin(
            &["apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-"],
            Some(&other),
        )
        .ok();
        json(&c.kubectl(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).ok())
    };
    let before = apply_other();
    let after = apply_other();
    let rv = |v: &Value| v["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    assert_eq!(rv(&after), rv(&before), "the second identical apply must be a no-op");
    assert_eq!(after["metadata"]["managedFields"], before["metadata"]["managedFields"]);
}

#[test]
fn client_side_apply_migrates_to_server_side() {
    let c = Cluster::start().expect("server starts");
    assert_eq!(c.kubectl_stdin(&["apply", "-f", "-"], Some(DEPLOY)).ok().trim(), "deployment.apps/web created");
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).ok());
    assert_eq!(managers(&d), [("kubectl-client-side-apply".to_string(), "Update".to_string())]);
    // Server-side apply over a client-side applied object: no conflict, ownership moves.
    let changed = DEPLOY.replace("replicas: 2", "replicas: 4");
    let out = c.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(&changed)).ok();
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json", "--show-managed-fields"]).ok());
    assert_eq!(d["spec"]["replicas"], 4);
    assert!(managers(&d).contains(&("kubectl".to_string(), "Apply".to_string())), "{:?}", managers(&d));
}

#[test]
fn diff_and_dry_run() {
    let c = Cluster::start().expect("server starts");
    c.kubectl_stdin(&["apply", "-f", "-"], Some(DEPLOY)).ok();
    let same = c.kubectl_stdin(&["diff", "-f", "-"], Some(DEPLOY));
    assert_eq!((same.status, same.stdout.as_str()), (0, ""), "{}", same.stderr);
    let changed = DEPLOY.replace("busybox:1.35", "busybox:1.36");
    let diff = c.kubectl_stdin(&["diff", "-f", "-"], Some(&changed));
    assert_eq!(diff.status, 1, "{}", diff.stderr);
    assert!(
        diff.stdout.contains("-      - image: busybox:1.35") && diff.stdout.contains("+      - image: busybox:1.36"),
        "{}",
        diff.stdout
    );
    let ssa_diff = c.kubectl_stdin(&["diff", "--server-side", "-f", "-"], Some(&changed));
    assert_eq!(ssa_diff.status, 1, "{}", ssa_diff.stderr);
    // Nothing was written.
    let d = json(&c.kubectl(&["get", "deploy", "web", "-o", "json"]).ok());
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "busybox:1.35");
    let out = c.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], Some(&changed)).ok();
    assert_eq!(out.trim(), "deployment.apps/web configured (server dry run)");
    let out = c.kubectl(&["delete", "deploy", "web", "--dry-run=server"]).ok();
    assert_eq!(out.trim(), "deployment.apps \"web\" deleted (server dry run)");
    c.kubectl(&["get", "deploy", "web"]).ok();
}

#[test]
fn apply_prune_by_label() {
    let c = Cluster::start().expect("server starts");
    let dir = tempfile::tempdir().unwrap();
    let cm = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n  labels: {{app: web}}\ndata: {{k: v}}\n"
        )
    };
    std::fs::write(dir.path().join("a.yaml"), cm("a")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), cm("b")).unwrap();
    let d = dir.path().to_str().unwrap();
    c.kubectl(&["apply", "-f", d, "--prune", "-l", "app=web"]).ok();
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    let out = c.kubectl(&["apply", "-f", d, "--prune", "-l", "app=web"]).ok();
    assert!(out.contains("configmap/b pruned"), "{out}");
    let names = c.kubectl(&["get", "cm", "-l", "app=web", "-o", "name"]).ok();
    assert_eq!(names.trim(), "configmap/a");
}

const LIST: &str = r#"apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: listed}
  data: {a: "1"}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: listed}
  spec:
    replicas: 1
    selector: {matchLabels: {app: listed}}
    template:
      metadata: {labels: {app: listed}}
      spec:
        containers:
        - {name: c, image: busybox, resources: {requests: {cpu: 1, memory: 64Mi}}}
"#;

/// A `kind: List` (what `kubectl get -o yaml` prints) applies: kubectl validates its items
/// against `/openapi/v2` first, and reports an unknown field there as it does upstream.
#[test]
fn a_list_manifest_applies_and_its_items_are_validated() {
    let c = Cluster::start().expect("server starts");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(LIST)).ok();
    assert!(out.contains("configmap/listed created") && out.contains("deployment.apps/listed created"), "{out}");

    let bad = LIST.replace("replicas: 1", "replica: 1");
    let err = c.kubectl_stdin(&["apply", "-f", "-"], Some(&bad)).fails();
    assert!(
        err.contains(
            r#"ValidationError(Deployment.spec): unknown field "replica" in io.k8s.api.apps.v1.DeploymentSpec"#
        ),
        "{err}"
    );

    // What `get -o yaml` prints applies back.
    let exported = c.kubectl(&["get", "configmap/listed", "deployment/listed", "-o", "yaml"]).ok();
    assert!(exported.contains("kind: List"), "{exported}");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(&exported)).ok();
    assert!(out.contains("configmap/listed") && out.contains("deployment.apps/listed"), "{out}");

    // The JSON form, for people and scripts.
    let doc = json(&c.kubectl(&["get", "--raw", "/openapi/v2"]).ok());
    assert_eq!(doc["swagger"], "2.0");
    assert!(
        doc["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["spec"]["$ref"]
            == "#/definitions/io.k8s.api.core.v1.PodSpec"
    );
}
