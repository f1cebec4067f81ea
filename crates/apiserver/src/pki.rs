//! The cluster's PKI: a CA, the API server's serving certificate, the admin client
//! certificate and the client certificate the API server presents to kubelets
//! (`kube-apiserver-kubelet-client`), created on first start under `<data-dir>/tls` and
//! reused afterwards.
//!
//! The serving certificate is re-issued (by the same CA) when the wanted SANs change (a new
//! `--tls-san`, a new node IP) or when it expires within 90 days, so kubeconfigs stay valid.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};

/// Why the PKI could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Key or certificate generation or parsing failed.
    #[error("{what}: {source}")]
    Cert {
        what: String,
        #[source]
        source: rcgen::Error,
    },
    /// A stored certificate does not parse.
    #[error("{0} is not a valid PEM certificate")]
    BadCertificate(PathBuf),
}

/// Certificates and keys, PEM-encoded.
#[derive(Clone)]
pub struct Pki {
    pub dir: PathBuf,
    pub ca_cert_pem: String,
    ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// The API server's client certificate towards kubelets (logs, exec, port-forward).
    pub kubelet_client_cert_pem: String,
    pub kubelet_client_key_pem: String,
}

/// The CN of the API server's client certificate towards kubelets (what kubelets authorize).
pub const KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").field("dir", &self.dir).finish_non_exhaustive()
    }
}

const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;
const RENEW_BEFORE_DAYS: i64 = 90;

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PkiError + 'a {
    move |source| PkiError::Io { action, path: path.to_path_buf(), source }
}

fn cert_err(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> PkiError {
    let what = what.into();
    move |source| PkiError::Cert { what, source }
}

fn write_private(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    f.write_all(contents.as_bytes()).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("sync", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename", path))
}

fn read_opt(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// Validity window starting a day ago (clock skew) and lasting `days`.
fn validity(params: &mut CertificateParams, days: i64) {
    let now = jiff::Timestamp::now();
    let ymd = |t: jiff::Timestamp| {
        let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
        rcgen::date_time_ymd(d.year() as i32, d.month() as u8, d.day() as u8)
    };
    let day = jiff::SignedDuration::from_hours(24);
    params.not_before = ymd(now - day);
    params.not_after = ymd(now + day * (days as i32));
}

fn san_list(sans: &[String]) -> Vec<SanType> {
    sans.iter()
        .filter_map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => s.clone().try_into().ok().map(SanType::DnsName),
        })
        .collect()
}

/// What a stored leaf certificate says about itself.
struct LeafFacts {
    sans: BTreeSet<String>,
    expires_soon: bool,
}

fn leaf_facts(pem: &str, path: &Path) -> Result<LeafFacts, PkiError> {
    let (_, der) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| PkiError::BadCertificate(path.into()))?;
    let cert = der.parse_x509().map_err(|_| PkiError::BadCertificate(path.into()))?;
    let mut sans = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => {
                    sans.insert(d.to_string());
                }
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()),
                        16 => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()),
                        _ => continue,
                    };
                    sans.insert(ip.to_string());
                }
                _ => {}
            }
        }
    }
    let not_after = cert.validity().not_after.timestamp();
    let expires_soon = not_after < jiff::Timestamp::now().as_second() + RENEW_BEFORE_DAYS * 86400;
    Ok(LeafFacts { sans, expires_soon })
}

fn normalize_sans(sans: &[String]) -> BTreeSet<String> {
    sans.iter()
        .map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => s.clone(),
        })
        .collect()
}

