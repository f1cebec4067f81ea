//! A second node joins: `skiff agent` in a network namespace of its own (as another machine
//! would be) with the server's join token. The token pins the CA, the node gets its client
//! and serving certificates through CertificateSigningRequests, the controller manager gives
//! it a podCIDR, and kubectl reaches its pods' logs and exec through the API server. Wrong
//! tokens are refused with messages that say what is wrong.
//!
//! Needs root, `ip`, `nsenter` and `busybox-static` (scripts/test.sh installs them). The
//! namespace, its links and both nodes' host state are removed when the test ends.

use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_testkit::images::busybox_archive;
use skiff_testkit::{Agent, Cluster, NetNs, http_get};

fn json(c: &Cluster, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    serde_json::from_str(&c.kubectl(&a).ok()).expect("kubectl json")
}

#[track_caller]
fn wait_for(what: &str, logs: &dyn Fn() -> String, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", logs());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `script` in a busybox pod `client` with `overrides` (a node selector) until it ends;
/// its log.
fn run_client(c: &Cluster, overrides: &str, script: &str, logs: &dyn Fn() -> String) -> String {
    let args = ["run", "client", "--image=busybox", "--image-pull-policy=Never", "--restart=Never", "--overrides"];
    let mut args = args.to_vec();
    args.extend([overrides, "--", "sh", "-c", script]);
    c.kubectl(&args).ok();
    wait_for("the cross-node client to finish", logs, || {
        let p = c.kubectl(&["get", "pod", "client", "-o", "jsonpath={.status.phase}"]).stdout;
        p == "Succeeded" || p == "Failed"
    });
    c.kubectl(&["logs", "client"]).ok()
}

#[test]
fn an_agent_joins_from_its_own_network_namespace() {
    let net = NetNs::create().expect("creating a network namespace");
    let cidr = format!("10.{}.0.0/16", 100 + std::process::id() % 40);
    let agent_secret = format!("agent-{}", std::process::id());
    let c = Cluster::start_node_at(&net.host_ip, &cidr, &["--tls-san", &net.host_ip, "--agent-token", &agent_secret])
        .expect("starting the server");
    let token = std::fs::read_to_string(c.data_dir.path().join("node-token")).expect("node-token").trim().to_string();
    assert!(token.starts_with("K10") && token.ends_with(&format!("::server:{agent_secret}")), "{token}");
    let server = c.url();

    // A token naming another CA is refused before the secret is sent anywhere.
    let (_, secret_part) = token.split_once("::").unwrap();
    let other_ca = format!("K10{}::{secret_part}", "0".repeat(64));
    let mut bad = Agent::start(&net, &server, &other_ca, "bad-ca", &[]).unwrap();
    let (code, log) = bad.wait_exit(Duration::from_secs(30)).unwrap();
    assert_ne!(code, 0);
    assert!(log.contains("is not the one the join token names") && log.contains("refusing to join"), "{log}");
    // The right CA with a wrong secret: the server says no.
    let wrong_secret = format!("{}::server:nope", token.split_once("::").unwrap().0);
    let mut bad = Agent::start(&net, &server, &wrong_secret, "bad-secret", &[]).unwrap();
    let (code, log) = bad.wait_exit(Duration::from_secs(30)).unwrap();
    assert_ne!(code, 0);
    assert!(log.contains("the server rejected the join token (401 Unauthorized)"), "{log}");
    // A plain secret without the CA hash is refused too.
    let mut bad = Agent::start(&net, &server, &agent_secret, "bad-plain", &[]).unwrap();
    let (_, log) = bad.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(log.contains("must pin the server's CA"), "{log}");
    drop(bad);
    let nodes = c.kubectl(&["get", "nodes", "-o", "name"]).ok();
    assert!(!nodes.contains("bad-"), "refused agents registered nothing: {nodes}");

    let svc_cidr = c.service_cidr().unwrap();
    let ranges = ["--cluster-cidr", cidr.as_str(), "--service-cidr", svc_cidr.as_str()];
    let mut agent = Agent::start(&net, &server, &token, "agent-1", &ranges).unwrap();
    agent.import_image(&busybox_archive(&["busybox:latest"])).expect("importing busybox on the agent");
    agent.wait_joined(Duration::from_secs(60)).unwrap();
    let logs = || format!("agent:\n{}\nserver:\n{}", agent.log_text(), c.log_text());
    wait_for("agent-1 Ready", &logs, || {
        c.kubectl(&["get", "node", "agent-1", "--no-headers"]).stdout.contains(" Ready ")
    });
    let node = json(&c, &["get", "node", "agent-1"]);
    let pod_cidr = node["spec"]["podCIDR"].as_str().unwrap().to_string();
    assert!(pod_cidr.starts_with(&cidr[..cidr.len() - 6]) && pod_cidr.ends_with(".0/24"), "{pod_cidr} in {cidr}");
    let own: Vec<Value> = json(&c, &["get", "nodes"])["items"].as_array().unwrap().clone();
    let server_node = own.iter().find(|n| n["metadata"]["name"] != "agent-1").expect("the server's node");
    assert_ne!(server_node["spec"]["podCIDR"].as_str(), Some(pod_cidr.as_str()), "each node has its own range");
    let addresses = node["status"]["addresses"].to_string();
    assert!(addresses.contains(&net.ns_ip), "{addresses}");
    assert!(node["metadata"]["labels"].get("node-role.kubernetes.io/control-plane").is_none());
    let wide = c.kubectl(&["get", "nodes", "-o", "wide"]).ok();
    assert!(
        wide.lines().any(|l| l.starts_with("agent-1") && l.contains(&net.ns_ip) && l.contains("skiff://")),
        "{wide}"
    );

    // Both certificates came through CSRs, approved and issued.
    let csrs = json(&c, &["get", "csr"]);
    let csrs = csrs["items"].as_array().unwrap();
    let by_signer = |signer: &str| {
        csrs.iter().find(|r| r["spec"]["signerName"] == signer).unwrap_or_else(|| panic!("no {signer} CSR: {csrs:?}"))
    };
    let client = by_signer("kubernetes.io/kube-apiserver-client-kubelet");
    assert_eq!(client["spec"]["username"], "system:bootstrap:skiff-agent");
    assert!(client["spec"]["groups"].to_string().contains("system:bootstrappers"));
    let serving = by_signer("kubernetes.io/kubelet-serving");
    assert_eq!(serving["spec"]["username"], "system:node:agent-1");
    for r in [client, serving] {
        assert_eq!(r["status"]["conditions"][0]["type"], "Approved", "{r}");
        assert!(r["status"]["certificate"].as_str().is_some_and(|c| !c.is_empty()), "{r}");
    }
    let table = c.kubectl(&["get", "csr"]).ok();
    assert!(table.contains("Approved,Issued"), "{table}");

    // A pod placed on the agent runs there; logs and exec go API server → kubelet in the
    // namespace, whose serving certificate the cluster CA signed through the CSR.
    let overrides = r#"{"apiVersion":"v1","spec":{"nodeSelector":{"kubernetes.io/hostname":"agent-1"}}}"#;
    c.kubectl(&[
        "run",
        "web",
        "--image=busybox",
        "--image-pull-policy=Never",
        "--overrides",
        overrides,
        "--",
        "sh",
        "-c",
        "echo hello from the agent; exec httpd -f -p 8080",
    ])
    .ok();
    wait_for("pod web Running", &logs, || {
        c.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]).stdout == "Running"
    });
    let pod = json(&c, &["get", "pod", "web"]);
    assert_eq!(pod["spec"]["nodeName"], "agent-1");
    assert_eq!(pod["status"]["hostIP"], net.ns_ip.as_str());
    let pod_ip = pod["status"]["podIP"].as_str().unwrap();
    assert!(pod_ip.starts_with(&pod_cidr[..pod_cidr.len() - 4]), "{pod_ip} in {pod_cidr}");
    wait_for("the pod's log", &logs, || c.kubectl(&["logs", "web"]).stdout.contains("hello from the agent"));
    assert_eq!(c.kubectl(&["exec", "web", "--", "cat", "/etc/hostname"]).ok().trim(), "web");
    let out = c.kubectl_stdin(&["exec", "-i", "web", "--", "sh", "-c", "cat > /tmp/www; exit 4"], Some("served"));
    assert_eq!(out.status, 4, "{out:?}");
    let local = agent.data_dir.path().join("index.html");
    std::fs::write(&local, "copied to the agent\n").unwrap();
    c.kubectl(&["cp", local.to_str().unwrap(), "web:/index.html"]).ok();
    let back = agent.data_dir.path().join("back.txt");
    c.kubectl(&["cp", "web:/index.html", back.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "copied to the agent\n");
    let body = c.get_through_port_forward("pod/web", 8080, "/index.html").unwrap();
    assert!(body.contains("copied to the agent"), "{body}");

    // The pod network across nodes (host-gw routes to each node's podCIDR): a pod on the
    // server's node reaches the agent's pod by its IP, through a Service, and by DNS name.
    c.import_image(&busybox_archive(&["busybox:latest"])).expect("importing busybox on the server");
    c.kubectl(&["expose", "pod", "web", "--port=80", "--target-port=8080"]).ok();
    let here = format!(
        r#"{{"apiVersion":"v1","spec":{{"nodeSelector":{{"kubernetes.io/hostname":"{}"}}}}}}"#,
        server_node["metadata"]["name"].as_str().unwrap()
    );
    let script = format!(
        "wget -qO- http://{pod_ip}:8080/index.html && wget -qO- http://web/index.html && wget -qO- http://web.default.svc.cluster.local/index.html"
    );
    let out = run_client(&c, &here, &script, &logs);
    assert_eq!(out.matches("copied to the agent").count(), 3, "{out}\n{}", logs());
    let client_node = c.kubectl(&["get", "pod", "client", "-o", "jsonpath={.spec.nodeName}"]).ok();
    assert_ne!(client_node, "agent-1");

    // From the host: a NodePort and a LoadBalancer on the server node's address answer with
    // the agent's pod (the proxy DNATs, the host-gw route carries it over).
    c.kubectl(&["expose", "pod", "web", "--name=web-np", "--type=NodePort", "--port=80", "--target-port=8080"]).ok();
    c.kubectl(&["expose", "pod", "web", "--name=web-lb", "--type=LoadBalancer", "--port=8081", "--target-port=8080"])
        .ok();
    let node_port: u16 =
        c.kubectl(&["get", "svc", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}"]).ok().parse().unwrap();
    let lb = c.kubectl_until(
        &["get", "svc", "web-lb", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}"],
        "the load balancer's addresses",
        |o| o.contains(&net.host_ip) && o.contains(&net.ns_ip),
    );
    assert!(!lb.is_empty());
    for port in [node_port, 8081] {
        let body = http_get(&net.host_ip, port, "/index.html");
        assert!(body.contains("copied to the agent"), "port {port}: {body}\n{}", logs());
    }

    // The node's own credentials: it reads pods, but writes only its own Node.
    let kubeconfig = agent.data_dir.path().join("agent").join("kubelet.kubeconfig");
    let as_node = |args: &[&str]| {
        let mut a = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
        a.extend_from_slice(args);
        std::process::Command::new(skiff_testkit::kubectl_binary()).args(&a).output().unwrap()
    };
    let out = as_node(&["get", "pods", "-A", "-o", "name"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("pod/web"));
    let other = server_node["metadata"]["name"].as_str().unwrap();
    let out = as_node(&["label", "node", other, "stolen=yes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"User "system:node:agent-1" cannot patch resource "nodes""#), "{err}");
    let out = as_node(&["label", "node", "agent-1", "mine=yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = as_node(&["create", "deployment", "x", "--image=busybox"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"));

    c.kubectl(&["delete", "pod", "web", "--grace-period=1"]).ok();
    let gone = c.kubectl(&["get", "pods", "--no-headers"]);
    assert!(!gone.stdout.contains("web"), "{}", gone.stdout);
}

/// `--pod-network vxlan` on both nodes: pods reach each other through the overlay device
/// (the host's route to the agent's pod range goes through it), by pod IP and by Service,
/// and `skiff reset` removes the device.
#[test]
fn pods_reach_each_other_over_vxlan() {
    let net = NetNs::create().expect("creating a network namespace");
    let cidr = format!("10.{}.0.0/16", 140 + std::process::id() % 40);
    let vxlan = ["--pod-network", "vxlan"];
    let mut c = Cluster::start_node_at(&net.host_ip, &cidr, &["--tls-san", &net.host_ip, vxlan[0], vxlan[1]])
        .expect("starting the server");
    let token = std::fs::read_to_string(c.data_dir.path().join("node-token")).expect("node-token").trim().to_string();
    let svc_cidr = c.service_cidr().unwrap();
    let args = ["--cluster-cidr", cidr.as_str(), "--service-cidr", svc_cidr.as_str(), vxlan[0], vxlan[1]];
    let mut agent = Agent::start(&net, &c.url(), &token, "agent-vx", &args).unwrap();
    agent.import_image(&busybox_archive(&["busybox:latest"])).expect("importing busybox on the agent");
    c.import_image(&busybox_archive(&["busybox:latest"])).expect("importing busybox on the server");
    agent.wait_joined(Duration::from_secs(60)).unwrap();
    let logs = || format!("agent:\n{}\nserver:\n{}", agent.log_text(), c.log_text());
    wait_for("agent-vx Ready", &logs, || {
        c.kubectl(&["get", "node", "agent-vx", "--no-headers"]).stdout.contains(" Ready ")
    });
    let on = |node: &str| {
        format!(r#"{{"apiVersion":"v1","spec":{{"nodeSelector":{{"kubernetes.io/hostname":"{node}"}}}}}}"#)
    };
    c.kubectl(&[
        "run",
        "web",
        "--image=busybox",
        "--image-pull-policy=Never",
        "--overrides",
        &on("agent-vx"),
        "--",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/etc",
    ])
    .ok();
    wait_for("pod web Running", &logs, || {
        c.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]).stdout == "Running"
    });
    let pod_ip = c.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"]).ok();
    c.kubectl(&["expose", "pod", "web", "--port=80", "--target-port=8080"]).ok();

    // The server node's route to the agent's pods goes through the overlay device.
    let route = std::process::Command::new("ip").args(["route", "get", &pod_ip]).output().unwrap();
    let route = String::from_utf8_lossy(&route.stdout).into_owned();
    assert!(route.contains(".vx"), "{route}\n{}", logs());

    let server_node = c.kubectl(&["get", "nodes", "-o", "name"]).ok();
    let server_node =
        server_node.lines().map(|l| l.trim_start_matches("node/")).find(|n| *n != "agent-vx").unwrap().to_string();
    let script = format!("wget -qO- http://{pod_ip}:8080/hostname && wget -qO- http://web/hostname");
    let out = run_client(&c, &on(&server_node), &script, &logs);
    assert_eq!(out.matches("web").count(), 2, "{out}\n{}", logs());

    // Reset removes the overlay device with the rest.
    let device = route.split_whitespace().skip_while(|w| *w != "dev").nth(1).unwrap().to_string();
    drop(agent);
    c.stop();
    drop(c);
    let left = std::process::Command::new("ip").args(["link", "show", &device]).output().unwrap();
    assert!(!left.status.success(), "{device} is left behind");
}
