//! CertificateSigningRequests: upstream's approver (`csrapproving`) and signer (`csrsigning`)
//! in one controller.
//!
//! The approver decides kubelet certificates only, as upstream's does:
//! - client certificates (`kubernetes.io/kube-apiserver-client-kubelet`) for `system:node:<n>`
//!   in `system:nodes`, asked for by a joining agent (`system:bootstrappers`), an admin, or the
//!   node itself renewing;
//! - serving certificates (`kubernetes.io/kubelet-serving`) asked for by the node itself, for
//!   names and addresses its Node reports. Upstream leaves these to an admin or an external
//!   approver; a skiff agent needs one to serve logs and exec, so we approve what can be
//!   checked against the Node (see docs/decisions/0009-joining-nodes.md).
//!
//! Anything else stays pending for `kubectl certificate approve|deny`. The signer then signs
//! approved requests of the three built-in signers it holds the CA for.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informer::Informer;
use crate::queue::WorkQueue;
use crate::{Error, Key};

pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";

/// Upstream's `--cluster-signing-duration` default: a year.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Signs a PKCS#10 request (PEM) with the cluster CA for `usages`, valid for a duration;
/// returns the certificate PEM. The server implements it over its PKI.
pub trait CsrSigner: Send + Sync {
    fn sign(&self, request_pem: &str, usages: &[String], valid_for: Duration) -> Result<String, String>;
}

/// A signer in the controller manager's configuration.
#[derive(Clone)]
pub struct Signer(pub Arc<dyn CsrSigner>);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer")
    }
}

/// What a PKCS#10 request asks for.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Request {
    pub cn: String,
    pub orgs: Vec<String>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    /// SANs other than DNS names and IPs (emails, URIs).
    pub other_sans: usize,
}

pub(crate) fn parse_request(pem: &[u8]) -> Result<Request, String> {
    use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509CertificationRequest};
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("not PEM: {e}"))?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(format!("PEM block type must be CERTIFICATE REQUEST, not {}", block.label));
    }
    let (_, csr) = X509CertificationRequest::from_der(&block.contents).map_err(|e| format!("bad request: {e}"))?;
    let subject = &csr.certification_request_info.subject;
    let mut req = Request {
        cn: subject.iter_common_name().next().and_then(|c| c.as_str().ok()).unwrap_or_default().to_string(),
        orgs: subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect(),
        ..Default::default()
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => req.dns.push(d.to_string()),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => req.ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                        16 => req.ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                        _ => req.other_sans += 1,
                    },
                    _ => req.other_sans += 1,
                }
            }
        }
    }
    Ok(req)
}

fn usages(csr: &CertificateSigningRequest) -> BTreeSet<&str> {
    csr.spec.usages.iter().flatten().map(String::as_str).collect()
}

fn has_condition(csr: &CertificateSigningRequest, types: &[&str]) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| types.contains(&c.type_.as_str()) && c.status == "True")
}

/// Upstream's `isNodeClientCert`: `system:node:<n>` in exactly `system:nodes`, no SANs, and
/// the usages a kubelet asks for.
fn is_node_client(req: &Request, usages: &BTreeSet<&str>) -> bool {
    let allowed: [BTreeSet<&str>; 2] = [
        ["digital signature", "client auth"].into_iter().collect(),
        ["key encipherment", "digital signature", "client auth"].into_iter().collect(),
    ];
    req.orgs == ["system:nodes"]
        && req.cn.starts_with("system:node:")
        && req.dns.is_empty()
        && req.ips.is_empty()
        && req.other_sans == 0
        && allowed.contains(usages)
}

fn is_node_serving(req: &Request, usages: &BTreeSet<&str>) -> bool {
    let allowed: BTreeSet<&str> = ["key encipherment", "digital signature", "server auth"].into_iter().collect();
    req.orgs == ["system:nodes"]
        && req.cn.starts_with("system:node:")
        && req.other_sans == 0
        && !(req.dns.is_empty() && req.ips.is_empty())
        && usages.contains("server auth")
        && usages.is_subset(&allowed)
}

