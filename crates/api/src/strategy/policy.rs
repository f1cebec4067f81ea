//! Strategies for policy/v1 kinds.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget};

use crate::strategy::KindStrategy;

impl KindStrategy for PodDisruptionBudget {}
