//! NetworkPolicy's truth table on a real data path: three pods on one node (a and b in
//! `default`, c in `other`), each serving ports 8080 (named `http`) and 8081; for each set of
//! policies, every pod connects to every other pod's both ports, and the reachability matrix
//! must equal the one upstream's semantics give. Blocked connections are dropped, so a probe
//! that times out counts as blocked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use skiff_proxy::Mode;
use skiff_testkit::InProcess;

use crate::Running;
use crate::lab::{self, Lab, Server, assert_nothing_left, fetch};

/// (source, destination, port) → reachable.
type Matrix = BTreeMap<(char, char, u16), bool>;

const PORTS: [u16; 2] = [8080, 8081];
const PODS: [char; 3] = ['a', 'b', 'c'];

/// Every pair of distinct pods on both ports, all reachable, except what `blocked` says.
fn expect(blocked: impl Fn(char, char, u16) -> bool) -> Matrix {
    let mut m = Matrix::new();
    for s in PODS {
        for d in PODS.into_iter().filter(|d| *d != s) {
            for p in PORTS {
                m.insert((s, d, p), !blocked(s, d, p));
            }
        }
    }
    m
}

async fn probe(lab: &Lab) -> Matrix {
    let mut tasks = Vec::new();
    for (si, s) in PODS.into_iter().enumerate() {
        for (di, d) in PODS.into_iter().enumerate().filter(|(_, d)| *d != s) {
            for p in PORTS {
                let ns = lab.pods[si].ns.path();
                let to = SocketAddr::new(lab.pods[di].ip.into(), p);
                let want = format!("{d}:{p}");
                tasks.push(tokio::task::spawn_blocking(move || {
                    let ok = fetch(ns, to, Duration::from_millis(400)).is_ok_and(|got| got == want);
                    ((s, d, p), ok)
                }));
            }
        }
    }
    let mut m = Matrix::new();
    for t in tasks {
        let (k, v) = t.await.expect("probe thread");
        m.insert(k, v);
    }
    m
}

/// Probe until the matrix is `want` (rules follow the watch asynchronously), or fail with
/// the differences.
async fn assert_matrix(lab: &Lab, step: &str, want: &Matrix) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = probe(lab).await;
        if got == *want {
            return;
        }
        if Instant::now() > deadline {
            let diff: Vec<String> = want
                .iter()
                .filter(|(k, v)| got.get(k) != Some(v))
                .map(|((s, d, p), v)| format!("{s} → {d}:{p} should be {}", if *v { "allowed" } else { "blocked" }))
                .collect();
            panic!("{step}: {}", diff.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn pod_object(name: char, namespace: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name.to_string(), "namespace": namespace, "labels": {"app": name.to_string()}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "busybox", "ports": [
            {"name": "http", "containerPort": 8080}, {"containerPort": 8081}]}]},
    }))
    .expect("a Pod")
}

async fn apply(api: &Api<NetworkPolicy>, name: &str, spec: Value) {
    let np: NetworkPolicy =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).expect("a policy");
    api.create(&PostParams::default(), &np).await.unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

