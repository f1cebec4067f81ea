//! Strategies for networking/v1 kinds.

use k8s_openapi::api::networking::v1::{IPAddress, Ingress, IngressClass, NetworkPolicy, ServiceCIDR};

use crate::strategy::KindStrategy;

impl KindStrategy for IngressClass {}
impl KindStrategy for Ingress {}
impl KindStrategy for IPAddress {}
impl KindStrategy for NetworkPolicy {}
impl KindStrategy for ServiceCIDR {}
