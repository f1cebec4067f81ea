//! The default plugin set, one file per plugin, each exposing plain `filter` / `score` functions
//! (plus `pre_filter` / `pre_score` state where upstream has them). [`crate::schedule_one`] runs
//! them in upstream's order and applies upstream's default score weights.

pub(crate) mod balanced_allocation;
pub(crate) mod image_locality;
pub(crate) mod inter_pod_affinity;
pub(crate) mod node_affinity;
pub(crate) mod node_name;
pub(crate) mod node_ports;
pub(crate) mod node_resources_fit;
pub(crate) mod node_unschedulable;
pub(crate) mod pod_topology_spread;
pub(crate) mod taint_toleration;

#[cfg(test)]
pub(crate) mod tests;
