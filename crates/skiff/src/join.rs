//! Joining a cluster (`skiff agent --server URL --token TOKEN`): trust the server's CA only if
//! it matches the hash in the token, then get the node's own certificates through
//! CertificateSigningRequests, as a kubelet's TLS bootstrap does upstream.
//!
//! The token is k3s's format, `K10<sha256 of the CA PEM>::<user>:<secret>` (`<user>:` may be
//! left out). The secret is a bearer token the server accepts (its cluster token or its
//! `--agent-token`), used for nothing but asking for the node's client certificate
//! (CN `system:node:<name>`, O `system:nodes`); everything after that is done with the
//! certificate. Credentials are kept under `<data-dir>/agent` and reused while valid.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use kube::api::{Api, PostParams};
use sha2::Digest;

use crate::kubeconfig;

const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// How long the server may take to approve and sign a request.
const SIGN_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed join token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct JoinToken {
    /// Hex SHA-256 of the server's CA bundle (PEM bytes as `/cacerts` serves them).
    pub ca_hash: String,
    pub secret: String,
}

impl JoinToken {
    pub(crate) fn parse(token: &str) -> Result<JoinToken> {
        let token = token.trim();
        let Some(rest) = token.strip_prefix("K10") else {
            bail!(
                "the join token must pin the server's CA: use the full token from the server's <data-dir>/node-token (K10<ca-hash>::server:<secret>)"
            );
        };
        let (hash, creds) =
            rest.split_once("::").context("malformed join token: want K10<ca-hash>::<user>:<secret>")?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("malformed join token: the CA hash after K10 must be 64 hex digits (SHA-256)");
        }
        let secret = creds.split_once(':').map(|(_, s)| s).unwrap_or(creds);
        if secret.is_empty() {
            bail!("malformed join token: the secret after '::' is empty");
        }
        Ok(JoinToken { ca_hash: hash.to_ascii_lowercase(), secret: secret.to_string() })
    }

    /// The token for a server with CA `ca_pem` and secret `secret`.
    pub(crate) fn format(ca_pem: &str, secret: &str) -> String {
        format!("K10{}::server:{secret}", ca_hash(ca_pem))
    }
}

pub(crate) fn ca_hash(ca_pem: &str) -> String {
    hex::encode(sha2::Sha256::digest(ca_pem.as_bytes()))
}

/// The node's credentials.
pub(crate) struct NodeCredentials {
    pub ca_pem: String,
    /// A kubeconfig for the node's identity (also written to `<data-dir>/agent/kubelet.kubeconfig`).
    pub kubeconfig: PathBuf,
}

/// Where an agent keeps its credentials.
fn agent_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent")
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// Fetch the server's CA without trusting anyone yet, and keep it only if its hash is the
/// token's.
async fn trusted_ca(server: &str, token: &JoinToken) -> Result<String> {
    let mut config = kube::Config::new(server.parse().context("--server is not a URL")?);
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(10));
    let client = kube::Client::try_from(config).context("an HTTPS client")?;
    let req = http::Request::get("/cacerts").body(Vec::new()).context("the /cacerts request")?;
    let pem =
        client.request_text(req).await.with_context(|| format!("fetching the cluster CA from {server}/cacerts"))?;
    let got = ca_hash(&pem);
    if got != token.ca_hash {
        bail!(
            "the server's CA (sha256 {got}) is not the one the join token names ({}): refusing to join. The token is for another cluster, or something between here and {server} is not the server",
            token.ca_hash
        );
    }
    Ok(pem)
}

/// A client that trusts `ca_pem` and authenticates with `token` (joining) or as the node.
fn client_config(server: &str, ca_pem: &str) -> Result<kube::Config> {
    use rustls_pki_types::pem::PemObject;
    let mut config = kube::Config::new(server.parse().context("--server is not a URL")?);
    let certs: Vec<Vec<u8>> = rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .filter_map(Result::ok)
        .map(|c| c.to_vec())
        .collect();
    if certs.is_empty() {
        bail!("the server's /cacerts holds no certificate");
    }
    config.root_cert = Some(certs);
    Ok(config)
}

