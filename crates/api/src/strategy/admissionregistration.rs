//! Strategies for admissionregistration/v1 kinds.

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding, ValidatingWebhookConfiguration};

use crate::strategy::KindStrategy;

impl KindStrategy for MutatingWebhookConfiguration {}
impl KindStrategy for ValidatingAdmissionPolicy {}
impl KindStrategy for ValidatingAdmissionPolicyBinding {}
impl KindStrategy for ValidatingWebhookConfiguration {}