async fn delete(api: &Api<NetworkPolicy>, name: &str) {
    api.delete(name, &DeleteParams::default()).await.unwrap_or_else(|e| panic!("deleting {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_policy_truth_table() {
    lab::require_root_and_tools();
    let lab = Lab::new(3).expect("creating the namespaces");
    let namespaces = lab.namespaces();
    let _servers: Vec<Server> = PODS
        .iter()
        .zip(&lab.pods)
        .flat_map(|(n, pod)| PORTS.map(|p| Server::start(pod.ns.path(), p, &format!("{n}:{p}"))))
        .collect();

    let api = InProcess::start().await;
    let client = api.server.client("system:kube-proxy", &["system:masters"]);
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "other", "labels": {"team": "other"}}})).expect("ns");
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("creating other");
    for (name, pod) in PODS.iter().zip(&lab.pods) {
        let namespace = if *name == 'c' { "other" } else { "default" };
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        pods.create(&PostParams::default(), &pod_object(*name, namespace)).await.expect("creating a pod");
        let status = json!({"status": {"phase": "Running", "podIP": pod.ip.to_string(), "podIPs": [{"ip": pod.ip.to_string()}]}});
        pods.patch_status(&name.to_string(), &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("setting the pod's IP");
    }

    let (mut proxy, mode) = Running::start(&lab, &client, "nft").await;
    assert_eq!(mode, Mode::Nftables);
    let table = proxy.table.clone();

    let default: Api<NetworkPolicy> = Api::namespaced(client.clone(), "default");
    let other: Api<NetworkPolicy> = Api::namespaced(client.clone(), "other");

    assert_matrix(&lab, "no policy", &expect(|_, _, _| false)).await;

    // Default deny for ingress in `default`: a and b accept nothing; c (in `other`) is open.
    apply(&default, "deny-all", json!({"podSelector": {}, "policyTypes": ["Ingress"]})).await;
    assert_matrix(&lab, "deny-all", &expect(|_, d, _| d != 'c')).await;

    // Policies add up: a also accepts b, on its named port `http` only.
    apply(
        &default,
        "a-from-b",
        json!({"podSelector": {"matchLabels": {"app": "a"}},
               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}], "ports": [{"port": "http"}]}]}),
    )
    .await;
    assert_matrix(&lab, "deny-all + a-from-b", &expect(|s, d, p| d != 'c' && !(s == 'b' && d == 'a' && p == 8080)))
        .await;

    // Without the deny-all, only a is isolated. A podSelector alone never matches pods of
    // other namespaces: c cannot reach a.
    delete(&default, "deny-all").await;
    assert_matrix(&lab, "a-from-b", &expect(|s, d, p| d == 'a' && !(s == 'b' && p == 8080))).await;

    // namespaceSelector: a accepts everything from namespaces labelled team=other, on a port
    // range (8080-8081).
    delete(&default, "a-from-b").await;
    apply(
        &default,
        "a-from-other",
        json!({"podSelector": {"matchLabels": {"app": "a"}},
               "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "other"}}}],
                            "ports": [{"port": 8080, "endPort": 8081}]}]}),
    )
    .await;
    assert_matrix(&lab, "a-from-other", &expect(|s, d, _| d == 'a' && s != 'c')).await;
    delete(&default, "a-from-other").await;

    // Egress: c may open connections only to the pod range minus b, on 8081.
    apply(
        &other,
        "c-egress",
        json!({"podSelector": {}, "policyTypes": ["Egress"],
               "egress": [{"to": [{"ipBlock": {"cidr": "10.42.0.0/24", "except": [format!("{}/32", lab.pods[1].ip)]}}],
                           "ports": [{"protocol": "TCP", "port": 8081}]}]}),
    )
    .await;
    assert_matrix(&lab, "c-egress", &expect(|s, d, p| s == 'c' && (d == 'b' || p == 8080))).await;

    // Egress and ingress together: c's egress allows c → a:8081, but a now accepts only b.
    apply(
        &default,
        "a-only-b",
        json!({"podSelector": {"matchLabels": {"app": "a"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}]}]}),
    )
    .await;
    assert_matrix(
        &lab,
        "c-egress + a-only-b",
        &expect(|s, d, p| (s == 'c' && (d == 'b' || p == 8080)) || (d == 'a' && s != 'b')),
    )
    .await;

    // All gone: everything flows again, and the table has no policy chains left.
    delete(&default, "a-only-b").await;
    delete(&other, "c-egress").await;
    assert_matrix(&lab, "policies deleted", &expect(|_, _, _| false)).await;
    let listed = lab::nft_in(&lab.node.name, &["list", "table", "inet", &table], None).expect("listing the table");
    assert!(!listed.contains("netpol"), "{listed}");

    proxy.stop().await;
    proxy.cleanup();
    drop(_servers);
    drop(lab);
    assert_nothing_left(&namespaces, &table);
}
