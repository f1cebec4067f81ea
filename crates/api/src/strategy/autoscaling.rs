//! Strategies for autoscaling/v1 and autoscaling/v2 kinds.

use k8s_openapi::api::autoscaling::{v1, v2};

use crate::strategy::KindStrategy;

impl KindStrategy for v1::HorizontalPodAutoscaler {}
impl KindStrategy for v2::HorizontalPodAutoscaler {}
