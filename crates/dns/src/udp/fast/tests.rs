//! The fast path against the general one on the same index: wherever the fast path answers,
//! its bytes must be the general path's; and it must step aside for everything else.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Message, OpCode};
use hickory_server::proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_server::proto::rr::{DNSClass, RecordType};
use hickory_server::server::Request;
use tokio::sync::watch;

use super::answer;
use crate::forward::Forwarder;
use crate::handler::{Handler, Plan, encode_udp};
use crate::index::Index;
use crate::udp::tests::{index, query};

fn handler() -> (Handler, Arc<Index>) {
    let ix = Arc::new(index());
    let (_tx, rx) = watch::channel(ix.clone());
    // No upstream: nothing here is forwarded for real.
    (Handler::new(rx, Forwarder::new(Vec::new())), ix)
}

/// The general path's response, for a request it answers without an upstream.
fn general(handler: &Handler, datagram: &[u8]) -> Vec<u8> {
    let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let request = Request::from_bytes(datagram.to_vec(), src, Protocol::Udp).unwrap();
    match handler.plan(&request) {
        Plan::Ready(reply) => encode_udp(&request.queries, &reply),
        _ => panic!("the general path needs an upstream for this query"),
    }
}

fn edit(datagram: &[u8], f: impl FnOnce(&mut Message)) -> Vec<u8> {
    let mut m = Message::from_vec(datagram).unwrap();
    f(&mut m);
    m.to_vec().unwrap()
}

#[test]
fn address_answers_are_the_general_paths_bytes() {
    let (handler, ix) = handler();
    let web = "web.default.svc.cluster.local.";
    let cases = [
        ("A", query(1, web, RecordType::A, None)),
        ("A in mixed case", query(2, "Web.DEFAULT.svc.Cluster.local.", RecordType::A, None)),
        ("A with EDNS", query(3, web, RecordType::A, Some(1232))),
        ("A with EDNS under 512", query(4, web, RecordType::A, Some(100))),
        ("AAAA of a dual-stack Service", query(5, "dual.default.svc.cluster.local.", RecordType::AAAA, None)),
        ("A of a dual-stack Service", query(6, "dual.default.svc.cluster.local.", RecordType::A, Some(4096))),
        ("A of a headless Service: two records", query(7, "db.default.svc.cluster.local.", RecordType::A, None)),
        ("A of an endpoint", query(8, "db-0.db.default.svc.cluster.local.", RecordType::A, None)),
        ("60 records with EDNS 4096", query(9, "many.default.svc.cluster.local.", RecordType::A, Some(4096))),
        ("60 records in EDNS 1232", query(14, "many.default.svc.cluster.local.", RecordType::A, Some(1232))),
        ("A of a pod", query(10, "10-1-2-3.default.pod.cluster.local.", RecordType::A, None)),
        ("no RD", edit(&query(11, web, RecordType::A, None), |m| m.metadata.recursion_desired = false)),
        ("CD", edit(&query(12, web, RecordType::A, None), |m| m.metadata.checking_disabled = true)),
        (
            "DO",
            edit(&query(13, web, RecordType::A, Some(1232)), |m| {
                m.edns.as_mut().unwrap().set_dnssec_ok(true);
            }),
        ),
    ];
    for (what, datagram) in cases {
        let fast = answer(&ix, &datagram).unwrap_or_else(|| panic!("{what}: not answered by the fast path"));
        let expected = general(&handler, &datagram);
        assert_eq!(
            fast,
            expected,
            "{what}: fast\n{:?}\ngeneral\n{:?}",
            Message::from_vec(&fast),
            Message::from_vec(&expected)
        );
    }
}

#[test]
fn everything_else_goes_the_general_way() {
    let (_, ix) = handler();
    let web = "web.default.svc.cluster.local.";
    let mut cookie = Edns::new();
    cookie.options_mut().insert(EdnsOption::Unknown(u16::from(EdnsCode::Cookie), vec![1, 2, 3, 4, 5, 6, 7, 8]));
    let mut pointer = query(30, web, RecordType::A, None);
    // The question's name as `web` + a pointer to "default.svc.cluster.local." placed after it.
    pointer.truncate(12);
    pointer.extend_from_slice(&[3, b'w', b'e', b'b', 0xC0, 22, 0, 1, 0, 1]);
    pointer.extend_from_slice(&[7]);
    pointer.extend_from_slice(b"default");
    pointer.extend_from_slice(&[0]);
    let cases = [
        ("NXDOMAIN", query(1, "nope.default.svc.cluster.local.", RecordType::A, None)),
        ("NODATA", query(2, web, RecordType::AAAA, None)),
        ("SRV", query(3, "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV, None)),
        ("PTR", query(4, "10.0.43.10.in-addr.arpa.", RecordType::PTR, None)),
        ("outside the zone", query(5, "external.test.", RecordType::A, None)),
        ("ExternalName", query(6, "ext.default.svc.cluster.local.", RecordType::A, None)),
        ("60 records without EDNS: truncated", query(7, "many.default.svc.cluster.local.", RecordType::A, None)),
        ("60 records with EDNS 600: truncated", query(8, "many.default.svc.cluster.local.", RecordType::A, Some(600))),
        ("EDNS with an option", edit(&query(9, web, RecordType::A, Some(1232)), |m| m.edns = Some(cookie.clone()))),
        (
            "EDNS version 1",
            edit(&query(10, web, RecordType::A, Some(1232)), |m| {
                m.edns.as_mut().unwrap().set_version(1);
            }),
        ),
        (
            "class CH",
            edit(&query(11, web, RecordType::A, None), |m| {
                m.queries[0].set_query_class(DNSClass::CH);
            }),
        ),
        (
            "two questions",
            edit(&query(12, web, RecordType::A, None), |m| {
                let q = m.queries[0].clone();
                m.add_query(q);
            }),
        ),
        ("NOTIFY", edit(&query(13, web, RecordType::A, None), |m| m.metadata.op_code = OpCode::Notify)),
        ("a compression pointer in the question", pointer),
        ("trailing bytes", {
            let mut d = query(15, web, RecordType::A, None);
            d.push(0);
            d
        }),
        ("cut short", query(16, web, RecordType::A, None)[..20].to_vec()),
        ("a label with a space", {
            let mut d = query(17, web, RecordType::A, None);
            d[14] = b' ';
            d
        }),
    ];
    for (what, datagram) in cases {
        assert_eq!(answer(&ix, &datagram), None, "{what}: answered by the fast path");
    }
}
