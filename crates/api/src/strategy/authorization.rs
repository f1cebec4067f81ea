//! Reviews of authentication.k8s.io/v1 and authorization.k8s.io/v1: computed per request by
//! the API server and never stored, so only decoding (and generic metadata checks) apply.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview};

use crate::strategy::KindStrategy;

impl KindStrategy for SelfSubjectReview {}
impl KindStrategy for SelfSubjectAccessReview {}
impl KindStrategy for SelfSubjectRulesReview {}
impl KindStrategy for SubjectAccessReview {}
