//! Server-side printing: the `meta.k8s.io/v1` `Table` columns and cells that `kubectl get`
//! shows, matching kube-apiserver's built-in printers (`pkg/printers/internalversion`, as of
//! Kubernetes 1.32) kind by kind.
//!
//! The API server answers `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` by building a
//! `Table` from [`columns`] (the `columnDefinitions`) and one [`cells`] row per object, plus
//! [`row_conditions`] for the rows that carry any. Cells are computed from the object as stored
//! (`serde_json::Value`), so nothing here needs the typed structs. Like kube-apiserver, the
//! cells always include the `-o wide` (priority 1) columns; kubectl hides those itself.
//!
//! Kinds without a printer get upstream's default table: `Name` and `Created At` (a `date`
//! column holding the RFC 3339 creation time), which is also what Roles, ClusterRoles and
//! LimitRanges get upstream.
//!
//! The age and duration formats (`5m`, `2d3h`, `<invalid>`, `<unknown>`) live in
//! [`human_duration`] and [`translate_timestamp_since`] so CRD printer columns can reuse them.
//! See `docs/data-path.md` for where table conversion sits in a request.

mod apps;
mod core;
mod docs;
mod duration;
mod format;
mod misc;
mod pod;
mod quantity;

#[cfg(test)]
mod tests;

use jiff::Timestamp;
use serde_json::Value;

pub use duration::{human_duration, human_signed_duration, short_human_duration, translate_timestamp_since};
pub use quantity::canonical_quantity;

/// A resource-specific table printer (custom resources' `additionalPrinterColumns`).
pub trait TablePrinter: Send + Sync {
    /// The `columnDefinitions` of the Table.
    fn column_definitions(&self) -> Vec<serde_json::Value>;
    /// The cells of one row, in column order.
    fn cells(&self, obj: &serde_json::Value, now: jiff::Timestamp) -> Vec<serde_json::Value>;
}

