//! The userspace forwarders on loopback (no root): `127.0.0.x` addresses stand in for
//! ClusterIPs, since all of 127/8 is local, and a recording fake stands in for the interface.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::*;
use crate::ProxyConfig;
use crate::service_port::{Endpoint, Protocol, ServicePort};

/// Records every address set it is asked to carry.
#[derive(Clone, Default)]
struct FakeLink(Arc<Mutex<Vec<BTreeSet<Ipv4Addr>>>>);

impl VipLink for FakeLink {
    async fn sync(&mut self, addresses: &BTreeSet<Ipv4Addr>) -> io::Result<()> {
        self.0.lock().expect("lock").push(addresses.clone());
        Ok(())
    }
}

fn node() -> Arc<NodeFacts> {
    let config = ProxyConfig {
        node_name: "node-a".into(),
        node_ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..ProxyConfig::default()
    };
    Arc::new(config.node_facts().expect("valid"))
}

fn proxy() -> (Userspace<FakeLink>, FakeLink) {
    let link = FakeLink::default();
    (Userspace::new(node(), link.clone(), Duration::from_millis(300)), link)
}

/// A free TCP+UDP port on `ip` (bound and released).
fn free_port(ip: Ipv4Addr) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind");
    l.local_addr().expect("addr").port()
}

/// A TCP backend that answers every connection with `reply`.
async fn tcp_backend(reply: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    addr
}

/// A UDP backend that answers every datagram with `reply` + the datagram.
async fn udp_backend(reply: &'static str) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind backend");
    let addr = s.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let mut out = reply.as_bytes().to_vec();
            out.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&out, from).await;
        }
    });
    addr
}

fn ep(addr: SocketAddr, local: bool) -> Endpoint {
    let IpAddr::V4(ip) = addr.ip() else { panic!("IPv4 backend") };
    Endpoint { ip, port: addr.port(), ready: true, serving: true, terminating: false, local }
}

fn port(cluster_ip: Ipv4Addr, number: u16, protocol: Protocol, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        namespace: "default".into(),
        service: "web".into(),
        port_name: "http".into(),
        protocol,
        cluster_ip,
        port: number,
        node_port: 0,
        external_ips: vec![],
        lb_ips: vec![],
        lb_source_ranges: vec![],
        affinity_timeout: None,
        internal_local: false,
        external_local: false,
        endpoints,
    }
}

async fn fetch(addr: SocketAddr) -> io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test]
async fn tcp_round_robin_then_affinity() {
    let (a, b) = (tcp_backend("a").await, tcp_backend("b").await);
    let vip = Ipv4Addr::new(127, 0, 0, 51);
    let number = free_port(vip);
    let mut sp = port(vip, number, Protocol::Tcp, vec![ep(a, false), ep(b, false)]);
    let (mut proxy, link) = proxy();
    proxy.sync(std::slice::from_ref(&sp)).await.expect("sync");
    assert_eq!(link.0.lock().expect("lock").last(), Some(&BTreeSet::from([vip])));

    let addr = SocketAddr::new(vip.into(), number);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(fetch(addr).await.expect("forwarded"));
    }
    seen.sort();
    assert_eq!(seen, ["a", "a", "b", "b"], "round robin over both endpoints");

    sp.affinity_timeout = Some(60);
    proxy.sync(std::slice::from_ref(&sp)).await.expect("sync");
    let first = fetch(addr).await.expect("forwarded");
    for _ in 0..4 {
        assert_eq!(fetch(addr).await.expect("forwarded"), first, "ClientIP affinity sticks");
    }
}

#[tokio::test]
async fn no_endpoints_refuses_and_listeners_follow_endpoints() {
    let a = tcp_backend("a").await;
    let vip = Ipv4Addr::new(127, 0, 0, 52);
    let number = free_port(vip);
    let addr = SocketAddr::new(vip.into(), number);
    let (mut proxy, link) = proxy();

    let empty = port(vip, number, Protocol::Tcp, vec![]);
    proxy.sync(std::slice::from_ref(&empty)).await.expect("sync");
    assert_eq!(link.0.lock().expect("lock").last(), Some(&BTreeSet::from([vip])), "the address is local anyway");
    let err = fetch(addr).await.expect_err("nothing listens");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);

    proxy.sync(&[port(vip, number, Protocol::Tcp, vec![ep(a, false)])]).await.expect("sync");
    assert_eq!(fetch(addr).await.expect("forwarded"), "a");

    // A dead endpoint: the connection is reset, not left hanging.
    let dead = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), free_port(Ipv4Addr::LOCALHOST));
    proxy.sync(&[port(vip, number, Protocol::Tcp, vec![ep(dead, false)])]).await.expect("sync");
    let got = fetch(addr).await;
    assert!(matches!(got.as_deref(), Err(_) | Ok("")), "{got:?}");

    proxy.sync(std::slice::from_ref(&empty)).await.expect("sync");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(fetch(addr).await.expect_err("listener gone").kind(), io::ErrorKind::ConnectionRefused);

    proxy.sync(&[]).await.expect("sync");
    assert_eq!(link.0.lock().expect("lock").last(), Some(&BTreeSet::new()), "addresses follow the Services");
}

