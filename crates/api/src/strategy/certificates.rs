//! Strategies for certificates.k8s.io/v1 kinds: CertificateSigningRequests. Upstream also
//! records the requesting user (`spec.username`, `uid`, `groups`, `extra`) on create; that
//! needs the request's user and is left to the API server.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;

use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::common::Raw;
use crate::strategy::{KindStrategy, NameRule};
use crate::validation;

const USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

impl KindStrategy for CertificateSigningRequest {
    /// Upstream does not restrict CSR names beyond their use in a URL path.
    fn name_rule() -> NameRule {
        NameRule::PathSegment
    }

    fn prepare_for_create(&mut self) {
        self.status = None;
    }

    fn validate(&self) -> ErrorList {
        let mut errs = ErrorList::new();
        let p = Path::new("spec");
        let req = String::from_utf8_lossy(&self.spec.request.0).into_owned();
        if !req.contains("-----BEGIN CERTIFICATE REQUEST-----") {
            errs.push(FieldError::invalid(
                &p.child("request"),
                Raw("[]byte{...}".into()),
                "PEM block type must be CERTIFICATE REQUEST",
            ));
        }
        let signer = &self.spec.signer_name;
        if signer.is_empty() {
            errs.push(FieldError::required(&p.child("signerName"), ""));
        } else {
            let ok = signer.split_once('/').is_some_and(|(domain, path)| {
                !path.is_empty() && validation::dns1123_subdomain(domain).is_empty() && !path.contains('/')
            });
            if !ok {
                errs.push(FieldError::invalid(
                    &p.child("signerName"),
                    signer,
                    "must be a fully qualified domain and path of the form 'example.com/signer-name'",
                ));
            }
        }
        for (i, u) in self.spec.usages.iter().flatten().enumerate() {
            if !USAGES.contains(&u.as_str()) {
                errs.push(FieldError::not_supported(&p.child("usages").index(i), u, USAGES));
            }
        }
        if let Some(e) = self.spec.expiration_seconds
            && e < 600
        {
            errs.push(FieldError::invalid(
                &p.child("expirationSeconds"),
                e,
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        if self.spec != old.spec {
            return vec![FieldError::invalid(
                &Path::new("spec"),
                Raw("certificates.CertificateSigningRequestSpec{...}".into()),
                validation::IMMUTABLE_MSG,
            )];
        }
        Vec::new()
    }
}
