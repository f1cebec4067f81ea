//! Services and their endpoints with real kubectl against `skiff server --simulate-nodes`:
//! the EndpointSlice controller (and the legacy Endpoints) follow the pods a Service selects.

use serde_json::Value;
use skiff_testkit::{Cluster, http_get};

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl(&a).ok()).expect("kubectl json")
}

/// An endpoint's address and (ready, serving, terminating).
type EndpointView = (String, bool, bool, bool);

/// Every endpoint of the Service's slices, and the ports.
fn slice_view(c: &Cluster, svc: &str) -> (Vec<EndpointView>, Vec<i64>) {
    let slices = json(c, &["get", "endpointslices", "-l", &format!("kubernetes.io/service-name={svc}")]);
    let mut eps = Vec::new();
    let mut ports = Vec::new();
    for s in slices["items"].as_array().unwrap() {
        for p in s["ports"].as_array().into_iter().flatten() {
            ports.push(p["port"].as_i64().unwrap());
        }
        for e in s["endpoints"].as_array().into_iter().flatten() {
            let cond = |k: &str| e["conditions"][k].as_bool().unwrap_or(false);
            eps.push((
                e["addresses"][0].as_str().unwrap().to_string(),
                cond("ready"),
                cond("serving"),
                cond("terminating"),
            ));
        }
    }
    eps.sort();
    (eps, ports)
}

