//! Strategies for rbac/v1 kinds.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

use crate::strategy::KindStrategy;

impl KindStrategy for ClusterRoleBinding {}
impl KindStrategy for ClusterRole {}
impl KindStrategy for RoleBinding {}
impl KindStrategy for Role {}
