//! Strategies for events/v1 kinds.

use k8s_openapi::api::events::v1::{Event};

use crate::strategy::KindStrategy;

impl KindStrategy for Event {}
