use k8s_openapi::api::certificates::v1::{CertificateSigningRequestCondition, CertificateSigningRequestStatus};
use k8s_openapi::api::core::v1::{NodeAddress, NodeStatus};

use super::*;

fn request(cn: &str, orgs: &[&str], sans: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for o in orgs {
        params.distinguished_name.push(rcgen::DnType::OrganizationName, *o);
    }
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName(s.to_string().try_into().unwrap()),
        })
        .collect();
    params.serialize_request(&key).unwrap().pem().unwrap().into_bytes()
}

fn csr(signer: &str, pem: Vec<u8>, usages: &[&str], user: &str, groups: &[&str]) -> CertificateSigningRequest {
    let mut c = CertificateSigningRequest::default();
    c.metadata.name = Some("c".into());
    c.spec.signer_name = signer.into();
    c.spec.request = ByteString(pem);
    c.spec.usages = Some(usages.iter().map(|u| u.to_string()).collect());
    c.spec.username = Some(user.into());
    c.spec.groups = Some(groups.iter().map(|g| g.to_string()).collect());
    c
}

fn node(name: &str, addresses: &[(&str, &str)]) -> Node {
    let mut n = Node::default();
    n.metadata.name = Some(name.into());
    n.status = Some(NodeStatus {
        addresses: Some(
            addresses.iter().map(|(t, a)| NodeAddress { type_: t.to_string(), address: a.to_string() }).collect(),
        ),
        ..Default::default()
    });
    n
}

const CLIENT: &[&str] = &["digital signature", "client auth"];
const SERVING: &[&str] = &["digital signature", "server auth"];

#[test]
fn parses_subject_and_sans() {
    let req = parse_request(&request("system:node:a", &["system:nodes"], &["a", "10.0.0.5"])).unwrap();
    assert_eq!(req.cn, "system:node:a");
    assert_eq!(req.orgs, ["system:nodes"]);
    assert_eq!(req.dns, ["a"]);
    assert_eq!(req.ips, ["10.0.0.5".parse::<IpAddr>().unwrap()]);
    assert!(parse_request(b"garbage").is_err());
    let cert = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    assert!(parse_request(cert).unwrap_err().contains("CERTIFICATE REQUEST"));
}

#[test]
fn approves_node_client_certificates_for_bootstrappers_and_renewals_only() {
    let pem = request("system:node:a", &["system:nodes"], &[]);
    let req = parse_request(&pem).unwrap();
    let joining = csr(KUBELET_CLIENT_SIGNER, pem.clone(), CLIENT, "system:bootstrap:skiff", &["system:bootstrappers"]);
    assert!(matches!(approval(&joining, &req, None), Approval::Approve(_)));
    let renewal = csr(KUBELET_CLIENT_SIGNER, pem.clone(), CLIENT, "system:node:a", &["system:nodes"]);
    assert!(matches!(approval(&renewal, &req, None), Approval::Approve(_)));
    let other_node = csr(KUBELET_CLIENT_SIGNER, pem.clone(), CLIENT, "system:node:b", &["system:nodes"]);
    assert_eq!(approval(&other_node, &req, None), Approval::Leave, "a node renews only its own");
    let stranger = csr(KUBELET_CLIENT_SIGNER, pem.clone(), CLIENT, "bob", &["system:authenticated"]);
    assert_eq!(approval(&stranger, &req, None), Approval::Leave);
    let serverish = csr(KUBELET_CLIENT_SIGNER, pem.clone(), SERVING, "x", &["system:bootstrappers"]);
    assert_eq!(approval(&serverish, &req, None), Approval::Leave, "usages must be a kubelet client's");
    let admin_pem = request("admin", &["system:masters"], &[]);
    let admin = csr(KUBELET_CLIENT_SIGNER, admin_pem.clone(), CLIENT, "x", &["system:bootstrappers"]);
    assert_eq!(approval(&admin, &parse_request(&admin_pem).unwrap(), None), Approval::Leave, "no masters via join");
    let with_san = request("system:node:a", &["system:nodes"], &["evil.example"]);
    let c = csr(KUBELET_CLIENT_SIGNER, with_san.clone(), CLIENT, "x", &["system:bootstrappers"]);
    assert_eq!(approval(&c, &parse_request(&with_san).unwrap(), None), Approval::Leave);
    let mut decided = joining.clone();
    decided.status = Some(CertificateSigningRequestStatus {
        conditions: Some(vec![CertificateSigningRequestCondition {
            type_: "Denied".into(),
            status: "True".into(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    assert_eq!(approval(&decided, &req, None), Approval::Leave, "a denied request stays denied");
    let plain = csr(CLIENT_SIGNER, pem, CLIENT, "x", &["system:bootstrappers"]);
    assert_eq!(approval(&plain, &req, None), Approval::Leave, "other signers wait for an admin");
}

#[test]
fn approves_serving_certificates_for_the_nodes_own_addresses() {
    let pem = request("system:node:a", &["system:nodes"], &["a", "10.0.0.5"]);
    let req = parse_request(&pem).unwrap();
    let c = csr(KUBELET_SERVING_SIGNER, pem.clone(), SERVING, "system:node:a", &["system:nodes"]);
    assert_eq!(approval(&c, &req, None), Approval::Wait, "no Node yet");
    assert_eq!(approval(&c, &req, Some(&node("a", &[]))), Approval::Wait, "no addresses yet");
    let a = node("a", &[("InternalIP", "10.0.0.5"), ("Hostname", "a")]);
    assert!(matches!(approval(&c, &req, Some(&a)), Approval::Approve(_)));
    let moved = node("a", &[("InternalIP", "10.0.0.6")]);
    assert_eq!(approval(&c, &req, Some(&moved)), Approval::Leave, "an address the node doesn't have");
    let by_other = csr(KUBELET_SERVING_SIGNER, pem.clone(), SERVING, "system:node:b", &["system:nodes"]);
    assert_eq!(approval(&by_other, &req, Some(&a)), Approval::Leave, "only for itself");
    let client_usage = csr(KUBELET_SERVING_SIGNER, pem, CLIENT, "system:node:a", &["system:nodes"]);
    assert_eq!(approval(&client_usage, &req, Some(&a)), Approval::Leave);
}

#[test]
fn signers_refuse_requests_outside_their_kind() {
    let node_pem = request("system:node:a", &["system:nodes"], &[]);
    let node_req = parse_request(&node_pem).unwrap();
    let ok = csr(KUBELET_CLIENT_SIGNER, node_pem.clone(), CLIENT, "x", &[]);
    assert_eq!(signer_refusal(&ok, &node_req), None);
    let user_pem = request("alice", &["dev"], &[]);
    let user_req = parse_request(&user_pem).unwrap();
    let wrong = csr(KUBELET_CLIENT_SIGNER, user_pem.clone(), CLIENT, "x", &[]);
    assert!(signer_refusal(&wrong, &user_req).unwrap().contains("not a node client certificate"));
    let client = csr(CLIENT_SIGNER, user_pem.clone(), CLIENT, "x", &[]);
    assert_eq!(signer_refusal(&client, &user_req), None, "kubectl certificate approve for users");
    let server = csr(CLIENT_SIGNER, user_pem, &["digital signature", "client auth", "server auth"], "x", &[]);
    assert!(signer_refusal(&server, &user_req).unwrap().contains("invalid usage"));
    let serving = csr(KUBELET_SERVING_SIGNER, node_pem, SERVING, "x", &[]);
    assert!(signer_refusal(&serving, &node_req).unwrap().contains("not a node serving"), "no SANs");
}