#[test]
fn endpoint_slices_follow_the_selected_pods() {
    let c = Cluster::start_with(&["--simulate-nodes", "2"]).expect("server starts");
    c.kubectl_until(&["get", "nodes"], "2 Ready nodes", |o| o.matches(" Ready ").count() == 2);
    c.kubectl(&["create", "deployment", "web", "--image=busybox", "--replicas=3"]).ok();
    c.kubectl(&["rollout", "status", "deploy/web", "--timeout=60s"]).ok();
    let out = c.kubectl(&["expose", "deployment", "web", "--port=80", "--target-port=8080"]).ok();
    assert!(out.contains("service/web exposed"), "{out}");
    c.kubectl_until(&["get", "endpointslices", "-l", "kubernetes.io/service-name=web"], "three endpoints", |o| {
        o.lines().nth(1).is_some_and(|l| l.split_whitespace().nth(3).is_some_and(|e| e.split(',').count() == 3))
    });
    let (eps, ports) = slice_view(&c, "web");
    assert_eq!(eps.len(), 3);
    assert!(eps.iter().all(|(_, ready, serving, terminating)| *ready && *serving && !*terminating), "{eps:?}");
    assert_eq!(ports, [8080]);
    let pod_ips: Vec<String> = {
        let pods = json(&c, &["get", "pods", "-l", "app=web"]);
        let mut v: Vec<String> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["status"]["podIP"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(eps.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), pod_ips);
    let slice = &json(&c, &["get", "endpointslices", "-l", "kubernetes.io/service-name=web"])["items"][0];
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["addressType"], "IPv4");
    assert!(slice["endpoints"][0]["targetRef"]["name"].as_str().unwrap().starts_with("web-"));
    assert!(slice["endpoints"][0]["nodeName"].as_str().unwrap().starts_with("sim-"));

    // The legacy Endpoints, as kubectl describe shows them.
    let describe = c.kubectl(&["describe", "service", "web"]).ok();
    let line = describe.lines().find(|l| l.starts_with("Endpoints:")).unwrap_or_default().to_string();
    for ip in &pod_ips {
        assert!(line.contains(&format!("{ip}:8080")), "{describe}");
    }
    let endpoints = c.kubectl(&["get", "endpoints", "web"]).ok();
    assert!(endpoints.contains(":8080"), "{endpoints}");

    // Scaling down: the removed pods leave the slice.
    c.kubectl(&["scale", "deploy", "web", "--replicas=1"]).ok();
    c.kubectl_until(&["get", "endpoints", "web", "-o", "jsonpath={.subsets[*].addresses[*].ip}"], "one address", |o| {
        o.split_whitespace().count() == 1
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while slice_view(&c, "web").0.len() != 1 {
        assert!(std::time::Instant::now() < deadline, "{:?}", slice_view(&c, "web"));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // A Service selecting nothing has an empty slice; one without a selector is the user's.
    c.kubectl(&["create", "service", "clusterip", "empty", "--tcp=80:8080"]).ok();
    c.kubectl(&["patch", "service", "empty", "-p", r#"{"spec":{"selector":{"app":"nothing"}}}"#]).ok();
    c.kubectl_until(
        &["get", "endpointslices", "-l", "kubernetes.io/service-name=empty", "-o", "name"],
        "a slice",
        |o| !o.trim().is_empty(),
    );
    assert!(slice_view(&c, "empty").0.is_empty());
    let manual = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"manual"},"spec":{"ports":[{"port":80}]}}"#;
    c.kubectl_stdin(&["apply", "-f", "-"], Some(manual)).ok();
    let slice = r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"name":"manual-1","labels":{"kubernetes.io/service-name":"manual"}},"addressType":"IPv4","ports":[{"port":80}],"endpoints":[{"addresses":["192.0.2.10"]}]}"#;
    c.kubectl_stdin(&["apply", "-f", "-"], Some(slice)).ok();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let kept = c.kubectl(&["get", "endpointslice", "manual-1", "-o", "jsonpath={.endpoints[0].addresses[0]}"]).ok();
    assert_eq!(kept, "192.0.2.10", "user-managed slices are left alone");

    // LoadBalancer: the nodes' addresses, one Service per port; a later one waits, saying why.
    c.kubectl(&[
        "expose",
        "deployment",
        "web",
        "--name=web-lb",
        "--type=LoadBalancer",
        "--port=8081",
        "--target-port=8080",
    ])
    .ok();
    let nodes = json(&c, &["get", "nodes"]);
    let mut node_ips: Vec<String> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let addrs = n["status"]["addresses"].as_array().unwrap();
            addrs.iter().find(|a| a["type"] == "InternalIP").unwrap()["address"].as_str().unwrap().to_string()
        })
        .collect();
    node_ips.sort();
    let ingress = c.kubectl_until(
        &["get", "svc", "web-lb", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}"],
        "the load balancer's addresses",
        |o| !o.is_empty(),
    );
    let mut got: Vec<String> = ingress.split_whitespace().map(String::from).collect();
    got.sort();
    assert_eq!(got, node_ips);
    let table = c.kubectl(&["get", "svc", "web-lb"]).ok();
    assert!(table.contains(&node_ips.join(",")) && table.contains("8081:3"), "{table}");
    c.kubectl(&[
        "expose",
        "deployment",
        "web",
        "--name=web-lb2",
        "--type=LoadBalancer",
        "--port=8081",
        "--target-port=8080",
    ])
    .ok();
    c.kubectl_until(&["get", "events", "--field-selector", "involvedObject.name=web-lb2"], "a conflict event", |o| {
        o.contains("SyncLoadBalancerFailed") && o.contains("port 8081/TCP is already used by service default/web-lb")
    });
    let pending = c.kubectl(&["get", "svc", "web-lb2"]).ok();
    assert!(pending.contains("<pending>"), "{pending}");
    c.kubectl(&["delete", "svc", "web-lb"]).ok();
    c.kubectl_until(
        &["get", "svc", "web-lb2", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}"],
        "the port to pass to the waiting Service",
        |o| !o.is_empty(),
    );

    // Deleting the Service removes its slices and Endpoints.
    c.kubectl(&["delete", "service", "web"]).ok();
    c.kubectl_until(
        &["get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "name"],
        "no slices",
        |o| o.trim().is_empty(),
    );
    c.kubectl_until(&["get", "endpoints", "-o", "name"], "no web endpoints", |o| {
        !o.lines().any(|l| l == "endpoints/web")
    });
}