/// What the approver does with a request.
#[derive(Debug, PartialEq)]
pub(crate) enum Approval {
    Approve(&'static str),
    /// Not yet decidable (the Node has no addresses yet): look again later.
    Wait,
    /// Not ours to approve: leave it pending.
    Leave,
}

pub(crate) fn approval(csr: &CertificateSigningRequest, req: &Request, node: Option<&Node>) -> Approval {
    if has_condition(csr, &["Approved", "Denied", "Failed"]) {
        return Approval::Leave;
    }
    let usages = usages(csr);
    let spec = &csr.spec;
    let requester = spec.username.as_deref().unwrap_or_default();
    let groups: Vec<&str> = spec.groups.iter().flatten().map(String::as_str).collect();
    match spec.signer_name.as_str() {
        KUBELET_CLIENT_SIGNER if is_node_client(req, &usages) => {
            let bootstrap = groups.iter().any(|g| matches!(*g, "system:bootstrappers" | "system:masters"));
            let renewal = requester == req.cn && groups.contains(&"system:nodes");
            if bootstrap || renewal {
                Approval::Approve("Auto approving kubelet client certificate after SubjectAccessReview.")
            } else {
                Approval::Leave
            }
        }
        KUBELET_SERVING_SIGNER if is_node_serving(req, &usages) => {
            if requester != req.cn || !groups.contains(&"system:nodes") {
                return Approval::Leave;
            }
            let Some(node) = node else { return Approval::Wait };
            let addresses = node.status.as_ref().and_then(|s| s.addresses.clone()).unwrap_or_default();
            if addresses.is_empty() {
                return Approval::Wait;
            }
            let name = node.metadata.name.as_deref().unwrap_or_default();
            let ips_ok = req.ips.iter().all(|ip| {
                addresses.iter().any(|a| {
                    matches!(a.type_.as_str(), "InternalIP" | "ExternalIP") && a.address.parse::<IpAddr>() == Ok(*ip)
                })
            });
            let names_ok = req.dns.iter().all(|d| {
                d == name
                    || addresses.iter().any(|a| {
                        matches!(a.type_.as_str(), "Hostname" | "InternalDNS" | "ExternalDNS") && a.address == *d
                    })
            });
            if ips_ok && names_ok {
                Approval::Approve("Auto approving kubelet serving certificate: the node asked for its own addresses.")
            } else {
                Approval::Leave
            }
        }
        _ => Approval::Leave,
    }
}

/// Why an approved request cannot be signed by its signer (upstream's
/// `SignerValidationFailure`), if it can't.
pub(crate) fn signer_refusal(csr: &CertificateSigningRequest, req: &Request) -> Option<String> {
    let usages = usages(csr);
    match csr.spec.signer_name.as_str() {
        KUBELET_CLIENT_SIGNER if !is_node_client(req, &usages) => {
            Some("invalid request for signer kubernetes.io/kube-apiserver-client-kubelet: not a node client certificate (CN system:node:<name>, O system:nodes, no SANs, client auth)".into())
        }
        KUBELET_SERVING_SIGNER if !is_node_serving(req, &usages) => {
            Some("invalid request for signer kubernetes.io/kubelet-serving: not a node serving certificate (CN system:node:<name>, O system:nodes, DNS or IP SANs, server auth)".into())
        }
        CLIENT_SIGNER if !usages.contains("client auth") || usages.contains("server auth") => {
            Some("invalid usage for client certificate: want client auth and not server auth".into())
        }
        _ => None,
    }
}

/// A merge patch setting the request's conditions plus a new one (the list is replaced whole).
fn with_condition(csr: &CertificateSigningRequest, type_: &str, reason: &str, message: &str) -> serde_json::Value {
    let mut conditions: Vec<serde_json::Value> = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| serde_json::to_value(c).ok())
        .collect();
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    conditions.push(json!({"type": type_, "status": "True", "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now}));
    json!({"status": {"conditions": conditions}})
}

fn is_ours(signer: &str) -> bool {
    matches!(signer, KUBELET_CLIENT_SIGNER | KUBELET_SERVING_SIGNER | CLIENT_SIGNER)
}

pub(crate) struct CertificateController {
    client: kube::Client,
    csrs: Informer<CertificateSigningRequest>,
    nodes: Informer<Node>,
    signer: Option<Signer>,
    queue: WorkQueue<Key>,
}

impl CertificateController {
    pub(crate) fn new(
        client: kube::Client,
        csrs: Informer<CertificateSigningRequest>,
        nodes: Informer<Node>,
        signer: Option<Signer>,
    ) -> Arc<Self> {
        let c = Arc::new(CertificateController {
            client,
            csrs: csrs.clone(),
            nodes: nodes.clone(),
            signer,
            queue: WorkQueue::new(),
        });
        let q = c.queue.clone();
        csrs.on_change(move |ch| q.add(Key::new("", &kube::ResourceExt::name_any(ch.object()))));
        c
    }

    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        self.csrs.start(shutdown.clone());
        self.csrs.synced().await;
        self.nodes.synced().await;
        crate::run_workers("certificates", self.queue.clone(), 1, shutdown, move |key| {
            let c = self.clone();
            async move { c.sync(&key).await }
        })
        .await;
    }

    async fn sync(&self, key: &Key) -> Result<Option<Duration>, Error> {
        let Some(csr) = self.csrs.store().get(&ObjectRef::new(&key.name)) else { return Ok(None) };
        if csr.status.as_ref().and_then(|s| s.certificate.as_ref()).is_some_and(|c| !c.0.is_empty())
            || has_condition(&csr, &["Denied", "Failed"])
        {
            return Ok(None);
        }
        let api: Api<CertificateSigningRequest> = Api::all(self.client.clone());
        let req = match parse_request(&csr.spec.request.0) {
            Ok(r) => r,
            Err(e) => {
                if is_ours(&csr.spec.signer_name) && has_condition(&csr, &["Approved"]) {
                    self.fail(&api, &key.name, &e).await?;
                }
                return Ok(None);
            }
        };
        if !has_condition(&csr, &["Approved"]) {
            let node = req
                .cn
                .strip_prefix("system:node:")
                .and_then(|n| self.nodes.store().get(&ObjectRef::new(n)))
                .map(|n| (*n).clone());
            match approval(&csr, &req, node.as_ref()) {
                Approval::Approve(message) => {
                    let patch = with_condition(&csr, "Approved", "AutoApproved", message);
                    match api.patch_approval(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                        Ok(_) => tracing::info!(csr = %key.name, cn = %req.cn, "approved"),
                        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
                        Err(e) => return Err(e.into()),
                    }
                    // The informer brings the approved request back for signing.
                    return Ok(None);
                }
                Approval::Wait => return Ok(Some(Duration::from_secs(1))),
                Approval::Leave => return Ok(None),
            }
        }
        let Some(signer) = &self.signer else { return Ok(None) };
        if !is_ours(&csr.spec.signer_name) {
            return Ok(None);
        }
        if let Some(why) = signer_refusal(&csr, &req) {
            self.fail(&api, &key.name, &why).await?;
            return Ok(None);
        }
        let valid_for = csr
            .spec
            .expiration_seconds
            .map(|s| Duration::from_secs(s.max(600) as u64))
            .unwrap_or(MAX_DURATION)
            .min(MAX_DURATION);
        let pem = String::from_utf8_lossy(&csr.spec.request.0).into_owned();
        let usages: Vec<String> = csr.spec.usages.clone().unwrap_or_default();
        let cert = match signer.0.sign(&pem, &usages, valid_for) {
            Ok(c) => c,
            Err(e) => {
                self.fail(&api, &key.name, &format!("signing failed: {e}")).await?;
                return Ok(None);
            }
        };
        let patch = json!({"status": {"certificate": ByteString(cert.into_bytes())}});
        match api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => tracing::info!(csr = %key.name, cn = %req.cn, "signed"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(None)
    }

    async fn fail(&self, api: &Api<CertificateSigningRequest>, name: &str, message: &str) -> Result<(), Error> {
        let Some(csr) = self.csrs.store().get(&ObjectRef::new(name)) else { return Ok(()) };
        let patch = with_condition(&csr, "Failed", "SignerValidationFailure", message);
        tracing::warn!(csr = %name, %message, "not signing");
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests;
