//! Strategies for apps/v1 kinds.

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};

use crate::strategy::KindStrategy;

impl KindStrategy for ControllerRevision {}
impl KindStrategy for DaemonSet {}
impl KindStrategy for Deployment {}
impl KindStrategy for ReplicaSet {}
impl KindStrategy for StatefulSet {}