/// The README's web app on a real node: a Deployment of busybox httpd behind a Service,
/// reached by DNS name from a pod through the cluster DNS and the service proxy (nftables
/// mode), spread over the replicas; scaling down takes removed pods out of rotation.
#[test]
fn a_web_app_answers_by_name_through_its_service() {
    let c = web_app(&[]);
    assert!(c.log_text().contains("service proxy: nftables mode"), "{}", c.log_text());
    network_policies(&c);
}

const DENY_ALL: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: deny-all
spec:
  podSelector: {}
  policyTypes: [Ingress]
";

const ALLOW_FROM_LABEL: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-allow-granted
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - from:
    - podSelector:
        matchLabels: {access: granted}
    ports:
    - port: 8080
";

/// The issue's NetworkPolicy commands on the web app (nftables mode): a deny-all blocks the
/// Service, an allow-from-label policy lets the labelled client through, and deleting them
/// opens it again.
fn network_policies(c: &Cluster) {
    for (name, labels) in [("granted", "access=granted"), ("other", "access=none")] {
        c.kubectl(&[
            "run",
            name,
            "--image=busybox",
            "--image-pull-policy=Never",
            "--restart=Never",
            &format!("--labels={labels}"),
            "--",
            "sleep",
            "3600",
        ])
        .ok();
    }
    c.kubectl(&["wait", "--for=condition=Ready", "pod/granted", "pod/other", "--timeout=60s"]).ok();
    // Whether `client` gets an answer from the Service within 2 s (Debian's busybox wget
    // has no -T).
    let reaches = |client: &str| {
        c.kubectl(&["exec", client, "--", "timeout", "2", "wget", "-qO-", "http://web/hostname"]).status == 0
    };
    let until = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "{what}\n{}", c.log_text());
        }
    };
    until("both clients reach web before any policy", &|| reaches("granted") && reaches("other"));

    let out = c.kubectl_stdin(&["apply", "-f", "-"], Some(DENY_ALL)).ok();
    assert!(out.contains("networkpolicy.networking.k8s.io/deny-all created"), "{out}");
    until("deny-all blocks both clients", &|| !reaches("granted") && !reaches("other"));

    c.kubectl_stdin(&["apply", "-f", "-"], Some(ALLOW_FROM_LABEL)).ok();
    until("the labelled client gets through", &|| reaches("granted"));
    assert!(!reaches("other"), "the unlabelled client stays blocked");
    let listed = c.kubectl(&["get", "networkpolicies"]).ok();
    assert!(listed.contains("deny-all") && listed.contains("web-allow-granted"), "{listed}");
    let described = c.kubectl(&["describe", "networkpolicy", "web-allow-granted"]).ok();
    assert!(described.contains("access=granted"), "{described}");

    c.kubectl(&["delete", "networkpolicy", "deny-all", "web-allow-granted"]).ok();
    until("without policies both clients reach web again", &|| reaches("granted") && reaches("other"));
}

/// The same in the userspace proxy mode (what runs where `nft` is not installed).
#[test]
fn a_web_app_answers_by_name_through_the_userspace_proxy() {
    let c = web_app(&["--proxy-mode", "userspace"]);
    assert!(c.log_text().contains("service proxy: userspace mode"), "{}", c.log_text());
}

/// The README's web Deployment (busybox httpd on 8080 serving /etc, the imported image), rolled
/// out.
fn web_deployment(c: &Cluster, replicas: u32) {
    let replicas = format!("--replicas={replicas}");
    c.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        &replicas,
        "--",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ])
    .ok();
    let never = r#"{"spec":{"template":{"spec":{"containers":[{"name":"busybox","imagePullPolicy":"Never"}]}}}}"#;
    c.kubectl(&["patch", "deploy", "web", "-p", never]).ok();
    c.kubectl(&["rollout", "status", "deploy/web", "--timeout=90s"]).ok();
}

