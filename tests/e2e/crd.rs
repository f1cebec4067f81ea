//! CustomResourceDefinitions end to end with kubectl: register, discover, explain, create,
//! validate, edit, scale, print columns, delete (with its objects).

use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_testkit::Cluster;

const CRD: &str = include_str!("testdata/crontab-crd.yaml");
const MY: &str = include_str!("testdata/my-crontab.yaml");

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn table(out: &str) -> Vec<Vec<String>> {
    out.lines().map(|l| l.split_whitespace().map(String::from).collect()).collect()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn crontab_lifecycle() {
    let c = Cluster::start().expect("server starts");
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(CRD)).ok();
    assert_eq!(out.trim(), "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created");
    wait_until("Established", || {
        let crd = c.kubectl(&["get", "crd", "crontabs.stable.example.com", "-o", "json"]);
        crd.status == 0
            && json(&crd.stdout)["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Established" && c["status"] == "True"))
    });
    let crd = json(&c.kubectl(&["get", "crd", "crontabs.stable.example.com", "-o", "json"]).ok());
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "CronTab");
    assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));

    // Discovery: names, short names and categories.
    let res = c.kubectl(&["api-resources", "--api-group=stable.example.com"]).ok();
    assert!(
        table(&res).contains(&vec![
            "crontabs".into(),
            "ct".into(),
            "stable.example.com/v1".into(),
            "true".into(),
            "CronTab".into()
        ]),
        "{res}"
    );

    assert_eq!(c.kubectl_stdin(&["apply", "-f", "-"], Some(MY)).ok().trim(), "crontab.stable.example.com/my created");
    let rows = table(&c.kubectl(&["get", "crontabs"]).ok());
    assert_eq!(rows[0], ["NAME", "SPEC", "REPLICAS", "AGE"]);
    assert_eq!(rows[1][..6], ["my", "*", "*", "*", "*", "*/5"]);
    assert_eq!(rows[1][6], "1", "replicas defaulted from the schema");
    assert!(table(&c.kubectl(&["get", "ct"]).ok())[1][0] == "my");
    let all = c.kubectl(&["get", "all"]).ok();
    assert!(all.contains("crontab.stable.example.com/my"), "{all}");

    let explain = c.kubectl(&["explain", "crontab.spec"]).ok();
    assert!(explain.contains("KIND:       CronTab") && explain.contains("cronSpec\t<string>"), "{explain}");

    // Schema validation and pruning, as upstream reports them.
    let bad = "apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata: {name: bad}\nspec: {cronSpec: nope, replicas: 50}\n";
    let err = c.kubectl_stdin(&["create", "-f", "-"], Some(bad)).fails();
    assert!(
        err.contains("spec.replicas: Invalid value: 50: spec.replicas in body should be less than or equal to 10"),
        "{err}"
    );
    assert!(err.contains("spec.cronSpec: Invalid value: \"nope\": spec.cronSpec in body should match"), "{err}");
    let unknown = MY.replace("name: my", "name: extra").replace("  image:", "  bogus: 1\n  image:");
    let err = c.kubectl_stdin(&["create", "-f", "-"], Some(&unknown)).fails();
    assert!(err.contains("unknown field \"spec.bogus\""), "{err}");

    // apply again (kubectl sends a JSON merge patch for custom resources), edit, scale.
    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(&MY.replace("my-awesome-cron-image", "v2"))).ok();
    assert_eq!(out.trim(), "crontab.stable.example.com/my configured");
    let out = c.kubectl_env(&["edit", "crontab", "my"], &[("KUBE_EDITOR", "sed -i s/image:\\ v2/image:\\ v3/")]).ok();
    assert_eq!(out.trim(), "crontab.stable.example.com/my edited");
    assert_eq!(
        c.kubectl(&["scale", "crontab", "my", "--replicas=3"]).ok().trim(),
        "crontab.stable.example.com/my scaled"
    );
    let my = json(&c.kubectl(&["get", "ct", "my", "-o", "json"]).ok());
    assert_eq!(my["spec"]["image"], "v3");
    assert_eq!(my["spec"]["replicas"], 3);
    assert_eq!(my["metadata"]["generation"], 4, "create, apply, edit and scale each changed the spec");
    let err = c.kubectl(&["scale", "crontab", "my", "--replicas=11"]).fails();
    assert!(err.contains("should be less than or equal to 10"), "{err}");

    // Status is its own subresource: the main resource ignores status changes.
    c.kubectl(&["patch", "ct", "my", "--type=merge", "-p", r#"{"status":{"replicas":9}}"#]).ok();
    assert!(json(&c.kubectl(&["get", "ct", "my", "-o", "json"]).ok()).get("status").is_none());
    c.kubectl(&["patch", "ct", "my", "--subresource=status", "--type=merge", "-p", r#"{"status":{"replicas":2}}"#])
        .ok();
    assert_eq!(json(&c.kubectl(&["get", "ct", "my", "-o", "json"]).ok())["status"]["replicas"], 2);

    // Deleting the CRD deletes its objects, then the CRD, and the resource disappears.
    let out = c.kubectl(&["delete", "crd", "crontabs.stable.example.com", "--timeout=30s"]).ok();
    assert_eq!(out.trim(), "customresourcedefinition.apiextensions.k8s.io \"crontabs.stable.example.com\" deleted");
    let err = c.kubectl(&["get", "crontabs"]).fails();
    assert!(
        err.contains("the server doesn't have a resource type \"crontabs\"")
            || err.contains("could not find the requested resource"),
        "{err}"
    );
    // Re-creating the CRD starts empty.
    c.kubectl_stdin(&["apply", "-f", "-"], Some(CRD)).ok();
    wait_until("served again", || c.kubectl(&["get", "crontabs"]).status == 0);
    assert_eq!(c.kubectl(&["get", "crontabs", "-o", "name"]).ok().trim(), "");
}

#[test]
fn invalid_crds_are_refused_with_causes() {
    let c = Cluster::start().expect("server starts");
    let bad = CRD.replace("name: crontabs.stable.example.com", "name: wrong.stable.example.com");
    let err = c.kubectl_stdin(&["create", "-f", "-"], Some(&bad)).fails();
    assert!(
        err.contains(
            "metadata.name: Invalid value: \"wrong.stable.example.com\": must be spec.names.plural+\".\"+spec.group"
        ),
        "{err}"
    );
    let two_storage = CRD.replace("      storage: true\n", "      storage: false\n");
    let err = c.kubectl_stdin(&["create", "-f", "-"], Some(&two_storage)).fails();
    assert!(err.contains("must have exactly one version marked as storage version"), "{err}");
}