/// A fresh key and a PEM certificate request for `cn` in `orgs` with `sans`.
fn certificate_request(cn: &str, orgs: &[&str], sans: &[String]) -> Result<(String, String)> {
    let key = rcgen::KeyPair::generate().context("generating a key")?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for o in orgs {
        params.distinguished_name.push(rcgen::DnType::OrganizationName, *o);
    }
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.subject_alt_names = sans
        .iter()
        .filter_map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => Some(rcgen::SanType::IpAddress(ip)),
            Err(_) => s.clone().try_into().ok().map(rcgen::SanType::DnsName),
        })
        .collect();
    let request = params.serialize_request(&key).context("building the certificate request")?;
    Ok((request.pem().context("encoding the certificate request")?, key.serialize_pem()))
}

/// Ask for a certificate and wait until it is signed; a denial or failure is an error that
/// says why.
async fn request_certificate(client: kube::Client, request_pem: &str, signer: &str, usages: &[&str]) -> Result<String> {
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let mut csr = CertificateSigningRequest {
        spec: CertificateSigningRequestSpec {
            request: ByteString(request_pem.as_bytes().to_vec()),
            signer_name: signer.to_string(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            ..Default::default()
        },
        ..Default::default()
    };
    csr.metadata.generate_name = Some("node-csr-".into());
    let created = api.create(&PostParams::default(), &csr).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 401 => anyhow::anyhow!(
            "the server rejected the join token (401 Unauthorized): use the token from the server's <data-dir>/node-token"
        ),
        kube::Error::Api(s) if s.code == 403 => {
            anyhow::anyhow!("the join token may not ask for node certificates (403 Forbidden): {}", s.message)
        }
        _ => anyhow::anyhow!("creating the certificate signing request: {e}"),
    })?;
    let name = created.metadata.name.unwrap_or_default();
    let deadline = tokio::time::Instant::now() + SIGN_TIMEOUT;
    loop {
        let csr = api.get(&name).await.with_context(|| format!("reading certificate signing request {name}"))?;
        let status = csr.status.unwrap_or_default();
        for c in status.conditions.iter().flatten() {
            if matches!(c.type_.as_str(), "Denied" | "Failed") && c.status == "True" {
                bail!(
                    "certificate signing request {name} was {}: {} {}",
                    c.type_.to_lowercase(),
                    c.reason.as_deref().unwrap_or_default(),
                    c.message.as_deref().unwrap_or_default()
                );
            }
        }
        if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
            return String::from_utf8(cert.0).context("the signed certificate is not PEM");
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "certificate signing request {name} was not signed within {} s: is the server's controller manager running? (kubectl get csr {name})",
                SIGN_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Facts about a stored certificate that decide whether to reuse it.
fn reusable(cert_pem: &str, cn: &str, sans: Option<&[String]>) -> bool {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()) else { return false };
    let Ok(cert) = pem.parse_x509() else { return false };
    let subject_cn = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok()).unwrap_or_default();
    // Renew once less than 30 days are left.
    let left = cert.validity().not_after.timestamp() - jiff::Timestamp::now().as_second();
    if subject_cn != cn || left < 30 * 24 * 3600 {
        return false;
    }
    let Some(want) = sans else { return true };
    let mut have: Vec<String> = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => have.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) if b.len() == 4 => {
                    have.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()).to_string())
                }
                x509_parser::extensions::GeneralName::IPAddress(b) if b.len() == 16 => {
                    have.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()).to_string())
                }
                _ => {}
            }
        }
    }
    let mut want: Vec<String> = want.to_vec();
    want.sort();
    have.sort();
    want == have
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().filter(|s| !s.trim().is_empty())
}

