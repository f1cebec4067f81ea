//! Strategies for core/v1 kinds.

use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, PodTemplate, ReplicationController, ResourceQuota, Secret, Service, ServiceAccount};

use crate::strategy::KindStrategy;

impl KindStrategy for ConfigMap {}
impl KindStrategy for Endpoints {}
impl KindStrategy for Event {}
impl KindStrategy for LimitRange {}
impl KindStrategy for Namespace {}
impl KindStrategy for Node {}
impl KindStrategy for PersistentVolumeClaim {}
impl KindStrategy for PersistentVolume {}
impl KindStrategy for Pod {}
impl KindStrategy for PodTemplate {}
impl KindStrategy for ReplicationController {}
impl KindStrategy for ResourceQuota {}
impl KindStrategy for Secret {}
impl KindStrategy for ServiceAccount {}
impl KindStrategy for Service {}
