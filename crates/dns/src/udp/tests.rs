//! The UDP loop against hickory's own UDP server running the same [`Handler`] on the same
//! index: every query, well-formed or not, must get the same response bytes from both (or no
//! response from either). A stub upstream on 127.0.0.1 stands in for the node's nameservers.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::serve;
use crate::forward::Forwarder;
use crate::handler::Handler;
use crate::index::Index;

fn service(name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})).unwrap()
}

/// ClusterIP (one and two families), headless with a few endpoints and with 60 (more than 512
/// bytes of A records), and ExternalName Services.
pub(super) fn index() -> Index {
    let services = vec![
        service(
            "web",
            json!({"clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        service(
            "dual",
            json!({"clusterIP": "10.43.0.11", "clusterIPs": ["10.43.0.11", "fd00:43::11"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        service("db", json!({"clusterIP": "None", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]})),
        service("many", json!({"clusterIP": "None", "ports": [{"name": "p", "port": 1, "protocol": "TCP"}]})),
        service("ext", json!({"type": "ExternalName", "externalName": "external.test"})),
        service("ext-missing", json!({"type": "ExternalName", "externalName": "missing.test"})),
    ];
    let slice = |name: &str, svc: &str, endpoints: Value, port: Value| -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": [port],
        }))
        .unwrap()
    };
    let many: Vec<Value> =
        (1..=60).map(|i| json!({"addresses": [format!("10.2.0.{i}")], "conditions": {"ready": true}})).collect();
    let slices = vec![
        slice(
            "db-a",
            "db",
            json!([{"addresses": ["10.1.0.5"], "hostname": "db-0"}, {"addresses": ["10.1.0.6"]}]),
            json!({"name": "pg", "port": 5432, "protocol": "TCP"}),
        ),
        slice("many-a", "many", Value::Array(many), json!({"name": "p", "port": 1, "protocol": "TCP"})),
    ];
    let namespaces: Vec<Namespace> = vec![serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap()];
    Index::build(Name::from_ascii("cluster.local.").unwrap(), 5, 42, true, &namespaces, &services, &slices)
}

/// A UDP-only stub upstream: `external.test` A is 192.0.2.10 (TTL 300), anything else
/// NXDOMAIN.
pub(super) async fn upstream() -> SocketAddr {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let mut response = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.add_queries(query.queries.clone());
            match query.queries.first() {
                Some(q)
                    if q.name().to_lowercase().to_ascii() == "external.test." && q.query_type() == RecordType::A =>
                {
                    response.add_answer(Record::from_rdata(
                        q.name().clone(),
                        300,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 10))),
                    ));
                }
                _ => response.metadata.response_code = ResponseCode::NXDomain,
            }
            let _ = udp.send_to(&response.to_vec().unwrap(), peer).await;
        }
    });
    addr
}