#[tokio::test]
async fn node_port_and_external_local() {
    let (local, remote) = (tcp_backend("local").await, tcp_backend("remote").await);
    let vip = Ipv4Addr::new(127, 0, 0, 53);
    let node_port = free_port(Ipv4Addr::LOCALHOST);
    let mut sp = port(vip, free_port(vip), Protocol::Tcp, vec![ep(local, true), ep(remote, false)]);
    sp.node_port = node_port;
    sp.external_local = true;
    let (mut proxy, _) = proxy();
    proxy.sync(&[sp]).await.expect("sync");
    // The client (127.0.0.1) is the node itself: short-circuit to every endpoint.
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        seen.insert(fetch(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), node_port)).await.expect("forwarded"));
    }
    assert_eq!(seen, BTreeSet::from(["local".to_string(), "remote".to_string()]));
}

#[test]
fn external_local_picks_local_endpoints_for_outside_clients() {
    let local: SocketAddr = "10.42.0.2:8080".parse().expect("addr");
    let remote: SocketAddr = "10.42.1.2:8080".parse().expect("addr");
    let route = Route::new(RouteSpec {
        name: "default/web:http".into(),
        endpoints: vec![local],
        short_circuit: Some(vec![local, remote]),
        affinity: None,
    });
    let outside: IpAddr = "203.0.113.9".parse().expect("ip");
    for _ in 0..3 {
        assert_eq!(route.pick(outside, false, &[]), Some(local));
    }
    let picks: BTreeSet<_> = (0..4).filter_map(|_| route.pick(outside, true, &[])).collect();
    assert_eq!(picks.len(), 2, "cluster clients use every endpoint");
    assert_eq!(route.pick(outside, false, &[local]), None, "every endpoint tried");
}

#[tokio::test(start_paused = true)]
async fn affinity_expires() {
    let a: SocketAddr = "10.42.0.2:80".parse().expect("addr");
    let b: SocketAddr = "10.42.0.3:80".parse().expect("addr");
    let route = Route::new(RouteSpec {
        name: "x".into(),
        endpoints: vec![a, b],
        short_circuit: None,
        affinity: Some(Duration::from_secs(10)),
    });
    let client: IpAddr = "10.42.5.5".parse().expect("ip");
    let other: IpAddr = "10.42.5.6".parse().expect("ip");
    let first = route.pick(client, true, &[]).expect("an endpoint");
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(route.pick(client, true, &[]), Some(first), "still stuck after 9 s of a 10 s timeout");
    assert_ne!(route.pick(other, true, &[]), Some(first), "another client takes the next endpoint");
    tokio::time::advance(Duration::from_secs(11)).await;
    // Expired: round robin again (the other client moved the cursor past `first`'s peer).
    assert_eq!(route.pick(client, true, &[]), Some(first));
    assert_eq!(
        route.pick(client, true, &[first]),
        Some(if first == a { b } else { a }),
        "a failed endpoint is skipped"
    );
}

#[tokio::test]
async fn udp_sessions_reply_from_the_service_address() {
    let (a, b) = (udp_backend("a:").await, udp_backend("b:").await);
    let vip = Ipv4Addr::new(127, 0, 0, 54);
    let number = free_port(vip);
    let (mut proxy, _) = proxy();
    proxy.sync(&[port(vip, number, Protocol::Udp, vec![ep(a, false), ep(b, false)])]).await.expect("sync");
    let service = SocketAddr::new(vip.into(), number);

    let mut replies = BTreeSet::new();
    for _ in 0..2 {
        let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
        let mut buf = [0u8; 64];
        for ping in ["one", "two"] {
            client.send_to(ping.as_bytes(), service).await.expect("send");
            let (n, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
                .await
                .expect("reply")
                .expect("recv");
            assert_eq!(from, service, "the reply comes from the ClusterIP");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            assert!(text.ends_with(ping));
            replies.insert(text[..2].to_string());
        }
    }
    assert_eq!(replies, BTreeSet::from(["a:".to_string(), "b:".to_string()]), "one session per client, round robin");
}

#[tokio::test]
async fn udp_sessions_idle_out() {
    let (a, b) = (udp_backend("a:").await, udp_backend("b:").await);
    let vip = Ipv4Addr::new(127, 0, 0, 55);
    let number = free_port(vip);
    let (mut proxy, _) = proxy(); // 300 ms idle timeout
    proxy.sync(&[port(vip, number, Protocol::Udp, vec![ep(a, false), ep(b, false)])]).await.expect("sync");
    let service = SocketAddr::new(vip.into(), number);
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
    let ask = || async {
        let mut buf = [0u8; 64];
        client.send_to(b"x", service).await.expect("send");
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
            .await
            .expect("reply")
            .expect("recv");
        String::from_utf8_lossy(&buf[..2.min(n)]).into_owned()
    };
    let first = ask().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ask().await, first, "within the idle timeout: the same session");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_ne!(ask().await, first, "after it: a new session, the next endpoint");
}
