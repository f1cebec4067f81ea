//! Stale UDP flows: a client that keeps its socket (as resolvers do) moves to the new
//! endpoint as soon as its old one leaves the Service, because the proxy deletes the old
//! conntrack entry. Without that, every packet of the flow would keep going to the old
//! endpoint until the entry timed out.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_proxy::Mode;
use skiff_testkit::InProcess;

use crate::Running;
use crate::lab::{self, Lab, assert_nothing_left, in_netns};

const UDP_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 26);

/// A UDP server in a namespace answering every datagram with a fixed text.
struct UdpServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpServer {
    fn start(ns: PathBuf, port: u16, reply: &str) -> UdpServer {
        let socket = in_netns(ns, move || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))).expect("binding");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, reply) = (stop.clone(), reply.to_string());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((_, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(reply.as_bytes(), from);
                }
            }
        });
        UdpServer { stop, thread: Some(thread) }
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Send one datagram on `socket` (same source port every time) and return the answer.
fn ask(socket: &UdpSocket, to: SocketAddr) -> Option<String> {
    socket.send_to(b"?", to).ok()?;
    let mut buf = [0u8; 64];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

async fn ask_until(socket: &Arc<UdpSocket>, to: SocketAddr, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = None;
    while Instant::now() < deadline {
        let s = socket.clone();
        last = tokio::task::spawn_blocking(move || ask(&s, to)).await.expect("ask");
        if last.as_deref() == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{to}: wanted {want:?} on the same flow, last answer {last:?}");
}

fn slice_of(ip: Ipv4Addr) -> serde_json::Value {
    json!({"endpoints": [{"addresses": [ip.to_string()], "nodeName": "node-a", "conditions": {"ready": true}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_flow_leaves_a_removed_endpoint() {
    lab::require_root_and_tools();
    let found = Command::new("conntrack").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(found.is_ok(), "this test needs `conntrack` (package conntrack; scripts/test.sh installs it)");
    let lab = Lab::new(3).expect("creating the namespaces");
    let namespaces = lab.namespaces();
    let (a, b, c) = (&lab.pods[0], &lab.pods[1], &lab.pods[2]);
    let _servers = [UdpServer::start(b.ns.path(), 5353, "b"), UdpServer::start(c.ns.path(), 5353, "c")];

    let api = InProcess::start().await;
    let client = api.server.client("system:kube-proxy", &["system:masters"]);
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "udp", "namespace": "default"},
        "spec": {"clusterIP": UDP_IP.to_string(), "selector": {"app": "udp"},
                 "ports": [{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]},
    }))
    .expect("Service");
    services.create(&PostParams::default(), &svc).await.expect("creating udp");
    let mut slice = json!({
        "metadata": {"name": "udp-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "udp"}},
        "addressType": "IPv4",
        "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
    });
    slice["endpoints"] = slice_of(b.ip)["endpoints"].clone();
    let slice: EndpointSlice = serde_json::from_value(slice).expect("EndpointSlice");
    slices.create(&PostParams::default(), &slice).await.expect("creating the slice");

    let (mut proxy, mode) = Running::start(&lab, &client, "nft").await;
    assert_eq!(mode, Mode::Nftables);
    let table = proxy.table.clone();

    // One socket, one source port: one conntrack flow for all the datagrams.
    let socket = in_netns(a.ns.path(), || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))).expect("client socket");
    socket.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let socket = Arc::new(socket);
    let vip = SocketAddr::new(UDP_IP.into(), 53);
    ask_until(&socket, vip, "b").await;

    // b leaves the Service (its server keeps answering): the flow must move to c.
    slices.patch("udp-1", &PatchParams::default(), &Patch::Merge(&slice_of(c.ip))).await.expect("moving to c");
    ask_until(&socket, vip, "c").await;

    proxy.stop().await;
    proxy.cleanup();
    drop(socket);
    drop(_servers);
    drop(lab);
    assert_nothing_left(&namespaces, &table);
}