/// A query; `edns` is the payload size offered, if any.
pub(super) fn query(id: u16, name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

/// Every case, as (what it is, the datagram).
fn cases() -> Vec<(&'static str, Vec<u8>)> {
    let svc = "web.default.svc.cluster.local.";
    let mut cases = vec![
        ("A of a ClusterIP Service", query(1, svc, RecordType::A, None)),
        ("A with EDNS", query(2, svc, RecordType::A, Some(1232))),
        ("A with a tiny EDNS payload", query(3, svc, RecordType::A, Some(100))),
        ("A in mixed case", query(4, "WEB.Default.Svc.Cluster.Local.", RecordType::A, None)),
        ("AAAA of an IPv4 Service: NODATA", query(5, svc, RecordType::AAAA, None)),
        ("AAAA of a dual-stack Service", query(6, "dual.default.svc.cluster.local.", RecordType::AAAA, None)),
        ("SRV of a named port", query(7, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV, None)),
        ("SRV of a headless Service", query(8, "db.default.svc.cluster.local.", RecordType::SRV, Some(4096))),
        ("A of a headless Service", query(9, "db.default.svc.cluster.local.", RecordType::A, None)),
        ("A of an endpoint hostname", query(10, "db-0.db.default.svc.cluster.local.", RecordType::A, None)),
        ("60 A records without EDNS: truncated", query(11, "many.default.svc.cluster.local.", RecordType::A, None)),
        ("60 A records with EDNS 4096", query(12, "many.default.svc.cluster.local.", RecordType::A, Some(4096))),
        ("PTR of a ClusterIP", query(13, "10.0.43.10.in-addr.arpa.", RecordType::PTR, None)),
        ("PTR of an endpoint", query(14, "5.0.1.10.in-addr.arpa.", RecordType::PTR, None)),
        ("NXDOMAIN in the zone", query(15, "nope.default.svc.cluster.local.", RecordType::A, None)),
        ("NXDOMAIN with EDNS", query(16, "nope.default.svc.cluster.local.", RecordType::A, Some(1232))),
        ("TXT dns-version", query(17, "dns-version.cluster.local.", RecordType::TXT, None)),
        ("SOA at the apex", query(18, "cluster.local.", RecordType::SOA, None)),
        ("AXFR: refused", query(19, "cluster.local.", RecordType::AXFR, None)),
        ("MX of a Service: NODATA", query(20, svc, RecordType::MX, None)),
        ("forwarded", query(21, "external.test.", RecordType::A, None)),
        ("forwarded with EDNS", query(22, "external.test.", RecordType::A, Some(1232))),
        ("forwarded NXDOMAIN", query(23, "missing.test.", RecordType::A, None)),
        ("PTR of an unknown address: forwarded", query(24, "9.9.9.10.in-addr.arpa.", RecordType::PTR, None)),
        ("ExternalName chased upstream", query(25, "ext.default.svc.cluster.local.", RecordType::A, None)),
        (
            "ExternalName whose target is missing",
            query(26, "ext-missing.default.svc.cluster.local.", RecordType::A, None),
        ),
    ];
    let mut badvers = Message::from_vec(&query(30, svc, RecordType::A, Some(1232))).unwrap();
    badvers.edns.as_mut().unwrap().set_version(1);
    cases.push(("EDNS version 1: BADVERS", badvers.to_vec().unwrap()));
    let mut notify = Message::from_vec(&query(31, svc, RecordType::SOA, None)).unwrap();
    notify.metadata.op_code = OpCode::Notify;
    cases.push(("NOTIFY: NOTIMP", notify.to_vec().unwrap()));
    let mut two = Message::from_vec(&query(32, svc, RecordType::A, None)).unwrap();
    two.add_query(Query::query(Name::from_str("db.default.svc.cluster.local.").unwrap(), RecordType::A));
    cases.push(("two questions: FORMERR", two.to_vec().unwrap()));
    let none = Message::new(33, MessageType::Query, OpCode::Query);
    cases.push(("no question: FORMERR", none.to_vec().unwrap()));
    let mut garbage = query(34, svc, RecordType::A, None);
    garbage.truncate(20);
    cases.push(("a question cut short: FORMERR", garbage));
    cases
}

/// Datagrams neither server answers.
fn unanswered() -> Vec<(&'static str, Vec<u8>)> {
    let mut response = Message::from_vec(&query(40, "web.default.svc.cluster.local.", RecordType::A, None)).unwrap();
    response.metadata.message_type = MessageType::Response;
    vec![("shorter than a header", vec![0, 1, 2, 3, 4]), ("a response", response.to_vec().unwrap())]
}

/// Send `datagram` to `server` and wait up to `wait` for the response.
async fn exchange(server: SocketAddr, datagram: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(datagram, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(wait, client.recv_from(&mut buf)).await.ok()?.unwrap();
    Some(buf[..n].to_vec())
}

#[tokio::test]
async fn the_udp_loop_answers_byte_for_byte_as_hickorys_udp_server() {
    let (_tx, rx) = watch::channel(Arc::new(index()));
    let handler = Handler::new(rx, Forwarder::new(vec![upstream().await]));

    // The general path: hickory's server, as the UDP side ran before the loop.
    let general = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let general_addr = general.local_addr().unwrap();
    let mut server = Server::new(handler.clone());
    server.register_socket(general);

    let fast = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let fast_addr = fast.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let fast_loop = tokio::spawn(serve(fast, Arc::new(handler), shutdown.clone()));

    for (what, datagram) in cases() {
        let expected = exchange(general_addr, &datagram, Duration::from_secs(5)).await;
        let got = exchange(fast_addr, &datagram, Duration::from_secs(5)).await;
        let expected = expected.unwrap_or_else(|| panic!("{what}: hickory did not answer"));
        let got = got.unwrap_or_else(|| panic!("{what}: the UDP loop did not answer"));
        assert_eq!(
            got,
            expected,
            "{what}: the UDP loop answered\n{:?}\nhickory answered\n{:?}",
            Message::from_vec(&got),
            Message::from_vec(&expected)
        );
    }
    for (what, datagram) in unanswered() {
        let wait = Duration::from_millis(300);
        assert_eq!(exchange(general_addr, &datagram, wait).await, None, "{what}: hickory answered");
        assert_eq!(exchange(fast_addr, &datagram, wait).await, None, "{what}: the UDP loop answered");
    }

    // The cases say what they should: a few spot checks of the decoded responses.
    let decode = |bytes: Option<Vec<u8>>| Message::from_vec(&bytes.unwrap()).unwrap();
    let cases = cases();
    let answer = |what: &str| cases.iter().find(|(w, _)| *w == what).map(|(_, d)| d.clone()).unwrap();
    let wait = Duration::from_secs(5);
    let m = decode(exchange(fast_addr, &answer("60 A records without EDNS: truncated"), wait).await);
    assert!(m.metadata.truncation && m.answers.len() < 60, "{m:?}");
    let m = decode(exchange(fast_addr, &answer("60 A records with EDNS 4096"), wait).await);
    assert!(!m.metadata.truncation && m.answers.len() == 60 && m.edns.is_some(), "{m:?}");
    let m = decode(exchange(fast_addr, &answer("forwarded"), wait).await);
    assert!(!m.metadata.authoritative && m.answers.len() == 1, "{m:?}");
    let m = decode(exchange(fast_addr, &answer("NXDOMAIN in the zone"), wait).await);
    assert!(m.metadata.authoritative && m.metadata.response_code == ResponseCode::NXDomain, "{m:?}");
    let m = decode(exchange(fast_addr, &answer("ExternalName chased upstream"), wait).await);
    assert_eq!(m.answers.len(), 2, "{m:?}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), fast_loop).await.unwrap().unwrap().unwrap();
    server.shutdown_gracefully().await.unwrap();
}
