//! The resolver over an index built from API objects, one behaviour per test, with the
//! expected answers taken from CoreDNS's kubernetes plugin.

use std::collections::BTreeSet;
use std::str::FromStr;

use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

use super::{Chase, Resolution, Response, resolve, srv_weight};
use crate::index::Index;

fn namespace(name: &str) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

fn service(name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})).unwrap()
}

fn slice(name: &str, service: &str, address_type: &str, endpoints: Value, ports: Value) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": service}},
        "addressType": address_type, "endpoints": endpoints, "ports": ports,
    }))
    .unwrap()
}

fn objects() -> (Vec<Service>, Vec<EndpointSlice>) {
    let services = vec![
        service(
            "web",
            json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"], "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"port": 8080, "protocol": "TCP"},
            ]}),
        ),
        service(
            "dual",
            json!({"type": "ClusterIP", "clusterIP": "10.43.0.11", "clusterIPs": ["10.43.0.11", "fd00:43::11"],
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}),
        ),
        service(
            "db",
            json!({"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}),
        ),
        service(
            "pnr",
            json!({"clusterIP": "None", "publishNotReadyAddresses": true, "ports": [{"name": "p", "port": 1}]}),
        ),
        service("lonely", json!({"clusterIP": "None", "ports": [{"name": "p", "port": 1}]})),
        service("ext", json!({"type": "ExternalName", "externalName": "www.example.com"})),
        service("ext-in", json!({"type": "ExternalName", "externalName": "web.default.svc.cluster.local"})),
        service("ext-ip", json!({"type": "ExternalName", "externalName": "192.0.2.1"})),
        service("v6", json!({"clusterIP": "None", "ports": [{"name": "p", "port": 1}]})),
    ];
    let slices = vec![
        slice(
            "db-abc",
            "db",
            "IPv4",
            json!([
                {"addresses": ["10.1.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.1.0.6"], "conditions": {"ready": true}},
                {"addresses": ["10.1.0.7"], "hostname": "db-2", "conditions": {"ready": false}},
                {"addresses": ["10.1.0.8"], "conditions": {}},
            ]),
            json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        ),
        slice(
            "pnr-abc",
            "pnr",
            "IPv4",
            json!([{"addresses": ["10.1.1.1"], "conditions": {"ready": false}}]),
            json!([{"name": "p", "port": 1, "protocol": "TCP"}]),
        ),
        slice(
            "web-abc",
            "web",
            "IPv4",
            json!([{"addresses": ["10.1.0.20"], "conditions": {"ready": true}}]),
            json!([{"name": "http", "port": 8000, "protocol": "TCP"}]),
        ),
        slice(
            "v6-abc",
            "v6",
            "IPv6",
            json!([{"addresses": ["fd00:1::5"], "conditions": {"ready": true}}]),
            json!([{"name": "p", "port": 1, "protocol": "TCP"}]),
        ),
    ];
    (services, slices)
}

fn index_with(synced: bool) -> Index {
    let (services, slices) = objects();
    let namespaces = [namespace("default"), namespace("kube-system")];
    Index::build(Name::from_ascii("cluster.local.").unwrap(), 5, 42, synced, &namespaces, &services, &slices)
}