/// Runs the web app scenario on a node cluster started with `extra`; returns the cluster.
fn web_app(extra: &[&str]) -> Cluster {
    let c = Cluster::start_node(extra).expect("starting a one-node cluster");
    c.import_image(&skiff_testkit::images::busybox_archive(&["busybox:latest"])).expect("importing busybox");
    c.kubectl_until(&["get", "nodes", "--no-headers"], "the node to be Ready", |o| o.contains(" Ready "));
    let svc_cidr = c.service_cidr().expect("a node cluster has its own Service range");
    let dns_ip = format!("{}.10", svc_cidr.rsplit_once('.').unwrap().0);
    let dns = c.kubectl(&["get", "svc", "-n", "kube-system", "kube-dns", "-o", "jsonpath={.spec.clusterIP}"]).ok();
    assert_eq!(dns, dns_ip);

    web_deployment(&c, 3);
    c.kubectl(&["expose", "deployment", "web", "--port=80", "--target-port=8080"]).ok();
    c.kubectl_until(&["get", "endpoints", "web", "-o", "jsonpath={.subsets[*].addresses[*].ip}"], "3 endpoints", |o| {
        o.split_whitespace().count() == 3
    });
    let pods: Vec<String> = c
        .kubectl(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"])
        .ok()
        .split_whitespace()
        .map(String::from)
        .collect();

    // A client pod: resolv.conf points at the cluster DNS; names resolve (short, with search
    // domains and ndots:5, and fully qualified); requests spread over the pods.
    let script = "cat /etc/resolv.conf; nslookup web.default.svc.cluster.local; \
        for i in $(seq 1 30); do wget -qO- http://web/hostname; done; wget -qO- http://web.default.svc.cluster.local/hostname; \
        nslookup no-such-service.default.svc.cluster.local || echo NXDOMAIN-OK";
    c.kubectl(&[
        "run",
        "client",
        "--image=busybox",
        "--image-pull-policy=Never",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        script,
    ])
    .ok();
    c.kubectl_until(&["get", "pod", "client", "-o", "jsonpath={.status.phase}"], "the client to finish", |o| {
        o == "Succeeded" || o == "Failed"
    });
    let out = c.kubectl(&["logs", "client"]).ok();
    assert!(out.contains(&format!("nameserver {dns_ip}")), "{out}");
    assert!(
        out.contains("search default.svc.cluster.local svc.cluster.local cluster.local") && out.contains("ndots:5"),
        "{out}"
    );
    let cluster_ip = c.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]).ok();
    assert!(out.contains(&format!("Address: {cluster_ip}")), "{out}");
    let answered: std::collections::BTreeSet<&str> = out.lines().filter(|l| l.starts_with("web-")).collect();
    assert!(answered.len() >= 2, "30 requests should reach more than one of {pods:?}: {out}");
    assert!(answered.iter().all(|a| pods.iter().any(|p| p == a)), "{out}");
    assert!(out.contains("NXDOMAIN-OK"), "{out}");

    // The API server's proxy to pods and Services (what `kubectl proxy` users rely on).
    let via_pod =
        c.kubectl(&["get", "--raw", &format!("/api/v1/namespaces/default/pods/{}:8080/proxy/hostname", pods[0])]);
    assert_eq!(via_pod.ok().trim(), pods[0]);
    let via_svc = c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/services/web:80/proxy/hostname"]).ok();
    assert!(pods.iter().any(|p| p == via_svc.trim()), "{via_svc}");
    let none = c.kubectl(&["get", "--raw", "/api/v1/namespaces/default/services/web:81/proxy/"]);
    assert!(none.stderr.contains("ServiceUnavailable") || none.stderr.contains("no service port"), "{none:?}");

    // Scaling down: the removed pods stop getting traffic.
    c.kubectl(&["scale", "deploy", "web", "--replicas=1"]).ok();
    c.kubectl_until(&["get", "endpoints", "web", "-o", "jsonpath={.subsets[*].addresses[*].ip}"], "1 endpoint", |o| {
        o.split_whitespace().count() == 1
    });
    let left = c.kubectl(&["get", "endpoints", "web", "-o", "jsonpath={.subsets[0].addresses[0].targetRef.name}"]).ok();
    c.kubectl(&[
        "run",
        "client2",
        "--image=busybox",
        "--image-pull-policy=Never",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        "for i in $(seq 1 10); do wget -qO- http://web/hostname; done",
    ])
    .ok();
    c.kubectl_until(&["get", "pod", "client2", "-o", "jsonpath={.status.phase}"], "client2 to finish", |o| {
        o == "Succeeded" || o == "Failed"
    });
    let out = c.kubectl(&["logs", "client2"]).ok();
    let answered: std::collections::BTreeSet<&str> = out.lines().collect();
    assert_eq!(answered.into_iter().collect::<Vec<_>>(), [left.as_str()], "{out}");
    c
}

