//! Strategies for discovery/v1 kinds.

use k8s_openapi::api::discovery::v1::{EndpointSlice};

use crate::strategy::KindStrategy;

impl KindStrategy for EndpointSlice {}