/// Trust the server (per the token) and get the node's client certificate: the stored one
/// while it is valid for this node and CA, else a new one through a CSR.
pub(crate) async fn bootstrap(server: &str, token: &str, data_dir: &Path, node_name: &str) -> Result<NodeCredentials> {
    let token = JoinToken::parse(token)?;
    let ca_pem = trusted_ca(server, &token).await?;
    let dir = agent_dir(data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let cn = format!("system:node:{node_name}");
    let (cert_path, key_path) = (dir.join("client.crt"), dir.join("client.key"));
    let same_ca = read(&dir.join("ca.crt")).as_deref() == Some(ca_pem.as_str());
    let stored = match (read(&cert_path), read(&key_path)) {
        (Some(c), Some(k)) if same_ca && reusable(&c, &cn, None) => Some((c, k)),
        _ => None,
    };
    let (client_cert_pem, client_key_pem) = match stored {
        Some(pair) => pair,
        None => {
            tracing::info!(node = %node_name, "asking the server for the node's client certificate");
            let mut config = client_config(server, &ca_pem)?;
            config.auth_info.token = Some(token.secret.clone().into());
            let client = kube::Client::try_from(config).context("an API client")?;
            let (request, key) = certificate_request(&cn, &["system:nodes"], &[])?;
            let cert =
                request_certificate(client, &request, KUBELET_CLIENT_SIGNER, &["digital signature", "client auth"])
                    .await?;
            write_private(&key_path, &key)?;
            write_private(&cert_path, &cert)?;
            write_private(&dir.join("ca.crt"), &ca_pem)?;
            (cert, key)
        }
    };
    let kubeconfig = dir.join("kubelet.kubeconfig");
    let creds =
        kubeconfig::Credentials { server, ca_pem: &ca_pem, cert_pem: &client_cert_pem, key_pem: &client_key_pem };
    kubeconfig::write(&kubeconfig, &kubeconfig::standalone(&creds))?;
    Ok(NodeCredentials { ca_pem, kubeconfig })
}

/// A client acting as the node.
pub(crate) async fn node_client(creds: &NodeCredentials) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(&creds.kubeconfig)
        .with_context(|| format!("reading {}", creds.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// The kubelet's serving certificate for `sans`: the stored one while it still covers them,
/// else a new one through a CSR (approved once the Node reports those addresses).
pub(crate) async fn serving_certificate(
    client: kube::Client,
    data_dir: &Path,
    node_name: &str,
    sans: &[String],
) -> Result<(String, String)> {
    let dir = agent_dir(data_dir);
    let cn = format!("system:node:{node_name}");
    let (cert_path, key_path) = (dir.join("serving.crt"), dir.join("serving.key"));
    if let (Some(c), Some(k)) = (read(&cert_path), read(&key_path))
        && reusable(&c, &cn, Some(sans))
    {
        return Ok((c, k));
    }
    tracing::info!(node = %node_name, "asking the server for the kubelet's serving certificate");
    let (request, key) = certificate_request(&cn, &["system:nodes"], sans)?;
    let cert =
        request_certificate(client, &request, KUBELET_SERVING_SIGNER, &["digital signature", "server auth"]).await?;
    write_private(&key_path, &key)?;
    write_private(&cert_path, &cert)?;
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let ca = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n";
        let t = JoinToken::format(ca, "s3cret");
        assert!(t.starts_with("K10") && t.ends_with("::server:s3cret"), "{t}");
        let parsed = JoinToken::parse(&t).unwrap();
        assert_eq!(parsed.ca_hash, ca_hash(ca));
        assert_eq!(parsed.secret, "s3cret");
        let bare = JoinToken::parse(&format!("K10{}::s3cret", ca_hash(ca))).unwrap();
        assert_eq!(bare.secret, "s3cret");
        let err = JoinToken::parse("s3cret").unwrap_err().to_string();
        assert!(err.contains("must pin the server's CA"), "{err}");
        assert!(JoinToken::parse("K10abc::server:x").unwrap_err().to_string().contains("64 hex digits"));
        assert!(JoinToken::parse(&format!("K10{}::server:", ca_hash(ca))).is_err());
        assert!(JoinToken::parse(&format!("K10{}", ca_hash(ca))).is_err());
    }

    #[test]
    fn stored_certificates_are_reused_only_for_the_same_node_and_names() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a".to_string(), "10.0.0.5".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "system:node:a");
        let cert = params.self_signed(&key).unwrap().pem();
        let sans = vec!["a".to_string(), "10.0.0.5".to_string()];
        assert!(reusable(&cert, "system:node:a", Some(&sans)));
        assert!(reusable(&cert, "system:node:a", None));
        assert!(!reusable(&cert, "system:node:b", None), "another node's");
        assert!(!reusable(&cert, "system:node:a", Some(&["a".to_string(), "10.0.0.6".to_string()])), "moved");
        assert!(!reusable("garbage", "system:node:a", None));
        let (req, key_pem) = certificate_request("system:node:a", &["system:nodes"], &sans).unwrap();
        assert!(req.contains("BEGIN CERTIFICATE REQUEST") && key_pem.contains("PRIVATE KEY"));
    }
}
