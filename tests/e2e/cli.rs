//! The `skiff` command line as users meet it: kubeconfig merging, `skiff reset`, bearer tokens,
//! `--tls-san`, bad flags.

use std::process::Command;

use skiff_testkit::{Cluster, skiff_binary};

const OTHER: &str = r#"apiVersion: v1
kind: Config
current-context: prod
clusters:
- name: prod
  cluster: {server: "https://prod.example:6443"}
contexts:
- name: prod
  context: {cluster: prod, user: prod}
users:
- name: prod
  user: {token: keep-me}
"#;

#[test]
fn merges_into_the_users_kubeconfig_and_reset_undoes_everything() {
    let home = tempfile::tempdir().unwrap();
    let kube_dir = home.path().join(".kube");
    std::fs::create_dir_all(&kube_dir).unwrap();
    std::fs::write(kube_dir.join("config"), OTHER).unwrap();
    let home_s = home.path().to_str().unwrap().to_string();
    let mut c = Cluster::start_full(&[], &[("HOME", &home_s), ("KUBECONFIG", "")], false).expect("server starts");

    // kubectl with the merged file talks to skiff; the other context is untouched.
    let ns = c.kubectl(&["get", "ns", "default", "-o", "name"]).ok();
    assert_eq!(ns.trim(), "namespace/default");
    let contexts = c.kubectl(&["config", "get-contexts", "-o", "name"]).ok();
    let mut names: Vec<&str> = contexts.lines().collect();
    names.sort();
    assert_eq!(names, ["prod", "skiff"]);
    assert_eq!(c.kubectl(&["config", "current-context"]).ok().trim(), "skiff");
    let token = c.kubectl(&["config", "view", "--raw", "-o", "jsonpath={.users[?(@.name==\"prod\")].user.token}"]).ok();
    assert_eq!(token, "keep-me");

    // reset refuses while the server runs, then removes the data dir and skiff's entries.
    let data_dir = c.data_dir.path().to_path_buf();
    let out = Command::new(skiff_binary())
        .args(["reset", "--data-dir"])
        .arg(&data_dir)
        .env("HOME", &home_s)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("still running"), "{out:?}");
    c.stop();
    for round in 0..2 {
        let out = Command::new(skiff_binary())
            .args(["reset", "--data-dir"])
            .arg(&data_dir)
            .env("HOME", &home_s)
            .output()
            .unwrap();
        assert!(out.status.success(), "reset round {round}: {out:?}");
    }
    assert!(!data_dir.exists());
    let cfg = std::fs::read_to_string(kube_dir.join("config")).unwrap();
    assert!(cfg.contains("prod.example") && cfg.contains("keep-me"), "{cfg}");
    assert!(!cfg.contains("name: skiff"), "{cfg}");
}

#[test]
fn bearer_tokens_and_tls_sans() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "alice-token,alice,1001,\"system:masters\"\nbob-token,bob,1002\n").unwrap();
    let c = Cluster::start_with(&[
        "--token",
        "cluster-secret",
        "--token-auth-file",
        tokens.to_str().unwrap(),
        "--tls-san",
        "skiff.test.example",
    ])
    .expect("server starts");
    let ca = c.data_dir.path().join("tls").join("ca.crt");
    let server = c.url();
    let run = |token: &str, extra: &[&str], args: &[&str]| {
        let mut all = vec![
            "--kubeconfig=/dev/null",
            "--server",
            &server,
            "--certificate-authority",
            ca.to_str().unwrap(),
            "--token",
            token,
        ];
        all.extend_from_slice(extra);
        all.extend_from_slice(args);
        c.kubectl(&all)
    };
    assert_eq!(run("cluster-secret", &[], &["get", "ns", "default", "-o", "name"]).ok().trim(), "namespace/default");
    assert_eq!(run("alice-token", &[], &["get", "ns", "default", "-o", "name"]).ok().trim(), "namespace/default");
    let err = run("bob-token", &[], &["get", "pods"]).fails();
    assert!(err.contains("pods is forbidden: User \"bob\" cannot list resource \"pods\""), "{err}");
    let err = run("wrong", &[], &["get", "pods"]).fails();
    assert!(err.contains("Unauthorized"), "{err}");
    // kubectl auth: identity and access reviews answer for the caller.
    assert_eq!(run("alice-token", &[], &["auth", "can-i", "delete", "deployments"]).ok().trim(), "yes");
    let no = run("bob-token", &[], &["auth", "can-i", "delete", "deployments"]);
    assert_eq!((no.status, no.stdout.trim()), (1, "no"));
    let who = run("bob-token", &[], &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]).ok();
    assert_eq!(who, "bob");
    let list = run("alice-token", &[], &["auth", "can-i", "--list"]).ok();
    assert!(list.lines().any(|l| l.split_whitespace().next() == Some("*.*")), "{list}");
    // The serving certificate carries the extra SAN.
    let out =
        run("cluster-secret", &["--tls-server-name", "skiff.test.example"], &["get", "ns", "default", "-o", "name"]);
    assert_eq!(out.ok().trim(), "namespace/default");
    let err = run("cluster-secret", &["--tls-server-name", "not-in-the-cert.example"], &["get", "ns"]).fails();
    assert!(err.contains("certificate"), "{err}");
}

#[test]
fn bad_flags_fail_with_one_line() {
    let out = Command::new(skiff_binary())
        .args(["server", "--service-cidr", "10.43.0.0", "--data-dir", "/nonexistent/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--service-cidr"), "{err}");

    // Ranges that overlap: pods and ClusterIPs would share addresses.
    let out = Command::new(skiff_binary())
        .args([
            "server",
            "--cluster-cidr",
            "10.42.0.0/16",
            "--service-cidr",
            "10.42.5.0/24",
            "--data-dir",
            "/nonexistent/x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--service-cidr 10.42.5.0/24 overlaps --cluster-cidr 10.42.0.0/16"), "{err}");
}
