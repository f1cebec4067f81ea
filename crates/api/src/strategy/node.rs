//! Strategies for node/v1 kinds.

use k8s_openapi::api::node::v1::{RuntimeClass};

use crate::strategy::KindStrategy;

impl KindStrategy for RuntimeClass {}