const ROLLING_WEB: &str = r#"{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": "web"},
 "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
  "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
  "template": {"metadata": {"labels": {"app": "web"}},
   "spec": {"terminationGracePeriodSeconds": 5, "containers": [{"name": "web", "image": "busybox:latest", "imagePullPolicy": "Never",
    "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"],
    "readinessProbe": {"httpGet": {"path": "/hostname", "port": 8080}, "periodSeconds": 1},
    "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}}}]}}}}"#;

/// The issue's rolling update: a client requesting through the Service all along sees no
/// failed request while `kubectl set image` replaces every pod (readiness probes gate new
/// pods; a preStop pause keeps old ones answering until the proxy has dropped them, the
/// usual recipe upstream).
#[test]
fn a_rolling_update_fails_no_request() {
    rolling_update(&[]);
}

/// The same through the userspace proxy.
#[test]
fn a_rolling_update_fails_no_request_in_userspace_mode() {
    rolling_update(&["--proxy-mode", "userspace"]);
}

fn rolling_update(extra: &[&str]) {
    let c = Cluster::start_node(extra).expect("starting a one-node cluster");
    c.import_image(&skiff_testkit::images::busybox_archive(&["busybox:latest", "busybox:v2"]))
        .expect("importing busybox");
    c.kubectl_until(&["get", "nodes", "--no-headers"], "the node to be Ready", |o| o.contains(" Ready "));
    c.kubectl_stdin(&["apply", "-f", "-"], Some(ROLLING_WEB)).ok();
    c.kubectl(&["rollout", "status", "deploy/web", "--timeout=90s"]).ok();
    c.kubectl(&["expose", "deployment", "web", "--port=80", "--target-port=8080"]).ok();
    let before: Vec<String> = c
        .kubectl(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"])
        .ok()
        .split_whitespace()
        .map(String::from)
        .collect();
    // The client counts answers and failures until told to stop, then prints both. A request
    // that hangs counts as failed after 20 s (a dead endpoint costs the proxy at most 3 s per
    // try), so the summary always comes and says when it happened.
    let script = "ok=0; failed=0; until [ -e /tmp/stop ]; do s=$(date +%T); \
        if timeout 20 wget -qO- http://web/hostname >/tmp/last 2>/tmp/err; then ok=$((ok+1)); echo \"$(cat /tmp/last)\" >>/tmp/seen; \
        else failed=$((failed+1)); echo \"FAILED after $ok answers started $s at $(date +%T): $(cat /tmp/err)\"; fi; done; \
        echo \"ok=$ok failed=$failed\"; sort -u /tmp/seen; sleep 3600";
    c.kubectl(&[
        "run",
        "client",
        "--image=busybox",
        "--image-pull-policy=Never",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        script,
    ])
    .ok();
    c.kubectl(&["wait", "--for=condition=Ready", "pod/client", "--timeout=60s"]).ok();
    c.kubectl_until(
        &["exec", "client", "--", "sh", "-c", "cat /tmp/seen 2>/dev/null; true"],
        "the client's first answers",
        |o| !o.is_empty(),
    );

    c.kubectl(&["set", "image", "deploy/web", "web=busybox:v2"]).ok();
    c.kubectl(&["rollout", "status", "deploy/web", "--timeout=120s"]).ok();
    // Until the last old pod is gone.
    c.kubectl_until(
        &["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"],
        "old pods gone",
        |o| o.split_whitespace().count() == 3 && !before.iter().any(|p| o.contains(p.as_str())),
    );
    c.kubectl(&["exec", "client", "--", "touch", "/tmp/stop"]).ok();
    let out = c.kubectl_until(&["logs", "client"], "the client's summary", |o| o.contains("ok="));
    let summary = out.lines().find(|l| l.starts_with("ok=")).unwrap_or_default();
    let ok: u32 = summary.split_whitespace().next().and_then(|s| s[3..].parse().ok()).unwrap_or(0);
    assert!(summary.ends_with(" failed=0"), "requests failed during the rolling update:\n{out}");
    assert!(ok >= 20, "the client kept requesting throughout: {summary}");
    let after: Vec<String> = c
        .kubectl(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"])
        .ok()
        .split_whitespace()
        .map(String::from)
        .collect();
    // Answers came from old pods and from new ones.
    assert!(before.iter().any(|p| out.contains(p.as_str())) && after.iter().any(|p| out.contains(p.as_str())), "{out}");
}

/// A stream of objects (a `kind: List` works too: see apply.rs).
const DNS_OBJECTS: &str = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
  "spec": {"selector": {"app": "db"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
  "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]}}
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db-0", "labels": {"app": "db"}},
  "spec": {"hostname": "db-0", "subdomain": "db", "containers": [{"name": "db", "image": "busybox", "imagePullPolicy": "Never",
   "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"]}]}}
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db-1", "labels": {"app": "db"}},
  "spec": {"hostname": "db-1", "subdomain": "db", "containers": [{"name": "db", "image": "busybox", "imagePullPolicy": "Never",
   "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"]}]}}
"#;

/// The cluster DNS's records as a pod sees them through busybox's nslookup: SRV for a named
/// port, PTR of a ClusterIP, a headless Service's endpoints and pod hostnames, pod A records,
/// NXDOMAIN.
#[test]
fn dns_records_seen_from_a_pod() {
    let c = Cluster::start_node(&[]).expect("starting a one-node cluster");
    c.import_image(&skiff_testkit::images::busybox_archive(&["busybox:latest"])).expect("importing busybox");
    c.kubectl_until(&["get", "nodes", "--no-headers"], "the node to be Ready", |o| o.contains(" Ready "));
    c.kubectl_stdin(&["apply", "-f", "-"], Some(DNS_OBJECTS)).ok();
    c.kubectl(&["wait", "--for=condition=Ready", "pod/db-0", "pod/db-1", "--timeout=60s"]).ok();
    c.kubectl_until(&["get", "endpoints", "db", "-o", "jsonpath={.subsets[*].addresses[*].ip}"], "2 endpoints", |o| {
        o.split_whitespace().count() == 2
    });
    let ip = |pod: &str| c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.podIP}"]).ok();
    let (db0, db1) = (ip("db-0"), ip("db-1"));
    let web = c.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]).ok();
    let script = format!(
        "nslookup -type=srv _http._tcp.web.default.svc.cluster.local.; echo ==; \
         nslookup {web}; echo ==; \
         nslookup db.default.svc.cluster.local.; echo ==; \
         nslookup db-1.db.default.svc.cluster.local.; echo ==; \
         nslookup -type=srv _pg._tcp.db.default.svc.cluster.local.; echo ==; \
         nslookup {}.default.pod.cluster.local.; echo ==; \
         nslookup nosuch.default.svc.cluster.local. || echo NXDOMAIN-EXIT",
        db0.replace('.', "-")
    );
    c.kubectl(&[
        "run",
        "client",
        "--image=busybox",
        "--image-pull-policy=Never",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        &script,
    ])
    .ok();
    c.kubectl_until(&["get", "pod", "client", "-o", "jsonpath={.status.phase}"], "the client to finish", |o| {
        o == "Succeeded" || o == "Failed"
    });
    let out = c.kubectl(&["logs", "client"]).ok();
    let parts: Vec<&str> = out.split("==\n").collect();
    assert_eq!(parts.len(), 7, "{out}");
    // SRV of a named port on a ClusterIP Service: the Service's own name, port 80.
    assert!(parts[0].contains("service = 0 100 80 web.default.svc.cluster.local"), "{}", parts[0]);
    // PTR of the ClusterIP.
    assert!(parts[1].contains("name = web.default.svc.cluster.local"), "{}", parts[1]);
    // Headless: one A record per ready endpoint.
    assert!(
        parts[2].contains(&format!("Address: {db0}")) && parts[2].contains(&format!("Address: {db1}")),
        "{}",
        parts[2]
    );
    // A pod's hostname.subdomain.
    assert!(parts[3].contains(&format!("Address: {db1}")) && !parts[3].contains(&db0), "{}", parts[3]);
    // SRV of a headless Service: one per endpoint, named by the pods' hostnames.
    assert!(
        parts[4].contains("service = 0 50 5432 db-0.db.default.svc.cluster.local")
            && parts[4].contains("service = 0 50 5432 db-1.db.default.svc.cluster.local"),
        "{}",
        parts[4]
    );
    // Pod A records (a-b-c-d.<ns>.pod).
    assert!(parts[5].contains(&format!("Address: {db0}")), "{}", parts[5]);
    // NXDOMAIN, and nslookup says so.
    assert!(parts[6].contains("NXDOMAIN") && parts[6].contains("NXDOMAIN-EXIT"), "{}", parts[6]);
}

