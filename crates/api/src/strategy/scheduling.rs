//! Strategies for scheduling/v1 kinds.

use k8s_openapi::api::scheduling::v1::{PriorityClass};

use crate::strategy::KindStrategy;

impl KindStrategy for PriorityClass {}