/// One `TableColumnDefinition`, as kube-apiserver declares it for a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Column header as upstream spells it (`Name`, `Ready`, `Nominated Node`); kubectl
    /// upper-cases it.
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean` or `date`. Upstream's declared
    /// type does not always match the cell (a `Restarts` "string", an `Age` "string").
    pub type_: &'static str,
    /// `name` for the column kubectl treats as the object name, else empty.
    pub format: &'static str,
    /// The field documentation upstream attaches to the column.
    pub description: &'static str,
    /// 0 for normal columns, 1 for those kubectl shows only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// A normal (priority 0) column.
    const fn new(name: &'static str, type_: &'static str, description: &'static str) -> Self {
        Column { name, type_, format: "", description, priority: 0 }
    }

    /// The column as a `TableColumnDefinition` for the `Table`'s `columnDefinitions` (every
    /// field present, as upstream serializes it).
    pub fn definition(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }

    /// A column kubectl shows only with `-o wide`.
    const fn wide(name: &'static str, type_: &'static str, description: &'static str) -> Self {
        Column { name, type_, format: "", description, priority: 1 }
    }
}

/// The `Name` column every printer starts with.
const NAME: Column =
    Column { name: "Name", type_: "string", format: "name", description: docs::META_NAME, priority: 0 };
/// The `Age` column: the object's creation time as a human duration.
const AGE: Column = Column::new("Age", "string", docs::META_CREATION);

/// Upstream's default table (`rest.DefaultTableConvertor`) for kinds without a printer.
pub const DEFAULT_COLUMNS: &[Column] =
    &[NAME, Column { name: "Created At", type_: "date", format: "", description: docs::META_CREATION, priority: 0 }];

/// A kind's printer: its column definitions and the function computing one row's cells.
struct Printer {
    columns: &'static [Column],
    cells: fn(&Value, Timestamp) -> Vec<Value>,
}

/// The printer for a kind, or `None` where upstream uses the default table. Versions of a
/// kind share one printer (upstream prints the internal version), so only group and kind matter.
fn printer(group: &str, kind: &str) -> Option<Printer> {
    let p = |columns, cells| Some(Printer { columns, cells });
    match (group, kind) {
        ("", "Pod") => p(pod::COLUMNS, pod::cells),
        ("", "PodTemplate") => p(core::POD_TEMPLATE, core::pod_template),
        ("", "ReplicationController") => p(core::REPLICATION_CONTROLLER, core::replication_controller),
        ("", "Service") => p(core::SERVICE, core::service),
        ("", "Endpoints") => p(core::ENDPOINTS, core::endpoints),
        ("", "Node") => p(core::NODE, core::node),
        ("", "Namespace") => p(core::NAMESPACE, core::namespace),
        ("", "Event") => p(core::EVENT, core::core_event),
        ("events.k8s.io", "Event") => p(core::EVENT, core::events_event),
        ("", "ConfigMap") => p(core::CONFIG_MAP, core::config_map),
        ("", "Secret") => p(core::SECRET, core::secret),
        ("", "ServiceAccount") => p(core::SERVICE_ACCOUNT, core::service_account),
        ("", "PersistentVolume") => p(core::PERSISTENT_VOLUME, core::persistent_volume),
        ("", "PersistentVolumeClaim") => p(core::PERSISTENT_VOLUME_CLAIM, core::persistent_volume_claim),
        ("", "ResourceQuota") => p(core::RESOURCE_QUOTA, core::resource_quota),
        ("apps", "ReplicaSet") => p(apps::REPLICA_SET, apps::replica_set),
        ("apps", "Deployment") => p(apps::DEPLOYMENT, apps::deployment),
        ("apps", "StatefulSet") => p(apps::STATEFUL_SET, apps::stateful_set),
        ("apps", "DaemonSet") => p(apps::DAEMON_SET, apps::daemon_set),
        ("apps", "ControllerRevision") => p(apps::CONTROLLER_REVISION, apps::controller_revision),
        ("batch", "Job") => p(apps::JOB, apps::job),
        ("batch", "CronJob") => p(apps::CRON_JOB, apps::cron_job),
        ("autoscaling", "HorizontalPodAutoscaler") => p(apps::HPA, apps::horizontal_pod_autoscaler),
        ("autoscaling", "Scale") => p(apps::SCALE, apps::scale),
        ("policy", "PodDisruptionBudget") => p(misc::POD_DISRUPTION_BUDGET, misc::pod_disruption_budget),
        ("networking.k8s.io", "Ingress") => p(misc::INGRESS, misc::ingress),
        ("networking.k8s.io", "IngressClass") => p(misc::INGRESS_CLASS, misc::ingress_class),
        ("networking.k8s.io", "NetworkPolicy") => p(misc::NETWORK_POLICY, misc::network_policy),
        ("networking.k8s.io", "IPAddress") => p(misc::IP_ADDRESS, misc::ip_address),
        ("networking.k8s.io", "ServiceCIDR") => p(misc::SERVICE_CIDR, misc::service_cidr),
        ("discovery.k8s.io", "EndpointSlice") => p(misc::ENDPOINT_SLICE, misc::endpoint_slice),
        ("rbac.authorization.k8s.io", "RoleBinding") => p(misc::ROLE_BINDING, misc::role_binding),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => p(misc::CLUSTER_ROLE_BINDING, misc::role_binding),
        ("coordination.k8s.io", "Lease") => p(misc::LEASE, misc::lease),
        ("storage.k8s.io", "StorageClass") => p(misc::STORAGE_CLASS, misc::storage_class),
        ("storage.k8s.io", "CSIDriver") => p(misc::CSI_DRIVER, misc::csi_driver),
        ("storage.k8s.io", "CSINode") => p(misc::CSI_NODE, misc::csi_node),
        ("storage.k8s.io", "CSIStorageCapacity") => p(misc::CSI_STORAGE_CAPACITY, misc::csi_storage_capacity),
        ("storage.k8s.io", "VolumeAttachment") => p(misc::VOLUME_ATTACHMENT, misc::volume_attachment),
        ("storage.k8s.io", "VolumeAttributesClass") => p(misc::VOLUME_ATTRIBUTES_CLASS, misc::volume_attributes_class),
        ("scheduling.k8s.io", "PriorityClass") => p(misc::PRIORITY_CLASS, misc::priority_class),
        ("node.k8s.io", "RuntimeClass") => p(misc::RUNTIME_CLASS, misc::runtime_class),
        ("certificates.k8s.io", "CertificateSigningRequest") => p(misc::CSR, misc::certificate_signing_request),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => p(misc::MUTATING_WEBHOOK, misc::webhook),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            p(misc::VALIDATING_WEBHOOK, misc::webhook)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            p(misc::VALIDATING_ADMISSION_POLICY, misc::validating_admission_policy)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            p(misc::VALIDATING_ADMISSION_POLICY_BINDING, misc::validating_admission_policy_binding)
        }
        _ => None,
    }
}

/// Whether the kind has its own printer (otherwise it gets [`DEFAULT_COLUMNS`]).
pub fn has_printer(group: &str, kind: &str) -> bool {
    printer(group, kind).is_some()
}

/// Columns for a kind (group `""` is core). Unknown kinds get [`DEFAULT_COLUMNS`].
pub fn columns(group: &str, kind: &str) -> &'static [Column] {
    printer(group, kind).map_or(DEFAULT_COLUMNS, |p| p.columns)
}

/// The cells of one row, in column order (wide columns included); `now` is the reference for
/// ages. Missing or malformed fields print as upstream prints their zero value; this never fails.
///
/// Note: like upstream, a few kinds return a different number of cells than columns (IPAddress
/// has an extra age cell); kubectl ignores cells past the last column.
pub fn cells(group: &str, kind: &str, obj: &Value, now: Timestamp) -> Vec<Value> {
    match printer(group, kind) {
        Some(p) => (p.cells)(obj, now),
        None => default_cells(obj),
    }
}

/// The row's `conditions`, where upstream sets any: pods that ran to completion carry
/// `{type: Completed, status: "True"}` so clients can tell finished rows apart.
pub fn row_conditions(group: &str, kind: &str, obj: &Value) -> Option<Value> {
    match (group, kind) {
        ("", "Pod") => pod::row_conditions(obj),
        _ => None,
    }
}

/// Upstream's default row: the name and the creation time in RFC 3339 (UTC, whole seconds).
fn default_cells(obj: &Value) -> Vec<Value> {
    let created = match format::opt_str(obj, &["metadata", "creationTimestamp"]) {
        // Go formats the zero time when the field is unset.
        None => "0001-01-01T00:00:00Z".to_string(),
        Some(raw) => match raw.parse::<Timestamp>() {
            Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            Err(_) => raw.to_string(),
        },
    };
    vec![format::name(obj), Value::String(created)]
}