/// The issue's NodePort and LoadBalancer commands, answered from the host on the node's
/// address (a real one: the host side of a veth pair, not loopback).
fn node_port_and_load_balancer(third: u8, extra: &[&str]) -> Cluster {
    let net = skiff_testkit::NetNs::create().expect("creating a network namespace");
    // Second octets 60-79: disjoint from the other tests' pod ranges and from the Service
    // range the testkit derives (10.180-199.<third>).
    let cidr = format!("10.{}.{third}.0/24", 60 + std::process::id() % 20);
    let c = Cluster::start_node_at(&net.host_ip, &cidr, extra).expect("starting the server");
    c.import_image(&skiff_testkit::images::busybox_archive(&["busybox:latest"])).expect("importing busybox");
    c.kubectl_until(&["get", "nodes", "--no-headers"], "the node to be Ready", |o| o.contains(" Ready "));
    web_deployment(&c, 2);
    c.kubectl(&["expose", "deployment", "web", "--name=web-np", "--type=NodePort", "--port=80", "--target-port=8080"])
        .ok();
    c.kubectl(&[
        "expose",
        "deployment",
        "web",
        "--name=web-lb",
        "--type=LoadBalancer",
        "--port=8081",
        "--target-port=8080",
    ])
    .ok();
    let node_port: u16 =
        c.kubectl(&["get", "svc", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}"]).ok().parse().expect("a port");
    // EXTERNAL-IP is the node's address.
    c.kubectl_until(&["get", "svc", "web-lb"], "the LoadBalancer's EXTERNAL-IP", |o| o.contains(&net.host_ip));
    let pods = c.kubectl(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"]).ok();
    for port in [node_port, 8081] {
        let body = http_get(&net.host_ip, port, "/hostname");
        let answered = body.lines().last().unwrap_or_default();
        assert!(!answered.is_empty() && pods.contains(answered), "port {port}: {body}\n{}", c.log_text());
    }
    drop(net);
    c
}

#[test]
fn node_port_and_load_balancer_answer_from_the_host() {
    let c = node_port_and_load_balancer(50, &[]);
    assert!(c.log_text().contains("service proxy: nftables mode"), "{}", c.log_text());
}

#[test]
fn node_port_and_load_balancer_answer_from_the_host_in_userspace_mode() {
    let c = node_port_and_load_balancer(51, &["--proxy-mode", "userspace"]);
    assert!(c.log_text().contains("service proxy: userspace mode"), "{}", c.log_text());
}
