//! Strategies for certificates/v1 kinds.

use k8s_openapi::api::certificates::v1::{CertificateSigningRequest};

use crate::strategy::KindStrategy;

impl KindStrategy for CertificateSigningRequest {}
