//! Strategies for coordination/v1 kinds.

use k8s_openapi::api::coordination::v1::{Lease};

use crate::strategy::KindStrategy;

impl KindStrategy for Lease {}