impl Pki {
    /// Load the PKI from `dir`, creating whatever is missing, and re-issuing the serving
    /// certificate when `serving_sans` changed or it is about to expire.
    pub fn load_or_create(dir: &Path, serving_sans: &[String]) -> Result<Pki, PkiError> {
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let ca_crt = dir.join("ca.crt");
        let ca_key = dir.join("ca.key");
        let (ca_cert_pem, ca_key_pem) = match (read_opt(&ca_crt)?, read_opt(&ca_key)?) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let key = KeyPair::generate().map_err(cert_err("generate CA key"))?;
                let mut params = CertificateParams::default();
                params.distinguished_name = rcgen::DistinguishedName::new();
                params
                    .distinguished_name
                    .push(DnType::CommonName, format!("skiff-ca@{}", jiff::Timestamp::now().as_second()));
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                params.key_usages =
                    vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
                validity(&mut params, CA_DAYS);
                let cert = params.self_signed(&key).map_err(cert_err("self-sign CA"))?;
                let (c, k) = (cert.pem(), key.serialize_pem());
                write_private(&ca_key, &k, 0o600)?;
                write_private(&ca_crt, &c, 0o644)?;
                (c, k)
            }
        };
        let mut pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert_pem,
            ca_key_pem,
            serving_cert_pem: String::new(),
            serving_key_pem: String::new(),
            admin_cert_pem: String::new(),
            admin_key_pem: String::new(),
            kubelet_client_cert_pem: String::new(),
            kubelet_client_key_pem: String::new(),
        };

        let (crt, key) = (dir.join("serving.crt"), dir.join("serving.key"));
        let wanted = normalize_sans(serving_sans);
        let reuse = match (read_opt(&crt)?, read_opt(&key)?) {
            (Some(c), Some(k)) => {
                let facts = leaf_facts(&c, &crt)?;
                (facts.sans == wanted && !facts.expires_soon).then_some((c, k))
            }
            _ => None,
        };
        (pki.serving_cert_pem, pki.serving_key_pem) = match reuse {
            Some(pair) => pair,
            None => {
                let (c, k) = pki.issue("kube-apiserver", &[], serving_sans, true)?;
                write_private(&key, &k, 0o600)?;
                write_private(&crt, &c, 0o644)?;
                (c, k)
            }
        };

        let (crt, key) = (dir.join("admin.crt"), dir.join("admin.key"));
        let reuse = match (read_opt(&crt)?, read_opt(&key)?) {
            (Some(c), Some(k)) => (!leaf_facts(&c, &crt)?.expires_soon).then_some((c, k)),
            _ => None,
        };
        (pki.admin_cert_pem, pki.admin_key_pem) = match reuse {
            Some(pair) => pair,
            None => {
                let (c, k) = pki.issue("system:admin", &["system:masters"], &[], false)?;
                write_private(&key, &k, 0o600)?;
                write_private(&crt, &c, 0o644)?;
                (c, k)
            }
        };

        let (crt, key) = (dir.join("kubelet-client.crt"), dir.join("kubelet-client.key"));
        let reuse = match (read_opt(&crt)?, read_opt(&key)?) {
            (Some(c), Some(k)) => (!leaf_facts(&c, &crt)?.expires_soon).then_some((c, k)),
            _ => None,
        };
        (pki.kubelet_client_cert_pem, pki.kubelet_client_key_pem) = match reuse {
            Some(pair) => pair,
            None => {
                let (c, k) = pki.issue(KUBELET_CLIENT_CN, &["system:masters"], &[], false)?;
                write_private(&key, &k, 0o600)?;
                write_private(&crt, &c, 0o644)?;
                (c, k)
            }
        };
        Ok(pki)
    }

    /// Issue a certificate signed by the cluster CA: a client certificate with CN `common_name`
    /// and O `organizations` (user and groups, as Kubernetes reads them), or a serving
    /// certificate for `sans`. Returns (certificate PEM, key PEM).
    pub fn issue(
        &self,
        common_name: &str,
        organizations: &[&str],
        sans: &[String],
        server: bool,
    ) -> Result<(String, String), PkiError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem).map_err(cert_err("load CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, ca_key).map_err(cert_err("load CA certificate"))?;
        let key = KeyPair::generate().map_err(cert_err("generate key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for o in organizations {
            params.distinguished_name.push(DnType::OrganizationName, *o);
        }
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.subject_alt_names = san_list(sans);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages =
            vec![if server { ExtendedKeyUsagePurpose::ServerAuth } else { ExtendedKeyUsagePurpose::ClientAuth }];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, LEAF_DAYS);
        let cert = params.signed_by(&key, &issuer).map_err(cert_err(format!("sign certificate for {common_name}")))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

impl Pki {
    /// Sign a PKCS#10 request (PEM) with the cluster CA, as upstream's CSR signing controller
    /// does: subject and SANs come from the (signature-checked) request; key usages and
    /// extended key usages from `usages` (the CSR's `spec.usages` names); valid for
    /// `valid_for` from now (an hour of slack before, for clock skew). Returns the certificate
    /// PEM.
    pub fn sign_request(
        &self,
        request_pem: &str,
        usages: &[String],
        valid_for: std::time::Duration,
    ) -> Result<String, PkiError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem).map_err(cert_err("load CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, ca_key).map_err(cert_err("load CA certificate"))?;
        let mut csr =
            rcgen::CertificateSigningRequestParams::from_pem(request_pem).map_err(cert_err("parse the request"))?;
        let p = &mut csr.params;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = usages
            .iter()
            .filter_map(|u| match u.as_str() {
                "digital signature" => Some(KeyUsagePurpose::DigitalSignature),
                "key encipherment" => Some(KeyUsagePurpose::KeyEncipherment),
                "content commitment" => Some(KeyUsagePurpose::ContentCommitment),
                "data encipherment" => Some(KeyUsagePurpose::DataEncipherment),
                "key agreement" => Some(KeyUsagePurpose::KeyAgreement),
                _ => None,
            })
            .collect();
        p.extended_key_usages = usages
            .iter()
            .filter_map(|u| match u.as_str() {
                "client auth" => Some(ExtendedKeyUsagePurpose::ClientAuth),
                "server auth" => Some(ExtendedKeyUsagePurpose::ServerAuth),
                "code signing" => Some(ExtendedKeyUsagePurpose::CodeSigning),
                "email protection" => Some(ExtendedKeyUsagePurpose::EmailProtection),
                "timestamping" => Some(ExtendedKeyUsagePurpose::TimeStamping),
                "ocsp signing" => Some(ExtendedKeyUsagePurpose::OcspSigning),
                _ => None,
            })
            .collect();
        p.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::hours(1);
        p.not_after = now + time::Duration::try_from(valid_for).unwrap_or(time::Duration::days(LEAF_DAYS));
        let cert = csr.signed_by(&issuer).map_err(cert_err("sign the request"))?;
        Ok(cert.pem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reuses_and_reissues_on_san_change() {
        let dir = tempfile::tempdir().unwrap();
        let sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let a = Pki::load_or_create(dir.path(), &sans).unwrap();
        let b = Pki::load_or_create(dir.path(), &sans).unwrap();
        assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
        assert_eq!(a.serving_cert_pem, b.serving_cert_pem);
        assert_eq!(a.admin_cert_pem, b.admin_cert_pem);
        assert_eq!(a.kubelet_client_cert_pem, b.kubelet_client_cert_pem);
        let (_, der) = x509_parser::pem::parse_x509_pem(a.kubelet_client_cert_pem.as_bytes()).unwrap();
        let cert = der.parse_x509().unwrap();
        let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_string();
        let o = cert.subject().iter_organization().next().unwrap().as_str().unwrap().to_string();
        assert_eq!((cn.as_str(), o.as_str()), (KUBELET_CLIENT_CN, "system:masters"));
        assert!(dir.path().join("kubelet-client.key").exists());
        let more = vec!["127.0.0.1".to_string(), "localhost".to_string(), "skiff.example".to_string()];
        let c = Pki::load_or_create(dir.path(), &more).unwrap();
        assert_eq!(a.ca_cert_pem, c.ca_cert_pem, "the CA is kept");
        assert_ne!(a.serving_cert_pem, c.serving_cert_pem, "the serving cert is re-issued");
        let facts = leaf_facts(&c.serving_cert_pem, Path::new("x")).unwrap();
        assert!(facts.sans.contains("skiff.example"));
        let mode = fs::metadata(dir.path().join("ca.key")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn signs_requests_with_their_subject_and_the_usages_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "system:nodes");
        params.distinguished_name.push(DnType::CommonName, "system:node:a");
        params.subject_alt_names = san_list(&["10.0.0.5".into()]);
        let request = params.serialize_request(&key).unwrap().pem().unwrap();
        let usages = vec!["digital signature".to_string(), "server auth".to_string()];
        let pem = pki.sign_request(&request, &usages, std::time::Duration::from_secs(3600 * 24)).unwrap();
        let facts = leaf_facts(&pem, Path::new("x")).unwrap();
        assert!(facts.sans.contains("10.0.0.5"), "{:?}", facts.sans);
        let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = der.parse_x509().unwrap();
        assert_eq!(cert.subject().iter_common_name().next().unwrap().as_str().unwrap(), "system:node:a");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let (_, ca) = x509_parser::pem::parse_x509_pem(pki.ca_cert_pem.as_bytes()).unwrap();
        assert_eq!(cert.issuer(), ca.parse_x509().unwrap().subject());
        let left = cert.validity().not_after.timestamp() - jiff::Timestamp::now().as_second();
        assert!((3600 * 23..=3600 * 24).contains(&left), "{left}");
        assert!(pki.sign_request("garbage", &usages, std::time::Duration::from_secs(60)).is_err());
    }

    #[test]
    fn garbage_certificate_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap();
        fs::write(dir.path().join("serving.crt"), "not a cert").unwrap();
        let err = Pki::load_or_create(dir.path(), &["localhost".into()]).unwrap_err();
        assert!(err.to_string().contains("serving.crt is not a valid PEM certificate"), "{err}");
    }
}