fn index() -> Index {
    index_with(true)
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn ask(ix: &Index, qname: &str, qtype: RecordType) -> Response {
    match resolve(ix, &name(qname), qtype) {
        Resolution::Answer(r) => r,
        Resolution::Forward => panic!("{qname} {qtype} was forwarded"),
    }
}

/// The addresses in the answer section, sorted.
fn addresses(r: &Response) -> Vec<String> {
    let set: BTreeSet<String> = r
        .answers
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    set.into_iter().collect()
}

fn assert_nxdomain(r: &Response) {
    assert_eq!(r.rcode, ResponseCode::NXDomain, "{r:?}");
    assert!(r.answers.is_empty());
    assert_soa(&r.authorities);
}

fn assert_nodata(r: &Response) {
    assert_eq!(r.rcode, ResponseCode::NoError, "{r:?}");
    assert!(r.answers.is_empty(), "{r:?}");
    assert_soa(&r.authorities);
}

fn assert_soa(records: &[Record]) {
    assert_eq!(records.len(), 1, "{records:?}");
    let RData::SOA(soa) = &records[0].data else { panic!("not an SOA: {records:?}") };
    assert_eq!(records[0].name, name("cluster.local."));
    assert_eq!(records[0].ttl, 5);
    assert_eq!(soa.mname, name("ns.dns.cluster.local."));
    assert_eq!(soa.rname, name("hostmaster.cluster.local."));
    assert_eq!((soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum), (42, 7200, 1800, 86400, 5));
}

#[test]
fn cluster_ip_service_has_an_a_record_with_the_configured_ttl() {
    let r = ask(&index(), "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert_eq!(addresses(&r), ["10.43.0.10"]);
    assert_eq!(r.answers[0].name, name("web.default.svc.cluster.local."));
    assert_eq!(r.answers[0].ttl, 5);
    assert!(r.authorities.is_empty() && r.chase.is_none());
    // An IPv4-only Service has no AAAA: NODATA.
    assert_nodata(&ask(&index(), "web.default.svc.cluster.local.", RecordType::AAAA));
}

#[test]
fn dual_stack_service_has_a_and_aaaa() {
    assert_eq!(addresses(&ask(&index(), "dual.default.svc.cluster.local.", RecordType::A)), ["10.43.0.11"]);
    assert_eq!(addresses(&ask(&index(), "dual.default.svc.cluster.local.", RecordType::AAAA)), ["fd00:43::11"]);
}

#[test]
fn names_match_case_insensitively_and_answers_keep_the_question_case() {
    let r = ask(&index(), "WEB.Default.SVC.Cluster.LOCAL.", RecordType::A);
    assert_eq!(addresses(&r), ["10.43.0.10"]);
    assert!(r.answers[0].name.eq_case(&name("WEB.Default.SVC.Cluster.LOCAL.")));
    let r = ask(&index(), "_HTTP._Tcp.Web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(r.answers.len(), 1);
    let r = ask(&index(), "DB-0.DB.default.svc.cluster.local.", RecordType::A);
    assert_eq!(addresses(&r), ["10.1.0.5"]);
}

#[test]
fn a_name_without_the_trailing_dot_is_the_same_name() {
    let relative = Name::from_ascii("web.default.svc.cluster.local").unwrap();
    assert!(!relative.is_fqdn());
    let Resolution::Answer(r) = resolve(&index(), &relative, RecordType::A) else { panic!("forwarded") };
    assert_eq!(addresses(&r), ["10.43.0.10"]);
    assert!(r.answers[0].name.is_fqdn());
    let Resolution::Answer(r) =
        resolve(&index(), &Name::from_ascii("nope.default.svc.cluster.local").unwrap(), RecordType::A)
    else {
        panic!("forwarded")
    };
    assert_nxdomain(&r);
}

#[test]
fn headless_service_answers_ready_endpoints_only() {
    let r = ask(&index(), "db.default.svc.cluster.local.", RecordType::A);
    // 10.1.0.7 is not ready; 10.1.0.8 has no ready condition, which reads as ready.
    assert_eq!(addresses(&r), ["10.1.0.5", "10.1.0.6", "10.1.0.8"]);
    assert!(r.answers.iter().all(|rec| rec.name == name("db.default.svc.cluster.local.") && rec.ttl == 5));
}

#[test]
fn headless_endpoints_by_hostname_or_dashed_address() {
    let ix = index();
    assert_eq!(addresses(&ask(&ix, "db-0.db.default.svc.cluster.local.", RecordType::A)), ["10.1.0.5"]);
    assert_eq!(addresses(&ask(&ix, "10-1-0-6.db.default.svc.cluster.local.", RecordType::A)), ["10.1.0.6"]);
    // An endpoint with a hostname is not also known by its dashed address.
    assert_nxdomain(&ask(&ix, "10-1-0-5.db.default.svc.cluster.local.", RecordType::A));
    // Not ready: no name.
    assert_nxdomain(&ask(&ix, "db-2.db.default.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(&ix, "10-1-0-7.db.default.svc.cluster.local.", RecordType::A));
    // IPv6 endpoints: colons become dashes.
    assert_eq!(addresses(&ask(&ix, "fd00-1--5.v6.default.svc.cluster.local.", RecordType::AAAA)), ["fd00:1::5"]);
    assert_nodata(&ask(&ix, "fd00-1--5.v6.default.svc.cluster.local.", RecordType::A));
}

#[test]
fn endpoint_names_of_a_cluster_ip_service_resolve_too() {
    // CoreDNS answers `<endpoint>.<svc>` for any Service with endpoints, not only headless ones.
    assert_eq!(addresses(&ask(&index(), "10-1-0-20.web.default.svc.cluster.local.", RecordType::A)), ["10.1.0.20"]);
}

#[test]
fn publish_not_ready_addresses_publishes_every_endpoint() {
    assert_eq!(addresses(&ask(&index(), "pnr.default.svc.cluster.local.", RecordType::A)), ["10.1.1.1"]);
    assert_eq!(addresses(&ask(&index(), "10-1-1-1.pnr.default.svc.cluster.local.", RecordType::A)), ["10.1.1.1"]);
}

#[test]
fn headless_service_without_ready_endpoints_is_nxdomain() {
    assert_nxdomain(&ask(&index(), "lonely.default.svc.cluster.local.", RecordType::A));
}

fn srvs(r: &Response) -> Vec<(u16, u16, u16, String)> {
    let mut out: Vec<_> = r
        .answers
        .iter()
        .map(|rec| match &rec.data {
            RData::SRV(s) => (s.priority, s.weight, s.port, s.target.to_ascii()),
            other => panic!("not an SRV: {other:?}"),
        })
        .collect();
    out.sort();
    out
}

#[test]
fn srv_for_a_named_port_of_a_cluster_ip_service() {
    let r = ask(&index(), "_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(srvs(&r), [(0, 100, 80, "web.default.svc.cluster.local.".to_string())]);
    assert_eq!(r.answers[0].name, name("_http._tcp.web.default.svc.cluster.local."));
    assert_eq!(r.answers[0].ttl, 5);
    // The target's address rides along in the additional section.
    assert_eq!(r.additionals.len(), 1);
    assert_eq!(r.additionals[0].name, name("web.default.svc.cluster.local."));
    assert!(matches!(&r.additionals[0].data, RData::A(a) if a.0.to_string() == "10.43.0.10"));

    let r = ask(&index(), "_dns._udp.web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(srvs(&r), [(0, 100, 53, "web.default.svc.cluster.local.".to_string())]);
    // Wrong protocol, unknown port name: no such name.
    assert_nxdomain(&ask(&index(), "_http._udp.web.default.svc.cluster.local.", RecordType::SRV));
    assert_nxdomain(&ask(&index(), "_nope._tcp.web.default.svc.cluster.local.", RecordType::SRV));
    // The Service name itself lists every port (CoreDNS), unnamed ones included.
    let r = ask(&index(), "web.default.svc.cluster.local.", RecordType::SRV);
    let ports: Vec<u16> = srvs(&r).iter().map(|s| s.2).collect();
    assert_eq!(ports, [53, 80, 8080]);
    // An address query on the SRV name answers the Service's address (CoreDNS).
    assert_eq!(addresses(&ask(&index(), "_http._tcp.web.default.svc.cluster.local.", RecordType::A)), ["10.43.0.10"]);
}

#[test]
fn srv_for_a_headless_service_names_each_endpoint() {
    let r = ask(&index(), "_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        srvs(&r),
        [
            (0, 33, 5432, "10-1-0-6.db.default.svc.cluster.local.".to_string()),
            (0, 33, 5432, "10-1-0-8.db.default.svc.cluster.local.".to_string()),
            (0, 33, 5432, "db-0.db.default.svc.cluster.local.".to_string()),
        ]
    );
    let mut extra: Vec<(String, String)> = r
        .additionals
        .iter()
        .map(|rec| match &rec.data {
            RData::A(a) => (rec.name.to_ascii(), a.0.to_string()),
            other => panic!("not an A: {other:?}"),
        })
        .collect();
    extra.sort();
    assert_eq!(
        extra,
        [
            ("10-1-0-6.db.default.svc.cluster.local.".to_string(), "10.1.0.6".to_string()),
            ("10-1-0-8.db.default.svc.cluster.local.".to_string(), "10.1.0.8".to_string()),
            ("db-0.db.default.svc.cluster.local.".to_string(), "10.1.0.5".to_string()),
        ]
    );
}

#[test]
fn srv_weights_split_100_evenly() {
    assert_eq!([srv_weight(1), srv_weight(2), srv_weight(3), srv_weight(7), srv_weight(101)], [100, 50, 33, 14, 1]);
}

#[test]
fn external_name_is_a_cname_chased_upstream() {
    let ix = index();
    let r = ask(&ix, "ext.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert_eq!(r.answers.len(), 1);
    assert_eq!(r.answers[0].name, name("ext.default.svc.cluster.local."));
    assert!(matches!(&r.answers[0].data, RData::CNAME(c) if c.0 == name("www.example.com.")));
    let Some(Chase { target, qtype, soa }) = r.chase.as_deref() else { panic!("no chase: {r:?}") };
    assert_eq!((target, *qtype), (&name("www.example.com."), RecordType::A));
    assert_soa(std::slice::from_ref(soa));
    // AAAA chases with AAAA.
    let r = ask(&ix, "ext.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(r.chase.as_ref().map(|c| c.qtype), Some(RecordType::AAAA));
    // A CNAME question gets the CNAME alone.
    let r = ask(&ix, "ext.default.svc.cluster.local.", RecordType::CNAME);
    assert!(matches!(&r.answers[..], [rec] if matches!(&rec.data, RData::CNAME(c) if c.0 == name("www.example.com."))));
    assert!(r.chase.is_none());
    // No SRV for an ExternalName, and no port names under it.
    assert_nodata(&ask(&ix, "ext.default.svc.cluster.local.", RecordType::SRV));
    assert_nxdomain(&ask(&ix, "_http._tcp.ext.default.svc.cluster.local.", RecordType::SRV));
    // An ExternalName that is an address is no CNAME: nothing there.
    assert_nxdomain(&ask(&ix, "ext-ip.default.svc.cluster.local.", RecordType::A));
    // A CNAME question for a Service with a ClusterIP: the name exists, no CNAME.
    assert_nodata(&ask(&ix, "web.default.svc.cluster.local.", RecordType::CNAME));
}

#[test]
fn external_name_inside_the_zone_is_followed_in_place() {
    let r = ask(&index(), "ext-in.default.svc.cluster.local.", RecordType::A);
    assert!(r.chase.is_none());
    assert_eq!(r.answers.len(), 2);
    assert!(matches!(&r.answers[0].data, RData::CNAME(c) if c.0 == name("web.default.svc.cluster.local.")));
    assert_eq!(r.answers[1].name, name("web.default.svc.cluster.local."));
    assert_eq!(addresses(&r), ["10.43.0.10"]);
}

fn ptrs(ix: &Index, qname: &str) -> Vec<String> {
    let r = ask(ix, qname, RecordType::PTR);
    assert_eq!(r.rcode, ResponseCode::NoError);
    r.answers
        .iter()
        .map(|rec| match &rec.data {
            RData::PTR(p) => p.0.to_ascii(),
            other => panic!("not a PTR: {other:?}"),
        })
        .collect()
}

#[test]
fn ptr_for_cluster_ips_and_endpoint_addresses() {
    let ix = index();
    assert_eq!(ptrs(&ix, "10.0.43.10.in-addr.arpa."), ["web.default.svc.cluster.local."]);
    assert_eq!(ptrs(&ix, "5.0.1.10.in-addr.arpa."), ["db-0.db.default.svc.cluster.local."]);
    assert_eq!(ptrs(&ix, "6.0.1.10.In-Addr.Arpa."), ["10-1-0-6.db.default.svc.cluster.local."]);
    // Endpoints of any Service have PTRs in CoreDNS.
    assert_eq!(ptrs(&ix, "20.0.1.10.in-addr.arpa."), ["10-1-0-20.web.default.svc.cluster.local."]);
    let v6 = "1.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa.";
    assert_eq!(ptrs(&ix, v6), ["dual.default.svc.cluster.local."]);
    // Unknown, not-ready and partial addresses fall through to the upstreams.
    for q in ["9.9.9.10.in-addr.arpa.", "7.0.1.10.in-addr.arpa.", "0.1.10.in-addr.arpa."] {
        assert!(matches!(resolve(&ix, &name(q), RecordType::PTR), Resolution::Forward), "{q}");
    }
    // Other types on reverse names are not the cluster's either.
    assert!(matches!(resolve(&ix, &name("10.0.43.10.in-addr.arpa."), RecordType::A), Resolution::Forward));
}

#[test]
fn pod_records_from_the_dashed_address() {
    let ix = index();
    let r = ask(&ix, "10-1-2-3.default.pod.cluster.local.", RecordType::A);
    assert_eq!(addresses(&r), ["10.1.2.3"]);
    assert_eq!(r.answers[0].ttl, 5);
    assert_eq!(addresses(&ask(&ix, "fd00--7.kube-system.pod.cluster.local.", RecordType::AAAA)), ["fd00::7"]);
    assert_nodata(&ask(&ix, "10-1-2-3.default.pod.cluster.local.", RecordType::AAAA));
    // The namespace must exist; the label must be an address.
    assert_nxdomain(&ask(&ix, "10-1-2-3.nope.pod.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(&ix, "not-an-ip.default.pod.cluster.local.", RecordType::A));
    assert_nodata(&ask(&ix, "default.pod.cluster.local.", RecordType::A));
}

#[test]
fn nxdomain_for_missing_names_and_nodata_for_existing_ones() {
    let ix = index();
    assert_nxdomain(&ask(&ix, "missing.default.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(&ix, "web.nope.svc.cluster.local.", RecordType::A));
    // `<ns>.svc.<zone>` exists when the namespace does.
    assert_nodata(&ask(&ix, "default.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(&ix, "nope.svc.cluster.local.", RecordType::A));
    assert_nodata(&ask(&ix, "svc.cluster.local.", RecordType::A));
    assert_nodata(&ask(&ix, "pod.cluster.local.", RecordType::A));
    assert_nodata(&ask(&ix, "cluster.local.", RecordType::A));
    // Neither svc nor pod, or too many labels.
    assert_nxdomain(&ask(&ix, "foo.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(&ix, "a.b.c.web.default.svc.cluster.local.", RecordType::A));
    // Other types: existence decides.
    assert_nodata(&ask(&ix, "web.default.svc.cluster.local.", RecordType::MX));
    assert_nxdomain(&ask(&ix, "missing.default.svc.cluster.local.", RecordType::MX));
    assert_nodata(&ask(&ix, "web.default.svc.cluster.local.", RecordType::PTR));
    assert_nodata(&ask(&ix, "web.default.svc.cluster.local.", RecordType::NS));
    assert_nodata(&ask(&ix, "web.default.svc.cluster.local.", RecordType::SOA));
}

#[test]
fn txt_dns_version_soa_at_the_apex_and_no_zone_transfers() {
    let ix = index();
    let r = ask(&ix, "dns-version.cluster.local.", RecordType::TXT);
    let [rec] = &r.answers[..] else { panic!("{r:?}") };
    assert_eq!(rec.ttl, 28800);
    assert!(matches!(&rec.data, RData::TXT(t) if t.txt_data.len() == 1 && &*t.txt_data[0] == b"1.1.0"));
    // TXT elsewhere: NODATA where records exist, NXDOMAIN otherwise (CoreDNS's rule, which
    // makes a bare namespace NXDOMAIN for TXT).
    assert_nodata(&ask(&ix, "web.default.svc.cluster.local.", RecordType::TXT));
    assert_nxdomain(&ask(&ix, "missing.default.svc.cluster.local.", RecordType::TXT));
    assert_nxdomain(&ask(&ix, "default.svc.cluster.local.", RecordType::TXT));

    let r = ask(&ix, "Cluster.Local.", RecordType::SOA);
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert_soa(&r.answers);
    assert!(r.authorities.is_empty());
    assert_nodata(&ask(&ix, "cluster.local.", RecordType::NS));

    let r = ask(&ix, "cluster.local.", RecordType::AXFR);
    assert_eq!(r.rcode, ResponseCode::Refused);
}

#[test]
fn before_the_caches_sync_a_miss_is_servfail() {
    let ix = index_with(false);
    let r = ask(&ix, "missing.default.svc.cluster.local.", RecordType::A);
    assert_eq!(r.rcode, ResponseCode::ServFail);
    assert_eq!(addresses(&ask(&ix, "web.default.svc.cluster.local.", RecordType::A)), ["10.43.0.10"]);
    assert_nodata(&ask(&ix, "web.default.svc.cluster.local.", RecordType::AAAA));
}

#[test]
fn names_outside_the_zone_are_forwarded() {
    let ix = index();
    for q in ["example.com.", "cluster.local.example.com.", "local.", "."] {
        assert!(matches!(resolve(&ix, &name(q), RecordType::A), Resolution::Forward), "{q}");
    }
}

#[test]
fn a_cluster_domain_other_than_cluster_local() {
    let (services, slices) = objects();
    let ix = Index::build(name("k8s.example.org."), 30, 1, true, &[namespace("default")], &services, &slices);
    let r = ask(&ix, "web.default.svc.k8s.example.org.", RecordType::A);
    assert_eq!(addresses(&r), ["10.43.0.10"]);
    assert_eq!(r.answers[0].ttl, 30);
    assert!(matches!(resolve(&ix, &name("web.default.svc.cluster.local."), RecordType::A), Resolution::Forward));
    let r = ask(&ix, "_http._tcp.web.default.svc.k8s.example.org.", RecordType::SRV);
    assert!(matches!(&r.answers[0].data, RData::SRV(s) if s.target == name("web.default.svc.k8s.example.org.")));
}
